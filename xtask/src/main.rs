//! Project tasks: `cargo xtask <task>`. No dependencies, so it builds in
//! seconds before anything else.
//!
//! - `setup`: install what builds and tests need (wasm target; ALSA
//!   headers, sox, ffmpeg and PulseAudio through apt-get when run as root;
//!   clang's wasm32 libraries from Debian and Zig, Go and componentize-py
//!   from PyPI for the guests in other languages).
//! - `guests`: build every guest (examples and test guests) to
//!   `target/guests/<name>.wasm`; the JavaScript example through npm and
//!   ComponentizeJS (`npm ci` into its directory, once); the C, C++, Zig,
//!   Go and Python examples with their own `build.sh` where the toolchain
//!   is installed.
//! - `test`: setup, guests, then every test of the workspace, with a
//!   private PulseAudio server for the live-audio tests.
//! - `lint`: rustfmt and clippy (-D warnings) on host and guests.
//! - `demo`: build, then run the A/V example over the test pattern and a
//!   tone into `demo-out/`; with a sound server, also live: a "microphone"
//!   through `gain` into a virtual microphone, recorded as an app would.
//! - `bench`: the criterion benchmarks.
//! - `live-bench [SECONDS] [SIZES]`: glitches and latency of live runs
//!   through a private PulseAudio at 128/256/512-frame buffers (or the
//!   comma-separated SIZES; default 60 s each).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Every guest package: the examples, then the test guests (tests/guests).
const GUESTS: &[&str] = &[
    "gain",
    "grayscale",
    "passthrough",
    "level-meter",
    "wrong-frame-size",
    "not-an-effect",
    "chatty",
    "hostile",
    "double",
    "counter",
    "lying-buffers",
    "adversary",
];

const WASM_TARGET: &str = "wasm32-wasip2";

/// Debian packages the tests use to make and check media.
/// Tools the tests use, and the Debian packages that have them: media
/// makers and checkers, and a sound server with its clients for the live
/// audio tests.
const TEST_PACKAGES: &[(&str, &str)] = &[
    ("sox", "sox"),
    ("ffmpeg", "ffmpeg"),
    ("ffprobe", "ffmpeg"),
    ("pulseaudio", "pulseaudio"),
    ("pactl", "pulseaudio-utils"),
    ("parecord", "pulseaudio-utils"),
    // Live video: a PipeWire session, its V4L2 emulation, GStreamer to
    // serve and read camera nodes, an X server for the window, xwd.
    ("dbus-daemon", "dbus"),
    ("pipewire", "pipewire"),
    ("pw-cli", "pipewire-bin"),
    ("wireplumber", "wireplumber"),
    (
        "/usr/lib/x86_64-linux-gnu/pipewire-0.3/v4l2/libpw-v4l2.so",
        "pipewire-v4l2",
    ),
    ("gst-launch-1.0", "gstreamer1.0-tools"),
    (
        "/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstpipewire.so",
        "gstreamer1.0-pipewire",
    ),
    (
        "/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstvideotestsrc.so",
        "gstreamer1.0-plugins-base",
    ),
    ("Xvfb", "xvfb"),
    ("xwd", "x11-apps"),
];

/// Libraries the host links (cpal's ALSA backend, PipeWire for the
/// virtual camera), found by pkg-config.
const BUILD_PACKAGES: &[(&str, &str)] = &[
    ("alsa", "libasound2-dev"),
    ("libpipewire-0.3", "libpipewire-0.3-dev"),
    ("libspa-0.2", "libspa-0.2-dev"),
];

/// pipewire-sys generates its bindings with bindgen, which loads libclang
/// (Debian: /usr/lib/llvm-N/lib/libclang.so from libclang-dev).
fn has_libclang() -> bool {
    std::fs::read_dir("/usr/lib").is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.file_name().to_string_lossy().starts_with("llvm-")
                && e.path().join("lib/libclang.so").exists()
        })
    })
}

type Result<T = ()> = std::result::Result<T, String>;

