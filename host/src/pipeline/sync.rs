//! Lip sync across devices, as pure logic (no threads, no clocks): the sync
//! stage feeds [`LipSync`] processed blocks and frames as they arrive and
//! lets each go when it is due.
//!
//! Rule: every item is *perceived* — played by the speaker, shown by the
//! virtual camera — the same time after its capture, whichever stream it
//! belongs to. Each output says how long after the hand-over it plays (an
//! audio device: its ring's target fill and its own buffer; a virtual
//! camera: nothing), so an item captured at `t` leaves at
//! `t + common − its output's delay`, where `common` is the slower
//! stream's capture → perceived time. The earlier stream is delayed; no
//! capture ever waits. `common` follows each stream's recent worst time
//! to get here (up by at most 1 ms per item, so one late frame is shown
//! late instead of holding the other stream back; down by 10 ms per
//! second), never beyond the latency budget.
//!
//! Start: nothing leaves until both streams have sent something, and what
//! one captured before the other's first item is dropped (counted), so
//! both start together instead of one bursting out what it held. A stream
//! that has sent nothing after `max_hold` is not waited for; while one
//! waits, what the other captured longer ago than the budget and
//! `max_unsynced` is dropped at once (it would be at the start), so a
//! camera slow to open never makes the microphone's blocks pile up.
//!
//! Each stream's hold is sized once ([`Hold`]) and dropped items' buffers
//! go back to the stream's pool: nothing here allocates.

use super::control::RunControl;
use super::queue::Handoff;
use crate::clock;
use crate::media::{AudioBlock, BufferPool, Item, StreamKind, VideoFrame};
use crate::metrics::Stage;
use crossbeam_channel::{Receiver, Select};
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;

/// How fast a stream's path estimate comes down when items arrive sooner:
/// 10 ms per second, so a change is not a jump.
const DECAY_PER_NS: f64 = 0.01;
/// How far one item arriving later than the estimate raises it: a single
/// late frame is shown late (counted) rather than holding the other
/// stream back, while a lasting change is followed within a second or so.
const RISE_PER_ITEM_NS: f64 = 1_000_000.0;
/// For its first second a stream's estimate rises at once: before the
/// output has settled, holding one stream a little more each item would
/// drain the audio output's ring below its target.
const SETTLE_NS: u64 = 1_000_000_000;
/// How much of one stream the stage may hold, and where the buffers of
/// the items it drops go back.
pub struct Hold<I: Item> {
    /// Items held at most (see [`super::budget::hold_items`]); at this
    /// many the oldest leaves (or, before the start, is dropped).
    pub items: usize,
    pub pool: BufferPool<I::Sample>,
}

impl<I: Item> Clone for Hold<I> {
    fn clone(&self) -> Self {
        Self {
            items: self.items,
            pool: self.pool.clone(),
        }
    }
}

/// What the stage lets through next.
#[derive(Debug, PartialEq)]
pub enum Released {
    Audio(AudioBlock),
    Video(VideoFrame),
}

struct Lane<T: Item> {
    queue: VecDeque<T>,
    capacity: usize,
    pool: BufferPool<T::Sample>,
    open: bool,
    /// The output's steady delay after the hand-over.
    output_delay_ns: u64,
    /// Capture → arrival here: the recent worst, without single outliers.
    arrival_ns: Option<f64>,
    updated_ns: u64,
    first_ns: Option<u64>,
}

impl<T: Item> Lane<T> {
    fn new(hold: Hold<T>) -> Self {
        let capacity = hold.items.max(1);
        Self {
            // One more than held: an item arrives before the oldest leaves.
            queue: VecDeque::with_capacity(capacity + 1),
            capacity,
            pool: hold.pool,
            open: true,
            output_delay_ns: 0,
            arrival_ns: None,
            updated_ns: 0,
            first_ns: None,
        }
    }

