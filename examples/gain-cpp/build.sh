#!/bin/sh
# Builds the effect into a Sandstream component: ./build.sh [OUT.wasm]
# (intermediate files go to ./build, or to $BUILD_DIR).
#
# Needs Zig 0.17 (its clang, libc++ and wasi-libc build for wasm32-wasi with
# nothing else installed) and sandstream on PATH (or SANDSTREAM=/path/to/it).
# ZIG names the zig command and may be several words, e.g. for Zig from PyPI:
#     ZIG="python3 -m ziglang" ./build.sh
# (it is split on spaces, so its path must not contain any). STRIP_DEBUG is
# guest-sdk/zig/strip-debug.zig of the Sandstream repository.
set -eu
cd "$(dirname "$0")"
WORLD=audio-effect-mapped
OUT=${1:-gain-cpp.wasm}
SANDSTREAM=${SANDSTREAM:-sandstream}
ZIG=${ZIG:-zig}
STRIP_DEBUG=${STRIP_DEBUG:-../../guest-sdk/zig/strip-debug.zig}
BUILD=${BUILD_DIR:-build}
mkdir -p "$BUILD"
# The bindings of the world (effect.h, effect.c) and the helper sandstream.h.
"$SANDSTREAM" -q bindings --lang cpp --world "$WORLD" "$BUILD"
# effect.c is C, which -std=c++20 would refuse: compile it on its own.
$ZIG cc -target wasm32-wasi -O2 -msimd128 -c "$BUILD/effect.c" -o "$BUILD/effect.o"
# A core module: a reactor (no main), SIMD on, no exceptions or RTTI, a
# 1 MiB stack as Rust guests get (Zig's default is 16 MiB).
$ZIG c++ -target wasm32-wasi -mexec-model=reactor -std=c++20 -O2 -msimd128 \
    -fno-exceptions -fno-rtti -Wall -Wextra -Werror -Wl,-z,stack-size=1048576 \
    -I"$BUILD" gain.cpp "$BUILD/effect.o" "$BUILD/effect_component_type.o" \
    -o "$BUILD/core.wasm"
# Zig's linker writes function names only together with all debug info
# (-Wl,--strip-debug drops both): keep the names, drop the DWARF sections.
$ZIG run "$STRIP_DEBUG" -- "$BUILD/core.wasm"
# The component: the world's types embedded, WASI preview 1 adapted.
"$SANDSTREAM" -q componentize "$BUILD/core.wasm" --world "$WORLD" -o "$OUT"
