//! Writes sent to the database together: on SQLite one hand-off to the writer's thread for
//! many statements.
//!
//! Every statement on SQLite is a round trip from the writer task to sqlx's worker thread for
//! the connection and back; the labeling loop's throughput on SQLite is bounded by the one
//! writer's serial chain of them (docs/bench.md, sessions 9–12). A submission ends with half a
//! dozen writes whose results nobody reads (the item's count, the done shard, the audit entry,
//! the review hook, the lease, the skip, the retry key). `run_batch!` sends them as one
//! multi-statement string on SQLite, which sqlx runs statement after statement on its thread,
//! binding each `$N` to the N-th value of one list; each part's placeholders are renumbered
//! into that list (`Batch::joined`). On PostgreSQL, which prepares one statement at a time, the
//! parts run one after another as before. Either way the parts run in order, inside the
//! caller's transaction, and the first failing part fails the batch (the job's savepoint then
//! rolls back the ones before it).
use std::borrow::Cow;

/// A value bound to a part of a batch. Typed, because PostgreSQL types every parameter (a
/// NULL bound as an integer is refused by a text column).
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    Int(Option<i64>),
    Text(Option<String>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Arg {
        Arg::Int(Some(v))
    }
}

impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Arg {
        Arg::Int(v)
    }
}

impl From<String> for Arg {
    fn from(v: String) -> Arg {
        Arg::Text(Some(v))
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Arg {
        Arg::Text(Some(v.to_string()))
    }
}

impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Arg {
        Arg::Text(v)
    }
}

/// Statements to run in order, each written with its own placeholders `$1`…`$n` for its `n`
/// values.
#[derive(Debug, Default)]
pub struct Batch {
    pub(crate) parts: Vec<(Cow<'static, str>, Vec<Arg>)>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Appends a statement and its values (`args[k]` is the statement's `$(k+1)`).
    pub fn push(&mut self, sql: impl Into<Cow<'static, str>>, args: Vec<Arg>) {
        self.parts.push((sql.into(), args));
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// The parts as one SQLite statement list and its values: each part's `$k` becomes
    /// `$(k + the values of the parts before it)`.
    pub fn joined(self) -> (String, Vec<Arg>) {
        let mut sql = String::new();
        let mut args = Vec::new();
        for (part, part_args) in self.parts {
            if !sql.is_empty() {
                sql.push_str(";\n");
            }
            renumber(&part, args.len(), &mut sql);
            args.extend(part_args);
        }
        (sql, args)
    }
}

/// Copies `sql` to `out` with every placeholder `$N` written `$(N + offset)`. The statements
/// batched here have no `$` but in placeholders (no string literal holds one).
fn renumber(sql: &str, offset: usize, out: &mut String) {
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let n: usize = rest[..digits].parse().expect("a `$` in a batched statement is a placeholder `$N`");
        out.push_str(&(n + offset).to_string());
        rest = &rest[digits..];
    }
    out.push_str(rest);
}

/// Runs `$batch` (a `store::batch::Batch`) on the open transaction `$tx`: on SQLite as one
/// multi-statement string (one hand-off to the connection's thread), on PostgreSQL (`$is_pg`)
/// part after part. Evaluates to `Result<(), sqlx::Error>`. A macro, like `append_audit!`, so one
/// text serves both backends' transaction types.
#[macro_export]
macro_rules! run_batch {
    ($tx:ident, $is_pg:expr, $batch:expr) => {{
        let batch: $crate::store::batch::Batch = $batch;
        async {
            if batch.is_empty() {
                return Ok::<(), sqlx::Error>(());
            }
            if $is_pg {
                for (sql, args) in batch.parts {
                    $crate::store::batch::bind(sqlx::query(&sql), args).execute(&mut *$tx).await?;
                }
            } else {
                let (sql, args) = batch.joined();
                $crate::store::batch::bind(sqlx::query(&sql), args).execute(&mut *$tx).await?;
            }
            Ok(())
        }
        .await
    }};
}

/// Binds `args` to `q` in order, each with its type.
pub fn bind<'q, DB: sqlx::Database>(
    mut q: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    args: Vec<Arg>,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    for a in args {
        q = match a {
            Arg::Int(v) => q.bind(v),
            Arg::Text(v) => q.bind(v),
        };
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Db;
    use sqlx::Connection as _;

    #[test]
    fn parts_are_renumbered_into_one_list_of_values() {
        let mut b = Batch::new();
        b.push("DELETE FROM leases WHERE item_id = $1 AND user_id = $2", vec![7.into(), 3.into()]);
        b.push("UPDATE t SET a = $2, b = $1, c = $12", vec!["x".into(), Arg::Int(None), 1.into(), 2.into(), 3.into(), 4.into(), 5.into(), 6.into(), 7.into(), 8.into(), 9.into(), 10.into()]);
        b.push("INSERT INTO s VALUES ($1)", vec![Arg::Text(None)]);
        let (sql, args) = b.joined();
        assert_eq!(
            sql,
            "DELETE FROM leases WHERE item_id = $1 AND user_id = $2;\nUPDATE t SET a = $4, b = $3, c = $14;\nINSERT INTO s VALUES ($15)"
        );
        assert_eq!(args.len(), 15);
        assert_eq!(args[2], Arg::Text(Some("x".into())));
        assert_eq!(args[14], Arg::Text(None));
    }

    /// On SQLite the batch runs as one string, every part with its own values, in order; a
    /// failing part fails the batch and (with the savepoint around it) leaves nothing.
    #[tokio::test]
    async fn a_batch_writes_every_part_with_its_own_values_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
        let Db::Sqlite { read, write, .. } = &db else { unreachable!() };
        let mut conn = write.acquire().await.unwrap();
        sqlx::query("CREATE TABLE t (a INTEGER NOT NULL, b TEXT, c TEXT)").execute(&mut *conn).await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        let mut b = Batch::new();
        b.push("INSERT INTO t (a, b, c) VALUES ($1, $2, $3)", vec![1.into(), "one".into(), Arg::Text(None)]);
        b.push("INSERT INTO t (a, c) VALUES ($2, $1)", vec!["{}".into(), 2.into()]);
        b.push("UPDATE t SET a = a + $1 WHERE a = $2", vec![10.into(), 2.into()]);
        crate::run_batch!(tx, false, b).unwrap();
        tx.commit().await.unwrap();
        let rows: Vec<(i64, Option<String>, Option<String>)> =
            sqlx::query_as("SELECT a, b, c FROM t ORDER BY a").fetch_all(read).await.unwrap();
        assert_eq!(rows, vec![(1, Some("one".into()), None), (12, None, Some("{}".into()))]);

        let mut tx = conn.begin().await.unwrap();
        let mut b = Batch::new();
        b.push("INSERT INTO t (a) VALUES ($1)", vec![100.into()]);
        b.push("INSERT INTO t (a) VALUES ($1)", vec![Arg::Int(None)]);
        assert!(crate::run_batch!(tx, false, b).is_err(), "the NOT NULL column fails the second part");
        drop(tx);
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t WHERE a >= 100").fetch_one(read).await.unwrap();
        assert_eq!(n, 0);
    }
}
