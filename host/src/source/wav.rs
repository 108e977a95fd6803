use super::Source;
use crate::media::{AudioBlock, AudioFormat};
use anyhow::{Context as _, bail};
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

/// Any WAV hound reads: 8/16/24/32-bit integer or 32-bit float PCM.
pub struct WavSource {
    reader: hound::WavReader<BufReader<File>>,
    format: AudioFormat,
    sample_format: hound::SampleFormat,
    /// 1 / 2^(bits-1): integer samples to -1..1.
    int_scale: f32,
    label: String,
}

impl WavSource {
    /// # Errors
    /// Missing file, not a WAV, or an unsupported encoding.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let label = format!("file:{}", path.display());
        let reader = hound::WavReader::open(path)
            .with_context(|| format!("cannot read {label} as a WAV file"))?;
        let spec = reader.spec();
        if spec.channels == 0 || spec.sample_rate == 0 {
            bail!(
                "{label}: WAV header says {} channels at {} Hz",
                spec.channels,
                spec.sample_rate
            );
        }
        if spec.sample_format == hound::SampleFormat::Float && spec.bits_per_sample != 32 {
            bail!(
                "{label}: {}-bit float WAV is not supported (32-bit float or integer PCM is)",
                spec.bits_per_sample
            );
        }
        Ok(Self {
            format: AudioFormat {
                sample_rate: spec.sample_rate,
                channels: spec.channels,
            },
            sample_format: spec.sample_format,
            int_scale: 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32,
            reader,
            label,
        })
    }
}

impl Source<AudioBlock> for WavSource {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn read(&mut self, samples: &mut Vec<f32>, max_frames: usize) -> anyhow::Result<usize> {
        let channels = usize::from(self.format.channels);
        let wanted = max_frames * channels;
        let before = samples.len();
        match self.sample_format {
            hound::SampleFormat::Float => {
                for sample in self.reader.samples::<f32>().take(wanted) {
                    samples.push(sample.with_context(|| format!("reading {}", self.label))?);
                }
            }
            hound::SampleFormat::Int => {
                let scale = self.int_scale;
                for sample in self.reader.samples::<i32>().take(wanted) {
                    let sample = sample.with_context(|| format!("reading {}", self.label))?;
                    samples.push(sample as f32 * scale);
                }
            }
        }
        let read = samples.len() - before;
        if !read.is_multiple_of(channels) {
            bail!(
                "{}: the file ends in the middle of a frame (truncated?)",
                self.label
            );
        }
        Ok(read / channels)
    }

    fn is_endless(&self) -> bool {
        false
    }

    fn describe(&self) -> String {
        self.label.clone()
    }
}
