use super::Source;
use crate::colour::{self, Chroma, Planes, Range};
use crate::media::{Fps, VideoFormat, VideoFrame};
use anyhow::{Context as _, anyhow, bail};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Largest frame accepted (8K RGBA is 133 MB): a lying header cannot make
/// the host allocate without bound.
const MAX_PIXELS: usize = 7680 * 4320;

/// Counts the bytes the decoder consumed: the y4m crate reports a frame
/// cut short as a clean end of file, and this is how we tell them apart.
/// The count is shared because the decoder owns its reader.
struct CountingReader<R> {
    inner: R,
    consumed: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// 8-bit YUV4MPEG2 files: mono, 4:2:0 (all sitings), 4:2:2, 4:4:4.
pub struct Y4mSource {
    decoder: y4m::Decoder<CountingReader<BufReader<File>>>,
    consumed: Arc<AtomicU64>,
    /// Bytes consumed when the header or the last complete frame ended.
    frame_end: u64,
    format: VideoFormat,
    chroma: Chroma,
    range: Range,
    frames_read: u64,
    label: String,
}

impl Y4mSource {
    /// # Errors
    /// Missing file, a malformed header, or an unsupported colour space.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let label = format!("file:{}", path.display());
        let file = File::open(path).with_context(|| format!("cannot open {label}"))?;
        let limits = y4m::Limits {
            bytes: MAX_PIXELS * 3,
        };
        let consumed = Arc::new(AtomicU64::new(0));
        let reader = CountingReader {
            inner: BufReader::new(file),
            consumed: consumed.clone(),
        };
        let decoder = y4m::Decoder::new_with_limits(reader, limits).map_err(|err| {
            anyhow!(
                "{label} is not a readable Y4M file: {}",
                describe_error(&err)
            )
        })?;
        let chroma = match decoder.get_colorspace() {
            y4m::Colorspace::Cmono => Chroma::Mono,
            y4m::Colorspace::C420
            | y4m::Colorspace::C420jpeg
            | y4m::Colorspace::C420paldv
            | y4m::Colorspace::C420mpeg2 => Chroma::Yuv420,
            y4m::Colorspace::C422 => Chroma::Yuv422,
            y4m::Colorspace::C444 => Chroma::Yuv444,
            other => bail!(
                "{label}: colour space {other:?} is not supported (8-bit mono, 4:2:0, 4:2:2 and 4:4:4 are); \
                 convert with `ffmpeg -i IN -pix_fmt yuv420p OUT.y4m`"
            ),
        };
        let raw = String::from_utf8_lossy(decoder.get_raw_params()).into_owned();
        let range = if raw
            .split(' ')
            .any(|p| p.eq_ignore_ascii_case("XCOLORRANGE=FULL"))
        {
            Range::Full
        } else {
            Range::Limited
        };
        let rate = decoder.get_framerate();
        let fps = Fps {
            num: u32::try_from(rate.num).unwrap_or(0),
            den: u32::try_from(rate.den).unwrap_or(0),
        };
        if fps.num == 0 || fps.den == 0 {
            bail!(
                "{label}: frame rate {}:{} is not usable",
                rate.num,
                rate.den
            );
        }
        let format = VideoFormat {
            width: u32::try_from(decoder.get_width())?,
            height: u32::try_from(decoder.get_height())?,
            fps,
        };
        Ok(Self {
            frame_end: consumed.load(Ordering::Relaxed),
            consumed,
            decoder,
            format,
            chroma,
            range,
            frames_read: 0,
            label,
        })
    }
}

fn describe_error(err: &y4m::Error) -> String {
    match err {
        y4m::Error::OutOfMemory => format!("frame larger than {MAX_PIXELS} pixels"),
        y4m::Error::ParseError(_) => {
            "malformed header (expected `YUV4MPEG2 W.. H.. F..`)".to_string()
        }
        other => other.to_string(),
    }
}

impl Source<VideoFrame> for Y4mSource {
    fn format(&self) -> VideoFormat {
        self.format
    }

    fn read(&mut self, rgba: &mut Vec<u8>, _max_frames: usize) -> anyhow::Result<usize> {
        let frame = match self.decoder.read_frame() {
            Ok(frame) => frame,
            Err(y4m::Error::EOF) if self.consumed.load(Ordering::Relaxed) == self.frame_end => {
                return Ok(0);
            }
            Err(y4m::Error::EOF) => {
                bail!("{}: frame {} is truncated", self.label, self.frames_read)
            }
            Err(y4m::Error::IoError(err)) if err.kind() == std::io::ErrorKind::UnexpectedEof => {
                bail!("{}: frame {} is truncated", self.label, self.frames_read)
            }
            Err(err) => bail!(
                "{}: frame {}: {}",
                self.label,
                self.frames_read,
                describe_error(&err)
            ),
        };
        let planes = Planes {
            y: frame.get_y_plane(),
            u: frame.get_u_plane(),
            v: frame.get_v_plane(),
        };
        let (w, h) = (self.format.width as usize, self.format.height as usize);
        colour::yuv_to_rgba(&planes, w, h, self.chroma, self.range, rgba);
        self.frames_read += 1;
        self.frame_end = self.consumed.load(Ordering::Relaxed);
        Ok(1)
    }

    fn is_endless(&self) -> bool {
        false
    }

    fn describe(&self) -> String {
        self.label.clone()
    }
}
