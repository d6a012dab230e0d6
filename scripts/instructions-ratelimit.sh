#!/usr/bin/env bash
# Instructions per GET /v1/me, rate limits off against on (memory backend), counted by
# callgrind: deterministic for a given binary, so it shows what limiting costs even on a busy
# machine where wall-clock benchmarks wander. User-space instructions only (no kernel time).
#
# Starts the release `soku` twice under `valgrind --tool=callgrind` on one fresh SQLite
# database (SOKU_RATE_LIMITS=off, and the default), creates an admin user with an active
# subscription, a key and an override that never runs out, warms both up with 400 requests,
# zeroes the counters, sends N keep-alive requests (4 Python threads), dumps, and prints
# instructions per request. See docs/RATE-LIMITS-PERFORMANCE.md.
#
# Environment: SOKU_BIN (default: build the dist profile), N (default 4000), KEEP_TMP=1 (keeps the
# callgrind files for callgrind_annotate), CALLGRIND_OPTS (more callgrind options, split on
# spaces; e.g. "--cache-sim=yes --branch-sim=yes" to count simulated cache misses and
# mispredicted branches too; "--toggle-collect=*handle_connection*" to count only the
# connections' tasks, leaving out the publishing engine's background queries to SQLite, which
# otherwise add a few hundred instructions per request to one side or the other at random).
set -euo pipefail
N=${N:-4000}
[[ $N =~ ^[1-9][0-9]*$ ]] || { echo "N must be a positive integer" >&2; exit 1; }
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
command -v valgrind >/dev/null || apt-get install -y valgrind >/dev/null
command -v python3 >/dev/null || { echo "python3 is required" >&2; exit 1; }
if [[ -z ${SOKU_BIN:-} ]]; then
    cargo build --profile dist -p soku-server >&2
    SOKU_BIN=$(realpath "${CARGO_TARGET_DIR:-$ROOT/target}")/dist/soku
fi
TMP=$(mktemp -d -t soku-cg.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    if [[ ${KEEP_TMP:-0} == 1 ]]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
export SOKU_DATABASE_URL="sqlite://$TMP/soku.db" SOKU_LOG=warn
unset SOKU_REDIS_URL SOKU_RATE_LIMITS SOKU_TRUSTED_PROXIES
"$SOKU_BIN" admin user create --email cg@example.com --uid cg-user >/dev/null
"$SOKU_BIN" admin user set-role --uid cg-user --role admin >/dev/null
"$SOKU_BIN" admin subscription set --uid cg-user --status active >/dev/null
"$SOKU_BIN" admin ratelimit set --uid cg-user --rate 1000000 --burst 10000000 >/dev/null
KEY=$("$SOKU_BIN" admin key create --uid cg-user | tail -n 1)

cat >"$TMP/client.py" <<'PY'
import http.client, sys, threading
port, n, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def worker(count):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for _ in range(count):
        c.request("GET", "/v1/me", headers={"soku-api-key": key})
        r = c.getresponse(); r.read()
        assert r.status == 200, r.status
threads = [threading.Thread(target=worker, args=(n // 4,)) for _ in range(4)]
[t.start() for t in threads]; [t.join() for t in threads]
PY

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
declare -A PORT PID
for name in off on; do
    while :; do p=$((20000 + RANDOM % 40000)); port_in_use "$p" || break; done
    PORT[$name]=$p
    if [[ $name == off ]]; then export SOKU_RATE_LIMITS=off; else unset SOKU_RATE_LIMITS; fi
    valgrind --tool=callgrind ${CALLGRIND_OPTS:-} --callgrind-out-file="$TMP/$name.out" "$SOKU_BIN" serve \
        --listen "127.0.0.1:$p" >"$TMP/$name.log" 2>&1 &
    PID[$name]=$!; PIDS+=("$!")
done
unset SOKU_RATE_LIMITS
for name in off on; do
    for _ in $(seq 600); do   # up to ~5 min: valgrind starts slowly
        curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:${PORT[$name]}/readyz" && continue 2
        sleep 0.5
    done
    echo "the $name server did not start" >&2; exit 1
done
per=$(( N - N % 4 ))
for name in off on; do python3 "$TMP/client.py" "${PORT[$name]}" 400 "$KEY"; done
for name in off on; do callgrind_control --zero "${PID[$name]}" >/dev/null 2>&1; done
for name in off on; do python3 "$TMP/client.py" "${PORT[$name]}" "$N" "$KEY"; done
for name in off on; do callgrind_control --dump=measured "${PID[$name]}" >/dev/null 2>&1; done
for name in off on; do
    for _ in $(seq 100); do [[ -s $TMP/$name.out.1 ]] && break; sleep 0.1; done
    total=$(callgrind_annotate "$TMP/$name.out.1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }')
    printf 'limits %-3s %8d instructions per GET /v1/me (%d requests)\n' "$name" $(( total / per )) "$per"
    eval "IR_$name=$(( total / per ))"
done
awk -v a="$IR_on" -v b="$IR_off" 'BEGIN { printf "on : off = %.1f %%  (+%d instructions per request)\n", 100 * a / b, a - b }'
