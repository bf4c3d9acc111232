//! Users and project membership. Every account and membership change is appended to the
//! audit log in its own transaction (`store::audit`).
//!
//! The invariant of account changes: at least one enabled admin remains, so nobody can lock
//! everybody out. Every statement that could break it (disabling or demoting an admin) runs in
//! `update_user`'s transaction, which holds the accounts lock: on SQLite the single writer
//! connection, on PostgreSQL a transaction-scoped advisory lock, so two admins disabling each
//! other at the same moment cannot both succeed.
use std::sync::atomic::{AtomicU64, Ordering};

use super::statements::Statements as _;
use app::api_types::{AuditAction, Member, Role, User, UserUpdate};
use serde_json::json;
use sqlx::FromRow;

use super::BeginWrite;
use super::audit::Entry;
use super::{now_ms, Db};
use crate::error::{AppError, AppResult};
use crate::{append_audit, on_read, on_write};

#[derive(FromRow)]
struct UserRow {
    id: i64,
    username: String,
    role: String,
    created_at: i64,
    disabled_at: Option<i64>,
}

/// The columns of `UserRow`, in its order.
const USER_COLUMNS: &str = "id, username, role, created_at, disabled_at";

impl UserRow {
    fn into_user(self) -> User {
        User {
            id: self.id,
            username: self.username,
            // The schema's CHECK constraint allows only the three roles.
            role: Role::parse(&self.role).unwrap_or(Role::Labeler),
            created_at: self.created_at,
            disabled: self.disabled_at.is_some(),
        }
    }
}

/// The owner of the API token with this hash, with the token's (id, last use, expiry): one
/// read, in place (`on_read_statements!`), as every request with a bearer token asks.
pub(super) async fn user_by_token_hash(db: &Db, token_hash: &str) -> AppResult<Option<(User, i64, Option<i64>, Option<i64>)>> {
    let token_hash = token_hash.to_string();
    let row = crate::on_read_statements!(db, s => {
        s.first_row(
            "SELECT t.id AS token_id, t.last_used_at, t.expires_at,
                    u.id, u.username, u.role, u.created_at, u.disabled_at
             FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1",
            vec![token_hash.into()],
        )
        .await?
    });
    let Some(r) = row else { return Ok(None) };
    let user = UserRow {
        id: r.i64("id")?,
        username: r.string("username")?,
        role: r.string("role")?,
        created_at: r.i64("created_at")?,
        disabled_at: r.opt_i64("disabled_at")?,
    };
    Ok(Some((user.into_user(), r.i64("token_id")?, r.opt_i64("last_used_at")?, r.opt_i64("expires_at")?)))
}

/// A user with the password hash and session epoch, for signing in and checking sessions.
pub struct UserWithHash {
    pub user: User,
    pub password_hash: String,
    /// Sessions signed in under another epoch are no longer valid.
    pub session_epoch: i64,
}

/// What `update_user` did.
pub enum UserChange {
    Updated(User),
    NotFound,
    /// Refused: afterwards no enabled admin would remain.
    LastAdmin,
}

/// Key of the PostgreSQL advisory lock that serialises account changes (two 32-bit keys, a
/// space apart from the single-key project locks of `assignment`).
const ACCOUNTS_LOCK: (i32, i32) = (0x6d73, 1);

/// How many changes this process made that can alter whom a credential belongs to: a token
/// deleted, a user's role, state or password changed (`auth::account_cache` drops an answer
/// read before the latest one). Process-wide rather than per database: a change counted for
/// another database (unit tests open several) only costs a read.
static ACCOUNT_CHANGES: AtomicU64 = AtomicU64::new(0);

pub fn account_changes() -> u64 {
    ACCOUNT_CHANGES.load(Ordering::Acquire)
}

/// Counts a change to an account when dropped: at the end of the function that makes it,
/// after its transaction ended, also when it failed or its request was cancelled (counting
/// one too many only costs a read).
pub(super) struct AccountChange(());

impl AccountChange {
    pub(super) fn counted_when_done() -> AccountChange {
        AccountChange(())
    }
}

impl Drop for AccountChange {
    fn drop(&mut self) {
        ACCOUNT_CHANGES.fetch_add(1, Ordering::AcqRel);
    }
}

pub async fn count_users(db: &Db) -> AppResult<i64> {
    Ok(on_read!(db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(pool).await?))
}

