//! API tokens: only a hash of each secret is stored.
use app::api_types::{ApiToken, User};

use super::{now_ms, users, Db};
use crate::error::AppResult;
use crate::{on_read, on_write};

pub async fn create_token(
    db: &Db,
    user_id: i64,
    name: &str,
    token_hash: &str,
    expires_at: Option<i64>,
) -> AppResult<ApiToken> {
    let now = now_ms();
    let (id,): (i64,) = on_write!(db, pool => sqlx::query_as(
        "INSERT INTO api_tokens (user_id, name, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)
         RETURNING id",
    )
    .bind(user_id)
    .bind(name)
    .bind(token_hash)
    .bind(now)
    .bind(expires_at)
    .fetch_one(pool)
    .await?);
    Ok(ApiToken { id, name: name.to_string(), created_at: now, last_used_at: None, expires_at })
}

pub async fn list_tokens(db: &Db, user_id: i64) -> AppResult<Vec<ApiToken>> {
    let rows: Vec<(i64, String, i64, Option<i64>, Option<i64>)> = on_read!(db, pool => sqlx::query_as(
        "SELECT id, name, created_at, last_used_at, expires_at FROM api_tokens WHERE user_id = $1 ORDER BY id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?);
    Ok(rows
        .into_iter()
        .map(|(id, name, created_at, last_used_at, expires_at)| ApiToken {
            id,
            name,
            created_at,
            last_used_at,
            expires_at,
        })
        .collect())
}

pub async fn delete_token(db: &Db, user_id: i64, token_id: i64) -> AppResult<bool> {
    let _counted = users::AccountChange::counted_when_done();
    let done = on_write!(db, pool => sqlx::query("DELETE FROM api_tokens WHERE id = $1 AND user_id = $2")
        .bind(token_id)
        .bind(user_id)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(done > 0)
}

/// A token found by its hash, with its owner.
#[derive(Clone, Debug)]
pub struct TokenOwner {
    pub user: User,
    pub expires_at: Option<i64>,
}

/// The token with this hash and its owner (disabled or not: the caller decides). An expired
/// token is returned too, so the caller can say that it expired. `last_used_at` is refreshed
/// at most once a minute, and never for an expired token or a disabled owner, so scripts
/// hammering the API don't turn every read into a write.
pub async fn token_owner(db: &Db, token_hash: &str) -> AppResult<Option<TokenOwner>> {
    let Some((user, token_id, last_used, expires_at)) = users::user_by_token_hash(db, token_hash).await? else {
        return Ok(None);
    };
    let now = now_ms();
    let usable = !user.disabled && expires_at.is_none_or(|t| t > now);
    if usable && last_used.is_none_or(|t| now - t > 60_000) {
        on_write!(db, pool => sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(token_id)
            .execute(pool)
            .await?
            .rows_affected());
    }
    Ok(Some(TokenOwner { user, expires_at }))
}
