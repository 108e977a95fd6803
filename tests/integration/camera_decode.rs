//! Camera frame decoding: the same picture as MJPEG, YUYV and NV12, made
//! by ffmpeg from its test source and decoded by our `camera::FrameDecoder`,
//! compared with the exact BT.601 formula (raw YUV) and with ffmpeg's own
//! decoding (JPEG). Tolerances are stated: fixed-point rounding, IDCTs.

use crate::common::*;
use sandstream::camera::{FrameDecoder, PixelLayout};
use std::path::Path;

const W: u32 = 160;
const H: u32 = 120;

/// One frame of ffmpeg's `testsrc2` in `pix_fmt`, raw (or as a JPEG).
fn ffmpeg_frame(dir: &Path, name: &str, output_args: &[&str]) -> Vec<u8> {
    let path = dir.join(name);
    let mut args = vec![
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=1",
        "-frames:v",
        "1",
    ];
    args.extend_from_slice(output_args);
    let path_text = s(&path);
    args.push(&path_text);
    tool("ffmpeg", &args);
    std::fs::read(&path).unwrap()
}

/// ffmpeg's RGBA for a raw frame in `pix_fmt` (BT.601, limited range, its
/// defaults for untagged raw video) or for a JPEG file.
fn ffmpeg_rgba(dir: &Path, input: &Path, input_args: &[&str]) -> Vec<u8> {
    let out = dir.join("reference.rgba");
    let mut args = vec!["-v", "error", "-y"];
    args.extend_from_slice(input_args);
    let (input, out_text) = (s(input), s(&out));
    args.extend([
        "-i", &input, "-f", "rawvideo", "-pix_fmt", "rgba", &out_text,
    ]);
    tool("ffmpeg", &args);
    std::fs::read(&out).unwrap()
}

/// Mean and largest per-channel difference (alpha ignored).
fn differences(a: &[u8], b: &[u8]) -> (f64, u8) {
    assert_eq!(a.len(), b.len());
    let (mut sum, mut max, mut n) = (0u64, 0u8, 0u64);
    for (pa, pb) in a.chunks(4).zip(b.chunks(4)) {
        for c in 0..3 {
            let d = pa[c].abs_diff(pb[c]);
            sum += u64::from(d);
            max = max.max(d);
            n += 1;
        }
    }
    (sum as f64 / n as f64, max)
}

fn decoded(layout: PixelLayout, raw: &[u8]) -> Vec<u8> {
    let mut rgba = Vec::new();
    FrameDecoder::new(layout, W, H)
        .decode(raw, &mut rgba)
        .unwrap();
    assert_eq!(rgba.len(), (W * H * 4) as usize);
    rgba
}

/// BT.601 limited range to RGB, exactly (f64, rounded), for the Y, Cb, Cr
/// of one pixel.
fn bt601(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    let y = (f64::from(y) - 16.0) * 255.0 / 219.0;
    let cb = (f64::from(cb) - 128.0) * 255.0 / 224.0;
    let cr = (f64::from(cr) - 128.0) * 255.0 / 224.0;
    [
        y + 1.402 * cr,
        y - 0.344_136 * cb - 0.714_136 * cr,
        y + 1.772 * cb,
    ]
    .map(|v| v.round().clamp(0.0, 255.0) as u8)
}

/// YUYV and NV12 frames made by ffmpeg, decoded by us, against the exact
/// BT.601 formula with each pixel's own (shared) chroma — what a webcam's
/// raw formats mean — and against ffmpeg's own conversion.
#[test]
fn yuyv_and_nv12_decode_to_the_exact_bt601_colours() {
    let dir = scratch("camera-decode-yuv");
    let (w, h) = (W as usize, H as usize);
    for (pix_fmt, layout) in [("yuyv422", PixelLayout::Yuyv), ("nv12", PixelLayout::Nv12)] {
        let raw = ffmpeg_frame(&dir, pix_fmt, &["-f", "rawvideo", "-pix_fmt", pix_fmt]);
        let exact: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let (x, y) = (i % w, i / w);
                let (luma, cb, cr) = if layout == PixelLayout::Yuyv {
                    let pair = &raw[y * w * 2 + x / 2 * 4..][..4];
                    (pair[x % 2 * 2], pair[1], pair[3])
                } else {
                    let uv = &raw[w * h + y / 2 * w + x / 2 * 2..][..2];
                    (raw[i], uv[0], uv[1])
                };
                let [r, g, b] = bt601(luma, cb, cr);
                [r, g, b, 255]
            })
            .collect();
        let ours = decoded(layout, &raw);
        let (mean, max) = differences(&ours, &exact);
        // Fixed-point arithmetic: within a level or two of exact.
        assert!(
            mean < 1.0 && max <= 3,
            "{pix_fmt}: mean {mean:.2}, largest {max}"
        );
        // ffmpeg interpolates chroma and rounds its own way: close, not equal.
        let reference = ffmpeg_rgba(
            &dir,
            &dir.join(pix_fmt),
            &["-f", "rawvideo", "-pix_fmt", pix_fmt, "-s", "160x120"],
        );
        let (mean, _) = differences(&ours, &reference);
        assert!(
            mean < 3.0,
            "{pix_fmt}: mean difference from ffmpeg {mean:.2}"
        );
    }
}

#[test]
fn mjpeg_decodes_as_ffmpeg_decodes_it() {
    let dir = scratch("camera-decode-jpeg");
    // 4:4:4, so the two decoders' chroma upsampling does not enter.
    let jpeg = ffmpeg_frame(&dir, "frame.jpg", &["-q:v", "2", "-pix_fmt", "yuvj444p"]);
    let reference = ffmpeg_rgba(&dir, &dir.join("frame.jpg"), &[]);
    let (mean, max) = differences(&decoded(PixelLayout::Mjpeg, &jpeg), &reference);
    // Two JPEG decoders: their IDCTs and colour rounding differ slightly.
    assert!(mean < 1.5, "mean difference {mean:.2}");
    assert!(max <= 64, "largest difference {max}");
    // A frame of another size is refused, not scaled.
    let mut rgba = Vec::new();
    let err = FrameDecoder::new(PixelLayout::Mjpeg, 320, 240)
        .decode(&jpeg, &mut rgba)
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("160x120 MJPEG frame in a 320x240 stream"),
        "{err:#}"
    );
}
