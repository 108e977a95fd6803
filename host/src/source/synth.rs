use super::Source;
use crate::clicks::Clicks;
use crate::media::{AudioBlock, AudioFormat};
use std::time::Duration;

/// A sine tone at -6 dBFS (amplitude 0.5) on every channel.
pub struct ToneSource {
    format: AudioFormat,
    frequency: f64,
    next_frame: u64,
}

impl ToneSource {
    pub fn new(format: AudioFormat, frequency: f64) -> Self {
        Self {
            format,
            frequency,
            next_frame: 0,
        }
    }
}

impl Source<AudioBlock> for ToneSource {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn read(&mut self, samples: &mut Vec<f32>, max_frames: usize) -> anyhow::Result<usize> {
        let step = std::f64::consts::TAU * self.frequency / f64::from(self.format.sample_rate);
        for i in 0..max_frames as u64 {
            // Phase from the frame index, not accumulated: no drift.
            let value = (0.5 * ((self.next_frame + i) as f64 * step).sin()) as f32;
            samples.extend(std::iter::repeat_n(
                value,
                usize::from(self.format.channels),
            ));
        }
        self.next_frame += max_frames as u64;
        Ok(max_frames)
    }

    fn is_endless(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!("tone:{}", self.frequency)
    }
}

/// Digital silence.
pub struct SilenceSource {
    format: AudioFormat,
}

impl SilenceSource {
    pub fn new(format: AudioFormat) -> Self {
        Self { format }
    }
}

impl Source<AudioBlock> for SilenceSource {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn read(&mut self, samples: &mut Vec<f32>, max_frames: usize) -> anyhow::Result<usize> {
        samples.resize(
            samples.len() + max_frames * usize::from(self.format.channels),
            0.0,
        );
        Ok(max_frames)
    }

    fn is_endless(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        "silence".to_string()
    }
}

/// Clicks that say which one they are (see [`crate::clicks`]), on every
/// channel: what `sandstream latency` measures with.
pub struct ClickSource {
    format: AudioFormat,
    period: Duration,
    clicks: Clicks,
    next_frame: u64,
}

impl ClickSource {
    pub fn new(format: AudioFormat, period: Duration) -> Self {
        Self {
            format,
            period,
            clicks: Clicks::new(format.sample_rate, period),
            next_frame: 0,
        }
    }
}

impl Source<AudioBlock> for ClickSource {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn read(&mut self, samples: &mut Vec<f32>, max_frames: usize) -> anyhow::Result<usize> {
        for frame in self.next_frame..self.next_frame + max_frames as u64 {
            let value = self.clicks.sample(frame);
            samples.extend(std::iter::repeat_n(
                value,
                usize::from(self.format.channels),
            ));
        }
        self.next_frame += max_frames as u64;
        Ok(max_frames)
    }

    fn is_endless(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!("clicks:{}", self.period.as_millis())
    }
}
