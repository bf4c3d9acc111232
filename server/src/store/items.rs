//! Items: chunked insertion for imports, and reading one item.
//!
//! Items of a project with an id above `projects.visible_max_item_id` belong to an import
//! that has not committed (see `store::imports`): every reader here filters them out.
use app::api_types::{ItemKind, ItemView, LineError};
use sqlx::FromRow;

use super::BeginWrite;
use super::{now_ms, Db};
use crate::error::{AppError, AppResult};
use crate::{on_read, on_write};

/// An image already validated and stored in the data directory.
#[derive(Clone, Debug)]
pub struct StoredImage {
    pub sha256: String,
    pub format: String,
    pub width: i64,
    pub height: i64,
    pub bytes: i64,
}

/// One validated record of an import, ready to insert.
#[derive(Clone, Debug)]
pub struct NewItem {
    /// Line number in the uploaded file, for reports.
    pub line: i64,
    pub external_id: Option<String>,
    pub text: Option<String>,
    pub image: Option<StoredImage>,
    pub image_name: Option<String>,
    /// A JSON object, serialized.
    pub meta: String,
    pub weight: f64,
    pub source: Option<String>,
    pub license: Option<String>,
    /// The content's kind tag and the first 128 bits of its SHA-256
    /// (`import::STORED_CONTENT_HASH_LEN`): an import skips content the project already has.
    pub content_hash: String,
    /// The item's place in the `random` order (`crate::stream::rank`).
    pub rank: i64,
    /// The known answer of a gold item: a JSON array of label names, checked against the
    /// project's labels.
    pub gold: Option<String>,
}

/// What one chunk of an import did.
#[derive(Debug, Default)]
pub struct ChunkOutcome {
    pub inserted: i64,
    /// The highest item id inserted (0 if none): the import's watermark on commit.
    pub max_id: i64,
    /// (line, id of the stored item with the same content).
    pub duplicates: Vec<(i64, i64)>,
    /// Lines whose external id is already used by another item of the project.
    pub id_conflicts: Vec<LineError>,
    /// How many rows of the chunk were handled: fewer than all when `insert_chunk` ended its
    /// transaction early to let another write in.
    pub consumed: usize,
    /// The transaction ended early for a labeling write: labelers are at work, so the import's
    /// next transactions stay short (`import::pacing`). Another kind of write (a lead's
    /// settings) only gets its turn.
    pub labeling_waited: bool,
}

const COLUMNS_PER_ROW: usize = 15;
/// Items per batch from the reader of an import to the inserter: well under SQLite's 32,766
/// bound parameters.
pub const INSERT_BATCH: usize = 500;

/// Inserts (a first part of) one chunk of an import as pending rows (invisible until
/// `imports::commit`), in one transaction of INSERT statements of at most `INSERT_BATCH` rows
/// (the chunk's size is `import::pacing`'s choice: short while labelers write, long when nobody
/// waits for the writer). Exact duplicates of items already in the project (by content) are
/// skipped and reported; lines whose external id is taken are reported as conflicts (the
/// import is then refused and its pending rows deleted). Duplicates within the import were
/// removed by validation, so a UNIQUE violation here always concerns another stored item.
///
/// On SQLite the transaction ends early, after the statement in flight, when another write
/// starts waiting for the writer (`writer::labeling_waits`, `writer::interactive_write_waits`;
/// not another import's): a labeler or a lead who writes during a long transaction waits for
/// one statement and the commit, not for the rest of the chunk.
/// `consumed` says how many of the chunk's rows were handled (at least one statement's worth);
/// the caller passes the rest again.
pub async fn insert_chunk(db: &Db, project_id: i64, chunk: &[NewItem]) -> AppResult<ChunkOutcome> {
    if chunk.is_empty() {
        return Ok(ChunkOutcome::default());
    }
    match db {
        Db::Sqlite { write, .. } => {
            let _in_flight = super::SqliteWriteInFlight::enter();
            let _import = super::writer::ImportWrite::enter();
            let cache_kib = writer_cache_kib(db).unwrap_or(super::WRITER_CACHE_KIB);
            insert_chunk_sqlite(write, project_id, chunk, cache_kib).await
        }
        Db::Postgres(pool) => insert_chunk_pg(pool, project_id, chunk).await,
    }
}

