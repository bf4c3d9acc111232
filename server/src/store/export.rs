//! Reading a project's items with their annotations, page by page, for streamed exports.
use super::Db;
use crate::error::AppResult;

#[derive(sqlx::FromRow, Debug)]
pub struct ExportItem {
    pub id: i64,
    pub external_id: Option<String>,
    pub kind: String,
    pub text: Option<String>,
    pub image_sha256: Option<String>,
    pub image_name: Option<String>,
    pub meta: String,
    pub weight: f64,
    pub source: Option<String>,
    pub license: Option<String>,
    pub label_count: i64,
    /// The gold answer (JSON array), if the item is a gold item.
    pub gold: Option<String>,
    /// Labels the item needs: its own overlap, else the project's.
    pub k: i64,
    /// Its consensus and latest review decision, read per page (`review_page`).
    #[sqlx(skip)]
    pub review: ExportReview,
}

/// What the final label of an exported item is made of, besides its gold answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExportReview {
    /// The consensus row's labels (JSON array) and posterior.
    pub consensus: Option<String>,
    pub posterior: Option<f64>,
    /// The latest review decision's labels (JSON array) and note.
    pub decision: Option<String>,
    pub note: Option<String>,
    /// Its auto-accepted pre-label (issue 10) and the (source, labels JSON) it came from.
    pub auto: Option<crate::review::AutoLabel>,
    pub auto_stratum: Option<(i64, String)>,
}

