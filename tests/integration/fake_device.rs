//! Live runs through the scripted fake device: capture callback → read
//! (re-chunked, stamped) → guest → playback ring → playback callback, on
//! real threads against the host clock, with a file sink beside the device.

use crate::common::*;
use sandstream::Streamer;
use sandstream::device::fake::{FakeRig, FakeScript};
use sandstream::device::{CaptureFeed, PlaybackBudget, PlaybackSink};
use sandstream::media::{AudioBlock, AudioFormat};
use sandstream::sink::Sink;
use sandstream::spec::AudioOutputSpec;
use std::time::{Duration, Instant};

const FORMAT: AudioFormat = AudioFormat {
    sample_rate: 48_000,
    channels: 2,
};

/// The fake mic (as scripted) and a steady fake speaker, started, with
/// 512-frame blocks and a 100 ms playback budget.
fn rig(mic: FakeScript) -> (FakeRig, CaptureFeed, PlaybackSink) {
    let speaker = FakeScript::steady(FORMAT);
    FakeRig::start(mic, speaker, 512, PlaybackBudget::new(4800)).unwrap()
}

/// Waits (bounded) until the run has written `frames` frames or ended.
fn wait_for_frames(stats: &sandstream::pipeline::StatsHandle, frames: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while stats.report().audio.units_out < frames && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_live_run_applies_the_gain_and_loses_nothing_between_capture_and_file() {
    let dir = scratch("fake-live");
    let wav = dir.join("out.wav");
    let mut mic = FakeScript::steady(FORMAT);
    mic.callback_frames = vec![480, 100, 1024, 333];
    mic.jitter = Duration::from_millis(3);
    mic.speed = 1.002;
    let (rig, feed, sink) = rig(mic);
    let streamer = Streamer::builder()
        .guest_path(guest("gain"))
        .set("gain", "0.5")
        .block_frames(512)
        .audio_feed(Box::new(feed))
        .audio_sink(Box::new(sink))
        .audio_output(AudioOutputSpec::Wav(wav.clone()))
        .cache(sandstream::CacheSetting::Dir(cache_dir()))
        .build()
        .unwrap();
    assert!(
        streamer.describe().contains("live"),
        "{}",
        streamer.describe()
    );
    let stream = streamer.start().unwrap();
    wait_for_frames(&stream.stats_handle(), 48_000);
    stream.stop();
    let report = stream.wait().unwrap();
    let played = left(&rig.stop());

    // The file: every block the guest returned, gap-free, half the level.
    let written = read_wav(&wav);
    assert_eq!(written.len() as u64 / 2, report.audio.units_out);
    assert_eq!(report.audio.units_out % 512, 0, "whole blocks only");
    let file = left(&written);
    let (hz, peak) = tone_of(&file, 48_000);
    assert!((hz - 440.0).abs() < 0.1, "{hz} Hz");
    assert!((peak - 0.25).abs() < 0.005, "peak {peak}");
    assert_eq!(glitches(&file, hz, 48_000), 0, "capture → file is exact");
    assert_eq!(report.audio.capture_overruns, 0, "{report}");

    // The speaker: the same tone after the drift corrector and the ring
    // (the mic runs 0.2 % fast, so the corrector raises it towards 440.9).
    let start = played
        .iter()
        .position(|s| s.abs() > 0.01)
        .expect("sound played");
    let played = &played[start..];
    let (hz, peak) = tone_of(played, 48_000);
    assert!((hz - 440.0).abs() < 2.0, "{hz} Hz at the speaker");
    assert!((peak - 0.25).abs() < 0.01, "peak {peak} at the speaker");
    // Tolerance: an underrun or a latency drop on a loaded machine is a
    // counted glitch; each may break the tone in a few places.
    let counted = report.audio.playback_underruns + report.audio.latency_drops;
    let found = glitches(played, hz, 48_000) as u64;
    assert!(
        found <= 4 * counted + 4,
        "{found} glitches, {counted} counted; {report}"
    );
}

#[test]
fn an_unplugged_microphone_ends_the_run_naming_it_and_keeps_the_recording() {
    let dir = scratch("fake-unplug");
    let wav = dir.join("out.wav");
    let mut mic = FakeScript::steady(FORMAT);
    mic.disconnect_at = Some(Duration::from_millis(300));
    let (rig, feed, sink) = rig(mic);
    let stream = Streamer::builder()
        .guest_path(guest("gain"))
        .block_frames(512)
        .audio_feed(Box::new(feed))
        .audio_sink(Box::new(sink))
        .audio_output(AudioOutputSpec::Wav(wav.clone()))
        .cache(sandstream::CacheSetting::Dir(cache_dir()))
        .build()
        .unwrap()
        .start()
        .unwrap();
    let error = stream
        .wait()
        .expect_err("a disconnect ends the run with an error");
    rig.stop();
    assert_eq!(
        format!("{error:#}"),
        "fake:mic disconnected: the fake device was unplugged"
    );
    // What was captured before the plug was pulled is kept: 300 ms is 14400
    // frames, 28 whole blocks of 512 (14336).
    let frames = read_wav(&wav).len() / 2;
    assert_eq!(frames, 28 * 512);
}

/// A sink three times slower than the stream (a file on a busy disk).
struct SlowSink {
    written: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Sink<AudioBlock> for SlowSink {
    fn write(&mut self, _block: &AudioBlock) -> anyhow::Result<()> {
        std::thread::sleep(Duration::from_millis(32));
        self.written
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn finish(self: Box<Self>) -> anyhow::Result<()> {
        Ok(())
    }

    fn describe(&self) -> String {
        "slow".into()
    }
}

#[test]
fn a_slow_sink_misses_blocks_instead_of_stalling_the_device_beside_it() {
    let dir = scratch("fake-slow-sink");
    let wav = dir.join("out.wav");
    let (rig, feed, sink) = rig(FakeScript::steady(FORMAT));
    let written = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stream = Streamer::builder()
        .guest_path(guest("gain"))
        .block_frames(512)
        .audio_feed(Box::new(feed))
        .audio_sink(Box::new(SlowSink {
            written: written.clone(),
        }))
        .audio_sink(Box::new(sink))
        .audio_output(AudioOutputSpec::Wav(wav.clone()))
        .cache(sandstream::CacheSetting::Dir(cache_dir()))
        .build()
        .unwrap()
        .start()
        .unwrap();
    wait_for_frames(&stream.stats_handle(), 96_000);
    stream.stop();
    let report = stream.wait().unwrap();
    rig.stop();
    let blocks = report.audio.items_out;
    let slow = written.load(std::sync::atomic::Ordering::Relaxed);
    // The slow sink got what it could (about a third) and the rest is
    // counted; the file and the device beside it got every block.
    assert!(slow < blocks * 2 / 3, "slow sink wrote {slow} of {blocks}");
    assert_eq!(report.audio.output_drops, blocks - slow, "{report}");
    assert_eq!(read_wav(&wav).len() as u64 / 2, report.audio.units_out);
    assert_eq!(
        report.audio.overruns, 0,
        "capture was never held up: {report}"
    );
    // Tolerance for a loaded machine: the device may glitch, not stall.
    assert!(report.audio.playback_underruns <= 2, "{report}");
}
