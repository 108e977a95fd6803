//! The mapped data path: frames written into the guest's own buffers. Each
//! test runs the same guest on both paths and compares the bytes, and checks
//! the report's count of blocks that really went through mapped memory.

use crate::common::*;
use sandstream::guest::{
    AudioCall, DataPath, GuestProgram, Processed, StreamFormats, StreamPath, VideoCall, engine_for,
};
use sandstream::media::{AudioFormat, Fps, VideoFormat};
use std::path::{Path, PathBuf};

/// Runs `guest` with `args`, on `path` (`auto` or `list`); returns stderr.
fn run_on(path: &str, guest_name: &str, args: &[&str]) -> String {
    let guest = guest(guest_name);
    let mut all = vec!["run", guest.to_str().unwrap(), "--data-path", path];
    all.extend_from_slice(args);
    let run = sandstream(&all);
    let text = stderr(&run);
    assert!(run.status.success(), "{text}");
    text
}

fn outputs(dir: &Path, path: &str, names: &[&str]) -> Vec<PathBuf> {
    names
        .iter()
        .map(|name| dir.join(format!("{path}-{name}")))
        .collect()
}

fn assert_same_bytes(a: &Path, b: &Path) {
    let (left, right) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    assert!(!left.is_empty());
    assert!(
        left == right,
        "{} and {} differ ({} vs {} bytes)",
        a.display(),
        b.display(),
        left.len(),
        right.len()
    );
}

#[test]
fn grayscale_is_byte_identical_on_both_paths() {
    let dir = scratch("mapped-grayscale");
    let input = dir.join("testsrc.y4m");
    testsrc(&input, "320x240", 25, 1.0, "yuv420p");
    let mut written = Vec::new();
    for path in ["auto", "list"] {
        let y4m = dir.join(format!("{path}-gray.y4m"));
        let report = run_on(
            path,
            "grayscale",
            &["--video-in", &file(&input), "--video-out", &file(&y4m)],
        );
        let mapped = if path == "auto" { 25 } else { 0 };
        assert!(report.contains("25 frames in, 25 out"), "{report}");
        assert!(
            report.contains(&format!("; {mapped} through mapped memory")),
            "{report}"
        );
        written.push(y4m);
    }
    assert_same_bytes(&written[0], &written[1]);
    // And it really is gray: every chroma byte is neutral.
    let gray = Y4m::read(&written[0]);
    assert_eq!(gray.frames.len(), 25);
    assert!(
        gray.frames
            .iter()
            .all(|f| gray.chroma(f).iter().all(|&c| c.abs_diff(128) <= 1))
    );
}

/// Another language, another toolchain (ComponentizeJS), the list path: the
/// same bytes as the Rust guest on mapped memory.
#[test]
fn a_javascript_guest_on_lists_matches_the_rust_guest_on_mapped_memory() {
    let dir = scratch("mapped-js");
    let input = dir.join("testsrc.y4m");
    testsrc(&input, "320x240", 25, 1.0, "yuv420p");
    let mut written = Vec::new();
    for (guest, mapped) in [("grayscale-js", 0), ("grayscale", 25)] {
        let out = dir.join(format!("{guest}.y4m"));
        let report = run_on(
            "auto",
            guest,
            &["--video-in", &file(&input), "--video-out", &file(&out)],
        );
        assert!(
            report.contains(&format!("25 out, 0 skipped by fps cap, 0 dropped by guest, 0 overruns; {mapped} through mapped memory")),
            "{guest}: {report}"
        );
        written.push(out);
    }
    assert_same_bytes(&written[0], &written[1]);
}