#[derive(sqlx::FromRow, Debug)]
pub struct ExportAnnotation {
    pub item_id: i64,
    pub username: String,
    pub labels: String,
    pub time_ms: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

pub struct ExportPage {
    pub items: Vec<ExportItem>,
    /// Sorted by item id, then annotation id.
    pub annotations: Vec<ExportAnnotation>,
}

const ITEMS_PAGE: &str =
    "SELECT id, external_id, kind, text, image_sha256, image_name, meta, weight, source, license, label_count,
            gold, COALESCE(overlap, (SELECT p.overlap FROM projects p WHERE p.id = $1)) AS k
     FROM items
     WHERE +project_id = $1 AND id > $2
       AND id <= (SELECT p.visible_max_item_id FROM projects p WHERE p.id = $1)
     ORDER BY id LIMIT $3";
const ITEMS_COMPLETE_PAGE: &str =
    "SELECT id, external_id, kind, text, image_sha256, image_name, meta, weight, source, license, label_count,
            gold, COALESCE(overlap, (SELECT p.overlap FROM projects p WHERE p.id = $1)) AS k
     FROM items
     WHERE project_id = $1 AND complete = 1 AND id > $2
       AND id <= (SELECT p.visible_max_item_id FROM projects p WHERE p.id = $1)
     ORDER BY id LIMIT $3";
const ANNOTATIONS_PAGE: &str = "SELECT a.item_id, u.username, a.labels, a.time_ms, a.created_at, a.updated_at
     FROM annotations a JOIN users u ON u.id = a.user_id
     WHERE a.item_id >= $2 AND a.item_id <= $3 AND +a.project_id = $1
     ORDER BY a.item_id, a.id";

/// Up to `limit` items with id > `after`, in id order: keyset paging, so each page costs the
/// same however deep the export is. Pending rows of a running import are left out.
///
/// Why the queries are shaped this way (SQLite has no statistics here, so its planner goes by
/// the indexes it sees): with `project_id = $1 AND complete >= $3` it picked
/// `items_open(project_id, complete, id)` with a range on `complete`, which cannot also range
/// on `id`: every page read and sorted all of the project's items (text included) to keep
/// 2,000, so a 1,000,000-item export took 34 s and its sort buffers 230 MiB. Now:
/// - every item: the rowid range `id > after` (the unary `+` keeps the planner off the
///   project_id indexes; the project check is a filter on rows the range reads anyway);
/// - complete items only: `complete = 1`, so the done items' partial index `items_done`
///   (migration 0023) ranges on `(project_id, id)`;
/// - annotations: the page's item id range through the `UNIQUE (item_id, user_id)` index
///   (before: `annotations_user_time` on `project_id`, every annotation of the project per
///   page). Only the page's annotations are sorted.
/// Both forms are valid PostgreSQL too, where they use the primary keys in the same way.
pub async fn export_page(
    db: &Db,
    project_id: i64,
    after: i64,
    limit: i64,
    complete_only: bool,
) -> AppResult<ExportPage> {
    let sql = if complete_only { ITEMS_COMPLETE_PAGE } else { ITEMS_PAGE };
    let (mut items, annotations, review) = match db {
        Db::Sqlite { inline, .. } => {
            let inline = inline.clone();
            tokio::task::spawn_blocking(move || inline.with(|conn| sqlite_page(conn, sql, project_id, after, limit)))
                .await
                .map_err(anyhow::Error::from)??
        }
        Db::Postgres(pool) => {
            let items: Vec<ExportItem> = sqlx::query_as(sql).bind(project_id).bind(after).bind(limit).fetch_all(pool).await?;
            let (annotations, review) = match (items.first(), items.last()) {
                (Some(first), Some(last)) => (
                    sqlx::query_as(ANNOTATIONS_PAGE).bind(project_id).bind(first.id).bind(last.id).fetch_all(pool).await?,
                    postgres_review(pool, project_id, first.id, last.id).await?,
                ),
                _ => Default::default(),
            };
            (items, annotations, review)
        }
    };
    review.attach(&mut items);
    Ok(ExportPage { items, annotations })
}

/// SQLite: a page's items and their annotations, read on one of our own connections
/// (`store::inline_reader`) in one read transaction, on a blocking thread. Through sqlx every
/// row was a hand-off from its SQLite thread to the export's task (a futex wake each way): the
/// profile of a 1,000,000-item export had both threads busy with those and ~19 % idle
/// (docs/bench.md, session 15). Columns are read by position, in the statements' order.
fn sqlite_page(
    conn: &mut rusqlite::Connection,
    items_sql: &str,
    project_id: i64,
    after: i64,
    limit: i64,
) -> AppResult<(Vec<ExportItem>, Vec<ExportAnnotation>, ReviewRows)> {
    // One snapshot for every statement: the annotations and review rows of exactly the items read.
    let tx = conn.transaction()?;
    let mut items = Vec::new();
    {
        let mut stmt = tx.prepare_cached(items_sql)?;
        let mut rows = stmt.query(rusqlite::named_params! { "$1": project_id, "$2": after, "$3": limit })?;
        while let Some(r) = rows.next()? {
            items.push(ExportItem {
                id: r.get(0)?,
                external_id: r.get(1)?,
                kind: r.get(2)?,
                text: r.get(3)?,
                image_sha256: r.get(4)?,
                image_name: r.get(5)?,
                meta: r.get(6)?,
                weight: r.get(7)?,
                source: r.get(8)?,
                license: r.get(9)?,
                label_count: r.get(10)?,
                gold: r.get(11)?,
                k: r.get(12)?,
                review: ExportReview::default(),
            });
        }
    }
    let mut annotations = Vec::new();
    let mut review = ReviewRows::default();
    if let (Some(first), Some(last)) = (items.first().map(|i| i.id), items.last().map(|i| i.id)) {
        review = sqlite_review(&tx, project_id, first, last)?;
        let mut stmt = tx.prepare_cached(ANNOTATIONS_PAGE)?;
        let mut rows = stmt.query(rusqlite::named_params! { "$1": project_id, "$2": first, "$3": last })?;
        while let Some(r) = rows.next()? {
            annotations.push(ExportAnnotation {
                item_id: r.get(0)?,
                username: r.get(1)?,
                labels: r.get(2)?,
                time_ms: r.get(3)?,
                created_at: r.get(4)?,
                updated_at: r.get(5)?,
            });
        }
    }
    tx.commit()?;
    Ok((items, annotations, review))
}

/// A page's consensus rows. `+project_id`: without it SQLite reads the page through
/// `consensus_project (project_id=?)`, every consensus row of the project on every page (a
/// labeled million-item project took 37.9 s to export instead of 10.5: docs/bench.md,
/// session 30).
const CONSENSUS_PAGE: &str = "SELECT item_id, labels, posterior FROM consensus
     WHERE item_id >= $2 AND item_id <= $3 AND +project_id = $1 ORDER BY item_id";
const DECISIONS_PAGE: &str = "SELECT item_id, labels, note FROM review_decisions
     WHERE project_id = $1 AND item_id >= $2 AND item_id <= $3 ORDER BY item_id, id";

/// A page's review rows, each list in item id order: consensus rows (item, labels, posterior),
/// review decisions (item, labels, note; an item's latest last) and auto-accepted pre-labels
/// (item, source, labels JSON, the auto label). Three range reads of the page's item ids (the
/// `consensus` primary key, the `review_decisions_project` index, the `prelabel_accepted`
/// primary key), so the items query stays as it is and a page costs the same at any depth.
#[derive(Default)]
struct ReviewRows {
    consensus: Vec<(i64, String, f64)>,
    decisions: Vec<(i64, String, String)>,
    accepted: Vec<(i64, i64, String, crate::review::AutoLabel)>,
}

impl ReviewRows {
    /// Fills in each item's consensus, latest decision and auto label.
    fn attach(self, items: &mut [ExportItem]) {
        let mut c = self.consensus.into_iter().peekable();
        let mut d = self.decisions.into_iter().peekable();
        let mut a = self.accepted.into_iter().peekable();
        for item in items.iter_mut() {
            while let Some((id, labels, posterior)) = c.next_if(|r| r.0 <= item.id) {
                if id == item.id {
                    item.review.consensus = Some(labels);
                    item.review.posterior = Some(posterior);
                }
            }
            while let Some((id, labels, note)) = d.next_if(|r| r.0 <= item.id) {
                if id == item.id {
                    item.review.decision = Some(labels);
                    item.review.note = Some(note);
                }
            }
            while let Some((id, source, labels, label)) = a.next_if(|r| r.0 <= item.id) {
                if id == item.id {
                    item.review.auto = Some(label);
                    item.review.auto_stratum = Some((source, labels));
                }
            }
        }
    }
}

/// SQLite: the review rows of items `first..=last`, in the page's read transaction (one
/// snapshot with its items). Through sqlx every row was a hand-off between two threads, as the
/// items' were (see `sqlite_page`): the JSONL export of 3,000,000 annotations took 10.1–11.2 s
/// with these reads there, 9.1–9.4 s here (docs/bench.md, session 31).
fn sqlite_review(tx: &rusqlite::Transaction, project_id: i64, first: i64, last: i64) -> AppResult<ReviewRows> {
    let range = rusqlite::named_params! { "$1": project_id, "$2": first, "$3": last };
    let consensus = tx
        .prepare_cached(CONSENSUS_PAGE)?
        .query_map(range, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let decisions = tx
        .prepare_cached(DECISIONS_PAGE)?
        .query_map(range, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let accepted = super::prelabels::accepted_between_sqlite(tx, project_id, first, last)?;
    Ok(ReviewRows { consensus, decisions, accepted })
}

async fn postgres_review(pool: &sqlx::PgPool, project_id: i64, first: i64, last: i64) -> AppResult<ReviewRows> {
    let consensus = sqlx::query_as(CONSENSUS_PAGE).bind(project_id).bind(first).bind(last).fetch_all(pool).await?;
    let decisions = sqlx::query_as(DECISIONS_PAGE).bind(project_id).bind(first).bind(last).fetch_all(pool).await?;
    let accepted = super::prelabels::accepted_between_postgres(pool, project_id, first, last).await?;
    Ok(ReviewRows { consensus, decisions, accepted })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn plan(pool: &sqlx::SqlitePool, sql: &str) -> String {
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let rows: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(&explain).bind(1_i64).bind(0_i64).bind(2000_i64).fetch_all(pool).await.unwrap();
        rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("\n")
    }

    /// SQLite's plan for each page query: every page must be a range on an index or the rowid
    /// (no scan of the whole project, no sort of it). The old items query planned
    /// `items_open (project_id=? AND complete>?)` + `USE TEMP B-TREE FOR ORDER BY`, the old
    /// annotations query `annotations_user_time (project_id=?)`: both read the whole project
    /// on every page, so this test fails on them.
    #[tokio::test]
    async fn each_export_page_reads_a_range_not_the_whole_project() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}", dir.path().join("p.db").display())).await.unwrap();
        let Db::Sqlite { read, .. } = &db else { unreachable!() };
        let items = plan(read, ITEMS_PAGE).await;
        assert!(items.contains("SEARCH items USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"), "{items}");
        let complete = plan(read, ITEMS_COMPLETE_PAGE).await;
        assert!(complete.contains("items_done (project_id=? AND id>? AND id<?)"), "{complete}");
        let annotations = plan(read, ANNOTATIONS_PAGE).await;
        assert!(annotations.contains("SEARCH a USING INDEX sqlite_autoindex_annotations_1 (item_id>? AND item_id<?)"), "{annotations}");
        let consensus = plan(read, CONSENSUS_PAGE).await;
        assert!(consensus.contains("SEARCH consensus USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"), "{consensus}");
        let decisions = plan(read, DECISIONS_PAGE).await;
        let range = "review_decisions_project (project_id=? AND item_id>? AND item_id<?)";
        assert!(decisions.contains(range), "{decisions}");
        let accepted = plan(read, &super::super::prelabels::ACCEPTED_PAGE).await;
        assert!(accepted.contains("SEARCH a USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"), "{accepted}");
        for p in [&items, &complete, &consensus, &decisions, &accepted] {
            assert!(!p.contains("TEMP B-TREE"), "a page must not sort the project: {p}");
        }
    }

    /// The SQLite page read (`sqlite_page`, columns by position) gives what sqlx's did: every
    /// column in its place, NULLs as None, the project's overlap for an item without its own,
    /// only the page's annotations in (item, id) order, and nothing past the visible bound.
    #[tokio::test]
    async fn a_sqlite_page_reads_every_column_in_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}", dir.path().join("p.db").display())).await.unwrap();
        let Db::Sqlite { write, .. } = &db else { unreachable!() };
        for sql in [
            "INSERT INTO users (id, username, password_hash, role, created_at) VALUES (1, 'ann', '', 'labeler', 0), (2, 'bo', '', 'labeler', 0)",
            "INSERT INTO projects (id, name, instructions, kind, labels, overlap, lease_seconds, created_at, item_count, done_count, visible_max_item_id)
             VALUES (1, 'p', '', 'single', '[]', 3, 600, 0, 3, 0, 3)",
            "INSERT INTO items (id, project_id, external_id, kind, text, meta, weight, content_hash, created_at, label_count, gold, overlap, source, license) VALUES
             (1, 1, 'x1', 'text', 'one', '{\"r\":\"eu\"}', 1, 'a', 0, 2, NULL, NULL, 'web', 'cc-by'),
             (2, 1, NULL, 'text', 'two', '{}', 2.5, 'b', 0, 0, '[\"pos\"]', 5, NULL, NULL),
             (3, 1, NULL, 'text', 'three', '{}', 1, 'c', 0, 1, NULL, NULL, NULL, NULL),
             (4, 1, NULL, 'text', 'pending', '{}', 1, 'd', 0, 0, NULL, NULL, NULL, NULL)",
            "INSERT INTO annotations (id, project_id, item_id, user_id, labels, time_ms, created_at, updated_at) VALUES
             (7, 1, 3, 1, '[\"neg\"]', 30, 5, 6), (5, 1, 1, 2, '[\"pos\"]', 10, 1, 2), (6, 1, 1, 1, '[\"neg\"]', 20, 3, 4)",
        ] {
            sqlx::query(sql).execute(write).await.unwrap();
        }
        let page = export_page(&db, 1, 0, 2, false).await.unwrap();
        let got: Vec<_> = page
            .items
            .iter()
            .map(|i| (i.id, i.external_id.clone(), i.text.clone(), i.meta.clone(), i.weight, i.source.clone(), i.license.clone(), i.label_count, i.gold.clone(), i.k))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, Some("x1".into()), Some("one".into()), r#"{"r":"eu"}"#.into(), 1.0, Some("web".into()), Some("cc-by".into()), 2, None, 3),
                (2, None, Some("two".into()), "{}".into(), 2.5, None, None, 0, Some(r#"["pos"]"#.into()), 5),
            ]
        );
        let annotations: Vec<_> = page.annotations.iter().map(|a| (a.item_id, a.username.as_str(), a.labels.as_str(), a.time_ms, a.created_at, a.updated_at)).collect();
        assert_eq!(annotations, vec![(1, "bo", r#"["pos"]"#, 10, 1, 2), (1, "ann", r#"["neg"]"#, 20, 3, 4)]);
        let rest = export_page(&db, 1, 2, 2, false).await.unwrap();
        assert_eq!(rest.items.iter().map(|i| i.id).collect::<Vec<_>>(), vec![3], "item 4 is past the visible bound");
        assert_eq!(rest.annotations.len(), 1);
    }
}
