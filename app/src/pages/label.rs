//! `/projects/:id/label`: one item at a time, every action on a key, no visible waits.
//!
//! How it stays instant: the page holds the item on screen plus one more, already leased
//! ("prefetched"). A label press records the answer, shows the prefetched item at once and
//! saves in the background (retrying a failed save with the same `client_id`, so nothing is
//! doubled or lost), then leases the following item while the labeler works. Image items in
//! the queue are loaded ahead by hidden `<img>`s.
use std::collections::VecDeque;

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api_client;
use crate::api_types::{Annotation, ItemKind, ItemView, LabelDef, LabelKind, PrelabelView, Progress, Project, SubmitAnnotation};
use crate::components::{fmt_count, Kbd, ProgressBar, Skeleton, Status, StatusLine, Tone};
use crate::markdown;
use crate::pages::gold_note::{GoldNoteView, GoldNotes};
use crate::pages::prelabels::PrelabelHint;
use crate::pages::project_id;
use crate::util;

#[component]
pub fn LabelPage() -> impl IntoView {
    let pid = project_id();
    move || match pid.get() {
        Some(id) => view! { <Labeler pid=id/> }.into_any(),
        None => view! { <div class="narrow"><p class="error-text">"This is not a project address."</p></div> }.into_any(),
    }
}

/// An item leased to this page, with the (browser-clock) time its lease runs out.
#[derive(Clone, Debug, PartialEq)]
struct Leased {
    item: ItemView,
    expires: f64,
    /// The item's pre-label, when the server shows one (issue 10).
    prelabel: Option<PrelabelView>,
}

/// A leased item older than this margin before its end is not shown: someone else may be
/// handed it any moment, so a fresh one is fetched instead.
const LEASE_MARGIN_MS: f64 = 15_000.0;

/// What is on screen.
#[derive(Clone, Debug, PartialEq)]
struct Shown {
    item: ItemView,
    /// When the lease on a new item ends (browser clock); 0 for earlier answers.
    expires: f64,
    /// Set when this is an earlier submission being looked at again (`u`).
    revisit: Option<Annotation>,
    /// Multi-label: the labels toggled on so far. Revisit: the labels given before.
    selected: Vec<String>,
    /// The pre-label shown with a new item; Enter takes it.
    prelabel: Option<PrelabelView>,
}

#[derive(Clone, Debug, PartialEq)]
enum Phase {
    /// Waiting for the first item (or for the next one, when the prefetch was not back yet).
    Loading,
    Working,
    /// Nothing left for this labeler.
    Done,
    Failed(String),
}

#[derive(Clone, Debug, PartialEq)]
struct InFlight {
    item_id: i64,
    client_id: String,
    /// Skips are in flight too (so the prefetch does not ask for that item again).
    skip: bool,
}

/// The labeling loop's state. Every field is a cheap handle, so the whole thing is `Copy` and
/// can be moved into key handlers and tasks.
#[derive(Clone, Copy)]
struct Loop {
    pid: i64,
    since: StoredValue<i64>,
    project: RwSignal<Option<Project>>,
    phase: RwSignal<Phase>,
    shown: RwSignal<Option<Shown>>,
    shown_at: StoredValue<f64>,
    queue: RwSignal<VecDeque<Leased>>,
    exhausted: StoredValue<bool>,
    prefetching: StoredValue<bool>,
    going_back: StoredValue<bool>,
    inflight: RwSignal<Vec<InFlight>>,
    progress: RwSignal<Option<Progress>>,
    status: RwSignal<Option<Status>>,
    zoom: RwSignal<f64>,
    instructions_open: RwSignal<bool>,
    /// The label just chosen, lit for a moment.
    flash: RwSignal<Option<String>>,
    pane: NodeRef<leptos::html::Div>,
    /// Training mode: the right answer after a missed gold item.
    gold_notes: GoldNotes,
}

const MAX_ZOOM: f64 = 8.0;
const MIN_ZOOM: f64 = 0.5;

impl Loop {
    fn new(pid: i64) -> Self {
        Loop {
            pid,
            since: StoredValue::new(0),
            project: RwSignal::new(None),
            phase: RwSignal::new(Phase::Loading),
            shown: RwSignal::new(None),
            shown_at: StoredValue::new(0.0),
            queue: RwSignal::new(VecDeque::new()),
            exhausted: StoredValue::new(false),
            prefetching: StoredValue::new(false),
            going_back: StoredValue::new(false),
            inflight: RwSignal::new(Vec::new()),
            progress: RwSignal::new(None),
            status: RwSignal::new(None),
            zoom: RwSignal::new(1.0),
            instructions_open: RwSignal::new(false),
            flash: RwSignal::new(None),
            pane: NodeRef::new(),
            gold_notes: GoldNotes::new(),
        }
    }

    fn labels(self) -> Vec<LabelDef> {
        self.project.with_untracked(|p| p.as_ref().map(|p| p.labels.clone()).unwrap_or_default())
    }

