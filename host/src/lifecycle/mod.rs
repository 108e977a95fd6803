//! The life of a guest in a running stream, in one place and with no
//! wasmtime in sight: what happens to a block when a call faults, when an
//! instance is restarted and after how long, when a guest is quarantined,
//! how swaps are installed and state handed over, and how long every kind
//! of call may run.
//!
//! The lifecycle runs on the processing (real-time) thread and never does
//! anything slow there: fresh instances are made, state is handed over and
//! old instances are dropped by a [`Workshop`] on another thread (the
//! control thread, `guest::controller`). Offline, where nothing is real
//! time, restarts are made in place, so a run decides the same way every
//! time. All timing decisions are in stream time (media time offline,
//! capture time live).
//!
//! It is generic over the [`Instance`] it calls, so it is tested with fake
//! instances (`tests` below); `guest::GuestInstance` is the real one.

mod crossfade;
mod fault;
mod handoff;
mod policy;

pub use fault::{CallKind, Fault, millis};
pub use handoff::{Handover, HandoverFailure, MAX_STATE_BYTES, hand_over};
pub use policy::{Deadlines, FaultLedger, FaultPolicy, Verdict};

use crate::media::{AudioBlock, AudioFormat, VideoFormat, VideoFrame};
use crate::metrics::Counters;
use crossfade::FadeOut;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

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

/// What a guest did with a block or frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processed {
    /// The buffer now holds the guest's output.
    Kept,
    /// The guest dropped it; the buffer still holds the input.
    Dropped,
}

/// Whether a block goes on after the lifecycle is done with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Send,
    /// The guest asked to drop it.
    DroppedByGuest,
}

/// A call that failed while an instance was being made: which call, and
/// how.
#[derive(Debug, Clone)]
pub struct SetupError {
    pub call: CallKind,
    pub fault: Fault,
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} in {}", self.fault, self.call.name())
    }
}

/// What the lifecycle calls. Every method is one entry into the guest,
/// bounded by `budget` whatever the guest does in it.
pub trait Instance: Send + 'static {
    /// # Errors
    /// The fault of the call; `samples` then still holds the input.
    fn process_audio(
        &mut self,
        call: AudioCall,
        samples: &mut Vec<f32>,
        budget: Duration,
    ) -> Result<Processed, Fault>;

    /// # Errors
    /// The fault of the call; `pixels` then still holds the input.
    fn process_video(
        &mut self,
        call: VideoCall,
        pixels: &mut Vec<u8>,
        budget: Duration,
    ) -> Result<Processed, Fault>;

    /// Whether the last block or frame went through the guest's own
    /// buffers (for the report).
    fn last_call_mapped(&self) -> bool;

    /// Whether the guest can give and take state on a swap.
    fn has_state(&self) -> bool;

    /// # Errors
    /// The fault of the call; a snapshot over `max_bytes` is refused
    /// before it is copied ([`Fault::TooLarge`]).
    fn snapshot(&mut self, budget: Duration, max_bytes: usize) -> Result<Vec<u8>, Fault>;

    /// # Errors
    /// The fault of the call, or the guest's refusal.
    fn restore(&mut self, state: &[u8], budget: Duration) -> Result<(), Fault>;

    /// Bytes of memory the instance holds (what its memory cap counts).
    fn memory_used(&self) -> usize;
}

/// What it takes to make another instance like one that runs: for the real
/// guest, the compiled program and its configuration. Opaque here.
pub trait Recipe: Clone + Send + 'static {
    /// For messages.
    fn guest_name(&self) -> &str;
}

/// An instance the workshop finished.
pub enum Ready<I, R> {
    /// A fresh instance of the running guest, as ordered for `generation`
    /// (or why it could not be made).
    Restarted {
        generation: u64,
        instance: Result<I, SetupError>,
    },
    /// A hot swap or reconfiguration, ready to take over.
    Swapped {
        instance: I,
        recipe: R,
        /// For the log: "swapped to x.wasm", "set gain=2".
        what: String,
    },
}

