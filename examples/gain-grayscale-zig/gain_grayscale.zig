//! gain-grayscale-zig: an A/V effect in Zig, the `gain` and `grayscale`
//! examples in one. Multiplies every audio sample by the `gain` setting
//! (default 1) and turns every video frame gray, byte for byte like those
//! two examples.
//!
//! World: sandstream:av/av-effect-mapped. One instance gets both streams:
//! the audio and the video functions below live in one module and see the
//! same variables (one call at a time: the host never overlaps calls, so
//! no locking). So state can be shared, e.g. the audio level measured on
//! each block could drive the video, as the Rust level-meter example draws
//! it; these two halves happen to share nothing.
//!
//! Blocks and frames never travel as lists: the host writes each into a
//! buffer this effect allocates once and announces in `prepare` (one per
//! stream), and reads the result back from it.
//!
//! It implements the five functions the C bindings (effect.h, effect.c)
//! leave to the effect, as `export fn` with their C names; the helper
//! guest-sdk/zig/sandstream.zig (the module `sandstream`) does the rest.
//!
//! Build: ./build.sh (zig for wasm32-wasi, then `sandstream componentize`).
//! Run:   sandstream run gain-grayscale-zig.wasm --audio-in tone:440 \
//!            --video-in pattern --audio-out file:out.wav \
//!            --video-out file:gray.y4m --set gain=0.5 --duration 2
//!        (or either stream alone: a run may bring only one of them).
const std = @import("std");
const ss = @import("sandstream");

var gain: f32 = 1.0;
var block: []align(16) f32 = &.{}; // audio: one block, processed in place
var frame: []align(16) u32 = &.{}; // video: one frame, a u32 per RGBA pixel

/// Called once: read the settings, size a buffer for each stream the run
/// has (`formats` leaves out a stream the run does not bring).
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
    if (formats.video.is_some) {
        const pixels = @as(usize, formats.video.val.width) * formats.video.val.height;
        frame = ss.alloc(u32, pixels) orelse
            return ss.fail(err, "no memory for a {d}-byte frame", .{pixels * 4});
    }
    return true;
}

// ---- Audio ------------------------------------------------------------------

/// Called once after configure, if the run has audio: where to put blocks.
export fn exports_sandstream_av_mapped_audio_prepare(buffers: *ss.Buffers, err: *ss.String) bool {
    if (block.len == 0) {
        return ss.fail(err, "gain-grayscale-zig was configured without an audio stream", .{});
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

// ---- Video ------------------------------------------------------------------

/// Called once after configure, if the run has video: where to put frames.
export fn exports_sandstream_av_mapped_video_prepare(buffers: *ss.Buffers, err: *ss.String) bool {
    if (frame.len == 0) {
        return ss.fail(err, "gain-grayscale-zig was configured without a video stream", .{});
    }
    buffers.* = ss.inPlace(frame);
    return true;
}

/// Called for every frame: `width * height` RGBA pixels are in `frame`.
export fn exports_sandstream_av_mapped_video_process(info: *ss.VideoInfo, outcome: *ss.Outcome, err: *ss.String) bool {
    _ = err;
    const pixels = frame[0 .. @as(usize, info.width) * info.height];
    // As for the audio: `lanes` pixels a step as a @Vector (two v128s of
    // i32x4 ops), then the last few one at a time.
    const lanes = 8;
    var i: usize = 0;
    while (i + lanes <= pixels.len) : (i += lanes) {
        const some: *[lanes]u32 = pixels[i..][0..lanes];
        some.* = gray(lanes, some.*);
    }
    for (pixels[i..]) |*pixel| {
        pixel.* = gray(1, .{pixel.*})[0];
    }
    outcome.* = ss.keep;
    return true;
}

/// The gray of `n` RGBA pixels, each read as a little-endian u32
/// (0xAABBGGRR): BT.601 luma weights in 1/256ths (77 + 150 + 29 = 256),
/// integer maths so that every language computes the same bytes. Alpha is
/// kept. The operators work lane by lane; @splat makes a constant vector.
fn gray(comptime n: usize, pixel: @Vector(n, u32)) @Vector(n, u32) {
    const V = @Vector(n, u32);
    const byte: V = @splat(0xff);
    const r = pixel & byte;
    const g = (pixel >> @splat(8)) & byte;
    const b = (pixel >> @splat(16)) & byte;
    const luma = (r * @as(V, @splat(77)) + g * @as(V, @splat(150)) +
        b * @as(V, @splat(29)) + @as(V, @splat(128))) >> @splat(8);
    return (pixel & @as(V, @splat(0xff00_0000))) | luma * @as(V, @splat(0x01_01_01));
}
