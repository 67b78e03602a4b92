#!/usr/bin/env bash
# The web client's end-to-end tests (gateway/web-tests/): real `listwire serve` and
# `listwire dev-cluster` processes and headless Chromium driven by playwright-core.
#
#   ops/web-test.sh                   # builds the binary if needed, then runs every browser test
#   LISTWIRE_BIN=path ops/web-test.sh # tests that binary instead (ops/test.sh passes its own)
#
# Needs Node.js 20 or later with npm (ops/ensure-node.sh installs it from PyPI into
# target/node-venv when missing or older; LISTWIRE_NODE_FROM_PYPI=1 forces that), the npm
# registry reachable for `npm ci`, and Debian's chromium, which ops/ensure-chromium.sh installs when missing (needs root, as in CI).
# Screenshots go to target/web-artifacts/ (LISTWIRE_WEB_ARTIFACTS to change it).
set -euo pipefail
cd "$(dirname "$0")/.."

# Node.js 20 or later: the one on PATH, or one ops/ensure-node.sh installs from PyPI.
node_bin=$(./ops/ensure-node.sh)
if [ -n "$node_bin" ]; then export PATH="$node_bin:$PATH"; fi
echo "==> node $(node --version), npm $(npm --version)"

LISTWIRE_CHROMIUM=$(./ops/ensure-chromium.sh)
export LISTWIRE_CHROMIUM
if [ -n "${LISTWIRE_BIN:-}" ] && [ -x "$LISTWIRE_BIN" ]; then
    # ops/test.sh passes the binary `cargo test --workspace` just built; building it again
    # with `-p listwire` alone would recompile crates whose features differ.
    echo "==> the browser tests start $LISTWIRE_BIN"
else
    echo "==> cargo build -p listwire (the binary the browser tests start)"
    cargo build -p listwire --locked
    export LISTWIRE_BIN="$PWD/target/debug/listwire"
fi

cd gateway/web-tests
echo "==> npm ci (gateway/web-tests)"
npm ci --no-audit --no-fund --loglevel=error
echo "==> node --test (web client in $("$LISTWIRE_CHROMIUM" --version 2>/dev/null | head -n 1))"
# The unit tests import gateway/web/*.js, ES modules with no package.json saying so: Node.js
# 20.19+ detects that by itself, older 20s (PyPI's newest 20 is 20.18) need the flag.
detect=()
if ! node -e 'const [major, minor] = process.versions.node.split(".").map(Number); process.exit(major > 20 || minor >= 19 ? 0 : 1)'; then
    detect=(--experimental-detect-module)
fi
exec node "${detect[@]}" --test --test-concurrency=1 tests/*.test.mjs
