#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, then every test of the workspace.
# Needs a Rust toolchain (cargo, rustfmt, clippy); everything else is built from crates, except
# the PostgreSQL server the PostgreSQL storage and node tests run against: ops/with-postgres.sh
# starts a throwaway one (installing Debian's package first if it is missing, which needs root)
# and stops it at the end. Set LISTWIRE_POSTGRES_URL to use a server of your own instead.
# Before the tests, ops/check-ops.sh checks the Prometheus config, alerts and their unit tests,
# the Grafana dashboard and the compose files (Debian's prometheus and docker-compose packages
# are installed when missing, for promtool and docker-compose; no server is started).
# Last, ops/web-test.sh runs the web client in headless Chromium (Node.js and npm needed;
# Debian's chromium is installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo fmt --version >/dev/null 2>&1; then rustup component add rustfmt; fi
if ! cargo clippy --version >/dev/null 2>&1; then rustup component add clippy; fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
# check-ops.sh also installs promtool and prometheus (Debian's package), which the cargo tests
# ops_metrics and ops_prometheus run against a live cluster.
echo "==> ops artifacts (Prometheus, Grafana, compose)"
./ops/check-ops.sh
echo "==> cargo test"
./ops/with-postgres.sh cargo test --workspace --locked
# One second of the pgbench vote-ingest comparison, so the script cannot rot (its figures are
# benchmarks: BENCHMARKS.md, never checked here).
echo "==> pgbench vote ingest (smoke run)"
./ops/with-postgres.sh ops/pgbench-votes.sh 1 2
echo "==> web client tests (headless Chromium)"
LISTWIRE_BIN="$PWD/target/debug/listwire" ./ops/web-test.sh
