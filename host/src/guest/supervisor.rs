//! Keeps a guest running safely: calls it under a deadline, checks and
//! sanitises what it returns, and contains faults. A fault costs the guest
//! its output for that block (replaced per the [`FaultPolicy`]); a trapped
//! instance is thrown away and a fresh one configured from the pre-linked
//! component after a backoff; too many faults in a window quarantine the
//! guest (bypassed) for the rest of the run.
//!
//! A restart after a fault is the same motion as a hot swap will be:
//! prepare an instance, then switch.

use super::sandbox::{self, FaultPolicy, SandboxPolicy};
use super::swap::Prepared;
use super::{
    AudioCall, GuestFault, GuestInstance, GuestProgram, Processed, StreamFormats, VideoCall,
};
use crate::media::{AudioBlock, VideoFrame};
use crate::pipeline::Counters;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// Whether a processed block goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Send,
    /// The guest asked to drop it.
    DroppedByGuest,
}

/// First restart delay after a fault; doubles per recent fault.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Fault messages logged in full before they are only counted.
const LOGGED_FAULTS: u64 = 5;

/// Owns the guest instance of a run and everything that keeps it safe.
pub struct Supervisor {
    program: Arc<GuestProgram>,
    instance: Option<GuestInstance>,
    config: Vec<(String, String)>,
    formats: StreamFormats,
    policy: SandboxPolicy,
    audio_ticks: u64,
    video_ticks: u64,
    setup_ticks: u64,
    counters: Arc<Counters>,
    recent_faults: VecDeque<Instant>,
    restart_at: Option<Instant>,
    quarantined: bool,
    /// For `hold`: the last frame the guest produced.
    last_good_frame: Vec<u8>,
    /// Audio frames over which a swapped-out guest fades into the new one.
    crossfade_frames: u64,
    fade: Option<FadeOut>,
    /// The input of the current block, for the fading-out guest.
    fade_input: Vec<f32>,
}

/// A swapped-out instance still running while its output fades out.
struct FadeOut {
    instance: GuestInstance,
    done: u64,
}

/// A fresh instance of `program`, instantiated and configured under the
/// setup deadline.
///
/// # Errors
/// The fault of instantiation or `configure`.
pub fn prepare_instance(
    program: &GuestProgram,
    policy: &SandboxPolicy,
    deadlines: &Deadlines,
    config: &Vec<(String, String)>,
    formats: &StreamFormats,
) -> Result<GuestInstance, GuestFault> {
    prepare_instance_ticks(
        program,
        policy,
        sandbox::ticks_for(deadlines.setup),
        config,
        formats,
    )
}

fn prepare_instance_ticks(
    program: &GuestProgram,
    policy: &SandboxPolicy,
    setup_ticks: u64,
    config: &Vec<(String, String)>,
    formats: &StreamFormats,
) -> Result<GuestInstance, GuestFault> {
    let mut instance = program
        .instantiate_with(&policy.grants, policy.memory_limit, setup_ticks)
        .map_err(GuestFault::Trap)?;
    instance.configure(config, formats)?;
    instance.map_buffers(formats, policy.data_path)?;
    Ok(instance)
}

/// Carries state from `old` to `new` when both export `state`; otherwise,
/// or if either side fails, the new guest starts fresh (and the log says
/// why).
fn hand_over_state(old: &mut GuestInstance, new: &mut GuestInstance, ticks: u64) {
    old.set_deadline_ticks(ticks);
    new.set_deadline_ticks(ticks);
    let snapshot = match old.snapshot() {
        None => return,
        Some(Ok(snapshot)) => snapshot,
        Some(Err(fault)) => {
            tracing::warn!(
                "guest {} {fault} in state.snapshot: the new guest starts fresh",
                old.name()
            );
            return;
        }
    };
    match new.restore(&snapshot) {
        Ok(()) => tracing::info!("state carried over ({} bytes)", snapshot.len()),
        Err(GuestFault::NotImplemented(_)) => {
            tracing::info!("guest {} does not take state: it starts fresh", new.name())
        }
        Err(fault) => tracing::warn!(
            "guest {} {fault} in state.restore: it starts fresh",
            new.name()
        ),
    }
}

/// How long each kind of call may run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Deadlines {
    pub audio: Duration,
    pub video: Duration,
    pub setup: Duration,
}

