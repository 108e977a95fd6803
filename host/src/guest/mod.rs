//! Guests: what is WebAssembly. Loading a component (bounded: `load`),
//! checking it is one of our worlds (`inspect`), compiling it through the
//! cache, linking what it may import (`wasi`), instantiating it under its
//! limits (`sandbox`, `memory`) and calling it (`instance`, `frames`).
//! Frame passing lives in `frames` only: through the guest's own buffers
//! when it exports `mapped-audio` / `mapped-video` (see `mapped`), as lists
//! otherwise. The `controller` thread makes instances off the real-time
//! thread for restarts, swaps and state handoffs. When to restart,
//! quarantine or swap is decided by [`crate::lifecycle`], which knows
//! nothing of wasm.

mod bindings;
mod cache;
pub mod controller;
mod engine;
mod frames;
mod inspect;
mod instance;
mod load;
mod mapped;
mod memory;
mod output;
pub mod sandbox;
mod wasi;

pub use cache::{CacheOutcome, CompileCache};
pub use controller::GuestRecipe;
pub use engine::{engine_for, new_engine};
pub use inspect::{LoadError, Surface, World};
pub use instance::{GuestInstance, live_instances};
pub use mapped::{DataPath, StreamPath};
pub use memory::live_memories;
pub use sandbox::{FaultPolicy, LoadLimits, SandboxPolicy};

pub use crate::lifecycle::{AudioCall, Processed, VideoCall};

