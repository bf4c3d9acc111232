//! Types shared by the UI and the JSON API: what goes over the wire, and nothing else.
//!
//! The server's handlers serialize exactly these; the UI deserializes exactly these; the
//! OpenAPI document (`server/src/api/openapi.json`) describes them. All ids are i64; all
//! timestamps are milliseconds since the Unix epoch (UTC).
//!
//! Routes (all under `/api`, JSON unless said otherwise; state-changing requests made with the
//! session cookie must carry the header `x-csrf-token: <Me.csrf_token>`; requests with
//! `Authorization: Bearer <token>` need no CSRF header):
//!
//! | method + path | body → response |
//! |---|---|
//! | POST /api/auth/login | `LoginRequest` → `Me` (sets the session cookie) |
//! | POST /api/auth/logout | → 204 |
//! | GET  /api/me | → `Me` (401 when signed out) |
//! | GET  /api/users | → `Vec<User>` (admin) |
//! | POST /api/users | `NewUser` → `User` (admin) |
//! | GET  /api/tokens | → `Vec<ApiToken>` (own tokens) |
//! | POST /api/tokens | `NewToken` → `CreatedToken` (the secret is shown once) |
//! | DELETE /api/tokens/{id} | → 204 |
//! | PATCH /api/users/{id} | `UserUpdate` → `User` (admin; refuses to disable or demote the last enabled admin, or to disable oneself: 409) |
//! | POST /api/users/{id}/password | `PasswordReset` → 204 (admin; signs the user out everywhere) |
//! | POST /api/me/password | `PasswordChange` → 204 (signs out the caller's other sessions; 403 when the current password is wrong) |
//! | GET  /api/projects | → `Vec<ProjectSummary>` (the projects the caller belongs to; admins see all) |
//! | POST /api/projects | `NewProject` → `Project` (admin, lead) |
//! | GET  /api/projects/{pid} | → `Project` |
//! | PATCH /api/projects/{pid} | `ProjectUpdate` → `Project` (admin, lead member) |
//! | GET  /api/projects/{pid}/members | → `Vec<Member>` (admin, lead member) |
//! | POST /api/projects/{pid}/members | `AddMember` → `Vec<Member>` (admin, lead member) |
//! | DELETE /api/projects/{pid}/members/{uid} | → 204 |
//! | POST /api/projects/{pid}/import?format=jsonl\|csv\|zip | raw file body → `ImportReport` (admin, lead member); 422 with `ImportReport` in `error.details` when any line is bad |
//! | POST /api/projects/{pid}/images | multipart, one or more `file` parts → `ImportReport` |
//! | POST /api/projects/{pid}/next?since={ms} | optional `NextRequest` → `NextItem` (leases an item to the caller; `since` as for progress) |
//! | POST /api/projects/{pid}/annotations | `SubmitAnnotation` → `Annotation` (idempotent on `client_id`) |
//! | POST /api/projects/{pid}/skip | `SkipItem` → 204 (releases the lease) |
//! | GET  /api/projects/{pid}/previous?before={annotation_id} | → `PreviousSubmission` (the caller's submission before that one, or the latest; 404 when none) |
//! | GET  /api/projects/{pid}/progress?since={ms} | → `Progress` |
//! | GET  /api/projects/{pid}/export?format=jsonl\|csv&complete_only=true&formulas=neutralise\|keep | streamed file (admin, lead member); CSV cells that a spreadsheet would run as formulas get a leading `'` unless `formulas=keep` |
//! | GET  /api/items/{id}/image, /api/items/{id}/thumbnail | image bytes (members of the item's project) |
//! | GET  /api/openapi.json | the OpenAPI 3.1 document |
//!
//! Errors: `ErrorBody` with a fitting status (400 bad input, 401 signed out, 403 not allowed,
//! 404 not found, 408 request timeout, 409 conflict, 413 too large, 422 invalid import, 500 internal;
//! 429 too many failed sign-ins and 503 busy, both with a `Retry-After` header).
use serde::{Deserialize, Serialize};

