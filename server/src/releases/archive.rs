//! A release as one zip archive (the Hugging Face folder at its root, with every other format
//! and the manifest), written in one pass over the items on three threads.
//!
//! The per-item files (`release.jsonl`, `release.csv`, `label_studio.json`, `data/<split>.jsonl`)
//! used to be written one after the other, each from its own pass over the release's rows (six
//! or seven reads of 100,000 rows with the card's statistics), each row serialised token by
//! token straight into the deflate stream at zlib's default level 6: 20.8 s for a 100,000-item
//! release on the loaded bench machine (docs/bench.md, "Releases at a million"). Now:
//!
//! - the calling thread reads the rows once (`ItemSource::each_owned`), gathers the card's
//!   statistics, and hands batches of items (shared, not copied) to two writer threads: one
//!   writes the JSON files (`release.jsonl` and the split files), the other the CSV and the
//!   Label Studio JSON, so both cores compress;
//! - a writer serialises a batch's rows into a buffer and hands it on whole (one compressor
//!   call and one hash update per batch, not per token);
//! - each per-item file is a one-entry zip of its own in an unnamed temporary file, deflated at
//!   level 1 (the fast level: about three times faster than 6 on these texts for an archive some
//!   quarter larger); the archive is then assembled in the files' order by copying their
//!   compressed bytes (`ZipWriter::merge_archive`), with the small files (card, Label Studio
//!   config, lineage, manifest) written between them.
//!
//! The files' contents are those of the single-format exports (`super::export`), byte for byte
//! (the API test compares them): the rows come from the same functions.
//!
//! Memory: a few batches of items and the buffers of one batch's rows; the files are on disk.
use std::io::{self, Read, Seek, Write};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::export::{
    card, csv_writer, manifest_json, push_hf, push_jsonl, push_label_studio, sha256_hex, split_names, write_csv_record, ItemSource,
    LabelNames, ReleaseInfo, ReleaseStats, CSV_HEADER, LABEL_STUDIO_HEAD, LABEL_STUDIO_TAIL,
};
use super::ReleaseItem;

/// Items per batch handed from the reading thread to the writers.
const BATCH: usize = 512;
/// Batches each writer may have waiting (bounds the items in memory at a few thousand).
const QUEUE: usize = 4;
/// Deflate level of every entry: 1, zlib's fastest (see the module's header).
const LEVEL: i64 = 1;

fn options() -> zip::write::SimpleFileOptions {
    zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(LEVEL))
}

/// One per-item file being written on a writer thread: a one-entry zip in an unnamed temporary
/// file, and the SHA-256 of the bytes that went in (the manifest's).
struct Part {
    path: String,
    zip: zip::ZipWriter<std::fs::File>,
    sha: Sha256,
}

/// A finished part: its path, its SHA-256, and its one-entry archive, ready to merge.
struct Done {
    path: String,
    sha: String,
    archive: zip::ZipArchive<std::fs::File>,
}

impl Part {
    fn new(path: String) -> io::Result<Part> {
        let mut zip = zip::ZipWriter::new(tempfile::tempfile()?);
        zip.start_file(path.as_str(), options()).map_err(io::Error::other)?;
        Ok(Part { path, zip, sha: Sha256::new() })
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.sha.update(bytes);
        self.zip.write_all(bytes)
    }

    fn finish(self) -> io::Result<Done> {
        let mut file = self.zip.finish().map_err(io::Error::other)?;
        file.rewind()?;
        Ok(Done { path: self.path, sha: hex::encode(self.sha.finalize()), archive: zip::ZipArchive::new(file).map_err(io::Error::other)? })
    }
}

type Batch = Arc<Vec<ReleaseItem>>;

