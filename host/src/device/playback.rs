//! Playback: the write stage pushes processed audio into a preallocated
//! ring through the drift corrector; the device's callback takes it out.
//!
//! Latency is bounded by the ring's budget: when the ring holds more (the
//! device stalled at start-up, or the pipeline caught up after a hiccup),
//! the callback drops the oldest audio down to the target fill, crossfading
//! across the cut, and counts it. The original kept such a stall as
//! permanent delay (0.9–1.5 s).

use super::DeviceStatus;
use super::drift::DriftCorrector;
use super::status::{PresenceCheck, Watchdog};
use crate::clock;
use crate::media::{AudioBlock, AudioFormat};
use crate::metrics::StreamCounters;
use crate::rt;
use crate::sink::{OutputDelay, Sink};
use rtrb::{Consumer, Producer, RingBuffer};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// Frames over which a latency drop crossfades (1.3 ms at 48 kHz).
const FADE_FRAMES: usize = 64;

/// How long the device may stop taking audio before the writer has to
/// drop blocks (at 48 kHz stereo, 960 KB of ring).
const STALL_ROOM: Duration = Duration::from_millis(2500);

/// How much audio the playback ring may hold.
#[derive(Debug, Clone, Copy)]
pub struct PlaybackBudget {
    /// Above this, the oldest audio is dropped.
    pub max_frames: usize,
    /// The fill the drift corrector steers to, and drops return to.
    pub target_frames: usize,
}

impl PlaybackBudget {
    /// A budget of `max_frames`, steering to half of it.
    pub fn new(max_frames: usize) -> Self {
        Self {
            max_frames,
            target_frames: max_frames / 2,
        }
    }
}

/// Makes a playback ring for `format` fed in blocks of `block_frames`.
///
/// # Errors
/// When the drift corrector cannot be made.
pub fn playback_ring(
    format: AudioFormat,
    block_frames: usize,
    budget: PlaybackBudget,
    name: String,
) -> anyhow::Result<(PlaybackSink, PlaybackSide)> {
    let channels = usize::from(format.channels);
    // Room for the budget and for a device that stalls up to STALL_ROOM:
    // the callback then drops the backlog (oldest first, with a fade); the
    // writer, which can only drop the newest, should never have to.
    let stall_frames = (STALL_ROOM.as_secs_f64() * f64::from(format.sample_rate)) as usize;
    let capacity_frames = budget.max_frames + stall_frames + 4 * block_frames;
    let (producer, consumer) = RingBuffer::new(capacity_frames * channels);
    let status = Arc::new(DeviceStatus::default());
    let drift = DriftCorrector::new(
        format.sample_rate,
        channels,
        block_frames,
        budget.target_frames,
    )?;
    Ok((
        PlaybackSink {
            ring: producer,
            capacity_frames,
            budget_frames: budget.max_frames,
            target_frames: budget.target_frames,
            next_frame: None,
            last_frame: vec![0.0; channels],
            format,
            drift,
            status: status.clone(),
            name,
            watchdog: None,
        },
        PlaybackSide {
            ring: consumer,
            channels,
            budget,
            primed: false,
            status,
        },
    ))
}

/// The pipeline side of a playback ring: a [`Sink`].
pub struct PlaybackSink {
    ring: Producer<f32>,
    capacity_frames: usize,
    budget_frames: usize,
    target_frames: usize,
    /// The first frame the next block has when none was dropped.
    next_frame: Option<u64>,
    /// The last frame pushed (a fade after a gap starts from it).
    last_frame: Vec<f32>,
    format: AudioFormat,
    drift: DriftCorrector,
    status: Arc<DeviceStatus>,
    name: String,
    /// Watches for the device's removal while the sink lives.
    watchdog: Option<Watchdog>,
}

impl PlaybackSink {
    /// Checks the device is still there when its callbacks stop.
    pub fn watched_by(mut self, check: PresenceCheck) -> Self {
        self.watchdog = Some(Watchdog::spawn(check, self.status.clone()));
        self
    }

