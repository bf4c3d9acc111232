//! Production profiles, dev sets and their members (migration 0008).
//!
//! Invariant: an item is in at most one dev set. `devset_members.item_id` is the primary key,
//! so a sample whose items were taken by another dev set in the meantime fails as a whole (one
//! transaction) instead of sharing them; and a dev set is sampled once (`sampled_at` is set in
//! the same transaction, guarded by `sampled_at IS NULL`).
//!
//! Campaign columns: sampling sets `items.priority` and `items.overlap` of the members (the
//! stream reads them under the 'priority' order). Until the stream work provides its store
//! function for that, the UPDATE lives here.
//!
//! Items of an import that has not committed (id above `projects.visible_max_item_id`) are
//! not in the pool.
use futures::TryStreamExt;
use sqlx::FromRow;

use super::{now_ms, BeginWrite, Db};
use crate::devsets::index::PoolItemRow;
use crate::{on_read, on_write};

#[derive(Clone, Debug, FromRow)]
pub struct ProfileRow {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    pub profile_date: String,
    pub records: f64,
    pub attributes: String,
    pub cells: String,
    pub created_at: i64,
}

#[derive(Clone, Debug, FromRow)]
pub struct DevsetRow {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    pub profile_id: i64,
    pub draft: String,
    pub seed: i64,
    pub overlap: i64,
    pub priority: i64,
    pub sampled_at: Option<i64>,
    pub created_at: i64,
}

const PROFILE_COLUMNS: &str = "id, project_id, name, profile_date, records, attributes, cells, created_at";
const DEVSET_COLUMNS: &str = "id, project_id, name, profile_id, draft, seed, overlap, priority, sampled_at, created_at";

#[derive(Debug, thiserror::Error)]
pub enum DevsetStoreError {
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// What a pool index is valid for: the project's `(visible_max_item_id, item_count)` (see
/// `devsets::index`). None when the project does not exist.
pub async fn pool_version(db: &Db, project_id: i64) -> sqlx::Result<Option<(i64, i64)>> {
    on_read!(db, pool => {
        sqlx::query_as::<_, (i64, i64)>("SELECT visible_max_item_id, item_count FROM projects WHERE id = $1")
            .bind(project_id)
            .fetch_optional(pool)
            .await
    })
}

/// Rows per chunk sent to the index builder.
const POOL_CHUNK: usize = 10_000;

/// Streams the project's items with `after_item_id < id <= max_item_id`, in id order, in chunks
/// to `out` (the index builder runs on a blocking thread at the other end). Stops early if the
/// receiver is gone.
pub async fn stream_pool(
    db: &Db,
    project_id: i64,
    after_item_id: i64,
    max_item_id: i64,
    out: tokio::sync::mpsc::Sender<Vec<PoolItemRow>>,
) -> sqlx::Result<()> {
    type Row = (i64, String, f64, Option<String>, Option<String>);
    on_read!(db, pool => {
        let mut rows = sqlx::query_as::<_, Row>(
            "SELECT id, meta, weight, source, license FROM items
              WHERE project_id = $1 AND id > $2 AND id <= $3 ORDER BY id",
        )
        .bind(project_id)
        .bind(after_item_id)
        .bind(max_item_id)
        .fetch(pool);
        let mut chunk = Vec::with_capacity(POOL_CHUNK);
        while let Some((id, meta, weight, source, license)) = rows.try_next().await? {
            chunk.push(PoolItemRow { id, meta, weight, source, license });
            if chunk.len() == POOL_CHUNK && out.send(std::mem::replace(&mut chunk, Vec::with_capacity(POOL_CHUNK))).await.is_err() {
                return Ok(());
            }
        }
        if !chunk.is_empty() {
            let _ = out.send(chunk).await;
        }
        Ok(())
    })
}

/// Every dev-set member of the project: (item id, dev set id).
pub async fn project_members(db: &Db, project_id: i64) -> sqlx::Result<Vec<(i64, i64)>> {
    on_read!(db, pool => {
        sqlx::query_as::<_, (i64, i64)>(
            "SELECT m.item_id, m.devset_id FROM devset_members m JOIN devsets d ON d.id = m.devset_id
              WHERE d.project_id = $1",
        )
        .bind(project_id)
        .fetch_all(pool)
        .await
    })
}

/// External ids per lookup statement.
const EXTERNAL_ID_BATCH: usize = 500;

/// The visible items (up to `max_item_id`) with one of these external ids: (external id, item id).
pub async fn items_by_external_id(
    db: &Db,
    project_id: i64,
    max_item_id: i64,
    external_ids: &[String],
) -> sqlx::Result<Vec<(String, i64)>> {
    let mut out = Vec::new();
    for chunk in external_ids.chunks(EXTERNAL_ID_BATCH) {
        let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "SELECT external_id, id FROM items WHERE project_id = $1 AND id <= $2 AND external_id IN ({})",
            list.join(", ")
        );
        let rows: Vec<(String, i64)> = on_read!(db, pool => {
            let mut q = sqlx::query_as::<_, (String, i64)>(&sql).bind(project_id).bind(max_item_id);
            for e in chunk {
                q = q.bind(e);
            }
            q.fetch_all(pool).await?
        });
        out.extend(rows);
    }
    Ok(out)
}

