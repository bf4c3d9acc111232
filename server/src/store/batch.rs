//! Writes gathered to run together, in order, at the end of a labeling write.
//!
//! A submission ends with half a dozen writes whose results nobody reads (the item's count,
//! the done shard, the audit entry, the review hook, the lease, the skip, the retry key). They
//! are gathered in a `Batch` as they are decided and run by `Statements::run`
//! (`store::statements`) inside the caller's transaction: the first failing part fails the
//! batch. On PostgreSQL the job's transaction undoes the parts before it; on SQLite the group
//! commit rolls back the job's group with it (`store::writer::run_group`: a job that fails
//! after it wrote).
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
        let (ctes, args, _) = self.as_ctes()?;
        Some((format!("WITH {ctes} SELECT 1"), args))
    }

    /// The batch and then `select` (with `select_args`) as one PostgreSQL statement: the
    /// batch's parts as in `merged_for_pg` (one part is enough here), the query after them.
    /// The query then reads the snapshot from before the batch's writes, so this merges only a
    /// query that names none of the tables the batch writes, and one without a WITH of its own.
    /// Why: a hand-out writes its lease and then reads what it answers, two round trips.
    pub fn merged_before_select_for_pg(&self, select: &str, select_args: &[Arg]) -> Option<(String, Vec<Arg>)> {
        if self.parts.is_empty() || !select.trim_start().to_ascii_lowercase().starts_with("select") {
            return None;
        }
        let (ctes, mut args, tables) = self.as_ctes()?;
        if tables.iter().any(|t| names_table(select, t)) {
            return None;
        }
        let select = renumbered(select, args.len())?;
        args.extend(select_args.iter().cloned());
        Some((format!("WITH {ctes} {select}"), args))
    }

    /// The parts as data-modifying CTEs (`w1 AS (…), w2 AS (…)`, placeholders renumbered in
    /// order), their values, and the tables they write; None when a part is not a write, two
    /// parts write one table, or a part has a dollar-quoted string.
    fn as_ctes(&self) -> Option<(String, Vec<Arg>, Vec<String>)> {
        let mut tables = Vec::with_capacity(self.parts.len());
        let mut sql = String::new();
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
        Some((sql, args, tables))
    }
}

/// Whether `sql` has `table` (lower-case) as a whole word, in any case: `leases` is named by
/// `FROM leases l`, not by `releases`.
fn names_table(sql: &str, table: &str) -> bool {
    sql.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).any(|w| w.eq_ignore_ascii_case(table))
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

    /// A lease's write and then a query that reads other tables: one statement, the query's
    /// placeholders after the write's. A query that names a written table (as a word, any
    /// case), one with a WITH of its own, an empty batch or a batch that cannot merge stay apart.
    #[test]
    fn writes_before_a_query_of_other_tables_merge_into_one_statement() {
        let lease = Batch::one("INSERT INTO leases (item_id, user_id) VALUES ($1, $2)", vec![7.into(), 3.into()]);
        let select = "SELECT i.text, r.id FROM items i LEFT JOIN releases r ON r.id = $2 WHERE i.id = $1";
        let (sql, args) = lease.merged_before_select_for_pg(select, &[7.into(), 9.into()]).unwrap();
        assert_eq!(
            sql,
            "WITH w1 AS (INSERT INTO leases (item_id, user_id) VALUES ($1, $2)) \
             SELECT i.text, r.id FROM items i LEFT JOIN releases r ON r.id = $4 WHERE i.id = $3"
        );
        assert_eq!(args, vec![7.into(), 3.into(), 7.into(), 9.into()]);
        assert!(lease.merged_before_select_for_pg("SELECT COUNT(*) FROM LEASES WHERE item_id = $1", &[7.into()]).is_none());
        assert!(lease.merged_before_select_for_pg("SELECT 1 FROM items WHERE id IN (SELECT item_id FROM leases)", &[]).is_none());
        assert!(lease.merged_before_select_for_pg("WITH x AS (SELECT 1) SELECT * FROM x", &[]).is_none());
        assert!(Batch::new().merged_before_select_for_pg("SELECT 1", &[]).is_none());
        let mut twice = Batch::one("INSERT INTO leases (item_id) VALUES ($1)", vec![1.into()]);
        twice.push("UPDATE leases SET expires_at = 0 WHERE item_id = $1", vec![2.into()]);
        assert!(twice.merged_before_select_for_pg("SELECT 1 FROM items", &[]).is_none());
    }
}
