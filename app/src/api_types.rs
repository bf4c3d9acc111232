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
//! | POST /api/projects/{pid}/annotations | `SubmitAnnotation` → `Annotation` (idempotent on `client_id`; `gold_answer` after a gold miss in training mode) |
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

/// The database and form spelling of the settings' enums (the same as their JSON), one place.
macro_rules! spelled {
    ($t:ident { $($v:ident => $s:literal),+ $(,)? }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $($t::$v => $s),+ }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($t::$v),)+ _ => None }
            }
        }
    };
}
spelled!(Measurement { Nominal => "nominal", Ordinal => "ordinal" });
spelled!(ConsensusMethod { Majority => "majority", DawidSkene => "dawid_skene" });
spelled!(AssignmentOrder { Random => "random", Import => "import", Priority => "priority" });

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
    /// Regular items: the total that `done_count` counts towards (gold items stand outside the
    /// overlap flow and are counted in `gold_count` instead).
    pub item_count: i64,
    /// Regular items with at least `overlap` labels.
    pub done_count: i64,
    /// Gold items (known answers mixed into the streams).
    #[serde(default)]
    pub gold_count: i64,
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

/// The answer to a Label Studio import (`?format=label-studio`): the import report, plus what
/// became of the file's annotations (a separate type so the report's other users stay as
/// they are; on the wire it is the report with one more field).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct LabelStudioImportReport {
    #[serde(flatten)]
    pub report: ImportReport,
    pub annotations: AnnotationImport,
}

/// What a Label Studio import did with the file's annotations: written with its items, in the
/// same transaction (all or nothing).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct AnnotationImport {
    /// Annotations written.
    pub imported: i64,
    /// Annotations not written: their task repeated another item's content (skipped as a
    /// duplicate), or they repeat an annotator's answer to the same item.
    pub not_attached: i64,
    /// Locked labeler accounts created for annotators who are not Mirrorset users, by username.
    pub accounts_created: Vec<String>,
}

/// One line for people (the import page, the CLI): "15 annotations imported · 0 not attached ·
/// 2 accounts created (ls-2, ls-3)".
pub fn annotation_import_line(a: &AnnotationImport) -> String {
    let plural = |n: i64, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    let mut s = format!(
        "{} imported · {} not attached · {} created",
        plural(a.imported, "annotation"),
        a.not_attached,
        plural(a.accounts_created.len() as i64, "account")
    );
    if !a.accounts_created.is_empty() {
        s.push_str(&format!(" ({})", a.accounts_created.join(", ")));
    }
    s
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
    /// The item's best pre-label (issue 10), unless there is none or the project hides
    /// pre-labels until the labeler has answered. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prelabel: Option<PrelabelView>,
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
    /// Only in the answer to a submission, in training mode (project setting
    /// `gold_training`), when the item was a gold item and the answer missed: the right
    /// labels, for the labeling page to show. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gold_answer: Option<Vec<String>>,
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
    /// Items in the project that need labels (gold items, which never count, are left out).
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
    /// A lead decided an item's final labels in review: `before` {labels, source} (the final
    /// label until then), `after` {labels, source, queue, note, gold_outcome}.
    ReviewDecided,
    /// A lead marked, changed or unmarked an item's gold answer: `before` and `after` {gold}.
    GoldChanged,
    /// A lead turned auto-accept on or off for a pre-label source and label: `before` and
    /// `after` {source_id, source, labels, min_score, target_precision} (None when off), and
    /// `after.accepted`: the project's auto-accepted items once it applied.
    AutoAcceptChanged,
    /// A lead wrote a labeling rule: `after` {name, kind, pattern, meta_key, label, enabled}.
    RuleCreated,
    /// A lead changed a labeling rule: `before` and `after` as for a creation.
    RuleChanged,
    /// A lead deleted a labeling rule: `before` as for a creation.
    RuleDeleted,
    /// A lead applied the rules: `after` {source_id, prelabels, rules}.
    RulesApplied,
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
        Self::ReviewDecided,
        Self::GoldChanged,
        Self::AutoAcceptChanged,
        Self::RuleCreated,
        Self::RuleChanged,
        Self::RuleDeleted,
        Self::RulesApplied,
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
            Self::ReviewDecided => "review_decided",
            Self::GoldChanged => "gold_changed",
            Self::AutoAcceptChanged => "auto_accept_changed",
            Self::RuleCreated => "rule_created",
            Self::RuleChanged => "rule_changed",
            Self::RuleDeleted => "rule_deleted",
            Self::RulesApplied => "rules_applied",
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

// ---- review (issue 7) -----------------------------------------------------------------------
//
// | method + path | body → response |
// |---|---|
// | GET  /api/projects/{pid}/review/queues?slice=ATTR:VALUE&label=NAME | → `ReviewQueues` (admin, lead member) |
// | GET  /api/projects/{pid}/review/queues/{name}?pair=U1,U2&slice=ATTR:VALUE&label=NAME&after=ID&limit=N | → `ReviewQueuePage` |
// | POST /api/projects/{pid}/review/queues/{name}/entries | `NewQueueEntries` → `QueueEntriesAdded` |
// | GET  /api/projects/{pid}/review/items/{item_id} | → `ReviewItem` |
// | POST /api/projects/{pid}/review/items/{item_id}/decision | `ReviewDecisionRequest` → 201 `ReviewDecision` |
// | PUT  /api/projects/{pid}/items/{item_id}/gold | `GoldUpdate` → `GoldAnswer` |

/// The built-in review queues; any other name (letters, digits, `_`, `-`) is a custom queue fed
/// through `POST .../review/queues/{name}/entries`.
pub const REVIEW_QUEUES: &[&str] = &["disagreement", "gold_miss", "audit"];

/// One queue's counts.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReviewQueueCount {
    pub queue: String,
    /// Items waiting for a decision (after the filters of the request).
    pub open: i64,
    /// Entries resolved by a decision (all time, unfiltered).
    pub resolved: i64,
}

