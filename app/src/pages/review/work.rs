//! Working a queue (or one item) like labeling: the item, every answer, the consensus and
//! gold; a label key decides (multi-label: keys toggle, Enter decides), `Enter` confirms the
//! consensus, `/` writes a note, `s` passes, `u` goes back, `?` shows the history.
//!
//! How the next item is instant: the page holds the item on screen and the next one, already
//! fetched; a decision shows the next at once and is saved in the background (retried while
//! the connection fails).
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api_client;
use crate::api_types::{LabelKind, Project, ReviewDecisionRequest, ReviewItem};
use crate::components::{label_for_key, Kbd, ItemBody, MetaPairs, Skeleton, Status, StatusLine};
use crate::util;

use super::panels::{AnswersPanel, DecisionsPanel, HistoryPanel, PanelsPlaceholder, ReasonsLine, VerdictPanel};
use super::state::{enter_choice, gold_action, key_decides, toggle, QueueFilters, Worklist};

/// Where the items come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    Queue { name: String, filters: QueueFilters },
    Item(i64),
}

const PAGE: i64 = 50;

#[derive(Clone, Debug, PartialEq)]
enum Phase {
    Loading,
    Working,
    Empty,
    Failed(String),
}

#[derive(Clone, Copy)]
struct Work {
    pid: i64,
    source: StoredValue<Source>,
    project: RwSignal<Option<Project>>,
    list: StoredValue<Worklist>,
    fetching: StoredValue<bool>,
    current: RwSignal<Option<ReviewItem>>,
    ahead: RwSignal<Option<ReviewItem>>,
    back: StoredValue<Vec<i64>>,
    selected: RwSignal<Vec<String>>,
    note: RwSignal<String>,
    phase: RwSignal<Phase>,
    status: RwSignal<Option<Status>>,
    decided: RwSignal<i64>,
    open: RwSignal<Option<i64>>,
    saving: RwSignal<usize>,
    history_open: RwSignal<bool>,
}

impl Work {
    fn queue_name(self) -> String {
        match self.source.get_value() {
            Source::Queue { name, .. } => name,
            // One item opened on its own: decided from the queue it is in, if any.
            Source::Item(_) => self
                .current
                .with_untracked(|c| c.as_ref().and_then(|c| c.reasons.first().map(|r| r.queue.clone())))
                .unwrap_or_else(|| "manual".into()),
        }
    }

    fn start(self) {
        if let Source::Item(id) = self.source.get_value() {
            self.list.set_value(Worklist::fixed(&[id]));
        }
        spawn_local(async move {
            match api_client::project(self.pid).await {
                Ok(p) => self.project.set(Some(p)),
                Err(e) => return self.phase.set(Phase::Failed(e.message)),
            }
            self.fill().await;
            self.advance();
        });
    }

    /// Fetches the next page of the queue when few items wait.
    async fn fill(self) {
        let Source::Queue { name, filters } = self.source.get_value() else { return };
        if !self.list.with_value(|l| l.wants_more()) || self.fetching.get_value() {
            return;
        }
        self.fetching.set_value(true);
        let after = self.list.with_value(|l| l.after());
        match api_client::review_queue_page(self.pid, &name, &filters.query(), after, PAGE).await {
            Ok(page) => {
                let ids: Vec<i64> = page.items.iter().map(|i| i.item_id).collect();
                self.list.update_value(|l| l.add_page(&ids, page.next_after));
                if after == 0 {
                    self.open.set(Some(page.open));
                }
            }
            Err(e) => {
                self.status.set(Status::api(&e));
                if self.current.with_untracked(|c| c.is_none()) {
                    self.phase.set(Phase::Failed(e.message));
                }
            }
        }
        self.fetching.set_value(false);
    }

    /// Shows the next item (the prefetched one when it is the next), then fetches the one after.
    fn advance(self) {
        self.selected.set(vec![]);
        self.note.set(String::new());
        let Some(id) = self.list.try_update_value(|l| l.pop()).flatten() else {
            self.current.set(None);
            self.phase.set(if self.list.with_value(|l| l.exhausted) { Phase::Empty } else { Phase::Loading });
            spawn_local(async move {
                self.fill().await;
                if !self.list.with_value(|l| l.is_empty()) {
                    self.advance();
                } else if self.list.with_value(|l| l.exhausted) {
                    self.phase.set(Phase::Empty);
                }
            });
            return;
        };
        match self.ahead.get_untracked().filter(|a| a.item.id == id) {
            Some(item) => self.show(item),
            None => {
                self.phase.set(Phase::Loading);
                spawn_local(async move {
                    match api_client::review_item(self.pid, id).await {
                        Ok(item) => self.show(item),
                        Err(e) => self.phase.set(Phase::Failed(e.message)),
                    }
                });
            }
        }
        self.prefetch();
    }

