#!/bin/sh
# Builds the effect into a Sandstream component: ./build.sh [OUT.wasm]
# (intermediate files go to ./build, or to $BUILD_DIR).
#
# Needs Zig 0.17 (nothing else: it brings clang and wasi-libc) and
# sandstream on PATH (or SANDSTREAM=/path/to/sandstream). ZIG names the zig
# command and may be several words, e.g. for Zig from PyPI:
#     ZIG="python3 -m ziglang" ./build.sh
# (it is split on spaces, so its path must not contain any).
set -eu
cd "$(dirname "$0")"
WORLD=av-effect-mapped
OUT=${1:-gain-grayscale-zig.wasm}
SANDSTREAM=${SANDSTREAM:-sandstream}
ZIG=${ZIG:-zig}
BUILD=${BUILD_DIR:-build}
mkdir -p "$BUILD"
# The bindings of the world (effect.h, effect.c) and the helper
# sandstream.zig, which declares effect.h's types itself.
"$SANDSTREAM" -q bindings --lang zig --world "$WORLD" "$BUILD"
# A core module: a reactor (no main; _initialize runs libc's constructors),
# SIMD on, ReleaseFast (ReleaseSmall is 3x slower here), symbols kept
# (-fno-strip: `sandstream componentize` drops the DWARF, keeping function
# names for backtraces), a 1 MiB stack as Rust guests get. Modules:
# gain_grayscale.zig (the root) imports `sandstream`; effect.c is compiled
# beside them, against libc (-lc). Options before a -M apply to that module.
$ZIG build-exe -fno-entry -mexec-model=reactor -lc --stack 1048576 \
    --name core -femit-bin="$BUILD/core.wasm" \
    -target wasm32-wasi -mcpu=generic+simd128 -O ReleaseFast -fno-strip \
    -I"$BUILD" "$BUILD/effect.c" "$BUILD/effect_component_type.o" \
    --dep sandstream -Mroot=gain_grayscale.zig -Msandstream="$BUILD/sandstream.zig"
# The component: the world's types embedded, WASI preview 1 adapted.
"$SANDSTREAM" -q componentize "$BUILD/core.wasm" --world "$WORLD" -o "$OUT"