/// `GET /api/projects/{pid}/review/queues`: the built-in queues first, then custom ones by name.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReviewQueues {
    pub queues: Vec<ReviewQueueCount>,
}

/// Why an item is in a queue.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReviewReason {
    pub queue: String,
    /// `labels_differ`, `low_posterior`, `gold_miss`, `audit`, or a feeder's own reason.
    pub reason: String,
    /// Numbers behind the reason (posterior and threshold, the labels and the gold, ...).
    pub detail: serde_json::Value,
    /// The labeler concerned (a gold miss's), if any.
    pub labeler: Option<String>,
    /// When the entry was made; None for reasons derived at read time.
    pub created_at: Option<i64>,
}

/// One item of a queue page.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReviewQueueItem {
    pub item_id: i64,
    pub external_id: Option<String>,
    /// The start of the text (or the image's name), for the list.
    pub snippet: String,
    pub label_count: i64,
    pub reasons: Vec<ReviewReason>,
}

/// `GET /api/projects/{pid}/review/queues/{name}`: open items in item id order, except the
/// `label_error` queue: most likely mislabeled first (by rank, then item id). Keyset paging:
/// pass `next_after` as `after` for the next page (an opaque cursor; None at the end).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReviewQueuePage {
    pub queue: String,
    pub items: Vec<ReviewQueueItem>,
    pub next_after: Option<i64>,
    /// Open items in the queue under these filters, in all pages.
    pub open: i64,
}

/// Body of `POST /api/projects/{pid}/review/queues/{name}/entries`: items by numeric id and/or
/// external id, and why they need review. Unknown ids refuse the whole request (400).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NewQueueEntries {
    #[serde(default)]
    pub item_ids: Vec<i64>,
    #[serde(default)]
    pub external_ids: Vec<String>,
    pub reason: String,
    /// Any JSON object, shown with the reason.
    #[serde(default)]
    pub detail: serde_json::Value,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct QueueEntriesAdded {
    /// New open entries.
    pub added: i64,
    /// Items that already had an open entry in this queue (left as they were).
    pub already_open: i64,
}

/// Where an item's final label comes from, in order of precedence.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FinalSource {
    /// The latest review decision.
    Adjudicated,
    /// The item's gold answer.
    Gold,
    /// The consensus of its labels, once it has all k of them.
    Consensus,
    /// A pre-label taken without a person: auto-accept was on for its source and label, and
    /// its score was at or above the threshold (`FinalLabel::auto_source` names the source).
    Auto,
    None,
}

impl FinalSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Adjudicated => "adjudicated",
            Self::Gold => "gold",
            Self::Consensus => "consensus",
            Self::Auto => "auto",
            Self::None => "none",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FinalLabel {
    /// None when the source is `none`.
    pub labels: Option<Vec<String>>,
    pub source: FinalSource,
    /// With source `auto`: the pre-label source, as in `auto:<source>` (`bert@v2`, `rules`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_source: Option<String>,
}

impl FinalLabel {
    /// The provenance as the exports write it: `adjudicated`, `gold`, `consensus`,
    /// `auto:<source>` or `none`.
    pub fn provenance(&self) -> String {
        match (self.source, &self.auto_source) {
            (FinalSource::Auto, Some(s)) => format!("auto:{s}"),
            (source, _) => source.as_str().to_string(),
        }
    }
}

/// What a decision on a gold item says about the gold answer.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum GoldAction {
    /// The gold answer stands; the labeler was wrong (the decision's labels must equal it).
    LabelerWrong,
    /// The gold answer was wrong: the decision's labels become the new gold answer (audited).
    GoldCorrected,
}

impl GoldAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LabelerWrong => "labeler_wrong",
            Self::GoldCorrected => "gold_corrected",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "labeler_wrong" => Some(Self::LabelerWrong),
            "gold_corrected" => Some(Self::GoldCorrected),
            _ => None,
        }
    }
}

/// Body of `POST /api/projects/{pid}/review/items/{item_id}/decision`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReviewDecisionRequest {
    /// The final labels, checked against the project's labels like a submission.
    pub labels: Vec<String>,
    #[serde(default)]
    pub note: String,
    /// The queue the item was reviewed from.
    pub queue: String,
    /// Required from the `gold_miss` queue; only allowed on gold items.
    #[serde(default)]
    pub gold_action: Option<GoldAction>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReviewDecision {
    pub id: i64,
    pub item_id: i64,
    pub reviewer_id: i64,
    pub reviewer: String,
    pub queue: String,
    pub labels: Vec<String>,
    pub note: String,
    pub gold_outcome: Option<GoldAction>,
    pub created_at: i64,
}

