use super::Source;
use crate::clicks::Clicks;
use crate::media::{AudioBlock, AudioFormat};
use std::time::Duration;

/// A signal computed from the frame index — never accumulated, so it
/// never drifts — and the same on every channel.
pub trait Signal: Send {
    fn sample(&self, frame: u64) -> f32;
    fn describe(&self) -> String;
}

/// An endless source of a [`Signal`].
pub struct SignalSource<S: Signal> {
    format: AudioFormat,
    signal: S,
    next_frame: u64,
}

impl<S: Signal> SignalSource<S> {
    pub fn new(format: AudioFormat, signal: S) -> Self {
        Self {
            format,
            signal,
            next_frame: 0,
        }
    }
}

impl<S: Signal> Source<AudioBlock> for SignalSource<S> {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn read(&mut self, samples: &mut Vec<f32>, max_frames: usize) -> anyhow::Result<usize> {
        for frame in self.next_frame..self.next_frame + max_frames as u64 {
            let value = self.signal.sample(frame);
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
        self.signal.describe()
    }
}

/// A sine tone at -6 dBFS (amplitude 0.5).
pub struct Tone {
    frequency: f64,
    /// Radians per frame.
    step: f64,
}

impl Tone {
    pub fn new(format: AudioFormat, frequency: f64) -> Self {
        Self {
            frequency,
            step: std::f64::consts::TAU * frequency / f64::from(format.sample_rate),
        }
    }
}

impl Signal for Tone {
    fn sample(&self, frame: u64) -> f32 {
        (0.5 * (frame as f64 * self.step).sin()) as f32
    }

    fn describe(&self) -> String {
        format!("tone:{}", self.frequency)
    }
}

/// Clicks that say which one they are (see [`crate::clicks`]): what
/// `sandstream latency` measures with.
pub struct ClickTrain {
    period: Duration,
    clicks: Clicks,
}

impl ClickTrain {
    pub fn new(format: AudioFormat, period: Duration) -> Self {
        Self {
            period,
            clicks: Clicks::new(format.sample_rate, period),
        }
    }
}

impl Signal for ClickTrain {
    fn sample(&self, frame: u64) -> f32 {
        self.clicks.sample(frame)
    }

    fn describe(&self) -> String {
        format!("clicks:{}", self.period.as_millis())
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
