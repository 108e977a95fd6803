//! Where processed media goes. File sinks write to `NAME.partial` and rename
//! on success, so a failed or interrupted-by-error run never leaves a
//! truncated file that looks complete.

mod latest;
mod null;
#[cfg(target_os = "linux")]
mod pipewire;
mod png;
#[cfg(target_os = "linux")]
mod v4l2;
mod wav;
mod window;
mod y4m;

pub use latest::{FramePoster, FrameReader, Slot, latest_frame};
pub use null::NullSink;
#[cfg(target_os = "linux")]
pub use pipewire::{PipeWireCamera, node_name};
pub use png::PngSnapshotSink;
#[cfg(target_os = "linux")]
pub use v4l2::{LoopbackDevice, LoopbackSink, V4l2Device};
pub use wav::WavSink;
pub use window::WindowSink;
pub use y4m::Y4mSink;

use crate::media::{AudioBlock, Item, VideoFrame};
use crate::metrics::StreamCounters;
use anyhow::Context as _;
use std::path::{Path, PathBuf};

/// A consumer of processed blocks or frames.
pub trait Sink<I: Item>: Send {
    /// # Errors
    /// Write errors, with the sink named.
    fn write(&mut self, item: &I) -> anyhow::Result<()>;

    /// Completes the output (headers, rename into place).
    ///
    /// # Errors
    /// Write errors.
    fn finish(self: Box<Self>) -> anyhow::Result<()>;

    /// Throws the output away after a failed run.
    fn abort(self: Box<Self>) {}

    fn describe(&self) -> String;

    /// Adds what the sink itself counts (a device's underruns) to the
    /// stream's counters; called after each write.
    fn report(&self, _counters: &StreamCounters) {}

    /// True for outputs that play or show in real time (a device, a
    /// virtual camera, a window): a run with one is paced to the clock.
    fn is_real_time(&self) -> bool {
        false
    }

    /// For real-time outputs: how long after a write its item is played
    /// or shown (read just before the write). Files: `None`.
    fn output_delay(&self) -> Option<OutputDelay> {
        self.is_real_time().then_some(OutputDelay::default())
    }
}

/// How long after its hand-over an output plays an item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputDelay {
    /// For the item written next: what is queued ahead of it, and the
    /// device's own buffer.
    pub now_ns: u64,
    /// In steady state (the queue at its target fill), which the A/V sync
    /// stage plans with: steadier than `now_ns`, which saws with every
    /// block and callback.
    pub steady_ns: u64,
}

/// A consumer of processed audio.
pub type AudioSink = dyn Sink<AudioBlock>;

/// A consumer of processed RGBA8 frames.
pub type VideoSink = dyn Sink<VideoFrame>;

/// A file written under a temporary name and renamed when complete.
/// Dropped without [`PartialFile::commit`] (a failed or abandoned run), the
/// temporary file is removed.
#[derive(Debug)]
pub struct PartialFile {
    partial: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl PartialFile {
    /// Creates `target.partial` (and checks the directory exists).
    ///
    /// # Errors
    /// When the file cannot be created.
    pub fn create(target: &Path) -> anyhow::Result<(Self, std::fs::File)> {
        let mut name = target.as_os_str().to_owned();
        name.push(".partial");
        let partial = PathBuf::from(name);
        let file = std::fs::File::create(&partial)
            .with_context(|| format!("cannot create output {}", target.display()))?;
        Ok((
            Self {
                partial,
                target: target.to_path_buf(),
                committed: false,
            },
            file,
        ))
    }

    /// Moves the completed file into place.
    ///
    /// # Errors
    /// When the rename fails.
    pub fn commit(mut self) -> anyhow::Result<()> {
        std::fs::rename(&self.partial, &self.target).with_context(|| {
            format!("cannot move output into place at {}", self.target.display())
        })?;
        self.committed = true;
        Ok(())
    }

    /// Removes the incomplete file.
    pub fn discard(self) {
        // Drop does the work.
    }

    pub fn partial_path(&self) -> &Path {
        &self.partial
    }

    pub fn target(&self) -> &Path {
        &self.target
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}
