//! Media formats and the blocks and frames that flow through the pipeline.

use std::fmt;

/// Format of an audio stream: interleaved f32 samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioFormat {
    pub sample_rate: u32,
    pub channels: u16,
}

impl AudioFormat {
    /// Nanoseconds of media time at frame index `frame`.
    pub fn frame_time_ns(&self, frame: u64) -> u64 {
        (u128::from(frame) * 1_000_000_000 / u128::from(self.sample_rate)) as u64
    }
}

impl fmt::Display for AudioFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} Hz, {} ch", self.sample_rate, self.channels)
    }
}

/// A frame rate as a ratio, e.g. 30000/1001.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fps {
    pub num: u32,
    pub den: u32,
}

impl Fps {
    pub fn as_f64(self) -> f64 {
        f64::from(self.num) / f64::from(self.den)
    }

    /// Nanoseconds of media time at frame index `index`.
    pub fn frame_time_ns(self, index: u64) -> u64 {
        (u128::from(index) * 1_000_000_000 * u128::from(self.den) / u128::from(self.num)) as u64
    }

    /// The closest ratio to a decimal rate (exact for integers and x/1001).
    pub fn from_f64(fps: f64) -> Option<Self> {
        if !(fps.is_finite() && fps > 0.0 && fps <= 1000.0) {
            return None;
        }
        if (fps - fps.round()).abs() < 1e-9 {
            return Some(Fps {
                num: fps.round() as u32,
                den: 1,
            });
        }
        let ntsc = fps * 1001.0 / 1000.0;
        if (ntsc - ntsc.round()).abs() < 1e-3 {
            return Some(Fps {
                num: ntsc.round() as u32 * 1000,
                den: 1001,
            });
        }
        Some(Fps {
            num: (fps * 1000.0).round() as u32,
            den: 1000,
        })
    }
}

impl fmt::Display for Fps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{:.3}", self.as_f64())
        }
    }
}

/// Format of a video stream: RGBA8 frames, no row padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoFormat {
    pub width: u32,
    pub height: u32,
    pub fps: Fps,
}

impl VideoFormat {
    /// Bytes in one RGBA8 frame.
    pub fn frame_bytes(&self) -> usize {
        self.width as usize * self.height as usize * 4
    }
}

impl fmt::Display for VideoFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{} @ {} fps", self.width, self.height, self.fps)
    }
}

/// A block of interleaved audio samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AudioBlock {
    pub samples: Vec<f32>,
    /// Index of the first frame since the stream started.
    pub first_frame: u64,
    /// Capture time of the first frame on the host clock.
    pub timestamp_ns: u64,
}

/// One RGBA8 video frame.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VideoFrame {
    pub pixels: Vec<u8>,
    /// Index of the frame since the stream started (before any fps cap).
    pub index: u64,
    /// Capture time on the host clock.
    pub timestamp_ns: u64,
}

/// Which of a run's two streams something belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Audio,
    Video,
}

impl StreamKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Audio => "audio",
            Self::Video => "video",
        }
    }
}

/// The format of a stream, as the generic stages see it: how long its
/// units (audio frames, video frames) last.
pub trait StreamFormat:
    Copy + Send + Sync + PartialEq + fmt::Display + fmt::Debug + 'static
{
    /// Nanoseconds of media time at unit `index` (an audio frame, a video
    /// frame) since the stream started.
    fn unit_time_ns(&self, index: u64) -> u64;

    /// Elements (samples, bytes) in one unit.
    fn unit_len(&self) -> usize;

    /// How many units a run limited to `ns` of media time holds.
    fn units_in(&self, ns: u64) -> u64;
}

impl StreamFormat for AudioFormat {
    fn unit_time_ns(&self, index: u64) -> u64 {
        self.frame_time_ns(index)
    }

    fn unit_len(&self) -> usize {
        usize::from(self.channels)
    }

    /// Whole frames: a partial frame is not played.
    fn units_in(&self, ns: u64) -> u64 {
        (u128::from(ns) * u128::from(self.sample_rate) / 1_000_000_000) as u64
    }
}

impl StreamFormat for VideoFormat {
    fn unit_time_ns(&self, index: u64) -> u64 {
        self.fps.frame_time_ns(index)
    }

    fn unit_len(&self) -> usize {
        self.frame_bytes()
    }

