//! Statements for the labeling loop's writes (hand-out, submission, skip), written once and run
//! on two back-ends: SQLite's raw connection handle (rusqlite, inside the group commit of
//! `store::writer`) and a PostgreSQL transaction (sqlx).
//!
//! Why not sqlx on SQLite: sqlx runs each SQLite statement on the connection's own thread, so
//! every statement is a hand-off from the writer task to that thread and back, and the writer
//! is what bounds the labeling loop on SQLite (docs/bench.md, sessions 9–13: busy 96–99 % at
//! 50 labelers, most of it in those hand-offs, not in SQLite). The writer task borrows the raw
//! handle (`store::writer::hold`), and the statements of `GroupWriter::run_raw`'s jobs then
//! run in place, one after another, with no hand-off at all.
//!
//! Rows come back as plain values ([`Row`]) read by column name, the same on both back-ends,
//! so the code over [`Statements`] does not know which one it runs on. Placeholders are `$N`
//! on both, with the values in [`Arg`]s as for a `Batch`.
use std::future::Future;
use std::sync::Arc;

use super::batch::{Arg, Batch};
use crate::error::{AppError, AppResult};

/// How many statements a raw connection keeps prepared: a hand-out and a submission use about
/// two dozen texts between them. The cache lives as long as its rusqlite connection: the
/// writer's while it holds the write connection (`store::writer::hold`), an inline reader's
/// (`store::inline_reader`) while that connection is open.
pub const RAW_STATEMENT_CACHE: usize = 32;

/// One column's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

/// One row: its statement's column names and its values.
#[derive(Clone, Debug)]
pub struct Row {
    names: Arc<Vec<String>>,
    vals: Vec<Val>,
}

impl Row {
    fn val(&self, name: &str) -> AppResult<&Val> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|k| &self.vals[k])
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("the statement has no column {name}")))
    }

    fn mismatch(name: &str, want: &str, got: &Val) -> AppError {
        AppError::Internal(anyhow::anyhow!("column {name}: expected {want}, found {got:?}"))
    }

    pub fn opt_i64(&self, name: &str) -> AppResult<Option<i64>> {
        match self.val(name)? {
            Val::Null => Ok(None),
            Val::Int(v) => Ok(Some(*v)),
            other => Err(Row::mismatch(name, "an integer", other)),
        }
    }

    pub fn i64(&self, name: &str) -> AppResult<i64> {
        self.opt_i64(name)?.ok_or_else(|| Row::mismatch(name, "an integer", &Val::Null))
    }

    /// A real; an integer is read as one (SQLite stores a whole REAL as an integer when asked).
    pub fn opt_f64(&self, name: &str) -> AppResult<Option<f64>> {
        match self.val(name)? {
            Val::Null => Ok(None),
            Val::Int(v) => Ok(Some(*v as f64)),
            Val::Real(v) => Ok(Some(*v)),
            other => Err(Row::mismatch(name, "a number", other)),
        }
    }

    pub fn f64(&self, name: &str) -> AppResult<f64> {
        self.opt_f64(name)?.ok_or_else(|| Row::mismatch(name, "a number", &Val::Null))
    }

    pub fn opt_string(&self, name: &str) -> AppResult<Option<String>> {
        match self.val(name)? {
            Val::Null => Ok(None),
            Val::Text(v) => Ok(Some(v.clone())),
            other => Err(Row::mismatch(name, "text", other)),
        }
    }

    pub fn string(&self, name: &str) -> AppResult<String> {
        self.opt_string(name)?.ok_or_else(|| Row::mismatch(name, "text", &Val::Null))
    }
}

/// Runs statements inside an open transaction (SQLite: the group commit's, shared by the jobs
/// of a group).
pub trait Statements: Send {
    /// Runs one statement and returns all its rows.
    fn rows(&mut self, sql: &str, args: Vec<Arg>) -> impl Future<Output = AppResult<Vec<Row>>> + Send;

    /// Runs the parts of `batch` in order; the first failing part fails it. On PostgreSQL a
    /// batch that `Batch::merged_for_pg` accepts runs as one statement: its parts do not see
    /// each other's writes.
    fn run(&mut self, batch: Batch) -> impl Future<Output = AppResult<()>> + Send;

    /// Runs `batch`, then the query, and returns the query's rows. On PostgreSQL both go as
    /// one statement when `Batch::merged_before_select_for_pg` accepts them: the query then
    /// reads the snapshot from before the batch's writes (it names none of the tables they
    /// write).
    fn rows_after(&mut self, batch: Batch, sql: &str, args: Vec<Arg>) -> impl Future<Output = AppResult<Vec<Row>>> + Send {
        async move {
            self.run(batch).await?;
            self.rows(sql, args).await
        }
    }

