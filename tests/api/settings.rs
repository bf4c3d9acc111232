//! The quality settings and the assignment order: defaults for a new project, a change stored
//! and audited as one `quality` field, and every out-of-range value refused with its name.
use app::api_types::*;
use serde_json::json;

use crate::common::*;

both_backends!(quality_settings_default_change_and_are_audited, out_of_range_quality_settings_are_refused,);

async fn quality_settings_default_change_and_are_audited(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    // A project created without them gets the defaults, and random order (issue 8).
    let raw: Project = admin
        .post_created(
            "/api/projects",
            &json!({"name": "q", "kind": "single", "labels": [{"name": "a", "key": "a", "color": "#000000"}]}),
        )
        .await;
    assert_eq!(raw.quality, QualitySettings::default());
    assert_eq!(raw.assignment_order, AssignmentOrder::Random);
    let defaults = serde_json::to_value(&raw.quality).unwrap();
    assert_eq!(
        defaults,
        json!({"measurement": "nominal", "target_alpha": 0.8, "consensus_method": "majority",
               "review_threshold": 0.8, "gold_rate": 0.05, "gold_training": false,
               "audit_rate": 0.02, "audit_seed": 0})
    );

    let quality = json!({"measurement": "ordinal", "target_alpha": 0.67, "consensus_method": "dawid_skene",
                         "review_threshold": 0.9, "gold_rate": 0.1, "gold_training": true,
                         "audit_rate": 0.0, "audit_seed": 42});
    let resp = admin
        .patch_json_raw(
            &format!("/api/projects/{}", raw.id),
            &json!({"quality": quality, "assignment_order": "priority"}),
        )
        .await;
    let updated: Project = resp.ok();
    assert_eq!(serde_json::to_value(&updated.quality).unwrap(), quality);
    assert_eq!(updated.assignment_order, AssignmentOrder::Priority);
    // Stored, not only echoed.
    let read = admin.project(raw.id).await;
    assert_eq!(read.quality, updated.quality);
    assert_eq!(read.assignment_order, AssignmentOrder::Priority);

    let log: Vec<AuditEntry> = admin
        .get_raw(&format!("/api/projects/{}/audit", raw.id))
        .await
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let change = log.iter().find(|e| e.action == AuditAction::ProjectUpdated).expect("a settings entry");
    assert_eq!(
        change.before,
        Some(json!({"quality": defaults, "assignment_order": "random"}))
    );
    assert_eq!(change.after, Some(json!({"quality": quality, "assignment_order": "priority"})));
}

async fn out_of_range_quality_settings_are_refused(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("q", 1, 600).await.id;
    let base = serde_json::to_value(QualitySettings::default()).unwrap();
    for (field, value, message) in [
        ("target_alpha", json!(0.0), "quality.target_alpha must be in (0, 1]"),
        ("target_alpha", json!(1.5), "quality.target_alpha must be in (0, 1]"),
        ("review_threshold", json!(-0.1), "quality.review_threshold must be in [0, 1]"),
        ("gold_rate", json!(0.6), "quality.gold_rate must be in [0, 0.5]"),
        ("audit_rate", json!(2), "quality.audit_rate must be in [0, 1]"),
        ("audit_seed", json!(-1), "quality.audit_seed must be 0 or more"),
    ] {
        let mut q = base.clone();
        q[field] = value;
        let err = admin
            .patch_json_raw(&format!("/api/projects/{pid}"), &json!({"quality": q}))
            .await
            .assert_error(400, "bad_request");
        assert_eq!(err.message, message, "{field}");
    }
    // An unknown enum value is a request the server cannot read.
    let mut q = base.clone();
    q["measurement"] = json!("interval");
    let err = admin
        .patch_json_raw(&format!("/api/projects/{pid}"), &json!({"quality": q}))
        .await
        .assert_error(400, "bad_request");
    assert!(err.message.contains("unknown variant `interval`"), "{}", err.message);
    assert_eq!(admin.project(pid).await.quality, QualitySettings::default(), "nothing changed");
}