/// Both instances of a state handoff (when they came back in time) and
/// what became of the state.
pub struct Handed<I> {
    pub old: Option<I>,
    pub new: Option<I>,
    pub handover: Handover,
}

/// Does the slow work of the lifecycle away from the real-time thread.
pub trait Workshop: Send + 'static {
    type Instance: Instance;
    type Recipe: Recipe;

    /// Starts making a fresh instance of `recipe` elsewhere; it arrives
    /// through [`Workshop::collect`] tagged with `generation`. False when
    /// the order could not be taken (ask again later).
    fn order(&mut self, recipe: &Self::Recipe, generation: u64) -> bool;

    /// Makes a fresh instance here and now (offline restarts).
    ///
    /// # Errors
    /// The call that failed while making it.
    fn make(&mut self, recipe: &Self::Recipe) -> Result<Self::Instance, SetupError>;

    /// The next finished instance, if any (never waits).
    fn collect(&mut self) -> Option<Ready<Self::Instance, Self::Recipe>>;

    /// Hands `old`'s state to `new` ([`hand_over`]) off this thread and
    /// waits for the outcome at most about twice `budget`.
    fn hand_over(
        &mut self,
        old: Self::Instance,
        new: Self::Instance,
        budget: Duration,
        names: (&str, &str),
    ) -> Handed<Self::Instance>;

    /// Takes an instance the lifecycle is done with (dropping a guest's
    /// memory can take milliseconds).
    fn retire(&mut self, instance: Self::Instance);
}

/// Whether the stream runs against the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clocking {
    /// As fast as possible: restarts are made in place.
    Offline,
    /// Live or paced: restarts are made by the workshop while the stream
    /// goes on.
    RealTime,
}

/// The lifecycle's settings.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub on_fault: FaultPolicy,
    pub deadlines: Deadlines,
    pub clocking: Clocking,
    /// An instance holding this many bytes after a call is replaced by a
    /// fresh one, its state carried over when it offers it: a guest that
    /// leaks (some toolchains leak a list per call) keeps running instead
    /// of faulting at its memory cap. `None`: never.
    pub recycle_at: Option<usize>,
}

/// Recycles logged in full before they are only counted.
const LOGGED_RECYCLES: u64 = 3;

/// An instance that reaches `recycle_at` within fewer calls than this is
/// never recycled: it needs that much memory (a model loaded at its first
/// call, say), or grows so fast that fresh instances would replace each
/// other call after call. It keeps running, and faults at its cap if it
/// grows on.
const MIN_CALLS_BEFORE_RECYCLE: u64 = 8;

/// Fault messages of one kind logged in full before they are only counted.
const LOGGED_FAULTS: u64 = 5;

enum Slot<I> {
    Running(I),
    /// Waiting for a fresh instance, which may take over from
    /// `not_before_ns` (stream time).
    Restarting {
        not_before_ns: u64,
        ordered: bool,
        ready: Option<Result<I, SetupError>>,
    },
    Quarantined,
}

/// Why an instance takes over from the running one.
#[derive(Clone, Copy)]
enum Installing<'a> {
    /// A hot swap or a reconfiguration (for the log).
    Swap(&'a str),
    /// The running instance reached `Options::recycle_at`.
    Recycle,
}

/// Where in the stream a call was made, for messages.
#[derive(Debug, Clone, Copy)]
enum Place {
    AudioBlock(u64),
    VideoFrame(u64),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::AudioBlock(frame) => write!(f, "process-audio (block at frame {frame})"),
            Place::VideoFrame(index) => write!(f, "process-video (frame {index})"),
        }
    }
}

/// How a block's call went.
enum Outcome {
    Kept,
    DroppedByGuest,
    /// No usable output from the guest: the fallback replaces it.
    Fallback,
}

