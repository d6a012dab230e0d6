#!/usr/bin/env bash
# Benchmark: accepted POST /v1/posts per second, with durable storage (docs/POSTS-PERFORMANCE.md).
#
# Starts the real `soku` server (dist build, SOKU_LOG=warn) on a fresh SQLite file or a fresh
# PostgreSQL schema, creates a user with an active subscription and an sk_test_ key, then posts
# with wrk (a Lua script, one JSON body) for DURATION at CONNECTIONS connections, and prints
# accepted posts/s, p50, p99 and the non-2xx count (which must be 0: the script fails
# otherwise). Each 200 is sent after create_submission committed. Afterwards it counts the
# stored submissions (they must be at least the 2xx count) and, with the engine on, how long
# the engine needs to publish the targets still waiting when wrk stopped.
#
# Environment (all optional):
#   DB           sqlite (default) or postgres
#   SYNCHRONOUS  SQLite only: normal (default; a commit survives a process kill) or full (it
#                survives a power loss too: one fsync per commit); the URL's ?synchronous=
#   PG_URL       PostgreSQL database (default postgres://postgres@127.0.0.1:5432/test); a schema
#                bench_posts_<random> is created in it and dropped at the end
#   PLATFORMS    1 (default: ["x"]) or 3 (["x","threads","bluesky"]): targets per post
#   WORKERS      on (default: the publishing engine runs in the server, simulated platforms,
#                latency 0) or off (`--no-workers`: accepting only)
#   SOKU_BIN     a soku binary to use; default: `cargo build --profile dist -p soku-server`
#   DURATION     measured duration, wrk syntax (default 20s)
#   WARMUP       warm-up, discarded (default 3s)
#   CONNECTIONS  concurrent connections (default 64)
#   THREADS      wrk threads (default 2)
#   DRAIN_WAIT   longest wait, in seconds, for the engine to publish the backlog (default 120)
#   QUIET_WAIT   wait at most this many seconds (default 1200) until, for 10 s in a row, no
#                rustc and no wrk process ran and the CPUs were < 20 % busy; 0: do not wait
#   KEEP_TMP=1   keep the temp dir (database, server log, raw wrk output)
#
# Loopback only. wrk runs are bounded by DURATION/WARMUP, the readiness wait by ~30 s, the
# drain wait by DRAIN_WAIT.
set -euo pipefail

DB=${DB:-sqlite}
SYNCHRONOUS=${SYNCHRONOUS:-normal}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
PLATFORMS=${PLATFORMS:-1}
WORKERS=${WORKERS:-on}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-3s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
DRAIN_WAIT=${DRAIN_WAIT:-120}

die() { echo "bench-posts: $*" >&2; exit 1; }

[[ $DB == sqlite || $DB == postgres ]] || die "DB=$DB: use sqlite or postgres"
[[ $SYNCHRONOUS == normal || $SYNCHRONOUS == full ]] || die "SYNCHRONOUS=$SYNCHRONOUS: use normal or full"
[[ $WORKERS == on || $WORKERS == off ]] || die "WORKERS=$WORKERS: use on or off"
case $PLATFORMS in
    1) PLATFORM_JSON='["x"]' ;;
    3) PLATFORM_JSON='["x","threads","bluesky"]' ;;
    *) die "PLATFORMS=$PLATFORMS: use 1 or 3" ;;
esac
for v in DURATION WARMUP; do
    [[ ${!v} =~ ^[1-9][0-9]*[sm]?$ ]] || die "$v=${!v}: use a wrk duration such as 20s or 1m"
done
for v in CONNECTIONS THREADS DRAIN_WAIT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v=${!v}: must be a positive integer"
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# --- tools -----------------------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
    echo "bench-posts: installing wrk" >&2
    apt-get install -y wrk >/dev/null || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
command -v curl >/dev/null 2>&1 || die "curl is required"
if [[ $DB == sqlite ]]; then
    command -v sqlite3 >/dev/null 2>&1 || die "sqlite3 is required (apt-get install -y sqlite3)"
