//! Which consensus rows a refresh writes: only those whose consensus changed.
//!
//! A refresh recomputes every item's consensus, but between two refreshes a few labels
//! arrive, and most items keep the same consensus. Writing all of them (100,000 rows for a
//! project of 100,000 items) would hold the single SQLite writer for seconds per refresh, which
//! the labelers feel. So the job reads the stored rows, compares, and writes an item's row only
//! when its labels, posterior, method or number of labels differ from the stored one (the
//! first refresh, and a change of method, still write every row), and deletes the rows of
//! items that no longer have labels.
//!
//! Labels, method and number of labels compare exactly; the posterior within
//! [`POSTERIOR_TOLERANCE`]. Under Dawid–Skene one new label moves the model, and with it the
//! posterior of *every* item in its last digits: measured on the bench's project (100,000
//! items × 3 labels), one new label changed all 100,000 posteriors, 34,428 by more than 1e-6,
//! 14,339 by more than 1e-5, and only the relabeled item's by more than 1e-4. Rewriting every
//! row for such digits would undo the point of comparing. So a stored row is always within
//! 1e-4 of the latest computation (exact for majority vote, whose posteriors are vote shares
//! that move in steps far larger) and a row left alone keeps its `computed_at`, which says
//! when its value was last written.
//!
//! The stored rows are compared as they are read ([`Differ`]), in item id order like the
//! computed ones, so a refresh never holds both sets of a million-item project at once.
use std::iter::Peekable;

use crate::store::agreement::ConsensusRow;

/// A stored posterior closer than this to the computed one is left as it is. A hundredth of
/// the smallest step a lead reads or sets (posteriors and review thresholds in hundredths),
/// and no finer than Dawid–Skene's own precision: EM stops when the mean log-likelihood per
/// annotation improves by less than 1e-7, which leaves the posteriors uncertain in digits
/// around this size.
pub const POSTERIOR_TOLERANCE: f64 = 1e-4;

/// Whether a stored row (with its method) holds the computed consensus.
fn unchanged(stored: &ConsensusRow, stored_method: &str, computed: &ConsensusRow, method: &str) -> bool {
    stored_method == method
        && stored.labels == computed.labels
        && stored.n_labels == computed.n_labels
        && (stored.posterior - computed.posterior).abs() <= POSTERIOR_TOLERANCE
}

/// What a refresh writes.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    /// New or changed rows, in the computed order (item id).
    pub write: Vec<ConsensusRow>,
    /// Items whose stored row has no computed counterpart any more, by id.
    pub delete: Vec<i64>,
    /// Computed rows equal to the stored ones, not written.
    pub unchanged: usize,
}

/// Compares the computed rows (all of `method`) with the stored rows and their methods.
pub fn changes(stored: Vec<(ConsensusRow, String)>, computed: Vec<ConsensusRow>, method: &str) -> Changes {
    let mut differ = Differ::new(computed, method);
    for (row, m) in &stored {
        differ.stored(row, m);
    }
    differ.finish()
}

/// [`changes`] with the stored rows handed in one at a time as they are read, in item id
/// order (the computed rows' order too): a merge of the two sorted lists.
pub struct Differ<'a> {
    computed: Peekable<std::vec::IntoIter<ConsensusRow>>,
    method: &'a str,
    out: Changes,
    /// The last stored row's item id: out of order, a row would be taken for deleted.
    last_stored: Option<i64>,
}

