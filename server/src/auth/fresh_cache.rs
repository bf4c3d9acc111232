//! Answers read from the database, reused for a second.
//!
//! Every authenticated request needs who is calling: a bearer token's owner, or a cookie's
//! session record and its user. Those answers almost never change, but reading them on every
//! request was a large share of the server's work under 50 labelers (docs/bench.md, sessions 24
//! and 26). A `FreshCache` keeps an answer for `FRESH_FOR`, under two rules that keep
//! revocation honest:
//! - a change made by this process drops what was read before it: either one key
//!   (`forget`, when the code that changes it knows the key: a session saved or deleted) or
//!   every answer (the caller's count of changes moved: `store::users::account_changes`, when
//!   it does not: a user disabled, whose tokens are many). So on the instance that made a
//!   change, it takes effect at the next request;
//! - a change made elsewhere (another instance on the same PostgreSQL database, the CLI on the
//!   same SQLite file) takes effect within `FRESH_FOR`, when the answer is read again.
//!
//! Only answers found are remembered (an unknown credential is read every time: it must work
//! the moment it is created, and guessing must not fill memory). At most `CAPACITY` keys are
//! kept; past it, stale answers are dropped, and if that is not enough, all of them.
use std::borrow::Borrow;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an answer read from the database is reused.
pub const FRESH_FOR: Duration = Duration::from_secs(1);

/// At most this many keys are remembered.
const CAPACITY: usize = 10_000;

struct Remembered<V> {
    value: V,
    read_at: Instant,
    /// The caller's count of changes before the read.
    changes: u64,
}

impl<V> Remembered<V> {
    fn is_fresh(&self, changes: u64, now: Instant) -> bool {
        self.changes == changes && now.saturating_duration_since(self.read_at) < FRESH_FOR
    }
}

struct Entries<K, V> {
    by_key: HashMap<K, Remembered<V>>,
    /// How many times `forget` ran: a read that began before a `forget` is not remembered.
    forgets: u64,
}

pub struct FreshCache<K, V> {
    entries: Mutex<Entries<K, V>>,
}

impl<K, V> Default for FreshCache<K, V> {
    fn default() -> Self {
        FreshCache { entries: Mutex::new(Entries { by_key: HashMap::new(), forgets: 0 }) }
    }
}

impl<K, V> FreshCache<K, V> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Entries<K, V>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<K, V> std::fmt::Debug for FreshCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FreshCache").field("keys", &self.lock().by_key.len()).finish()
    }
}

/// What the cache knew when a read began; `remember` keeps the read's answer only if nothing
/// changed since.
#[derive(Clone, Copy, Debug)]
pub struct BeforeRead {
    changes: u64,
    forgets: u64,
}

impl<K: Eq + Hash, V: Clone> FreshCache<K, V> {
    /// The answer for `key`: from memory when read less than `FRESH_FOR` ago and `changes`
    /// (the caller's count of changes, taken now) has not moved since, otherwise from `read`,
    /// remembered when found.
    pub async fn get_or_read<Q, E, F>(&self, key: &Q, changes: impl Fn() -> u64, read: F) -> Result<Option<V>, E>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        F: Future<Output = Result<Option<V>, E>>,
    {
        // Taken before the read: a change that commits while the read runs makes the answer
        // stale, never the other way round.
        let before = self.before_read(changes());
        if let Some(value) = self.recall(key, before.changes, Instant::now()) {
            return Ok(Some(value));
        }
        let value = read.await?;
        if let Some(value) = &value {
            self.remember(key, value.clone(), before, Instant::now());
        }
        Ok(value)
    }

    /// Drops `key`'s answer, and keeps out the answer of any read already under way. Call it
    /// after the change is written (a read that starts after this sees the change).
    pub fn forget<Q: Hash + Eq + ?Sized>(&self, key: &Q)
    where
        K: Borrow<Q>,
    {
        let mut entries = self.lock();
        entries.by_key.remove(key);
        entries.forgets += 1;
    }

    fn before_read(&self, changes: u64) -> BeforeRead {
        BeforeRead { changes, forgets: self.lock().forgets }
    }