impl Supervisor {
    /// Instantiates and configures the guest.
    ///
    /// # Errors
    /// The guest's own message when it refuses its configuration (a user
    /// error: fix the settings); a setup that traps or hangs is an error
    /// with `--on-fault stop`, and otherwise quarantines the guest.
    pub fn start(
        program: Arc<GuestProgram>,
        config: Vec<(String, String)>,
        formats: StreamFormats,
        policy: SandboxPolicy,
        deadlines: Deadlines,
        counters: Arc<Counters>,
    ) -> anyhow::Result<Self> {
        let mut supervisor = Self {
            program,
            instance: None,
            config,
            formats,
            audio_ticks: sandbox::ticks_for(deadlines.audio),
            video_ticks: sandbox::ticks_for(deadlines.video),
            setup_ticks: sandbox::ticks_for(deadlines.setup),
            policy,
            counters,
            recent_faults: VecDeque::new(),
            restart_at: None,
            quarantined: false,
            last_good_frame: Vec::new(),
            crossfade_frames: 0,
            fade: None,
            fade_input: Vec::new(),
        };
        match supervisor.fresh_instance() {
            Ok(instance) => {
                supervisor.describe_data_paths(&instance);
                supervisor.instance = Some(instance);
            }
            Err(GuestFault::Reported(message)) => {
                anyhow::bail!(
                    "guest {} returned an error: {message} in setup.configure",
                    supervisor.name()
                )
            }
            Err(fault) => {
                supervisor.counters.setup_faults.fetch_add(1, Relaxed);
                if supervisor.policy.on_fault == FaultPolicy::Stop {
                    anyhow::bail!(
                        "guest {} {fault} while being set up (setup.configure, mapped-*.prepare)",
                        supervisor.name()
                    );
                }
                tracing::error!(
                    "guest {} {fault} while being set up (setup.configure, mapped-*.prepare): \
                     quarantined, its streams pass through unprocessed",
                    supervisor.name()
                );
                supervisor.quarantine();
            }
        }
        Ok(supervisor)
    }

    pub fn name(&self) -> &str {
        self.program.name()
    }

    /// Says once how each stream reaches the guest, with the reason when
    /// it is not the mapped path the guest offers.
    fn describe_data_paths(&self, instance: &GuestInstance) {
        if self.formats.audio.is_some() && self.program.world().processes_audio() {
            tracing::info!(
                "guest {}: audio through {}",
                self.name(),
                instance.audio_path()
            );
        }
        if self.formats.video.is_some() && self.program.world().processes_video() {
            tracing::info!(
                "guest {}: video through {}",
                self.name(),
                instance.video_path()
            );
        }
    }

    /// Crossfade swaps over this many audio frames (0: switch at once).
    pub fn set_crossfade_frames(&mut self, frames: u64) {
        self.crossfade_frames = frames;
    }

    pub fn is_quarantined(&self) -> bool {
        self.quarantined
    }

    fn fresh_instance(&self) -> Result<GuestInstance, GuestFault> {
        prepare_instance_ticks(
            &self.program,
            &self.policy,
            self.setup_ticks,
            &self.config,
            &self.formats,
        )
    }

    /// Switches to a prepared guest (a hot swap or a reconfiguration)
    /// between two blocks: the old instance is dropped, fault history and
    /// quarantine start over.
    pub fn install(&mut self, prepared: Prepared) {
        tracing::info!("{} (guest {})", prepared.what, prepared.program.name());
        self.program = prepared.program;
        self.config = prepared.config;
        let mut incoming = prepared.instance;
        if let Some(old) = self.instance.as_mut() {
            hand_over_state(old, &mut incoming, self.audio_ticks.max(self.video_ticks));
        }
        let old = self.instance.replace(incoming);
        // A working old instance fades out over the next blocks (audio).
        self.fade = old
            .filter(|_| self.crossfade_frames > 0 && self.formats.audio.is_some())
            .map(|instance| FadeOut { instance, done: 0 });
        self.recent_faults.clear();
        self.restart_at = None;
        self.quarantined = false;
        self.counters.swaps.fetch_add(1, Relaxed);
    }