    /// When a lease handed out now ends, on the browser's clock (the server's clock may differ;
    /// the lease length may not).
    fn lease_end(self) -> f64 {
        let secs = self.project.with_untracked(|p| p.as_ref().map(|p| p.lease_seconds).unwrap_or(600));
        util::now_ms() as f64 + secs as f64 * 1000.0
    }

    fn is_multi(self) -> bool {
        self.project.with_untracked(|p| p.as_ref().map(|p| p.kind == LabelKind::Multi).unwrap_or(false))
    }

    /// Runs once in the browser: the project, then the first item, then the one after it.
    fn start(self) {
        self.since.set_value(util::local_midnight_ms());
        let pid = self.pid;
        spawn_local(async move {
            match api_client::project(pid).await {
                Ok(p) => {
                    let stored = util::storage_get(&instructions_key(pid));
                    let open = match stored.as_deref() {
                        Some("1") => true,
                        Some("0") => false,
                        _ => !p.instructions.trim().is_empty(),
                    };
                    self.instructions_open.set(open);
                    self.project.set(Some(p));
                }
                Err(e) => {
                    self.phase.set(Phase::Failed(e.message));
                    return;
                }
            }
            match api_client::next_item(pid, self.since.get_value(), vec![]).await {
                Ok(n) => {
                    self.progress.set(Some(n.progress));
                    match n.item {
                        Some(item) => {
                            let expires = self.lease_end();
                            self.show(Shown { item, expires, revisit: None, selected: vec![], prelabel: n.prelabel })
                        }
                        None => {
                            self.exhausted.set_value(true);
                            self.phase.set(Phase::Done);
                        }
                    }
                    self.prefetch();
                }
                Err(e) => self.phase.set(Phase::Failed(e.message)),
            }
        });
    }

