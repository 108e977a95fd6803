use super::Source;
use crate::media::{VideoFormat, VideoFrame};

/// A moving test pattern: colour bars, a square sweeping across, and the
/// frame number in large digits, so dropped or repeated frames are visible.
pub struct PatternSource {
    format: VideoFormat,
    index: u64,
}

impl PatternSource {
    pub fn new(format: VideoFormat) -> Self {
        Self { format, index: 0 }
    }
}

const BARS: [[u8; 3]; 7] = [
    [191, 191, 191],
    [191, 191, 0],
    [0, 191, 191],
    [0, 191, 0],
    [191, 0, 191],
    [191, 0, 0],
    [0, 0, 191],
];

/// 3x5 bitmaps of the digits 0-9, one row per 3 bits.
const DIGITS: [[u8; 5]; 10] = [
    [0b111, 0b101, 0b101, 0b101, 0b111],
    [0b010, 0b110, 0b010, 0b010, 0b111],
    [0b111, 0b001, 0b111, 0b100, 0b111],
    [0b111, 0b001, 0b111, 0b001, 0b111],
    [0b101, 0b101, 0b111, 0b001, 0b001],
    [0b111, 0b100, 0b111, 0b001, 0b111],
    [0b111, 0b100, 0b111, 0b101, 0b111],
    [0b111, 0b001, 0b010, 0b010, 0b010],
    [0b111, 0b101, 0b111, 0b101, 0b111],
    [0b111, 0b101, 0b111, 0b001, 0b111],
];

fn fill(rgba: &mut [u8], width: usize, x0: usize, y0: usize, w: usize, h: usize, rgb: [u8; 3]) {
    let height = rgba.len() / 4 / width;
    for y in y0..(y0 + h).min(height) {
        for x in x0..(x0 + w).min(width) {
            rgba[(y * width + x) * 4..][..4].copy_from_slice(&[rgb[0], rgb[1], rgb[2], 255]);
        }
    }
}

impl Source<VideoFrame> for PatternSource {
    fn format(&self) -> VideoFormat {
        self.format
    }

    fn read(&mut self, rgba: &mut Vec<u8>, _max_frames: usize) -> anyhow::Result<usize> {
        let (w, h) = (self.format.width as usize, self.format.height as usize);
        rgba.resize(w * h * 4, 0);
        for (i, colour) in BARS.iter().enumerate() {
            let x0 = i * w / BARS.len();
            let x1 = (i + 1) * w / BARS.len();
            fill(rgba, w, x0, 0, x1 - x0, h, *colour);
        }
        // The square crosses the frame in two seconds.
        let side = (h / 6).max(1);
        let period = u64::from(self.format.fps.num / self.format.fps.den.max(1)).max(1) * 2;
        let x = ((self.index % period) as usize * w.saturating_sub(side)) / period as usize;
        fill(rgba, w, x, h - side - h / 12, side, side, [255, 255, 255]);
        // Frame counter, top left, on a black plate.
        let text = self.index.to_string();
        let scale = (h / 40).max(2);
        fill(
            rgba,
            w,
            0,
            0,
            (text.len() * 4 + 1) * scale,
            7 * scale,
            [0, 0, 0],
        );
        for (n, digit) in text.bytes().enumerate() {
            let glyph = DIGITS[usize::from(digit - b'0')];
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..3 {
                    if bits & (0b100 >> col) != 0 {
                        let x = (1 + n * 4 + col) * scale;
                        fill(rgba, w, x, (1 + row) * scale, scale, scale, [255, 255, 255]);
                    }
                }
            }
        }
        self.index += 1;
        Ok(1)
    }

    fn is_endless(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        "pattern".to_string()
    }
}
