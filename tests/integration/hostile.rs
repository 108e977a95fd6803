//! A guest that misbehaves in every way we know costs at most its own
//! output: the stream runs to its end, the fallback is what the policy
//! says, the counters name the fault, the other stream is untouched, and
//! the exit code is 0 (unless `--on-fault stop`).

use crate::common::*;
use std::process::Command;

const FRAMES: usize = 48_000;
const BLOCK: usize = 512;

struct Run {
    code: Option<i32>,
    log: String,
    input: Vec<f32>,
    output: Vec<f32>,
    video_frames: usize,
}

impl Run {
    /// Per 512-frame block: how the output relates to the input (0.5 =
    /// the guest's gain, 1.0 = bypass, 0.0 = mute).
    fn block_ratios(&self) -> Vec<f64> {
        block_ratios(&self.input, &self.output, BLOCK)
    }

    /// A counter from the report, e.g. `count("timeouts")`.
    fn count(&self, what: &str) -> u64 {
        // Only the end-of-run report lines, not log lines that mention
        // the same words.
        let is_report = |l: &&str| l.starts_with("guest faults:") || l.starts_with("audio safety:");
        let needle = format!(" {what}");
        let line = self
            .log
            .lines()
            .filter(is_report)
            .find(|l| l.contains(&needle))
            .unwrap_or("");
        line.split([':', ',', ';'])
            .find_map(|part| {
                part.trim()
                    .strip_suffix(what)
                    .and_then(|n| n.trim().parse().ok())
            })
            .unwrap_or(0)
    }
}

