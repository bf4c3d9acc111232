//! `mirrorset backup`: a copy taken while labelers label, which a server starts on.
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::common::*;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The items of `pid` with an answer, by the server's export.
async fn answered(admin: &Client, pid: i64) -> BTreeSet<i64> {
    let lines = admin.export_jsonl(pid, false).await;
    let with_answers = lines.iter().filter(|l| l["annotations"].as_array().is_some_and(|a| !a.is_empty()));
    with_answers.map(|l| l["item_id"].as_i64().expect("an item id")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_while_labelers_label_serves_every_answer_acknowledged_before_it_on_sqlite() {
    let server = TestServer::start(Backend::Sqlite).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("kept", 1, 600).await.id;
    let data = jsonl(&[json!({"id": "a", "image": "a.png"}), json!({"id": "b", "image": "b.png"})]);
    let (a_png, b_png) = (png(6, 6, 1), png(9, 5, 2));
    admin.import(pid, "zip", zip_of(&[("d.jsonl", data.as_bytes()), ("a.png", &a_png), ("b.png", &b_png)])).await;
    admin.import_texts(pid, "t", 600).await;
    let labelers = server.labelers_of(&admin, pid, &["bk1", "bk2", "bk3"]).await;

    // Three labelers label until the backup has finished; every acknowledged item is noted.
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let attempted = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for l in labelers {
        let (acked, attempted, stop) = (acked.clone(), attempted.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Some(id) = l.next_id(pid).await else { break };
                attempted.lock().unwrap().insert(id);
                l.submit(pid, id, &["pos"]).await;
                acked.lock().unwrap().insert(id);
            }
        }));
    }
    while acked.lock().unwrap().len() < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let before: BTreeSet<i64> = acked.lock().unwrap().clone();
    let to = tempfile::tempdir().unwrap();
    let copy_dir = to.path().join("backup");
    let (url, data_dir, into) = (server.database_url().to_string(), server.data_dir().to_path_buf(), copy_dir.clone());
    let out = tokio::task::spawn_blocking(move || run_backup(&url, &data_dir, &into)).await.unwrap();
    let during = acked.lock().unwrap().len() - before.len();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    assert!(out.status.success(), "backup failed: {}{}", text(&out.stdout), text(&out.stderr));
    let summary = text(&out.stdout);
    assert!(summary.starts_with("backed up 1 projects, 602 items, "), "{summary}");
    assert!(summary.contains(" annotations and 2 images (schema version "), "{summary}");
    assert!(summary.contains("image files 4 copied, 0 already there"), "{summary}");
    let all_acked = acked.lock().unwrap().clone();
    assert!(all_acked.len() > before.len(), "the labelers went on labeling beside the backup ({during} during it)");

    // The copy serves every answer acknowledged before the backup began, and only answers
    // that were sent; and the images, byte for byte.
    let mut copy = server.serving_a_copy(&copy_dir).await;
    let copy_admin = copy.admin().await;
    let in_copy = answered(&copy_admin, pid).await;
    assert!(before.is_subset(&in_copy), "lost: {:?}", before.difference(&in_copy).collect::<Vec<_>>());
    let attempted = attempted.lock().unwrap().clone();
    assert!(in_copy.is_subset(&attempted), "answers nobody sent: {:?}", in_copy.difference(&attempted).collect::<Vec<_>>());
    let lines = copy_admin.export_jsonl(pid, false).await;
    let items: Vec<i64> = lines.iter().map(|l| l["item_id"].as_i64().unwrap()).collect();
    assert_eq!(items.len(), 602);
    let images = [items[0], items[1]];
    for (id, original) in images.iter().zip([&a_png, &b_png]) {
        let got = copy_admin.get_raw(&format!("/api/items/{id}/image")).await;
        got.assert_status(200);
        assert_eq!(&got.body, original, "item {id}'s image");
        let thumb = copy_admin.get_raw(&format!("/api/items/{id}/thumbnail")).await;
        assert_eq!(thumb.body, admin.get_raw(&format!("/api/items/{id}/thumbnail")).await.body, "item {id}'s thumbnail");
    }

    // A backup into the directory the copy's server runs on is refused, and changes nothing.
    let refused = server.backup_to(&copy_dir);
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(
        error_line(&refused),
        format!(
            "error: a server has the database in {} open (it runs on this backup): stop it, or back up into \
             another directory",
            copy_dir.display()
        )
    );
    assert_eq!(answered(&copy_admin, pid).await, in_copy);

    // With it stopped, a second backup replaces the database and copies no image again.
    copy.stop();
    let again = server.backup_to(&copy_dir);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(text(&again.stdout).contains("image files 0 copied, 4 already there"), "{}", text(&again.stdout));
    copy.start_again().await;
    assert_eq!(answered(&copy.admin().await, pid).await, all_acked, "the second backup has every answer");

    // An image file gone from the data directory: the backup says which, exits with 1, and
    // still writes everything else.
    let lost = server.data_dir().join("thumbnails").read_dir().unwrap().next().unwrap().unwrap().path();
    let lost = lost.read_dir().unwrap().next().unwrap().unwrap().path();
    std::fs::remove_file(&lost).unwrap();
    let partial = to.path().join("partial");
    let out = server.backup_to(&partial);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert_eq!(
        error_line(&out),
        format!(
            "error: image files the database names are missing from {}, so from the backup too (1): {}",
            server.data_dir().display(),
            lost.display()
        )
    );
    assert!(text(&out.stdout).contains("image files 3 copied, 0 already there"), "{}", text(&out.stdout));
    assert!(partial.join("mirrorset.db").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_of_postgres_or_into_the_data_directory_is_refused_with_what_to_do_instead() {
    let server = TestServer::start(Backend::Sqlite).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("untouched", 1, 600).await.id;
    admin.import_texts(pid, "u", 3).await;
    let id = admin.next_id(pid).await.expect("an item");
    admin.add_member(pid, admin.me().await.user.id).await;
    admin.submit(pid, id, &["pos"]).await;

    for to in [server.data_dir().to_path_buf(), server.dir().to_path_buf()] {
        let out = server.backup_to(&to);
        assert_eq!(out.status.code(), Some(1), "{to:?}");
        assert_eq!(
            error_line(&out),
            format!(
                "error: --to {} is where the database or its data directory lives: a backup there would replace them; \
                 choose another directory",
                to.display()
            )
        );
    }
    // The database named relative to the working directory, and the backup sent there.
    let out = Command::new(server_binary())
        .args(["backup", "--to", ".", "--database-url", "sqlite://mirrorset.db", "--data-dir", "data"])
        .current_dir(server.dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        error_line(&out),
        "error: --to . is where the database or its data directory lives: a backup there would replace them; \
         choose another directory"
    );
    let out = Command::new(server_binary())
        .args(["backup", "--to", "/nonexistent-backup-dir", "--database-url", "postgres://u@127.0.0.1:1/db"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("back up a PostgreSQL database with pg_dump"), "{}", text(&out.stderr));
    assert!(!Path::new("/nonexistent-backup-dir").exists());
    let missing = tempfile::tempdir().unwrap();
    let out = Command::new(server_binary())
        .arg("backup")
        .arg("--to")
        .arg(missing.path().join("b"))
        .arg("--data-dir")
        .arg(missing.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        error_line(&out),
        format!(
            "error: there is no database at {} (check --data-dir or --database-url)",
            missing.path().join("mirrorset.db").display()
        )
    );
    assert!(!missing.path().join("mirrorset.db").exists(), "no database was created");
    // The server's own answer is still there.
    assert_eq!(answered(&admin, pid).await, BTreeSet::from([id]));
}
