use super::{PartialFile, Sink};
use crate::colour::{self, Chroma};
use crate::media::{VideoFormat, VideoFrame};
use anyhow::anyhow;
use std::fs::File;
use std::path::Path;

/// YUV4MPEG2, 4:2:0 limited range BT.601: what players expect.
pub struct Y4mSink {
    // Unbuffered: frames are large, and every write error then surfaces in
    // `write_frame` instead of being lost in a final flush on drop.
    encoder: y4m::Encoder<File>,
    file: PartialFile,
    format: VideoFormat,
    planes: [Vec<u8>; 3],
}

impl Y4mSink {
    /// # Errors
    /// When the file cannot be created.
    pub fn create(path: &Path, format: VideoFormat) -> anyhow::Result<Self> {
        let (file, handle) = PartialFile::create(path)?;
        let (w, h) = (format.width as usize, format.height as usize);
        let (cw, ch) = Chroma::Yuv420.plane_size(w, h);
        let range = y4m::VendorExtensionString::new(b"XCOLORRANGE=LIMITED".to_vec())
            .map_err(|e| anyhow!("{e}"))?;
        let encoder = y4m::encode(
            w,
            h,
            y4m::Ratio::new(format.fps.num as usize, format.fps.den as usize),
        )
        .with_colorspace(y4m::Colorspace::C420jpeg)
        .append_vendor_extension(range)
        .write_header(handle)
        .map_err(|e| anyhow!("writing Y4M header to {}: {e}", path.display()))?;
        Ok(Self {
            encoder,
            file,
            format,
            planes: [vec![0; w * h], vec![0; cw * ch], vec![0; cw * ch]],
        })
    }
}

impl Sink<VideoFrame> for Y4mSink {
    fn write(&mut self, frame: &VideoFrame) -> anyhow::Result<()> {
        let (w, h) = (self.format.width as usize, self.format.height as usize);
        let [y, u, v] = &mut self.planes;
        colour::rgba_to_yuv420(&frame.pixels, w, h, y, u, v);
        let planes = y4m::Frame::new([y, u, v], None);
        self.encoder
            .write_frame(&planes)
            .map_err(|e| anyhow!("writing {}: {e}", self.file.target().display()))
    }

    fn finish(self: Box<Self>) -> anyhow::Result<()> {
        let Self { encoder, file, .. } = *self;
        drop(encoder);
        file.commit()
    }

    fn abort(self: Box<Self>) {
        let Self { encoder, file, .. } = *self;
        drop(encoder);
        file.discard();
    }

    fn describe(&self) -> String {
        format!("file:{}", self.file.target().display())
    }
}
