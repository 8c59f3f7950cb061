#!/usr/bin/env bash
# Sets up and runs the agentgate gateway on this machine.
# Usage: scripts/run.sh [agentgate serve options]   (e.g. --port 3050)
#
# Service credentials go to the OS keychain. On a machine without one (a server
# with no desktop session) it switches the data folder to an encrypted file
# whose key is kept at ~/.config/agentgate/secrets.key, outside the data folder,
# and writes that choice to the data folder's config.toml, so that every later
# `agentgate` command (in any terminal) finds it.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

install_packages "${BUILD_PACKAGES[@]}"
ensure_rust
cargo build --release --locked
bin="$PWD/target/release/agentgate"

if [ -z "${AGENTGATE_CREDENTIAL_BACKEND:-}" ] && ! AGENTGATE_CREDENTIAL_BACKEND=keychain "$bin" keys list >/dev/null 2>&1; then
  echo "no OS keychain here: switching this data folder to the encrypted-file backend" >&2
  "$bin" secrets use-file
fi

# The hints name the binary by its full path and carry any data folder given
# in the environment, so that they work when pasted into another terminal.
prefix=""
if [ -n "${AGENTGATE_DATA_DIR:-}" ]; then
  prefix="AGENTGATE_DATA_DIR=$(printf %q "$AGENTGATE_DATA_DIR") "
fi
cat >&2 <<HINT
agentgate is starting. In another terminal:
  ${prefix}$(printf %q "$bin") admin set-password                  # once: the admin password
  ${prefix}$(printf %q "$bin") keys create my-agent                # prints the agent's key once
  ${prefix}$(printf %q "$bin") accounts add github personal        # reads a GitHub token from a hidden prompt
  ${prefix}$(printf %q "$bin") access set github personal only my-agent
  ${prefix}$(printf %q "$bin") rules preset github personal no-deletions
HINT
exec "$bin" serve "$@"
