#!/usr/bin/env bash
# Schema-driven fuzzing: schemathesis generates requests from both OpenAPI
# documents (the agent API's and the admin API's) and sends them to a real
# gateway on loopback, with a stub service behind it; any 5xx fails the run.
# Usage: scripts/fuzz.sh [path/to/agentgate] (default target/debug/agentgate).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/debug/agentgate}
TOOLS=target/tools
if [ ! -x "$TOOLS/venv/bin/st" ]; then
  echo "== installing schemathesis into $TOOLS/venv"
  python3 -m venv "$TOOLS/venv"
  "$TOOLS/venv/bin/pip" install --quiet 'schemathesis>=4,<5'
fi
ST="$TOOLS/venv/bin/st"

D=$(mktemp -d)
export HOME=$D AGENTGATE_DATA_DIR=$D/data AGENTGATE_CREDENTIAL_BACKEND=encrypted-file AGENTGATE_SECRETS_KEY_FILE=$D/keys/k
mkdir -p "$D/keys"
"$BIN" secrets generate-key "$D/keys/k" >/dev/null

# A stand-in for every service: 200 and a small JSON body for any request.
cat > "$D/upstream.py" <<'PY'
import http.server, json, sys
class Stub(http.server.BaseHTTPRequestHandler):
    def answer(self):
        n = int(self.headers.get("content-length") or 0)
        if n:
            self.rfile.read(n)
        body = json.dumps({"ok": True, "login": "octocat"}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = answer
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
print(server.server_address[1], flush=True)
server.serve_forever()
PY
python3 "$D/upstream.py" > "$D/upstream.port" &
PIDS=($!)
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$D"' EXIT
for _ in $(seq 100); do [ -s "$D/upstream.port" ] && break; sleep 0.1; done
UP=$(cat "$D/upstream.port")

KEY=$("$BIN" keys create fuzzer | grep -o 'rms_[A-Za-z0-9]*' | head -1)
echo -n ghp_fuzz | "$BIN" accounts add github personal --base-url "http://127.0.0.1:$UP" >/dev/null
echo 'fuzzing admin password' | "$BIN" admin set-password >/dev/null 2>&1
AP=$((20000 + RANDOM % 20000)); MP=$((AP + 1))
"$BIN" serve --listen "127.0.0.1:$AP" --admin-listen "127.0.0.1:$MP" 2>"$D/serve.log" &
PIDS+=($!)
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$AP/health" >/dev/null && break; sleep 0.1; done
TOKEN=$(curl -s -X POST -H 'content-type: application/json' \
  -d '{"password":"fuzzing admin password"}' "http://127.0.0.1:$MP/admin/login" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')

run() {
  "$ST" run "$1" --checks not_a_server_error --max-examples 10 --max-time 60 \
    --request-timeout 10 --suppress-health-check all --warnings off "${@:2}"
}
echo "== schemathesis: the agent API"
run "http://127.0.0.1:$AP/api/openapi.json" -H "Authorization: Bearer $KEY"
echo "== schemathesis: the admin API"
# Logout would end the fuzzer's own session; a webhook test reaches whatever
# address the fuzzer set, where a failure is a genuine 502.
run "http://127.0.0.1:$MP/admin/openapi.json" -H "Authorization: Bearer $TOKEN" \
  --exclude-path /admin/logout --exclude-path-regex '/webhook/test$'
if grep -qi "panicked" "$D/serve.log"; then
  echo "the gateway panicked during fuzzing:"; grep -i -A5 panicked "$D/serve.log"; exit 1
fi
echo "== fuzzing found no server error"