    fn arrive(&mut self, item: T, now_ns: u64, output_delay_ns: u64) {
        self.output_delay_ns = output_delay_ns;
        let arrival = now_ns.saturating_sub(item.timestamp_ns()) as f64;
        let settling = now_ns - *self.first_ns.get_or_insert(now_ns) < SETTLE_NS;
        let estimate = match self.arrival_ns {
            None => arrival,
            Some(old) if arrival > old && settling => arrival,
            Some(old) if arrival > old => old + (arrival - old).min(RISE_PER_ITEM_NS),
            Some(old) => {
                let decayed = old - now_ns.saturating_sub(self.updated_ns) as f64 * DECAY_PER_NS;
                decayed.max(arrival)
            }
        };
        self.arrival_ns = Some(estimate);
        self.updated_ns = now_ns;
        self.queue.push_back(item);
    }

    /// Capture → perceived, if released on arrival.
    fn path_ns(&self) -> Option<f64> {
        self.arrival_ns.map(|a| a + self.output_delay_ns as f64)
    }

    fn front_ts(&self) -> Option<u64> {
        self.queue.front().map(Item::timestamp_ns)
    }

    /// Has sent something, or never will.
    fn ready(&self) -> bool {
        !self.queue.is_empty() || self.arrival_ns.is_some() || !self.open
    }

    fn full(&self) -> bool {
        self.queue.len() >= self.capacity
    }

    /// Drops the items captured before `begin_ns` (their buffers back to
    /// the pool); returns how many.
    fn trim_before(&mut self, begin_ns: u64) -> u64 {
        let mut dropped = 0;
        while self.front_ts().is_some_and(|ts| ts < begin_ns) {
            self.drop_oldest();
            dropped += 1;
        }
        dropped
    }

    /// Drops the oldest items beyond the lane's capacity; returns how many.
    fn trim_to_capacity(&mut self) -> u64 {
        let mut dropped = 0;
        while self.queue.len() > self.capacity {
            self.drop_oldest();
            dropped += 1;
        }
        dropped
    }

    fn drop_oldest(&mut self) {
        if let Some(item) = self.queue.pop_front() {
            self.pool.give(item.into_buffer());
        }
    }
}

/// Schedules both streams so that they are perceived together.
pub struct LipSync {
    max_unsynced_ns: u64,
    budget_ns: u64,
    max_hold_ns: u64,
    audio: Lane<AudioBlock>,
    video: Lane<VideoFrame>,
    started: bool,
    first_arrival_ns: Option<u64>,
    /// Items dropped at the start, captured before the other stream began.
    trimmed: u64,
    /// Items that left later than `max_unsynced` after they were due.
    unsynced: u64,
}

impl LipSync {
    /// `budget_ns` caps the common latency; `max_hold_ns` is how long one
    /// stream waits for the other to start.
    pub fn new(
        (max_unsynced_ns, budget_ns, max_hold_ns): (u64, u64, u64),
        audio: Hold<AudioBlock>,
        video: Hold<VideoFrame>,
    ) -> Self {
        Self {
            max_unsynced_ns,
            budget_ns,
            max_hold_ns,
            audio: Lane::new(audio),
            video: Lane::new(video),
            started: false,
            first_arrival_ns: None,
            trimmed: 0,
            unsynced: 0,
        }
    }

    pub fn push_audio(&mut self, block: AudioBlock, now_ns: u64, output_delay_ns: u64) {
        self.first_arrival_ns.get_or_insert(now_ns);
        self.audio.arrive(block, now_ns, output_delay_ns);
        self.trim_while_waiting(now_ns);
    }

    pub fn push_video(&mut self, frame: VideoFrame, now_ns: u64, output_delay_ns: u64) {
        self.first_arrival_ns.get_or_insert(now_ns);
        self.video.arrive(frame, now_ns, output_delay_ns);
        self.trim_while_waiting(now_ns);
    }

    /// Before the start, drops what the start would drop anyway: items
    /// captured longer ago than the budget and `max_unsynced` (the other
    /// stream's first item, still to come, cannot be older than the
    /// budget), and the oldest of a full lane.
    fn trim_while_waiting(&mut self, now_ns: u64) {
        if self.started {
            return;
        }
        let begin = now_ns.saturating_sub(self.budget_ns + self.max_unsynced_ns);
        self.trimmed += self.audio.trim_before(begin) + self.video.trim_before(begin);
        self.trimmed += self.audio.trim_to_capacity() + self.video.trim_to_capacity();
    }

