//! Reading a project's items with their annotations, page by page, for streamed exports.
use super::Db;
use crate::error::AppResult;
use crate::on_read;

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
/// - complete items only: `complete = 1`, so `items_open` ranges on `(project_id, 1, id)`;
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
    let mut items: Vec<ExportItem> = on_read!(db, pool => sqlx::query_as(sql)
        .bind(project_id)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await?);
    let annotations = match (items.first(), items.last()) {
        (Some(first), Some(last)) => on_read!(db, pool => sqlx::query_as(ANNOTATIONS_PAGE)
            .bind(project_id)
            .bind(first.id)
            .bind(last.id)
            .fetch_all(pool)
            .await?),
        _ => Vec::new(),
    };
    review_page(db, project_id, &mut items).await?;
    Ok(ExportPage { items, annotations })
}

/// Fills in each item's consensus, latest decision and auto label: three range reads of the page's item ids
/// (the `consensus` primary key, the `review_decisions_project` index), so the items query
/// stays as it is and a page costs the same at any depth.
async fn review_page(db: &Db, project_id: i64, items: &mut [ExportItem]) -> AppResult<()> {
    let (Some(first), Some(last)) = (items.first().map(|i| i.id), items.last().map(|i| i.id)) else {
        return Ok(());
    };
    let consensus: Vec<(i64, String, f64)> = on_read!(db, pool => sqlx::query_as(
        "SELECT item_id, labels, posterior FROM consensus
         WHERE item_id >= $2 AND item_id <= $3 AND project_id = $1 ORDER BY item_id",
    )
    .bind(project_id)
    .bind(first)
    .bind(last)
    .fetch_all(pool)
    .await?);
    // Ordered by item then id: the last row of an item is its latest decision.
    let decisions: Vec<(i64, String, String)> = on_read!(db, pool => sqlx::query_as(
        "SELECT item_id, labels, note FROM review_decisions
         WHERE project_id = $1 AND item_id >= $2 AND item_id <= $3 ORDER BY item_id, id",
    )
    .bind(project_id)
    .bind(first)
    .bind(last)
    .fetch_all(pool)
    .await?);
    let auto = super::prelabels::accepted_between(db, project_id, first, last).await?;
    let mut a = auto.into_iter().peekable();
    let (mut c, mut d) = (consensus.into_iter().peekable(), decisions.into_iter().peekable());
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
    Ok(())
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
        assert!(complete.contains("items_open (project_id=? AND complete=? AND id>? AND id<?)"), "{complete}");
        let annotations = plan(read, ANNOTATIONS_PAGE).await;
        assert!(annotations.contains("SEARCH a USING INDEX sqlite_autoindex_annotations_1 (item_id>? AND item_id<?)"), "{annotations}");
        for p in [&items, &complete] {
            assert!(!p.contains("TEMP B-TREE"), "a page must not sort the project: {p}");
        }
    }
}
