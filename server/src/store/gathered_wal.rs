//! The writer's WAL appends, gathered: a commit reaches the WAL file in a few large writes
//! instead of two system calls per page.
//!
//! SQLite appends a commit's pages to the WAL one frame at a time, and each frame as two
//! writes: its 24-byte header, then the page. A label changes ~10 pages (docs/bench.md,
//! session 27), so the group-commit writer made ~21 write calls per label, most of its commit
//! phase, itself ~30 % of its time. This VFS wraps the default one for the write connection
//! (`Db::connect`), and changes nothing but the WAL file's writes: appends at the end of what
//! was written are gathered in memory, at most `PIECE` bytes, and handed to the real file
//! when the next append would not fit, and when
//! - the commit frame's page is appended (SQLite marks a transaction's last frame with the
//!   database size in its header): the commit is in the file (the kernel's page cache, as
//!   before) before SQLite publishes it to readers in the WAL index, and before `COMMIT`
//!   returns, and a failure to write it (a full disk) fails the commit as it did;
//! - any other call comes for the file (a read, a sync, a truncate, its size, a lock…), or a
//!   write that is not such an append (SQLite rewrites a frame in place when a transaction
//!   changes a page it had already spilled to the WAL, then the frames' checksums; and it
//!   starts the WAL over at offset 0): those go through at once, after what was gathered.
//!
//! So the writes reach the file in SQLite's own order, and whenever anything but the writer's
//! next append could look at the file (another connection reads only published frames), it
//! holds what it would hold without the gathering. What is gathered and not yet written is
//! only ever the frames of a transaction that has not committed: after a crash SQLite ignores
//! those anyway (its recovery stops at the last commit frame).
//!
//! When such a transaction rolls back instead (one large enough to spill pages to the WAL
//! before its commit), its gathered frames are dropped, never written (`discard_on_rollback`,
//! and at close): the rollback gave their place in the file back, and another process may
//! have committed frames there before this connection's next call on the file.
//!
//! Every other file (the database, its journals) is the default VFS's own file, untouched.
use std::cell::Cell;
use std::ffi::{c_int, c_void, CStr};
use std::sync::OnceLock;

use rusqlite::ffi;

/// The name the write connection asks for (`SqliteConnectOptions::vfs`).
pub const VFS_NAME: &str = "mirrorset-gathered-wal";
const VFS_NAME_C: &CStr = c"mirrorset-gathered-wal";

/// The most bytes gathered, and so the largest write handed to the real file. The unix VFS
/// keeps only the low 17 bits of a write's length (`seekAndWriteFd`), so a write of 128 KiB or
/// more would come back short and be reported as a full disk. Gathering a whole commit (~1.2
/// MiB at 25 labeling writes) before writing it measured no better: most of its runs had the
/// writer's statements ~20 µs slower per write (docs/bench.md, session 27).
const PIECE: usize = 124 * 1024;

/// A WAL frame's header (the page follows it).
const FRAME_HEADER: c_int = 24;

thread_local! {
    /// Writes SQLite made to gathering WAL files on this thread, and writes that reached the
    /// real files: what the unit tests compare (the writer runs on one thread at a time).
    static WRITES_ASKED: Cell<u64> = const { Cell::new(0) };
    static WRITES_MADE: Cell<u64> = const { Cell::new(0) };
}

/// The registration's outcome (the VFS itself is leaked: SQLite keeps a pointer to it for
/// the life of the process).
static REGISTERED: OnceLock<c_int> = OnceLock::new();

/// Registers the VFS (once per process, not as the default). Fails only if SQLite has no
/// default VFS or refuses the registration.
pub fn register() -> anyhow::Result<()> {
    let rc = *REGISTERED.get_or_init(|| unsafe {
        let real = ffi::sqlite3_vfs_find(std::ptr::null());
        if real.is_null() {
            return ffi::SQLITE_ERROR;
        }
        let mut vfs: ffi::sqlite3_vfs = *real;
        vfs.szOsFile = (real_offset() + (*real).szOsFile as usize) as c_int;
        vfs.pNext = std::ptr::null_mut();
        vfs.zName = VFS_NAME_C.as_ptr();
        vfs.pAppData = real.cast();
        vfs.xOpen = Some(x_open);
        ffi::sqlite3_vfs_register(Box::into_raw(Box::new(vfs)), 0)
    });
    match rc {
        ffi::SQLITE_OK => Ok(()),
        rc => anyhow::bail!("the gathered-WAL SQLite VFS could not be registered (SQLite code {rc})"),
    }
}