#[test]
fn av_example_is_byte_identical_on_both_paths() {
    let dir = scratch("mapped-av");
    let mut written = Vec::new();
    for path in ["auto", "list"] {
        let [wav, y4m] = outputs(&dir, path, &["meter.wav", "meter.y4m"])
            .try_into()
            .unwrap();
        let report = run_on(
            path,
            "level-meter",
            &[
                "--audio-in",
                "tone:440",
                "--audio-out",
                &file(&wav),
                "--video-in",
                "pattern",
                "--video-out",
                &file(&y4m),
                "--width",
                "320",
                "--height",
                "240",
                "--duration",
                "1",
            ],
        );
        // 48000 frames in blocks of 512: 93 full blocks and a short one,
        // which fits the mapped buffer too.
        let (blocks, frames) = if path == "auto" { (94, 30) } else { (0, 0) };
        assert!(
            report.contains(&format!("overruns; {blocks} through mapped memory\nvideo")),
            "{report}"
        );
        assert!(
            report.contains(&format!("overruns; {frames} through mapped memory")),
            "{report}"
        );
        written.push((wav, y4m));
    }
    assert_same_bytes(&written[0].0, &written[1].0);
    assert_same_bytes(&written[0].1, &written[1].1);
}

/// The `lying-buffers` guest inverts colours; its list path is the truth.
fn lying_run(dir: &Path, mode: &str) -> (PathBuf, String) {
    let out = dir.join(format!("{mode}.y4m"));
    let report = run_on(
        if mode == "reference" { "list" } else { "auto" },
        "lying-buffers",
        &[
            "--video-in",
            "pattern",
            "--video-out",
            &file(&out),
            "--width",
            "320",
            "--height",
            "240",
            "--duration",
            "1",
            "--deadline",
            "500",
            "--set",
            &format!("mode={mode}"),
        ],
    );
    (out, report)
}

#[test]
fn lying_announcements_fall_back_to_lists_with_the_reason() {
    let dir = scratch("mapped-lies");
    let (reference, _) = lying_run(&dir, "reference");
    for (mode, reason) in [
        ("out-of-range", "lies outside its"),
        (
            "huge-offset",
            "input buffer (bytes 4294967279..4295274479) lies outside",
        ),
        ("overlap", "buffers overlap without being the same buffer"),
        (
            "short",
            "input buffer holds 153600 bytes where 307200 are needed",
        ),
    ] {
        let (out, report) = lying_run(&dir, mode);
        assert!(
            report.contains("announced unusable buffers: its "),
            "{mode}: {report}"
        );
        assert!(report.contains(reason), "{mode}: {report}");
        assert!(report.contains("using lists instead"), "{mode}: {report}");
        assert!(
            report.contains("30 out, 0 skipped by fps cap, 0 dropped by guest, 0 overruns; 0 through mapped memory"),
            "{mode}: {report}"
        );
        assert!(!report.contains("guest faults"), "{mode}: {report}");
        assert_same_bytes(&out, &reference);
    }
}

#[test]
fn honest_separate_and_growing_buffers_take_the_mapped_path() {
    let dir = scratch("mapped-honest");
    let (reference, _) = lying_run(&dir, "reference");
    // `grow` adds 1 MiB to its memory before every frame: the buffers must
    // stay where they were announced.
    for mode in ["honest", "separate", "grow", "decline"] {
        let (out, report) = lying_run(&dir, mode);
        let mapped = if mode == "decline" { 0 } else { 30 };
        assert!(
            report.contains(&format!("0 overruns; {mapped} through mapped memory")),
            "{mode}: {report}"
        );
        assert!(!report.contains("guest faults"), "{mode}: {report}");
        assert_same_bytes(&out, &reference);
    }
}

#[test]
fn buffers_over_the_guests_own_data_hurt_only_the_guest() {
    // Offset 0: every frame lands on the guest's stack and static data.
    // Whatever that does to the guest, the stream goes on, every frame is
    // written, and the host is untouched.
    let dir = scratch("mapped-clobber");
    let (out, report) = lying_run(&dir, "clobber");
    assert!(report.contains("30 frames in, 30 out"), "{report}");
    let video = Y4m::read(&out);
    assert_eq!(video.frames.len(), 30);
    assert_eq!((video.width, video.height), (320, 240));
}

