#!/usr/bin/env python3
"""Writes server/src/api/openapi.json, the OpenAPI 3.1 description of the JSON API.

The schemas mirror app/src/api_types.rs (the wire types); the API test
`openapi_document_lists_every_route` checks that the routes described here are exactly the
routes the server has (the table in server/src/api/mod.rs).
Run after changing the API:  python3 scripts/gen_openapi.py
"""
import json, pathlib

def ref(name): return {"$ref": f"#/components/schemas/{name}"}
def arr(s): return {"type": "array", "items": s}
I64 = {"type": "integer", "format": "int64"}
STR = {"type": "string"}
def nullable(s): return {"anyOf": [s, {"type": "null"}]}
def obj(props, required=None):
    return {"type": "object", "properties": props, "required": required if required is not None else list(props)}

# The constraints the server enforces (the schemathesis run, scripts/schemathesis.sh, checks that
# every request these allow is accepted). Text the server trims must keep a non-blank character:
# NONBLANK (unanchored) says so, naming exactly what Rust's `trim` removes (Unicode White_Space):
# `\\S` would not do, since regex engines disagree on U+0085 and U+001C..U+001F (schemathesis
# generated a label named U+0085, which the server rightly trims to nothing).
# Lengths count characters (code points), as the server does.
NONBLANK = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
def text(max_len, min_len=1):
    return {"type": "string", "minLength": min_len, "maxLength": max_len, "pattern": NONBLANK}
USERNAME = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9_.-]+$",
            "description": "letters, digits, '.', '_' or '-'"}
PASSWORD = {"type": "string", "minLength": 8, "description": "at least 8 characters"}
# One character, not one the labeling page keeps for itself (app::api_types::RESERVED_KEYS,
# compared lowercased: S and U too), and not U+0130, whose lowercase is two characters.
LABEL_KEY = {"type": "string", "minLength": 1, "maxLength": 1, "pattern": "^[^sSuU?+=\\-_0 \u0130]$",
             "description": "one key; not s, u, ?, +, =, -, _, 0 or Space (the labeling page's own keys); "
                            "stored lowercased, unique within the project"}
OVERLAP = {"type": "integer", "format": "int64", "minimum": 1, "maximum": 100}
LEASE_SECONDS = {"type": "integer", "format": "int64", "minimum": 1, "maximum": 86400}
LABELS = {"type": "array", "minItems": 1, "maxItems": 64,
          "description": "label names and keys (keys compared lowercased) must be unique within the project"}

schemas = {
    "ErrorBody": obj({"error": obj({"code": STR, "message": STR, "details": {}}, ["code", "message"])}),
    "Role": {"type": "string", "enum": ["admin", "lead", "labeler"]},
    "User": obj({"id": I64, "username": STR, "role": ref("Role"), "created_at": I64, "disabled": {"type": "boolean"}}),
    "Me": obj({"user": ref("User"), "csrf_token": STR}),
    "LoginRequest": obj({"username": STR, "password": STR}),
    "NewUser": obj({"username": USERNAME, "password": PASSWORD, "role": ref("Role")}),
    "NewToken": obj({"name": text(100), "expires_in_days": nullable({**I64, "minimum": 1, "maximum": 3650})}, ["name"]),
    "ApiToken": obj({"id": I64, "name": STR, "created_at": I64, "last_used_at": nullable(I64), "expires_at": nullable(I64)}),
    "CreatedToken": obj({"token": ref("ApiToken"), "secret": STR}),
    "LabelKind": {"type": "string", "enum": ["single", "multi"]},
    "LabelDef": obj({"name": text(100), "key": LABEL_KEY,
                     "color": {"type": "string", "minLength": 7, "maxLength": 7, "pattern": "^#[0-9a-fA-F]{6}$"}}),
    "Project": obj({"id": I64, "name": STR, "instructions": STR, "kind": ref("LabelKind"),
                    "labels": arr(ref("LabelDef")), "overlap": I64, "lease_seconds": I64, "created_at": I64,
                    "quality": ref("QualitySettings"), "assignment_order": ref("AssignmentOrder")}),
    "Measurement": {"type": "string", "enum": ["nominal", "ordinal"]},
    "ConsensusMethod": {"type": "string", "enum": ["majority", "dawid_skene"]},
    "AssignmentOrder": {"type": "string", "enum": ["random", "import", "priority"]},
    # Fields left out take their defaults (as in NewProject); ProjectUpdate replaces all at once.
    "QualitySettings": obj({
        "measurement": {**ref("Measurement"), "default": "nominal"},
        "target_alpha": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 0.8},
        "consensus_method": {**ref("ConsensusMethod"), "default": "majority"},
        "review_threshold": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.8},
        "gold_rate": {"type": "number", "minimum": 0, "maximum": 0.5, "default": 0.05},
        "gold_training": {"type": "boolean", "default": False},
        "audit_rate": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.02},
        "audit_seed": {**I64, "minimum": 0, "default": 0}}, []),
    "ProjectSummary": obj({"project": ref("Project"), "item_count": I64, "done_count": I64, "gold_count": I64}),
    "NewProject": obj({"name": text(200), "instructions": STR, "kind": ref("LabelKind"), "labels": {**LABELS, "items": ref("LabelDef")},
                       "overlap": {**OVERLAP, "default": 1}, "lease_seconds": {**LEASE_SECONDS, "default": 600},
                       "quality": ref("QualitySettings"), "assignment_order": {**ref("AssignmentOrder"), "default": "random"}},
                      ["name", "kind", "labels"]),
    "ProjectUpdate": obj({"name": text(200), "instructions": STR, "labels": {**LABELS, "items": ref("LabelDef")},
                          "overlap": OVERLAP, "lease_seconds": LEASE_SECONDS, "quality": ref("QualitySettings"),
                          "assignment_order": ref("AssignmentOrder")}, []),
    "Member": obj({"user": ref("User"), "added_at": I64}),
    "AddMember": {**obj({"user_id": I64, "username": text(64)}, []),
                  "anyOf": [{"required": ["user_id"]}, {"required": ["username"]}],
                  "description": "user_id, or else username"},
    "LineError": obj({"line": I64, "field": STR, "reason": STR}),
    "DuplicateLine": obj({"line": I64, "duplicate_of": STR}),
    "ImportReport": obj({"lines": I64, "imported": I64, "duplicates": I64,
                         "duplicate_lines": arr(ref("DuplicateLine")), "errors": arr(ref("LineError")),
                         "error_count": I64,
                         "annotations": {**ref("AnnotationImport"), "description": "only in the answer to a Label Studio import"}},
                        ["lines", "imported", "duplicates", "duplicate_lines", "errors", "error_count"]),
    "AnnotationImport": obj({"imported": I64, "not_attached": I64, "accounts_created": arr(STR)}),
    "ItemKind": {"type": "string", "enum": ["text", "image"]},
    "ItemView": obj({"id": I64, "external_id": nullable(STR), "kind": ref("ItemKind"), "text": nullable(STR),
                     "image_url": nullable(STR), "width": nullable(I64), "height": nullable(I64),
                     "meta": {"type": "object"}}),
    "Progress": obj({"mine_today": I64, "mine_total": I64, "done": I64, "total": I64}),
    "NextRequest": obj({"exclude": arr(I64)}, []),
    "NextItem": obj({"item": nullable(ref("ItemView")), "lease_expires_at": nullable(I64), "progress": ref("Progress")}),
    "SubmitAnnotation": {**obj({"item_id": I64,
                             "labels": {**arr(STR), "minItems": 1, "uniqueItems": True, "description": "names of the project's labels, each once; "
                                                                   "exactly one in a single-label project, at least one in a multi-label one"},
                             "time_ms": {**I64, "description": "clamped to 0 .. 3,600,000"},
                             "client_id": {**text(100), "description": "the client's id of this submission: a retry with the same id changes nothing"}}),
                         "example": {"item_id": 1, "labels": ["pos"], "time_ms": 1800, "client_id": "3f2c9a10-example"}},
    # gold_answer: only in the answer to a submission that missed a gold item, in training mode.
    "Annotation": obj({"id": I64, "item_id": I64, "user_id": I64, "labels": arr(STR), "time_ms": I64,
                       "created_at": I64, "updated_at": I64, "gold_answer": arr(STR)},
                      ["id", "item_id", "user_id", "labels", "time_ms", "created_at", "updated_at"]),
    "SkipItem": {**obj({"item_id": I64}), "example": {"item_id": 1}},
    "PreviousSubmission": obj({"item": ref("ItemView"), "annotation": ref("Annotation")}),
    "UserUpdate": obj({"role": ref("Role"), "disabled": {"type": "boolean"}}, []),
    "PasswordReset": obj({"password": PASSWORD}),
    "PasswordChange": obj({"current_password": STR, "new_password": PASSWORD}),
    "AuditAction": {"type": "string", "enum": ["annotation_created", "annotation_changed", "project_created", "project_updated",
                                                "member_added", "member_removed", "user_created", "role_changed",
                                                "user_disabled", "user_enabled", "password_reset", "password_changed"]},
    "AuditEntry": obj({"id": I64, "at": I64, "actor_id": nullable(I64), "actor": nullable(STR), "project_id": nullable(I64),
                       "item_id": nullable(I64), "user_id": nullable(I64), "user": nullable(STR), "action": ref("AuditAction"),
                       "before": {"description": "the changed fields before the change; null for a creation"},
                       "after": {"description": "the changed fields after it"}}),
}

