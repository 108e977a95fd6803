//! Live audio against a real sound server: the private PulseAudio that
//! `cargo xtask test` starts (SANDSTREAM_LIVE_AUDIO=1 says it is there;
//! without it these tests say so and pass without running). Each test
//! makes its own null sinks, so tests run side by side.
//!
//! The chain under test is the product's: a tone played into a
//! "microphone" sink, captured by sandstream through cpal from its
//! monitor, processed by `gain`, written to a "virtual microphone" sink and
//! recorded from that sink's monitor by `parecord`, as an app would.
//! Tolerances are stated per assertion: these VMs glitch under load.
//!
//! Its own test binary, so it never runs beside the CPU-heavy integration
//! tests, and its tests take turns (`one_at_a_time`): a live test measures
//! the machine as much as the code.

#[path = "../integration/common.rs"]
#[allow(dead_code)]
mod common;
mod languages;
mod video;

use common::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Held for the whole of a live test: they take turns.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// True when the tests should run; panics if they should but cannot.
fn live() -> bool {
    if std::env::var_os("SANDSTREAM_LIVE_AUDIO").is_none() {
        eprintln!("live audio tests skipped: run them with `cargo xtask test`");
        return false;
    }
    let ok = Command::new("pactl")
        .arg("info")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "SANDSTREAM_LIVE_AUDIO is set but no sound server answers"
    );
    true
}

/// A null sink of our own, removed when dropped.
struct NullSink {
    name: String,
    module: String,
}

impl NullSink {
    fn new(role: &str, description: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{role}_{}_{n}", std::process::id());
        let module = tool(
            "pactl",
            &[
                "load-module",
                "module-null-sink",
                &format!("sink_name={name}"),
                &format!("sink_properties=device.description={description}{n}"),
                "rate=48000",
                "channels=2",
                "format=float32le",
            ],
        );
        Self {
            name,
            module: module.trim().to_string(),
        }
    }

    fn monitor(&self) -> String {
        format!("{}.monitor", self.name)
    }

    fn unplug(&mut self) {
        if !self.module.is_empty() {
            tool("pactl", &["unload-module", &self.module]);
            self.module.clear();
        }
    }
}

impl Drop for NullSink {
    fn drop(&mut self) {
        if !self.module.is_empty() {
            let _ = Command::new("pactl")
                .args(["unload-module", &self.module])
                .status();
        }
    }
}

/// A virtual microphone made by `sandstream virtual-mic --keep`, removed
/// (by the same command) when dropped.
struct VirtualMic {
    name: String,
}

impl VirtualMic {
    fn new() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("vmic_{}_{n}", std::process::id());
        let out = sandstream(&["virtual-mic", "--keep", "--name", &name]);
        assert!(out.status.success(), "{}", stderr(&out));
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            said.contains(&format!("--audio-out device:{name}")),
            "{said}"
        );
        Self { name }
    }

    /// The source apps list as a microphone.
    fn microphone(&self) -> String {
        format!("{}_mic", self.name)
    }
}

impl Drop for VirtualMic {
    fn drop(&mut self) {
        let _ = sandstream(&["virtual-mic", "--remove", "--name", &self.name]);
    }
}

/// A background client (player or recorder), killed when dropped.
struct Client(Child);

impl Client {
    fn spawn(program: &str, args: &[&str]) -> Self {
        Self(
            Command::new(program)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{program}: {e}")),
        )
    }

    /// Plays `wav` into `sink` at a relaxed latency (a test helper must
    /// not glitch itself).
    fn play(wav: &Path, sink: &str) -> Self {
        Self::spawn(
            "paplay",
            &[&format!("--device={sink}"), "--latency-msec=100", &s(wav)],
        )
    }

    /// Records `source` to a float WAV as an app reading the virtual
    /// microphone would, at low latency: a null sink renders in blocks of
    /// up to 2 s until some client asks for low latency.
    fn record(source: &str, wav: &Path) -> Self {
        Self::spawn(
            "parecord",
            &[
                &format!("--device={source}"),
                "--latency-msec=20",
                "--file-format=wav",
                "--format=float32le",
                "--rate=48000",
                "--channels=2",
                &s(wav),
            ],
        )
    }

