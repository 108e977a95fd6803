//! Hot swap: a hundred swaps during a real-time stream lose nothing, mix
//! nothing, and leak nothing.

#[path = "../integration/common.rs"]
#[allow(dead_code)]
mod common;

use common::*;
use sandstream::Streamer;
use sandstream::media::AudioBlock;
use sandstream::sink::Sink;
use sandstream::spec::AudioInputSpec;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Keeps every block written, with its first frame and timestamp.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<AudioBlock>>>);

impl Sink<AudioBlock> for Recorder {
    fn write(&mut self, block: &AudioBlock) -> anyhow::Result<()> {
        self.0.lock().unwrap().push(block.clone());
        Ok(())
    }
    fn finish(self: Box<Self>) -> anyhow::Result<()> {
        Ok(())
    }
    fn describe(&self) -> String {
        "recorder".into()
    }
}

/// The tests here count instances in the whole process: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The gain a block applied to the test tone (0.5 sine at 440 Hz, mono):
/// 0.5 for `gain`, 2.0 for `double`.
fn gain_against_tone(block: &AudioBlock, rate: u64) -> f64 {
    let (mut dot, mut norm) = (0.0, 0.0);
    for (k, sample) in block.samples.iter().enumerate() {
        let input = tone(block.first_frame + k as u64, rate);
        dot += f64::from(*sample) * input;
        norm += input * input;
    }
    dot / norm
}

/// The input tone at frame `n`.
fn tone(n: u64, rate: u64) -> f64 {
    0.5 * (std::f64::consts::TAU * 440.0 * n as f64 / rate as f64).sin()
}

/// These tests check swapping, not deadlines: a generous deadline keeps a
/// busy CI machine (a compile on the other core) from turning an innocent
/// block into a fallback one.
fn relaxed() -> sandstream::guest::SandboxPolicy {
    sandstream::guest::SandboxPolicy {
        deadline: Some(Duration::from_millis(500)),
        ..Default::default()
    }
}

/// Compiles the test guests into the shared cache before any stream runs,
/// so no swap has to wait for Cranelift.
fn warm_cache() {
    let engine = sandstream::guest::new_engine().unwrap();
    let cache = sandstream::guest::CompileCache::new(cache_dir());
    for name in ["gain", "double", "counter"] {
        sandstream::GuestProgram::load(&engine, &guest(name), Some(&cache)).unwrap();
    }
}

/// Waits (bounded) until `done` holds; a state, not a timing assertion.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_hundred_swaps_in_real_time_lose_and_mix_nothing() {
    let _serial = serial();
    warm_cache();
    const RATE: u64 = 48_000;
    const BLOCK: u64 = 480;
    let recorder = Recorder::default();
    let running = Streamer::builder()
        .guest_path(guest("gain"))
        .set("gain", "0.5")
        .cache(sandstream::CacheSetting::Dir(cache_dir()))
        .sandbox(relaxed())
        .audio_input(AudioInputSpec::Tone(440.0))
        .sample_rate(RATE as u32)
        .channels(1)
        .block_frames(BLOCK as u32)
        .duration(Duration::from_secs(4))
        .realtime(true)
        .audio_sink(Box::new(recorder.clone()))
        .build()
        .unwrap()
        .start()
        .unwrap();
    let control = running.control();
    let (gain, double) = (guest("gain"), guest("double"));
    let mut rss_after_warmup = 0;
    for swap in 1..=100u64 {
        control.swap(if swap % 2 == 1 { &double } else { &gain });
        wait_until("the swap", || {
            running.report().swaps + running.report().swap_failures >= swap
        });
        assert!(sandstream::guest::live_instances() <= 2, "instances leak");
        if swap == 10 {
            rss_after_warmup = resident_kib();
        }
    }
    let rss_after_swaps = resident_kib();
    let report = running.wait().unwrap();
    assert_eq!(report.swaps, 100, "{report:?}");
    assert_eq!(report.swap_failures, 0);
    assert_eq!(
        sandstream::guest::live_instances(),
        0,
        "every instance dropped"
    );
    assert_eq!(
        sandstream::guest::live_memories(),
        0,
        "every guest memory unmapped"
    );
    assert!(
        rss_after_swaps < rss_after_warmup + 32 * 1024,
        "memory grew from {rss_after_warmup} KiB to {rss_after_swaps} KiB over 90 swaps"
    );

    // Every input block gave exactly one output block, in order, with
    // continuous timestamps, and each is one guest's result for it.
    let blocks = recorder.0.lock().unwrap();
    assert_eq!(
        report.audio.overruns, 0,
        "no block lost to a late processor"
    );
    assert_eq!(blocks.len() as u64, 4 * RATE / BLOCK);
    let (mut halved, mut doubled) = (0, 0);
    for (i, block) in blocks.iter().enumerate() {
        assert_eq!(
            block.first_frame,
            i as u64 * BLOCK,
            "block {i} out of sequence"
        );
        if i > 0 {
            assert_eq!(
                block.timestamp_ns - blocks[i - 1].timestamp_ns,
                10_000_000,
                "block {i} timestamp"
            );
        }
        let ratio = gain_against_tone(block, RATE);
        if (ratio - 0.5).abs() < 1e-3 {
            halved += 1;
        } else if (ratio - 2.0).abs() < 1e-3 {
            doubled += 1;
        } else {
            panic!("block {i} is neither guest's output alone: ratio {ratio}");
        }
    }
    assert!(
        halved > 0 && doubled > 0,
        "{halved} halved, {doubled} doubled"
    );
}