ERR = {"description": "error", "content": {"application/json": {"schema": ref("ErrorBody")}}}
def ok(schema, status="200", desc="OK"):
    r = {status: {"description": desc}, "default": ERR}
    if schema is not None:
        r[status]["content"] = {"application/json": {"schema": schema}}
    return r
def body(schema, required=True):
    return {"required": required, "content": {"application/json": {"schema": schema}}}
PID = {"name": "pid", "in": "path", "required": True, "schema": I64, "example": 1}
def q(name, schema, desc): return {"name": name, "in": "query", "required": False, "schema": schema, "description": desc}

paths = {
    "/api/health": {"get": {"summary": "Liveness and database check, with the app's version and the schema version (the highest applied migration)",
                            "description": "The probes for load balancers (/health: process up; /ready: database reachable and every migration applied) "
                                           "and /metrics (Prometheus text) are served at the root, outside this document: see README, Operations.",
                            "security": [],
                            "responses": ok(obj({"status": {"type": "string", "enum": ["ok"]}, "version": STR,
                                                 "schema_version": {"type": "integer", "format": "int64", "minimum": 0}}))}},
    "/api/openapi.json": {"get": {"summary": "This document", "security": [], "responses": {"200": {"description": "OpenAPI 3.1"}}}},
    "/api/auth/login": {"post": {"summary": "Sign in; sets the session cookie (429 with Retry-After after too many failures)", "security": [],
                                 "requestBody": body(ref("LoginRequest")), "responses": ok(ref("Me"))}},
    "/api/auth/logout": {"post": {"summary": "Sign out", "responses": ok(None, "204", "signed out")}},
    "/api/me": {"get": {"summary": "The caller, and the CSRF token for cookie requests", "responses": ok(ref("Me"))}},
    "/api/users": {"get": {"summary": "All users (admin)", "responses": ok(arr(ref("User")))},
                   "post": {"summary": "Create a user (admin)", "requestBody": body(ref("NewUser")),
                            "responses": ok(ref("User"), "201", "created")}},
    "/api/tokens": {"get": {"summary": "The caller's API tokens", "responses": ok(arr(ref("ApiToken")))},
                    "post": {"summary": "Create an API token; the secret is shown once (a signed-in session only: 403 with a bearer token)", "requestBody": body(ref("NewToken")),
                             "responses": ok(ref("CreatedToken"), "201", "created")}},
    "/api/tokens/{id}": {"delete": {"summary": "Revoke one of the caller's tokens",
                                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": I64}],
                                    "responses": ok(None, "204", "revoked")}},
    "/api/projects": {"get": {"summary": "Projects the caller belongs to (admins: all)", "responses": ok(arr(ref("ProjectSummary")))},
                      "post": {"summary": "Create a project (admin, lead)", "requestBody": body(ref("NewProject")),
                               "responses": ok(ref("Project"), "201", "created")}},
    "/api/projects/{pid}": {"get": {"summary": "One project", "parameters": [PID], "responses": ok(ref("Project"))},
                            "patch": {"summary": "Change settings (admin, lead member); removing a used label is refused (409)",
                                      "parameters": [PID], "requestBody": body(ref("ProjectUpdate")), "responses": ok(ref("Project"))}},
    "/api/projects/{pid}/members": {
        "get": {"summary": "Members (admin, lead member)", "parameters": [PID], "responses": ok(arr(ref("Member")))},
        "post": {"summary": "Add a member by user_id or username", "parameters": [PID], "requestBody": body(ref("AddMember")),
                 "responses": ok(arr(ref("Member")))}},
    "/api/projects/{pid}/members/{uid}": {"delete": {"summary": "Remove a member",
        "parameters": [PID, {"name": "uid", "in": "path", "required": True, "schema": I64}], "responses": ok(None, "204", "removed")}},
    "/api/projects/{pid}/import": {"post": {
        "summary": "Import a JSONL, CSV or zip file (all or nothing; 422 lists the bad lines in error.details as an ImportReport)",
        "description": "409 while another import of the project runs; 503 with Retry-After when the server runs as many "
                       "imports as it allows; 507 when the upload cannot fit on disk above the reserve; 408 when the body "
                       "stops arriving for the idle timeout; 413 over the size, zip entry or zip size limits.",
        "parameters": [PID, q("format", {"type": "string", "enum": ["jsonl", "csv", "zip", "label-studio"]}, "label-studio: a Label Studio JSON export (tasks with annotations). Default: from Content-Type (needed with any other Content-Type, e.g. application/octet-stream)")],
        "requestBody": {"required": True, "content": {"application/x-ndjson": {}, "text/csv": {}, "application/zip": {}, "application/json": {}}},
        "responses": ok(ref("ImportReport"))}},
    "/api/projects/{pid}/images": {"post": {"summary": "Upload images one by one (multipart parts named `file`)", "parameters": [PID],
        "description": "An import like POST /import: the same 409, 503, 507 and 408 answers; at most 1,000 images of 50 MiB each.",
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {**obj({"file": {**arr({"type": "string", "format": "binary"}), "minItems": 1}}),
                                                                                  "additionalProperties": False}}}},
        "responses": ok(ref("ImportReport"))}},
    "/api/projects/{pid}/next": {"post": {"summary": "Lease the next item to the caller (body optional)",
        "parameters": [PID, q("since", I64, "start of the caller's day (ms), for mine_today")],
        "requestBody": body(ref("NextRequest"), False), "responses": ok(ref("NextItem"))}},
    "/api/projects/{pid}/annotations": {"post": {"summary": "Submit or change the caller's annotation (idempotent on client_id)",
        "description": "A retry with the same client_id returns the first annotation; the same client_id on another item is 409. A new annotation needs the item to have been handed to the caller by `next` (a lease, also up to an hour after it ended, or a skip): otherwise 403. 409 also when the item has all the labels it needs.",
        "parameters": [PID], "requestBody": body(ref("SubmitAnnotation")), "responses": ok(ref("Annotation"))}},
    "/api/projects/{pid}/skip": {"post": {"summary": "Skip an item: releases the lease", "parameters": [PID],
        "requestBody": body(ref("SkipItem")), "responses": ok(None, "204", "skipped")}},
    "/api/projects/{pid}/previous": {"get": {"summary": "The caller's submission before annotation `before` (or the latest); 404 when none",
        "parameters": [PID, q("before", I64, "annotation id")], "responses": ok(ref("PreviousSubmission"))}},
    "/api/projects/{pid}/progress": {"get": {"summary": "The caller's and the project's progress",
        "parameters": [PID, q("since", I64, "start of the caller's day (ms)")], "responses": ok(ref("Progress"))}},
    "/api/projects/{pid}/export": {"get": {"summary": "Stream every item with every annotation (admin, lead member)",
        "parameters": [PID, q("format", {"type": "string", "enum": ["jsonl", "csv", "annotations"]},
                         "default jsonl. annotations: one {\"item\", \"annotator\", \"label\"} line per annotation, the input of "
                         "`mirrorset stats agreement` and `aggregate`; item is the numeric item id (external id as `id`); "
                         "multi-label projects get one line per label, item \"<item id>/<label>\", label present or absent"),
                       q("complete_only", {"type": "boolean"}, "only items with at least overlap labels"),
                       q("formulas", {"type": "string", "enum": ["neutralise", "keep"], "default": "neutralise"},
                         "CSV only. neutralise: a cell starting with = + - @, tab or carriage return gets a leading ' "
                         "(so spreadsheets show it as text instead of running it as a formula) and every cell is quoted; "
                         "this applies to every cell, so a text or label -3 is exported as '-3. keep: the values exactly as stored.")],
        "responses": {"200": {"description": "the file", "content": {"application/x-ndjson": {}, "text/csv": {}}}, "default": ERR}}},
    "/api/items/{id}/image": {"get": {"summary": "The original image of an image item",
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": I64}],
        "responses": {"200": {"description": "image bytes"}, "default": ERR}}},
    "/api/items/{id}/thumbnail": {"get": {"summary": "A JPEG thumbnail of an image item",
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": I64}],
        "responses": {"200": {"description": "image/jpeg"}, "default": ERR}}},
    "/api/users/{id}": {"patch": {"summary": "Change a user's role or disabled state (admin); disabling signs them out and refuses "
                                             "their tokens; 409 for disabling oneself or leaving no enabled admin",
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": I64}],
        "requestBody": body(ref("UserUpdate")), "responses": ok(ref("User"))}},
    "/api/users/{id}/password": {"post": {"summary": "Set a user's password (admin; not one's own: 409, use /api/me/password); signs them out everywhere",
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": I64}],
        "requestBody": body(ref("PasswordReset")), "responses": ok(None, "204", "password set")}},
    "/api/projects/{pid}/items/{id}/history": {"get": {
        "summary": "An item's audit history, oldest first: who created or changed an annotation, when, before and after (admin, lead member)",
        "parameters": [PID, {"name": "id", "in": "path", "required": True, "schema": I64}],
        "responses": ok(arr(ref("AuditEntry")))}},
    "/api/projects/{pid}/audit": {"get": {
        "summary": "The project's audit log as JSON Lines, one AuditEntry per line, oldest first: annotations, settings, members (admin, lead member)",
        "parameters": [PID],
        "responses": {"200": {"description": "JSONL of AuditEntry", "content": {"application/x-ndjson": {}}}, "default": ERR}}},
    "/api/audit": {"get": {
        "summary": "The account changes (entries of no project: users created, roles, disabling, password resets, never a password) as JSON Lines (admin)",
        "responses": {"200": {"description": "JSONL of AuditEntry", "content": {"application/x-ndjson": {}}}, "default": ERR}}},
    "/api/me/password": {"post": {"summary": "Change one's own password (403 when current_password is wrong); "
                                             "signs out the caller's other sessions",
        "requestBody": body(ref("PasswordChange")), "responses": ok(None, "204", "password changed")}},
}