else
    command -v psql >/dev/null 2>&1 || die "psql is required"
fi

if [[ -n ${SOKU_BIN:-} ]]; then
    [[ -x $SOKU_BIN ]] || die "SOKU_BIN=$SOKU_BIN is not an executable"
    BIN=$SOKU_BIN
else
    echo "bench-posts: cargo build --profile dist -p soku-server" >&2
    cargo build --profile dist -p soku-server >&2
    BIN=$(realpath "${CARGO_TARGET_DIR:-$ROOT/target}")/dist/soku
    [[ -x $BIN ]] || die "no binary at $BIN after the build"
fi

# --- a quiet machine: no compiler running for 10 s (at most QUIET_WAIT s, default 1200; 0: skip)
QUIET_WAIT=${QUIET_WAIT:-1200}
[[ $QUIET_WAIT =~ ^[0-9]+$ ]] || die "QUIET_WAIT=$QUIET_WAIT: seconds, a non-negative integer"
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
    (( waited > 10 )) && echo "bench-posts: waited $waited s for a quiet machine" >&2
fi

# --- database and server ---------------------------------------------------------------------
TMP=$(mktemp -d -t soku-bench-posts.XXXXXX)
SERVER_PID=
SCHEMA=
cleanup() {
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ -n $SCHEMA ]]; then
        psql "$PG_URL" -q -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 \
            || echo "bench-posts: could not drop schema $SCHEMA" >&2
    fi
    if [[ ${KEEP_TMP:-0} == 1 ]]; then echo "bench-posts: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ $DB == sqlite ]]; then
    export SOKU_DATABASE_URL="sqlite://$TMP/soku.db?synchronous=$SYNCHRONOUS"
    sql() { sqlite3 -batch -noheader "$TMP/soku.db" "$1"; }
else
    SCHEMA="bench_posts_$(date +%s)_$$_$RANDOM"
    psql "$PG_URL" -q -v ON_ERROR_STOP=1 -c "CREATE SCHEMA $SCHEMA" >/dev/null || die "cannot create schema $SCHEMA"
    sep='?'; [[ $PG_URL == *\?* ]] && sep='&'
    export SOKU_DATABASE_URL="${PG_URL}${sep}options=-c%20search_path%3D${SCHEMA}"
    sql() { psql "$SOKU_DATABASE_URL" -Atq -c "$1"; }
fi
export SOKU_LOG=warn            # the default (info) logs one line per request and per target
export SOKU_RATE_LIMITS=off     # if this build has rate limits, they would be measured instead
export SOKU_SIMULATED_LATENCY_MS=${SOKU_SIMULATED_LATENCY_MS:-0}

SERVE_ARGS=()
[[ $WORKERS == off ]] && SERVE_ARGS+=(--no-workers)

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_server LOG: starts `soku serve` on a free loopback port; sets SERVER_PID and BASE.
start_server() {
    local log=$1 attempt ready
    BASE=
    for attempt in 1 2 3 4 5; do
        PORT=$((20000 + RANDOM % 40000))
        port_in_use "$PORT" && continue
        "$BIN" serve --listen "127.0.0.1:$PORT" "${SERVE_ARGS[@]}" >"$log" 2>&1 &
        SERVER_PID=$!
        BASE="http://127.0.0.1:$PORT"
        ready=0
        for _ in $(seq 300); do   # 300 x 0.1 s = ~30 s
            kill -0 "$SERVER_PID" 2>/dev/null || break
            if curl -fsS -o /dev/null --max-time 1 "$BASE/readyz" 2>/dev/null; then ready=1; break; fi
            sleep 0.1
        done
        [[ $ready == 1 ]] && break
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            tail -n 20 "$log" >&2
            die "the server did not become ready within ~30 s"
        fi
        echo "bench-posts: the server exited on port $PORT (attempt $attempt):" >&2
        tail -n 5 "$log" >&2
        SERVER_PID= BASE=
    done
    [[ -n $BASE ]] || die "could not start the server"
}
stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}
# A defect (docs/POSTS-PERFORMANCE.md, 4.1; fixed by cf19234): on SQLite, a request cancelled
# (client gone) while its transaction began could leave a pooled connection inside BEGIN
# IMMEDIATE, after which every write failed. wrk closes its connections mid-request at the end
# of each run, so the script still watches for it, in case it comes back.
poisoned() { grep -c 'non-zero transaction depth' "$1" 2>/dev/null || true; }

