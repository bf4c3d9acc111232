//! Imports: all or nothing, streamed, with a report a person can act on, and never holding
//! the database's writer for more than a few milliseconds while others wait for it.
//!
//! An upload is first spooled to a file in this instance's spool directory (so the request
//! body never sits in memory), then read twice, side by side, on blocking threads:
//! 1. validation: every record is parsed and checked, images are decoded under limits and
//!    stored (content-addressed), and exact duplicates within the file are found. Any bad
//!    line: nothing is imported, the first 100 bad lines are reported, and the images this
//!    import stored are removed again unless something else uses them.
//! 2. insertion: the records are read again, each only once validation has checked it
//!    (`lead`), and sent in batches to the store, which inserts them in transactions sized by
//!    `pacing` (short while labelers write) as pending rows, invisible to every reader (see
//!    `store::imports`). It stops at validation's first bad line. Only when validation found
//!    no bad line, the insertion reading has reported success (no I/O error, no line that
//!    changed, no panic) and no id clashed with a stored item is the import committed: one
//!    short statement makes all its rows visible at once. Otherwise its pending rows are
//!    deleted in short chunks, and its new images collected.
//!
//! Why not one transaction (as before): on SQLite it held the single writer connection for the
//! whole insertion pass, and every labeler's submission waited behind it. Why not a staging
//! table copied over at the end: the copy of a million rows is itself one long write; marking
//! rows visible by a watermark costs one row update.
//!
//! The import runs on a task of its own (`tokio::spawn`), so a client that hangs up does not
//! cut it short between two chunks; `ImportJob` still cleans up if the task dies.
pub mod images;
pub mod job;
pub mod label_studio;
pub mod lead;
pub mod pacing;
pub mod record;
pub mod sources;
pub mod spool;

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use app::api_types::{DuplicateLine, ImportReport, LabelKind, LineError};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::{AppError, AppResult};
use crate::store::imports::EndState;
use crate::store::items::{ChunkOutcome, NewItem, StoredImage, INSERT_BATCH};
use crate::store;
use images::Claims;
pub use job::{ImportCtx, ImportGate, ImportJob};
use job::Progress;
use lead::Lead;
use record::{Content, FieldError, Record};
use sources::Records;

pub const MAX_REPORTED: usize = 100;
/// Batches (of `INSERT_BATCH` rows) the second reading may run ahead of the inserter: about one
/// transaction's worth when nobody else writes (`pacing`), so the next transaction's rows are
/// parsed while the current one is written instead of after it (at most ~16,000 rows held).
const READ_AHEAD_BATCHES: usize = 32;
pub const MAX_DATA_FILE_BYTES: u64 = 8 * 1024 * 1024 * 1024;
/// Entries a zip may hold (its directory is read into memory whole).
pub const MAX_ZIP_ENTRIES: usize = 200_000;
/// The uncompressed size of all entries of a zip together, as declared by its directory; no
/// entry is read past its declared size, so this also bounds what is actually read.
pub const MAX_ZIP_UNCOMPRESSED: u64 = 32 * 1024 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportFormat {
    Jsonl,
    Csv,
    Zip,
    /// Label Studio's JSON export (issue 9: teams move in from Label Studio).
    LabelStudio,
}

impl ImportFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" | "json" => Some(Self::Jsonl),
            "csv" => Some(Self::Csv),
            "zip" => Some(Self::Zip),
            "label-studio" | "label_studio" | "labelstudio" | "ls" => Some(Self::LabelStudio),
            _ => None,
        }
    }

    /// The name `parse` reads back (the API's `?format=`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Jsonl => "jsonl",
            Self::Csv => "csv",
            Self::Zip => "zip",
            Self::LabelStudio => "label-studio",
        }
    }

    /// Guesses from a file name's extension (`.json` stays JSONL, as it always was: a Label
    /// Studio export is named with `--format label-studio`).
    pub fn from_file_name(name: &str) -> Option<Self> {
        Self::parse(Path::new(name).extension()?.to_str()?)
    }
}

/// Where image bytes come from while importing.
pub trait ImageSource: Send {
    fn read(&mut self, name: &str) -> Result<Vec<u8>, String>;
}

struct NoImages;
impl ImageSource for NoImages {
    fn read(&mut self, _: &str) -> Result<Vec<u8>, String> {
        Err("image items need a zip upload holding the data file and the images it names \
             (or upload images one by one)"
            .into())
    }
}

struct ZipImages {
    archive: zip::ZipArchive<File>,
    data_file: String,
}
impl ImageSource for ZipImages {
    fn read(&mut self, name: &str) -> Result<Vec<u8>, String> {
        let full = sources::zip_image_name(&self.data_file, name)?;
        let entry = self
            .archive
            .by_name(&full)
            .map_err(|_| format!("the zip has no file {full:?}"))?;
        let declared = entry.size();
        if declared > images::MAX_IMAGE_BYTES {
            return Err(format!("{full:?} is larger than {} MiB", images::MAX_IMAGE_BYTES >> 20));
        }
        // Never past the declared size: the directory's sizes were checked against the limits.
        sources::read_limited(entry, declared)
            .map_err(|_| format!("{full:?} holds more bytes than the zip's directory declares"))
    }
}

/// Files uploaded one by one and spooled to disk, by name.
struct FileImages(HashMap<String, PathBuf>);
impl ImageSource for FileImages {
    fn read(&mut self, name: &str) -> Result<Vec<u8>, String> {
        let path = self.0.get(name).ok_or_else(|| format!("no uploaded file {name:?}"))?;
        let file = File::open(path).map_err(|e| format!("cannot read the upload of {name:?}: {e}"))?;
        sources::read_limited(file, images::MAX_IMAGE_BYTES).map_err(|e| format!("{name:?}: {e}"))
    }
}

/// The two readings of an upload (see the module's documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    Validation,
    Insertion,
}

/// Opens the records of an upload with their image source; called once per reading (the
/// readings are the same: it is named for tests that make one of them fail).
pub type Opener = Arc<dyn Fn(Reading) -> AppResult<(Records, Box<dyn ImageSource>)> + Send + Sync>;

/// The images validation stored, for collecting them if the import does not commit.
#[derive(Default)]
struct Stored {
    claims: Claims,
    /// Images whose files this import created.
    created: Vec<String>,
}

