//! The review pages' state, apart from the views: plain data with methods, tested without a
//! browser.
use std::collections::{HashSet, VecDeque};

use crate::api_types::{GoldAction, LabelKind, ReviewItem};

/// The filters of a queue, as in the page's and the API's query string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueFilters {
    pub pair: Option<String>,
    pub slice: Option<String>,
    pub label: Option<String>,
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay; `,` and `:` too, so
/// `pair=ann,bob` and `slice=region:eu` stay readable in the address bar).
pub fn encode_query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b',' | b':' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl QueueFilters {
    /// `pair=..&slice=..&label=..` with the filters that are set ("" when none).
    pub fn query(&self) -> String {
        [("pair", &self.pair), ("slice", &self.slice), ("label", &self.label)]
            .into_iter()
            .filter_map(|(k, v)| v.as_deref().filter(|v| !v.trim().is_empty()).map(|v| format!("{k}={}", encode_query_value(v.trim()))))
            .collect::<Vec<_>>()
            .join("&")
    }

    pub fn is_empty(&self) -> bool {
        self.query().is_empty()
    }
}

/// The ids of a queue still to show, page after page, in the order the API gives them (item
/// id, or rank for the label-error queue). Keyset paging: the next page starts at the page's
/// `next_after`, an opaque cursor (not an item id: a ranked page is not in id order); decided
/// items leave the queue, skipped ones are not shown again in this pass.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Worklist {
    pending: VecDeque<i64>,
    seen: HashSet<i64>,
    after: i64,
    /// No page is left to fetch.
    pub exhausted: bool,
}

impl Worklist {
    /// A list of exactly these items (one item's page).
    pub fn fixed(ids: &[i64]) -> Worklist {
        let mut w = Worklist { exhausted: true, ..Default::default() };
        for id in ids {
            if w.seen.insert(*id) {
                w.pending.push_back(*id);
            }
        }
        w
    }

    /// Adds a fetched page; `next_after` None means it was the last.
    pub fn add_page(&mut self, ids: &[i64], next_after: Option<i64>) {
        for id in ids {
            if self.seen.insert(*id) {
                self.pending.push_back(*id);
            }
        }
        match next_after {
            Some(a) => self.after = a,
            None => self.exhausted = true,
        }
    }

    /// Where the next page starts.
    pub fn after(&self) -> i64 {
        self.after
    }

    pub fn pop(&mut self) -> Option<i64> {
        self.pending.pop_front()
    }

    pub fn peek(&self) -> Option<i64> {
        self.pending.front().copied()
    }

    /// Puts an item back in front (going back to an earlier item keeps the current one).
    pub fn push_front(&mut self, id: i64) {
        self.pending.push_front(id);
    }

