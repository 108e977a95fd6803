//! Guests: loading a component, checking it is one of our worlds, and
//! calling it. Frame passing lives in `frames` only
//! ([`GuestInstance::process_audio`], [`GuestInstance::process_video`] and
//! [`GuestInstance::process_video_with`]): through the guest's own buffers
//! when it exports `mapped-audio` / `mapped-video` (see `mapped` and
//! `memory`), as lists otherwise.

mod bindings;
mod cache;
mod engine;
mod frames;
mod inspect;
mod log_stream;
mod mapped;
mod memory;
pub mod sandbox;
pub mod supervisor;
pub mod swap;

pub use cache::{CacheOutcome, CompileCache};
pub use engine::{engine_for, new_engine};
pub use frames::Processed;
pub use inspect::{LoadError, Surface, World};
pub use mapped::{DataPath, StreamPath};
pub use memory::live_memories;
pub use sandbox::{FaultPolicy, SandboxPolicy};
pub use supervisor::{Delivery, Supervisor};

use crate::media::{AudioFormat, VideoFormat};
use bindings::{audio, log, mapped_audio, mapped_video, setup, state, types};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use wasmtime::component::{HasSelf, InstancePre, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Per-instance host state: WASI (granting nothing) and the guest's name for
/// log lines.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    name: Arc<str>,
    limits: sandbox::MemoryCap,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) {
        let name = &*self.name;
        match level {
            log::Level::Trace => tracing::trace!(target: "guest", "[{name}] {message}"),
            log::Level::Debug => tracing::debug!(target: "guest", "[{name}] {message}"),
            log::Level::Info => tracing::info!(target: "guest", "[{name}] {message}"),
            log::Level::Warn => tracing::warn!(target: "guest", "[{name}] {message}"),
            log::Level::Error => tracing::error!(target: "guest", "[{name}] {message}"),
        }
    }
}

impl types::Host for HostState {}

/// A compiled, validated and pre-linked guest, ready to instantiate.
pub struct GuestProgram {
    name: Arc<str>,
    world: World,
    surface: Surface,
    cache: CacheOutcome,
    pre: InstancePre<HostState>,
    setup: setup::GuestIndices,
    audio: Option<audio::GuestIndices>,
    video: Option<bindings::video::GuestIndices>,
    state: Option<state::GuestIndices>,
    mapped_audio: Option<mapped_audio::GuestIndices>,
    mapped_video: Option<mapped_video::GuestIndices>,
}

