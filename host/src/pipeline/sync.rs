//! A/V alignment, as pure logic (no threads, no clocks): the sync stage feeds
//! it processed blocks and frames and writes out what it releases.
//!
//! Rule: release in timestamp order, and never let one stream's output get
//! more than `max_unsynced` ahead of the other's. An item is held while the
//! other stream has released nothing recent enough and has nothing queued.
//! If the other stream stalls for longer than `max_hold`, the held items go
//! out anyway and are counted as forced (unsynced) releases, so a stalled
//! camera cannot silence the microphone.

use super::control::RunControl;
use crate::media::{AudioBlock, VideoFrame};
use crossbeam_channel::{Receiver, Select, Sender};
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;

/// What the aligner lets through next.
#[derive(Debug, PartialEq)]
pub enum Released {
    Audio(AudioBlock),
    Video(VideoFrame),
}

#[derive(Debug)]
struct Lane<T> {
    queue: VecDeque<T>,
    open: bool,
    released_ns: Option<u64>,
}

impl<T> Lane<T> {
    fn new() -> Self {
        Self {
            queue: VecDeque::with_capacity(64),
            open: true,
            released_ns: None,
        }
    }
}

/// Holds whichever stream runs ahead until the other catches up.
#[derive(Debug)]
pub struct Aligner {
    max_unsynced_ns: u64,
    max_hold_ns: u64,
    audio: Lane<AudioBlock>,
    video: Lane<VideoFrame>,
    forced: u64,
}

impl Aligner {
    pub fn new(max_unsynced_ns: u64, max_hold_ns: u64) -> Self {
        Self {
            max_unsynced_ns,
            max_hold_ns,
            audio: Lane::new(),
            video: Lane::new(),
            forced: 0,
        }
    }

    pub fn push_audio(&mut self, block: AudioBlock) {
        self.audio.queue.push_back(block);
    }

    pub fn push_video(&mut self, frame: VideoFrame) {
        self.video.queue.push_back(frame);
    }

    /// The audio stream has ended: video no longer waits for it.
    pub fn close_audio(&mut self) {
        self.audio.open = false;
    }

    pub fn close_video(&mut self) {
        self.video.open = false;
    }

    /// Items released because the other stream stalled past `max_hold`.
    pub fn forced_releases(&self) -> u64 {
        self.forced
    }

    /// The next item that may go out, if any.
    pub fn pop(&mut self) -> Option<Released> {
        let audio_ts = self.audio.queue.front().map(|b| b.timestamp_ns);
        let video_ts = self.video.queue.front().map(|f| f.timestamp_ns);
        let audio_next = match (audio_ts, video_ts) {
            (None, None) => return None,
            (Some(a), Some(v)) => a <= v,
            (Some(a), None) => {
                let span = self.audio.queue.back().map_or(0, |b| b.timestamp_ns) - a;
                if !self.may_pass(a, self.video.open, self.video.released_ns, span) {
                    return None;
                }
                true
            }
            (None, Some(v)) => {
                let span = self.video.queue.back().map_or(0, |f| f.timestamp_ns) - v;
                if !self.may_pass(v, self.audio.open, self.audio.released_ns, span) {
                    return None;
                }
                false
            }
        };
        if audio_next {
            let block = self.audio.queue.pop_front()?;
            self.audio.released_ns = Some(block.timestamp_ns);
            Some(Released::Audio(block))
        } else {
            let frame = self.video.queue.pop_front()?;
            self.video.released_ns = Some(frame.timestamp_ns);
            Some(Released::Video(frame))
        }
    }

    /// May an item at `ts` go out while the other stream has nothing queued?
    fn may_pass(
        &mut self,
        ts: u64,
        other_open: bool,
        other_released: Option<u64>,
        held_span: u64,
    ) -> bool {
        if !other_open {
            return true;
        }
        if other_released.is_some_and(|r| ts <= r.saturating_add(self.max_unsynced_ns)) {
            return true;
        }
        if held_span > self.max_hold_ns {
            self.forced += 1;
            return true;
        }
        false
    }
}

