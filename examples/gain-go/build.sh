#!/bin/sh
# Builds the effect into a Sandstream component: ./build.sh [OUT.wasm]
# (intermediate files go to ./build, or to $BUILD_DIR).
#
# Needs Go 1.24 or newer (GO=/path/to/go) and nothing from the network: the
# SDK is ../../guest-sdk/go (see go.mod). Needs sandstream on PATH (or
# SANDSTREAM=/path/to/sandstream).
set -eu
cd "$(dirname "$0")"
WORLD=audio-effect-mapped
OUT=${1:-gain-go.wasm}
SANDSTREAM=${SANDSTREAM:-sandstream}
GO=${GO:-go}
BUILD=${BUILD_DIR:-build}
mkdir -p "$BUILD"
# A core module: a library (c-shared: `_initialize`, no `_start`), built
# only from this directory and the SDK (no proxy, no toolchain download),
# paths trimmed, function names kept for backtraces.
GOOS=wasip1 GOARCH=wasm GOPROXY=off GOTOOLCHAIN=local \
    "$GO" build -buildmode=c-shared -trimpath -o "$BUILD/core.wasm" .
# The component: the world's types embedded, WASI preview 1 adapted.
"$SANDSTREAM" -q componentize "$BUILD/core.wasm" --world "$WORLD" -o "$OUT"
