//! Editing a project's labels: rows of name, one key, colour.
use std::sync::atomic::{AtomicU64, Ordering};

use leptos::prelude::*;

use crate::api_types::{key_name, reserved_key, LabelDef, RESERVED_KEYS};

const PALETTE: &[&str] = &[
    "#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563",
];

static NEXT_UID: AtomicU64 = AtomicU64::new(1);

#[derive(Clone, Copy, Debug)]
pub struct LabelRow {
    pub uid: u64,
    pub name: RwSignal<String>,
    pub key: RwSignal<String>,
    pub color: RwSignal<String>,
}

impl LabelRow {
    pub fn new(name: &str, key: &str, color: &str) -> Self {
        LabelRow {
            uid: NEXT_UID.fetch_add(1, Ordering::Relaxed),
            name: RwSignal::new(name.to_string()),
            key: RwSignal::new(key.to_string()),
            color: RwSignal::new(color.to_string()),
        }
    }

    pub fn from_def(d: &LabelDef) -> Self {
        LabelRow::new(&d.name, &d.key, &d.color)
    }
}

/// Two empty rows with suggested keys 1 and 2, for a new project.
pub fn starter_rows() -> Vec<LabelRow> {
    vec![LabelRow::new("", "1", PALETTE[0]), LabelRow::new("", "2", PALETTE[1])]
}

pub fn rows_from(defs: &[LabelDef]) -> Vec<LabelRow> {
    defs.iter().map(LabelRow::from_def).collect()
}

/// The rows as label definitions, or what is wrong with them.
pub fn to_defs(rows: &[LabelRow]) -> Result<Vec<LabelDef>, String> {
    let defs: Vec<LabelDef> = rows
        .iter()
        .map(|r| LabelDef {
            name: r.name.get_untracked().trim().to_string(),
            key: r.key.get_untracked().trim().to_string(),
            color: r.color.get_untracked(),
        })
        .collect();
    validate(&defs)?;
    Ok(defs)
}

pub fn validate(defs: &[LabelDef]) -> Result<(), String> {
    if defs.is_empty() {
        return Err("Add at least one label.".into());
    }
    for (i, d) in defs.iter().enumerate() {
        let n = i + 1;
        if d.name.is_empty() {
            return Err(format!("Label {n} needs a name."));
        }
        if d.key.chars().count() != 1 {
            return Err(format!("Label “{}” needs exactly one key (a single character).", d.name));
        }
        if let Some(what) = reserved_key(&d.key) {
            return Err(format!(
                "Label “{}” cannot use the key {}: it is “{what}” on the labeling page.",
                d.name,
                key_name(&d.key)
            ));
        }
        for e in &defs[..i] {
            if e.name == d.name {
                return Err(format!("Two labels are called “{}”.", d.name));
            }
            if e.key.to_lowercase() == d.key.to_lowercase() {
                return Err(format!("“{}” and “{}” share the key {}.", e.name, d.name, d.key));
            }
        }
    }
    Ok(())
}

/// The keys no label may use, grouped by what they do: "s skip · u go back · + = zoom in · …".
pub fn reserved_keys_hint() -> String {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for (key, what) in RESERVED_KEYS {
        match groups.iter_mut().find(|(w, _)| w == what) {
            Some((_, keys)) => keys.push(key_name(key)),
            None => groups.push((what, vec![key_name(key)])),
        }
    }
    let list: Vec<String> = groups.iter().map(|(what, keys)| format!("{} {what}", keys.join(" "))).collect();
    format!("Keys kept for the labeling page: {}.", list.join(" · "))
}

#[component]
pub fn LabelsEditor(rows: RwSignal<Vec<LabelRow>>, #[prop(into)] id_prefix: String) -> impl IntoView {
    let add = move |_| {
        rows.update(|r| {
            let color = PALETTE[r.len() % PALETTE.len()];
            let key = if r.len() < 9 { (r.len() + 1).to_string() } else { String::new() };
            r.push(LabelRow::new("", &key, color));
        });
    };
    let prefix = StoredValue::new(id_prefix);

    view! {
        <div class="labels-editor">
            <div class="labels-head" aria-hidden="true">
                <span>"Label"</span>
                <span>"Key"</span>
                <span>"Colour"</span>
                <span></span>
            </div>
            <For each=move || rows.get() key=|r| r.uid let:row>
                {
                    let idx = move || rows.with(|rs| rs.iter().position(|r| r.uid == row.uid).unwrap_or(0) + 1);
                    let name_id = format!("{}-name-{}", prefix.get_value(), row.uid);
                    view! {
                        <div class="labels-row">
                            <input
                                id=name_id
                                type="text"
                                class="input"
                                placeholder="name"
                                aria-label=move || format!("Label {} name", idx())
                                bind:value=row.name
                            />
                            <input
                                type="text"
                                class="input input-key"
                                maxlength="1"
                                aria-label=move || format!("Label {} key", idx())
                                bind:value=row.key
                            />
                            <input
                                type="color"
                                class="input-color"
                                aria-label=move || format!("Label {} colour", idx())
                                bind:value=row.color
                            />
                            <button
                                type="button"
                                class="btn btn-quiet btn-icon"
                                aria-label=move || format!("Remove label {}", idx())
                                title="Remove"
                                on:click=move |_| rows.update(|r| r.retain(|x| x.uid != row.uid))
                            >
                                "×"
                            </button>
                        </div>
                    }
                }
            </For>
            <div class="labels-foot">
                <button type="button" class="btn btn-quiet" on:click=add>"+ Add label"</button>
                <span class="hint">{reserved_keys_hint()}</span>
            </div>
        </div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(n: &str, k: &str) -> LabelDef {
        LabelDef { name: n.into(), key: k.into(), color: "#000000".into() }
    }

    #[test]
    fn validation() {
        assert!(validate(&[]).is_err());
        assert!(validate(&[def("a", "1"), def("b", "2")]).is_ok());
        assert!(validate(&[def("", "1")]).is_err());
        assert!(validate(&[def("a", "")]).is_err());
        assert!(validate(&[def("a", "12")]).is_err());
        assert!(validate(&[def("a", "1"), def("a", "2")]).is_err());
        assert!(validate(&[def("a", "x"), def("b", "X")]).is_err());
    }

    /// The editor refuses exactly the keys the server refuses, and its hint names them all:
    /// both read `api_types::RESERVED_KEYS` (the server's side is tested in server/src/projects.rs).
    #[test]
    fn reserved_keys_are_refused_and_listed() {
        let hint = reserved_keys_hint();
        for (key, what) in RESERVED_KEYS {
            let err = validate(&[def("a", key)]).expect_err(key);
            assert!(err.contains(what), "{key:?}: {err}");
            assert!(validate(&[def("a", &key.to_uppercase())]).is_err(), "{key:?} upper case");
            assert!(hint.contains(&format!("{} ", key_name(key))), "{key:?} missing from {hint}");
            assert!(hint.contains(what), "{what:?} missing from {hint}");
        }
        assert_eq!(
            hint,
            "Keys kept for the labeling page: s skip · u go back · ? instructions · + = zoom in · - _ zoom out · 0 reset zoom · Space scroll."
        );
        assert!(validate(&[def("a", "r"), def("b", "1")]).is_ok());
    }
}
