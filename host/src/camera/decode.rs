//! Camera frames to RGBA8, on the capture thread (never the guest's).
//!
//! MJPEG goes through zune-jpeg, packed and semi-planar YUV through the
//! `yuv` crate (SIMD). Uncompressed webcam YUV is BT.601, limited range;
//! JPEG carries its own (full-range) colour model.

use anyhow::{Context as _, bail};
use yuv::{YuvBiPlanarImage, YuvConversionMode, YuvPackedImage, YuvRange, YuvStandardMatrix};
use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

/// How a camera lays out the bytes of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PixelLayout {
    /// Packed 4:2:2, Y0 U Y1 V.
    Yuyv,
    /// 4:2:0, a Y plane then interleaved U V.
    Nv12,
    Mjpeg,
    Gray,
    Rgb,
    Bgr,
}

impl PixelLayout {
    pub fn name(self) -> &'static str {
        match self {
            Self::Yuyv => "YUYV",
            Self::Nv12 => "NV12",
            Self::Mjpeg => "MJPEG",
            Self::Gray => "GRAY",
            Self::Rgb => "RGB",
            Self::Bgr => "BGR",
        }
    }

    /// Bytes of one uncompressed frame (`None` for MJPEG: it varies).
    pub fn frame_bytes(self, width: usize, height: usize) -> Option<usize> {
        match self {
            Self::Yuyv => Some(width.div_ceil(2) * 4 * height),
            Self::Nv12 => Some(width * height + width.div_ceil(2) * 2 * height.div_ceil(2)),
            Self::Mjpeg => None,
            Self::Gray => Some(width * height),
            Self::Rgb | Self::Bgr => Some(width * height * 3),
        }
    }

    /// Cost rank when two layouts offer the same mode: raw YUV converts
    /// cheaply, MJPEG needs a full decode.
    pub fn decode_cost(self) -> u8 {
        match self {
            Self::Rgb | Self::Bgr | Self::Gray => 0,
            Self::Yuyv | Self::Nv12 => 1,
            Self::Mjpeg => 2,
        }
    }
}

/// Turns one camera's frames into RGBA8.
pub struct FrameDecoder {
    layout: PixelLayout,
    width: usize,
    height: usize,
}

impl FrameDecoder {
    pub fn new(layout: PixelLayout, width: u32, height: u32) -> Self {
        Self {
            layout,
            width: width as usize,
            height: height as usize,
        }
    }

    /// Decodes `raw` into `rgba`, which is resized to the frame (its
    /// capacity is kept, so a recycled buffer is not reallocated).
    ///
    /// # Errors
    /// A frame of the wrong size, or a corrupt JPEG.
    pub fn decode(&self, raw: &[u8], rgba: &mut Vec<u8>) -> anyhow::Result<()> {
        let (w, h) = (self.width, self.height);
        rgba.resize(w * h * 4, 0);
        if let Some(expected) = self.layout.frame_bytes(w, h)
            && raw.len() < expected
        {
            bail!(
                "a {w}x{h} {} frame needs {expected} bytes, the camera gave {}",
                self.layout.name(),
                raw.len()
            );
        }
        let stride = (w * 4) as u32;
        let (width, height) = (w as u32, h as u32);
        match self.layout {
            PixelLayout::Yuyv => {
                let image = YuvPackedImage {
                    yuy: raw,
                    yuy_stride: (w.div_ceil(2) * 4) as u32,
                    width,
                    height,
                };
                yuv::yuyv422_to_rgba(
                    &image,
                    rgba,
                    stride,
                    YuvRange::Limited,
                    YuvStandardMatrix::Bt601,
                )
                .context("converting a YUYV frame")?;
            }
            PixelLayout::Nv12 => {
                let (y_plane, uv_plane) = raw.split_at(w * h);
                let image = YuvBiPlanarImage {
                    y_plane,
                    y_stride: width,
                    uv_plane,
                    uv_stride: (w.div_ceil(2) * 2) as u32,
                    width,
                    height,
                };
                yuv::yuv_nv12_to_rgba(
                    &image,
                    rgba,
                    stride,
                    YuvRange::Limited,
                    YuvStandardMatrix::Bt601,
                    YuvConversionMode::Balanced,
                )
                .context("converting an NV12 frame")?;
            }
            PixelLayout::Mjpeg => self.decode_jpeg(raw, rgba)?,
            PixelLayout::Gray => {
                for (px, &y) in rgba.chunks_exact_mut(4).zip(raw) {
                    px.copy_from_slice(&[y, y, y, 255]);
                }
            }
            PixelLayout::Rgb => {
                for (px, rgb) in rgba.chunks_exact_mut(4).zip(raw.chunks_exact(3)) {
                    px.copy_from_slice(&[rgb[0], rgb[1], rgb[2], 255]);
                }
            }
            PixelLayout::Bgr => {
                for (px, bgr) in rgba.chunks_exact_mut(4).zip(raw.chunks_exact(3)) {
                    px.copy_from_slice(&[bgr[2], bgr[1], bgr[0], 255]);
                }
            }
        }
        Ok(())
    }