mod languages;
mod live_bench;
mod sound;
mod video;
mod video_bench;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let result = match task {
        "setup" => setup(true),
        "guests" => setup(false).and_then(|()| guests()),
        "test" => test(),
        "lint" => setup(false).and_then(|()| lint()),
        "demo" => demo(),
        "live-bench" => live_bench_task(args.get(1), args.get(2)),
        "with-services" => with_services(&args[1..]),
        "video-bench" => video_bench_task(args.get(1)),
        "bench" => setup(false).and_then(|()| guests()).and_then(|()| {
            cargo_with_guests(&["bench", "-p", "sandstream", "--bench", "roundtrip"])
        }),
        "help" | "--help" | "-h" => {
            println!(
                "usage: cargo xtask <setup|guests|test|lint|demo|bench|live-bench [SECONDS] [SIZES]|video-bench [SECONDS]|\
                 with-services COMMAND...>"
            );
            Ok(())
        }
        other => Err(format!(
            "unknown task `{other}`; expected setup, guests, test, lint, demo or bench"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask {task}: {err}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

fn run(command: &mut Command) -> Result {
    eprintln!("+ {command:?}");
    let started = std::time::Instant::now();
    let status = command
        .current_dir(root())
        .status()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    // Where a CI run spends its time, for keeping it short.
    eprintln!("  ({:.1} s)", started.elapsed().as_secs_f64());
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed ({status})"))
    }
}

fn cargo_command(args: &[&str]) -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.args(args);
    command
}

fn cargo(args: &[&str]) -> Result {
    run(&mut cargo_command(args))
}

/// Tests and benches find the guests where `guests()` put them, wherever the
/// target directory is.
fn cargo_with_guests(args: &[&str]) -> Result {
    run(cargo_command(args).env("SANDSTREAM_GUESTS_DIR", target_dir().join("guests")))
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// The wasm target and the host's build packages always; with
/// `media_tools`, what the tests use too: sox, ffmpeg, the sound and video
/// services, and the toolchains of the guests in other languages.
fn setup(media_tools: bool) -> Result {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    let has_target = installed.is_ok_and(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l.trim() == WASM_TARGET)
    });
    if !has_target {
        run(Command::new("rustup").args(["target", "add", WASM_TARGET]))?;
    }
    let has_pkg_config = on_path("pkg-config");
    let mut missing: Vec<&str> = BUILD_PACKAGES
        .iter()
        .filter(|(lib, _)| !has_pkg_config || !pkg_config_has(lib))
        .map(|(_, pkg)| *pkg)
        .collect();
    if !has_pkg_config {
        missing.push("pkg-config");
    }
    if !has_libclang() {
        missing.extend(["libclang-dev", "clang"]);
    }
    if media_tools {
        // C guests: clang's wasm32 linker, runtime and libc.
        missing.extend(
            languages::C_PACKAGES
                .iter()
                .filter(|(file, _)| !Path::new(file).exists())
                .map(|(_, pkg)| *pkg),
        );
        missing.extend(
            TEST_PACKAGES
                .iter()
                .filter(|(tool, _)| !(on_path(tool) || Path::new(tool).is_file()))
                .map(|(_, pkg)| *pkg),
        );
    }
    missing.sort_unstable();
    missing.dedup();
    if !missing.is_empty() {
        install_debian_packages(&missing)?;
    }
    if media_tools {
        languages::install_pypi_tools()?;
    }
    Ok(())
}

