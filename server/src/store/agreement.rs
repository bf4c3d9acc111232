//! What the consensus job and the agreement dashboard read, and the consensus rows they write.
//!
//! The job reads a project's annotations in one ordered pass (item id, then annotation id:
//! the order of the `annotations` export, so the statistics see exactly what
//! `mirrorset stats` sees on that export) and writes consensus rows in short transactions of
//! a hundred rows, so the single SQLite writer is never held for long by a refresh; it writes
//! only the rows whose consensus changed ([`for_each_stored_consensus`] is what it compares with).
use std::sync::Arc;

use super::{now_ms, BeginWrite, Db};
use crate::error::AppResult;
use crate::{on_read, on_write};
use futures::TryStreamExt;

/// A copy of `db` for READS only, through a pool of [`PRIVATE_READERS`] connections of its own opened by the
/// calling task's thread (on SQLite its writes would still go through `db`'s writer, on
/// PostgreSQL through those connections: do not write with it). For the consensus job's
/// reads on its low-priority thread (`agreement::refresh`): on SQLite a connection's
/// statements run on a worker thread of its own that sqlx starts when it connects, and a new
/// thread inherits its creator's scheduling policy, so the refresh's 300,000-row reads then
/// run at the refresh's priority instead of on the shared readers' threads at the labelers'.
/// On PostgreSQL the rows are decoded by whichever thread polls the connection: the caller's.
/// Close it with [`close_private_reader`] on the same thread before that thread's runtime ends.
pub async fn private_reader(db: &Db) -> Result<Db, sqlx::Error> {
    Ok(match db {
        Db::Sqlite { read, write, writer, checkpointer, inline, imports, leases } => {
            let own = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(PRIVATE_READERS)
                .connect_with((*read.connect_options()).clone())
                .await?;
            Db::Sqlite { read: own, write: write.clone(), writer: writer.clone(), checkpointer: checkpointer.clone(), inline: inline.clone(), imports: imports.clone(), leases: leases.clone() }
        }
        Db::Postgres(pool) => {
            let own = sqlx::postgres::PgPoolOptions::new()
                .max_connections(PRIVATE_READERS)
                .connect_with((*pool.connect_options()).clone())
                .await?;
            Db::Postgres(own)
        }
    })
}

/// Connections of a [`private_reader`]: the refresh reads the annotations, the items and the
/// skips and usernames side by side, then the stored consensus rows. (On SQLite the
/// annotations, items and stored rows are read in place on the refresh's thread instead,
/// [`in_place`], one after the other; the pool reads the usernames and skips.)
pub const PRIVATE_READERS: u32 = 3;

/// Closes what [`private_reader`] opened (its own connections only).
pub async fn close_private_reader(db: Db) {
    match db {
        Db::Sqlite { read, .. } => read.close().await,
        Db::Postgres(pool) => pool.close().await,
    }
}

/// The project's settings the computation needs (columns of migration 0005, read here
/// directly so this does not depend on the settings' API plumbing).
#[derive(sqlx::FromRow, Debug, Clone)]
pub struct QualityRow {
    pub kind: String,
    pub labels: String,
    pub measurement: String,
    pub consensus_method: String,
    pub target_alpha: f64,
}

pub async fn quality(db: &Db, project_id: i64) -> Result<Option<QualityRow>, sqlx::Error> {
    on_read!(db, pool => {
        sqlx::query_as("SELECT kind, labels, measurement, consensus_method, target_alpha FROM projects WHERE id = $1")
            .bind(project_id)
            .fetch_optional(pool)
            .await
    })
}

#[derive(sqlx::FromRow, Debug, Clone)]
pub struct AnnotationRow {
    pub item_id: i64,
    pub user_id: i64,
    /// JSON array of label names.
    pub labels: String,
    pub time_ms: i64,
    pub created_at: i64,
}

const ANNOTATIONS_SQL: &str = "SELECT a.item_id, a.user_id, a.labels, a.time_ms, a.created_at
     FROM annotations a
     WHERE a.project_id = $1 AND a.item_id <= (SELECT p.visible_max_item_id FROM projects p WHERE p.id = $1)
     ORDER BY a.item_id, a.id";

