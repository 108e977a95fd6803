//! One live instance of a guest: its store, the calls into it, and how a
//! failed call is named. Every entry into the guest goes through
//! [`GuestInstance::arm`], which sets that call's deadline (for guest code
//! and for host calls that wait), its cap on what the guest may hand over
//! in one transfer, and clears the memory-denial flag.

use super::bindings::{audio, mapped_audio, mapped_video, setup, state, types, video};
use super::frames;
use super::output::GuestLog;
use super::sandbox::{Budget, InstanceLimits, TEXT_TRANSFER_BYTES, WaitLimit};
use super::wasi::BlockedInHostCall;
use super::{StreamFormats, StreamPath};
use crate::lifecycle::{self, AudioCall, Fault, Processed, VideoCall};
use crate::text::{ERROR_BYTES, GuestText, LINE_BYTES};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use wasmtime::Store;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Per-instance host state: WASI (granting nothing but the grants), the
/// guest's log, its limits, and until when host calls may wait.
pub struct HostState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) log: Arc<GuestLog>,
    pub(super) limits: InstanceLimits,
    pub(super) waits: WaitLimit,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for HostState {}

/// Guest instances alive in this process: lets tests prove that restarts
/// and swaps leak nothing.
static LIVE_INSTANCES: AtomicUsize = AtomicUsize::new(0);

/// How many guest instances exist right now, in the whole process.
pub fn live_instances() -> usize {
    LIVE_INSTANCES.load(Ordering::Relaxed)
}

/// One live instance of a guest, with its own store. Not shared between
/// threads: one thread at a time enters it.
pub struct GuestInstance {
    pub(super) name: Arc<str>,
    /// The deadline of the next calls (see [`GuestInstance::set_budget`]).
    budget: Budget,
    /// The transfer cap of the current call, for messages.
    transfer_cap: usize,
    pub(super) store: Store<HostState>,
    pub(super) setup: setup::Guest,
    pub(super) audio: Option<audio::Guest>,
    pub(super) video: Option<video::Guest>,
    pub(super) state: Option<state::Guest>,
    pub(super) mapped: frames::Mapped,
    pub(super) audio_path: StreamPath,
    pub(super) video_path: StreamPath,
    /// List path of `process_video_with`: where the source writes.
    pub(super) video_scratch: Vec<u8>,
    /// Whether the last block or frame went through mapped memory.
    pub(super) last_call_mapped: bool,
}

/// The exports of one instance, loaded.
pub(super) struct Exports {
    pub setup: setup::Guest,
    pub audio: Option<audio::Guest>,
    pub video: Option<video::Guest>,
    pub state: Option<state::Guest>,
    pub mapped_audio: Option<mapped_audio::Guest>,
    pub mapped_video: Option<mapped_video::Guest>,
}

