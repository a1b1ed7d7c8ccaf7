#!/usr/bin/env bash
# Installs everything the app, its tests and its benchmarks need. Idempotent: each step is
# skipped when its tool is already there at the right version. Nothing is downloaded at build time.
#   scripts/setup.sh              everything (the tests build the app with trunk too)
#   scripts/setup.sh --serve      only what serving the app needs: the wasm target, trunk and
#                                 wasm-bindgen (what scripts/serve.sh runs)
#   scripts/setup.sh --base       everything but the tools compiled with cargo install (a minute)
#   scripts/setup.sh --tools      only those: trunk, wasm-bindgen, wasm-pack, geckodriver
# scripts/test.sh runs --base, then --tools in the background while the native tests build
# and run: the tools take about ten minutes to compile on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-all}"
case "$mode" in all | --serve | --base | --tools) ;; *) echo "setup: unknown option $mode" >&2; exit 2 ;; esac
part() { # part NAME: whether this run installs that part
  case "$1" in
    base) [ "$mode" = all ] || [ "$mode" = --base ] ;;
    target) [ "$mode" != --tools ] ;;
    serve-tools) [ "$mode" = all ] || [ "$mode" = --serve ] || [ "$mode" = --tools ] ;;
    test-tools) [ "$mode" = all ] || [ "$mode" = --tools ] ;;
  esac
}

TRUNK_VERSION=0.21.14
# wasm-bindgen-cli must match the wasm-bindgen crate in Cargo.lock exactly.
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/"/,"",$3); print $3; exit}' Cargo.lock)

need_apt=()
if part base; then
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
command -v firefox-esr >/dev/null || need_apt+=(firefox-esr)
command -v python3 >/dev/null && python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need_apt+=(dataset-fashion-mnist)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "setup: install these Debian packages' equivalents by hand: ${need_apt[*]}" >&2
    exit 1
  fi
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

if part target; then
  rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
fi

has_version() { command -v "$1" >/dev/null && "$1" --version 2>/dev/null | grep -q " $2\$\| $2 "; }
# The tools are compiled here (no registry this project reaches ships their binaries). Their own
# release profiles ask for fat LTO and one codegen unit (trunk: 9 of the 15 minutes of installs
# on a fresh 2-core machine); tools need no such speed: no LTO, and one shared target directory
# so that their common dependencies compile once. trunk, wasm-pack and geckodriver only start
# and wait on other programs: opt-level 0 (half the compile of opt-level 1). wasm-bindgen
# rewrites the 12 MB wasm on every build: opt-level 1 (BENCHMARKS.md).
tool_install() {
  local opt_level="$1"; shift
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_OPT_LEVEL="$opt_level" \
    CARGO_PROFILE_RELEASE_DEBUG=false CARGO_INCREMENTAL=0 \
    CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/tools" cargo install "$@"
}
if part serve-tools; then
  # trunk serves and builds offline (Trunk.toml): no TLS and no update check.
  has_version trunk "$TRUNK_VERSION" || tool_install 0 --locked trunk --version "$TRUNK_VERSION" --no-default-features
  # Without --locked: one of its locked dependencies is missing from the registry mirror. Its
  # test runner talks to chromedriver on 127.0.0.1 only: no TLS.
  has_version wasm-bindgen "$WASM_BINDGEN_VERSION" ||
    tool_install 1 wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --no-default-features --force
fi
if part test-tools; then
  has_version wasm-pack 0.15.1 || tool_install 0 --locked wasm-pack --version 0.15.1
  # The end-to-end session in Firefox drives it through geckodriver.
  has_version geckodriver 0.37.1 || tool_install 0 --locked geckodriver --version 0.37.1
fi
if part base; then
  # The end-to-end sessions drive Chromium through chromedriver and Firefox through geckodriver,
  # both with selenium, from a virtualenv in .venv (explicit driver paths: Selenium Manager
  # never downloads anything).
  SELENIUM_VERSION=$(sed -n 's/^selenium==//p' tests/e2e/requirements.txt)
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/python -c "import selenium, sys; sys.exit(selenium.__version__ != '$SELENIUM_VERSION')" 2>/dev/null ||
    .venv/bin/pip install -q --disable-pip-version-check -r tests/e2e/requirements.txt
  # The fuzz targets (fuzz/) build with cargo-fuzz on the stable toolchain (RUSTC_BOOTSTRAP=1
  # lets it pass the sanitizer flags); it needs a C++ compiler for libFuzzer. PyPI ships
  # cargo-fuzz built (Astral's astral-dev-toolchain): into .venv, where scripts/fuzz.sh finds it.
  has_version cargo-fuzz 0.13.2 || PATH="$PWD/.venv/bin:$PATH" has_version cargo-fuzz 0.13.2 ||
    .venv/bin/pip install -q --disable-pip-version-check -r fuzz/requirements.txt
  command -v c++ >/dev/null || { echo "setup: a C++ compiler is needed for libFuzzer (apt-get install g++)" >&2; exit 1; }
fi
case "$mode" in
  --serve) echo "setup: ok for serving (trunk $TRUNK_VERSION, wasm-bindgen $WASM_BINDGEN_VERSION)" ;;
  --base) echo "setup: ok for the native tests and the fuzzers (apt packages, wasm target, selenium $SELENIUM_VERSION and cargo-fuzz 0.13.2 in .venv)" ;;
  --tools) echo "setup: tools ok (trunk $TRUNK_VERSION, wasm-bindgen $WASM_BINDGEN_VERSION, wasm-pack 0.15.1, geckodriver 0.37.1)" ;;
  *) echo "setup: ok (trunk $TRUNK_VERSION, wasm-bindgen $WASM_BINDGEN_VERSION, wasm-pack 0.15.1, geckodriver 0.37.1, selenium $SELENIUM_VERSION and cargo-fuzz 0.13.2 in .venv)" ;;
esac
