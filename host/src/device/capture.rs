//! Capture: the device's callback copies audio into a preallocated ring
//! with the capture time of each callback's first frame; the read stage
//! takes it out in blocks of the guest's size (`--block`), whatever size
//! the device's callbacks have (`--device-buffer`), each block stamped
//! with its own capture time.

use super::DeviceStatus;
use super::status::{PresenceCheck, Watchdog};
use crate::clock;
use crate::media::{AudioBlock, AudioFormat, BufferPool, Item};
use crate::pipeline::{Feed, RunControl};
use crate::rt;
use rtrb::{Consumer, Producer, RingBuffer};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// Capture time of a frame: `ns` on the host clock for ring frame `frame`.
#[derive(Debug, Clone, Copy, Default)]
struct Stamp {
    frame: u64,
    ns: u64,
}

/// Makes a capture ring holding `capacity_frames` of `format`.
pub fn capture_ring(
    format: AudioFormat,
    capacity_frames: usize,
    block_frames: usize,
    name: String,
) -> (CaptureSide, CaptureFeed) {
    let channels = usize::from(format.channels);
    let (samples_in, samples_out) = RingBuffer::new(capacity_frames * channels);
    // One stamp per callback; callbacks are never smaller than a few frames.
    let (stamps_in, stamps_out) = RingBuffer::new(capacity_frames.max(64));
    let shared = Arc::new(DeviceStatus::default());
    (
        CaptureSide {
            samples: samples_in,
            stamps: stamps_in,
            channels,
            written_frames: 0,
            shared: shared.clone(),
        },
        CaptureFeed {
            samples: samples_out,
            stamps: stamps_out,
            format,
            block_frames: block_frames.max(1),
            read_frames: 0,
            stamp: None,
            shared,
            name,
            watchdog: None,
        },
    )
}

/// The device-callback side of a capture ring.
pub struct CaptureSide {
    samples: Producer<f32>,
    stamps: Producer<Stamp>,
    channels: usize,
    written_frames: u64,
    shared: Arc<DeviceStatus>,
}

impl CaptureSide {
    /// Called on the device's callback thread with interleaved samples and
    /// the host-clock time their first frame was captured. Never allocates,
    /// locks or blocks: when the ring is full the reader is late, and the
    /// callback's audio is dropped and counted (an overrun).
    pub fn push(&mut self, samples: &[f32], capture_ns: u64) {
        let _hot = rt::hot();
        let frames = samples.len() / self.channels;
        let samples = &samples[..frames * self.channels];
        if frames == 0 {
            return;
        }
        // Counted before the overrun check: a device that delivers is there.
        self.shared.callbacks.fetch_add(1, Relaxed);
        if self.samples.slots() < samples.len() || self.stamps.is_full() {
            self.shared.overruns.fetch_add(1, Relaxed);
            self.shared.frames_lost.fetch_add(frames as u64, Relaxed);
            return;
        }
        if let Ok(chunk) = self.samples.write_chunk_uninit(samples.len()) {
            chunk.fill_from_iter(samples.iter().copied());
        }
        let stamp = Stamp {
            frame: self.written_frames,
            ns: capture_ns,
        };
        let _ = self.stamps.push(stamp);
        self.written_frames += frames as u64;
    }

    /// For the device's error callback, which runs apart from the data
    /// callback.
    pub fn status(&self) -> Arc<DeviceStatus> {
        self.shared.clone()
    }
}

/// The pipeline side of a capture ring: a [`Feed`] of blocks.
pub struct CaptureFeed {
    samples: Consumer<f32>,
    stamps: Consumer<Stamp>,
    format: AudioFormat,
    block_frames: usize,
    /// Ring frames taken so far.
    read_frames: u64,
    /// The latest stamp at or before `read_frames`.
    stamp: Option<Stamp>,
    shared: Arc<DeviceStatus>,
    name: String,
    /// Watches for the device's removal while the feed lives.
    watchdog: Option<Watchdog>,
}

impl CaptureFeed {
    /// Checks the device is still there when its callbacks stop.
    pub fn watched_by(mut self, check: PresenceCheck) -> Self {
        self.watchdog = Some(Watchdog::spawn(check, self.shared.clone()));
        self
    }

    /// The next whole block if the ring holds one; never waits.
    pub fn take_block(&mut self, pool: &BufferPool<f32>) -> Option<AudioBlock> {
        let _hot = rt::hot();
        let wanted = self.block_frames * usize::from(self.format.channels);
        let chunk = self.samples.read_chunk(wanted).ok()?;
        let mut buffer = pool.take();
        let (first, second) = chunk.as_slices();
        buffer.extend_from_slice(first);
        buffer.extend_from_slice(second);
        chunk.commit_all();
        let first_frame = self.read_frames;
        while let Ok(next) = self.stamps.peek()
            && next.frame <= first_frame
        {
            self.stamp = Some(*next);
            let _ = self.stamps.pop();
        }
        let timestamp_ns = self.stamp.map_or(0, |stamp| {
            stamp.ns + self.format.frame_time_ns(first_frame - stamp.frame)
        });
        self.read_frames += self.block_frames as u64;
        Some(AudioBlock::new(buffer, first_frame, timestamp_ns))
    }

    /// For counters and disconnects.
    pub fn shared_status(&self) -> Arc<DeviceStatus> {
        self.shared.clone()
    }

    /// Frames the ring holds now.
    pub fn buffered_frames(&self) -> usize {
        self.samples.slots() / usize::from(self.format.channels)
    }
}

impl Feed<AudioBlock> for CaptureFeed {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn describe(&self) -> String {
        self.name.clone()
    }

    fn next(
        &mut self,
        pool: &BufferPool<f32>,
        run: &RunControl,
    ) -> anyhow::Result<Option<AudioBlock>> {
        let counters = &run.counters.audio;
        loop {
            counters
                .capture_overruns
                .store(self.shared.overruns.load(Relaxed), Relaxed);
            counters
                .capture_units_lost
                .store(self.shared.frames_lost.load(Relaxed), Relaxed);
            if let Some(block) = self.take_block(pool) {
                return Ok(Some(block));
            }
            if let Some(error) = self.shared.disconnected(&self.name) {
                return Err(error.into());
            }
            if run.stop_requested() {
                return Ok(None);
            }
            // Sleep about as long as the missing audio takes to arrive.
            let missing = self.block_frames.saturating_sub(self.buffered_frames());
            let wait_ns = self.format.frame_time_ns(missing as u64);
            std::thread::sleep(Duration::from_nanos(wait_ns.clamp(250_000, 5_000_000)));
        }
    }
}

/// Capture time of a callback's first frame: cpal gives the callback's
/// capture instant on the device's clock together with the callback's
/// own; the host clock's reading now, minus how long ago the device says
/// the frame was captured.
pub fn capture_time_ns(age: Option<Duration>) -> u64 {
    clock::now_ns().saturating_sub(age.map_or(0, |a| a.as_nanos() as u64))
}
