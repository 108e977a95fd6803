//! The bodies of the pipeline's threads: read, process, sync, write.
//! Each takes what it needs by value and ends when its input closes, the
//! run is stopped, or it fails (recording the failure for the others).

use super::GuestLifecycle;
use super::safety::make_safe;
use super::sync::{Aligner, Released};
use crate::clock;
use crate::lifecycle::{AudioCall, Delivery, VideoCall};
use crate::media::{AudioBlock, AudioFormat, BufferPool, Fps, VideoFormat, VideoFrame};
use crate::metrics::Counters;
use crate::sink::{AudioSink, VideoSink};
use crate::source::{AudioSource, VideoSource};
use crossbeam_channel::{Receiver, Select, Sender, TrySendError};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// State shared by every stage of one run.
#[derive(Default)]
pub struct RunControl {
    stop: AtomicBool,
    failure: Mutex<Option<anyhow::Error>>,
    /// Shared with the guest supervisor, which counts faults.
    pub counters: Arc<Counters>,
}

impl RunControl {
    pub fn request_stop(&self) {
        self.stop.store(true, Relaxed);
    }

    pub fn stop_requested(&self) -> bool {
        self.stop.load(Relaxed)
    }

    /// Records the run's first failure and stops everything.
    pub fn fail(&self, error: anyhow::Error) {
        let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        if failure.is_none() {
            *failure = Some(error);
        }
        self.request_stop();
    }

    pub fn failed(&self) -> bool {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    pub fn take_failure(&self) -> Option<anyhow::Error> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

/// When reading runs against the clock, and when it stops.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// `Some(start)`: pace reads to the clock and stamp `start + media time`;
    /// `None`: read as fast as possible and stamp media time.
    pub realtime_start_ns: Option<u64>,
    /// Stop after this much media time.
    pub duration_ns: Option<u64>,
}

impl Timing {
    fn stamp(&self, media_ns: u64) -> u64 {
        self.realtime_start_ns
            .map_or(media_ns, |start| start + media_ns)
    }

    /// Hands an item downstream: blocking (no loss) offline; in real time a
    /// full queue means the consumer is late, so the item is dropped and
    /// counted instead of stalling capture.
    fn send<T>(
        &self,
        tx: &Sender<T>,
        item: T,
        overruns: &std::sync::atomic::AtomicU64,
    ) -> Result<(), T> {
        if self.realtime_start_ns.is_none() {
            return tx.send(item).map_err(|e| e.0);
        }
        match tx.try_send(item) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(item)) => {
                overruns.fetch_add(1, Relaxed);
                // Not delivered, but the run goes on: give the buffer back.
                drop(item);
                Ok(())
            }
            Err(TrySendError::Disconnected(item)) => Err(item),
        }
    }
}

pub fn read_audio(
    mut source: Box<dyn AudioSource>,
    block_frames: usize,
    timing: Timing,
    pool: BufferPool<f32>,
    tx: Sender<AudioBlock>,
    run: Arc<RunControl>,
) {
    let format = source.format();
    let limit_frames = timing
        .duration_ns
        .map(|ns| (u128::from(ns) * u128::from(format.sample_rate) / 1_000_000_000) as u64);
    let mut next_frame = 0u64;
    while !run.stop_requested() {
        let wanted = match limit_frames {
            Some(limit) if next_frame >= limit => break,
            Some(limit) => block_frames.min((limit - next_frame) as usize),
            None => block_frames,
        };
        let mut samples = pool.take();
        let frames = match source.read(&mut samples, wanted) {
            Ok(0) => break,
            Ok(frames) => frames as u64,
            Err(err) => return run.fail(err),
        };
        let media_ns = format.frame_time_ns(next_frame);
        if timing.realtime_start_ns.is_some() {
            clock::sleep_until_ns(timing.stamp(media_ns));
        }
        let block = AudioBlock {
            samples,
            first_frame: next_frame,
            timestamp_ns: timing.stamp(media_ns),
        };
        next_frame += frames;
        run.counters.audio_blocks_in.fetch_add(1, Relaxed);
        run.counters.audio_frames_in.fetch_add(frames, Relaxed);
        if timing
            .send(&tx, block, &run.counters.audio_overruns)
            .is_err()
        {
            break;
        }
    }
}

