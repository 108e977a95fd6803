//! Recognising what a `.wasm` file is, and saying precisely what is wrong
//! with it when it is not a Sandstream effect.

use std::fmt;
use wasmtime::Engine;
use wasmtime::component::Component;

/// The WIT package version this host speaks.
pub const PACKAGE: &str = "sandstream:av";
pub const VERSION: &str = "0.1.0";

/// Fully qualified names of the interfaces an effect exports.
pub const SETUP: &str = "sandstream:av/setup@0.1.0";
pub const AUDIO: &str = "sandstream:av/audio@0.1.0";
pub const VIDEO: &str = "sandstream:av/video@0.1.0";
/// Optional: snapshot/restore across swaps.
pub const STATE: &str = "sandstream:av/state@0.1.0";
/// Optional: the mapped data paths.
pub const MAPPED_AUDIO: &str = "sandstream:av/mapped-audio@0.1.0";
pub const MAPPED_VIDEO: &str = "sandstream:av/mapped-video@0.1.0";

/// Imports the host satisfies: its own interfaces and WASI preview 2.
const PROVIDED_IMPORT_PREFIXES: &[&str] = &[
    "sandstream:av/log@0.1.0",
    "sandstream:av/types@0.1.0",
    "wasi:",
];

/// Which of our worlds a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    Audio,
    Video,
    AudioVideo,
}

impl World {
    /// The world's WIT name, e.g. `sandstream:av/audio-effect`.
    pub fn wit_name(self) -> &'static str {
        match self {
            World::Audio => "sandstream:av/audio-effect",
            World::Video => "sandstream:av/video-effect",
            World::AudioVideo => "sandstream:av/av-effect",
        }
    }

    pub fn processes_audio(self) -> bool {
        matches!(self, World::Audio | World::AudioVideo)
    }

    pub fn processes_video(self) -> bool {
        matches!(self, World::Video | World::AudioVideo)
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wit_name())
    }
}

/// Why a file cannot be run as an effect. Each message says what the file
/// is, what was expected, and what to do.
#[derive(Debug)]
pub enum LoadError {
    Read {
        path: String,
        source: std::io::Error,
    },
    /// The path names a FIFO, a device, a directory... (`kind` says which).
    NotAFile {
        path: String,
        kind: &'static str,
    },
    TooLarge {
        path: String,
        size: u64,
        limit: u64,
    },
    CompileTimeout {
        limit: std::time::Duration,
    },
    Empty,
    NotWasm {
        magic: Vec<u8>,
    },
    CoreModule,
    Invalid {
        detail: String,
    },
    NotAnEffect {
        exports: Vec<String>,
    },
    MissingExport {
        resembles: &'static str,
        missing: &'static str,
        exports: Vec<String>,
    },
    WrongVersion {
        found: String,
    },
    UnsupportedImport {
        import: String,
    },
    Link {
        detail: String,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let worlds = "sandstream:av/audio-effect, sandstream:av/video-effect or \
                      sandstream:av/av-effect (or their -mapped variants)";
        match self {
            LoadError::Read { path, source } => write!(f, "cannot read {path}: {source}"),
            LoadError::NotAFile { path, kind } => write!(
                f,
                "{path} is {kind}, not a regular file: a guest is a .wasm component file"
            ),
            LoadError::TooLarge { path, size, limit } => write!(
                f,
                "{path} is {:.1} MiB, over the {:.1} MiB limit for guests (--max-guest-size)",
                *size as f64 / 1048576.0,
                *limit as f64 / 1048576.0
            ),
            LoadError::CompileTimeout { limit } => write!(
                f,
                "compiling the component took longer than {} s (--compile-timeout): it is too \
                 large or pathological",
                limit.as_secs_f64()
            ),
            LoadError::Empty => write!(f, "the file is empty, not a WebAssembly component"),
            LoadError::NotWasm { magic } => write!(
                f,
                "not a WebAssembly file (starts with {magic:02x?}, expected the \\0asm magic); \
                 an effect is a component implementing {worlds}"
            ),
            LoadError::CoreModule => write!(
                f,
                "this is a core WebAssembly module, not a component: make it one with \
                 `sandstream componentize FILE --world WORLD -o OUT.wasm` (C, C++, Zig, Go), or \
                 build Rust with `--target wasm32-wasip2`, so it implements {worlds}"
            ),
            LoadError::Invalid { detail } => {
                write!(f, "not a valid WebAssembly component: {detail}")?;
                if detail.contains("end-of-file") || detail.contains("unexpected end") {
                    write!(f, " (the file looks truncated)")?;
                }
                Ok(())
            }
            LoadError::NotAnEffect { exports } => write!(
                f,
                "the component implements none of the Sandstream worlds ({worlds}): it should \
                 export {SETUP} and {AUDIO} and/or {VIDEO}, but it exports {}",
                list_or_nothing(exports)
            ),
            LoadError::MissingExport {
                resembles,
                missing,
                exports,
            } => write!(
                f,
                "the component resembles {resembles} but does not export {missing} (it exports {})",
                list_or_nothing(exports)
            ),
            LoadError::WrongVersion { found } => write!(
                f,
                "the component was built against {found}, but this host speaks \
                 {PACKAGE}@{VERSION}: rebuild it with the matching guest SDK"
            ),
            LoadError::UnsupportedImport { import } => write!(
                f,
                "the component imports {import}, which Sandstream does not provide (guests may \
                 import sandstream:av/log and WASI preview 2 interfaces only)"
            ),
            LoadError::Link { detail } => write!(f, "the component cannot be linked: {detail}"),
        }
    }
}

