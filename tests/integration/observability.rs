//! What a run shows while it goes: `--stats-json` lines with the fields
//! docs/STATS.md documents, and a status line on a terminal only.

use crate::common::*;
use std::process::Command;

fn paced_gain_run(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "run",
        &s(&guest("gain")),
        "--audio-in",
        "tone:440",
        "--audio-out",
        "null",
        "--realtime",
        "--duration",
        "3.5",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

#[test]
fn stats_json_writes_objects_with_the_documented_fields() {
    let dir = scratch("stats-json");
    let json = dir.join("stats.json");
    let args = paced_gain_run(&["--stats-json", &s(&json)]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ran = measured(&args, b"");
    assert_eq!(ran.code, Some(0), "{}", ran.log);
    let text = std::fs::read_to_string(&json).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.len() >= 2, "{text}");
    let mut last_t = 0.0;
    let mut last_in = 0;
    for line in &lines {
        let t = line["t_s"].as_f64().unwrap();
        assert!(t > last_t, "{text}");
        last_t = t;
        let audio = &line["audio"];
        let items_in = audio["items_in"].as_u64().unwrap();
        assert!(items_in >= last_in, "{text}");
        last_in = items_in;
        for count in [
            "items_out",
            "xruns",
            "capture_overruns",
            "playback_underruns",
            "overruns",
            "late_drops",
            "latency_drops",
            "output_drops",
            "dropped_by_guest",
        ] {
            assert!(audio[count].as_u64().is_some(), "{count}: {line}");
        }
        for stage in ["read", "guest_start", "guest_end", "output"] {
            let median = audio["stages_ms"][stage]["median"].as_f64();
            assert!(median.is_some_and(|m| m >= 0.0), "{stage}: {line}");
        }
        assert!(audio["latency_ms"]["p99"].as_f64().is_some(), "{line}");
        assert!(audio["guest_call_ms"]["max"].as_f64().is_some(), "{line}");
        assert_eq!(line["guest"]["faults"].as_u64(), Some(0), "{line}");
        assert_eq!(line["guest"]["quarantined"].as_bool(), Some(false));
        assert!(line.get("video").is_none() && line.get("sync").is_none());
    }
    // A paced file → null run: blocks leave the moment they are made,
    // and a 512-frame block is 10.7 ms of media.
    assert!(last_in > 100, "{text}");
}

#[test]
fn a_status_line_and_colours_are_drawn_on_a_terminal_and_never_into_a_pipe() {
    let args = paced_gain_run(&[]);
    let command = std::iter::once(env!("CARGO_BIN_EXE_sandstream").to_string())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    // `script` runs it on a pseudo-terminal, as a user's shell would.
    let out = Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .env("SANDSTREAM_CACHE_DIR", cache_dir())
        .output()
        .expect("script (bsdutils) runs");
    let screen = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{screen}");
    let status: Vec<&str> = screen
        .split("\r\x1b[2K")
        .filter(|part| part.starts_with('['))
        .collect();
    assert!(!status.is_empty(), "no status line: {screen:?}");
    let line = status.last().unwrap();
    assert!(
        line.contains("audio ")
            && line.contains("xruns")
            && line.contains("drops")
            && line.contains("faults"),
        "{line}"
    );
    // The report comes after the status line was cleared.
    assert!(screen.contains("\r\x1b[2Kaudio: "), "{screen:?}");
    // Log levels are coloured on a terminal, and only there (below).
    assert!(screen.contains("INFO\x1b[0m"), "{screen:?}");

    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let piped = measured_at("info", &args, b"");
    assert_eq!(piped.code, Some(0), "{}", piped.log);
    assert!(!piped.log.contains('\x1b'), "{}", piped.log);
}
