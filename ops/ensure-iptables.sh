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

exec "$(dirname "$0")/ensure-package.sh" iptables iptables iptables-nft iptables-legacy
