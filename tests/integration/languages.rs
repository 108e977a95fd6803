//! Effects in other languages, built by `cargo xtask guests` with each
//! example's own `build.sh`: each writes exactly the bytes of the Rust
//! example, refuses a bad setting in the Rust SDK's words, and takes the
//! data path its world promises.

use crate::common::*;
use crate::templates::{AVS, GAINS, GRAYSCALES};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs the guest at `path` offline and returns its summary.
fn run(path: &Path, args: &[&str]) -> String {
    let path = s(path);
    let mut all = vec!["run", path.as_str()];
    all.extend_from_slice(args);
    let output = sandstream(&all);
    let report = stderr(&output);
    assert!(output.status.success(), "{path}: {report}");
    report
}

/// The gain guest at `path` over a tone, gain 0.3: its WAV and summary.
fn gain_output(dir: &Path, path: &Path) -> (Vec<u8>, String) {
    let wav = dir.join(format!("{}.wav", path.file_stem().unwrap().display()));
    let report = run(
        path,
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
    (std::fs::read(&wav).unwrap(), report)
}

/// The grayscale guest at `path` over ffmpeg's test source: its Y4M and
/// summary.
fn grayscale_output(dir: &Path, path: &Path) -> (Vec<u8>, String) {
    let input = dir.join("testsrc.y4m");
    if !input.exists() {
        testsrc(&input, "320x240", 25, 1.0, "yuv420p");
    }
    let out = dir.join(format!("{}.y4m", path.file_stem().unwrap().display()));
    let report = run(
        path,
        &["--video-in", &file(&input), "--video-out", &file(&out)],
    );
    (std::fs::read(&out).unwrap(), report)
}

/// What the A/V guest at `path` makes of a tone and the test pattern
/// (with `gain=0.3`), WAV and Y4M.
fn av_output(dir: &Path, path: &Path) -> (Vec<u8>, Vec<u8>) {
    let stem = path.file_stem().unwrap().display().to_string();
    let (wav, y4m) = (
        dir.join(format!("{stem}.wav")),
        dir.join(format!("{stem}.y4m")),
    );
    run(
        path,
        &[
            "--audio-in",
            "tone:440",
            "--audio-out",
            &file(&wav),
            "--set",
            "gain=0.3",
            "--duration",
            "2",
        ]
        .into_iter()
        .chain(PATTERN)
        .chain(["240", "--video-out", &file(&y4m)])
        .collect::<Vec<_>>(),
    );
    (std::fs::read(&wav).unwrap(), std::fs::read(&y4m).unwrap())
}

/// Two seconds of the test pattern at 320x240.
const PATTERN: [&str; 5] = ["--video-in", "pattern", "--width", "320", "--height"];

/// What the Rust examples make of the same inputs as [`av_output`]: the
/// gain's WAV and the grayscale's Y4M.
fn gain_and_grayscale(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let (wav, _) = gain_output(dir, &guest("gain"));
    let y4m = dir.join("grayscale-pattern.y4m");
    let mut args: Vec<&str> = PATTERN.to_vec();
    let out = file(&y4m);
    args.extend(["240", "--duration", "2", "--video-out", &out]);
    run(&guest("grayscale"), &args);
    (wav, std::fs::read(&y4m).unwrap())
}

#[test]
fn every_gain_template_writes_the_bytes_of_the_rust_gain() {
    let dir = scratch("languages-gain");
    let (expected, _) = gain_output(&dir, &guest("gain"));
    for template in GAINS {
        let (written, report) = gain_output(&dir, &guest(template.name));
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
            written == expected,
            "{} wrote other bytes than the Rust gain",
            template.name
        );
    }
}

