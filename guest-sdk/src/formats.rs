use crate::bindings::sandstream::av::types as wit;

/// Audio stream format, fixed for the life of the effect.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AudioFormat {
    pub sample_rate: u32,
    pub channels: u32,
    /// Frames per block the host usually sends (the last may be shorter).
    pub block_frames: u32,
}

/// Video stream format, fixed for the life of the effect.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoFormat {
    pub width: u32,
    pub height: u32,
    pub fps: f64,
}

/// The streams the effect will receive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Formats {
    pub audio: Option<AudioFormat>,
    pub video: Option<VideoFormat>,
}

impl Formats {
    pub(crate) fn from_wit(formats: wit::StreamFormats) -> Self {
        Self {
            audio: formats.audio.map(|a| AudioFormat {
                sample_rate: a.sample_rate,
                channels: a.channels,
                block_frames: a.block_frames,
            }),
            video: formats.video.map(|v| VideoFormat {
                width: v.width,
                height: v.height,
                fps: v.fps,
            }),
        }
    }
}

/// What to do with the block or frame after processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Send on the (possibly modified) data.
    Keep,
    /// Drop this block or frame: nothing is written for it.
    Drop,
}

/// One block of interleaved audio, modified in place.
#[derive(Debug)]
pub struct AudioBlock<'a> {
    /// `frames() * channels` interleaved samples, nominal range -1..1.
    pub samples: &'a mut [f32],
    pub channels: u32,
    pub sample_rate: u32,
    /// Capture time of the first frame, nanoseconds on the host clock.
    pub timestamp_ns: u64,
    /// Index of the first frame since the stream started.
    pub first_frame: u64,
}

impl AudioBlock<'_> {
    /// Number of frames (samples per channel) in the block.
    pub fn frames(&self) -> usize {
        self.samples.len() / self.channels.max(1) as usize
    }

    /// Iterates over frames, each a slice of `channels` samples.
    pub fn frames_mut(&mut self) -> std::slice::ChunksExactMut<'_, f32> {
        self.samples.chunks_exact_mut(self.channels.max(1) as usize)
    }
}

/// One RGBA8 video frame, modified in place.
#[derive(Debug)]
pub struct VideoFrame<'a> {
    /// `width * height * 4` bytes, rows top to bottom, no padding.
    pub pixels: &'a mut [u8],
    pub width: u32,
    pub height: u32,
    /// Capture time, nanoseconds on the host clock.
    pub timestamp_ns: u64,
    /// Index of the frame since the stream started.
    pub index: u64,
}

impl VideoFrame<'_> {
    /// Iterates over pixels as `[r, g, b, a]` chunks.
    pub fn pixels_mut(&mut self) -> std::slice::ChunksExactMut<'_, u8> {
        self.pixels.chunks_exact_mut(4)
    }

    /// The 4 bytes of pixel (x, y); `None` outside the frame.
    pub fn pixel_mut(&mut self, x: u32, y: u32) -> Option<&mut [u8]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let at = (y as usize * self.width as usize + x as usize) * 4;
        self.pixels.get_mut(at..at + 4)
    }
}
