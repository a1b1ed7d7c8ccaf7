#!/usr/bin/env bash
# Runs every test: natively on Burn's CPU device, then in headless Chromium on real WebGPU
# (SwiftShader when the machine has no GPU). Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

log=$(mktemp)
# Chromium leaves a ~75 MB profile in $TMPDIR for every browser it starts; keep them in one
# folder that goes when the run ends.
browser_tmp=$(mktemp -d)
trap 'rm -f "$log"; rm -rf "$browser_tmp"' EXIT

echo "== native tests (cargo test)"
cargo test --locked 2>&1 | tee -a "$log"

echo "== fuzz (the IDX and weights-file readers, 60 s each)"
scripts/fuzz.sh 60 2>&1 | tee -a "$log"

echo "== browser tests (wasm-pack test --headless --chrome)"
# The limit is for the whole suite, not one test: 13 tests on SwiftShader took about 600 s in
# CI (a 96×96 run on WebGPU alone takes minutes), and 600 s cut the last one off.
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-1500}"
TMPDIR="$browser_tmp" wasm-pack test --headless --chrome -- --locked 2>&1 | tee -a "$log"

echo "== end to end (the app as users get it, trunk build --release, in headless Chromium, driven like a user)"
dist=$(mktemp -d)
trap 'rm -f "$log"; rm -rf "$dist" "$browser_tmp"; [ -n "${server:-}" ] && kill "$server" 2>/dev/null || true' EXIT
trunk build --release --dist "$dist" 2>&1 | tail -n 3
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$dist" >/dev/null 2>&1 &
server=$!
# Screenshots of every stage land in screenshots/e2e for a person to look at. Both sessions run
# on the selenium in .venv (scripts/setup.sh).
TMPDIR="$browser_tmp" .venv/bin/python tests/e2e/session.py "http://127.0.0.1:$port/" --out screenshots/e2e 2>&1 | tee -a "$log"
grep -q '^PASS: e2e session' "$log" && echo "test result: ok. 1 passed; 0 failed (end to end)" | tee -a "$log"
echo "== end to end in Firefox (firefox-esr over geckodriver: no WebGPU, the page trains on the CPU)"
TMPDIR="$browser_tmp" .venv/bin/python tests/e2e/firefox.py "http://127.0.0.1:$port/" --out screenshots/e2e-firefox 2>&1 | tee -a "$log"
grep -q '^PASS: e2e firefox session' "$log" && echo "test result: ok. 1 passed; 0 failed (firefox)" | tee -a "$log"

# One closing line for all runners together.
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "all: %d passed, %d failed\n", passed, failed }' "$log"
