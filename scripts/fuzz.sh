#!/usr/bin/env bash
# Fuzzes the IDX reader and the weights-file reader with libFuzzer (cargo-fuzz, fuzz/).
#   scripts/fuzz.sh                 60 s per target (what the README's test command runs)
#   scripts/fuzz.sh 600             600 s per target
#   scripts/fuzz.sh --runs 10000000 ten million executions per target
# Each target starts from its seeds in fuzz/seeds/ and grows a corpus in fuzz/corpus/ (not
# committed). A crash stops the run with the input in fuzz/artifacts/ and a non-zero exit.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
if [ "${1:-}" = "--runs" ]; then limit="-runs=${2:?how many executions}"; else limit="-max_total_time=${1:-60}"; fi
# cargo-fuzz passes nightly-only flags (the address sanitizer); the stable compiler takes them
# with RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1
target_dir="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"
# cargo-fuzz comes from PyPI into the project's .venv (scripts/setup.sh) where it is not installed.
export PATH="$PWD/../.venv/bin:$PATH"
targets=(idx weights)
cargo fuzz build -O --target-dir "$target_dir" 2>&1 | tail -n 1
# libFuzzer runs on one core: the targets fuzz side by side, each for the whole time.
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  dict=(); [ -f "$target.dict" ] && dict=("-dict=$target.dict")
  cargo fuzz run -O --target-dir "$target_dir" "$target" "corpus/$target" "seeds/$target" -- \
    -max_len=4096 "$limit" -print_final_stats=1 "${dict[@]}" >"$out/$target" 2>&1 &
done
wait
for target in "${targets[@]}"; do
  echo "fuzz: $target ($limit)"
  grep -E "^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|^Done|ERROR|panicked|SUMMARY" "$out/$target" || true
  # A crash leaves an artifact (the exit status of a background job is not kept).
  if compgen -G "artifacts/$target/*" >/dev/null; then
    echo "fuzz: $target crashed; inputs in fuzz/artifacts/$target" >&2
    exit 1
  fi
done
echo "test result: ok. 2 passed; 0 failed (fuzz targets, no crash)"