# ---- review (issue 7): queues, decisions, gold answers ----
schemas["AuditAction"]["enum"] += ["review_decided", "gold_changed"]
F64 = {"type": "number", "format": "double"}
LABELS = arr(STR)
schemas.update({
    "ReviewQueueCount": obj({"queue": STR, "open": I64, "resolved": I64}),
    "ReviewQueues": obj({"queues": arr(ref("ReviewQueueCount"))}),
    "ReviewReason": obj({"queue": STR, "reason": STR, "detail": {"description": "the numbers behind the reason"},
                         "labeler": nullable(STR), "created_at": nullable(I64)}),
    "ReviewQueueItem": obj({"item_id": I64, "external_id": nullable(STR), "snippet": STR, "label_count": I64,
                            "reasons": arr(ref("ReviewReason"))}),
    "ReviewQueuePage": obj({"queue": STR, "items": arr(ref("ReviewQueueItem")), "next_after": nullable(I64), "open": I64}),
    # At least one id (400 otherwise); the reason is trimmed to 1..200 characters.
    "NewQueueEntries": {**obj({"item_ids": arr(I64), "external_ids": arr(STR), "reason": text(200),
                               "detail": {"description": "any JSON, shown with the reason"}}, ["reason"]),
                        "anyOf": [{"required": ["item_ids"], "properties": {"item_ids": {"minItems": 1}}},
                                  {"required": ["external_ids"], "properties": {"external_ids": {"minItems": 1}}}]},
    "QueueEntriesAdded": obj({"added": I64, "already_open": I64}),
    "FinalSource": {"type": "string", "enum": ["adjudicated", "gold", "consensus", "none"]},
    "FinalLabel": obj({"labels": nullable(LABELS), "source": ref("FinalSource")}),
    "GoldAction": {"type": "string", "enum": ["labeler_wrong", "gold_corrected"]},
    # labels: names of the project's labels (one in a single-label project), at least one.
    "ReviewDecisionRequest": obj({"labels": {**LABELS, "minItems": 1, "maxItems": 64}, "note": {"type": "string", "maxLength": 2000},
                                  "queue": {"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"},
                                  "gold_action": nullable(ref("GoldAction"))}, ["labels", "queue"]),
    "ReviewDecision": obj({"id": I64, "item_id": I64, "reviewer_id": I64, "reviewer": STR, "queue": STR, "labels": LABELS,
                           "note": STR, "gold_outcome": nullable(ref("GoldAction")), "created_at": I64}),
    "ReviewAnswer": obj({"user_id": I64, "username": STR, "labels": LABELS, "time_ms": I64, "created_at": I64, "updated_at": I64}),
    "ReviewConsensus": obj({"labels": LABELS, "posterior": F64, "method": STR, "n_labels": I64, "computed_at": I64}),
    "ReviewItem": obj({"item": ref("ItemView"), "label_count": I64, "k": I64, "answers": arr(ref("ReviewAnswer")),
                       "consensus": nullable(ref("ReviewConsensus")), "gold": nullable(LABELS),
                       "decisions": arr(ref("ReviewDecision")), "final_label": ref("FinalLabel"),
                       "reasons": arr(ref("ReviewReason")), "history": arr(ref("AuditEntry"))}),
    "GoldUpdate": obj({"labels": nullable({**LABELS, "minItems": 1, "maxItems": 64})}, []),
    "GoldAnswer": obj({"item_id": I64, "gold": nullable(LABELS)}),
})
QNAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"},
         "description": "disagreement, gold_miss, audit, or a custom queue"}
ITEM_ID = {"name": "item_id", "in": "path", "required": True, "schema": I64}
# The shapes Filters::parse accepts (empty: no filter). `\\S` is never looser than the server's
# trim (Rust's whitespace is a subset of what the pattern's \\s counts).
FILTERS = [q("pair", {"type": "string", "pattern": "^$|^[^,]*\\S[^,]*,[^,]*\\S[^,]*$"},
             "U1,U2: two labelers (usernames or user ids) whose answers on the item differ"),
           q("slice", {"type": "string", "pattern": "^$|^\\s*[^\\s:][^:]*:"},
             "ATTR:VALUE: items whose meta attribute has this value (compared as text)"),
           q("label", STR, "items with this label in some answer")]
