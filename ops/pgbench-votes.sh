#!/usr/bin/env bash
# The vote ingest of the design listwire is compared with, measured by PostgreSQL's own
# pgbench: one row per (poll, user), each vote one `INSERT … ON CONFLICT DO NOTHING`
# transaction with synchronous_commit on, from many clients at once. Put its figure beside
# `listwire-bench hot-poll`'s, measured on the same machine the same day (BENCHMARKS.md).
#
#   LISTWIRE_PG_FSYNC=on ./ops/with-postgres.sh ops/pgbench-votes.sh [SECONDS] [CLIENTS]
#
# SECONDS (default 10) of load from CLIENTS connections (default 32) over 2 pgbench threads,
# against LISTWIRE_POSTGRES_URL (with-postgres.sh starts a throwaway server and sets it;
# LISTWIRE_PG_FSYNC=on gives that server fsync and full_page_writes, as in production). Prints
# the server's durability settings, votes per second and the latency p50/p99/p999 of every
# transaction, from pgbench's per-transaction log. The table lives in a schema of its own,
# dropped at the end.
set -euo pipefail

seconds=${1:-10}
clients=${2:-32}
url=${LISTWIRE_POSTGRES_URL:?set LISTWIRE_POSTGRES_URL, or run under ops/with-postgres.sh}
case "$seconds$clients" in
    *[!0-9]*) echo "usage: ops/pgbench-votes.sh [SECONDS] [CLIENTS]" >&2; exit 2 ;;
esac

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
pgbench=$(command -v pgbench || echo "$bin/pgbench")
psql=$(command -v psql || echo "$bin/psql")
[ -x "$pgbench" ] || { echo "pgbench not found (Debian's postgresql package has it)" >&2; exit 1; }

schema="pgbench_votes_$$"
work=$(mktemp -d "${TMPDIR:-/tmp}/pgbench-votes.XXXXXX")
cleanup() {
    "$psql" "$url" -qAtc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

"$psql" "$url" -qAt -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE SCHEMA $schema;
CREATE TABLE $schema.votes (
    poll_id  bigint      NOT NULL,
    user_id  bigint      NOT NULL,
    item_id  int         NOT NULL,
    voted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (poll_id, user_id)
);
SQL

cat >"$work/vote.sql" <<SQL
\set user random(1, 1000000000)
\set item random(1, 10)
INSERT INTO $schema.votes (poll_id, user_id, item_id) VALUES (1, :user, :item) ON CONFLICT DO NOTHING;
SQL

settings=$("$psql" "$url" -qAt -c "SELECT 'fsync=' || current_setting('fsync') || ', synchronous_commit=' || current_setting('synchronous_commit') || ', full_page_writes=' || current_setting('full_page_writes')")
echo "==> pgbench votes: $clients clients for $seconds s; server: $settings"

(cd "$work" && "$pgbench" "$url" -n -M prepared -c "$clients" -j 2 -T "$seconds" \
    -f vote.sql -l --log-prefix=tx) >"$work/out" 2>&1 || { cat "$work/out" >&2; exit 1; }

tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' "$work/out")
rows=$("$psql" "$url" -qAt -c "SELECT count(*) FROM $schema.votes")
# Each log line: client, transaction number, latency in µs, script, epoch s, epoch µs.
python3 - "$work" "$tps" "$rows" <<'PY'
import glob, sys
work, tps, rows = sys.argv[1], sys.argv[2], sys.argv[3]
latencies = sorted(int(line.split()[2]) for path in glob.glob(f"{work}/tx.*")
                   for line in open(path) if line.strip())
if not latencies or not tps:
    sys.exit("pgbench produced no transactions")
def at(q):
    return latencies[min(len(latencies) - 1, int(q * len(latencies)))] / 1000.0
print(f"pgbench votes: {float(tps):,.0f} votes/s (one row per vote, INSERT ... ON CONFLICT DO NOTHING, "
      f"synchronous commit); latency p50 {at(0.5):.2f} ms, p99 {at(0.99):.2f} ms, "
      f"p999 {at(0.999):.2f} ms (n={len(latencies)}); {rows} rows stored")
PY