/// One labeler's answer, as a lead sees it in review.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReviewAnswer {
    pub user_id: i64,
    pub username: String,
    pub labels: Vec<String>,
    pub time_ms: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The consensus row the background job computed for the item.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReviewConsensus {
    pub labels: Vec<String>,
    pub posterior: f64,
    pub method: String,
    pub n_labels: i64,
    pub computed_at: i64,
}

/// `GET /api/projects/{pid}/review/items/{item_id}`: everything a lead needs to decide.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReviewItem {
    pub item: ItemView,
    pub label_count: i64,
    /// Labels the item needs (its own overlap, else the project's).
    pub k: i64,
    /// Oldest first.
    pub answers: Vec<ReviewAnswer>,
    pub consensus: Option<ReviewConsensus>,
    pub gold: Option<Vec<String>>,
    /// Oldest first; the last one is the adjudicated label.
    pub decisions: Vec<ReviewDecision>,
    pub final_label: FinalLabel,
    /// The open queue reasons of the item.
    pub reasons: Vec<ReviewReason>,
    /// The item's audit log, oldest first.
    pub history: Vec<AuditEntry>,
}

/// Body of `PUT /api/projects/{pid}/items/{item_id}/gold`: the gold answer, or null to unmark.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GoldUpdate {
    pub labels: Option<Vec<String>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GoldAnswer {
    pub item_id: i64,
    pub gold: Option<Vec<String>>,
}

// ---- Agreement dashboard, consensus and background jobs (issue 7) ----
//
// | GET /api/projects/{pid}/jobs | → `Vec<JobInfo>` (leads) |
// | GET /api/projects/{pid}/agreement?period=day\|week | → `AgreementDashboard` (leads) |
// | GET /api/projects/{pid}/agreement/slices?attr=NAME | → `AgreementSlices` (leads) |
// | GET /api/projects/{pid}/agreement/items?pair=U1,U2 \| labels=A,B \| label=A \| slice=ATTR:VALUE | → `DisagreementList` (leads) |

/// One background job (consensus refresh, later model training and big exports).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct JobInfo {
    pub id: i64,
    pub kind: String,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    pub progress_done: i64,
    pub progress_total: i64,
    pub error: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub heartbeat_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// A bootstrap (or Wilson) interval.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Interval {
    pub lower: f64,
    pub upper: f64,
}

/// A statistic as the dashboard shows it: the value with its 95% interval and the number of
/// items it rests on, or (value None) the reason it is undefined.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct StatValue {
    pub value: Option<f64>,
    pub interval: Option<Interval>,
    /// Pairable items (items with two or more labels) behind the number.
    pub n: i64,
    /// Why the value (or its interval) is missing.
    pub reason: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LabelAgreementRow {
    pub label: String,
    /// One-vs-rest alpha (multi-label projects: the label's present/absent alpha).
    pub alpha: StatValue,
}

/// Cohen's kappa of two labelers over the items both labeled.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PairCell {
    pub a: String,
    pub b: String,
    pub n: i64,
    pub kappa: Option<f64>,
    pub reason: Option<String>,
}

/// Two different labels given to the same item, from the coincidence matrix: `count` is the
/// coincidence mass o(a, b) + o(b, a), `share` its part of all off-diagonal mass.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LabelConfusion {
    pub a: String,
    pub b: String,
    pub count: f64,
    pub share: f64,
}

