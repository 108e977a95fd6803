// `gain-js`: the `gain` example in JavaScript, built with the Bytecode
// Alliance's official toolchain (ComponentizeJS). Multiplies every audio
// sample by the `gain` setting (default 1), bit for bit like the Rust
// example, with the same error messages.
//
// World: sandstream:av/audio-effect. JavaScript cannot hand out a buffer
// that stays put in linear memory, so blocks reach it as lists (`sandstream
// check` says "audio data path: lists").
//
// Build: ./build.sh (npm ci, then ComponentizeJS through build.mjs)
// Run:   sandstream run gain-js.wasm --audio-in tone:440 \
//            --audio-out file:out.wav --set gain=0.5 --duration 2
//
// JavaScript numbers are f64 and Rust's gain is an f32: the setting is read
// as an f32 (rounded once, as Rust's parse does), and each product is
// rounded to f32 when it is stored into the block (a Float32Array), which
// is exactly Rust's f32 multiply.

import { fmtNonFinite, getF32 } from './sandstream.js';

// The effect's state: the factor, read once in `configure`. Module globals
// live as long as the instance.
let gain = 1;

export const setup = {
  configure(config, _formats) {
    // Throwing a string refuses to run, with that message for the user.
    const value = getF32(config, 'gain', 1);
    if (!Number.isFinite(value)) {
      throw `setting \`gain\` must be a finite number, got ${fmtNonFinite(value)}`;
    }
    gain = value;
  },
};

export const audio = {
  // `samples` is a Float32Array of interleaved samples; a plain gain does
  // not care about channels. Processed in place and returned.
  processAudio(_info, samples) {
    // Both factors are f32 values, so each product is exact in an f64;
    // storing it into the Float32Array rounds it once, as Rust does. (The
    // engine interprets this code: with the factor and the length in local
    // constants the loop takes half the time.)
    const factor = gain;
    const n = samples.length;
    for (let i = 0; i < n; i++) {
      samples[i] *= factor;
    }
    return samples;
  },
};
