//! Imports: all or nothing, streamed, with a report a person can act on.
//!
//! An upload is first spooled to a file in the data directory (so the request body never
//! sits in memory), then read twice on a blocking thread:
//! 1. validation: every record is parsed and checked, images are decoded under limits and
//!    stored (content-addressed, so storing is harmless if the import is then refused), and
//!    exact duplicates within the file are found. Any bad line: nothing is imported and the
//!    first 100 bad lines are reported.
//! 2. insertion: the records are read again and sent in batches to the store, which inserts
//!    them in one transaction and skips duplicates of items already in the project.
pub mod images;
pub mod record;
pub mod sources;

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use app::api_types::{DuplicateLine, ImportReport, LineError};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::error::{AppError, AppResult};
use crate::store::items::{NewItem, StoredImage, INSERT_BATCH};
use crate::store::{self, Db};
use record::{Content, FieldError, Record};
use sources::Records;

pub const MAX_REPORTED: usize = 100;
pub const MAX_DATA_FILE_BYTES: u64 = 8 * 1024 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportFormat {
    Jsonl,
    Csv,
    Zip,
}

impl ImportFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" | "json" => Some(Self::Jsonl),
            "csv" => Some(Self::Csv),
            "zip" => Some(Self::Zip),
            _ => None,
        }
    }

    /// Guesses from a file name's extension.
    pub fn from_file_name(name: &str) -> Option<Self> {
        Self::parse(Path::new(name).extension()?.to_str()?)
    }
}

/// Where image bytes come from while importing.
trait ImageSource: Send {
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
        sources::read_limited(entry, images::MAX_IMAGE_BYTES).map_err(|e| format!("cannot read {full:?}: {e}"))
    }
}

/// Files uploaded one by one, by name.
pub struct MemoryImages(pub HashMap<String, Vec<u8>>);
impl ImageSource for MemoryImages {
    fn read(&mut self, name: &str) -> Result<Vec<u8>, String> {
        self.0.get(name).cloned().ok_or_else(|| format!("no uploaded file {name:?}"))
    }
}

/// What validation learned, for the insertion pass.
#[derive(Default)]
struct Validation {
    report: ImportReport,
    /// Lines that repeat content seen earlier in the file (skipped on insertion).
    duplicate_of_line: HashMap<i64, i64>,
    images: HashMap<String, StoredImage>,
}

fn content_hash(content: &Content, image: Option<&StoredImage>) -> String {
    match (content, image) {
        (_, Some(img)) => format!("i:{}", img.sha256),
        (Content::Text(t), None) => format!("t:{}", hex::encode(Sha256::digest(t.as_bytes()))),
        (Content::Image(_), None) => unreachable!("image records are resolved before hashing"),
    }
}

/// Turns a checked record into an insertable item, resolving (and on first sight storing)
/// its image.
fn resolve(
    line: i64,
    record: Record,
    image_source: &mut dyn ImageSource,
    cache: &mut HashMap<String, StoredImage>,
    data_dir: &Path,
) -> Result<NewItem, FieldError> {
    let (text, image, image_name) = match &record.content {
        Content::Text(t) => (Some(t.clone()), None, None),
        Content::Image(name) => {
            let stored = match cache.get(name) {
                Some(s) => s.clone(),
                None => {
                    let bytes = image_source.read(name).map_err(|e| FieldError::new("image", e))?;
                    let stored = images::validate_and_store(data_dir, &bytes)
                        .map_err(|e| FieldError::new("image", format!("{name}: {e}")))?;
                    cache.insert(name.clone(), stored.clone());
                    stored
                }
            };
            (None, Some(stored), Some(name.clone()))
        }
    };
    let content_hash = content_hash(&record.content, image.as_ref());
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
        content_hash,
    })
}

