//! The side panels of the review view: every labeler's answer, the consensus, gold and final
//! label, why the item is queued, earlier decisions, and the item's history. Each takes the
//! item as it is and draws nothing that moves when it changes (fixed rows, placeholders).
use leptos::prelude::*;

use crate::api_types::{AuditEntry, FinalSource, LabelDef, ReviewItem, ReviewReason};
use crate::components::Skeleton;
use crate::util;

use super::state::fmt_seconds;

/// Label names as chips in their label colours (the name is always written: colour is never
/// the only carrier of meaning).
#[component]
pub fn LabelChips(labels: Vec<String>, defs: Vec<LabelDef>) -> impl IntoView {
    labels
        .into_iter()
        .map(|l| {
            let color = defs.iter().find(|d| d.name == l).map(|d| d.color.clone()).unwrap_or_else(|| "#888888".into());
            view! { <span class="label-chip" style=("--label-color", color)>{l}</span> }
        })
        .collect_view()
}

#[component]
pub fn AnswersPanel(item: ReviewItem, defs: Vec<LabelDef>) -> impl IntoView {
    let rows = item
        .answers
        .into_iter()
        .map(|a| {
            let defs = defs.clone();
            view! {
                <tr>
                    <td class="who">{a.username}</td>
                    <td><LabelChips labels=a.labels defs/></td>
                    <td class="num muted">{fmt_seconds(a.time_ms)}</td>
                    <td class="num muted">{util::fmt_datetime(a.updated_at)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="review-section" aria-label="Answers">
            <h3>"Answers " <span class="muted num">{format!("{} of {}", item.label_count, item.k)}</span></h3>
            <table class="table table-compact answers">
                <thead><tr><th>"labeler"</th><th>"labels"</th><th class="num">"time"</th><th class="num">"when"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </section>
    }
}

#[component]
pub fn VerdictPanel(item: ReviewItem, defs: Vec<LabelDef>) -> impl IntoView {
    let consensus = match item.consensus.clone() {
        Some(c) => view! {
            <LabelChips labels=c.labels defs=defs.clone()/>
            <span class="muted num">{format!(" posterior {:.2} · {} · {} labels", c.posterior, c.method.replace('_', "-"), c.n_labels)}</span>
        }
        .into_any(),
        None => view! { <span class="muted">"not computed yet"</span> }.into_any(),
    };
    let gold = match item.gold.clone() {
        Some(g) => view! { <LabelChips labels=g defs=defs.clone()/> }.into_any(),
        None => view! { <span class="muted">"not a gold item"</span> }.into_any(),
    };
    let source = item.final_label.source;
    let provenance = item.final_label.provenance();
    let fin = match item.final_label.labels.clone() {
        Some(l) => view! { <LabelChips labels=l defs=defs.clone()/> }.into_any(),
        None => view! { <span class="muted">"none yet"</span> }.into_any(),
    };
    // `auto:<source>` names the pre-label source the final label was taken from.
    let source_name = match source {
        FinalSource::None => String::new(),
        _ => provenance,
    };
    view! {
        <section class="review-section verdict" aria-label="Consensus, gold and final label">
            <dl class="verdict-list">
                <div><dt>"consensus"</dt><dd>{consensus}</dd></div>
                <div><dt>"gold"</dt><dd>{gold}</dd></div>
                <div><dt>"final"</dt><dd>{fin} <span class="muted">{source_name}</span></dd></div>
            </dl>
        </section>
    }
}

/// "labels differ", "posterior 0.55 < 0.80", "gold miss by ann", or a feeder's reason.
pub fn reason_text(r: &ReviewReason) -> String {
    let num = |k: &str| r.detail.get(k).and_then(|v| v.as_f64());
    match r.reason.as_str() {
        "labels_differ" => "labels differ".into(),
        "low_posterior" => match (num("posterior"), num("threshold")) {
            (Some(p), Some(t)) => format!("posterior {p:.2} < {t:.2}"),
            _ => "low posterior".into(),
        },
        "gold_miss" => format!("gold miss by {}", r.labeler.as_deref().unwrap_or("a labeler")),
        "audit" => "random audit".into(),
        other => other.replace('_', " "),
    }
}

#[component]
pub fn ReasonsLine(reasons: Vec<ReviewReason>) -> impl IntoView {
    if reasons.is_empty() {
        return view! { <span class="muted">"in no queue"</span> }.into_any();
    }
    reasons
        .iter()
        .map(|r| view! { <span class="reason"><span class="reason-queue">{r.queue.replace('_', " ")}</span> " " {reason_text(r)}</span> })
        .collect_view()
        .into_any()
}

#[component]
pub fn DecisionsPanel(item: ReviewItem, defs: Vec<LabelDef>) -> impl IntoView {
    if item.decisions.is_empty() {
        return ().into_any();
    }
    let rows = item
        .decisions
        .into_iter()
        .rev()
        .map(|d| {
            let outcome = d.gold_outcome.map(|g| format!(" · {}", g.as_str().replace('_', " "))).unwrap_or_default();
            view! {
                <li>
                    <LabelChips labels=d.labels defs=defs.clone()/>
                    <span class="muted">{format!(" {} · {}{outcome}", d.reviewer, util::fmt_datetime(d.created_at))}</span>
                    {(!d.note.is_empty()).then(|| view! { <div class="note-text">{d.note.clone()}</div> })}
                </li>
            }
        })
        .collect_view();
    view! {
        <section class="review-section" aria-label="Decisions">
            <h3>"Decisions"</h3>
            <ul class="plain-list">{rows}</ul>
        </section>
    }
    .into_any()
}

fn compact(v: &Option<serde_json::Value>) -> String {
    match v {
        None => "–".into(),
        Some(v) => v.to_string(),
    }
}

#[component]
pub fn HistoryPanel(entries: Vec<AuditEntry>) -> impl IntoView {
    let rows = entries
        .into_iter()
        .rev()
        .map(|e| {
            view! {
                <li>
                    <div>
                        <span class="num muted">{util::fmt_datetime(e.at)}</span> " "
                        <strong>{e.actor.clone().unwrap_or_else(|| "command line".into())}</strong> " "
                        {e.action.as_str().replace('_', " ")}
                        {e.user.clone().filter(|u| Some(u) != e.actor.as_ref()).map(|u| format!(" ({u})"))}
                    </div>
                    <div class="history-change mono">{format!("{} → {}", compact(&e.before), compact(&e.after))}</div>
                </li>
            }
        })
        .collect_view();
    view! {
        <section class="review-section" aria-label="History">
            <h3>"History"</h3>
            <ul class="plain-list history">{rows}</ul>
        </section>
    }
}

/// The panels' shape while the item loads, so nothing jumps when it arrives.
#[component]
pub fn PanelsPlaceholder() -> impl IntoView {
    view! {
        <section class="review-section" aria-busy="true">
            <h3>"Answers"</h3>
            <Skeleton width="90%"/><br/><Skeleton width="75%"/><br/><Skeleton width="82%"/>
        </section>
    }
}
