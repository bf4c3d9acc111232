//! Writes gathered to run together, in order, at the end of a labeling write.
//!
//! A submission ends with half a dozen writes whose results nobody reads (the item's count,
//! the done shard, the audit entry, the review hook, the lease, the skip, the retry key). They
//! are gathered in a `Batch` as they are decided and run by `Statements::run`
//! (`store::statements`) inside the caller's transaction: the first failing part fails the
//! batch, and the job's savepoint (SQLite) or transaction (PostgreSQL) undoes the ones before.
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

    /// A batch of one statement.
    pub fn one(sql: impl Into<Cow<'static, str>>, args: Vec<Arg>) -> Batch {
        let mut b = Batch::new();
        b.push(sql, args);
        b
    }

    /// Appends a statement and its values (`args[k]` is the statement's `$(k+1)`).
    pub fn push(&mut self, sql: impl Into<Cow<'static, str>>, args: Vec<Arg>) {
        self.parts.push((sql.into(), args));
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
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