#[test]
fn every_grayscale_template_writes_the_bytes_of_the_rust_grayscale() {
    let dir = scratch("languages-grayscale");
    let (expected, _) = grayscale_output(&dir, &guest("grayscale"));
    for template in GRAYSCALES {
        let (written, report) = grayscale_output(&dir, &guest(template.name));
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
fn every_av_template_writes_the_bytes_of_the_rust_gain_and_grayscale() {
    let dir = scratch("languages-av");
    let expected = gain_and_grayscale(&dir);
    for template in AVS {
        assert!(
            av_output(&dir, &guest(template.name)) == expected,
            "{} wrote other bytes than the Rust gain and grayscale",
            template.name
        );
    }
}

#[test]
fn every_gain_template_refuses_a_bad_gain_in_the_rust_sdks_words() {
    let gains = GAINS.iter().chain(AVS).map(|t| t.name);
    for template in gains.chain(["gain"]) {
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

/// A guest of a `-mapped` world has no list path: asking for lists is an
/// error that says why, not a silent bypass.
#[test]
fn a_mapped_world_guest_refuses_the_list_path_with_the_reason() {
    let output = sandstream(&[
        "run",
        &s(&guest("gain-c")),
        "--audio-in",
        "tone:440",
        "--audio-out",
        "null",
        "--duration",
        "1",
        "--data-path",
        "list",
    ]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains(
            "exports only sandstream:av/mapped-audio@0.1.0 (a -mapped world), whose buffers \
             cannot be used: --data-path list"
        ),
        "{}",
        stderr(&output)
    );
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
        assert!(
            report.contains(&format!("{stream} memory per call: +0 bytes over 40 calls")),
            "{}: {report}",
            template.name
        );
    }
}

/// ComponentizeJS never frees a returned `list<u8>`: a frame a call.
/// `check` says so, and a run replaces the instance before it reaches its
/// cap instead of faulting there, without a wrong byte.
#[test]
fn a_leaking_guest_is_reported_by_check_and_recycled_in_a_run() {
    let js = guest("grayscale-js");
    let output = sandstream(&["check", &s(&js)]);
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", stderr(&output));
    // 640x360 RGBA frames: 900 KiB.
    assert!(report.contains("video memory per call: +900."), "{report}");
    assert!(report.contains("the guest leaks"), "{report}");

    let dir = scratch("recycled");
    let args = |out: &Path| {
        [
            "--video-in".to_string(),
            "pattern".into(),
            "--width".into(),
            "320".into(),
            "--height".into(),
            "240".into(),
            "--duration".into(),
            "5".into(),
            "--video-out".into(),
            file(out),
        ]
    };
    let (recycled, reference) = (dir.join("js.y4m"), dir.join("rust.y4m"));
    let mut run_js = vec![
        "run".to_string(),
        s(&js),
        "--memory-limit".into(),
        "32".into(),
    ];
    run_js.extend(args(&recycled));
    let run_js: Vec<&str> = run_js.iter().map(String::as_str).collect();
    let output = sandstream(&run_js);
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    // 300 KiB a frame from ~9 MiB, recycled at 24 MiB: every ~50 frames.
    let recycles = number_after(&log, "\nrecycled:").unwrap_or(0.0);
    assert!((2.0..=4.0).contains(&recycles), "{log}");
    assert!(!log.contains("guest faults"), "{log}");
    let mut run_rust = vec!["run".to_string(), s(&guest("grayscale"))];
    run_rust.extend(args(&reference));
    let run_rust: Vec<&str> = run_rust.iter().map(String::as_str).collect();
    assert!(sandstream(&run_rust).status.success());
    assert!(
        std::fs::read(&recycled).unwrap() == std::fs::read(&reference).unwrap(),
        "the recycled guest wrote other frames"
    );
}

/// The target directory: where `cargo xtask` put the guests' toolchains
/// (first on `PATH` for the projects' builds), and where Rust projects keep
/// their builds.
fn target_dir() -> PathBuf {
    guest("gain")
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `sandstream new DIR --lang LANG --world WORLD`, then the project's own
/// `build.sh`: the component it built.
fn new_project(lang: &str, world: &str) -> PathBuf {
    let name = format!("my-{lang}-{world}");
    let dir = scratch(&format!("new-{lang}-{world}")).join(&name);
    let output = sandstream(&["new", &s(&dir), "--lang", lang, "--world", world]);
    assert!(output.status.success(), "{}", stderr(&output));
    if lang == "js" {
        // Every JavaScript example pins the same packages: use the install
        // `cargo xtask guests` made (400 MB and a download saved).
        let installed = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/grayscale-js/node_modules")
            .canonicalize()
            .expect("cargo xtask guests installs the JavaScript packages");
        std::os::unix::fs::symlink(installed, dir.join("node_modules")).unwrap();
    }
    let binary = Path::new(env!("CARGO_BIN_EXE_sandstream"));
    let tools = [
        target_dir().join("toolchains/bin"),
        binary.parent().unwrap().to_path_buf(),
    ];
    let path = std::env::join_paths(
        tools
            .into_iter()
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let built = Command::new(dir.join("build.sh"))
        .env("PATH", path)
        .env("SANDSTREAM_CACHE_DIR", cache_dir())
        // Rust: the registry crates are built once for all such projects.
        .env("CARGO_TARGET_DIR", target_dir().join("new-projects"))
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{lang} {world}: build.sh failed: {}{}",
        String::from_utf8_lossy(&built.stdout),
        stderr(&built)
    );
    let wasm = dir.join(format!("{name}.wasm"));
    assert!(wasm.is_file(), "{lang} {world}: no {}", wasm.display());
    wasm
}

/// Every template of `lang` (audio, video, av) becomes a project whose
/// build succeeds and whose component writes the bytes of the Rust example
/// for its world.
fn new_projects_match_the_examples(lang: &str) {
    let dir = scratch(&format!("new-{lang}-outputs"));
    for world in ["audio", "video", "av"] {
        let built = new_project(lang, world);
        let same = match world {
            "audio" => gain_output(&dir, &built).0 == gain_output(&dir, &guest("gain")).0,
            "video" => {
                grayscale_output(&dir, &built).0 == grayscale_output(&dir, &guest("grayscale")).0
            }
            // Rust's A/V example is the level meter; the others apply
            // the gain and the grayscale in one instance.
            _ if lang == "rust" => {
                av_output(&dir, &built) == av_output(&dir, &guest("level-meter"))
            }
            _ => av_output(&dir, &built) == gain_and_grayscale(&dir),
        };
        assert!(
            same,
            "the {lang} {world} project writes other bytes than the Rust example"
        );
        // Projects are big (Python and JavaScript runtimes): keep none.
        let _ = std::fs::remove_dir_all(built.parent().unwrap());
    }
}

#[test]
fn new_rust_projects_build_and_match_the_examples() {
    new_projects_match_the_examples("rust");
}

#[test]
fn new_c_projects_build_and_match_the_examples() {
    new_projects_match_the_examples("c");
}

#[test]
fn new_cpp_projects_build_and_match_the_examples() {
    new_projects_match_the_examples("cpp");
}

#[test]
fn new_zig_projects_build_and_match_the_examples() {
    new_projects_match_the_examples("zig");
}

#[test]
fn new_go_projects_build_and_match_the_examples() {
    new_projects_match_the_examples("go");
}

#[test]
fn new_python_projects_build_and_match_the_examples() {
    new_projects_match_the_examples("python");
}

#[test]
fn new_javascript_projects_build_and_match_the_examples() {
    new_projects_match_the_examples("js");
}

#[test]
fn new_refuses_a_directory_that_is_not_empty() {
    let dir = scratch("new-not-empty");
    std::fs::write(dir.join("keep.txt"), "mine").unwrap();
    let output = sandstream(&["new", &s(&dir), "--lang", "c"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("already exists and is not empty"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("keep.txt")).unwrap(),
        "mine"
    );
}