impl GuestInstance {
    pub(super) fn new(
        name: Arc<str>,
        budget: Duration,
        store: Store<HostState>,
        exports: Exports,
        memory: frames::Memories,
    ) -> Self {
        LIVE_INSTANCES.fetch_add(1, Ordering::Relaxed);
        Self {
            name,
            budget: Budget::new(budget),
            transfer_cap: TEXT_TRANSFER_BYTES,
            store,
            setup: exports.setup,
            audio: exports.audio,
            video: exports.video,
            state: exports.state,
            mapped: frames::Mapped::new(memory, exports.mapped_audio, exports.mapped_video),
            audio_path: StreamPath::Lists { reason: None },
            video_path: StreamPath::Lists { reason: None },
            video_scratch: Vec::new(),
            last_call_mapped: false,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// How long each following call may run, guest code and host waits
    /// together.
    pub fn set_budget(&mut self, budget: Duration) {
        if budget != self.budget.duration() {
            self.budget = Budget::new(budget);
        }
    }

    /// Bytes of memory and tables the instance holds now.
    pub fn memory_used(&self) -> usize {
        self.store.data().limits.used()
    }

    /// Readies the store for one call: its deadline, its transfer cap,
    /// a clear memory-denial flag.
    pub(super) fn arm(&mut self, transfer_cap: usize) {
        self.store.set_epoch_deadline(self.budget.ticks());
        // The cap changes only between kinds of call: most calls skip this.
        if transfer_cap != self.transfer_cap {
            self.store.set_hostcall_fuel(transfer_cap);
            self.transfer_cap = transfer_cap;
        }
        let data = self.store.data_mut();
        data.limits.denied = false;
        data.waits = WaitLimit::starting_now(self.budget);
    }

    /// The result of a guest call that returns `result<T, string>`: the
    /// value, the guest's own error, or the trap, named.
    pub(super) fn settle<T, U: From<T>>(
        &self,
        result: wasmtime::Result<Result<T, String>>,
    ) -> Result<U, Fault> {
        match result {
            Ok(Ok(value)) => Ok(value.into()),
            Ok(Err(message)) => Err(Fault::Reported {
                message: GuestText::new(&message, ERROR_BYTES),
            }),
            Err(trap) => Err(self.classify(trap)),
        }
    }

    /// Names a failed call: its deadline (in guest code or in a host call),
    /// `exit`, the transfer cap, the memory cap, or another trap.
    pub(super) fn classify(&self, error: wasmtime::Error) -> Fault {
        classify(
            &error,
            self.budget.duration(),
            self.transfer_cap,
            self.store.data().limits.denied,
        )
    }

    /// Calls `setup.configure` with the user's configuration.
    ///
    /// # Errors
    /// The guest's own message when it refuses the configuration, or a trap.
    pub fn configure(
        &mut self,
        config: &Vec<(String, String)>,
        formats: &StreamFormats,
    ) -> Result<(), Fault> {
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
        self.arm(TEXT_TRANSFER_BYTES);
        let result = self.setup.call_configure(&mut self.store, config, formats);
        self.settle(result)
    }

    /// Whether the guest exports `state`.
    pub fn has_state(&self) -> bool {
        self.state.is_some()
    }

    /// The guest's state; refused before it is copied when it is over
    /// `max_bytes`.
    ///
    /// # Errors
    /// A trap, a timeout, a snapshot over `max_bytes`; `NotImplemented`
    /// without `state`.
    pub fn snapshot(&mut self, max_bytes: usize) -> Result<Vec<u8>, Fault> {
        self.arm(max_bytes);
        let state = self.state.as_ref().ok_or(Fault::NotImplemented("state"))?;
        let result = state.call_snapshot(&mut self.store);
        result.map_err(|trap| self.classify(trap))
    }

    /// Hands a snapshot to the guest.
    ///
    /// # Errors
    /// The guest's refusal, a trap or a timeout; `NotImplemented` without
    /// `state`.
    pub fn restore(&mut self, snapshot: &[u8]) -> Result<(), Fault> {
        self.arm(TEXT_TRANSFER_BYTES);
        let state = self.state.as_ref().ok_or(Fault::NotImplemented("state"))?;
        let result = state.call_restore(&mut self.store, snapshot);
        self.settle(result)
    }
}

impl Drop for GuestInstance {
    fn drop(&mut self) {
        LIVE_INSTANCES.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Names a failed call from its error. `denied`: the memory cap refused a
/// growth during the call.
pub(super) fn classify(
    error: &wasmtime::Error,
    budget: Duration,
    transfer_cap: usize,
    denied: bool,
) -> Fault {
    if error.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
        Fault::Timeout { budget }
    } else if let Some(blocked) = error.downcast_ref::<BlockedInHostCall>() {
        Fault::Blocked {
            import: blocked.import,
            budget,
        }
    } else if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
        Fault::Exited { code: exit.0 }
    } else if is_transfer_cap(error) {
        Fault::TooLarge { cap: transfer_cap }
    } else if denied {
        Fault::OutOfMemory {
            detail: trap_summary(error),
        }
    } else {
        Fault::Trap {
            detail: trap_summary(error),
            backtrace: wasm_backtrace(error),
        }
    }
}

/// The guest frames of a trap, one per line, innermost first: wasmtime's
/// account (function names from the guest's name section, demangled),
/// each line made safe to show.
fn wasm_backtrace(error: &wasmtime::Error) -> Option<String> {
    let backtrace = error.downcast_ref::<wasmtime::WasmBacktrace>()?;
    let lines: Vec<String> = backtrace
        .to_string()
        .lines()
        .map(str::trim)
        // Frames only ("0: 0x52d4 - gain.wasm!process"), not the heading.
        .filter(|line| line.starts_with(|c: char| c.is_ascii_digit()))
        .map(|line| GuestText::new(line, LINE_BYTES).to_string())
        .take(MAX_BACKTRACE_FRAMES)
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// Frames shown of a trap's backtrace (a deep recursion has thousands).
const MAX_BACKTRACE_FRAMES: usize = 32;

/// wasmtime refuses to copy more than the store's "hostcall fuel" in one
/// transfer with an error of a private type; its message is the only way
/// to recognise it (the forged-guest tests fail if it changes).
fn is_transfer_cap(error: &wasmtime::Error) -> bool {
    error
        .chain()
        .any(|cause| cause.to_string().contains("fuel allocated for hostcalls"))
}

/// The trap's own message, without wasmtime's multi-line backtrace, made
/// safe to show (backtraces carry names from the guest's name section).
fn trap_summary(error: &wasmtime::Error) -> String {
    let text = match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{error:#}")
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
    };
    GuestText::new(&text, ERROR_BYTES).to_string()
}

impl lifecycle::Instance for GuestInstance {
    fn process_audio(
        &mut self,
        call: AudioCall,
        samples: &mut Vec<f32>,
        budget: Duration,
    ) -> Result<Processed, Fault> {
        self.set_budget(budget);
        GuestInstance::process_audio(self, call, samples)
    }

    fn process_video(
        &mut self,
        call: VideoCall,
        pixels: &mut Vec<u8>,
        budget: Duration,
    ) -> Result<Processed, Fault> {
        self.set_budget(budget);
        GuestInstance::process_video(self, call, pixels)
    }

    fn last_call_mapped(&self) -> bool {
        self.last_call_mapped
    }

    fn has_state(&self) -> bool {
        GuestInstance::has_state(self)
    }

    fn snapshot(&mut self, budget: Duration, max_bytes: usize) -> Result<Vec<u8>, Fault> {
        self.set_budget(budget);
        GuestInstance::snapshot(self, max_bytes)
    }

    fn restore(&mut self, state: &[u8], budget: Duration) -> Result<(), Fault> {
        self.set_budget(budget);
        GuestInstance::restore(self, state)
    }

    fn memory_used(&self) -> usize {
        GuestInstance::memory_used(self)
    }
}