#[test]
fn a_trap_in_prepare_is_a_setup_fault() {
    let dir = scratch("mapped-prepare-trap");
    let (out, report) = lying_run(&dir, "trap-in-prepare");
    assert!(
        report.contains("trapped: wasm trap: wasm `unreachable` instruction executed in mapped-*.prepare while being set up: quarantined"),
        "{report}"
    );
    assert!(report.contains("30 frames in, 30 out"), "{report}");
    assert!(
        report.contains(" 1 setup; 0 restarts, quarantined"),
        "{report}"
    );
    // Quarantined: the frames pass through unprocessed.
    let (reference, _) = lying_run(&dir, "reference");
    let (bypassed, inverted) = (Y4m::read(&out), Y4m::read(&reference));
    assert_eq!(bypassed.frames.len(), 30);
    assert_ne!(bypassed.frames[0], inverted.frames[0]);
}

#[test]
fn check_names_the_data_path() {
    let run = sandstream(&["check", &s(&guest("grayscale"))]);
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        text.contains("video data path: mapped memory (one buffer, in place)"),
        "{text}"
    );
    let run = sandstream(&["check", &s(&guest("wrong-frame-size"))]);
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(text.contains("video data path: lists\n"), "{text}");
}

/// The library API a camera decoder or an encoder would use: fill the
/// guest's input in place, read its output in place. Same bytes on both
/// paths, and the same as `process_video`.
#[test]
fn fill_and_drain_in_place_match_process_video() {
    const FORMAT: VideoFormat = VideoFormat {
        width: 64,
        height: 48,
        fps: Fps { num: 30, den: 1 },
    };
    let engine = engine_for(false).unwrap();
    let program = GuestProgram::load(&engine, &guest("grayscale"), None).unwrap();
    let formats = StreamFormats {
        audio: None,
        video: Some(FORMAT),
    };
    let frame: Vec<u8> = (0..FORMAT.frame_bytes())
        .map(|i| (i * 37 % 256) as u8)
        .collect();
    let call = VideoCall {
        timestamp_ns: 0,
        index: 0,
        format: FORMAT,
    };
    let mut results = Vec::new();
    for path in [DataPath::Auto, DataPath::Lists] {
        let mut instance = program.instantiate().unwrap();
        instance.configure(&Vec::new(), &formats).unwrap();
        instance.map_buffers(&formats, path).unwrap();
        let mapped = path == DataPath::Auto;
        assert_eq!(
            matches!(instance.video_path(), StreamPath::Mapped { in_place: true }),
            mapped
        );
        let mut drained = Vec::new();
        let outcome = instance
            .process_video_with(
                call,
                |input| input.copy_from_slice(&frame),
                |output| drained.extend_from_slice(output),
            )
            .unwrap();
        assert_eq!(outcome, Processed::Kept);
        assert_eq!(instance.last_call_mapped(), mapped);
        let mut in_place = frame.clone();
        instance.process_video(call, &mut in_place).unwrap();
        assert_eq!(drained, in_place);
        results.push(drained);
    }
    assert_eq!(results[0], results[1]);
    assert_ne!(results[0], frame, "the frame was processed");
    // Gray: r == g == b everywhere.
    assert!(
        results[0]
            .chunks_exact(4)
            .all(|p| p[0] == p[1] && p[1] == p[2])
    );
}

