//! Annotations that arrive with imported items (a Label Studio export, issue 9), written in
//! the transaction that commits the items (`attach_imported_annotations!`, run by
//! `store::imports::commit`): items, annotations and created accounts are saved together or
//! not at all.
//!
//! Who they are attributed to: each Label Studio annotator stays a person of their own, so
//! agreement, consensus and per-labeler statistics work on the imported labels as on native
//! ones. An annotator whose name is a Mirrorset username (what Mirrorset's own export writes,
//! so a round trip on one server keeps the labelers) is that user. Any other (Label Studio's
//! full export names annotators by numeric user id only) becomes a labeler account
//! `ls-<annotator>` with no usable password (it cannot sign in until an admin sets one), made
//! a member of the project; a second import from the same Label Studio instance reuses it.
//! Creating accounts rather than folding everything into one "import" user keeps two
//! annotators' disagreements visible, which is what a team moving in from Label Studio expects.
//!
//! Invariants kept as a submission keeps them: one annotation per (item, user), and
//! `items.label_count` / `complete` / `projects.done_count` counted in the same transaction.

/// One imported annotation: the item by its external id, its annotator as the file names
/// them, the labels as stored (a JSON array in the project's label order) and the time.
#[derive(Debug, Clone)]
pub struct ImportedAnnotation {
    pub external_id: String,
    pub annotator: String,
    pub labels_json: String,
    pub time_ms: i64,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct AttachOutcome {
    pub inserted: i64,
    /// Annotations whose item is not in the project (its task repeated another item's
    /// content, so the import skipped it as a duplicate) or that repeat an annotator's answer.
    pub not_attached: i64,
    /// Accounts created for annotators, by username.
    pub users_created: Vec<String>,
}

/// The Mirrorset username for a Label Studio annotator who is not a Mirrorset user.
pub fn imported_username(annotator: &str) -> String {
    let clean: String = annotator
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@') { c } else { '-' })
        .take(60)
        .collect();
    format!("ls-{}", if clean.is_empty() { "unknown".into() } else { clean })
}

/// A password hash nothing verifies against (`auth::password::verify_password` refuses a
/// hash it cannot parse): the account exists for attribution and cannot sign in.
pub const LOCKED: &str = "!imported";

/// Writes the annotations inside the transaction `$tx` (an open write transaction on either
/// backend; a macro, not a function, because the two backends' transactions are different
/// types and the body is the same SQL). The import's commit runs it in the transaction that
/// makes the items visible (`store::imports::commit`), so items, annotations and accounts are
/// committed together or not at all. Evaluates to `Result<AttachOutcome, AppError>`.
#[macro_export]
macro_rules! attach_imported_annotations {
    ($tx:ident, $project_id:expr, $actor:expr, $anns:expr, $now:expr) => {
        async {
            use $crate::store::imported_annotations::{imported_username, AttachOutcome, LOCKED};
            let (project_id, actor, now): (i64, i64, i64) = ($project_id, $actor, $now);
            let overlap: i64 = sqlx::query_scalar("SELECT overlap FROM projects WHERE id = $1")
                .bind(project_id)
                .fetch_one(&mut *$tx)
                .await?;
            let mut out = AttachOutcome::default();
            let mut users: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
            for a in $anns {
                let user_id = match users.get(&a.annotator) {
                    Some(&id) => id,
                    None => {
                        let native: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
                            .bind(&a.annotator)
                            .fetch_optional(&mut *$tx)
                            .await?;
                        let id = match native {
                            Some(id) => id,
                            None => {
                                let name = imported_username(&a.annotator);
                                let existing: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
                                    .bind(&name)
                                    .fetch_optional(&mut *$tx)
                                    .await?;
                                match existing {
                                    Some(id) => id,
                                    None => {
                                        let id: i64 = sqlx::query_scalar(
                                            "INSERT INTO users (username, password_hash, role, created_at) VALUES ($1, $2, 'labeler', $3) RETURNING id",
                                        )
                                        .bind(&name)
                                        .bind(LOCKED)
                                        .bind(now)
                                        .fetch_one(&mut *$tx)
                                        .await?;
                                        $crate::append_audit!($tx, $crate::store::audit::Entry {
                                            user_id: Some(id),
                                            after: Some(serde_json::json!({"username": name, "role": "labeler", "imported_from": "label-studio"})),
                                            ..$crate::store::audit::Entry::new(now, Some(actor), app::api_types::AuditAction::UserCreated)
                                        })?;
                                        out.users_created.push(name);
                                        id
                                    }
                                }
                            }
                        };
                        sqlx::query(
                            "INSERT INTO project_members (project_id, user_id, added_at) VALUES ($1, $2, $3)
                             ON CONFLICT (project_id, user_id) DO NOTHING",
                        )
                        .bind(project_id)
                        .bind(id)
                        .bind(now)
                        .execute(&mut *$tx)
                        .await?;
                        users.insert(a.annotator.clone(), id);
                        id
                    }
                };
                let item: Option<(i64, i64)> = sqlx::query_as(
                    "SELECT id, label_count FROM items WHERE project_id = $1 AND external_id = $2",
                )
                .bind(project_id)
                .bind(&a.external_id)
                .fetch_optional(&mut *$tx)
                .await?;
                let Some((item_id, label_count)) = item else {
                    out.not_attached += 1;
                    continue;
                };
                let added = sqlx::query(
                    "INSERT INTO annotations (project_id, item_id, user_id, labels, time_ms, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (item_id, user_id) DO NOTHING",
                )
                .bind(project_id)
                .bind(item_id)
                .bind(user_id)
                .bind(&a.labels_json)
                .bind(a.time_ms)
                .bind(now)
                .execute(&mut *$tx)
                .await?
                .rows_affected();
                if added == 0 {
                    out.not_attached += 1;
                    continue;
                }
                let completes = label_count + 1 >= overlap;
                sqlx::query("UPDATE items SET label_count = label_count + 1, complete = $1 WHERE id = $2")
                    .bind(completes as i64)
                    .bind(item_id)
                    .execute(&mut *$tx)
                    .await?;
                if completes && label_count < overlap {
                    sqlx::query("UPDATE projects SET done_count = done_count + 1 WHERE id = $1")
                        .bind(project_id)
                        .execute(&mut *$tx)
                        .await?;
                }
                out.inserted += 1;
            }
            Ok::<AttachOutcome, $crate::error::AppError>(out)
        }
        .await
    };
}
