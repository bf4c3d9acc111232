//! Whom a credential belongs to, remembered for a second (`fresh_cache`): a bearer token's
//! owner (role, disabled flag, the token's expiry), and a session cookie's user (the same,
//! and the session epoch that a password change moves).
//!
//! Both change only when a token is deleted or a user's role, state or password changes, and
//! the store counts those changes (`store::users::account_changes`): one drops every answer
//! read before it, so on the instance that made it, it takes effect at the next request, and
//! made through another instance or the CLI, within `fresh_cache::FRESH_FOR`. A token's expiry
//! is compared with the clock on every request, remembered or not (`auth::CurrentUser`).
use app::api_types::User;

use super::fresh_cache::FreshCache;
use crate::error::AppResult;
use crate::store::tokens::{token_owner, TokenOwner};
use crate::store::users::{account_changes, get_user_with_hash};
use crate::store::Db;

/// The user a session cookie speaks for, as `auth::CurrentUser` checks it.
#[derive(Clone, Debug)]
pub struct SessionUser {
    pub user: User,
    /// Compared with the epoch the session signed in under (`auth::SESSION_EPOCH_KEY`).
    pub session_epoch: i64,
}

#[derive(Debug, Default)]
pub struct AccountCache {
    token_owners: FreshCache<String, TokenOwner>,
    session_users: FreshCache<i64, SessionUser>,
}

impl AccountCache {
    /// The owner of the token with this hash.
    pub async fn token_owner(&self, db: &Db, token_hash: &str) -> AppResult<Option<TokenOwner>> {
        self.token_owners.get_or_read(token_hash, account_changes, token_owner(db, token_hash)).await
    }

    /// The user a session signed in as (without the password hash, which only a password
    /// change reads, from the database).
    pub async fn session_user(&self, db: &Db, user_id: i64) -> AppResult<Option<SessionUser>> {
        let read = async {
            let account = get_user_with_hash(db, user_id).await?;
            Ok(account.map(|a| SessionUser { user: a.user, session_epoch: a.session_epoch }))
        };
        self.session_users.get_or_read(&user_id, account_changes, read).await
    }
}