start_server "$TMP/server.log"
echo "bench-posts: server ready at $BASE ($BIN), DB=$DB WORKERS=$WORKERS PLATFORMS=$PLATFORMS" >&2

# --- fixture: user, active subscription, test key ----------------------------------------------
USER_ID=$("$BIN" admin user create --email bench-posts@example.com | tail -n 1)
[[ -n $USER_ID ]] || die "admin user create printed no id"
"$BIN" admin subscription set --uid "$USER_ID" --status active >/dev/null
API_KEY=$("$BIN" admin key create --uid "$USER_ID" --test --name bench-posts | tail -n 1)
[[ $API_KEY == sk_test_* ]] || die "admin key create printed no sk_test_ key: $API_KEY"

BODY="{\"post\":{\"content\":{\"text\":\"Benchmark post from scripts/bench-posts.sh\",\"platform\":$PLATFORM_JSON}}}"

# Sanity: one post is accepted; without a key it is refused.
code=$(curl -sS -o "$TMP/first.json" -w '%{http_code}' -H "soku-api-key: $API_KEY" \
    -H 'content-type: application/json' -d "$BODY" "$BASE/v1/posts")
[[ $code == 200 ]] || { cat "$TMP/first.json" >&2; die "POST /v1/posts answered $code, not 200"; }
grep -q '"postSubmissionId"' "$TMP/first.json" || { cat "$TMP/first.json" >&2; die "no postSubmissionId"; }
code=$(curl -sS -o /dev/null -w '%{http_code}' -H 'content-type: application/json' -d "$BODY" "$BASE/v1/posts")
[[ $code != 200 ]] || die "POST /v1/posts without a key answered 200"

# Durability of what the server runs with.
if [[ $DB == sqlite ]]; then
    DURABILITY="SQLite journal_mode=$(sql 'PRAGMA journal_mode;'), synchronous=${SYNCHRONOUS^^} (the database URL's ?synchronous=, read by crates/soku-store/src/sqlite.rs)"
else
    DURABILITY="PostgreSQL synchronous_commit=$(sql 'SHOW synchronous_commit;'), fsync=$(sql 'SHOW fsync;'), wal_sync_method=$(sql 'SHOW wal_sync_method;')"
fi

# --- wrk script: POST the body, count non-2xx responses over all threads -------------------------
cat >"$TMP/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["content-type"] = "application/json"
wrk.headers["soku-api-key"] = "$API_KEY"
LUA
cat >>"$TMP/post.lua" <<'LUA'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) responses = 0; non2xx = 0; shown = false end
function response(status, headers, body)
  responses = responses + 1
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if not shown then  -- the first refusal of each thread, for the diagnosis
      shown = true
      io.stderr:write("non-2xx: " .. status .. " " .. string.sub(body or "", 1, 300) .. "\n")
    end
  end
end
function done(summary, latency, requests)
  local r, n = 0, 0
  for _, t in ipairs(threads) do r = r + t:get("responses"); n = n + t:get("non2xx") end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d responses=%d non2xx=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "connect=%d read=%d write=%d timeout=%d status=%d\n",
    summary.requests, summary.duration, r, n, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.timeout, e.status))
end
LUA