/// Every annotation of the project's visible items, by item id then annotation id, each row
/// handed to `each` as it is read. On SQLite the rows are stepped in place on the caller's
/// thread (see [`in_place`]).
pub async fn for_each_annotation(db: &Db, project_id: i64, mut each: impl FnMut(AnnotationRow)) -> AppResult<()> {
    match db {
        Db::Sqlite { inline, .. } => in_place(inline, ANNOTATIONS_SQL, project_id, |r| {
            each(AnnotationRow { item_id: r.get(0)?, user_id: r.get(1)?, labels: r.get(2)?, time_ms: r.get(3)?, created_at: r.get(4)? });
            Ok(())
        }),
        Db::Postgres(pool) => postgres_each(pool, ANNOTATIONS_SQL, project_id, each).await,
    }
}

/// Runs `sql` (its one parameter `$1`: the project) on one of SQLite's raw read connections
/// ([`super::inline_reader`]) on the calling thread, handing each row to `each`: for the
/// refresh's long reads. Through sqlx every row was a hand-off from the connection's own thread
/// to the caller and back, and the reads of a refresh of 3,000,000 annotations took 16.7 s
/// of its 30 (docs/bench.md, session 31). The refresh calls this on its low-priority thread,
/// so the stepping runs at its priority as the sqlx threads it started did; a drill-down or a
/// release's freeze calls it on a blocking-pool thread. It blocks the calling thread: never
/// call it (or the `for_each_*` reads that use it) on an async worker. One statement: one
/// snapshot.
fn in_place(
    inline: &super::inline_reader::InlineReaders,
    sql: &str,
    project_id: i64,
    mut each: impl FnMut(&rusqlite::Row) -> rusqlite::Result<()>,
) -> AppResult<()> {
    inline.with(|conn| {
        let mut stmt = conn.prepare_cached(sql)?;
        let mut rows = stmt.query(rusqlite::named_params! { "$1": project_id })?;
        while let Some(r) = rows.next()? {
            each(r)?;
        }
        Ok(())
    })
}

/// PostgreSQL: `sql` (its one parameter `$1`: the project), each row handed to `each` as it
/// is decoded.
async fn postgres_each<T>(pool: &sqlx::PgPool, sql: &str, project_id: i64, mut each: impl FnMut(T)) -> AppResult<()>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let mut rows = sqlx::query_as::<_, T>(sql).bind(project_id).fetch(pool);
    while let Some(row) = rows.try_next().await? {
        each(row);
    }
    Ok(())
}

/// The usernames of the project's annotators, read once rather than with every annotation.
pub async fn annotators(db: &Db, project_id: i64) -> AppResult<Vec<(i64, String)>> {
    Ok(on_read!(db, pool => {
        sqlx::query_as(
            "SELECT u.id, u.username FROM users u
             WHERE u.id IN (SELECT DISTINCT a.user_id FROM annotations a WHERE a.project_id = $1)",
        )
        .bind(project_id)
        .fetch_all(pool)
        .await?
    }))
}

#[derive(sqlx::FromRow, Debug, Clone)]
pub struct ItemRow {
    pub id: i64,
    /// JSON object.
    pub meta: String,
    /// JSON array of label names, for gold items.
    pub gold: Option<String>,
}

const LABELED_ITEMS_SQL: &str = "SELECT i.id, i.meta, i.gold FROM items i
     WHERE i.project_id = $1 AND i.label_count > 0
       AND i.id <= (SELECT p.visible_max_item_id FROM projects p WHERE p.id = $1)
     ORDER BY i.id";

/// The labeled items' ids, meta and gold answers, by id, each row handed to `each` as it is
/// read (on SQLite in place: [`in_place`]). (Their external ids and texts are read for the
/// few items a drill-down lists: [`external_ids_and_snippets`].)
pub async fn for_each_labeled_item(db: &Db, project_id: i64, mut each: impl FnMut(ItemRow)) -> AppResult<()> {
    match db {
        Db::Sqlite { inline, .. } => in_place(inline, LABELED_ITEMS_SQL, project_id, |r| {
            each(ItemRow { id: r.get(0)?, meta: r.get(1)?, gold: r.get(2)? });
            Ok(())
        }),
        Db::Postgres(pool) => postgres_each(pool, LABELED_ITEMS_SQL, project_id, each).await,
    }
}

/// Skips per labeler of the project: (user id, username, skips).
pub async fn skips(db: &Db, project_id: i64) -> AppResult<Vec<(i64, String, i64)>> {
    Ok(on_read!(db, pool => {
        sqlx::query_as(
            "SELECT s.user_id, u.username, COUNT(*) FROM skips s JOIN users u ON u.id = s.user_id
             WHERE s.project_id = $1 GROUP BY s.user_id, u.username",
        )
        .bind(project_id)
        .fetch_all(pool)
        .await?
    }))
}