/// Creates a user; `actor` is the admin who did (None: the command line on the server's
/// machine). Appended to the audit log with the username and role, never the password.
pub async fn create_user(db: &Db, username: &str, password_hash: &str, role: Role, actor: Option<i64>) -> AppResult<User> {
    let now = now_ms();
    let result: Result<UserRow, sqlx::Error> = on_write!(db, pool => async {
        let mut tx = BeginWrite::begin_write(pool).await?;
        let row = sqlx::query_as::<_, UserRow>(
            "INSERT INTO users (username, password_hash, role, created_at) VALUES ($1, $2, $3, $4)
             RETURNING id, username, role, created_at, disabled_at",
        )
        .bind(username)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        append_audit!(tx, Entry {
            user_id: Some(row.id),
            after: Some(json!({"username": username, "role": role.as_str()})),
            ..Entry::new(now, actor, AuditAction::UserCreated)
        })?;
        tx.commit().await?;
        Ok(row)
    }
    .await);
    match result {
        Ok(row) => Ok(row.into_user()),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(AppError::conflict(format!("the username {username:?} is taken")))
        }
        Err(e) => Err(e.into()),
    }
}

type RowWithHash = (i64, String, String, i64, Option<i64>, String, i64);

fn with_hash((id, username, role, created_at, disabled_at, password_hash, session_epoch): RowWithHash) -> UserWithHash {
    UserWithHash {
        user: UserRow { id, username, role, created_at, disabled_at }.into_user(),
        password_hash,
        session_epoch,
    }
}

pub async fn find_user_with_hash(db: &Db, username: &str) -> AppResult<Option<UserWithHash>> {
    let row: Option<RowWithHash> = on_read!(db, pool => sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS}, password_hash, session_epoch FROM users WHERE username = $1"
    ))
    .bind(username)
    .fetch_optional(pool)
    .await?);
    Ok(row.map(with_hash))
}

/// One user by id, with the password hash and session epoch.
pub async fn get_user_with_hash(db: &Db, id: i64) -> AppResult<Option<UserWithHash>> {
    let row: Option<RowWithHash> = on_read!(db, pool => sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS}, password_hash, session_epoch FROM users WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?);
    Ok(row.map(with_hash))
}

