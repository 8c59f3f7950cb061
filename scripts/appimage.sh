#!/usr/bin/env bash
# Builds the desktop app's AppImage from its .deb: the same files (both
# programs, the desktop entry, the icons) in an AppDir, packed as SquashFS
# behind the AppImage runtime.
#
# Tauri's own AppImage bundler downloads linuxdeploy and its plugins from
# outside the package registries, which this project's machines cannot reach;
# so the runtime comes from the `appimage` crate on crates.io, which ships it
# (its sha256 is checked below). The AppImage does not carry WebKitGTK: like
# the .deb it needs the system's libwebkit2gtk-4.1 (README says so).
#
# Usage: scripts/appimage.sh PATH/TO/agentgate.deb   (prints the AppImage's path)
set -euo pipefail
cd "$(dirname "$0")/.."
deb=$1
runtime_sha256=328e0d745c5c6817048c27bc3e8314871703f8f47ffa81a37cb06cd95a94b323

# The runtime, fetched through cargo as the crate that ships it.
tools=target/tools/appimage-runtime
mkdir -p "$tools/src"
cat >"$tools/Cargo.toml" <<'EOF'
[package]
name = "appimage-runtime"
version = "0.0.0"
edition = "2021"
publish = false
[workspace]
[dependencies]
appimage = "=0.4.0"
EOF
echo 'fn main() {}' >"$tools/src/main.rs"
cargo fetch --quiet --manifest-path "$tools/Cargo.toml"
runtime=$(cargo metadata --format-version 1 --manifest-path "$tools/Cargo.toml" |
  python3 -c 'import json, sys, os
m = json.load(sys.stdin)
p = next(p for p in m["packages"] if p["name"] == "appimage")
print(os.path.join(os.path.dirname(p["manifest_path"]), "assets", "runtime-x86_64"))')
echo "$runtime_sha256  $runtime" | sha256sum --check --quiet

version=$(dpkg-deb --field "$deb" Version)
out=target/release/bundle/appimage
appdir=$out/agentgate.AppDir
rm -rf "$appdir" && mkdir -p "$appdir"
dpkg-deb -x "$deb" "$appdir"
# What the AppImage format looks for at the top: the desktop entry, its icon
# and the entry point. `AppImage cli ARGS` runs the command-line tool.
cp "$appdir/usr/share/applications/agentgate.desktop" "$appdir/agentgate.desktop"
cp "$appdir/usr/share/icons/hicolor/128x128/apps/agentgate-desktop.png" "$appdir/agentgate-desktop.png"
ln -s agentgate-desktop.png "$appdir/.DirIcon"
cat >"$appdir/AppRun" <<'EOF'
#!/bin/sh
here=$(dirname "$(readlink -f "$0")")
if [ "${1:-}" = cli ]; then
  shift
  exec "$here/usr/bin/agentgate" "$@"
fi
exec "$here/usr/bin/agentgate-desktop" "$@"
EOF
chmod +x "$appdir/AppRun"

image=$out/agentgate_${version}_amd64.AppImage
rm -f "$image" "$out/payload.squashfs"
mksquashfs "$appdir" "$out/payload.squashfs" -root-owned -noappend -comp gzip -quiet -no-progress >/dev/null
cat "$runtime" "$out/payload.squashfs" >"$image"
chmod +x "$image"
rm -f "$out/payload.squashfs"
echo "$image"