    /// Stops it gracefully, so a recording's header is completed.
    fn stop(mut self) {
        // SAFETY: signalling our own child by its PID.
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGINT);
        }
        let _ = self.0.wait();
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The stretch of `mono` between its first and last sample above 0.05.
fn sounding(mono: &[f32]) -> &[f32] {
    let first = mono.iter().position(|s| s.abs() > 0.05).unwrap_or(0);
    let last = mono.iter().rposition(|s| s.abs() > 0.05).unwrap_or(0);
    &mono[first..=last.max(first)]
}

#[test]
fn a_tone_goes_from_the_microphone_through_gain_to_the_virtual_microphone() {
    if !live() {
        return;
    }
    let _turn = one_at_a_time();
    let dir = scratch("live-gain");
    let mic = NullSink::new("mic_feed", "MicFeed");
    let virtual_mic = VirtualMic::new();
    let recording = dir.join("recorded.wav");
    let processed = dir.join("processed.wav");
    let tone = sine_wav_in(&dir, 1000, 30);
    // Recorded from the microphone apps see, not the sink's monitor.
    let recorder = Client::record(&virtual_mic.microphone(), &recording);
    let player = Client::play(&tone, &mic.name);
    // Both null sinks start rendering in small blocks once low-latency
    // clients are on them (~2.5 s, FIELD-NOTES).
    std::thread::sleep(Duration::from_millis(2500));
    let n = mic.name.rsplit('_').next().unwrap();
    let ran = measured_at(
        "info",
        &[
            "run",
            &s(&guest("gain")),
            "--set",
            "gain=0.5",
            // By description, as a user reads it in `sandstream devices`.
            "--audio-in",
            &format!("device:monitor of micfeed{n}"),
            "--audio-out",
            &format!("device:{}", virtual_mic.name),
            "--audio-out",
            &format!("file:{}", s(&processed)),
            "--duration",
            "4",
            "--block",
            "512",
            "--device-buffer",
            "512",
        ],
        b"",
    );
    std::thread::sleep(Duration::from_millis(300));
    recorder.stop();
    drop(player);
    assert_eq!(ran.code, Some(0), "{}", ran.log);
    eprintln!("{}", ran.log);
    let log = &ran.log;

    // What the guest produced: every frame captured, the gain applied, no
    // discontinuity. Tolerance: each counted capture overrun may break the
    // tone in a few places, and one uncounted server hiccup is allowed.
    let written = left(&read_wav(&processed));
    assert_eq!(
        written.len(),
        375 * 512,
        "4 s in whole 512-frame blocks\n{log}"
    );
    let (hz, peak) = tone_of(&written, 48_000);
    assert!((hz - 1000.0).abs() < 0.5, "{hz} Hz captured\n{log}");
    assert!(
        (peak - 0.25).abs() < 0.005,
        "peak {peak} after gain 0.5\n{log}"
    );
    let overruns = number_after(log, "capture overruns (").unwrap_or(0.0);
    let captured_glitches = glitches(&written, 1000.0, 48_000) as f64;
    assert!(
        captured_glitches <= 4.0 * overruns + 1.0,
        "{captured_glitches} glitches in capture\n{log}"
    );

    // What an app recording the virtual microphone got.
    let recorded = left(&read_wav(&recording));
    let heard = sounding(&recorded);
    let (hz, peak) = tone_of(heard, 48_000);
    assert!(
        (hz - 1000.0).abs() < 2.0,
        "{hz} Hz at the virtual microphone"
    );
    assert!(
        (peak - 0.25).abs() < 0.01,
        "peak {peak} at the virtual microphone"
    );
    // Samples neither lost nor duplicated beyond what the report counts:
    // the tone lasts as long as what the guest produced, within the
    // frames dropped for latency and 50 ms (start/stop edges, drift
    // correction).
    let dropped = number_after(&ran.log, "latency drops (").unwrap_or(0.0);
    let missing = (heard.len() as f64 - written.len() as f64).abs();
    assert!(
        missing <= dropped + 2400.0,
        "heard {} frames, produced {}, dropped {dropped}\n{log}",
        heard.len(),
        written.len()
    );
    // Glitches: each counted underrun or latency drop may break the tone
    // in a few places; allow 3 uncounted ones for the recorder's own.
    let underruns = number_after(log, "playback underruns").unwrap_or(0.0);
    let found = glitches(heard, hz, 48_000) as f64;
    assert!(
        found <= 4.0 * (underruns + overruns) + 3.0,
        "{found} glitches at the virtual microphone\n{log}"
    );
    let median = number_after(&ran.log, "capture to device output: median")
        .expect("the report states the latency");
    eprintln!("capture -> virtual microphone latency: median {median} ms (512-frame buffers)");
    assert!(median > 0.0 && median < 500.0, "{median} ms\n{log}");
}