fn install_debian_packages(missing: &[&str]) -> Result {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if !is_root || !on_path("apt-get") {
        return Err(format!(
            "building and testing need {}; install them, e.g. `sudo apt-get install {}`",
            missing.join(", "),
            missing.join(" ")
        ));
    }
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// Every guest: Rust, then the other languages whose toolchain is here
/// (made components by `sandstream`, so it is built first).
fn guests() -> Result {
    let out = target_dir().join("guests");
    rust_guests(&out, GUESTS)?;
    cargo(&["build", "--release", "--quiet", "-p", "sandstream"])?;
    languages::build(&out, &target_dir().join("release").join("sandstream"))?;
    eprintln!("guests built into {}", out.display());
    Ok(())
}

/// Builds each Rust guest on its own: the SDK's `audio`/`video` features
/// pick a guest's world, and one cargo invocation would unify them.
fn rust_guests(out: &Path, names: &[&str]) -> Result {
    std::fs::create_dir_all(out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    for name in names {
        cargo(&[
            "build",
            "--quiet",
            "--profile",
            "guest",
            "--target",
            WASM_TARGET,
            "-p",
            name,
        ])?;
        // Libraries come out with underscores, binaries with the package name.
        let built_dir = target_dir().join(WASM_TARGET).join("guest");
        let candidates = [
            built_dir.join(format!("{}.wasm", name.replace('-', "_"))),
            built_dir.join(format!("{name}.wasm")),
        ];
        let built = candidates
            .iter()
            .find(|p| p.is_file())
            .ok_or_else(|| format!("no .wasm found for guest {name}"))?;
        let dest = out.join(format!("{name}.wasm"));
        std::fs::copy(built, &dest).map_err(|e| format!("copying to {}: {e}", dest.display()))?;
    }
    Ok(())
}

fn test() -> Result {
    setup(true)?;
    guests()?;
    languages::test_sdks()?;
    // The live-audio tests run against a real sound server of our own,
    // stopped (by PID) when this function returns.
    let server = sound::SoundServer::start(&target_dir())?;
    let video = video::VideoServices::start(&target_dir(), &root())?;
    // Release only: wasmtime and Cranelift are built once for tests, demo
    // and benches.
    run(cargo_command(&["test", "--release", "-p", "sandstream"])
        .env("SANDSTREAM_GUESTS_DIR", target_dir().join("guests"))
        .env("SANDSTREAM_LIVE_AUDIO", "1")
        .envs(server.environment())
        .envs(video.environment()))
}

/// Runs one command with the test services up (a private PulseAudio,
/// PipeWire session and X display), e.g. one live test:
/// `cargo xtask with-services cargo test --release -p sandstream --test live video`.
fn with_services(command: &[String]) -> Result {
    let Some((program, args)) = command.split_first() else {
        return Err("with-services needs a command to run".into());
    };
    setup(true)?;
    guests()?;
    let server = sound::SoundServer::start(&target_dir())?;
    let video = video::VideoServices::start(&target_dir(), &root())?;
    run(Command::new(program)
        .args(args)
        .env("SANDSTREAM_GUESTS_DIR", target_dir().join("guests"))
        .env("SANDSTREAM_LIVE_AUDIO", "1")
        .envs(server.environment())
        .envs(video.environment()))
}

fn video_bench_task(seconds: Option<&String>) -> Result {
    let seconds = match seconds {
        Some(text) => text
            .parse()
            .map_err(|_| format!("video-bench takes whole seconds, got `{text}`"))?,
        None => 12,
    };
    setup(true)?;
    guests()?;
    cargo(&["build", "--release", "--quiet", "-p", "sandstream"])?;
    video_bench::video_bench(
        &target_dir(),
        &root(),
        &target_dir().join("release").join("sandstream"),
        &target_dir().join("guests").join("passthrough.wasm"),
        seconds,
    )
}

fn live_bench_task(seconds: Option<&String>, sizes: Option<&String>) -> Result {
    let seconds = match seconds {
        Some(text) => text
            .parse()
            .map_err(|_| format!("live-bench takes whole seconds, got `{text}`"))?,
        None => 60,
    };
    let sizes = match sizes {
        Some(text) => text
            .split(',')
            .map(|size| size.trim().parse::<u32>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| format!("live-bench sizes are frames, as in 128,256; got `{text}`"))?,
        None => vec![128, 256, 512],
    };
    setup(true)?;
    guests()?;
    cargo(&["build", "--release", "--quiet", "-p", "sandstream"])?;
    live_bench::live_bench(
        &target_dir(),
        &target_dir().join("release").join("sandstream"),
        &target_dir().join("guests").join("gain.wasm"),
        (seconds, &sizes),
    )
}

/// The library without its `cli` feature must not pull in the CLI's crates.
fn library_stays_lean() -> Result {
    let output = cargo_command(&[
        "tree",
        "-p",
        "sandstream",
        "--no-default-features",
        "-e",
        "normal",
        "--prefix",
        "none",
    ])
    .current_dir(root())
    .output()
    .map_err(|e| format!("cargo tree: {e}"))?;
    let tree = String::from_utf8_lossy(&output.stdout);
    let leaked: Vec<&str> = ["clap ", "ctrlc ", "tracing-subscriber "]
        .into_iter()
        .filter(|name| tree.lines().any(|line| line.starts_with(name)))
        .collect();
    if !output.status.success() || !leaked.is_empty() {
        return Err(format!(
            "the sandstream library must not depend on {leaked:?} without its `cli` feature"
        ));
    }
    Ok(())
}

fn pkg_config_has(library: &str) -> bool {
    Command::new("pkg-config")
        .args(["--exists", library])
        .status()
        .is_ok_and(|s| s.success())
}

fn lint() -> Result {
    cargo(&["fmt", "--all", "--", "--check"])?;
    languages::lint()?;
    library_stays_lean()?;
    cargo(&[
        "clippy",
        "--release",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    for name in GUESTS {
        cargo(&[
            "clippy",
            "--quiet",
            "--profile",
            "guest",
            "--target",
            WASM_TARGET,
            "-p",
            name,
            "--",
            "-D",
            "warnings",
        ])?;
    }
    Ok(())
}

fn demo() -> Result {
    setup(false)?;
    rust_guests(&target_dir().join("guests"), &["level-meter", "gain"])?;
    cargo(&["build", "--release", "--quiet", "-p", "sandstream"])?;
    let out = root().join("demo-out");
    std::fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    let binary = target_dir().join("release").join("sandstream");
    let guest = target_dir().join("guests").join("level-meter.wasm");
    let path = |name: &str| format!("file:{}", out.join(name).display());
    run(Command::new(&binary)
        .arg("run")
        .arg(&guest)
        .args([
            "--audio-in",
            "tone:440",
            "--video-in",
            "pattern",
            "--duration",
            "3",
        ])
        .args(["--audio-out", &path("demo.wav")])
        .args([
            "--video-out",
            &path("demo.y4m"),
            "--video-out",
            &path("snapshot.png"),
        ]))?;
    println!(
        "\nDemo done: the level-meter guest ({}) ran over a 440 Hz tone and the test pattern\n\
         for 3 s and drew the tone's level as a bar on the video. Outputs in {}:\n  \
         demo.wav     the audio (passed through unchanged)\n  \
         demo.y4m     the video with the level bar (play with `ffplay demo-out/demo.y4m`)\n  \
         snapshot.png the last frame",
        guest.display(),
        out.display()
    );
    live_demo(&binary, &out)
}

/// The product's main job, where a sound server runs: a tone played into
/// a "microphone" (a null sink), through the gain example, into a virtual
/// microphone, recorded from it as a video-call app would.
fn live_demo(binary: &Path, out: &Path) -> Result {
    let reachable = Command::new("pactl")
        .arg("info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !reachable {
        println!(
            "\nLive demo skipped: no sound server answers. On a desktop, PulseAudio or PipeWire\n\
             runs already; elsewhere start one (`pulseaudio --start`) and run `cargo xtask demo`\n\
             again. Then try it yourself:\n  \
             sandstream devices\n  \
             sandstream virtual-mic\n  \
             sandstream run target/guests/gain.wasm --set gain=0.5 --audio-in device:default \\\n    \
             --audio-out device:sandstream"
        );
        return Ok(());
    }
    let name = "sandstream_demo";
    let pactl = |args: &[&str]| -> Result<String> {
        let output = Command::new("pactl")
            .args(args)
            .output()
            .map_err(|e| format!("pactl: {e}"))?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    };
    let feed = pactl(&[
        "load-module",
        "module-null-sink",
        "sink_name=sandstream_demo_feed",
        "sink_properties=device.description=DemoMicrophone",
    ])?;
    let _ = Command::new(binary)
        .args(["virtual-mic", "--remove", "--name", name])
        .output();
    run(Command::new(binary).args(["virtual-mic", "--keep", "--name", name]))?;
    let tone = out.join("live-input.wav");
    run(Command::new("sox")
        .args(["-n", "-r", "48000", "-c", "2"])
        .arg(&tone)
        .args(["synth", "8", "sine", "440", "vol", "0.5"]))?;
    let recording = out.join("live-virtual-mic.wav");
    let spawn = |program: &str, args: &[String]| {
        Command::new(program)
            .args(args)
            .spawn()
            .map_err(|e| format!("{program}: {e}"))
    };
    let mut recorder = spawn(
        "parecord",
        &[
            format!("--device={name}_mic"),
            "--latency-msec=20".into(),
            "--file-format=wav".into(),
            recording.display().to_string(),
        ],
    )?;
    let mut player = spawn(
        "paplay",
        &[
            "--device=sandstream_demo_feed".into(),
            "--latency-msec=100".into(),
            tone.display().to_string(),
        ],
    )?;
    // Null sinks render in big blocks until low-latency clients settle.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let result = run(Command::new(binary)
        .arg("run")
        .arg(target_dir().join("guests").join("gain.wasm"))
        .args(["--set", "gain=0.5", "--duration", "4"])
        .args(["--audio-in", "device:DemoMicrophone"])
        .args(["--audio-out", &format!("device:{name}")]));
    let _ = player.kill();
    // SIGINT lets parecord complete its WAV header.
    let _ = Command::new("kill")
        .args(["-INT", &recorder.id().to_string()])
        .status();
    let _ = recorder.wait();
    let _ = player.wait();
    let _ = Command::new(binary)
        .args(["virtual-mic", "--remove", "--name", name])
        .output();
    let _ = pactl(&["unload-module", &feed]);
    result?;
    println!(
        "\nLive demo done: a 440 Hz tone played into a \"microphone\" went through the gain\n\
         example (gain 0.5) into the virtual microphone \"Sandstream Microphone\", and was\n\
         recorded from it as a video-call app would: {}",
        recording.display()
    );
    Ok(())
}
