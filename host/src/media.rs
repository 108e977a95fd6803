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

    /// Returns a buffer for reuse; dropped if the pool is full.
    pub fn give(&self, buffer: Vec<T>) {
        if buffer.capacity() > 0 {
            let _ = self.free_tx.try_send(buffer);
        }
    }
}