    /// The instance to call, restarting one after a fault once its backoff
    /// has passed; `None` while quarantined or backing off.
    fn ready(&mut self) -> Option<&mut GuestInstance> {
        if self.quarantined {
            return None;
        }
        if self.instance.is_none() {
            if self.restart_at.is_some_and(|at| Instant::now() < at) {
                return None;
            }
            match self.fresh_instance() {
                Ok(instance) => {
                    self.counters.restarts.fetch_add(1, Relaxed);
                    tracing::info!("guest {} restarted with a fresh instance", self.name());
                    self.instance = Some(instance);
                    self.restart_at = None;
                }
                Err(fault) => {
                    self.counters.setup_faults.fetch_add(1, Relaxed);
                    tracing::warn!("guest {} could not be restarted: {fault}", self.name());
                    self.note_fault();
                    return None;
                }
            }
        }
        self.instance.as_mut()
    }

    /// Records a fault's time; schedules a restart or quarantines.
    fn note_fault(&mut self) {
        let now = Instant::now();
        self.recent_faults.push_back(now);
        while self
            .recent_faults
            .front()
            .is_some_and(|t| now - *t > sandbox::FAULT_WINDOW)
        {
            self.recent_faults.pop_front();
        }
        if self.recent_faults.len() >= sandbox::QUARANTINE_AFTER {
            tracing::error!(
                "guest {} quarantined after {} faults within {} s: its streams pass through unprocessed \
                 for the rest of the run",
                self.name(),
                self.recent_faults.len(),
                sandbox::FAULT_WINDOW.as_secs()
            );
            self.quarantine();
            return;
        }
        let doublings = self.recent_faults.len().saturating_sub(1).min(10) as u32;
        self.restart_at = Some(now + (FIRST_BACKOFF * 2u32.pow(doublings)).min(MAX_BACKOFF));
    }

    fn quarantine(&mut self) {
        self.quarantined = true;
        self.instance = None;
        self.counters.quarantines.fetch_add(1, Relaxed);
    }

    /// Counts and reports a fault; decides what happens to the instance.
    ///
    /// # Errors
    /// With `--on-fault stop`: the fault, as the run's error.
    fn on_fault(
        &mut self,
        fault: GuestFault,
        place: std::fmt::Arguments<'_>,
    ) -> anyhow::Result<()> {
        let counter = match &fault {
            GuestFault::Timeout => &self.counters.fault_timeouts,
            GuestFault::OutOfMemory(_) => &self.counters.fault_memory,
            GuestFault::Trap(_) => &self.counters.fault_traps,
            GuestFault::Reported(_) => &self.counters.fault_errors,
            GuestFault::WrongSize { .. } | GuestFault::BadBuffer(_) => {
                &self.counters.fault_wrong_size
            }
            GuestFault::NotImplemented(_) => &self.counters.fault_errors,
        };
        let seen = counter.fetch_add(1, Relaxed) + 1;
        let message = format!("guest {} {fault} in {place}", self.name());
        if self.policy.on_fault == FaultPolicy::Stop {
            anyhow::bail!(message);
        }
        if seen <= LOGGED_FAULTS {
            tracing::warn!("{message}; output replaced ({:?})", self.policy.on_fault);
        } else if seen == LOGGED_FAULTS + 1 {
            tracing::warn!(
                "guest {}: further faults of this kind are only counted",
                self.name()
            );
        }
        if fault.poisons_instance() {
            self.instance = None;
        }
        self.note_fault();
        Ok(())
    }

    /// Runs one audio block through the guest, in place.
    ///
    /// # Errors
    /// Only with `--on-fault stop`.
    pub fn audio(&mut self, block: &mut AudioBlock, call: AudioCall) -> anyhow::Result<Delivery> {
        let ticks = self.audio_ticks;
        if self.fade.is_some() {
            self.fade_input.clone_from(&block.samples);
        }
        let result = match self.ready() {
            None => None,
            Some(instance) => {
                instance.set_deadline_ticks(ticks);
                let result = instance.process_audio(call, &mut block.samples);
                if instance.last_call_mapped() {
                    self.counters.audio_mapped.fetch_add(1, Relaxed);
                }
                Some(result)
            }
        };
        match result {
            None => self.audio_fallback(block),
            Some(Ok(Processed::Dropped)) => return Ok(Delivery::DroppedByGuest),
            Some(Ok(Processed::Kept)) => {}
            Some(Err(fault)) => {
                self.on_fault(
                    fault,
                    format_args!("process-audio (block at frame {})", block.first_frame),
                )?;
                self.audio_fallback(block);
            }
        }
        self.fade_out(block, call);
        self.make_safe(&mut block.samples);
        Ok(Delivery::Send)
    }