/// Owns the guest instance of a run and everything that keeps it safe.
pub struct Lifecycle<W: Workshop> {
    workshop: W,
    recipe: W::Recipe,
    slot: Slot<W::Instance>,
    /// Bumped by every swap: restarts ordered before it are stale.
    generation: u64,
    ledger: FaultLedger,
    options: Options,
    counters: Arc<Counters>,
    /// For `hold`: the last frame the guest produced.
    last_good_frame: Vec<u8>,
    /// Audio frames over which a swapped-out guest fades into the new one.
    crossfade_frames: u64,
    fade: Option<FadeOut<W::Instance>>,
    /// The input of the current block, for the fading-out guest.
    fade_input: Vec<f32>,
    /// A fresh instance is on order to replace the running one, which has
    /// reached `Options::recycle_at`.
    recycling: bool,
    /// Calls the running instance has taken since it started.
    calls: u64,
    /// The running instance is never recycled: it reached `recycle_at`
    /// within its first `MIN_CALLS_BEFORE_RECYCLE` calls, or a fresh
    /// instance could not be made.
    not_recyclable: bool,
}

impl<W: Workshop> Lifecycle<W> {
    /// Takes over the first instance (made at start, before any media
    /// flows) or how making it failed.
    ///
    /// # Errors
    /// The guest's own message when it refuses its configuration (a user
    /// error: fix the settings), or a `-mapped` guest without usable
    /// buffers; any other setup fault with
    /// `--on-fault stop`. Otherwise a failed setup quarantines the guest
    /// and the stream runs unprocessed.
    pub fn start(
        workshop: W,
        recipe: W::Recipe,
        first: Result<W::Instance, SetupError>,
        options: Options,
        counters: Arc<Counters>,
    ) -> anyhow::Result<Self> {
        let mut lifecycle = Self {
            workshop,
            recipe,
            slot: Slot::Quarantined,
            generation: 0,
            ledger: FaultLedger::default(),
            options,
            counters,
            last_good_frame: Vec::new(),
            crossfade_frames: 0,
            fade: None,
            fade_input: Vec::new(),
            recycling: false,
            calls: 0,
            not_recyclable: false,
        };
        match first {
            Ok(instance) => lifecycle.slot = Slot::Running(instance),
            // The user's settings (or `--data-path list` for a guest that
            // has no lists) are wrong: nothing would run. Say so.
            Err(error)
                if matches!(
                    error.fault,
                    Fault::Reported { .. } | Fault::NoDataPath { .. }
                ) =>
            {
                anyhow::bail!("guest {} {error}", lifecycle.name())
            }
            Err(error) => {
                lifecycle.counters.setup_faults.fetch_add(1, Relaxed);
                if options.on_fault == FaultPolicy::Stop {
                    anyhow::bail!("guest {} {error} while being set up", lifecycle.name());
                }
                lifecycle.quarantine(&format!("{error} while being set up: quarantined"));
            }
        }
        Ok(lifecycle)
    }

    pub fn name(&self) -> &str {
        self.recipe.guest_name()
    }

    pub fn is_quarantined(&self) -> bool {
        matches!(self.slot, Slot::Quarantined)
    }

    /// Crossfade swaps over this many audio frames (0: switch at once).
    pub fn set_crossfade_frames(&mut self, frames: u64) {
        self.crossfade_frames = frames;
    }

    /// Runs one audio block through the guest, in place.
    ///
    /// # Errors
    /// Only with `--on-fault stop`.
    pub fn audio(&mut self, block: &mut AudioBlock, call: AudioCall) -> anyhow::Result<Delivery> {
        let now = call.timestamp_ns;
        self.accept_deliveries(now);
        if self.fade.is_some() {
            self.fade_input.clone_from(&block.samples);
        }
        let budget = self.options.deadlines.audio;
        let (outcome, mapped) = self.process(now, Place::AudioBlock(block.first_frame), |i| {
            i.process_audio(call, &mut block.samples, budget)
        })?;
        if mapped {
            self.counters.audio.mapped.fetch_add(1, Relaxed);
        }
        match outcome {
            Outcome::DroppedByGuest => return Ok(Delivery::DroppedByGuest),
            Outcome::Kept => {}
            Outcome::Fallback => match self.options.on_fault {
                FaultPolicy::Bypass | FaultPolicy::Stop => {}
                FaultPolicy::Mute | FaultPolicy::Hold => block.samples.fill(0.0),
            },
        }
        self.fade_out(block, call);
        Ok(Delivery::Send)
    }

