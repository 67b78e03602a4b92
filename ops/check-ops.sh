#!/usr/bin/env bash
# Checks the operations artifacts under ops/ with the tools made for them (ops/test.sh runs it):
#
#   ops/check-ops.sh                 # every check below
#   ops/check-ops.sh --list-metrics  # the listwire metrics the dashboard and the alerts use
#
# - Prometheus (ops/prometheus/): `promtool check config` on prometheus.yml, `promtool check
#   rules` on alerts.yml, `promtool test rules` on alerts_test.yml, and ops/check-alerts.py (the
#   spec's alerts, their labels and annotations, a firing and a quiet test for each).
# - Grafana (ops/grafana/): ops/check-dashboard.py checks the dashboard's structure and the
#   provisioning files, and writes every panel expression into a rules file that `promtool
#   check rules` parses.
# - Compose (ops/compose/): `docker compose config -q` on each file, or, without the compose
#   plugin, `docker-compose -f FILE config -q` (Debian's docker-compose 1.29). Nothing starts.
#
# promtool comes from Debian's `prometheus` package and docker-compose from its package, both
# installed by ops/ensure-package.sh when missing (needs root, as in CI), which starts no
# service; the script also checks that no Prometheus server was left running.
#
# --list-metrics prints each base metric name (`listwire_…` or `process_…`, without _bucket, _sum or _count)
# referenced by the dashboard or the alert rules, sorted, one a line and nothing else, so a
# test can compare them with a live node's /metrics. It installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

DASHBOARD=ops/grafana/dashboards/listwire.json
ALERTS=ops/prometheus/alerts.yml

list_metrics() {
    grep -ohE '\b(listwire|process)_[a-z0-9_]+' "$DASHBOARD" "$ALERTS" \
        | sed -E 's/_(bucket|sum|count)$//' \
        | LC_ALL=C sort -u
}

case "${1:-}" in
    --list-metrics)
        list_metrics
        exit 0
        ;;
    "") ;;
    *)
        echo "usage: ops/check-ops.sh [--list-metrics]" >&2
        exit 2
        ;;
esac

# Prometheus servers running before the check; the install must not add one. Any the install
# started (none should: ensure-package.sh refuses service starts) is stopped again, by pid;
# servers that ran before are left alone.
servers_before=" $(pgrep -x prometheus | tr '\n' ' ' || true) "
new_servers() {
    local pid
    for pid in $(pgrep -x prometheus || true); do
        case "$servers_before" in *" $pid "*) ;; *) echo "$pid" ;; esac
    done
}
stop_new_servers() {
    local pid
    for pid in $(new_servers); do
        echo "==> stopping the prometheus server (pid $pid) the package install started" >&2
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done
}

PROMTOOL=$(ops/ensure-package.sh prometheus promtool /usr/bin/promtool)
stop_new_servers
PYTHON=$(ops/ensure-package.sh python3 python3)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/listwire-check-ops.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

echo "==> Prometheus: config, alert rules, rule unit tests ($("$PROMTOOL" --version 2>&1 | head -n 1))"
"$PROMTOOL" check config ops/prometheus/prometheus.yml
"$PROMTOOL" check rules "$ALERTS"
"$PROMTOOL" test rules ops/prometheus/alerts_test.yml
"$PYTHON" ops/check-alerts.py

echo "==> Grafana: dashboard structure, provisioning, every panel's PromQL"
"$PYTHON" ops/check-dashboard.py --rules-out "$TMP/dashboard-rules.yml" "$DASHBOARD"
"$PROMTOOL" check rules "$TMP/dashboard-rules.yml"

echo "==> compose files"
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
else
    compose=("$(ops/ensure-package.sh docker-compose docker-compose)")
fi
echo "  with $("${compose[@]}" version 2>/dev/null | head -n 1)"
for file in ops/compose/*.yml; do
    "${compose[@]}" -f "$file" config -q
    echo "  SUCCESS: $file"
done

metrics=$(list_metrics)
if [ -z "$metrics" ]; then
    echo "found no listwire metric in $DASHBOARD and $ALERTS" >&2
    exit 1
fi
echo "==> $(echo "$metrics" | wc -l) listwire metrics referenced (ops/check-ops.sh --list-metrics)"

if [ -n "$(new_servers)" ]; then
    echo "a prometheus server is running that was not before this check: $(new_servers)" >&2
    exit 1
fi
echo "==> ops artifacts OK"
