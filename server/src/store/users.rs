//! Users and project membership.
use app::api_types::{Member, Role, User};
use sqlx::FromRow;

use super::{now_ms, Db};
use crate::error::{AppError, AppResult};
use crate::{on_read, on_write};

#[derive(FromRow)]
struct UserRow {
    id: i64,
    username: String,
    role: String,
    created_at: i64,
}

impl UserRow {
    fn into_user(self) -> User {
        User {
            id: self.id,
            username: self.username,
            // The schema's CHECK constraint allows only the three roles.
            role: Role::parse(&self.role).unwrap_or(Role::Labeler),
            created_at: self.created_at,
        }
    }
}

/// A user with the password hash, for signing in.
pub struct UserWithHash {
    pub user: User,
    pub password_hash: String,
}

pub async fn count_users(db: &Db) -> AppResult<i64> {
    Ok(on_read!(db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(pool).await?))
}

pub async fn create_user(db: &Db, username: &str, password_hash: &str, role: Role) -> AppResult<User> {
    let now = now_ms();
    let result = on_write!(db, pool => sqlx::query_as::<_, UserRow>(
        "INSERT INTO users (username, password_hash, role, created_at) VALUES ($1, $2, $3, $4)
         RETURNING id, username, role, created_at",
    )
    .bind(username)
    .bind(password_hash)
    .bind(role.as_str())
    .bind(now)
    .fetch_one(pool)
    .await);
    match result {
        Ok(row) => Ok(row.into_user()),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(AppError::conflict(format!("the username {username:?} is taken")))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn find_user_with_hash(db: &Db, username: &str) -> AppResult<Option<UserWithHash>> {
    let row: Option<(i64, String, String, i64, String)> = on_read!(db, pool => sqlx::query_as(
        "SELECT id, username, role, created_at, password_hash FROM users WHERE username = $1",
    )
    .bind(username)
    .fetch_optional(pool)
    .await?);
    Ok(row.map(|(id, username, role, created_at, password_hash)| UserWithHash {
        user: UserRow { id, username, role, created_at }.into_user(),
        password_hash,
    }))
}

pub async fn get_user(db: &Db, id: i64) -> AppResult<Option<User>> {
    let row = on_read!(db, pool => sqlx::query_as::<_, UserRow>(
        "SELECT id, username, role, created_at FROM users WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?);
    Ok(row.map(UserRow::into_user))
}

pub async fn find_user_by_username(db: &Db, username: &str) -> AppResult<Option<User>> {
    Ok(find_user_with_hash(db, username).await?.map(|u| u.user))
}

pub async fn list_users(db: &Db) -> AppResult<Vec<User>> {
    let rows = on_read!(db, pool => sqlx::query_as::<_, UserRow>(
        "SELECT id, username, role, created_at FROM users ORDER BY username",
    )
    .fetch_all(pool)
    .await?);
    Ok(rows.into_iter().map(UserRow::into_user).collect())
}

pub async fn set_password_hash(db: &Db, user_id: i64, password_hash: &str) -> AppResult<()> {
    on_write!(db, pool => sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(password_hash)
        .bind(user_id)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(())
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

pub async fn add_member(db: &Db, project_id: i64, user_id: i64) -> AppResult<()> {
    on_write!(db, pool => sqlx::query(
        "INSERT INTO project_members (project_id, user_id, added_at) VALUES ($1, $2, $3)
         ON CONFLICT (project_id, user_id) DO NOTHING",
    )
    .bind(project_id)
    .bind(user_id)
    .bind(now_ms())
    .execute(pool)
    .await?
    .rows_affected());
    Ok(())
}

pub async fn remove_member(db: &Db, project_id: i64, user_id: i64) -> AppResult<bool> {
    let done = on_write!(db, pool => sqlx::query(
        "DELETE FROM project_members WHERE project_id = $1 AND user_id = $2",
    )
    .bind(project_id)
    .bind(user_id)
    .execute(pool)
    .await?
    .rows_affected());
    Ok(done > 0)
}

pub async fn list_members(db: &Db, project_id: i64) -> AppResult<Vec<Member>> {
    let rows: Vec<(i64, String, String, i64, i64)> = on_read!(db, pool => sqlx::query_as(
        "SELECT u.id, u.username, u.role, u.created_at, m.added_at
         FROM project_members m JOIN users u ON u.id = m.user_id
         WHERE m.project_id = $1 ORDER BY u.username",
    )
    .bind(project_id)
    .fetch_all(pool)
    .await?);
    Ok(rows
        .into_iter()
        .map(|(id, username, role, created_at, added_at)| Member {
            user: UserRow { id, username, role, created_at }.into_user(),
            added_at,
        })
        .collect())
}
