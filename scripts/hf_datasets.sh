#!/usr/bin/env bash
# Issue 9: a release's Hugging Face folder loads with the Python `datasets` package. Installs
# the pinned environment (scripts/hf_datasets_requirements.txt: datasets 5.2.0 and every
# package it pulls in, exact versions) into .venv-datasets, from the wheels in
# .tools/datasets-wheels (downloaded once from PyPI, ~90 MB; offline runs install from them),
# then runs the release API test (both backends) with MIRRORSET_DATASETS_PYTHON set: the test
# exports a release, unpacks it and runs scripts/hf_datasets_check.py on the folder
# (`datasets.load_dataset(folder)`), checking the splits, their sizes and the ClassLabel names.
# A fresh install took 19 s here; afterwards the step is the test's few seconds.
#
# Needs MIRRORSET_TEST_PG_URL (scripts/test.sh exports it) and a built test binary (it runs
# after `cargo test --workspace` there, with the same features, so nothing is rebuilt).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv-datasets"
WHEELS="$ROOT/.tools/datasets-wheels"
REQS="$ROOT/scripts/hf_datasets_requirements.txt"
T0=$SECONDS

# Reinstalled when the pins change: the venv remembers the requirements it was built from.
if ! cmp -s "$REQS" "$VENV/.requirements" 2>/dev/null || ! "$VENV/bin/python" -c 'import datasets' 2>/dev/null; then
    echo "[hf-datasets] installing the pinned datasets environment into $VENV" >&2
    # --clear: a venv left broken (its checkout moved, its Python gone) is rebuilt, not reused.
    python3 -m venv --clear "$VENV"
    mkdir -p "$WHEELS"
    # Download only what is missing; with every wheel present this works offline.
    if ! "$VENV/bin/pip" install -q --no-index --find-links "$WHEELS" -r "$REQS" 2>/dev/null; then
        "$VENV/bin/pip" download -q -d "$WHEELS" -r "$REQS"
        "$VENV/bin/pip" install -q --no-index --find-links "$WHEELS" -r "$REQS"
    fi
    cp "$REQS" "$VENV/.requirements"
fi

export MIRRORSET_DATASETS_PYTHON="$VENV/bin/python"
# HF_HUB_OFFLINE: load_dataset reads the local folder; it must never reach for the Hub.
HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HOME="$(mktemp -d /tmp/mirrorset-hf.XXXXXX)" \
    cargo test -p server --no-default-features --test api release_freeze_diff_exports_and_leakage
echo "[hf-datasets] $((SECONDS - T0)) s" >&2