/// Audio blocks shorter than the announced buffer (a file's last block)
/// still go through it; longer ones fall back to lists.
#[test]
fn audio_blocks_of_any_length_come_back_right() {
    const FORMAT: AudioFormat = AudioFormat {
        sample_rate: 48_000,
        channels: 2,
    };
    let engine = engine_for(false).unwrap();
    let program = GuestProgram::load(&engine, &guest("gain"), None).unwrap();
    let formats = StreamFormats {
        audio: Some((FORMAT, 256)),
        video: None,
    };
    let mut instance = program.instantiate().unwrap();
    let config = vec![("gain".to_string(), "0.5".to_string())];
    instance.configure(&config, &formats).unwrap();
    instance.map_buffers(&formats, DataPath::Auto).unwrap();
    for (frames, mapped) in [(256, true), (100, true), (1, true), (300, false)] {
        let input: Vec<f32> = (0..frames * 2).map(|i| (i as f32 * 0.01).sin()).collect();
        let mut samples = input.clone();
        let call = AudioCall {
            timestamp_ns: 0,
            first_frame: 0,
            format: FORMAT,
        };
        assert_eq!(
            instance.process_audio(call, &mut samples).unwrap(),
            Processed::Kept
        );
        assert_eq!(instance.last_call_mapped(), mapped, "{frames} frames");
        assert_eq!(samples.len(), input.len());
        for (out, inp) in samples.iter().zip(&input) {
            assert_eq!(*out, inp * 0.5);
        }
    }
}

#[test]
fn bench_times_every_path_beside_a_memcpy() {
    let run = sandstream(&[
        "bench",
        &s(&guest("passthrough")),
        "--width",
        "64",
        "--height",
        "48",
        "--block",
        "64",
    ]);
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        text.contains("audio: blocks of 64 frames x 2 channels"),
        "{text}"
    );
    assert!(text.contains("video: 64x48 RGBA frames"), "{text}");
    for row in [
        "memcpy (20000 calls)",
        "lists (20000 calls)",
        "mapped (20000 calls)",
        "memcpy (300 calls)",
        "lists (300 calls)",
        "mapped, copied in and out (300 calls)",
        "mapped, filled and read in place (300 calls)",
    ] {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(row))
            .unwrap_or_else(|| panic!("no row {row:?} in {text}"));
        assert!(line.trim_end().ends_with('x'), "{line}");
    }
    let bad = sandstream(&["bench", &s(&guest("grayscale")), "--width", "0"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("--width and --height must be between 1 and 7680x4320, got 0x1080"),
        "{}",
        stderr(&bad)
    );
}

/// A path that fails is a row saying how; the other paths are timed and
/// the command fails at the end.
#[test]
fn bench_reports_a_failing_path_and_times_the_others() {
    let run = sandstream(&[
        "bench",
        &s(&guest("adversary")),
        "--set",
        "mode=exit",
        "--set",
        "in=prepare",
        "--block",
        "64",
        "--width",
        "64",
        "--height",
        "48",
    ]);
    let text = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(1), "{text}");
    let row = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no row {name:?} in {text}"))
            .to_string()
    };
    assert!(row("lists (20000 calls)").ends_with('x'), "{text}");
    assert!(
        row("mapped ").contains("failed: called exit(1) in mapped-*.prepare"),
        "{text}"
    );
    // The video table still comes after the failed audio row.
    assert!(
        row("mapped, filled and read in place").ends_with('x'),
        "{text}"
    );
    assert!(
        stderr(&run).contains("error: guest adversary.wasm failed on 1 of the paths timed"),
        "{}",
        stderr(&run)
    );
}

/// The SDK asks for its frame buffer under the memory cap; when it does not
/// fit, the guest declines the mapped path and the log says why.
#[test]
fn a_buffer_over_the_memory_cap_is_declined_and_said() {
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_sandstream"))
        .args(["run", &s(&guest("grayscale"))])
        .args([
            "--video-in",
            "pattern",
            "--width",
            "1280",
            "--height",
            "720",
        ])
        .args([
            "--duration",
            "0.2",
            "--video-out",
            "null",
            "--memory-limit",
            "2",
        ])
        .env("SANDSTREAM_CACHE_DIR", cache_dir())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let text = stderr(&run);
    assert!(run.status.success(), "{text}");
    assert!(
        text.contains(
            "video through lists (the guest declined: \"cannot allocate a 3686400-byte buffer\")"
        ),
        "{text}"
    );
    // The list path needs the same room, so the guest then faults, and the
    // stream goes on without it.
    assert!(text.contains("6 frames in, 6 out"), "{text}");
    assert!(text.contains("hit its memory limit"), "{text}");
}