/// The JSON writer: `release.jsonl`, and `data/<split>.jsonl` per split in the order first seen.
fn json_writer(rx: Receiver<Batch>, mut names: LabelNames, multi: bool) -> io::Result<(Done, Vec<(String, Done)>)> {
    let mut jsonl = Part::new("release.jsonl".into())?;
    let mut splits: Vec<(String, Part, Vec<u8>)> = Vec::new();
    let mut buf = Vec::new();
    for batch in rx {
        buf.clear();
        for i in batch.iter() {
            push_jsonl(i, &mut buf)?;
            names.see(i);
            let k = match splits.iter().position(|(s, ..)| *s == i.split) {
                Some(k) => k,
                None => {
                    splits.push((i.split.clone(), Part::new(format!("data/{}.jsonl", i.split))?, Vec::new()));
                    splits.len() - 1
                }
            };
            push_hf(i, &names, multi, &mut splits[k].2)?;
        }
        jsonl.write(&buf)?;
        for (_, part, rows) in &mut splits {
            if !rows.is_empty() {
                part.write(rows)?;
                rows.clear();
            }
        }
    }
    let splits = splits.into_iter().map(|(s, part, _)| Ok((s, part.finish()?))).collect::<io::Result<_>>()?;
    Ok((jsonl.finish()?, splits))
}

/// The table writer: `release.csv` and `label_studio.json`.
fn table_writer(rx: Receiver<Batch>) -> io::Result<(Done, Done)> {
    let mut csv = Part::new("release.csv".into())?;
    let mut ls = Part::new("label_studio.json".into())?;
    let mut buf = Vec::new();
    let mut w = csv_writer(&mut buf);
    w.write_record(CSV_HEADER)?;
    w.flush()?;
    drop(w);
    ls.write(LABEL_STUDIO_HEAD)?;
    let mut first = true;
    for batch in rx {
        let mut w = csv_writer(&mut buf);
        for i in batch.iter() {
            write_csv_record(&mut w, i)?;
        }
        w.flush()?;
        drop(w);
        csv.write(&buf)?;
        buf.clear();
        for i in batch.iter() {
            push_label_studio(i, first, &mut buf)?;
            first = false;
        }
        ls.write(&buf)?;
        buf.clear();
    }
    csv.write(&buf)?; // only the header, for a release without items
    ls.write(LABEL_STUDIO_TAIL)?;
    Ok((csv.finish()?, ls.finish()?))
}

fn joined<T>(r: std::thread::Result<io::Result<T>>, who: &str) -> io::Result<T> {
    r.map_err(|_| io::Error::other(format!("the release export's {who} writer panicked")))?
}

/// Writes the release as a zip archive into `out`, reading `src` once; returns `out` and the
/// card's statistics. Entries, in order: `README.md` (the card), `release.jsonl`,
/// `release.csv`, `label_studio.json`, `label_studio_config.xml`, `lineage.json`,
/// `data/<split>.jsonl` (splits in `split_names` order), `manifest.json`.
pub fn write_zip<W: Write + Seek>(info: &ReleaseInfo<'_>, src: &mut dyn ItemSource, out: W) -> io::Result<(W, ReleaseStats)> {
    let multi = info.multi_label();
    let names = LabelNames(info.labels(&ReleaseStats::default()));
    let (tx_json, rx_json) = sync_channel::<Batch>(QUEUE);
    let (tx_table, rx_table) = sync_channel::<Batch>(QUEUE);
    let (stats, (jsonl, splits), (csv, ls)) = std::thread::scope(|s| -> io::Result<_> {
        let json = s.spawn(move || json_writer(rx_json, names, multi));
        let table = s.spawn(move || table_writer(rx_table));
        let mut stats = ReleaseStats::default();
        let mut batch = Vec::with_capacity(BATCH);
        // A writer that failed has dropped its receiver: the send fails, the read stops, and
        // the writer's own error is the one reported.
        let send = |batch: Vec<ReleaseItem>| -> io::Result<()> {
            let batch = Arc::new(batch);
            tx_json.send(batch.clone()).and_then(|_| tx_table.send(batch)).map_err(|_| io::Error::other("a release export writer stopped"))
        };
        let read = src
            .each_owned(&mut |i| {
                stats.add(&i);
                batch.push(i);
                if batch.len() == BATCH {
                    send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))?;
                }
                Ok(())
            })
            .and_then(|_| if batch.is_empty() { Ok(()) } else { send(std::mem::take(&mut batch)) });
        // Closing both channels ends the writers' loops.
        drop((tx_json, tx_table));
        let json = joined(json.join(), "JSON");
        let table = joined(table.join(), "table");
        let (json, table) = (json?, table?);
        read?;
        Ok((stats, json, table))
    })?;

    let names = info.labels(&stats);
    let mut a = Assembly { zip: zip::ZipWriter::new(out), hashes: Map::new() };
    a.small("README.md", card(info, &stats).as_bytes())?;
    a.merge(jsonl)?;
    a.merge(csv)?;
    a.merge(ls)?;
    a.small("label_studio_config.xml", crate::label_studio::label_config(&names, multi).as_bytes())?;
    a.small("lineage.json", &serde_json::to_vec_pretty(info.lineage).map_err(io::Error::from)?)?;
    let mut splits = splits;
    for split in split_names(&stats) {
        if let Some(k) = splits.iter().position(|(s, _)| *s == split) {
            a.merge(splits.swap_remove(k).1)?;
        }
    }
    let manifest = serde_json::to_vec_pretty(&manifest_json(info, &stats, a.hashes)).map_err(io::Error::from)?;
    a.zip.start_file("manifest.json", options()).map_err(io::Error::other)?;
    a.zip.write_all(&manifest)?;
    Ok((a.zip.finish().map_err(io::Error::other)?, stats))
}

