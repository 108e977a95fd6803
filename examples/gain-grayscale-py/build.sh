#!/bin/sh
# Builds the effect into a Sandstream component: ./build.sh [OUT.wasm]
# (the WIT file goes to ./build, or to $BUILD_DIR).
#
# Needs componentize-py (pip install componentize-py==0.25.1) and sandstream
# on PATH (or SANDSTREAM=/path/to/sandstream, COMPONENTIZE_PY=/path/to/it).
set -eu
cd "$(dirname "$0")"
WORLD=av-effect-mapped
OUT=${1:-gain-grayscale-py.wasm}
SANDSTREAM=${SANDSTREAM:-sandstream}
COMPONENTIZE_PY=${COMPONENTIZE_PY:-componentize-py}
BUILD=${BUILD_DIR:-build}
# The WIT of this host version (componentize-py makes the bindings from it)
# and the helper sandstream.py.
"$SANDSTREAM" -q bindings --lang python --world "$WORLD" "$BUILD"
# app.py and the helper sandstream.py, with CPython, in one component.
# Built from copies in $BUILD: componentize-py leaves __pycache__ folders
# beside the sources it imports.
cp app.py "$BUILD/"
"$COMPONENTIZE_PY" -q -d "$BUILD/wit" -w "$WORLD" componentize app -p "$BUILD" -o "$OUT"
