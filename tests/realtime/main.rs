//! Real-time discipline, proven: with a counting global allocator, a live
//! run through the fake device (capture callback → read → guest → write →
//! playback callback) makes no allocation in any hot section once warmed
//! up. Its own binary, because the allocator is process-wide.

use sandstream::Streamer;
use sandstream::device::PlaybackBudget;
use sandstream::device::fake::{FakeRig, FakeScript};
use sandstream::media::AudioFormat;
use sandstream::rt::{self, CountingAllocator};
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

#[test]
fn device_callbacks_and_the_steady_state_path_do_not_allocate() {
    let format = AudioFormat {
        sample_rate: 48_000,
        channels: 2,
    };
    let mut mic = FakeScript::steady(format);
    mic.callback_frames = vec![480, 256, 731];
    mic.jitter = Duration::from_millis(1);
    let (rig, feed, sink) = FakeRig::start(
        mic,
        FakeScript::steady(format),
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
        .unwrap()
        .start()
        .unwrap();
    let stats = stream.stats_handle();
    // Warm-up: pools filled, guest's first calls made, device started.
    wait_for_blocks(&stats, 50);
    rt::arm();
    wait_for_blocks(&stats, 50 + 250);
    let allocations = rt::disarm();
    stream.stop();
    let report = stream.wait().unwrap();
    rig.stop();
    assert_eq!(
        allocations, 0,
        "hot sections allocated {allocations} times in 250 blocks; {report}"
    );
}
