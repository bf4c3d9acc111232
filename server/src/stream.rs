//! A labeler's stream: in which order items are handed out, and when a gold item is mixed in.
//! The SQL that follows these rules is in `store::assignment`; the rules themselves are here,
//! as plain functions, so they can be tested without a database.
//!
//! **Order** (project setting `assignment_order`, see `AssignmentOrder`):
//! - `random`: by `items.rank`, a number in [0, 2^32) fixed at import from a hash of the project
//!   and the item's external id (or, without one, its content hash). Two imports of the same
//!   file into the same project therefore give the same order, and a pool imported sorted (by
//!   source, date, class) is still labeled in a mixed order. Storing the rank costs nothing
//!   per request, unlike `ORDER BY random()`, and an index on it serves the first open item
//!   without sorting. Items imported before migration 0005 got a multiplicative hash of their
//!   id in the same range.
//! - `import`: by item id, the order of the file (what every project did before).
//! - `priority`: `items.priority` descending (a dev-set campaign raises its members), then by
//!   rank as in `random`.
//!
//! **Gold items** (`items.gold` set): items with a known answer, mixed into each labeler's
//! stream at the project's `gold_rate`. On every new hand-out a pseudo-random draw, fixed by
//! (project, labeler, sequence), decides whether it is a gold item the labeler has not seen:
//! `sequence` is the number of items the labeler has answered or holds in the project, so the
//! n-th hand-out of a labeler always draws the same number, whatever other labelers do. Each
//! draw is gold with probability `gold_rate`, so the share of gold items in a stream is
//! `gold_rate` (until the labeler has seen every gold item: then the draw falls through to an
//! ordinary item, so gold never blocks the stream). Gold items stand outside the overlap flow:
//! every labeler may get every gold item, and their answers never count towards an item's k
//! or the project's done count. On the wire they look like any other item.
use sha2::{Digest, Sha256};

/// The first 8 bytes of SHA-256 over `parts` (each prefixed by its length, so that ("ab", "c")
/// and ("a", "bc") differ), as a big-endian u64. SHA-256's output is fixed by its standard, so
/// ranks and draws never change with a crate upgrade or across machines.
fn hash64(parts: &[&[u8]]) -> u64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    let d = h.finalize();
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// An item's place in the `random` order: in [0, 2^32), the range the migration gave existing
/// items, so old and new items interleave instead of one group coming first. The key is the
/// external id when the file gives one, else the content hash: both are the same in every
/// import of the same file, unlike the database id.
pub fn rank(project_id: i64, external_id: Option<&str>, content_hash: &str) -> i64 {
    let key = match external_id {
        Some(id) => [b"id:".as_slice(), id.as_bytes()].concat(),
        None => [b"content:".as_slice(), content_hash.as_bytes()].concat(),
    };
    (hash64(&[b"mirrorset-rank", &project_id.to_le_bytes(), &key]) >> 32) as i64
}

/// Where a labeler starts in the gold items (ordered by rank): a point in [0, 2^32), so that
/// labelers do not all meet the gold items in the same order.
pub fn gold_start(project_id: i64, user_id: i64) -> i64 {
    (hash64(&[b"mirrorset-gold-start", &project_id.to_le_bytes(), &user_id.to_le_bytes()]) >> 32) as i64
}

/// Whether the labeler's hand-out number `sequence` is a gold item: true with probability
/// `rate` (clamped to [0, 1]), fixed by (project, labeler, sequence).
pub fn draws_gold(project_id: i64, user_id: i64, sequence: i64, rate: f64) -> bool {
    if rate.is_nan() || rate <= 0.0 {
        return false;
    }
    let h = hash64(&[
        b"mirrorset-gold-draw",
        &project_id.to_le_bytes(),
        &user_id.to_le_bytes(),
        &sequence.to_le_bytes(),
    ]);
    // The top 53 bits as a uniform number in [0, 1).
    let u = (h >> 11) as f64 / (1u64 << 53) as f64;
    u < rate.min(1.0)
}

/// Whether an answer matches a gold answer: the same set of labels (order does not matter).
pub fn matches_gold(labels: &[String], gold: &[String]) -> bool {
    let mut a: Vec<&str> = labels.iter().map(String::as_str).collect();
    let mut b: Vec<&str> = gold.iter().map(String::as_str).collect();
    a.sort_unstable();
    a.dedup();
    b.sort_unstable();
    b.dedup();
    a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_is_fixed_by_project_and_key() {
        assert_eq!(rank(1, Some("r-1"), "t:aa"), rank(1, Some("r-1"), "t:bb"), "the external id wins");
        assert_ne!(rank(1, Some("r-1"), "t:aa"), rank(2, Some("r-1"), "t:aa"), "each project has its own order");
        assert_ne!(rank(1, None, "t:aa"), rank(1, None, "t:ab"));
        // Pinned (computed independently with Python's hashlib): a change of the hash would
        // reorder the next imports of every project.
        assert_eq!(rank(7, Some("item-42"), "t:ignored"), 1_653_847_685);
        assert_eq!(rank(1, None, "t:abc"), 3_781_458_246);
    }

    #[test]
    fn ranks_are_spread_evenly() {
        // 10,000 keys into 10 buckets of [0, 2^32): each within 4 standard deviations of 1,000.
        let mut buckets = [0i64; 10];
        for i in 0..10_000 {
            let r = rank(3, Some(&format!("k{i}")), "");
            buckets[(r * 10 >> 32) as usize] += 1;
        }
        for b in buckets {
            assert!((880..=1120).contains(&b), "{buckets:?}");
        }
    }

    #[test]
    fn gold_draws_follow_the_rate_and_are_reproducible() {
        for rate in [0.05, 0.2, 0.5] {
            let n = 20_000;
            let hits = (0..n).filter(|&s| draws_gold(1, 9, s, rate)).count() as f64;
            let sd = (n as f64 * rate * (1.0 - rate)).sqrt();
            assert!((hits - n as f64 * rate).abs() < 4.0 * sd, "rate {rate}: {hits} of {n}");
        }
        let a: Vec<bool> = (0..100).map(|s| draws_gold(1, 9, s, 0.3)).collect();
        let b: Vec<bool> = (0..100).map(|s| draws_gold(1, 9, s, 0.3)).collect();
        assert_eq!(a, b);
        assert!((0..1000).all(|s| !draws_gold(1, 9, s, 0.0)));
        assert!((0..1000).all(|s| draws_gold(1, 9, s, 1.0)));
        assert!(!draws_gold(1, 9, 0, f64::NAN));
    }

    #[test]
    fn gold_matches_as_a_set() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(matches_gold(&s(&["a", "b"]), &s(&["b", "a"])));
        assert!(!matches_gold(&s(&["a"]), &s(&["a", "b"])));
        assert!(!matches_gold(&s(&["c"]), &s(&["a"])));
    }
}