    /// The first row, if any.
    fn first_row(&mut self, sql: &str, args: Vec<Arg>) -> impl Future<Output = AppResult<Option<Row>>> + Send {
        async move { Ok(self.rows(sql, args).await?.into_iter().next()) }
    }

    /// The first column of the first row, as an integer (None: no row, or NULL).
    fn first_i64(&mut self, sql: &str, args: Vec<Arg>) -> impl Future<Output = AppResult<Option<i64>>> + Send {
        async move {
            let Some(row) = self.rows(sql, args).await?.into_iter().next() else { return Ok(None) };
            match row.vals.first() {
                None | Some(Val::Null) => Ok(None),
                Some(Val::Int(v)) => Ok(Some(*v)),
                Some(other) => Err(Row::mismatch(&row.names[0], "an integer", other)),
            }
        }
    }
}

/// SQLite's writer connection through its raw handle (`GroupWriter::run_raw`). Never waits:
/// its futures are ready when first polled, which is how `on_group_statements!` runs them.
pub struct RawSqlite<'c>(pub &'c mut rusqlite::Connection);

impl RawSqlite<'_> {
    fn prepared<'s>(conn: &'s rusqlite::Connection, sql: &str, args: &[Arg]) -> AppResult<rusqlite::CachedStatement<'s>> {
        let mut stmt = conn.prepare_cached(sql)?;
        // SQLite numbers parameters in order of first appearance, so `$2` may be its first:
        // each is bound by its name.
        for idx in 1..=stmt.parameter_count() {
            let name = stmt.parameter_name(idx).unwrap_or_default();
            let arg = name
                .strip_prefix('$')
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| args.get(n.wrapping_sub(1)))
                .ok_or_else(|| AppError::Internal(anyhow::anyhow!("parameter {name:?} has no value ({} given): {sql}", args.len())))?;
            match arg {
                Arg::Int(Some(v)) => stmt.raw_bind_parameter(idx, v)?,
                Arg::Text(Some(v)) => stmt.raw_bind_parameter(idx, v.as_str())?,
                Arg::Int(None) | Arg::Text(None) => stmt.raw_bind_parameter(idx, rusqlite::types::Null)?,
            }
        }
        Ok(stmt)
    }

    fn rows_now(&mut self, sql: &str, args: &[Arg]) -> AppResult<Vec<Row>> {
        use rusqlite::types::ValueRef;
        let mut stmt = RawSqlite::prepared(self.0, sql, args)?;
        let names = Arc::new(stmt.column_names().into_iter().map(str::to_string).collect::<Vec<_>>());
        let mut out = Vec::new();
        let mut rows = stmt.raw_query();
        while let Some(r) = rows.next()? {
            let mut vals = Vec::with_capacity(names.len());
            for k in 0..names.len() {
                vals.push(match r.get_ref(k)? {
                    ValueRef::Null => Val::Null,
                    ValueRef::Integer(v) => Val::Int(v),
                    ValueRef::Real(v) => Val::Real(v),
                    ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(_) => return Err(AppError::Internal(anyhow::anyhow!("column {}: a blob", names[k]))),
                });
            }
            out.push(Row { names: names.clone(), vals });
        }
        Ok(out)
    }

    fn run_now(&mut self, batch: Batch) -> AppResult<()> {
        for (sql, args) in batch.parts {
            RawSqlite::prepared(self.0, &sql, &args)?.raw_execute()?;
        }
        Ok(())
    }
}

impl Statements for RawSqlite<'_> {
    fn rows(&mut self, sql: &str, args: Vec<Arg>) -> impl Future<Output = AppResult<Vec<Row>>> + Send {
        std::future::ready(self.rows_now(sql, &args))
    }

    fn run(&mut self, batch: Batch) -> impl Future<Output = AppResult<()>> + Send {
        std::future::ready(self.run_now(batch))
    }
}

/// An open PostgreSQL transaction.
pub struct PgStatements<'t>(pub &'t mut sqlx::PgConnection);

/// A PostgreSQL row as plain values, by each column's declared type (the types the schema
/// and these statements use).
fn pg_row(row: &sqlx::postgres::PgRow, names: &Arc<Vec<String>>) -> AppResult<Row> {
    use sqlx::{Column as _, Row as _, TypeInfo as _, ValueRef as _};
    let mut vals = Vec::with_capacity(names.len());
    for (k, col) in row.columns().iter().enumerate() {
        if row.try_get_raw(k)?.is_null() {
            vals.push(Val::Null);
            continue;
        }
        vals.push(match col.type_info().name() {
            "INT8" => Val::Int(row.try_get::<i64, _>(k)?),
            "INT4" => Val::Int(row.try_get::<i32, _>(k)?.into()),
            "INT2" => Val::Int(row.try_get::<i16, _>(k)?.into()),
            "BOOL" => Val::Int(row.try_get::<bool, _>(k)?.into()),
            "FLOAT8" => Val::Real(row.try_get::<f64, _>(k)?),
            "FLOAT4" => Val::Real(row.try_get::<f32, _>(k)?.into()),
            "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => Val::Text(row.try_get::<String, _>(k)?),
            other => return Err(AppError::Internal(anyhow::anyhow!("column {}: type {other} is not read here", col.name()))),
        });
    }
    Ok(Row { names: names.clone(), vals })
}

