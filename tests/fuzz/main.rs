//! Property-based fuzzing (proptest) of what the server parses from outside: import records
//! (JSONL lines, CSV records) and JSON request bodies. For every generated input: no panic, and
//! a rejection carries a message (a field and a reason for import records, a 4xx `AppError`
//! with a non-empty message for request bodies).
//!
//!     cargo test -p server --no-default-features --test fuzz      # CI: 2,000 cases a property
//!     scripts/fuzz-long.sh                                         # 1,000,000 cases a property
//!
//! `PROPTEST_CASES` sets the number of cases per property (proptest reads it).
use app::api_types::*;
use axum::response::IntoResponse;
use proptest::prelude::*;
use serde_json::{json, Value};
use server::api::extract::from_json_bytes;
use server::error::AppError;
use server::import::record::{parse_csv_record, parse_json_line, KNOWN_FIELDS};

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(2000);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// JSON values with the import's field names (and others) at the top, nested a little.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(KNOWN_FIELDS.iter().chain(["labels", "name", "key", "color", "item_id", "client_id",
            "time_ms", "overlap", "lease_seconds", "kind", "username", "password", "role", "exclude", "user_id",
            "expires_in_days", "disabled", "region"].iter()).map(|s| s.to_string()).collect::<Vec<_>>()),
        1 => ".{0,12}",
    ]
}

/// A rejected body must be a 4xx with a message.
fn assert_4xx_with_message(e: AppError) -> Result<(), TestCaseError> {
    let text = e.to_string();
    let status = e.into_response().status();
    prop_assert!(status.is_client_error(), "status {status} for {text}");
    prop_assert!(!text.trim().is_empty(), "empty message");
    Ok(())
}

fn check_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<Option<T>, TestCaseError> {
    match from_json_bytes::<T>(bytes) {
        Ok(v) => Ok(Some(v)),
        Err(e) => assert_4xx_with_message(e).map(|_| None),
    }
}

fn all_bodies(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Some(p) = check_body::<NewProject>(bytes)? {
        // Validation is the next thing a body meets: it must refuse with a 4xx, not panic.
        if let Err(e) = server::projects::validate_new_project(&p) {
            assert_4xx_with_message(e)?;
        }
    }
    check_body::<ProjectUpdate>(bytes)?;
    check_body::<SubmitAnnotation>(bytes)?;
    check_body::<NextRequest>(bytes)?;
    check_body::<SkipItem>(bytes)?;
    check_body::<NewUser>(bytes)?;
    check_body::<UserUpdate>(bytes)?;
    check_body::<NewToken>(bytes)?;
    check_body::<AddMember>(bytes)?;
    check_body::<LoginRequest>(bytes)?;
    check_body::<PasswordChange>(bytes)?;
    check_body::<PasswordReset>(bytes)?;
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn jsonl_lines_parse_or_name_what_is_wrong(line in prop_oneof![".{0,200}", json_value().prop_map(|v| v.to_string())]) {
        if let Err(e) = parse_json_line(&line) {
            prop_assert!(!e.reason.trim().is_empty(), "no reason for {line:?}");
        }
    }

    #[test]
    fn csv_records_parse_or_name_what_is_wrong(
        headers in prop::collection::vec(field_name(), 0..8),
        cells in prop::collection::vec(".{0,30}", 0..8),
    ) {
        if let Err(e) = parse_csv_record(&headers, &cells) {
            prop_assert!(!e.reason.trim().is_empty(), "no reason for {headers:?} / {cells:?}");
        }
    }

    #[test]
    fn json_bodies_are_read_or_refused_with_a_4xx(v in json_value()) {
        all_bodies(v.to_string().as_bytes())?;
    }

    #[test]
    fn arbitrary_bytes_as_bodies_are_refused_with_a_4xx(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        all_bodies(&bytes)?;
    }
}
