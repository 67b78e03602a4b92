#!/usr/bin/env bash
# Mutation checks: every deliberately weakened node (storage/src/mutants.rs) must be caught by a
# checker. Builds the node and the simulations with the `mutants` feature into target/mutants
# (the ordinary build never has it), proves the storage mutant removes the fencing, then runs
# each mutant under the deterministic simulation and the real-process chaos runner and prints
# which invariant caught it. Exits non-zero if a mutant escapes both.
#
#   ./ops/with-postgres.sh simulations/mutants.sh          # both runners (chaos needs PostgreSQL)
#   simulations/mutants.sh dsim                            # the simulation only
#   SEEDS=60 CHAOS_SECS=60 ./ops/with-postgres.sh simulations/mutants.sh
set -euo pipefail
cd "$(dirname "$0")/.."

runners="${1:-all}"
seeds="${SEEDS:-30}"
chaos_secs="${CHAOS_SECS:-45}"
target=target/mutants
logs="$(mktemp -d /tmp/listwire-mutants.XXXXXX)"
mutants=(skip-conditional-append ack-before-durable no-op-id-check stale-owner-serves resubscribe-without-since ignore-vote-limit)

echo "==> building with --features mutants into $target"
cargo build -q -p listwire -p listwire-simulations --features listwire-simulations/mutants \
  --target-dir "$target" --bins
if [[ -n "${LISTWIRE_POSTGRES_URL:-}" ]]; then
  cargo test -q -p listwire-storage --features mutants --target-dir "$target" --test mutants
fi

# Runs one mutant under one runner; prints "caught: <first failed invariant>" or "ESCAPED".
check() {
  local runner="$1" mutant="$2" log="$logs/$1-$2.log"
  local status=0
  case "$runner" in
    dsim) "$target/debug/listwire-sim" --mutant "$mutant" --seeds "$seeds" >"$log" 2>&1 || status=$? ;;
    chaos) "$target/debug/listwire-chaos" --mutant "$mutant" --seed 7 --duration-secs "$chaos_secs" \
      --listwire-bin "$target/debug/listwire" >"$log" 2>&1 || status=$? ;;
  esac
  if [[ $status -eq 0 ]]; then
    echo "ESCAPED"
  else
    local why
    why="$(grep -m1 -E 'invariant failed|VIOLATION|violated' "$log" || tail -n1 "$log")"
    echo "caught: ${why:0:160}"
  fi
}

escaped=0
for mutant in "${mutants[@]}"; do
  caught=0
  for runner in dsim chaos; do
    [[ "$runners" == all || "$runners" == "$runner" ]] || continue
    if [[ "$runner" == chaos && -z "${LISTWIRE_POSTGRES_URL:-}" ]]; then
      echo "$mutant [chaos]: skipped (no LISTWIRE_POSTGRES_URL; run under ./ops/with-postgres.sh)"
      continue
    fi
    verdict="$(check "$runner" "$mutant")"
    echo "$mutant [$runner]: $verdict"
    [[ "$verdict" == caught* ]] && caught=1
  done
  if [[ $caught -eq 0 ]]; then
    escaped=$((escaped + 1))
  fi
done
echo "logs in $logs"
if [[ $escaped -gt 0 ]]; then
  echo "$escaped mutant(s) escaped every checker" >&2
  exit 1
fi
echo "every mutant was caught"