/// Alpha over the items whose last label arrived in one day or week (UTC).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AlphaPoint {
    /// Start of the period, ms since the epoch (weeks start on Monday).
    pub period_start: i64,
    pub n: i64,
    pub alpha: Option<f64>,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LabelerAgreement {
    pub user_id: i64,
    pub username: String,
    pub items_labeled: i64,
    pub median_seconds: Option<f64>,
    pub skips: i64,
    /// skips / (skips + items labeled).
    pub skip_rate: Option<f64>,
    /// Agreement with the plurality of the other labelers (their own label left out), on the
    /// items where the others have a unique plurality, with a Wilson interval.
    pub agreement_with_others: StatValue,
    /// Dawid–Skene confusion matrix: rows the true label, columns the label given, in
    /// `AgreementDashboard.confusion_labels` order.
    pub ds_confusion: Vec<Vec<f64>>,
    /// Accuracy on gold items (the label set equals the gold answer), with a Wilson interval;
    /// `n` is the number of gold items labeled.
    pub gold_accuracy: StatValue,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AgreementDashboard {
    pub project_id: i64,
    /// When these numbers were computed (ms); None before the first computation.
    pub computed_at: Option<i64>,
    /// A refresh is queued or running (new labels arrived since `computed_at`).
    pub refreshing: bool,
    /// `nominal` or `ordinal`.
    pub measurement: String,
    /// `majority` or `dawid_skene`.
    pub consensus_method: String,
    pub target_alpha: f64,
    pub multi_label: bool,
    pub n_items: i64,
    pub n_annotations: i64,
    pub n_labelers: i64,
    pub alpha: StatValue,
    pub fleiss_kappa: StatValue,
    pub mean_cohen_kappa: StatValue,
    pub percent_agreement: StatValue,
    pub per_label: Vec<LabelAgreementRow>,
    pub pairs: Vec<PairCell>,
    /// Label pairs mixed up, most first (single-label projects; empty for multi-label).
    pub confusion: Vec<LabelConfusion>,
    /// `day` or `week`.
    pub period: String,
    pub over_time: Vec<AlphaPoint>,
    /// Row/column labels of every `ds_confusion` (multi-label: `absent`, `present`).
    pub confusion_labels: Vec<String>,
    pub labelers: Vec<LabelerAgreement>,
    /// `meta` attributes that slices can be taken by.
    pub slice_attributes: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SliceRow {
    pub value: String,
    pub items: i64,
    pub alpha: StatValue,
    /// The interval's upper bound is below the project's target alpha.
    pub below_target: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AgreementSlices {
    pub attr: String,
    pub computed_at: Option<i64>,
    pub target_alpha: f64,
    pub rows: Vec<SliceRow>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ItemLabels {
    pub labeler: String,
    pub labels: Vec<String>,
}

/// An item whose labelers disagree (in the filter asked for).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DisagreementItem {
    pub item_id: i64,
    pub external_id: Option<String>,
    /// The first 160 characters of the text (None for images).
    pub snippet: Option<String>,
    pub labels: Vec<ItemLabels>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DisagreementList {
    /// All matching items (the list holds at most `limit`).
    pub total: i64,
    pub limit: i64,
    pub items: Vec<DisagreementItem>,
}

// ---- dev-set releases (issue 9) ---------------------------------------------------------------

/// Body of `POST /api/projects/{pid}/devsets/{id}/releases`: freeze the dev set as its next
/// release. Everything has a default; `{}` freezes dev/test 50/50 with seed 0.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FreezeRequest {
    /// Shares of dev and test (normalised; default 0.5 / 0.5).
    #[serde(default)]
    pub dev_share: Option<f64>,
    #[serde(default)]
    pub test_share: Option<f64>,
    /// Seed of the split (default 0).
    #[serde(default)]
    pub seed: u32,
    /// A `meta` attribute (a user or thread id): items sharing its value are in one split.
    #[serde(default)]
    pub group_by: Option<String>,
    /// Labeled items drawn from the training pool (items in no dev set) as a `train_dev` split.
    #[serde(default)]
    pub train_dev_size: Option<u64>,
    /// Only items with one of these licences (items without a licence are left out too).
    #[serde(default)]
    pub licenses: Option<Vec<String>>,
    /// Only items from one of these sources.
    #[serde(default)]
    pub sources: Option<Vec<String>>,
    /// Jaccard threshold of the near-duplicate check (default 0.8).
    #[serde(default)]
    pub jaccard_threshold: Option<f64>,
    /// Freeze although items lack a final label or have open reviews: the reason is recorded
    /// in the lineage; items without a final label are left out.
    #[serde(default)]
    pub override_unready: Option<String>,
    /// Freeze although the leakage check found pairs: the reason is recorded in the lineage.
    #[serde(default)]
    pub override_leakage: Option<String>,
}

/// An item that blocks a freeze until it is labeled or reviewed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct UnreadyItem {
    pub item_id: i64,
    pub external_id: Option<String>,
    /// `no_final_label` or `open_review`.
    pub reason: String,
}

/// One side of a leakage pair.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LeakageSide {
    pub item_id: i64,
    pub external_id: Option<String>,
    /// `dev`, `test`, `train_dev`, or `pool` (an item in no dev set: it can end up in training).
    pub split: String,
    /// The first 160 characters of the text (None for images).
    pub snippet: Option<String>,
}

/// Two items that (nearly) duplicate each other across splits or against the training pool.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LeakagePair {
    /// `exact` (same normalised text or same image) or `near` (Jaccard ≥ threshold).
    pub kind: String,
    pub jaccard: f64,
    pub a: LeakageSide,
    pub b: LeakageSide,
}

/// A release as listed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReleaseSummary {
    pub id: i64,
    pub project_id: i64,
    pub devset_id: i64,
    /// `v1`, `v2`, ...
    pub version: String,
    pub content_hash: String,
    pub item_count: i64,
    /// Items per split, e.g. {"dev": 50, "test": 50}.
    pub splits: std::collections::BTreeMap<String, i64>,
    pub created_by: Option<String>,
    pub created_at: i64,
}

/// A release with its lineage (JSON as frozen: project, plan, aggregation, agreement, splits,
/// filters, leakage check, overrides, who/when, app version) and its dataset card.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReleaseDetail {
    #[serde(flatten)]
    pub summary: ReleaseSummary,
    pub lineage: serde_json::Value,
    /// The dataset card (README.md of the Hugging Face layout), Markdown with YAML front matter.
    pub card: String,
}

/// An item whose final label differs between two releases.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LabelChange {
    pub item_id: i64,
    pub external_id: Option<String>,
    pub from_labels: Vec<String>,
    pub to_labels: Vec<String>,
    pub from_provenance: serde_json::Value,
    pub to_provenance: serde_json::Value,
}

/// Shares of one attribute value in two releases.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DistributionChange {
    pub attribute: String,
    pub value: String,
    pub from_count: i64,
    pub to_count: i64,
    pub from_share: f64,
    pub to_share: f64,
}

/// `GET /api/projects/{pid}/releases/{id}/diff/{other}`: from release `id` to release `other`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReleaseDiff {
    pub from: ReleaseSummary,
    pub to: ReleaseSummary,
    /// Item ids (sorted).
    pub added: Vec<i64>,
    pub removed: Vec<i64>,
    pub label_changes: Vec<LabelChange>,
    /// Per attribute (the dev set's stratification attributes and `label`), per value.
    pub distribution: Vec<DistributionChange>,
}

