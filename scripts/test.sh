#!/usr/bin/env bash
# Runs every test: natively on Burn's CPU device, the fuzzers, then in headless Chromium on real
# WebGPU (SwiftShader when the machine has no GPU), then the app as users get it, driven like a
# user in Chromium and in Firefox. Installs what is missing first, and ends with where the time
# went.
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
# Chromium leaves a ~75 MB profile in $TMPDIR for every browser it starts; keep them in one
# folder that goes when the run ends.
browser_tmp=$(mktemp -d)
dist=$(mktemp -d)
server=""
tools=""
tools_log=$(mktemp)

# Each stage's wall-clock time, for the table at the end (BENCHMARKS.md keeps one).
stages=()
stage_name=""
stage_start=$(date +%s)
run_start=$stage_start
stage() {
  local now; now=$(date +%s)
  [ -n "$stage_name" ] && stages+=("$(printf '%-52s %3d:%02d' "$stage_name" $(((now - stage_start) / 60)) $(((now - stage_start) % 60)))")
  stage_name="$1"
  stage_start=$now
  [ -z "$1" ] || echo "== $1"
}
# The table comes at the end of a failed run too: it says where it stopped.
finish() {
  stage ""
  echo "== where the time went"
  printf '%s\n' "${stages[@]}"
  local now; now=$(date +%s)
  printf '%-52s %3d:%02d\n' "all" $(((now - run_start) / 60)) $(((now - run_start) % 60))
  [ -n "$tools" ] && kill "$tools" 2>/dev/null
  rm -f "$log" "$tools_log"; rm -rf "$dist" "$browser_tmp"; [ -n "$server" ] && kill "$server" 2>/dev/null || true
}
trap finish EXIT

stage "setup (scripts/setup.sh --base: what is missing)"
scripts/setup.sh --base
# The tools compiled with cargo install (trunk, wasm-bindgen, wasm-pack, geckodriver: about ten
# minutes on a fresh 2-core machine) compile in the background while the native tests and the
# wasm build, which need none of them, go on: a compile leaves a core idle much of the time.
scripts/setup.sh --tools >"$tools_log" 2>&1 &
tools=$!

stage "native build (cargo test --no-run)"
cargo test --locked --no-run 2>&1 | tail -n 1
stage "native tests (cargo test)"
cargo test --locked 2>&1 | tee -a "$log"

stage "fuzz (the IDX and weights-file readers, 60 s each)"
scripts/fuzz.sh 60 2>&1 | tee -a "$log"

# The browser tests are built with the profile the app ships with (`web`: optimised, LTO): the
# same dependencies as `trunk build --release` below, and the same app binary, so the wasm is
# compiled once, not once for the tests (debug) and again for the app. Debug assertions and
# overflow checks run natively above.
wasm_profile=(--locked --profile web)
stage "browser tests' build (cargo build --tests --profile web, wasm32)"
cargo build --tests "${wasm_profile[@]}" --target wasm32-unknown-unknown 2>&1 | tail -n 1
stage "waiting for the tools (scripts/setup.sh --tools)"
if ! wait "$tools"; then
  tools=""
  cat "$tools_log"
  echo "test: installing the tools failed" >&2
  exit 1
fi
tools=""
tail -n 1 "$tools_log"
stage "browser tests (wasm-pack test --headless --chrome)"
# The limit is for the whole suite, not one test: 13 tests on SwiftShader took about 600 s in
# CI (a 96×96 run on WebGPU alone takes minutes), and 600 s cut the last one off.
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-1500}"
TMPDIR="$browser_tmp" wasm-pack test --headless --chrome -- "${wasm_profile[@]}" 2>&1 | tee -a "$log"

stage "app build (trunk build --release)"
trunk build --release --dist "$dist" 2>&1 | tail -n 3
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$dist" >/dev/null 2>&1 &
server=$!

stage "end to end in Chromium (the app as users get it)"
# Screenshots of every stage land in screenshots/e2e for a person to look at. Both sessions run
# on the selenium in .venv (scripts/setup.sh).
TMPDIR="$browser_tmp" .venv/bin/python tests/e2e/session.py "http://127.0.0.1:$port/" --out screenshots/e2e 2>&1 | tee -a "$log"
grep -q '^PASS: e2e session' "$log" && echo "test result: ok. 1 passed; 0 failed (end to end)" | tee -a "$log"
stage "end to end in Firefox (no WebGPU there: the CPU)"
TMPDIR="$browser_tmp" .venv/bin/python tests/e2e/firefox.py "http://127.0.0.1:$port/" --out screenshots/e2e-firefox 2>&1 | tee -a "$log"
grep -q '^PASS: e2e firefox session' "$log" && echo "test result: ok. 1 passed; 0 failed (firefox)" | tee -a "$log"
# One closing line for all runners together (the table of times follows it).
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "all: %d passed, %d failed\n", passed, failed }' "$log"
