#!/usr/bin/env bash
# Instructions per GET /v1/me with a plain key against a restricted key (two scopes and twenty
# allowed addresses, spec 4.1), counted by callgrind on one server: deterministic for a given
# binary, so it shows what scopes and allowed addresses cost even on a busy machine where
# wall-clock benchmarks wander (scripts/bench-auth.sh RESTRICTED=1 measures requests/s).
#
# Starts the dist `soku` under `valgrind --tool=callgrind` on a fresh SQLite database, creates
# an admin user with an active subscription, an override that never runs out and the two keys,
# warms both up with 400 requests each, then for each key: zeroes the counters, sends N
# keep-alive requests (4 Python threads), dumps, and prints instructions per request. The whole
# process is counted: the engine's background polls of SQLite add a few hundred instructions
# per request to either side at random, so use N in the thousands. See docs/PERFORMANCE.md.
#
# Environment: SOKU_BIN (default: build the dist profile), N (default 4000), KEEP_TMP=1.
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
PID=
cleanup() {
    [[ -n $PID ]] && { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }
    if [[ ${KEEP_TMP:-0} == 1 ]]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
export SOKU_DATABASE_URL="sqlite://$TMP/soku.db" SOKU_LOG=warn
unset SOKU_REDIS_URL SOKU_RATE_LIMITS SOKU_TRUSTED_PROXIES
"$SOKU_BIN" admin user create --email cg@example.com --uid cg-user >/dev/null
"$SOKU_BIN" admin user set-role --uid cg-user --role admin >/dev/null
"$SOKU_BIN" admin subscription set --uid cg-user --status active >/dev/null
"$SOKU_BIN" admin ratelimit set --uid cg-user --rate 1000000 --burst 10000000 >/dev/null
PLAIN=$("$SOKU_BIN" admin key create --uid cg-user --name plain | tail -n 1)
ips=()
for i in $(seq 19); do ips+=(--allow-ip "198.51.100.$i/32"); done
SCOPED=$("$SOKU_BIN" admin key create --uid cg-user --name scoped --scope posts:read \
    --scope media:read "${ips[@]}" --allow-ip 127.0.0.0/8 | tail -n 1)

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
while :; do PORT=$((20000 + RANDOM % 40000)); port_in_use "$PORT" || break; done
valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.out" \
    "$SOKU_BIN" serve --listen "127.0.0.1:$PORT" >"$TMP/server.log" 2>&1 &
PID=$!
ready=0
for _ in $(seq 600); do   # up to ~5 min: valgrind starts slowly
    if curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/readyz"; then ready=1; break; fi
    sleep 0.5
done
[[ $ready == 1 ]] || { tail -n 20 "$TMP/server.log" >&2; echo "the server did not start" >&2; exit 1; }
per=$(( N - N % 4 ))
python3 "$TMP/client.py" "$PORT" 400 "$PLAIN"
python3 "$TMP/client.py" "$PORT" 400 "$SCOPED"
dump=0
for name in plain scoped; do
    if [[ $name == plain ]]; then key=$PLAIN; else key=$SCOPED; fi
    callgrind_control --zero "$PID" >/dev/null 2>&1
    python3 "$TMP/client.py" "$PORT" "$N" "$key"
    callgrind_control --dump="$name" "$PID" >/dev/null 2>&1
    dump=$((dump + 1))
    for _ in $(seq 100); do [[ -s $TMP/cg.out.$dump ]] && break; sleep 0.1; done
    total=$(callgrind_annotate "$TMP/cg.out.$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }')
    printf '%-6s key %8d instructions per GET /v1/me (%d requests)\n' "$name" $(( total / per )) "$per"
    eval "IR_$name=$(( total / per ))"
done
awk -v a="$IR_scoped" -v b="$IR_plain" 'BEGIN { printf "scoped : plain = %.1f %%  (%+d instructions per request)\n", 100 * a / b, a - b }'