    /// Runs one video frame through the guest, in place.
    ///
    /// # Errors
    /// Only with `--on-fault stop`.
    pub fn video(&mut self, frame: &mut VideoFrame, call: VideoCall) -> anyhow::Result<Delivery> {
        let now = call.timestamp_ns;
        self.accept_deliveries(now);
        let budget = self.options.deadlines.video;
        let (outcome, mapped) = self.process(now, Place::VideoFrame(frame.index), |i| {
            i.process_video(call, &mut frame.pixels, budget)
        })?;
        if mapped {
            self.counters.video.mapped.fetch_add(1, Relaxed);
        }
        let hold = self.options.on_fault == FaultPolicy::Hold;
        match outcome {
            Outcome::DroppedByGuest => return Ok(Delivery::DroppedByGuest),
            Outcome::Kept if hold => self.last_good_frame.clone_from(&frame.pixels),
            Outcome::Kept => {}
            Outcome::Fallback => match self.options.on_fault {
                FaultPolicy::Bypass | FaultPolicy::Stop => {}
                _ if hold && self.last_good_frame.len() == frame.pixels.len() => {
                    frame.pixels.copy_from_slice(&self.last_good_frame)
                }
                FaultPolicy::Mute | FaultPolicy::Hold => {
                    for pixel in frame.pixels.chunks_exact_mut(4) {
                        pixel.copy_from_slice(&[0, 0, 0, 255]);
                    }
                }
            },
        }
        Ok(Delivery::Send)
    }

    /// One call into the instance, if there is one to call; faults are
    /// counted and acted on. Also says whether the call went through the
    /// guest's own buffers.
    fn process(
        &mut self,
        now: u64,
        place: Place,
        call: impl FnOnce(&mut W::Instance) -> Result<Processed, Fault>,
    ) -> anyhow::Result<(Outcome, bool)> {
        let Some(instance) = self.ready_instance(now) else {
            return Ok((Outcome::Fallback, false));
        };
        let result = call(instance);
        let mapped = instance.last_call_mapped();
        let memory = instance.memory_used();
        self.calls += 1;
        let outcome = match result {
            Ok(Processed::Kept) => Outcome::Kept,
            Ok(Processed::Dropped) => Outcome::DroppedByGuest,
            Err(fault) => {
                self.on_fault(fault, place, now)?;
                return Ok((Outcome::Fallback, mapped));
            }
        };
        let over = self.options.recycle_at.is_some_and(|at| memory >= at);
        if over && !self.recycling && !self.not_recyclable {
            if self.calls >= MIN_CALLS_BEFORE_RECYCLE {
                self.recycle(memory, now);
            } else {
                self.not_recyclable = true;
                tracing::warn!(
                    "guest {} holds {:.1} MiB after {} calls, past {} MiB: it is not recycled \
                     (a fresh instance would grow back as fast); if it grows on, it faults at \
                     its memory cap",
                    self.name(),
                    memory as f64 / 1048576.0,
                    self.calls,
                    self.options.recycle_at.unwrap_or_default() >> 20,
                );
            }
        }
        Ok((outcome, mapped))
    }