    fn decode_jpeg(&self, raw: &[u8], rgba: &mut [u8]) -> anyhow::Result<()> {
        let options = DecoderOptions::default()
            .jpeg_set_out_colorspace(ColorSpace::RGBA)
            .set_max_width(self.width)
            .set_max_height(self.height);
        let mut decoder = JpegDecoder::new_with_options(ZCursor::new(raw), options);
        decoder
            .decode_headers()
            .context("reading an MJPEG frame's header")?;
        let (w, h) = decoder
            .dimensions()
            .context("an MJPEG frame without dimensions")?;
        if (w, h) != (self.width, self.height) {
            bail!(
                "the camera sent a {w}x{h} MJPEG frame in a {}x{} stream",
                self.width,
                self.height
            );
        }
        decoder
            .decode_into(rgba)
            .context("decoding an MJPEG frame")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Limited-range BT.601: Y 16 is black, 235 white, 128/128 chroma grey.
    #[test]
    fn yuyv_black_white_and_a_colour() {
        let (w, h) = (4, 2);
        // Row 0: black, white pair; row 1: red-ish pair (Y 81, U 90, V 240).
        let raw = [
            16, 128, 16, 128, 235, 128, 235, 128, //
            81, 90, 81, 240, 81, 90, 81, 240,
        ];
        let mut rgba = Vec::new();
        FrameDecoder::new(PixelLayout::Yuyv, w, h)
            .decode(&raw, &mut rgba)
            .unwrap();
        assert_eq!(&rgba[0..4], &[0, 0, 0, 255]);
        assert_eq!(&rgba[8..12], &[255, 255, 255, 255]);
        let red = &rgba[16..20];
        assert!(red[0] >= 250 && red[1] <= 5 && red[2] <= 5, "{red:?}");
    }

    #[test]
    fn nv12_grey_ramp() {
        let (w, h) = (4usize, 2usize);
        let mut raw = vec![16, 72, 128, 235, 16, 72, 128, 235];
        raw.extend_from_slice(&[128; 4]);
        let mut rgba = Vec::new();
        FrameDecoder::new(PixelLayout::Nv12, w as u32, h as u32)
            .decode(&raw, &mut rgba)
            .unwrap();
        let greys: Vec<u8> = rgba.chunks(4).take(4).map(|p| p[0]).collect();
        assert_eq!(greys[0], 0);
        assert_eq!(greys[3], 255);
        assert!((greys[1] as i32 - 65).abs() <= 2, "{greys:?}");
        for px in rgba.chunks(4) {
            assert!(px[0] == px[1] && px[1] == px[2] && px[3] == 255, "{px:?}");
        }
    }

    #[test]
    fn short_frames_and_bad_jpeg_are_errors() {
        let mut rgba = Vec::new();
        let err = FrameDecoder::new(PixelLayout::Yuyv, 640, 480)
            .decode(&[0; 100], &mut rgba)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("needs 614400 bytes") && err.contains("gave 100"),
            "{err}"
        );
        let err = FrameDecoder::new(PixelLayout::Mjpeg, 64, 64)
            .decode(b"not a jpeg", &mut rgba)
            .unwrap_err();
        assert!(format!("{err:#}").contains("MJPEG"), "{err:#}");
    }

    #[test]
    fn bgr_and_gray_reorder() {
        let mut rgba = Vec::new();
        FrameDecoder::new(PixelLayout::Bgr, 1, 1)
            .decode(&[1, 2, 3], &mut rgba)
            .unwrap();
        assert_eq!(rgba, [3, 2, 1, 255]);
        FrameDecoder::new(PixelLayout::Gray, 2, 1)
            .decode(&[7, 9], &mut rgba)
            .unwrap();
        assert_eq!(rgba, [7, 7, 7, 255, 9, 9, 9, 255]);
    }
}
