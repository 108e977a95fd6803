//! sandstream.zig: a thin helper for Sandstream effects in Zig.
//!
//! It sits on top of the C bindings `sandstream bindings --lang zig` writes
//! (effect.h / effect.c, from wit-bindgen; the build compiles effect.c
//! beside the effect). It gives:
//!
//!   - the C types of effect.h as Zig `extern struct`s, under short names
//!     (Config, Formats, Buffers, Outcome, ...);
//!   - config getters that read values the way the Rust SDK does, with its
//!     error messages ("setting `gain`: cannot read \"loud\" as f32");
//!   - fail(): return an error message to the host, std.fmt-style;
//!   - log.info() and friends: write to the host's log;
//!   - alloc() / inPlace(): buffers for the mapped worlds.
//!
//! The effect itself exports the functions effect.h declares
//! (exports_sandstream_av_setup_configure, ..._mapped_audio_prepare, ...)
//! with `export fn`; effect.c calls them. effect.c needs libc (malloc and
//! free), so a guest links it (-lc) and this file allocates with malloc too.
const std = @import("std");

// ---- The C types and functions of effect.h ----------------------------------
//
// Written out by hand rather than translated from effect.h (`zig translate-c`
// costs a fresh machine a minute or two of building translate-c itself).
// They mirror effect.h of the mapped worlds (audio-effect-mapped,
// video-effect-mapped) field for field, in the same order and types:
// `extern struct` lays fields out as C does. Should the WIT change and these
// fall out of step, the Zig examples stop producing the Rust examples' bytes
// and the byte-identity tests fail.

/// effect_string_t: UTF-8 bytes, not NUL-terminated. ptr may be anything
/// (even null) when len is 0.
pub const String = extern struct {
    ptr: ?[*]u8,
    len: usize,
};

/// effect_tuple2_string_string_t: one `--set key=value`.
pub const Setting = extern struct {
    f0: String, // the key
    f1: String, // the value
};

/// sandstream_av_types_config_t: the settings, keys unique. The effect owns
/// it: free it with freeConfig() once read.
pub const Config = extern struct {
    ptr: ?[*]Setting,
    len: usize,
};

/// sandstream_av_types_audio_format_t
pub const AudioFormat = extern struct {
    sample_rate: u32, // frames per second
    channels: u32, // interleaved channels per frame
    block_frames: u32, // frames per block the host usually sends
};

/// sandstream_av_types_video_format_t
pub const VideoFormat = extern struct {
    width: u32,
    height: u32,
    fps: f64, // nominal frames per second
};

/// sandstream_av_types_option_audio_format_t: `val` is set when is_some.
pub const OptionAudioFormat = extern struct {
    is_some: bool,
    val: AudioFormat,
};

/// sandstream_av_types_option_video_format_t
pub const OptionVideoFormat = extern struct {
    is_some: bool,
    val: VideoFormat,
};

/// sandstream_av_types_stream_formats_t: the streams this instance gets.
pub const Formats = extern struct {
    audio: OptionAudioFormat,
    video: OptionVideoFormat,
};

/// sandstream_av_types_audio_info_t: one audio block.
pub const AudioInfo = extern struct {
    timestamp_ns: u64, // capture time of the first frame
    first_frame: u64, // index of the first frame since the stream started
    sample_rate: u32,
    channels: u32,
};

/// sandstream_av_types_video_info_t: one video frame.
pub const VideoInfo = extern struct {
    timestamp_ns: u64, // capture time
    index: u64, // index of the frame since the stream started
    width: u32,
    height: u32,
};

/// sandstream_av_types_region_t: a byte range in the guest's memory.
pub const Region = extern struct {
    offset: u32,
    length: u32,
};

/// sandstream_av_types_buffers_t: where the host writes and reads.
pub const Buffers = extern struct {
    input: Region,
    output: Region,
};

