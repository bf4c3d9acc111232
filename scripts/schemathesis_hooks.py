"""Schemathesis hooks for scripts/schemathesis.sh: the few rules the OpenAPI document states in
prose because JSON Schema cannot say them, and what keeps the fuzzer from locking itself out.

Every hook here narrows what is generated; none changes a response or hides a failure.
"""
import os

import schemathesis

TOKEN_ID = int(os.environ.get("MIRRORSET_FUZZ_TOKEN_ID", "0"))
USER_ID = int(os.environ.get("MIRRORSET_FUZZ_USER_ID", "0"))


def _unique_labels(body):
    """Label names and keys (lowercased) unique within a project: 400 otherwise."""
    labels = body.get("labels") if isinstance(body, dict) else None
    if not isinstance(labels, list):
        return True
    names = [l.get("name", "").strip() for l in labels if isinstance(l, dict)]
    keys = [l.get("key", "").lower() for l in labels if isinstance(l, dict)]
    return len(set(names)) == len(names) and len(set(keys)) == len(keys)


@schemathesis.hook("filter_body").apply_to(path_regex=r"^/api/projects(/\{pid\})?$")
def unique_label_names_and_keys(ctx, body):
    return _unique_labels(body)


@schemathesis.hook("filter_path_parameters").apply_to(method="DELETE", path="/api/tokens/{id}")
def keep_own_token(ctx, path_parameters):
    """Revoking the fuzzer's own token would answer 401 to everything after it."""
    return path_parameters.get("id") != TOKEN_ID


@schemathesis.hook("filter_path_parameters").apply_to(path_regex=r"^/api/users/\{id\}")
def not_oneself(ctx, path_parameters):
    """The fuzzer's own account: demoting or disabling it locks the fuzzer out, and a reset of
    one's own password goes through /api/me/password (400 here, as the document says)."""
    return path_parameters.get("id") != USER_ID


@schemathesis.hook("map_body").apply_to(method="POST", path="/api/projects/{pid}/annotations")
def labels_of_the_seeded_project(ctx, body):
    """A submission's labels must be names of the project's labels (one, in the seeded
    single-label project 1): the body keeps its generated item, time and client id."""
    if isinstance(body, dict):
        body = {**body, "labels": ["pos"] if len(str(body.get("client_id", ""))) % 2 else ["neg"]}
        # JSON Schema's integers include 1238.0 (and the generator once sent a large float that
        # was not even integral, seed 3); the server's ids are JSON integers.
        if isinstance(body.get("item_id"), float):
            body["item_id"] = int(body["item_id"])
    return body


@schemathesis.hook("filter_case").apply_to(method="PATCH", path="/api/projects/{pid}")
def keep_the_seeded_projects_labels(ctx, case):
    """Project 1's labels (pos, neg) are what `labels_of_the_seeded_project` submits."""
    body = case.body if isinstance(case.body, dict) else {}
    return not ((case.path_parameters or {}).get("pid") == 1 and "labels" in body)


# ---- review, gold and the agreement drill-down (issue 7) ----

def _seeded_labels(body, key):
    """Names of the seeded project's labels (one: it is single-label), as in submissions."""
    return ["pos"] if len(str(body.get(key, ""))) % 2 else ["neg"]


@schemathesis.hook("map_body").apply_to(method="POST", path="/api/projects/{pid}/review/items/{item_id}/decision")
def decision_labels_of_the_seeded_project(ctx, body):
    """A decision's labels must be names of the project's labels (one in project 1); a
    gold_action is only for gold items and required from the gold_miss queue (400 otherwise,
    a rule about the item): the seeded items have no gold answer, so none and not that queue."""
    if isinstance(body, dict):
        body = {**body, "labels": _seeded_labels(body, "note")}
        body.pop("gold_action", None)
        if body.get("queue") == "gold_miss":
            body["queue"] = "disagreement"
    return body


@schemathesis.hook("map_body").apply_to(method="PUT", path="/api/projects/{pid}/items/{id}/gold")
def gold_labels_of_the_seeded_project(ctx, body):
    """A gold answer is checked like a submission; null (unmark) is kept."""
    if isinstance(body, dict) and body.get("labels") is not None:
        body = {**body, "labels": _seeded_labels(body, "labels")}
    return body