// ------------------------------------------------------------------ production-matched dev sets
//
// Issue 8. Routes (admin, lead member; labelers get 403):
// GET/POST /api/projects/{pid}/profiles (`Vec<ProfileSummary>`; raw JSONL/CSV body →
// `ProfileSummary`, 422 with the bad lines, 507 when the declared size does not fit on disk),
// GET /api/projects/{pid}/profiles/{id} (`ProfileDetail`), GET/POST /api/projects/{pid}/devsets
// (`Vec<Devset>`; `NewDevset` → `Devset`), GET .../devsets/{id} (`Devset`), GET .../plan
// (`DevsetPlan`), POST .../sample (`DevsetSample`), GET .../progress (`DevsetProgress`),
// GET .../report?profile_id=&max_tvd= (`DevsetReport`).

/// One attribute of a production profile: categorical, or numeric with its bucket edges
/// (production quartiles, distinct, ascending).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfileAttribute {
    pub name: String,
    /// "categorical" or "numeric".
    pub kind: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edges: Vec<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfileSummary {
    pub id: i64,
    pub name: String,
    /// YYYY-MM-DD: when production looked like this.
    pub date: String,
    pub records: f64,
    pub attributes: Vec<ProfileAttribute>,
    /// Distinct combinations of attribute values.
    pub combinations: u64,
    pub created_at: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfileDetail {
    #[serde(flatten)]
    pub summary: ProfileSummary,
    /// [[values in attribute order], count]
    pub cells: Vec<(Vec<String>, f64)>,
}

/// The size calculator: the dev-set size that gives a Wilson half-width at an expected accuracy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizeCalculator {
    pub expected_accuracy: f64,
    /// Wanted Wilson half-width of the overall accuracy (0.03 = ±3 points).
    pub half_width: f64,
    #[serde(default = "default_confidence")]
    pub confidence: f64,
    /// Optional: the half-width wanted for every value of `key_attribute` too.
    #[serde(default)]
    pub key_attribute: Option<String>,
    #[serde(default)]
    pub key_half_width: Option<f64>,
}

