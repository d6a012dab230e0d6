#!/usr/bin/env bash
# Benchmark: hosted media (issue 17). In one run, on this machine:
#
# 1. Upload: a 300 MB MP4 through `POST /v1/media/uploads` on loopback (`curl -T`, streamed),
#    against `cp` of the same file to the same disk. Reports both throughputs, their ratio
#    (goal >= 50 %), and the server's peak resident memory during the upload above its idle
#    figure (goal < 64 MB; peak from VmHWM after resetting it through /proc/PID/clear_refs).
#    The server also hashes the file (SHA-256) and reads its container before answering; on the
#    default SQLite database it does not sync the file to disk (a killed process loses nothing,
#    like the database's rows), so plain cp is the like-for-like figure; cp + sync is shown too.
# 2. Serving: `GET /media/<id>/<file>` of a 10 MB file at 16 connections (wrk), against nginx
#    (Debian's, installed if missing; `python3 -m http.server` when nginx cannot be had) serving
#    the same file from the same disk. Reports requests/s, MB/s and the ratio.
#
# Environment (all optional):
#   SOKU_BIN   a soku binary; default: `cargo build --profile dist -p soku-server`
#   SIZE_MB    upload size (default 300)
#   DURATION   wrk duration per server (default 10s)
#   KEEP_TMP=1 keep the temp dir
#
# Loopback only. The temp dir is on the same file system as the server's media store.
set -euo pipefail

SIZE_MB=${SIZE_MB:-300}
DURATION=${DURATION:-10s}
die() { echo "bench-media: $*" >&2; exit 1; }
[[ $SIZE_MB =~ ^[1-9][0-9]*$ ]] || die "SIZE_MB=$SIZE_MB: a positive integer"
(( SIZE_MB <= 500 )) || die "SIZE_MB=$SIZE_MB: videos are taken up to 500 MB"
[[ $DURATION =~ ^[1-9][0-9]*[sm]?$ ]] || die "DURATION=$DURATION: a wrk duration such as 10s"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

for tool in wrk curl python3; do
    command -v "$tool" >/dev/null 2>&1 && continue
    echo "bench-media: installing $tool" >&2
    apt-get install -y "$tool" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$tool" >/dev/null; }
done
if ! command -v nginx >/dev/null 2>&1 && [[ ! -x /usr/sbin/nginx ]]; then
    echo "bench-media: installing nginx (the serving baseline)" >&2
    apt-get install -y nginx-light >/dev/null 2>&1 || apt-get install -y nginx >/dev/null 2>&1 || true
fi
NGINX=$(command -v nginx 2>/dev/null || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; } || true)

if [[ -n ${SOKU_BIN:-} ]]; then
    [[ -x $SOKU_BIN ]] || die "SOKU_BIN=$SOKU_BIN is not an executable"
    BIN=$SOKU_BIN
else
    echo "bench-media: cargo build --profile dist -p soku-server" >&2
    cargo build --profile dist -p soku-server >&2
    BIN=$(realpath "${CARGO_TARGET_DIR:-$ROOT/target}")/dist/soku
fi

TMP=$(mktemp -d -t soku-bench-media.XXXXXX)
SERVER_PID= BASE_PID=
cleanup() {
    for pid in $SERVER_PID $BASE_PID; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ ${KEEP_TMP:-0} == 1 ]]; then echo "bench-media: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# --- the files: a faststart MP4 (ftyp, moov with mvhd/tkhd/mdia, then mdat) of SIZE_MB -------
