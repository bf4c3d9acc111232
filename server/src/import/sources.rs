//! Reading records out of uploaded files: JSONL, CSV, and zip archives of either plus images.
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::record::{parse_csv_record, parse_json_line, FieldError, Record};

/// (line number, the record or what is wrong with it). An `io::Error` ends the import.
pub type Records = Box<dyn Iterator<Item = io::Result<(i64, Result<Record, FieldError>)>> + Send>;

/// Longest JSONL line (and CSV record) accepted; longer lines are reported, not loaded.
pub const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

pub fn jsonl_records(file: File) -> Records {
    jsonl_lines(file, parse_json_line)
}

/// The JSONL reading of `jsonl_records` (bounded lines, UTF-8, BOM, blank lines skipped) with
/// another parser per line: imported predictions (`crate::prelabels`) read their files with it.
pub fn jsonl_lines<T: 'static>(
    file: File,
    parse: impl Fn(&str) -> Result<T, FieldError> + Send + 'static,
) -> Box<dyn Iterator<Item = io::Result<(i64, Result<T, FieldError>)>> + Send> {
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut line_no = 0i64;
    let mut buf = Vec::new();
    Box::new(std::iter::from_fn(move || loop {
        buf.clear();
        line_no += 1;
        match read_line_bounded(&mut reader, &mut buf, MAX_LINE_BYTES) {
            Err(e) => return Some(Err(e)),
            Ok(LineRead::Eof) => return None,
            Ok(LineRead::TooLong) => {
                return Some(Ok((
                    line_no,
                    Err(FieldError::new("", format!("the line is longer than {} MiB", MAX_LINE_BYTES >> 20))),
                )))
            }
            Ok(LineRead::Line) => {
                let Ok(text) = std::str::from_utf8(&buf) else {
                    return Some(Ok((line_no, Err(FieldError::new("", "the line is not valid UTF-8")))));
                };
                let text = text.trim_end_matches(['\n', '\r']);
                let text = if line_no == 1 { text.trim_start_matches('\u{feff}') } else { text };
                if text.trim().is_empty() {
                    continue; // blank lines, e.g. a trailing newline, are not records
                }
                return Some(Ok((line_no, parse(text))));
            }
        }
    }))
}

enum LineRead {
    Line,
    TooLong,
    Eof,
}

/// Reads one line into `buf`, but never holds more than `max` bytes of it: the rest of an
/// over-long line is read and dropped.
fn read_line_bounded(r: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<LineRead> {
    let mut too_long = false;
    let mut read_any = false;
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            return Ok(if !read_any {
                LineRead::Eof
            } else if too_long {
                LineRead::TooLong
            } else {
                LineRead::Line
            });
        }
        read_any = true;
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        if !too_long {
            if buf.len() + take > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&chunk[..take]);
            }
        }
        r.consume(take);
        if done {
            return Ok(if too_long { LineRead::TooLong } else { LineRead::Line });
        }
    }
}

/// Feeds the CSV parser, and fails once the record being parsed (which starts at
/// `record_start`) has grown past the cap: the parser holds a whole record in memory, and a
/// quote that never closes would otherwise make the rest of the file one record.
struct CappedReader<R> {
    inner: R,
    read: u64,
    record_start: Arc<AtomicU64>,
    cap: u64,
}

#[derive(Debug)]
struct RecordTooLong;
impl std::fmt::Display for RecordTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a CSV record is longer than {} MiB", MAX_LINE_BYTES >> 20)
    }
}
impl std::error::Error for RecordTooLong {}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.read.saturating_sub(self.record_start.load(Ordering::Relaxed)) > self.cap {
            return Err(io::Error::other(RecordTooLong));
        }
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

