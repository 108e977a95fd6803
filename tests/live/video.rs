//! Live video against a real PipeWire session and X display, as
//! `cargo xtask test` starts them (SANDSTREAM_LIVE_VIDEO=1 says they are
//! there; without it these tests say so and pass without running):
//! a virtual camera read back by GStreamer's `pipewiresrc`, a camera
//! served by GStreamer and read by nokhwa through PipeWire's V4L2
//! emulation, and the preview window on Xvfb read back with `xwd`.

use crate::common::*;
use sandstream::camera::{FrameDecoder, PixelLayout};
use sandstream::media::{Fps, VideoFormat, VideoFrame};
use sandstream::sink::{Sink as _, Y4mSink};
use sandstream::source::{PatternSource, Source as _, Y4mSource};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const W: u32 = 320;
const H: u32 = 240;

fn format() -> VideoFormat {
    VideoFormat {
        width: W,
        height: H,
        fps: Fps { num: 30, den: 1 },
    }
}

fn frame_bytes() -> usize {
    format().frame_bytes()
}

/// True when the tests should run.
fn live_video() -> bool {
    if std::env::var_os("SANDSTREAM_LIVE_VIDEO").is_none() {
        eprintln!("live video tests skipped: run them with `cargo xtask test`");
        return false;
    }
    true
}

/// The live video tests' turn (they take turns with the audio ones), or
/// `None` when the services are not there.
fn video_turn() -> Option<std::sync::MutexGuard<'static, ()>> {
    live_video().then(crate::one_at_a_time)
}

/// A child process killed when dropped (a test that fails leaves none).
struct Running(Child);

impl Running {
    fn spawn(command: &mut Command) -> Self {
        Self(command.spawn().expect("the process starts"))
    }