    fn show(self, item: ReviewItem) {
        self.ahead.update(|a| {
            if a.as_ref().is_some_and(|a| a.item.id == item.item.id) {
                *a = None;
            }
        });
        self.current.set(Some(item));
        self.phase.set(Phase::Working);
    }

    fn prefetch(self) {
        spawn_local(async move {
            self.fill().await;
            let Some(next) = self.list.with_value(|l| l.peek()) else { return };
            if self.ahead.with_untracked(|a| a.as_ref().is_some_and(|a| a.item.id == next)) {
                return;
            }
            if let Ok(item) = api_client::review_item(self.pid, next).await {
                self.ahead.set(Some(item));
            }
        });
    }

    fn labels_order(self) -> Vec<String> {
        self.project.with_untracked(|p| p.as_ref().map(|p| p.labels.iter().map(|l| l.name.clone()).collect()).unwrap_or_default())
    }

    fn choose(self, name: &str) {
        let kind = self.project.with_untracked(|p| p.as_ref().map(|p| p.kind));
        match kind {
            Some(k) if key_decides(k) => self.decide(vec![name.to_string()]),
            Some(_) => {
                let order = self.labels_order();
                self.selected.update(|s| toggle(s, name, &order));
            }
            None => {}
        }
    }

    /// Enter: the selected labels (multi-label), else the consensus.
    fn confirm(self) {
        let selected = self.selected.get_untracked();
        if !selected.is_empty() {
            return self.decide(selected);
        }
        match self.current.with_untracked(|c| c.as_ref().and_then(enter_choice)) {
            Some(labels) => self.decide(labels),
            None => self.status.set(Status::warn("This item has no consensus yet: choose its label with a label key.")),
        }
    }

    fn decide(self, labels: Vec<String>) {
        let Some(item) = self.current.get_untracked() else { return };
        let queue = self.queue_name();
        let body = ReviewDecisionRequest {
            gold_action: gold_action(&queue, &item, &labels),
            labels: labels.clone(),
            note: self.note.get_untracked(),
            queue,
        };
        let id = item.item.id;
        self.back.update_value(|b| b.push(id));
        self.decided.update(|n| *n += 1);
        self.status.set(Status::ok(format!("Item {id}: {}", labels.join(", "))));
        self.saving.update(|n| *n += 1);
        spawn_local(async move {
            let mut delay = 500u32;
            loop {
                match api_client::review_decide(self.pid, id, &body).await {
                    Ok(_) => break,
                    Err(e) if e.is_retryable() => {
                        self.status.set(Status::warn(format!("Connection trouble; still saving item {id}…")));
                        util::sleep_ms(delay).await;
                        delay = (delay * 2).min(10_000);
                    }
                    Err(e) => {
                        self.status.set(Status::error(format!("Item {id} was not saved: {}", e.message)));
                        break;
                    }
                }
            }
            self.saving.update(|n| *n -= 1);
        });
        self.advance();
    }

    /// `g`: makes the item a gold item whose answer is the selected labels (else the consensus),
    /// or, on a gold item, unmarks it. The view shows the new gold answer at once.
    fn toggle_gold(self) {
        let Some(item) = self.current.get_untracked() else { return };
        let id = item.item.id;
        let labels = if item.gold.is_some() {
            None
        } else {
            let selected = self.selected.get_untracked();
            let chosen = if selected.is_empty() { enter_choice(&item) } else { Some(selected) };
            match chosen {
                Some(l) => Some(l),
                None => {
                    return self.status.set(Status::warn("Choose the gold answer with a label key first, then press g."));
                }
            }
        };
        spawn_local(async move {
            match api_client::set_gold(self.pid, id, labels).await {
                Ok(g) => {
                    self.current.update(|c| {
                        if let Some(c) = c.as_mut().filter(|c| c.item.id == id) {
                            c.gold = g.gold.clone();
                        }
                    });
                    self.status.set(Status::ok(match g.gold {
                        Some(l) => format!("Item {id} is a gold item: {}", l.join(", ")),
                        None => format!("Item {id} is no longer a gold item."),
                    }));
                }
                Err(e) => self.status.set(Status::api(&e)),
            }
        });
    }

    fn pass(self) {
        let Some(id) = self.current.with_untracked(|c| c.as_ref().map(|c| c.item.id)) else { return };
        self.back.update_value(|b| b.push(id));
        self.status.set(Status::info(format!("Passed item {id}; it stays in the queue.")));
        self.advance();
    }