pub fn default_confidence() -> f64 {
    0.95
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MustInclude {
    /// Items whose `weight` is at least this.
    #[serde(default)]
    pub weight_at_least: Option<f64>,
    #[serde(default)]
    pub external_ids: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exclusions {
    #[serde(default)]
    pub licenses: Vec<String>,
    #[serde(default)]
    pub sources: Vec<String>,
}

/// A dev-set draft: the stratification, a size or the size calculator, the minimum per stratum
/// (a floor), must-include items and exclusions. Items already in another dev set are always
/// excluded (an item is in at most one dev set).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevsetDraft {
    pub attributes: Vec<String>,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub calculator: Option<SizeCalculator>,
    #[serde(default)]
    pub min_per_stratum: u64,
    #[serde(default)]
    pub must_include: MustInclude,
    #[serde(default)]
    pub exclude: Exclusions,
}

/// Body of `POST /api/projects/{pid}/devsets`: the name, profile and campaign settings, and the
/// draft's fields beside them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewDevset {
    pub name: String,
    pub profile_id: i64,
    /// Sampling seed (default 0).
    #[serde(default)]
    pub seed: u32,
    /// Labels per dev item in the campaign (default 3).
    #[serde(default)]
    pub overlap: Option<i64>,
    #[serde(flatten)]
    pub draft: DevsetDraft,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Devset {
    pub id: i64,
    pub name: String,
    pub profile_id: i64,
    pub seed: i64,
    pub overlap: i64,
    pub priority: i64,
    pub draft: DevsetDraft,
    pub sampled_at: Option<i64>,
    pub members: i64,
    pub created_at: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SizeDriver {
    /// "size" (given), "overall" or "key_attribute".
    pub requirement: String,
    pub message: String,
    pub overall: Option<u64>,
    pub per_value: Vec<KeyValueNeed>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyValueNeed {
    pub value: String,
    pub production_share: f64,
    /// Items of this value the half-width needs.
    pub needed: u64,
    /// Dev-set size at which a production-matched dev set holds that many.
    pub total: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanStratum {
    pub key: String,
    pub values: Vec<String>,
    pub production: f64,
    pub production_share: f64,
    pub requested: u64,
    pub available: u64,
    pub must_include: u64,
    pub allocated: u64,
    pub shortfall: u64,
    /// For a stratum that cannot be filled: "eu × tablet: 12 of 40 — import more eu tablet items".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Distances of a distribution from production, with the usual reading of PSI.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttributeDistance {
    pub attribute: String,
    pub tvd: f64,
    pub psi: f64,
    pub kl: f64,
    pub reading: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanExclusions {
    pub license: u64,
    pub source: u64,
    pub other_devset: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DevsetPlan {
    pub attributes: Vec<String>,
    pub size: u64,
    pub size_driver: SizeDriver,
    pub min_per_stratum: u64,
    pub pool_items: u64,
    pub eligible_items: u64,
    pub excluded: PlanExclusions,
    pub strata: Vec<PlanStratum>,
    pub total: u64,
    pub shortfall: u64,
    /// Expected distance of the allocation from production, per attribute (marginals).
    pub expected: Vec<AttributeDistance>,
    pub expected_joint: AttributeDistance,
    pub messages: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DevsetSample {
    pub seed: i64,
    pub members: u64,
    /// Member item ids, in item order.
    pub items: Vec<i64>,
    pub per_stratum: std::collections::BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StratumProgress {
    pub stratum: String,
    pub members: u64,
    /// At least one label.
    pub labeled: u64,
    /// All the labels the campaign asks for.
    pub complete: u64,
    /// Complete, and every label the same.
    pub agreed: u64,
    /// A lead or admin decided the final label in the review queue.
    pub reviewed: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DevsetProgress {
    pub total: StratumProgress,
    pub strata: Vec<StratumProgress>,
}

/// One value's shares (each column sums to 1 when it has any items).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DistributionBar {
    pub value: String,
    pub production: f64,
    pub dev: f64,
    pub pool: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttributeReport {
    pub attribute: String,
    pub bars: Vec<DistributionBar>,
    pub dev_vs_production: Option<AttributeDistance>,
    pub pool_vs_production: Option<AttributeDistance>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SliceHalfWidth {
    pub value: String,
    pub n: u64,
    pub half_width: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopUpStratum {
    pub values: Vec<String>,
    pub production_share: f64,
    pub members: u64,
    pub add: u64,
    pub available: u64,
}

/// The drift check's top-up plan: the fewest new labels that bring the dev set, keeping its
/// members, back under the target joint TVD.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopUp {
    pub target_tvd: f64,
    pub tvd_now: f64,
    pub tvd_after: f64,
    pub reached: bool,
    pub new_labels: u64,
    pub strata: Vec<TopUpStratum>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DevsetReport {
    pub profile_id: i64,
    pub members: u64,
    pub pool_items: u64,
    pub attributes: Vec<AttributeReport>,
    pub joint_dev_vs_production: Option<AttributeDistance>,
    pub joint_pool_vs_production: Option<AttributeDistance>,
    /// The accuracy the half-widths are computed at: the draft's expected accuracy, or 0.5
    /// (the widest interval) when the draft gave a size.
    pub accuracy: f64,
    pub accuracy_source: String,
    pub confidence: f64,
    pub half_width: Option<f64>,
    pub key_attribute: String,
    pub key_slices: Vec<SliceHalfWidth>,
    /// Why a distance is missing, when one is.
    pub reasons: Vec<String>,
    /// With a target TVD (the drift check): the fewest new labels that bring the dev set,
    /// keeping its members, back under it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_up: Option<TopUp>,
}

// ---- Pre-labels (issue 10) ----

/// What proposes pre-labels: an imported model (one per name and version), the project's
/// labeling rules, or the built-in model.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PrelabelSourceKind {
    Model,
    Rules,
    Builtin,
}

impl PrelabelSourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Model => "model",
            Self::Rules => "rules",
            Self::Builtin => "builtin",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "model" => Some(Self::Model),
            "rules" => Some(Self::Rules),
            "builtin" => Some(Self::Builtin),
            _ => None,
        }
    }
}

/// A pre-label source with what labelers did with its pre-labels.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PrelabelSource {
    pub id: i64,
    pub kind: PrelabelSourceKind,
    pub name: String,
    pub version: String,
    /// Items it has a pre-label for.
    pub prelabels: i64,
    /// Labelers' answers on its items while its pre-label was on screen: the share that took
    /// the pre-label (n: such answers), with a 95% Wilson interval.
    pub acceptance: StatValue,
    /// The same share for answers given with the pre-label hidden (the project setting
    /// `hide_until_answered`): agreement with the source without anchoring.
    pub agreement_hidden: StatValue,
    /// Mean labeler time (ms) per item with the pre-label shown, and with none shown; the
    /// difference is the time the pre-label saves. None without answers.
    pub mean_time_ms_shown: Option<f64>,
    pub mean_time_ms_hidden: Option<f64>,
    /// The same per proposed label (for a multi-label project: per proposed label set).
    pub by_label: Vec<PrelabelLabelStats>,
    pub created_at: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PrelabelLabelStats {
    /// The proposed labels, joined with ", ".
    pub label: String,
    pub prelabels: i64,
    pub acceptance: StatValue,
    /// Pre-labels drawn for the audit (`POST .../prelabels/audit`).
    pub audited: i64,
    /// Audited precision: the share of decided audits whose final label is the pre-label (n:
    /// audits with a reviewer's decision), with its 95% Wilson interval.
    pub precision: StatValue,
    /// The lowest score at and above which the audited precision's Wilson lower bound meets
    /// the project's `target_precision`; None while no score does (too few audits, or too many
    /// wrong).
    pub auto_accept_min_score: Option<f64>,
    /// The proposed labels themselves (what `PUT .../prelabels/auto-accept` names).
    #[serde(default)]
    pub labels: Vec<String>,
    /// Auto-accept as switched on for this source and label: the threshold in force (fixed
    /// when it was switched on) and the items it accepts now; None while off.
    #[serde(default)]
    pub auto_accept: Option<AutoAcceptState>,
}

/// Auto-accept switched on for one source and label.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AutoAcceptState {
    pub min_score: f64,
    pub target_precision: f64,
    /// Items whose final label is this pre-label now.
    pub accepted: i64,
    pub enabled_at: i64,
}

/// Body of `PUT /api/projects/{pid}/prelabels/auto-accept`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AutoAcceptRequest {
    pub source_id: i64,
    /// One proposed label set of the source; left out: every label of the source (switching
    /// on takes those with a threshold and lists the others).
    #[serde(default)]
    pub labels: Option<Vec<String>>,
    pub enabled: bool,
}

/// What switching auto-accept did.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AutoAcceptReport {
    /// The label sets switched, with the threshold now in force (None: switched off).
    pub changed: Vec<AutoAcceptChange>,
    /// Label sets left off because no threshold meets the target yet.
    pub without_threshold: Vec<Vec<String>>,
    /// The project's auto-accepted items after the change.
    pub accepted: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AutoAcceptChange {
    pub labels: Vec<String>,
    pub min_score: Option<f64>,
}

/// The estimated noise of the training export (`GET /api/projects/{pid}/export/summary`):
/// where the final labels come from, per label, and how precise the auto-accepted part is.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ExportSummary {
    /// Items in the export, and those with a final label.
    pub items: i64,
    pub labeled: i64,
    /// Final labels by source over all labels: human (consensus and gold), adjudicated, auto.
    pub human: i64,
    pub adjudicated: i64,
    pub auto: i64,
    pub by_label: Vec<ExportLabelNoise>,
}

/// One label's final labels by source (an item counts under each label of its final label
/// set) and the expected precision of its auto-accepted part.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ExportLabelNoise {
    pub label: String,
    pub total: i64,
    pub human: i64,
    pub adjudicated: i64,
    pub auto: i64,
    /// Shares of `total` (None when total is 0).
    pub human_share: Option<f64>,
    pub adjudicated_share: Option<f64>,
    pub auto_share: Option<f64>,
    /// The audited precision of the auto-accepted labels at the thresholds in force, with a
    /// 95% interval (n: the audits it rests on); no value without auto-accepted labels.
    pub auto_precision: StatValue,
    /// Expected wrong labels among the auto-accepted ones: auto × (1 − precision estimate);
    /// None without a precision.
    pub expected_wrong: Option<f64>,
}

/// What an audit draw did.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PrelabelAuditDrawn {
    /// Pre-labels newly drawn (a draw repeated with the same seed and rate adds only what new
    /// pre-labels bring).
    pub drawn: i64,
    /// Items newly put in the `prelabel_audit` review queue.
    pub queued: i64,
}

/// Per-project pre-label settings.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PrelabelSettings {
    /// Hide pre-labels from labelers until they have answered (measures agreement with the
    /// sources without anchoring the labelers on them).
    pub hide_until_answered: bool,
    /// The share of each source's pre-labels, per label, that an audit draw sends to review.
    #[serde(default = "default_prelabel_audit_rate")]
    pub audit_rate: f64,
    #[serde(default)]
    pub audit_seed: i64,
    /// The precision auto-accept must promise: the Wilson lower bound (95%) of the audited
    /// precision at and above the threshold.
    #[serde(default = "default_target_precision")]
    pub target_precision: f64,
    /// A human answer that contradicts a pre-label scored at least this puts the item in the
    /// `prelabel_disagreement` review queue.
    #[serde(default = "default_disagreement_min_score")]
    pub disagreement_min_score: f64,
}

fn default_disagreement_min_score() -> f64 {
    0.9
}

fn default_prelabel_audit_rate() -> f64 {
    0.05
}

fn default_target_precision() -> f64 {
    0.95
}

impl Default for PrelabelSettings {
    fn default() -> Self {
        PrelabelSettings {
            hide_until_answered: false,
            audit_rate: default_prelabel_audit_rate(),
            audit_seed: 0,
            target_precision: default_target_precision(),
            disagreement_min_score: default_disagreement_min_score(),
        }
    }
}

/// The pre-label shown with an item in the labeling view: the best-scored one over all
/// sources (a pre-label without a score counts as score 0).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PrelabelView {
    pub source_id: i64,
    pub source_kind: PrelabelSourceKind,
    /// "name version" for a model, "rules", "built-in model".
    pub source: String,
    pub labels: Vec<String>,
    pub score: Option<f64>,
}