/// A WAL file: our fields, then the real file (`real_offset`) in the same allocation.
#[repr(C)]
struct GatheringFile {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    gathered: Vec<u8>,
    /// The file offset of `gathered[0]`.
    start: i64,
    /// Where the last write, gathered or not, ended: a write starting here is an append.
    end: i64,
    /// The last append was a commit frame's header: its page comes next.
    commit_page_next: bool,
}

fn real_offset() -> usize {
    std::mem::size_of::<GatheringFile>().next_multiple_of(16)
}

unsafe fn real_vfs(vfs: *mut ffi::sqlite3_vfs) -> *mut ffi::sqlite3_vfs {
    (*vfs).pAppData.cast()
}

unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let real = real_vfs(vfs);
    let Some(open) = (*real).xOpen else { return ffi::SQLITE_ERROR };
    if flags & ffi::SQLITE_OPEN_WAL == 0 {
        // Not a WAL: the real file itself, in the space SQLite gave (at least its size).
        return open(real, name, file, flags, out_flags);
    }
    let real_file: *mut ffi::sqlite3_file = file.cast::<u8>().add(real_offset()).cast();
    let rc = open(real, name, real_file, flags, out_flags);
    if rc != ffi::SQLITE_OK {
        // SQLite closes a file whose open failed only when it has methods.
        (*file).pMethods = std::ptr::null();
        if !(*real_file).pMethods.is_null() {
            if let Some(close) = (*(*real_file).pMethods).xClose {
                close(real_file);
            }
        }
        return rc;
    }
    file.cast::<GatheringFile>().write(GatheringFile {
        base: ffi::sqlite3_file { pMethods: &METHODS },
        real: real_file,
        gathered: Vec::new(),
        start: 0,
        end: -1,
        commit_page_next: false,
    });
    ffi::SQLITE_OK
}

unsafe fn this<'f>(file: *mut ffi::sqlite3_file) -> &'f mut GatheringFile {
    &mut *file.cast::<GatheringFile>()
}

unsafe fn real_methods(f: &GatheringFile) -> &ffi::sqlite3_io_methods {
    &*(*f.real).pMethods
}

/// Hands what was gathered to the real file (in `PIECE`s, so one write). Gathered bytes are dropped even
/// when a write fails: SQLite then fails the transaction, and its frames are never published.
unsafe fn write_out(f: &mut GatheringFile) -> c_int {
    let mut rc = ffi::SQLITE_OK;
    let mut done = 0;
    while done < f.gathered.len() && rc == ffi::SQLITE_OK {
        let n = (f.gathered.len() - done).min(PIECE);
        rc = write_real(f, f.gathered[done..].as_ptr().cast(), n as c_int, f.start + done as i64);
        done += n;
    }
    f.gathered.clear();
    rc
}

/// One write on the real file.
unsafe fn write_real(f: &GatheringFile, buf: *const c_void, amt: c_int, offset: i64) -> c_int {
    let Some(write) = real_methods(f).xWrite else { return ffi::SQLITE_IOERR_WRITE };
    WRITES_MADE.with(|c| c.set(c.get() + 1));
    write(f.real, buf, amt, offset)
}

/// Writes out what was gathered, then makes the call on the real file.
macro_rules! after_write_out {
    ($file:expr, $method:ident ( $($arg:expr),* )) => {{
        let f = this($file);
        let rc = write_out(f);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        match real_methods(f).$method {
            Some(m) => m(f.real $(, $arg)*),
            None => ffi::SQLITE_IOERR,
        }
    }};
}

