//! How many rows the next insert transaction of an import takes.
//!
//! Each transaction of an import writes every index page it touched to the WAL at its commit.
//! Two of the items' indexes take rows at random places (the content hash's uniqueness and the
//! random stream order's rank), so a transaction of r rows dirties about r pages of each:
//! with 100-row transactions a 1,000,000-item import wrote every such page again and again
//! (5,800 items/s on this machine's SQLite; the same rows in 20,000-row transactions: 3.5×
//! faster, and faster still as transactions grow). But on SQLite every transaction holds the
//! one writer that labelers' submissions queue for, so long transactions are only fair when
//! nobody else is waiting.
//!
//! The rule: while labelers compete (a labeling job went through the writer in the last
//! `QUIET`), transactions stay at `MIN_ROWS`, a few milliseconds
//! each, as before. Labelers pause between keys, so "none since the last transaction" would
//! not mean "nobody labels": the window is seconds. When nobody competes, each transaction
//! grows towards the number of rows that fits `BUDGET` at the rate the last one achieved (at
//! most doubling, so one slow measurement cannot jump far), up to `MAX_ROWS`. A labeler who
//! starts during a long transaction does not wait for the rest of it: the transaction ends
//! after the statement in flight (`store::items::insert_chunk`), and the next ones are short.
//!
//! Any other write that starts waiting ends a long transaction early as well (a lead's
//! settings, a review), but only for its turn: it does not keep the next ones short.
//!
//! Why two seconds and not less: a transaction rewrites every index page it touched, and at a
//! million items most pages of the two random indexes are touched by any large transaction, so
//! fewer, larger transactions write less. A 1,000,000-item import on this machine, earlier:
//! 31.8 s of insertion with 250 ms and 50,000 rows (119 transactions), 23.7–26.5 s with 1 s and
//! 100,000 rows (30–33), 24.0 s with 2 s and 200,000 (20: no better then). Once the statements
//! ran on the raw handle and beside validation (sessions 18–19), the commits weighed more: 21.6 /
//! 23.7 s with 1 s, 19.1 / 20.9 s with 2 s and 200,000 rows, 18.7 / 20.5 s with 4 s and 400,000
//! (docs/bench.md, session 19).
use std::time::Duration;

/// Rows per transaction while other writes compete for SQLite's writer: holds it a few ms.
pub const MIN_ROWS: usize = 100;
/// The longest transaction when nobody competes: bounds the memory of the rows held for it
/// (a row of the bench's, ~0.5 KiB in memory: ~110 MiB).
pub const MAX_ROWS: usize = 200_000;
/// How long one transaction may hold the writer when nobody else is waiting (a write that
/// starts waiting ends it early).
pub const BUDGET: Duration = Duration::from_millis(2_000);
/// How long after the last competing write transactions stay short.
pub const QUIET: Duration = Duration::from_secs(10);

/// What happened around the last transaction of an import.
#[derive(Clone, Copy, Debug)]
pub struct LastChunk {
    pub rows: usize,
    pub elapsed: Duration,
    /// Time since a labeling write last went through the writer; `None`: not since the import
    /// started.
    pub since_competition: Option<Duration>,
}

/// The row count of the next transaction (see the module's comment).
pub fn next_chunk_rows(last: Option<LastChunk>) -> usize {
    let Some(last) = last else { return MIN_ROWS };
    if last.since_competition.is_some_and(|d| d < QUIET) {
        return MIN_ROWS;
    }
    let secs = last.elapsed.as_secs_f64().max(1e-4);
    let fits = (last.rows as f64 * BUDGET.as_secs_f64() / secs) as usize;
    fits.min(last.rows.saturating_mul(2)).clamp(MIN_ROWS, MAX_ROWS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last(rows: usize, ms: u64, contended: bool) -> Option<LastChunk> {
        let since_competition = contended.then_some(Duration::ZERO);
        Some(LastChunk { rows, elapsed: Duration::from_millis(ms), since_competition })
    }

    #[test]
    fn an_import_starts_short() {
        assert_eq!(next_chunk_rows(None), MIN_ROWS);
    }

    #[test]
    fn without_competition_transactions_double_until_they_fill_the_budget() {
        // 100 rows in 2 ms: 12,500 would fit, but one step at most doubles.
        assert_eq!(next_chunk_rows(last(100, 2, false)), 200);
        // 20,000 rows in 1,600 ms: 25,000 fit the 2 s budget.
        assert_eq!(next_chunk_rows(last(20_000, 1_600, false)), 25_000);
        // Slower than the budget: shrink to what fits.
        assert_eq!(next_chunk_rows(last(20_000, 8_000, false)), 5_000);
        // Never past the cap, never below the floor.
        assert_eq!(next_chunk_rows(last(MAX_ROWS, 1, false)), MAX_ROWS);
        assert_eq!(next_chunk_rows(last(MIN_ROWS, 60_000, false)), MIN_ROWS);
    }

    #[test]
    fn any_competing_write_brings_transactions_back_to_the_floor_for_a_while() {
        assert_eq!(next_chunk_rows(last(40_000, 100, true)), MIN_ROWS);
        let after = |secs| Some(LastChunk { rows: 100, elapsed: Duration::from_millis(2), since_competition: Some(Duration::from_secs(secs)) });
        // A labeler who paused 3 s between keys still counts as labeling.
        assert_eq!(next_chunk_rows(after(3)), MIN_ROWS);
        assert_eq!(next_chunk_rows(after(QUIET.as_secs() + 1)), 200);
    }

    #[test]
    fn growth_from_the_floor_reaches_the_cap_in_a_few_steps() {
        let mut rows = next_chunk_rows(None);
        let mut steps = 0;
        while rows < MAX_ROWS {
            // A fast store: 400,000 rows/s.
            let ms = (rows as u64 * 1_000 / 400_000).max(1);
            rows = next_chunk_rows(last(rows, ms, false));
            steps += 1;
            assert!(steps < 20, "stuck at {rows}");
        }
        assert!(steps <= 11, "{steps} steps");
    }
}
