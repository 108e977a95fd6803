//! `cargo xtask live-bench [SECONDS] [SIZES]`: glitches per minute and
//! capture → output latency of a live run through a real (private)
//! PulseAudio, for 128, 256 and 512-frame device buffers (or SIZES) at
//! 48 kHz — the figures in
//! docs/PERFORMANCE.md. Per size: a 1 kHz tone is played into a
//! "microphone" null sink, sandstream runs `gain` from its monitor into a
//! virtual-microphone null sink, and `parec` records that sink's monitor
//! as an app would; glitches are counted in the recording with the sine
//! recurrence x[n] = 2cos(w)x[n-1] - x[n-2] (a residual above 0.01 marks
//! a discontinuity), latency comes from sandstream's report.

use crate::sound::SoundServer;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

pub fn live_bench(
    target: &Path,
    binary: &Path,
    guest: &Path,
    (seconds, sizes): (u32, &[u32]),
) -> Result<(), String> {
    let server = SoundServer::start(target)?;
    let env = server.environment();
    let pactl = |args: &[&str]| -> Result<String, String> {
        let out = Command::new("pactl")
            .args(args)
            .envs(env.clone())
            .output()
            .map_err(|e| format!("pactl: {e}"))?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let dir = target.join("live-bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let tone = dir.join("tone.wav");
    let status = Command::new("sox")
        .args([
            "-n",
            "-r",
            "48000",
            "-c",
            "2",
            "-b",
            "32",
            "-e",
            "floating-point",
        ])
        .arg(&tone)
        .args([
            "synth",
            &(seconds + 10).to_string(),
            "sine",
            "1000",
            "vol",
            "0.5",
        ])
        .status()
        .map_err(|e| format!("sox: {e}"))?;
    if !status.success() {
        return Err("sox failed".into());
    }
    println!(
        "| device buffer | glitches/min (recording) | xruns (report) | latency drops (report) | latency median | p99 |"
    );
    println!("|---|---|---|---|---|---|");
    for &frames in sizes {
        let sink = |name: &str| {
            pactl(&[
                "load-module",
                "module-null-sink",
                &format!("sink_name={name}"),
                "rate=48000",
                "channels=2",
                "format=float32le",
            ])
        };
        let feed = sink("bench_feed")?;
        let out = sink("bench_out")?;
        let raw = dir.join(format!("recorded-{frames}.raw"));
        let spawn = |program: &str, args: &[String], stdout: Stdio| {
            Command::new(program)
                .args(args)
                .envs(env.clone())
                .stdout(stdout)
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("{program}: {e}"))
        };
        let file = std::fs::File::create(&raw).map_err(|e| e.to_string())?;
        let mut recorder = spawn(
            "parec",
            &[
                "--device=bench_out.monitor".into(),
                "--latency-msec=20".into(),
                "--format=float32le".into(),
                "--channels=1".into(),
                "--rate=48000".into(),
            ],
            Stdio::from(file),
        )?;
        let mut player = spawn(
            "paplay",
            &[
                "--device=bench_feed".into(),
                "--latency-msec=100".into(),
                tone.display().to_string(),
            ],
            Stdio::null(),
        )?;
        std::thread::sleep(Duration::from_millis(2500));
        let run = Command::new(binary)
            .arg("run")
            .arg(guest)
            .args(["--set", "gain=0.5", "--duration", &seconds.to_string()])
            .args([
                "--block",
                &frames.to_string(),
                "--device-buffer",
                &frames.to_string(),
            ])
            .args([
                "--audio-in",
                "device:bench_feed.monitor",
                "--audio-out",
                "device:bench_out",
            ])
            .envs(env.clone())
            .env("RUST_LOG", "warn")
            .output()
            .map_err(|e| format!("sandstream: {e}"))?;
        std::thread::sleep(Duration::from_millis(300));
        let _ = recorder.kill();
        let _ = player.kill();
        let _ = recorder.wait();
        let _ = player.wait();
        let _ = pactl(&["unload-module", &out]);
        let _ = pactl(&["unload-module", &feed]);
        let report = String::from_utf8_lossy(&run.stderr).into_owned();
        if !run.status.success() {
            return Err(format!("the {frames}-frame run failed:\n{report}"));
        }
        let samples = read_f32(&raw)?;
        let glitches = glitches_in_tone(&samples, 1000.0);
        let per_minute = glitches as f64 * 60.0 / f64::from(seconds);
        let xruns = number_after(&report, "capture overruns").unwrap_or(0.0)
            + number_after(&report, "playback underruns").unwrap_or(0.0);
        let played = report
            .lines()
            .find(|l| l.contains("capture to device output"))
            .unwrap_or_default();
        let median = number_after(played, "median").unwrap_or(f64::NAN);
        let p99 = number_after(played, "p99").unwrap_or(f64::NAN);
        let drops = number_after(&report, "underruns,").unwrap_or(f64::NAN);
        println!(
            "| {frames} ({:.1} ms) | {per_minute:.1} | {xruns} | {drops} | {median:.1} ms | {p99:.1} ms |",
            f64::from(frames) / 48.0
        );
        if std::env::var_os("LIVE_BENCH_REPORT").is_some() {
            eprintln!("{report}");
        }
    }
    drop(server);
    Ok(())
}

fn read_f32(path: &Path) -> Result<Vec<f32>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// Discontinuities in the stretch of a tone that sounds (above 0.05).
fn glitches_in_tone(mono: &[f32], hz: f64) -> usize {
    let first = mono.iter().position(|s| s.abs() > 0.05).unwrap_or(0);
    let last = mono.iter().rposition(|s| s.abs() > 0.05).unwrap_or(0);
    let sounding = &mono[first..=last.max(first)];
    let k = 2.0 * (std::f64::consts::TAU * hz / 48_000.0).cos();
    let mut count = 0;
    let mut in_glitch = false;
    for w in sounding.windows(3) {
        let residual = (f64::from(w[2]) - (k * f64::from(w[1]) - f64::from(w[0]))).abs();
        // One glitch may break several samples in a row: count it once.
        if residual > 0.01 && !in_glitch {
            count += 1;
        }
        in_glitch = residual > 0.01;
    }
    count
}

fn number_after(text: &str, label: &str) -> Option<f64> {
    let at = text.find(label)? + label.len();
    text[at..]
        .trim_start()
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()?
        .parse()
        .ok()
}