    /// Replaces an instance that holds too much memory with a fresh one:
    /// ordered from the workshop live (the old one runs until it comes),
    /// made here offline.
    fn recycle(&mut self, memory: usize, now: u64) {
        if self.options.clocking == Clocking::RealTime {
            self.recycling = self.workshop.order(&self.recipe, self.generation);
            if !self.recycling {
                return; // Asked again after the next call.
            }
        }
        let seen = self.counters.recycles.load(Relaxed) + 1;
        if seen <= LOGGED_RECYCLES {
            tracing::warn!(
                "guest {} has grown to {:.1} MiB, past {} MiB: a fresh instance replaces it (its \
                 state carried over when it offers one); memory that keeps growing is a leak \
                 (`sandstream check` measures it){}",
                self.name(),
                memory as f64 / 1048576.0,
                self.options.recycle_at.unwrap_or_default() >> 20,
                if seen == LOGGED_RECYCLES {
                    "; further replacements are only counted"
                } else {
                    ""
                }
            );
        }
        if self.options.clocking == Clocking::Offline {
            match self.workshop.make(&self.recipe) {
                Ok(fresh) => self.install_recycled(fresh, now),
                Err(error) => self.refuse_recycling(&error),
            }
        }
    }

    /// A fresh instance could not be made: the old one runs on, and is not
    /// recycled again.
    fn refuse_recycling(&mut self, error: &SetupError) {
        (self.recycling, self.not_recyclable) = (false, true);
        tracing::warn!(
            "guest {}: a fresh instance could not be made ({error}): the old one runs on",
            self.name()
        );
    }

    /// Puts a fresh instance of the same guest in place of the running one.
    fn install_recycled(&mut self, fresh: W::Instance, now: u64) {
        self.recycling = false;
        self.counters.recycles.fetch_add(1, Relaxed);
        self.install(fresh, self.recipe.clone(), Installing::Recycle, now);
    }

    /// Installs swaps and takes restarts the workshop has finished.
    fn accept_deliveries(&mut self, now: u64) {
        while let Some(ready) = self.workshop.collect() {
            match ready {
                Ready::Swapped {
                    instance,
                    recipe,
                    what,
                } => self.install(instance, recipe, Installing::Swap(&what), now),
                Ready::Restarted {
                    generation,
                    instance,
                } => match &mut self.slot {
                    Slot::Restarting { ready, .. }
                        if generation == self.generation && ready.is_none() =>
                    {
                        *ready = Some(instance)
                    }
                    Slot::Running(_) if generation == self.generation && self.recycling => {
                        match instance {
                            Ok(fresh) => self.install_recycled(fresh, now),
                            Err(error) => self.refuse_recycling(&error),
                        }
                    }
                    // Stale (a swap came in between) or not needed anymore.
                    _ => {
                        if let Ok(instance) = instance {
                            self.dispose(instance);
                        }
                    }
                },
            }
        }
    }

    /// The instance to call, restarting one once its backoff has passed;
    /// `None` while quarantined or waiting.
    fn ready_instance(&mut self, now: u64) -> Option<&mut W::Instance> {
        if let Slot::Restarting {
            not_before_ns,
            ordered,
            ready,
        } = &mut self.slot
        {
            if now < *not_before_ns {
                return None;
            }
            let made = match self.options.clocking {
                Clocking::Offline => Some(self.workshop.make(&self.recipe)),
                Clocking::RealTime => ready.take(),
            };
            match made {
                None => {
                    if !*ordered {
                        *ordered = self.workshop.order(&self.recipe, self.generation);
                    }
                    return None;
                }
                Some(Ok(instance)) => {
                    (self.calls, self.not_recyclable) = (0, false);
                    self.counters.restarts.fetch_add(1, Relaxed);
                    tracing::info!("guest {} restarted with a fresh instance", self.name());
                    self.slot = Slot::Running(instance);
                }
                Some(Err(error)) => {
                    self.counters.setup_faults.fetch_add(1, Relaxed);
                    tracing::warn!("guest {} could not be restarted: {error}", self.name());
                    self.after_fault(&error.fault, now, true);
                    return None;
                }
            }
        }
        match &mut self.slot {
            Slot::Running(instance) => Some(instance),
            _ => None,
        }
    }