    /// Every item id the page holds or is still sending, so the next lease is another one.
    fn held_ids(self) -> Vec<i64> {
        let mut ids: Vec<i64> = Vec::new();
        self.shown.with_untracked(|s| {
            if let Some(s) = s {
                if s.revisit.is_none() {
                    ids.push(s.item.id);
                }
            }
        });
        self.queue.with_untracked(|q| ids.extend(q.iter().map(|l| l.item.id)));
        self.inflight.with_untracked(|f| ids.extend(f.iter().map(|f| f.item_id)));
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Leases the item after the current one, unless one is already waiting.
    fn prefetch(self) {
        self.prefetch_inner(false)
    }

    fn prefetch_inner(self, manual_check: bool) {
        if self.prefetching.get_value()
            || self.exhausted.get_value()
            || self.queue.with_untracked(|q| !q.is_empty())
        {
            return;
        }
        self.prefetching.set_value(true);
        let quiet_before = self.inflight.with_untracked(|f| f.is_empty());
        let exclude = self.held_ids();
        spawn_local(async move {
            let result = api_client::next_item(self.pid, self.since.get_value(), exclude).await;
            self.prefetching.set_value(false);
            match result {
                Ok(n) => {
                    // Counts computed while a save was on its way would go backwards.
                    if quiet_before && self.inflight.with_untracked(|f| f.is_empty()) {
                        self.progress.set(Some(n.progress));
                    }
                    match n.item {
                        Some(item) => {
                            let held = self.held_ids();
                            if !held.contains(&item.id) {
                                let expires = self.lease_end();
                                self.queue.update(|q| q.push_back(Leased { item, expires, prelabel: n.prelabel }));
                            }
                        }
                        None => self.exhausted.set_value(true),
                    }
                    let waiting = matches!(self.phase.get_untracked(), Phase::Loading | Phase::Done);
                    if self.shown.with_untracked(|s| s.is_none()) && waiting {
                        self.advance();
                        if manual_check {
                            self.status.set(if self.phase.get_untracked() == Phase::Done {
                                Status::info("Still nothing left for you.")
                            } else {
                                None
                            });
                        }
                    }
                }
                Err(e) if e.is_retryable() => {
                    self.status.set(Status::warn("Connection trouble while fetching the next item; retrying…"));
                    util::sleep_ms(2000).await;
                    self.prefetch();
                }
                Err(e) => {
                    self.status.set(Status::error(format!("Could not fetch the next item: {}", e.message)));
                    if self.shown.with_untracked(|s| s.is_none()) {
                        self.phase.set(Phase::Failed(e.message));
                    }
                }
            }
        });
    }

    fn show(self, s: Shown) {
        self.shown.set(Some(s));
        self.shown_at.set_value(util::perf_now());
        self.zoom.set(1.0);
        self.phase.set(Phase::Working);
        if let Some(pane) = self.pane.get_untracked() {
            pane.set_scroll_top(0);
            pane.set_scroll_left(0);
        }
    }

    /// Shows the next waiting item (or waits for it, or says all is done).
    fn advance(self) {
        // Skip leases that are about to end (the labeler paused for long): the server hands
        // out a fresh item instead of one that may already be someone else's.
        let now = util::now_ms() as f64;
        let next = self
            .queue
            .try_update(|q| {
                while let Some(l) = q.pop_front() {
                    if l.expires - LEASE_MARGIN_MS > now {
                        return Some(l);
                    }
                }
                None
            })
            .flatten();
        match next {
            Some(l) => self.show(Shown { item: l.item, expires: l.expires, revisit: None, selected: vec![], prelabel: l.prelabel }),
            None => {
                self.shown.set(None);
                if self.exhausted.get_value() && !self.prefetching.get_value() {
                    self.phase.set(Phase::Done);
                } else {
                    self.phase.set(Phase::Loading);
                }
            }
        }
        self.prefetch();
    }

    /// A label key or button.
    fn choose(self, name: &str) {
        if self.shown.with_untracked(|s| s.is_none()) {
            return;
        }
        // A short flash on the button, so a key press is seen even as the item changes.
        self.flash.set(Some(name.to_string()));
        let flash = self.flash;
        let n = name.to_string();
        set_timeout(
            move || {
                if flash.get_untracked().as_deref() == Some(n.as_str()) {
                    flash.set(None);
                }
            },
            std::time::Duration::from_millis(160),
        );
        if self.is_multi() {
            self.shown.update(|s| {
                if let Some(s) = s {
                    if let Some(i) = s.selected.iter().position(|l| l == name) {
                        s.selected.remove(i);
                    } else {
                        s.selected.push(name.to_string());
                    }
                }
            });
        } else {
            self.submit(vec![name.to_string()]);
        }
    }

    /// Scrolls the item pane by a fraction of its height (or to an end).
    fn scroll(self, how: Scroll) {
        let Some(p) = self.pane.get_untracked() else { return };
        let h = p.client_height() as f64;
        let top = p.scroll_top() as f64;
        let to = match how {
            Scroll::By(f) => top + f * h,
            Scroll::Line(px) => top + px,
            Scroll::Start => 0.0,
            Scroll::End => p.scroll_height() as f64,
        };
        p.set_scroll_top(to.max(0.0).round() as i32);
    }

    /// Enter with nothing selected: takes the item's pre-label, if one is shown (issue 10).
    /// Returns false when there is none.
    fn accept_prelabel(self) -> bool {
        let Some(labels) = self.shown.with_untracked(|s| {
            s.as_ref().filter(|s| s.revisit.is_none() && s.selected.is_empty()).and_then(|s| s.prelabel.as_ref()).map(|p| p.labels.clone())
        }) else {
            return false;
        };
        self.submit(labels);
        true
    }

    /// Enter in a multi-label project.
    fn submit_selected(self) {
        let Some(s) = self.shown.get_untracked() else { return };
        if s.selected.is_empty() {
            self.status.set(Status::warn("Choose at least one label, then press Enter."));
            return;
        }
        // Submit in the project's label order, whatever order they were toggled in.
        let order = self.labels();
        let mut labels = s.selected.clone();
        labels.sort_by_key(|l| order.iter().position(|d| &d.name == l).unwrap_or(usize::MAX));
        self.submit(labels);
    }

    fn submit(self, labels: Vec<String>) {
        let Some(s) = self.shown.get_untracked() else { return };
        let time_ms = (util::perf_now() - self.shown_at.get_value()).max(0.0).round() as i64;
        let body = SubmitAnnotation {
            item_id: s.item.id,
            labels: labels.clone(),
            time_ms,
            client_id: util::new_client_id(),
        };
        let edit = s.revisit.is_some();
        if edit {
            self.status.set(Status::ok(format!("Changed item {} to {}.", s.item.id, labels.join(", "))));
        } else {
            self.progress.update(|p| {
                if let Some(p) = p {
                    p.mine_today += 1;
                    p.mine_total += 1;
                }
            });
            self.status.set(Status::ok(format!("Item {}: {}", s.item.id, labels.join(", "))));
        }
        self.send(body, edit);
        self.advance();
    }

    /// Saves one submission in the background, retrying with the same `client_id`.
    fn send(self, body: SubmitAnnotation, edit: bool) {
        let entry = InFlight { item_id: body.item_id, client_id: body.client_id.clone(), skip: false };
        self.inflight.update(|f| f.push(entry));
        spawn_local(async move {
            let mut delay = 500u32;
            let outcome = loop {
                match api_client::submit(self.pid, &body).await {
                    Ok(a) => break Ok(a),
                    Err(e) if e.is_retryable() => {
                        self.status.set(Status::warn(format!(
                            "Connection trouble; still saving item {} (nothing is lost)…",
                            body.item_id
                        )));
                        util::sleep_ms(delay).await;
                        delay = (delay * 2).min(10_000);
                    }
                    Err(e) => break Err(e),
                }
            };
            self.inflight.update(|f| f.retain(|x| x.client_id != body.client_id));
            match outcome {
                Ok(a) => {
                    // Training mode, after a miss: the server sends the right answer.
                    if let Some(expected) = a.gold_answer {
                        self.gold_notes.show(body.item_id, body.labels.clone(), expected);
                    }
                    if self.status.with_untracked(|s| s.as_ref().map(|s| s.tone) == Some(Tone::Warn)) {
                        self.status.set(Status::ok(format!("Saved item {}.", body.item_id)));
                    }
                }
                Err(e) => {
                    let what = if edit { "The change to item" } else { "Item" };
                    self.status.set(Status::error(format!("{what} {} was not saved: {}", body.item_id, e.message)));
                }
            }
            if self.inflight.with_untracked(|f| f.iter().all(|x| x.skip)) {
                self.refresh_progress();
            }
            // If everything looked done while this was on its way, look once more.
            if self.phase.get_untracked() == Phase::Done && self.inflight.with_untracked(|f| f.is_empty()) {
                self.check_again(false);
            }
        });
    }

    fn refresh_progress(self) {
        spawn_local(async move {
            if let Ok(p) = api_client::progress(self.pid, self.since.get_value()).await {
                if self.inflight.with_untracked(|f| f.iter().all(|x| x.skip)) {
                    self.progress.set(Some(p));
                }
            }
        });
    }

    fn skip(self) {
        let Some(s) = self.shown.get_untracked() else { return };
        if s.revisit.is_some() {
            // Leaving an earlier answer as it was: back to where the labeler was.
            self.status.set(Status::info("Left unchanged."));
            self.advance();
            return;
        }
        let item_id = s.item.id;
        let client_id = util::new_client_id();
        self.inflight.update(|f| f.push(InFlight { item_id, client_id: client_id.clone(), skip: true }));
        self.status.set(Status::info(format!("Skipped item {item_id}.")));
        self.advance();
        spawn_local(async move {
            let mut tries = 0;
            loop {
                match api_client::skip(self.pid, item_id).await {
                    Ok(()) => break,
                    Err(e) if e.is_retryable() && tries < 5 => {
                        tries += 1;
                        util::sleep_ms(1000 * tries).await;
                    }
                    // The lease runs out by itself; a failed skip loses nothing.
                    Err(_) => break,
                }
            }
            self.inflight.update(|f| f.retain(|x| x.client_id != client_id));
        });
    }

    /// `u` / Backspace: the previous submission (and further back on repeated presses).
    fn go_back(self) {
        if self.going_back.get_value() {
            return;
        }
        self.going_back.set_value(true);
        let before = self.shown.with_untracked(|s| s.as_ref().and_then(|s| s.revisit.as_ref().map(|a| a.id)));
        spawn_local(async move {
            // The latest submission may still be on its way; "previous" must see it.
            for _ in 0..200 {
                if self.inflight.with_untracked(|f| f.iter().all(|x| x.skip)) {
                    break;
                }
                util::sleep_ms(50).await;
            }
            match api_client::previous(self.pid, before).await {
                Ok(Some(p)) => {
                    if let Some(cur) = self.shown.get_untracked() {
                        if cur.revisit.is_none() {
                            // Keep the current item (its lease too) for when the labeler returns.
                            self.queue.update(|q| q.push_front(Leased { item: cur.item, expires: cur.expires, prelabel: cur.prelabel }));
                        }
                    }
                    let labels = p.annotation.labels.clone();
                    self.status.set(Status::info(format!(
                        "Item {} — you chose {}. Press a label to change it, Esc to return.",
                        p.item.id,
                        labels.join(", ")
                    )));
                    self.show(Shown { item: p.item, expires: 0.0, selected: labels, revisit: Some(p.annotation), prelabel: None });
                }
                Ok(None) => {
                    self.status.set(Status::info(if before.is_some() {
                        "There is nothing earlier."
                    } else {
                        "Nothing submitted yet in this project."
                    }));
                }
                Err(e) => self.status.set(Status::api(&e)),
            }
            self.going_back.set_value(false);
        });
    }

    /// Esc while looking at an earlier answer.
    fn leave_revisit(self) {
        if self.shown.with_untracked(|s| s.as_ref().map(|s| s.revisit.is_some()).unwrap_or(false)) {
            self.status.set(Status::info("Left unchanged."));
            self.advance();
        }
    }

    /// Asks once more whether anything is left (items leased to others come back when their
    /// leases run out). The "All done" screen stays up meanwhile, so nothing flickers.
    fn check_again(self, manual: bool) {
        self.exhausted.set_value(false);
        if manual {
            self.status.set(Status::info("Checking…"));
        }
        self.prefetch_inner(manual);
    }

    fn toggle_instructions(self) {
        let open = !self.instructions_open.get_untracked();
        self.instructions_open.set(open);
        util::storage_set(&instructions_key(self.pid), if open { "1" } else { "0" });
    }

    fn zoom_by(self, f: f64) {
        self.zoom_to(self.zoom.get_untracked() * f, None);
    }

    /// Zooms so that the point under `anchor` (pane coordinates; default: the pane's centre)
    /// stays where it is.
    fn zoom_to(self, z: f64, anchor: Option<(f64, f64)>) {
        let old = self.zoom.get_untracked();
        let new = z.clamp(MIN_ZOOM, MAX_ZOOM);
        if (new - old).abs() < 1e-9 {
            return;
        }
        let pane = self.pane.get_untracked();
        let before = pane.as_ref().map(|p| {
            (p.scroll_left() as f64, p.scroll_top() as f64, p.client_width() as f64, p.client_height() as f64)
        });
        self.zoom.set(new);
        if let (Some(p), Some((sl, st, cw, ch))) = (pane, before) {
            let (ax, ay) = anchor.unwrap_or((cw / 2.0, ch / 2.0));
            let r = new / old;
            let (x, y) = ((sl + ax) * r - ax, (st + ay) * r - ay);
            request_animation_frame(move || {
                p.set_scroll_left(x.max(0.0).round() as i32);
                p.set_scroll_top(y.max(0.0).round() as i32);
            });
        }
    }

    fn on_key(self, ev: &web_sys::KeyboardEvent) {
        if util::typing_in_field(ev) {
            return;
        }
        let key = ev.key();
        let repeat = ev.repeat();
        let is_image = self.shown.with_untracked(|s| s.as_ref().map(|s| s.item.kind == ItemKind::Image).unwrap_or(false));

        // A label's own key wins over the page's commands.
        if self.shown.with_untracked(|s| s.is_some()) {
            let labels = self.labels();
            let hit = labels
                .iter()
                .find(|l| l.key == key)
                .or_else(|| labels.iter().find(|l| l.key.to_lowercase() == key.to_lowercase()));
            if let Some(l) = hit {
                ev.prevent_default();
                if !repeat {
                    self.choose(&l.name);
                }
                return;
            }
        }
        let handled = match key.as_str() {
            // Enter takes the pre-label on screen (in a multi-label project only while no
            // label is toggled on: then Enter submits the selection, as before).
            "Enter" if self.shown.with_untracked(|s| s.as_ref().is_some_and(|s| s.prelabel.is_some() && s.selected.is_empty() && s.revisit.is_none())) => {
                if !repeat {
                    self.accept_prelabel();
                }
                true
            }
            "Enter" if self.is_multi() && self.shown.with_untracked(|s| s.is_some()) => {
                if !repeat {
                    self.submit_selected();
                }
                true
            }
            "s" | "S" => {
                if !repeat {
                    self.skip();
                }
                true
            }
            "u" | "U" | "Backspace" => {
                if !repeat {
                    self.go_back();
                }
                true
            }
            "Escape" => {
                // A training note first; the next Esc leaves an earlier answer.
                if !self.gold_notes.dismiss() {
                    self.leave_revisit();
                }
                true
            }
            // The item pane scrolls from the keyboard wherever focus is.
            "ArrowDown" => {
                self.scroll(Scroll::Line(48.0));
                true
            }
            "ArrowUp" => {
                self.scroll(Scroll::Line(-48.0));
                true
            }
            "PageDown" => {
                self.scroll(Scroll::By(0.9));
                true
            }
            "PageUp" => {
                self.scroll(Scroll::By(-0.9));
                true
            }
            " " if !on_control(ev) => {
                self.scroll(Scroll::By(if ev.shift_key() { -0.9 } else { 0.9 }));
                true
            }
            "Home" => {
                self.scroll(Scroll::Start);
                true
            }
            "End" => {
                self.scroll(Scroll::End);
                true
            }
            "?" => {
                self.toggle_instructions();
                true
            }
            "+" | "=" if is_image => {
                self.zoom_by(1.25);
                true
            }
            "-" | "_" if is_image => {
                self.zoom_by(1.0 / 1.25);
                true
            }
            "0" if is_image => {
                self.zoom_to(1.0, None);
                true
            }
            "r" | "R" if self.phase.get_untracked() == Phase::Done => {
                self.check_again(true);
                true
            }
            _ => false,
        };
        if handled {
            ev.prevent_default();
        }
    }
}

#[derive(Clone, Copy)]
enum Scroll {
    /// A fraction of the pane's height.
    By(f64),
    /// Pixels.
    Line(f64),
    Start,
    End,
}

/// True when the key press goes to a button or link (Space activates those).
fn on_control(ev: &web_sys::KeyboardEvent) -> bool {
    use wasm_bindgen::JsCast;
    ev.target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .map(|el| matches!(el.tag_name().to_ascii_uppercase().as_str(), "BUTTON" | "A" | "SUMMARY"))
        .unwrap_or(false)
}

fn instructions_key(pid: i64) -> String {
    format!("mirrorset.instructions.{pid}")
}

#[component]
fn Labeler(pid: i64) -> impl IntoView {
    let lp = Loop::new(pid);

    Effect::new(move |_| lp.start());

    let keys = window_event_listener(leptos::ev::keydown, move |ev| lp.on_key(&ev));
    let unload = util::guard_unload(move || lp.inflight.with_untracked(|f| f.iter().any(|x| !x.skip)));
    on_cleanup(move || {
        keys.remove();
        unload.remove();
    });

    let project_name = move || {
        lp.project.with(|p| match p {
            Some(p) => p.name.clone().into_any(),
            None => view! { <Skeleton width="10em"/> }.into_any(),
        })
    };

    view! {
        <div class="label-page">
            <header class="label-head">
                <a class="label-project" href=format!("/projects/{pid}")>{project_name}</a>
                <ProgressHeader lp/>
            </header>
            <div class="label-body" class:with-instructions=move || lp.instructions_open.get()>
                <section class="item-area" aria-label="Item">
                    <ItemHeader lp/>
                    <div class="item-pane" node_ref=lp.pane tabindex="-1">
                        <ItemContent lp/>
                    </div>
                </section>
                <Show when=move || lp.instructions_open.get()>
                    <Instructions lp/>
                </Show>
            </div>
            <LabelBar lp/>
            <GoldNoteView notes=lp.gold_notes/>
            <Preloads lp/>
        </div>
    }
    .into_any()
}

#[component]
fn ProgressHeader(lp: Loop) -> impl IntoView {
    let p = move |f: fn(&Progress) -> i64| lp.progress.with(|p| p.as_ref().map(f));
    let num = move |f: fn(&Progress) -> i64| move || p(f).map(fmt_count).unwrap_or_else(|| "–".into());
    let done = Signal::derive(move || p(|p| p.done).unwrap_or(0));
    let total = Signal::derive(move || p(|p| p.total).unwrap_or(0));
    let saving = move || lp.inflight.with(|f| f.iter().filter(|x| !x.skip).count());
    view! {
        <div class="label-progress">
            <span class="stat"><span class="stat-label">"today"</span> <span class="stat-value num">{num(|p| p.mine_today)}</span></span>
            <span class="stat"><span class="stat-label">"mine"</span> <span class="stat-value num">{num(|p| p.mine_total)}</span></span>
            <span class="stat stat-project">
                <span class="stat-label">"project"</span>
                <span class="stat-value num">{num(|p| p.done)} " / " {num(|p| p.total)}</span>
                <ProgressBar done total/>
            </span>
            <span class="saving" class:is-on=move || { saving() > 0 } aria-live="polite">
                {move || if saving() > 0 { format!("saving {}…", saving()) } else { String::new() }}
            </span>
        </div>
    }
    .into_any()
}

#[component]
fn ItemHeader(lp: Loop) -> impl IntoView {
    let line = move || {
        lp.shown.with(|s| {
            let Some(s) = s else { return ().into_any() };
            let id = format!("#{}", s.item.id);
            let ext = s.item.external_id.clone().map(|e| format!("· {e}"));
            let meta = s
                .item
                .meta
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    view! { <span class="meta-pair"><span class="meta-key">{k.clone()}</span> " " <span class="meta-val">{v}</span></span> }
                })
                .collect_view();
            let revisit = s.revisit.is_some();
            let image = s.item.kind == ItemKind::Image;
            view! {
                {revisit.then(|| view! { <span class="revisit-badge">"earlier answer"</span> })}
                <span class="item-id num">{id}</span>
                <span class="item-ext">{ext}</span>
                <span class="item-meta">{meta}</span>
                {image.then(|| view! {
                    <span class="zoom-hint">
                        "zoom " <kbd class="kbd kbd-small">"+"</kbd> " " <kbd class="kbd kbd-small">"−"</kbd>
                        " " <kbd class="kbd kbd-small">"0"</kbd> " or click"
                    </span>
                })}
            }
            .into_any()
        })
    };
    view! { <div class="item-head" class:is-revisit=move || lp.shown.with(|s| s.as_ref().is_some_and(|s| s.revisit.is_some()))>{line}</div> }.into_any()
}

