#!/bin/sh
# Builds the effect into a Sandstream component: ./build.sh [OUT.wasm]
# (the WIT goes to ./build, or to $BUILD_DIR).
#
# Needs Node.js 20 with npm (ComponentizeJS comes from npm, pinned by
# package-lock.json), and sandstream on PATH (or SANDSTREAM=/path/to/it).
set -eu
cd "$(dirname "$0")"
WORLD=audio-effect
OUT=${1:-gain-js.wasm}
SANDSTREAM=${SANDSTREAM:-sandstream}
BUILD=${BUILD_DIR:-build}
# npm writes this file last: without it the install is missing or broken.
if [ ! -f node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
# The WIT of this host version and the helper sandstream.js, which the
# effect imports: it is built from a copy beside them.
"$SANDSTREAM" -q bindings --lang js --world "$WORLD" "$BUILD"
cp gain.js "$BUILD/"
node build.mjs "$BUILD/gain.js" "$BUILD/wit" "$WORLD" "$OUT"