/// The JSON body of every error response: `{"error": {"code", "message", "details"}}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ErrorBody {
    pub error: ErrorInfo,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ErrorInfo {
    /// Stable, machine-readable: `bad_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `conflict`, `payload_too_large`, `invalid_import`, `request_timeout`, `internal`;
    /// `account_disabled` and `token_expired` (401), `too_many_requests` (429), `unavailable` (503).
    pub code: String,
    /// One sentence a person can act on.
    pub message: String,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, in every project.
    Admin,
    /// Manages the projects they belong to and sees all their labels.
    Lead,
    /// Labels in the projects they belong to; never sees other labelers' labels.
    Labeler,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Lead => "lead",
            Role::Labeler => "labeler",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "lead" => Some(Role::Lead),
            "labeler" => Some(Role::Labeler),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub created_at: i64,
    /// A disabled user cannot sign in; their sessions and tokens are refused.
    #[serde(default)]
    pub disabled: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Me {
    pub user: User,
    /// Send as `x-csrf-token` on every state-changing request made with the session cookie.
    pub csrf_token: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub role: Role,
}

/// Body of `POST /api/tokens`. Only a signed-in session can create tokens (403 with a bearer
/// token), so a leaked token cannot mint more.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewToken {
    pub name: String,
    /// The token stops working this many days after its creation (1 to 3650); absent or
    /// null: it never expires.
    #[serde(default)]
    pub expires_in_days: Option<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// When it stops working; None: never.
    #[serde(default)]
    pub expires_at: Option<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CreatedToken {
    pub token: ApiToken,
    /// The secret, shown once; only its hash is stored.
    pub secret: String,
}

/// The shortest password the server accepts (the UI checks it too, before asking).
pub const MIN_PASSWORD_LEN: usize = 8;

/// Body of `PATCH /api/users/{id}` (admin): fields left out stay as they are.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct UserUpdate {
    pub role: Option<Role>,
    /// true disables the account (and signs it out everywhere); false enables it again.
    pub disabled: Option<bool>,
}

/// Body of `POST /api/users/{id}/password` (admin): the user's new password.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PasswordReset {
    pub password: String,
}

/// Body of `POST /api/me/password`: the caller changes their own password.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LabelKind {
    /// Exactly one label per annotation; pressing its key submits.
    Single,
    /// Any non-empty set of labels; keys toggle, Enter submits.
    Multi,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LabelDef {
    pub name: String,
    /// One character; pressing it in the labeling view chooses this label.
    pub key: String,
    /// CSS colour, `#rrggbb`.
    pub color: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Project {
    pub id: i64,
    pub name: String,
    /// Markdown, shown beside the item in the labeling view.
    pub instructions: String,
    pub kind: LabelKind,
    /// In display order; this order also breaks ties when a single label is required.
    pub labels: Vec<LabelDef>,
    /// How many distinct labelers must label each item.
    pub overlap: i64,
    /// How long a handed-out item stays reserved for its labeler.
    pub lease_seconds: i64,
    pub created_at: i64,
    /// Agreement, consensus, gold and review settings.
    pub quality: QualitySettings,
    /// The order labelers' streams follow.
    pub assignment_order: AssignmentOrder,
}

/// Krippendorff's level of measurement for the project's labels.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Measurement {
    /// Labels are categories: every disagreement weighs the same.
    #[default]
    Nominal,
    /// The label order (as listed) is meaningful: near misses weigh less.
    Ordinal,
}

/// How an item's labels become its consensus label.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ConsensusMethod {
    #[default]
    Majority,
    /// Weighs each labeler by their estimated confusion matrix.
    DawidSkene,
}

/// The order items are handed out in.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentOrder {
    /// A seeded shuffle fixed at import, so a pool imported sorted is not labeled one kind at a time.
    #[default]
    Random,
    /// Import order (item id).
    Import,
    /// Priority items (a dev-set campaign) first, then at random.
    Priority,
}

/// A project's agreement, consensus, gold and review settings.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct QualitySettings {
    pub measurement: Measurement,
    /// The alpha a lead aims for; slices whose interval lies below it are marked. In (0, 1].
    pub target_alpha: f64,
    pub consensus_method: ConsensusMethod,
    /// A complete item whose consensus posterior is below this goes to the disagreement queue. In [0, 1].
    pub review_threshold: f64,
    /// Share of a labeler's stream drawn from gold items; 0 turns gold off. In [0, 0.5].
    pub gold_rate: f64,
    /// Show a labeler the right answer after a gold miss.
    pub gold_training: bool,
    /// Share of completed items drawn into the random audit queue. In [0, 1].
    pub audit_rate: f64,
    /// Seed of the random audit draw.
    pub audit_seed: i64,
}