fn size_text(bytes: u64) -> String {
    if bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

/// CSV with a header row. Header problems are reported as line 1 and end the file. A record
/// over `MAX_LINE_BYTES` is reported; one more than 64 KiB over it (the parser would have to
/// hold it whole, e.g. after an unclosed quote) also ends the file, as the parser cannot
/// resume in the middle of a record.
pub fn csv_records(file: File) -> Records {
    csv_records_capped(file, MAX_LINE_BYTES as u64)
}

fn csv_records_capped(file: File, cap: u64) -> Records {
    let record_start = Arc::new(AtomicU64::new(0));
    // The parser's own buffer (8 KiB) may run ahead of the record by that much.
    let capped = CappedReader { inner: BufReader::new(file), read: 0, record_start: record_start.clone(), cap: cap + 64 * 1024 };
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(capped);
    let headers: Result<Vec<String>, FieldError> = match reader.headers() {
        Err(e) => Err(FieldError::new("", format!("cannot read the CSV header: {e}"))),
        Ok(h) => check_headers(h.iter().map(|s| s.trim().trim_start_matches('\u{feff}').to_string()).collect()),
    };
    let headers = match headers {
        Ok(h) => h,
        Err(e) => return Box::new(std::iter::once(Ok((1, Err(e))))),
    };
    let mut record = csv::StringRecord::new();
    let mut ended = false;
    let mut last_line = 1i64;
    Box::new(std::iter::from_fn(move || {
        if ended {
            return None;
        }
        let start = reader.position().byte();
        record_start.store(start, Ordering::Relaxed);
        match reader.read_record(&mut record) {
            Ok(false) => None,
            Ok(true) => {
                let line = record.position().map(|p| p.line() as i64).unwrap_or(0);
                last_line = line;
                if reader.position().byte() - start > cap {
                    return Some(Ok((line, Err(FieldError::new("", format!("the record is longer than {}", size_text(cap)))))));
                }
                let cells: Vec<String> = record.iter().map(str::to_string).collect();
                if cells.iter().all(|c| c.trim().is_empty()) {
                    return Some(Ok((line, Err(FieldError::new("", "the row is empty")))));
                }
                Some(Ok((line, parse_csv_record(&headers, &cells))))
            }
            Err(e) => {
                let line = e.position().map(|p| p.line() as i64).unwrap_or(last_line + 1);
                match e.kind() {
                    csv::ErrorKind::Io(io) if io.get_ref().is_some_and(|inner| inner.is::<RecordTooLong>()) => {
                        ended = true;
                        Some(Ok((
                            line,
                            Err(FieldError::new(
                                "",
                                format!(
                                    "the record is longer than {}; the rest of the file was not read (an unclosed \
                                     quote makes the rest of the file one record)",
                                    size_text(cap)
                                ),
                            )),
                        )))
                    }
                    csv::ErrorKind::Io(_) => Some(Err(io::Error::other(e.to_string()))),
                    _ => Some(Ok((line, Err(FieldError::new("", format!("not valid CSV: {e}")))))),
                }
            }
        }
    }))
}

fn check_headers(headers: Vec<String>) -> Result<Vec<String>, FieldError> {
    let mut seen = std::collections::HashSet::new();
    for h in &headers {
        if h.is_empty() {
            return Err(FieldError::new("", "the header has an empty column name"));
        }
        if !seen.insert(h.as_str()) {
            return Err(FieldError::new(h, "the column name appears twice in the header"));
        }
    }
    if !seen.contains("text") && !seen.contains("image") {
        return Err(FieldError::new("", "the header needs a text or an image column"));
    }
    Ok(headers)
}

/// A zip entry name that could escape a directory, or is otherwise unsafe to trust.
pub fn unsafe_entry_name(name: &str) -> bool {
    name.starts_with('/')
        || name.starts_with('\\')
        || name.contains('\\')
        || name.contains('\0')
        || (name.len() > 1 && name.as_bytes()[1] == b':')
        || name.split('/').any(|part| part == "..")
}

/// Reads at most `max` bytes from `r`; more is an error (the zip's size headers can lie).
pub fn read_limited(r: impl Read, max: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    r.take(max + 1).read_to_end(&mut out)?;
    if out.len() as u64 > max {
        return Err(io::Error::other(format!("larger than {} MiB", max >> 20)));
    }
    Ok(out)
}

/// The number of entries a zip file's end-of-central-directory record declares (zip64 too),
/// read before the zip library loads the whole directory into memory; None if the record
/// cannot be found (the zip library then says what is wrong).
pub fn zip_declared_entries(file: &mut File) -> io::Result<Option<u64>> {
    use std::io::{Seek, SeekFrom};
    let len = file.seek(SeekFrom::End(0))?;
    // The record is 22 bytes plus a comment of at most 65,535.
    let tail_len = len.min(22 + 65_535);
    file.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = vec![0u8; tail_len as usize];
    file.read_exact(&mut tail)?;
    let Some(eocd) = (0..tail.len().saturating_sub(21)).rev().find(|&i| tail[i..i + 4] == *b"PK\x05\x06") else {
        return Ok(None);
    };
    let entries = u16::from_le_bytes([tail[eocd + 10], tail[eocd + 11]]) as u64;
    if entries != 0xFFFF {
        return Ok(Some(entries));
    }
    // Zip64: a locator 20 bytes before the record points at the zip64 record.
    let Some(locator) = eocd.checked_sub(20).filter(|&l| tail[l..l + 4] == *b"PK\x06\x07") else {
        return Ok(None);
    };
    let offset = u64::from_le_bytes(tail[locator + 8..locator + 16].try_into().expect("8 bytes"));
    if offset.saturating_add(40) > len {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(offset))?;
    let mut record = [0u8; 40];
    file.read_exact(&mut record)?;
    if record[..4] != *b"PK\x06\x06" {
        return Ok(None);
    }
    Ok(Some(u64::from_le_bytes(record[32..40].try_into().expect("8 bytes"))))
}

/// Joins an image name from a record to the directory of the data file inside the zip.
pub fn zip_image_name(data_file: &str, image: &str) -> Result<String, String> {
    if unsafe_entry_name(image) {
        return Err("the image path must stay inside the zip (no '..', no absolute path)".into());
    }
    let dir = Path::new(data_file).parent().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
    let image = image.trim_start_matches("./");
    Ok(if dir.is_empty() { image.to_string() } else { format!("{dir}/{image}") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(content: &[u8]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(content).unwrap();
        std::io::Seek::rewind(&mut f).unwrap();
        f
    }

    #[test]
    fn jsonl_numbers_lines_and_skips_blank_ones() {
        let f = file_with(b"{\"text\":\"a\"}\n\n{\"text\":\"b\"}\r\nbad\n");
        let got: Vec<_> = jsonl_records(f).map(|r| r.unwrap()).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].0, 1);
        assert_eq!(got[1].0, 3);
        assert!(got[1].1.is_ok());
        assert_eq!(got[2].0, 4);
        assert!(got[2].1.is_err());
    }

    #[test]
    fn an_over_long_line_is_reported_not_loaded() {
        let mut content = b"{\"text\":\"".to_vec();
        content.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 10));
        content.extend(b"\"}\n{\"text\":\"ok\"}\n");
        let got: Vec<_> = jsonl_records(file_with(&content)).map(|r| r.unwrap()).collect();
        assert_eq!(got.len(), 2);
        assert!(got[0].1.as_ref().unwrap_err().reason.contains("longer"));
        assert!(got[1].1.is_ok());
        assert_eq!(got[1].0, 2);
    }

    #[test]
    fn csv_lines_count_the_header() {
        let f = file_with(b"id,text,region\n1,hello,eu\n2,,us\n");
        let got: Vec<_> = csv_records(f).map(|r| r.unwrap()).collect();
        assert_eq!(got[0].0, 2);
        assert!(got[0].1.is_ok());
        assert_eq!(got[1].0, 3);
        assert!(got[1].1.is_err());
    }

    #[test]
    fn an_over_long_csv_record_is_reported_not_loaded() {
        // A long but closed record: reported, and the file goes on.
        let mut content = b"id,text\n1,".to_vec();
        content.extend(std::iter::repeat_n(b'x', 130_000));
        content.extend(b"\n2,fine\n");
        let got: Vec<_> = csv_records_capped(file_with(&content), 100_000).map(|r| r.unwrap()).collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].1.as_ref().unwrap_err().reason.contains("longer"), "{got:?}");
        assert_eq!(got[1].0, 3);
        assert!(got[1].1.is_ok());
        // An unclosed quote: the parser stops before holding the rest of the file.
        let mut content = b"id,text\n1,ok\n2,\"".to_vec();
        content.extend(std::iter::repeat_n(b'y', 1_000_000));
        let got: Vec<_> = csv_records_capped(file_with(&content), 100_000).map(|r| r.unwrap()).collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[1].1.as_ref().unwrap_err().reason.contains("unclosed quote"), "{got:?}");
    }

    #[test]
    fn csv_header_needs_text_or_image() {
        let got: Vec<_> = csv_records(file_with(b"id,region\n1,eu\n")).map(|r| r.unwrap()).collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 1);
    }

    #[test]
    fn zip_entry_count_is_read_from_the_end_record() {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for i in 0..3 {
            w.start_file(format!("f{i}.txt"), zip::write::SimpleFileOptions::default()).unwrap();
            w.write_all(b"hello").unwrap();
        }
        let bytes = w.finish().unwrap().into_inner();
        assert_eq!(zip_declared_entries(&mut file_with(&bytes)).unwrap(), Some(3));
        assert_eq!(zip_declared_entries(&mut file_with(b"not a zip")).unwrap(), None);
    }

    #[test]
    fn zip_slip_names_are_unsafe() {
        for bad in ["../x.png", "a/../../x", "/etc/passwd", "C:\\x", "a\\..\\b"] {
            assert!(unsafe_entry_name(bad), "{bad}");
        }
        assert!(!unsafe_entry_name("images/a..b.png"));
        assert_eq!(zip_image_name("batch/items.jsonl", "./img/a.png").unwrap(), "batch/img/a.png");
        assert_eq!(zip_image_name("items.jsonl", "a.png").unwrap(), "a.png");
    }
}

