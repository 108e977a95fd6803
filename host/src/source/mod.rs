//! Where media comes from. Every source is a small trait object, so devices
//! (a later addition) plug in beside the file and synthetic ones.

mod pattern;
mod synth;
mod wav;
mod y4m;

pub use pattern::PatternSource;
pub use synth::{ClickTrain, Signal, SignalSource, SilenceSource, Tone};
pub use wav::WavSource;
pub use y4m::Y4mSource;

use crate::media::{AudioBlock, Item, VideoFrame};

/// A source the pipeline pulls from (files, synthetic signals). Devices
/// push instead: see [`crate::device`].
pub trait Source<I: Item>: Send {
    fn format(&self) -> I::Format;

    /// Appends up to `max_units` units (audio frames; one video frame) to
    /// `buffer`; returns how many were appended, 0 at the end of the stream.
    ///
    /// # Errors
    /// Read or decode errors, with the source named.
    fn read(&mut self, buffer: &mut Vec<I::Sample>, max_units: usize) -> anyhow::Result<usize>;

    /// True for sources that never end by themselves (tone, pattern).
    fn is_endless(&self) -> bool;

    /// What the source is, for messages (`file:in.wav`, `tone:440`).
    fn describe(&self) -> String;
}

/// A producer of interleaved f32 audio.
pub type AudioSource = dyn Source<AudioBlock>;

/// A producer of RGBA8 video frames.
pub type VideoSource = dyn Source<VideoFrame>;
