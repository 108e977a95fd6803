//! The gain examples in every language, a minute each in real time: on a
//! quiet machine none of them misses its deadline (in tests/live, so the
//! CPU-heavy integration tests do not run beside them).

use crate::common::*;
use std::process::{Command, Stdio};

#[path = "../integration/templates.rs"]
#[allow(dead_code)]
mod templates;

/// A minute in real time for every audio template, no guest faults. The
/// compiled ones run side by side (microseconds a block each); Python's
/// (0.6 ms a block, 5.3 ms deadline) runs alone: six real-time processes
/// on two cores preempt each other for longer than its headroom.
#[test]
fn every_gain_template_runs_a_minute_in_real_time_without_a_fault() {
    let _turn = crate::one_at_a_time();
    let (alone, together): (Vec<_>, Vec<_>) =
        templates::GAINS.iter().partition(|t| t.name == "gain-py");
    for batch in [together, alone] {
        let runs: Vec<_> = batch
            .iter()
            .map(|t| (t.name, real_time_minute(t.name)))
            .collect();
        for (name, child) in runs {
            let output = child.wait_with_output().unwrap();
            let report = stderr(&output);
            assert!(output.status.success(), "{name}: {report}");
            // 60 s of 512-frame blocks at 48 kHz. A loaded machine may make
            // the host skip late blocks (counted, not faults): at most 1 %.
            assert!(
                report.contains("5625 blocks (2880000 frames) in"),
                "{name}: {report}"
            );
            let out = number_after(&report, "in, ").unwrap();
            assert!(out >= 5569.0, "{name}: {report}");
            assert!(!report.contains("guest faults"), "{name}: {report}");
        }
    }
}

/// `guest` over a paced tone for 60 s, into nothing.
fn real_time_minute(guest_name: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_sandstream"))
        .args(["run", "-q"])
        .arg(guest(guest_name))
        .args([
            "--audio-in",
            "tone:440",
            "--audio-out",
            "null",
            "--realtime",
            "--block",
            "512",
            // The block's duration rather than the default half: these VMs
            // now and then stall a process for ~9 ms (measured: one 10.4 ms
            // call of Python's, whose median is 1.1 ms, in 5625).
            "--deadline",
            "10.6",
            "--duration",
            "60",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}
