//! A scripted fake audio device, so the pipeline's device logic is tested
//! without a sound server: a capture side that plays a tone into a capture
//! ring and a playback side that takes audio out of a playback ring, each
//! on its own clock (`speed`: drift), with irregular callback sizes,
//! jitter, dropouts, a start-up stall and a disconnect.
//!
//! Both can run against simulated time (`run_until`, deterministic) or on
//! a thread of their own against the host clock (`spawn`), as a device's
//! callback thread would.

use super::{CaptureSide, DeviceStatus, PlaybackSide};
use crate::clicks::Clicks;
use crate::clock;
use crate::media::AudioFormat;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the fake device does, and when.
#[derive(Debug, Clone)]
pub struct FakeScript {
    pub format: AudioFormat,
    /// The device's clock against the host's: 1.005 runs 0.5 % fast.
    pub speed: f64,
    /// Callback sizes in frames, used in turn (irregular sizes).
    pub callback_frames: Vec<usize>,
    /// Each callback comes up to this much late (pseudo-random, fixed seed).
    pub jitter: Duration,
    /// Spans `(from, length)` of device time in which no callback comes:
    /// captured audio is lost; playback is not asked for audio.
    pub dropouts: Vec<(Duration, Duration)>,
    /// The device goes away at this device time.
    pub disconnect_at: Option<Duration>,
    /// Capture: the tone it hears, at half full scale.
    pub tone_hz: f32,
    /// Capture: clicks instead of the tone, one at every multiple of this
    /// (device time), each at a level that tells which click it is
    /// ([`crate::clicks`]).
    pub clicks_every: Option<Duration>,
}

impl FakeScript {
    /// A well-behaved device: 48 kHz stereo, 480-frame callbacks, 440 Hz.
    pub fn steady(format: AudioFormat) -> Self {
        Self {
            format,
            speed: 1.0,
            callback_frames: vec![480],
            jitter: Duration::ZERO,
            dropouts: Vec::new(),
            disconnect_at: None,
            tone_hz: 440.0,
            clicks_every: None,
        }
    }

    /// The capture signal at device frame `frame`.
    fn signal(&self, frame: u64) -> f32 {
        let rate = f64::from(self.format.sample_rate);
        match self.clicks_every {
            Some(period) => Clicks::new(self.format.sample_rate, period).sample(frame),
            None => {
                let step = std::f64::consts::TAU * f64::from(self.tone_hz) / rate;
                (0.5 * (step * frame as f64).sin()) as f32
            }
        }
    }

    fn in_dropout(&self, device_ns: u64) -> bool {
        self.dropouts.iter().any(|(from, length)| {
            let from = from.as_nanos() as u64;
            device_ns >= from && device_ns < from + length.as_nanos() as u64
        })
    }
}

/// The callback schedule both sides share.
struct Schedule {
    script: FakeScript,
    /// Playback asks for frames as they start to play; capture delivers
    /// them once they have all been captured.
    playback: bool,
    /// Host time at device time zero.
    start_ns: u64,
    /// Host time the next callback comes.
    due_ns: u64,
    frames_done: u64,
    callbacks_done: usize,
    rng: u64,
    disconnected: bool,
    /// Frames passed in a dropout since the last callback.
    skipped: u64,
}

/// One callback that is due: its first frame and size.
struct Due {
    first_frame: u64,
    frames: usize,
    /// Frames that passed without a callback just before it (a dropout).
    skipped: u64,
}

impl Schedule {
    fn new(script: FakeScript, start_ns: u64, playback: bool) -> Self {
        let mut schedule = Self {
            script,
            playback,
            start_ns,
            due_ns: 0,
            frames_done: 0,
            callbacks_done: 0,
            rng: 0x5eed_cafe,
            disconnected: false,
            skipped: 0,
        };
        schedule.due_ns = schedule.next_due_ns();
        schedule
    }

    /// Makes every callback due by host time `now_ns`; false once the
    /// device has disconnected (which `status` is then told).
    fn run_until(
        &mut self,
        now_ns: u64,
        status: &DeviceStatus,
        mut callback: impl FnMut(&Due, &FakeScript, u64),
    ) -> bool {
        while let Some(due) = self.take_due(now_ns, self.due_ns) {
            let capture_ns = self.host_ns(due.first_frame);
            callback(&due, &self.script, capture_ns);
            self.due_ns = self.next_due_ns();
        }
        if self.disconnected {
            status.disconnect("the fake device was unplugged".to_string());
            return false;
        }
        true
    }

