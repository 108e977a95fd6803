use super::{PartialFile, Sink};
use crate::media::{VideoFormat, VideoFrame};
use anyhow::Context as _;
use std::io::BufWriter;
use std::path::Path;

/// Keeps the last frame of the run and writes it as a PNG at the end: a
/// picture of what the effect did, without a video player.
pub struct PngSnapshotSink {
    file: PartialFile,
    format: VideoFormat,
    latest: Vec<u8>,
}

impl PngSnapshotSink {
    /// # Errors
    /// When the file cannot be created.
    pub fn create(path: &Path, format: VideoFormat) -> anyhow::Result<Self> {
        let (file, _) = PartialFile::create(path)?;
        Ok(Self {
            file,
            format,
            latest: Vec::with_capacity(format.frame_bytes()),
        })
    }
}

impl Sink<VideoFrame> for PngSnapshotSink {
    fn write(&mut self, frame: &VideoFrame) -> anyhow::Result<()> {
        // clone_from reuses the allocation: no per-frame allocation.
        self.latest.clone_from(&frame.pixels);
        Ok(())
    }

    fn finish(self: Box<Self>) -> anyhow::Result<()> {
        let Self {
            file,
            format,
            latest: snapshot,
        } = *self;
        if snapshot.is_empty() {
            let message = format!("no video frame reached {}", file.target().display());
            file.discard();
            anyhow::bail!(message);
        }
        let handle = std::fs::File::create(file.partial_path())?;
        let mut encoder = png::Encoder::new(BufWriter::new(handle), format.width, format.height);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .with_context(|| format!("writing {}", file.target().display()))?;
        writer
            .write_image_data(&snapshot)
            .with_context(|| format!("writing {}", file.target().display()))?;
        writer.finish()?;
        file.commit()
    }

    fn abort(self: Box<Self>) {
        self.file.discard();
    }

    fn describe(&self) -> String {
        format!("file:{}", self.file.target().display())
    }
}