/// What validation learned, for the insertion pass.
#[derive(Default)]
struct Validation {
    report: ImportReport,
    /// Lines that repeat content seen earlier in the file (skipped on insertion).
    duplicate_of_line: HashMap<i64, i64>,
}

/// Lines between two looks at the shutdown token.
const CANCEL_CHECK_LINES: i64 = 1000;

fn cancelled_error() -> io::Error {
    io::Error::other("the server is shutting down")
}

fn content_hash(content: &Content, image: Option<&StoredImage>) -> String {
    match (content, image) {
        (_, Some(img)) => format!("i:{}", img.sha256),
        (Content::Text(t), None) => format!("t:{}", hex::encode(Sha256::digest(t.as_bytes()))),
        (Content::Image(_), None) => unreachable!("image records are resolved before hashing"),
    }
}

/// The characters of a content hash that `items.content_hash` keeps: the kind tag and the first
/// 128 bits of the SHA-256 (migration 0022). The project's unique index on it takes rows in
/// random order, and at a million items the full 66 characters made it the import's largest
/// cost: its pages no longer fit the writer's cache. 128 bits still tell contents apart (the
/// validation pass already compares only those), and the rank keeps being drawn from the whole
/// hash, so stream orders are the same as before.
pub const STORED_CONTENT_HASH_LEN: usize = 34;

fn stored_content_hash(mut full: String) -> String {
    full.truncate(STORED_CONTENT_HASH_LEN);
    full
}

/// What an import's records are checked against and stamped with, read once when it starts:
/// the project (whose id seeds each item's rank) and its label schema (gold answers must use
/// its labels). Once a gold answer is stored, even as a pending row, a settings change may not
/// remove its labels (`store::projects::update_project` counts them as in use).
#[derive(Clone, Debug)]
pub struct Target {
    pub project_id: i64,
    pub kind: LabelKind,
    /// The label names, in the project's order.
    pub labels: Vec<String>,
}

impl Target {
    pub fn of(project: &app::api_types::Project) -> Target {
        Target {
            project_id: project.id,
            kind: project.kind,
            labels: project.labels.iter().map(|l| l.name.clone()).collect(),
        }
    }
}

/// Checks a gold answer against the project's labels; returns it as stored (a JSON array in
/// the project's label order). The rules are a submission's: known labels, none twice,
/// exactly one in a single-label project.
pub fn check_gold(target: &Target, gold: &[String]) -> Result<String, FieldError> {
    let mut seen = std::collections::HashSet::new();
    for l in gold {
        if !target.labels.contains(l) {
            return Err(FieldError::new(
                "gold",
                format!("unknown label {l:?} (this project's labels: {})", target.labels.join(", ")),
            ));
        }
        if !seen.insert(l.as_str()) {
            return Err(FieldError::new("gold", format!("the label {l:?} is given twice")));
        }
    }
    if gold.is_empty() {
        return Err(FieldError::new("gold", "names no label: give a label name, or leave gold out"));
    }
    if target.kind == LabelKind::Single && gold.len() != 1 {
        return Err(FieldError::new(
            "gold",
            format!("names {} labels, but this project takes exactly one label per item", gold.len()),
        ));
    }
    let ordered: Vec<&String> = target.labels.iter().filter(|l| seen.contains(l.as_str())).collect();
    Ok(serde_json::to_string(&ordered).unwrap_or_default())
}

/// Turns a checked record into an insertable item, resolving its image from `cache` or, on
/// first sight, through `store` (which validates and stores it), and checking its gold answer.
fn resolve(
    target: &Target,
    line: i64,
    record: Record,
    cache: &mut HashMap<String, StoredImage>,
    store: &mut dyn FnMut(&str) -> Result<StoredImage, String>,
) -> Result<NewItem, FieldError> {
    let gold = record.gold.as_deref().map(|g| check_gold(target, g)).transpose()?;
    let (text, image, image_name) = match &record.content {
        Content::Text(t) => (Some(t.clone()), None, None),
        Content::Image(name) => {
            let stored = match cache.get(name) {
                Some(s) => s.clone(),
                None => {
                    let stored = store(name).map_err(|e| FieldError::new("image", e))?;
                    cache.insert(name.clone(), stored.clone());
                    stored
                }
            };
            (None, Some(stored), Some(name.clone()))
        }
    };
    let content_hash = content_hash(&record.content, image.as_ref());
    let rank = crate::stream::rank(target.project_id, record.external_id.as_deref(), &content_hash);
    Ok(NewItem {
        line,
        external_id: record.external_id,
        text,
        image,
        image_name,
        meta: serde_json::Value::Object(record.meta).to_string(),
        weight: record.weight,
        source: record.source,
        license: record.license,
        content_hash: stored_content_hash(content_hash),
        rank,
        gold,
    })
}