impl GuestProgram {
    /// Reads, validates, compiles (through `cache` when given) and links
    /// the component at `path`.
    ///
    /// # Errors
    /// A [`LoadError`] that says what the file is and what was expected.
    pub fn load(
        engine: &Engine,
        path: &Path,
        cache: Option<&CompileCache>,
    ) -> Result<Self, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        Self::from_bytes(engine, &name, &bytes, cache)
    }

    /// Like [`GuestProgram::load`], from bytes in memory.
    ///
    /// # Errors
    /// See [`GuestProgram::load`].
    pub fn from_bytes(
        engine: &Engine,
        name: &str,
        bytes: &[u8],
        cache: Option<&CompileCache>,
    ) -> Result<Self, LoadError> {
        inspect::check_header(bytes)?;
        let invalid = |err: wasmtime::Error| LoadError::Invalid {
            detail: one_line(&err),
        };
        let (component, cache) = match cache {
            Some(cache) => cache
                .load(engine, bytes)
                .map_err(|err| LoadError::Invalid {
                    detail: one_line(&err),
                })?,
            None => (
                wasmtime::component::Component::new(engine, bytes).map_err(invalid)?,
                CacheOutcome::Disabled,
            ),
        };
        let link = |err: wasmtime::Error| LoadError::Link {
            detail: one_line(&err),
        };
        let surface = Surface::of(engine, &component);
        let world = surface.world()?;

        let linker = new_linker(engine).map_err(link)?;
        let pre = linker.instantiate_pre(&component).map_err(link)?;
        let setup = setup::GuestIndices::new(&pre).map_err(link)?;
        let audio = world
            .processes_audio()
            .then(|| audio::GuestIndices::new(&pre))
            .transpose()
            .map_err(link)?;
        let video = world
            .processes_video()
            .then(|| bindings::video::GuestIndices::new(&pre))
            .transpose()
            .map_err(link)?;
        let state = surface
            .has_state()
            .then(|| state::GuestIndices::new(&pre))
            .transpose()
            .map_err(link)?;
        let mapped_audio = (world.processes_audio() && surface.has_export(inspect::MAPPED_AUDIO))
            .then(|| mapped_audio::GuestIndices::new(&pre))
            .transpose()
            .map_err(link)?;
        let mapped_video = (world.processes_video() && surface.has_export(inspect::MAPPED_VIDEO))
            .then(|| mapped_video::GuestIndices::new(&pre))
            .transpose()
            .map_err(link)?;
        Ok(Self {
            state,
            mapped_audio,
            mapped_video,
            name: name.into(),
            world,
            surface,
            cache,
            pre,
            setup,
            audio,
            video,
        })
    }

    /// The file name the guest was loaded from; used in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn world(&self) -> World {
        self.world
    }

    /// Everything the component imports and exports.
    pub fn surface(&self) -> &Surface {
        &self.surface
    }

    /// The engine the guest was compiled for.
    pub fn engine(&self) -> &Engine {
        self.pre.engine()
    }

    pub fn cache_outcome(&self) -> CacheOutcome {
        self.cache
    }

    /// Creates a fresh instance with the default memory cap and no
    /// practical deadline (see [`GuestProgram::instantiate_with`]).
    ///
    /// # Errors
    /// When instantiation traps or an export has the wrong type.
    pub fn instantiate(&self) -> anyhow::Result<GuestInstance> {
        Ok(self.instantiate_with(
            &sandbox::Grants::default(),
            sandbox::DEFAULT_MEMORY_LIMIT,
            u64::MAX / 2,
        )?)
    }

    /// Creates a fresh instance with its own store. Nothing is granted but
    /// `grants`: no files, no network, no environment by default;
    /// stdout/stderr go to the log.
    /// Linear memory is capped at `memory_limit` bytes; instantiation and
    /// every later call get `deadline_ticks` epoch ticks (when the engine
    /// has epoch interruption on).
    ///
    /// # Errors
    /// When instantiation traps (e.g. a start function fails) or an export
    /// has the wrong type.
    pub fn instantiate_with(
        &self,
        grants: &sandbox::Grants,
        memory_limit: usize,
        deadline_ticks: u64,
    ) -> wasmtime::Result<GuestInstance> {
        let mut builder = WasiCtx::builder();
        builder
            .stdout(log_stream::LogStream::new(self.name.clone(), "stdout"))
            .stderr(log_stream::LogStream::new(self.name.clone(), "stderr"))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for (host, guest) in &grants.dirs {
            builder.preopened_dir(host, guest, wasmtime_wasi::FsPerms::ReadOnly)?;
        }
        for (key, value) in &grants.env {
            builder.env(key, value);
        }
        let wasi = builder.build();
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            name: self.name.clone(),
            limits: sandbox::MemoryCap::new(memory_limit),
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(deadline_ticks);
        let (instance, mut memories) = memory::collect_during(|| self.pre.instantiate(&mut store));
        let instance = instance?;
        // The mapped path needs to know which memory the guest's buffers are
        // in; with exactly one there is no doubt (every Rust, C and Zig
        // guest). Several (e.g. a preview-1 adapter's own) mean lists.
        let memory_count = memories.len();
        let memory = (memory_count == 1).then(|| memories.remove(0));
        let setup = self.setup.load(&mut store, &instance)?;
        let audio = match &self.audio {
            Some(indices) => Some(indices.load(&mut store, &instance)?),
            None => None,
        };
        let video = match &self.video {
            Some(indices) => Some(indices.load(&mut store, &instance)?),
            None => None,
        };
        let state = match &self.state {
            Some(indices) => Some(indices.load(&mut store, &instance)?),
            None => None,
        };
        let mapped_audio = match &self.mapped_audio {
            Some(indices) => Some(indices.load(&mut store, &instance)?),
            None => None,
        };
        let mapped_video = match &self.mapped_video {
            Some(indices) => Some(indices.load(&mut store, &instance)?),
            None => None,
        };
        LIVE_INSTANCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(GuestInstance {
            state,
            name: self.name.clone(),
            deadline_ticks,
            store,
            setup,
            audio,
            video,
            mapped: frames::Mapped {
                memory,
                memory_count,
                audio_api: mapped_audio,
                video_api: mapped_video,
                audio: None,
                video: None,
            },
            audio_path: StreamPath::Lists { reason: None },
            video_path: StreamPath::Lists { reason: None },
            video_scratch: Vec::new(),
            last_call_mapped: false,
        })
    }
}

