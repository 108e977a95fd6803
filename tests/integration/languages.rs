//! Effects in other languages, built by `cargo xtask guests` with each
//! example's own `build.sh`: each writes exactly the bytes of the Rust
//! example, refuses a bad setting in the Rust SDK's words, and takes the
//! data path its world promises.

use crate::common::*;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A template and how its samples or pixels travel.
struct Template {
    name: &'static str,
    world: &'static str,
    mapped: bool,
}

/// The `gain` examples, checked against the Rust `gain`.
const GAINS: &[Template] = &[Template {
    name: "gain-c",
    world: "audio-effect-mapped",
    mapped: true,
}];

/// The `grayscale` examples, checked against the Rust `grayscale`
/// (JavaScript's is in `mapped.rs`).
const GRAYSCALES: &[Template] = &[Template {
    name: "grayscale-c",
    world: "video-effect-mapped",
    mapped: true,
}];

/// Runs `guest` offline and returns its summary.
fn run(guest: &str, args: &[&str]) -> String {
    let mut all = vec!["run", "-q"];
    let path = s(&crate::common::guest(guest));
    all.push(&path);
    all.extend_from_slice(args);
    let output = sandstream(&all);
    let report = stderr(&output);
    assert!(output.status.success(), "{guest}: {report}");
    report
}

fn gain_output(dir: &std::path::Path, guest: &str) -> (PathBuf, String) {
    let wav = dir.join(format!("{guest}.wav"));
    let report = run(
        guest,
        &[
            "--audio-in",
            "tone:440",
            "--audio-out",
            &file(&wav),
            "--set",
            "gain=0.3",
            "--duration",
            "2",
        ],
    );
    (wav, report)
}

#[test]
fn every_gain_template_writes_the_bytes_of_the_rust_gain() {
    let dir = scratch("languages-gain");
    let (reference, _) = gain_output(&dir, "gain");
    let expected = std::fs::read(&reference).unwrap();
    for template in GAINS {
        let (wav, report) = gain_output(&dir, template.name);
        let mapped = if template.mapped { 188 } else { 0 };
        assert!(
            report.contains(&format!(
                "188 blocks (96000 frames) out, 0 dropped by guest, 0 overruns; {mapped} through \
                 mapped memory"
            )),
            "{}: {report}",
            template.name
        );
        assert!(
            std::fs::read(&wav).unwrap() == expected,
            "{} wrote other bytes than the Rust gain",
            template.name
        );
    }
}

#[test]
fn every_grayscale_template_writes_the_bytes_of_the_rust_grayscale() {
    let dir = scratch("languages-grayscale");
    let input = dir.join("testsrc.y4m");
    testsrc(&input, "320x240", 25, 1.0, "yuv420p");
    let gray = |guest: &str| {
        let out = dir.join(format!("{guest}.y4m"));
        let report = run(
            guest,
            &["--video-in", &file(&input), "--video-out", &file(&out)],
        );
        (std::fs::read(&out).unwrap(), report)
    };
    let (expected, _) = gray("grayscale");
    for template in GRAYSCALES {
        let (written, report) = gray(template.name);
        let mapped = if template.mapped { 25 } else { 0 };
        assert!(
            report.contains(&format!(
                "25 out, 0 skipped by fps cap, 0 dropped by guest, 0 overruns; {mapped} through \
                 mapped memory"
            )),
            "{}: {report}",
            template.name
        );
        assert!(
            written == expected,
            "{} wrote other bytes than the Rust grayscale",
            template.name
        );
    }
}

#[test]
fn every_gain_template_refuses_a_bad_gain_in_the_rust_sdks_words() {
    for template in GAINS.iter().map(|t| t.name).chain(["gain"]) {
        for (value, message) in [
            ("loud", "setting `gain`: cannot read \"loud\" as f32"),
            ("inf", "setting `gain` must be a finite number, got inf"),
        ] {
            let setting = format!("gain={value}");
            let output = sandstream(&[
                "run",
                &s(&guest(template)),
                "--audio-in",
                "tone:440",
                "--audio-out",
                "null",
                "--duration",
                "1",
                "--set",
                &setting,
            ]);
            let err = stderr(&output);
            assert!(!output.status.success(), "{template} took gain={value}");
            assert!(
                err.contains(&format!(
                    "error: guest {template}.wasm returned an error: \"{message}\" in \
                     setup.configure"
                )),
                "{template}: {err}"
            );
        }
    }
}

#[test]
fn check_names_each_templates_world_and_data_path() {
    for (template, stream) in GAINS
        .iter()
        .map(|t| (t, "audio"))
        .chain(GRAYSCALES.iter().map(|t| (t, "video")))
    {
        let output = sandstream(&["check", &s(&guest(template.name))]);
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{}: {}",
            template.name,
            stderr(&output)
        );
        assert!(
            report.contains(&format!("implements sandstream:av/{}", template.world)),
            "{report}"
        );
        let path = if template.mapped {
            "mapped memory (one buffer, in place)"
        } else {
            "lists"
        };
        assert!(
            report.contains(&format!("{stream} data path: {path}")),
            "{report}"
        );
    }
}

/// A minute in real time, every audio template at once (they take little
/// CPU each): no guest faults.
#[test]
fn every_gain_template_runs_a_minute_in_real_time_without_a_fault() {
    let runs: Vec<_> = GAINS
        .iter()
        .map(|template| {
            let child = Command::new(env!("CARGO_BIN_EXE_sandstream"))
                .args(["run", "-q"])
                .arg(guest(template.name))
                .args([
                    "--audio-in",
                    "tone:440",
                    "--audio-out",
                    "null",
                    "--realtime",
                    "--block",
                    "512",
                    "--duration",
                    "60",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (template.name, child)
        })
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
