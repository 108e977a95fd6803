//! Reading and compiling a guest, bounded before any of its code runs.
//!
//! The path may name anything: a FIFO (reading one waits for a writer), a
//! device (`/dev/zero` never ends), a directory, a huge file, or a symlink
//! to any of these. The file is opened without blocking, checked with
//! `fstat` on the open descriptor (so what is checked is what is read),
//! refused unless it is a regular file within the size limit, and read no
//! further than the limit even if it grows meanwhile. Compilation then gets
//! a time limit: a pathological component fails with a clear error instead
//! of holding the start (or a hot swap) for ever.

use super::cache::{CacheOutcome, CompileCache};
use super::inspect::LoadError;
use std::io::Read as _;
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::Path;
use std::time::Duration;
use wasmtime::Engine;
use wasmtime::component::Component;

/// Reads the regular file at `path` if it is at most `max_bytes` long.
///
/// # Errors
/// [`LoadError::Read`], [`LoadError::NotAFile`] or [`LoadError::TooLarge`].
pub fn read_bounded(path: &Path, max_bytes: u64) -> Result<Vec<u8>, LoadError> {
    let shown = || path.display().to_string();
    let read_error = |source| LoadError::Read {
        path: shown(),
        source,
    };
    // O_NONBLOCK: opening a FIFO must not wait for a writer; it changes
    // nothing for regular files.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(read_error)?;
    let metadata = file.metadata().map_err(read_error)?;
    let kind = metadata.file_type();
    let what = if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if kind.is_char_device() {
        Some("a character device")
    } else if kind.is_block_device() {
        Some("a block device")
    } else if kind.is_socket() {
        Some("a socket")
    } else {
        Some("not a regular file")
    };
    if let Some(kind) = what {
        return Err(LoadError::NotAFile {
            path: shown(),
            kind,
        });
    }
    let too_large = |size| LoadError::TooLarge {
        path: shown(),
        size,
        limit: max_bytes,
    };
    if metadata.len() > max_bytes {
        return Err(too_large(metadata.len()));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Compiles `bytes` (through `cache` when given) on a thread of its own,
/// waiting at most `timeout`. A compilation that takes longer is left to
/// finish in the background (Cranelift cannot be interrupted) and its
/// result thrown away.
///
/// # Errors
/// [`LoadError::Invalid`] for a component wasmtime rejects,
/// [`LoadError::CompileTimeout`].
pub fn compile(
    engine: &Engine,
    bytes: Vec<u8>,
    cache: Option<&CompileCache>,
    timeout: Duration,
) -> Result<(Component, CacheOutcome), LoadError> {
    let (engine, cache) = (engine.clone(), cache.cloned());
    let (done, result) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name("sandstream-compile".into())
        .spawn(move || {
            let compiled = match &cache {
                Some(cache) => cache.load(&engine, &bytes),
                None => Component::new(&engine, &bytes)
                    .map(|component| (component, CacheOutcome::Disabled))
                    .map_err(anyhow::Error::from),
            };
            let _ = done.send(compiled);
        })
        .map_err(|source| LoadError::Read {
            path: "(compiler thread)".into(),
            source,
        })?;
    match result.recv_timeout(timeout) {
        Ok(Ok(compiled)) => Ok(compiled),
        Ok(Err(err)) => Err(LoadError::Invalid {
            detail: super::one_line(&err),
        }),
        Err(_) => Err(LoadError::CompileTimeout { limit: timeout }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("sandstream-load-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn special_files_are_refused_without_reading() {
        let dir = scratch("special");
        let fifo = dir.join("guest.wasm");
        let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string; mkfifo only creates a file.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
        let err = read_bounded(&fifo, 1 << 20).unwrap_err().to_string();
        assert!(
            err.contains("is a FIFO (named pipe), not a regular file"),
            "{err}"
        );

        let link = dir.join("zero.wasm");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let err = read_bounded(&link, 1 << 20).unwrap_err().to_string();
        assert!(err.contains("is a character device"), "{err}");

        let err = read_bounded(&dir, 1 << 20).unwrap_err().to_string();
        assert!(err.contains("is a directory"), "{err}");
    }

    #[test]
    fn files_over_the_limit_are_refused() {
        let dir = scratch("large");
        let big = dir.join("big.wasm");
        std::fs::write(&big, vec![0u8; 3 << 20]).unwrap();
        let err = read_bounded(&big, 2 << 20).unwrap_err().to_string();
        assert!(err.contains("is 3.0 MiB, over the 2.0 MiB limit"), "{err}");
        assert_eq!(read_bounded(&big, 3 << 20).unwrap().len(), 3 << 20);
    }
}