fn validate(
    target: &Target,
    records: Records,
    image_source: &mut dyn ImageSource,
    data_dir: &Path,
    stored: &mut Stored,
    cancel: &CancellationToken,
    progress: &Progress,
    lead: &Lead,
) -> io::Result<Validation> {
    let mut v = Validation::default();
    // Settled since the last publication to the insertion reader (`lead`).
    let fresh_images = std::cell::RefCell::new(Vec::new());
    let mut fresh_duplicates = Vec::new();
    let mut store = |name: &str| -> Result<StoredImage, String> {
        let bytes = image_source.read(name)?;
        let (image, created) = images::validate_and_store(data_dir, &bytes, &mut stored.claims)
            .map_err(|e| format!("{name}: {e}"))?;
        if created {
            stored.created.push(image.sha256.clone());
        }
        fresh_images.borrow_mut().push((name.to_string(), image.clone()));
        Ok(image)
    };
    // The first 16 bytes of SHA-256 are plenty to tell content apart, at a third the memory.
    let mut first_line_of: HashMap<u128, i64> = HashMap::new();
    let mut images_by_name = HashMap::new();
    // External ids by the same 16 bytes of their SHA-256: keyed by the id itself, a million
    // ids took ~40 MiB more, held while insertion's page cache grows beside validation.
    let mut ids: HashMap<u128, i64> = HashMap::new();
    let id_key = |id: &str| u128::from_be_bytes(Sha256::digest(id.as_bytes())[..16].try_into().unwrap_or_default());
    for next in records {
        let (line, parsed) = next?;
        v.report.lines += 1;
        if v.report.lines % CANCEL_CHECK_LINES == 0 {
            if cancel.is_cancelled() {
                return Err(cancelled_error());
            }
            progress.lines.store(v.report.lines, Ordering::Relaxed);
        }
        if v.report.lines % lead::PUBLISH_LINES == 0 {
            // Every line before this one is checked.
            lead.publish(line - 1, std::mem::take(&mut fresh_duplicates), fresh_images.take());
        }
        let item = parsed.and_then(|r| resolve(target, line, r, &mut images_by_name, &mut store));
        // An exact duplicate (a repeated line, id and all) is skipped, not an id clash.
        let item = item.and_then(|item| {
            let key = u128::from_str_radix(&item.content_hash[2..34], 16).unwrap_or_default();
            if let Some(&first) = first_line_of.get(&key) {
                return Ok(Err(first));
            }
            let id = item.external_id.as_deref().map(id_key);
            match id.and_then(|id| ids.get(&id)) {
                Some(first) => Err(FieldError::new("id", format!("the id is used on line {first} too"))),
                None => {
                    first_line_of.insert(key, line);
                    if let Some(id) = id {
                        ids.insert(id, line);
                    }
                    Ok(Ok(()))
                }
            }
        });
        match item {
            Err(e) => {
                if v.report.error_count == 0 {
                    lead.refuse();
                }
                v.report.error_count += 1;
                if v.report.errors.len() < MAX_REPORTED {
                    v.report.errors.push(LineError { line, field: e.field, reason: e.reason });
                }
            }
            Ok(Err(first)) => {
                v.duplicate_of_line.insert(line, first);
                fresh_duplicates.push(line);
            }
            Ok(Ok(())) => {}
        }
    }
    progress.lines.store(v.report.lines, Ordering::Relaxed);
    lead.publish(i64::MAX, fresh_duplicates, fresh_images.take());
    if v.report.lines == 0 && v.report.error_count == 0 {
        v.report.error_count = 1;
        v.report.errors.push(LineError { line: 0, field: String::new(), reason: "the file has no records".into() });
    }
    Ok(v)
}

/// The insertion reading: reads the records again, behind validation (`lead`), and sends the
/// items it checked in batches. Any difference from validation's reading (a line that no
/// longer parses, an image it did not store) is an error, and so is any I/O error: the import
/// is then not committed.
fn send_items(
    target: &Target,
    records: Records,
    lead: &Lead,
    tx: mpsc::Sender<Vec<NewItem>>,
    cancel: &CancellationToken,
) -> io::Result<()> {
    let mut follower = lead::Follower::default();
    let mut not_seen = |name: &str| -> Result<StoredImage, String> {
        Err(format!("the image {name:?} was not stored by validation"))
    };
    let mut batch = Vec::with_capacity(INSERT_BATCH);
    let mut count = 0i64;
    for next in records {
        let (line, parsed) = next?;
        count += 1;
        if count % CANCEL_CHECK_LINES == 0 && cancel.is_cancelled() {
            return Err(cancelled_error());
        }
        match follower.verdict(lead, line) {
            lead::Verdict::Stop => return Ok(()),
            lead::Verdict::Skip => continue,
            lead::Verdict::Insert => {}
        }
        let item = parsed
            .and_then(|r| resolve(target, line, r, &mut follower.images, &mut not_seen))
            .map_err(|e| io::Error::other(format!("line {line} changed between readings: {}", e.reason)))?;
        batch.push(item);
        if batch.len() == INSERT_BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(INSERT_BATCH));
            if tx.blocking_send(full).is_err() {
                return Ok(()); // the inserter stopped, for a reason of its own
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(batch);
    }
    Ok(())
}

/// Opens the records of a spooled upload (twice: validation and insertion read it side by
/// side) with their image source.
fn open(path: &Path, format: ImportFormat, spool_dir: &Path) -> Result<(Records, Box<dyn ImageSource>), AppError> {
    match format {
        ImportFormat::Jsonl => Ok((sources::jsonl_records(File::open(path).map_err(io_err)?), Box::new(NoImages))),
        ImportFormat::Csv => Ok((sources::csv_records(File::open(path).map_err(io_err)?), Box::new(NoImages))),
        ImportFormat::LabelStudio => {
            Ok((sources::label_studio_records(File::open(path).map_err(io_err)?), Box::new(NoImages)))
        }
        ImportFormat::Zip => {
            let mut file = File::open(path).map_err(io_err)?;
            // Counted before the zip library reads its whole directory into memory.
            let declared_entries = sources::zip_declared_entries(&mut file).map_err(io_err)?;
            let too_many = |n: u64| {
                AppError::PayloadTooLarge(format!(
                    "the zip holds {n} files; at most {MAX_ZIP_ENTRIES} are accepted (split it); nothing was imported"
                ))
            };
            if let Some(n) = declared_entries.filter(|&n| n > MAX_ZIP_ENTRIES as u64) {
                return Err(too_many(n));
            }
            let mut archive = zip::ZipArchive::new(file)
                .map_err(|e| AppError::bad_request(format!("not a readable zip file: {e}")))?;
            if archive.len() > MAX_ZIP_ENTRIES {
                return Err(too_many(archive.len() as u64));
            }
            let mut declared: u64 = 0;
            for i in 0..archive.len() {
                let entry = archive.by_index_raw(i).map_err(|e| AppError::bad_request(format!("not a readable zip file: {e}")))?;
                declared = declared.saturating_add(entry.size());
            }
            if declared > MAX_ZIP_UNCOMPRESSED {
                return Err(AppError::PayloadTooLarge(format!(
                    "the zip unpacks to {} GiB; at most {} GiB are accepted; nothing was imported",
                    declared >> 30,
                    MAX_ZIP_UNCOMPRESSED >> 30
                )));
            }
            let names: Vec<String> = archive.file_names().map(str::to_string).collect();
            if let Some(bad) = names.iter().find(|n| sources::unsafe_entry_name(n)) {
                return Err(AppError::bad_request(format!(
                    "the zip holds an unsafe path {bad:?} (paths must stay inside the archive); nothing was imported"
                )));
            }
            let data_files: Vec<&String> = names
                .iter()
                .filter(|n| !n.starts_with("__MACOSX/") && ImportFormat::from_file_name(n).is_some_and(|f| matches!(f, ImportFormat::Jsonl | ImportFormat::Csv)))
                .collect();
            let [data_file] = data_files.as_slice() else {
                return Err(AppError::bad_request(format!(
                    "the zip must hold exactly one .jsonl or .csv data file next to the images; it holds {}",
                    data_files.len()
                )));
            };
            let data_file = (*data_file).clone();
            let inner_format = ImportFormat::from_file_name(&data_file).unwrap_or(ImportFormat::Jsonl);
            // Extract the data file so it can be read while images are read from the archive.
            let mut extracted = tempfile::tempfile_in(spool_dir).map_err(io_err)?;
            {
                let entry = archive.by_name(&data_file).map_err(|e| AppError::bad_request(e.to_string()))?;
                let limit = entry.size().min(MAX_DATA_FILE_BYTES);
                if entry.size() > MAX_DATA_FILE_BYTES {
                    return Err(AppError::PayloadTooLarge("the data file in the zip is too large".into()));
                }
                let copied = io::copy(&mut entry.take(limit + 1), &mut extracted).map_err(io_err)?;
                if copied > limit {
                    return Err(AppError::bad_request(
                        "the data file in the zip holds more bytes than the zip's directory declares",
                    ));
                }
            }
            io::Seek::rewind(&mut extracted).map_err(io_err)?;
            let records = match inner_format {
                ImportFormat::Csv => sources::csv_records(extracted),
                _ => sources::jsonl_records(extracted),
            };
            Ok((records, Box::new(ZipImages { archive, data_file })))
        }
    }
}

