#!/usr/bin/env bash
# Vote ingest, listwire beside the row-per-vote design, in one run on this machine:
#
#   ./ops/vote-ingest.sh [SECONDS] [RATE] [CONNECTIONS] [ITEMS]
#
# 1. PostgreSQL's own pgbench with the seed design (ops/pgbench-votes.sh: one row per
#    (poll, user), each vote an `INSERT … ON CONFLICT DO NOTHING` transaction, synchronous
#    commit), 32 clients for SECONDS (default 10), against a throwaway server with fsync and
#    full_page_writes on, as in production (ops/with-postgres.sh installs and starts it).
# 2. `listwire-bench hot-poll --ws` on one listwire node (embedded store, fsync per group
#    commit): CONNECTIONS WebSockets (default 4000), each one user following the poll's tally
#    and voting once on each of ITEMS items (default 100), offered at RATE votes/s (default
#    100000); the bench checks the final tally vote by vote.
#
# Prints both figures and their ratio. Release builds; the first run compiles them.
set -euo pipefail

seconds=${1:-10}
rate=${2:-100000}
connections=${3:-4000}
items=${4:-100}
case "$seconds$rate$connections$items" in
    *[!0-9]*) echo "usage: ops/vote-ingest.sh [SECONDS] [RATE] [CONNECTIONS] [ITEMS]" >&2; exit 2 ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${LISTWIRE_POSTGRES_URL:-}" ]; then
    LISTWIRE_PG_FSYNC=on exec "$root/ops/with-postgres.sh" "$0" "$@"
fi
cd "$root"
cargo build --release --locked -q -p listwire -p listwire-simulations --bins

pg=$(ops/pgbench-votes.sh "$seconds" 32 | tee /dev/stderr | sed -n 's/^pgbench votes: \([0-9,]*\) votes\/s.*/\1/p' | tr -d ,)
[ -n "$pg" ] || { echo "vote-ingest: pgbench printed no figure" >&2; exit 1; }

echo "==> listwire: $connections connections x $items items at $rate votes/s" >&2
result=$(target/release/listwire-bench hot-poll --ws --connections "$connections" \
    --items "$items" --rate "$rate" --watchers 0)
python3 - "$pg" "$result" <<'PY'
import json, sys
pg = float(sys.argv[1])
results = json.loads(sys.argv[2])["results"]
votes = results["votes_per_sec"]
ack, lag = results["ack_latency"], results["tally_lag"]
def ms(summary, key):
    return f"{summary.get(key, float('nan')):.1f}"
print(f"pgbench (row per vote, fsync on): {pg:,.0f} votes/s")
print(f"listwire (WebSocket votes, one node): {votes:,.0f} votes/s; "
      f"ack p50/p99/p999 {ms(ack, 'p50_ms')}/{ms(ack, 'p99_ms')}/{ms(ack, 'p999_ms')} ms; "
      f"tally on screen p50/p99/p999 {ms(lag, 'p50_ms')}/{ms(lag, 'p99_ms')}/{ms(lag, 'p999_ms')} ms; "
      f"tally exact: {results['tally_exact']}")
print(f"ratio: {votes / pg:.2f}x")
sys.exit(0 if results["tally_exact"] else 1)
PY
