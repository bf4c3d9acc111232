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

echo "[run] cargo leptos build --release" >&2
cargo leptos build --release

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