    fn max_callback(&self) -> usize {
        self.script
            .callback_frames
            .iter()
            .copied()
            .max()
            .unwrap_or(1)
    }

    fn next_frames(&self) -> usize {
        let sizes = &self.script.callback_frames;
        sizes[self.callbacks_done % sizes.len()].max(1)
    }

    /// Host time of device frame `frame`.
    fn host_ns(&self, frame: u64) -> u64 {
        let rate = f64::from(self.script.format.sample_rate) * self.script.speed;
        self.start_ns + (frame as f64 * 1e9 / rate) as u64
    }

    fn device_ns(&self, frame: u64) -> u64 {
        self.script.format.frame_time_ns(frame)
    }

    /// Host time the next callback comes: capture, once its frames have
    /// elapsed; playback, as its first frame starts to play (this fake
    /// has no buffer of its own); plus jitter.
    fn next_due_ns(&mut self) -> u64 {
        let end = if self.playback {
            self.frames_done
        } else {
            self.frames_done + self.next_frames() as u64
        };
        let jitter = self.script.jitter.as_nanos() as u64;
        let late = if jitter == 0 {
            0
        } else {
            // xorshift: deterministic, allocation-free.
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            self.rng % jitter
        };
        self.host_ns(end) + late
    }

    /// The next callback if due by `now_ns`; `None` when not yet, or after
    /// a disconnect. Dropped callbacks are skipped here (their frames pass).
    fn take_due(&mut self, now_ns: u64, due_ns: u64) -> Option<Due> {
        loop {
            if self.disconnected || due_ns > now_ns {
                return None;
            }
            let frames = self.next_frames();
            let first_frame = self.frames_done;
            let device_ns = self.device_ns(first_frame);
            if let Some(at) = self.script.disconnect_at
                && device_ns >= at.as_nanos() as u64
            {
                self.disconnected = true;
                return None;
            }
            self.frames_done += frames as u64;
            self.callbacks_done += 1;
            if self.script.in_dropout(device_ns) {
                self.skipped += frames as u64;
                if self.host_ns(self.frames_done) > now_ns {
                    return None;
                }
                continue;
            }
            return Some(Due {
                first_frame,
                frames,
                skipped: std::mem::take(&mut self.skipped),
            });
        }
    }
}

/// A fake device half, driven on a thread of its own.
trait Driven: Send + 'static {
    fn due_ns(&self) -> u64;
    fn run_until(&mut self, now_ns: u64) -> bool;
}

/// Makes the device's callbacks against the host clock until `stop` is
/// set or it disconnects.
fn drive(device: &mut impl Driven, stop: &AtomicBool) {
    while !stop.load(Relaxed) {
        clock::sleep_until_ns(device.due_ns().min(clock::now_ns() + 20_000_000));
        if !device.run_until(clock::now_ns()) {
            break;
        }
    }
}

/// The capture half of a fake device.
pub struct FakeCapture {
    schedule: Schedule,
    side: CaptureSide,
    signal: Vec<f32>,
}

impl FakeCapture {
    /// A fake microphone whose device time zero is host time `start_ns`.
    pub fn new(script: FakeScript, side: CaptureSide, start_ns: u64) -> Self {
        let schedule = Schedule::new(script, start_ns, false);
        let channels = usize::from(schedule.script.format.channels);
        let signal = vec![0.0; schedule.max_callback() * channels];
        Self {
            schedule,
            side,
            signal,
        }
    }

    /// Runs every callback due by host time `now_ns`; false once the
    /// device has disconnected.
    pub fn run_until(&mut self, now_ns: u64) -> bool {
        let Self {
            schedule,
            side,
            signal,
        } = self;
        let status = side.status();
        schedule.run_until(now_ns, &status, |due, script, capture_ns| {
            let channels = usize::from(script.format.channels);
            let samples = &mut signal[..due.frames * channels];
            for (i, frame) in samples.chunks_exact_mut(channels).enumerate() {
                frame.fill(script.signal(due.first_frame + i as u64));
            }
            side.push(samples, capture_ns);
        })
    }

    /// Runs the device on its own thread against the host clock until
    /// `stop` is set or it disconnects.
    pub fn spawn(mut self, stop: Arc<AtomicBool>) -> JoinHandle<()> {
        std::thread::spawn(move || drive(&mut self, &stop))
    }
}