pub struct NewProfile<'a> {
    pub name: &'a str,
    pub date: &'a str,
    pub records: f64,
    pub attributes: String,
    pub cells: String,
}

pub async fn insert_profile(db: &Db, project_id: i64, p: &NewProfile<'_>, creator: i64) -> Result<ProfileRow, DevsetStoreError> {
    let result = on_write!(db, pool => {
        sqlx::query_as::<_, ProfileRow>(&format!(
            "INSERT INTO production_profiles (project_id, name, profile_date, records, attributes, cells, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {PROFILE_COLUMNS}"
        ))
        .bind(project_id)
        .bind(p.name)
        .bind(p.date)
        .bind(p.records)
        .bind(&p.attributes)
        .bind(&p.cells)
        .bind(creator)
        .bind(now_ms())
        .fetch_one(pool)
        .await
    });
    match result {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(DevsetStoreError::Conflict(format!("this project already has a profile named {:?}", p.name)))
        }
        other => Ok(other?),
    }
}

pub async fn list_profiles(db: &Db, project_id: i64) -> sqlx::Result<Vec<ProfileRow>> {
    on_read!(db, pool => {
        sqlx::query_as::<_, ProfileRow>(&format!(
            "SELECT {PROFILE_COLUMNS} FROM production_profiles WHERE project_id = $1 ORDER BY profile_date DESC, id DESC"
        ))
        .bind(project_id)
        .fetch_all(pool)
        .await
    })
}

pub async fn get_profile(db: &Db, project_id: i64, id: i64) -> sqlx::Result<Option<ProfileRow>> {
    on_read!(db, pool => {
        sqlx::query_as::<_, ProfileRow>(&format!(
            "SELECT {PROFILE_COLUMNS} FROM production_profiles WHERE project_id = $1 AND id = $2"
        ))
        .bind(project_id)
        .bind(id)
        .fetch_optional(pool)
        .await
    })
}

pub struct NewDevset<'a> {
    pub name: &'a str,
    pub profile_id: i64,
    pub draft: String,
    pub seed: i64,
    pub overlap: i64,
    pub priority: i64,
}

pub async fn insert_devset(db: &Db, project_id: i64, d: &NewDevset<'_>, creator: i64) -> Result<DevsetRow, DevsetStoreError> {
    let result = on_write!(db, pool => {
        sqlx::query_as::<_, DevsetRow>(&format!(
            "INSERT INTO devsets (project_id, name, profile_id, draft, seed, overlap, priority, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {DEVSET_COLUMNS}"
        ))
        .bind(project_id)
        .bind(d.name)
        .bind(d.profile_id)
        .bind(&d.draft)
        .bind(d.seed)
        .bind(d.overlap)
        .bind(d.priority)
        .bind(creator)
        .bind(now_ms())
        .fetch_one(pool)
        .await
    });
    match result {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(DevsetStoreError::Conflict(format!("this project already has a dev set named {:?}", d.name)))
        }
        other => Ok(other?),
    }
}

/// A dev set with its member count, as the list reads it.
#[derive(FromRow)]
struct DevsetWithMembers {
    #[sqlx(flatten)]
    devset: DevsetRow,
    members: i64,
}

