#!/usr/bin/env bash
# The long fuzzing run (not in CI): the property-based harness of tests/fuzz/main.rs (import
# records, JSON request bodies) with 1,000,000 generated inputs per property, in a release
# build. CI runs the same properties with 2,000 inputs each (`cargo test --workspace`).
# Environment: PROPTEST_CASES (default 1000000).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
T0=$SECONDS
PROPTEST_CASES="${PROPTEST_CASES:-1000000}" cargo test --release -p server --no-default-features --test fuzz -- --nocapture "$@"
echo "[fuzz-long] ${PROPTEST_CASES:-1000000} cases per property: $((SECONDS - T0)) s" >&2
