#!/usr/bin/env bash
# Builds Mirrorset (release) and runs it on http://127.0.0.1:3000, with its SQLite database and
# files in ./data. Installs what is missing first (see scripts/install-toolchain.sh); a second
# run skips every install and rebuilds only what changed.
#
#   scripts/run.sh              # start (the first start creates `admin` and prints its password)
#   scripts/run.sh --demo       # extra arguments go to `mirrorset serve`
#   MIRRORSET_ADMIN_PASSWORD=... scripts/run.sh   # choose admin's password on the first start
#   MIRRORSET_ADDR=0.0.0.0:8080 scripts/run.sh    # another address
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# shellcheck source=scripts/install-toolchain.sh
source "$ROOT/scripts/install-toolchain.sh" --build

# The site's build re-runs wasm-bindgen and wasm-opt every time (~30 s) even when nothing
# changed, so remember what was built: the sources (tracked and untracked, not ignored), the
# tool versions, and the built site and binary themselves (a debug scripts/build-site.sh writes
# the same target/site). Outside a git checkout it always builds.
build_stamp() {
    git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1 || return 1
    [[ -x "$ROOT/target/release/mirrorset" && -d "$ROOT/target/site/pkg" ]] || return 1
    {
        git -C "$ROOT" ls-files -z --cached --others --exclude-standard |
            (cd "$ROOT" && xargs -0 sha1sum 2>/dev/null)
        wasm-bindgen --version
        wasm-opt --version
        find "$ROOT/target/site" -type f -print0 | sort -z | xargs -0 sha1sum
        stat -c '%Y %s' "$ROOT/target/release/mirrorset"
    } | sha1sum | cut -d' ' -f1
}
STAMP_FILE="$ROOT/target/release/.run-sh-stamp"
if [[ -f "$STAMP_FILE" && "$(build_stamp || true)" == "$(cat "$STAMP_FILE")" ]]; then
    echo "[run] nothing changed since the last build; not rebuilding" >&2
else
    echo "[run] building the release site and server" >&2
    # Side by side (the site's wasm build has its own target directory): on 2 cores each fills
    # the other's single-threaded stretches.
    bash "$ROOT/scripts/build-site.sh" --release &
    site_build=$!
    trap 'kill "$site_build" 2>/dev/null || true' EXIT
    cargo build --release -p server --no-default-features --bin mirrorset
    wait "$site_build"
    trap - EXIT
    build_stamp >"$STAMP_FILE" 2>/dev/null || rm -f "$STAMP_FILE"
fi

DATA_DIR="$ROOT/data"
mkdir -p "$DATA_DIR"
ADDR="${MIRRORSET_ADDR:-127.0.0.1:3000}"
echo "[run] serving on http://$ADDR (data in $DATA_DIR; Ctrl-C stops)" >&2
exec "$ROOT/target/release/mirrorset" serve \
    --addr "$ADDR" \
    --database-url "sqlite://$DATA_DIR/mirrorset.db" \
    --data-dir "$DATA_DIR" \
    --site-root "$ROOT/target/site" \
    "$@"
