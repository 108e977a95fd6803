//! `cargo xtask video-bench [SECONDS]`: what the live video path costs the
//! host per frame, at 720p and 1080p, as a multiple of one memcpy of the
//! frame, beside the file path; and the rate the PipeWire virtual camera
//! sustains at 1080p. The figures in docs/PERFORMANCE.md.
//!
//! Live: GStreamer serves a 30 fps YUYV camera node; sandstream reads it
//! through PipeWire's V4L2 emulation (nokhwa), runs `passthrough`, and
//! serves a virtual camera that `pipewiresrc` reads. File: a Y4M file
//! through `passthrough` into a Y4M file, offline. Host cost = the
//! sandstream process's CPU time (user + system, from its report) per
//! frame, so it includes the emulation and PipeWire client work in our
//! process, decoding, both guest copies and conversions.

use crate::video::VideoServices;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SIZES: [(u32, u32); 2] = [(1280, 720), (1920, 1080)];

pub fn video_bench(
    target: &Path,
    root: &Path,
    binary: &Path,
    guest: &Path,
    seconds: u32,
) -> Result<(), String> {
    let services = VideoServices::start(target, root)?;
    let env = services.environment();
    let preload = env
        .iter()
        .find(|(k, _)| k == "SANDSTREAM_V4L2_PRELOAD")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let dir = target.join("video-bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    println!(
        "| frame | memcpy | live: camera → guest → virtual camera | file: Y4M → guest → Y4M |"
    );
    println!("|---|---|---|---|");
    for (w, h) in SIZES {
        let memcpy_ms = memcpy_ms(w as usize * h as usize * 4);
        // Live.
        let node = format!("bench-camera-{w}");
        let camera = spawn(
            Command::new("gst-launch-1.0")
                .args(["-q", "videotestsrc", "pattern=ball", "is-live=true", "!"])
                .arg(format!(
                    "video/x-raw,format=YUY2,width={w},height={h},framerate=30/1"
                ))
                .args(["!", "pipewiresink", "mode=provide"])
                .arg(format!(
                    "stream-properties=props,media.class=Video/Source,node.name={node}"
                ))
                .envs(env.clone()),
        )?;
        wait_for_node(&env, &node)?;
        let out_node = format!("bench-out-{w}");
        let stream = spawn(
            Command::new(binary)
                .args(["run"])
                .arg(guest)
                .args([
                    "--video-in",
                    "camera:0",
                    "--width",
                    &w.to_string(),
                    "--height",
                    &h.to_string(),
                ])
                .args([
                    "--video-out",
                    &format!("pipewire:{out_node}"),
                    "--duration",
                    &seconds.to_string(),
                ])
                .env("LD_PRELOAD", &preload)
                .envs(env.clone())
                .stderr(Stdio::piped()),
        )?;
        wait_for_node(&env, &out_node)?;
        let reader = read_frames(&env, &out_node, (seconds.saturating_sub(2)) * 30)?;
        let report = finish(stream)?;
        drop(camera);
        let live_ms = cpu_ms_per_frame(&report)?;
        // File.
        let input = dir.join(format!("in-{w}.y4m"));
        make_y4m(&input, w, h, seconds * 30)?;
        let file_run = spawn(
            Command::new(binary)
                .args(["run"])
                .arg(guest)
                .args(["--video-in", &format!("file:{}", input.display())])
                .args([
                    "--video-out",
                    &format!("file:{}", dir.join("out.y4m").display()),
                ])
                .stderr(Stdio::piped()),
        )?;
        let file_report = finish(file_run)?;
        let file_ms = cpu_ms_per_frame(&file_report)?;
        println!(
            "| {w}×{h} | {memcpy_ms:.2} ms | {live_ms:.2} ms = {:.1}× ({reader:.1} fps served) | {file_ms:.2} ms = {:.1}× |",
            live_ms / memcpy_ms,
            file_ms / memcpy_ms
        );
    }
    // The virtual camera alone, as fast as the pattern can be drawn.
    for fps in [30u32, 60] {
        let node = format!("bench-pattern-{fps}");
        let stream = spawn(
            Command::new(binary)
                .args(["run"])
                .arg(guest)
                .args([
                    "--video-in",
                    "pattern",
                    "--width",
                    "1920",
                    "--height",
                    "1080",
                ])
                .args(["--fps", &fps.to_string(), "--realtime"])
                .args([
                    "--video-out",
                    &format!("pipewire:{node}"),
                    "--duration",
                    &seconds.to_string(),
                ])
                .envs(env.clone())
                .stderr(Stdio::piped()),
        )?;
        wait_for_node(&env, &node)?;
        let served = read_frames(&env, &node, (seconds.saturating_sub(2)) * fps)?;
        let report = finish(stream)?;
        println!(
            "virtual camera at 1080p, pattern at {fps} fps: {served:.1} fps read by pipewiresrc; \
             {:.2} ms CPU per frame",
            cpu_ms_per_frame(&report)?
        );
    }
    Ok(())
}

