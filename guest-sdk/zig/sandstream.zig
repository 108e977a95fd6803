//! sandstream.zig: a thin helper for Sandstream effects in Zig.
//!
//! It sits on top of the C bindings `sandstream bindings --lang zig` writes
//! (effect.h / effect.c, from wit-bindgen), translated to Zig with
//! `zig translate-c` and handed to this file as the module `effect` (Zig
//! 0.17 has no @cImport; see examples/gain-zig/build.sh). It gives:
//!
//!   - short names for the WIT types (Config, Buffers, Outcome, ...);
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

/// Everything the bindings declare, under its C name.
pub const c = @import("effect");

// Short names for the WIT types.
pub const String = c.effect_string_t;
pub const Config = c.sandstream_av_types_config_t;
pub const Formats = c.sandstream_av_types_stream_formats_t;
pub const AudioInfo = c.sandstream_av_types_audio_info_t;
pub const VideoInfo = c.sandstream_av_types_video_info_t;
pub const Buffers = c.sandstream_av_types_buffers_t;
pub const Outcome = c.sandstream_av_types_outcome_t;

pub const keep: Outcome = c.SANDSTREAM_AV_TYPES_OUTCOME_KEEP;
pub const drop: Outcome = c.SANDSTREAM_AV_TYPES_OUTCOME_DROP;

// ---- Errors ---------------------------------------------------------------

/// Writes a std.fmt-style message into `err` and returns false, so a failing
/// export reads `return ss.fail(err, "gain needs {s}", .{"audio"});`. The
/// host frees the message after the call (the bindings' post-return calls
/// free(), which is why it comes from malloc).
pub fn fail(err: *String, comptime format: []const u8, args: anytype) bool {
    const text: []const u8 = std.fmt.allocPrint(std.heap.c_allocator, format, args) catch "";
    err.* = .{ .ptr = @constCast(text.ptr), .len = text.len };
    return false;
}

// ---- Logging --------------------------------------------------------------

/// One line in the host's log, tagged with the guest's name (cut at 1 KiB):
/// `ss.log.info("block of {d} frames", .{frames});`
pub const log = struct {
    pub fn trace(comptime format: []const u8, args: anytype) void {
        write(c.SANDSTREAM_AV_LOG_LEVEL_TRACE, format, args);
    }
    pub fn debug(comptime format: []const u8, args: anytype) void {
        write(c.SANDSTREAM_AV_LOG_LEVEL_DEBUG, format, args);
    }
    pub fn info(comptime format: []const u8, args: anytype) void {
        write(c.SANDSTREAM_AV_LOG_LEVEL_INFO, format, args);
    }
    pub fn warn(comptime format: []const u8, args: anytype) void {
        write(c.SANDSTREAM_AV_LOG_LEVEL_WARN, format, args);
    }
    pub fn err(comptime format: []const u8, args: anytype) void {
        write(c.SANDSTREAM_AV_LOG_LEVEL_ERROR, format, args);
    }

    fn write(level: c.sandstream_av_log_level_t, comptime format: []const u8, args: anytype) void {
        var line: [1024]u8 = undefined;
        var writer: std.Io.Writer = .fixed(&line);
        writer.print(format, args) catch {}; // too long: keep what fits
        var message: String = .{ .ptr = &line, .len = writer.buffered().len };
        c.sandstream_av_log_log(level, &message);
    }
};

// ---- Configuration ----------------------------------------------------------

/// The raw value of `key`, or null when it is not set. It lives in `config`:
/// copy it before freeing the config.
pub fn get(config: *const Config, key: []const u8) ?[]const u8 {
    for (config.ptr[0..config.len]) |entry| {
        if (std.mem.eql(u8, entry.f0.ptr[0..entry.f0.len], key)) {
            return entry.f1.ptr[0..entry.f1.len];
        }
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
    const bytes = std.mem.sliceAsBytes(buffer);
    const region: c.sandstream_av_types_region_t = .{
        .offset = @intCast(@intFromPtr(bytes.ptr)),
        .length = @intCast(bytes.len),
    };
    return .{ .input = region, .output = region };
}

/// Separate input and output buffers (slices of the same size).
pub fn inAndOut(input: anytype, output: anytype) Buffers {
    var buffers = inPlace(input);
    buffers.output.offset = @intCast(@intFromPtr(std.mem.sliceAsBytes(output).ptr));
    return buffers;
}
