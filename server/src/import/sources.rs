//! Reading records out of uploaded files: JSONL, CSV, and zip archives of either plus images.
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use super::record::{parse_csv_record, parse_json_line, FieldError, Record};

/// (line number, the record or what is wrong with it). An `io::Error` ends the import.
pub type Records = Box<dyn Iterator<Item = io::Result<(i64, Result<Record, FieldError>)>> + Send>;

/// Longest JSONL line accepted; longer lines are reported, not loaded.
pub const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

pub fn jsonl_records(file: File) -> Records {
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
                return Some(Ok((line_no, parse_json_line(text))));
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

/// CSV with a header row. Header problems are reported as line 1 and end the file.
pub fn csv_records(file: File) -> Records {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(BufReader::new(file));
    let headers: Result<Vec<String>, FieldError> = match reader.headers() {
        Err(e) => Err(FieldError::new("", format!("cannot read the CSV header: {e}"))),
        Ok(h) => check_headers(h.iter().map(|s| s.trim().trim_start_matches('\u{feff}').to_string()).collect()),
    };
    let headers = match headers {
        Ok(h) => h,
        Err(e) => return Box::new(std::iter::once(Ok((1, Err(e))))),
    };
    let mut record = csv::StringRecord::new();
    Box::new(std::iter::from_fn(move || match reader.read_record(&mut record) {
        Ok(false) => None,
        Ok(true) => {
            let line = record.position().map(|p| p.line() as i64).unwrap_or(0);
            let cells: Vec<String> = record.iter().map(str::to_string).collect();
            if cells.iter().all(|c| c.trim().is_empty()) {
                return Some(Ok((line, Err(FieldError::new("", "the row is empty")))));
            }
            Some(Ok((line, parse_csv_record(&headers, &cells))))
        }
        Err(e) => {
            let line = e.position().map(|p| p.line() as i64).unwrap_or(0);
            match e.kind() {
                csv::ErrorKind::Io(_) => Some(Err(io::Error::other(e.to_string()))),
                _ => Some(Ok((line, Err(FieldError::new("", format!("not valid CSV: {e}")))))),
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
    fn csv_header_needs_text_or_image() {
        let got: Vec<_> = csv_records(file_with(b"id,region\n1,eu\n")).map(|r| r.unwrap()).collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 1);
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