#[test]
fn virtual_mic_creates_a_listed_microphone_and_removes_it() {
    if !live() {
        return;
    }
    let _turn = one_at_a_time();
    let name = format!("vmlife_{}", std::process::id());
    let sources = || tool("pactl", &["list", "short", "sources"]);
    let made = sandstream(&["virtual-mic", "--keep", "--name", &name]);
    assert!(made.status.success(), "{}", stderr(&made));
    let listed = sandstream(&["devices"]);
    let text = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        text.contains(&format!("{name}_mic  \"Sandstream Microphone\"")),
        "{text}"
    );
    let again = sandstream(&["virtual-mic", "--keep", "--name", &name]);
    assert!(
        stderr(&again).contains("exists already"),
        "{}",
        stderr(&again)
    );
    let removed = sandstream(&["virtual-mic", "--remove", "--name", &name]);
    assert!(removed.status.success(), "{}", stderr(&removed));
    assert!(!sources().contains(&name), "{}", sources());
    let bad = sandstream(&["virtual-mic", "--name", "a b"]);
    assert!(
        stderr(&bad).contains("--name may use letters"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn devices_lists_sinks_and_monitors_with_formats_and_the_host() {
    if !live() {
        return;
    }
    let _turn = one_at_a_time();
    let sink = NullSink::new("listed", "ListedSink");
    let out = sandstream(&["devices"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.starts_with("audio host: PulseAudio"), "{text}");
    let inputs = &text[text.find("audio inputs:").unwrap()..text.find("audio outputs:").unwrap()];
    let outputs = &text[text.find("audio outputs:").unwrap()..];
    let n = sink.name.rsplit('_').next().unwrap();
    assert!(
        inputs.contains(&format!("{}  \"Monitor of ListedSink{n}\"", sink.monitor())),
        "{inputs}"
    );
    assert!(
        outputs.contains(&format!("{}  \"ListedSink{n}\"", sink.name)),
        "{outputs}"
    );
    assert!(inputs.contains("f32"), "formats are listed: {inputs}");
}

#[test]
fn an_unknown_device_fails_listing_the_devices_that_exist() {
    if !live() {
        return;
    }
    let _turn = one_at_a_time();
    let sink = NullSink::new("existing", "ExistingSink");
    let ran = measured(
        &[
            "run",
            &s(&guest("gain")),
            "--audio-in",
            "device:no such microphone",
        ],
        b"",
    );
    assert_eq!(ran.code, Some(1));
    assert!(
        ran.log.contains(
            "no audio input matches `no such microphone` on PulseAudio; audio inputs there:"
        ),
        "{}",
        ran.log
    );
    assert!(ran.log.contains(&sink.monitor()), "{}", ran.log);
}

#[test]
fn a_format_the_device_cannot_do_fails_saying_what_it_can() {
    if !live() {
        return;
    }
    let _turn = one_at_a_time();
    let sink = NullSink::new("narrow", "NarrowSink");
    let ran = measured(
        &[
            "run",
            &s(&guest("gain")),
            "--audio-in",
            &format!("device:{}", sink.monitor()),
            "--channels",
            "40",
        ],
        b"",
    );
    assert_eq!(ran.code, Some(1));
    assert!(
        ran.log.contains(&format!(
            "device:{} cannot do f32 48000 Hz, 40 ch with a 512-frame buffer; it supports:",
            sink.monitor()
        )) && ran.log.contains("1-31 channels"),
        "{}",
        ran.log
    );
}

#[test]
fn a_virtual_microphone_removed_mid_run_stops_the_run_and_keeps_the_file() {
    if !live() {
        return;
    }
    let _turn = one_at_a_time();
    let dir = scratch("live-unplug");
    let mic = NullSink::new("unplug_feed", "UnplugFeed");
    let mut virtual_mic = NullSink::new("unplug_out", "UnplugOut");
    let processed = dir.join("processed.wav");
    let tone = sine_wav_in(&dir, 440, 10);
    let _player = Client::play(&tone, &mic.name);
    let _listener = Client::record(&virtual_mic.monitor(), &dir.join("listener.wav"));
    std::thread::sleep(Duration::from_millis(2500));
    let child = Command::new(env!("CARGO_BIN_EXE_sandstream"))
        .args(["--quiet", "run", &s(&guest("gain"))])
        .args(["--audio-in", &format!("device:{}", mic.monitor())])
        .args(["--audio-out", &format!("device:{}", virtual_mic.name)])
        .args(["--audio-out", &format!("file:{}", s(&processed))])
        .env("SANDSTREAM_CACHE_DIR", cache_dir())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Unplug once the run has written audio (bounded wait).
    let partial = dir.join("processed.wav.partial");
    for _ in 0..200 {
        if std::fs::metadata(&partial).is_ok_and(|m| m.len() > 96_000) {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    virtual_mic.unplug();
    let output = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!(
            "error: device:{} disconnected: it is no longer listed by the sound system",
            virtual_mic.name
        )),
        "{log}"
    );
    // The file beside it was finished, not thrown away.
    let kept = read_wav(&processed);
    assert!(kept.len() / 2 >= 12_000, "{} frames kept", kept.len() / 2);
    assert!(!partial.exists());
}

#[test]
fn a_missing_sound_server_is_a_clear_error_naming_what_to_start() {
    if !live() {
        return;
    }
    let _turn = one_at_a_time();
    let out = Command::new(env!("CARGO_BIN_EXE_sandstream"))
        .args(["--quiet", "devices", "--audio-host", "pulseaudio"])
        .env("PULSE_SERVER", "unix:/nonexistent/pulse/native")
        .env("XDG_RUNTIME_DIR", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("PulseAudio is not available") && err.contains("pulseaudio --start"),
        "{err}"
    );
}

#[test]
fn the_click_method_measures_the_latency_within_the_budget_and_the_host_agrees() {
    if !live() {
        return;
    }
    let _turn = one_at_a_time();
    let dir = scratch("live-latency");
    let json = dir.join("stats.json");
    // `sandstream latency` makes its own null sink, plays clicks through
    // `passthrough` into it and records its monitor.
    let out = sandstream(&[
        "latency",
        &s(&guest("passthrough")),
        "--buffers",
        "512",
        "--clicks",
        "15",
        "--stats-json",
        &s(&json),
    ]);
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let log = format!("{printed}{}", stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{log}");
    eprintln!("{printed}");
    let clicks = number_after(&printed, "(10.7 ms):").expect("a click count");
    let median = number_after(&printed, "capture -> output median").unwrap();
    let p99 = number_after(&printed, "p99").unwrap();
    let own = number_after(&printed, "the host's own account: median").unwrap();
    let budget = number_after(&printed, "budget").unwrap();
    assert!(clicks >= 10.0, "{log}");
    // Within the budget (the default: a block, two device buffers and a
    // 64 ms playback ring: 96 ms at 512 frames).
    assert_eq!(budget, 96.0, "{log}");
    assert!(median > 0.0 && p99 <= budget, "{log}");
    // The host's own account of the same clicks, and the JSON stats of
    // the run's last second, agree with what was heard within one block.
    let block_ms = 512.0 / 48.0;
    assert!((own - median).abs() <= block_ms, "{log}");
    let lines = std::fs::read_to_string(&json).unwrap();
    let last = lines.lines().last().expect("JSON stats were written");
    let played = number_after(last, "\"played\":{\"median\":").expect(last);
    assert!((played - median).abs() <= block_ms, "{last}\n{log}");
}
