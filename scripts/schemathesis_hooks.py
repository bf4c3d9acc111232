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
    return body


@schemathesis.hook("filter_case").apply_to(method="PATCH", path="/api/projects/{pid}")
def keep_the_seeded_projects_labels(ctx, case):
    """Project 1's labels (pos, neg) are what `labels_of_the_seeded_project` submits."""
    body = case.body if isinstance(case.body, dict) else {}
    return not ((case.path_parameters or {}).get("pid") == 1 and "labels" in body)