/// Tasks of a Label Studio JSON export (an array, not lines) as records, numbered by their
/// position in the array (1-based), which is what a report names. `label_studio::read_tasks`
/// pushes tasks to a callback while the import pulls records, so the reader runs on a thread
/// of its own and hands tasks over a small bounded channel: memory stays at a few tasks, and
/// dropping the iterator ends the reader (its next send fails).
///
/// Only the items come through here (text, external id, the other scalar `data` fields as
/// meta); the annotations are read again by `import::label_studio` once the items exist.
pub fn label_studio_records(file: File) -> Records {
    use crate::label_studio::{read_tasks, ReadOptions};
    let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<(i64, Result<Record, FieldError>)>>(64);
    std::thread::spawn(move || {
        let mut position = 0i64;
        let outcome = read_tasks(file, &ReadOptions::default(), |task| {
            position += 1;
            let item = match task {
                Ok(t) => super::record::build(Some(t.external_id), Some(t.text), None, t.meta, 1.0, None, None),
                Err(e) => Err(FieldError::new("", e.message)),
            };
            tx.send(Ok((position, item))).map_err(|_| ())
        });
        let last = match outcome {
            Ok(_) => return,
            // A syntax error (or not an array) is reported at the task it broke off in.
            Err(e) if !e.is_io() => Ok((position + 1, Err(FieldError::new("", format!("not a Label Studio JSON export (an array of tasks): {e}"))))),
            Err(e) => Err(io::Error::other(e)),
        };
        let _ = tx.send(last);
    });
    Box::new(rx.into_iter())
}
