//! `--commands`: live control of a running `sandstream` through stdin.

use crate::common::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[test]
fn stdin_commands_reconfigure_report_and_stop() {
    let dir = scratch("live-commands");
    let wav = dir.join("live.wav");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sandstream"))
        .args([
            "run",
            &s(&guest("gain")),
            "--audio-in",
            "tone:440",
            "--realtime",
            "--commands",
        ])
        .args(["--audio-out", &file(&wav)])
        .env("SANDSTREAM_CACHE_DIR", cache_dir())
        .env("RUST_LOG", "info")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let reader = {
        let (log, stderr) = (log.clone(), child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        })
    };
    // Waits (bounded) until the log shows `text`: a state, not a timing.
    let wait_for = |text: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !log.lock().unwrap().contains(text) {
            assert!(
                Instant::now() < deadline,
                "no `{text}` in:\n{}",
                log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let mut stdin = child.stdin.take().unwrap();
    wait_for("real time");
    writeln!(stdin, "set gain=0.25").unwrap();
    wait_for("set gain=0.25 (guest gain.wasm)");
    writeln!(stdin, "frobnicate").unwrap();
    wait_for("unknown command `frobnicate`");
    writeln!(stdin, "stats").unwrap();
    wait_for("swaps: 1 done, 0 refused");
    // The histograms so far, one row per stage the blocks reached.
    wait_for("audio latency histograms, ms:");
    {
        let log = log.lock().unwrap();
        let table = &log[log.find("audio latency histograms").unwrap()..];
        let header = table.lines().nth(1).unwrap();
        assert!(
            header.contains("p50") && header.contains("p99.9"),
            "{table}"
        );
        for row in ["read", "guest_start", "guest_end", "output", "guest call"] {
            assert!(
                table.lines().any(|l| l.trim_start().starts_with(row)),
                "no {row} row: {table}"
            );
        }
    }
    writeln!(stdin, "stop").unwrap();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    assert!(status.success(), "{}", log.lock().unwrap());
    assert!(
        hound::WavReader::open(&wav).unwrap().duration() > 0,
        "output finalized"
    );
}
