#!/usr/bin/env bash
# Sets up and runs the desktop tray app (the gateway in the background, native
# approve/reject notifications, credentials in the OS keychain).
# Usage: scripts/desktop.sh   (needs a graphical session)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

install_packages "${BUILD_PACKAGES[@]}" "${DESKTOP_BUILD_PACKAGES[@]}" gnome-keyring
ensure_rust
cargo build --release --locked -p agentgate-desktop --features custom-protocol
exec target/release/agentgate-desktop "$@"