unsafe extern "C" fn x_write(file: *mut ffi::sqlite3_file, buf: *const c_void, amt: c_int, offset: i64) -> c_int {
    WRITES_ASKED.with(|c| c.set(c.get() + 1));
    let f = this(file);
    let data = std::slice::from_raw_parts(buf.cast::<u8>(), amt.max(0) as usize);
    let commit_page = std::mem::take(&mut f.commit_page_next);
    // Bytes 4..8 of a frame's header: the database's size after the commit on a
    // transaction's last frame, 0 on every other.
    let commit_header = amt == FRAME_HEADER && data[4..8] != [0, 0, 0, 0];
    if offset != f.end {
        // Not an append: in its place, after what was gathered. A commit frame's header can
        // be one: the first frame a connection writes after another connection's frames (a
        // second process, a test's own SQL, the pool's new connection) does not start where
        // this one's last write ended. Its page then is an append, and must still be written
        // before COMMIT returns: before this was remembered here, a one-page commit there was
        // published to readers with its page only in this memory, and the other connections
        // read what the file held at that offset ("database disk image is malformed";
        // docs/bench.md, session 31).
        let rc = write_out(f);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        f.end = offset + amt as i64;
        f.commit_page_next = commit_header;
        return write_real(f, buf, amt, offset);
    }
    if f.gathered.len() + data.len() > PIECE {
        let rc = write_out(f);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    if f.gathered.is_empty() {
        f.start = offset;
    }
    f.gathered.extend_from_slice(data);
    f.end = offset + amt as i64;
    f.commit_page_next = commit_header;
    if commit_page {
        return write_out(f);
    }
    ffi::SQLITE_OK
}

/// Makes the write connection `db` drop what its WAL file gathered whenever a transaction
/// rolls back (SQLite's rollback hook runs after the rollback released the WAL's write lock,
/// before this connection's next call on the file). Those are the frames of a transaction that
/// will never commit, at offsets the rollback gave back: written at the next call, they
/// overwrote the frames another process committed there meanwhile, and a crash then lost
/// every commit after the first overwritten frame (recovery stops at a bad checksum).
///
/// # Safety
/// `db` is an open connection whose rollback hook nobody else sets, used on one thread at a
/// time.
pub unsafe fn discard_on_rollback(db: *mut ffi::sqlite3) {
    ffi::sqlite3_rollback_hook(db, Some(discard_gathered), db.cast());
}

unsafe extern "C" fn discard_gathered(db: *mut c_void) {
    // In WAL mode the pager's journal is its WAL file.
    let mut wal: *mut ffi::sqlite3_file = std::ptr::null_mut();
    let out: *mut *mut ffi::sqlite3_file = &mut wal;
    let rc = ffi::sqlite3_file_control(db.cast(), c"main".as_ptr(), ffi::SQLITE_FCNTL_JOURNAL_POINTER, out.cast());
    if rc == ffi::SQLITE_OK && !wal.is_null() && std::ptr::eq((*wal).pMethods, &METHODS) {
        discard(this(wal));
    }
}

fn discard(f: &mut GatheringFile) {
    f.gathered.clear();
    f.commit_page_next = false;
}

/// What is gathered at close is an uncommitted transaction's (each commit is written out
/// before it returns): dropped, as at a rollback (`discard_on_rollback`).
unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    let f = this(file);
    discard(f);
    let closed = match real_methods(f).xClose {
        Some(close) => close(f.real),
        None => ffi::SQLITE_OK,
    };
    std::ptr::drop_in_place(&mut f.gathered);
    (*file).pMethods = std::ptr::null();
    closed
}

unsafe extern "C" fn x_read(file: *mut ffi::sqlite3_file, buf: *mut c_void, amt: c_int, offset: i64) -> c_int {
    after_write_out!(file, xRead(buf, amt, offset))
}

unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    let rc = after_write_out!(file, xTruncate(size));
    let f = this(file);
    f.end = f.end.min(size);
    rc
}

unsafe extern "C" fn x_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    after_write_out!(file, xSync(flags))
}