/// SQLite: the chunk's statements run on the write connection's raw handle, in the transaction
/// sqlx began. Through sqlx, each of a 500-row statement's 7,500 values was copied into its
/// arguments and handed to the connection's thread, and each inserted row came back through a
/// channel (`RETURNING`); in place, the values are bound straight from the items and the rows
/// inserted are counted, not returned (docs/bench.md, session 18).
async fn insert_chunk_sqlite(
    pool: &sqlx::SqlitePool,
    project_id: i64,
    chunk: &[NewItem],
    cache_kib: u64,
) -> AppResult<ChunkOutcome> {
    let now = now_ms();
    let mut out = ChunkOutcome::default();
    let mut tx = pool.begin_write().await?;
    sqlx::query(&writer_cache_pragma(cache_kib)).execute(&mut *tx).await?;
    {
        let mut handle = tx.lock_handle().await?;
        // SAFETY: the handle is sqlx's open connection, locked for us until `handle` is
        // dropped, after `raw`, which finalizes the statements it prepared when dropped;
        // `from_handle` never closes the connection.
        let raw = unsafe { rusqlite::Connection::from_handle(handle.as_raw_handle().as_ptr()) }?;
        raw.set_prepared_statement_cache_capacity(4);
        for part in chunk.chunks(INSERT_BATCH) {
            if out.consumed > 0 {
                out.labeling_waited = super::writer::labeling_waits();
                if out.labeling_waited || super::writer::interactive_write_waits() {
                    break;
                }
            }
            in_place(|| insert_part_raw(&raw, project_id, part, now, &mut out))?;
            out.consumed += part.len();
        }
        drop(raw);
    }
    tx.commit().await?;
    Ok(out)
}

/// Runs `f`, a statement of ~10 ms, on this thread; a multi-threaded runtime first moves its
/// other tasks to another thread, so no request waits behind it.
fn in_place<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// One statement's rows of a chunk (at most `INSERT_BATCH`), and their images first: items
/// reference them. The rows a statement inserted got ids above every id before it (SQLite's
/// rowids grow from the largest), which tells them from the stored items the skipped ones
/// matched.
fn insert_part_raw(
    raw: &rusqlite::Connection,
    project_id: i64,
    part: &[NewItem],
    now: i64,
    out: &mut ChunkOutcome,
) -> AppResult<()> {
    use rusqlite::OptionalExtension;
    for img in part.iter().filter_map(|item| item.image.as_ref()) {
        raw.prepare_cached(
            "INSERT INTO images (sha256, format, width, height, bytes, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (sha256) DO NOTHING",
        )?
        .execute(rusqlite::params![img.sha256, img.format, img.width, img.height, img.bytes, now])?;
    }
    let max_id = |raw: &rusqlite::Connection| -> rusqlite::Result<i64> {
        raw.prepare_cached("SELECT coalesce(max(id), 0) FROM items")?.query_row([], |r| r.get(0))
    };
    let before = max_id(raw)?;
    let mut insert = raw.prepare_cached(&insert_sql(part.len(), false))?;
    let mut k = 0;
    let mut bind = |v: &dyn rusqlite::ToSql| -> rusqlite::Result<()> {
        k += 1;
        insert.raw_bind_parameter(k, v)
    };
    for item in part {
        let kind = if item.image.is_some() { "image" } else { "text" };
        bind(&project_id)?;
        bind(&item.external_id)?;
        bind(&kind)?;
        bind(&item.text)?;
        bind(&item.image.as_ref().map(|i| i.sha256.as_str()))?;
        bind(&item.image_name)?;
        bind(&item.meta)?;
        bind(&item.weight)?;
        bind(&item.source)?;
        bind(&item.license)?;
        bind(&item.content_hash)?;
        bind(&now)?;
        bind(&0i64)?;
        bind(&item.rank)?;
        bind(&item.gold)?;
    }
    let inserted = insert.raw_execute()?;
    drop(insert);
    if inserted > 0 {
        out.inserted += inserted as i64;
        out.max_id = out.max_id.max(max_id(raw)?);
    }
    if inserted < part.len() {
        // Rows that were not inserted: a duplicate of existing content, or an id clash.
        let mut find = raw.prepare_cached("SELECT id FROM items WHERE project_id = ?1 AND content_hash = ?2")?;
        for item in part {
            match find.query_row(rusqlite::params![project_id, item.content_hash], |r| r.get::<_, i64>(0)).optional()? {
                Some(id) if id > before => {}
                Some(id) => out.duplicates.push((item.line, id)),
                None => out.id_conflicts.push(id_conflict(item)),
            }
        }
    }
    Ok(())
}

