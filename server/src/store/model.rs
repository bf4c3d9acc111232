//! The built-in model's rows (migrations 0012 and 0017): its settings, its runs, its
//! pre-labels (the project's one `builtin` source), the uncertainty ranks the labeling
//! hand-out reads (`items.model_rank`) and the `label_error` review queue's entries.
//!
//! Invariants:
//! - A project has at most one `builtin` source (name [`SOURCE_NAME`]); its `version` is the
//!   number of the run whose pre-labels it holds, so audits and auto-accept switches (keyed by
//!   the source) carry over from run to run while the version says which run wrote the scores.
//! - A run's pre-labels are written chunk by chunk, each stamped with the run's start time, and
//!   the older ones dropped when the run finishes ([`finish_run`]): until then, labelers see
//!   the previous run's pre-labels where the new run has not reached yet, never none.
//! - `items.model_rank` is set only on the last run's least certain unlabeled items and only
//!   while the project's uncertainty order is on; every run clears the previous ranks.
use app::api_types::ModelSettings;
use serde_json::Value;

use super::{now_ms, BeginWrite, Db};
use crate::error::AppResult;
use crate::{on_read, on_write};

/// The builtin source's name.
pub const SOURCE_NAME: &str = "mirrorset-builtin";
/// The review queue of likely mislabeled items.
pub const LABEL_ERROR_QUEUE: &str = "label_error";
/// The reason its entries give.
pub const REASON_LIKELY_MISLABELED: &str = "likely_mislabeled";

pub async fn settings(db: &Db, project_id: i64) -> AppResult<ModelSettings> {
    let row: Option<(Option<i64>, Option<i64>, i64)> = on_read!(db, pool => {
        sqlx::query_as(
            "SELECT s.builtin_enabled, s.retrain_every, p.uncertainty_order
             FROM projects p LEFT JOIN prelabel_settings s ON s.project_id = p.id WHERE p.id = $1",
        )
        .bind(project_id)
        .fetch_optional(pool)
        .await?
    });
    let (enabled, every, uncertainty) = row.unwrap_or((None, None, 0));
    Ok(ModelSettings {
        enabled: enabled.unwrap_or(0) != 0,
        // 0: never set (migration 0012's default), so the default applies.
        retrain_every: every.filter(|n| *n > 0).unwrap_or_else(app::api_types::default_retrain_every),
        uncertainty_order: uncertainty != 0,
    })
}

