//! `sandstream componentize`: turns a core WebAssembly module (what clang,
//! Zig and Go build for `wasm32-wasip1`) into a component of one of our
//! worlds, so guests in those languages need no other tool.
//!
//! The world's type information comes from the WIT built into this binary,
//! and WASI preview 1 calls are adapted to preview 2 by the adapter of the
//! wasmtime release the host runs on (an adapter from another release may
//! import interfaces at versions the host does not link).

use anyhow::{Context as _, bail};
use clap::Args;
use std::path::PathBuf;
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wit_component::{ComponentEncoder, StringEncoding};
use wit_parser::{Resolve, WorldId};

/// The contract, as built into this binary.
pub const WIT: &str = include_str!("../../../wit/sandstream.wit");
/// Where [`WIT`] lives in a guest project.
pub const WIT_FILE: &str = "wit/sandstream.wit";

/// Worlds a guest may implement (`host-view` is the host's own).
pub const WORLDS: &[&str] = &[
    "audio-effect",
    "video-effect",
    "av-effect",
    "audio-effect-stateful",
    "video-effect-stateful",
    "av-effect-stateful",
    "audio-effect-mapped",
    "video-effect-mapped",
    "av-effect-mapped",
    "audio-effect-mapped-stateful",
    "video-effect-mapped-stateful",
    "av-effect-mapped-stateful",
];

#[derive(Debug, Args)]
pub struct ComponentizeArgs {
    /// The core module (e.g. built with `clang --target=wasm32-wasip1`).
    module: PathBuf,
    /// The world it implements, e.g. `audio-effect-mapped` (or
    /// `sandstream:av/audio-effect-mapped`).
    #[arg(long)]
    world: String,
    /// Where to write the component.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
}

pub fn componentize_command(args: &ComponentizeArgs) -> anyhow::Result<()> {
    let module = std::fs::read(&args.module)
        .with_context(|| format!("cannot read {}", args.module.display()))?;
    let component = componentize(&module, &args.world)
        .with_context(|| format!("cannot make a component of {}", args.module.display()))?;
    std::fs::write(&args.output, &component)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    tracing::info!(
        "{} ({} KiB) implements sandstream:av/{}",
        args.output.display(),
        component.len().div_ceil(1024),
        short_world(&args.world)
    );
    Ok(())
}

/// `world` without its package prefix.
fn short_world(world: &str) -> &str {
    world.strip_prefix("sandstream:av/").unwrap_or(world)
}

/// Our WIT package, parsed, and the world named `world`.
///
/// # Errors
/// An unknown world, listing the worlds there are.
pub fn resolve_world(world: &str) -> anyhow::Result<(Resolve, WorldId)> {
    let name = short_world(world);
    if !WORLDS.contains(&name) {
        bail!(
            "unknown world `{world}`; the worlds are {}",
            WORLDS.join(", ")
        );
    }
    let mut resolve = Resolve::default();
    let package = resolve
        .push_str("sandstream.wit", WIT)
        .context("the built-in WIT does not parse")?;
    let id = resolve.select_world(&[package], Some(name))?;
    Ok((resolve, id))
}

/// The component of `world` that wraps the core module `module`.
///
/// # Errors
/// Not a core module, or one that does not implement the world (wit-component
/// names the missing export or the unknown import).
pub fn componentize(module: &[u8], world: &str) -> anyhow::Result<Vec<u8>> {
    if !module.starts_with(b"\0asm") || module.get(4..8) != Some(&[1, 0, 0, 0]) {
        bail!(
            "not a core WebAssembly module (a component or another file?): build it for \
             wasm32-wasip1 (or wasm32-unknown-unknown) as a reactor"
        );
    }
    let (resolve, id) = resolve_world(world)?;
    let mut module = without_debug_info(module)?;
    wit_component::embed_component_metadata(&mut module, &resolve, id, StringEncoding::UTF8)?;
    let mut encoder = ComponentEncoder::default();
    encoder.validate(true);
    encoder.module(&module)?;
    // Used only when the module imports WASI preview 1.
    encoder.adapter(
        WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
        WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
    )?;
    encoder.encode().with_context(|| {
        format!(
            "the module does not implement sandstream:av/{}",
            short_world(world)
        )
    })
}

/// The module without its DWARF sections (`.debug_*`), which can be most
/// of a C or Zig build and which the host never reads; the `name` section
/// stays, for trap backtraces. Toolchains that cannot drop one without the
/// other (Zig's linker) need nothing more.
///
/// # Errors
/// A section header that runs past the end of the module.
fn without_debug_info(module: &[u8]) -> anyhow::Result<Vec<u8>> {
    const HEADER: usize = 8;
    let mut kept = module[..HEADER].to_vec();
    let mut at = HEADER;
    while at < module.len() {
        let start = at;
        let id = module[at];
        let (size, size_len) = leb128_u32(&module[at + 1..])?;
        let body = at + 1 + size_len;
        let end = body
            .checked_add(size as usize)
            .filter(|end| *end <= module.len())
            .context("a section runs past the end of the module (truncated?)")?;
        let is_debug = id == 0
            && leb128_u32(&module[body..end]).is_ok_and(|(name_len, len_len)| {
                module[body + len_len..end].starts_with(b".debug_")
                    && name_len as usize <= end - body - len_len
            });
        if !is_debug {
            kept.extend_from_slice(&module[start..end]);
        }
        at = end;
    }
    Ok(kept)
}

/// An unsigned LEB128 number at the start of `bytes`, and its length.
fn leb128_u32(bytes: &[u8]) -> anyhow::Result<(u32, usize)> {
    let mut value: u64 = 0;
    for (i, byte) in bytes.iter().take(5).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return u32::try_from(value)
                .map(|v| (v, i + 1))
                .context("a section size over 4 GiB");
        }
    }
    bail!("a malformed section size (truncated module?)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_world_resolves_and_unknown_ones_are_listed() {
        for world in WORLDS {
            resolve_world(world).unwrap();
        }
        resolve_world("sandstream:av/av-effect-mapped").unwrap();
        let err = resolve_world("audio-mapped").unwrap_err().to_string();
        assert!(err.contains("unknown world `audio-mapped`"), "{err}");
        assert!(err.contains("video-effect-mapped-stateful"), "{err}");
    }

    #[test]
    fn debug_sections_are_dropped_and_names_kept() {
        let module = wat::parse_str(
            "(module (@custom \".debug_info\" \"dwarf\") (func $kept) (@custom \"other\" \"x\"))",
        )
        .unwrap();
        let stripped = without_debug_info(&module).unwrap();
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        assert!(text(&module).contains(".debug_info"));
        assert!(!text(&stripped).contains(".debug_info"));
        assert!(text(&stripped).contains("other") && text(&stripped).contains("kept"));
        wasmtime::Module::validate(&wasmtime::Engine::default(), &stripped).unwrap();
        assert!(without_debug_info(&module[..module.len() - 1]).is_err());
    }

    #[test]
    fn a_module_missing_an_export_is_named() {
        // Exports nothing a world needs.
        let module = wat::parse_str("(module (memory (export \"memory\") 1))").unwrap();
        let err = format!(
            "{:#}",
            componentize(&module, "audio-effect-mapped").unwrap_err()
        );
        assert!(
            err.contains("does not implement sandstream:av/audio-effect-mapped"),
            "{err}"
        );
        assert!(err.contains("configure"), "{err}");
        let err = componentize(b"\0asm\x0d\x00\x01\x00", "audio-effect").unwrap_err();
        assert!(err.to_string().contains("not a core WebAssembly module"));
    }
}
