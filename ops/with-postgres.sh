#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server and LISTWIRE_POSTGRES_URL pointing at it:
#
#   ops/with-postgres.sh cargo test -p listwire-storage --test contract_postgres
#
# The server is installed from the distribution's packages when missing (needs root, as in CI),
# gets a fresh data directory under $TMPDIR, a free port on 127.0.0.1, a private socket directory
# and trust authentication (only loopback and that directory can reach it), and is stopped and
# deleted when the command ends, whatever happens. Runs side by side with other runs, and with
# servers an earlier run may have left behind: each has its own directory and port.
# With LISTWIRE_POSTGRES_URL already set, the command runs against that server instead.
#
# Settings: fsync=off and full_page_writes=off (they protect against an operating-system crash
# or power loss, which no test causes; no test crashes PostgreSQL itself either), and
# synchronous_commit stays on, so a commit is acknowledged only once its WAL is written, as in
# production. max_connections=300: tests run in parallel, each with its own small pool.
# LISTWIRE_PG_FSYNC=on turns fsync and full_page_writes on, as a production server has them:
# for benchmarks (ops/pgbench-votes.sh, listwire-bench on PostgreSQL), where durability costs.
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: ops/with-postgres.sh COMMAND [ARGS...]" >&2
    exit 2
fi
if [ -n "${LISTWIRE_POSTGRES_URL:-}" ]; then
    echo "==> PostgreSQL: using LISTWIRE_POSTGRES_URL from the environment"
    exec "$@"
fi

# Debian keeps each major's binaries out of PATH, under /usr/lib/postgresql/<major>/bin.
pg_bin() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
        echo "$dir"
    fi
}

is_root() { [ "$(id -u)" -eq 0 ]; }

PGBIN=$(pg_bin)
if [ -z "$PGBIN" ]; then
    if ! is_root; then
        echo "PostgreSQL is not installed: install the distribution's 'postgresql' package," \
            "or set LISTWIRE_POSTGRES_URL to a server you run" >&2
        exit 1
    fi
    echo "==> installing PostgreSQL from the distribution's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    PGBIN=$(pg_bin)
    if [ -z "$PGBIN" ]; then
        echo "installed postgresql, but found no initdb under /usr/lib/postgresql" >&2
        exit 1
    fi
fi

# initdb and pg_ctl refuse to run as root: run them as the postgres user then.
as_server_user() {
    if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

FSYNC=off
if [ "${LISTWIRE_PG_FSYNC:-off}" = on ]; then FSYNC=on; fi

PGTMP=$(mktemp -d "${TMPDIR:-/tmp}/listwire-pg.XXXXXX")
STARTED=""
stop_postgres() {
    local status=$?
    if [ -n "$STARTED" ]; then
        as_server_user "$PGBIN/pg_ctl" -D "$PGTMP/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    if [ "$status" -ne 0 ] && [ -f "$PGTMP/log" ]; then
        echo "==> PostgreSQL log (last 40 lines):" >&2
        tail -n 40 "$PGTMP/log" >&2 || true
    fi
    rm -rf "$PGTMP"
    exit "$status"
}
trap stop_postgres EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if is_root; then chown postgres: "$PGTMP"; fi

as_server_user "$PGBIN/initdb" -D "$PGTMP/data" -A trust -U postgres -E UTF8 --no-sync >/dev/null

free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    else
        echo $((20000 + RANDOM % 30000))
    fi
}

# A port can be taken between choosing and binding it; then pg_ctl fails and we try another.
for attempt in 1 2 3 4 5 6 7 8 9 10; do
    PGPORT=$(free_port)
    if as_server_user "$PGBIN/pg_ctl" -D "$PGTMP/data" -l "$PGTMP/log" -w -t 60 \
        -o "-p $PGPORT -k $PGTMP -c listen_addresses=127.0.0.1 -c fsync=$FSYNC -c full_page_writes=$FSYNC -c max_connections=300" \
        start >/dev/null; then
        STARTED=yes
        break
    fi
    echo "==> PostgreSQL did not start on port $PGPORT (attempt $attempt)" >&2
done
if [ -z "$STARTED" ]; then
    echo "could not start a throwaway PostgreSQL server" >&2
    exit 1
fi

export LISTWIRE_POSTGRES_URL="postgres://postgres@127.0.0.1:$PGPORT/postgres"
echo "==> PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PGPORT (data in $PGTMP)"
# In the background, so a signal to this script is handled at once (bash defers traps until a
# foreground command ends): it is passed on to the command, then the server is stopped.
"$@" &
CHILD=$!
trap 'kill -INT "$CHILD" 2>/dev/null || true; wait "$CHILD" || true; exit 130' INT
trap 'kill -TERM "$CHILD" 2>/dev/null || true; wait "$CHILD" || true; exit 143' TERM
wait "$CHILD"