/// PostgreSQL: the chunk in one transaction of `INSERT_BATCH`-row statements that return the
/// rows they inserted.
async fn insert_chunk_pg(pool: &sqlx::PgPool, project_id: i64, chunk: &[NewItem]) -> AppResult<ChunkOutcome> {
    let now = now_ms();
    let mut out = ChunkOutcome::default();
    let mut tx = pool.begin_write().await?;
    for part in chunk.chunks(INSERT_BATCH) {
        // Images first: items reference them.
        for img in part.iter().filter_map(|item| item.image.as_ref()) {
            sqlx::query(
                "INSERT INTO images (sha256, format, width, height, bytes, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (sha256) DO NOTHING",
            )
            .bind(&img.sha256)
            .bind(&img.format)
            .bind(img.width)
            .bind(img.height)
            .bind(img.bytes)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let sql = insert_sql(part.len(), true);
        let mut q = sqlx::query_as::<_, (i64, String)>(&sql);
        for item in part {
            let kind = if item.image.is_some() { "image" } else { "text" };
            q = q
                .bind(project_id)
                .bind(item.external_id.as_deref())
                .bind(kind)
                .bind(item.text.as_deref())
                .bind(item.image.as_ref().map(|i| i.sha256.as_str()))
                .bind(item.image_name.as_deref())
                .bind(&item.meta)
                .bind(item.weight)
                .bind(item.source.as_deref())
                .bind(item.license.as_deref())
                .bind(&item.content_hash)
                .bind(now)
                .bind(0i64)
                .bind(item.rank)
                .bind(item.gold.as_deref());
        }
        let rows = q.fetch_all(&mut *tx).await?;
        out.inserted += rows.len() as i64;
        out.max_id = out.max_id.max(rows.iter().map(|r| r.0).max().unwrap_or(0));
        if rows.len() < part.len() {
            let inserted: std::collections::HashSet<&str> = rows.iter().map(|r| r.1.as_str()).collect();
            // Rows that were not inserted: a duplicate of existing content, or an id clash.
            for item in part.iter().filter(|i| !inserted.contains(i.content_hash.as_str())) {
                let existing: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM items WHERE project_id = $1 AND content_hash = $2")
                        .bind(project_id)
                        .bind(&item.content_hash)
                        .fetch_optional(&mut *tx)
                        .await?;
                match existing {
                    Some(id) => out.duplicates.push((item.line, id)),
                    None => out.id_conflicts.push(id_conflict(item)),
                }
            }
        }
        out.consumed += part.len();
    }
    tx.commit().await?;
    Ok(out)
}

/// SQLite's write connection's page cache while an import runs, instead of
/// `store::WRITER_CACHE_KIB`. An import's rows go at random places of two indexes (the content
/// hash, the stream rank); at a million items these outgrow the smaller cache, and a
/// transaction then writes pages out to the WAL, and reads them back, before it commits.
/// (docs/bench.md, session 17). The pages are freed when the last import ends
/// (`fit_writer_cache`).
pub const IMPORT_WRITER_CACHE_KIB: u64 = 128 * 1024;

/// Counts an import as running until `import_ended` (`import::job::ImportJob`).
pub fn import_started(db: &Db) {
    if let Db::Sqlite { imports, .. } = db {
        imports.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Ends what `import_started` began; `fit_writer_cache` then shrinks the cache.
pub fn import_ended(db: &Db) {
    if let Db::Sqlite { imports, .. } = db {
        imports.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The page cache (KiB) the write connection should have now (SQLite only). Every import
/// transaction sets it, and so does each import's end, after its own last transaction: the last
/// import to end leaves the small cache behind, whatever the order of the others.
fn writer_cache_kib(db: &Db) -> Option<u64> {
    let Db::Sqlite { imports, .. } = db else { return None };
    let running = imports.load(std::sync::atomic::Ordering::Relaxed) > 0;
    Some(if running { IMPORT_WRITER_CACHE_KIB } else { super::WRITER_CACHE_KIB })
}

fn writer_cache_pragma(kib: u64) -> String {
    format!("PRAGMA cache_size = -{kib}")
}

/// Gives SQLite's write connection the page cache the running imports call for. When none runs,
/// it also empties the cache (`PRAGMA shrink_memory`): only shrinking it would leave the kept
/// pages scattered over the import's 128 MiB of heap, and the allocator can hand back only the
/// whole pages between them (an export after a million-item import started 37 MiB higher).
/// The labeling writes refill it from the OS's page cache. `heap::release_free_memory` then
/// returns the freed pages to the OS.
pub async fn fit_writer_cache(db: &Db) -> AppResult<()> {
    let Some(kib) = writer_cache_kib(db) else { return Ok(()) };
    on_write!(db, pool => {
        let mut conn = pool.acquire().await?;
        sqlx::query(&writer_cache_pragma(kib)).execute(&mut *conn).await?;
        if kib == super::WRITER_CACHE_KIB {
            sqlx::query("PRAGMA shrink_memory").execute(&mut *conn).await?;
        }
    });
    Ok(())
}

/// Once an import is known to be refused (an id conflict), its later chunks are only checked,
/// on the read pool, so the count of conflicts in the report stays complete without writing.
pub async fn check_chunk(db: &Db, project_id: i64, chunk: &[NewItem]) -> AppResult<ChunkOutcome> {
    let mut out = ChunkOutcome::default();
    for item in chunk {
        let existing: Option<i64> = on_read!(db, pool => sqlx::query_scalar(
            "SELECT id FROM items WHERE project_id = $1 AND content_hash = $2",
        )
        .bind(project_id)
        .bind(&item.content_hash)
        .fetch_optional(pool)
        .await?);
        if let Some(id) = existing {
            out.duplicates.push((item.line, id));
            continue;
        }
        let Some(external_id) = item.external_id.as_deref() else { continue };
        let taken: Option<i64> = on_read!(db, pool => sqlx::query_scalar(
            "SELECT id FROM items WHERE project_id = $1 AND external_id = $2",
        )
        .bind(project_id)
        .bind(external_id)
        .fetch_optional(pool)
        .await?);
        if taken.is_some() {
            out.id_conflicts.push(id_conflict(item));
        }
    }
    out.consumed = chunk.len();
    Ok(out)
}

fn id_conflict(item: &NewItem) -> LineError {
    LineError {
        line: item.line,
        field: "id".into(),
        reason: format!(
            "the id {:?} is already used by another item of this project",
            item.external_id.as_deref().unwrap_or_default()
        ),
    }
}

/// SQLite looks named parameters (`$N`) up one by one while preparing: with 6,500 of them a
/// batch took ~95 ms to prepare, against ~1 ms with positional `?`. PostgreSQL needs `$N`.
fn insert_sql(rows: usize, is_pg: bool) -> String {
    let mut sql = String::from(
        "INSERT INTO items (project_id, external_id, kind, text, image_sha256, image_name, meta, weight, \
         source, license, content_hash, created_at, label_count, rank, gold) VALUES ",
    );
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..COLUMNS_PER_ROW {
            if c > 0 {
                sql.push(',');
            }
            if is_pg {
                sql.push('$');
                sql.push_str(&(r * COLUMNS_PER_ROW + c + 1).to_string());
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT DO NOTHING");
    if is_pg {
        sql.push_str(" RETURNING id, content_hash");
    }
    sql
}

#[derive(FromRow)]
pub struct ItemRow {
    pub id: i64,
    pub project_id: i64,
    pub external_id: Option<String>,
    pub kind: String,
    pub text: Option<String>,
    pub image_sha256: Option<String>,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub meta: String,
}

impl ItemRow {
    /// `ITEM_COLUMNS` of a row of `store::statements`.
    pub(crate) fn from_row(r: &super::statements::Row) -> crate::error::AppResult<ItemRow> {
        Ok(ItemRow {
            id: r.i64("id")?,
            project_id: r.i64("project_id")?,
            external_id: r.opt_string("external_id")?,
            kind: r.string("kind")?,
            text: r.opt_string("text")?,
            image_sha256: r.opt_string("image_sha256")?,
            width: r.opt_i64("width")?,
            height: r.opt_i64("height")?,
            meta: r.string("meta")?,
        })
    }
}

pub const ITEM_COLUMNS: &str = "i.id, i.project_id, i.external_id, i.kind, i.text, i.image_sha256, \
     img.width, img.height, i.meta";
pub const ITEM_FROM: &str = "items i LEFT JOIN images img ON img.sha256 = i.image_sha256";
/// The condition that hides the pending rows of a running import (alias `i` for items).
pub const ITEM_VISIBLE: &str = "i.id <= (SELECT p.visible_max_item_id FROM projects p WHERE p.id = i.project_id)";

impl ItemRow {
    pub fn into_view(self) -> ItemView {
        let kind = if self.kind == "image" { ItemKind::Image } else { ItemKind::Text };
        ItemView {
            id: self.id,
            external_id: self.external_id,
            kind,
            text: self.text,
            image_url: (kind == ItemKind::Image).then(|| format!("/api/items/{}/image", self.id)),
            width: self.width,
            height: self.height,
            meta: serde_json::from_str(&self.meta).unwrap_or_default(),
        }
    }
}

pub async fn get_item(db: &Db, item_id: i64) -> AppResult<ItemRow> {
    let row = on_read!(db, pool => sqlx::query_as::<_, ItemRow>(&format!(
        "SELECT {ITEM_COLUMNS} FROM {ITEM_FROM} WHERE i.id = $1 AND {ITEM_VISIBLE}"
    ))
    .bind(item_id)
    .fetch_optional(pool)
    .await?);
    row.ok_or_else(|| AppError::not_found(format!("no item {item_id}")))
}

/// The format of a stored image, for its content type.
pub async fn image_format(db: &Db, sha256: &str) -> AppResult<Option<String>> {
    Ok(on_read!(db, pool => sqlx::query_scalar("SELECT format FROM images WHERE sha256 = $1")
        .bind(sha256)
        .fetch_optional(pool)
        .await?))
}