/// Stores the settings (checked by the caller). Turning the uncertainty order off takes effect
/// at once (the hand-out reads the flag); turning it on, from the next run's ranks.
pub async fn put_settings(db: &Db, project_id: i64, s: &ModelSettings) -> AppResult<()> {
    let now = now_ms();
    on_write!(db, pool => {
        let mut tx = BeginWrite::begin_write(pool).await?;
        sqlx::query(
            "INSERT INTO prelabel_settings (project_id, builtin_enabled, retrain_every, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (project_id) DO UPDATE SET builtin_enabled = excluded.builtin_enabled,
                 retrain_every = excluded.retrain_every, updated_at = excluded.updated_at",
        )
        .bind(project_id)
        .bind(s.enabled as i64)
        .bind(s.retrain_every)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE projects SET uncertainty_order = $1 WHERE id = $2")
            .bind(s.uncertainty_order as i64)
            .bind(project_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    });
    Ok(())
}

/// The projects whose built-in model retrains automatically, with their `retrain_every`.
pub async fn enabled_projects(db: &Db) -> AppResult<Vec<(i64, i64)>> {
    Ok(on_read!(db, pool => {
        sqlx::query_as("SELECT project_id, retrain_every FROM prelabel_settings WHERE builtin_enabled = 1 ORDER BY project_id")
            .fetch_all(pool)
            .await?
    }))
}

/// A cheap count that grows by one with each new human final label: complete non-gold items
/// (their consensus), gold items and items with a review decision. It can count an item twice
/// (complete and decided), which is fine for what it is for: noticing that N labels came in
/// (`jobs::enqueue_due_models`) without computing every final label every few seconds. Each
/// part is a walk of an index over the project's rows of that kind.
const LABEL_SIGNAL_SQL: &str = "SELECT (SELECT COUNT(*) FROM items i WHERE i.project_id = $1 AND i.complete = 1 AND i.gold IS NULL)
          + (SELECT COUNT(*) FROM items i WHERE i.project_id = $1 AND i.gold IS NOT NULL)
          + (SELECT COUNT(DISTINCT d.item_id) FROM review_decisions d WHERE d.project_id = $1)";

pub async fn label_signal(db: &Db, project_id: i64) -> AppResult<i64> {
    Ok(on_read!(db, pool => {
        sqlx::query_scalar(LABEL_SIGNAL_SQL)
        .bind(project_id)
        .fetch_one(pool)
        .await?
    }))
}

/// A finished run as stored.
#[derive(sqlx::FromRow, Debug, Clone)]
pub struct RunRow {
    pub id: i64,
    pub source_id: i64,
    pub label_count: i64,
    pub folds: i64,
    pub cv_correct: i64,
    pub majority: i64,
    pub scored: i64,
    pub trained_at: i64,
    pub label_counts: String,
    pub flagged: i64,
    pub label_signal: i64,
}

pub async fn last_run(db: &Db, project_id: i64) -> AppResult<Option<RunRow>> {
    Ok(on_read!(db, pool => {
        sqlx::query_as(
            "SELECT id, source_id, label_count, folds, cv_correct, majority, scored, trained_at, label_counts, flagged,
                    label_signal
             FROM prelabel_model_runs WHERE project_id = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(project_id)
        .fetch_optional(pool)
        .await?
    }))
}

/// The project's builtin source, created on first use.
pub async fn ensure_source(db: &Db, project_id: i64) -> AppResult<i64> {
    let now = now_ms();
    Ok(on_write!(db, pool => {
        let existing: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM prelabel_sources WHERE project_id = $1 AND kind = 'builtin' AND name = $2 ORDER BY id LIMIT 1",
        )
        .bind(project_id)
        .bind(SOURCE_NAME)
        .fetch_optional(pool)
        .await?;
        match existing {
            Some(id) => id,
            None => sqlx::query_scalar(
                "INSERT INTO prelabel_sources (project_id, kind, name, version, created_at)
                 VALUES ($1, 'builtin', $2, '', $3)
                 ON CONFLICT (project_id, kind, name, version) DO UPDATE SET name = excluded.name
                 RETURNING id",
            )
            .bind(project_id)
            .bind(SOURCE_NAME)
            .bind(now)
            .fetch_one(pool)
            .await?,
        }
    }))
}

/// Ids looked up per statement by [`labeled_texts`].
const TEXTS_CHUNK: usize = 500;

/// The texts (or None) of the visible items among `ids` (ascending), in id order: the labeled
/// items the model trains on, read by id rather than by a walk over the whole corpus (50,000
/// of 1,000,000 in the benchmark).
pub async fn labeled_texts(db: &Db, project_id: i64, max_item_id: i64, ids: &[i64]) -> AppResult<Vec<(i64, Option<String>)>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(TEXTS_CHUNK) {
        let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "SELECT id, text FROM items WHERE project_id = $1 AND id <= $2 AND id IN ({}) ORDER BY id",
            marks.join(", ")
        );
        let mut rows: Vec<(i64, Option<String>)> = on_read!(db, pool => {
            let mut q = sqlx::query_as(&sql).bind(project_id).bind(max_item_id);
            for id in chunk {
                q = q.bind(*id);
            }
            q.fetch_all(pool).await?
        });
        out.append(&mut rows);
    }
    Ok(out)
}

/// Writes a chunk of a run's scores, (item, labels JSON, score), stamped `stamp`: an earlier
/// run's pre-label of the same item is replaced. One short transaction per statement
/// (`SCORED_INSERT_CHUNK` rows), not one for the chunk: on SQLite the labelers' writes share
/// the one writer connection and wait for whatever transaction holds it, so a 20,000-row
/// transaction would hold up every `next` behind it. Nothing needs the chunk atomic: a
/// restarted run rewrites its rows, and [`finish_run`] only drops rows older than the run.
pub async fn write_scores(db: &Db, project_id: i64, source_id: i64, stamp: i64, rows: &[(i64, String, f64)]) -> AppResult<()> {
    for chunk in rows.chunks(super::prelabels::SCORED_INSERT_CHUNK) {
        on_write!(db, pool => {
            let mut tx = BeginWrite::begin_write(pool).await?;
            let sql = super::prelabels::scored_prelabels_insert_sql(chunk.len());
            let mut q = sqlx::query(&sql).bind(source_id).bind(project_id).bind(stamp);
            for (item, labels, score) in chunk {
                q = q.bind(*item).bind(labels.as_str()).bind(*score);
            }
            q.execute(&mut *tx).await?;
            tx.commit().await?;
        });
        tokio::task::yield_now().await;
    }
    Ok(())
}

