//! Where media comes from. Every source is a small trait object, so devices
//! (a later addition) plug in beside the file and synthetic ones.

mod pattern;
mod synth;
mod wav;
mod y4m;

pub use pattern::PatternSource;
pub use synth::{SilenceSource, ToneSource};
pub use wav::WavSource;
pub use y4m::Y4mSource;

use crate::media::{AudioFormat, VideoFormat};

/// A producer of interleaved f32 audio.
pub trait AudioSource: Send {
    fn format(&self) -> AudioFormat;

    /// Appends up to `max_frames` frames to `samples`; returns how many
    /// frames were appended, 0 at the end of the stream.
    ///
    /// # Errors
    /// Read or decode errors, with the source named.
    fn read(&mut self, samples: &mut Vec<f32>, max_frames: usize) -> anyhow::Result<usize>;

    /// True for sources that never end by themselves (tone, silence).
    fn is_endless(&self) -> bool;

    /// What the source is, for messages (`file:in.wav`, `tone:440`).
    fn describe(&self) -> String;
}

/// A producer of RGBA8 video frames.
pub trait VideoSource: Send {
    fn format(&self) -> VideoFormat;

    /// Writes the next frame into `rgba` (resized to the frame size);
    /// `false` at the end of the stream.
    ///
    /// # Errors
    /// Read or decode errors, with the source named.
    fn read(&mut self, rgba: &mut Vec<u8>) -> anyhow::Result<bool>;

    /// True for sources that never end by themselves (pattern).
    fn is_endless(&self) -> bool;

    fn describe(&self) -> String;
}
