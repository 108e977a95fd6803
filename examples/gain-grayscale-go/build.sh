#!/bin/sh
# Builds the effect into a Sandstream component: ./build.sh [OUT.wasm]
# (intermediate files go to ./build, or to $BUILD_DIR).
#
# Needs Go 1.24 or newer (GO=/path/to/go) and nothing from the network,
# and sandstream on PATH (or SANDSTREAM=/path/to/sandstream).
set -eu
cd "$(dirname "$0")"
WORLD=av-effect-mapped
OUT=${1:-gain-grayscale-go.wasm}
SANDSTREAM=${SANDSTREAM:-sandstream}
GO=${GO:-go}
BUILD=${BUILD_DIR:-build}
mkdir -p "$BUILD"
# The Go SDK (the module sandstream.dev/sandstream) into $BUILD/sandstream,
# and a Go workspace of this module and the SDK, so go.mod's requirement is
# met without a download.
"$SANDSTREAM" -q bindings --lang go --world "$WORLD" "$BUILD"
printf 'go 1.24\n\nuse (\n\t%s\n\t./sandstream\n)\n' "$PWD" >"$BUILD/go.work"
# A core module: a library (c-shared: `_initialize`, no `_start`), built
# only from this directory and the SDK (no proxy, no toolchain download),
# paths trimmed and no version-control stamp (the same bytes from any
# checkout), function names kept for backtraces.
GOWORK="$(cd "$BUILD" && pwd)/go.work" GOOS=wasip1 GOARCH=wasm GOPROXY=off GOTOOLCHAIN=local \
    "$GO" build -buildmode=c-shared -trimpath -buildvcs=false -o "$BUILD/core.wasm" .
# The component: the world's types embedded, WASI preview 1 adapted.
"$SANDSTREAM" -q componentize "$BUILD/core.wasm" --world "$WORLD" -o "$OUT"
