#!/usr/bin/env bash
# Benchmark: the cost of rate limiting on GET /v1/me.
#
# Starts the real `soku` server (dist build, SQLite in a temp dir, SOKU_LOG=warn) twice on
# one database: once with rate limits on (memory backend, the default) and once with
# SOKU_RATE_LIMITS=off; with SOKU_REDIS_URL set, a third with the Redis backend. Creates an admin
# user with an active subscription, an API key and a rate-limit override large enough that the
# budget never runs out during the run (1,000,000 per 60 s, burst 10,000,000: every request is
# checked and charged, none refused). Then measures GET /v1/me with wrk on each server in
# turn, round after round, at the same concurrency, and prints requests/s, p50, p99 and the
# ratio on : off. Target: >= 95 % with the memory backend. See docs/RATE-LIMITS-PERFORMANCE.md.
# Also the server's CPU time per request (user + system, from /proc/PID/stat around each wrk run):
# on a small shared machine, where wrk competes with the server for the cores and other work
# comes and goes, that is the steadier measure of what limiting costs the server. And wrk's own
# CPU time per request, which it takes from the same cores.
#
# Environment (all optional):
#   SOKU_BIN        a soku binary to use; default: `cargo build --profile dist -p soku-server`
#   SOKU_REDIS_URL  also measure the Redis backend against this Redis (keys under a fresh prefix)
#   DURATION        measured duration per server and round, wrk syntax (default 10s)
#   WARMUP          warm-up per server, discarded (default 3s)
#   ROUNDS          measured rounds; each runs every server once, order alternating (default 3)
#   CONNECTIONS     concurrent connections (default 64)
#   THREADS         wrk threads (default 2)
#   TOGETHER=1      measure the servers at the same time, each with its own wrk of CONNECTIONS
#                   and THREADS, instead of one after the other: each gets part of the machine,
#                   but whatever the machine does during a round affects all of them alike (on a
#                   shared VM whose speed drifts from one run to the next, the steadier ratio)
#   PIN=1           pin the servers to the last CPU and wrk to the others (taskset), as if the
#                   client ran on a machine of its own: wrk's work per response (more with four
#                   more headers) then no longer takes CPU from the server it measures. The
#                   server then has one core; its runtime sees one CPU and starts one worker.
#   FRESH=1         new server processes for every round (same database, warmed up again),
#                   so that a run's rounds sample different processes of the binary, not one
#                   pair: to tell the spread between processes (where code, heap and stacks land
#                   in memory) from the machine's drift. (On the 2-core VM of
#                   docs/RATE-LIMITS-PERFORMANCE.md, "Sixth round", rounds spread no wider with
#                   it: the spread between runs was the machine's.)
#   KEEP_TMP=1      keep the temp dir (database, server logs, raw wrk output)
#
# Loopback only. Every wrk run is bounded by DURATION/WARMUP; each readiness wait by ~30 s.
set -euo pipefail

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
TOGETHER=${TOGETHER:-0}
PIN=${PIN:-0}
FRESH=${FRESH:-0}

die() { echo "bench-ratelimit: $*" >&2; exit 1; }

for v in DURATION WARMUP; do
    [[ ${!v} =~ ^[1-9][0-9]*[sm]?$ ]] || die "$v=${!v}: use a wrk duration such as 10s or 1m"
done
[[ $TOGETHER == [01] ]] || die "TOGETHER=$TOGETHER: use 0 or 1"
[[ $PIN == [01] ]] || die "PIN=$PIN: use 0 or 1"
[[ $FRESH == [01] ]] || die "FRESH=$FRESH: use 0 or 1"
for v in ROUNDS CONNECTIONS THREADS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v=${!v}: must be a positive integer"
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# --- tools -----------------------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
    echo "bench-ratelimit: installing wrk" >&2
    apt-get install -y wrk >/dev/null || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
command -v curl >/dev/null 2>&1 || die "curl is required"
SERVER_PIN=() CLIENT_PIN=()
if [[ $PIN == 1 ]]; then
    command -v taskset >/dev/null 2>&1 || die "PIN=1 needs taskset (util-linux)"
    ncpu=$(nproc)
    (( ncpu >= 2 )) || die "PIN=1 needs at least two CPUs; this machine has $ncpu"
    SERVER_PIN=(taskset -c "$((ncpu - 1))")
    CLIENT_PIN=(taskset -c "0-$((ncpu - 2))")
fi

if [[ -n ${SOKU_BIN:-} ]]; then
    [[ -x $SOKU_BIN ]] || die "SOKU_BIN=$SOKU_BIN is not an executable"
    BIN=$SOKU_BIN