#[component]
fn ItemContent(lp: Loop) -> impl IntoView {
    // The pane's size, for fitting images; follows window resizes.
    let pane_size = RwSignal::new((0.0f64, 0.0f64));
    let measure = move || {
        if let Some(p) = lp.pane.get_untracked() {
            pane_size.set((p.client_width() as f64, p.client_height() as f64));
        }
    };
    Effect::new(move |_| {
        lp.pane.track();
        lp.instructions_open.track();
        request_animation_frame(measure);
    });
    let resize = window_event_listener(leptos::ev::resize, move |_| measure());
    on_cleanup(move || resize.remove());

    // Natural image size: from the item, else from the loaded image.
    let natural = RwSignal::new(None::<(f64, f64)>);
    Effect::new(move |_| {
        let n = lp.shown.with(|s| {
            s.as_ref().and_then(|s| match (s.item.width, s.item.height) {
                (Some(w), Some(h)) if w > 0 && h > 0 => Some((w as f64, h as f64)),
                _ => None,
            })
        });
        natural.set(n);
    });

    // Only a different item rebuilds the content (not toggling labels on this one).
    let item = Memo::new(move |_| lp.shown.with(|s| s.as_ref().map(|s| s.item.clone())));
    move || {
        let phase = lp.phase.get();
        match phase {
            Phase::Failed(msg) => view! {
                <div class="pane-message">
                    <p class="error-text">{msg}</p>
                    <p><a class="btn" href="/">"Back to projects"</a></p>
                </div>
            }
            .into_any(),
            Phase::Done => view! { <AllDone lp/> }.into_any(),
            Phase::Loading => view! {
                <div class="item-text item-placeholder" aria-busy="true">
                    <Skeleton width="90%"/><br/><Skeleton width="75%"/><br/><Skeleton width="82%"/>
                </div>
            }
            .into_any(),
            Phase::Working => {
                match item.get() {
                    None => ().into_any(),
                    Some(item) if item.kind == ItemKind::Image => {
                        let src = item.image_url.clone().unwrap_or_else(|| format!("/api/items/{}/image", item.id));
                        let size = move || {
                            let (pw, ph) = pane_size.get();
                            let (nw, nh) = natural.get()?;
                            if pw <= 0.0 || ph <= 0.0 {
                                return None;
                            }
                            let pad = 32.0;
                            let fit = ((pw - pad) / nw).min((ph - pad) / nh).max(0.01);
                            let s = fit * lp.zoom.get();
                            Some((nw * s, nh * s))
                        };
                        view! {
                            <div class="image-stage" class:is-zoomed=move || { lp.zoom.get() > 1.0 }>
                                <img
                                    class="item-image"
                                    src=src
                                    alt=format!("Item {}", item.id)
                                    style:width=move || size().map(|(w, _)| format!("{w:.0}px")).unwrap_or_default()
                                    style:height=move || size().map(|(_, h)| format!("{h:.0}px")).unwrap_or_default()
                                    on:load=move |ev| {
                                        use wasm_bindgen::JsCast;
                                        if natural.get_untracked().is_none() {
                                            if let Some(img) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlImageElement>().ok()) {
                                                let (w, h) = (img.natural_width() as f64, img.natural_height() as f64);
                                                if w > 0.0 && h > 0.0 {
                                                    natural.set(Some((w, h)));
                                                }
                                            }
                                        }
                                    }
                                    on:click=move |ev| {
                                        let anchor = lp.pane.get_untracked().map(|p| {
                                            let r = p.get_bounding_client_rect();
                                            (ev.client_x() as f64 - r.left(), ev.client_y() as f64 - r.top())
                                        });
                                        let z = if lp.zoom.get_untracked() > 1.0 { 1.0 } else { 2.0 };
                                        lp.zoom_to(z, anchor);
                                    }
                                />
                            </div>
                        }
                        .into_any()
                    }
                    Some(item) => view! {
                        <div class="item-text">{item.text.clone().unwrap_or_default()}</div>
                    }
                    .into_any(),
                }
            }
        }
    }
}

