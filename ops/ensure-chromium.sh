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

exec "$(dirname "$0")/ensure-package.sh" chromium /usr/bin/chromium /usr/bin/chromium-browser -- fonts-dejavu-core
