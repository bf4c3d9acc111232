//! The export pages through a project by item id (2,000 items a page, `crate::export::PAGE_SIZE`);
//! the page query reads a range of ids and keeps the project's rows. These scenarios give a
//! project whose ids are interleaved with another project's (two imports with one into the
//! other project between them) and more than a page of items, so a page boundary falls in the
//! middle of the other project's block: every item comes out exactly once, in id order, with
//! its own annotations, and none of the other project's.
use app::api_types::*;

use crate::common::*;

both_backends!(export_pages_skip_other_projects_items);

async fn export_pages_skip_other_projects_items(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let p = admin.simple_project("paged", 1, 600).await.id;
    let q = admin.simple_project("between", 1, 600).await.id;
    admin.import_texts(p, "first", 1500).await;
    admin.import_texts(q, "other", 1200).await;
    admin.import_texts(p, "second", 1500).await;
    // Annotations on both projects, including items on both sides of a page boundary.
    let (lena, l) = server.user(&admin, "lena", Role::Labeler).await;
    admin.add_member(p, lena.id).await;
    admin.add_member(q, lena.id).await;
    let mut labeled = Vec::new();
    for pid in [p, q, p, q, p] {
        let item = l.next(pid).await.item.expect("an item");
        l.submit(pid, item.id, &["pos"]).await;
        if pid == p {
            labeled.push(item.id);
        }
    }

    for complete_only in [false, true] {
        let lines = admin.export_jsonl(p, complete_only).await;
        let ids: Vec<i64> = lines.iter().map(|l| l["item_id"].as_i64().unwrap()).collect();
        let want = if complete_only { labeled.len() } else { 3000 };
        assert_eq!(ids.len(), want, "complete_only={complete_only}");
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids in strictly increasing order (no page repeated)");
        for line in &lines {
            let text = line["text"].as_str().unwrap();
            assert!(text.starts_with("first") || text.starts_with("second"), "another project's item: {line}");
            let anns = line["annotations"].as_array().unwrap();
            let id = line["item_id"].as_i64().unwrap();
            assert_eq!(anns.len(), labeled.contains(&id) as usize, "{line}");
        }
    }
    let q_lines = admin.export_jsonl(q, false).await;
    assert_eq!(q_lines.len(), 1200);
    assert_eq!(q_lines.iter().filter(|l| !l["annotations"].as_array().unwrap().is_empty()).count(), 2);
}
