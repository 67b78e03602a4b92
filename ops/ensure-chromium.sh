#!/usr/bin/env bash
# Makes sure Debian's `chromium` is installed (the web client's end-to-end tests drive it headless
# through playwright-core), installing the distribution's package when it is missing, as
# ops/ensure-iptables.sh does for iptables (needs root). Prints the path of the binary.
#
#   ops/ensure-chromium.sh            # exit 0 and the path, or exit 1 saying why not
#
# Playwright's own browser download is never used: it fetches a browser build from outside the
# package registries, which CI cannot reach.
set -euo pipefail

found() {
    for path in /usr/bin/chromium /usr/bin/chromium-browser; do
        if [ -x "$path" ]; then
            echo "$path"
            return 0
        fi
    done
    return 1
}

if found; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "chromium is not installed and installing it needs root" >&2
    exit 1
fi
echo "==> installing chromium from the distribution's packages" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
if ! found; then
    echo "installed chromium, but found no chromium binary" >&2
    exit 1
fi
