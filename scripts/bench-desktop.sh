#!/usr/bin/env bash
# Measures the desktop app's start-up time (launch to /health answering) and its
# idle memory, beside the headless `agentgate serve` measured the same way in
# the same run as the baseline; then the desktop's memory in each state a
# person leaves it in (window open, window closed to the tray, started hidden
# at login), release and debug builds. A private X display, D-Bus session and
# notification service, like the tests; a stand-in tray host (the
# StatusNotifierWatcher name, owned) so that closing the window closes it.
# Usage: scripts/bench-desktop.sh [runs]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
if [ -z "${AGENTGATE_BENCH_INSIDE:-}" ]; then
  . scripts/lib.sh
  install_packages "${BUILD_PACKAGES[@]}" "${DESKTOP_BUILD_PACKAGES[@]}" bc curl dbus xvfb dunst \
    python3-dbus python3-xlib
  ensure_rust
  cargo build --release --locked -p agentgate-desktop --features custom-protocol -q
  cargo build --release --locked -p agentgate -q
  cargo build --locked -p agentgate-desktop -q
  export AGENTGATE_BENCH_INSIDE=1
  exec dbus-run-session -- bash "$0" "$@"
fi

display=$((100 + RANDOM % 800))
Xvfb ":$display" -screen 0 1280x900x24 -nolisten tcp >/dev/null 2>&1 &
export DISPLAY=":$display"
for _ in $(seq 100); do [ -S "/tmp/.X11-unix/X$display" ] && break; sleep 0.1; done
dunst -config /dev/null >/dev/null 2>&1 &
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
sleep 0.5

# Resident memory of a process and all its descendants (WebKit runs its web
# and network processes apart), in MiB.
tree_rss() {
  local pids="$1" all="$1" next
  while [ -n "$pids" ]; do
    next=$(for p in $pids; do pgrep -P "$p" || true; done | tr '\n' ' ')
    all="$all $next"; pids="$next"
  done
  local kb=0
  for p in $all; do
    kb=$((kb + $(awk '/VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
  done
  echo "scale=1; $kb / 1024" | bc
}

measure() { # name command...
  local name=$1; shift
  local total=0 mem=""
  for i in $(seq "$runs"); do
    data=$(mktemp -d); keys=$(mktemp -d)
    target/release/agentgate secrets generate-key "$keys/k" >/dev/null 2>&1
    port=$((20000 + RANDOM % 20000))
    start=$(date +%s%N)
    AGENTGATE_DATA_DIR=$data AGENTGATE_CREDENTIAL_BACKEND=encrypted-file AGENTGATE_SECRETS_KEY_FILE=$keys/k \
      AGENTGATE_LISTEN=127.0.0.1:$port AGENTGATE_ADMIN_LISTEN=127.0.0.1:$((port + 1)) AGENTGATE_LOG=warn \
      "$@" >/dev/null 2>&1 &
    pid=$!
    until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do sleep 0.005; done
    end=$(date +%s%N)
    total=$((total + (end - start) / 1000))
    if [ "$i" = 1 ]; then sleep 10; mem=$(tree_rss "$pid"); fi
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$data" "$keys"
  done
  echo "$name $((total / runs / 1000)) $mem"
}

read -r _ serve_ms serve_mb < <(measure serve target/release/agentgate serve)
read -r _ app_ms app_mb < <(measure desktop target/release/agentgate-desktop)
echo "start-up to /health answering (mean of $runs): headless serve ${serve_ms} ms, desktop app ${app_ms} ms (ratio $(echo "scale=2; $app_ms / $serve_ms" | bc))"
echo "resident memory after 10 s idle (with child processes): headless serve ${serve_mb} MiB, desktop app ${app_mb} MiB"

# The tray host's name, held for the rest of the run.
/usr/bin/python3 -c '
import dbus, time
dbus.SessionBus().request_name("org.kde.StatusNotifierWatcher")
time.sleep(86400)' &
sleep 0.5

# Sends the window the close a window manager's button would.
close_window() { /usr/bin/python3 scripts/close_window.py "$1" >/dev/null; }

states() { # profile binary
  local profile=$1 bin=$2 open closed hidden
  data=$(mktemp -d); keys=$(mktemp -d)
  target/release/agentgate secrets generate-key "$keys/k" >/dev/null 2>&1
  export AGENTGATE_DATA_DIR=$data AGENTGATE_CREDENTIAL_BACKEND=encrypted-file AGENTGATE_SECRETS_KEY_FILE=$keys/k \
    AGENTGATE_LISTEN=127.0.0.1:0 AGENTGATE_ADMIN_LISTEN=127.0.0.1:0 AGENTGATE_LOG=warn
  "$bin" >/dev/null 2>&1 &
  pid=$!
  sleep 10; open=$(tree_rss "$pid")
  close_window agentgate
  sleep 10; closed=$(tree_rss "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  "$bin" --hidden >/dev/null 2>&1 &
  pid=$!
  sleep 10; hidden=$(tree_rss "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  unset AGENTGATE_DATA_DIR AGENTGATE_CREDENTIAL_BACKEND AGENTGATE_SECRETS_KEY_FILE AGENTGATE_LISTEN AGENTGATE_ADMIN_LISTEN AGENTGATE_LOG
  rm -rf "$data" "$keys"
  echo "desktop $profile, resident memory with child processes after 10 s in each state: window open ${open} MiB, window closed ${closed} MiB, started hidden ${hidden} MiB"
}
states release target/release/agentgate-desktop
states debug target/debug/agentgate-desktop