pub async fn list_devsets(db: &Db, project_id: i64) -> sqlx::Result<Vec<(DevsetRow, i64)>> {
    // The counts in the same statement (each on the members' index), not a query per dev set.
    let rows = on_read!(db, pool => {
        sqlx::query_as::<_, DevsetWithMembers>(&format!(
            "SELECT {DEVSET_COLUMNS},
                    (SELECT COUNT(*) FROM devset_members m WHERE m.devset_id = devsets.id) AS members
             FROM devsets WHERE project_id = $1 ORDER BY id"
        ))
        .bind(project_id)
        .fetch_all(pool)
        .await
    })?;
    Ok(rows.into_iter().map(|r| (r.devset, r.members)).collect())
}

pub async fn get_devset(db: &Db, project_id: i64, id: i64) -> sqlx::Result<Option<DevsetRow>> {
    on_read!(db, pool => {
        sqlx::query_as::<_, DevsetRow>(&format!("SELECT {DEVSET_COLUMNS} FROM devsets WHERE project_id = $1 AND id = $2"))
            .bind(project_id)
            .bind(id)
            .fetch_optional(pool)
            .await
    })
}

/// Members per INSERT statement (3 parameters each).
const MEMBER_BATCH: usize = 300;

/// Stores a sample: the members, `sampled_at`, and the campaign's priority and overlap on the
/// members' items, all in one transaction.
pub async fn save_sample(db: &Db, devset: &DevsetRow, members: &[(i64, String)]) -> Result<(), DevsetStoreError> {
    let now = now_ms();
    let result: Result<(), DevsetStoreError> = on_write!(db, pool => {
        let mut tx = BeginWrite::begin_write(pool).await?;
        let marked = sqlx::query("UPDATE devsets SET sampled_at = $1 WHERE id = $2 AND sampled_at IS NULL")
            .bind(now)
            .bind(devset.id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if marked == 0 {
            return Err(DevsetStoreError::Conflict(format!(
                "the dev set {:?} is already sampled; create a new draft for another sample",
                devset.name
            )));
        }
        for chunk in members.chunks(MEMBER_BATCH) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
                .collect();
            let sql = format!("INSERT INTO devset_members (item_id, devset_id, stratum) VALUES {}", values.join(", "));
            let mut q = sqlx::query(&sql);
            for (item, stratum) in chunk {
                q = q.bind(*item).bind(devset.id).bind(stratum);
            }
            match q.execute(&mut *tx).await {
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    return Err(DevsetStoreError::Conflict(
                        "an item of this sample was put in another dev set meanwhile; nothing was saved, sample again".into(),
                    ));
                }
                other => {
                    other?;
                }
            }
        }
        // The campaign: dev items first in 'priority' order, with their own overlap.
        sqlx::query(
            "UPDATE items SET priority = $1, overlap = $2
              WHERE id IN (SELECT item_id FROM devset_members WHERE devset_id = $3)",
        )
        .bind(devset.priority)
        .bind(devset.overlap)
        .bind(devset.id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    });
    result
}

/// The members' ids, in item order.
pub async fn member_ids(db: &Db, devset_id: i64) -> sqlx::Result<Vec<i64>> {
    on_read!(db, pool => {
        sqlx::query_scalar::<_, i64>("SELECT item_id FROM devset_members WHERE devset_id = $1 ORDER BY item_id")
            .bind(devset_id)
            .fetch_all(pool)
            .await
    })
}

/// One member's campaign state.
#[derive(Debug, FromRow)]
pub struct MemberProgress {
    pub stratum: String,
    pub labels: i64,
    /// The labels it needs (its own overlap, else the project's).
    pub needed: i64,
    /// Distinct label sets among its annotations (1 = everyone agreed).
    pub label_sets: i64,
    /// A lead or admin decided its final label in the review queue (`review_decisions`).
    pub reviewed: bool,
}

/// Every member's campaign state, by stratum.
pub async fn member_progress(db: &Db, devset_id: i64) -> sqlx::Result<Vec<MemberProgress>> {
    on_read!(db, pool => {
        sqlx::query_as::<_, MemberProgress>(
            "SELECT m.stratum, i.label_count AS labels, COALESCE(i.overlap, p.overlap) AS needed,
                    (SELECT COUNT(DISTINCT a.labels) FROM annotations a WHERE a.item_id = i.id) AS label_sets,
                    EXISTS (SELECT 1 FROM review_decisions d WHERE d.item_id = i.id) AS reviewed
               FROM devset_members m
               JOIN items i ON i.id = m.item_id
               JOIN projects p ON p.id = i.project_id
              WHERE m.devset_id = $1
              ORDER BY m.stratum",
        )
        .bind(devset_id)
        .fetch_all(pool)
        .await
    })
}