/// What a finished run stores besides its pre-labels.
pub struct NewRun {
    pub job_id: i64,
    pub label_count: i64,
    pub folds: i64,
    pub cv_correct: i64,
    pub majority: i64,
    pub scored: i64,
    pub label_counts: Value,
    pub label_signal: i64,
    /// Unlabeled items, least certain first (their `model_rank` is their place here, from 1);
    /// empty when the uncertainty order is off.
    pub ranked: Vec<i64>,
    /// Likely mislabeled items, most likely first, with what their entry's detail says.
    pub flagged: Vec<(i64, Value)>,
}

/// Sets `model_rank` of a run's ranked items to their place in its list (from 1), in one
/// statement: the list ($1, a JSON array of ids) joined to the items by primary key. A
/// statement per item held the run's last transaction open for a round trip per item, up to
/// 5,000 of them: on SQLite the one writer every labeler's write waits for, on PostgreSQL the
/// ranked items' row locks, which hand-outs pass over. On SQLite the `+` keeps the planner off
/// the project's index, which would walk every item of the project and scan the list for each.
const SQLITE_SET_RANKS_SQL: &str = "UPDATE items SET model_rank = r.key + 1 FROM json_each($1) AS r
                                    WHERE items.id = r.value AND +items.project_id = $2";
const PG_SET_RANKS_SQL: &str = "UPDATE items SET model_rank = r.place
                                FROM json_array_elements_text($1::json) WITH ORDINALITY AS r(id, place)
                                WHERE items.id = r.id::bigint AND items.project_id = $2";