    /// Counts and reports a fault of a running instance; decides what
    /// happens next.
    ///
    /// # Errors
    /// With `--on-fault stop`: the fault, as the run's error.
    fn on_fault(&mut self, fault: Fault, place: Place, now: u64) -> anyhow::Result<()> {
        let seen = self.count(&fault);
        let message = format!("guest {} {fault} in {place}", self.name());
        if self.options.on_fault == FaultPolicy::Stop {
            anyhow::bail!(message);
        }
        if seen <= LOGGED_FAULTS {
            tracing::warn!("{message}; output replaced ({:?})", self.options.on_fault);
            if let Some(backtrace) = fault.backtrace() {
                tracing::debug!("wasm backtrace:\n  {}", backtrace.replace('\n', "\n  "));
            }
        } else if seen == LOGGED_FAULTS + 1 {
            tracing::warn!(
                "guest {}: further faults of this kind are only counted",
                self.name()
            );
        }
        self.after_fault(&fault, now, fault.poisons_instance());
        Ok(())
    }

    /// Records `fault` and moves to a restart or to quarantine. `poisoned`:
    /// the current instance (if any) must not be called again.
    fn after_fault(&mut self, fault: &Fault, now: u64, poisoned: bool) {
        let not_before_ns = match self.ledger.record(now, fault) {
            Verdict::Quarantine { why } => {
                return self.quarantine(&format!("quarantined after {why}"));
            }
            Verdict::Retry { not_before_ns } => not_before_ns,
        };
        if !poisoned {
            return;
        }
        if let Slot::Running(old) = std::mem::replace(&mut self.slot, Slot::Quarantined) {
            self.dispose(old);
        }
        self.slot = Slot::Restarting {
            not_before_ns,
            ordered: self.order_restart(),
            ready: None,
        };
    }

    /// In real time, orders a fresh instance from the workshop at once, so
    /// it is ready when the backoff ends; offline it is made when needed.
    /// Returns whether it was ordered.
    fn order_restart(&mut self) -> bool {
        self.options.clocking == Clocking::RealTime
            && self.workshop.order(&self.recipe, self.generation)
    }

    /// Counts `fault` by kind; returns how many of that kind so far.
    fn count(&self, fault: &Fault) -> u64 {
        let c = &self.counters;
        let counter = match fault {
            Fault::Timeout { .. } => &c.fault_timeouts,
            Fault::Blocked { .. } => &c.fault_blocked,
            Fault::OutOfMemory { .. } => &c.fault_memory,
            Fault::Trap { .. } => &c.fault_traps,
            Fault::Exited { .. } => &c.fault_exits,
            Fault::Reported { .. } | Fault::NotImplemented(_) => &c.fault_errors,
            Fault::WrongSize { .. } | Fault::BadBuffer { .. } | Fault::NoDataPath { .. } => {
                &c.fault_wrong_size
            }
            Fault::TooLarge { .. } => &c.fault_too_large,
        };
        counter.fetch_add(1, Relaxed) + 1
    }

    /// Stops calling the guest; `what` says what happened to it.
    fn quarantine(&mut self, what: &str) {
        tracing::error!(
            "guest {} {what}: its streams pass through unprocessed for the rest of the run",
            self.name()
        );
        match std::mem::replace(&mut self.slot, Slot::Quarantined) {
            Slot::Running(instance)
            | Slot::Restarting {
                ready: Some(Ok(instance)),
                ..
            } => self.dispose(instance),
            _ => {}
        }
        self.counters.quarantines.fetch_add(1, Relaxed);
    }

