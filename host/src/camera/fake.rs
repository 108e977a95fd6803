//! A scripted fake camera, so the pipeline's video timing is tested
//! without a driver: frames on the host clock from `first_ns` (a camera
//! slow to open starts late), each delivered up to `jitter` after its
//! capture (pseudo-random, fixed seed), in buffers from the stream's pool.

use crate::clock;
use crate::media::{BufferPool, Fps, VideoFormat, VideoFrame};
use crate::pipeline::{Feed, RunControl};
use crate::rt;
use std::time::Duration;

pub struct FakeCamera {
    format: VideoFormat,
    /// Capture time of the first frame.
    first_ns: u64,
    jitter_ns: u64,
    next: u64,
    rng: u64,
}

impl FakeCamera {
    /// A 64x36 camera at 30 fps whose first frame is captured at
    /// `first_ns`, on time.
    pub fn new(first_ns: u64) -> Self {
        Self {
            format: VideoFormat {
                width: 64,
                height: 36,
                fps: Fps { num: 30, den: 1 },
            },
            first_ns,
            jitter_ns: 0,
            next: 0,
            rng: 0x1234_5678,
        }
    }

    /// Each frame comes up to `jitter` after its capture.
    pub fn jittery(mut self, jitter: Duration) -> Self {
        self.jitter_ns = jitter.as_nanos() as u64;
        self
    }

    fn next_jitter_ns(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % self.jitter_ns.max(1)
    }
}

impl Feed<VideoFrame> for FakeCamera {
    fn format(&self) -> VideoFormat {
        self.format
    }

    fn describe(&self) -> String {
        "fake camera".into()
    }

    fn next(
        &mut self,
        pool: &BufferPool<u8>,
        run: &RunControl,
    ) -> anyhow::Result<Option<VideoFrame>> {
        if run.stop_requested() {
            return Ok(None);
        }
        let captured = self.first_ns + self.format.fps.frame_time_ns(self.next);
        let late = self.next_jitter_ns();
        clock::sleep_until_ns(captured + late);
        // As a real camera's capture thread: from the pool, no allocation.
        let _hot = rt::hot();
        let mut pixels = pool.take();
        pixels.resize(self.format.frame_bytes(), 0);
        self.next += 1;
        Ok(Some(VideoFrame {
            pixels,
            index: self.next - 1,
            timestamp_ns: captured,
        }))
    }
}
