//! Clicks that say which one they are, for measuring latency by ear: a
//! click every period, 2 ms long, at one of 16 levels (0.05 to 0.8), so a
//! click found in a recording up to 16 periods late is still known. Used by
//! `--audio-in clicks:MS`, `sandstream latency` and the fake microphone.

use std::time::Duration;

/// Distinct click levels: how many periods late a click may be found and
/// still be told apart.
pub const LEVELS: u64 = 16;

/// A click train at a sample rate.
#[derive(Debug, Clone, Copy)]
pub struct Clicks {
    period_frames: u64,
    length_frames: u64,
}

/// A click found in a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Onset {
    /// Where it starts in the recording.
    pub frame: usize,
    /// Which click it is, modulo [`LEVELS`].
    pub number: u64,
}

impl Clicks {
    pub fn new(sample_rate: u32, period: Duration) -> Self {
        let rate = f64::from(sample_rate);
        Self {
            period_frames: ((period.as_secs_f64() * rate) as u64).max(1),
            length_frames: u64::from(sample_rate) / 500,
        }
    }

    pub fn period_frames(&self) -> u64 {
        self.period_frames
    }

    /// The level of click `n`.
    pub fn level(n: u64) -> f32 {
        0.05 * (1 + n % LEVELS) as f32
    }

    /// The signal at frame `frame`.
    pub fn sample(&self, frame: u64) -> f32 {
        if frame % self.period_frames < self.length_frames {
            Self::level(frame / self.period_frames)
        } else {
            0.0
        }
    }

    /// The clicks in a mono recording: where each starts (after at least
    /// 10 ms of quiet) and which it is, from its level in its middle
    /// (away from edges a resampler rounds).
    pub fn find(&self, mono: &[f32], sample_rate: u32) -> Vec<Onset> {
        let quiet_needed = sample_rate as usize / 100;
        let edge = self.length_frames as usize / 8;
        let body = self.length_frames as usize - 2 * edge;
        let mut onsets = Vec::new();
        let mut quiet = quiet_needed;
        for (frame, sample) in mono.iter().enumerate() {
            if sample.abs() < 0.02 {
                quiet += 1;
                continue;
            }
            if quiet >= quiet_needed && frame + edge + body <= mono.len() {
                let mut middle = mono[frame + edge..frame + edge + body].to_vec();
                middle.sort_by(f32::total_cmp);
                let level = middle[middle.len() / 2];
                let step = (level / 0.05).round().clamp(1.0, LEVELS as f32) as u64;
                onsets.push(Onset {
                    frame,
                    number: step - 1,
                });
            }
            quiet = 0;
        }
        onsets
    }

    /// Which click an onset found `frames_since_zero` frames after the
    /// train's frame zero is: the latest with its number that started
    /// by then.
    pub fn which(&self, number: u64, frames_since_zero: u64) -> Option<u64> {
        let latest = frames_since_zero / self.period_frames;
        (0..=latest)
            .rev()
            .take(LEVELS as usize)
            .find(|n| n % LEVELS == number % LEVELS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clicks_are_found_where_they_are_and_known_by_their_level() {
        let clicks = Clicks::new(48_000, Duration::from_millis(100));
        let mut mono: Vec<f32> = (0..48_000).map(|f| clicks.sample(f)).collect();
        // Delayed by 1234 frames, as through a pipeline.
        mono.splice(0..0, std::iter::repeat_n(0.0, 1234));
        let found = clicks.find(&mono, 48_000);
        assert_eq!(found.len(), 10);
        for (n, onset) in found.iter().enumerate() {
            assert_eq!(onset.frame, n * 4800 + 1234);
            assert_eq!(onset.number, n as u64);
            let which = clicks.which(onset.number, onset.frame as u64);
            assert_eq!(which, Some(n as u64));
        }
    }

    #[test]
    fn a_click_found_many_periods_late_is_still_known() {
        let clicks = Clicks::new(48_000, Duration::from_millis(100));
        // Click 3 found 12 periods after it was made.
        assert_eq!(clicks.which(3, 15 * 4800 + 10), Some(3));
        // Click 19 has the same number; found after it started, it wins.
        assert_eq!(clicks.which(3, 19 * 4800 + 10), Some(19));
    }
}