/// Real-time only: releases the two streams aligned on their timestamps.
pub fn sync(
    audio: (Receiver<AudioBlock>, Sender<AudioBlock>),
    video: (Receiver<VideoFrame>, Sender<VideoFrame>),
    mut aligner: Aligner,
    run: &RunControl,
) {
    let (audio_rx, audio_tx) = audio;
    let (video_rx, video_tx) = video;
    let mut select = Select::new();
    let audio_index = select.recv(&audio_rx);
    let video_index = select.recv(&video_rx);
    let (mut audio_open, mut video_open) = (true, true);
    while audio_open || video_open {
        let op = select.select();
        if op.index() == audio_index {
            match op.recv(&audio_rx) {
                Ok(block) => aligner.push_audio(block),
                Err(_) => {
                    select.remove(audio_index);
                    audio_open = false;
                    aligner.close_audio();
                }
            }
        } else if op.index() == video_index {
            match op.recv(&video_rx) {
                Ok(frame) => aligner.push_video(frame),
                Err(_) => {
                    select.remove(video_index);
                    video_open = false;
                    aligner.close_video();
                }
            }
        }
        while let Some(item) = aligner.pop() {
            let sent = match item {
                Released::Audio(block) => audio_tx.send(block).is_ok(),
                Released::Video(frame) => video_tx.send(frame).is_ok(),
            };
            if !sent {
                return;
            }
        }
    }
    run.counters
        .sync_forced_releases
        .store(aligner.forced_releases(), Relaxed);
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

    fn drain(aligner: &mut Aligner) -> Vec<(char, u64)> {
        std::iter::from_fn(|| aligner.pop())
            .map(|r| match r {
                Released::Audio(b) => ('a', b.timestamp_ns / MS),
                Released::Video(f) => ('v', f.timestamp_ns / MS),
            })
            .collect()
    }

    #[test]
    fn audio_waits_for_video_that_has_not_arrived() {
        let mut aligner = Aligner::new(10 * MS, 500 * MS);
        for t in [0, 10, 20, 30] {
            aligner.push_audio(audio(t));
        }
        assert_eq!(
            drain(&mut aligner),
            vec![],
            "nothing released before video shows up"
        );
        aligner.push_video(video(0));
        // Merged in timestamp order; audio may run 10 ms past the last video.
        assert_eq!(drain(&mut aligner), vec![('a', 0), ('v', 0), ('a', 10)]);
        aligner.push_video(video(33));
        assert_eq!(drain(&mut aligner), vec![('a', 20), ('a', 30), ('v', 33)]);
    }

    #[test]
    fn releases_are_in_timestamp_order() {
        let mut aligner = Aligner::new(10 * MS, 500 * MS);
        for t in [0, 33, 66] {
            aligner.push_video(video(t));
        }
        for t in (0..80).step_by(10) {
            aligner.push_audio(audio(t));
        }
        aligner.close_audio();
        aligner.close_video();
        let order: Vec<u64> = drain(&mut aligner).iter().map(|(_, t)| *t).collect();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(order, sorted);
        assert_eq!(order.len(), 3 + 8);
    }

    #[test]
    fn a_closed_stream_holds_nothing_back() {
        let mut aligner = Aligner::new(10 * MS, 500 * MS);
        aligner.push_audio(audio(100));
        aligner.close_video();
        assert_eq!(drain(&mut aligner), vec![('a', 100)]);
        assert_eq!(aligner.forced_releases(), 0);
    }

    #[test]
    fn a_stalled_stream_is_bypassed_after_max_hold_and_counted() {
        let mut aligner = Aligner::new(10 * MS, 100 * MS);
        aligner.push_video(video(0));
        aligner.push_audio(audio(0));
        assert_eq!(drain(&mut aligner), vec![('a', 0), ('v', 0),]);
        // Video stalls; audio keeps coming.
        for t in (10..=130).step_by(10) {
            aligner.push_audio(audio(t));
        }
        let released = drain(&mut aligner);
        assert_eq!(
            released.first(),
            Some(&('a', 10)),
            "within max_unsynced of the last frame"
        );
        assert!(
            released.iter().any(|(_, t)| *t == 20),
            "forced past the stall: {released:?}"
        );
        assert!(aligner.forced_releases() > 0);
    }
}
