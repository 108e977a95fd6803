use crate::common::*;

/// BT.601 limited-range decode, written here independently of the host.
fn decode_pixel(y: u8, u: u8, v: u8) -> [f64; 3] {
    let luma = (f64::from(y) - 16.0) * 255.0 / 219.0;
    let cb = (f64::from(u) - 128.0) * 255.0 / 224.0;
    let cr = (f64::from(v) - 128.0) * 255.0 / 224.0;
    let clamp = |x: f64| x.round().clamp(0.0, 255.0);
    [
        clamp(luma + 1.402 * cr),
        clamp(luma - 0.344136 * cb - 0.714136 * cr),
        clamp(luma + 1.772 * cb),
    ]
}

/// What the grayscale example should produce as output luma for one pixel.
fn expected_luma(y: u8, u: u8, v: u8) -> u8 {
    let [r, g, b] = decode_pixel(y, u, v);
    let gray = ((77.0 * r + 150.0 * g + 29.0 * b + 128.0) / 256.0).floor();
    (16.0 + gray * 219.0 / 255.0).round() as u8
}

fn ffprobe_stream(path: &std::path::Path) -> String {
    tool(
        "ffprobe",
        &[
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=width,height,pix_fmt,nb_read_frames,r_frame_rate",
            "-of",
            "compact",
            &s(path),
        ],
    )
}

#[test]
fn grayscale_over_ffmpeg_testsrc() {
    let dir = scratch("grayscale");
    let input = dir.join("testsrc.y4m");
    let output = dir.join("gray.y4m");
    testsrc(&input, "320x240", 25, 1.0, "yuv420p");

    let run = sandstream(&[
        "run",
        &s(&guest("grayscale")),
        "--video-in",
        &file(&input),
        "--video-out",
        &file(&output),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));

    let probe = ffprobe_stream(&output);
    assert!(
        probe.contains("width=320|height=240|pix_fmt=yuv420p"),
        "{probe}"
    );
    assert!(probe.contains("nb_read_frames=25"), "{probe}");

    let original = Y4m::read(&input);
    let gray = Y4m::read(&output);
    assert_eq!((gray.width, gray.height, gray.frames.len()), (320, 240, 25));
    assert_eq!(gray.colourspace, "420jpeg", "4:2:0 written by default");
    let (w, h) = (original.width, original.height);
    let cw = w.div_ceil(2);
    for (index, (src, out)) in original.frames.iter().zip(&gray.frames).enumerate() {
        let chroma = gray.chroma(out);
        let worst_chroma = chroma.iter().map(|c| c.abs_diff(128)).max().unwrap();
        assert!(
            worst_chroma <= 1,
            "frame {index}: chroma off neutral by {worst_chroma}"
        );
        let (y, rest) = src.split_at(w * h);
        let (u, v) = rest.split_at(rest.len() / 2);
        let luma = gray.luma(out);
        for row in 0..h {
            for col in 0..w {
                let c = (row / 2) * cw + col / 2;
                let want = expected_luma(y[row * w + col], u[c], v[c]);
                let got = luma[row * w + col];
                assert!(
                    got.abs_diff(want) <= 1,
                    "frame {index} ({col},{row}): luma {got}, expected {want}"
                );
            }
        }
    }
}

#[test]
fn every_input_colour_space_ffmpeg_writes_is_read() {
    let dir = scratch("colourspaces");
    for pix_fmt in ["yuv420p", "yuvj420p", "yuv422p", "yuv444p", "gray"] {
        let input = dir.join(format!("{pix_fmt}.y4m"));
        let output = dir.join(format!("{pix_fmt}-out.y4m"));
        testsrc(&input, "64x48", 10, 0.5, pix_fmt);
        let run = sandstream(&[
            "run",
            &s(&guest("grayscale")),
            "--video-in",
            &file(&input),
            "--video-out",
            &file(&output),
        ]);
        assert!(run.status.success(), "{pix_fmt}: {}", stderr(&run));
        let out = Y4m::read(&output);
        assert_eq!(out.frames.len(), 5, "{pix_fmt}");
        if pix_fmt == "gray" {
            // ffmpeg writes gray as full range (XCOLORRANGE=FULL); a gray
            // input stays the same gray, written in limited range.
            let bytes = std::fs::read(&input).unwrap();
            let header_end = bytes.iter().position(|&b| b == b'\n').unwrap();
            assert!(String::from_utf8_lossy(&bytes[..header_end]).contains("XCOLORRANGE=FULL"));
            let first = &bytes[header_end + 1 + "FRAME\n".len()..][..64 * 48];
            let limited = |y: &u8| (16.0 + f64::from(*y) * 219.0 / 255.0).round() as u8;
            let diff = first
                .iter()
                .map(limited)
                .zip(out.luma(&out.frames[0]))
                .map(|(a, b)| a.abs_diff(*b))
                .max()
                .unwrap();
            assert!(diff <= 1, "mono luma off by {diff}");
        }
    }
}

#[test]
fn fps_cap_skips_frames_and_writes_the_capped_rate() {
    let dir = scratch("fps-cap");
    let input = dir.join("in.y4m");
    let output = dir.join("out.y4m");
    testsrc(&input, "64x48", 30, 2.0, "yuv420p");
    let run = sandstream(&[
        "run",
        &s(&guest("grayscale")),
        "--video-in",
        &file(&input),
        "--video-out",
        &file(&output),
        "--fps",
        "15",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let probe = ffprobe_stream(&output);
    assert!(probe.contains("r_frame_rate=15/1"), "{probe}");
    assert!(probe.contains("nb_read_frames=30"), "{probe}");
}

#[test]
fn png_snapshot_is_the_last_processed_frame() {
    let dir = scratch("png");
    let png = dir.join("snap.png");
    let run = sandstream(&[
        "run",
        &s(&guest("grayscale")),
        "--video-in",
        "pattern",
        "--width",
        "96",
        "--height",
        "64",
        "--duration",
        "0.2",
        "--video-out",
        &file(&png),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let probe = tool(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=width,height,codec_name",
            "-of",
            "compact",
            &s(&png),
        ],
    );
    assert!(
        probe.contains("codec_name=png|width=96|height=64"),
        "{probe}"
    );
}
