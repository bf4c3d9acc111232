//! Label Studio JSON imports (issue 9: teams move in). The items go through the common
//! two-pass import like any other file (`sources::label_studio_records`: all or nothing, a
//! report naming each bad task by its position in the array). Their annotations are read by
//! `plan` before that import starts, every answer checked against the project's labels (a bad
//! one refuses the whole file, nothing saved), and written by
//! `store::imported_annotations` in the transaction that commits the items (`ImportJob::
//! with_annotations`), attributed as that module explains.
//!
//! The checked annotations are held in memory between the two steps (a few dozen bytes
//! each); Label Studio itself loads its exports whole, so their sizes stay within reach.
use std::fs::File;
use std::path::{Path, PathBuf};

use app::api_types::{ImportReport, LineError};

use super::{check_gold, refused, Target, MAX_REPORTED};
use crate::error::{AppError, AppResult};
use crate::label_studio::{read_tasks, ReadOptions};
use crate::store::imported_annotations::ImportedAnnotation;
use crate::store::{self, Db};

/// Reads and checks the annotations of a spooled Label Studio export for project `pid`.
pub async fn plan(db: &Db, pid: i64, path: PathBuf) -> AppResult<Vec<ImportedAnnotation>> {
    let target = Target::of(&store::projects::get_project(db, pid).await?.project);
    tokio::task::spawn_blocking(move || plan_file(&target, &path))
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("reading the annotations failed: {e}")))?
}

fn plan_file(target: &Target, path: &Path) -> AppResult<Vec<ImportedAnnotation>> {
    let file = File::open(path).map_err(|e| AppError::Internal(e.into()))?;
    let mut out = Vec::new();
    let mut report = ImportReport::default();
    let mut position = 0i64;
    // A task that cannot be read, or a file that is not JSON, is the items pass's to report
    // (it reads the same file next and refuses it): only the answers are checked here.
    let _ = read_tasks(file, &ReadOptions::default(), |task| {
        position += 1;
        let Ok(task) = task else { return Ok::<(), ()>(()) };
        for a in task.annotations {
            match check_gold(target, &a.labels) {
                Ok(labels_json) => out.push(ImportedAnnotation {
                    external_id: task.external_id.clone(),
                    annotator: a.annotator,
                    labels_json,
                    time_ms: a.lead_time_ms.max(0),
                }),
                Err(e) => {
                    report.error_count += 1;
                    if report.errors.len() < MAX_REPORTED {
                        report.errors.push(LineError {
                            line: position,
                            field: "annotations".into(),
                            reason: format!("the annotation by {:?}: {}", a.annotator, e.reason),
                        });
                    }
                }
            }
        }
        Ok(())
    });
    report.lines = position;
    if report.error_count > 0 {
        return Err(refused(report));
    }
    Ok(out)
}