else
    echo "bench-ratelimit: cargo build --profile dist -p soku-server" >&2
    cargo build --profile dist -p soku-server >&2
    BIN=$(realpath "${CARGO_TARGET_DIR:-$ROOT/target}")/dist/soku
    [[ -x $BIN ]] || die "no binary at $BIN after the build"
fi

# --- servers ---------------------------------------------------------------------------------
TMP=$(mktemp -d -t soku-bench-rl.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    if [[ ${KEEP_TMP:-0} == 1 ]]; then echo "bench-ratelimit: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export SOKU_DATABASE_URL="sqlite://$TMP/soku.db"
export SOKU_LOG=warn   # the default (info) logs one line per request: that would be measured too
unset SOKU_RATE_LIMITS SOKU_RATE_LIMIT_ON_ERROR SOKU_TRUSTED_PROXIES SOKU_REDIS_PREFIX
REDIS_URL=${SOKU_REDIS_URL:-}
unset SOKU_REDIS_URL

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_server NAME [VAR=value...] -> sets BASE; the server's pid joins PIDS
start_server() {
    local name=$1; shift
    BASE=
    for attempt in 1 2 3 4 5; do
        local port=$((20000 + RANDOM % 40000))
        port_in_use "$port" && continue
        "${SERVER_PIN[@]}" env "$@" "$BIN" serve --listen "127.0.0.1:$port" >"$TMP/server-$name.log" 2>&1 &
        local pid=$!
        local ready=0
        for _ in $(seq 300); do   # 300 x 0.1 s = ~30 s
            kill -0 "$pid" 2>/dev/null || break
            if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/readyz" 2>/dev/null; then
                ready=1; break
            fi
            sleep 0.1
        done
        if [[ $ready == 1 ]]; then PIDS+=("$pid"); PID_OF[$name]=$pid; BASE="http://127.0.0.1:$port"; return; fi
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid"; tail -n 20 "$TMP/server-$name.log" >&2
            die "$name: the server did not become ready within ~30 s"
        fi
        echo "bench-ratelimit: $name exited on port $port (attempt $attempt):" >&2
        tail -n 5 "$TMP/server-$name.log" >&2
    done
    die "could not start the $name server"
}

NAMES=(off on)
[[ -n $REDIS_URL ]] && NAMES+=(redis)
REDIS_PREFIX="soku-bench:$RANDOM$RANDOM:"
declare -A URL PID_OF
start_servers() {
    start_server off SOKU_RATE_LIMITS=off; URL[off]=$BASE
    start_server on; URL[on]=$BASE
    if [[ -n $REDIS_URL ]]; then
        start_server redis "SOKU_REDIS_URL=$REDIS_URL" "SOKU_REDIS_PREFIX=$REDIS_PREFIX"
        URL[redis]=$BASE
    fi
}
stop_servers() {
    local name pid
    for name in "${NAMES[@]}"; do
        pid=${PID_OF[$name]}
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
start_servers
echo "bench-ratelimit: servers ready: $(for n in "${NAMES[@]}"; do printf '%s=%s ' "$n" "${URL[$n]}"; done)($BIN)" >&2

# --- fixture: admin user, active subscription, key, an override that never runs out ------------
USER_ID=$("$BIN" admin user create --email bench@example.com | tail -n 1)
[[ -n $USER_ID ]] || die "admin user create printed no id"
"$BIN" admin user set-role --uid "$USER_ID" --role admin >/dev/null
"$BIN" admin subscription set --uid "$USER_ID" --status active >/dev/null
"$BIN" admin ratelimit set --uid "$USER_ID" --rate 1000000 --burst 10000000 >/dev/null
API_KEY=$("$BIN" admin key create --uid "$USER_ID" --name bench | tail -n 1)
[[ -n $API_KEY ]] || die "admin key create printed no key"

# Sanity: 200 everywhere; the limited servers say so in their headers, the other does not.
for name in "${NAMES[@]}"; do
    code=$(curl -sS -D "$TMP/h-$name.txt" -o "$TMP/me-$name.json" -w '%{http_code}' \
        -H "soku-api-key: $API_KEY" "${URL[$name]}/v1/me")
    [[ $code == 200 ]] || { cat "$TMP/me-$name.json" >&2; die "$name: GET /v1/me answered $code"; }
    grep -q "\"$USER_ID\"" "$TMP/me-$name.json" || die "$name: GET /v1/me is not about $USER_ID"
    if [[ $name == off ]]; then
        ! grep -qi '^x-ratelimit-' "$TMP/h-$name.txt" || die "off: X-RateLimit headers present"
    else
        grep -qi '^x-ratelimit-limit: 1000000' "$TMP/h-$name.txt" || { cat "$TMP/h-$name.txt" >&2; die "$name: the override is not in force"; }
        grep -qi '^x-ratelimit-tier: admin' "$TMP/h-$name.txt" || die "$name: not the admin tier"
    fi
done

# --- wrk script: print one machine-readable line ------------------------------------------------
# No `response()` callback: with one, wrk parses every response into Lua strings and a table,
# header by header, on the cores the server runs on; that costs more per header than the
# server spends writing one, and so weighed on the server with four more headers (limits on).
# wrk counts responses of status 400 and above itself and then reports "Non-2xx or 3xx
# responses", on which run_wrk stops.
cat >"$TMP/count.lua" <<'LUA'
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d " ..
    "connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.timeout))
end
LUA
CLK_TCK=$(getconf CLK_TCK)
# CPU time (user + system) of a server so far, in clock ticks
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/${PID_OF[$1]}/stat"; }
# CPU time of the finished children (wrk) of shell $1, fields cutime + cstime; run_wrk runs in a
# subshell of its own. ("(bash)", the second field, has no space in it.)
child_ticks() { awk '{ print $16 + $17 }' "/proc/$1/stat"; }

# run_wrk LABEL NAME DURATION -> prints the BENCH line (with the server's CPU ticks), keeps
# wrk's report in $TMP
run_wrk() {
    local label=$1 name=$2 dur=$3
    local out="$TMP/wrk-$label.txt"
    local cpu_before; cpu_before=$(cpu_ticks "$name")
    local shell=$BASHPID client_before; client_before=$(child_ticks "$shell")
    "${CLIENT_PIN[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$dur" --timeout 5s --latency -s "$TMP/count.lua" \
        -H "soku-api-key: $API_KEY" "${URL[$name]}/v1/me" >"$out" 2>&1 \
        || { cat "$out" >&2; die "wrk failed for $name"; }
    grep -q '^BENCH ' "$out" || { cat "$out" >&2; die "no result line from wrk for $name"; }
    if grep -q 'Non-2xx' "$out"; then cat "$out" >&2; die "$name: wrk reports non-2xx responses"; fi
    echo "$(grep '^BENCH ' "$out") cpu_ticks=$(( $(cpu_ticks "$name") - cpu_before ))" \
        "client_ticks=$(( $(child_ticks "$shell") - client_before ))"
}
field() { sed -n "s/.* $2=\([0-9]*\).*/\1/p" <<<" $1"; }

warm_up() {
    echo "bench-ratelimit: warm-up $WARMUP per server" >&2
    for name in "${NAMES[@]}"; do run_wrk "warmup-$name-$1" "$name" "$WARMUP" >/dev/null; done
}
warm_up 1

echo "bench-ratelimit: $ROUNDS round(s) x $DURATION per server, $CONNECTIONS connections, $THREADS wrk threads$([[ $TOGETHER == 1 ]] && echo ", servers measured at the same time")$([[ $PIN == 1 ]] && echo ", servers on CPU ${SERVER_PIN[2]}, wrk on CPU ${CLIENT_PIN[2]}")" >&2
ROWS=()
declare -A SUM RPS TICKS CLIENT RESP
for name in "${NAMES[@]}"; do SUM[$name]=0; TICKS[$name]=0; CLIENT[$name]=0; RESP[$name]=0; done
for round in $(seq "$ROUNDS"); do
    order=("${NAMES[@]}")
    if (( round % 2 == 0 )); then   # alternate the order so that neither always runs first
        order=(); for (( i=${#NAMES[@]}-1; i>=0; i-- )); do order+=("${NAMES[$i]}"); done
    fi
    if [[ $FRESH == 1 ]] && (( round > 1 )); then
        echo "bench-ratelimit: round $round: new server processes" >&2
        stop_servers; start_servers; warm_up "$round"
    fi
    LINES=()
    if [[ $TOGETHER == 1 ]]; then
        # Every server at once, each with its own wrk: they share whatever the machine gives
        # during those seconds, so drifts of the machine fall on all of them alike.
        jobs_=()
        for name in "${order[@]}"; do
            run_wrk "$name-$round" "$name" "$DURATION" >"$TMP/line-$name-$round" &
            jobs_+=("$!")
        done
        for job in "${jobs_[@]}"; do wait "$job" || die "a wrk run failed in round $round"; done
        for name in "${order[@]}"; do LINES+=("$(cat "$TMP/line-$name-$round")"); done
    else
        for name in "${order[@]}"; do LINES+=("$(run_wrk "$name-$round" "$name" "$DURATION")"); done
    fi
    for i in "${!order[@]}"; do
        name=${order[$i]} line=${LINES[$i]}
        requests=$(field "$line" requests); dur_us=$(field "$line" duration_us)
        errs=$(( $(field "$line" connect) + $(field "$line" read) + $(field "$line" write) + $(field "$line" timeout) ))
        (( requests > 0 )) || die "$name: no responses"
        rps=$(awk -v r="$requests" -v d="$dur_us" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
        p50=$(awk -v u="$(field "$line" p50_us)" 'BEGIN { printf "%.2f", u / 1000 }')
        p99=$(awk -v u="$(field "$line" p99_us)" 'BEGIN { printf "%.2f", u / 1000 }')
        ticks=$(field "$line" cpu_ticks)
        cpu=$(awk -v t="$ticks" -v k="$CLK_TCK" -v r="$requests" 'BEGIN { printf "%.1f", t / k * 1e6 / r }')
        TICKS[$name]=$(( ${TICKS[$name]} + ticks )); CLIENT[$name]=$(( ${CLIENT[$name]} + $(field "$line" client_ticks) )); RESP[$name]=$(( ${RESP[$name]} + requests ))
        case $name in off) label="limits off";; on) label="on (memory)";; redis) label="on (redis)";; esac
        ROWS+=("$(printf '%-5s %-12s %10s %10s %10s %12s %10s %7s' "$round" "$label" "$rps" "$p50" "$p99" "$cpu" "$requests" "$errs")")
        SUM[$name]=$(( ${SUM[$name]} + rps ))
        RPS[$name-$round]=$rps
    done
done

echo
echo "soku rate-limit benchmark: GET /v1/me, $CONNECTIONS connections, $THREADS wrk threads, $DURATION per server and round, $(nproc) CPUs$([[ $TOGETHER == 1 ]] && echo ", servers at the same time")$([[ $FRESH == 1 ]] && echo ", new servers every round")$([[ $PIN == 1 ]] && echo ", servers on CPU ${SERVER_PIN[2]}, wrk on CPU ${CLIENT_PIN[2]}")"
printf '%-5s %-12s %10s %10s %10s %12s %10s %7s\n' round server "req/s" "p50 ms" "p99 ms" "cpu µs/req" responses errors
printf '%s\n' "${ROWS[@]}"
ratio=$(awk -v a="${SUM[on]}" -v b="${SUM[off]}" 'BEGIN { printf "%.1f", 100 * a / b }')
verdict=$(awk -v r="$ratio" 'BEGIN { print (r >= 95 ? "meets" : "BELOW") }')
echo "ratio on (memory) : off (requests/s, all rounds) = ${ratio} %  ($verdict the 95 % target)"
if [[ -n ${SUM[redis]:-} ]]; then
    ratio=$(awk -v a="${SUM[redis]}" -v b="${SUM[off]}" 'BEGIN { printf "%.1f", 100 * a / b }')
    echo "ratio on (redis)  : off (requests/s, all rounds) = ${ratio} %"
fi
# Each round runs the servers back to back, so a round's ratio compares measurements taken
# under the same conditions; the median of those resists a disturbed round.
for name in "${NAMES[@]}"; do
    [[ $name == off ]] && continue
    per_round=$(for round in $(seq "$ROUNDS"); do
        awk -v a="${RPS[$name-$round]}" -v b="${RPS[off-$round]}" 'BEGIN { printf "%.1f\n", 100 * a / b }'
    done)
    median=$(sort -n <<<"$per_round" | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    echo "per-round ratios $name : off = $(tr '\n' ' ' <<<"$per_round")% ; median ${median} %"
done
for name in "${NAMES[@]}"; do
    awk -v n="$name" -v t="${TICKS[$name]}" -v k="$CLK_TCK" -v r="${RESP[$name]}" \
        'BEGIN { printf "server CPU per request, %-5s: %.2f µs (%d requests, all rounds)\n", n, t / k * 1e6 / r, r }'
done
for name in "${NAMES[@]}"; do
    [[ $name == off ]] && continue
    awk -v a="${TICKS[$name]}" -v ra="${RESP[$name]}" -v b="${TICKS[off]}" -v rb="${RESP[off]}" -v n="$name" \
        'BEGIN { c = (a / ra) / (b / rb); printf "server CPU per request %s : off = %.1f %%  (throughput if the server had the CPU to itself: %.1f %% of off)\n", n, 100 * c, 100 / c }'
done
# wrk runs on the same cores: what it spends per response (parsing the headers, mostly) is taken
# from the server too.
for name in "${NAMES[@]}"; do
    awk -v n="$name" -v t="${CLIENT[$name]}" -v k="$CLK_TCK" -v r="${RESP[$name]}" \
        'BEGIN { printf "wrk CPU per request, %-5s: %.2f µs\n", n, t / k * 1e6 / r }'
done
