//! What the store's unit tests share: a fresh SQLite database with a fixture, and SQLite's
//! plan of a statement (the tests that pin a statement to its index read it).
use super::Db;

/// A fresh SQLite database (migrated) in a temporary directory, with `fixture`'s statements
/// run on it; the directory lives as long as the returned guard.
pub async fn sqlite_with(fixture: &[&str]) -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
    let Db::Sqlite { write, .. } = &db else { unreachable!("a SQLite database") };
    for sql in fixture {
        sqlx::query(sql).execute(write).await.unwrap();
    }
    (dir, db)
}

/// SQLite's `EXPLAIN QUERY PLAN` of `sql`, one line per step, with `binds` parameters bound to 1.
pub async fn plan(db: &Db, sql: &str, binds: usize) -> String {
    let Db::Sqlite { read, .. } = db else { unreachable!("a SQLite database") };
    let explain = format!("EXPLAIN QUERY PLAN {sql}");
    let mut q = sqlx::query_as::<_, (i64, i64, i64, String)>(&explain);
    for _ in 0..binds {
        q = q.bind(1i64);
    }
    let rows = q.fetch_all(read).await.unwrap();
    rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("\n")
}