    /// Mixes the swapped-out guest's output into the block, its weight
    /// falling linearly to zero over the crossfade. A fault or a drop by
    /// the old guest just ends the fade.
    fn fade_out(&mut self, block: &mut AudioBlock, call: AudioCall) {
        let Some(fade) = self.fade.as_mut() else {
            return;
        };
        fade.instance.set_deadline_ticks(self.audio_ticks);
        let old = &mut self.fade_input;
        match fade.instance.process_audio(call, old) {
            Ok(Processed::Kept) if old.len() == block.samples.len() => {}
            _ => {
                self.fade = None;
                return;
            }
        }
        let channels = usize::from(call.format.channels.max(1));
        let total = self.crossfade_frames as f32;
        for (frame, (new, old)) in block
            .samples
            .chunks_mut(channels)
            .zip(old.chunks(channels))
            .enumerate()
        {
            let weight = ((fade.done + frame as u64) as f32 / total).min(1.0);
            for (n, o) in new.iter_mut().zip(old) {
                *n = o * (1.0 - weight) + *n * weight;
            }
        }
        fade.done += (block.samples.len() / channels) as u64;
        if fade.done >= self.crossfade_frames {
            self.fade = None;
        }
    }

    /// Runs one video frame through the guest, in place.
    ///
    /// # Errors
    /// Only with `--on-fault stop`.
    pub fn video(&mut self, frame: &mut VideoFrame, call: VideoCall) -> anyhow::Result<Delivery> {
        let ticks = self.video_ticks;
        let result = match self.ready() {
            None => None,
            Some(instance) => {
                instance.set_deadline_ticks(ticks);
                let result = instance.process_video(call, &mut frame.pixels);
                if instance.last_call_mapped() {
                    self.counters.video_mapped.fetch_add(1, Relaxed);
                }
                Some(result)
            }
        };
        match result {
            None => self.video_fallback(frame),
            Some(Ok(Processed::Dropped)) => return Ok(Delivery::DroppedByGuest),
            Some(Ok(Processed::Kept)) => {
                if self.policy.on_fault == FaultPolicy::Hold {
                    self.last_good_frame.clone_from(&frame.pixels);
                }
            }
            Some(Err(fault)) => {
                self.on_fault(fault, format_args!("process-video (frame {})", frame.index))?;
                self.video_fallback(frame);
            }
        }
        Ok(Delivery::Send)
    }

    fn audio_fallback(&self, block: &mut AudioBlock) {
        match self.policy.on_fault {
            FaultPolicy::Bypass | FaultPolicy::Stop => {}
            FaultPolicy::Mute | FaultPolicy::Hold => block.samples.fill(0.0),
        }
    }

    fn video_fallback(&self, frame: &mut VideoFrame) {
        let hold = self.policy.on_fault == FaultPolicy::Hold
            && self.last_good_frame.len() == frame.pixels.len();
        match self.policy.on_fault {
            FaultPolicy::Bypass | FaultPolicy::Stop => {}
            _ if hold => frame.pixels.copy_from_slice(&self.last_good_frame),
            FaultPolicy::Mute | FaultPolicy::Hold => {
                for pixel in frame.pixels.chunks_exact_mut(4) {
                    pixel.copy_from_slice(&[0, 0, 0, 255]);
                }
            }
        }
    }

    /// Replaces NaN/Inf with silence and, with the limiter on, clamps to
    /// ±1.0 full scale, so no guest can blast the listener.
    fn make_safe(&self, samples: &mut [f32]) {
        let (mut nonfinite, mut limited) = (0u64, 0u64);
        for sample in samples.iter_mut() {
            if !sample.is_finite() {
                *sample = 0.0;
                nonfinite += 1;
            } else if self.policy.limiter && sample.abs() > 1.0 {
                *sample = sample.clamp(-1.0, 1.0);
                limited += 1;
            }
        }
        if nonfinite > 0 {
            self.counters
                .nonfinite_samples
                .fetch_add(nonfinite, Relaxed);
        }
        if limited > 0 {
            self.counters.limited_samples.fetch_add(limited, Relaxed);
        }
    }
}