/// What a drill-down list shows of some items: (id, external id, first characters of the text).
pub async fn external_ids_and_snippets(
    db: &Db,
    project_id: i64,
    ids: &[i64],
) -> Result<Vec<(i64, Option<String>, Option<String>)>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    on_read!(db, pool => {
        // The ids are integers we format ourselves: no injection through the IN list.
        sqlx::query_as(&format!(
            "SELECT id, external_id, SUBSTR(text, 1, 160) FROM items WHERE project_id = $1 AND id IN ({list})"
        ))
        .bind(project_id)
        .fetch_all(pool)
        .await
    })
}

/// What says whether a project's annotations changed since the last computation: cheap
/// aggregates over indexed columns and the labelers' totals (`labeler_totals`, kept by
/// triggers: migrations 0021 and 0024), compared with what the last consensus job recorded.
/// Asked every 15 s, so it must not read the annotations themselves.
#[derive(sqlx::FromRow, Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChangeSignature {
    pub project_id: i64,
    pub consensus_method: String,
    pub measurement: String,
    /// Slices are marked against it.
    pub target_alpha: f64,
    pub annotations: i64,
    pub last_update: i64,
    pub skips: i64,
    pub gold_items: i64,
}

pub async fn change_signatures(db: &Db) -> Result<Vec<ChangeSignature>, sqlx::Error> {
    on_read!(db, pool => {
        sqlx::query_as(
            "SELECT p.id AS project_id, p.consensus_method, p.measurement, p.target_alpha,
                    (SELECT CAST(COALESCE(SUM(t.annotations), 0) AS BIGINT) FROM labeler_totals t WHERE t.project_id = p.id) AS annotations,
                    (SELECT COALESCE(MAX(t.last_update), 0) FROM labeler_totals t WHERE t.project_id = p.id) AS last_update,
                    (SELECT COUNT(*) FROM skips s WHERE s.project_id = p.id) AS skips,
                    (SELECT COUNT(*) FROM items i WHERE i.project_id = p.id AND i.gold IS NOT NULL) AS gold_items
             FROM projects p ORDER BY p.id",
        )
        .fetch_all(pool)
        .await
    })
}

/// One item's consensus as computed.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsensusRow {
    pub item_id: i64,
    /// JSON array of label names, one allocation shared by the rows with the same labels (a
    /// refresh holds a row per labeled item).
    pub labels: Arc<str>,
    pub posterior: f64,
    pub n_labels: i64,
}

