#!/bin/sh
# Builds the effect into a Sandstream component: ./build.sh [OUT.wasm]
# (intermediate files go to ./build, or to $BUILD_DIR).
#
# Needs clang++ with the wasm32 target, wasm-ld, wasi-libc and libc++ for
# wasm32 (Debian: apt-get install clang lld wasi-libc
# libclang-rt-14-dev-wasm32 libc++-14-dev-wasm32 libc++abi-14-dev-wasm32),
# and sandstream on PATH (or SANDSTREAM=/path/to/sandstream).
set -eu
cd "$(dirname "$0")"
WORLD=av-effect-mapped
OUT=${1:-gain-grayscale-cpp.wasm}
SANDSTREAM=${SANDSTREAM:-sandstream}
CC=${CC:-clang}
CXX=${CXX:-clang++}
BUILD=${BUILD_DIR:-build}
mkdir -p "$BUILD"
# The bindings of the world (effect.h, effect.c) and the helper sandstream.h.
"$SANDSTREAM" -q bindings --lang cpp --world "$WORLD" "$BUILD"
# effect.c is C, which -std=c++20 would refuse: compile it on its own.
"$CC" --target=wasm32-wasi --sysroot="${WASI_SYSROOT:-/usr}" -O2 -msimd128 \
    -c "$BUILD/effect.c" -o "$BUILD/effect.o"
# A core module: a reactor (no main), SIMD on, no exceptions or RTTI.
# (`sandstream componentize` drops the debug info, keeping function names.)
"$CXX" --target=wasm32-wasi --sysroot="${WASI_SYSROOT:-/usr}" -mexec-model=reactor \
    -std=c++20 -O2 -msimd128 -fno-exceptions -fno-rtti -Wall -Wextra -Werror \
    -I"$BUILD" gain_grayscale.cpp "$BUILD/effect.o" "$BUILD/effect_component_type.o" \
    -o "$BUILD/core.wasm"
# The component: the world's types embedded, WASI preview 1 adapted.
"$SANDSTREAM" -q componentize "$BUILD/core.wasm" --world "$WORLD" -o "$OUT"
