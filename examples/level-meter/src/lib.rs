//! `level-meter`: an A/V effect. It measures the loudness of the audio and
//! draws it as a bar across the bottom of the video, so you can see your
//! microphone on camera.
//!
//! Both streams reach the same instance, which is how the audio side's state
//! (the level) gets to the video side. Settings:
//! - `bar-height` (pixels, default 24)
//! - `decay` (0..1, how fast the bar falls back; default 0.85 per block)

use sandstream_guest::prelude::*;

struct LevelMeter {
    /// Smoothed peak level, 0..1, updated by every audio block.
    level: f32,
    decay: f32,
    bar_height: u32,
}

impl Effect for LevelMeter {
    fn setup(config: &Config, _formats: &Formats) -> Result<Self, String> {
        let decay: f32 = config.get_or("decay", 0.85)?;
        if !(0.0..1.0).contains(&decay) {
            return Err(format!("setting `decay` must be in [0, 1), got {decay}"));
        }
        Ok(LevelMeter {
            level: 0.0,
            decay,
            bar_height: config.get_or("bar-height", 24)?,
        })
    }

    fn process_audio(&mut self, block: AudioBlock<'_>) -> Result<Output, String> {
        // Peak of the block; the bar jumps up at once and falls back slowly.
        let peak = block
            .samples
            .iter()
            .fold(0.0f32, |peak, s| peak.max(s.abs()))
            .min(1.0);
        self.level = peak.max(self.level * self.decay);
        // Audio passes through unchanged.
        Ok(Output::Keep)
    }

    fn process_video(&mut self, mut frame: VideoFrame<'_>) -> Result<Output, String> {
        let (width, height) = (frame.width, frame.height);
        let bar_height = self.bar_height.min(height);
        let bar_width = (self.level * width as f32).round() as u32;
        for y in height - bar_height..height {
            for x in 0..width {
                let lit = x < bar_width;
                let pixel = frame.pixel_mut(x, y).expect("x, y inside the frame");
                if lit {
                    // Green, turning red in the top fifth of the range.
                    let hot = x * 5 > width * 4;
                    let colour = if hot {
                        [230, 40, 30, 255]
                    } else {
                        [40, 220, 60, 255]
                    };
                    pixel.copy_from_slice(&colour);
                } else {
                    // Darken the background so the bar stands out.
                    for c in &mut pixel[..3] {
                        *c /= 3;
                    }
                }
            }
        }
        Ok(Output::Keep)
    }
}

sandstream_guest::export!(LevelMeter);
