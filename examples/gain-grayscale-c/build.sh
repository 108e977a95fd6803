#!/bin/sh
# Builds the effect into a Sandstream component: ./build.sh [OUT.wasm]
# (intermediate files go to ./build, or to $BUILD_DIR).
#
# Needs clang with the wasm32 target, wasm-ld and wasi-libc (Debian:
# apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32), and
# sandstream on PATH (or SANDSTREAM=/path/to/sandstream).
set -eu
cd "$(dirname "$0")"
WORLD=av-effect-mapped
OUT=${1:-gain-grayscale-c.wasm}
SANDSTREAM=${SANDSTREAM:-sandstream}
CC=${CC:-clang}
BUILD=${BUILD_DIR:-build}
mkdir -p "$BUILD"
# The bindings of the world (effect.h, effect.c) and the helper sandstream.h.
"$SANDSTREAM" -q bindings --lang c --world "$WORLD" "$BUILD"
# A core module: a reactor (no main), SIMD on. (`sandstream componentize`
# drops the debug info, keeping function names for backtraces.)
"$CC" --target=wasm32-wasi --sysroot="${WASI_SYSROOT:-/usr}" -mexec-model=reactor \
    -O2 -msimd128 -Wall -Wextra -Werror -I"$BUILD" \
    gain_grayscale.c "$BUILD/effect.c" "$BUILD/effect_component_type.o" -o "$BUILD/core.wasm"
# The component: the world's types embedded, WASI preview 1 adapted.
"$SANDSTREAM" -q componentize "$BUILD/core.wasm" --world "$WORLD" -o "$OUT"
