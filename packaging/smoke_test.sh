#!/usr/bin/env bash
# Runs a built bundle the way a user would, with no Python involved:
#   1. `diat-studio --version` and `info` (the bundle starts; ONNX Runtime and dlib load),
#   2. the real window, offscreen, on the bundled sample photo: it must find the face,
#   3. `diat-studio batch` with one edit on a folder of two photos: both must come out "done".
# The edit is the first bundled model; while none is bundled, pass MODELS_DIR and EDIT (make
# smoke-package then uses a test fixture model, and says so).
#   packaging/smoke_test.sh [BUILD_DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/dist/diat-studio}"
exe="$build/diat-studio"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export QT_QPA_PLATFORM=offscreen XDG_CONFIG_HOME="$work/config" XDG_DATA_HOME="$work/data"

"$exe" --version
"$exe" info | sed -n '1,3p;/providers/,$p'

started=$(date +%s.%N)
"$exe" --smoke-test 2>&1 | grep -v propagateSizeHints
finished=$(date +%s.%N)
echo "window start, open the sample and find the face: $(echo "$finished - $started" | bc) s"

extra=()
if [[ -n "${MODELS_DIR:-}" ]]; then extra+=(--models-dir "$MODELS_DIR"); fi
# experimental models count too: the smoke test is about the bundle running, not about model quality
extra+=(--experimental)
edit="${EDIT:-$("$exe" models "${extra[@]}" | awk '/^[^ ].*(local|global)/ {print $1; exit}')}"
if [[ -z "$edit" ]]; then
    echo "no model to apply: bundle one in resources/models, or set MODELS_DIR and EDIT" >&2
    exit 1
fi
mkdir -p "$work/in"
cp "$root/resources/sample/astronaut.jpg" "$work/in/first.jpg"
cp "$root/resources/sample/astronaut.jpg" "$work/in/second.jpg"
"$exe" batch "$work/in" "$work/out" --edit "$edit" "${extra[@]}"
test -f "$work/out/first.jpg" && test -f "$work/out/second.jpg"
echo "smoke test passed: $(du -sh "$build" | cut -f1) bundle"
