//! The latency budget (`--latency`): the longest a live run lets an item
//! take from capture to being played. Queues between stages hold at most
//! the budget's worth of items, the playback ring gets what the budget
//! leaves after the costs the host cannot avoid, and an item that can no
//! longer make it is skipped before the guest spends time on it.

use super::DeviceSettings;
use crate::device::PlaybackBudget;
use crate::media::{AudioFormat, VideoFormat};
use std::time::Duration;

/// Default room in the playback ring: six device buffers or blocks, at
/// least 50 ms — what ran without underruns on a loaded 2-core VM
/// (docs/PERFORMANCE.md).
const DEFAULT_RING_PERIODS: usize = 6;
const DEFAULT_RING_FLOOR: Duration = Duration::from_millis(50);
/// The ring can never be smaller than this many periods and play.
const MIN_RING_PERIODS: usize = 2;
/// Video without an explicit budget: three frames, at least 100 ms.
const DEFAULT_VIDEO_FLOOR: Duration = Duration::from_millis(100);
const DEFAULT_VIDEO_FRAMES: u64 = 3;

impl DeviceSettings {
    /// The audio period: the device's callback or the block, the larger.
    fn period_frames(&self, block_frames: u32) -> usize {
        self.buffer().max(block_frames) as usize
    }

    /// What an audio block costs outside the host's queues: it fills for a
    /// block before it can leave, and the output device holds about two of
    /// its buffers.
    fn audio_fixed_frames(&self, block_frames: u32) -> usize {
        block_frames as usize + 2 * self.buffer() as usize
    }

    fn default_ring_frames(&self, format: AudioFormat, block_frames: u32) -> usize {
        let floor = (DEFAULT_RING_FLOOR.as_secs_f64() * f64::from(format.sample_rate)) as usize;
        (DEFAULT_RING_PERIODS * self.period_frames(block_frames)).max(floor)
    }

    /// The budget of an audio stream: the flag, or the fixed costs plus the
    /// default ring.
    pub fn audio_budget(&self, format: AudioFormat, block_frames: u32) -> Duration {
        self.latency.unwrap_or_else(|| {
            let frames = self.audio_fixed_frames(block_frames)
                + self.default_ring_frames(format, block_frames);
            Duration::from_nanos(format.frame_time_ns(frames as u64))
        })
    }

    /// The playback ring: what the budget leaves after the fixed costs, and
    /// never less than it takes to play at all.
    pub fn playback_budget(&self, format: AudioFormat, block_frames: u32) -> PlaybackBudget {
        let frames = match self.latency {
            None => self.default_ring_frames(format, block_frames),
            Some(budget) => {
                let total = (budget.as_secs_f64() * f64::from(format.sample_rate)) as usize;
                let room = total.saturating_sub(self.audio_fixed_frames(block_frames));
                let least = MIN_RING_PERIODS * self.period_frames(block_frames);
                if room < least {
                    let smallest = self.audio_fixed_frames(block_frames) + least;
                    tracing::warn!(
                        "--latency {:.1} ms is less than {}-frame blocks and device buffers \
                         can play in ({:.1} ms): the output keeps {:.1} ms instead \
                         (smaller --block and --device-buffer lower it)",
                        budget.as_secs_f64() * 1e3,
                        block_frames,
                        format.frame_time_ns(smallest as u64) as f64 / 1e6,
                        format.frame_time_ns(smallest as u64) as f64 / 1e6,
                    );
                }
                room.max(least)
            }
        };
        PlaybackBudget::new(frames)
    }

    /// The budget of a video stream: the flag, or three frames (at least
    /// 100 ms).
    pub fn video_budget(&self, format: VideoFormat) -> Duration {
        self.latency.unwrap_or_else(|| {
            let frames = Duration::from_nanos(format.fps.frame_time_ns(DEFAULT_VIDEO_FRAMES));
            frames.max(DEFAULT_VIDEO_FLOOR)
        })
    }
}

/// How many items of `item_ns` each a queue between two stages holds: the
/// budget's worth, at least 2 (one being filled, one being taken).
pub fn queue_depth(budget: Duration, item_ns: u64) -> usize {
    let items = budget.as_nanos() as u64 / item_ns.max(1);
    (items as usize).clamp(2, 64)
}

/// How many items the lip-sync stage may hold of a stream whose items last
/// `item_ns`: an item waits at most the budget after its capture, and
/// before both streams have started what is older than the budget and
/// `max_unsynced` together is dropped, so the hold never exceeds that.
pub fn hold_items(budget: Duration, max_unsynced: Duration, item_ns: u64) -> usize {
    let span = (budget + max_unsynced).as_nanos() as u64;
    span.div_ceil(item_ns.max(1)) as usize + 1
}

/// Buffers a stream's items can occupy at once, so that its pool never
/// runs dry in real time (a dry pool allocates): each queue full, the
/// lip-sync stage holding all it may, and one item in the hands of each
/// stage and writer.
pub fn pool_size(queues: usize, depth: usize, held: usize) -> usize {
    /// The reader, the guest, the sync stage, the fan-out and a sink's
    /// writer each hold one item; the queue that displaces one holds it
    /// for a moment.
    const IN_HAND: usize = 6;
    queues * depth + held + IN_HAND
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORMAT: AudioFormat = AudioFormat {
        sample_rate: 48_000,
        channels: 2,
    };

    fn settings(buffer: u32, latency_ms: Option<u64>) -> DeviceSettings {
        DeviceSettings {
            host: None,
            buffer_frames: Some(buffer),
            latency: latency_ms.map(Duration::from_millis),
        }
    }

    #[test]
    fn the_default_budget_is_the_fixed_costs_plus_the_default_ring() {
        // 512-frame blocks and buffers: 512 + 2 × 512 fixed, 6 × 512 ring.
        let budget = settings(512, None).audio_budget(FORMAT, 512);
        assert_eq!(budget.as_micros(), 96_000);
        assert_eq!(
            settings(512, None).playback_budget(FORMAT, 512).max_frames,
            3072
        );
        // 128: the ring's 50 ms floor dominates.
        let ring = settings(128, None).playback_budget(FORMAT, 128).max_frames;
        assert_eq!(ring, 2400);
    }

    #[test]
    fn an_explicit_budget_leaves_the_ring_what_the_fixed_costs_do_not_take() {
        // 40 ms = 1920 frames; 256 + 2 × 256 fixed: 1152 for the ring.
        let ring = settings(256, Some(40)).playback_budget(FORMAT, 256);
        assert_eq!(ring.max_frames, 1152);
        assert_eq!(ring.target_frames, 576);
        // Too small to play: two periods at least.
        let ring = settings(512, Some(10)).playback_budget(FORMAT, 512);
        assert_eq!(ring.max_frames, 1024);
    }

    #[test]
    fn the_sync_stage_holds_the_budget_and_max_unsynced_in_items() {
        // 128 frames: 2.67 ms; 100 ms + 10 ms is 41.25 blocks.
        let block = FORMAT.frame_time_ns(128);
        let held = hold_items(Duration::from_millis(100), Duration::from_millis(10), block);
        assert_eq!(held, 43);
        // Four queues of 21 blocks, 43 held, 6 in hand.
        assert_eq!(pool_size(4, 21, held), 133);
    }

    #[test]
    fn queues_hold_the_budget_in_items() {
        let block = FORMAT.frame_time_ns(512);
        assert_eq!(queue_depth(Duration::from_millis(96), block), 9);
        let frame = 33_333_333;
        assert_eq!(queue_depth(Duration::from_millis(100), frame), 3);
        assert_eq!(queue_depth(Duration::from_millis(5), frame), 2);
    }
}