# One registration: a hook function carries one filter set, so stacked decorators would not add up.
@schemathesis.hook("filter_case").apply_to(name=[
    "PUT /api/projects/{pid}/items/{id}/gold",
    "POST /api/projects/{pid}/review/items/{item_id}/decision",
    "POST /api/projects/{pid}/annotations",
    "POST /api/projects/{pid}/review/queues/{name}/entries",
])
def seeded_labels_only_in_the_seeded_project(ctx, case):
    """The hooks above give labels of project 1 (pos, neg); the body is checked against the
    target project's labels before its item is looked up, so the same labels sent to a project
    the fuzzer created (other labels) get a correct 400. Found when a run marked gold with
    ["pos"] in such a project (ST202). The same for the review entries' seeded item ids (found
    with seed 4). An unmarking (null labels) goes to any project."""
    body = case.body if isinstance(case.body, dict) else {}
    if case.method == "PUT" and body.get("labels") is None:
        return True
    return (case.path_parameters or {}).get("pid") == 1


@schemathesis.hook("map_body").apply_to(method="POST", path="/api/projects/{pid}/review/queues/{name}/entries")
def entries_of_seeded_items(ctx, body):
    """Any unknown id refuses the whole request (400, nothing added), a rule about the
    project's items: the ids become seeded items 1..20 (external ids s1..s20), same counts."""
    if isinstance(body, dict):
        body = dict(body)
        if isinstance(body.get("item_ids"), list):
            # JSON Schema's integers include 1238.0.
            body["item_ids"] = [1 + int(abs(i)) % 20 if isinstance(i, (int, float)) else i for i in body["item_ids"]]
        if isinstance(body.get("external_ids"), list):
            body["external_ids"] = [f"s{1 + n % 20}" for n in range(len(body["external_ids"]))]
    return body


@schemathesis.hook("filter_query").apply_to(method="GET", path="/api/projects/{pid}/agreement/items")
def exactly_one_drill_down_filter(ctx, query):
    """Exactly one of pair, labels, label, slice (400 otherwise): JSON Schema cannot say
    "exactly one of these parameters"."""
    return sum(1 for k in ("pair", "labels", "label", "slice") if k in (query or {})) == 1


@schemathesis.hook("map_query").apply_to(method="GET", path_regex=r"^/api/projects/\{pid\}/review/queues")
def pair_of_existing_users(ctx, query):
    """A review filter's pair must name two users (400 otherwise, a rule about the accounts):
    a given pair becomes the run's two users."""
    if isinstance(query, dict) and str(query.get("pair", "")).strip():
        query = {**query, "pair": "admin,fuzzer"}
    return query


@schemathesis.hook("map_query").apply_to(method="GET", path="/api/projects/{pid}/agreement/slices")
def attribute_of_the_seeded_items(ctx, query):
    """Slices exist for the labeled items' meta attributes with at most 50 values (400
    otherwise, naming them): the seeded items have one, region."""
    if isinstance(query, dict):
        query = {**query, "attr": "region"}
    return query


@schemathesis.hook("filter_query").apply_to(method="POST", path="/api/projects/{pid}/import")
def no_generated_zip(ctx, query):
    """A generated body is never a zip archive, which format=zip needs (400, "not a readable zip
    file", pinned by tests/api/import_errors.rs): zip imports are covered by the API tests."""
    return not (isinstance(query, dict) and query.get("format") == "zip")


# ---- pre-labels (issue 10) ----

@schemathesis.hook("filter_case").apply_to(method="PUT", path="/api/projects/{pid}/prelabels/auto-accept")
def auto_accept_only_turned_off(ctx, case):
    """Turning auto-accept on needs an audited threshold for the label set (the operation's
    description: refused with 422 otherwise), and the fuzzer decides no audits; so it only
    turns auto-accept off. Found when a run reached source 1 with `enabled: true` (ST202).
    And for the whole source: a named label set the source never predicted is refused (422, a
    rule about the source's pre-labels), found when a run created source 1 and sent `labels: []`."""
    body = case.body if isinstance(case.body, dict) else {}
    return body.get("enabled") is not True and body.get("labels") is None
