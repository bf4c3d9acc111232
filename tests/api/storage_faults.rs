//! The storage refusing writes under a running server (issue 11's fault cases): the disk full
//! (the database on a small tmpfs that a filler file fills) and the database files made
//! unwritable (`chattr +i`, which, unlike `chmod`, binds root and already-open descriptors).
//!
//! What a user must see: every refused write is a 503 with `Retry-After` and the message that
//! nothing was saved (never a 500, never a dead server); reads go on; once the condition
//! clears the same server takes writes again without a restart; and every submission it
//! acknowledged, before or after, is in the export exactly once.
//!
//! SQLite only: these are conditions of a database file on a local disk. Mounting a tmpfs and
//! `chattr` need root, which `.ci/run` is; run as anyone else, the tests fail and say why.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use app::api_types::*;

use crate::common::*;

/// A tmpfs of `size_mib` mounted for one test, unmounted when dropped (after the server that
/// lives on it: declare it first).
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(size_mib: u32) -> Tmpfs {
        let path = std::env::temp_dir().join(format!("mirrorset-tmpfs-{}", random_hex(6)));
        std::fs::create_dir_all(&path).unwrap();
        run("mount", &["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs", path.to_str().unwrap()]);
        Tmpfs { path }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// Files made immutable for one test; made mutable again when dropped, whatever happened.
struct Immutable {
    files: Vec<PathBuf>,
}

impl Immutable {
    fn set(files: Vec<PathBuf>) -> Immutable {
        for f in &files {
            run("chattr", &["+i", f.to_str().unwrap()]);
        }
        Immutable { files }
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        for f in &self.files {
            let _ = Command::new("chattr").arg("-i").arg(f).status();
        }
    }
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "`{cmd} {}` failed ({}): {} — these tests need root (as `.ci/run` runs) and a disk that supports it",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes zeros into `dir/filler` until the file system has no byte left.
fn fill_disk(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    for chunk in [1 << 20, 4096, 1] {
        let buf = vec![0u8; chunk];
        loop {
            match f.write(&buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }
    path
}

/// One step of a labeler's loop.
enum Step {
    /// Submitted and answered 200: (item, label).
    Acked(i64, String),
    /// The server refused with this response (the caller checks it).
    Refused(RawResponse),
    /// Nothing left to label.
    Done,
}

/// Asks for an item and submits a label for it. A refused submission is retried later with the
/// same client id (`pending`), as the labeling page does, so a write the server committed but
/// could not confirm is never counted twice.
async fn label_one(c: &Client, pid: i64, pending: &mut Option<(i64, String, String)>) -> Step {
    if pending.is_none() {
        let r = c.next_raw(pid, &[]).await;
        if r.status != 200 {
            return Step::Refused(r);
        }
        let Some(item) = r.json::<NextItem>().item else { return Step::Done };
        let label = ["pos", "neg", "other"][(item.id % 3) as usize].to_string();
        *pending = Some((item.id, label, client_id()));
    }
    let (item_id, label, cid) = pending.clone().unwrap();
    let r = c.submit_raw(pid, item_id, &[label.as_str()], &cid).await;
    match r.status.as_u16() {
        200 | 201 => {
            *pending = None;
            Step::Acked(item_id, label)
        }
        _ => Step::Refused(r),
    }
}

/// A refusal must be the storage 503, nothing else.
fn assert_storage_refusal(r: &RawResponse) {
    let info = r.assert_error(503, "unavailable");
    assert!(info.message.contains("nothing of this request was saved"), "message: {}", info.message);
    let retry: u64 = r.headers.get("retry-after").expect("Retry-After").to_str().unwrap().parse().unwrap();
    assert!(retry >= 1, "Retry-After: {retry}");
}

/// Labels until the server refuses (returns that response), `limit` submissions at most.
async fn label_until_refused(
    c: &Client,
    pid: i64,
    acked: &mut Vec<(i64, String)>,
    pending: &mut Option<(i64, String, String)>,
    limit: usize,
) -> Option<RawResponse> {
    for _ in 0..limit {
        match label_one(c, pid, pending).await {
            Step::Acked(item, label) => acked.push((item, label)),
            Step::Refused(r) => return Some(r),
            Step::Done => return None,
        }
    }
    None
}

/// Labels `n` items once the condition cleared; a few refusals while the server notices are
/// allowed (each must still be the storage 503), for at most 30 s.
async fn label_after_recovery(
    c: &Client,
    pid: i64,
    n: usize,
    acked: &mut Vec<(i64, String)>,
    pending: &mut Option<(i64, String, String)>,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut done = 0;
    while done < n {
        assert!(Instant::now() < deadline, "the server did not take writes again within 30 s");
        match label_one(c, pid, pending).await {
            Step::Acked(item, label) => {
                acked.push((item, label));
                done += 1;
            }
            Step::Refused(r) => {
                assert_storage_refusal(&r);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Step::Done => panic!("ran out of items after {done} labels"),
        }
    }
}

/// Every acknowledged submission is in the export, once, with its label.
async fn assert_all_acknowledged_exported(admin: &Client, pid: i64, labeler: &str, acked: &[(i64, String)]) {
    let mut stored: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for line in admin.export_jsonl(pid, false).await {
        let item_id = line["item_id"].as_i64().unwrap();
        for a in line["annotations"].as_array().unwrap() {
            assert_eq!(a["labeler"], labeler);
            let labels: Vec<String> = serde_json::from_value(a["labels"].clone()).unwrap();
            assert!(stored.insert(item_id, labels).is_none(), "two annotations for item {item_id}");
        }
    }
    for (item, label) in acked {
        assert_eq!(stored.get(item), Some(&vec![label.clone()]), "acknowledged label on item {item}");
    }
    assert_eq!(stored.len(), acked.len(), "annotations stored beyond the acknowledged ones");
}

async fn project_with_labeler(server: &TestServer, items: usize) -> (Client, i64, Client) {
    let admin = server.admin().await;
    let pid = admin.simple_project("storage", 1, 600).await.id;
    admin.import_texts(pid, "storage fault", items).await;
    let (u, c) = server.user(&admin, "filler", Role::Labeler).await;
    admin.add_member(pid, u.id).await;
    (admin, pid, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_is_a_503_and_labeling_resumes_when_space_returns() {
    let disk = Tmpfs::mount(48);
    // No disk reserve for uploads: the import after recovery fits on the small disk.
    let server = TestServer::start_in(Backend::Sqlite, &["--min-free-disk-mb", "0"], &disk.path).await;
    let (admin, pid, labeler) = project_with_labeler(&server, 3000).await;
    let (mut acked, mut pending) = (Vec::new(), None);
    assert!(label_until_refused(&labeler, pid, &mut acked, &mut pending, 20).await.is_none());

    let filler = fill_disk(&disk.path);
    // SQLite reuses its write-ahead log's space, so some writes still fit; the disk refuses
    // within a few hundred at most (the log grows, or a checkpoint grows the database file).
    let refused = label_until_refused(&labeler, pid, &mut acked, &mut pending, 2500)
        .await
        .expect("the full disk never refused a labeling write");
    assert_storage_refusal(&refused);
    let before = acked.len();

    // Reads go on; an import is refused whole (507 before spooling, or 503 at the database).
    let progress = admin.progress(pid).await;
    assert_eq!(progress.total, 3000);
    let r = admin.import_raw(pid, "jsonl", b"{\"text\":\"one more\"}\n{\"text\":\"and another\"}\n".to_vec()).await;
    assert!(matches!(r.status.as_u16(), 503 | 507), "import on a full disk: {} {}", r.status, r.text());
    assert_eq!(admin.progress(pid).await.total, 3000, "a refused import left items behind");

    // Still refused while full: a second try is the same 503, not a 500 from a broken state.
    if let Some(r) = label_until_refused(&labeler, pid, &mut acked, &mut pending, 50).await {
        assert_storage_refusal(&r);
    }

    std::fs::remove_file(filler).unwrap();
    label_after_recovery(&labeler, pid, 30, &mut acked, &mut pending).await;
    assert!(acked.len() >= before + 30);
    let r = admin.import_raw(pid, "jsonl", b"{\"text\":\"after the disk emptied\"}\n".to_vec()).await;
    assert_eq!(r.status, 200, "import after recovery: {}", r.text());
    assert_all_acknowledged_exported(&admin, pid, "filler", &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unwritable_database_files_are_a_503_and_labeling_resumes_when_writable() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (admin, pid, labeler) = project_with_labeler(&server, 500).await;
    let (mut acked, mut pending) = (Vec::new(), None);
    assert!(label_until_refused(&labeler, pid, &mut acked, &mut pending, 20).await.is_none());

    let db = server.dir().join("mirrorset.db");
    let wal = server.dir().join("mirrorset.db-wal");
    assert!(wal.exists(), "the database is not in WAL mode");
    let frozen = Immutable::set(vec![db, wal]);
    let refused = label_until_refused(&labeler, pid, &mut acked, &mut pending, 5)
        .await
        .expect("writes to unwritable database files were not refused");
    assert_storage_refusal(&refused);
    // Reads go on.
    assert_eq!(admin.progress(pid).await.done, acked.len() as i64);

    drop(frozen);
    label_after_recovery(&labeler, pid, 20, &mut acked, &mut pending).await;
    assert_eq!(acked.len(), 40);
    assert_all_acknowledged_exported(&admin, pid, "filler", &acked).await;
}

/// A backup onto a full disk fails with the disk's message, leaves no partial copy, and keeps
/// the previous backup whole; with space back, the next one succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_onto_a_full_disk_fails_clearly_and_keeps_the_previous_backup() {
    let disk = Tmpfs::mount(16);
    let server = TestServer::start(Backend::Sqlite).await;
    let (admin, pid, _labeler) = project_with_labeler(&server, 300).await;
    let to = disk.path.join("backup");
    let backup = || server.backup_to(&to);
    let first = backup();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let first_copy = std::fs::read(to.join("mirrorset.db")).unwrap();

    admin.import_texts(pid, "after the first backup", 200).await;
    let filler = fill_disk(&disk.path);
    let failed = backup();
    assert_eq!(failed.status.code(), Some(1));
    assert_eq!(
        error_line(&failed),
        "error: copying the database: database or disk is full"
    );
    assert!(!to.join("mirrorset.db.partial").exists(), "the partial copy was left on the full disk");
    assert!(std::fs::read(to.join("mirrorset.db")).unwrap() == first_copy, "the previous backup changed");

    std::fs::remove_file(filler).unwrap();
    let again = backup();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let summary = String::from_utf8_lossy(&again.stdout);
    assert!(summary.starts_with("backed up 1 projects, 500 items, "), "{summary}");
}