    /// Fetch another page while fewer than two items wait, so the next item is always ready.
    pub fn wants_more(&self) -> bool {
        !self.exhausted && self.pending.len() < 2
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// What `Enter` confirms: the consensus of the item, if it has one.
pub fn enter_choice(item: &ReviewItem) -> Option<Vec<String>> {
    item.consensus.as_ref().map(|c| c.labels.clone()).filter(|l| !l.is_empty())
}

/// The gold action a decision carries: from the gold-miss queue, choosing the gold answer says
/// the labeler was wrong, and any other answer corrects the gold answer. Elsewhere, none.
pub fn gold_action(queue: &str, item: &ReviewItem, labels: &[String]) -> Option<GoldAction> {
    let gold = item.gold.as_ref()?;
    if queue != "gold_miss" {
        return None;
    }
    let same = gold.len() == labels.len() && gold.iter().all(|g| labels.contains(g));
    Some(if same { GoldAction::LabelerWrong } else { GoldAction::GoldCorrected })
}

/// Multi-label: toggles a label in the selection, kept in the project's label order.
pub fn toggle(selected: &mut Vec<String>, label: &str, order: &[String]) {
    if let Some(i) = selected.iter().position(|l| l == label) {
        selected.remove(i);
    } else {
        selected.push(label.to_string());
    }
    selected.sort_by_key(|l| order.iter().position(|o| o == l).unwrap_or(usize::MAX));
}

/// True when a label key decides at once (single-label projects); multi-label keys toggle.
pub fn key_decides(kind: LabelKind) -> bool {
    kind == LabelKind::Single
}

/// Seconds, short: "3.2 s", "41 s", "2 min".
pub fn fmt_seconds(ms: i64) -> String {
    let s = ms as f64 / 1000.0;
    if s < 10.0 {
        format!("{s:.1} s")
    } else if s < 120.0 {
        format!("{s:.0} s")
    } else {
        format!("{:.0} min", s / 60.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api_types::{FinalLabel, FinalSource, ItemKind, ItemView, ReviewConsensus};

    fn item(gold: Option<&[&str]>, consensus: Option<&[&str]>) -> ReviewItem {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        ReviewItem {
            item: ItemView { id: 1, external_id: None, kind: ItemKind::Text, text: None, image_url: None, width: None, height: None, meta: Default::default() },
            label_count: 2,
            k: 2,
            answers: vec![],
            consensus: consensus.map(|c| ReviewConsensus { labels: v(c), posterior: 0.5, method: "majority".into(), n_labels: 2, computed_at: 0 }),
            gold: gold.map(v),
            decisions: vec![],
            final_label: FinalLabel { labels: None, source: FinalSource::None, auto_source: None },
            reasons: vec![],
            history: vec![],
        }
    }

    #[test]
    fn filters_make_a_query() {
        let f = QueueFilters { pair: Some("ann,bob".into()), slice: Some("region:eu west".into()), label: Some(" ".into()) };
        assert_eq!(f.query(), "pair=ann,bob&slice=region:eu%20west");
        assert!(QueueFilters::default().is_empty());
        assert_eq!(encode_query_value("a&b=c/é"), "a%26b%3Dc%2F%C3%A9");
    }

    #[test]
    fn worklist_pages_and_dedupes() {
        let mut w = Worklist::default();
        assert!(w.wants_more());
        w.add_page(&[3, 5], Some(5));
        assert_eq!((w.after(), w.len(), w.wants_more()), (5, 2, false));
        assert_eq!(w.pop(), Some(3));
        assert!(w.wants_more());
        w.add_page(&[5, 8], None);
        assert_eq!((w.pop(), w.pop(), w.pop()), (Some(5), Some(8), None));
        assert!(w.exhausted && !w.wants_more());
        w.push_front(3);
        assert_eq!(w.peek(), Some(3));
        // A ranked queue: items out of id order, the cursor is whatever the API returned.
        let mut r = Worklist::default();
        let cursor = (2i64 << 32) + 2; // rank 2, item 2
        r.add_page(&[9, 2], Some(cursor));
        assert_eq!(r.after(), cursor);
        r.add_page(&[4], None);
        assert_eq!((r.pop(), r.pop(), r.pop()), (Some(9), Some(2), Some(4)));
        let f = Worklist::fixed(&[7, 7]);
        assert_eq!((f.len(), f.exhausted), (1, true));
    }

    #[test]
    fn gold_miss_choices() {
        let g = item(Some(&["pos"]), None);
        assert_eq!(gold_action("gold_miss", &g, &["pos".into()]), Some(GoldAction::LabelerWrong));
        assert_eq!(gold_action("gold_miss", &g, &["neg".into()]), Some(GoldAction::GoldCorrected));
        assert_eq!(gold_action("audit", &g, &["neg".into()]), None);
        assert_eq!(gold_action("gold_miss", &item(None, None), &["neg".into()]), None);
    }

    #[test]
    fn enter_confirms_the_consensus() {
        assert_eq!(enter_choice(&item(None, Some(&["neg"]))), Some(vec!["neg".to_string()]));
        assert_eq!(enter_choice(&item(None, None)), None);
    }

    #[test]
    fn toggling_keeps_label_order() {
        let order = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let mut s = vec![];
        toggle(&mut s, "c", &order);
        toggle(&mut s, "a", &order);
        assert_eq!(s, ["a", "c"]);
        toggle(&mut s, "c", &order);
        assert_eq!(s, ["a"]);
    }

    #[test]
    fn seconds() {
        assert_eq!(fmt_seconds(3200), "3.2 s");
        assert_eq!(fmt_seconds(41_000), "41 s");
        assert_eq!(fmt_seconds(180_000), "3 min");
    }
}