#[component]
fn AllDone(lp: Loop) -> impl IntoView {
    let empty = move || lp.progress.with(|p| p.as_ref().is_some_and(|p| p.total == 0));
    let n = move |f: fn(&Progress) -> i64| lp.progress.with(|p| p.as_ref().map(f).map(fmt_count).unwrap_or_else(|| "–".into()));
    view! {
        <div class="all-done" role="status">
            <div class="all-done-mark" aria-hidden="true">"✓"</div>
            <h2>{move || if empty() { "No items yet" } else { "All done" }}</h2>
            <p>
                {move || if empty() {
                    "This project has no items. A lead can import some on the project page."
                } else {
                    "Nothing is left for you in this project right now."
                }}
            </p>
            <dl class="done-counts">
                <div><dt>"today"</dt><dd class="num">{move || n(|p| p.mine_today)}</dd></div>
                <div><dt>"mine in all"</dt><dd class="num">{move || n(|p| p.mine_total)}</dd></div>
                <div><dt>"project done"</dt><dd class="num">{move || n(|p| p.done)} " / " {move || n(|p| p.total)}</dd></div>
            </dl>
            <div class="button-row center">
                <button class="btn" on:click=move |_| lp.check_again(true)>"Check again " <Kbd k="r"/></button>
                <button class="btn" on:click=move |_| lp.go_back()>"Go back " <Kbd k="u"/></button>
                <a class="btn btn-quiet" href=format!("/projects/{}", lp.pid)>"Project overview"</a>
            </div>
        </div>
    }
    .into_any()
}

