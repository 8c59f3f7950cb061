#!/usr/bin/env bash
# Sets up and runs the agentgate gateway on this machine.
# Usage: scripts/run.sh [agentgate serve options]   (e.g. --port 3050)
#
# Service credentials go to the OS keychain. On a machine without one (a server
# with no desktop session) it falls back to an encrypted file whose key is kept
# at ~/.config/agentgate/secrets.key, outside the data folder.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

install_packages "${BUILD_PACKAGES[@]}"
ensure_rust
cargo build --release --locked
bin="$PWD/target/release/agentgate"

if [ -z "${AGENTGATE_CREDENTIAL_BACKEND:-}" ] && ! AGENTGATE_CREDENTIAL_BACKEND=keychain "$bin" keys list >/dev/null 2>&1; then
  export AGENTGATE_CREDENTIAL_BACKEND=encrypted-file
  export AGENTGATE_SECRETS_KEY_FILE="${AGENTGATE_SECRETS_KEY_FILE:-$HOME/.config/agentgate/secrets.key}"
  if [ ! -f "$AGENTGATE_SECRETS_KEY_FILE" ]; then
    mkdir -p "$(dirname "$AGENTGATE_SECRETS_KEY_FILE")"
    "$bin" secrets generate-key "$AGENTGATE_SECRETS_KEY_FILE"
  fi
  echo "no OS keychain here: using the encrypted-file backend (key: $AGENTGATE_SECRETS_KEY_FILE)" >&2
fi

cat >&2 <<HINT
agentgate is starting. In another terminal:
  $bin admin set-password           # once, for the admin API
  $bin keys create my-agent         # prints the agent's key once
  $bin accounts add github personal # reads a GitHub token from a hidden prompt
HINT
exec "$bin" serve "$@"
