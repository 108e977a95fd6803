//! Real-time discipline, proven: with a counting global allocator, a live
//! run through the fake device (capture callback → read → guest → write →
//! playback callback) makes no allocation in any hot section once warmed
//! up. Its own binary, because the allocator is process-wide.

use sandstream::camera::fake::FakeCamera;
use sandstream::device::fake::{FakeRig, FakeScript};
use sandstream::device::{CaptureFeed, PlaybackBudget, PlaybackSink};
use sandstream::guest::sandbox::SandboxPolicy;
use sandstream::media::AudioFormat;
use sandstream::pipeline::DeviceSettings;
use sandstream::rt::{self, CountingAllocator};
use sandstream::{Report, Streamer};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn guest(name: &str) -> PathBuf {
    let dir = std::env::var_os("SANDSTREAM_GUESTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/guests"));
    dir.join(format!("{name}.wasm"))
}

const FORMAT: AudioFormat = AudioFormat {
    sample_rate: 48_000,
    channels: 2,
};

/// A fake microphone and speaker with steady 256-frame callbacks.
fn steady_rig(playback: PlaybackBudget) -> (FakeRig, CaptureFeed, PlaybackSink) {
    FakeRig::start(
        FakeScript::steady(FORMAT),
        FakeScript::steady(FORMAT),
        256,
        playback,
    )
    .unwrap()
}