    fn go_back(self) {
        let Some(prev) = self.back.try_update_value(|b| b.pop()).flatten() else {
            return self.status.set(Status::info("There is nothing earlier."));
        };
        if let Some(cur) = self.current.with_untracked(|c| c.as_ref().map(|c| c.item.id)) {
            self.list.update_value(|l| l.push_front(cur));
        }
        self.list.update_value(|l| l.push_front(prev));
        self.advance();
    }

    fn on_key(self, ev: &web_sys::KeyboardEvent) {
        if util::typing_in_field(ev) || ev.repeat() {
            return;
        }
        let key = ev.key();
        if self.phase.get_untracked() == Phase::Working {
            let labels = self.project.with_untracked(|p| p.as_ref().map(|p| p.labels.clone()).unwrap_or_default());
            if let Some(l) = label_for_key(&labels, &key) {
                ev.prevent_default();
                return self.choose(&l.name.clone());
            }
        }
        let handled = match key.as_str() {
            "Enter" => {
                self.confirm();
                true
            }
            "/" => {
                util::focus_id("review-note");
                true
            }
            "s" | "S" => {
                self.pass();
                true
            }
            "u" | "U" | "Backspace" => {
                self.go_back();
                true
            }
            "?" => {
                self.history_open.update(|h| *h = !*h);
                true
            }
            "g" | "G" => {
                self.toggle_gold();
                true
            }
            _ => false,
        };
        if handled {
            ev.prevent_default();
        }
    }
}

#[component]
pub fn Worker(pid: i64, source: Source) -> impl IntoView {
    let title = match &source {
        Source::Queue { name, .. } => name.replace('_', " "),
        Source::Item(id) => format!("item {id}"),
    };
    let filters = match &source {
        Source::Queue { filters, .. } => filters.query().replace('&', " · ").replace('=', " "),
        Source::Item(_) => String::new(),
    };
    let w = Work {
        pid,
        source: StoredValue::new(source),
        project: RwSignal::new(None),
        list: StoredValue::new(Worklist::default()),
        fetching: StoredValue::new(false),
        current: RwSignal::new(None),
        ahead: RwSignal::new(None),
        back: StoredValue::new(Vec::new()),
        selected: RwSignal::new(vec![]),
        note: RwSignal::new(String::new()),
        phase: RwSignal::new(Phase::Loading),
        status: RwSignal::new(None),
        decided: RwSignal::new(0),
        open: RwSignal::new(None),
        saving: RwSignal::new(0),
        history_open: RwSignal::new(false),
    };
    Effect::new(move |_| w.start());
    let keys = window_event_listener(leptos::ev::keydown, move |ev| w.on_key(&ev));
    let unload = util::guard_unload(move || w.saving.get_untracked() > 0);
    on_cleanup(move || {
        keys.remove();
        unload.remove();
    });
    let counts = move || {
        let open = w.open.get().map(|o| (o - w.decided.get()).max(0).to_string()).unwrap_or_else(|| "–".into());
        format!("{open} open · {} decided here", w.decided.get())
    };

    view! {
        <div class="review-page">
            <header class="label-head">
                <a class="label-project" href=format!("/projects/{pid}/review")>"Review"</a>
                <span class="strong">{title}</span>
                <span class="muted">{filters}</span>
                <span class="label-progress num">{counts}</span>
                <span class="saving" class:is-on=move || { w.saving.get() > 0 }>{move || if w.saving.get() > 0 { "saving…" } else { "" }}</span>
            </header>
            <div class="review-body">
                <section class="item-area" aria-label="Item">
                    <div class="item-head">{move || w.current.get().map(|c| view! {
                        <a class="item-id num" href=format!("/projects/{pid}/review/item/{}", c.item.id)>{format!("#{}", c.item.id)}</a>
                        <span class="item-ext">{c.item.external_id.clone()}</span>
                        <span class="item-meta"><MetaPairs item=c.item.clone()/></span>
                        <span class="reasons"><ReasonsLine reasons=c.reasons.clone()/></span>
                    })}</div>
                    <div class="item-pane">{move || match w.phase.get() {
                        Phase::Working => w.current.get().map(|c| view! { <ItemBody item=c.item/> }.into_any()).unwrap_or_else(|| ().into_any()),
                        Phase::Loading => view! { <div class="item-text item-placeholder" aria-busy="true"><Skeleton width="90%"/><br/><Skeleton width="75%"/></div> }.into_any(),
                        Phase::Empty => view! {
                            <div class="all-done" role="status">
                                <div class="all-done-mark" aria-hidden="true">"✓"</div>
                                <h2>"Queue empty"</h2>
                                <p>"Every item here has a decision (or was passed)."</p>
                                <a class="btn" href=format!("/projects/{pid}/review")>"Back to the queues"</a>
                            </div>
                        }.into_any(),
                        Phase::Failed(msg) => view! { <div class="pane-message"><p class="error-text">{msg}</p></div> }.into_any(),
                    }}</div>
                </section>
                <aside class="review-side" aria-label="Answers and decisions">
                    {move || {
                        let defs = w.project.with(|p| p.as_ref().map(|p| p.labels.clone()).unwrap_or_default());
                        match w.current.get() {
                            None => view! { <PanelsPlaceholder/> }.into_any(),
                            Some(c) => view! {
                                <AnswersPanel item=c.clone() defs=defs.clone()/>
                                <VerdictPanel item=c.clone() defs=defs.clone()/>
                                <DecisionsPanel item=c.clone() defs/>
                                <Show when=move || w.history_open.get()>
                                    <HistoryPanel entries=c.history.clone()/>
                                </Show>
                            }.into_any(),
                        }
                    }}
                </aside>
            </div>
            <DecisionBar w/>
        </div>
    }
    .into_any()
}