/// An error and its causes on one line: load errors are shown as one
/// `error:` line, and some parser messages span several.
fn one_line(err: &dyn fmt::Display) -> String {
    format!("{err:#}")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

fn new_linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    bindings::HostView::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// What went wrong in one call into the guest.
#[derive(Debug)]
pub enum GuestFault {
    /// The call ran past its deadline and was interrupted.
    Timeout,
    /// The guest hit its memory cap (and trapped).
    OutOfMemory(wasmtime::Error),
    /// The call trapped (unreachable, out of bounds, a panic...).
    Trap(wasmtime::Error),
    /// The guest returned an error message.
    Reported(String),
    /// The guest returned data of the wrong size.
    WrongSize {
        got: usize,
        expected: usize,
        unit: &'static str,
    },
    /// The guest does not implement this stream.
    NotImplemented(&'static str),
    /// A mapped buffer no longer lies inside the guest's memory.
    BadBuffer(memory::OutOfBounds),
}

impl fmt::Display for GuestFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuestFault::Timeout => write!(f, "ran past its deadline and was interrupted"),
            GuestFault::OutOfMemory(err) => {
                write!(f, "hit its memory limit: {}", trap_summary(err))
            }
            GuestFault::Trap(err) => write!(f, "trapped: {}", trap_summary(err)),
            GuestFault::Reported(msg) => write!(f, "returned an error: {msg}"),
            GuestFault::WrongSize {
                got,
                expected,
                unit,
            } => write!(
                f,
                "returned {got} {unit} where {expected} were expected (or 0 to drop)"
            ),
            GuestFault::NotImplemented(stream) => write!(f, "does not process {stream}"),
            GuestFault::BadBuffer(err) => {
                write!(f, "announced a buffer the host cannot use: {err}")
            }
        }
    }
}

