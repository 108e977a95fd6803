//! YUV <-> RGBA8 conversion for Y4M files.
//!
//! Matrix: BT.601 (what ffmpeg assumes for SD and for Y4M without tags).
//! Range: limited ("tv", Y 16-235, C 16-240) unless the file says
//! `XCOLORRANGE=FULL`. Chroma is upsampled by nearest neighbour and
//! downsampled by averaging each 2x2 (4:2:0) or 2x1 (4:2:2) block; chroma
//! siting variants (jpeg, mpeg2, paldv) are treated alike.

/// Range of the Y'CbCr code values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    Limited,
    Full,
}

/// How the two chroma planes are subsampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chroma {
    /// No chroma planes: gray.
    Mono,
    Yuv420,
    Yuv422,
    Yuv444,
}

impl Chroma {
    /// Chroma plane size for a `width` x `height` frame.
    pub fn plane_size(self, width: usize, height: usize) -> (usize, usize) {
        match self {
            Chroma::Mono => (0, 0),
            Chroma::Yuv420 => (width.div_ceil(2), height.div_ceil(2)),
            Chroma::Yuv422 => (width.div_ceil(2), height),
            Chroma::Yuv444 => (width, height),
        }
    }

    fn shift(self) -> (usize, usize) {
        match self {
            Chroma::Mono | Chroma::Yuv444 => (0, 0),
            Chroma::Yuv420 => (1, 1),
            Chroma::Yuv422 => (1, 0),
        }
    }
}

/// Planar Y'CbCr frame data borrowed from a decoder.
pub struct Planes<'a> {
    pub y: &'a [u8],
    pub u: &'a [u8],
    pub v: &'a [u8],
}

fn clamp_u8(value: f32) -> u8 {
    value.round().clamp(0.0, 255.0) as u8
}

/// Y'CbCr -> RGBA8 into `rgba` (resized to `width * height * 4`).
pub fn yuv_to_rgba(
    planes: &Planes<'_>,
    width: usize,
    height: usize,
    chroma: Chroma,
    range: Range,
    rgba: &mut Vec<u8>,
) {
    rgba.resize(width * height * 4, 0);
    let (cw, _) = chroma.plane_size(width, height);
    let (sx, sy) = chroma.shift();
    let (y_scale, y_offset, c_scale) = match range {
        Range::Limited => (255.0 / 219.0, 16.0, 255.0 / 224.0),
        Range::Full => (1.0, 0.0, 1.0),
    };
    for row in 0..height {
        let out_row = &mut rgba[row * width * 4..(row + 1) * width * 4];
        for col in 0..width {
            let luma = (f32::from(planes.y[row * width + col]) - y_offset) * y_scale;
            let (cb, cr) = if chroma == Chroma::Mono {
                (0.0, 0.0)
            } else {
                let at = (row >> sy) * cw + (col >> sx);
                (
                    (f32::from(planes.u[at]) - 128.0) * c_scale,
                    (f32::from(planes.v[at]) - 128.0) * c_scale,
                )
            };
            let px = &mut out_row[col * 4..col * 4 + 4];
            px[0] = clamp_u8(luma + 1.402 * cr);
            px[1] = clamp_u8(luma - 0.344_136 * cb - 0.714_136 * cr);
            px[2] = clamp_u8(luma + 1.772 * cb);
            px[3] = 255;
        }
    }
}

/// RGBA8 -> Y'CbCr 4:2:0, limited range, into preallocated planes.
pub fn rgba_to_yuv420(
    rgba: &[u8],
    width: usize,
    height: usize,
    y: &mut [u8],
    u: &mut [u8],
    v: &mut [u8],
) {
    let (cw, ch) = Chroma::Yuv420.plane_size(width, height);
    for row in 0..height {
        for col in 0..width {
            let px = &rgba[(row * width + col) * 4..][..3];
            let (r, g, b) = (f32::from(px[0]), f32::from(px[1]), f32::from(px[2]));
            y[row * width + col] =
                clamp_u8(16.0 + (219.0 / 255.0) * (0.299 * r + 0.587 * g + 0.114 * b));
        }
    }
    for crow in 0..ch {
        for ccol in 0..cw {
            let (mut r, mut g, mut b, mut n) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
            for row in crow * 2..(crow * 2 + 2).min(height) {
                for col in ccol * 2..(ccol * 2 + 2).min(width) {
                    let px = &rgba[(row * width + col) * 4..][..3];
                    r += f32::from(px[0]);
                    g += f32::from(px[1]);
                    b += f32::from(px[2]);
                    n += 1.0;
                }
            }
            let (r, g, b) = (r / n, g / n, b / n);
            u[crow * cw + ccol] =
                clamp_u8(128.0 + (224.0 / 255.0) * (-0.168_736 * r - 0.331_264 * g + 0.5 * b));
            v[crow * cw + ccol] =
                clamp_u8(128.0 + (224.0 / 255.0) * (0.5 * r - 0.418_688 * g - 0.081_312 * b));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gray_round_trips_exactly_and_has_neutral_chroma() {
        let (w, h) = (4, 2);
        let mut rgba = Vec::new();
        for i in 0..w * h {
            let level = (i * 30) as u8;
            rgba.extend_from_slice(&[level, level, level, 255]);
        }
        let (mut y, mut u, mut v) = (vec![0; w * h], vec![0; 2], vec![0; 2]);
        rgba_to_yuv420(&rgba, w, h, &mut y, &mut u, &mut v);
        assert!(u.iter().chain(&v).all(|&c| c == 128), "{u:?} {v:?}");
        let mut back = Vec::new();
        let planes = Planes {
            y: &y,
            u: &u,
            v: &v,
        };
        yuv_to_rgba(&planes, w, h, Chroma::Yuv420, Range::Limited, &mut back);
        for (a, b) in rgba.iter().zip(&back) {
            assert!(a.abs_diff(*b) <= 1, "{rgba:?} vs {back:?}");
        }
    }

    #[test]
    fn primaries_survive_a_round_trip_within_two_levels() {
        let colours: [[u8; 4]; 4] = [
            [255, 0, 0, 255],
            [0, 255, 0, 255],
            [0, 0, 255, 255],
            [255, 255, 255, 255],
        ];
        for colour in colours {
            let rgba: Vec<u8> = colour.iter().copied().cycle().take(16).collect();
            let (mut y, mut u, mut v) = (vec![0; 4], vec![0; 1], vec![0; 1]);
            rgba_to_yuv420(&rgba, 2, 2, &mut y, &mut u, &mut v);
            let mut back = Vec::new();
            yuv_to_rgba(
                &Planes {
                    y: &y,
                    u: &u,
                    v: &v,
                },
                2,
                2,
                Chroma::Yuv420,
                Range::Limited,
                &mut back,
            );
            for (a, b) in colour.iter().zip(&back[..4]) {
                assert!(
                    a.abs_diff(*b) <= 2,
                    "{colour:?} came back as {:?}",
                    &back[..4]
                );
            }
        }
    }

    #[test]
    fn full_range_black_and_white() {
        let y = [0u8, 255];
        let planes = Planes {
            y: &y,
            u: &[128],
            v: &[128],
        };
        let mut out = Vec::new();
        yuv_to_rgba(&planes, 2, 1, Chroma::Yuv422, Range::Full, &mut out);
        assert_eq!(out, vec![0, 0, 0, 255, 255, 255, 255, 255]);
    }
}
