#!/usr/bin/env bash
# Benchmarks of the publishing engine and of an idle server (docs/POSTS-PERFORMANCE.md):
#
#   scripts/bench-scheduler.sh [scheduler] [ARGS...]   examples/bench_scheduler/: 100,000
#       targets due within one minute on the simulated platforms (latency 0); lag from due time
#       to the platform call, p50/p99, and targets published per second. ARGS go to the example,
#       e.g. --db postgres, --concurrency 32,128, --spread-secs 0 (all due at once: drain rate).
#   scripts/bench-scheduler.sh memory [ARGS...]        examples/bench_memory.rs: VmRSS/VmHWM of
#       an idle `soku serve` with 0, 100,000 and 1,000,000 scheduled targets waiting.
#
# Builds the release binary and examples first (unless NO_BUILD=1), then waits (at most
# QUIET_WAIT seconds, default 1200) until no rustc process has run for 10 s, so that a
# compiler on this shared machine is not measured too; prints the load average before and after.
# Set QUIET_WAIT=0 to skip the wait (the figures then say what the load was).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
die() { echo "bench-scheduler: $*" >&2; exit 1; }

WHAT=scheduler
if [[ ${1:-} == scheduler || ${1:-} == memory ]]; then WHAT=$1; shift; fi
QUIET_WAIT=${QUIET_WAIT:-1200}
[[ $QUIET_WAIT =~ ^[0-9]+$ ]] || die "QUIET_WAIT=$QUIET_WAIT: seconds, a non-negative integer"

TARGET=$(realpath "${CARGO_TARGET_DIR:-$ROOT/target}")
if [[ ${NO_BUILD:-0} != 1 ]]; then
    echo "bench-scheduler: cargo build --profile dist -p soku-server --examples --bins" >&2
    cargo build --profile dist -p soku-server --examples --bins >&2
fi
case $WHAT in
    scheduler) EXE=$TARGET/dist/examples/bench_scheduler ;;
    memory) EXE=$TARGET/dist/examples/bench_memory ;;
esac
[[ -x $EXE ]] || die "no $EXE: build it (cargo build --profile dist -p soku-server --examples --bins)"
[[ -x $TARGET/dist/soku ]] || die "no $TARGET/dist/soku"

rustc_count() { ps aux | grep -c '[r]ustc' || true; }
wrk_count() { pgrep -xc wrk || true; }   # another benchmark running on this machine
# busy_pct: % of all CPUs busy during the next second (sleeps 1 s)
busy_pct() {
    local a b
    a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
    sleep 1
    b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); t = y[2] - x[2];
        printf "%d", (t > 0 ? 100 * (y[1] - x[1]) / t : 0) }'
}
if (( QUIET_WAIT > 0 )); then
    waited=0 quiet=0
    while (( quiet < 10 )); do
        busy=$(busy_pct)   # takes 1 s
        if [[ $(rustc_count) == 0 && $(wrk_count) == 0 ]] && (( busy < 20 )); then
            quiet=$((quiet + 1))
        else
            quiet=0
        fi
        (( waited < QUIET_WAIT )) || die "the machine stayed busy (a compiler, wrk or >20 % CPU) for $QUIET_WAIT s; try again later"
        waited=$((waited + 1))
    done
    (( waited > 10 )) && echo "bench-scheduler: waited $waited s for a quiet machine" >&2
fi
echo "bench-scheduler: $WHAT; load average $(cut -d' ' -f1-3 /proc/loadavg); rustc processes: $(rustc_count)"
if [[ $WHAT == memory ]]; then
    "$EXE" --soku-bin "$TARGET/dist/soku" "$@"
else
    "$EXE" "$@"
fi
echo "bench-scheduler: done; load average $(cut -d' ' -f1-3 /proc/loadavg); rustc processes: $(rustc_count)"