/// Saves like an editor: write a temporary file, rename it over the target.
fn save(path: &std::path::Path, bytes: &[u8]) {
    let tmp = path.with_extension("swp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// How the output blocks written after `from` relate to the input tone.
fn ratios_since(recorder: &Recorder, from: usize, rate: u64) -> Vec<f64> {
    let blocks = recorder.0.lock().unwrap();
    blocks[from..]
        .iter()
        .map(|block| gain_against_tone(block, rate))
        .collect()
}

#[test]
fn broken_saves_keep_the_running_guest_and_a_fixed_save_swaps_in() {
    let _serial = serial();
    warm_cache();
    const RATE: u64 = 48_000;
    let dir = scratch("watch");
    let live = dir.join("effect.wasm");
    std::fs::copy(guest("gain"), &live).unwrap();
    let recorder = Recorder::default();
    let mut running = Streamer::builder()
        .guest_path(&live)
        .set("gain", "0.5")
        .cache(sandstream::CacheSetting::Dir(cache_dir()))
        .sandbox(relaxed())
        .audio_input(AudioInputSpec::Tone(440.0))
        .sample_rate(RATE as u32)
        .channels(1)
        .block_frames(480)
        .realtime(true)
        .audio_sink(Box::new(recorder.clone()))
        .build()
        .unwrap()
        .start()
        .unwrap();
    running.watch(&live).unwrap();
    let control = running.control();
    let written = || recorder.0.lock().unwrap().len();

    // Each broken save is refused with its reason; gain 0.5 keeps running.
    let mut refused = 0;
    let mut expect_refusal = |action: &dyn Fn(), reason: &str| {
        action();
        refused += 1;
        wait_until("the refusal", || running.report().swap_failures >= refused);
        let why = running.report().last_swap_error.unwrap_or_default();
        assert!(why.contains(reason), "expected `{reason}` in: {why}");
        let mark = written();
        wait_until("more output", || written() >= mark + 3);
        assert!(
            ratios_since(&recorder, mark, RATE)
                .iter()
                .all(|r| (r - 0.5).abs() < 1e-3),
            "old guest still runs"
        );
    };
    expect_refusal(
        &|| std::fs::write(&live, b"half-written garbage").unwrap(),
        "not a WebAssembly file",
    );
    let grayscale = std::fs::read(guest("grayscale")).unwrap();
    expect_refusal(
        &|| save(&live, &grayscale),
        "implements sandstream:av/video-effect",
    );

    let double = std::fs::read(guest("double")).unwrap();
    let mut swaps = 0;
    let mut reconfigure = |value: &str| {
        control.set("double-fault", value);
        swaps += 1;
        wait_until("the reconfiguration", || running.report().swaps >= swaps);
    };
    reconfigure("setup");
    expect_refusal(&|| save(&live, &double), "double refuses to start");
    reconfigure("trap");
    expect_refusal(&|| save(&live, &double), "on a test block");

    // Fixed: the same file now swaps in.
    reconfigure("none");
    let before = running.report().swaps;
    save(&live, &double);
    wait_until("the swap", || running.report().swaps > before);
    let mark = written();
    wait_until("more output", || written() >= mark + 3);
    assert!(
        ratios_since(&recorder, mark + 1, RATE)
            .iter()
            .all(|r| (r - 2.0).abs() < 1e-3),
        "double now runs"
    );

    running.stop();
    let report = running.wait().unwrap();
    assert_eq!(report.swap_failures, 4, "{report:?}");
    assert_eq!(report.audio.overruns, 0);
}

/// Measures file save -> new guest active (cache miss, then hit). Not a
/// pass/fail timing test: run with `--ignored --nocapture` and read the
/// numbers (docs/PERFORMANCE.md).
#[test]
#[ignore]
fn measure_save_to_active() {
    let _serial = serial();
    warm_cache();
    let dir = scratch("swap-latency");
    let live = dir.join("effect.wasm");
    std::fs::copy(guest("gain"), &live).unwrap();
    let mut running = Streamer::builder()
        .guest_path(&live)
        .cache(sandstream::CacheSetting::Dir(dir.join("cache")))
        .audio_input(AudioInputSpec::Silence)
        .block_frames(480)
        .realtime(true)
        .build()
        .unwrap()
        .start()
        .unwrap();
    running.watch(&live).unwrap();
    let double = std::fs::read(guest("double")).unwrap();
    let gain = std::fs::read(guest("gain")).unwrap();
    for (label, bytes) in [
        ("uncached", &double),
        ("cached", &gain),
        ("cached", &double),
    ] {
        let before = running.report().swaps;
        let start = Instant::now();
        save(&live, bytes);
        wait_until("the swap", || running.report().swaps > before);
        eprintln!(
            "save -> active ({label}): {:.1} ms",
            start.elapsed().as_secs_f64() * 1e3
        );
    }
    running.stop();
    running.wait().unwrap();
}

#[test]
fn crossfade_ramps_from_the_old_guest_to_the_new_one() {
    let _serial = serial();
    warm_cache();
    const RATE: u64 = 48_000;
    const FADE_FRAMES: u64 = 960; // 20 ms
    let recorder = Recorder::default();
    let running = Streamer::builder()
        .guest_path(guest("gain"))
        .set("gain", "0.5")
        .cache(sandstream::CacheSetting::Dir(cache_dir()))
        .sandbox(relaxed())
        .audio_input(AudioInputSpec::Tone(440.0))
        .sample_rate(RATE as u32)
        .channels(1)
        .block_frames(480)
        .crossfade(Duration::from_millis(20))
        .realtime(true)
        .audio_sink(Box::new(recorder.clone()))
        .build()
        .unwrap()
        .start()
        .unwrap();
    let written = || recorder.0.lock().unwrap().len();
    wait_until("some output", || written() >= 3);
    running.control().swap(guest("double"));
    wait_until("the swap", || running.report().swaps >= 1);
    let mark = written();
    wait_until("the fade and after", || written() >= mark + 6);
    running.stop();
    running.wait().unwrap();

    let blocks = recorder.0.lock().unwrap();
    let gain_of = |block: &AudioBlock| gain_against_tone(block, RATE);
    let first_new = blocks
        .iter()
        .position(|b| (gain_of(b) - 0.5).abs() > 1e-3)
        .expect("the swap shows");
    assert!(
        blocks[..first_new]
            .iter()
            .all(|b| (gain_of(b) - 0.5).abs() < 1e-3)
    );
    let fade_start = blocks[first_new].first_frame;
    for block in &blocks[first_new..] {
        for (k, sample) in block.samples.iter().enumerate() {
            let n = block.first_frame + k as u64;
            let w = ((n - fade_start) as f64 / FADE_FRAMES as f64).min(1.0);
            let expected = tone(n, RATE) * (0.5 * (1.0 - w) + 2.0 * w);
            assert!(
                (f64::from(*sample) - expected).abs() < 1e-4,
                "frame {n}: {sample} vs {expected}"
            );
        }
    }
    assert!(
        blocks.len() > first_new + 2,
        "blocks after the fade were checked too"
    );
}

#[test]
fn state_is_carried_across_a_swap_and_a_reconfiguration() {
    let _serial = serial();
    warm_cache();
    let dir = scratch("state");
    let copy = dir.join("counter-v2.wasm");
    std::fs::copy(guest("counter"), &copy).unwrap();
    let recorder = Recorder::default();
    let running = Streamer::builder()
        .guest_path(guest("counter"))
        .cache(sandstream::CacheSetting::Dir(cache_dir()))
        .sandbox(relaxed())
        .audio_input(AudioInputSpec::Silence)
        .channels(1)
        .block_frames(480)
        .realtime(true)
        .audio_sink(Box::new(recorder.clone()))
        .build()
        .unwrap()
        .start()
        .unwrap();
    let written = || recorder.0.lock().unwrap().len();
    let control = running.control();
    wait_until("some output", || written() >= 5);
    control.swap(&copy);
    wait_until("the swap", || running.report().swaps >= 1);
    wait_until("more output", || written() >= 15);
    control.set("anything", "1");
    wait_until("the reconfiguration", || running.report().swaps >= 2);
    wait_until("more output", || written() >= 25);
    running.stop();
    let report = running.wait().unwrap();
    assert_eq!(report.swaps, 2);

    // Block n carries the count n: it never restarts at 1.
    let blocks = recorder.0.lock().unwrap();
    for (i, block) in blocks.iter().enumerate() {
        let count = (block.samples[0] * 1000.0).round() as usize;
        assert_eq!(count, i + 1, "block {i}: the count restarted or jumped");
    }
}