/// A child process, killed if dropped before it is finished.
struct Spawned(Option<Child>);

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn(command: &mut Command) -> Result<Spawned, String> {
    command
        .stdout(Stdio::null())
        .spawn()
        .map(|child| Spawned(Some(child)))
        .map_err(|e| format!("starting {:?}: {e}", command.get_program()))
}

fn finish(mut spawned: Spawned) -> Result<String, String> {
    let child = spawned.0.take().expect("not finished yet");
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("sandstream failed:\n{text}"))
    }
}

fn wait_for_node(env: &[(String, String)], name: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let wanted = format!("node.name = \"{name}\"");
    loop {
        let out = Command::new("pw-cli")
            .args(["ls", "Node"])
            .envs(env.iter().cloned())
            .output()
            .map_err(|e| e.to_string())?;
        if String::from_utf8_lossy(&out.stdout).contains(&wanted) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("node {name} never appeared"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads `count` frames from a node; the rate they arrived at.
fn read_frames(env: &[(String, String)], node: &str, count: u32) -> Result<f64, String> {
    use std::io::BufRead as _;
    let mut reader = Command::new("gst-launch-1.0")
        .args([
            "-v",
            "pipewiresrc",
            &format!("target-object={node}"),
            &format!("num-buffers={count}"),
        ])
        // Without a caps filter pipewiresrc never fixes a format.
        .args([
            "!",
            "video/x-raw",
            "!",
            "identity",
            "silent=false",
            "!",
            "fakesink",
        ])
        .envs(env.iter().cloned())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let lines = std::io::BufReader::new(reader.stdout.take().expect("piped"));
    let arrivals: Vec<Instant> = lines
        .lines()
        .map_while(Result::ok)
        .filter(|l| l.contains("chain"))
        .map(|_| Instant::now())
        .collect();
    let _ = reader.wait();
    match (arrivals.first(), arrivals.last()) {
        (Some(first), Some(last)) if arrivals.len() > 1 => {
            Ok((arrivals.len() - 1) as f64 / (*last - *first).as_secs_f64())
        }
        _ => Err(format!("no frames read from {node}")),
    }
}

/// CPU milliseconds per video frame, from a run's report.
fn cpu_ms_per_frame(report: &str) -> Result<f64, String> {
    let number_after = |label: &str| -> Option<f64> {
        let at = report.find(label)? + label.len();
        report[at..].split_whitespace().next()?.parse().ok()
    };
    let frames = number_after("video: ").ok_or_else(|| format!("no frame count in:\n{report}"))?;
    let user = number_after("cpu: ").ok_or_else(|| format!("no cpu line in:\n{report}"))?;
    let system = number_after(" s user, ").unwrap_or(0.0);
    Ok((user + system) * 1000.0 / frames)
}

fn make_y4m(path: &Path, w: u32, h: u32, frames: u32) -> Result<(), String> {
    if path.exists() {
        return Ok(());
    }
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={w}x{h}:rate=30"))
        .args(["-frames:v", &frames.to_string(), "-pix_fmt", "yuv420p"])
        .arg(path)
        .status()
        .map_err(|e| format!("ffmpeg: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err("ffmpeg failed".into())
    }
}

/// Median time of one memcpy of `bytes`, in ms.
fn memcpy_ms(bytes: usize) -> f64 {
    let source = vec![7u8; bytes];
    let mut target = vec![0u8; bytes];
    let mut times: Vec<f64> = (0..101)
        .map(|_| {
            let start = Instant::now();
            target.copy_from_slice(std::hint::black_box(&source));
            std::hint::black_box(&target);
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[50]
}