    /// Every frame that starts before the limit: it is shown.
    fn units_in(&self, ns: u64) -> u64 {
        let per_second = u128::from(self.fps.num);
        let scale = u128::from(self.fps.den) * 1_000_000_000;
        (u128::from(ns) * per_second).div_ceil(scale) as u64
    }
}

/// What the stages need of a block or frame, so each stage is written
/// once for both streams.
pub trait Item: Send + 'static {
    type Sample: Copy + Default + Send + 'static;
    type Format: StreamFormat;
    const KIND: StreamKind;

    fn new(buffer: Vec<Self::Sample>, index: u64, timestamp_ns: u64) -> Self;
    fn buffer(&self) -> &[Self::Sample];
    fn into_buffer(self) -> Vec<Self::Sample>;
    /// Index of the item's first unit since the stream started.
    fn index(&self) -> u64;
    /// Capture time of the first unit on the host clock.
    fn timestamp_ns(&self) -> u64;

    /// Units (audio frames, video frames) the item holds.
    fn units(&self, format: &Self::Format) -> u64 {
        (self.buffer().len() / format.unit_len().max(1)) as u64
    }

    /// Capture time just after the item's last unit.
    fn end_ns(&self, format: &Self::Format) -> u64 {
        let start = format.unit_time_ns(self.index());
        let end = format.unit_time_ns(self.index() + self.units(format));
        self.timestamp_ns() + (end - start)
    }
}

impl Item for AudioBlock {
    type Sample = f32;
    type Format = AudioFormat;
    const KIND: StreamKind = StreamKind::Audio;

    fn new(samples: Vec<f32>, first_frame: u64, timestamp_ns: u64) -> Self {
        Self {
            samples,
            first_frame,
            timestamp_ns,
        }
    }

    fn buffer(&self) -> &[f32] {
        &self.samples
    }

    fn into_buffer(self) -> Vec<f32> {
        self.samples
    }

    fn index(&self) -> u64 {
        self.first_frame
    }

    fn timestamp_ns(&self) -> u64 {
        self.timestamp_ns
    }
}

impl Item for VideoFrame {
    type Sample = u8;
    type Format = VideoFormat;
    const KIND: StreamKind = StreamKind::Video;

    fn new(pixels: Vec<u8>, index: u64, timestamp_ns: u64) -> Self {
        Self {
            pixels,
            index,
            timestamp_ns,
        }
    }

    fn buffer(&self) -> &[u8] {
        &self.pixels
    }

    fn into_buffer(self) -> Vec<u8> {
        self.pixels
    }

    fn index(&self) -> u64 {
        self.index
    }

    fn timestamp_ns(&self) -> u64 {
        self.timestamp_ns
    }

    fn units(&self, _format: &VideoFormat) -> u64 {
        1
    }
}

/// Recycled buffers: the writer gives back what the reader will fill next,
/// so steady-state streaming allocates nothing in the host's own code.
#[derive(Debug, Clone)]
pub struct BufferPool<T> {
    free_tx: crossbeam_channel::Sender<Vec<T>>,
    free_rx: crossbeam_channel::Receiver<Vec<T>>,
    capacity_each: usize,
}

impl<T: Clone + Default> BufferPool<T> {
    /// A pool pre-filled with `count` buffers of `capacity_each` elements.
    pub fn new(count: usize, capacity_each: usize) -> Self {
        let (free_tx, free_rx) = crossbeam_channel::bounded(count);
        for _ in 0..count {
            let _ = free_tx.try_send(Vec::with_capacity(capacity_each));
        }
        Self {
            free_tx,
            free_rx,
            capacity_each,
        }
    }

    /// A new pool of `count` buffers the size of this one's.
    pub fn like(&self, count: usize) -> Self {
        Self::new(count, self.capacity_each)
    }

    /// An empty buffer: a recycled one if any, else a new one.
    pub fn take(&self) -> Vec<T> {
        match self.free_rx.try_recv() {
            Ok(mut buffer) => {
                buffer.clear();
                buffer
            }
            Err(_) => Vec::with_capacity(self.capacity_each),
        }
    }

    /// Buffers ready to be taken.
    pub fn available(&self) -> usize {
        self.free_rx.len()
    }

    /// Returns a buffer for reuse; dropped if the pool is full.
    pub fn give(&self, buffer: Vec<T>) {
        if buffer.capacity() > 0 {
            let _ = self.free_tx.try_send(buffer);
        }
    }
}