impl<'a> Differ<'a> {
    /// `computed`: the refresh's rows, all of `method`, by item id.
    pub fn new(computed: Vec<ConsensusRow>, method: &'a str) -> Differ<'a> {
        debug_assert!(computed.windows(2).all(|w| w[0].item_id < w[1].item_id), "computed rows by item id");
        Differ { computed: computed.into_iter().peekable(), method, out: Changes::default(), last_stored: None }
    }

    /// The next stored row and its method, by item id.
    pub fn stored(&mut self, stored: &ConsensusRow, stored_method: &str) {
        assert!(self.last_stored < Some(stored.item_id), "stored consensus rows must come by item id");
        self.last_stored = Some(stored.item_id);
        // Computed rows before it have no stored row: new.
        while let Some(row) = self.computed.next_if(|r| r.item_id < stored.item_id) {
            self.out.write.push(row);
        }
        match self.computed.next_if(|r| r.item_id == stored.item_id) {
            Some(row) if unchanged(stored, stored_method, &row, self.method) => self.out.unchanged += 1,
            Some(row) => self.out.write.push(row),
            None => self.out.delete.push(stored.item_id),
        }
    }

    pub fn finish(mut self) -> Changes {
        self.out.write.extend(self.computed);
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::super::compute::{compute, Method, Settings};
    use super::super::dataset::tests::{ann, item, users};
    use super::super::dataset::Dataset;
    use super::*;
    use crate::stats::Level;
    use crate::store::agreement::AnnotationRow;

    fn settings(method: Method) -> Settings {
        Settings { project_id: 1, level: Level::Nominal, method, target_alpha: 0.8, skips: Vec::new() }
    }

    /// The consensus rows of these annotations, as the job computes them.
    fn rows(annotations: &[AnnotationRow], method: Method) -> Vec<ConsensusRow> {
        let items: Vec<_> = (1..=6).map(|i| item(i, "{}")).collect();
        let d = Dataset::build(false, &["a".into(), "b".into()], annotations, &items, &users()).unwrap();
        compute(&d, &settings(method), 7).consensus
    }

    /// What the table holds after writing `changes` over `stored`.
    fn apply(stored: &[(ConsensusRow, String)], c: &Changes, method: &str) -> Vec<(ConsensusRow, String)> {
        let mut table: Vec<(ConsensusRow, String)> = stored.iter().filter(|(r, _)| !c.delete.contains(&r.item_id)).cloned().collect();
        for row in &c.write {
            table.retain(|(r, _)| r.item_id != row.item_id);
            table.push((row.clone(), method.to_string()));
        }
        table.sort_by_key(|(r, _)| r.item_id);
        table
    }

    #[test]
    fn the_merge_writes_new_and_changed_rows_in_order_and_deletes_stored_rows_without_a_computed_one() {
        let row = |item_id: i64, labels: &str| ConsensusRow { item_id, labels: labels.into(), posterior: 1.0, n_labels: 2 };
        let computed = vec![row(1, "a"), row(2, "a"), row(4, "b"), row(6, "a"), row(7, "b")];
        let stored = [(row(2, "a"), "majority"), (row(3, "a"), "majority"), (row(4, "a"), "majority")]
            .into_iter()
            .chain([(row(5, "b"), "majority"), (row(6, "a"), "majority")])
            .map(|(r, m)| (r, m.to_string()))
            .collect();
        let c = changes(stored, computed, "majority");
        let ids: Vec<i64> = c.write.iter().map(|r| r.item_id).collect();
        assert_eq!((ids, c.delete, c.unchanged), (vec![1, 4, 7], vec![3, 5], 2));
        assert_eq!(&*c.write[1].labels, "b", "the computed row is written");
    }

    fn first_labels() -> Vec<AnnotationRow> {
        // Items 1..=5, two labels each; items 2 and 4 split.
        let mut a = Vec::new();
        for i in 1..=5 {
            a.push(ann(i, 1, &["a"], 0));
            a.push(ann(i, 2, &[if i % 2 == 0 { "b" } else { "a" }], 0));
        }
        a
    }

    #[test]
    fn a_refresh_writes_only_the_rows_that_changed() {
        for (method, name) in [(Method::Majority, "majority"), (Method::DawidSkene, "dawid_skene")] {
            // The first refresh writes every row.
            let computed = rows(&first_labels(), method);
            let first = changes(Vec::new(), computed.clone(), name);
            assert_eq!((first.write.len(), first.delete.len(), first.unchanged), (5, 0, 0), "{name}");
            let stored = apply(&[], &first, name);

            // A second refresh of the same labels writes nothing.
            let again = changes(stored.clone(), rows(&first_labels(), method), name);
            assert_eq!((again.write.len(), again.delete.len(), again.unchanged), (0, 0, 5), "{name}");

            // One new label: item 2 (a, b) gets u3's b. Exactly the rows whose computed value
            // differs from the stored one are written, and afterwards the table equals a full
            // rewrite.
            let mut more = first_labels();
            more.push(ann(2, 3, &["b"], 0));
            more.sort_by_key(|a| a.item_id); // the store's order: by item, then annotation
            let computed = rows(&more, method);
            let c = changes(stored.clone(), computed.clone(), name);
            let moved = |s: &ConsensusRow, r: &ConsensusRow| {
                s.labels != r.labels || s.n_labels != r.n_labels || (s.posterior - r.posterior).abs() > 1e-4
            };
            let differing: Vec<i64> = computed
                .iter()
                .filter(|r| stored.iter().find(|(s, _)| s.item_id == r.item_id).is_none_or(|(s, _)| moved(s, r)))
                .map(|r| r.item_id)
                .collect();
            assert_eq!(c.write.iter().map(|r| r.item_id).collect::<Vec<_>>(), differing, "{name}");
            assert!(differing.contains(&2), "{name}: item 2 changed");
            assert_eq!(c.unchanged + c.write.len(), 5);
            // Afterwards the table holds every computed row, each posterior within the tolerance.
            let after = apply(&stored, &c, name);
            assert_eq!(after.len(), computed.len());
            for ((s, m), r) in after.iter().zip(&computed) {
                assert!(m == name && s.item_id == r.item_id && !moved(s, r), "{name}: {s:?} vs {r:?}");
            }
            if method == Method::Majority {
                // Majority vote: only item 2's own consensus moved.
                assert_eq!(differing, [2]);
            }
            // And the refresh after that writes nothing.
            let none = changes(after.clone(), rows(&more, method), name);
            assert_eq!((none.write.len(), none.delete.len()), (0, 0), "{name}");
        }
    }

    #[test]
    fn a_new_method_rewrites_every_row_and_unlabeled_items_are_deleted() {
        let stored = apply(&[], &changes(Vec::new(), rows(&first_labels(), Method::Majority), "majority"), "majority");
        // Same labels, posteriors equal under both methods or not: the method column changed.
        let c = changes(stored.clone(), rows(&first_labels(), Method::DawidSkene), "dawid_skene");
        assert_eq!((c.write.len(), c.unchanged), (5, 0));
        // Items 3 and 5 lost their labels (say, their annotations were removed): their rows go.
        let fewer: Vec<AnnotationRow> = first_labels().into_iter().filter(|a| a.item_id != 3 && a.item_id != 5).collect();
        let c = changes(stored.clone(), rows(&fewer, Method::Majority), "majority");
        assert_eq!((c.write.len(), c.delete, c.unchanged), (0, vec![3, 5], 3));
        // Item 6 got labels and item 1 lost them: a write after the last stored row, a deletion
        // before the first computed one.
        let other: Vec<AnnotationRow> =
            first_labels().into_iter().filter(|a| a.item_id != 1).chain([ann(6, 1, &["b"], 0)]).collect();
        let c = changes(stored, rows(&other, Method::Majority), "majority");
        assert_eq!((c.write.iter().map(|r| r.item_id).collect::<Vec<_>>(), c.delete, c.unchanged), (vec![6], vec![1], 4));
    }

    #[test]
    fn posteriors_within_the_tolerance_are_left_alone() {
        let row = |item_id, posterior| ConsensusRow { item_id, labels: r#"["a"]"#.into(), posterior, n_labels: 3 };
        let stored = vec![(row(1, 0.9), "dawid_skene".to_string()), (row(2, 0.9), "dawid_skene".to_string())];
        let c = changes(stored, vec![row(1, 0.9 + 0.5e-4), row(2, 0.9 + 2e-4)], "dawid_skene");
        assert_eq!((c.write, c.unchanged), (vec![row(2, 0.9 + 2e-4)], 1));
    }
}
