//! grayscale-zig: the `grayscale` example in Zig. Turns every video frame
//! gray, keeping its brightness, byte for byte like the Rust example.
//!
//! World: sandstream:av/video-effect-mapped. Frames never travel as lists:
//! the host writes each RGBA8 frame into `frame`, a buffer this effect
//! allocates once and announces in `prepare`, and reads the result back
//! from it (at 1080p that saves an 8 MB allocation and a copy per frame).
//!
//! Build: ./build.sh (zig for wasm32-wasi, then `sandstream componentize`).
//! Run:   sandstream run grayscale-zig.wasm --video-in pattern \
//!            --video-out file:gray.y4m --duration 2
const ss = @import("sandstream");

// The mapped buffer: one frame, processed in place, a u32 per RGBA pixel.
var frame: []align(16) u32 = &.{};

/// Called once: size the buffer for the video format.
export fn exports_sandstream_av_setup_configure(config: *ss.Config, formats: *ss.Formats, err: *ss.String) bool {
    ss.freeConfig(config); // no settings
    if (formats.video.is_some) {
        const pixels = @as(usize, formats.video.val.width) * formats.video.val.height;
        frame = ss.alloc(u32, pixels) orelse
            return ss.fail(err, "no memory for a {d}-byte frame", .{pixels * 4});
    }
    return true;
}

/// Called once after configure: where the host should put each frame.
export fn exports_sandstream_av_mapped_video_prepare(buffers: *ss.Buffers, err: *ss.String) bool {
    if (frame.len == 0) {
        return ss.fail(err, "grayscale-zig was configured without a video stream", .{});
    }
    buffers.* = ss.inPlace(frame);
    return true;
}

/// Called for every frame: `width * height` RGBA pixels are in `frame`.
export fn exports_sandstream_av_mapped_video_process(info: *ss.VideoInfo, outcome: *ss.Outcome, err: *ss.String) bool {
    _ = err;
    const pixels = frame[0 .. @as(usize, info.width) * info.height];
    // Zig 0.17 leaves a plain pixel-by-pixel loop scalar, so take `lanes`
    // pixels a step as a @Vector: two v128s of i32x4 ops (simd128). In
    // `sandstream bench`, a pixel a step takes 2.5x as long, 4 lanes 1.4x.
    const lanes = 8;
    var i: usize = 0;
    while (i + lanes <= pixels.len) : (i += lanes) {
        const some: *[lanes]u32 = pixels[i..][0..lanes];
        some.* = gray(lanes, some.*);
    }
    for (pixels[i..]) |*pixel| {
        pixel.* = gray(1, .{pixel.*})[0]; // the last few, one at a time
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