#[component]
fn Instructions(lp: Loop) -> impl IntoView {
    let html = move || {
        lp.project.with(|p| {
            let src = p.as_ref().map(|p| p.instructions.as_str()).unwrap_or("");
            if src.trim().is_empty() {
                "<p class=\"muted\">This project has no instructions.</p>".to_string()
            } else {
                markdown::render(src)
            }
        })
    };
    view! {
        <aside class="instructions" aria-label="Instructions">
            <div class="instructions-head">
                <h2>"Instructions"</h2>
                <button class="btn btn-quiet btn-small" on:click=move |_| lp.toggle_instructions()>
                    "Hide " <Kbd k="?"/>
                </button>
            </div>
            <div class="instructions-body markdown" inner_html=html></div>
        </aside>
    }
    .into_any()
}

#[component]
fn LabelBar(lp: Loop) -> impl IntoView {
    let multi = move || lp.project.with(|p| p.as_ref().map(|p| p.kind == LabelKind::Multi).unwrap_or(false));
    let labels = move || lp.project.with(|p| p.as_ref().map(|p| p.labels.clone()).unwrap_or_default());
    let active = move || lp.shown.with(|s| s.is_some());
    let revisit = move || lp.shown.with(|s| s.as_ref().is_some_and(|s| s.revisit.is_some()));
    let is_selected = move |name: &str| lp.shown.with(|s| s.as_ref().is_some_and(|s| s.selected.iter().any(|l| l == name)));
    let loading = move || lp.project.with(|p| p.is_none());

    view! {
        <footer class="label-bar">
            <PrelabelHint
                prelabel=Signal::derive(move || lp.shown.with(|s| s.as_ref().and_then(|s| s.prelabel.clone())))
                on_accept=Callback::new(move |_| { lp.accept_prelabel(); })
            />
            <div class="label-buttons" role="group" aria-label="Labels">
                <Show when=loading>
                    <span class="label-btn label-btn-placeholder" aria-hidden="true"></span>
                    <span class="label-btn label-btn-placeholder" aria-hidden="true"></span>
                    <span class="label-btn label-btn-placeholder" aria-hidden="true"></span>
                </Show>
                <For each=labels key=|l| (l.name.clone(), l.key.clone(), l.color.clone()) let:l>
                    {
                        let name = l.name.clone();
                        let name2 = l.name.clone();
                        let name3 = l.name.clone();
                        let name4 = l.name.clone();
                        view! {
                            <button
                                class="label-btn"
                                class:is-selected=move || is_selected(&name)
                                class:is-flash=move || lp.flash.with(|f| f.as_deref() == Some(name4.as_str()))
                                // Through the CSSOM (not a `style` attribute, which the CSP refuses).
                                style=("--label-color", l.color.clone())
                                aria-pressed=move || is_selected(&name2).to_string()
                                disabled=move || !active()
                                on:click=move |_| lp.choose(&name3)
                            >
                                <kbd class="kbd">{l.key.clone()}</kbd>
                                <span class="label-name">{l.name.clone()}</span>
                            </button>
                        }
                    }
                </For>
                <Show when=multi>
                    <button class="btn btn-primary submit-btn" disabled=move || !active() on:click=move |_| lp.submit_selected()>
                        "Submit " <Kbd k="⏎"/>
                    </button>
                </Show>
            </div>
            <div class="label-actions">
                <StatusLine status=lp.status/>
                <button class="btn btn-quiet" disabled=move || !active() on:click=move |_| lp.skip()>
                    {move || if revisit() { "Return " } else { "Skip " }}
                    {move || if revisit() { view! { <Kbd k="Esc"/> } } else { view! { <Kbd k="s"/> } }}
                </button>
                <button class="btn btn-quiet" on:click=move |_| lp.go_back()>"Back " <Kbd k="u"/></button>
                <button class="btn btn-quiet" aria-pressed=move || lp.instructions_open.get().to_string() on:click=move |_| lp.toggle_instructions()>
                    "Instructions " <Kbd k="?"/>
                </button>
            </div>
        </footer>
    }
    .into_any()
}

/// The queued image items, loading out of sight so they appear at once.
#[component]
fn Preloads(lp: Loop) -> impl IntoView {
    let urls = move || {
        lp.queue.with(|q| {
            q.iter()
                .map(|l| &l.item)
                .filter(|i| i.kind == ItemKind::Image)
                .map(|i| i.image_url.clone().unwrap_or_else(|| format!("/api/items/{}/image", i.id)))
                .collect::<Vec<_>>()
        })
    };
    view! {
        <div class="preload" aria-hidden="true">
            <For each=urls key=|u| u.clone() let:u>
                <img src=u alt=""/>
            </For>
        </div>
    }
    .into_any()
}
