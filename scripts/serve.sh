#!/usr/bin/env bash
# Serves the app on http://127.0.0.1:8080 (extra arguments go to trunk, e.g. --release).
# Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec trunk serve "$@"
