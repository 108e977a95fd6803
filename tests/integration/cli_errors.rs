//! Bad input: non-zero exit, one clear line on stderr, no panic, and no
//! output file left behind that looks valid.

use crate::common::*;
use std::path::Path;

/// Runs, expects failure, and returns the one error line.
fn fails(args: &[&str]) -> String {
    one_error_line(&sandstream(args), args)
}

/// `fails`, with changes to the environment (`None` removes a variable).
fn fails_with(env: &[(&str, Option<&str>)], args: &[&str]) -> String {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sandstream"));
    command
        .arg("--quiet")
        .args(args)
        .env("SANDSTREAM_CACHE_DIR", cache_dir());
    for (key, value) in env {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    one_error_line(&command.output().unwrap(), args)
}

fn one_error_line(run: &std::process::Output, args: &[&str]) -> String {
    let err = stderr(run);
    assert_eq!(
        run.status.code(),
        Some(1),
        "expected exit 1 for {args:?}, stderr: {err}"
    );
    assert!(!err.contains("panicked"), "panic for {args:?}: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    lines[0].to_string()
}

fn assert_no_output(path: &Path) {
    assert!(!path.exists(), "{} was left behind", path.display());
    let partial = format!("{}.partial", path.display());
    assert!(!Path::new(&partial).exists(), "{partial} was left behind");
}

#[test]
fn missing_input_file() {
    let dir = scratch("missing-input");
    let out = dir.join("out.wav");
    let err = fails(&[
        "run",
        &s(&guest("gain")),
        "--audio-in",
        "file:/nonexistent/in.wav",
        "--audio-out",
        &file(&out),
    ]);
    assert!(err.contains("/nonexistent/in.wav"), "{err}");
    assert_no_output(&out);
}

#[test]
fn a_file_that_is_not_wasm() {
    let dir = scratch("not-wasm");
    let fake = dir.join("effect.wasm");
    std::fs::write(&fake, "#!/bin/sh\necho hi\n").unwrap();
    let err = fails(&["run", &s(&fake), "--audio-in", "silence", "--duration", "1"]);
    assert!(err.contains("not a WebAssembly file"), "{err}");
    assert!(
        err.contains("sandstream:av/audio-effect"),
        "says what it should be: {err}"
    );
}

#[test]
fn a_truncated_component() {
    let dir = scratch("truncated");
    let bytes = std::fs::read(guest("gain")).unwrap();
    let cut = dir.join("gain-cut.wasm");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = fails(&["check", &s(&cut)]);
    assert!(err.contains("not a valid WebAssembly component"), "{err}");
    assert!(err.contains("truncated"), "{err}");
}

#[test]
fn a_core_module_is_told_to_become_a_component() {
    let dir = scratch("core-module");
    let module = dir.join("core.wasm");
    std::fs::write(&module, b"\0asm\x01\0\0\0").unwrap();
    let err = fails(&["check", &s(&module)]);
    assert!(
        err.contains("core WebAssembly module, not a component"),
        "{err}"
    );
    assert!(
        err.contains("sandstream componentize FILE --world WORLD -o OUT.wasm"),
        "{err}"
    );
}

#[test]
fn a_component_of_no_sandstream_world() {
    let err = fails(&["check", &s(&guest("not-an-effect"))]);
    assert!(
        err.contains("implements none of the Sandstream worlds"),
        "{err}"
    );
    assert!(err.contains("wasi:cli/run"), "lists what it exports: {err}");
}

#[test]
fn a_guest_whose_setup_fails() {
    let dir = scratch("setup-fails");
    let out = dir.join("out.wav");
    let err = fails(&[
        "run",
        &s(&guest("gain")),
        "--audio-in",
        "tone:440",
        "--duration",
        "1",
        "--set",
        "gain=loud",
        "--audio-out",
        &file(&out),
    ]);
    assert!(err.contains("setup.configure"), "{err}");
    assert!(
        err.contains("setting `gain`: cannot read \"loud\" as f32"),
        "{err}"
    );
    assert_no_output(&out);
}

#[test]
fn a_guest_returning_a_frame_of_the_wrong_size() {
    let dir = scratch("wrong-size");
    let out = dir.join("out.y4m");
    let args = [
        "run",
        &s(&guest("wrong-frame-size")),
        "--video-in",
        "pattern",
        "--width",
        "64",
        "--height",
        "48",
        "--duration",
        "1",
        "--video-out",
        &file(&out),
    ];
    // By default the frame is rejected and replaced (bypass); the run goes on.
    let run = sandstream(&args);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("5 wrong size"),
        "counted: {}",
        stderr(&run)
    );
    assert_eq!(
        Y4m::read(&out).frames.len(),
        30,
        "every frame written, unprocessed"
    );
    std::fs::remove_file(&out).unwrap();

    // With --on-fault stop it is the run's error.
    let err = fails(&[&args[..], &["--on-fault", "stop"]].concat());
    assert!(
        err.contains("returned 6144 bytes of RGBA frame where 12288 were expected"),
        "{err}"
    );
    assert!(err.contains("frame 0"), "{err}");
    assert_no_output(&out);
}

#[test]
fn an_endless_input_without_duration() {
    let err = fails(&["run", &s(&guest("gain")), "--audio-in", "tone:440"]);
    assert!(err.contains("tone:440 never ends"), "{err}");
}

#[test]
fn a_guest_without_its_stream() {
    let err = fails(&[
        "run",
        &s(&guest("grayscale")),
        "--audio-in",
        "silence",
        "--duration",
        "1",
    ]);
    assert!(
        err.contains("implements sandstream:av/video-effect, but no video input was given"),
        "{err}"
    );
}

#[test]
fn malformed_y4m_and_wav_inputs() {
    let dir = scratch("malformed");
    let y4m = dir.join("bad.y4m");
    std::fs::write(&y4m, "YUV4MPEG2 W64 Hx F25:1\nFRAME\n").unwrap();
    let err = fails(&["run", &s(&guest("grayscale")), "--video-in", &file(&y4m)]);
    assert!(err.contains("is not a readable Y4M file"), "{err}");

    // A valid header with a frame cut short.
    let cut = dir.join("cut.y4m");
    let mut bytes = b"YUV4MPEG2 W4 H4 F25:1 C420jpeg\nFRAME\n".to_vec();
    bytes.extend_from_slice(&[16; 24]);
    bytes.extend_from_slice(b"FRAME\n");
    bytes.extend_from_slice(&[16; 10]);
    std::fs::write(&cut, bytes).unwrap();
    let out = dir.join("out.y4m");
    let err = fails(&[
        "run",
        &s(&guest("grayscale")),
        "--video-in",
        &file(&cut),
        "--video-out",
        &file(&out),
    ]);
    assert!(err.contains("frame 1 is truncated"), "{err}");
    assert_no_output(&out);

    let wav = dir.join("bad.wav");
    std::fs::write(&wav, b"RIFF\x10\0\0\0WAVEjunk").unwrap();
    let err = fails(&["run", &s(&guest("gain")), "--audio-in", &file(&wav)]);
    assert!(
        err.contains("cannot read file:") && err.contains("as a WAV file"),
        "{err}"
    );
}

#[test]
fn bad_flags_and_config_files() {
    let run = sandstream(&["run", &s(&guest("gain")), "--audio-in", "microphone"]);
    assert_eq!(run.status.code(), Some(2), "usage errors exit 2");
    assert!(
        stderr(&run).contains("unknown audio input `microphone`"),
        "{}",
        stderr(&run)
    );

    let dir = scratch("bad-config");
    let config = dir.join("run.toml");
    std::fs::write(&config, "audio-inn = 'tone:440'\n").unwrap();
    let err = fails(&["run", &s(&guest("gain")), "--config", &s(&config)]);
    assert!(
        err.contains("audio-inn") && err.contains("run.toml"),
        "{err}"
    );
}

#[test]
fn check_reports_each_example_world() {
    for (name, world) in [
        ("gain", "sandstream:av/audio-effect"),
        ("grayscale", "sandstream:av/video-effect"),
        ("level-meter", "sandstream:av/av-effect"),
    ] {
        let run = sandstream(&["check", &s(&guest(name))]);
        let out = String::from_utf8_lossy(&run.stdout);
        assert!(run.status.success(), "{}", stderr(&run));
        assert!(out.contains(&format!("implements {world}")), "{out}");
        assert!(
            out.contains("sandstream:av/log@0.1.0"),
            "imports listed: {out}"
        );
        assert!(out.contains("would run: yes"), "{out}");
    }
}

#[test]
fn config_file_supplies_options_and_guest_settings() {
    let dir = scratch("config-file");
    let out = dir.join("out.wav");
    let config = dir.join("run.toml");
    std::fs::write(
        &config,
        format!("audio-in = 'tone:1000'\naudio-out = '{}'\nduration = 0.5\nsample-rate = 8000\n[config]\ngain = 0.25\n", file(&out)),
    )
    .unwrap();
    let run = sandstream(&["run", &s(&guest("gain")), "--config", &s(&config)]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(hound::WavReader::open(&out).unwrap().duration(), 4000);
    let max = sox_stat(&out, "Maximum amplitude");
    assert!(
        (max - 0.125).abs() < 0.005,
        "0.5 tone x 0.25 gain, got max {max}"
    );
}

#[test]
fn a_virtual_camera_without_pipewire_says_what_to_start() {
    let empty = s(&scratch("no-pipewire"));
    let err = fails_with(
        &[
            ("PIPEWIRE_RUNTIME_DIR", Some(&empty)),
            ("XDG_RUNTIME_DIR", Some(&empty)),
            ("PIPEWIRE_REMOTE", None),
        ],
        &[
            "run",
            &s(&guest("passthrough")),
            "--video-in",
            "pattern",
            "--video-out",
            "pipewire:cam",
            "--duration",
            "0.1",
        ],
    );
    assert!(
        err.contains("PipeWire is not available")
            && err.contains("start pipewire and wireplumber")
            && err.contains("v4l2loopback"),
        "{err}"
    );
}

#[test]
fn a_preview_window_without_a_display_says_so() {
    let err = fails_with(
        &[("DISPLAY", None), ("WAYLAND_DISPLAY", None)],
        &[
            "run",
            &s(&guest("passthrough")),
            "--video-in",
            "pattern",
            "--video-out",
            "window",
            "--duration",
            "0.1",
        ],
    );
    assert!(
        err.contains("cannot open a preview window") && err.contains("no DISPLAY"),
        "{err}"
    );
}

#[test]
fn preview_input_without_a_window_is_refused() {
    let err = fails(&[
        "run",
        &s(&guest("passthrough")),
        "--video-in",
        "pattern",
        "--preview-input",
        "--duration",
        "0.1",
    ]);
    assert!(err.contains("add --video-out window"), "{err}");
}

#[test]
fn bad_latency_measurements_and_stats_outputs_are_named() {
    let effect = s(&guest("passthrough"));
    assert_eq!(
        fails(&["latency", &effect, "--buffers", "128,8"]),
        "error: --buffers must be between 16 and 8192 frames each"
    );
    assert_eq!(
        fails(&["latency", &effect, "--clicks", "0"]),
        "error: --clicks must be between 1 and 10000"
    );
    assert_eq!(
        fails(&["latency", &effect, "--latency", "1"]),
        "error: --latency must be between 5 and 10000 ms, got 1"
    );
    let err = fails(&[
        "run",
        &s(&guest("gain")),
        "--audio-in",
        "tone:440",
        "--duration",
        "1",
        "--stats-json",
        "/nonexistent/dir/stats.json",
    ]);
    assert!(
        err.starts_with("error: cannot write --stats-json /nonexistent/dir/stats.json: "),
        "{err}"
    );
}
