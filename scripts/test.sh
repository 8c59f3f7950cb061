#!/usr/bin/env bash
# Sets up and runs every check: formatting, clippy, and all tests, with the real
# parts: the OS keychain (gnome-keyring on a private D-Bus session), Debian's
# Chromium with ChromeDriver for the web admin, and for the desktop app a
# virtual display (Xvfb), dunst as notification service and tauri-driver; then
# fuzzes both APIs from their OpenAPI documents; builds the desktop app's .deb
# bundle and its AppImage.
# Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

install_packages "${BUILD_PACKAGES[@]}" "${DESKTOP_BUILD_PACKAGES[@]}" \
  dbus dbus-x11 gnome-keyring libsecret-tools chromium chromium-driver \
  xvfb xauth dunst libnotify-bin libglib2.0-bin imagemagick webkit2gtk-driver \
  python3 python3-venv python3-xlib curl squashfs-tools
# npm runs the Tauri CLI that bundles the .deb; any recent Node.js will do.
command -v npm >/dev/null 2>&1 || install_packages nodejs npm
ensure_rust
# A one-off build gains nothing from incremental caches, which for this
# workspace take over a gigabyte of disk.
export CARGO_INCREMENTAL=0
rustup component add rustfmt clippy >/dev/null 2>&1 || true
# tauri-driver drives the desktop window over WebDriver; kept inside the clone.
if [ ! -x target/tools/bin/tauri-driver ]; then
  echo "== installing tauri-driver into target/tools"
  cargo install --quiet --locked --root target/tools tauri-driver --version '^2'
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test (inside a D-Bus session with an unlocked throw-away keyring)"
export AGENTGATE_TEST_KEYCHAIN=1 AGENTGATE_TEST_BROWSER=1 AGENTGATE_TEST_DESKTOP=1
dbus-run-session -- bash -c '
  set -euo pipefail
  export XDG_DATA_HOME="$(mktemp -d)" XDG_RUNTIME_DIR="$(mktemp -d)"
  chmod 700 "$XDG_RUNTIME_DIR"
  trap "kill \$(jobs -p) 2>/dev/null || true" EXIT
  printf "throwaway-test-keyring" | gnome-keyring-daemon --unlock --components=secrets >/dev/null
  # A virtual display for the desktop app, and dunst as its notification
  # service, started before anything asks for one (a first call would start
  # another dunst with the default config).
  display=$((100 + RANDOM % 800))
  Xvfb ":$display" -screen 0 1280x900x24 -nolisten tcp >/dev/null 2>&1 &
  export DISPLAY=":$display"
  for _ in $(seq 100); do [ -S "/tmp/.X11-unix/X$display" ] && break; sleep 0.1; done
  dunst -config /dev/null >/dev/null 2>&1 &
  for _ in $(seq 100); do
    gdbus call --session --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
      --method org.freedesktop.DBus.NameHasOwner org.freedesktop.Notifications 2>/dev/null | grep -q true && break
    sleep 0.1
  done
  cargo test --workspace --locked
'

echo "== schema-driven fuzzing of both APIs (schemathesis)"
scripts/fuzz.sh target/debug/agentgate

echo "== the desktop app's .deb bundle (Tauri CLI from npm, release build)"
# `npm install` with the committed lock (npm ci refuses a lock that lists only
# this platform's prebuilt CLI); the version is pinned exactly in package.json.
npm install --no-audit --no-fund --silent
# The package carries the `agentgate` CLI too (same data folder and keychain).
cargo build --release --locked -p agentgate
npx tauri build --bundles deb --ci
deb=$(ls -t target/release/bundle/deb/*.deb | head -1)
contents=$(dpkg-deb --contents "$deb")
grep -q "usr/bin/agentgate-desktop" <<<"$contents"
grep -Eq "usr/bin/agentgate$" <<<"$contents"
grep -q "usr/share/applications/agentgate.desktop" <<<"$contents"
dpkg-deb --field "$deb" Depends | grep -q libwebkit2gtk-4.1
# Desktops match the window (class "agentgate") to this entry by it.
unpacked=$(mktemp -d)
dpkg-deb -x "$deb" "$unpacked"
grep -qx "StartupWMClass=agentgate" "$unpacked/usr/share/applications/agentgate.desktop"
rm -rf "$unpacked"
echo "built $deb"

echo "== the AppImage, from the .deb's files (scripts/appimage.sh)"
appimage=$(scripts/appimage.sh "$deb")
# Run without FUSE (unpacked to a temporary folder first), as CI can.
grep -q "^agentgate-desktop " <<<"$("$appimage" --appimage-extract-and-run --version)"
grep -q "^agentgate " <<<"$("$appimage" --appimage-extract-and-run cli --version)"
echo "built $appimage"
echo "disk used by the build: $(du -sh target | cut -f1)"
