#!/bin/sh
# Builds the effect into a Sandstream component: ./build.sh [OUT.wasm]
# (intermediate files go to ./build, or to $BUILD_DIR).
#
# Needs Zig 0.17 (nothing else: it brings clang and wasi-libc) and
# sandstream on PATH (or SANDSTREAM=/path/to/sandstream). ZIG names the zig
# command and may be several words, e.g. for Zig from PyPI:
#     ZIG="python3 -m ziglang" ./build.sh
# (it is split on spaces, so its path must not contain any). The helper
# sandstream.zig and strip-debug.zig come from guest-sdk/zig in the
# Sandstream repository (or ZIG_SDK=/path/to/that/folder).
set -eu
cd "$(dirname "$0")"
WORLD=audio-effect-mapped
OUT=${1:-gain-zig.wasm}
SANDSTREAM=${SANDSTREAM:-sandstream}
ZIG=${ZIG:-zig}
SDK=${ZIG_SDK:-../../guest-sdk/zig}
BUILD=${BUILD_DIR:-build}
mkdir -p "$BUILD"
# The bindings of the world (effect.h, effect.c), and effect.h as Zig: Zig
# 0.17 has no @cImport, translate-c does its work (the first run builds
# translate-c itself, which takes a minute or two).
"$SANDSTREAM" -q bindings --lang zig --world "$WORLD" "$BUILD"
$ZIG translate-c -target wasm32-wasi -lc "$BUILD/effect.h" >"$BUILD/effect.zig"
# A core module: a reactor (no main; _initialize runs libc's constructors),
# SIMD on, ReleaseFast (ReleaseSmall is 3x slower here), symbols kept
# (-fno-strip), a 1 MiB stack as Rust guests get. Modules: gain.zig (the
# root) imports `sandstream`, which imports `effect`; effect.c is compiled
# beside them, against libc (-lc). Options before a -M apply to that module.
$ZIG build-exe -fno-entry -mexec-model=reactor -lc --stack 1048576 \
    --name core -femit-bin="$BUILD/core.wasm" \
    -target wasm32-wasi -mcpu=generic+simd128 -O ReleaseFast -fno-strip \
    -I"$BUILD" "$BUILD/effect.c" "$BUILD/effect_component_type.o" \
    --dep sandstream -Mroot=gain.zig \
    --dep effect -Msandstream="$SDK/sandstream.zig" \
    -Meffect="$BUILD/effect.zig"
# Zig's linker writes function names only together with all debug info:
# keep the names (for backtraces), drop the DWARF sections.
$ZIG run "$SDK/strip-debug.zig" -- "$BUILD/core.wasm"
# The component: the world's types embedded, WASI preview 1 adapted.
"$SANDSTREAM" -q componentize "$BUILD/core.wasm" --world "$WORLD" -o "$OUT"
