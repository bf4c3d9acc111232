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

/// Up to `limit` items with id > `after`, in id order (keyset paging: each page costs the
/// same however deep the export is). Pending rows of a running import are left out.
pub async fn export_page(
    db: &Db,
    project_id: i64,
    after: i64,
    limit: i64,
    complete_only: bool,
) -> AppResult<ExportPage> {
    let items: Vec<ExportItem> = on_read!(db, pool => sqlx::query_as(
        "SELECT id, external_id, kind, text, image_sha256, image_name, meta, weight, source, license, label_count
         FROM items
         WHERE project_id = $1 AND id > $2 AND complete >= $3
           AND id <= (SELECT p.visible_max_item_id FROM projects p WHERE p.id = $1)
         ORDER BY id LIMIT $4",
    )
    .bind(project_id)
    .bind(after)
    .bind(complete_only as i64)
    .bind(limit)
    .fetch_all(pool)
    .await?);
    let annotations = match (items.first(), items.last()) {
        (Some(first), Some(last)) => on_read!(db, pool => sqlx::query_as(
            "SELECT a.item_id, u.username, a.labels, a.time_ms, a.created_at, a.updated_at
             FROM annotations a JOIN users u ON u.id = a.user_id
             WHERE a.project_id = $1 AND a.item_id >= $2 AND a.item_id <= $3
             ORDER BY a.item_id, a.id",
        )
        .bind(project_id)
        .bind(first.id)
        .bind(last.id)
        .fetch_all(pool)
        .await?),
        _ => Vec::new(),
    };
    Ok(ExportPage { items, annotations })
}