/// Ends a run in one transaction: drops the builtin pre-labels older than `stamp` (items
/// labeled since the previous run, or gone), replaces the uncertainty ranks and the
/// `label_error` entries nobody has reviewed yet, records the run and sets the source's
/// version to it. Returns the run's id.
pub async fn finish_run(db: &Db, project_id: i64, source_id: i64, stamp: i64, run: NewRun) -> AppResult<i64> {
    let now = now_ms();
    let flagged_n = run.flagged.len() as i64;
    Ok(on_write!(db, pool, is_pg => {
        let mut tx = BeginWrite::begin_write(pool).await?;
        sqlx::query("DELETE FROM prelabels WHERE source_id = $1 AND created_at < $2")
            .bind(source_id)
            .bind(stamp)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE items SET model_rank = NULL WHERE project_id = $1 AND model_rank IS NOT NULL")
            .bind(project_id)
            .execute(&mut *tx)
            .await?;
        if !run.ranked.is_empty() {
            sqlx::query(if is_pg { PG_SET_RANKS_SQL } else { SQLITE_SET_RANKS_SQL })
                .bind(serde_json::to_string(&run.ranked).expect("ids serialize"))
                .bind(project_id)
                .execute(&mut *tx)
                .await?;
        }
        // Entries a reviewer resolved stay (they are the queue's history); open ones were the
        // previous run's guesses and give way to this run's.
        sqlx::query("DELETE FROM review_entries WHERE project_id = $1 AND queue = $2 AND resolved_at IS NULL")
            .bind(project_id)
            .bind(LABEL_ERROR_QUEUE)
            .execute(&mut *tx)
            .await?;
        if !run.flagged.is_empty() {
            let entries: Vec<(i64, String)> = run.flagged.iter().map(|(item, detail)| (*item, detail.to_string())).collect();
            let (sql, args) =
                super::review::open_entries(is_pg, project_id, LABEL_ERROR_QUEUE, REASON_LIKELY_MISLABELED, now, &entries);
            super::batch::bind(sqlx::query(sql), args).execute(&mut *tx).await?;
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO prelabel_model_runs (project_id, source_id, label_count, folds, cv_correct, majority, scored,
                                              trained_at, label_counts, flagged, label_signal, job_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
        )
        .bind(project_id)
        .bind(source_id)
        .bind(run.label_count)
        .bind(run.folds)
        .bind(run.cv_correct)
        .bind(run.majority)
        .bind(run.scored)
        .bind(now)
        .bind(run.label_counts.to_string())
        .bind(flagged_n)
        .bind(run.label_signal)
        .bind(run.job_id)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("UPDATE prelabel_sources SET version = $1 WHERE id = $2")
            .bind(id.to_string())
            .bind(source_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        id
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::{plan, sqlite_with};

    fn run_with(ranked: Vec<i64>, flagged: Vec<(i64, Value)>) -> NewRun {
        NewRun {
            job_id: 1,
            label_count: 0,
            folds: 0,
            cv_correct: 0,
            majority: 0,
            scored: 0,
            label_counts: Value::Null,
            label_signal: 0,
            ranked,
            flagged,
        }
    }

    /// A run's ranks are the ranked items' places in its list, from 1, and only its own
    /// project's items get one (an id of another project in the list is left alone); its
    /// flagged items get a label-error entry each, with their detail as it was. The next run's
    /// ranks and entries replace them all. The statement finds each item by its primary key, never by
    /// a scan of the project's items.
    #[tokio::test]
    async fn a_run_ranks_its_items_by_their_place_in_its_list_and_opens_its_entries() {
        let (_dir, db) = sqlite_with(&[
            "INSERT INTO projects (id, name, instructions, kind, labels, overlap, lease_seconds, created_at)
             VALUES (1, 'p', '', 'single', '[]', 1, 600, 0), (2, 'q', '', 'single', '[]', 1, 600, 0)",
            "INSERT INTO items (id, project_id, kind, text, meta, weight, content_hash, created_at) VALUES
             (1, 1, 'text', 'a', '{}', 1, 'a', 0), (2, 1, 'text', 'b', '{}', 1, 'b', 0), (3, 1, 'text', 'c', '{}', 1, 'c', 0),
             (4, 1, 'text', 'd', '{}', 1, 'd', 0), (5, 2, 'text', 'e', '{}', 1, 'e', 0)",
        ])
        .await;
        let Db::Sqlite { read, .. } = &db else { unreachable!() };
        let source = ensure_source(&db, 1).await.unwrap();
        let ranks = || async {
            sqlx::query_as::<_, (i64, Option<i64>)>("SELECT id, model_rank FROM items ORDER BY id").fetch_all(read).await.unwrap()
        };

        let entries = || async {
            sqlx::query_as::<_, (i64, i64, String, String, String, Option<i64>)>(
                "SELECT project_id, item_id, queue, reason, detail, labeler_id FROM review_entries ORDER BY item_id",
            )
            .fetch_all(read)
            .await
            .unwrap()
        };
        let entry = |item: i64, detail: &str| (1, item, LABEL_ERROR_QUEUE.into(), REASON_LIKELY_MISLABELED.into(), detail.into(), None);

        let flagged = vec![(3, serde_json::json!({"given": "a", "probability": 0.125, "rank": 1})), (1, serde_json::json!({"rank": 2}))];
        finish_run(&db, 1, source, 0, run_with(vec![3, 5, 1, 4], flagged)).await.unwrap();
        assert_eq!(ranks().await, [(1, Some(3)), (2, None), (3, Some(1)), (4, Some(4)), (5, None)]);
        assert_eq!(entries().await, [entry(1, r#"{"rank":2}"#), entry(3, r#"{"given":"a","probability":0.125,"rank":1}"#)]);

        finish_run(&db, 1, source, 0, run_with(vec![2], vec![(2, serde_json::json!({"rank": 1}))])).await.unwrap();
        assert_eq!(ranks().await, [(1, None), (2, Some(1)), (3, None), (4, None), (5, None)]);
        assert_eq!(entries().await, [entry(2, r#"{"rank":1}"#)], "the previous run's open entries give way");

        finish_run(&db, 1, source, 0, run_with(vec![], vec![])).await.unwrap();
        assert!(ranks().await.iter().all(|(_, rank)| rank.is_none()));
        assert_eq!(entries().await, []);

        let p = plan(&db, SQLITE_SET_RANKS_SQL, 2).await;
        assert!(p.contains("SEARCH items USING INTEGER PRIMARY KEY (rowid=?)"), "{p}");
        assert!(!p.contains("SCAN items"), "{p}");
    }

    /// The label count runs every few seconds for each project with the model on: its done
    /// items come from the done items' partial index alone (migration 0023), not from a read of
    /// each done item's row, as `items_open` gave.
    #[tokio::test]
    async fn the_label_signal_reads_indexes_only() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}", dir.path().join("m.db").display())).await.unwrap();
        let Db::Sqlite { read, .. } = &db else { unreachable!() };
        let rows: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(&format!("EXPLAIN QUERY PLAN {LABEL_SIGNAL_SQL}")).bind(1_i64).fetch_all(read).await.unwrap();
        let p = rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("\n");
        assert!(p.contains("SEARCH i USING COVERING INDEX items_done (project_id=?)"), "{p}");
        assert!(p.contains("SEARCH i USING INDEX items_gold (project_id=?)"), "{p}");
        assert!(p.lines().all(|l| !l.starts_with("SCAN ") || l == "SCAN CONSTANT ROW"), "{p}");
    }
}