    /// Frames in the ring now.
    pub fn fill_frames(&self) -> usize {
        self.capacity_frames - self.ring.slots() / usize::from(self.format.channels)
    }

    /// The drift correction now applied (output/input rate − 1).
    pub fn drift_correction(&self) -> f64 {
        self.drift.correction()
    }

    /// For the device's callbacks and the pipeline's counters.
    pub fn status(&self) -> Arc<DeviceStatus> {
        self.status.clone()
    }

    /// Pushes one block: drift-corrected, never waiting. A full ring
    /// means the device has stopped taking audio: the block is dropped.
    ///
    /// # Errors
    /// When the device disconnected.
    pub fn push(&mut self, samples: &[f32]) -> anyhow::Result<()> {
        self.push_after(samples, false)
    }

    /// Pushes one block; `after_gap`: blocks before it were dropped
    /// upstream (too late for the budget), so it fades in from where the
    /// last block ended instead of jumping there (a click).
    fn push_after(&mut self, samples: &[f32], after_gap: bool) -> anyhow::Result<()> {
        let _hot = rt::hot();
        if let Some(error) = self.status.disconnected(&self.name) {
            return Err(error.into());
        }
        let channels = usize::from(self.format.channels);
        let frames = samples.len() / channels;
        let fill = self.fill_frames();
        // Steer only while the device plays normally: not before it starts,
        // and not while it stalls (the callback drops that backlog).
        let steady = self.status.started.load(Relaxed) && fill <= self.budget_frames;
        self.drift.observe(fill, frames, steady);
        let out = self.drift.process(samples)?;
        if self.ring.slots() < out.len() {
            self.status.latency_drops.fetch_add(1, Relaxed);
            self.status
                .frames_dropped
                .fetch_add((out.len() / channels) as u64, Relaxed);
            return Ok(());
        }
        let last = &mut self.last_frame;
        if let Ok(chunk) = self.ring.write_chunk_uninit(out.len()) {
            let fade = if after_gap { FADE_FRAMES } else { 0 };
            chunk.fill_from_iter(out.iter().enumerate().map(|(i, &sample)| {
                let frame = i / channels;
                if frame < fade {
                    let t = (frame as f32 + 0.5) / fade as f32;
                    last[i % channels] * (1.0 - t) + sample * t
                } else {
                    sample
                }
            }));
        }
        if out.len() >= channels {
            last.copy_from_slice(&out[out.len() - channels..]);
        }
        Ok(())
    }
}

impl Sink<AudioBlock> for PlaybackSink {
    fn is_real_time(&self) -> bool {
        true
    }

    fn write(&mut self, block: &AudioBlock) -> anyhow::Result<()> {
        let frames = (block.samples.len() / usize::from(self.format.channels)) as u64;
        let after_gap = self
            .next_frame
            .is_some_and(|next| block.first_frame != next);
        self.next_frame = Some(block.first_frame + frames);
        self.push_after(&block.samples, after_gap)
    }

    /// A block's first frame plays after what is queued ahead of it, which
    /// starts playing once the frames the last callback took have played,
    /// and the device's own buffer. In steady state the ring holds its
    /// target, and the next callback is half a callback away on average.
    fn output_delay(&self) -> Option<OutputDelay> {
        let status = &self.status;
        let time = |frames: u64| self.format.frame_time_ns(frames);
        let fill = self.fill_frames() as u64;
        let device = status.output_delay_ns.load(Relaxed);
        let callback_frames = status.last_callback_frames.load(Relaxed);
        let now = clock::now_ns();
        let ring_plays = (status.last_callback_ns.load(Relaxed) + time(callback_frames)).max(now);
        Some(OutputDelay {
            now_ns: ring_plays - now + time(fill) + device,
            steady_ns: time(callback_frames) / 2 + time(self.target_frames as u64) + device,
        })
    }

