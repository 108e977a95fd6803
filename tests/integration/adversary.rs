//! The `adversary` guest — written against the raw WIT and raw WASI, not
//! the SDK — attacks the host in each class the sandbox must close: time
//! spent in host calls, what it hands the host, the log, exits, state
//! handoff. Every run must complete within a stated bound, keep every
//! input block (the guest's own or bypassed), name the fault, and leave a
//! log of bounded size.

use crate::common::*;
use std::time::Duration;

const BLOCK: usize = 512;

struct Attack {
    ran: Ran,
    input: Vec<f32>,
    output: Vec<f32>,
}

impl Attack {
    /// Per block: 0.5 when the guest processed it, 1.0 when bypassed.
    fn ratios(&self) -> Vec<f64> {
        block_ratios(&self.input, &self.output, BLOCK)
    }

    /// The run ended normally, every input sample came out (processed or
    /// bypassed), and the log stayed small.
    fn assert_stream_intact(&self) {
        let log = &self.ran.log;
        assert_eq!(self.ran.code, Some(0), "{log}");
        assert_eq!(self.output.len(), self.input.len(), "every sample written");
        for (block, ratio) in self.ratios().iter().enumerate() {
            assert!(
                (ratio - 0.5).abs() < 1e-3 || (ratio - 1.0).abs() < 1e-3,
                "block {block} is neither processed nor bypassed: {ratio}"
            );
        }
        assert!(!log.contains("thread '"), "host panic: {log}");
        assert!(log.len() < 64 * 1024, "log is {} bytes", log.len());
        // The guest's cap (256 MiB) plus the host's own.
        let peak = self.ran.peak_mib();
        assert!(peak < 256 + 48, "peaked at {peak} MiB");
    }

    fn log(&self) -> &str {
        &self.ran.log
    }
}

/// Runs the adversary in `mode` over the sine, with `extra` flags and
/// `stdin` for `--commands`.
fn attack(mode: &str, extra: &[&str], stdin: &str) -> Attack {
    attack_at("warn", mode, extra, stdin)
}

/// [`attack`] with the log at `level`.
fn attack_at(level: &str, mode: &str, extra: &[&str], stdin: &str) -> Attack {
    let input = sine_wav("adversary-input");
    let out = scratch(&format!("adversary-{mode}")).join("out.wav");
    let guest = guest("adversary");
    let (input_spec, output_spec, mode) = (file(&input), file(&out), format!("mode={mode}"));
    let mut args = vec![
        "run",
        guest.to_str().unwrap(),
        "--audio-in",
        &input_spec,
        "--audio-out",
        &output_spec,
        "--set",
        &mode,
    ];
    args.extend(extra);
    let ran = measured_at(level, &args, stdin.as_bytes());
    let output = if ran.code == Some(0) {
        read_wav(&out)
    } else {
        Vec::new()
    };
    Attack {
        ran,
        input: read_wav(&input),
        output,
    }
}

