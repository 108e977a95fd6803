//! `sandstream new DIR --lang L --world W`: a working guest project, made
//! from the language's example for that world, with its build command.
//!
//! The examples in the repository are the templates, built into this
//! binary: what `new` writes is what the tests build and check against the
//! Rust examples. The language's helper and bindings are not copied: the
//! project's `build.sh` asks `sandstream bindings` for them on every build,
//! so they always match the host that runs the effect.

use anyhow::{Context as _, bail};
use clap::Args;
use std::path::{Path, PathBuf};

/// Languages `new` can start a project in.
const LANGUAGES: &[&str] = &["rust", "c", "cpp", "zig", "go", "python", "js"];

/// One example: its language, the stream(s) it processes, its name in
/// `examples/`, and its files (path in the project, contents).
struct Template {
    lang: &'static str,
    world: &'static str,
    example: &'static str,
    files: &'static [(&'static str, &'static str)],
}

macro_rules! example_file {
    ($example:literal, $file:literal) => {
        (
            $file,
            include_str!(concat!("../../../examples/", $example, "/", $file)),
        )
    };
}

/// A template made of an example's own files (its build.sh among them).
macro_rules! template {
    ($lang:literal, $world:literal, $example:literal, [$($file:literal),+ $(,)?]) => {
        Template {
            lang: $lang,
            world: $world,
            example: $example,
            files: &[$(example_file!($example, $file)),+],
        }
    };
}

/// A JavaScript example: its effect and the same four build files.
macro_rules! js_template {
    ($world:literal, $example:literal, $source:literal) => {
        template!(
            "js",
            $world,
            $example,
            [
                $source,
                "build.mjs",
                "build.sh",
                "package.json",
                "package-lock.json"
            ]
        )
    };
}

const TEMPLATES: &[Template] = &[
    // Rust's build files are written by `rust_project`.
    template!("rust", "audio", "gain", ["src/lib.rs"]),
    template!("rust", "video", "grayscale", ["src/lib.rs"]),
    template!("rust", "av", "level-meter", ["src/lib.rs"]),
    template!("c", "audio", "gain-c", ["gain.c", "build.sh"]),
    template!("c", "video", "grayscale-c", ["grayscale.c", "build.sh"]),
    template!(
        "c",
        "av",
        "gain-grayscale-c",
        ["gain_grayscale.c", "build.sh"]
    ),
    template!("cpp", "audio", "gain-cpp", ["gain.cpp", "build.sh"]),
    template!(
        "cpp",
        "video",
        "grayscale-cpp",
        ["grayscale.cpp", "build.sh"]
    ),
    template!(
        "cpp",
        "av",
        "gain-grayscale-cpp",
        ["gain_grayscale.cpp", "build.sh"]
    ),
    template!("zig", "audio", "gain-zig", ["gain.zig", "build.sh"]),
    template!(
        "zig",
        "video",
        "grayscale-zig",
        ["grayscale.zig", "build.sh"]
    ),
    template!(
        "zig",
        "av",
        "gain-grayscale-zig",
        ["gain_grayscale.zig", "build.sh"]
    ),
    template!("go", "audio", "gain-go", ["main.go", "go.mod", "build.sh"]),
    template!(
        "go",
        "video",
        "grayscale-go",
        ["main.go", "go.mod", "build.sh"]
    ),
    template!(
        "go",
        "av",
        "gain-grayscale-go",
        ["main.go", "go.mod", "build.sh"]
    ),
    template!("python", "audio", "gain-py", ["app.py", "build.sh"]),
    template!("python", "video", "grayscale-py", ["app.py", "build.sh"]),
    template!("python", "av", "gain-grayscale-py", ["app.py", "build.sh"]),
    js_template!("audio", "gain-js", "gain.js"),
    js_template!("video", "grayscale-js", "grayscale.js"),
    js_template!("av", "gain-grayscale-js", "gain_grayscale.js"),
];

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The project directory to create (must not exist, or be empty).
    dir: PathBuf,
    /// rust, c, cpp, zig, go, python or js.
    #[arg(long)]
    lang: String,
    /// audio, video or av (both, in one instance).
    #[arg(long, default_value = "audio")]
    world: String,
}