pub fn read_video(
    mut source: Box<dyn VideoSource>,
    output_fps: Fps,
    timing: Timing,
    pool: BufferPool<u8>,
    tx: Sender<VideoFrame>,
    run: Arc<RunControl>,
) {
    let source_fps = source.format().fps;
    let mut index = 0u64;
    let mut kept = 0u64;
    while !run.stop_requested() {
        let media_ns = source_fps.frame_time_ns(index);
        if timing.duration_ns.is_some_and(|limit| media_ns >= limit) {
            break;
        }
        let mut pixels = pool.take();
        match source.read(&mut pixels) {
            Ok(true) => {}
            Ok(false) => break,
            Err(err) => return run.fail(err),
        }
        run.counters.video_frames_in.fetch_add(1, Relaxed);
        // Fps cap: keep a frame when it starts a new output frame period.
        if output_fps != source_fps && output_fps.frame_time_ns(kept) > media_ns {
            run.counters.video_skipped_by_fps_cap.fetch_add(1, Relaxed);
            pool.give(pixels);
            index += 1;
            continue;
        }
        if timing.realtime_start_ns.is_some() {
            clock::sleep_until_ns(timing.stamp(media_ns));
        }
        let frame = VideoFrame {
            pixels,
            index,
            timestamp_ns: timing.stamp(media_ns),
        };
        index += 1;
        kept += 1;
        if timing
            .send(&tx, frame, &run.counters.video_overruns)
            .is_err()
        {
            break;
        }
    }
}

/// One stream's connections to the processing stage.
pub struct Lane<T, Sample, Format> {
    pub input: Receiver<T>,
    pub output: Sender<T>,
    /// Where input buffers go back once the guest has returned new ones.
    pub pool: BufferPool<Sample>,
    pub format: Format,
}

/// Inputs and outputs of the processing stage, per stream the guest
/// processes.
pub struct ProcessLanes {
    pub audio: Option<Lane<AudioBlock, f32, AudioFormat>>,
    pub video: Option<Lane<VideoFrame, u8, VideoFormat>>,
}

/// In which order the processing stage takes blocks from its two lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Whatever arrives first (real time: capture order).
    Arrival,
    /// Earliest media timestamp first, waiting for both lanes (offline): an
    /// A/V guest then sees the same interleaving on every run, so its
    /// output is reproducible.
    MediaTime,
}

/// Owns the guest's lifecycle: one thread enters the guest, so calls never
/// overlap. Streams the guest does not process pass through untouched.
/// Swaps prepared by the controller are installed by the lifecycle between
/// two blocks, so every block is processed by exactly one guest. Audio
/// leaves through the output safety (`limiter`: clamp to full scale).
pub fn process(
    guest: GuestLifecycle,
    lanes: ProcessLanes,
    run: Arc<RunControl>,
    order: Order,
    limiter: bool,
) {
    let mut guest = Guest { guest, limiter };
    match order {
        Order::Arrival => process_as_they_come(&mut guest, lanes, run),
        Order::MediaTime => process_in_media_order(&mut guest, lanes, run),
    }
}

/// The lifecycle and what the stage does with its audio output.
struct Guest {
    guest: GuestLifecycle,
    limiter: bool,
}