    /// The audio stream has ended: video no longer waits for it.
    pub fn close_audio(&mut self) {
        self.audio.open = false;
    }

    pub fn close_video(&mut self) {
        self.video.open = false;
    }

    /// Capture → perceived, for both streams.
    pub fn common_latency_ns(&self) -> u64 {
        let slowest = [self.audio.path_ns(), self.video.path_ns()]
            .into_iter()
            .flatten()
            .fold(0.0, f64::max);
        (slowest as u64).min(self.budget_ns)
    }

    /// Items dropped at the start (captured before the other stream began).
    pub fn trimmed(&self) -> u64 {
        self.trimmed
    }

    /// Items released later than `max_unsynced` after they were due.
    pub fn unsynced(&self) -> u64 {
        self.unsynced
    }

    /// Starts once both streams have sent something (or one waited too
    /// long); drops what either captured before the other's first item.
    fn try_start(&mut self, now_ns: u64) -> bool {
        if self.started {
            return true;
        }
        let waited = self
            .first_arrival_ns
            .is_some_and(|first| now_ns.saturating_sub(first) > self.max_hold_ns);
        let both = self.audio.ready() && self.video.ready();
        if !both && !waited {
            return false;
        }
        self.started = true;
        if let (Some(a), Some(v)) = (self.audio.front_ts(), self.video.front_ts()) {
            let begin = a.max(v).saturating_sub(self.max_unsynced_ns);
            self.trimmed += self.audio.trim_before(begin) + self.video.trim_before(begin);
        }
        true
    }

    fn due_ns<T: Item>(&self, lane: &Lane<T>) -> Option<u64> {
        let ts = lane.front_ts()?;
        let hold = self
            .common_latency_ns()
            .saturating_sub(lane.output_delay_ns);
        Some(ts + hold)
    }

    /// When the next item is due (`None`: nothing held, or not started).
    pub fn next_due_ns(&self) -> Option<u64> {
        if !self.started {
            // Wake up when the wait for the other stream runs out.
            return self
                .first_arrival_ns
                .map(|first| first + self.max_hold_ns + 1);
        }
        [self.due_ns(&self.audio), self.due_ns(&self.video)]
            .into_iter()
            .flatten()
            .min()
    }

    /// The next item due by `now_ns`, if any.
    pub fn pop(&mut self, now_ns: u64) -> Option<Released> {
        if !self.try_start(now_ns) {
            return None;
        }
        let audio_due = self.due_ns(&self.audio).filter(|&due| due <= now_ns);
        let video_due = self.due_ns(&self.video).filter(|&due| due <= now_ns);
        let audio_next = match (audio_due, video_due) {
            (None, None) if self.audio.full() => true,
            (None, None) if self.video.full() => false,
            (None, None) => return None,
            (Some(a), Some(v)) => a <= v,
            (a, _) => a.is_some(),
        };
        let due = if audio_next { audio_due } else { video_due };
        if due.is_some_and(|due| now_ns > due + self.max_unsynced_ns) {
            self.unsynced += 1;
        }
        if audio_next {
            self.audio.queue.pop_front().map(Released::Audio)
        } else {
            self.video.queue.pop_front().map(Released::Video)
        }
    }

    /// Everything still held, in capture order (the end of the run).
    pub fn drain(&mut self) -> Option<Released> {
        match (self.audio.front_ts(), self.video.front_ts()) {
            (Some(a), Some(v)) if a <= v => self.audio.queue.pop_front().map(Released::Audio),
            (Some(_), None) => self.audio.queue.pop_front().map(Released::Audio),
            (_, Some(_)) => self.video.queue.pop_front().map(Released::Video),
            (None, None) => None,
        }
    }
}

/// One stream's way through the sync stage.
pub struct SyncLane<I: Item> {
    pub input: Receiver<I>,
    pub output: Handoff<I>,
    pub hold: Hold<I>,
}