unsafe extern "C" fn x_file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    after_write_out!(file, xFileSize(size))
}

unsafe extern "C" fn x_lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    after_write_out!(file, xLock(level))
}

unsafe extern "C" fn x_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    after_write_out!(file, xUnlock(level))
}

unsafe extern "C" fn x_check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    after_write_out!(file, xCheckReservedLock(out))
}

unsafe extern "C" fn x_file_control(file: *mut ffi::sqlite3_file, op: c_int, arg: *mut c_void) -> c_int {
    after_write_out!(file, xFileControl(op, arg))
}

unsafe extern "C" fn x_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    let f = this(file);
    real_methods(f).xSectorSize.map_or(4096, |m| m(f.real))
}

unsafe extern "C" fn x_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    let f = this(file);
    real_methods(f).xDeviceCharacteristics.map_or(0, |m| m(f.real))
}

unsafe extern "C" fn x_shm_map(file: *mut ffi::sqlite3_file, page: c_int, size: c_int, extend: c_int, out: *mut *mut c_void) -> c_int {
    after_write_out!(file, xShmMap(page, size, extend, out))
}

unsafe extern "C" fn x_shm_lock(file: *mut ffi::sqlite3_file, offset: c_int, n: c_int, flags: c_int) -> c_int {
    after_write_out!(file, xShmLock(offset, n, flags))
}

unsafe extern "C" fn x_shm_barrier(file: *mut ffi::sqlite3_file) {
    let f = this(file);
    if let Some(m) = real_methods(f).xShmBarrier {
        m(f.real);
    }
}

unsafe extern "C" fn x_shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    after_write_out!(file, xShmUnmap(delete))
}

unsafe extern "C" fn x_fetch(file: *mut ffi::sqlite3_file, offset: i64, amt: c_int, out: *mut *mut c_void) -> c_int {
    after_write_out!(file, xFetch(offset, amt, out))
}

