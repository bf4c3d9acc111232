//! Training mode on the labeling page: after a missed gold item the server sends the right
//! answer with the submission's response (`Annotation::gold_answer`), and the page shows it
//! for a few seconds in a note that floats over the page (so nothing below it moves) and goes
//! away with `Esc`. The labeler keeps labeling meanwhile: the note is about the item before.
use leptos::prelude::*;

use crate::components::Kbd;

/// How long a note stays up unless dismissed.
pub const SHOW_MS: u64 = 8_000;

/// One missed gold item: what the labeler answered and what was expected.
#[derive(Clone, Debug, PartialEq)]
pub struct GoldNote {
    pub item_id: i64,
    pub given: Vec<String>,
    pub expected: Vec<String>,
    /// Tells notes apart, so the timer of an earlier note does not hide a later one.
    pub serial: u64,
}

impl GoldNote {
    /// The sentence shown (and read out by screen readers).
    pub fn message(&self) -> String {
        format!(
            "Item {} was a check item: the expected answer is {}; you chose {}.",
            self.item_id,
            self.expected.join(", "),
            self.given.join(", ")
        )
    }
}

/// The page's current note and how to show and dismiss it. `Copy`, like the labeling loop.
#[derive(Clone, Copy)]
pub struct GoldNotes {
    current: RwSignal<Option<GoldNote>>,
    serial: StoredValue<u64>,
}

impl GoldNotes {
    pub fn new() -> Self {
        GoldNotes { current: RwSignal::new(None), serial: StoredValue::new(0) }
    }

    /// Shows a note for `SHOW_MS` (replacing any other).
    pub fn show(self, item_id: i64, given: Vec<String>, expected: Vec<String>) {
        let serial = self.serial.get_value() + 1;
        self.serial.set_value(serial);
        self.current.set(Some(GoldNote { item_id, given, expected, serial }));
        set_timeout(
            move || {
                if self.current.with_untracked(|n| n.as_ref().map(|n| n.serial)) == Some(serial) {
                    self.current.set(None);
                }
            },
            std::time::Duration::from_millis(SHOW_MS),
        );
    }

    /// `Esc`: hides the note; false when none was up (the key then does its other job).
    pub fn dismiss(self) -> bool {
        let up = self.current.with_untracked(|n| n.is_some());
        if up {
            self.current.set(None);
        }
        up
    }
}

impl Default for GoldNotes {
    fn default() -> Self {
        Self::new()
    }
}

#[component]
pub fn GoldNoteView(notes: GoldNotes) -> impl IntoView {
    move || {
        notes.current.with(|n| match n {
            None => ().into_any(),
            Some(n) => view! {
                <div class="gold-note" role="status" aria-live="polite">
                    <span class="gold-note-mark" aria-hidden="true">"!"</span>
                    <span class="gold-note-text">{n.message()}</span>
                    <button class="btn btn-quiet btn-small" on:click=move |_| { notes.dismiss(); }>
                        "OK " <Kbd k="Esc"/>
                    </button>
                </div>
            }
            .into_any(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_both_answers() {
        let n = GoldNote { item_id: 7, given: vec!["neg".into()], expected: vec!["pos".into()], serial: 1 };
        assert_eq!(n.message(), "Item 7 was a check item: the expected answer is pos; you chose neg.");
    }
}
