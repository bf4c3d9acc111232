//! API tokens: only a hash of each secret is stored.
use app::api_types::ApiToken;

use super::{now_ms, Db};
use crate::error::AppResult;
use crate::{on_read, on_write};

pub async fn create_token(db: &Db, user_id: i64, name: &str, token_hash: &str) -> AppResult<ApiToken> {
    let now = now_ms();
    let (id,): (i64,) = on_write!(db, pool => sqlx::query_as(
        "INSERT INTO api_tokens (user_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(user_id)
    .bind(name)
    .bind(token_hash)
    .bind(now)
    .fetch_one(pool)
    .await?);
    Ok(ApiToken { id, name: name.to_string(), created_at: now, last_used_at: None })
}

pub async fn list_tokens(db: &Db, user_id: i64) -> AppResult<Vec<ApiToken>> {
    let rows: Vec<(i64, String, i64, Option<i64>)> = on_read!(db, pool => sqlx::query_as(
        "SELECT id, name, created_at, last_used_at FROM api_tokens WHERE user_id = $1 ORDER BY id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?);
    Ok(rows
        .into_iter()
        .map(|(id, name, created_at, last_used_at)| ApiToken { id, name, created_at, last_used_at })
        .collect())
}

pub async fn delete_token(db: &Db, user_id: i64, token_id: i64) -> AppResult<bool> {
    let done = on_write!(db, pool => sqlx::query("DELETE FROM api_tokens WHERE id = $1 AND user_id = $2")
        .bind(token_id)
        .bind(user_id)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(done > 0)
}

/// The owner of the token with this hash. `last_used_at` is refreshed at most once a minute,
/// so scripts hammering the API don't turn every read into a write.
pub async fn user_for_token(db: &Db, token_hash: &str) -> AppResult<Option<i64>> {
    let row: Option<(i64, i64, Option<i64>)> = on_read!(db, pool => sqlx::query_as(
        "SELECT id, user_id, last_used_at FROM api_tokens WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(pool)
    .await?);
    let Some((token_id, user_id, last_used)) = row else { return Ok(None) };
    let now = now_ms();
    if last_used.is_none_or(|t| now - t > 60_000) {
        on_write!(db, pool => sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(token_id)
            .execute(pool)
            .await?
            .rows_affected());
    }
    Ok(Some(user_id))
}
