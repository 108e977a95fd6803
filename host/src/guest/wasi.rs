//! What a guest may import: WASI preview 2 (granting nothing unless the
//! user grants it) and our `log`, with every import that could make the
//! host wait bounded by the call's deadline.
//!
//! Epoch interruption stops guest instructions, not a host function the
//! guest called, so each import was audited for waiting:
//!
//! - `wasi:io/poll` (`poll`, `pollable.block`) is where every wait of
//!   preview 2 happens — a sleep is a clock pollable blocked on. Ours waits
//!   at most until the deadline of the guest call it serves, then traps
//!   with [`BlockedInHostCall`], which the host reports as "waited in a
//!   host call until its deadline" and handles like any other fault.
//! - `wasi:filesystem` (only reachable through `--grant-dir`): `open-at`
//!   refuses FIFOs, devices and sockets, whose opens and reads can wait
//!   forever; regular files are read at most 64 KiB per call by wasmtime.
//! - `wasi:random`: a request is capped at [`super::sandbox::MAX_RANDOM_BYTES`]
//!   (the host fills the whole request first).
//! - stdin is empty and closed; stdout and stderr never wait (see
//!   `output`); sockets and name lookup are denied before anything is
//!   attempted; clocks, environment, arguments and exit return at once.
//! - `log`: bounded by the output budget (see `output`).
//!
//! Whatever a guest hands over in one import call (a log message, a write)
//! is bounded before it is copied by the call's transfer cap.

use super::bindings::{self, log};
use super::instance::HostState;
use super::sandbox::WaitLimit;
use std::fmt;
use wasmtime::Engine;
use wasmtime::component::{HasData, HasSelf, Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::sync::filesystem::types as fs;
use wasmtime_wasi::p2::bindings::sync::io::poll;
use wasmtime_wasi_io::bindings::wasi::io::poll as async_poll;
use wasmtime_wasi_io::poll::DynPollable;

/// The WASI version wasmtime-wasi 48 defines (guests importing any 0.2.x
/// are linked to it).
const FILESYSTEM_TYPES: &str = "wasi:filesystem/types@0.2.12";

/// A guest call was cut off while the guest waited in a host call.
#[derive(Debug, Clone, Copy)]
pub struct BlockedInHostCall {
    pub import: &'static str,
}

impl fmt::Display for BlockedInHostCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the guest waited in {} until its deadline", self.import)
    }
}

impl std::error::Error for BlockedInHostCall {}

/// A linker with everything a guest may import.
///
/// # Errors
/// When wasmtime rejects a definition (not expected).
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    // Replace the few definitions that could wait without bound.
    linker.allow_shadowing(true);
    poll::add_to_linker::<HostState, BoundedWaits>(&mut linker, |state| Waits {
        table: &mut state.table,
        limit: state.waits,
    })?;
    refuse_special_files(&mut linker)?;
    linker.allow_shadowing(false);
    bindings::HostView::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
    Ok(linker)
}

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) {
        let level = match level {
            log::Level::Trace => tracing::Level::TRACE,
            log::Level::Debug => tracing::Level::DEBUG,
            log::Level::Info => tracing::Level::INFO,
            log::Level::Warn => tracing::Level::WARN,
            log::Level::Error => tracing::Level::ERROR,
        };
        self.log.message(level, &message);
    }
}

/// `wasi:io/poll` with every wait bounded by the current call's deadline.
struct Waits<'a> {
    table: &'a mut ResourceTable,
    limit: WaitLimit,
}

struct BoundedWaits;

impl HasData for BoundedWaits {
    type Data<'a> = Waits<'a>;
}

/// Runs `wait` until it finishes or the call's deadline passes; then the
/// guest call traps with [`BlockedInHostCall`].
fn bounded<T>(
    import: &'static str,
    limit: WaitLimit,
    wait: impl Future<Output = wasmtime::Result<T>>,
) -> wasmtime::Result<T> {
    let remaining = limit.remaining();
    wasmtime_wasi::runtime::in_tokio(async move {
        match tokio::time::timeout(remaining, wait).await {
            Ok(result) => result,
            Err(_elapsed) => Err(BlockedInHostCall { import }.into()),
        }
    })
}

impl poll::Host for Waits<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        let table = &mut *self.table;
        bounded("wasi:io/poll.poll", self.limit, async move {
            async_poll::Host::poll(table, pollables).await
        })
    }
}

impl poll::HostPollable for Waits<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        // Only asks; never waits.
        let table = &mut *self.table;
        wasmtime_wasi::runtime::in_tokio(async move {
            async_poll::HostPollable::ready(table, pollable).await
        })
    }

    fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        let table = &mut *self.table;
        bounded("wasi:io/poll.pollable.block", self.limit, async move {
            async_poll::HostPollable::block(table, pollable).await
        })
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        async_poll::HostPollable::drop(self.table, pollable)
    }
}

/// `open-at` that refuses what could block a guest forever: FIFOs (an open
/// waits for a writer), character and block devices, sockets.
fn refuse_special_files(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    type Args = (
        Resource<fs::Descriptor>,
        fs::PathFlags,
        String,
        fs::OpenFlags,
        fs::DescriptorFlags,
    );
    linker.instance(FILESYSTEM_TYPES)?.func_wrap(
        "[method]descriptor.open-at",
        |mut store, (dir, path_flags, path, open_flags, flags): Args| {
            use wasmtime_wasi::filesystem::WasiFilesystemView as _;
            let state: &mut HostState = store.data_mut();
            let mut view = state.filesystem();
            let probe = Resource::new_borrow(dir.rep());
            if let Ok(stat) =
                fs::HostDescriptor::stat_at(&mut view, probe, path_flags, path.clone())
                && !matches!(
                    stat.type_,
                    fs::DescriptorType::RegularFile
                        | fs::DescriptorType::Directory
                        | fs::DescriptorType::SymbolicLink
                )
            {
                tracing::debug!(
                    "a guest tried to open {:?} ({:?}) in a granted directory: refused",
                    crate::text::GuestText::new(&path, 256).as_str(),
                    stat.type_
                );
                return Ok((Err(fs::ErrorCode::NotPermitted),));
            }
            let opened =
                fs::HostDescriptor::open_at(&mut view, dir, path_flags, path, open_flags, flags);
            match opened {
                Ok(descriptor) => Ok((Ok(descriptor),)),
                Err(err) => Ok((Err(fs::Host::convert_error_code(&mut view, err)?),)),
            }
        },
    )
}