fn io_err(e: io::Error) -> AppError {
    AppError::Internal(e.into())
}

/// Imports a spooled upload into the job's project. On any bad line, nothing is imported and
/// the error carries the report. Runs on a task of its own (see the module's documentation).
pub async fn import_file(ctx: &ImportCtx, job: ImportJob, spool: tempfile::TempPath, format: ImportFormat) -> AppResult<ImportReport> {
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let path = spool.to_path_buf();
        let spool_dir = ctx.spool_dir.clone();
        let opener: Opener = Arc::new(move |_| open(&path, format, &spool_dir));
        let report = run(&ctx, job, opener, "line").await;
        drop(spool); // deletes the file
        report
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("the import task failed: {e}")))?
}

/// Images uploaded one by one (spooled files, by name) become one image item each.
pub async fn import_images(ctx: &ImportCtx, job: ImportJob, files: Vec<(String, tempfile::TempPath)>) -> AppResult<ImportReport> {
    // Written as a JSONL spool so single uploads take exactly the path zips take.
    let list = tempfile::NamedTempFile::new_in(ctx.spool_dir.as_path()).map_err(io_err)?.into_temp_path();
    let mut names = HashMap::new();
    {
        let mut w = io::BufWriter::new(File::create(&list).map_err(io_err)?);
        for (name, path) in &files {
            let line = serde_json::json!({ "image": name });
            io::Write::write_all(&mut w, format!("{line}\n").as_bytes()).map_err(io_err)?;
            names.insert(name.clone(), path.to_path_buf());
        }
        io::Write::flush(&mut w).map_err(io_err)?;
    }
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let path = list.to_path_buf();
        let opener: Opener = Arc::new(move |_| {
            let records = sources::jsonl_records(File::open(&path).map_err(io_err)?);
            Ok((records, Box::new(FileImages(names.clone())) as Box<dyn ImageSource>))
        });
        let report = run(&ctx, job, opener, "file").await;
        drop((list, files));
        report
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("the import task failed: {e}")))?
}

/// Ends an import whose upload never arrived whole (nothing was inserted); returns `err`.
pub async fn abandon(job: ImportJob, err: AppError) -> AppError {
    let id = job.id;
    if let Err(e) = job.abort(EndState::Failed, &err.to_string()).await {
        tracing::error!(import = id, error = %e, "could not mark an abandoned import failed");
    }
    err
}

/// What the insertion pass added up.
#[derive(Default)]
struct Totals {
    inserted: i64,
    max_id: i64,
    duplicates: i64,
    duplicate_lines: Vec<DuplicateLine>,
    id_conflict_count: i64,
    id_conflicts: Vec<LineError>,
}

impl Totals {
    fn add(&mut self, out: ChunkOutcome) {
        self.inserted += out.inserted;
        self.max_id = self.max_id.max(out.max_id);
        self.duplicates += out.duplicates.len() as i64;
        for (line, id) in out.duplicates {
            if self.duplicate_lines.len() < MAX_REPORTED {
                self.duplicate_lines.push(DuplicateLine { line, duplicate_of: format!("item {id}") });
            }
        }
        self.id_conflict_count += out.id_conflicts.len() as i64;
        for c in out.id_conflicts {
            if self.id_conflicts.len() < MAX_REPORTED {
                self.id_conflicts.push(c);
            }
        }
    }
}