pub async fn get_user(db: &Db, id: i64) -> AppResult<Option<User>> {
    let row = on_read!(db, pool => sqlx::query_as::<_, UserRow>(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?);
    Ok(row.map(UserRow::into_user))
}

pub async fn find_user_by_username(db: &Db, username: &str) -> AppResult<Option<User>> {
    Ok(find_user_with_hash(db, username).await?.map(|u| u.user))
}

pub async fn list_users(db: &Db) -> AppResult<Vec<User>> {
    let rows = on_read!(db, pool => sqlx::query_as::<_, UserRow>(&format!(
        "SELECT {USER_COLUMNS} FROM users ORDER BY username"
    ))
    .fetch_all(pool)
    .await?);
    Ok(rows.into_iter().map(UserRow::into_user).collect())
}

/// Sets a new password hash and bumps the session epoch, which signs out every session of
/// the user. Returns the new epoch (for the one session that should stay), or None when there
/// is no such user. The audit log records that `actor` changed it (their own password, or a
/// reset by an admin), never the password or its hash.
pub async fn set_password_hash(db: &Db, user_id: i64, password_hash: &str, actor: i64) -> AppResult<Option<i64>> {
    // The user's other sessions are refused from the next request on.
    let _counted = AccountChange::counted_when_done();
    let action = if actor == user_id { AuditAction::PasswordChanged } else { AuditAction::PasswordReset };
    Ok(on_write!(db, pool => {
        let mut tx = BeginWrite::begin_write(pool).await?;
        let epoch: Option<i64> = sqlx::query_scalar(
            "UPDATE users SET password_hash = $1, session_epoch = session_epoch + 1 WHERE id = $2
             RETURNING session_epoch",
        )
        .bind(password_hash)
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
        if epoch.is_some() {
            append_audit!(tx, Entry { user_id: Some(user_id), ..Entry::new(now_ms(), Some(actor), action) })?;
        }
        tx.commit().await?;
        epoch
    }))
}

/// Changes a user's role and/or disabled state, refusing a change that would leave no
/// enabled admin. Disabling bumps the session epoch, so the user's sessions end for good
/// (re-enabling does not revive them; tokens, checked against the flag, work again).
///
/// A role change and a disabling or re-enabling each append an audit entry, as `actor`'s doing.
pub async fn update_user(db: &Db, user_id: i64, change: &UserUpdate, actor: i64) -> AppResult<UserChange> {
    // The user's tokens and sessions answer with the new role or state from the next request on.
    let _counted = AccountChange::counted_when_done();
    let now = now_ms();
    on_write!(db, pool, is_pg => {
        // SQLite: IMMEDIATE takes the write lock before the check reads anything, so even a
        // writer outside this pool (the `mirrorset user` CLI) cannot slip in between; a
        // deferred transaction would also fail at once (SQLITE_BUSY) rather than wait for it.
        let mut tx = BeginWrite::begin_write(pool).await?;
        if is_pg {
            sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
                .bind(ACCOUNTS_LOCK.0)
                .bind(ACCOUNTS_LOCK.1)
                .execute(&mut *tx)
                .await?;
        }
        let Some(before) = sqlx::query_as::<_, UserRow>(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?
            .map(UserRow::into_user)
        else {
            return Ok(UserChange::NotFound);
        };
        let role = change.role.unwrap_or(before.role);
        let disabled = change.disabled.unwrap_or(before.disabled);
        let was_enabled_admin = before.role == Role::Admin && !before.disabled;
        let stays_enabled_admin = role == Role::Admin && !disabled;
        if was_enabled_admin && !stays_enabled_admin {
            let others: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled_at IS NULL AND id <> $1",
            )
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?;
            if others == 0 {
                return Ok(UserChange::LastAdmin);
            }
        }
        let row = sqlx::query_as::<_, UserRow>(&format!(
            "UPDATE users SET role = $1,
                 disabled_at = CASE WHEN $2 THEN COALESCE(disabled_at, $3) ELSE NULL END,
                 session_epoch = session_epoch + CASE WHEN $2 AND disabled_at IS NULL THEN 1 ELSE 0 END
             WHERE id = $4 RETURNING {USER_COLUMNS}"
        ))
        .bind(role.as_str())
        .bind(disabled)
        .bind(now)
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?;
        let entry = |action| Entry { user_id: Some(user_id), ..Entry::new(now, Some(actor), action) };
        if role != before.role {
            append_audit!(tx, Entry {
                before: Some(json!({"role": before.role.as_str()})),
                after: Some(json!({"role": role.as_str()})),
                ..entry(AuditAction::RoleChanged)
            })?;
        }
        if disabled != before.disabled {
            let action = if disabled { AuditAction::UserDisabled } else { AuditAction::UserEnabled };
            append_audit!(tx, Entry {
                before: Some(json!({"disabled": before.disabled})),
                after: Some(json!({"disabled": disabled})),
                ..entry(action)
            })?;
        }
        tx.commit().await?;
        Ok(UserChange::Updated(row.into_user()))
    })
}

pub async fn is_member(db: &Db, project_id: i64, user_id: i64) -> AppResult<bool> {
    let found: Option<i64> = on_read!(db, pool => sqlx::query_scalar(
        "SELECT user_id FROM project_members WHERE project_id = $1 AND user_id = $2",
    )
    .bind(project_id)
    .bind(user_id)
    .fetch_optional(pool)
    .await?);
    Ok(found.is_some())
}

/// Adds the user to the project (nothing when they belong already); `actor` did it (None: the
/// command line). A new membership is appended to the audit log.
pub async fn add_member(db: &Db, project_id: i64, user_id: i64, actor: Option<i64>) -> AppResult<()> {
    let now = now_ms();
    on_write!(db, pool => {
        let mut tx = BeginWrite::begin_write(pool).await?;
        let added = sqlx::query(
            "INSERT INTO project_members (project_id, user_id, added_at) VALUES ($1, $2, $3)
             ON CONFLICT (project_id, user_id) DO NOTHING",
        )
        .bind(project_id)
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if added > 0 {
            append_audit!(tx, Entry {
                project_id: Some(project_id),
                user_id: Some(user_id),
                ..Entry::new(now, actor, AuditAction::MemberAdded)
            })?;
        }
        tx.commit().await?;
    });
    Ok(())
}

/// Removes the user from the project; false when they were not a member. Appended to the
/// audit log as `actor`'s doing.
pub async fn remove_member(db: &Db, project_id: i64, user_id: i64, actor: i64) -> AppResult<bool> {
    let done = on_write!(db, pool => {
        let mut tx = BeginWrite::begin_write(pool).await?;
        let removed = sqlx::query("DELETE FROM project_members WHERE project_id = $1 AND user_id = $2")
            .bind(project_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if removed > 0 {
            append_audit!(tx, Entry {
                project_id: Some(project_id),
                user_id: Some(user_id),
                ..Entry::new(now_ms(), Some(actor), AuditAction::MemberRemoved)
            })?;
        }
        tx.commit().await?;
        removed
    });
    Ok(done > 0)
}

pub async fn list_members(db: &Db, project_id: i64) -> AppResult<Vec<Member>> {
    let rows: Vec<(i64, String, String, i64, Option<i64>, i64)> = on_read!(db, pool => sqlx::query_as(
        "SELECT u.id, u.username, u.role, u.created_at, u.disabled_at, m.added_at
         FROM project_members m JOIN users u ON u.id = m.user_id
         WHERE m.project_id = $1 ORDER BY u.username",
    )
    .bind(project_id)
    .fetch_all(pool)
    .await?);
    Ok(rows
        .into_iter()
        .map(|(id, username, role, created_at, disabled_at, added_at)| Member {
            user: UserRow { id, username, role, created_at, disabled_at }.into_user(),
            added_at,
        })
        .collect())
}