/// Upserts consensus rows in one transaction, [`STATEMENT_ROWS`] rows per statement.
pub async fn write_consensus(db: &Db, project_id: i64, method: &str, rows: &[ConsensusRow]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let sql = |n: usize| {
        let mut sql = String::from(
            "INSERT INTO consensus (item_id, project_id, labels, posterior, method, n_labels, computed_at) VALUES ",
        );
        for r in 0..n {
            let b = r * 4;
            if r > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("(${}, $1, ${}, ${}, $2, ${}, $3)", b + 4, b + 5, b + 6, b + 7));
        }
        sql.push_str(
            " ON CONFLICT (item_id) DO UPDATE SET labels = excluded.labels, posterior = excluded.posterior,
              method = excluded.method, n_labels = excluded.n_labels, computed_at = excluded.computed_at",
        );
        sql
    };
    // Full statements share one text (prepared once per connection); only a last, shorter
    // one differs.
    let full = sql(STATEMENT_ROWS);
    on_write!(db, pool => {
        let mut tx = pool.begin_write().await?;
        for chunk in rows.chunks(STATEMENT_ROWS) {
            let short;
            let text = if chunk.len() == STATEMENT_ROWS {
                &full
            } else {
                short = sql(chunk.len());
                &short
            };
            let mut q = sqlx::query(text).bind(project_id).bind(method).bind(now);
            for r in chunk {
                q = q.bind(r.item_id).bind(&*r.labels).bind(r.posterior).bind(r.n_labels);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    })
}

/// Consensus rows per upsert statement (4 parameters each): SQLite's binding is not linear in
/// a statement's parameters, and 300 rows per statement spent seconds of a 100,000-item
/// refresh binding (session 4).
pub const STATEMENT_ROWS: usize = 100;

const STORED_CONSENSUS_SQL: &str =
    "SELECT item_id, labels, posterior, n_labels, method FROM consensus WHERE project_id = $1 ORDER BY item_id";

/// The project's stored consensus rows with their method, by item id, each handed to `each`
/// as it is read (on SQLite in place: [`in_place`]): what the consensus job compares its new
/// rows with, so that it writes only what changed.
pub async fn for_each_stored_consensus(db: &Db, project_id: i64, mut each: impl FnMut(&ConsensusRow, &str)) -> AppResult<()> {
    match db {
        Db::Sqlite { inline, .. } => in_place(inline, STORED_CONSENSUS_SQL, project_id, |r| {
            let labels: String = r.get(1)?;
            let method: String = r.get(4)?;
            each(&ConsensusRow { item_id: r.get(0)?, labels: labels.into(), posterior: r.get(2)?, n_labels: r.get(3)? }, &method);
            Ok(())
        }),
        Db::Postgres(pool) => {
            type Stored = (i64, String, f64, i64, String);
            postgres_each(pool, STORED_CONSENSUS_SQL, project_id, |(item_id, labels, posterior, n_labels, method): Stored| {
                each(&ConsensusRow { item_id, labels: labels.into(), posterior, n_labels }, &method)
            })
            .await
        }
    }
}

/// Deletes one batch of the project's consensus rows (items that no longer have labels) in
/// one short transaction.
pub async fn delete_consensus(db: &Db, project_id: i64, item_ids: &[i64]) -> Result<u64, sqlx::Error> {
    if item_ids.is_empty() {
        return Ok(0);
    }
    let list = item_ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    on_write!(db, pool => {
        // The ids are integers we format ourselves: no injection through the IN list.
        let done = sqlx::query(&format!("DELETE FROM consensus WHERE project_id = $1 AND item_id IN ({list})"))
            .bind(project_id)
            .execute(pool)
            .await?;
        Ok(done.rows_affected())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The change signature (migration 0024's `last_update` beside 0021's counts) moves with
    /// every new, changed or deleted annotation, and its count and newest update are what the
    /// annotations themselves say while none is deleted.
    #[tokio::test]
    async fn the_change_signature_follows_every_annotation() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}", dir.path().join("s.db").display())).await.unwrap();
        let Db::Sqlite { write, .. } = &db else { unreachable!("a SQLite database") };
        let run = |sql: &'static str| async move { sqlx::query(sql).execute(write).await.unwrap() };
        run("INSERT INTO users (id, username, password_hash, role, created_at) VALUES (1, 'a', '', 'labeler', 0), (2, 'b', '', 'labeler', 0)").await;
        run("INSERT INTO projects (id, name, instructions, kind, labels, overlap, lease_seconds, created_at, item_count, done_count, visible_max_item_id)
             VALUES (1, 'p', '', 'single', '[]', 2, 600, 0, 2, 0, 2), (2, 'q', '', 'single', '[]', 2, 600, 0, 1, 0, 3)").await;
        run("INSERT INTO items (id, project_id, kind, text, meta, weight, content_hash, created_at) VALUES
             (1, 1, 'text', 'a', '{}', 1, 'a', 0), (2, 1, 'text', 'b', '{}', 1, 'b', 0), (3, 2, 'text', 'c', '{}', 1, 'c', 0)").await;
        let signature = || async {
            change_signatures(&db).await.unwrap().into_iter().map(|s| (s.project_id, s.annotations, s.last_update)).collect::<Vec<_>>()
        };
        assert_eq!(signature().await, vec![(1, 0, 0), (2, 0, 0)]);
        run("INSERT INTO annotations (project_id, item_id, user_id, labels, time_ms, created_at, updated_at) VALUES
             (1, 1, 1, '[]', 1, 10, 30), (1, 2, 1, '[]', 1, 20, 20), (1, 1, 2, '[]', 1, 15, 25), (2, 3, 1, '[]', 1, 5, 5)").await;
        assert_eq!(signature().await, vec![(1, 3, 30), (2, 1, 5)]);
        run("UPDATE annotations SET updated_at = 40 WHERE item_id = 2").await;
        assert_eq!(signature().await, vec![(1, 3, 40), (2, 1, 5)], "a changed answer moves only its project's");
        run("DELETE FROM annotations WHERE item_id = 2").await;
        assert_eq!(signature().await, vec![(1, 2, 40), (2, 1, 5)], "a deletion shows in the count");
    }
}
