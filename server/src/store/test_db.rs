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

/// SQLite's `EXPLAIN QUERY PLAN` of `sql`, one line per step, with its parameters (at most
/// `binds`) bound to 1.
/// On an inline reader, where the lease book's SQL functions exist.
pub async fn plan(db: &Db, sql: &str, binds: usize) -> String {
    let Db::Sqlite { inline, .. } = db else { unreachable!("a SQLite database") };
    let explain = format!("EXPLAIN QUERY PLAN {sql}");
    inline
        .with(|conn| {
            let mut st = conn.prepare(&explain)?;
            // SQLite numbers the distinct `$N` a statement uses, which may be fewer than N.
            assert!(st.parameter_count() <= binds, "{sql}");
            for k in 1..=st.parameter_count() {
                st.raw_bind_parameter(k, 1i64)?;
            }
            let mut rows = st.raw_query();
            let mut lines = Vec::new();
            while let Some(r) = rows.next()? {
                lines.push(r.get::<_, String>(3)?);
            }
            Ok(lines.join("\n"))
        })
        .unwrap()
}