paths.update({
    "/api/projects/{pid}/review/queues": {"get": {
        "summary": "Every review queue with its open (filtered) and resolved counts (admin, lead member)",
        "parameters": [PID] + FILTERS[1:], "responses": ok(ref("ReviewQueues"))}},
    "/api/projects/{pid}/review/queues/{name}": {"get": {
        "summary": "A page of the queue's open items in item id order (label_error: most likely mislabeled first), with why each is there (admin, lead member)",
        "parameters": [PID, QNAME] + FILTERS + [q("after", I64, "the previous page's next_after"),
                                                q("limit", {**I64, "minimum": 1, "maximum": 500, "default": 50}, "items per page")],
        "responses": ok(ref("ReviewQueuePage"))}},
    "/api/projects/{pid}/review/queues/{name}/entries": {"post": {
        "summary": "Feed a queue: items by numeric and/or external id with a reason; any unknown id refuses the request (400) and adds nothing",
        "parameters": [PID, QNAME], "requestBody": body(ref("NewQueueEntries")), "responses": ok(ref("QueueEntriesAdded"))}},
    "/api/projects/{pid}/review/items/{item_id}": {"get": {
        "summary": "An item for review: every labeler's answer, the consensus and posterior, gold, decisions, final label, open reasons, history",
        "parameters": [PID, ITEM_ID], "responses": ok(ref("ReviewItem"))}},
    "/api/projects/{pid}/review/items/{item_id}/decision": {"post": {
        "summary": "Decide the item's final labels (audited with before and after); the item leaves every queue",
        "description": "gold_action is required from the gold_miss queue and only allowed on gold items: labeler_wrong "
                       "(the labels must equal the gold answer) or gold_corrected (the labels become the gold answer).",
        "parameters": [PID, ITEM_ID], "requestBody": body(ref("ReviewDecisionRequest")),
        "responses": ok(ref("ReviewDecision"), "201", "decided")}},
    "/api/projects/{pid}/items/{id}/gold": {"put": {
        "summary": "Mark, change or (labels null) unmark an item's gold answer (admin, lead member; audited)",
        "parameters": [PID, {"name": "id", "in": "path", "required": True, "schema": I64}],
        "requestBody": body(ref("GoldUpdate")), "responses": ok(ref("GoldAnswer"))}},
})

# ---- production-matched dev sets (issue 8)
NUM = {"type": "number"}
DEVSET_ID = {"name": "id", "in": "path", "required": True, "schema": I64}
DISTANCE = obj({"attribute": STR, "tvd": NUM, "psi": NUM, "kl": NUM,
                "reading": {"type": "string", "description": "the usual reading of PSI: < 0.1 stable, 0.1–0.25 moderate, > 0.25 significant shift"}})
