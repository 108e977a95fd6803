"""gain-py: the `gain` example in Python. Multiplies every audio sample by
the `gain` setting (default 1), bit for bit like the Rust example.

World: sandstream:av/audio-effect, the simplest: each block arrives as a
list of floats and the result goes back as one. (The mapped world, with a
buffer that stays put as in grayscale-py, takes a third of the time.)

Build: ./build.sh (componentize-py, from PyPI: pip install componentize-py)
Run:   sandstream run gain-py.wasm --audio-in tone:440 \
           --audio-out file:out.wav --set gain=0.5 --duration 2

componentize-py looks in this module for one class per exported interface,
named after it (Setup, Audio), and calls their methods. Raising
sandstream.Err("message") returns that error to the host.
"""

import math

import sandstream
from wit_world import exports

# The effect's state: the factor, read once in `configure`. Module globals
# live as long as the instance.
gain = 1.0


class Setup(exports.Setup):
    def configure(self, config, formats):
        global gain
        # get_f32 rounds to f32 as Rust does, and raises Err with the Rust
        # SDK's message ("setting `gain`: cannot read \"loud\" as f32").
        value = sandstream.Config(config).get_f32("gain", 1.0)
        if not math.isfinite(value):
            raise sandstream.Err(
                f"setting `gain` must be a finite number, got {sandstream.fmt_f32(value)}")
        gain = value


class Audio(exports.Audio):
    def process_audio(self, info, samples):
        # Samples are interleaved; a plain gain does not care about channels.
        # Both factors are f32 values, so each product is exact in a Python
        # float; rounding it to f32 on the way out (the bindings do) gives
        # Rust's f32 multiply exactly.
        return [sample * gain for sample in samples]
