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
for target in idx weights; do
  mkdir -p "corpus/$target"
  dict=(); [ -f "$target.dict" ] && dict=("-dict=$target.dict")
  echo "fuzz: $target ($limit)"
  cargo fuzz run -O --target-dir "$target_dir" "$target" "corpus/$target" "seeds/$target" -- \
    -max_len=4096 "$limit" -print_final_stats=1 "${dict[@]}" 2>&1 |
    grep -E "^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|^Done|ERROR|panicked|SUMMARY" || true
  # grep hides the exit status: a crash leaves an artifact.
  if compgen -G "artifacts/$target/*" >/dev/null; then
    echo "fuzz: $target crashed; inputs in fuzz/artifacts/$target" >&2
    exit 1
  fi
done
echo "test result: ok. 2 passed; 0 failed (fuzz targets, no crash)"