fn validate(records: Records, image_source: &mut dyn ImageSource, data_dir: &Path) -> io::Result<Validation> {
    let mut v = Validation::default();
    // The first 16 bytes of SHA-256 are plenty to tell content apart, at a third the memory.
    let mut first_line_of: HashMap<u128, i64> = HashMap::new();
    let mut ids: HashMap<String, i64> = HashMap::new();
    for next in records {
        let (line, parsed) = next?;
        v.report.lines += 1;
        let item = parsed.and_then(|r| resolve(line, r, image_source, &mut v.images, data_dir));
        // An exact duplicate (a repeated line, id and all) is skipped, not an id clash.
        let item = item.and_then(|item| {
            let key = u128::from_str_radix(&item.content_hash[2..34], 16).unwrap_or_default();
            if let Some(&first) = first_line_of.get(&key) {
                return Ok(Err(first));
            }
            match item.external_id.as_ref().and_then(|id| ids.get(id)) {
                Some(first) => Err(FieldError::new("id", format!("the id is used on line {first} too"))),
                None => {
                    first_line_of.insert(key, line);
                    if let Some(id) = &item.external_id {
                        ids.insert(id.clone(), line);
                    }
                    Ok(Ok(()))
                }
            }
        });
        match item {
            Err(e) => {
                v.report.error_count += 1;
                if v.report.errors.len() < MAX_REPORTED {
                    v.report.errors.push(LineError { line, field: e.field, reason: e.reason });
                }
            }
            Ok(Err(first)) => {
                v.duplicate_of_line.insert(line, first);
            }
            Ok(Ok(())) => {}
        }
    }
    if v.report.lines == 0 && v.report.error_count == 0 {
        v.report.error_count = 1;
        v.report.errors.push(LineError { line: 0, field: String::new(), reason: "the file has no records".into() });
    }
    Ok(v)
}

fn send_items(
    records: Records,
    v: &Validation,
    image_source: &mut dyn ImageSource,
    data_dir: &Path,
    tx: mpsc::Sender<Vec<NewItem>>,
) -> io::Result<()> {
    let mut cache = v.images.clone();
    let mut batch = Vec::with_capacity(INSERT_BATCH);
    for next in records {
        let (line, parsed) = next?;
        if v.duplicate_of_line.contains_key(&line) {
            continue;
        }
        let item = parsed
            .and_then(|r| resolve(line, r, image_source, &mut cache, data_dir))
            .map_err(|e| io::Error::other(format!("line {line} changed between passes: {}", e.reason)))?;
        batch.push(item);
        if batch.len() == INSERT_BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(INSERT_BATCH));
            if tx.blocking_send(full).is_err() {
                return Ok(()); // the inserter stopped; its error is reported
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(batch);
    }
    Ok(())
}