CLK_TCK=$(getconf CLK_TCK)
NCPU=$(nproc)
busy_ticks() { awk '/^cpu / { printf "%d", $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
proc_ticks() { awk '{ sub(/^.*\) /, ""); printf "%d", $12 + $13 }' "/proc/$1/stat"; }
pg_ticks() {  # CPU of all postgres processes (the database works for the server)
    local t=0 p
    if [[ $DB == postgres ]]; then
        for p in $(pgrep -x postgres 2>/dev/null || true); do
            t=$((t + $(proc_ticks "$p" 2>/dev/null || echo 0)))
        done
    fi
    echo "$t"
}
field() { sed -n "s/.* $2=\([0-9]*\).*/\1/p" <<<" $1"; }

# run_wrk NAME DURATION -> the BENCH line plus server_cpu_pct, db_cpu_pct, other_cpu_pct
run_wrk() {
    local name=$1 dur=$2 out="$TMP/wrk-$1.txt" b0 b1 s0 s1 d0 d1 t0 t1 w
    b0=$(busy_ticks); s0=$(proc_ticks "$SERVER_PID"); d0=$(pg_ticks); t0=$(date +%s%N)
    (
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"$dur" --timeout 5s --latency -s "$TMP/post.lua" \
            "$BASE/v1/posts" >"$out" 2>&1 || exit 1
        times >"$TMP/times-$name"
    ) || { cat "$out" >&2; die "wrk failed"; }
    t1=$(date +%s%N); b1=$(busy_ticks); s1=$(proc_ticks "$SERVER_PID"); d1=$(pg_ticks)
    grep -q '^BENCH ' "$out" || { cat "$out" >&2; die "no result line from wrk"; }
    w=$(tail -n 1 "$TMP/times-$name" | awk -v hz="$CLK_TCK" '{
        t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] }
        printf "%d", t * hz }')
    awk -v line="$(grep '^BENCH ' "$out")" -v s=$((s1 - s0)) -v d=$((d1 - d0)) \
        -v o=$((b1 - b0 - (s1 - s0) - (d1 - d0) - w)) -v hz="$CLK_TCK" -v ns=$((t1 - t0)) -v n="$NCPU" \
        'BEGIN { c = ns / 1e9 * hz;
                 printf "%s server_cpu_pct=%d db_cpu_pct=%d other_cpu_pct=%d\n", line,
                   100 * s / c + 0.5, 100 * d / c + 0.5, (o < 0 ? 0 : 100 * o / (c * n) + 0.5) }'
}

waiting_sql="SELECT count(*) FROM targets WHERE status IN ('scheduled','queued','publishing')"

echo "bench-posts: warm-up $WARMUP" >&2
run_wrk warmup "$WARMUP" >/dev/null
RESTARTED=no
if [[ $(poisoned "$TMP/server.log") != 0 ]]; then
    # The warm-up's end hit the defect: measure on a fresh process (same database).
    echo "bench-posts: the warm-up left a connection inside a transaction" \
        "($(poisoned "$TMP/server.log") errors); restarting the server" >&2
    stop_server
    start_server "$TMP/server-2.log"
    RESTARTED=yes
fi
LOG=$TMP/server.log; [[ $RESTARTED == yes ]] && LOG=$TMP/server-2.log
if [[ $WORKERS == on ]]; then
    # Start the measurement with an empty queue (after a restart, the targets the first process
    # held are taken over when their lease, 120 s by default, runs out).
    waits=600; [[ $RESTARTED == yes ]] && waits=1400
    for _ in $(seq $waits); do [[ $(sql "$waiting_sql") == 0 ]] && break; sleep 0.1; done
    [[ $(sql "$waiting_sql") == 0 ]] || echo "bench-posts: WARNING: the queue is not empty at the start" >&2
fi
before=$(sql "SELECT count(*) FROM submissions")
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
RUSTC_BEFORE=$(rustc_count)
echo "bench-posts: measuring $DURATION, $CONNECTIONS connections, $THREADS wrk threads (load $LOAD_BEFORE, rustc processes: $RUSTC_BEFORE)" >&2
line=$(run_wrk measured "$DURATION")
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
sed -n '1,/^BENCH /p' "$TMP/wrk-measured.txt" | grep -v '^BENCH ' >&2