impl Statements for PgStatements<'_> {
    fn rows(&mut self, sql: &str, args: Vec<Arg>) -> impl Future<Output = AppResult<Vec<Row>>> + Send {
        async move {
            use sqlx::{Column as _, Row as _};
            let rows = super::batch::bind(sqlx::query(sql), args).fetch_all(&mut *self.0).await?;
            let Some(first) = rows.first() else { return Ok(Vec::new()) };
            let names = Arc::new(first.columns().iter().map(|c| c.name().to_string()).collect::<Vec<_>>());
            rows.iter().map(|r| pg_row(r, &names)).collect()
        }
    }

    /// One round trip instead of two when the batch and the query merge.
    fn rows_after(&mut self, batch: Batch, sql: &str, args: Vec<Arg>) -> impl Future<Output = AppResult<Vec<Row>>> + Send {
        async move {
            match batch.merged_before_select_for_pg(sql, &args) {
                Some((merged, merged_args)) => self.rows(&merged, merged_args).await,
                None => {
                    self.run(batch).await?;
                    self.rows(sql, args).await
                }
            }
        }
    }

    /// A batch whose parts can run as one statement does (`Batch::merged_for_pg`): one round
    /// trip instead of one per part.
    fn run(&mut self, batch: Batch) -> impl Future<Output = AppResult<()>> + Send {
        async move {
            if let Some((sql, args)) = batch.merged_for_pg() {
                super::batch::bind(sqlx::query(&sql), args).execute(&mut *self.0).await?;
                return Ok(());
            }
            for (sql, args) in batch.parts {
                super::batch::bind(sqlx::query(&sql), args).execute(&mut *self.0).await?;
            }
            Ok(())
        }
    }
}

/// Runs `$body` (an expression that may use `?` and `.await`, with `$s` bound to a
/// [`Statements`] inside an open transaction and `$is_pg` telling the backend) as one labeling
/// write, and evaluates to its value once that write is durable. On SQLite the body runs in
/// the group commit (`GroupWriter::run_raw`: a body that refuses must refuse before its first
/// write, or its group is rolled back with it) on
/// the raw handle, so it must own what it uses and never wait on anything but `$s`; on
/// PostgreSQL it runs in a transaction of its own, committed when the body succeeds.
///
/// `job = $kind` names the kind of labeling write (a `store::writer::JobKind`), for the
/// writer's time per kind on SQLite.
///
/// With `pg_first = $sql` (a `String`: SQL without parameters, such as a lock to take before
/// the body's first snapshot), PostgreSQL runs it in the round trip that begins the
/// transaction (`sqlx::Connection::begin_with`); SQLite ignores it (its writer is single).
#[macro_export]
macro_rules! on_group_statements {
    // SQLite: the body as one job of the writer's group commit, of kind `$kind`.
    (@sqlite $writer:expr, $kind:ident, $s:ident, $is_pg:ident => $body:expr) => {{
        let _in_flight = $crate::store::SqliteWriteInFlight::enter();
        $writer
            .run_labeling($crate::store::writer::JobKind::$kind, move |conn| {
                #[allow(unused_mut)]
                let mut $s = $crate::store::statements::RawSqlite(conn);
                let $is_pg = false;
                futures::FutureExt::now_or_never(async move { Ok::<_, $crate::error::AppError>($body) })
                    .expect("statements on SQLite's raw handle never wait")
            })
            .await?
    }};
    // PostgreSQL: the body in the open transaction `$tx`, committed when it succeeds;
    // evaluates to the body's `AppResult` (a failed body drops `$tx`, which rolls back).
    (@pg_in $tx:ident, $s:ident, $is_pg:ident => $body:expr) => {
        async {
            let value = {
                #[allow(unused_mut)]
                let mut $s = $crate::store::statements::PgStatements(&mut *$tx);
                let $is_pg = true;
                $body
            };
            $tx.commit().await?;
            Ok::<_, $crate::error::AppError>(value)
        }
        .await
    };
    ($db:expr, $s:ident, $is_pg:ident, job = $kind:ident, pg_first = $first:expr => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite { writer, .. } => $crate::on_group_statements!(@sqlite writer, $kind, $s, $is_pg => $body),
            $crate::store::Db::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                // The body runs inside the match so that the transaction's borrow of `conn`
                // has ended when a failed begin closes it.
                let done = match sqlx::Connection::begin_with(&mut *conn, format!("BEGIN; {}", $first)).await {
                    Ok(mut tx) => Ok($crate::on_group_statements!(@pg_in tx, $s, $is_pg => $body)),
                    Err(e) => Err(e),
                };
                match done {
                    Ok(value) => value?,
                    Err(e) => {
                        // The server may hold the connection in a transaction that failed
                        // after its BEGIN, which sqlx does not count as open (it counts the
                        // BEGIN only once the whole round trip succeeded): never pool it again.
                        conn.close_on_drop();
                        return Err(e.into());
                    }
                }
            }
        }
    };
    ($db:expr, $s:ident, $is_pg:ident, job = $kind:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite { writer, .. } => $crate::on_group_statements!(@sqlite writer, $kind, $s, $is_pg => $body),
            $crate::store::Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                $crate::on_group_statements!(@pg_in tx, $s, $is_pg => $body)?
            }
        }
    };
}