unsafe extern "C" fn x_unfetch(file: *mut ffi::sqlite3_file, offset: i64, p: *mut c_void) -> c_int {
    after_write_out!(file, xUnfetch(offset, p))
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: Some(x_fetch),
    xUnfetch: Some(x_unfetch),
};

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{Connection, OpenFlags};

    fn counts() -> (u64, u64) {
        (WRITES_ASKED.with(Cell::get), WRITES_MADE.with(Cell::get))
    }

    /// A connection as the writer opens one: WAL, synchronous NORMAL, through this VFS.
    fn writer(path: &std::path::Path) -> Connection {
        register().unwrap();
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let c = Connection::open_with_flags_and_vfs(path, flags, VFS_NAME).unwrap();
        unsafe { discard_on_rollback(c.handle()) };
        c.execute_batch("PRAGMA page_size = 8192; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;").unwrap();
        c
    }

    fn rows_seen_by_another_connection(path: &std::path::Path) -> (i64, i64) {
        let other = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        other.query_row("SELECT COUNT(*), COALESCE(SUM(LENGTH(v)), 0) FROM t", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap()
    }

    /// A row of `t` as the rolled-back-spill tests write it (`tag` tells whose write it is).
    fn value(i: i64, tag: &str) -> String {
        format!("{tag}{i:06}").repeat(60)
    }

    /// Another connection (another process, in production) commits an update of each of the
    /// 40 rows of `t`, one transaction each, tagged "c".
    fn another_writer_updates_every_row(path: &std::path::Path) {
        let other = Connection::open(path).unwrap();
        for i in 0..40 {
            other.execute("UPDATE t SET v = ?1 WHERE id = ?2", rusqlite::params![value(i, "c"), i]).unwrap();
        }
    }

    /// How many of those updates a crash would keep: a copy of the database and its WAL opened
    /// afresh, so SQLite recovers the WAL, keeping its frames up to the first whose checksum
    /// fails (one overwritten frame loses every commit after it).
    fn updates_kept_after_a_crash(path: &std::path::Path) -> Result<i64, String> {
        let copy = path.with_extension("crashed");
        std::fs::copy(path, &copy).unwrap();
        std::fs::copy(format!("{}-wal", path.display()), format!("{}-wal", copy.display())).unwrap();
        let recovered = Connection::open(&copy).unwrap();
        recovered.query_row("SELECT COUNT(*) FROM t WHERE v LIKE 'c%'", [], |r| r.get::<_, i64>(0)).map_err(|e| e.to_string())
    }

    /// Two writers on one database, taking turns: each one's first frame after the other's
    /// is not an append to what it wrote itself. A one-page commit (one frame, the commit
    /// frame) there must be in the file when COMMIT returns, for a third connection to read.
    /// Fails without the commit flag of a header written in place: that connection then reads
    /// the page from a file that does not hold it yet.
    #[test]
    fn a_one_page_commit_after_another_writers_frames_is_in_the_file_when_commit_returns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let gathering = writer(&path);
        gathering.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'start');").unwrap();
        let other = Connection::open(&path).unwrap();
        other.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        for i in 0..40 {
            other.execute("UPDATE t SET v = ?1 WHERE id = 1", [format!("other {i}")]).unwrap();
            gathering.execute("UPDATE t SET v = ?1 WHERE id = 1", [format!("gathering {i}")]).unwrap();
            let reader = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
            let seen = reader.query_row("SELECT v FROM t WHERE id = 1", [], |r| r.get::<_, String>(0));
            assert_eq!(seen.map_err(|e| e.to_string()), Ok(format!("gathering {i}")), "turn {i}");
        }
        let ok: String = other.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(ok, "ok");
    }

    #[test]
    fn a_commit_reaches_the_wal_file_in_a_few_writes_before_commit_returns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        let mut c = writer(&path);
        c.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)").unwrap();
        let before = counts();
        let tx = c.transaction().unwrap();
        for i in 0..200 {
            tx.execute("INSERT INTO t (v) VALUES (?1)", [format!("{i:04}").repeat(500)]).unwrap();
        }
        tx.commit().unwrap();
        let after = counts();
        let (asked, made) = (after.0 - before.0, after.1 - before.1);
        // 200 rows of 2,000 bytes: ~50 pages of 8 KiB, two writes each.
        assert!(asked >= 100, "SQLite asked for {asked} writes");
        assert!(made * 10 <= asked, "{made} real writes for {asked} asked");
        // Another connection reads the file, not this one's memory: the commit is there.
        assert_eq!(rows_seen_by_another_connection(&path), (200, 400_000));
        // And survives the writer being dropped without a checkpoint's help: the WAL holds it.
        let copy = dir.path().join("copy.db");
        std::fs::copy(&path, &copy).unwrap();
        std::fs::copy(dir.path().join("g.db-wal"), dir.path().join("copy.db-wal")).unwrap();
        assert_eq!(rows_seen_by_another_connection(&copy), (200, 400_000));
    }

    /// A transaction larger than the page cache spills frames to the WAL before its commit and
    /// reads them back, rewrites some in place, and may be rolled back: the file must stay as
    /// SQLite expects through all of it.
    #[test]
    fn spilled_rewritten_and_rolled_back_transactions_leave_a_sound_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut c = writer(&path);
        c.execute_batch("PRAGMA cache_size = 8; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); CREATE INDEX t_v ON t(v);")
            .unwrap();
        let fill = |c: &mut Connection, from: i64, commit: bool| {
            let tx = c.transaction().unwrap();
            for i in from..from + 300 {
                tx.execute("INSERT INTO t (id, v) VALUES (?1, ?2)", rusqlite::params![i, format!("{:08}", (i * 7919) % 1000).repeat(100)])
                    .unwrap();
            }
            // Pages spilled above are changed again: frames rewritten in place.
            tx.execute("UPDATE t SET v = v || 'x' WHERE id % 3 = 0 AND id >= ?1", [from]).unwrap();
            if commit {
                tx.commit().unwrap()
            } else {
                tx.rollback().unwrap()
            }
        };
        fill(&mut c, 0, true);
        fill(&mut c, 300, false);
        fill(&mut c, 600, true);
        let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(ok, "ok");
        let (n, _) = rows_seen_by_another_connection(&path);
        assert_eq!(n, 600);
        let other = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let ok: String = other.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(ok, "ok");
        // A checkpoint through the writer (reads the WAL back) and more work after it.
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
        fill(&mut c, 900, true);
        assert_eq!(rows_seen_by_another_connection(&path).0, 900);
    }

    /// A transaction that spilled frames to the WAL and then rolled back leaves its last frames
    /// gathered in memory; meanwhile another process may write its own frames at the same
    /// offsets (the rollback gave them back). Those gathered frames must never reach the file:
    /// written at the connection's next call on the WAL, they overwrote the other writer's
    /// committed pages. Fails without `discard_on_rollback`.
    #[test]
    fn a_rolled_back_spill_never_overwrites_another_writers_frames() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let mut gathering = writer(&path);
        gathering
            .execute_batch("PRAGMA cache_size = 8; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); CREATE INDEX t_v ON t(v);")
            .unwrap();
        let tx = gathering.transaction().unwrap();
        for i in 0..40 {
            tx.execute("INSERT INTO t (id, v) VALUES (?1, ?2)", rusqlite::params![i, value(i, "a")]).unwrap();
        }
        tx.commit().unwrap();
        // Nothing left in the WAL: the rollback below has no committed frame to read back.
        gathering.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
        // Larger than the 8-page cache: frames spill to the WAL, the last ones stay gathered
        // (new overflow pages, never read back).
        let tx = gathering.transaction().unwrap();
        tx.execute("CREATE TABLE big (v BLOB)", []).unwrap();
        for _ in 0..3 {
            tx.execute("INSERT INTO big (v) VALUES (zeroblob(100000))", []).unwrap();
        }
        tx.rollback().unwrap();
        // Another writer commits where those frames were.
        another_writer_updates_every_row(&path);
        // The gathering connection's next look at the WAL.
        let n: i64 = gathering.query_row("SELECT COUNT(*) FROM t WHERE v LIKE 'c%'", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 40);
        let reader = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let ok = reader.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0)).map_err(|e| e.to_string());
        assert_eq!(ok, Ok("ok".to_string()));
        let n = reader.query_row("SELECT COUNT(*) FROM t WHERE v LIKE 'c%'", [], |r| r.get::<_, i64>(0)).map_err(|e| e.to_string());
        assert_eq!(n, Ok(40));
        assert_eq!(updates_kept_after_a_crash(&path), Ok(40));
    }

    /// The server's write connection (`Db::connect`) drops a rolled-back spill's frames too,
    /// on the same scenario as above: another process's commits survive a crash.
    #[tokio::test]
    async fn the_servers_write_connection_drops_a_rolled_back_spill() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.db");
        let db = crate::store::Db::connect(&format!("sqlite://{}", path.display())).await.unwrap();
        let crate::store::Db::Sqlite { write, .. } = &db else { unreachable!("a SQLite database") };
        let mut conn = write.acquire().await.unwrap();
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)").execute(&mut *conn).await.unwrap();
        for i in 0..40 {
            sqlx::query("INSERT INTO t (id, v) VALUES (?1, ?2)").bind(i).bind(value(i, "a")).execute(&mut *conn).await.unwrap();
        }
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut *conn).await.unwrap();
        sqlx::query("PRAGMA cache_size = 8").execute(&mut *conn).await.unwrap();
        let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
        sqlx::query("CREATE TABLE big (v BLOB)").execute(&mut *tx).await.unwrap();
        for _ in 0..3 {
            sqlx::query("INSERT INTO big (v) VALUES (zeroblob(100000))").execute(&mut *tx).await.unwrap();
        }
        tx.rollback().await.unwrap();
        another_writer_updates_every_row(&path);
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t WHERE v LIKE 'c%'").fetch_one(&mut *conn).await.unwrap();
        assert_eq!(n, 40);
        assert_eq!(updates_kept_after_a_crash(&path), Ok(40));
    }
}