#[component]
fn DecisionBar(w: Work) -> impl IntoView {
    let labels = move || w.project.with(|p| p.as_ref().map(|p| p.labels.clone()).unwrap_or_default());
    let multi = move || w.project.with(|p| p.as_ref().is_some_and(|p| p.kind == LabelKind::Multi));
    let active = move || w.phase.get() == Phase::Working;
    let is_selected = move |n: &str| w.selected.with(|s| s.iter().any(|l| l == n));
    let consensus = move || w.current.with(|c| c.as_ref().and_then(enter_choice)).map(|l| l.join(", "));
    view! {
        <footer class="label-bar">
            <div class="label-buttons" role="group" aria-label="Final label">
                <For each=labels key=|l| (l.name.clone(), l.key.clone()) let:l>
                    {
                        let (n1, n2, n3) = (l.name.clone(), l.name.clone(), l.name.clone());
                        view! {
                            <button class="label-btn" style=("--label-color", l.color.clone())
                                class:is-selected=move || is_selected(&n1) aria-pressed=move || is_selected(&n2).to_string()
                                disabled=move || !active() on:click=move |_| w.choose(&n3)>
                                <kbd class="kbd">{l.key.clone()}</kbd>
                                <span class="label-name">{l.name.clone()}</span>
                            </button>
                        }
                    }
                </For>
                <button class="btn btn-primary submit-btn"
                    disabled=move || !active() || (consensus().is_none() && w.selected.with(|s| s.is_empty()))
                    on:click=move |_| w.confirm()>
                    {move || if multi() && !w.selected.with(|s| s.is_empty()) {
                        "Decide selected ".to_string()
                    } else {
                        match consensus() { Some(c) => format!("Confirm consensus: {c} "), None => "No consensus yet ".to_string() }
                    }}
                    <Kbd k="⏎"/>
                </button>
            </div>
            <div class="label-actions">
                <input id="review-note" class="input note-input" placeholder="note (optional) — press / to write, Enter to decide"
                    prop:value=move || w.note.get() on:input=move |ev| w.note.set(event_target_value(&ev))
                    on:keydown=move |ev| match ev.key().as_str() {
                        "Enter" => { ev.prevent_default(); w.confirm(); }
                        "Escape" => { use wasm_bindgen::JsCast; if let Some(el) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlElement>().ok()) { let _ = el.blur(); } }
                        _ => {}
                    }/>
                <StatusLine status=w.status/>
                <button class="btn btn-quiet" disabled=move || !active() on:click=move |_| w.toggle_gold()>
                    {move || if w.current.with(|c| c.as_ref().is_some_and(|c| c.gold.is_some())) { "Unmark gold " } else { "Mark gold " }}
                    <Kbd k="g"/>
                </button>
                <button class="btn btn-quiet" disabled=move || !active() on:click=move |_| w.pass()>"Pass " <Kbd k="s"/></button>
                <button class="btn btn-quiet" on:click=move |_| w.go_back()>"Back " <Kbd k="u"/></button>
                <button class="btn btn-quiet" aria-pressed=move || w.history_open.get().to_string()
                    on:click=move |_| w.history_open.update(|h| *h = !*h)>"History " <Kbd k="?"/></button>
            </div>
        </footer>
    }
    .into_any()
}