requests=$(field "$line" requests); dur_us=$(field "$line" duration_us)
responses=$(field "$line" responses); non2xx=$(field "$line" non2xx)
errs=$(( $(field "$line" connect) + $(field "$line" read) + $(field "$line" write) + $(field "$line" timeout) ))
(( responses > 0 )) || die "no responses"
(( non2xx == 0 )) || die "$non2xx of $responses responses were not 2xx: a benchmark of errors is no benchmark"
grep -q 'Non-2xx' "$TMP/wrk-measured.txt" && die "wrk reports non-2xx responses"

# Every 2xx names a stored submission.
t_end=$(date +%s%N)
after=$(sql "SELECT count(*) FROM submissions")
stored=$((after - before))
(( stored >= responses )) || die "only $stored submissions stored for $responses accepted posts"

drain="n/a (--no-workers)"
sleep 0.5
POISON=$(poisoned "$LOG")
if [[ $POISON != 0 ]]; then
    drain="not measured: the end of the run left a connection inside a transaction ($POISON errors since)"
elif [[ $WORKERS == on ]]; then
    left=$(sql "$waiting_sql")
    published=$(sql "SELECT count(*) FROM targets WHERE status = 'published'")
    for _ in $(seq $((DRAIN_WAIT * 10))); do
        [[ $(sql "$waiting_sql") == 0 ]] && break
        sleep 0.1
    done
    t_drained=$(date +%s%N)
    still=$(sql "$waiting_sql")
    drain=$(awk -v l="$left" -v s="$still" -v ns=$((t_drained - t_end)) -v p="$published" \
        'BEGIN { printf "%d targets published by the end of wrk, %d still waiting; ", p, l;
                 if (s == 0) printf "all published %.1f s later", ns / 1e9;
                 else printf "%d still waiting after the drain wait", s }')
    failed=$(sql "SELECT count(*) FROM targets WHERE status NOT IN ('published','scheduled','queued','publishing')")
    (( failed == 0 )) || echo "bench-posts: WARNING: $failed targets ended in a state other than published" >&2
fi

rps=$(awk -v r="$requests" -v d="$dur_us" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
echo
echo "soku POST /v1/posts benchmark: DB=$DB, WORKERS=$WORKERS, $PLATFORMS platform(s) per post, $CONNECTIONS connections, $THREADS wrk threads, $DURATION, $NCPU CPUs"
echo "durability: $DURABILITY; each 200 is sent after the submission's transaction committed"
printf '%10s %9s %9s %9s %9s %10s %8s %7s %7s %5s %6s\n' "posts/s" "p50 ms" "p90 ms" "p99 ms" "max ms" responses non-2xx errors server db other
printf '%10s %9s %9s %9s %9s %10s %8s %7s %6s%% %4s%% %5s%%\n' "$rps" "$(ms "$(field "$line" p50_us)")" \
    "$(ms "$(field "$line" p90_us)")" "$(ms "$(field "$line" p99_us)")" "$(ms "$(field "$line" max_us)")" \
    "$responses" "$non2xx" "$errs" "$(field "$line" server_cpu_pct)" "$(field "$line" db_cpu_pct)" \
    "$(field "$line" other_cpu_pct)"
echo "stored: $stored submissions for $responses accepted posts; engine: $drain"
echo "load average before/after: $LOAD_BEFORE / $LOAD_AFTER; rustc processes at the start: $RUSTC_BEFORE; server restarted after the warm-up: $RESTARTED"
if [[ $DB == postgres ]]; then
    echo "PostgreSQL sessions idle in a transaction now (whole server): $(sql "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'")"
fi
echo "(server, db: CPU of the soku process and of all postgres processes, % of one CPU;"
echo " other: CPU used by everything else but wrk, % of all $NCPU CPUs)"
other=$(field "$line" other_cpu_pct)
if (( other > 10 )); then
    echo "WARNING: other processes used more than 10 % of the CPUs during the measurement;" \
        "the figures are not representative: run again on a quiet machine." >&2
fi
