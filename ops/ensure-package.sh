#!/usr/bin/env bash
# Makes sure a program from Debian's packages is installed, installing the package when it is
# missing (needs root, as in CI), and prints the path of the first of its binaries found.
#
#   ops/ensure-package.sh PACKAGE BINARY [BINARY...] [-- EXTRA_PACKAGE...]
#
# Used by ops/ensure-chromium.sh, ops/ensure-iptables.sh and ops/check-ops.sh (promtool from
# `prometheus`, `docker-compose`). Only the binaries are wanted: a service the package would
# start on install (the prometheus server) is not started. Without a /usr/sbin/policy-rc.d of
# its own, the machine gets one that refuses every start (invoke-rc.d and deb-systemd-invoke
# ask it) for the time of the install.
set -euo pipefail

package="$1"
shift
binaries=()
extra=()
while [ $# -gt 0 ]; do
    if [ "$1" = "--" ]; then
        shift
        extra=("$@")
        break
    fi
    binaries+=("$1")
    shift
done

found() {
    for name in "${binaries[@]}"; do
        if command -v "$name" >/dev/null 2>&1; then
            command -v "$name"
            return 0
        fi
    done
    return 1
}

if found; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "$package is not installed and installing it needs root" >&2
    exit 1
fi
echo "==> installing $package from the distribution's packages" >&2
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    trap 'rm -f "$policy"' EXIT
    printf '#!/bin/sh\n# ops/ensure-package.sh: no service starts while it installs.\nexit 101\n' >"$policy"
    chmod 755 "$policy"
fi
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "$package" "${extra[@]}" >/dev/null
if ! found; then
    echo "installed $package, but found none of ${binaries[*]}" >&2
    exit 1
fi
