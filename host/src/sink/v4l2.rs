//! `--video-out v4l2:/dev/videoN`: frames written to a v4l2loopback
//! device, for apps that read only V4L2 cameras. YUYV, the format every
//! such app reads, converted from RGBA here (BT.601, limited range).
//!
//! Untested against the real module (no kernel modules on our CI): the
//! writer is tested against a recording fake and a plain file.

use super::Sink;
use crate::device::DeviceError;
use crate::media::{VideoFormat, VideoFrame};
use anyhow::{Context as _, bail};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use yuv::{BufferStoreMut, YuvPackedImageMut, YuvPlanarImage, YuvPlanarImageMut};

/// What the sink needs of a V4L2 output device.
pub trait LoopbackDevice: Send {
    /// Asks for a format; returns the width, height and fourcc the device
    /// took (a driver may take something else).
    ///
    /// # Errors
    /// The device refusing the request.
    fn set_format(
        &mut self,
        width: u32,
        height: u32,
        fourcc: [u8; 4],
    ) -> anyhow::Result<(u32, u32, [u8; 4])>;

    /// Writes one whole frame.
    ///
    /// # Errors
    /// Write errors (the device went away).
    fn write_frame(&mut self, bytes: &[u8]) -> std::io::Result<()>;

    fn describe(&self) -> String;
}

/// A real V4L2 output device (a v4l2loopback node).
pub struct V4l2Device {
    device: v4l::Device,
    file: std::fs::File,
    path: PathBuf,
}

impl V4l2Device {
    /// Opens `path` and checks it takes video output.
    ///
    /// # Errors
    /// No such file, not a V4L2 device, or a capture-only device.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let shown = path.display();
        let hint = "v4l2loopback makes one: `sudo modprobe v4l2loopback video_nr=10 \
                    card_label=Sandstream exclusive_caps=1` (or use --video-out pipewire:NAME, \
                    which needs no kernel module)";
        if !path.exists() {
            return Err(DeviceError::Unavailable {
                host: shown.to_string(),
                detail: "no such device".into(),
                hint: hint.into(),
            }
            .into());
        }
        let device =
            v4l::Device::with_path(path).with_context(|| format!("cannot open {shown}"))?;
        let caps = device.query_caps().map_err(|e| DeviceError::Unavailable {
            host: shown.to_string(),
            detail: format!("not a V4L2 device: {e}"),
            hint: hint.into(),
        })?;
        if !caps
            .capabilities
            .contains(v4l::capability::Flags::VIDEO_OUTPUT)
        {
            bail!(
                "{shown} ({}) does not take video output: it is a capture device. {hint}",
                caps.card
            );
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("cannot open {shown} for writing"))?;
        Ok(Self {
            device,
            file,
            path: path.to_path_buf(),
        })
    }
}

impl LoopbackDevice for V4l2Device {
    fn set_format(
        &mut self,
        width: u32,
        height: u32,
        fourcc: [u8; 4],
    ) -> anyhow::Result<(u32, u32, [u8; 4])> {
        let asked = v4l::Format::new(width, height, v4l::FourCC::new(&fourcc));
        let took = v4l::video::Output::set_format(&self.device, &asked)
            .with_context(|| format!("{} refused {width}x{height}", self.path.display()))?;
        Ok((took.width, took.height, took.fourcc.repr))
    }

    fn write_frame(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all(bytes)
    }

    fn describe(&self) -> String {
        format!("v4l2:{}", self.path.display())
    }
}

/// Writes frames to a [`LoopbackDevice`] as YUYV.
pub struct LoopbackSink {
    device: Box<dyn LoopbackDevice>,
    format: VideoFormat,
    /// Planar 4:2:2 scratch and the packed frame, allocated once.
    planes: [Vec<u8>; 3],
    yuyv: Vec<u8>,
}

impl LoopbackSink {
    /// # Errors
    /// See [`V4l2Device::open`] and [`LoopbackSink::with_device`].
    pub fn open(path: &Path, format: VideoFormat) -> anyhow::Result<Self> {
        Self::with_device(Box::new(V4l2Device::open(path)?), format)
    }

    /// # Errors
    /// The device refusing YUYV at the stream's size.
    pub fn with_device(
        mut device: Box<dyn LoopbackDevice>,
        format: VideoFormat,
    ) -> anyhow::Result<Self> {
        let (w, h) = (format.width, format.height);
        let took = device.set_format(w, h, *b"YUYV")?;
        if took != (w, h, *b"YUYV") {
            bail!(
                "{} took {}x{} {} when asked for {w}x{h} YUYV (scaling and other formats are \
                 not supported: use --width/--height it accepts)",
                device.describe(),
                took.0,
                took.1,
                String::from_utf8_lossy(&took.2)
            );
        }
        let (w, h) = (w as usize, h as usize);
        let chroma = w.div_ceil(2) * h;
        Ok(Self {
            device,
            format,
            planes: [vec![0; w * h], vec![0; chroma], vec![0; chroma]],
            yuyv: vec![0; w.div_ceil(2) * 4 * h],
        })
    }
}