use crate::lifecycle::{CallKind, SetupError};
use crate::media::{AudioFormat, VideoFormat};
use crate::text::GuestText;
use bindings::{audio, mapped_audio, mapped_video, setup, state};
use instance::{Exports, HostState};
use output::{GuestLog, LogStream};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{InstancePre, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtx;

/// A compiled, validated and pre-linked guest, ready to instantiate.
pub struct GuestProgram {
    /// The file name, sanitized: it is shown in every message about it.
    name: Arc<str>,
    /// Shared by every instance: one output budget per program.
    log: Arc<GuestLog>,
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
    /// the component at `path`, within the default [`LoadLimits`].
    ///
    /// # Errors
    /// A [`LoadError`] that says what the file is and what was expected.
    pub fn load(
        engine: &Engine,
        path: &Path,
        cache: Option<&CompileCache>,
    ) -> Result<Self, LoadError> {
        Self::load_within(engine, path, cache, LoadLimits::default())
    }

    /// Like [`GuestProgram::load`], within `limits`: the path must name a
    /// regular file of at most `limits.max_bytes`, which must compile
    /// within `limits.compile_timeout`. Nothing of it runs here.
    ///
    /// # Errors
    /// See [`GuestProgram::load`].
    pub fn load_within(
        engine: &Engine,
        path: &Path,
        cache: Option<&CompileCache>,
        limits: LoadLimits,
    ) -> Result<Self, LoadError> {
        let bytes = load::read_bounded(path, limits.max_bytes)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        Self::compile(engine, &name, bytes, cache, limits.compile_timeout)
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
        let timeout = LoadLimits::default().compile_timeout;
        Self::compile(engine, name, bytes.to_vec(), cache, timeout)
    }

    fn compile(
        engine: &Engine,
        name: &str,
        bytes: Vec<u8>,
        cache: Option<&CompileCache>,
        timeout: Duration,
    ) -> Result<Self, LoadError> {
        inspect::check_header(&bytes)?;
        let (component, cache) = load::compile(engine, bytes, cache, timeout)?;
        let link = |err: wasmtime::Error| LoadError::Link {
            detail: one_line(&err),
        };
        let surface = Surface::of(engine, &component);
        let world = surface.world()?;

        let linker = wasi::linker(engine).map_err(link)?;
        let pre = linker.instantiate_pre(&component).map_err(link)?;
        let setup = setup::GuestIndices::new(&pre).map_err(link)?;
        let audio = (world.processes_audio() && surface.has_export(inspect::AUDIO))
            .then(|| audio::GuestIndices::new(&pre))
            .transpose()
            .map_err(link)?;
        let video = (world.processes_video() && surface.has_export(inspect::VIDEO))
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
        let name: Arc<str> = GuestText::new(name, 256).as_str().into();
        Ok(Self {
            log: GuestLog::new(name.clone()),
            name,
            state,
            mapped_audio,
            mapped_video,
            world,
            surface,
            cache,
            pre,
            setup,
            audio,
            video,
        })
    }

    /// The file name the guest was loaded from (sanitized); used in
    /// messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn world(&self) -> World {
        self.world
    }

    /// The WIT world the guest implements, e.g.
    /// `sandstream:av/audio-effect-mapped`.
    pub fn world_name(&self) -> String {
        self.surface.world_name(self.world)
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
    /// practical deadline (see [`GuestProgram::instantiate_with`]): for
    /// benchmarks and tests of trusted guests.
    ///
    /// # Errors
    /// When instantiation fails (e.g. a start function traps).
    pub fn instantiate(&self) -> anyhow::Result<GuestInstance> {
        self.instantiate_with(
            &sandbox::Grants::default(),
            sandbox::DEFAULT_MEMORY_LIMIT,
            Duration::MAX,
        )
        .map_err(|error| anyhow::anyhow!("guest {} {error}", self.name))
    }

    /// Creates a fresh instance with its own store. Nothing is granted but
    /// `grants`: no files, no network, no environment by default;
    /// stdout/stderr go to the log. Everything the instance holds (all its
    /// memories and tables) is capped at `memory_limit` bytes;
    /// instantiation (start functions) and every later call get `budget`
    /// until [`GuestInstance::set_budget`] says otherwise.
    ///
    /// # Errors
    /// When instantiation traps, runs out of time or memory.
    pub fn instantiate_with(
        &self,
        grants: &sandbox::Grants,
        memory_limit: usize,
        budget: Duration,
    ) -> Result<GuestInstance, SetupError> {
        let failed = |fault| SetupError {
            call: CallKind::Instantiate,
            fault,
        };
        let mut builder = WasiCtx::builder();
        builder
            .stdout(LogStream::stdout(self.log.clone()))
            .stderr(LogStream::stderr(self.log.clone()))
            .max_random_size(sandbox::MAX_RANDOM_BYTES)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for (host, guest) in &grants.dirs {
            let opened = builder.preopened_dir(host, guest, wasmtime_wasi::FsPerms::ReadOnly);
            opened.map_err(|err| {
                failed(crate::lifecycle::Fault::Trap {
                    detail: format!("cannot grant {}: {err:#}", host.display()),
                    backtrace: None,
                })
            })?;
        }
        for (key, value) in &grants.env {
            builder.env(key, value);
        }
        let state = HostState {
            wasi: builder.build(),
            table: ResourceTable::new(),
            log: self.log.clone(),
            limits: sandbox::InstanceLimits::new(memory_limit),
            waits: sandbox::WaitLimit::starting_now(sandbox::Budget::new(budget)),
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|state| &mut state.limits);
        store.set_max_component_handles(sandbox::MAX_HANDLES);
        store.set_hostcall_fuel(sandbox::TEXT_TRANSFER_BYTES);
        store.set_epoch_deadline(sandbox::ticks_for(budget));
        let (instance, memories) = memory::collect_during(|| self.pre.instantiate(&mut store));
        let classify = |store: &Store<HostState>, err: &wasmtime::Error| {
            let denied = store.data().limits.denied;
            instance::classify(err, budget, sandbox::TEXT_TRANSFER_BYTES, denied)
        };
        let instance = instance.map_err(|err| failed(classify(&store, &err)))?;
        let exports = self
            .load_exports(&mut store, &instance)
            .map_err(|err| failed(classify(&store, &err)))?;
        Ok(GuestInstance::new(
            self.name.clone(),
            budget,
            store,
            exports,
            frames::Memories::new(memories),
        ))
    }

    fn load_exports(
        &self,
        store: &mut Store<HostState>,
        instance: &wasmtime::component::Instance,
    ) -> wasmtime::Result<Exports> {
        fn load<I, G>(
            indices: &Option<I>,
            load: impl FnOnce(&I) -> wasmtime::Result<G>,
        ) -> wasmtime::Result<Option<G>> {
            indices.as_ref().map(load).transpose()
        }
        Ok(Exports {
            setup: self.setup.load(&mut *store, instance)?,
            audio: load(&self.audio, |i| i.load(&mut *store, instance))?,
            video: load(&self.video, |i| i.load(&mut *store, instance))?,
            state: load(&self.state, |i| i.load(&mut *store, instance))?,
            mapped_audio: load(&self.mapped_audio, |i| i.load(&mut *store, instance))?,
            mapped_video: load(&self.mapped_video, |i| i.load(&mut *store, instance))?,
        })
    }

    /// A fresh instance, instantiated, configured and with its buffers
    /// mapped, each step under `budget`: what a run starts with and what a
    /// restart or a swap installs.
    ///
    /// # Errors
    /// Which step failed, and how.
    pub fn prepare(
        &self,
        policy: &SandboxPolicy,
        budget: Duration,
        config: &Vec<(String, String)>,
        formats: &StreamFormats,
    ) -> Result<GuestInstance, SetupError> {
        let mut instance = self.instantiate_with(&policy.grants, policy.memory_limit, budget)?;
        let failed = |call: CallKind| {
            move |fault: crate::lifecycle::Fault| {
                if let Some(backtrace) = fault.backtrace() {
                    tracing::debug!(
                        "guest {} trapped in {}; wasm backtrace:\n  {}",
                        self.name,
                        call.name(),
                        backtrace.replace('\n', "\n  ")
                    );
                }
                SetupError { call, fault }
            }
        };
        instance
            .configure(config, formats)
            .map_err(failed(CallKind::Configure))?;
        instance
            .map_buffers(formats, policy.data_path)
            .map_err(failed(CallKind::Prepare))?;
        Ok(instance)
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

/// Formats of the streams an instance is configured for.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamFormats {
    pub audio: Option<(AudioFormat, u32)>,
    pub video: Option<VideoFormat>,
}
