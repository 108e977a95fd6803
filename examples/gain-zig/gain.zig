//! gain-zig: the `gain` example in Zig. Multiplies every audio sample by
//! the `gain` setting (default 1), byte for byte like the Rust example.
//!
//! World: sandstream:av/audio-effect-mapped. Blocks never travel as lists:
//! the host writes each block into `block`, a buffer this effect allocates
//! once and announces in `prepare`, and reads the result back from it.
//!
//! It implements the three functions the C bindings (effect.h, effect.c)
//! leave to the effect, as `export fn` with their C names; the helper
//! guest-sdk/zig/sandstream.zig (the module `sandstream`) does the rest.
//!
//! Build: ./build.sh (zig for wasm32-wasi, then `sandstream componentize`).
//! Run:   sandstream run gain-zig.wasm --audio-in tone:440 \
//!            --audio-out file:out.wav --set gain=0.5 --duration 2
const std = @import("std");
const ss = @import("sandstream");

var gain: f32 = 1.0;
var block: []align(16) f32 = &.{}; // the mapped buffer: one block, processed in place

/// Called once: read the settings, size the buffer for the audio format.
export fn exports_sandstream_av_setup_configure(config: *ss.Config, formats: *ss.Formats, err: *ss.String) bool {
    // The arguments belong to the effect: free the config once read.
    defer ss.freeConfig(config);
    // On a bad value err says: setting `gain`: cannot read "loud" as f32
    gain = ss.getOr(config, f32, "gain", 1.0, err) orelse return false;
    if (!std.math.isFinite(gain)) {
        // As Rust prints it: inf, -inf or NaN.
        const shown = if (std.math.isNan(gain)) "NaN" else if (gain < 0) "-inf" else "inf";
        return ss.fail(err, "setting `gain` must be a finite number, got {s}", .{shown});
    }
    if (formats.audio.is_some) {
        const audio = formats.audio.val;
        const samples = @as(usize, audio.block_frames) * audio.channels;
        block = ss.alloc(f32, samples) orelse
            return ss.fail(err, "no memory for a {d}-sample block", .{samples});
    }
    return true;
}

/// Called once after configure: where the host should put each block.
export fn exports_sandstream_av_mapped_audio_prepare(buffers: *ss.Buffers, err: *ss.String) bool {
    if (block.len == 0) {
        return ss.fail(err, "gain-zig was configured without an audio stream", .{});
    }
    buffers.* = ss.inPlace(block);
    return true;
}

/// Called for every block: the first `samples` interleaved values of `block`.
export fn exports_sandstream_av_mapped_audio_process(info: *ss.AudioInfo, samples: u32, outcome: *ss.Outcome, err: *ss.String) bool {
    _ = info;
    _ = err;
    // Zig 0.17 leaves the plain `for (values) |*v| v.* *= gain;` scalar, so
    // say it with @Vector: 16 samples a step, four f32x4.mul (simd128).
    // (One f32x4 a step takes 1.8x as long in `sandstream bench`.)
    const lanes = 16;
    const V = @Vector(lanes, f32);
    const values = block[0..samples];
    var i: usize = 0;
    while (i + lanes <= values.len) : (i += lanes) {
        const some: *[lanes]f32 = values[i..][0..lanes];
        some.* = @as(V, some.*) * @as(V, @splat(gain));
    }
    for (values[i..]) |*value| {
        value.* *= gain; // the last few, one at a time
    }
    outcome.* = ss.keep;
    return true;
}