fn process_in_media_order(guest: &mut Guest, lanes: ProcessLanes, run: Arc<RunControl>) {
    let ProcessLanes { audio, video } = lanes;
    let (audio_rx, mut audio_tx, audio_pool, audio_format) = split(audio);
    let (video_rx, mut video_tx, video_pool, video_format) = split(video);
    let (mut next_audio, mut next_video) = (None, None);
    loop {
        if next_audio.is_none()
            && let (Some(rx), Some(_)) = (&audio_rx, &audio_tx)
        {
            // A closed lane closes downstream too.
            next_audio = rx.recv().ok();
            audio_tx = audio_tx.filter(|_| next_audio.is_some());
        }
        if next_video.is_none()
            && let (Some(rx), Some(_)) = (&video_rx, &video_tx)
        {
            next_video = rx.recv().ok();
            video_tx = video_tx.filter(|_| next_video.is_some());
        }
        let audio_first = match (&next_audio, &next_video) {
            (Some(block), Some(frame)) => block.timestamp_ns <= frame.timestamp_ns,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return,
        };
        let result = match (audio_first, &audio_tx, &audio_pool, &video_tx, &video_pool) {
            (true, Some(tx), Some(pool), _, _) => {
                let block = next_audio.take().expect("chosen because present");
                let format = audio_format.expect("a lane has a format");
                process_audio_block(guest, block, format, pool, tx, &run)
            }
            (false, _, _, Some(tx), Some(pool)) => {
                let frame = next_video.take().expect("chosen because present");
                let format = video_format.expect("a lane has a format");
                process_video_frame(guest, frame, format, pool, tx, &run)
            }
            _ => unreachable!("a pending block always has its lane"),
        };
        if let Err(err) = result {
            return run.fail(err);
        }
    }
}

fn process_as_they_come(guest: &mut Guest, lanes: ProcessLanes, run: Arc<RunControl>) {
    let ProcessLanes { audio, video } = lanes;
    let (audio_rx, mut audio_tx, audio_pool, audio_format) = split(audio);
    let (video_rx, mut video_tx, video_pool, video_format) = split(video);
    // `SelectedOperation::recv` must get the very receiver registered here.
    let mut select = Select::new();
    let audio_index = audio_rx.as_ref().map(|rx| select.recv(rx));
    let video_index = video_rx.as_ref().map(|rx| select.recv(rx));
    while audio_tx.is_some() || video_tx.is_some() {
        let op = select.select();
        let index = op.index();
        let result = if let (Some(i), Some(rx)) = (audio_index, &audio_rx)
            && i == index
        {
            match (op.recv(rx), &audio_tx, &audio_pool, audio_format) {
                (Ok(block), Some(tx), Some(pool), Some(format)) => {
                    process_audio_block(guest, block, format, pool, tx, &run)
                }
                _ => {
                    // Input ended: close this lane downstream too.
                    select.remove(index);
                    audio_tx = None;
                    Ok(())
                }
            }
        } else if let (Some(i), Some(rx)) = (video_index, &video_rx)
            && i == index
        {
            match (op.recv(rx), &video_tx, &video_pool, video_format) {
                (Ok(frame), Some(tx), Some(pool), Some(format)) => {
                    process_video_frame(guest, frame, format, pool, tx, &run)
                }
                _ => {
                    select.remove(index);
                    video_tx = None;
                    Ok(())
                }
            }
        } else {
            unreachable!("select returned an operation that was not registered")
        };
        if let Err(err) = result {
            return run.fail(err);
        }
    }
}

/// A lane taken apart, so its output can be dropped (closing the stream
/// downstream) while its input stays registered with the select.
type LaneParts<T, S, F> = (
    Option<Receiver<T>>,
    Option<Sender<T>>,
    Option<BufferPool<S>>,
    Option<F>,
);

fn split<T, S, F>(lane: Option<Lane<T, S, F>>) -> LaneParts<T, S, F> {
    match lane {
        Some(Lane {
            input,
            output,
            pool,
            format,
        }) => (Some(input), Some(output), Some(pool), Some(format)),
        None => (None, None, None, None),
    }
}

/// Sends downstream; a closed channel means a later stage failed or stopped.
fn forward<T>(tx: &Sender<T>, item: T) -> anyhow::Result<()> {
    tx.send(item)
        .map_err(|_| anyhow::anyhow!("output stage closed early"))
}

