#!/usr/bin/env bash
# The OpenAPI document works with real tools: `/v1/openapi.json` passes openapi-spec-validator,
# openapi-python-client generates a client from it, and that generated code creates a post for
# several platforms with a test key, reads its targets back and lists keys with an ID token
# (scripts/openapi_client_check.py).
#
#   scripts/openapi-client-check.sh                     # builds target/debug/soku
#   SOKU_BIN=target/release/soku scripts/openapi-client-check.sh
#
# Needs python3 (with venv) and PyPI; everything else lives in a temporary directory that is
# removed at the end, with the server it started. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

step() { printf '\n== %s\n' "$*"; }

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

step "the soku binary"
if [ -z "${SOKU_BIN:-}" ]; then
  cargo build -p soku-server --bin soku
  SOKU_BIN="$ROOT/target/debug/soku"
fi
SOKU_BIN=$(cd "$(dirname "$SOKU_BIN")" && pwd)/$(basename "$SOKU_BIN")
"$SOKU_BIN" --version

step "openapi-spec-validator and openapi-python-client in a virtual environment"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet --disable-pip-version-check \
  openapi-spec-validator==0.9.0 openapi-python-client==0.29.1 python-dateutil
"$WORK/venv/bin/pip" list --disable-pip-version-check 2>/dev/null \
  | grep -E '^(openapi-spec-validator|openapi-python-client) '

step "a server on a free port with a fresh SQLite database"
PORT=$("$WORK/venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
export SOKU_DATABASE_URL="sqlite://$WORK/soku.db"
SOKU_LOG=warn "$SOKU_BIN" serve --listen "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  curl -sf "$BASE/healthz" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log"; exit 1; }
  sleep 0.1
done
curl -sf "$BASE/healthz" >/dev/null || { echo "the server did not start"; cat "$WORK/server.log"; exit 1; }
echo "listening on $BASE"

step "a user with a subscription, a test key and an ID token (soku admin)"
USER_ID=$("$SOKU_BIN" admin user create --email openapi-check@example.com)
"$SOKU_BIN" admin subscription set --uid "$USER_ID" --status active >/dev/null
TEST_KEY=$("$SOKU_BIN" admin key create --uid "$USER_ID" --name openapi-check --test)
TOKEN=$("$SOKU_BIN" admin token --uid "$USER_ID")
echo "user $USER_ID"

step "the document validates"
curl -sf "$BASE/v1/openapi.json" -o "$WORK/openapi.json"
"$WORK/venv/bin/openapi-spec-validator" "$WORK/openapi.json"

step "a generated client"
# No post-generation hooks: they format the code with ruff, which the check does not need.
printf 'post_hooks: []\n' >"$WORK/generator.yaml"
"$WORK/venv/bin/openapi-python-client" generate --path "$WORK/openapi.json" \
  --config "$WORK/generator.yaml" --meta none --output-path "$WORK/client/soku_client"

step "the generated client creates a post, reads its targets and lists keys"
PYTHONPATH="$WORK/client" SOKU_BASE_URL="$BASE" SOKU_TEST_KEY="$TEST_KEY" SOKU_ID_TOKEN="$TOKEN" \
  "$WORK/venv/bin/python" "$ROOT/scripts/openapi_client_check.py"

echo
echo "openapi client check: ok"
