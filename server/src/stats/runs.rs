//! Variable-length runs of values (an item's ratings, an item's answers) stored once per
//! distinct run, each item naming its run by number.
//!
//! A project's items repeat a small set of runs: three labelers of a handful choosing among a
//! few labels give a few hundred distinct rating runs over a million items. Stored per item,
//! those runs were most of a consensus refresh's memory (8 bytes a rating in the ratings, 12 an
//! answer in the dataset, plus the offsets); stored once each, an item costs the 4 bytes of its
//! run's number. When every item's run differs, the pool holds what the per-item arrays held,
//! plus those 4 bytes an item. Interning needs a table of the distinct runs while the pool is
//! built (4 bytes and a control byte a run), dropped when it is finished.
use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;

/// The distinct runs: run `r` is `values[starts[r]..starts[r + 1]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPool<T> {
    starts: Vec<u32>,
    values: Vec<T>,
}

impl<T> RunPool<T> {
    /// Run `r`'s values.
    pub fn get(&self, r: u32) -> &[T] {
        &self.values[self.starts[r as usize] as usize..self.starts[r as usize + 1] as usize]
    }

    /// How many distinct runs there are.
    pub fn len(&self) -> usize {
        self.starts.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Builds a [`RunPool`], numbering each distinct run in order of first appearance.
pub struct RunInterner<T> {
    pool: RunPool<T>,
    table: HashTable<u32>,
    hasher: std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher>,
}

impl<T: Hash + Eq + Copy> Default for RunInterner<T> {
    fn default() -> Self {
        RunInterner { pool: RunPool { starts: vec![0], values: Vec::new() }, table: HashTable::new(), hasher: Default::default() }
    }
}

impl<T: Hash + Eq + Copy> RunInterner<T> {
    /// The number of `run`, added to the pool if it is new.
    pub fn intern(&mut self, run: &[T]) -> u32 {
        let RunInterner { pool, table, hasher } = self;
        let hash = hasher.hash_one(run);
        if let Some(&r) = table.find(hash, |&r| pool.get(r) == run) {
            return r;
        }
        let r = u32::try_from(pool.len()).expect("fewer than 2^32 distinct runs");
        pool.values.extend_from_slice(run);
        pool.starts.push(u32::try_from(pool.values.len()).expect("fewer than 2^32 values in distinct runs"));
        table.insert_unique(hash, r, |&r| hasher.hash_one(pool.get(r)));
        r
    }

    /// The pool, without the table (and without spare capacity: it is kept for a whole refresh).
    pub fn finish(self) -> RunPool<T> {
        let mut pool = self.pool;
        pool.starts.shrink_to_fit();
        pool.values.shrink_to_fit();
        pool
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_runs_get_one_number_and_distinct_runs_keep_their_values() {
        let mut interner = RunInterner::default();
        let runs: [&[u32]; 6] = [&[1, 2, 3], &[], &[1, 2], &[1, 2, 3], &[], &[3, 2, 1]];
        let numbers: Vec<u32> = runs.iter().map(|r| interner.intern(r)).collect();
        assert_eq!(numbers, vec![0, 1, 2, 0, 1, 3], "numbered in order of first appearance");
        let pool = interner.finish();
        assert_eq!(pool.len(), 4);
        for (run, &r) in runs.iter().zip(&numbers) {
            assert_eq!(pool.get(r), *run);
        }
    }

    #[test]
    fn many_distinct_runs_all_come_back() {
        // Enough runs for the table to grow several times (and hash collisions to be resolved
        // by comparing values, not by the hash alone).
        let mut interner = RunInterner::default();
        let run = |i: u32| [(i % 7, i % 11), (i / 77, 0)];
        let numbers: Vec<u32> = (0..50_000).map(|i| interner.intern(&run(i))).collect();
        let pool = interner.finish();
        for i in 0..50_000u32 {
            assert_eq!(pool.get(numbers[i as usize]), &run(i));
        }
        // (i % 7, i % 11, i / 77) repeats only where i does.
        assert_eq!(pool.len(), 50_000);
    }
}