python3 - "$TMP/upload.mp4" $((SIZE_MB * 1024 * 1024)) "$TMP/serve.mp4" $((10 * 1024 * 1024)) <<'PY'
import struct, sys
def box(kind, payload): return struct.pack(">I", 8 + len(payload)) + kind + payload
def full(kind, version_flags, payload): return box(kind, struct.pack(">I", version_flags) + payload)
def mp4(total, width=1920, height=1080, duration_ms=95_000):
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    mvhd = full(b"mvhd", 0, struct.pack(">IIII", 0, 0, 1000, duration_ms) + struct.pack(">IH", 0x10000, 0x100) + b"\0" * 10 + matrix + b"\0" * 24 + struct.pack(">I", 2))
    tkhd = full(b"tkhd", 3, struct.pack(">IIIII", 0, 0, 1, 0, duration_ms) + b"\0" * 8 + struct.pack(">HHHH", 0, 0, 0, 0) + matrix + struct.pack(">II", width << 16, height << 16))
    mdhd = full(b"mdhd", 0, struct.pack(">IIII", 0, 0, 1000, duration_ms) + struct.pack(">HH", 0x55c4, 0))
    hdlr = full(b"hdlr", 0, struct.pack(">I", 0) + b"vide" + b"\0" * 12 + b"video\0")
    moov = box(b"moov", mvhd + box(b"trak", tkhd + box(b"mdia", mdhd + hdlr)))
    head = box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2mp41") + moov
    mdat_len = total - len(head) - 8
    return head + struct.pack(">I", 8 + mdat_len) + b"mdat", mdat_len
for path, total in ((sys.argv[1], int(sys.argv[2])), (sys.argv[3], int(sys.argv[4]))):
    head, n = mp4(total)
    with open(path, "wb") as f:
        f.write(head)
        chunk = bytes(range(256)) * 4096  # 1 MiB, not all zeros
        while n > 0:
            f.write(chunk[: min(n, len(chunk))])
            n -= min(n, len(chunk))
PY
BYTES=$(stat -c %s "$TMP/upload.mp4")

# --- the server ------------------------------------------------------------------------------
PORT=$(free_port)
export SOKU_DATABASE_URL="sqlite://$TMP/soku.db" SOKU_LOG=warn SOKU_RATE_LIMITS=off
export SOKU_MEDIA_STORE="$TMP/media"
"$BIN" serve --listen "127.0.0.1:$PORT" >"$TMP/server.log" 2>&1 &
SERVER_PID=$!
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 300); do curl -fs -o /dev/null "$BASE/readyz" && break; sleep 0.1; done
curl -fs -o /dev/null "$BASE/readyz" || { tail -n 20 "$TMP/server.log" >&2; die "the server did not start"; }
USER_ID=$("$BIN" admin user create --email bench@example.com | tail -n 1)
"$BIN" admin subscription set --uid "$USER_ID" --status active >/dev/null
KEY=$("$BIN" admin key create --uid "$USER_ID" --name bench | tail -n 1)

now() { date +%s.%N; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b / 1048576 / s }'; }
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# --- 1. upload against cp --------------------------------------------------------------------
sync
t0=$(now); cp "$TMP/upload.mp4" "$TMP/copy.mp4"; t1=$(now)
CP_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
t0=$(now); cp "$TMP/upload.mp4" "$TMP/copy-sync.mp4"; sync "$TMP/copy-sync.mp4"; t1=$(now)
CPSYNC_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
rm -f "$TMP/copy.mp4" "$TMP/copy-sync.mp4"
sync

curl -fs -o /dev/null -H "soku-api-key: $KEY" "$BASE/v1/media"
IDLE_KB=$(status_kb "$SERVER_PID" VmRSS)
echo 5 >"/proc/$SERVER_PID/clear_refs"   # resets VmHWM (the peak) to the present figure
t0=$(now)
code=$(curl -sS -o "$TMP/upload.json" -w '%{http_code}' -H "soku-api-key: $KEY" \
    -H 'content-type: video/mp4' -X POST -T "$TMP/upload.mp4" "$BASE/v1/media/uploads")
t1=$(now)
[[ $code == 201 ]] || { cat "$TMP/upload.json" >&2; die "the upload answered $code"; }
PEAK_KB=$(status_kb "$SERVER_PID" VmHWM)
UP_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
grep -q "\"size\":$BYTES" "$TMP/upload.json" || die "the upload's size is not $BYTES: $(cat "$TMP/upload.json")"

# --- 2. serving against nginx (or python) ----------------------------------------------------
code=$(curl -sS -o "$TMP/serve.json" -w '%{http_code}' -H "soku-api-key: $KEY" \
    -H 'content-type: video/mp4' --data-binary "@$TMP/serve.mp4" "$BASE/v1/media/uploads")
