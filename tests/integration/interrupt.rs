//! Ctrl-C stops a live run cleanly: exit 0, outputs finalized.

use crate::common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn ctrl_c_finalizes_outputs() {
    let dir = scratch("ctrl-c");
    let wav = dir.join("live.wav");
    let partial = dir.join("live.wav.partial");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sandstream"))
        .args([
            "--quiet",
            "run",
            &s(&guest("gain")),
            "--audio-in",
            "tone:440",
            "--realtime",
            "--audio-out",
            &file(&wav),
        ])
        .env("SANDSTREAM_CACHE_DIR", cache_dir())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Wait (bounded) until audio is flowing: the partial file has grown
    // past its header. This waits for a state, it asserts no timing.
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(&partial).map_or(true, |m| m.len() < 10_000) {
        assert!(Instant::now() < deadline, "no audio written within 30 s");
        assert!(
            child.try_wait().unwrap().is_none(),
            "sandstream exited early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status,
        stderr(&output)
    );

    assert!(!partial.exists(), "the partial file was renamed into place");
    let reader = hound::WavReader::open(&wav).expect("a finalized WAV");
    assert!(reader.duration() > 0);
    assert_eq!(reader.len() as usize % 2, 0, "whole stereo frames");
}
