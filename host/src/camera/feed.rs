//! The camera's capture thread and the feed the pipeline reads.
//!
//! The thread blocks in the driver for each frame, stamps it with the host
//! clock as it is dequeued, decodes it into a recycled buffer and offers
//! it on a two-frame queue. When the queue is full the pipeline is late,
//! and the *oldest* frame is dropped (counted): what leaves is always the
//! newest picture. Nothing is allocated per frame once the pool is warm.

use super::{CameraMode, FrameDecoder, open_in_mode};
use crate::clock;
use crate::device::DeviceError;
use crate::media::{BufferPool, Fps, VideoFormat, VideoFrame};
use crate::metrics::Counters;
use crate::pipeline::{Feed, RunControl};
use crate::rt;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use nokhwa::utils::CameraIndex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::Duration;

/// Frames waiting between the capture thread and the pipeline.
const QUEUE_FRAMES: usize = 2;

/// How long without a frame before the user is told the camera stalled.
const STALL_WARNING: Duration = Duration::from_secs(2);

/// Frames from a camera, decoded to RGBA8 off the processing thread.
pub struct CameraFeed {
    /// Until the first read: the capture starts with the run.
    idle: Option<(CameraIndex, CameraMode)>,
    format: VideoFormat,
    name: String,
    frames: Option<Receiver<VideoFrame>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
    last_frame_ns: u64,
    stall_reported: bool,
}

impl CameraFeed {
    pub(super) fn new(index: CameraIndex, mode: CameraMode, name: String) -> Self {
        Self {
            idle: Some((index, mode)),
            format: VideoFormat {
                width: mode.width,
                height: mode.height,
                fps: Fps {
                    num: mode.fps,
                    den: 1,
                },
            },
            name,
            frames: None,
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
            last_frame_ns: 0,
            stall_reported: false,
        }
    }

    fn start(&mut self, pool: &BufferPool<u8>, counters: Arc<Counters>) -> anyhow::Result<()> {
        let Some((index, mode)) = self.idle.take() else {
            return Ok(());
        };
        let (tx, rx) = crossbeam_channel::bounded(QUEUE_FRAMES);
        let capture = Capture {
            index,
            mode,
            name: self.name.clone(),
            pool: pool.clone(),
            tx,
            oldest: rx.clone(),
            stop: self.stop.clone(),
            counters,
        };
        self.thread = Some(
            std::thread::Builder::new()
                .name("sandstream-camera".into())
                .spawn(move || capture.run())?,
        );
        self.frames = Some(rx);
        self.last_frame_ns = clock::now_ns();
        Ok(())
    }

    /// The capture thread's ending: its error, if it had one.
    fn ended(&mut self) -> anyhow::Result<Option<VideoFrame>> {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(Err(error))) => Err(error),
            Some(Err(_)) => Err(anyhow::anyhow!(
                "internal error: the capture thread of {} panicked",
                self.name
            )),
            _ => Ok(None),
        }
    }
}

impl Feed<VideoFrame> for CameraFeed {
    fn format(&self) -> VideoFormat {
        self.format
    }

    fn describe(&self) -> String {
        format!("camera {}", self.name)
    }

    fn next(
        &mut self,
        pool: &BufferPool<u8>,
        run: &RunControl,
    ) -> anyhow::Result<Option<VideoFrame>> {
        if self.idle.is_some() {
            self.start(pool, run.counters.clone())?;
        }
        let Some(frames) = &self.frames else {
            return Ok(None);
        };
        loop {
            if run.stop_requested() {
                return Ok(None);
            }
            match frames.recv_timeout(Duration::from_millis(100)) {
                Ok(frame) => {
                    self.last_frame_ns = frame.timestamp_ns;
                    self.stall_reported = false;
                    return Ok(Some(frame));
                }
                Err(RecvTimeoutError::Timeout) => {
                    let silent = clock::now_ns().saturating_sub(self.last_frame_ns);
                    if !self.stall_reported && silent > STALL_WARNING.as_nanos() as u64 {
                        self.stall_reported = true;
                        tracing::warn!(
                            "{} has sent no frame for {:.1} s",
                            self.name,
                            silent as f64 / 1e9
                        );
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return self.ended(),
            }
        }
    }
}

impl Drop for CameraFeed {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        // Not joined: a camera that stalled may hold its thread in the
        // driver; it ends with its next frame or with the process.
    }
}

/// What the capture thread owns.
struct Capture {
    index: CameraIndex,
    mode: CameraMode,
    name: String,
    pool: BufferPool<u8>,
    tx: Sender<VideoFrame>,
    /// The queue's far end, to drop its oldest frame when it is full.
    oldest: Receiver<VideoFrame>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
}

impl Capture {
    fn run(self) -> anyhow::Result<()> {
        let start_error = |e: nokhwa::NokhwaError| DeviceError::Backend {
            device: self.name.clone(),
            detail: format!("cannot start capture in {}: {e}", self.mode),
        };
        let mut camera = open_in_mode(&self.index, self.mode).map_err(start_error)?;
        camera.open_stream().map_err(start_error)?;
        let decoder = FrameDecoder::new(self.mode.layout, self.mode.width, self.mode.height);
        let mut index = 0;
        let mut bad_frames = 0u64;
        while !self.stop.load(Relaxed) {
            let raw = match camera.frame_raw() {
                Ok(raw) => raw,
                Err(e) => {
                    return Err(DeviceError::Disconnected {
                        device: self.name.clone(),
                        detail: e.to_string(),
                    }
                    .into());
                }
            };
            let captured_ns = clock::now_ns();
            let _hot = rt::hot();
            let mut pixels = self.pool.take();
            if let Err(error) = decoder.decode(&raw, &mut pixels) {
                // A torn or corrupt frame (it happens with MJPEG over USB):
                // skipped and counted, said once.
                bad_frames += 1;
                self.counters.video.capture_overruns.fetch_add(1, Relaxed);
                self.counters.video.capture_units_lost.fetch_add(1, Relaxed);
                if bad_frames == 1 {
                    rt::outside_hot(|| {
                        tracing::warn!("{}: skipping undecodable frames: {error:#}", self.name);
                    });
                }
                self.pool.give(pixels);
                continue;
            }
            drop(raw);
            let frame = VideoFrame {
                pixels,
                index,
                timestamp_ns: captured_ns,
            };
            index += 1;
            self.offer(frame);
        }
        let _ = camera.stop_stream();
        Ok(())
    }

    /// Queues a frame, dropping the oldest queued one if the pipeline is
    /// behind.
    fn offer(&self, frame: VideoFrame) {
        let frame = match self.tx.try_send(frame) {
            Ok(()) => return,
            Err(TrySendError::Disconnected(frame)) => {
                self.pool.give(frame.pixels);
                return;
            }
            Err(TrySendError::Full(frame)) => frame,
        };
        if let Ok(oldest) = self.oldest.try_recv() {
            self.counters.video.capture_overruns.fetch_add(1, Relaxed);
            self.counters.video.capture_units_lost.fetch_add(1, Relaxed);
            self.pool.give(oldest.pixels);
        }
        if let Err(TrySendError::Full(frame) | TrySendError::Disconnected(frame)) =
            self.tx.try_send(frame)
        {
            self.pool.give(frame.pixels);
        }
    }
}