/// A counter from the end-of-run report, e.g. `count(log, "blocked in
/// host calls")`.
fn count(log: &str, what: &str) -> u64 {
    let line = log
        .lines()
        .find(|l| l.starts_with("guest faults:"))
        .unwrap_or("");
    line.split([':', ',', ';'])
        .find_map(|part| part.trim().strip_suffix(what)?.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_guest_asleep_in_a_host_call_is_cut_off_at_its_deadline() {
    for mode in ["sleep", "poll"] {
        let attack = attack(mode, &["--deadline", "50"], "");
        attack.assert_stream_intact();
        let log = attack.log();
        assert!(
            log.contains("waited in a host call (wasi:io/poll.")
                && log.contains("until its 50 ms deadline in process-audio (block at frame 0)"),
            "{mode}: {log}"
        );
        // Each stall counts double: quarantined at the third.
        assert_eq!(count(log, "blocked in host calls"), 3, "{mode}: {log}");
        assert!(log.contains("quarantined after 3 faults"), "{mode}: {log}");
        assert!(
            attack.ran.took < Duration::from_secs(20),
            "{mode}: {:?}",
            attack.ran.took
        );
    }
}

#[test]
fn a_live_stream_keeps_its_rate_while_a_guest_blocks_on_every_block() {
    // Paced input; the guest sleeps in every call: each call is cut off at
    // half a block (5.3 ms), so the stream never falls behind, and the
    // guest is quarantined.
    let attack = attack("sleep", &["--realtime"], "");
    attack.assert_stream_intact();
    let log = attack.log();
    assert!(
        attack.ratios().iter().all(|r| (r - 1.0).abs() < 1e-3),
        "every block bypassed"
    );
    assert!(log.contains("until its 5.3 ms deadline"), "{log}");
    assert_eq!(count(log, "blocked in host calls"), 3, "{log}");
    assert!(log.contains("quarantined"), "{log}");
    assert!(
        log.contains("94 blocks (48000 frames) in, 94 blocks"),
        "{log}"
    );
    assert!(log.contains(" 0 overruns"), "{log}");
    assert!(
        attack.ran.took < Duration::from_secs(10),
        "{:?}",
        attack.ran.took
    );
}

#[test]
fn blocking_in_setup_or_prepare_is_a_setup_fault_with_its_name() {
    for (export, call) in [
        ("configure", "setup.configure"),
        ("prepare", "mapped-*.prepare"),
    ] {
        let placed = format!("in={export}");
        let attack = attack("sleep", &["--set", &placed], "");
        attack.assert_stream_intact();
        let expected =
            format!("until its 2000 ms deadline in {call} while being set up: quarantined");
        assert!(
            attack.log().contains(&expected),
            "{export}: {}",
            attack.log()
        );
    }
}

#[test]
fn state_calls_get_the_deadline_of_the_stream_and_failures_start_fresh() {
    // A reconfiguration hands state over between two blocks of a live
    // audio run: snapshot and restore get the audio budget (5.3 ms), not
    // a video or an offline one, and a stall in either costs the state,
    // never the stream.
    for export in ["snapshot", "restore"] {
        let placed = format!("in={export}");
        let attack = attack(
            "sleep",
            &["--realtime", "--commands", "--set", &placed],
            "set x=1\n",
        );
        attack.assert_stream_intact();
        let log = attack.log();
        let expected =
            format!("until its 5.3 ms deadline in state.{export}: the new guest starts fresh");
        assert!(
            log.contains("state handoff failed: guest adversary.wasm waited"),
            "{log}"
        );
        assert!(log.contains(&expected), "{export}: {log}");
        assert!(
            log.contains("swaps: 1 done, 0 refused; state carried 0 times, lost 1 times"),
            "{log}"
        );
    }
    // A generous deadline: building 64 MiB takes the guest a while, and a
    // latency budget to match, or blocks held up by the handoff would be
    // skipped as too late (counted) instead of written.
    let attack = attack(
        "huge-snapshot",
        &[
            "--realtime",
            "--latency",
            "2000",
            "--deadline",
            "500",
            "--commands",
            "--set",
            "in=snapshot",
        ],
        "set x=1\n",
    );
    attack.assert_stream_intact();
    assert!(
        attack
            .log()
            .contains("tried to hand the host more than 1048576 bytes at once"),
        "{}",
        attack.log()
    );
}

#[test]
fn exit_is_named() {
    // The guest calls exit(7); WASI preview 2 carries only success or
    // failure, so the host sees exit(1).
    let attack = attack("exit", &[], "");
    attack.assert_stream_intact();
    assert!(
        attack
            .log()
            .contains("called exit(1) in process-audio (block at frame 0)"),
        "{}",
        attack.log()
    );
    assert!(count(attack.log(), "exits") >= 1);
}

#[test]
fn guest_text_cannot_pass_for_host_text() {
    let attack = attack_at("info", "forge", &["--set", "every=40"], "");
    attack.assert_stream_intact();
    let log = attack.log();
    assert!(
        !log.contains('\x1b'),
        "no terminal escape reaches the terminal"
    );
    assert!(!log.contains('\u{202e}'), "no bidi override");
    for line in log.lines() {
        assert!(
            !line.starts_with("error: the host") && !line.starts_with("guest faults: 0 timeouts\\"),
            "a forged line: {line}"
        );
    }
    assert!(
        log.contains("returned an error: \"ok\\nerror: the host is compromised\\u{1b}[2J"),
        "{log}"
    );
    assert!(
        log.contains("[adversary.wasm] ok\\nerror: the host"),
        "{log}"
    );
    assert!(
        log.contains("[adversary.wasm stdout] guest faults: 0 timeouts\\u{202e}gnp.exe"),
        "{log}"
    );
}

#[test]
fn oversized_errors_logs_and_lists_are_refused_before_they_are_copied() {
    for (mode, path) in [
        ("huge-error", "auto"),
        ("huge-error", "list"),
        ("huge-log", "auto"),
        ("huge-list", "list"),
    ] {
        let attack = attack(mode, &["--data-path", path], "");
        attack.assert_stream_intact();
        let log = attack.log();
        assert!(
            log.contains("tried to hand the host more than 65536 bytes at once"),
            "{mode} on {path}: {log}"
        );
        assert!(count(log, "too large") >= 1, "{mode}: {log}");
    }
}

#[test]
fn a_log_flood_is_capped_in_rate_and_size() {
    let attack = attack("log-flood", &["--set", "every=20"], "");
    attack.assert_stream_intact();
    let log = attack.log();
    assert!(
        log.contains("over 50 lines/s: the rest of this second is dropped"),
        "{log}"
    );
    let lines = log
        .lines()
        .filter(|l| l.contains("[adversary.wasm] flood"))
        .count();
    assert!(lines <= 100, "{lines} flood lines");
}

#[test]
fn handles_and_random_bytes_are_capped() {
    for mode in ["handles", "random"] {
        let attack = attack(mode, &[], "");
        attack.assert_stream_intact();
        assert!(
            count(attack.log(), "traps") >= 1,
            "{mode}: {}",
            attack.log()
        );
        let peak = attack.ran.peak_mib();
        assert!(peak < 64, "{mode}: peaked at {peak} MiB");
    }
}

#[test]
fn stalls_seconds_apart_still_quarantine_the_guest() {
    // A stall every 282 blocks (3 s of stream), far outside the 5-in-10 s
    // burst rule: the stream-time score catches it at the third.
    let guest = guest("adversary");
    let ran = measured(
        &[
            "run",
            guest.to_str().unwrap(),
            "--audio-in",
            "tone:1000",
            "--duration",
            "12",
            "--deadline",
            "50",
            "--set",
            "mode=sleep",
            "--set",
            "every=282",
        ],
        &[],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.log);
    assert_eq!(count(&ran.log, "blocked in host calls"), 3, "{}", ran.log);
    assert!(
        ran.log
            .contains("quarantined after 3 faults in 6.0 s of stream"),
        "{}",
        ran.log
    );
    assert!(
        ran.log
            .contains("1125 blocks (576000 frames) in, 1125 blocks"),
        "{}",
        ran.log
    );
}