/// The trap's own message, without wasmtime's multi-line backtrace.
fn trap_summary(err: &wasmtime::Error) -> String {
    match err.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{err:#}")
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

impl std::error::Error for GuestFault {}

impl GuestFault {
    /// True when the instance must be thrown away (its state is unknown
    /// after a trap); an error or a wrong-sized result leaves it usable.
    pub fn poisons_instance(&self) -> bool {
        matches!(
            self,
            GuestFault::Timeout
                | GuestFault::OutOfMemory(_)
                | GuestFault::Trap(_)
                | GuestFault::BadBuffer(_)
        )
    }
}

/// Formats of the streams an instance is configured for.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamFormats {
    pub audio: Option<(AudioFormat, u32)>,
    pub video: Option<VideoFormat>,
}

/// Timing of one audio block, as the guest sees it.
#[derive(Debug, Clone, Copy)]
pub struct AudioCall {
    pub timestamp_ns: u64,
    pub first_frame: u64,
    pub format: AudioFormat,
}

/// Timing of one video frame, as the guest sees it.
#[derive(Debug, Clone, Copy)]
pub struct VideoCall {
    pub timestamp_ns: u64,
    pub index: u64,
    pub format: VideoFormat,
}

/// Guest instances alive in this process: lets tests prove that restarts
/// and swaps leak nothing.
static LIVE_INSTANCES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many guest instances exist right now, in the whole process.
pub fn live_instances() -> usize {
    LIVE_INSTANCES.load(std::sync::atomic::Ordering::Relaxed)
}

impl Drop for GuestInstance {
    fn drop(&mut self) {
        LIVE_INSTANCES.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// One live instance of a guest, with its own store. Not shared between
/// threads: the processing stage owns it.
pub struct GuestInstance {
    name: Arc<str>,
    deadline_ticks: u64,
    store: Store<HostState>,
    setup: setup::Guest,
    audio: Option<audio::Guest>,
    video: Option<bindings::video::Guest>,
    state: Option<state::Guest>,
    mapped: frames::Mapped,
    audio_path: StreamPath,
    video_path: StreamPath,
    /// List path of `process_video_with`: where the source writes.
    video_scratch: Vec<u8>,
    /// Whether the last block or frame went through mapped memory.
    last_call_mapped: bool,
}

impl GuestInstance {
    /// The guest's state, if it exports `state`.
    ///
    /// # Errors
    /// A trap or a timeout in `snapshot`.
    pub fn snapshot(&mut self) -> Option<Result<Vec<u8>, GuestFault>> {
        self.arm();
        let state = self.state.as_ref()?;
        Some(
            state
                .call_snapshot(&mut self.store)
                .map_err(|trap| self.classify(trap)),
        )
    }

    /// Hands a snapshot to the guest, if it exports `state`.
    ///
    /// # Errors
    /// The guest's refusal, a trap or a timeout; `NotImplemented` without
    /// `state`.
    pub fn restore(&mut self, snapshot: &[u8]) -> Result<(), GuestFault> {
        self.arm();
        let state = self
            .state
            .as_ref()
            .ok_or(GuestFault::NotImplemented("state"))?;
        let result = state.call_restore(&mut self.store, snapshot);
        self.settle(result)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Epoch ticks each following call may run for.
    pub fn set_deadline_ticks(&mut self, ticks: u64) {
        self.deadline_ticks = ticks;
    }

    /// Arms the deadline and clears the memory-denial flag before a call.
    fn arm(&mut self) {
        self.store.set_epoch_deadline(self.deadline_ticks);
        self.store.data_mut().limits.denied = false;
    }

    /// The result of a guest call that returns `result<T, string>`: the
    /// value, the guest's own error, or the trap, named.
    fn settle<T, U: From<T>>(
        &self,
        result: wasmtime::Result<Result<T, String>>,
    ) -> Result<U, GuestFault> {
        match result {
            Ok(Ok(value)) => Ok(value.into()),
            Ok(Err(message)) => Err(GuestFault::Reported(message)),
            Err(trap) => Err(self.classify(trap)),
        }
    }

    /// Names a trap: a deadline interrupt, the memory cap, or other.
    fn classify(&self, trap: wasmtime::Error) -> GuestFault {
        if trap.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
            GuestFault::Timeout
        } else if self.store.data().limits.denied {
            GuestFault::OutOfMemory(trap)
        } else {
            GuestFault::Trap(trap)
        }
    }

    /// Calls `setup.configure` with the user's configuration.
    ///
    /// # Errors
    /// The guest's own message when it refuses the configuration, or a trap.
    pub fn configure(
        &mut self,
        config: &Vec<(String, String)>,
        formats: &StreamFormats,
    ) -> Result<(), GuestFault> {
        let formats = types::StreamFormats {
            audio: formats.audio.map(|(f, block)| types::AudioFormat {
                sample_rate: f.sample_rate,
                channels: u32::from(f.channels),
                block_frames: block,
            }),
            video: formats.video.map(|f| types::VideoFormat {
                width: f.width,
                height: f.height,
                fps: f.fps.as_f64(),
            }),
        };
        self.arm();
        let result = self.setup.call_configure(&mut self.store, config, formats);
        self.settle(result)
    }
}
