#!/usr/bin/env bash
# Serves the app on http://127.0.0.1:8080 (extra arguments go to trunk, e.g. --release).
# Installs what serving needs and is missing first (the wasm target, trunk, wasm-bindgen).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --serve
exec trunk serve "$@"