impl Default for QualitySettings {
    fn default() -> Self {
        QualitySettings {
            measurement: Measurement::Nominal,
            target_alpha: 0.8,
            consensus_method: ConsensusMethod::Majority,
            review_threshold: 0.8,
            gold_rate: 0.05,
            gold_training: false,
            audit_rate: 0.02,
            audit_seed: 0,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProjectSummary {
    pub project: Project,
    pub item_count: i64,
    /// Items with at least `overlap` labels.
    pub done_count: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewProject {
    pub name: String,
    #[serde(default)]
    pub instructions: String,
    pub kind: LabelKind,
    pub labels: Vec<LabelDef>,
    #[serde(default = "default_overlap")]
    pub overlap: i64,
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: i64,
    #[serde(default)]
    pub quality: QualitySettings,
    #[serde(default)]
    pub assignment_order: AssignmentOrder,
}

pub fn default_overlap() -> i64 {
    1
}
pub fn default_lease_seconds() -> i64 {
    600
}

/// Fields left out stay as they are. Labels may be renamed, recoloured, re-keyed and added;
/// removing a label that annotations use is refused (409).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ProjectUpdate {
    pub name: Option<String>,
    pub instructions: Option<String>,
    pub labels: Option<Vec<LabelDef>>,
    pub overlap: Option<i64>,
    pub lease_seconds: Option<i64>,
    /// Replaces all quality settings at once.
    pub quality: Option<QualitySettings>,
    pub assignment_order: Option<AssignmentOrder>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Member {
    pub user: User,
    pub added_at: i64,
}

/// Add by id or by username (one of them).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AddMember {
    pub user_id: Option<i64>,
    pub username: Option<String>,
}

/// What an import did. On failure (422) the same shape is in `error.details`, with
/// `imported` = 0 and `errors` naming the bad lines.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ImportReport {
    /// Lines (records) read, not counting a CSV header.
    pub lines: i64,
    pub imported: i64,
    /// Exact duplicates (same content hash as an item already in the project or earlier in
    /// the file), skipped.
    pub duplicates: i64,
    /// The first 100 duplicates.
    pub duplicate_lines: Vec<DuplicateLine>,
    /// The first 100 bad lines; any bad line means nothing was imported.
    pub errors: Vec<LineError>,
    /// How many bad lines there were in all.
    pub error_count: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DuplicateLine {
    /// 1-based line number in the file (for CSV, counting the header as line 1).
    pub line: i64,
    /// Where the same content was first seen: "line N" or "item ID".
    pub duplicate_of: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LineError {
    pub line: i64,
    /// The field at fault, or "" for the line as a whole.
    pub field: String,
    pub reason: String,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Text,
    Image,
}

/// An item as a labeler sees it (no other labelers' labels).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ItemView {
    pub id: i64,
    pub external_id: Option<String>,
    pub kind: ItemKind,
    pub text: Option<String>,
    /// `/api/items/{id}/image` for image items.
    pub image_url: Option<String>,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub meta: serde_json::Map<String, serde_json::Value>,
}

/// Body of `POST /api/projects/{pid}/next` (optional).
///
/// Without `exclude`, the caller gets the item they already hold a lease on (so a reload shows
/// the same item), or a new one. To prefetch the following item while the current one is on
/// screen, pass the ids already held by the page in `exclude`: the answer is then another item.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NextRequest {
    #[serde(default)]
    pub exclude: Vec<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NextItem {
    /// None when nothing is left for the caller.
    pub item: Option<ItemView>,
    pub lease_expires_at: Option<i64>,
    /// The caller's progress after this hand-out, so the UI needs no second request.
    pub progress: Progress,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubmitAnnotation {
    pub item_id: i64,
    /// Label names; exactly one for single-label projects, one or more for multi-label.
    pub labels: Vec<String>,
    /// Milliseconds the labeler spent on the item.
    pub time_ms: i64,
    /// A fresh random id per submission; a retried request with the same id returns the
    /// first result and creates nothing.
    pub client_id: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Annotation {
    pub id: i64,
    pub item_id: i64,
    pub user_id: i64,
    pub labels: Vec<String>,
    pub time_ms: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SkipItem {
    pub item_id: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PreviousSubmission {
    pub item: ItemView,
    pub annotation: Annotation,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Progress {
    /// The caller's annotations since `since` (the UI sends local midnight).
    pub mine_today: i64,
    pub mine_total: i64,
    /// Items with at least `overlap` labels.
    pub done: i64,
    pub total: i64,
}

/// Keys the labeling page (`pages/label.rs`, `on_key`) keeps for its own commands, with what
/// each does there. A label may not use one: the server refuses it (`projects.rs`) and the
/// labels editor says why, both from this one list. Label keys are single characters compared
/// in lower case, so `S` is `s`. The page's other keys (Enter, Backspace, Escape, the arrows,
/// Page Up/Down, Home, End) are names longer than one character, which no label key can be,
/// and `r` (check again) only works once no item is shown, when label keys do nothing.
pub const RESERVED_KEYS: &[(&str, &str)] = &[
    ("s", "skip"),
    ("u", "go back"),
    ("?", "instructions"),
    ("+", "zoom in"),
    ("=", "zoom in"),
    ("-", "zoom out"),
    ("_", "zoom out"),
    ("0", "reset zoom"),
    (" ", "scroll"),
];

/// What the labeling page does with this key, when it keeps it for itself.
pub fn reserved_key(key: &str) -> Option<&'static str> {
    let key = key.to_lowercase();
    RESERVED_KEYS.iter().find(|(k, _)| *k == key).map(|(_, what)| *what)
}

/// A key as people read it: `Space` for " ".
pub fn key_name(key: &str) -> &str {
    if key == " " {
        "Space"
    } else {
        key
    }
}

/// What an audit-log entry records. The names are the `action` strings stored and sent; review
/// decisions and gold changes will add theirs here.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// A labeler's first answer on an item: `after` {labels}.
    AnnotationCreated,
    /// A labeler changed their answer: `before` and `after` {labels}.
    AnnotationChanged,
    /// `after`: the new project's settings.
    ProjectCreated,
    /// `before` and `after`: the settings that changed.
    ProjectUpdated,
    /// `user_id` joined the project.
    MemberAdded,
    /// `user_id` left the project.
    MemberRemoved,
    /// `after` {username, role}.
    UserCreated,
    /// `before` and `after` {role}.
    RoleChanged,
    UserDisabled,
    UserEnabled,
    /// An admin set `user_id`'s password (never recorded itself).
    PasswordReset,
    /// The user changed their own password (never recorded itself).
    PasswordChanged,
}

impl AuditAction {
    pub const ALL: &'static [AuditAction] = &[
        Self::AnnotationCreated,
        Self::AnnotationChanged,
        Self::ProjectCreated,
        Self::ProjectUpdated,
        Self::MemberAdded,
        Self::MemberRemoved,
        Self::UserCreated,
        Self::RoleChanged,
        Self::UserDisabled,
        Self::UserEnabled,
        Self::PasswordReset,
        Self::PasswordChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AnnotationCreated => "annotation_created",
            Self::AnnotationChanged => "annotation_changed",
            Self::ProjectCreated => "project_created",
            Self::ProjectUpdated => "project_updated",
            Self::MemberAdded => "member_added",
            Self::MemberRemoved => "member_removed",
            Self::UserCreated => "user_created",
            Self::RoleChanged => "role_changed",
            Self::UserDisabled => "user_disabled",
            Self::UserEnabled => "user_enabled",
            Self::PasswordReset => "password_reset",
            Self::PasswordChanged => "password_changed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.as_str() == s)
    }
}

/// One audit-log entry, as the history and audit routes send it (timestamps in ms).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    /// Who made the change; None when it was the command line on the server's machine.
    pub actor_id: Option<i64>,
    pub actor: Option<String>,
    pub project_id: Option<i64>,
    pub item_id: Option<i64>,
    /// The user the entry is about: the account, the member, or the labeler of an annotation.
    pub user_id: Option<i64>,
    pub user: Option<String>,
    pub action: AuditAction,
    /// The changed fields before the change (None for a creation).
    pub before: Option<serde_json::Value>,
    /// The changed fields after it.
    pub after: Option<serde_json::Value>,
}
