//! What a guest can reach: its output channels go to the host log; the
//! machine (environment, files) is out of reach.

use crate::common::*;
use std::process::Command;

#[test]
fn guest_output_reaches_the_log_and_nothing_is_granted() {
    let output = Command::new(env!("CARGO_BIN_EXE_sandstream"))
        .args([
            "run",
            &s(&guest("chatty")),
            "--audio-in",
            "silence",
            "--duration",
            "0.1",
        ])
        .env("SANDSTREAM_CACHE_DIR", cache_dir())
        .env("SECRET_TOKEN", "do-not-leak")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    assert!(
        log.contains("[chatty.wasm stdout] hello from stdout"),
        "{log}"
    );
    assert!(
        log.contains("[chatty.wasm stderr] hello from stderr"),
        "{log}"
    );
    assert!(
        log.contains("[chatty.wasm] hello from the log import"),
        "{log}"
    );
    assert!(log.contains("environment variables visible: 0"), "{log}");
    assert!(log.contains("reading /etc/passwd: denied"), "{log}");
    assert!(!log.contains("do-not-leak"), "{log}");
}
