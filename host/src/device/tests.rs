//! The device logic against the fake device in simulated time: exact,
//! repeatable, no threads.

use super::fake::{FakeCapture, FakePlayback, FakeScript};
use super::*;
use crate::media::{AudioFormat, BufferPool};
use std::time::Duration;

const FORMAT: AudioFormat = AudioFormat {
    sample_rate: 48_000,
    channels: 2,
};
const MS: u64 = 1_000_000;
const START: u64 = 1_000 * MS;

/// Largest jump from the sine recurrence x[n] = 2cos(w)x[n-1] - x[n-2]:
/// about 0 for a clean tone, large at a discontinuity.
fn worst_discontinuity(mono: &[f32], hz: f32) -> f32 {
    let k = 2.0 * (std::f32::consts::TAU * hz / FORMAT.sample_rate as f32).cos();
    mono.windows(3)
        .map(|w| (w[2] - (k * w[1] - w[0])).abs())
        .fold(0.0, f32::max)
}

fn left(samples: &[f32]) -> Vec<f32> {
    samples.chunks_exact(2).map(|f| f[0]).collect()
}

#[test]
fn irregular_callbacks_become_whole_blocks_stamped_with_their_capture_time() {
    let (side, mut feed) = capture_ring(FORMAT, 4800, 512, "fake".into());
    let mut script = FakeScript::steady(FORMAT);
    script.callback_frames = vec![100, 333, 480, 17];
    let mut mic = FakeCapture::new(script, side, START);
    let pool = BufferPool::new(4, 1024);
    let mut blocks = Vec::new();
    for t in (0..=1000).map(|ms| START + ms * MS) {
        mic.run_until(t);
        while let Some(block) = feed.take_block(&pool) {
            blocks.push(block);
        }
    }
    // One second of audio: 93 whole blocks of 512 frames (47616 frames).
    assert_eq!(blocks.len(), 93);
    let mut mono = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        assert_eq!(block.samples.len(), 1024);
        assert_eq!(block.first_frame, i as u64 * 512);
        let expected = START + FORMAT.frame_time_ns(block.first_frame);
        assert!(
            block.timestamp_ns.abs_diff(expected) <= 1_000,
            "block {i}: {} vs {expected}",
            block.timestamp_ns
        );
        mono.extend(left(&block.samples));
    }
    assert!(worst_discontinuity(&mono, 440.0) < 1e-3);
}

#[test]
fn a_full_capture_ring_drops_whole_callbacks_and_counts_them() {
    let (side, mut feed) = capture_ring(FORMAT, 1000, 512, "fake".into());
    let status = side.status();
    let mut mic = FakeCapture::new(FakeScript::steady(FORMAT), side, START);
    // Nobody reads for 100 ms: 10 callbacks of 480, 2 fit.
    mic.run_until(START + 100 * MS);
    assert_eq!(status.overruns.load(Relaxed), 8);
    assert_eq!(status.frames_lost.load(Relaxed), 8 * 480);
    let pool = BufferPool::new(4, 1024);
    let block = feed
        .take_block(&pool)
        .expect("the first 960 frames are kept");
    // The kept audio is the first callbacks', stamped as such.
    assert_eq!(block.timestamp_ns, START);
    assert!(feed.take_block(&pool).is_none());
}

#[test]
fn a_disconnect_is_a_typed_error_naming_the_device() {
    let (side, feed) = capture_ring(FORMAT, 4800, 512, "device:MicFeed".into());
    let mut script = FakeScript::steady(FORMAT);
    script.disconnect_at = Some(Duration::from_millis(50));
    let mut mic = FakeCapture::new(script, side, START);
    assert!(mic.run_until(START + 40 * MS));
    assert!(!mic.run_until(START + 100 * MS));
    let error = feed.shared_status().disconnected("device:MicFeed").unwrap();
    assert!(error.is_disconnect());
    assert_eq!(
        error.to_string(),
        "device:MicFeed disconnected: the fake device was unplugged"
    );
}

/// Capture and playback joined as the pipeline joins them, without a
/// guest, stepped in 1 ms of simulated time.
struct Loop {
    mic: FakeCapture,
    feed: CaptureFeed,
    sink: PlaybackSink,
    speaker: FakePlayback,
    pool: BufferPool<f32>,
    status: std::sync::Arc<DeviceStatus>,
}

impl Loop {
    fn new(mic: FakeScript, speaker: FakeScript, budget: PlaybackBudget, record: bool) -> Self {
        let (side, feed) = capture_ring(FORMAT, 9600, 512, "mic".into());
        let (sink, out) = playback_ring(FORMAT, 512, budget, "speaker".into()).unwrap();
        let status = out.status();
        Self {
            mic: FakeCapture::new(mic, side, START),
            feed,
            sink,
            speaker: FakePlayback::new(speaker, out, START, record),
            pool: BufferPool::new(8, 1024),
            status,
        }
    }

