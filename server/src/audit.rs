//! Reading the audit log out: an item's history, and a project's (or the accounts') log as
//! JSON Lines, one `AuditEntry` per line in the order the changes happened, streamed page by
//! page like the export so memory stays flat however long the log grows. Writing the log is
//! the store's job (`store::audit`): each change appends its own entry.
use axum::body::Bytes;
use futures::Stream;

use crate::error::AppError;
use crate::store::audit::{page, Scope};
use crate::store::Db;

pub const PAGE_SIZE: i64 = 2000;

/// The log of `scope` as a stream of JSONL chunks, one page each.
pub fn log_stream(db: Db, scope: Scope) -> impl Stream<Item = Result<Bytes, AppError>> + Send + 'static {
    struct State {
        db: Db,
        after: i64,
        done: bool,
    }
    futures::stream::unfold(State { db, after: 0, done: false }, move |mut st| async move {
        if st.done {
            return None;
        }
        match page(&st.db, scope, st.after, PAGE_SIZE).await {
            Err(e) => {
                st.done = true;
                Some((Err(e), st))
            }
            Ok(entries) => {
                let mut out = Vec::with_capacity(entries.len() * 200);
                for e in &entries {
                    if let Err(err) = serde_json::to_writer(&mut out, e) {
                        st.done = true;
                        return Some((Err(AppError::from(anyhow::Error::from(err))), st));
                    }
                    out.push(b'\n');
                }
                match entries.last() {
                    Some(last) if entries.len() as i64 == PAGE_SIZE => st.after = last.id,
                    _ => st.done = true,
                }
                if out.is_empty() && st.done {
                    return None;
                }
                Some((Ok(Bytes::from(out)), st))
            }
        }
    })
}