/// Runs `$body` (as for `on_group_statements!`, without a transaction) with `$s` bound to a
/// [`Statements`] for reads: on SQLite an inline reader (`store::inline_reader`: in place, no
/// hand-off to another thread), on PostgreSQL a connection of the pool. For the short
/// indexed reads every labeling request makes; each statement sees the last committed state.
#[macro_export]
macro_rules! on_read_statements {
    ($db:expr, $s:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite { inline, .. } => inline.with(|conn| {
                #[allow(unused_mut)]
                let mut $s = $crate::store::statements::RawSqlite(conn);
                futures::FutureExt::now_or_never(async move { Ok::<_, $crate::error::AppError>($body) })
                    .expect("statements on SQLite's raw handle never wait")
            })?,
            $crate::store::Db::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                #[allow(unused_mut)]
                let mut $s = $crate::store::statements::PgStatements(&mut *conn);
                async { Ok::<_, $crate::error::AppError>($body) }.await?
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt as _;

    fn raw() -> rusqlite::Connection {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL)").unwrap();
        c
    }

    /// Placeholders are bound by their number wherever they first appear, NULLs included, and
    /// rows are read back by column name with their types.
    #[test]
    fn raw_statements_bind_by_number_and_read_by_name() {
        let mut c = raw();
        let mut s = RawSqlite(&mut c);
        let mut b = Batch::new();
        b.push("INSERT INTO t (name, id, score) VALUES ($2, $1, 0.5)", vec![7.into(), "seven".into()]);
        b.push("INSERT INTO t (id, name) VALUES ($1, $2)", vec![8.into(), Arg::Text(None)]);
        s.run(b).now_or_never().unwrap().unwrap();
        let rows = s.rows("SELECT id, name, score FROM t WHERE id >= $2 - $1 ORDER BY id", vec![1.into(), 8.into()]).now_or_never().unwrap().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].i64("id").unwrap(), 7);
        assert_eq!(rows[0].string("name").unwrap(), "seven");
        assert_eq!(rows[0].f64("score").unwrap(), 0.5);
        assert_eq!(rows[1].opt_string("name").unwrap(), None);
        assert_eq!(rows[1].opt_f64("score").unwrap(), None);
        assert!(rows[1].string("name").is_err(), "a NULL is not a string");
        assert!(rows[0].i64("name").is_err(), "text is not an integer");
        assert!(rows[0].i64("nope").is_err(), "no such column");
        assert_eq!(s.first_i64("SELECT MAX(id) FROM t", vec![]).now_or_never().unwrap().unwrap(), Some(8));
        assert_eq!(s.first_i64("SELECT id FROM t WHERE id = $1", vec![99.into()]).now_or_never().unwrap().unwrap(), None);
    }

    /// A statement that needs a value it was not given is an error, not a NULL.
    #[test]
    fn a_missing_value_is_an_error() {
        let mut c = raw();
        let mut s = RawSqlite(&mut c);
        let r = s.rows("SELECT id FROM t WHERE id = $2", vec![1.into()]).now_or_never().unwrap();
        assert!(matches!(r, Err(AppError::Internal(_))), "{r:?}");
    }

    /// A failing part fails the batch at that part: the parts before it ran (the caller's
    /// transaction undoes them), the parts after it did not.
    #[test]
    fn a_failing_part_stops_the_batch() {
        let mut c = raw();
        let mut s = RawSqlite(&mut c);
        let mut b = Batch::new();
        b.push("INSERT INTO t (id) VALUES ($1)", vec![1.into()]);
        b.push("INSERT INTO t (id) VALUES ($1)", vec![1.into()]);
        b.push("INSERT INTO t (id) VALUES ($1)", vec![2.into()]);
        assert!(s.run(b).now_or_never().unwrap().is_err());
        assert_eq!(s.first_i64("SELECT COUNT(*) FROM t", vec![]).now_or_never().unwrap().unwrap(), Some(1));
    }
}