    fn step(&mut self, t: u64) {
        self.mic.run_until(t);
        while let Some(block) = self.feed.take_block(&self.pool) {
            self.sink.push(&block.samples).unwrap();
            self.pool.give(block.samples);
        }
        self.speaker.run_until(t);
    }
}

#[test]
fn a_two_second_output_stall_is_recovered_within_a_second() {
    let mut speaker = FakeScript::steady(FORMAT);
    speaker.dropouts = vec![(Duration::ZERO, Duration::from_secs(2))];
    let budget = PlaybackBudget::new(2400); // 50 ms
    let mut run = Loop::new(FakeScript::steady(FORMAT), speaker, budget, false);
    let mut worst_after_recovery = 0;
    for ms in 0..4000 {
        run.step(START + ms * MS);
        if ms >= 3000 {
            worst_after_recovery = worst_after_recovery.max(run.sink.fill_frames());
        }
    }
    let drops = run.status.latency_drops.load(Relaxed);
    assert!(drops >= 1, "the backlog must be dropped");
    assert!(
        worst_after_recovery <= budget.max_frames + 512,
        "fill {worst_after_recovery} frames a second after the stall"
    );
}

#[test]
fn a_device_half_a_percent_fast_keeps_the_ring_steady_for_ten_minutes() {
    let mut mic = FakeScript::steady(FORMAT);
    mic.speed = 1.005;
    mic.callback_frames = vec![480, 441, 512];
    mic.jitter = Duration::from_millis(2);
    let mut speaker = FakeScript::steady(FORMAT);
    speaker.callback_frames = vec![512];
    let budget = PlaybackBudget::new(4800); // 100 ms, steering to 50 ms
    let mut run = Loop::new(mic, speaker, budget, false);
    let warm_up_ms = 30_000;
    let (mut low, mut high) = (usize::MAX, 0);
    let mut underruns_at_warm_up = 0;
    let mut drops_at_warm_up = 0;
    for ms in 0..600_000 {
        run.step(START + ms * MS);
        if ms == warm_up_ms {
            underruns_at_warm_up = run.status.underruns.load(Relaxed);
            drops_at_warm_up = run.status.latency_drops.load(Relaxed);
        }
        if ms > warm_up_ms {
            let fill = run.sink.fill_frames();
            low = low.min(fill);
            high = high.max(fill);
        }
    }
    let correction = run.sink.drift_correction();
    assert!(
        (correction + 0.005).abs() < 0.0005,
        "the corrector should settle near -0.5 %, got {correction}"
    );
    assert_eq!(run.status.underruns.load(Relaxed), underruns_at_warm_up);
    assert_eq!(run.status.latency_drops.load(Relaxed), drops_at_warm_up);
    // Within 25 ms of the 50 ms target, for ten minutes.
    assert!(
        low >= 1200 && high <= 3600,
        "fill between {low} and {high} frames after warm-up (target 2400)"
    );
}

#[test]
fn a_latency_drop_crossfades_instead_of_clicking() {
    let mut speaker = FakeScript::steady(FORMAT);
    speaker.dropouts = vec![(Duration::from_millis(500), Duration::from_millis(300))];
    let mut run = Loop::new(
        FakeScript::steady(FORMAT),
        speaker,
        PlaybackBudget::new(2400),
        true,
    );
    for ms in 0..1500 {
        run.step(START + ms * MS);
    }
    assert!(run.status.latency_drops.load(Relaxed) >= 1);
    let mut played = left(&run.speaker_recording());
    // What the callbacks played: without the dropout's silence (device
    // frames 24000 to 38400), which is the device's gap, not ours.
    played.drain(24_000..38_400);
    // Skip the start (before audio arrived) and compare the worst step
    // between two samples with a clean tone's: a hard cut would jump up to
    // the full 1.0 peak-to-peak; the fade keeps it small.
    let start = played.iter().position(|s| s.abs() > 0.01).unwrap() + 1;
    let steps = played[start..].windows(2).map(|w| (w[1] - w[0]).abs());
    let worst = steps.fold(0.0, f32::max);
    let clean = 0.5 * std::f32::consts::TAU * 440.0 / 48_000.0;
    assert!(
        worst < 3.0 * clean,
        "worst step {worst}, a clean tone's is {clean}"
    );
}

use std::sync::atomic::Ordering::Relaxed;

impl Loop {
    fn speaker_recording(&mut self) -> Vec<f32> {
        self.speaker.take_recording()
    }
}