    /// Waits up to `limit` for the process to end; its output.
    fn finish(mut self, limit: Duration) -> (bool, String) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                let mut text = String::new();
                for pipe in [
                    self.0
                        .stdout
                        .take()
                        .map(|p| Box::new(p) as Box<dyn std::io::Read>),
                    self.0
                        .stderr
                        .take()
                        .map(|p| Box::new(p) as Box<dyn std::io::Read>),
                ]
                .into_iter()
                .flatten()
                {
                    let mut pipe = pipe;
                    let _ = pipe.read_to_string(&mut text);
                }
                return (status.success(), text);
            }
            assert!(Instant::now() < deadline, "a process ran past {limit:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

use std::io::Read as _;

fn sandstream_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sandstream"));
    command
        .args(args)
        .env("SANDSTREAM_CACHE_DIR", cache_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Waits until PipeWire lists a node called `name`.
fn wait_for_node(name: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let wanted = format!("node.name = \"{name}\"");
    while !tool("pw-cli", &["ls", "Node"]).contains(&wanted) {
        assert!(
            Instant::now() < deadline,
            "PipeWire never listed node {name}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The pattern's first `count` frames, as the pipeline makes them.
fn pattern_frames(count: usize) -> Vec<Vec<u8>> {
    let mut source = PatternSource::new(format());
    (0..count)
        .map(|_| {
            let mut frame = Vec::new();
            source.read(&mut frame, 1).unwrap();
            frame
        })
        .collect()
}

/// Where each of `got` is in `reference`, searching forward from the
/// previous match (a repeating pattern cannot match backwards); `None`
/// for a frame that matches nothing ahead.
fn positions(got: &[Vec<u8>], reference: &[Vec<u8>]) -> Vec<Option<usize>> {
    let mut from = 0;
    got.iter()
        .map(|frame| {
            let found = (from..reference.len()).find(|&i| reference[i] == *frame);
            if let Some(i) = found {
                from = i + 1;
            }
            found
        })
        .collect()
}

/// Every one of 90 frames `got` is exactly a frame of `reference`, and at
/// least 85 of the 89 steps between them go to the next frame (tolerance: a
/// loaded 2-core VM may replace a frame now and then).
fn assert_frames_in_order(got: &[Vec<u8>], reference: &[Vec<u8>]) {
    assert_eq!(got.len(), 90);
    let found = positions(got, reference);
    let unmatched = found.iter().filter(|f| f.is_none()).count();
    assert_eq!(
        unmatched, 0,
        "every frame is a frame that was sent, bit-exact"
    );
    let steps = consecutive(&found);
    assert!(
        steps >= 85,
        "{steps} of 89 steps were to the next frame: {found:?}"
    );
}

/// Steps of exactly one frame between consecutive matches.
fn consecutive(found: &[Option<usize>]) -> usize {
    found
        .windows(2)
        .filter(|w| matches!((w[0], w[1]), (Some(a), Some(b)) if b == a + 1))
        .count()
}

#[test]
fn a_virtual_camera_serves_the_processed_frames_bit_exact_at_the_stream_rate() {
    let Some(_turn) = video_turn() else { return };
    let dir = scratch("virtual-camera");
    let node = format!("sandstream-test-{}", std::process::id());
    let stream = Running::spawn(&mut sandstream_command(&[
        "--quiet",
        "run",
        &s(&guest("passthrough")),
        "--video-in",
        "pattern",
        "--width",
        "320",
        "--height",
        "240",
        "--video-out",
        &format!("pipewire:{node}"),
        "--realtime",
        "--duration",
        "12",
    ]));
    wait_for_node(&node);
    let raw = dir.join("read-back.rgba");
    // `identity` says each buffer as it passes: their arrival times give
    // the rate the node serves. 90 frames = 3 s at 30 fps.
    let mut reader = Running::spawn(
        Command::new("gst-launch-1.0")
            .args([
                "-v",
                "pipewiresrc",
                &format!("target-object={node}"),
                "num-buffers=90",
            ])
            .args(["!", "video/x-raw,format=RGBA,width=320,height=240"])
            .args(["!", "identity", "silent=false", "!", "filesink"])
            .arg(format!("location={}", raw.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let lines = std::io::BufReader::new(reader.0.stdout.take().unwrap());
    let arrivals: Vec<Instant> = std::io::BufRead::lines(lines)
        .map_while(Result::ok)
        .filter(|line| line.contains("chain"))
        .map(|_| Instant::now())
        .collect();
    let (ok, _) = reader.finish(Duration::from_secs(20));
    assert!(ok, "pipewiresrc failed");
    let (ok, report) = stream.finish(Duration::from_secs(30));
    assert!(ok, "sandstream failed: {report}");

    assert_eq!(arrivals.len(), 90, "identity saw every buffer");
    let span = (arrivals[89] - arrivals[0]).as_secs_f64();
    let fps = 89.0 / span;
    // Tolerance 15 %: the reader's own scheduling on a loaded VM.
    assert!(
        (25.5..=34.5).contains(&fps),
        "served at {fps:.1} fps, not 30"
    );
    let bytes = std::fs::read(&raw).unwrap();
    assert_eq!(bytes.len(), 90 * frame_bytes(), "90 whole RGBA frames");
    let got: Vec<Vec<u8>> = bytes.chunks(frame_bytes()).map(<[u8]>::to_vec).collect();
    assert_frames_in_order(&got, &pattern_frames(30 * 12));
}

#[test]
fn a_camera_served_by_pipewire_arrives_intact_counted_and_in_order() {
    let Some(_turn) = video_turn() else { return };
    let dir = scratch("camera");
    // The frames the camera will send, made by the same element offline.
    let reference_raw = dir.join("reference.yuyv");
    tool(
        "gst-launch-1.0",
        &[
            "-q",
            "videotestsrc",
            "pattern=ball",
            "num-buffers=600",
            "!",
            CAMERA_CAPS,
            "!",
            "filesink",
            &format!("location={}", reference_raw.display()),
        ],
    );
    let _camera = ball_camera(&format!("sandstream-test-camera-{}", std::process::id()));
    let captured = dir.join("captured.y4m");
    let (ok, report) = Running::spawn(
        sandstream_command(&[
            "run",
            &s(&guest("passthrough")),
            "--video-in",
            "camera:0",
            "--width",
            "320",
            "--height",
            "240",
            "--video-out",
            &file(&captured),
            "--duration",
            "3",
        ])
        .env("LD_PRELOAD", preload()),
    )
    .finish(Duration::from_secs(30));
    assert!(ok, "sandstream failed: {report}");
    assert!(
        report.contains("320x240 YUYV @ 30 fps"),
        "the mode is reported: {report}"
    );
    assert!(report.contains("video: 90 frames in, 90 out"), "{report}");

    // Our YUYV decoding of the reference, through the same Y4M round trip
    // as the captured file: the comparison is then exact.
    let reference_y4m = dir.join("reference.y4m");
    let decoder = FrameDecoder::new(PixelLayout::Yuyv, W, H);
    let mut sink = Y4mSink::create(&reference_y4m, format()).unwrap();
    let raw = std::fs::read(&reference_raw).unwrap();
    for (index, yuyv) in raw.chunks(W as usize * H as usize * 2).enumerate() {
        let mut pixels = Vec::new();
        decoder.decode(yuyv, &mut pixels).unwrap();
        let frame = VideoFrame {
            pixels,
            index: index as u64,
            timestamp_ns: 0,
        };
        sink.write(&frame).unwrap();
    }
    Box::new(sink).finish().unwrap();
    let reference = read_y4m(&reference_y4m);
    let got = read_y4m(&captured);
    assert_eq!(got.len(), 90, "3 s at 30 fps");
    assert_frames_in_order(&got, &reference);
}

fn read_y4m(path: &Path) -> Vec<Vec<u8>> {
    let mut source = Y4mSource::open(path).unwrap();
    let mut frames = Vec::new();
    loop {
        let mut frame = Vec::new();
        if source.read(&mut frame, 1).unwrap() == 0 {
            return frames;
        }
        frames.push(frame);
    }
}

/// The pattern's first frame through `grayscale`, as a lossless PNG: what
/// the window should show.
fn grayscale_reference(dir: &Path) -> Vec<u8> {
    let reference = dir.join("reference.png");
    let out = sandstream(&[
        "run",
        &s(&guest("grayscale")),
        "--video-in",
        "pattern",
        "--width",
        "320",
        "--height",
        "240",
        "--video-out",
        &file(&reference),
        "--duration",
        "0.03",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    read_png(&reference)
}

/// Grabs the screen until a window of `panes` frames side by side shows
/// `expected[pane]` in each pane — wherever the pattern does not move
/// (bars, not the square or the frame number): at least 90 % of the
/// pixels equal. Returns the last grab's panes as RGB rows.
fn wait_for_window(dir: &Path, expected: &[Vec<u8>]) -> Vec<Vec<[u8; 3]>> {
    let (w, h) = (W as usize, H as usize);
    let panes = expected.len();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let grab = dir.join("screen.xwd");
        let out = Command::new("xwd")
            .args(["-root", "-silent", "-out"])
            .arg(&grab)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "xwd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let screen = Xwd::read(&grab);
        if let Some((x0, y0, box_w, box_h)) = screen.bounding_box()
            && (box_w, box_h) == (w * panes, h)
        {
            let shown: Vec<Vec<[u8; 3]>> = (0..panes)
                .map(|pane| {
                    (0..w * h)
                        .map(|i| screen.rgb(x0 + pane * w + i % w, y0 + i / w))
                        .collect()
                })
                .collect();
            let matching = shown.iter().zip(expected).all(|(got, want)| {
                let same = got
                    .iter()
                    .zip(want.chunks(4))
                    .filter(|(px, rgba)| px[..] == rgba[..3])
                    .count();
                same * 10 >= w * h * 9
            });
            if matching {
                return shown;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no window showing the expected frames appeared"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `grayscale` over the pattern into a preview window (and `extra`
/// outputs or flags), for 20 s of real time.
fn window_run(extra: &[&str]) -> Running {
    let guest = s(&guest("grayscale"));
    let mut args = vec![
        "run",
        guest.as_str(),
        "--video-in",
        "pattern",
        "--width",
        "320",
        "--height",
        "240",
        "--video-out",
        "window",
        "--realtime",
        "--duration",
        "20",
    ];
    args.extend_from_slice(extra);
    Running::spawn(&mut sandstream_command(&args))
}

#[test]
fn the_preview_window_shows_the_processed_frame() {
    let Some(_turn) = video_turn() else { return };
    let dir = scratch("window");
    let expected = grayscale_reference(&dir);
    let _stream = window_run(&[]);
    let shown = wait_for_window(&dir, &[expected]);
    assert!(
        shown[0].iter().all(|px| px[0] == px[1] && px[1] == px[2]),
        "every pixel in the window is gray (the guest ran)"
    );
}

#[test]
fn the_preview_window_shows_the_input_beside_the_output() {
    let Some(_turn) = video_turn() else { return };
    let dir = scratch("window-input");
    let processed = grayscale_reference(&dir);
    let input = pattern_frames(1).remove(0);
    let _stream = window_run(&["--preview-input"]);
    let shown = wait_for_window(&dir, &[input, processed]);
    assert!(
        shown[0].iter().any(|px| px[0] != px[1]),
        "the left pane is in colour (the input)"
    );
}

fn read_png(path: &Path) -> Vec<u8> {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgba);
    pixels
}

/// A screen grab in X's own dump format (32-bit TrueColor, as Xvfb's
/// 24-bit screens give).
struct Xwd {
    width: usize,
    height: usize,
    bytes_per_line: usize,
    lsb_first: bool,
    pixels: Vec<u8>,
}

impl Xwd {
    fn read(path: &Path) -> Self {
        let data = std::fs::read(path).unwrap();
        let field =
            |i: usize| u32::from_be_bytes(data[i * 4..i * 4 + 4].try_into().unwrap()) as usize;
        let (header, width, height, byte_order) = (field(0), field(4), field(5), field(7));
        let (bits_per_pixel, bytes_per_line, ncolors) = (field(11), field(12), field(19));
        assert_eq!(
            bits_per_pixel, 32,
            "a 24-bit screen dumps 32 bits per pixel"
        );
        Self {
            width,
            height,
            bytes_per_line,
            lsb_first: byte_order == 0,
            pixels: data[header + ncolors * 12..].to_vec(),
        }
    }

    fn rgb(&self, x: usize, y: usize) -> [u8; 3] {
        let p = &self.pixels[y * self.bytes_per_line + x * 4..][..4];
        if self.lsb_first {
            [p[2], p[1], p[0]]
        } else {
            [p[1], p[2], p[3]]
        }
    }

    /// The smallest box around every non-black pixel (Xvfb's root is
    /// black with -br; there is no window manager, so no decorations).
    fn bounding_box(&self) -> Option<(usize, usize, usize, usize)> {
        let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
        for y in 0..self.height {
            for x in 0..self.width {
                if self.rgb(x, y) != [0, 0, 0] {
                    (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
                }
            }
        }
        (x0 != usize::MAX).then(|| (x0, y0, x1 - x0 + 1, y1 - y0 + 1))
    }
}

#[test]
fn an_unknown_camera_is_an_error_that_lists_the_cameras() {
    let out = sandstream(&[
        "run",
        &s(&guest("passthrough")),
        "--video-in",
        "camera:No Such Camera",
        "--duration",
        "1",
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("no camera matches `No Such Camera` on Video4Linux"),
        "{err}"
    );
}

/// What the test cameras send.
const CAMERA_CAPS: &str = "video/x-raw,format=YUY2,width=320,height=240,framerate=30/1";

/// Serves GStreamer's moving ball as a PipeWire camera node `name`.
fn ball_camera(name: &str) -> Running {
    let camera = Running::spawn(
        Command::new("gst-launch-1.0")
            .args(["-q", "videotestsrc", "pattern=ball", "is-live=true"])
            .args(["!", CAMERA_CAPS, "!", "pipewiresink", "mode=provide"])
            .arg(format!(
                "stream-properties=props,media.class=Video/Source,node.name={name}"
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_for_node(name);
    camera
}

fn preload() -> String {
    std::env::var("SANDSTREAM_V4L2_PRELOAD").expect("set by cargo xtask test")
}

/// Bytes of one 320x240 4:2:0 Y4M frame with its `FRAME` line.
const Y4M_FRAME: u64 = 320 * 240 * 3 / 2 + 6;

/// Waits (up to 15 s) until a Y4M being written holds `frames` frames.
fn wait_until_written(partial: &Path, frames: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::fs::metadata(partial).map_or(0, |m| m.len()) < frames * Y4M_FRAME {
        assert!(
            Instant::now() < deadline,
            "no video was written to {}",
            partial.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_camera_that_disappears_mid_run_stops_the_run_with_its_name_and_outputs_kept() {
    let Some(_turn) = video_turn() else { return };
    let dir = scratch("camera-gone");
    let camera = ball_camera(&format!("sandstream-test-gone-{}", std::process::id()));
    let (video, audio) = (dir.join("video.y4m"), dir.join("audio.wav"));
    let stream = Running::spawn(
        sandstream_command(&[
            "run",
            &s(&guest("passthrough")),
            "--video-in",
            "camera:0",
            "--width",
            "320",
            "--height",
            "240",
            "--audio-in",
            "tone:440",
            "--video-out",
            &file(&video),
            "--audio-out",
            &file(&audio),
            "--duration",
            "60",
        ])
        .env("LD_PRELOAD", preload()),
    );
    // Once a second of video is written, the camera goes away.
    let partial = dir.join("video.y4m.partial");
    wait_until_written(&partial, 30);
    drop(camera);
    let (ok, log) = stream.finish(Duration::from_secs(20));
    assert!(!ok, "the run ends with an error: {log}");
    assert!(
        log.contains("(camera:0) disconnected"),
        "the error names the camera: {log}"
    );
    // Both outputs finalized: complete files under their own names.
    let frames = read_y4m(&video).len();
    assert!(frames >= 30, "{frames} frames kept");
    // Lip sync starts both streams together and holds audio back by up to the
    // budget, so the audio kept spans the video kept, less at most 0.2 s.
    let audio_seconds = (read_wav(&audio).len() / 2) as f64 / 48_000.0;
    let video_seconds = frames as f64 / 30.0;
    assert!(
        audio_seconds >= video_seconds - 0.2,
        "{audio_seconds:.3} s of audio kept (the other stream) beside {video_seconds:.3} s of video"
    );
    assert!(!partial.exists());
}

#[test]
fn a_level_meter_runs_over_a_live_mic_and_camera_into_both_virtual_devices() {
    if !live_video() || !crate::live() {
        return;
    }
    let _turn = crate::one_at_a_time();
    let dir = scratch("av-live");
    let mic = crate::NullSink::new("av_mic", "AvMic");
    let virtual_mic = crate::VirtualMic::new();
    let tone = sine_wav_in(&dir, 1000, 30);
    let recording = dir.join("recorded.wav");
    let recorder = crate::Client::record(&virtual_mic.microphone(), &recording);
    let player = crate::Client::play(&tone, &mic.name);
    let _camera = ball_camera(&format!("sandstream-test-av-{}", std::process::id()));
    // Null sinks settle into small blocks with low-latency clients on them.
    std::thread::sleep(Duration::from_millis(2500));
    let node = format!("sandstream-test-av-out-{}", std::process::id());
    let stream = Running::spawn(
        sandstream_command(&[
            "run",
            &s(&guest("level-meter")),
            "--audio-in",
            &format!("device:{}", mic.monitor()),
            "--video-in",
            "camera:0",
            "--width",
            "320",
            "--height",
            "240",
            "--audio-out",
            &format!("device:{}", virtual_mic.name),
            "--video-out",
            &format!("pipewire:{node}"),
            "--duration",
            "8",
        ])
        .env("LD_PRELOAD", preload()),
    );
    wait_for_node(&node);
    let raw = dir.join("camera-out.rgba");
    let (ok, log) = Running::spawn(
        Command::new("gst-launch-1.0")
            .args([
                "-q",
                "pipewiresrc",
                &format!("target-object={node}"),
                "num-buffers=60",
            ])
            .args([
                "!",
                "video/x-raw,format=RGBA,width=320,height=240",
                "!",
                "filesink",
            ])
            .arg(format!("location={}", raw.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .finish(Duration::from_secs(20));
    assert!(ok, "pipewiresrc: {log}");
    let (ok, report) = stream.finish(Duration::from_secs(30));
    recorder.stop();
    drop(player);
    assert!(ok, "{report}");
    eprintln!("{report}");
    assert!(
        report.contains("audio:") && report.contains("video:"),
        "{report}"
    );

    // The virtual camera shows the ball with the level bar drawn over it:
    // the tone peaks at 0.5, so half the bottom rows' width is lit green
    // (tolerance: the meter's decay between blocks, 5 % of the width).
    let bytes = std::fs::read(&raw).unwrap();
    assert_eq!(bytes.len(), 60 * frame_bytes());
    let last = &bytes[59 * frame_bytes()..];
    let row = (H as usize - 2) * W as usize * 4;
    let lit = last[row..row + W as usize * 4]
        .chunks(4)
        .filter(|px| px[..3] == [40, 220, 60])
        .count();
    assert!((144..=176).contains(&lit), "{lit} of 320 pixels lit");

    // The virtual microphone carries the tone unchanged (level-meter keeps
    // the audio). Tolerances: 1 % in frequency, because while it settles
    // after the sinks' start-up stall the drift corrector may resample by
    // up to that much; 10 % in level, because a counted drop or miss (the
    // A/V start releases a burst of audio) is a discontinuity, and the
    // resampler overshoots across one (seen: 0.525).
    let heard = left(&read_wav(&recording));
    let (hz, peak) = tone_of(crate::sounding(&heard), 48_000);
    assert!(
        (hz - 1000.0).abs() < 10.0,
        "{hz} Hz at the virtual microphone\n{report}"
    );
    assert!(
        (peak - 0.5).abs() < 0.05,
        "peak {peak} at the virtual microphone\n{report}"
    );
}

/// Run by `a_camera_stamps_each_frame_with_its_capture_time` in a child
/// process of this test binary with the V4L2 preload (the preload must be
/// there when a process starts): reads 60 frames through the library and
/// prints, per frame, its index, its timestamp and the host clock when the
/// pipeline got it.
#[test]
fn camera_timestamp_probe() {
    if std::env::var_os("SANDSTREAM_CAMERA_PROBE").is_none() {
        return;
    }
    use sandstream::pipeline::{Feed as _, RunControl};
    let request = sandstream::camera::ModeRequest {
        width: W,
        height: H,
        fps: 30.0,
    };
    let mut feed = sandstream::camera::open("0", request).unwrap();
    let pool = sandstream::media::BufferPool::new(4, frame_bytes());
    let run = RunControl::default();
    for _ in 0..60 {
        let frame = feed.next(&pool, &run).unwrap().expect("a frame");
        let got = sandstream::clock::now_ns();
        println!("probe {} {} {got}", frame.index, frame.timestamp_ns);
        assert_eq!(frame.pixels.len(), frame_bytes());
        pool.give(frame.pixels);
    }
}

#[test]
fn a_camera_stamps_each_frame_with_its_capture_time() {
    let Some(_turn) = video_turn() else { return };
    let _camera = ball_camera(&format!("sandstream-test-stamps-{}", std::process::id()));
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "video::camera_timestamp_probe", "--nocapture"])
        .env("SANDSTREAM_CAMERA_PROBE", "1")
        .env("LD_PRELOAD", preload())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frames: Vec<[u64; 3]> = text
        .lines()
        .filter_map(|l| l.strip_prefix("probe "))
        .map(|l| {
            let n: Vec<u64> = l.split(' ').map(|v| v.parse().unwrap()).collect();
            [n[0], n[1], n[2]]
        })
        .collect();
    assert_eq!(frames.len(), 60, "{text}");
    // Indices count every frame the camera delivered; stamps increase.
    for pair in frames.windows(2) {
        assert!(pair[1][0] > pair[0][0], "indices in order: {frames:?}");
        assert!(pair[1][1] > pair[0][1], "timestamps increase: {frames:?}");
    }
    // Stamped on the host clock before the pipeline got the frame, and not
    // long before (tolerance: a 2-frame queue, 100 ms, on a loaded VM).
    for [_, stamp, got] in &frames {
        assert!(stamp <= got && got - stamp < 100_000_000, "{frames:?}");
    }
    // 30 fps: the median spacing of the stamps is one frame, within 10 %.
    let mut gaps: Vec<u64> = frames.windows(2).map(|p| p[1][1] - p[0][1]).collect();
    gaps.sort_unstable();
    let median = gaps[gaps.len() / 2] as f64 / 1e6;
    assert!((30.0..=36.7).contains(&median), "median gap {median:.1} ms");
    let span = (frames[59][1] - frames[0][1]) as f64 / 1e9;
    let rate = 59.0 / span;
    assert!(
        (27.0..=33.0).contains(&rate),
        "{rate:.1} fps over 60 frames"
    );
}

#[test]
fn devices_lists_a_camera_with_its_modes() {
    let Some(_turn) = video_turn() else { return };
    let _camera = ball_camera(&format!("sandstream-test-listed-{}", std::process::id()));
    // nokhwa lists /dev/video* entries, and the emulation has none: a
    // private mount namespace gets a /dev with a dummy video0 (and the
    // few nodes a process needs).
    let dev = scratch("dev");
    let script = format!(
        "mount -t tmpfs none {dev} && for f in null zero urandom random; do \
         touch {dev}/$f && mount --bind /dev/$f {dev}/$f; done && touch {dev}/video0 && \
         mount --bind {dev} /dev && exec \"$0\" devices",
        dev = dev.display()
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script, env!("CARGO_BIN_EXE_sandstream")])
        .env("LD_PRELOAD", preload())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let cameras = text
        .split("cameras (Video4Linux):")
        .nth(1)
        .unwrap_or_else(|| {
            panic!(
                "no camera section: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(
        cameras.contains("camera:0  \"gst-launch-1.0\""),
        "{cameras}"
    );
    assert!(cameras.contains("YUYV 320x240 @ 30 fps"), "{cameras}");
}

/// Asks every top-level window whose title starts with `prefix` to close,
/// as a window manager's close button does (a WM_DELETE_WINDOW message).
/// Returns how many it asked.
fn close_windows(prefix: &str) -> usize {
    use x11_dl::xlib;
    let x = xlib::Xlib::open().expect("libX11 loads");
    let mut asked = 0;
    // SAFETY: plain Xlib calls on a display we open and close here; every
    // pointer passed is valid for the call, and what Xlib allocates is
    // freed with XFree.
    unsafe {
        let display = (x.XOpenDisplay)(std::ptr::null());
        assert!(!display.is_null(), "no X display");
        let root = (x.XDefaultRootWindow)(display);
        let (mut root_out, mut parent) = (0, 0);
        let mut children: *mut xlib::Window = std::ptr::null_mut();
        let mut count = 0;
        (x.XQueryTree)(
            display,
            root,
            &mut root_out,
            &mut parent,
            &mut children,
            &mut count,
        );
        let protocols = (x.XInternAtom)(display, c"WM_PROTOCOLS".as_ptr(), 0);
        let delete = (x.XInternAtom)(display, c"WM_DELETE_WINDOW".as_ptr(), 0);
        for i in 0..count as usize {
            let window = *children.add(i);
            let mut name: *mut std::os::raw::c_char = std::ptr::null_mut();
            if (x.XFetchName)(display, window, &mut name) == 0 || name.is_null() {
                continue;
            }
            let title = std::ffi::CStr::from_ptr(name)
                .to_string_lossy()
                .into_owned();
            (x.XFree)(name.cast());
            if !title.starts_with(prefix) {
                continue;
            }
            let mut message = xlib::XClientMessageEvent {
                type_: xlib::ClientMessage,
                serial: 0,
                send_event: 1,
                display,
                window,
                message_type: protocols,
                format: 32,
                data: xlib::ClientMessageData::new(),
            };
            message.data.set_long(0, delete as std::os::raw::c_long);
            let mut event = xlib::XEvent::from(message);
            (x.XSendEvent)(display, window, 0, xlib::NoEventMask, &mut event);
            asked += 1;
        }
        if !children.is_null() {
            (x.XFree)(children.cast());
        }
        (x.XFlush)(display);
        (x.XCloseDisplay)(display);
    }
    asked
}

#[test]
fn closing_the_preview_window_stops_the_run_cleanly() {
    let Some(_turn) = video_turn() else { return };
    let dir = scratch("window-close");
    let expected = grayscale_reference(&dir);
    let video = dir.join("kept.y4m");
    let stream = window_run(&["--video-out", &file(&video)]);
    wait_for_window(&dir, &[expected]);
    wait_until_written(&dir.join("kept.y4m.partial"), 10);
    assert_eq!(
        close_windows("Sandstream"),
        1,
        "one preview window to close"
    );
    let (ok, log) = stream.finish(Duration::from_secs(20));
    assert!(ok, "closing the window is a clean stop: {log}");
    assert!(log.contains("the preview window was closed"), "{log}");
    assert!(
        read_y4m(&video).len() >= 10,
        "the other output is finalized"
    );
}

#[test]
fn a_file_played_into_a_virtual_camera_is_paced_to_its_frame_rate() {
    let Some(_turn) = video_turn() else { return };
    let dir = scratch("paced-file");
    let clip = dir.join("clip.y4m");
    testsrc(&clip, "320x240", 30, 2.0, "yuv420p");
    let node = format!("sandstream-test-paced-{}", std::process::id());
    let stream = Running::spawn(&mut sandstream_command(&[
        "run",
        &s(&guest("passthrough")),
        "--video-in",
        &file(&clip),
        "--video-out",
        &format!("pipewire:{node}"),
    ]));
    let (ok, log) = stream.finish(Duration::from_secs(30));
    assert!(ok, "{log}");
    // No --realtime: the virtual camera makes the run real time by itself,
    // so its 60 frames are not thrown at it as fast as the disk reads.
    assert!(
        log.contains(&format!(
            "inputs paced to the clock: PipeWire camera {node} plays in real time"
        )),
        "{log}"
    );
    assert!(log.contains("video: 60 frames in, 60 out"), "{log}");
}
