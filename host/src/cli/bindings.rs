//! `sandstream bindings`: the glue a guest in another language compiles
//! against, generated from the WIT built into this binary, so a guest
//! project always matches the host that runs it.
//!
//! C, C++ and Zig share the C bindings of wit-bindgen (the generator
//! crate, no CLI to install), renamed to `effect.h`/`effect.c` whatever the
//! world, plus our thin helper `sandstream.h` (and `sandstream.zig`). Go
//! gets the SDK module `sandstream/`, whose canonical-ABI glue is written by
//! hand. Python and JavaScript toolchains generate their own bindings from
//! the WIT file, written as is (with `sandstream.py` or `sandstream.js`).

use super::componentize::{WIT, WIT_FILE, resolve_world};
use anyhow::{Context as _, bail};
use clap::Args;
use std::path::{Path, PathBuf};

/// The helper every C-family guest includes (config, errors, logging).
const SANDSTREAM_H: &str = include_str!("../../../guest-sdk/c/sandstream.h");
/// Zig's helper, over the same C bindings.
const SANDSTREAM_ZIG: &str = include_str!("../../../guest-sdk/zig/sandstream.zig");
/// JavaScript's helper, imported by the effect.
const SANDSTREAM_JS: &str = include_str!("../../../guest-sdk/js/sandstream.js");
/// Python's helper, bundled into the component by componentize-py.
const SANDSTREAM_PY: &str = include_str!("../../../guest-sdk/python/sandstream.py");
/// The Go SDK: a module of its own, the canonical ABI written by hand.
const GO_SDK: &[(&str, &str)] = &[
    ("go.mod", include_str!("../../../guest-sdk/go/go.mod")),
    (
        "sandstream.go",
        include_str!("../../../guest-sdk/go/sandstream.go"),
    ),
    ("config.go", include_str!("../../../guest-sdk/go/config.go")),
    ("abi.go", include_str!("../../../guest-sdk/go/abi.go")),
    ("other.go", include_str!("../../../guest-sdk/go/other.go")),
];

/// Languages with bindings of their own.
pub const LANGUAGES: &[&str] = &["c", "cpp", "zig", "go", "python", "js"];

#[derive(Debug, Args)]
pub struct BindingsArgs {
    /// c, cpp, zig, go, python or js.
    #[arg(long)]
    lang: String,
    /// The world, e.g. `audio-effect-mapped`.
    #[arg(long)]
    world: String,
    /// The directory to write into (created if missing; files there with
    /// the same names are replaced).
    dir: PathBuf,
}

pub fn bindings_command(args: &BindingsArgs) -> anyhow::Result<()> {
    let written = write_bindings(&args.lang, &args.world, &args.dir)?;
    tracing::info!("wrote {} into {}", written.join(", "), args.dir.display());
    Ok(())
}

/// Writes the bindings of `world` for `lang` into `dir`; returns the files
/// written, relative to `dir`.
///
/// # Errors
/// An unknown language or world, or a file that cannot be written.
pub fn write_bindings(lang: &str, world: &str, dir: &Path) -> anyhow::Result<Vec<String>> {
    let text = |name: &str, contents: &str| (name.to_string(), contents.as_bytes().to_vec());
    let files = match lang {
        "c" | "cpp" | "zig" => {
            let mut files = c_bindings(world)?;
            files.push(text("sandstream.h", SANDSTREAM_H));
            if lang == "zig" {
                files.push(text("sandstream.zig", SANDSTREAM_ZIG));
            }
            files
        }
        "go" => {
            // The SDK exports every mapped interface; `componentize` keeps
            // the world's. Checked here so an unknown world fails now.
            resolve_world(world)?;
            (GO_SDK.iter())
                .map(|(name, contents)| text(&format!("sandstream/{name}"), contents))
                .collect()
        }
        "python" | "js" => {
            resolve_world(world)?;
            let mut files = vec![text(WIT_FILE, WIT)];
            files.push(match lang {
                "python" => text("sandstream.py", SANDSTREAM_PY),
                _ => text("sandstream.js", SANDSTREAM_JS),
            });
            files
        }
        other => bail!(
            "no bindings for language `{other}`; the languages are {} (Rust uses the \
             sandstream-guest crate)",
            LANGUAGES.join(", ")
        ),
    };
    let mut written = Vec::new();
    for (name, contents) in files {
        let path = dir.join(&name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, contents)
            .with_context(|| format!("cannot write {}", path.display()))?;
        written.push(name);
    }
    Ok(written)
}

/// wit-bindgen's C bindings of `world`, named `effect.*` for every world so
/// the helper and the effect's includes never change with the world:
/// `effect.h`, `effect.c` and `effect_component_type.o` (the world's types,
/// which the bindings make the linker keep).
fn c_bindings(world: &str) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let (mut resolve, id) = resolve_world(world)?;
    let opts = wit_bindgen_c::Opts {
        rename_world: Some("effect".into()),
        ..Default::default()
    };
    let mut files = wit_bindgen_core::Files::default();
    opts.build()
        .generate(&mut resolve, id, &mut files)
        .context("generating the C bindings")?;
    Ok(files
        .iter()
        .map(|(name, contents)| (name.to_string(), contents.to_vec()))
        .collect())
}