impl std::error::Error for LoadError {}

fn list_or_nothing(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".to_string()
    } else {
        items.join(", ")
    }
}

/// Checks the first bytes: a component, not a core module or something else.
///
/// # Errors
/// [`LoadError::Empty`], [`LoadError::NotWasm`] or [`LoadError::CoreModule`].
pub fn check_header(bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.is_empty() {
        return Err(LoadError::Empty);
    }
    if !bytes.starts_with(b"\0asm") {
        return Err(LoadError::NotWasm {
            magic: bytes.iter().take(4).copied().collect(),
        });
    }
    // Bytes 4..8: version (u16) and layer (u16); layer 1 is a component.
    match bytes.get(6..8) {
        Some([0, 0]) => Err(LoadError::CoreModule),
        Some([1, 0]) => Ok(()),
        _ => Err(LoadError::Invalid {
            detail: "unknown WebAssembly version/layer header (unexpected end-of-file?)"
                .to_string(),
        }),
    }
}

/// The names a compiled component imports and exports.
#[derive(Debug, Clone)]
pub struct Surface {
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

impl Surface {
    pub fn of(engine: &Engine, component: &Component) -> Self {
        let ty = component.component_type();
        Self {
            imports: ty
                .imports(engine)
                .map(|(name, _)| name.to_string())
                .collect(),
            exports: ty
                .exports(engine)
                .map(|(name, _)| name.to_string())
                .collect(),
        }
    }

    /// Whether the component exports the interface `name` (fully
    /// qualified, e.g. [`STATE`]).
    pub fn has_export(&self, name: &str) -> bool {
        self.exports.iter().any(|e| e == name)
    }

    /// Whether the guest can hand its state over on a swap.
    pub fn has_state(&self) -> bool {
        self.has_export(STATE)
    }

    /// Decides which world the component implements.
    ///
    /// # Errors
    /// Which export is missing, which version it was built for, or which
    /// import the host cannot provide.
    pub fn world(&self) -> Result<World, LoadError> {
        if let Some(import) = self
            .imports
            .iter()
            .find(|name| !PROVIDED_IMPORT_PREFIXES.iter().any(|p| name.starts_with(p)))
        {
            return Err(self
                .version_mismatch(import)
                .unwrap_or(LoadError::UnsupportedImport {
                    import: import.clone(),
                }));
        }
        let has = |name: &str| self.exports.iter().any(|e| e == name);
        let setup = has(SETUP);
        // A stream is processed through lists, mapped buffers, or both.
        let audio = has(AUDIO) || has(MAPPED_AUDIO);
        let video = has(VIDEO) || has(MAPPED_VIDEO);
        let world = match (audio, video) {
            (true, true) => World::AudioVideo,
            (true, false) => World::Audio,
            (false, true) => World::Video,
            (false, false) => {
                if let Some(err) = self.exports.iter().find_map(|e| self.version_mismatch(e)) {
                    return Err(err);
                }
                if setup {
                    return Err(LoadError::MissingExport {
                        resembles: "a Sandstream effect",
                        missing: "sandstream:av/audio@0.1.0, sandstream:av/video@0.1.0 or \
                                  their mapped-audio / mapped-video",
                        exports: self.exports.clone(),
                    });
                }
                return Err(LoadError::NotAnEffect {
                    exports: self.exports.clone(),
                });
            }
        };
        if !setup {
            return Err(LoadError::MissingExport {
                resembles: world.wit_name(),
                missing: SETUP,
                exports: self.exports.clone(),
            });
        }
        Ok(world)
    }

    /// Whether the guest exports a mapped data path for any stream.
    pub fn offers_mapped(&self) -> bool {
        self.has_export(MAPPED_AUDIO) || self.has_export(MAPPED_VIDEO)
    }