/// sandstream_av_types_outcome_t: what a mapped call did.
pub const Outcome = u8;
pub const keep: Outcome = 0; // the output buffer holds the processed data
pub const drop: Outcome = 1; // drop this block or frame

/// sandstream_av_log_level_t
pub const LogLevel = u8;

/// Functions effect.c defines, under their C names.
pub const c = struct {
    /// Writes one line to the host's log (the `sandstream:av/log` import).
    pub extern fn sandstream_av_log_log(level: LogLevel, message: *String) void;
    /// Frees the settings' strings and list (configure's `config`).
    pub extern fn exports_sandstream_av_setup_config_free(config: *Config) void;
    /// Frees a string's bytes (when len > 0) and zeroes it.
    pub extern fn effect_string_free(string: *String) void;
};

/// Frees configure's `config` (the effect owns it): after reading it,
/// `defer ss.freeConfig(config);`.
pub fn freeConfig(config: *Config) void {
    c.exports_sandstream_av_setup_config_free(config);
}

// ---- Errors ---------------------------------------------------------------

/// Writes a std.fmt-style message into `err` and returns false, so a failing
/// export reads `return ss.fail(err, "gain needs {s}", .{"audio"});`. The
/// host frees the message after the call (the bindings' post-return calls
/// free(), so it comes from malloc: std.heap.c_allocator is plain malloc
/// for bytes).
pub fn fail(err: *String, comptime format: []const u8, args: anytype) bool {
    const text: []const u8 = std.fmt.allocPrint(std.heap.c_allocator, format, args) catch "";
    err.* = .{ .ptr = @constCast(text.ptr), .len = text.len };
    return false;
}

// ---- Logging --------------------------------------------------------------

/// One line in the host's log, tagged with the guest's name (cut at 1 KiB):
/// `ss.log.info("block of {d} frames", .{frames});`
pub const log = struct {
    // The levels: 0 trace, 1 debug, 2 info, 3 warn, 4 error.
    pub fn trace(comptime format: []const u8, args: anytype) void {
        write(0, format, args);
    }
    pub fn debug(comptime format: []const u8, args: anytype) void {
        write(1, format, args);
    }
    pub fn info(comptime format: []const u8, args: anytype) void {
        write(2, format, args);
    }
    pub fn warn(comptime format: []const u8, args: anytype) void {
        write(3, format, args);
    }
    pub fn err(comptime format: []const u8, args: anytype) void {
        write(4, format, args);
    }

    fn write(level: LogLevel, comptime format: []const u8, args: anytype) void {
        var line: [1024]u8 = undefined;
        var writer: std.Io.Writer = .fixed(&line);
        writer.print(format, args) catch {}; // too long: keep what fits
        var message: String = .{ .ptr = &line, .len = writer.buffered().len };
        c.sandstream_av_log_log(level, &message);
    }
};

// ---- Configuration ----------------------------------------------------------

/// The bytes of a WIT string (UTF-8).
pub fn bytes(string: String) []const u8 {
    return if (string.len == 0) "" else string.ptr.?[0..string.len];
}

/// The raw value of `key`, or null when it is not set. It lives in `config`:
/// copy it before freeing the config.
pub fn get(config: *const Config, key: []const u8) ?[]const u8 {
    if (config.len == 0) return null;
    for (config.ptr.?[0..config.len]) |entry| {
        if (std.mem.eql(u8, bytes(entry.f0), key)) return bytes(entry.f1);
    }
    return null;
}

/// `key` parsed as T (f32, f64, bool or an integer type), or `default` when
/// it is not set. On a bad value it writes the Rust SDK's message into `err`
/// and returns null:
///
///     gain = ss.getOr(config, f32, "gain", 1.0, err) orelse return false;
pub fn getOr(config: *const Config, comptime T: type, key: []const u8, default: T, err: *String) ?T {
    const raw = get(config, key) orelse return default;
    return parse(T, raw) orelse cannotRead(err, T, key, raw);
}