fn process_audio_block(
    guest: &mut Guest,
    mut block: AudioBlock,
    format: AudioFormat,
    pool: &BufferPool<f32>,
    tx: &Sender<AudioBlock>,
    run: &RunControl,
) -> anyhow::Result<()> {
    let call = AudioCall {
        timestamp_ns: block.timestamp_ns,
        first_frame: block.first_frame,
        format,
    };
    match guest.guest.audio(&mut block, call)? {
        Delivery::Send => {
            make_safe(&mut block.samples, guest.limiter, &run.counters);
            forward(tx, block)
        }
        Delivery::DroppedByGuest => {
            run.counters.audio_dropped_by_guest.fetch_add(1, Relaxed);
            pool.give(block.samples);
            Ok(())
        }
    }
}

fn process_video_frame(
    guest: &mut Guest,
    mut frame: VideoFrame,
    format: VideoFormat,
    pool: &BufferPool<u8>,
    tx: &Sender<VideoFrame>,
    run: &RunControl,
) -> anyhow::Result<()> {
    let call = VideoCall {
        timestamp_ns: frame.timestamp_ns,
        index: frame.index,
        format,
    };
    match guest.guest.video(&mut frame, call)? {
        Delivery::Send => forward(tx, frame),
        Delivery::DroppedByGuest => {
            run.counters.video_dropped_by_guest.fetch_add(1, Relaxed);
            pool.give(frame.pixels);
            Ok(())
        }
    }
}

/// Real-time only: releases the two streams aligned on their timestamps.
pub fn sync(
    audio: (Receiver<AudioBlock>, Sender<AudioBlock>),
    video: (Receiver<VideoFrame>, Sender<VideoFrame>),
    mut aligner: Aligner,
    run: Arc<RunControl>,
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

pub fn write_audio(
    mut sinks: Vec<Box<dyn AudioSink>>,
    format: AudioFormat,
    pool: BufferPool<f32>,
    rx: Receiver<AudioBlock>,
    run: Arc<RunControl>,
) -> Vec<Box<dyn AudioSink>> {
    let channels = u64::from(format.channels);
    let mut last_ts = None;
    for block in rx {
        if run.failed() {
            break;
        }
        if last_ts.is_some_and(|last| block.timestamp_ns < last) {
            run.counters
                .audio_timestamp_regressions
                .fetch_add(1, Relaxed);
        }
        last_ts = Some(block.timestamp_ns);
        for sink in &mut sinks {
            if let Err(err) = sink.write(&block) {
                run.fail(err);
                break;
            }
        }
        let frames = block.samples.len() as u64 / channels;
        run.counters.audio_blocks_out.fetch_add(1, Relaxed);
        run.counters.audio_frames_out.fetch_add(frames, Relaxed);
        let end = block.timestamp_ns + format.frame_time_ns(frames);
        run.counters.audio_last_end_ns.store(end, Relaxed);
        pool.give(block.samples);
    }
    // Finished (or discarded) by the coordinator once every stage is done.
    sinks
}

pub fn write_video(
    mut sinks: Vec<Box<dyn VideoSink>>,
    fps: Fps,
    pool: BufferPool<u8>,
    rx: Receiver<VideoFrame>,
    run: Arc<RunControl>,
) -> Vec<Box<dyn VideoSink>> {
    let mut last_ts = None;
    for frame in rx {
        if run.failed() {
            break;
        }
        if last_ts.is_some_and(|last| frame.timestamp_ns < last) {
            run.counters
                .video_timestamp_regressions
                .fetch_add(1, Relaxed);
        }
        last_ts = Some(frame.timestamp_ns);
        for sink in &mut sinks {
            if let Err(err) = sink.write(&frame) {
                run.fail(err);
                break;
            }
        }
        run.counters.video_frames_out.fetch_add(1, Relaxed);
        let end = frame.timestamp_ns + fps.frame_time_ns(1);
        run.counters.video_last_end_ns.store(end, Relaxed);
        pool.give(frame.pixels);
    }
    sinks
}
