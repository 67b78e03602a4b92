#!/usr/bin/env bash
# Makes sure `iptables` is installed (the real-process chaos runner partitions nodes by packet
# filtering on their loopback addresses), installing Debian's package when it is missing, as
# ops/with-postgres.sh does for PostgreSQL (needs root). Prints the path of the binary.
#
#   ops/ensure-iptables.sh            # exit 0 and the path, or exit 1 saying why not
#
# It only installs: whether filtering works here (netfilter in the kernel, the right to change
# rules) is checked by the runner itself, which then says why it runs without partitions.
set -euo pipefail

found() {
    for name in iptables iptables-nft iptables-legacy; do
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
    echo "iptables is not installed and installing it needs root" >&2
    exit 1
fi
echo "==> installing iptables from the distribution's packages" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends iptables >/dev/null
if ! found; then
    echo "installed iptables, but found no iptables binary" >&2
    exit 1
fi
