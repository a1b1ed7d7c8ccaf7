#!/usr/bin/env bash
# Runs every test: natively on Burn's CPU device, then in headless Chromium on real WebGPU
# (SwiftShader when the machine has no GPU). Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --for-tests

log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "== native tests (cargo test)"
cargo test --locked 2>&1 | tee -a "$log"

echo "== browser tests (wasm-pack test --headless --chrome)"
# SwiftShader compiles shaders for seconds on the first step; the default 20 s is too short.
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-600}"
wasm-pack test --headless --chrome -- --locked 2>&1 | tee -a "$log"

# One closing line for both runners together.
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "all: %d passed, %d failed\n", passed, failed }' "$log"