/// Opens the records of a spooled upload (twice, once per pass) with their image source.
fn open(path: &Path, format: ImportFormat, data_dir: &Path) -> Result<(Records, Box<dyn ImageSource>), AppError> {
    match format {
        ImportFormat::Jsonl => Ok((sources::jsonl_records(File::open(path).map_err(io_err)?), Box::new(NoImages))),
        ImportFormat::Csv => Ok((sources::csv_records(File::open(path).map_err(io_err)?), Box::new(NoImages))),
        ImportFormat::Zip => {
            let mut archive = zip::ZipArchive::new(File::open(path).map_err(io_err)?)
                .map_err(|e| AppError::bad_request(format!("not a readable zip file: {e}")))?;
            let names: Vec<String> = archive.file_names().map(str::to_string).collect();
            if let Some(bad) = names.iter().find(|n| sources::unsafe_entry_name(n)) {
                return Err(AppError::bad_request(format!(
                    "the zip holds an unsafe path {bad:?} (paths must stay inside the archive); nothing was imported"
                )));
            }
            let data_files: Vec<&String> = names
                .iter()
                .filter(|n| !n.starts_with("__MACOSX/") && ImportFormat::from_file_name(n).is_some_and(|f| f != ImportFormat::Zip))
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
            let mut extracted = tempfile::tempfile_in(data_dir.join("spool")).map_err(io_err)?;
            {
                let entry = archive.by_name(&data_file).map_err(|e| AppError::bad_request(e.to_string()))?;
                let copied = io::copy(&mut entry.take(MAX_DATA_FILE_BYTES + 1), &mut extracted).map_err(io_err)?;
                if copied > MAX_DATA_FILE_BYTES {
                    return Err(AppError::PayloadTooLarge("the data file in the zip is too large".into()));
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

/// Imports a spooled upload into the project. On any bad line, nothing is imported and the
/// error carries the report.
pub async fn import_file(db: &Db, data_dir: &Path, project_id: i64, path: PathBuf, format: ImportFormat) -> AppResult<ImportReport> {
    let data_dir = data_dir.to_path_buf();
    let (v, path, data_dir) = tokio::task::spawn_blocking(move || -> AppResult<_> {
        let (records, mut images) = open(&path, format, &data_dir)?;
        let v = validate(records, images.as_mut(), &data_dir).map_err(|e| AppError::bad_request(format!("cannot read the upload: {e}")))?;
        Ok((v, path, data_dir))
    })
    .await
    .map_err(anyhow::Error::from)??;
    if v.report.error_count > 0 {
        return Err(refused(v.report));
    }
    let (tx, rx) = mpsc::channel(4);
    let producer = {
        let data_dir = data_dir.clone();
        let v_images = Validation { images: v.images.clone(), duplicate_of_line: v.duplicate_of_line.clone(), ..Default::default() };
        tokio::task::spawn_blocking(move || -> AppResult<()> {
            let (records, mut images) = open(&path, format, &data_dir)?;
            send_items(records, &v_images, images.as_mut(), &data_dir, tx).map_err(|e| AppError::Internal(e.into()))
        })
    };
    let outcome = store::items::insert_items(db, project_id, rx).await;
    producer.await.map_err(anyhow::Error::from)??;
    let outcome = outcome?;
    let mut report = v.report;
    let mut duplicate_lines: Vec<DuplicateLine> = v
        .duplicate_of_line
        .iter()
        .map(|(&line, &first)| DuplicateLine { line, duplicate_of: format!("line {first}") })
        .chain(outcome.duplicate_lines)
        .collect();
    duplicate_lines.sort_by_key(|d| d.line);
    duplicate_lines.truncate(MAX_REPORTED);
    report.duplicates = v.duplicate_of_line.len() as i64 + outcome.duplicates;
    report.duplicate_lines = duplicate_lines;
    if outcome.id_conflict_count > 0 {
        report.errors = outcome.id_conflicts;
        report.error_count = outcome.id_conflict_count;
        return Err(refused(report));
    }
    report.imported = outcome.inserted;
    Ok(report)
}

fn refused(mut report: ImportReport) -> AppError {
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

/// Images uploaded one by one become one image item each.
pub async fn import_images(db: &Db, data_dir: &Path, project_id: i64, files: Vec<(String, Vec<u8>)>) -> AppResult<ImportReport> {
    // Written as a JSONL spool so single uploads take exactly the path zips take.
    let spool = tempfile::NamedTempFile::new_in(data_dir.join("spool")).map_err(io_err)?;
    let mut names = HashMap::new();
    {
        let mut w = io::BufWriter::new(spool.as_file());
        for (name, bytes) in files {
            let line = serde_json::json!({ "image": name });
            io::Write::write_all(&mut w, format!("{line}\n").as_bytes()).map_err(io_err)?;
            names.insert(name, bytes);
        }
        io::Write::flush(&mut w).map_err(io_err)?;
    }
    let data_dir = data_dir.to_path_buf();
    let path = spool.path().to_path_buf();
    let v = {
        let data_dir = data_dir.clone();
        let path = path.clone();
        let mut images = MemoryImages(names);
        tokio::task::spawn_blocking(move || {
            let records = sources::jsonl_records(File::open(&path)?);
            validate(records, &mut images, &data_dir)
        })
        .await
        .map_err(anyhow::Error::from)?
        .map_err(io_err)?
    };
    if v.report.error_count > 0 {
        return Err(refused(v.report));
    }
    let (tx, rx) = mpsc::channel(4);
    let producer = {
        let v_images = Validation { images: v.images.clone(), duplicate_of_line: v.duplicate_of_line.clone(), ..Default::default() };
        tokio::task::spawn_blocking(move || {
            let records = sources::jsonl_records(File::open(&path)?);
            send_items(records, &v_images, &mut NoImages, &data_dir, tx)
        })
    };
    let outcome = store::items::insert_items(db, project_id, rx).await;
    producer.await.map_err(anyhow::Error::from)?.map_err(io_err)?;
    drop(spool);
    let outcome = outcome?;
    let mut report = v.report;
    report.imported = outcome.inserted;
    report.duplicates = v.duplicate_of_line.len() as i64 + outcome.duplicates;
    report.duplicate_lines = v
        .duplicate_of_line
        .iter()
        .map(|(&line, &first)| DuplicateLine { line, duplicate_of: format!("file {first}") })
        .chain(outcome.duplicate_lines)
        .take(MAX_REPORTED)
        .collect();
    Ok(report)
}