    /// Lets what is queued play out (at most the budget's worth of time).
    fn finish(self: Box<Self>) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_millis(500);
        while self.fill_frames() > 0
            && Instant::now() < deadline
            && self.status.disconnected(&self.name).is_none()
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    fn describe(&self) -> String {
        self.name.clone()
    }

    fn report(&self, counters: &StreamCounters) {
        let status = &self.status;
        counters
            .playback_underruns
            .store(status.underruns.load(Relaxed), Relaxed);
        counters
            .latency_drops
            .store(status.latency_drops.load(Relaxed), Relaxed);
        counters
            .latency_units_dropped
            .store(status.frames_dropped.load(Relaxed), Relaxed);
        counters
            .device_delay_ns
            .store(status.output_delay_ns.load(Relaxed), Relaxed);
        let ppm = (self.drift.correction().abs() * 1e6).round() as u64;
        counters.drift_correction_ppm.store(ppm, Relaxed);
    }
}

/// The device-callback side of a playback ring.
pub struct PlaybackSide {
    ring: Consumer<f32>,
    channels: usize,
    budget: PlaybackBudget,
    /// Playing: the ring reached its target fill since the last underrun.
    primed: bool,
    status: Arc<DeviceStatus>,
}

impl PlaybackSide {
    pub fn status(&self) -> Arc<DeviceStatus> {
        self.status.clone()
    }

    /// Called on the device's callback thread: fills `out` (interleaved)
    /// from the ring. Never allocates, locks or blocks. Playback starts
    /// (and restarts after an underrun) once the ring holds its target
    /// fill, so one late block does not become a run of underruns. Too
    /// little audio while playing is an underrun: the rest is silence.
    pub fn fill(&mut self, out: &mut [f32]) {
        let _hot = rt::hot();
        self.status.callbacks.fetch_add(1, Relaxed);
        let ch = self.channels;
        self.status.last_callback_ns.store(clock::now_ns(), Relaxed);
        (self.status.last_callback_frames).store((out.len() / ch) as u64, Relaxed);
        let available = self.ring.slots();
        if !self.primed {
            if available < self.budget.target_frames * ch {
                out.fill(0.0);
                return;
            }
            self.primed = true;
            self.status.started.store(true, Relaxed);
        }
        let mut written = 0;
        if available > self.budget.max_frames * ch + out.len() {
            written = self.drop_oldest(out, available);
        }
        let rest = &mut out[written..];
        let n = self.ring.slots().min(rest.len());
        if let Ok(chunk) = self.ring.read_chunk(n) {
            let (a, b) = chunk.as_slices();
            rest[..a.len()].copy_from_slice(a);
            rest[a.len()..a.len() + b.len()].copy_from_slice(b);
            chunk.commit_all();
        }
        if n < rest.len() {
            rest[n..].fill(0.0);
            self.status.underruns.fetch_add(1, Relaxed);
            self.primed = false;
        }
    }

    /// Drops the oldest audio down to the target fill, crossfading from
    /// where playback was to where it resumes; returns the samples written
    /// into `out` (the fade).
    fn drop_oldest(&mut self, out: &mut [f32], available: usize) -> usize {
        let ch = self.channels;
        let fade = FADE_FRAMES.min(out.len() / ch);
        let target = self.budget.target_frames * ch;
        let skip = (available - target).saturating_sub(fade * ch) / ch * ch;
        let Ok(chunk) = self.ring.read_chunk(skip + fade * ch) else {
            return 0;
        };
        let (a, b) = chunk.as_slices();
        let at = |i: usize| if i < a.len() { a[i] } else { b[i - a.len()] };
        for frame in 0..fade {
            let t = (frame as f32 + 0.5) / fade as f32;
            for c in 0..ch {
                let i = frame * ch + c;
                out[i] = at(i) * (1.0 - t) + at(skip + i) * t;
            }
        }
        chunk.commit_all();
        self.status.latency_drops.fetch_add(1, Relaxed);
        self.status
            .frames_dropped
            .fetch_add((skip / ch) as u64, Relaxed);
        fade * ch
    }
}
