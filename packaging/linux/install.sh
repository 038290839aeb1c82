#!/usr/bin/env bash
# Install a built DIAT Studio (dist/diat-studio) for the current user: the program folder, a
# `diat-studio` command, the menu entry with its icon, and "Open with" for JPEG/PNG/WebP/TIFF/BMP.
#   packaging/linux/install.sh [BUILD_DIR]        (default: dist/diat-studio)
#   packaging/linux/install.sh --uninstall
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
data="${XDG_DATA_HOME:-$HOME/.local/share}"
prefix="$data/diat-studio/app"
bin="$HOME/.local/bin"

if [[ "${1:-}" == "--uninstall" ]]; then
    rm -rf "$prefix" "$bin/diat-studio" "$data/applications/diat-studio.desktop" \
        "$data/icons/hicolor/scalable/apps/diat-studio.svg"
    command -v update-desktop-database >/dev/null && update-desktop-database "$data/applications" || true
    echo "DIAT Studio removed (your models in $data/diat-studio/models are kept)."
    exit 0
fi

build="${1:-$root/dist/diat-studio}"
if [[ ! -x "$build/diat-studio" ]]; then
    echo "No build at $build: run 'make package' first." >&2
    exit 1
fi
mkdir -p "$prefix" "$bin" "$data/applications" "$data/icons/hicolor/scalable/apps"
rm -rf "$prefix"
cp -a "$build" "$prefix"
ln -sf "$prefix/diat-studio" "$bin/diat-studio"
install -m 644 "$root/resources/icons/diat-studio.svg" "$data/icons/hicolor/scalable/apps/diat-studio.svg"
sed "s|^Exec=.*|Exec=$prefix/diat-studio %f|" "$here/diat-studio.desktop" > "$data/applications/diat-studio.desktop"
command -v update-desktop-database >/dev/null && update-desktop-database "$data/applications" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q "$data/icons/hicolor" || true
echo "Installed to $prefix; menu entry: DIAT Studio; command: $bin/diat-studio"
