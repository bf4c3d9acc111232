#!/usr/bin/env bash
# The API contract checked from outside: starts a fresh `mirrorset serve` (SQLite, temporary
# data directory, 127.0.0.1 only), creates an admin API token and a seeded project (items with
# the ids the document's examples name), and runs schemathesis (pinned below) against
# /api/openapi.json in positive mode with these checks:
#   not_a_server_error, status_code_conformance, content_type_conformance,
#   response_headers_conformance, response_schema_conformance, positive_data_acceptance
# i.e. 0 server errors, 0 responses outside the document, and 0 requests the document allows
# that the server rejects (400/413/422...; 401/403/404/409/429 are answers about state, not
# about the request's shape). Rules the document states in prose but JSON Schema cannot
# (unique label names, an item leased to the caller, ...) are kept by scripts/schemathesis_hooks.py.
#
# The tool lives in .venv (installed once, then reused) from the wheels in
# .tools/schemathesis-wheels (downloaded once from PyPI; offline runs install from them).
#
# Environment: MIRRORSET_BIN (default target/debug/mirrorset), SCHEMATHESIS_MAX_EXAMPLES (per
# operation and phase, default 40), SCHEMATHESIS_SEED (default 1: the same cases every run;
# change it to explore), SCHEMATHESIS_ARGS (extra arguments).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VERSION=4.32.5
VENV="$ROOT/.venv"
WHEELS="$ROOT/.tools/schemathesis-wheels"
T0=$SECONDS

if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q " $VERSION\$"; then
    echo "[schemathesis] installing schemathesis $VERSION into $VENV" >&2
    # --clear: a venv left broken (its checkout moved, its Python gone) is rebuilt, not reused.
    python3 -m venv --clear "$VENV"
    mkdir -p "$WHEELS"
    # Download only what is missing; with every wheel present this works offline.
    if ! "$VENV/bin/pip" install -q --no-index --find-links "$WHEELS" "schemathesis==$VERSION" 2>/dev/null; then
        "$VENV/bin/pip" download -q -d "$WHEELS" "schemathesis==$VERSION"
        "$VENV/bin/pip" install -q --no-index --find-links "$WHEELS" "schemathesis==$VERSION"
    fi
fi

BIN="${MIRRORSET_BIN:-$ROOT/target/debug/mirrorset}"
[[ -x "$BIN" ]] || { echo "[schemathesis] no server binary at $BIN (cargo build -p server --no-default-features)" >&2; exit 1; }
DIR="$(mktemp -d /tmp/mirrorset-schemathesis.XXXXXX)"
DB="sqlite://$DIR/mirrorset.db"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
SERVER_PID=""
cleanup() {
    local rc=$?
    if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    if ((rc != 0)); then echo "[schemathesis] server log (last 40 lines):" >&2; tail -n 40 "$DIR/server.log" >&2 || true; fi
    if [[ -n "${SCHEMATHESIS_KEEP:-}" ]]; then echo "[schemathesis] kept $DIR" >&2; else rm -rf "$DIR"; fi
    echo "[schemathesis] $((SECONDS - T0)) s" >&2
    exit "$rc"
}
trap cleanup EXIT

MIRRORSET_ADMIN_PASSWORD="admin-$RANDOM$RANDOM-password" "$BIN" serve --data-dir "$DIR/data" --database-url "$DB" \
    --addr "127.0.0.1:$PORT" --site-root "$ROOT/target/site" >"$DIR/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 150); do
    curl -fsS "$BASE/api/health" >/dev/null 2>&1 && break
    sleep 0.2
done
curl -fsS "$BASE/api/health" >/dev/null
# The fuzzer is an admin of its own (user 2), with token 3: generated ids 1 (the first admin and
# its tokens 1 and 2) can be disabled, demoted or revoked without locking the run out. The
# hooks keep the fuzzing phase off the fuzzer's own user and token.
MIRRORSET_USER_PASSWORD="fuzzer-password-$RANDOM$RANDOM" "$BIN" user add --username fuzzer --role admin \
    --data-dir "$DIR/data" --database-url "$DB" >/dev/null
for name in first second; do
    "$BIN" token create --username admin --name "$name" --data-dir "$DIR/data" --database-url "$DB" >/dev/null 2>&1
done
TOKEN="$("$BIN" token create --username fuzzer --name schemathesis --data-dir "$DIR/data" --database-url "$DB" 2>/dev/null)"
api() { curl -fsS -H "Authorization: Bearer $TOKEN" "$@"; }
# Project 1 with items 1..20, the ids the document's examples use, so generated requests reach
# items, leases and annotations rather than only 404s.
api -X POST -H 'content-type: application/json' "$BASE/api/projects" \
    -d '{"name":"seeded","kind":"single","labels":[{"name":"pos","key":"p","color":"#22aa22"},{"name":"neg","key":"n","color":"#aa2222"}],"overlap":3}' >/dev/null
python3 -c 'import json; print("\n".join(json.dumps({"id": f"s{i}", "text": f"seeded item {i}", "meta": {"region": "eu"}}) for i in range(1, 21)))' |
    api -X POST -H 'content-type: application/x-ndjson' --data-binary @- "$BASE/api/projects/1/import?format=jsonl" >/dev/null

export MIRRORSET_FUZZ_USER_ID=2 MIRRORSET_FUZZ_TOKEN_ID=3 SCHEMATHESIS_HOOKS=schemathesis_hooks
export PYTHONPATH="$ROOT/scripts${PYTHONPATH:+:$PYTHONPATH}"
# shellcheck disable=SC2086
"$VENV/bin/schemathesis" --config-file "$ROOT/scripts/schemathesis.toml" run "$BASE/api/openapi.json" \
    --url "$BASE" \
    -H "Authorization: Bearer $TOKEN" \
    --mode positive \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,positive_data_acceptance \
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-40}" \
    --seed "${SCHEMATHESIS_SEED:-1}" \
    --workers 1 \
    --continue-on-failure \
    --suppress-health-check filter_too_much,too_slow \
    --report junit --report-dir "$DIR/report" \
    ${SCHEMATHESIS_ARGS:-}