[[ $code == 201 ]] || die "the 10 MB upload answered $code"
HOSTED=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["url"])' "$TMP/serve.json")
cmp <(curl -fs "$HOSTED") "$TMP/serve.mp4" || die "the hosted file differs from the uploaded one"

BPORT=$(free_port)
mkdir -p "$TMP/www"; cp "$TMP/serve.mp4" "$TMP/www/serve.mp4"
chmod o+rx "$TMP" "$TMP/www"; chmod o+r "$TMP/www/serve.mp4"   # nginx's workers run unprivileged
if [[ -n $NGINX ]]; then
    BASELINE="nginx ($($NGINX -v 2>&1 | sed 's/.*nginx\///'), 2 workers, sendfile on)"
    cat >"$TMP/nginx.conf" <<NGX
worker_processes 2;
daemon off;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    client_body_temp_path $TMP/nginx-tmp;
    server { listen 127.0.0.1:$BPORT; root $TMP/www; }
}
NGX
    mkdir -p "$TMP/nginx-tmp"
    "$NGINX" -c "$TMP/nginx.conf" -p "$TMP" &
else
    BASELINE="python3 -m http.server"
    (cd "$TMP/www" && exec python3 -m http.server --bind 127.0.0.1 "$BPORT" >/dev/null 2>&1) &
fi
BASE_PID=$!
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$BPORT/serve.mp4" && break; sleep 0.1; done
cmp <(curl -fs "http://127.0.0.1:$BPORT/serve.mp4") "$TMP/serve.mp4" || die "the baseline does not serve the file"

# Requests/s; fails when any answer was not 2xx (wrk counts those as requests too).
run_wrk() {
    local out; out=$(wrk -t2 -c16 -d"$DURATION" --timeout 10s "$1" 2>&1)
    if grep -q 'Non-2xx' <<<"$out"; then echo "$out" >&2; die "non-2xx answers from $1"; fi
    awk '/Requests\/sec/ { print $2 }' <<<"$out"
}
run_wrk "$HOSTED" >/dev/null   # warm-up (page cache, connections)
SOKU_RPS=$(run_wrk "$HOSTED")
BASE_RPS=$(run_wrk "http://127.0.0.1:$BPORT/serve.mp4")

echo
echo "soku media benchmark, $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ)"
printf 'upload of %s MB:  soku %s MB/s (%.2f s, hashed, probed, in the page cache like cp'"'"'s)\n' "$SIZE_MB" "$(mbps "$BYTES" "$UP_S")" "$UP_S"
printf '                  cp %s MB/s (%.2f s): ratio %s %%;   cp + sync %s MB/s (%.2f s): ratio %s %%\n' \
    "$(mbps "$BYTES" "$CP_S")" "$CP_S" "$(awk -v a="$CP_S" -v b="$UP_S" 'BEGIN { printf "%.0f", 100 * a / b }')" \
    "$(mbps "$BYTES" "$CPSYNC_S")" "$CPSYNC_S" "$(awk -v a="$CPSYNC_S" -v b="$UP_S" 'BEGIN { printf "%.0f", 100 * a / b }')"
printf 'server memory:    idle %d MB, peak during the upload %d MB (+%d MB)\n' \
    $((IDLE_KB / 1024)) $((PEAK_KB / 1024)) $(((PEAK_KB - IDLE_KB) / 1024))
printf 'GET 10 MB, 16 connections, %s:  soku %s req/s (%s MB/s)   %s %s req/s (%s MB/s)   ratio %s %%\n' \
    "$DURATION" "$SOKU_RPS" "$(awk -v r="$SOKU_RPS" 'BEGIN { printf "%.0f", r * 10 }')" \
    "$BASELINE" "$BASE_RPS" "$(awk -v r="$BASE_RPS" 'BEGIN { printf "%.0f", r * 10 }')" \
    "$(awk -v a="$SOKU_RPS" -v b="$BASE_RPS" 'BEGIN { printf "%.0f", 100 * a / b }')"