// ---- Labeling rules (issue 10) -------------------------------------------------------------

/// What a labeling rule looks for.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// Any of the pattern's words (separated by spaces or commas), as whole words, ignoring case.
    #[default]
    Keyword,
    /// A regular expression found anywhere in the item's text, ignoring case.
    Regex,
    /// The item's `meta` attribute `meta_key` equals the pattern (compared as text).
    Meta,
}

impl RuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keyword => "keyword",
            Self::Regex => "regex",
            Self::Meta => "meta",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "keyword" => Some(Self::Keyword),
            "regex" => Some(Self::Regex),
            "meta" => Some(Self::Meta),
            _ => None,
        }
    }
}

/// A rule as a lead writes it (create, replace, and the unsaved rule of a preview). `label`
/// None: the rule abstains on what it matches (it is counted, but votes for nothing).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct RuleDraft {
    #[serde(default)]
    pub name: String,
    pub kind: RuleKind,
    pub pattern: String,
    #[serde(default)]
    pub meta_key: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default = "default_true")]
    pub enabled: bool,
}

fn default_true() -> bool {
    true
}

/// A rule's figures over the project's items. Overlap and conflict are against the project's
/// other enabled rules; accuracy is on matched items that have a final label.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct RuleStats {
    /// Items the rule matches.
    pub coverage: i64,
    /// Matched items another enabled rule also matches.
    pub overlap: i64,
    /// Matched items another enabled rule votes a different label for.
    pub conflict: i64,
    /// Share of matched items with a final label whose final label includes the rule's label,
    /// with its 95% Wilson interval and n (the matched items with a final label).
    pub accuracy: StatValue,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PrelabelRule {
    pub id: i64,
    pub name: String,
    pub kind: RuleKind,
    pub pattern: String,
    pub meta_key: Option<String>,
    pub label: Option<String>,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub stats: RuleStats,
}

