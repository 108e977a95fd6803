//! On-disk cache of compiled components, so a second start does not pay for
//! Cranelift again (~40 ms for a small guest, seconds for Python/JS guests).
//!
//! Key: SHA-256 of the component bytes plus the engine's compatibility hash
//! (wasmtime version, target, relevant config). Entries are written to a
//! temporary file and renamed into place, so a crash never leaves a partial
//! artifact under a valid name.
//!
//! Trust: a cached artifact is native code loaded without validation
//! (`Component::deserialize` is `unsafe` for that reason). The cache
//! directory must be writable only by the user running the host.

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where compiled components are kept.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
}

/// Whether a component came from the cache or was compiled now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    Miss,
    Disabled,
}

impl CompileCache {
    /// A cache in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `$SANDSTREAM_CACHE_DIR`, else `$XDG_CACHE_HOME/sandstream`, else
    /// `~/.cache/sandstream`; `None` when none of them can be found.
    pub fn default_location() -> Option<Self> {
        let env = |key| std::env::var_os(key).filter(|v| !v.is_empty());
        if let Some(dir) = env("SANDSTREAM_CACHE_DIR") {
            return Some(Self::new(dir));
        }
        let base = env("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
        Some(Self::new(base.join("sandstream")))
    }

    /// The directory entries live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Loads the compiled form of `bytes`, compiling and storing it on a miss.
    /// A corrupt or incompatible entry is recompiled and replaced.
    ///
    /// # Errors
    /// Compilation errors of the component itself. Cache I/O problems are
    /// logged and the freshly compiled component is returned anyway.
    pub fn load(&self, engine: &Engine, bytes: &[u8]) -> anyhow::Result<(Component, CacheOutcome)> {
        let entry = self.entry_path(engine, bytes);
        // Read into memory rather than `deserialize_file`: a mapped file
        // that someone truncates (another process, a user cleaning the
        // cache) would crash the host with SIGBUS.
        if let Ok(artifact) = std::fs::read(&entry) {
            // SAFETY: the entry was written by `Component::serialize` of this
            // host for an engine with the same compatibility hash (it is part
            // of the key); wasmtime still checks the artifact's header and
            // version. The cache directory is trusted (see module docs).
            match unsafe { Component::deserialize(engine, &artifact) } {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(err) => {
                    tracing::warn!("ignoring unusable cache entry {}: {err:#}", entry.display())
                }
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(err) = self.store(&entry, &component) {
            tracing::warn!("could not write compile cache {}: {err:#}", entry.display());
        }
        Ok((component, CacheOutcome::Miss))
    }

    fn entry_path(&self, engine: &Engine, bytes: &[u8]) -> PathBuf {
        let content = Sha256::digest(bytes);
        // DefaultHasher is deterministic for a given build of the host, and
        // a different host build has a different engine hash anyway.
        let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
        engine
            .precompile_compatibility_hash()
            .hash(&mut engine_hash);
        let name = format!(
            "{}-{:016x}.cwasm",
            hex(&content[..16]),
            engine_hash.finish()
        );
        self.dir.join(name)
    }

    fn store(&self, entry: &Path, component: &Component) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let serialized = component.serialize()?;
        // Unique per write: concurrent writers (threads or processes) each
        // rename a complete file into place, and readers that mmap the old
        // entry keep its inode; nobody ever sees a file being written.
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let unique = WRITES.fetch_add(1, Ordering::Relaxed);
        let tmp = entry.with_extension(format!("tmp-{}-{unique}", std::process::id()));
        std::fs::write(&tmp, serialized).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, entry).with_context(|| format!("renaming to {}", entry.display()))?;
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