    /// Switches to a swapped-in guest between two blocks: its state is
    /// handed over when both guests offer it, the old instance fades out
    /// or is retired, and fault history and quarantine start over.
    fn install(&mut self, incoming: W::Instance, recipe: W::Recipe, why: Installing, now: u64) {
        self.generation += 1;
        self.recycling = false;
        (self.calls, self.not_recyclable) = (0, false);
        if let Installing::Swap(what) = why {
            tracing::info!("{what} (guest {})", recipe.guest_name());
            self.ledger.clear();
            self.counters.swaps.fetch_add(1, Relaxed);
        }
        if let Some(fade) = self.fade.take() {
            self.dispose(fade.instance);
        }
        let old = match std::mem::replace(&mut self.slot, Slot::Quarantined) {
            Slot::Running(old) => Some(old),
            Slot::Restarting {
                ready: Some(Ok(fresh)),
                ..
            } => Some(fresh),
            _ => None,
        };
        let (old, incoming) = match old {
            Some(old) if old.has_state() && incoming.has_state() => {
                let names = (self.recipe.guest_name(), recipe.guest_name());
                let budget = self.options.deadlines.state;
                let Handed { old, new, handover } =
                    self.workshop.hand_over(old, incoming, budget, names);
                self.report_handover(&handover, now);
                match handover {
                    Handover::Failed(failure) => {
                        // A poisoned instance must not run again, not even
                        // to fade out.
                        let old = self.unless_poisoned(old, failure.old_poisoned);
                        let new = self.unless_poisoned(new, failure.new_poisoned);
                        (old, new)
                    }
                    _ => (old, new),
                }
            }
            old => {
                if old.is_some() && incoming.has_state() {
                    tracing::info!(
                        "the old guest has no state to hand over: the new one starts fresh"
                    );
                }
                (old, Some(incoming))
            }
        };
        self.recipe = recipe;
        match old {
            // A recycled instance is the same guest: no fade.
            Some(old) if self.crossfade_frames > 0 && matches!(why, Installing::Swap(_)) => {
                self.fade = Some(FadeOut {
                    instance: old,
                    done: 0,
                })
            }
            Some(old) => self.dispose(old),
            None => {}
        }
        self.slot = match incoming {
            Some(instance) => Slot::Running(instance),
            None => Slot::Restarting {
                not_before_ns: now,
                ordered: self.order_restart(),
                ready: None,
            },
        };
    }

    /// Done with an instance. Live, the workshop drops it on its own thread
    /// (freeing a guest's memory can take milliseconds); offline it is
    /// dropped here, so it is gone before a fresh one is made and two
    /// instances never hold memory at once.
    fn dispose(&mut self, instance: W::Instance) {
        match self.options.clocking {
            Clocking::Offline => drop(instance),
            Clocking::RealTime => self.workshop.retire(instance),
        }
    }

    /// `instance`, unless it is poisoned (then it is disposed of).
    fn unless_poisoned(
        &mut self,
        instance: Option<W::Instance>,
        poisoned: bool,
    ) -> Option<W::Instance> {
        match instance {
            Some(instance) if poisoned => {
                self.dispose(instance);
                None
            }
            other => other,
        }
    }

    fn report_handover(&mut self, handover: &Handover, now: u64) {
        match handover {
            Handover::Carried(bytes) => {
                self.counters.states_carried.fetch_add(1, Relaxed);
                tracing::info!("state carried over ({bytes} bytes)");
            }
            Handover::NotOffered => {}
            Handover::Failed(failure) => {
                self.counters.states_lost.fetch_add(1, Relaxed);
                tracing::warn!("state handoff failed: {failure}: the new guest starts fresh");
                self.count(&failure.fault);
                if failure.new_poisoned {
                    self.ledger.record(now, &failure.fault);
                }
            }
        }
    }

    /// Mixes the swapped-out guest's output into the block, its weight
    /// falling linearly to zero over the crossfade. A fault or a drop by
    /// the old guest just ends the fade.
    fn fade_out(&mut self, block: &mut AudioBlock, call: AudioCall) {
        let Some(fade) = self.fade.as_mut() else {
            return;
        };
        let budget = self.options.deadlines.audio;
        let old = &mut self.fade_input;
        let faded = match fade.instance.process_audio(call, old, budget) {
            Ok(Processed::Kept) if old.len() == block.samples.len() => {
                let channels = usize::from(call.format.channels);
                fade.done += crossfade::mix(
                    &mut block.samples,
                    old,
                    channels,
                    fade.done,
                    self.crossfade_frames,
                );
                fade.done < self.crossfade_frames
            }
            _ => false,
        };
        if !faded && let Some(fade) = self.fade.take() {
            self.dispose(fade.instance);
        }
    }
}

#[cfg(test)]
mod tests;