schemas.update({
    "ProfileAttribute": obj({"name": STR, "kind": {"type": "string", "enum": ["categorical", "numeric"]},
                             "edges": arr(NUM)}, ["name", "kind"]),
    "ProfileSummary": obj({"id": I64, "name": STR, "date": {"type": "string", "format": "date"}, "records": NUM,
                           "attributes": arr(ref("ProfileAttribute")), "combinations": I64, "created_at": I64}),
    "ProfileDetail": {"allOf": [ref("ProfileSummary"), obj({"cells": arr({"type": "array", "prefixItems": [arr(STR), NUM]})})]},
    "SizeCalculator": obj({"expected_accuracy": {"type": "number", "minimum": 0, "maximum": 1},
                           "half_width": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                           "confidence": {"type": "number", "default": 0.95},
                           "key_attribute": nullable(STR), "key_half_width": nullable(NUM)}, ["expected_accuracy", "half_width"]),
    # SizeCalculator (below), must_include and exclude refuse unknown fields (serde deny_unknown_fields).
    "NewDevset": obj({"name": text(200), "profile_id": I64, "seed": {**I64, "minimum": 0, "maximum": 4294967295, "default": 0},
                      "overlap": {**I64, "minimum": 1, "maximum": 100, "default": 3},
                      "attributes": arr(STR), "size": nullable({**I64, "minimum": 1}), "calculator": nullable(ref("SizeCalculator")),
                      "min_per_stratum": {**I64, "minimum": 0, "default": 0},
                      "must_include": {**obj({"weight_at_least": nullable(NUM), "external_ids": arr(STR)}, []), "additionalProperties": False},
                      "exclude": {**obj({"licenses": arr(STR), "sources": arr(STR)}, []), "additionalProperties": False}},
                     ["name", "profile_id", "attributes"]),
    "Devset": obj({"id": I64, "name": STR, "profile_id": I64, "seed": I64, "overlap": I64, "priority": I64,
                   "draft": {"type": "object", "description": "the draft fields of NewDevset"},
                   "sampled_at": nullable(I64), "members": I64, "created_at": I64}),
    "PlanStratum": obj({"key": STR, "values": arr(STR), "production": NUM, "production_share": NUM, "requested": I64,
                        "available": I64, "must_include": I64, "allocated": I64, "shortfall": I64,
                        "message": {"type": "string", "description": "for a stratum that cannot be filled: \"EU × tablet: 12 of 40 — import more EU tablet items\""}},
                       ["key", "values", "production", "production_share", "requested", "available", "must_include", "allocated", "shortfall"]),
    "DevsetPlan": obj({"attributes": arr(STR), "size": I64,
                       "size_driver": obj({"requirement": {"type": "string", "enum": ["size", "overall", "key_attribute"]}, "message": STR,
                                           "overall": nullable(I64),
                                           "per_value": arr(obj({"value": STR, "production_share": NUM, "needed": I64, "total": I64}))}),
                       "min_per_stratum": I64, "pool_items": I64, "eligible_items": I64,
                       "excluded": obj({"license": I64, "source": I64, "other_devset": I64}),
                       "strata": arr(ref("PlanStratum")), "total": I64, "shortfall": I64,
                       "expected": arr(DISTANCE), "expected_joint": DISTANCE, "messages": arr(STR)}),
    "DevsetSample": obj({"seed": I64, "members": I64, "items": arr(I64), "per_stratum": {"type": "object", "additionalProperties": I64}}),
    "StratumProgress": obj({"stratum": STR, "members": I64, "labeled": I64, "complete": I64, "agreed": I64,
                            "reviewed": {**I64, "description": "members with a review decision (a lead or admin set the final label)"}}),
    "DevsetProgress": obj({"total": ref("StratumProgress"), "strata": arr(ref("StratumProgress"))}),
    "DevsetReport": obj({"profile_id": I64, "members": I64, "pool_items": I64,
                         "attributes": arr(obj({"attribute": STR, "bars": arr(obj({"value": STR, "production": NUM, "dev": NUM, "pool": NUM})),
                                                "dev_vs_production": nullable(DISTANCE), "pool_vs_production": nullable(DISTANCE)})),
                         "joint_dev_vs_production": nullable(DISTANCE), "joint_pool_vs_production": nullable(DISTANCE),
                         "accuracy": NUM, "accuracy_source": STR, "confidence": NUM, "half_width": nullable(NUM),
                         "key_attribute": STR, "key_slices": arr(obj({"value": STR, "n": I64, "half_width": nullable(NUM)})),
                         "reasons": arr(STR),
                         "top_up": obj({"target_tvd": NUM, "tvd_now": NUM, "tvd_after": NUM, "reached": {"type": "boolean"},
                                        "new_labels": I64,
                                        "strata": arr(obj({"values": arr(STR), "production_share": NUM, "members": I64,
                                                           "add": I64, "available": I64}))})},
                        ["profile_id", "members", "pool_items", "attributes", "joint_dev_vs_production", "joint_pool_vs_production",
                         "accuracy", "accuracy_source", "confidence", "half_width", "key_attribute", "key_slices", "reasons"]),
})
paths.update({
    "/api/projects/{pid}/profiles": {
        "get": {"summary": "Production profiles, newest first (admin, lead member)", "parameters": [PID],
                "responses": ok(arr(ref("ProfileSummary")))},
        "post": {"summary": "Upload a production profile (admin, lead member): a sample of records (meta attributes, or full items) "
                            "or a counts table (attribute columns and `count`); streamed to disk; numeric attributes bucketed by "
                            "production quartiles. 422 (code unprocessable) lists bad lines in error.details; nothing is saved. "
                            "507 when the declared size cannot fit on disk above the reserve (checked before spooling).",
                 "parameters": [PID, {**q("name", text(200), "the profile's name"), "required": True},
                                {**q("date", {"type": "string", "format": "date"}, "when production looked like this"), "required": True},
                                q("kind", {"type": "string", "enum": ["records", "counts"], "default": "records"}, "records or a counts table"),
                                q("format", {"type": "string", "enum": ["jsonl", "csv"], "default": "jsonl"}, "file format")],
                 "requestBody": {"required": True, "content": {"application/x-ndjson": {}, "text/csv": {}, "application/octet-stream": {}}},
                 "responses": ok(ref("ProfileSummary"), "201", "created")}},
    "/api/projects/{pid}/profiles/{id}": {"get": {"summary": "One profile with its joint counts", "parameters": [PID, DEVSET_ID],
                                                  "responses": ok(ref("ProfileDetail"))}},
    "/api/projects/{pid}/devsets": {
        "get": {"summary": "Dev sets of the project (admin, lead member)", "parameters": [PID], "responses": ok(arr(ref("Devset")))},
        "post": {"summary": "Create a dev-set draft; one that cannot be planned (size above the eligible pool, floors above the size, "
                            "attributes not in both profile and pool) is 422 and nothing is saved",
                 "parameters": [PID], "requestBody": body(ref("NewDevset")), "responses": ok(ref("Devset"), "201", "created")}},
    "/api/projects/{pid}/devsets/{id}": {"get": {"summary": "One dev set", "parameters": [PID, DEVSET_ID], "responses": ok(ref("Devset"))}},
    "/api/projects/{pid}/devsets/{id}/plan": {"get": {
        "summary": "The plan: size and what drove it, allocation per stratum with minimums as floors, shortfalls named, expected TVD/PSI/KL per attribute",
        "parameters": [PID, DEVSET_ID], "responses": ok(ref("DevsetPlan"))}},
    "/api/projects/{pid}/devsets/{id}/sample": {"post": {
        "summary": "Sample the plan with the dev set's seed (reproducible); the members become a campaign (items.priority raised, "
                   "items.overlap the dev set's); 409 when already sampled or an item was taken by another dev set",
        "parameters": [PID, DEVSET_ID], "responses": ok(ref("DevsetSample"), "201", "sampled")}},
    "/api/projects/{pid}/devsets/{id}/progress": {"get": {"summary": "Campaign progress per stratum: labeled, complete, agreed (all labels equal), reviewed",
        "parameters": [PID, DEVSET_ID], "responses": ok(ref("DevsetProgress"))}},
    "/api/projects/{pid}/devsets/{id}/report": {"get": {
        "summary": "Distribution report: per attribute and jointly, dev set vs production and pool vs production (TVD, PSI with its reading, KL), "
                   "Wilson half-width overall and per key slice. profile_id compares with another (newer) profile: the drift check.",
        "parameters": [PID, DEVSET_ID, q("profile_id", I64, "default: the dev set's own profile"),
                       q("max_tvd", {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                         "the drift check: add top_up, the fewest new labels (members kept) that bring the joint TVD under this")],
        "responses": ok(ref("DevsetReport"))}},
})

schemas["SizeCalculator"]["additionalProperties"] = False

# ---- issue 7: background jobs and the agreement dashboard (appended) ----
F64 = {"type": "number", "format": "double"}
BOOL = {"type": "boolean"}
schemas.update({
    "JobInfo": obj({"id": I64, "kind": STR, "state": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
                    "progress_done": I64, "progress_total": I64, "error": nullable(STR), "created_at": I64,
                    "started_at": nullable(I64), "heartbeat_at": nullable(I64), "finished_at": nullable(I64)}),
    "Interval": obj({"lower": F64, "upper": F64}),
    "StatValue": obj({"value": nullable(F64), "interval": nullable(ref("Interval")), "n": I64, "reason": nullable(STR)}),
    "LabelAgreementRow": obj({"label": STR, "alpha": ref("StatValue")}),
    "PairCell": obj({"a": STR, "b": STR, "n": I64, "kappa": nullable(F64), "reason": nullable(STR)}),
    "LabelConfusion": obj({"a": STR, "b": STR, "count": F64, "share": F64}),
    "AlphaPoint": obj({"period_start": I64, "n": I64, "alpha": nullable(F64), "reason": nullable(STR)}),
    "LabelerAgreement": obj({"user_id": I64, "username": STR, "items_labeled": I64, "median_seconds": nullable(F64),
                             "skips": I64, "skip_rate": nullable(F64), "agreement_with_others": ref("StatValue"),
                             "ds_confusion": arr(arr(F64)), "gold_accuracy": ref("StatValue")}),
    "AgreementDashboard": obj({"project_id": I64, "computed_at": nullable(I64), "refreshing": BOOL,
                               "measurement": {"type": "string", "enum": ["nominal", "ordinal"]},
                               "consensus_method": {"type": "string", "enum": ["majority", "dawid_skene"]},
                               "target_alpha": F64, "multi_label": BOOL, "n_items": I64, "n_annotations": I64, "n_labelers": I64,
                               "alpha": ref("StatValue"), "fleiss_kappa": ref("StatValue"), "mean_cohen_kappa": ref("StatValue"),
                               "percent_agreement": ref("StatValue"), "per_label": arr(ref("LabelAgreementRow")),
                               "pairs": arr(ref("PairCell")), "confusion": arr(ref("LabelConfusion")),
                               "period": {"type": "string", "enum": ["day", "week"]}, "over_time": arr(ref("AlphaPoint")),
                               "confusion_labels": arr(STR), "labelers": arr(ref("LabelerAgreement")),
                               "slice_attributes": arr(STR)}),
    "SliceRow": obj({"value": STR, "items": I64, "alpha": ref("StatValue"), "below_target": BOOL}),
    "AgreementSlices": obj({"attr": STR, "computed_at": nullable(I64), "target_alpha": F64, "rows": arr(ref("SliceRow"))}),
    "ItemLabels": obj({"labeler": STR, "labels": arr(STR)}),
    "DisagreementItem": obj({"item_id": I64, "external_id": nullable(STR), "snippet": nullable(STR), "labels": arr(ref("ItemLabels"))}),
    "DisagreementList": obj({"total": I64, "limit": I64, "items": arr(ref("DisagreementItem"))}),
})
paths.update({
    "/api/projects/{pid}/jobs": {"get": {"summary": "The project's 50 most recent background jobs, newest first, with progress (admin, lead member)",
        "parameters": [PID], "responses": ok(arr(ref("JobInfo")))}},
    "/api/projects/{pid}/agreement": {"get": {
        "summary": "The agreement dashboard as last computed by the background refresh (admin, lead member)",
        "description": "Recomputed automatically (every 15 s by default) when labels change; computed_at says when. "
                       "Intervals: percentile bootstrap, 1,000 replicates, seed 0 (as `mirrorset stats agreement --bootstrap 1000`).",
        "parameters": [PID, q("period", {"type": "string", "enum": ["day", "week"], "default": "day"}, "alpha-over-time buckets")],
        "responses": ok(ref("AgreementDashboard"))}},
    "/api/projects/{pid}/agreement/slices": {"get": {
        "summary": "Alpha with its interval per value of a meta attribute (attributes with at most 50 values; 400 otherwise)",
        "parameters": [PID, {"name": "attr", "in": "query", "required": True, "schema": {"type": "string", "minLength": 1},
                             "description": "meta attribute"}],
        "responses": ok(ref("AgreementSlices"))}},
    "/api/projects/{pid}/agreement/items": {"get": {
        "summary": "The items where labelers disagree, behind a dashboard number: give exactly one filter (400 otherwise)",
        "parameters": [PID, q("pair", {"type": "string", "pattern": "^[^,]*\\S[^,]*,[\\s\\S]*\\S"}, "U1,U2: usernames; items both labeled differently"),
                       q("labels", {"type": "string", "pattern": "^[^,]*\\S[^,]*,[\\s\\S]*\\S"}, "A,B: one labeler chose A, another B"),
                       q("label", {"type": "string", "minLength": 1}, "NAME: some labelers chose it and others did not"),
                       q("slice", {"type": "string", "pattern": "^[^:]+:"}, "ATTR:VALUE: items of the slice with differing answers"),
                       q("limit", {**I64, "minimum": 1, "maximum": 500, "default": 100}, "items listed at most")],
        "responses": ok(ref("DisagreementList"))}},
})
# Dev-set releases (issue 9).
RELEASE_ID = {"name": "id", "in": "path", "required": True, "schema": I64, "description": "release id"}
REASON = text(1000)
schemas.update({
    "FreezeRequest": obj({
        "dev_share": nullable({"type": "number", "exclusiveMinimum": 0, "default": 0.5}),
        "test_share": nullable({"type": "number", "exclusiveMinimum": 0, "default": 0.5}),
        "seed": {**I64, "minimum": 0, "maximum": 4294967295, "default": 0},
        "group_by": nullable({"type": "string", "pattern": NONBLANK, "description": "meta attribute: one group, one split"}),
        "train_dev_size": nullable({**I64, "minimum": 0, "description": "labeled training-pool items drawn as train_dev"}),
        "licenses": nullable(arr(STR)), "sources": nullable(arr(STR)),
        "jaccard_threshold": nullable({"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 0.8}),
        "override_unready": nullable(REASON), "override_leakage": nullable(REASON)}, []),
    "UnreadyItem": obj({"item_id": I64, "external_id": nullable(STR), "reason": {"type": "string", "enum": ["no_final_label", "open_review"]}}),
    "LeakageSide": obj({"item_id": I64, "external_id": nullable(STR), "split": STR, "snippet": nullable(STR)}),
    "LeakagePair": obj({"kind": {"type": "string", "enum": ["exact", "near"]}, "jaccard": NUM,
                        "a": ref("LeakageSide"), "b": ref("LeakageSide")}),
    "ReleaseSummary": obj({"id": I64, "project_id": I64, "devset_id": I64, "version": STR, "content_hash": STR,
                           "item_count": I64, "splits": {"type": "object", "additionalProperties": I64},
                           "created_by": nullable(STR), "created_at": I64}),
    "ReleaseDetail": {"allOf": [ref("ReleaseSummary"), obj({"lineage": {"type": "object"}, "card": STR})]},
    "LabelChange": obj({"item_id": I64, "external_id": nullable(STR), "from_labels": arr(STR), "to_labels": arr(STR),
                        "from_provenance": {}, "to_provenance": {}}),
    "DistributionChange": obj({"attribute": STR, "value": STR, "from_count": I64, "to_count": I64,
                               "from_share": NUM, "to_share": NUM}),
    "ReleaseDiff": obj({"from": ref("ReleaseSummary"), "to": ref("ReleaseSummary"), "added": arr(I64), "removed": arr(I64),
                        "label_changes": arr(ref("LabelChange")), "distribution": arr(ref("DistributionChange"))}),
})
paths.update({
    "/api/projects/{pid}/releases": {"get": {
        "summary": "Releases of the project, by dev set then version (admin, lead member)",
        "parameters": [PID, q("devset_id", I64, "only this dev set's")], "responses": ok(arr(ref("ReleaseSummary")))}},
    "/api/projects/{pid}/devsets/{id}/releases": {"post": {
        "summary": "Queue the freeze of the dev set as its next release vN (admin, lead member): 202 with the job. A refused "
                   "freeze ends done with blocked (code unprocessable), nothing saved: blocked.details.unready lists items "
                   "without a final label or with an open review, blocked.details.leakage the duplicate pairs (between "
                   "splits, or with items in no dev set); override_unready / override_leakage freeze anyway and record the "
                   "reason in the lineage. 409 before the dev set is sampled, 400 for a bad request.",
        "parameters": [PID, DEVSET_ID], "requestBody": body(ref("FreezeRequest")),
        "responses": ok(ref("FreezeJob"), "202", "queued: follow it at /api/projects/{pid}/release-freezes/{job}")}},
    "/api/projects/{pid}/releases/{id}": {"get": {
        "summary": "A release: summary, lineage (plan, aggregation, agreement, splits, filters, leakage, overrides) and dataset card",
        "parameters": [PID, RELEASE_ID], "responses": ok(ref("ReleaseDetail"))}},
    "/api/projects/{pid}/releases/{id}/export": {"get": {
        "summary": "Download a release: zip (Hugging Face folder: README.md card, data/<split>.jsonl; release.jsonl, release.csv, "
                   "label_studio.json, lineage.json, manifest.json), jsonl, csv, label_studio, card or manifest",
        "parameters": [PID, RELEASE_ID, q("format", {"type": "string", "enum": ["zip", "jsonl", "csv", "label_studio", "card", "manifest"],
                                                      "default": "zip"}, "what to download")],
        "responses": {"200": {"description": "the file", "content": {"application/zip": {}, "application/x-ndjson": {},
                                                                      "text/csv": {}, "application/json": {}, "text/markdown": {}}},
                      "default": ERR}}},
    "/api/projects/{pid}/releases/{id}/diff/{other}": {"get": {
        "summary": "From release id to release other: items added, removed, labels changed (both provenances), distribution per attribute",
        "parameters": [PID, RELEASE_ID, {"name": "other", "in": "path", "required": True, "schema": I64, "description": "release id"}],
        "responses": ok(ref("ReleaseDiff"))}},
})

# Release freezes as background jobs (issue 9).
schemas.update({
    "FreezeJob": obj({"job": ref("JobInfo"), "devset_id": I64,
                      "phase": nullable({"type": "string", "enum": ["reading members", "splitting", "leakage check", "lineage",
                                                                     "hashing", "writing", "done"]}),
                      "release": nullable(ref("ReleaseDetail")),
                      "blocked": nullable(obj({"code": STR, "message": STR, "details": {}}, ["code", "message"]))}),
})
paths.update({
    "/api/projects/{pid}/release-freezes/{job}": {"get": {
        "summary": "A freeze job (admin, lead member): state, phase and counts; when done, the release or the refusal (blocked)",
        "parameters": [PID, {"name": "job", "in": "path", "required": True, "schema": I64, "description": "job id"}],
        "responses": ok(ref("FreezeJob"))}},
})

# Pre-labels (issue 10).
schemas.update({
    "PrelabelSourceKind": {"type": "string", "enum": ["model", "rules", "builtin"]},
    "PrelabelView": obj({"source_id": I64, "source_kind": ref("PrelabelSourceKind"), "source": STR,
                         "labels": arr(STR), "score": nullable(F64)}),
    "PrelabelLabelStats": obj({"label": STR, "prelabels": I64, "acceptance": ref("StatValue"), "audited": I64,
                               "precision": ref("StatValue"), "auto_accept_min_score": nullable(F64)}),
    "PrelabelAuditDrawn": obj({"drawn": I64, "queued": I64}),
    "PrelabelSource": obj({"id": I64, "kind": ref("PrelabelSourceKind"), "name": STR, "version": STR, "prelabels": I64,
                           "acceptance": ref("StatValue"), "agreement_hidden": ref("StatValue"),
                           "mean_time_ms_shown": nullable(F64), "mean_time_ms_hidden": nullable(F64),
                           "by_label": arr(ref("PrelabelLabelStats")), "created_at": I64}),
    # Fields left out take their defaults.
    "PrelabelSettings": obj({"hide_until_answered": BOOL,
                             "audit_rate": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.05},
                             "audit_seed": {**I64, "default": 0},
                             "target_precision": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 0.95}},
                            ["hide_until_answered"]),
})
# The labeling loop's answer carries the item's best pre-label when there is one to show.
schemas["NextItem"]["properties"]["prelabel"] = ref("PrelabelView")
paths.update({
    "/api/projects/{pid}/prelabels/import": {"post": {
        "summary": "Import model predictions: JSONL, one {item, label or labels, score, model, version} per line (admin, lead member)",
        "description": "All or nothing: any bad line, or a line naming no item of the project, and nothing is stored; the 422 "
                       "lists the bad lines in error.details as an ImportReport. A (model, version) is one source; importing "
                       "it again replaces its pre-label of an item. At most 2,000,000 lines.",
        "parameters": [PID],
        # The body is read as JSON lines whatever its type: one JSON object is a one-line file.
        "requestBody": {"required": True, "content": {"application/x-ndjson": {}, "application/json": {}}},
        "responses": ok(ref("ImportReport"))}},
    "/api/projects/{pid}/prelabels/sources": {"get": {
        "summary": "Pre-label sources with counts, acceptance (95% Wilson interval) and time per item, per source and label (admin, lead member)",
        "parameters": [PID], "responses": ok(arr(ref("PrelabelSource")))}},
    "/api/projects/{pid}/prelabels/settings": {
        "get": {"summary": "The project's pre-label settings (admin, lead member)", "parameters": [PID], "responses": ok(ref("PrelabelSettings"))},
        "put": {"summary": "Change the project's pre-label settings", "parameters": [PID],
                "requestBody": body(ref("PrelabelSettings")), "responses": ok(ref("PrelabelSettings"))}},
    "/api/projects/{pid}/prelabels/audit": {"post": {
        "summary": "Draw the audit sample: a seeded share (audit_rate, audit_seed) of each source's pre-labels per label goes to the prelabel_audit review queue (admin, lead member)",
        "description": "Repeating the draw with the same settings adds only what new pre-labels bring; a higher rate keeps every earlier draw.",
        "parameters": [PID], "responses": ok(ref("PrelabelAuditDrawn"))}},
})
# Auto-accept and the export's noise figures (issue 10, second half).
schemas["AuditAction"]["enum"] += ["auto_accept_changed"]
schemas["FinalSource"]["enum"] = ["adjudicated", "gold", "consensus", "auto", "none"]
schemas["FinalLabel"]["properties"]["auto_source"] = {**STR, "description": "with source auto: the pre-label source (auto:<source>)"}
schemas["PrelabelSettings"]["properties"]["disagreement_min_score"] = {"type": "number", "minimum": 0, "maximum": 1, "default": 0.9}
schemas.update({
    "AutoAcceptState": obj({"min_score": F64, "target_precision": F64, "accepted": I64, "enabled_at": I64}),
    "AutoAcceptRequest": {**obj({"source_id": I64, "labels": nullable(arr(STR)), "enabled": BOOL}, ["source_id", "enabled"]),
                          "additionalProperties": False},
    "AutoAcceptChange": obj({"labels": arr(STR), "min_score": nullable(F64)}),
    "AutoAcceptReport": obj({"changed": arr(ref("AutoAcceptChange")), "without_threshold": arr(arr(STR)), "accepted": I64}),
    "ExportLabelNoise": obj({"label": STR, "total": I64, "human": I64, "adjudicated": I64, "auto": I64,
                             "human_share": nullable(F64), "adjudicated_share": nullable(F64), "auto_share": nullable(F64),
                             "auto_precision": ref("StatValue"), "expected_wrong": nullable(F64)}),
    "ExportSummary": obj({"items": I64, "labeled": I64, "human": I64, "adjudicated": I64, "auto": I64,
                          "by_label": arr(ref("ExportLabelNoise"))}),
})
schemas["PrelabelLabelStats"]["properties"]["labels"] = arr(STR)
schemas["PrelabelLabelStats"]["properties"]["auto_accept"] = nullable(ref("AutoAcceptState"))
schemas["PrelabelLabelStats"]["required"] += ["labels", "auto_accept"]
paths.update({
    "/api/projects/{pid}/prelabels/auto-accept": {"put": {
        "summary": "Turn auto-accept on or off for a pre-label source, one label set or all of them (admin, lead member; audit-logged)",
        "description": "On takes the threshold the audits justify now (the lowest score whose audited precision has a 95% Wilson "
                       "lower bound at the target) and keeps it; a named label set without one is refused with 422. Accepted "
                       "pre-labels become final labels auto:<source> where no person gave one; items in dev sets or releases, "
                       "gold, complete, reviewed or contradicted items never are; accepted items leave the labeling stream.",
        "parameters": [PID], "requestBody": body(ref("AutoAcceptRequest")), "responses": ok(ref("AutoAcceptReport"))}},
    "/api/projects/{pid}/export/summary": {"get": {
        "summary": "The estimated noise of the export: per label, final labels that are human, adjudicated or auto-accepted, "
                   "and the audited precision of the auto-accepted part with its 95% interval (admin, lead member)",
        "parameters": [PID], "responses": ok(ref("ExportSummary"))}},
})
# Labeling rules and their label model (issue 10).
RULE_ID = {"name": "id", "in": "path", "required": True, "schema": I64, "description": "rule id"}
schemas.update({
    "RuleKind": {"type": "string", "enum": ["keyword", "regex", "meta"]},
    # Fields left out take their defaults (no meta_key, label null: the rule abstains, enabled).
    "RuleDraft": obj({"name": text(200), "kind": ref("RuleKind"),
                      "pattern": {"type": "string", "maxLength": 1000,
                                  "description": "keyword: words separated by spaces or commas (any of them, whole words, "
                                                 "ignoring case); regex: a regular expression (Rust regex syntax, ignoring "
                                                 "case); meta: the attribute's value, compared as text"},
                      "meta_key": nullable(STR), "label": nullable(STR), "enabled": {**BOOL, "default": True}},
                     ["name", "kind", "pattern"]),
    "RuleStats": obj({"coverage": I64, "overlap": I64, "conflict": I64, "accuracy": ref("StatValue")}),
    "PrelabelRule": obj({"id": I64, "name": STR, "kind": ref("RuleKind"), "pattern": STR, "meta_key": nullable(STR),
                         "label": nullable(STR), "enabled": BOOL, "created_at": I64, "updated_at": I64,
                         "stats": ref("RuleStats")}),
    "RuleList": obj({"items": I64, "labeled": I64, "covered": I64, "rules": arr(ref("PrelabelRule"))}),
    "RulePreviewRequest": obj({"kind": ref("RuleKind"), "pattern": {"type": "string", "maxLength": 1000},
                               "meta_key": nullable(STR), "label": nullable(STR), "editing": nullable(I64)},
                              ["kind", "pattern"]),
    "RuleExample": obj({"item_id": I64, "text": STR, "final_labels": nullable(arr(STR))}),
    "RulePreview": obj({"items": I64, "stats": ref("RuleStats"), "examples": arr(ref("RuleExample")), "elapsed_ms": F64}),
    "RulesApplied": obj({"source_id": I64, "prelabels": I64, "iterations": I64, "converged": BOOL}),
    "RulesApplyStatus": obj({"job": nullable(ref("JobInfo")), "applied": nullable(ref("RulesApplied"))}),
})
schemas["AuditAction"]["enum"] += ["rule_created", "rule_changed", "rule_deleted", "rules_applied"]
paths.update({
    "/api/projects/{pid}/prelabels/rules": {
        "get": {"summary": "The project's labeling rules, each with coverage, overlap and conflict with the other enabled rules, "
                           "and accuracy on items with a final label (95% Wilson interval) (admin, lead member)",
                "parameters": [PID], "responses": ok(ref("RuleList"))},
        "post": {"summary": "Write a labeling rule (422 names what is wrong with the rule, 400 with its name; 409 when the name is taken)",
                 "parameters": [PID], "requestBody": body(ref("RuleDraft")), "responses": ok(ref("PrelabelRule"), "201", "created")}},
    "/api/projects/{pid}/prelabels/rules/{id}": {
        "put": {"summary": "Replace a labeling rule", "parameters": [PID, RULE_ID],
                "requestBody": body(ref("RuleDraft")), "responses": ok(ref("PrelabelRule"))},
        "delete": {"summary": "Delete a labeling rule (the rules source's pre-labels stay until the rules are applied again)",
                   "parameters": [PID, RULE_ID], "responses": ok(None, "204", "deleted")}},
    "/api/projects/{pid}/prelabels/rules/preview": {"post": {
        "summary": "The figures of an unsaved rule against the saved enabled rules (but `editing`), with a few matched items",
        "parameters": [PID], "requestBody": body(ref("RulePreviewRequest")), "responses": ok(ref("RulePreview"))}},
    "/api/projects/{pid}/prelabels/rules/apply": {"post": {
        "summary": "Apply the enabled rules, as a background job (202 with the job; GET follows it): the label model "
                   "(Dawid-Skene over the rules' votes, abstention modelled) gives each "
                   "item a voting rule fires on a label and its probability, replacing the rules source's pre-labels",
        "parameters": [PID], "responses": ok(ref("JobInfo"), "202", "queued")},
        "get": {"summary": "The newest Apply job (state, progress, error) and the result of the last Apply that finished",
                "parameters": [PID], "responses": ok(ref("RulesApplyStatus"))}},
})
# The built-in model (issue 10).
schemas.update({
    "ModelSettings": obj({"enabled": BOOL,
                          "retrain_every": {"type": "integer", "format": "int64", "minimum": 1, "maximum": 1000000, "default": 200,
                                            "description": "new human final labels between automatic trainings"},
                          "uncertainty_order": {**BOOL, "default": False,
                                                "description": "labelers get the items the last run was least sure of first"}},
                         ["enabled"]),
    "ModelLabelCount": obj({"label": STR, "n": I64}),
    "ModelRun": obj({"id": I64, "trained_at": I64, "n_train": I64, "label_counts": arr(ref("ModelLabelCount")), "folds": I64,
                     "cv_accuracy": ref("StatValue"), "baseline_accuracy": ref("StatValue"), "items_scored": I64, "flagged": I64}),
    "ModelStatus": obj({"settings": ref("ModelSettings"), "last_run": nullable(ref("ModelRun")), "job": nullable(ref("JobInfo")),
                        "labels_since_last_run": I64, "source_id": nullable(I64)}),
})
paths.update({
    "/api/projects/{pid}/model": {"get": {
        "summary": "The built-in model: its settings, the last training (labels per class, cross-validated accuracy and the "
                   "majority-class baseline, each with a 95% Wilson interval and n; items scored; items flagged as likely "
                   "mislabeled), the newest training job with its progress, and the new human final labels since (admin, lead member)",
        "parameters": [PID], "responses": ok(ref("ModelStatus"))}},
    "/api/projects/{pid}/model/settings": {"put": {
        "summary": "The built-in model's settings (422 on a multi-label project: the model classifies single-label projects only)",
        "parameters": [PID], "requestBody": body(ref("ModelSettings")), "responses": ok(ref("ModelSettings"))}},
    "/api/projects/{pid}/model/train": {"post": {
        "summary": "Queue a training of the built-in model now: the job (202). 422 on a multi-label project or with fewer than "
                   "5 human final labels",
        "parameters": [PID], "responses": ok(ref("JobInfo"), "202", "queued")}},
})
# Links (OpenAPI 3.1 `links`): how a response leads to the next request, so clients (and the
# schemathesis run's stateful phase) reach items and annotations instead of guessing ids.
def link(op, params=None, body=None, desc=""):
    l = {"operationRef": op, "description": desc}
    if params: l["parameters"] = params
    if body: l["requestBody"] = body
    return l
def ref_op(path, method):
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method
PID_FROM_PROJECT = {"pid": "$response.body#/id"}
paths["/api/projects"]["post"]["responses"]["201"]["links"] = {
    "Import": link(ref_op("/api/projects/{pid}/import", "post"), PID_FROM_PROJECT, desc="fill the new project"),
    "Next": link(ref_op("/api/projects/{pid}/next", "post"), PID_FROM_PROJECT, desc="label it"),
    "Export": link(ref_op("/api/projects/{pid}/export", "get"), PID_FROM_PROJECT),
    "Members": link(ref_op("/api/projects/{pid}/members", "get"), PID_FROM_PROJECT),
    "Progress": link(ref_op("/api/projects/{pid}/progress", "get"), PID_FROM_PROJECT),
}
PID_SAME = {"pid": "$request.path.pid"}
paths["/api/projects/{pid}/next"]["post"]["responses"]["200"]["links"] = {
    "Submit": link(ref_op("/api/projects/{pid}/annotations", "post"), PID_SAME,
                   {"item_id": "$response.body#/item/id", "labels": ["pos"], "time_ms": 1800, "client_id": "link-submit"},
                   "answer the leased item (labels: names of the project's labels)"),
    "Skip": link(ref_op("/api/projects/{pid}/skip", "post"), PID_SAME, {"item_id": "$response.body#/item/id"}, "skip the leased item"),
    "History": link(ref_op("/api/projects/{pid}/items/{id}/history", "get"), {"pid": "$request.path.pid", "id": "$response.body#/item/id"}),
}
paths["/api/projects/{pid}/annotations"]["post"]["responses"]["200"]["links"] = {
    "Previous": link(ref_op("/api/projects/{pid}/previous", "get"), PID_SAME, desc="go back to it"),
    "History": link(ref_op("/api/projects/{pid}/items/{id}/history", "get"), {"pid": "$request.path.pid", "id": "$response.body#/item_id"}),
}

doc = {
    "openapi": "3.1.0",
    "info": {"title": "Mirrorset API", "version": "0.1.0",
             "description": "One API for the browser UI, the CLI and scripts. Authenticate with `Authorization: Bearer <token>` "
                            "(create one on the API tokens page or with `mirrorset token create`), or with the session cookie "
                            "from /api/auth/login — cookie requests that change state must send `x-csrf-token` "
                            "(from GET /api/me). Timestamps are milliseconds since the Unix epoch."},
    "servers": [{"url": "/"}],
    "security": [{"bearer": []}, {"session": []}],
    "paths": paths,
    "components": {"schemas": schemas, "securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer"},
        "session": {"type": "apiKey", "in": "cookie", "name": "mirrorset_session"}}},
}
out = pathlib.Path(__file__).resolve().parent.parent / "server/src/api/openapi.json"
out.write_text(json.dumps(doc, indent=2) + "\n")
print(f"wrote {out}")