    fn recall<Q: Hash + Eq + ?Sized>(&self, key: &Q, changes: u64, now: Instant) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let entries = self.lock();
        let r = entries.by_key.get(key)?;
        r.is_fresh(changes, now).then(|| r.value.clone())
    }

    fn remember<Q: Hash + Eq + ToOwned<Owned = K> + ?Sized>(&self, key: &Q, value: V, before: BeforeRead, now: Instant)
    where
        K: Borrow<Q>,
    {
        let mut entries = self.lock();
        if entries.forgets != before.forgets {
            return;
        }
        let by_key = &mut entries.by_key;
        if by_key.len() >= CAPACITY && !by_key.contains_key(key) {
            by_key.retain(|_, r| r.is_fresh(before.changes, now));
            if by_key.len() >= CAPACITY {
                by_key.clear();
            }
        }
        by_key.insert(key.to_owned(), Remembered { value, read_at: now, changes: before.changes });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Cache = FreshCache<String, &'static str>;

    fn before(cache: &Cache, changes: u64) -> BeforeRead {
        cache.before_read(changes)
    }

    fn len(cache: &Cache) -> usize {
        cache.lock().by_key.len()
    }

    #[test]
    fn an_answer_is_recalled_for_a_second_and_no_longer() {
        let cache = Cache::default();
        let t0 = Instant::now();
        let h = "h";
        assert!(cache.recall(h, 0, t0).is_none(), "nothing is known before a read");
        cache.remember(h, "lead", before(&cache, 0), t0);
        assert_eq!(cache.recall(h, 0, t0 + FRESH_FOR - Duration::from_millis(1)), Some("lead"));
        assert!(cache.recall(h, 0, t0 + FRESH_FOR).is_none(), "read again after FRESH_FOR");
        assert!(cache.recall("other", 0, t0).is_none(), "another key is not this one");
    }

    #[test]
    fn a_change_counted_by_the_caller_drops_every_answer_read_before_it() {
        let cache = Cache::default();
        let t0 = Instant::now();
        let (h, g) = ("h", "g");
        cache.remember(h, "lead", before(&cache, 4), t0);
        cache.remember(g, "labeler", before(&cache, 4), t0);
        assert_eq!(cache.recall(h, 4, t0), Some("lead"));
        assert!(cache.recall(h, 5, t0).is_none() && cache.recall(g, 5, t0).is_none(), "one change since the reads");
        // Read again after the change: remembered under the new count.
        cache.remember(h, "labeler", before(&cache, 5), t0);
        assert_eq!(cache.recall(h, 5, t0), Some("labeler"));
    }

    #[test]
    fn forgetting_a_key_drops_it_and_keeps_out_a_read_already_under_way() {
        let cache = Cache::default();
        let t0 = Instant::now();
        let (h, g) = ("h", "g");
        cache.remember(h, "signed in", before(&cache, 0), t0);
        cache.remember(g, "other session", before(&cache, 0), t0);
        // A read of h began (it will see the old record), then h was saved and forgotten.
        let under_way = before(&cache, 0);
        cache.forget(h);
        assert!(cache.recall(h, 0, t0).is_none(), "forgotten");
        assert_eq!(cache.recall(g, 0, t0), Some("other session"), "other keys stay");
        cache.remember(h, "old record", under_way, t0);
        assert!(cache.recall(h, 0, t0).is_none(), "a read from before the change is not kept");
        cache.remember(h, "new record", before(&cache, 0), t0);
        assert_eq!(cache.recall(h, 0, t0), Some("new record"));
    }

    #[tokio::test]
    async fn only_found_answers_are_remembered() {
        let cache = Cache::default();
        let h = "h";
        assert_eq!(cache.get_or_read(h, || 0, async { Ok::<_, ()>(None) }).await, Ok(None));
        assert_eq!(cache.get_or_read(h, || 0, async { Ok::<_, ()>(Some("found")) }).await, Ok(Some("found")));
        // A read that would fail is not awaited: the answer comes from memory.
        assert_eq!(cache.get_or_read(h, || 0, async { Err::<Option<&str>, ()>(()) }).await, Ok(Some("found")));
        assert_eq!(cache.get_or_read(h, || 1, async { Err::<Option<&str>, ()>(()) }).await, Err(()), "a change: read again");
    }

    #[test]
    fn a_full_cache_drops_its_stale_answers_first_then_everything() {
        let cache = Cache::default();
        let t0 = Instant::now();
        let b = before(&cache, 0);
        for i in 0..CAPACITY - 1 {
            cache.remember(format!("old{i}").as_str(), "labeler", b, t0);
        }
        cache.remember("fresh", "labeler", b, t0 + FRESH_FOR);
        assert_eq!(len(&cache), CAPACITY);
        // Full: the old ones are stale a second later, so they go and the fresh one stays.
        let t1 = t0 + FRESH_FOR + Duration::from_millis(10);
        cache.remember("new", "labeler", b, t1);
        assert_eq!(len(&cache), 2);
        assert!(cache.recall("fresh", 0, t1).is_some() && cache.recall("new", 0, t1).is_some());
        // Full of fresh answers: all of them go.
        for i in 0..CAPACITY - 2 {
            cache.remember(format!("f{i}").as_str(), "labeler", b, t1);
        }
        cache.remember("last", "labeler", b, t1);
        assert_eq!(len(&cache), 1);
        assert!(cache.recall("last", 0, t1).is_some());
    }
}