/// Both passes, then commit or clean up. `dup_word` names what a duplicate repeats ("line",
/// "file").
async fn run(ctx: &ImportCtx, job: ImportJob, opener: Opener, dup_word: &str) -> AppResult<ImportReport> {
    let cancel = ctx.shutdown.clone();
    let target = match store::projects::get_project(&ctx.db, job.project_id).await {
        Ok(summary) => Target::of(&summary.project),
        Err(e) => return Err(end_without_commit(ctx, job, EndState::Failed, Stored::default(), e).await),
    };
    // Validation (which stores images) and insertion read the upload side by side; insertion
    // follows validation through the file (`lead`).
    let started = std::time::Instant::now();
    let lead = Arc::new(Lead::default());
    let validation = {
        let (opener, data_dir, cancel, progress, lead) =
            (opener.clone(), ctx.data_dir.clone(), cancel.clone(), job.progress.clone(), lead.clone());
        let target = target.clone();
        tokio::task::spawn_blocking(move || {
            let mut end = lead.guard();
            let mut stored = Stored::default();
            let v = opener(Reading::Validation).and_then(|(records, mut images)| {
                validate(&target, records, images.as_mut(), &data_dir, &mut stored, &cancel, &progress, &lead).map_err(|e| {
                    if cancel.is_cancelled() {
                        job::shutting_down()
                    } else {
                        AppError::bad_request(format!("cannot read the upload: {e}"))
                    }
                })
            });
            if v.as_ref().is_ok_and(|v| v.report.error_count == 0) {
                end.accept();
            }
            // Validation's maps (a million lines: ~60 MiB) are freed; insertion's page cache
            // goes on growing, so their memory goes back to the OS now, not at the end.
            crate::heap::release_free_memory();
            (stored, v, started.elapsed())
        })
    };
    let (tx, mut rx) = mpsc::channel::<Vec<NewItem>>(READ_AHEAD_BATCHES);
    let producer = {
        let (opener, cancel, lead) = (opener.clone(), cancel.clone(), lead.clone());
        let target = target.clone();
        tokio::task::spawn_blocking(move || -> AppResult<()> {
            let (records, _) = opener(Reading::Insertion)?;
            send_items(&target, records, &lead, tx, &cancel).map_err(|e| AppError::Internal(e.into()))
        })
    };
    let mut totals = Totals::default();
    let mut store_error = None;
    let mut cancelled = false;
    let mut pending: Vec<NewItem> = Vec::new();
    let mut last_chunk: Option<pacing::LastChunk> = None;
    let mut last_competition: Option<std::time::Instant> = None;
    let mut labeling_seen = store::writer::GROUPED_JOBS.load(Ordering::Relaxed);
    let mut reader_done = false;
    let (mut transactions, mut largest, mut ended_early) = (0usize, 0usize, 0usize);
    loop {
        let rows = pacing::next_chunk_rows(last_chunk);
        // Gather the next transaction's rows (the reader sends batches of `INSERT_BATCH`).
        while !reader_done && pending.len() < rows {
            let batch = tokio::select! {
                biased;
                _ = cancel.cancelled() => {
                    cancelled = true;
                    break;
                }
                b = rx.recv() => b,
            };
            match batch {
                Some(b) => pending.extend(b),
                None => reader_done = true,
            }
        }
        // A bad line: nothing will be committed, so nothing more is written.
        if cancelled || pending.is_empty() || lead.refused() {
            break;
        }
        let chunk = &pending[..rows.min(pending.len())];
        transactions += 1;
        let started = std::time::Instant::now();
        // Once an id clashed the import is refused: the rest is only checked, not written.
        let out = if totals.id_conflict_count > 0 {
            store::items::check_chunk(&ctx.db, job.project_id, chunk).await
        } else {
            store::items::insert_chunk(&ctx.db, job.project_id, chunk).await
        };
        let (consumed, yielded, labeling_waited) = match out {
            Ok(out) => {
                let done = (out.consumed, out.consumed < chunk.len(), out.labeling_waited);
                totals.add(out);
                done
            }
            Err(e) => {
                store_error = Some(e);
                break;
            }
        };
        // A transaction that ended early leaves the rest of its rows for the next one.
        pending.drain(..consumed);
        largest = largest.max(consumed);
        ended_early += yielded as usize;
        job.progress.inserted.store(totals.inserted, Ordering::Relaxed);
        let elapsed = started.elapsed();
        // Competition on SQLite's one writer: labeling jobs it ran, or waiting ones that ended
        // the transaction. Other writes (this import's own heartbeat, a settings change, a
        // job's progress) end it too, for their turn, but are rare: counting them as
        // competition kept every transaction short (the heartbeat's period is `pacing::QUIET`).
        let labeling_now = store::writer::GROUPED_JOBS.load(Ordering::Relaxed);
        if labeling_now != labeling_seen || labeling_waited {
            last_competition = Some(std::time::Instant::now());
        }
        labeling_seen = labeling_now;
        last_chunk = Some(pacing::LastChunk {
            rows: consumed,
            elapsed,
            since_competition: last_competition.map(|t| t.elapsed()),
        });
        // Labelers' writes queue for the writer; let them in between two chunks.
        tokio::task::yield_now().await;
    }
    // The producer stops at its next send once the receiver is gone.
    drop(rx);
    let (stored, v, validated_in) = match validation.await {
        Ok(x) => x,
        Err(e) => {
            let err = AppError::Internal(anyhow::anyhow!("the validation of the upload failed: {e}"));
            return Err(end_without_commit(ctx, job, EndState::Failed, Stored::default(), err).await);
        }
    };
    let v = match v {
        Ok(v) => v,
        Err(e) => {
            let state = if cancel.is_cancelled() { EndState::Cancelled } else { EndState::Failed };
            return Err(end_without_commit(ctx, job, state, stored, e).await);
        }
    };
    if v.report.error_count > 0 {
        return Err(end_without_commit(ctx, job, EndState::Failed, stored, refused(v.report)).await);
    }
    let produced = producer.await;
    let failure = if cancelled || cancel.is_cancelled() {
        Some((EndState::Cancelled, job::shutting_down()))
    } else if let Some(e) = store_error {
        Some((EndState::Failed, e))
    } else {
        match produced {
            Err(e) => Some((
                EndState::Failed,
                AppError::Internal(anyhow::anyhow!("the second reading of the upload failed: {e}")),
            )),
            Ok(Err(e)) => Some((EndState::Failed, e)),
            Ok(Ok(())) => None,
        }
    };
    if let Some((state, err)) = failure {
        return Err(end_without_commit(ctx, job, state, stored, err).await);
    }

    let mut report = v.report;
    let mut duplicate_lines: Vec<DuplicateLine> = v
        .duplicate_of_line
        .iter()
        .map(|(&line, &first)| DuplicateLine { line, duplicate_of: format!("{dup_word} {first}") })
        .chain(totals.duplicate_lines)
        .collect();
    duplicate_lines.sort_by_key(|d| d.line);
    duplicate_lines.truncate(MAX_REPORTED);
    report.duplicates = v.duplicate_of_line.len() as i64 + totals.duplicates;
    report.duplicate_lines = duplicate_lines;
    if totals.id_conflict_count > 0 {
        report.errors = totals.id_conflicts;
        report.error_count = totals.id_conflict_count;
        return Err(end_without_commit(ctx, job, EndState::Failed, stored, refused(report)).await);
    }
    let job_id = job.id;
    if let Err(e) = job.commit(report.lines, totals.inserted, totals.max_id).await {
        // The job's Drop removes the pending rows; the images go with them.
        collect_images(ctx, stored).await;
        return Err(e);
    }
    report.imported = totals.inserted;
    tracing::info!(
        import = job_id,
        items = totals.inserted,
        transactions,
        ended_early,
        largest_transaction = largest,
        validation_s = validated_in.as_secs_f64(),
        total_s = started.elapsed().as_secs_f64(),
        "import committed"
    );
    Ok(report)
}

/// Ends an import that will not commit: its pending rows are deleted, it is marked failed or
/// cancelled, and the images it stored that nothing else uses are removed. Returns `err`.
async fn end_without_commit(ctx: &ImportCtx, job: ImportJob, state: EndState, stored: Stored, err: AppError) -> AppError {
    let id = job.id;
    if let Err(e) = job.abort(state, &err.to_string()).await {
        tracing::error!(import = id, error = %e, "could not remove the rows of a failed import");
    }
    collect_images(ctx, stored).await;
    err
}

