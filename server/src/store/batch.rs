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

    /// The batch as one PostgreSQL statement, when it has several parts and merging cannot
    /// change what they do: each part is an INSERT, UPDATE or DELETE (no SELECT: PostgreSQL
    /// skips a CTE nobody reads unless it modifies data) and each writes a table no other part
    /// writes (a row changed by two parts of one statement keeps only one change). Every part
    /// becomes a data-modifying CTE, `WITH w1 AS (…), w2 AS (…) SELECT 1`, its placeholders
    /// renumbered after those of the parts before it. All parts then see the snapshot from
    /// before the statement, not each other's writes, so a batch whose parts read what an
    /// earlier part wrote must not be merged; the submission's tail does not (`store::batch`'s
    /// callers). Why: each statement is a round trip to PostgreSQL, and a submission's tail was
    /// five or six of them.
    pub fn merged_for_pg(&self) -> Option<(String, Vec<Arg>)> {
        if self.parts.len() < 2 {
            return None;
        }
        let mut tables = Vec::with_capacity(self.parts.len());
        let mut sql = String::from("WITH ");
        let mut args = Vec::new();
        for (k, (part, part_args)) in self.parts.iter().enumerate() {
            let table = written_table(part)?;
            if tables.contains(&table) {
                return None;
            }
            tables.push(table);
            if k > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("w{} AS (", k + 1));
            sql.push_str(&renumbered(part, args.len())?);
            sql.push(')');
            args.extend(part_args.iter().cloned());
        }
        sql.push_str(" SELECT 1");
        Some((sql, args))
    }
}

/// The table an INSERT, UPDATE or DELETE writes, lower-cased; None for any other statement.
fn written_table(sql: &str) -> Option<String> {
    let mut words = sql.split_whitespace().map(|w| w.to_ascii_lowercase());
    let table = match words.next()?.as_str() {
        "insert" | "delete" => {
            let _into_or_from = words.next()?;
            words.next()?
        }
        "update" => words.next()?,
        _ => return None,
    };
    let table: String = table.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    (!table.is_empty()).then_some(table)
}

/// `sql` with every placeholder `$N` outside quoted text written `$(N + offset)`; None when
/// the text has a dollar-quoted string (`$$`, `$tag$`), which this does not parse.
fn renumbered(sql: &str, offset: usize) -> Option<String> {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
            out.push(c);
        } else if c == '$' && !quoted {
            let mut digits = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(*d);
                chars.next();
            }
            if digits.is_empty() {
                return None;
            }
            let n: usize = digits.parse().ok()?;
            out.push('$');
            out.push_str(&(n + offset).to_string());
        } else {
            out.push(c);
        }
    }
    Some(out)
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

    /// Parts on different tables become one statement of data-modifying CTEs, the later
    /// parts' placeholders after the earlier ones', quoted text untouched, values in order.
    #[test]
    fn parts_on_different_tables_merge_into_one_statement() {
        let mut b = Batch::new();
        b.push("UPDATE items SET label_count = label_count + 1, complete = $1 WHERE id = $2", vec![1.into(), 7.into()]);
        b.push("INSERT INTO review_entries (item_id, detail) SELECT $1, '{\"$1\": 1}' WHERE $2 > 0", vec![7.into(), "x".into()]);
        b.push("delete from leases where item_id = $1 and user_id = $10", vec![7.into()]);
        let (sql, args) = b.merged_for_pg().unwrap();
        assert_eq!(
            sql,
            "WITH w1 AS (UPDATE items SET label_count = label_count + 1, complete = $1 WHERE id = $2), \
             w2 AS (INSERT INTO review_entries (item_id, detail) SELECT $3, '{\"$1\": 1}' WHERE $4 > 0), \
             w3 AS (delete from leases where item_id = $5 and user_id = $14) SELECT 1"
        );
        assert_eq!(args, vec![1.into(), 7.into(), 7.into(), "x".into(), 7.into()]);
    }

    /// What merging could change is not merged: one part (nothing to gain), a SELECT (a CTE
    /// nobody reads would not run), two writes of one table (one row changed twice keeps one
    /// change), a dollar-quoted string (not parsed).
    #[test]
    fn batches_that_merging_could_change_stay_apart() {
        assert!(Batch::one("DELETE FROM leases WHERE item_id = $1", vec![1.into()]).merged_for_pg().is_none());
        let two = |a: &'static str, b: &'static str| {
            let mut batch = Batch::new();
            batch.push(a, vec![1.into()]);
            batch.push(b, vec![2.into()]);
            batch.merged_for_pg()
        };
        assert!(two("SELECT pg_advisory_xact_lock($1)", "DELETE FROM leases WHERE item_id = $1").is_none());
        assert!(two("INSERT INTO leases (item_id) VALUES ($1)", "UPDATE leases SET expires_at = 0 WHERE item_id = $1").is_none());
        assert!(two("UPDATE Leases SET expires_at = 0 WHERE item_id = $1", "DELETE FROM leases WHERE item_id = $1").is_none());
        assert!(two("UPDATE items SET text = $$x$$ WHERE id = $1", "DELETE FROM leases WHERE item_id = $1").is_none());
        assert!(two("UPDATE items SET label_count = 0 WHERE id = $1", "DELETE FROM leases WHERE item_id = $1").is_some());
    }
}