/// `key` parsed as T; an error (the Rust SDK's) when it is missing.
pub fn require(config: *const Config, comptime T: type, key: []const u8, err: *String) ?T {
    const raw = get(config, key) orelse {
        _ = fail(err, "missing required setting `{s}` (pass --set {s}=VALUE)", .{ key, key });
        return null;
    };
    return parse(T, raw) orelse cannotRead(err, T, key, raw);
}

fn cannotRead(err: *String, comptime T: type, key: []const u8, raw: []const u8) ?T {
    _ = fail(err, "setting `{s}`: cannot read \"{f}\" as {s}", .{ key, Escaped{ .text = raw }, @typeName(T) });
    return null;
}

/// What Rust's `str::parse` accepts, after trimming whitespace as `str::trim`.
fn parse(comptime T: type, raw: []const u8) ?T {
    const text = std.mem.trim(u8, raw, &std.ascii.whitespace);
    switch (@typeInfo(T)) {
        .bool => {
            if (std.mem.eql(u8, text, "true")) return true;
            if (std.mem.eql(u8, text, "false")) return false;
            return null;
        },
        .float => {
            // std.fmt.parseFloat rounds as Rust does and takes the same decimal
            // and inf/infinity/nan forms, and also hex floats and digit
            // separators, which Rust refuses.
            if (std.mem.indexOfAny(u8, text, "_xX") != null) return null;
            return std.fmt.parseFloat(T, text) catch null;
        },
        .int => |int| {
            // Rust: an optional sign ('-' only for signed types), then digits.
            const digits = if (text.len > 0 and (text[0] == '+' or (text[0] == '-' and int.signedness == .signed))) text[1..] else text;
            if (digits.len == 0) return null;
            for (digits) |char| if (!std.ascii.isDigit(char)) return null;
            return std.fmt.parseInt(T, text, 10) catch null;
        },
        else => @compileError("sandstream: cannot read a setting as " ++ @typeName(T)),
    }
}

/// A string as Rust's `{:?}` shows it, without the quotes: \" \\ \0 \n \r \t
/// escaped, other ASCII control characters as \u{..}.
const Escaped = struct {
    text: []const u8,

    pub fn format(self: Escaped, writer: *std.Io.Writer) std.Io.Writer.Error!void {
        for (self.text) |char| switch (char) {
            '"', '\\' => try writer.print("\\{c}", .{char}),
            0 => try writer.writeAll("\\0"),
            '\n' => try writer.writeAll("\\n"),
            '\r' => try writer.writeAll("\\r"),
            '\t' => try writer.writeAll("\\t"),
            1...8, 11...12, 14...31, 127 => try writer.print("\\u{{{x}}}", .{char}),
            else => try writer.writeByte(char),
        };
    }
};

// ---- Buffers of the mapped worlds ---------------------------------------------

/// Zeroed memory for `count` values of T, 16-byte aligned (for simd128), or
/// null when there is none. Keep it for the life of the instance: the host
/// writes into it on every call.
pub fn alloc(comptime T: type, count: usize) ?[]align(16) T {
    const buffer = std.heap.c_allocator.alignedAlloc(T, .@"16", count) catch return null;
    @memset(std.mem.sliceAsBytes(buffer), 0);
    return buffer;
}

/// One buffer (a slice) for input and output: the host writes, the effect
/// works in place.
pub fn inPlace(buffer: anytype) Buffers {
    const memory = std.mem.sliceAsBytes(buffer);
    const region: Region = .{
        .offset = @intCast(@intFromPtr(memory.ptr)),
        .length = @intCast(memory.len),
    };
    return .{ .input = region, .output = region };
}

/// Separate input and output buffers (slices of the same size).
pub fn inAndOut(input: anytype, output: anytype) Buffers {
    var buffers = inPlace(input);
    buffers.output.offset = @intCast(@intFromPtr(std.mem.sliceAsBytes(output).ptr));
    return buffers;
}