/// RGBA to packed YUYV through planar 4:2:2.
fn rgba_to_yuyv(
    rgba: &[u8],
    format: VideoFormat,
    planes: &mut [Vec<u8>; 3],
    yuyv: &mut [u8],
) -> anyhow::Result<()> {
    let (width, height) = (format.width, format.height);
    let chroma_stride = width.div_ceil(2);
    let [y, u, v] = planes;
    let mut planar = YuvPlanarImageMut {
        y_plane: BufferStoreMut::Borrowed(y),
        y_stride: width,
        u_plane: BufferStoreMut::Borrowed(u),
        u_stride: chroma_stride,
        v_plane: BufferStoreMut::Borrowed(v),
        v_stride: chroma_stride,
        width,
        height,
    };
    yuv::rgba_to_yuv422(
        &mut planar,
        rgba,
        width * 4,
        yuv::YuvRange::Limited,
        yuv::YuvStandardMatrix::Bt601,
        yuv::YuvConversionMode::Balanced,
    )
    .context("converting a frame to YUV")?;
    let planar = YuvPlanarImage {
        y_plane: y,
        y_stride: width,
        u_plane: u,
        u_stride: chroma_stride,
        v_plane: v,
        v_stride: chroma_stride,
        width,
        height,
    };
    let mut packed = YuvPackedImageMut {
        yuy: BufferStoreMut::Borrowed(yuyv),
        yuy_stride: chroma_stride * 4,
        width,
        height,
    };
    yuv::yuv422_to_yuyv422(&mut packed, &planar).context("packing a frame as YUYV")?;
    Ok(())
}

impl Sink<VideoFrame> for LoopbackSink {
    fn is_real_time(&self) -> bool {
        true
    }

    fn write(&mut self, frame: &VideoFrame) -> anyhow::Result<()> {
        rgba_to_yuyv(&frame.pixels, self.format, &mut self.planes, &mut self.yuyv)?;
        self.device
            .write_frame(&self.yuyv)
            .map_err(|e| DeviceError::Disconnected {
                device: self.device.describe(),
                detail: e.to_string(),
            })?;
        Ok(())
    }

    fn finish(self: Box<Self>) -> anyhow::Result<()> {
        Ok(())
    }

    fn describe(&self) -> String {
        self.device.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::{FrameDecoder, PixelLayout};
    use crate::media::Fps;
    use std::sync::{Arc, Mutex};

    type Taken = (u32, u32, [u8; 4]);

    /// Records what a v4l2loopback device would be told and given.
    #[derive(Clone, Default)]
    struct Recorder {
        formats: Arc<Mutex<Vec<Taken>>>,
        frames: Arc<Mutex<Vec<Vec<u8>>>>,
        /// Refuse YUYV and take this instead.
        substitute: Option<[u8; 4]>,
    }

    impl LoopbackDevice for Recorder {
        fn set_format(
            &mut self,
            width: u32,
            height: u32,
            fourcc: [u8; 4],
        ) -> anyhow::Result<(u32, u32, [u8; 4])> {
            self.formats.lock().unwrap().push((width, height, fourcc));
            Ok((width, height, self.substitute.unwrap_or(fourcc)))
        }

        fn write_frame(&mut self, bytes: &[u8]) -> std::io::Result<()> {
            self.frames.lock().unwrap().push(bytes.to_vec());
            Ok(())
        }

        fn describe(&self) -> String {
            "recorder".into()
        }
    }

    fn format() -> VideoFormat {
        VideoFormat {
            width: 6,
            height: 2,
            fps: Fps { num: 30, den: 1 },
        }
    }

    #[test]
    fn frames_go_out_as_yuyv_that_decodes_back_to_the_picture() {
        let recorder = Recorder::default();
        let mut sink = LoopbackSink::with_device(Box::new(recorder.clone()), format()).unwrap();
        // Grey, white, black and a saturated red pair per row.
        let mut rgba = Vec::new();
        for _ in 0..2 {
            for rgb in [
                [128, 128, 128],
                [128, 128, 128],
                [255, 255, 255],
                [255, 255, 255],
                [200, 30, 30],
                [200, 30, 30],
            ] {
                rgba.extend_from_slice(&[rgb[0], rgb[1], rgb[2], 255]);
            }
        }
        let frame = VideoFrame {
            pixels: rgba.clone(),
            index: 0,
            timestamp_ns: 0,
        };
        sink.write(&frame).unwrap();
        sink.write(&frame).unwrap();
        assert_eq!(*recorder.formats.lock().unwrap(), vec![(6, 2, *b"YUYV")]);
        let frames = recorder.frames.lock().unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].len(), 6 * 2 * 2);
        // White is Y 235, neutral chroma 128.
        assert_eq!(&frames[0][4..8], &[235, 128, 235, 128]);
        let mut back = Vec::new();
        FrameDecoder::new(PixelLayout::Yuyv, 6, 2)
            .decode(&frames[0], &mut back)
            .unwrap();
        for (a, b) in back.iter().zip(&rgba) {
            assert!(
                (i32::from(*a) - i32::from(*b)).abs() <= 3,
                "{back:?} vs {rgba:?}"
            );
        }
    }

    #[test]
    fn a_device_that_takes_another_format_is_refused_with_what_it_took() {
        let recorder = Recorder {
            substitute: Some(*b"RGB4"),
            ..Recorder::default()
        };
        let err = LoopbackSink::with_device(Box::new(recorder), format())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("took 6x2 RGB4 when asked for 6x2 YUYV"),
            "{err}"
        );
    }

    #[test]
    fn a_plain_file_or_a_missing_device_is_not_taken_for_a_loopback() {
        let dir = std::env::temp_dir().join(format!("sandstream-v4l2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fake = dir.join("video10");
        std::fs::write(&fake, b"").unwrap();
        let err = LoopbackSink::open(&fake, format())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("not a V4L2 device") && err.contains("modprobe v4l2loopback"),
            "{err}"
        );
        let err = LoopbackSink::open(&dir.join("video99"), format())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("no such device") && err.contains("pipewire:NAME"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