pub fn new_command(args: &NewArgs) -> anyhow::Result<()> {
    let template = find(&args.lang, &args.world)?;
    let name = project_name(&args.dir)?;
    if std::fs::read_dir(&args.dir).is_ok_and(|mut entries| entries.next().is_some()) {
        bail!(
            "{} already exists and is not empty: give a new directory",
            args.dir.display()
        );
    }
    for (path, contents) in project_files(template, &name) {
        write(&args.dir, &path, &contents)?;
    }
    println!(
        "Created {} ({} effect in {}, from the {} example).\n\
         Build it:  {}/build.sh          (writes {name}.wasm)\n\
         Check it:  sandstream check {}/{name}.wasm",
        args.dir.display(),
        template.world,
        template.lang,
        template.example,
        args.dir.display(),
        args.dir.display(),
    );
    Ok(())
}

fn find(lang: &str, world: &str) -> anyhow::Result<&'static Template> {
    if !LANGUAGES.contains(&lang) {
        bail!(
            "unknown language `{lang}`; the languages are {}",
            LANGUAGES.join(", ")
        );
    }
    if !["audio", "video", "av"].contains(&world) {
        bail!("unknown world `{world}`; expected audio, video or av");
    }
    TEMPLATES
        .iter()
        .find(|t| t.lang == lang && t.world == world)
        .with_context(|| {
            let worlds: Vec<&str> = TEMPLATES
                .iter()
                .filter(|t| t.lang == lang)
                .map(|t| t.world)
                .collect();
            format!(
                "there is no {world} template for {lang} yet (there is: {}); start from one of \
                 those and add the other stream's exports (docs/LANGUAGES.md)",
                worlds.join(", ")
            )
        })
}

/// The crate, module or file name: the directory's name, made safe.
fn project_name(dir: &Path) -> anyhow::Result<String> {
    let raw = dir
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("cannot name a project after {}", dir.display()))?;
    let name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_matches('-').to_string();
    if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        bail!("the project directory's name must start with a letter, got `{raw}`");
    }
    Ok(name)
}

/// Every file of the project: the example's, renamed, plus what its
/// language needs around it.
fn project_files(template: &Template, name: &str) -> Vec<(String, String)> {
    let rename = |text: &str| {
        text.replace(
            &format!("{}.wasm", template.example),
            &format!("{name}.wasm"),
        )
    };
    let mut files: Vec<(String, String)> = template
        .files
        .iter()
        .map(|(path, contents)| (path.to_string(), rename(contents)))
        .collect();
    if template.lang == "rust" {
        files.extend(rust_project(template, name));
    }
    files.push((
        ".gitignore".into(),
        "build/\ntarget/\nnode_modules/\n*.wasm\n".into(),
    ));
    files
}

