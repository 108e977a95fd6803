//! strip-debug: drops the DWARF sections (custom sections named .debug_*)
//! of a core WebAssembly module and keeps everything else, the `name`
//! section (function names in backtraces) included: what `wasm-ld
//! --strip-debug` does, which Zig's own linker cannot (it keeps names and
//! debug info together, or neither).
//!
//!     zig run strip-debug.zig -- core.wasm
const std = @import("std");

pub fn main(init: std.process.Init) !void {
    const arena = init.arena.allocator();
    const args = try init.minimal.args.toSlice(arena);
    if (args.len != 2) return error.Usage; // strip-debug MODULE.wasm (rewritten in place)
    const cwd = std.Io.Dir.cwd();
    const module = try cwd.readFileAlloc(init.io, args[1], arena, .unlimited);
    if (module.len < 8 or !std.mem.eql(u8, module[0..4], "\x00asm")) return error.NotWasm;

    var kept: std.ArrayList(u8) = .empty;
    try kept.appendSlice(arena, module[0..8]); // magic and version
    var reader: std.Io.Reader = .fixed(module[8..]);
    while (reader.seek < reader.end) {
        const start = reader.seek;
        const id = try reader.takeByte();
        const size = try reader.takeLeb128(u32);
        const body = try reader.take(size);
        if (id == 0) { // a custom section: its name comes first
            var name: std.Io.Reader = .fixed(body);
            const length = try name.takeLeb128(u32);
            if (std.mem.startsWith(u8, try name.take(length), ".debug_")) continue;
        }
        try kept.appendSlice(arena, module[8..][start..reader.seek]);
    }
    try cwd.writeFile(init.io, .{ .sub_path = args[1], .data = kept.items });
}