fn run_hostile(mode: &str, extra: &[&str]) -> Run {
    let input = sine_wav("hostile-input");
    let dir = scratch(&format!("hostile-{mode}"));
    let (wav, y4m) = (dir.join("out.wav"), dir.join("out.y4m"));
    let mut args = vec![
        "run".to_string(),
        s(&guest("hostile")),
        "--audio-in".into(),
        file(&input),
        "--video-in".into(),
        "pattern".into(),
        "--width".into(),
        "32".into(),
        "--height".into(),
        "24".into(),
        "--duration".into(),
        "1".into(),
        "--audio-out".into(),
        file(&wav),
        "--video-out".into(),
        file(&y4m),
        "--set".into(),
        format!("mode={mode}"),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let output = Command::new(env!("CARGO_BIN_EXE_sandstream"))
        .args(&args)
        .env("SANDSTREAM_CACHE_DIR", cache_dir())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let ok = output.status.success();
    Run {
        code: output.status.code(),
        log: stderr(&output),
        input: read_wav(&input),
        output: if ok { read_wav(&wav) } else { Vec::new() },
        video_frames: if ok { Y4m::read(&y4m).frames.len() } else { 0 },
    }
}

/// The stream ran to its end and the other stream was unaffected.
fn assert_completed(run: &Run) {
    assert_eq!(run.code, Some(0), "{}", run.log);
    assert_eq!(run.output.len(), FRAMES * 2, "every sample written");
    assert_eq!(run.video_frames, 30, "video unaffected");
    // A host panic reads "thread '…' panicked at"; guest panics are logged
    // as "guest panicked: …".
    assert!(!run.log.contains("thread '"), "host panic: {}", run.log);
    // Largest resident size of any child this test process has waited for:
    // whatever a guest does, the host stays under this bound.
    let peak_kib = children_peak_rss_kib();
    assert!(
        peak_kib < 768 * 1024,
        "a child peaked at {} MiB",
        peak_kib / 1024
    );
}

/// Every block is the guest's (0.5) or the fallback (`fallback`), and at
/// least one is the fallback.
fn assert_blocks(run: &Run, fallback: f64) {
    let ratios = run.block_ratios();
    assert!(
        ratios
            .iter()
            .all(|r| (r - 0.5).abs() < 1e-3 || (r - fallback).abs() < 1e-3),
        "{ratios:?}"
    );
    assert!(
        ratios.iter().any(|r| (r - fallback).abs() < 1e-3),
        "no fallback block: {ratios:?}"
    );
}

#[test]
fn infinite_loop_is_interrupted_at_the_deadline() {
    let run = run_hostile("loop", &["--deadline", "20"]);
    assert_completed(&run);
    assert_blocks(&run, 1.0);
    assert!(run.count("timeouts") >= 1, "{}", run.log);
}

#[test]
fn loop_only_on_the_nth_call_keeps_the_blocks_before_it() {
    let run = run_hostile("loop", &["--deadline", "20", "--set", "nth=10"]);
    assert_completed(&run);
    let ratios = run.block_ratios();
    assert!(
        ratios[..9].iter().all(|r| (r - 0.5).abs() < 1e-3),
        "first 9 processed: {ratios:?}"
    );
    assert!(
        (ratios[9] - 1.0).abs() < 1e-3,
        "block 10 bypassed: {ratios:?}"
    );
    assert!(run.count("timeouts") >= 1);
}

#[test]
fn memory_bomb_hits_the_cap_and_the_host_stays_bounded() {
    let run = run_hostile("memory-bomb", &["--memory-limit", "64"]);
    assert_completed(&run);
    assert_blocks(&run, 1.0);
    assert!(run.count("memory") >= 1, "{}", run.log);
    // Largest resident size of any child this test process has waited for:
    // a bomb that escaped its 64 MiB cap would show up here in gigabytes.
    let peak_kib = children_peak_rss_kib();
    assert!(
        peak_kib < 768 * 1024,
        "a child peaked at {} MiB",
        peak_kib / 1024
    );
}

/// Peak RSS of the largest waited-for child, from getrusage(RUSAGE_CHILDREN).
fn children_peak_rss_kib() -> i64 {
    // SAFETY: getrusage only writes the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(rc, 0);
    usage.ru_maxrss
}

#[test]
fn deep_recursion_traps_as_stack_overflow() {
    let run = run_hostile("recursion", &[]);
    assert_completed(&run);
    assert_blocks(&run, 1.0);
    assert!(run.count("traps") >= 1, "{}", run.log);
    assert!(run.log.contains("call stack exhausted"), "{}", run.log);
}

#[test]
fn a_trapped_instance_is_replaced_and_processing_resumes() {
    // Real time: blocks arrive every 10.7 ms, longer than the first
    // restart backoff (10 ms), so a fresh instance takes over.
    let run = run_hostile("trap", &["--set", "nth=5", "--realtime"]);
    assert_completed(&run);
    let ratios = run.block_ratios();
    let first_fallback = ratios
        .iter()
        .position(|r| (r - 1.0).abs() < 1e-3)
        .expect("a fallback block");
    assert!(
        ratios[first_fallback..]
            .iter()
            .any(|r| (r - 0.5).abs() < 1e-3),
        "the guest processes blocks again after the fault: {ratios:?}"
    );
    assert!(run.count("restarts") >= 1, "{}", run.log);
}

#[test]
fn trap_on_the_nth_call() {
    let run = run_hostile("trap", &["--set", "nth=5"]);
    assert_completed(&run);
    let ratios = run.block_ratios();
    assert!(
        ratios[..4].iter().all(|r| (r - 0.5).abs() < 1e-3),
        "{ratios:?}"
    );
    assert!((ratios[4] - 1.0).abs() < 1e-3, "{ratios:?}");
    assert!(run.count("traps") >= 1);
}

/// At `-v` a trap comes with the guest's functions that led to it, named
/// from its name section; without it, the one-line warning only.
#[test]
fn a_trap_is_reported_with_its_wasm_backtrace_at_verbose() {
    let path = s(&guest("hostile"));
    let log = |level: &str, flag: &str| {
        let args = [
            "run",
            &path,
            flag,
            "--audio-in",
            "tone:440",
            "--audio-out",
            "null",
            "--duration",
            "0.1",
            "--set",
            "mode=trap",
        ];
        measured_at(level, &args, b"").log
    };
    let verbose = log("debug", "-v");
    let frames: Vec<&str> = verbose
        .lines()
        .skip_while(|line| !line.contains("wasm backtrace:"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .collect();
    assert!(
        frames.first().is_some_and(|f| f.contains(
            "hostile.wasm!<hostile::Hostile as sandstream_guest::Effect>::process_audio"
        )),
        "{verbose}"
    );
    assert!(
        frames
            .iter()
            .any(|f| f.contains("sandstream:av/mapped-audio@0.1.0#process")),
        "{verbose}"
    );
    let plain = log("info", "--no-status");
    assert!(plain.contains("trapped: wasm trap"), "{plain}");
    assert!(!plain.contains("wasm backtrace"), "{plain}");
}

#[test]
fn a_guest_panic_message_reaches_the_log() {
    let run = run_hostile("panic", &["--set", "nth=3"]);
    assert_completed(&run);
    assert!(
        run.log.contains("guest panicked: ")
            && run
                .log
                .contains("hostile guest panicked on purpose at call 3"),
        "{}",
        run.log
    );
    assert!(run.count("traps") >= 1);
}

#[test]
fn repeated_errors_quarantine_the_guest() {
    let run = run_hostile("error", &[]);
    assert_completed(&run);
    assert_eq!(run.count("errors"), 5, "{}", run.log);
    assert!(run.log.contains("quarantined"), "{}", run.log);
    let ratios = run.block_ratios();
    assert!(
        ratios.iter().all(|r| (r - 1.0).abs() < 1e-3),
        "all bypassed: {ratios:?}"
    );
}

#[test]
fn nan_and_inf_are_silenced() {
    let run = run_hostile("nan", &[]);
    assert_completed(&run);
    assert!(run.output.iter().all(|s| s.is_finite()));
    assert_eq!(
        run.count("NaN/Inf samples silenced"),
        (FRAMES * 2 * 3 / 4) as u64,
        "{}",
        run.log
    );
}

#[test]
fn a_deafening_square_wave_is_limited_unless_asked_not_to() {
    let run = run_hostile("square", &[]);
    assert_completed(&run);
    let peak = run.output.iter().fold(0f32, |m, s| m.max(s.abs()));
    assert_eq!(peak, 1.0, "limited to full scale");
    assert!(run.count("samples limited to full scale") > 0);

    let raw = run_hostile("square", &["--no-limiter"]);
    assert_completed(&raw);
    assert_eq!(raw.output.iter().fold(0f32, |m, s| m.max(s.abs())), 10.0);
}

#[test]
fn probes_find_nothing_granted() {
    for (mode, expected) in [
        ("open-file", "probe open-file: denied"),
        ("open-socket", "probe open-socket: denied"),
        ("resolve", "probe resolve: denied"),
        ("env", "probe env: 0 variables, 0 args"),
    ] {
        let run = run_hostile(mode, &[]);
        assert_completed(&run);
        assert!(run.log.contains(expected), "{mode}: {}", run.log);
        assert!(
            run.block_ratios().iter().all(|r| (r - 0.5).abs() < 1e-3),
            "{mode}: processed normally"
        );
    }
}

#[test]
fn megabytes_on_stdout_are_capped() {
    let run = run_hostile("stdout-flood", &[]);
    assert_completed(&run);
    assert!(run.log.contains("the rest is dropped"), "cap announced");
    assert!(
        run.log.len() < 600 * 1024,
        "log is {} KiB",
        run.log.len() / 1024
    );
}

#[test]
fn a_setup_that_never_returns_quarantines_the_guest() {
    let run = run_hostile("setup-hang", &[]);
    assert_completed(&run);
    assert_eq!(run.count("setup"), 1, "{}", run.log);
    assert!(run.log.contains("quarantined"), "{}", run.log);
    assert!(
        run.block_ratios().iter().all(|r| (r - 1.0).abs() < 1e-3),
        "bypassed"
    );
}

#[test]
fn fallback_policies_mute_and_stop() {
    let muted = run_hostile("trap", &["--on-fault", "mute"]);
    assert_completed(&muted);
    assert_blocks(&muted, 0.0);

    let stopped = run_hostile("trap", &["--on-fault", "stop", "--set", "nth=3"]);
    assert_eq!(stopped.code, Some(1), "{}", stopped.log);
    let error = stopped
        .log
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_default();
    assert!(
        error.contains("trapped") && error.contains("process-audio"),
        "{}",
        stopped.log
    );
}

#[test]
fn grants_are_explicit_announced_and_effective() {
    let dir = scratch("grants");
    std::fs::write(dir.join("allowed.txt"), "ok").unwrap();
    let granted = format!("{}:/data", dir.display());
    let output = Command::new(env!("CARGO_BIN_EXE_sandstream"))
        .args([
            "run",
            &s(&guest("chatty")),
            "--audio-in",
            "silence",
            "--duration",
            "0.1",
        ])
        .args([
            "--grant-dir",
            &granted,
            "--grant-env",
            "SANDSTREAM_TEST_GRANT",
        ])
        .env("SANDSTREAM_CACHE_DIR", cache_dir())
        .env("SANDSTREAM_TEST_GRANT", "visible")
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    assert!(
        log.contains(&format!(
            "GRANTED: read-only dir {} as /data, env SANDSTREAM_TEST_GRANT",
            dir.display()
        )),
        "{log}"
    );
    assert!(log.contains("environment variables visible: 1"), "{log}");
    // Only the granted directory: /etc stays out of reach.
    assert!(log.contains("reading /etc/passwd: denied"), "{log}");

    let probe = run_hostile("open-file", &["--grant-dir", "/etc"]);
    assert_completed(&probe);
    assert!(probe.log.contains("probe open-file: READ"), "{}", probe.log);

    let run = sandstream(&[
        "run",
        &s(&guest("gain")),
        "--audio-in",
        "silence",
        "--duration",
        "1",
        "--grant-dir",
        "/no/such/dir",
    ]);
    assert_eq!(run.status.code(), Some(1));
    assert!(
        stderr(&run).contains("--grant-dir /no/such/dir: /no/such/dir is not a directory"),
        "{}",
        stderr(&run)
    );
}