/// Removes the images (rows and files) an import created that nothing references.
async fn collect_images(ctx: &ImportCtx, stored: Stored) {
    if stored.created.is_empty() {
        return;
    }
    let gone = match store::imports::delete_unreferenced_images(&ctx.db, &stored.created).await {
        Ok(gone) => gone,
        Err(e) => {
            tracing::error!(error = %e, "could not collect the images of a refused import");
            return;
        }
    };
    let data_dir = ctx.data_dir.clone();
    let removed = tokio::task::spawn_blocking(move || stored.claims.remove_unshared_files(&data_dir, &gone)).await;
    tracing::info!(removed = removed.unwrap_or(0), "removed the images of an import that did not commit");
}

pub fn refused(mut report: ImportReport) -> AppError {
    report.imported = 0;
    let first = report.errors.first().map(|e| {
        let field = if e.field.is_empty() { String::new() } else { format!(" ({})", e.field) };
        format!("line {}{}: {}", e.line, field, e.reason)
    });
    AppError::InvalidImport {
        message: format!(
            "nothing was imported: {} bad line{}; first: {}",
            report.error_count,
            if report.error_count == 1 { "" } else { "s" },
            first.unwrap_or_default()
        ),
        details: serde_json::to_value(&report).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    //! The two readings against a fresh SQLite database: an import whose insertion reading
    //! fails halfway, or whose validation meets a bad line after insertion began, commits
    //! nothing.
    use super::*;

    use app::api_types::{LabelDef, LabelKind, Role};

    use crate::store::projects::ProjectSettings;
    use crate::store::Db;

    struct Fixture {
        _dir: tempfile::TempDir,
        ctx: ImportCtx,
        pid: i64,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
        let spool = dir.path().join("spool");
        std::fs::create_dir_all(&spool).unwrap();
        let user = store::users::create_user(&db, "lead", "x", Role::Admin, None).await.unwrap();
        let pid = new_project(&db, "p", user.id).await;
        let ctx = ImportCtx {
            db,
            data_dir: Arc::new(dir.path().to_path_buf()),
            spool_dir: Arc::new(spool),
            shutdown: CancellationToken::new(),
            gate: ImportGate::new(2),
        };
        Fixture { _dir: dir, ctx, pid }
    }

    async fn new_project(db: &Db, name: &str, owner: i64) -> i64 {
        let labels = [LabelDef { name: "a".into(), key: "a".into(), color: "#000000".into() }];
        let settings = ProjectSettings {
            name,
            instructions: "",
            kind: LabelKind::Single,
            labels: &labels,
            overlap: 1,
            lease_seconds: 60,
            quality: &app::api_types::QualitySettings::default(),
            assignment_order: app::api_types::AssignmentOrder::Import,
        };
        store::projects::create_project(db, &settings, owner).await.unwrap().id
    }

    #[derive(Clone, Copy)]
    enum Fault {
        None,
        IoErrorAt(usize),
        PanicAt(usize),
    }

    fn records(n: usize, fault: Fault) -> Records {
        Box::new((0..n).map(move |i| {
            match fault {
                Fault::IoErrorAt(k) if i >= k => return Err(io::Error::other("injected read error")),
                Fault::PanicAt(k) if i >= k => panic!("injected panic in the producer"),
                _ => {}
            }
            let line = serde_json::json!({"id": format!("r{i}"), "text": format!("record {i}")}).to_string();
            Ok(((i + 1) as i64, record::parse_json_line(&line)))
        }))
    }

    /// Validation's reading is clean; insertion's meets `fault`.
    fn opener(n: usize, fault: Fault) -> Opener {
        Arc::new(move |reading| {
            let fault = if reading == Reading::Insertion { fault } else { Fault::None };
            Ok((records(n, fault), Box::new(NoImages) as Box<dyn ImageSource>))
        })
    }

    /// Items imported before migration 0022 kept the whole 66-character hash; the migration
    /// cuts it to the 34 that imports store now, so the same content imported after the upgrade
    /// is still found as a duplicate, and its rank is still drawn from the whole hash.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn content_stored_before_the_short_hashes_is_still_a_duplicate() {
        use sqlx::Connection as _;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("u.db").display());
        let full = format!("t:{}", hex::encode(Sha256::digest(b"hello")));
        let (pid, old_id) = {
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            let mut before = sqlx::migrate!("../migrations/sqlite");
            before.migrations = before.migrations.iter().filter(|m| m.version < 22).cloned().collect::<Vec<_>>().into();
            before.run(&mut conn).await.unwrap();
            sqlx::query("INSERT INTO projects (name, kind, labels, overlap, lease_seconds, created_at) VALUES ('p', 'single', '[{\"name\":\"a\",\"key\":\"a\",\"color\":\"#000000\"}]', 1, 60, 0)")
                .execute(&mut conn)
                .await
                .unwrap();
            let old_id: i64 = sqlx::query_scalar(
                "INSERT INTO items (project_id, kind, text, content_hash, created_at) VALUES (1, 'text', 'hello', $1, 0) RETURNING id",
            )
            .bind(&full)
            .fetch_one(&mut conn)
            .await
            .unwrap();
            conn.close().await.unwrap();
            (1i64, old_id)
        };
        let db = Db::connect(&url).await.unwrap();
        let stored: String = crate::on_read!(&db, pool => sqlx::query_scalar("SELECT content_hash FROM items").fetch_one(pool).await.unwrap());
        assert_eq!(stored, full[..STORED_CONTENT_HASH_LEN]);

        let target = Target { project_id: pid, kind: LabelKind::Single, labels: vec!["a".into()] };
        let record = record::parse_json_line(r#"{"text": "hello"}"#).unwrap();
        let item = resolve(&target, 1, record, &mut HashMap::new(), &mut |_: &str| unreachable!()).unwrap();
        assert_eq!(item.content_hash, stored);
        assert_eq!(item.rank, crate::stream::rank(pid, None, &full));
        let out = store::items::insert_chunk(&db, pid, &[item]).await.unwrap();
        assert_eq!((out.inserted, out.duplicates, out.consumed), (0, vec![(1, old_id)], 1));
    }

    /// The text item of line `i + 1`, ranked in line order, with unique content.
    fn text_item(i: i64, external_id: Option<String>) -> NewItem {
        NewItem {
            line: i + 1,
            external_id,
            text: Some(format!("t{i}")),
            image: None,
            image_name: None,
            meta: "{}".into(),
            weight: 1.0,
            source: None,
            license: None,
            content_hash: format!("t:{i:064}"),
            rank: i,
            gold: None,
        }
    }

    async fn stored_rows(db: &Db) -> i64 {
        crate::on_read!(db, pool => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM items").fetch_one(pool).await.unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_second_pass_commits_nothing() {
        for fault in [Fault::IoErrorAt(1_700), Fault::PanicAt(1_700)] {
            let f = fixture().await;
            let job = ImportJob::start(&f.ctx, f.pid).await.unwrap();
            let import_id = job.id;
            let res = run(&f.ctx, job, opener(3_000, fault), "line").await;
            assert!(matches!(res, Err(AppError::Internal(_))), "{:?}", res.map(|r| r.imported));
            let summary = store::projects::get_project(&f.ctx.db, f.pid).await.unwrap();
            assert_eq!(summary.item_count, 0);
            // Three chunks were inserted before the fault; they are gone, not just hidden.
            assert_eq!(stored_rows(&f.ctx.db).await, 0);
            assert_eq!(store::imports::state_of(&f.ctx.db, import_id).await.unwrap().as_deref(), Some("failed"));
            // The project takes the next import.
            let job = ImportJob::start(&f.ctx, f.pid).await.unwrap();
            let report = run(&f.ctx, job, opener(3_000, Fault::None), "line").await.unwrap();
            assert_eq!(report.imported, 3_000);
            let summary = store::projects::get_project(&f.ctx.db, f.pid).await.unwrap();
            assert_eq!(summary.item_count, 3_000);
        }
    }

    /// Insertion runs while validation reads on; a bad line validation meets after rows went in
    /// stops the insertion, and those rows are deleted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bad_line_found_after_insertion_began_commits_nothing() {
        let f = fixture().await;
        let job = ImportJob::start(&f.ctx, f.pid).await.unwrap();
        let (import_id, progress) = (job.id, job.progress.clone());
        let opener: Opener = Arc::new(move |reading| {
            let progress = progress.clone();
            let it = records(3_000, Fault::None).enumerate().map(move |(i, r)| {
                if reading == Reading::Validation && i == 2_000 {
                    // Validation waits here until insertion has written rows.
                    let waited = std::time::Instant::now();
                    while progress.inserted.load(Ordering::Relaxed) == 0 {
                        assert!(waited.elapsed() < std::time::Duration::from_secs(20), "insertion did not start before validation ended");
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                }
                if i == 2_499 {
                    return Ok((2_500, record::parse_json_line(r#"{"id": "bad"}"#)));
                }
                r
            });
            Ok((Box::new(it) as Records, Box::new(NoImages) as Box<dyn ImageSource>))
        });
        let res = run(&f.ctx, job, opener, "line").await;
        let Err(AppError::InvalidImport { message, details }) = res else { panic!("{:?}", res.map(|r| r.imported)) };
        assert!(message.starts_with("nothing was imported: 1 bad line; first: line 2500"), "{message}");
        assert_eq!(details["errors"][0]["line"], 2_500);
        assert_eq!(details["lines"], 3_000, "validation read on to the end");
        assert_eq!(stored_rows(&f.ctx.db).await, 0);
        assert_eq!(store::imports::state_of(&f.ctx.db, import_id).await.unwrap().as_deref(), Some("failed"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pending_rows_are_invisible_until_commit_and_one_import_runs_per_project() {
        let f = fixture().await;
        let job = ImportJob::start(&f.ctx, f.pid).await.unwrap();
        let second = ImportJob::start(&f.ctx, f.pid).await;
        assert!(matches!(second, Err(AppError::Conflict(_))), "a second import of the project waits");
        let items: Vec<NewItem> = (0..10).map(|i| text_item(i, None)).collect();
        let out = store::items::insert_chunk(&f.ctx.db, f.pid, &items).await.unwrap();
        assert_eq!(out.inserted, 10);
        assert!(store::items::get_item(&f.ctx.db, out.max_id).await.is_err(), "pending rows are not readable");
        let export = store::export::export_page(&f.ctx.db, f.pid, 0, 100, false).await.unwrap();
        assert!(export.items.is_empty(), "nor exported");
        job.commit(10, 10, out.max_id).await.unwrap();
        assert!(store::items::get_item(&f.ctx.db, out.max_id).await.is_ok());
        assert_eq!(store::export::export_page(&f.ctx.db, f.pid, 0, 100, false).await.unwrap().items.len(), 10);
        assert_eq!(store::projects::get_project(&f.ctx.db, f.pid).await.unwrap().item_count, 10);
    }

    /// One statement with new rows, a row whose content is stored and one whose id is taken:
    /// the new ones are inserted and reported by their highest id, the others reported by
    /// line, the duplicate with the stored item's id. Run on the current thread (where the
    /// statement runs directly) and on a multi-threaded runtime (where it runs in place).
    #[test]
    fn a_statement_inserts_the_new_rows_and_reports_the_others() {
        async fn check() {
            let f = fixture().await;
            let first: Vec<NewItem> = (0..3).map(|i| text_item(i, Some(format!("e{i}")))).collect();
            let stored = store::items::insert_chunk(&f.ctx.db, f.pid, &first).await.unwrap();
            assert_eq!((stored.inserted, stored.consumed), (3, 3));
            let mut next: Vec<NewItem> = (3..7).map(|i| text_item(i, Some(format!("e{i}")))).collect();
            next[1].content_hash = first[2].content_hash.clone(); // line 5: content of line 3
            next[2].external_id = Some("e0".into()); // line 6: id of line 1
            let out = store::items::insert_chunk(&f.ctx.db, f.pid, &next).await.unwrap();
            assert_eq!((out.inserted, out.consumed), (2, 4));
            assert_eq!(out.duplicates, vec![(5, stored.max_id)]);
            assert_eq!(out.id_conflicts.iter().map(|c| (c.line, c.field.as_str())).collect::<Vec<_>>(), vec![(6, "id")]);
            let ids: Vec<i64> = crate::on_read!(&f.ctx.db, pool => sqlx::query_scalar("SELECT id FROM items ORDER BY id").fetch_all(pool).await.unwrap());
            assert_eq!(ids.len(), 5);
            assert_eq!(out.max_id, *ids.last().unwrap());
        }
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(check());
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(check());
    }

    /// SQLite's writer keeps a larger page cache while an import runs, and the small one again
    /// once the import has ended, committed or not: by the time `commit` or `abort` returns
    /// (before the import's answer goes out), and soon after an import dropped unended.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_cache_grows_for_an_import_and_shrinks_after() {
        async fn cache_kib(db: &Db) -> i64 {
            let size: i64 = crate::on_write!(db, pool => sqlx::query_scalar("PRAGMA cache_size").fetch_one(pool).await.unwrap());
            -size
        }
        async fn shrinks_to_the_default(db: &Db) {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while cache_kib(db).await != store::WRITER_CACHE_KIB as i64 {
                assert!(std::time::Instant::now() < deadline, "the cache is still {} KiB", cache_kib(db).await);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
        let f = fixture().await;
        assert_eq!(cache_kib(&f.ctx.db).await, store::WRITER_CACHE_KIB as i64);
        let items: Vec<NewItem> = (0..10).map(|i| text_item(i, None)).collect();
        // Committed.
        let job = ImportJob::start(&f.ctx, f.pid).await.unwrap();
        let out = store::items::insert_chunk(&f.ctx.db, f.pid, &items[..5]).await.unwrap();
        assert_eq!(cache_kib(&f.ctx.db).await, store::items::IMPORT_WRITER_CACHE_KIB as i64);
        job.commit(5, 5, out.max_id).await.unwrap();
        assert_eq!(cache_kib(&f.ctx.db).await, store::WRITER_CACHE_KIB as i64, "shrunk before commit returns");
        // Two at once (the other project's import is still running when the first ends), then
        // one dropped without an end, as a panicking import would be.
        let other = new_project(&f.ctx.db, "q", 1).await;
        let first = ImportJob::start(&f.ctx, f.pid).await.unwrap();
        let second = ImportJob::start(&f.ctx, other).await.unwrap();
        store::items::insert_chunk(&f.ctx.db, other, &items[5..]).await.unwrap();
        first.abort(store::imports::EndState::Failed, "test").await.unwrap();
        assert_eq!(cache_kib(&f.ctx.db).await, store::items::IMPORT_WRITER_CACHE_KIB as i64, "the second import still runs");
        drop(second);
        shrinks_to_the_default(&f.ctx.db).await;
        // The last import to end aborted: shrunk by the time `abort` returns.
        let third = ImportJob::start(&f.ctx, f.pid).await.unwrap();
        store::items::insert_chunk(&f.ctx.db, f.pid, &items[..1]).await.unwrap();
        third.abort(store::imports::EndState::Cancelled, "test").await.unwrap();
        assert_eq!(cache_kib(&f.ctx.db).await, store::WRITER_CACHE_KIB as i64, "shrunk before abort returns");
    }

    /// A labeling write that waits for SQLite's writer ends an import's transaction after the
    /// statement in flight; the rows it did not reach go into the next transactions, and the
    /// import ends with every row exactly once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiting_labeler_ends_an_import_transaction_after_one_statement() {
        let f = fixture().await;
        let job = ImportJob::start(&f.ctx, f.pid).await.unwrap();
        let n = 3 * INSERT_BATCH + 7;
        let items: Vec<NewItem> = (0..n as i64).map(|i| text_item(i, Some(format!("e{i}")))).collect();
        let waiting = store::writer::Waiting::enter();
        let out = store::items::insert_chunk(&f.ctx.db, f.pid, &items).await.unwrap();
        assert_eq!((out.consumed, out.inserted), (INSERT_BATCH, INSERT_BATCH as i64), "ended after one statement");
        drop(waiting);
        // Other tests of this process may have labeling writes in flight: loop as the import does.
        let (mut done, mut max_id) = (out.consumed, out.max_id);
        while done < n {
            let out = store::items::insert_chunk(&f.ctx.db, f.pid, &items[done..]).await.unwrap();
            assert!(out.consumed >= INSERT_BATCH.min(n - done), "every transaction makes progress");
            assert_eq!(out.inserted, out.consumed as i64);
            (done, max_id) = (done + out.consumed, max_id.max(out.max_id));
        }
        assert_eq!(done, n);
        job.commit(n as i64, n as i64, max_id).await.unwrap();
        let ids: Vec<String> = crate::on_read!(&f.ctx.db, pool => sqlx::query_scalar("SELECT external_id FROM items ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap());
        let expected: Vec<String> = (0..n).map(|i| format!("e{i}")).collect();
        assert_eq!(ids, expected, "every row once, in file order");
    }

    /// A lead's write (settings, a review) that waits ends the transaction after one statement
    /// too, for its turn.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiting_settings_write_ends_an_import_transaction_after_one_statement() {
        let f = fixture().await;
        let _job = ImportJob::start(&f.ctx, f.pid).await.unwrap();
        let items: Vec<NewItem> = (0..3 * INSERT_BATCH as i64).map(|i| text_item(i, None)).collect();
        let other = store::writer::OtherWrite::enter();
        let out = store::items::insert_chunk(&f.ctx.db, f.pid, &items).await.unwrap();
        drop(other);
        assert_eq!((out.consumed, out.inserted), (INSERT_BATCH, INSERT_BATCH as i64), "ended after one statement");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_cancels_a_running_import_and_removes_its_rows() {
        let f = fixture().await;
        let job = ImportJob::start(&f.ctx, f.pid).await.unwrap();
        let import_id = job.id;
        // Shut down when insertion reaches line 2,000.
        let cancel = f.ctx.shutdown.clone();
        let opener: Opener = Arc::new(move |reading| {
            let cancel = cancel.clone();
            let it = records(5_000, Fault::None).enumerate().map(move |(i, r)| {
                if reading == Reading::Insertion && i == 2_000 {
                    cancel.cancel();
                }
                r
            });
            Ok((Box::new(it) as Records, Box::new(NoImages) as Box<dyn ImageSource>))
        });
        let res = run(&f.ctx, job, opener, "line").await;
        assert!(matches!(res, Err(AppError::Unavailable { .. })), "{:?}", res.map(|r| r.imported));
        assert_eq!(stored_rows(&f.ctx.db).await, 0);
        assert_eq!(store::imports::state_of(&f.ctx.db, import_id).await.unwrap().as_deref(), Some("cancelled"));
    }
}