/// Waits (bounded) until the run has written `blocks` blocks.
fn wait_for_blocks(stats: &sandstream::pipeline::StatsHandle, blocks: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while stats.report().audio.items_out < blocks {
        assert!(
            std::time::Instant::now() < deadline,
            "the run stalled: {:?}",
            stats.report()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts the run, lets 50 blocks out, then asserts no hot section
/// allocates over the next 250; stops the run and the fake devices.
fn assert_no_hot_allocations(streamer: Streamer, rig: Option<FakeRig>) -> Report {
    let stream = streamer.start().unwrap();
    let stats = stream.stats_handle();
    // Warm-up: pools filled, guest's first calls made, device started.
    wait_for_blocks(&stats, 50);
    rt::arm();
    wait_for_blocks(&stats, 50 + 250);
    let allocations = rt::disarm();
    stream.stop();
    let report = stream.wait().unwrap();
    if let Some(rig) = rig {
        rig.stop();
    }
    assert_eq!(
        allocations, 0,
        "hot sections allocated {allocations} times in 250 blocks; {report}"
    );
    report
}

#[test]
fn device_callbacks_and_the_steady_state_path_do_not_allocate() {
    let mut mic = FakeScript::steady(FORMAT);
    mic.callback_frames = vec![480, 256, 731];
    mic.jitter = Duration::from_millis(1);
    let (rig, feed, sink) = FakeRig::start(
        mic,
        FakeScript::steady(FORMAT),
        256,
        PlaybackBudget::new(4800),
    )
    .unwrap();
    let stream = Streamer::builder()
        .guest_path(guest("gain"))
        .set("gain", "0.5")
        .block_frames(256)
        .audio_feed(Box::new(feed))
        .audio_sink(Box::new(sink))
        .build()
        .unwrap();
    assert_no_hot_allocations(stream, Some(rig));
}

/// Audio and video together: the stage histograms, the time-sized queues
/// that drop their oldest, and the lip-sync stage holding video for the
/// audio output's delay allocate nothing either.
#[test]
fn the_av_path_through_lip_sync_does_not_allocate() {
    let (rig, feed, sink) = steady_rig(PlaybackBudget::new(4800));
    let stream = Streamer::builder()
        .guest_path(guest("passthrough"))
        .block_frames(256)
        .audio_feed(Box::new(feed))
        .audio_sink(Box::new(sink))
        .video_input(sandstream::spec::VideoInputSpec::Pattern)
        .frame_size(64, 36)
        .build()
        .unwrap();
    let plan = stream.describe();
    assert!(
        plan.contains("audio and video perceived together"),
        "{plan}"
    );
    let report = assert_no_hot_allocations(stream, Some(rig));
    assert!(report.sync_latency_us > 0, "the sync stage ran: {report}");
    // 300 blocks of 256 frames: 1.6 s, 48 frames at 30 fps.
    assert!(report.video.items_out >= 40, "{report}");
}

/// While the camera opens, the microphone's blocks wait in the sync stage
/// (processed, held for the start): the stage keeps only the budget's
/// worth, and every buffer comes from and goes back to the pools, so the
/// 1.5 s wait and the start allocate nothing.
#[test]
fn a_camera_slow_to_open_holds_the_audio_without_allocating() {
    let (rig, feed, sink) = steady_rig(PlaybackBudget::new(4800));
    let camera = FakeCamera::new(rig.start_ns + 1_500_000_000);
    let stream = Streamer::builder()
        .guest_path(guest("passthrough"))
        .block_frames(256)
        .audio_feed(Box::new(feed))
        .audio_sink(Box::new(sink))
        .video_feed(Box::new(camera))
        .build()
        .unwrap()
        .start()
        .unwrap();
    let stats = stream.stats_handle();
    // Warm-up: the guest's first audio calls, long before the camera.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while stats.report().audio.items_in < 50 {
        assert!(std::time::Instant::now() < deadline, "no audio came");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(stats.report().video.items_in, 0, "the camera opened early");
    rt::arm();
    // 1.5 s of waiting (281 blocks), then the start, then 100 blocks out.
    wait_for_blocks(&stats, 100);
    let allocations = rt::disarm();
    stream.stop();
    let report = stream.wait().unwrap();
    rig.stop();
    assert_eq!(
        allocations, 0,
        "hot sections allocated {allocations} times; {report}"
    );
    // What waited longer than the budget was dropped at the start.
    assert!(report.sync_trimmed > 200, "{report}");
}

/// A video guest too slow for its camera (45 ms a frame at 30 fps): video
/// reaches the sync stage near the 200 ms budget, so audio is held for
/// most of it while frames pile up before the guest and are dropped. Every
/// place an item can wait is full at once, and the pools still suffice.
#[test]
fn a_video_guest_too_slow_for_its_camera_holds_audio_without_allocating() {
    let settings = DeviceSettings {
        latency: Some(Duration::from_millis(200)),
        ..DeviceSettings::default()
    };
    let (rig, feed, sink) = steady_rig(settings.playback_budget(FORMAT, 256));
    let camera = FakeCamera::new(rig.start_ns);
    let stream = Streamer::builder()
        .guest_path(guest("adversary"))
        .set("mode", "busy")
        .set("in", "process-video")
        .set("ms", "45")
        .block_frames(256)
        .audio_feed(Box::new(feed))
        .audio_sink(Box::new(sink))
        .video_feed(Box::new(camera))
        .devices(settings)
        .sandbox(SandboxPolicy {
            // Slow, not hung: its calls must not count as faults.
            deadline: Some(Duration::from_millis(500)),
            ..SandboxPolicy::default()
        })
        .build()
        .unwrap();
    let report = assert_no_hot_allocations(stream, Some(rig));
    assert!(report.sync_latency_us > 100_000, "audio was held: {report}");
    // The slow video costs video frames, not audio (2 % tolerance: these
    // VMs stall now and then).
    let audio = &report.audio;
    let lost = audio.items_in - audio.items_out;
    assert!(
        lost * 50 <= audio.items_in,
        "audio lost {lost} blocks: {report}"
    );
    let video = &report.video;
    assert!(
        video.overruns + video.late_drops > 0,
        "frames piled up: {report}"
    );
}

/// A null sink for the live test, removed when dropped.
struct NullSink(String);

impl NullSink {
    fn new(name: &str) -> (Self, String) {
        let out = std::process::Command::new("pactl")
            .args(["load-module", "module-null-sink"])
            .arg(format!("sink_name={name}"))
            .args(["rate=48000", "channels=2", "format=float32le"])
            .output()
            .expect("pactl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let module = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (Self(module), name.to_string())
    }
}

impl Drop for NullSink {
    fn drop(&mut self) {
        let _ = std::process::Command::new("pactl")
            .args(["unload-module", &self.0])
            .status();
    }
}

/// The same through cpal's real callback threads on the sound server
/// `cargo xtask test` starts: our code on them allocates nothing either.
#[test]
fn real_device_callbacks_do_not_allocate_in_our_code() {
    if std::env::var_os("SANDSTREAM_LIVE_AUDIO").is_none() {
        eprintln!("skipped: run with `cargo xtask test` (needs its sound server)");
        return;
    }
    let id = std::process::id();
    let (_feed, feed_name) = NullSink::new(&format!("rt_feed_{id}"));
    let (_out, out_name) = NullSink::new(&format!("rt_out_{id}"));
    let host = sandstream::device::host(Some("pulseaudio")).unwrap();
    let input = sandstream::device::open_input(
        &host,
        &format!("{feed_name}.monitor"),
        None,
        (None, None),
        256,
        256,
    )
    .unwrap();
    let format = AudioFormat {
        sample_rate: 48_000,
        channels: 2,
    };
    let output = sandstream::device::open_output(
        &host,
        &out_name,
        format,
        256,
        256,
        PlaybackBudget::new(4800),
    )
    .unwrap();
    let stream = Streamer::builder()
        .guest_path(guest("gain"))
        .block_frames(256)
        .audio_feed(Box::new(input))
        .audio_sink(Box::new(output))
        .build()
        .unwrap();
    assert_no_hot_allocations(stream, None);
}

/// The live video path: a camera (served by GStreamer, read through
/// PipeWire's V4L2 emulation) → capture thread → read → guest → write →
/// the PipeWire virtual camera, read by `pipewiresrc`. The emulation must
/// be preloaded when a process starts, so the test runs itself again with
/// it; the child does the counting.
#[test]
fn the_live_video_path_does_not_allocate() {
    if std::env::var_os("SANDSTREAM_LIVE_VIDEO").is_none() {
        eprintln!("skipped: run with `cargo xtask test` (needs its PipeWire)");
        return;
    }
    if std::env::var_os("SANDSTREAM_RT_VIDEO_CHILD").is_some() {
        return count_live_video_allocations();
    }
    let node = format!("rt-camera-{}", std::process::id());
    let mut camera = std::process::Command::new("gst-launch-1.0")
        .args(["-q", "videotestsrc", "pattern=ball", "is-live=true", "!"])
        .arg("video/x-raw,format=YUY2,width=320,height=240,framerate=30/1")
        .args(["!", "pipewiresink", "mode=provide"])
        .arg(format!(
            "stream-properties=props,media.class=Video/Source,node.name={node}"
        ))
        .spawn()
        .unwrap();
    wait_for_node(&node);
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_live_video_path_does_not_allocate",
            "--nocapture",
        ])
        .env("SANDSTREAM_RT_VIDEO_CHILD", "1")
        .env(
            "LD_PRELOAD",
            std::env::var("SANDSTREAM_V4L2_PRELOAD").unwrap(),
        )
        .output()
        .unwrap();
    let _ = camera.kill();
    let _ = camera.wait();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn wait_for_node(name: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let wanted = format!("node.name = \"{name}\"");
    loop {
        let out = std::process::Command::new("pw-cli")
            .args(["ls", "Node"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).contains(&wanted) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "no node {name}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn count_live_video_allocations() {
    use sandstream::camera::{self, ModeRequest};
    let request = ModeRequest {
        width: 320,
        height: 240,
        fps: 30.0,
    };
    let feed = camera::open("0", request).unwrap();
    let format = sandstream::pipeline::Feed::format(&feed);
    let node = format!("rt-virtual-{}", std::process::id());
    let virtual_camera = sandstream::sink::PipeWireCamera::create(&node, format).unwrap();
    let stream = Streamer::builder()
        .guest_path(guest("passthrough"))
        .video_feed(Box::new(feed))
        .video_sink(Box::new(virtual_camera))
        .build()
        .unwrap()
        .start()
        .unwrap();
    // Someone watching, so the node streams.
    let mut viewer = std::process::Command::new("gst-launch-1.0")
        .args(["-q", "pipewiresrc", &format!("target-object={node}")])
        .args(["!", "video/x-raw", "!", "fakesink"])
        .spawn()
        .unwrap();
    let stats = stream.stats_handle();
    let frames = |n: u64| {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while stats.report().video.items_out < n {
            assert!(std::time::Instant::now() < deadline, "the run stalled");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    frames(30);
    rt::arm();
    frames(30 + 150);
    let allocations = rt::disarm();
    stream.stop();
    let _ = viewer.kill();
    let _ = viewer.wait();
    let report = stream.wait().unwrap();
    assert_eq!(
        allocations, 0,
        "hot sections allocated {allocations} times in 150 frames; {report}"
    );
}