/// Real time, both streams: lets each item go when it is due.
pub fn sync(
    audio: SyncLane<AudioBlock>,
    video: SyncLane<VideoFrame>,
    mut lip_sync: LipSync,
    run: &RunControl,
) {
    let _stop_on_panic = super::control::StopOnPanic(run);
    let counters = &run.counters;
    let mut select = Select::new();
    let audio_index = select.recv(&audio.input);
    let video_index = select.recv(&video.input);
    let (mut audio_open, mut video_open) = (true, true);
    while audio_open || video_open {
        let ready = match lip_sync.next_due_ns() {
            Some(due) => select.select_deadline(clock::instant_at(due)).ok(),
            None => Some(select.select()),
        };
        if let Some(op) = ready {
            let now = clock::now_ns();
            let delay = |kind| counters.stream(kind).output_delay_ns.load(Relaxed);
            let _hot = crate::rt::hot();
            if op.index() == audio_index {
                match op.recv(&audio.input) {
                    Ok(block) => lip_sync.push_audio(block, now, delay(StreamKind::Audio)),
                    Err(_) => {
                        select.remove(audio_index);
                        audio_open = false;
                        lip_sync.close_audio();
                    }
                }
            } else if op.index() == video_index {
                match op.recv(&video.input) {
                    Ok(frame) => lip_sync.push_video(frame, now, delay(StreamKind::Video)),
                    Err(_) => {
                        select.remove(video_index);
                        video_open = false;
                        lip_sync.close_video();
                    }
                }
            }
        }
        while let Some(item) = lip_sync.pop(clock::now_ns()) {
            release(item, &audio, &video, run);
        }
        publish(&lip_sync, counters);
    }
    while let Some(item) = lip_sync.drain() {
        release(item, &audio, &video, run);
    }
    publish(&lip_sync, counters);
}

fn publish(lip_sync: &LipSync, counters: &crate::metrics::Counters) {
    let latency_us = lip_sync.common_latency_ns() / 1_000;
    counters.sync_latency_us.store(latency_us, Relaxed);
    (counters.sync_forced_releases).store(lip_sync.unsynced(), Relaxed);
    counters.sync_trimmed.store(lip_sync.trimmed(), Relaxed);
}

fn release(
    item: Released,
    audio: &SyncLane<AudioBlock>,
    video: &SyncLane<VideoFrame>,
    run: &RunControl,
) {
    let _hot = crate::rt::hot();
    match item {
        Released::Audio(block) => hand_on(block, audio, run),
        Released::Video(frame) => hand_on(frame, video, run),
    }
}