impl Driven for FakeCapture {
    fn due_ns(&self) -> u64 {
        self.schedule.due_ns
    }

    fn run_until(&mut self, now_ns: u64) -> bool {
        FakeCapture::run_until(self, now_ns)
    }
}

/// The playback half of a fake device; keeps what it played.
pub struct FakePlayback {
    schedule: Schedule,
    side: PlaybackSide,
    out: Vec<f32>,
    recording: Option<Vec<f32>>,
}

impl FakePlayback {
    /// A fake speaker whose device time zero is host time `start_ns`;
    /// with `record`, it keeps everything it played.
    pub fn new(script: FakeScript, side: PlaybackSide, start_ns: u64, record: bool) -> Self {
        let schedule = Schedule::new(script, start_ns, true);
        let channels = usize::from(schedule.script.format.channels);
        let out = vec![0.0; schedule.max_callback() * channels];
        Self {
            schedule,
            side,
            out,
            recording: record.then(Vec::new),
        }
    }

    /// Runs every callback due by host time `now_ns`; false once the
    /// device has disconnected.
    pub fn run_until(&mut self, now_ns: u64) -> bool {
        let Self {
            schedule,
            side,
            out,
            recording,
        } = self;
        let status = side.status();
        schedule.run_until(now_ns, &status, |due, script, _| {
            let channels = usize::from(script.format.channels);
            let out = &mut out[..due.frames * channels];
            side.fill(out);
            if let Some(recording) = recording {
                // What a dropout played: nothing, for as long as it lasted.
                let silence = recording.len() + due.skipped as usize * channels;
                recording.resize(silence, 0.0);
                recording.extend_from_slice(out);
            }
        })
    }

    /// What it played so far (empty without `record`), from device time
    /// zero: sample `i` of a channel played at `start_ns + i / rate`.
    pub fn take_recording(&mut self) -> Vec<f32> {
        self.recording
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Runs the device on its own thread against the host clock until
    /// `stop` is set or it disconnects; returns what it played.
    pub fn spawn(mut self, stop: Arc<AtomicBool>) -> JoinHandle<Vec<f32>> {
        std::thread::spawn(move || {
            drive(&mut self, &stop);
            self.recording.unwrap_or_default()
        })
    }
}

impl Driven for FakePlayback {
    fn due_ns(&self) -> u64 {
        self.schedule.due_ns
    }

    fn run_until(&mut self, now_ns: u64) -> bool {
        FakePlayback::run_until(self, now_ns)
    }
}

/// A fake microphone and speaker wired to a capture feed and a playback
/// sink, running on their own threads: what a test hands the pipeline in
/// place of a real device.
pub struct FakeRig {
    /// Host time at device time zero, for both devices.
    pub start_ns: u64,
    stop: Arc<AtomicBool>,
    mic: JoinHandle<()>,
    speaker: JoinHandle<Vec<f32>>,
}

impl FakeRig {
    /// Starts both devices now; returns the feed and sink to give the
    /// pipeline (`audio_feed`, `audio_sink`).
    ///
    /// # Errors
    /// When the playback ring cannot be made.
    pub fn start(
        mic: FakeScript,
        speaker: FakeScript,
        block_frames: usize,
        budget: super::PlaybackBudget,
    ) -> anyhow::Result<(Self, super::CaptureFeed, super::PlaybackSink)> {
        let format = mic.format;
        let one_second = format.sample_rate as usize;
        let (side, feed) = super::capture_ring(format, one_second, block_frames, "fake:mic".into());
        let (sink, out) =
            super::playback_ring(speaker.format, block_frames, budget, "fake:speaker".into())?;
        let start_ns = clock::now_ns();
        let stop = Arc::new(AtomicBool::new(false));
        let mic = FakeCapture::new(mic, side, start_ns).spawn(stop.clone());
        let speaker = FakePlayback::new(speaker, out, start_ns, true).spawn(stop.clone());
        let rig = Self {
            start_ns,
            stop,
            mic,
            speaker,
        };
        Ok((rig, feed, sink))
    }

    /// Stops both devices; returns what the speaker played.
    pub fn stop(self) -> Vec<f32> {
        self.stop.store(true, Relaxed);
        let _ = self.mic.join();
        self.speaker.join().unwrap_or_default()
    }
}
