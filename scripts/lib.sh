# Shared setup for the project's scripts: installs what is missing, nothing else.

# Installs the named Debian packages that are not installed yet. apt sometimes
# fails on a damaged download and passes on the next try, so it retries.
install_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing: ${missing[*]}" >&2
  $sudo apt-get update -qq
  for attempt in 1 2 3; do
    if DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; then
      return 0
    fi
    echo "apt-get install failed (attempt $attempt); retrying" >&2
    sleep 3
  done
  return 1
}

# Makes sure a Rust toolchain new enough for the workspace is on PATH.
ensure_rust() {
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
  if ! command -v cargo >/dev/null 2>&1; then
    install_packages curl ca-certificates
    echo "installing Rust with rustup" >&2
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy
    . "$HOME/.cargo/env"
  fi
}

BUILD_PACKAGES=(build-essential pkg-config libdbus-1-dev)
# What the desktop crate (Tauri 2 on WebKitGTK) needs to compile.
DESKTOP_BUILD_PACKAGES=(libssl-dev libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev)