/// A Rust project stands alone: its own manifest, the build settings the
/// examples get from the workspace, and the SDK crate beside it (it is not
/// on crates.io) with the WIT it is built from.
fn rust_project(template: &Template, name: &str) -> Vec<(String, String)> {
    let features = match template.world {
        "audio" => r#""audio""#,
        "video" => r#""video""#,
        _ => r#""audio", "video""#,
    };
    let crate_file = name.replace('-', "_");
    vec![
        (
            "Cargo.toml".into(),
            format!(
                r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
sandstream-guest = {{ path = "sandstream-guest", features = [{features}] }}

# Small and fast; function names are kept for trap backtraces.
[profile.release]
codegen-units = 1
lto = true
opt-level = 3
strip = "debuginfo"

[workspace]
"#
            ),
        ),
        (
            ".cargo/config.toml".into(),
            "# SIMD on: per-pixel kernels run ~10x faster with it.\n\
             [target.wasm32-wasip2]\n\
             rustflags = [\"-C\", \"target-feature=+simd128\"]\n"
                .into(),
        ),
        (
            "build.sh".into(),
            format!(
                r#"#!/bin/sh
# Builds the effect into a Sandstream component: ./build.sh [OUT.wasm]
# Needs Rust with the wasm32-wasip2 target (rustup target add wasm32-wasip2).
set -eu
cd "$(dirname "$0")"
OUT=${{1:-{name}.wasm}}
cargo build --release --target wasm32-wasip2
cp "${{CARGO_TARGET_DIR:-target}}/wasm32-wasip2/release/{crate_file}.wasm" "$OUT"
"#
            ),
        ),
        ("wit/sandstream.wit".into(), super::componentize::WIT.into()),
        ("sandstream-guest/Cargo.toml".into(), SDK_MANIFEST.into()),
        ("sandstream-guest/src/lib.rs".into(), SDK_LIB.into()),
        ("sandstream-guest/src/config.rs".into(), SDK_CONFIG.into()),
        ("sandstream-guest/src/formats.rs".into(), SDK_FORMATS.into()),
        ("sandstream-guest/src/log.rs".into(), SDK_LOG.into()),
    ]
}

const SDK_LIB: &str = include_str!("../../../guest-sdk/src/lib.rs");
const SDK_CONFIG: &str = include_str!("../../../guest-sdk/src/config.rs");
const SDK_FORMATS: &str = include_str!("../../../guest-sdk/src/formats.rs");
const SDK_LOG: &str = include_str!("../../../guest-sdk/src/log.rs");
/// The SDK's manifest outside our workspace (same versions as its own).
const SDK_MANIFEST: &str = r#"[package]
name = "sandstream-guest"
version = "0.1.0"
edition = "2024"
publish = false

[features]
audio = []
video = []
state = ["dep:serde", "dep:serde_json"]

[dependencies]
wit-bindgen = { version = "0.61", default-features = false, features = ["macros", "realloc"] }
serde = { version = "1", features = ["derive"], optional = true }
serde_json = { version = "1", optional = true }
"#;

fn write(dir: &Path, path: &str, contents: &str) -> anyhow::Result<()> {
    let full = dir.join(path);
    if let Some(parent) = full.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(&full, contents).with_context(|| format!("cannot write {}", full.display()))?;
    if path.ends_with(".sh") {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot make {} executable", full.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_choices_are_named_with_the_alternatives() {
        let err = |lang, world| find(lang, world).err().unwrap().to_string();
        assert!(
            err("cobol", "audio").contains("unknown language `cobol`; the languages are rust, c")
        );
        assert!(err("c", "midi").contains("unknown world `midi`; expected audio, video or av"));
    }

    #[test]
    fn every_language_has_a_template_for_every_world() {
        for lang in LANGUAGES {
            for world in ["audio", "video", "av"] {
                find(lang, world).unwrap();
            }
        }
    }

    #[test]
    fn project_names_are_made_safe() {
        assert_eq!(
            project_name(Path::new("/tmp/My Effect")).unwrap(),
            "my-effect"
        );
        assert!(project_name(Path::new("/tmp/9lives")).is_err());
    }

    #[test]
    fn a_projects_build_writes_its_own_name() {
        let c = find("c", "audio").unwrap();
        let files = project_files(c, "fuzz");
        let build = &files.iter().find(|(p, _)| p == "build.sh").unwrap().1;
        assert!(build.contains("OUT=${1:-fuzz.wasm}"), "{build}");
        let rust = project_files(find("rust", "av").unwrap(), "my-meter");
        let build = &rust.iter().find(|(p, _)| p == "build.sh").unwrap().1;
        assert!(build.contains("release/my_meter.wasm"), "{build}");
    }
}