fn hand_on<I: Item>(item: I, lane: &SyncLane<I>, run: &RunControl) {
    let counters = run.counters.stream(I::KIND);
    counters.latency.record(Stage::Sync, item.timestamp_ns());
    if let Ok(Some(displaced)) = lane.output.hand(item) {
        // The writer is behind (rare: it only fans out).
        counters.overruns.fetch_add(1, Relaxed);
        lane.hold.pool.give(displaced.into_buffer());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn audio(ts_ms: u64) -> AudioBlock {
        AudioBlock {
            samples: vec![0.0; 4],
            first_frame: ts_ms,
            timestamp_ns: ts_ms * MS,
        }
    }

    fn video(ts_ms: u64) -> VideoFrame {
        VideoFrame {
            pixels: vec![0; 4],
            index: ts_ms,
            timestamp_ns: ts_ms * MS,
        }
    }

    /// Holds of 256 items whose buffers go back to `pools()`.
    fn lip_sync(max_unsynced_ms: u64, budget_ms: u64, max_hold_ms: u64) -> LipSync {
        let (audio, video) = pools();
        LipSync::new(
            (max_unsynced_ms * MS, budget_ms * MS, max_hold_ms * MS),
            Hold {
                items: 256,
                pool: audio,
            },
            Hold {
                items: 256,
                pool: video,
            },
        )
    }

    fn pools() -> (BufferPool<f32>, BufferPool<u8>) {
        (BufferPool::new(0, 4), BufferPool::new(0, 4))
    }

    fn tag(released: Released) -> (char, u64) {
        match released {
            Released::Audio(b) => ('a', b.timestamp_ns / MS),
            Released::Video(f) => ('v', f.timestamp_ns / MS),
        }
    }

    fn pop_all(sync: &mut LipSync, now_ms: u64) -> Vec<(char, u64)> {
        std::iter::from_fn(|| sync.pop(now_ms * MS))
            .map(tag)
            .collect()
    }

    #[test]
    fn video_waits_for_the_audio_output_so_both_are_perceived_together() {
        // Audio arrives 12 ms after capture and its output plays 40 ms
        // after the hand-over; video arrives 20 ms after capture and is
        // shown at once. Both must be perceived 52 ms after capture.
        let mut sync = lip_sync(10, 200, 1_000);
        sync.push_audio(audio(0), 12 * MS, 40 * MS);
        sync.push_video(video(0), 20 * MS, 0);
        assert_eq!(sync.common_latency_ns(), 52 * MS);
        assert_eq!(
            pop_all(&mut sync, 20),
            vec![('a', 0)],
            "audio is due at once"
        );
        assert_eq!(pop_all(&mut sync, 51), vec![], "video is held");
        assert_eq!(pop_all(&mut sync, 52), vec![('v', 0)]);
        assert_eq!(sync.next_due_ns(), None);
        assert_eq!(sync.unsynced(), 0);
    }

    #[test]
    fn nothing_leaves_before_both_streams_started_and_the_early_part_is_dropped() {
        let mut sync = lip_sync(10, 200, 1_000);
        for t in (0..100).step_by(10) {
            sync.push_audio(audio(t), t * MS + 11 * MS, 30 * MS);
        }
        assert_eq!(pop_all(&mut sync, 120), vec![], "video has not started");
        sync.push_video(video(95), 120 * MS, 0);
        // Audio captured more than max_unsynced before the first frame
        // (0..=80) is dropped; 90 stays.
        let released = pop_all(&mut sync, 1_000);
        assert_eq!(released, vec![('a', 90), ('v', 95)]);
        assert_eq!(sync.trimmed(), 9);
    }

    /// A pool with room for `room` buffers and none in it.
    fn empty_pool<T: Clone + Default>(room: usize) -> BufferPool<T> {
        let pool = BufferPool::new(room, 4);
        let taken: Vec<_> = (0..room).map(|_| pool.take()).collect();
        drop(taken);
        pool
    }

    #[test]
    fn while_a_camera_opens_the_microphone_holds_only_the_budget_and_its_buffers_go_back() {
        let audio_pool = empty_pool(200);
        let mut sync = LipSync::new(
            (10 * MS, 100 * MS, 2_000 * MS),
            Hold {
                items: 12,
                pool: audio_pool.clone(),
            },
            Hold {
                items: 4,
                pool: empty_pool(0),
            },
        );
        // 10 ms blocks for 1.5 s before the camera's first frame.
        for t in (0..1_500).step_by(10) {
            sync.push_audio(audio(t), (t + 5) * MS, 20 * MS);
        }
        // At 1495 ms what was captured before 1385 ms is gone already.
        assert_eq!(sync.trimmed(), 139);
        assert_eq!(audio_pool.available(), 139, "their buffers went back");
        sync.push_video(video(1_480), 1_510 * MS, 0);
        // The start drops audio from before 1470 ms (max_unsynced 10 ms).
        let released = pop_all(&mut sync, 2_000);
        assert_eq!(
            released,
            vec![('a', 1_470), ('a', 1_480), ('a', 1_490), ('v', 1_480)],
            "in the order they are perceived: audio's output plays 20 ms later"
        );
        assert_eq!(sync.trimmed(), 147);
        assert_eq!(audio_pool.available(), 147);
    }

    #[test]
    fn a_waiting_lane_never_holds_more_than_its_capacity() {
        let video_pool = empty_pool(20);
        let mut sync = LipSync::new(
            (10 * MS, 1_000 * MS, 2_000 * MS),
            Hold {
                items: 256,
                pool: empty_pool(0),
            },
            Hold {
                items: 4,
                pool: video_pool.clone(),
            },
        );
        for t in 0..10 {
            sync.push_video(video(t * 10), (t * 10 + 1) * MS, 0);
        }
        assert_eq!(sync.trimmed(), 6);
        assert_eq!(video_pool.available(), 6);
        let held: Vec<_> = std::iter::from_fn(|| sync.drain()).map(tag).collect();
        assert_eq!(held, vec![('v', 60), ('v', 70), ('v', 80), ('v', 90)]);
    }

    #[test]
    fn a_stream_that_never_starts_is_not_waited_for_past_max_hold() {
        let mut sync = lip_sync(10, 200, 100);
        sync.push_audio(audio(0), MS, 0);
        assert_eq!(pop_all(&mut sync, 50), vec![]);
        assert_eq!(sync.next_due_ns(), Some(101 * MS + 1));
        assert_eq!(pop_all(&mut sync, 102), vec![('a', 0)]);
    }

    #[test]
    fn the_common_latency_never_exceeds_the_budget_and_late_items_are_counted() {
        let mut sync = lip_sync(10, 60, 1_000);
        sync.push_video(video(0), 5 * MS, 0);
        sync.push_audio(audio(0), 10 * MS, 40 * MS);
        assert_eq!(pop_all(&mut sync, 10), vec![('a', 0)]);
        // A guest that makes audio take 150 ms: beyond the budget.
        sync.push_audio(audio(20), 170 * MS, 40 * MS);
        assert_eq!(sync.common_latency_ns(), 60 * MS);
        let released = pop_all(&mut sync, 170);
        assert_eq!(released, vec![('a', 20), ('v', 0)]);
        assert_eq!(sync.unsynced(), 2, "both left far later than due");
    }

    #[test]
    fn one_late_item_moves_the_common_latency_by_a_millisecond_and_is_counted() {
        let mut sync = lip_sync(10, 500, 1_000);
        sync.push_audio(audio(0), 10 * MS, 20 * MS);
        sync.push_video(video(0), 5 * MS, 0);
        assert_eq!(sync.common_latency_ns(), 30 * MS);
        assert_eq!(pop_all(&mut sync, 15), vec![('a', 0)]);
        assert_eq!(pop_all(&mut sync, 30), vec![('v', 0)]);
        // After the first second, a frame 100 ms late is shown late, not
        // a reason to hold audio.
        sync.push_video(video(1_200), 1_300 * MS, 0);
        assert_eq!(
            sync.common_latency_ns(),
            30 * MS,
            "video path 6 ms < audio's"
        );
        assert_eq!(pop_all(&mut sync, 1_300), vec![('v', 1_200)]);
        assert_eq!(sync.unsynced(), 1);
    }

    #[test]
    fn a_lasting_change_is_followed_up_quickly_and_down_slowly() {
        let mut sync = lip_sync(10, 500, 1_000);
        for i in 0..40 {
            sync.push_video(video(i * 33), (i * 33 + 20) * MS, 0);
        }
        assert_eq!(sync.common_latency_ns(), 20 * MS);
        // Video now takes 60 ms to arrive, for good: 1 ms more per frame.
        for i in 40..80 {
            sync.push_video(video(i * 33), (i * 33 + 60) * MS, 0);
        }
        assert_eq!(sync.common_latency_ns(), 60 * MS);
        // Then 20 ms again: it comes down by 10 ms a second.
        sync.push_video(video(3_000), 3_020 * MS, 0);
        sync.push_video(video(4_000), 4_020 * MS, 0);
        let common = sync.common_latency_ns();
        assert!((45 * MS..=49 * MS).contains(&common), "{common}");
    }

    #[test]
    fn at_the_end_everything_held_goes_out_in_capture_order() {
        let mut sync = lip_sync(10, 500, 1_000);
        sync.push_audio(audio(0), MS, 100 * MS);
        sync.push_video(video(5), MS, 0);
        sync.push_audio(audio(10), MS, 100 * MS);
        let drained: Vec<_> = std::iter::from_fn(|| sync.drain()).map(tag).collect();
        assert_eq!(drained, vec![('a', 0), ('v', 5), ('a', 10)]);
    }
}