/// The archive being assembled, and the SHA-256 of each file in it so far.
struct Assembly<W: Write + Seek> {
    zip: zip::ZipWriter<W>,
    hashes: Map<String, Value>,
}

impl<W: Write + Seek> Assembly<W> {
    fn small(&mut self, path: &str, bytes: &[u8]) -> io::Result<()> {
        self.zip.start_file(path, options()).map_err(io::Error::other)?;
        self.zip.write_all(bytes)?;
        self.hashes.insert(path.to_string(), Value::String(sha256_hex(bytes)));
        Ok(())
    }

    /// Copies a part's compressed entry into the archive.
    fn merge(&mut self, part: Done) -> io::Result<()> {
        self.hashes.insert(part.path, Value::String(part.sha));
        self.zip.merge_archive(part.archive).map_err(io::Error::other)
    }
}

/// The release as a zip archive in memory (small releases, tests).
pub fn zip(info: &ReleaseInfo<'_>, mut items: &[ReleaseItem]) -> io::Result<Vec<u8>> {
    Ok(write_zip(info, &mut items, io::Cursor::new(Vec::new()))?.0.into_inner())
}

/// Every file of a zip archive, in the archive's order.
pub fn unzip(bytes: &[u8]) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut archive = zip::ZipArchive::new(io::Cursor::new(bytes)).map_err(io::Error::other)?;
    (0..archive.len())
        .map(|k| {
            let mut f = archive.by_index(k).map_err(io::Error::other)?;
            let mut body = Vec::new();
            f.read_to_end(&mut body)?;
            Ok((f.name().to_string(), body))
        })
        .collect()
}

/// The manifest alone: the archive is written to a temporary file and its last entry read
/// back, so the manifest is the one the zip would carry.
pub fn manifest(info: &ReleaseInfo<'_>, src: &mut dyn ItemSource) -> io::Result<Vec<u8>> {
    let (mut file, _) = write_zip(info, src, io::BufWriter::new(tempfile::tempfile()?))?;
    file.flush()?;
    let mut file = file.into_inner().map_err(|e| e.into_error())?;
    file.rewind()?;
    let mut archive = zip::ZipArchive::new(file).map_err(io::Error::other)?;
    let mut entry = archive.by_name("manifest.json").map_err(io::Error::other)?;
    let mut out = Vec::new();
    entry.read_to_end(&mut out)?;
    Ok(out)
}
