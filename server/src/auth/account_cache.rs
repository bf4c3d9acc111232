//! The owners of the API tokens in use, remembered for a second.
//!
//! Every request with a bearer token needs its owner (role, disabled flag, the token's expiry).
//! Reading it from the database was ~7 % of the server's CPU under 50 labelers (two reads per
//! label; docs/bench.md, session 24), for an answer that almost never changes. So an owner read
//! is reused for `FRESH_FOR`, on two conditions that keep revocation honest:
//! - a change made by this process that can alter an owner (a token deleted, a user's role or
//!   state changed: `store::tokens::owner_changes`) drops every answer read before it, so on
//!   the instance that made the change it takes effect at once, as before;
//! - a change made elsewhere (another instance on the same PostgreSQL database) takes effect
//!   within `FRESH_FOR`, when the answer is read again.
//!
//! Only found tokens are remembered (an unknown token is read every time: it must work the
//! moment it is created, and guessing must not fill memory), and the expiry is compared with
//! the clock on every request, cached or not.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::AppResult;
use crate::store::tokens::{owner_changes, token_owner, TokenOwner};
use crate::store::Db;

/// How long an owner read from the database is reused.
pub const FRESH_FOR: Duration = Duration::from_secs(1);

/// At most this many tokens are remembered; past it, the stale answers are dropped, and if
/// that is not enough, all of them.
const CAPACITY: usize = 10_000;

struct Remembered {
    owner: TokenOwner,
    read_at: Instant,
    /// `owner_changes()` before the read.
    changes: u64,
}

impl Remembered {
    fn is_fresh(&self, changes: u64, now: Instant) -> bool {
        self.changes == changes && now.saturating_duration_since(self.read_at) < FRESH_FOR
    }
}

#[derive(Default)]
pub struct TokenOwners {
    by_hash: Mutex<HashMap<String, Remembered>>,
}

impl TokenOwners {
    /// The owner of the token with this hash, from memory when read less than `FRESH_FOR` ago
    /// and no owner changed since, otherwise from the database.
    pub async fn owner(&self, db: &Db, token_hash: &str) -> AppResult<Option<TokenOwner>> {
        // Taken before the read: a change that commits while the read runs makes the answer
        // stale, never the other way round.
        let changes = owner_changes();
        if let Some(owner) = self.recall(token_hash, changes, Instant::now()) {
            return Ok(Some(owner));
        }
        let owner = token_owner(db, token_hash).await?;
        if let Some(owner) = &owner {
            self.remember(token_hash, owner.clone(), changes, Instant::now());
        }
        Ok(owner)
    }

    fn recall(&self, token_hash: &str, changes: u64, now: Instant) -> Option<TokenOwner> {
        let by_hash = self.by_hash.lock().unwrap_or_else(|p| p.into_inner());
        let r = by_hash.get(token_hash)?;
        r.is_fresh(changes, now).then(|| r.owner.clone())
    }

    fn remember(&self, token_hash: &str, owner: TokenOwner, changes: u64, now: Instant) {
        let mut by_hash = self.by_hash.lock().unwrap_or_else(|p| p.into_inner());
        if by_hash.len() >= CAPACITY && !by_hash.contains_key(token_hash) {
            by_hash.retain(|_, r| r.is_fresh(changes, now));
            if by_hash.len() >= CAPACITY {
                by_hash.clear();
            }
        }
        by_hash.insert(token_hash.to_string(), Remembered { owner, read_at: now, changes });
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_hash.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use app::api_types::{Role, User};

    use super::*;

    fn owner(role: Role) -> TokenOwner {
        let user = User { id: 7, username: "dana".into(), role, created_at: 0, disabled: false };
        TokenOwner { user, expires_at: Some(123) }
    }

    #[test]
    fn an_owner_is_recalled_for_a_second_and_no_longer() {
        let cache = TokenOwners::default();
        let t0 = Instant::now();
        assert!(cache.recall("h", 0, t0).is_none(), "nothing is known before a read");
        cache.remember("h", owner(Role::Lead), 0, t0);
        let hit = cache.recall("h", 0, t0 + FRESH_FOR - Duration::from_millis(1)).expect("fresh");
        assert_eq!((hit.user.id, hit.user.role, hit.expires_at), (7, Role::Lead, Some(123)));
        assert!(cache.recall("h", 0, t0 + FRESH_FOR).is_none(), "read again after FRESH_FOR");
        assert!(cache.recall("other", 0, t0).is_none(), "another token is not this one");
    }

    #[test]
    fn a_change_to_any_owner_drops_what_was_read_before_it() {
        let cache = TokenOwners::default();
        let t0 = Instant::now();
        cache.remember("h", owner(Role::Lead), 4, t0);
        assert!(cache.recall("h", 4, t0).is_some());
        assert!(cache.recall("h", 5, t0).is_none(), "one change since the read");
        // Read again after the change: remembered under the new count.
        cache.remember("h", owner(Role::Labeler), 5, t0);
        assert_eq!(cache.recall("h", 5, t0).map(|o| o.user.role), Some(Role::Labeler));
    }

    #[test]
    fn a_full_cache_drops_its_stale_answers_first_then_everything() {
        let cache = TokenOwners::default();
        let t0 = Instant::now();
        for i in 0..CAPACITY - 1 {
            cache.remember(&format!("old{i}"), owner(Role::Labeler), 0, t0);
        }
        cache.remember("fresh", owner(Role::Labeler), 0, t0 + FRESH_FOR);
        assert_eq!(cache.len(), CAPACITY);
        // Full: the old ones are stale a second later, so they go and the fresh one stays.
        let t1 = t0 + FRESH_FOR + Duration::from_millis(10);
        cache.remember("new", owner(Role::Labeler), 0, t1);
        assert_eq!(cache.len(), 2);
        assert!(cache.recall("fresh", 0, t1).is_some() && cache.recall("new", 0, t1).is_some());
        // Full of fresh answers: all of them go.
        for i in 0..CAPACITY - 2 {
            cache.remember(&format!("f{i}"), owner(Role::Labeler), 0, t1);
        }
        cache.remember("last", owner(Role::Labeler), 0, t1);
        assert_eq!(cache.len(), 1);
        assert!(cache.recall("last", 0, t1).is_some());
    }
}