/// The project's rules with their figures.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct RuleList {
    /// The project's items the figures are over.
    pub items: i64,
    /// Of those, items with a final label.
    pub labeled: i64,
    /// Items at least one enabled rule votes on (what applying the rules pre-labels).
    pub covered: i64,
    pub rules: Vec<PrelabelRule>,
}

/// An unsaved rule to preview; `editing`: the saved rule it would replace (left out of the
/// other rules it is compared with).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct RulePreviewRequest {
    pub kind: RuleKind,
    pub pattern: String,
    #[serde(default)]
    pub meta_key: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub editing: Option<i64>,
}

/// A matched item, to show what a rule catches.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RuleExample {
    pub item_id: i64,
    /// The item's text, cut to 160 characters.
    pub text: String,
    pub final_labels: Option<Vec<String>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct RulePreview {
    pub items: i64,
    pub stats: RuleStats,
    /// The first few matched items, in item order.
    pub examples: Vec<RuleExample>,
    /// Server-side time of the evaluation, in milliseconds (the 100,000-items-in-a-second target).
    pub elapsed_ms: f64,
}

/// What applying the rules did: the rules source's pre-labels now.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct RulesApplied {
    pub source_id: i64,
    /// Pre-labels written (items at least one enabled labelled rule fires on).
    pub prelabels: i64,
    /// The label model's EM iterations and whether it converged.
    pub iterations: i64,
    pub converged: bool,
}

/// An Apply of the rules runs as a background job: the newest one, and what the last one that
/// finished did (older than `job` while that runs, or when it failed).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct RulesApplyStatus {
    pub job: Option<JobInfo>,
    pub applied: Option<RulesApplied>,
}

// ---- the built-in model (issue 10) ----------------------------------------------------------

/// Per-project settings of the built-in model.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ModelSettings {
    /// Retrain automatically once `retrain_every` new human final labels exist since the last run.
    pub enabled: bool,
    /// New human final labels between automatic trainings (1 to 1,000,000).
    #[serde(default = "default_retrain_every")]
    pub retrain_every: i64,
    /// Labelers' streams hand out the items the last run was least sure of first.
    #[serde(default)]
    pub uncertainty_order: bool,
}

pub fn default_retrain_every() -> i64 {
    200
}

impl Default for ModelSettings {
    fn default() -> Self {
        ModelSettings { enabled: false, retrain_every: default_retrain_every(), uncertainty_order: false }
    }
}

/// How many training items carried one label.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ModelLabelCount {
    pub label: String,
    pub n: i64,
}

/// One finished training of the built-in model.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ModelRun {
    /// The run's number: the `version` of the builtin source's pre-labels it wrote.
    pub id: i64,
    pub trained_at: i64,
    /// Human final labels it was trained on.
    pub n_train: i64,
    pub label_counts: Vec<ModelLabelCount>,
    pub folds: i64,
    /// Held-out (k-fold cross-validated) accuracy with its Wilson 95% interval and n.
    pub cv_accuracy: StatValue,
    /// Accuracy of always answering the commonest label, with its interval and n.
    pub baseline_accuracy: StatValue,
    /// Items without a final label scored (each now has a `builtin` pre-label).
    pub items_scored: i64,
    /// Items the label-error search put in the `label_error` review queue.
    pub flagged: i64,
}

/// What `GET /api/projects/{id}/model` answers.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ModelStatus {
    pub settings: ModelSettings,
    pub last_run: Option<ModelRun>,
    /// The newest training job (queued, running with progress, done or failed).
    pub job: Option<JobInfo>,
    /// New human final labels since the last run (since the start without one).
    pub labels_since_last_run: i64,
    /// The `builtin` pre-label source, once a run wrote one.
    pub source_id: Option<i64>,
}

// ---- release freezes as jobs (issue 9) -----------------------------------------------------
//
// | POST /api/projects/{pid}/devsets/{id}/releases | `FreezeRequest` → 202 `FreezeJob` (leads) |
// | GET /api/projects/{pid}/release-freezes/{job} | → `FreezeJob` (leads) |

/// A freeze running in the background job runner: queued, then its phase and counts, then
/// either the release or why it was refused (nothing saved).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FreezeJob {
    /// The job; `state` is `queued`, `running`, `done` (frozen or blocked) or `failed` (`error`).
    pub job: JobInfo,
    pub devset_id: i64,
    /// What a running freeze is doing: `reading members`, `splitting`, `leakage check`
    /// (`job.progress_done` of `job.progress_total` pool items checked), `lineage`, `hashing`,
    /// `writing`, then `done`. None while queued.
    pub phase: Option<String>,
    /// The release, once frozen.
    pub release: Option<ReleaseDetail>,
    /// The refusal, when the freeze was blocked: code `unprocessable`, a message, and
    /// `details.unready` (items without a final label or with an open review) or
    /// `details.leakage` (the pairs side by side); resubmit with the matching override.
    pub blocked: Option<ErrorInfo>,
}

impl FreezeJob {
    /// True once the freeze will not change any more (done or failed).
    pub fn finished(&self) -> bool {
        matches!(self.job.state.as_str(), "done" | "failed")
    }
}
