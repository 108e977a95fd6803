use super::{PartialFile, Sink};
use crate::media::{AudioBlock, AudioFormat};
use anyhow::Context as _;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

/// 32-bit float WAV: lossless for the pipeline's f32 samples.
pub struct WavSink {
    writer: hound::WavWriter<BufWriter<File>>,
    file: PartialFile,
}

impl WavSink {
    /// # Errors
    /// When the file cannot be created.
    pub fn create(path: &Path, format: AudioFormat) -> anyhow::Result<Self> {
        let (file, handle) = PartialFile::create(path)?;
        let spec = hound::WavSpec {
            channels: format.channels,
            sample_rate: format.sample_rate,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let writer = hound::WavWriter::new(BufWriter::new(handle), spec)
            .with_context(|| format!("writing WAV header to {}", path.display()))?;
        Ok(Self { writer, file })
    }
}

impl Sink<AudioBlock> for WavSink {
    fn write(&mut self, block: &AudioBlock) -> anyhow::Result<()> {
        for &sample in &block.samples {
            self.writer
                .write_sample(sample)
                .with_context(|| format!("writing {}", self.file.target().display()))?;
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> anyhow::Result<()> {
        let Self { writer, file } = *self;
        writer
            .finalize()
            .with_context(|| format!("finishing {}", file.target().display()))?;
        file.commit()
    }

    fn abort(self: Box<Self>) {
        let Self { writer, file } = *self;
        drop(writer);
        file.discard();
    }

    fn describe(&self) -> String {
        format!("file:{}", self.file.target().display())
    }
}