    /// Whether the guest can take `world`'s streams only through mapped
    /// buffers (it implements one of the `-mapped` worlds).
    pub fn mapped_only(&self, world: World) -> bool {
        let lists_missing = |processes: bool, lists: &str| processes && !self.has_export(lists);
        lists_missing(world.processes_audio(), AUDIO)
            || lists_missing(world.processes_video(), VIDEO)
    }

    /// The WIT world the exports match, e.g.
    /// `sandstream:av/audio-effect-mapped-stateful`.
    pub fn world_name(&self, world: World) -> String {
        let mapped = if self.mapped_only(world) {
            "-mapped"
        } else {
            ""
        };
        let stateful = if self.has_state() { "-stateful" } else { "" };
        format!("{}{mapped}{stateful}", world.wit_name())
    }

    /// A `sandstream:av/...@OTHER` name means the guest was built against
    /// another version of our WIT package.
    fn version_mismatch(&self, name: &str) -> Option<LoadError> {
        let rest = name.strip_prefix("sandstream:av/")?;
        let (_, version) = rest.split_once('@')?;
        (version != VERSION).then(|| LoadError::WrongVersion {
            found: format!("{PACKAGE}@{version}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn surface(imports: &[&str], exports: &[&str]) -> Surface {
        Surface {
            imports: imports.iter().map(|s| s.to_string()).collect(),
            exports: exports.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn header_distinguishes_components_modules_and_other_files() {
        assert!(check_header(b"\0asm\x0d\x00\x01\x00rest").is_ok());
        assert!(matches!(
            check_header(b"\0asm\x01\x00\x00\x00"),
            Err(LoadError::CoreModule)
        ));
        assert!(matches!(
            check_header(b"#!/bin/sh"),
            Err(LoadError::NotWasm { .. })
        ));
        assert!(matches!(check_header(b""), Err(LoadError::Empty)));
        assert!(matches!(
            check_header(b"\0asm\x0d"),
            Err(LoadError::Invalid { .. })
        ));
    }

    #[test]
    fn worlds_are_recognised_from_exports() {
        let wasi = ["wasi:io/streams@0.2.6", "sandstream:av/log@0.1.0"];
        assert_eq!(
            surface(&wasi, &[SETUP, AUDIO]).world().unwrap(),
            World::Audio
        );
        assert_eq!(
            surface(&wasi, &[SETUP, VIDEO]).world().unwrap(),
            World::Video
        );
        assert_eq!(
            surface(&wasi, &[SETUP, AUDIO, VIDEO]).world().unwrap(),
            World::AudioVideo
        );
    }

    #[test]
    fn mapped_worlds_are_recognised_and_named() {
        let named = |exports: &[&str]| {
            let surface = surface(&[], exports);
            let world = surface.world().unwrap();
            (world, surface.world_name(world))
        };
        assert_eq!(
            named(&[SETUP, MAPPED_AUDIO]),
            (World::Audio, "sandstream:av/audio-effect-mapped".into())
        );
        assert_eq!(
            named(&[SETUP, MAPPED_VIDEO, STATE]),
            (
                World::Video,
                "sandstream:av/video-effect-mapped-stateful".into()
            )
        );
        assert_eq!(
            named(&[SETUP, MAPPED_AUDIO, MAPPED_VIDEO]),
            (World::AudioVideo, "sandstream:av/av-effect-mapped".into())
        );
        // The Rust SDK exports both paths: the list world, mapped as a bonus.
        assert_eq!(
            named(&[SETUP, AUDIO, MAPPED_AUDIO]),
            (World::Audio, "sandstream:av/audio-effect".into())
        );
    }

    #[test]
    fn problems_are_named() {
        let err = surface(&[], &["wasi:cli/run@0.2.6"]).world().unwrap_err();
        assert!(
            err.to_string()
                .contains("implements none of the Sandstream worlds"),
            "{err}"
        );
        assert!(err.to_string().contains("wasi:cli/run@0.2.6"), "{err}");

        let err = surface(&[], &[AUDIO]).world().unwrap_err().to_string();
        assert!(
            err.contains("resembles sandstream:av/audio-effect"),
            "{err}"
        );
        assert!(err.contains(SETUP), "{err}");

        let err = surface(&[], &["sandstream:av/audio@0.2.0"])
            .world()
            .unwrap_err();
        assert!(err.to_string().contains("sandstream:av@0.2.0"), "{err}");

        let err = surface(&["acme:secrets/vault"], &[SETUP, AUDIO])
            .world()
            .unwrap_err();
        assert!(
            err.to_string().contains("imports acme:secrets/vault"),
            "{err}"
        );
    }
}
