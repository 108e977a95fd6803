//! The strings users write for inputs and outputs (`tone:440`,
//! `file:in.wav`, `pattern`, `null`...), parsed once into typed specs.

use crate::media::{AudioFormat, VideoFormat};
use crate::sink::{self, AudioSink, VideoSink};
use crate::source::{self, AudioSource, VideoSource};
use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};
use std::str::FromStr;

const AUDIO_INPUTS: &str =
    "file:PATH.wav, tone:FREQ_HZ, clicks:PERIOD_MS, silence, device:NAME, default";
const VIDEO_INPUTS: &str = "file:PATH.y4m, pattern, camera:NAME, camera:INDEX, camera:default";
const AUDIO_OUTPUTS: &str = "file:PATH.wav, null, device:NAME, default";
const VIDEO_OUTPUTS: &str = "file:PATH.y4m, file:PATH.png (last frame), null, window, \
                             pipewire:NAME (virtual camera), v4l2:/dev/videoN (v4l2loopback)";

/// The virtual camera's name when `pipewire` is given without one.
pub const DEFAULT_VIRTUAL_CAMERA: &str = "Sandstream Camera";

/// An audio input.
#[derive(Debug, Clone, PartialEq)]
pub enum AudioInputSpec {
    File(PathBuf),
    Tone(f64),
    /// A click every period, each at a level that names it
    /// ([`crate::clicks`]).
    Clicks(std::time::Duration),
    Silence,
    /// A capture device by name (`default` for the system's).
    Device(String),
}

/// A video input.
#[derive(Debug, Clone, PartialEq)]
pub enum VideoInputSpec {
    File(PathBuf),
    Pattern,
    /// A camera by name or index (`default` for the first).
    Camera(String),
}

/// An audio output.
#[derive(Debug, Clone, PartialEq)]
pub enum AudioOutputSpec {
    Wav(PathBuf),
    Null,
    /// A playback device by name (`default` for the system's).
    Device(String),
}

/// A video output.
#[derive(Debug, Clone, PartialEq)]
pub enum VideoOutputSpec {
    Y4m(PathBuf),
    Png(PathBuf),
    Null,
    /// A preview window.
    Window,
    /// A PipeWire camera node by this name.
    PipeWire(String),
    /// A v4l2loopback device.
    V4l2(PathBuf),
}

fn split(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once(':') {
        Some((kind, arg)) => (kind, Some(arg)),
        None => (spec, None),
    }
}

fn file_arg(spec: &str, arg: Option<&str>) -> anyhow::Result<PathBuf> {
    match arg {
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => bail!("`{spec}` needs a path, as in file:PATH"),
    }
}

/// `device:NAME` or `default`: a device name, or `None` for other specs.
fn device_arg(spec: &str) -> anyhow::Result<Option<String>> {
    match split(spec) {
        ("default", None) => Ok(Some("default".to_string())),
        ("device", Some(name)) if !name.trim().is_empty() => Ok(Some(name.to_string())),
        ("device", _) => bail!(
            "`{spec}` needs a device name, as in device:default or device:NAME \
             (`sandstream devices` lists them)"
        ),
        _ => Ok(None),
    }
}

fn extension(path: &Path) -> String {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

impl FromStr for AudioInputSpec {
    type Err = anyhow::Error;

    fn from_str(spec: &str) -> anyhow::Result<Self> {
        if let Some(name) = device_arg(spec)? {
            return Ok(Self::Device(name));
        }
        match split(spec) {
            ("file", arg) => Ok(Self::File(file_arg(spec, arg)?)),
            ("tone", Some(freq)) => {
                let hz: f64 = freq
                    .parse()
                    .ok()
                    .filter(|hz: &f64| hz.is_finite() && *hz > 0.0)
                    .with_context(|| {
                        format!("`{spec}`: the tone frequency must be a positive number of Hz")
                    })?;
                Ok(Self::Tone(hz))
            }
            ("tone", None) => bail!("`tone` needs a frequency, as in tone:440"),
            ("clicks", Some(ms)) => {
                let ms: f64 = ms
                    .parse()
                    .ok()
                    .filter(|ms: &f64| (10.0..=10_000.0).contains(ms))
                    .with_context(|| {
                        format!("`{spec}`: the click period must be 10 to 10000 ms")
                    })?;
                Ok(Self::Clicks(std::time::Duration::from_secs_f64(ms / 1e3)))
            }
            ("clicks", None) => bail!("`clicks` needs a period, as in clicks:200 (ms)"),
            ("silence", None) => Ok(Self::Silence),
            _ => bail!("unknown audio input `{spec}`; expected one of: {AUDIO_INPUTS}"),
        }
    }
}

impl FromStr for VideoInputSpec {
    type Err = anyhow::Error;

    fn from_str(spec: &str) -> anyhow::Result<Self> {
        match split(spec) {
            ("file", arg) => Ok(Self::File(file_arg(spec, arg)?)),
            ("pattern", None) => Ok(Self::Pattern),
            ("camera", Some(name)) if !name.trim().is_empty() => Ok(Self::Camera(name.to_string())),
            ("camera", _) => bail!(
                "`{spec}` needs a camera, as in camera:default, camera:0 or camera:NAME \
                 (`sandstream devices` lists them)"
            ),
            _ => bail!("unknown video input `{spec}`; expected one of: {VIDEO_INPUTS}"),
        }
    }
}

impl FromStr for AudioOutputSpec {
    type Err = anyhow::Error;

    fn from_str(spec: &str) -> anyhow::Result<Self> {
        if let Some(name) = device_arg(spec)? {
            return Ok(Self::Device(name));
        }
        match split(spec) {
            ("file", arg) => {
                let path = file_arg(spec, arg)?;
                match extension(&path).as_str() {
                    "wav" => Ok(Self::Wav(path)),
                    other => bail!(
                        "`{spec}`: cannot write audio as .{other}; expected one of: {AUDIO_OUTPUTS}"
                    ),
                }
            }
            ("null", None) => Ok(Self::Null),
            _ => bail!("unknown audio output `{spec}`; expected one of: {AUDIO_OUTPUTS}"),
        }
    }
}

impl FromStr for VideoOutputSpec {
    type Err = anyhow::Error;

    fn from_str(spec: &str) -> anyhow::Result<Self> {
        match split(spec) {
            ("file", arg) => {
                let path = file_arg(spec, arg)?;
                match extension(&path).as_str() {
                    "y4m" => Ok(Self::Y4m(path)),
                    "png" => Ok(Self::Png(path)),
                    other => bail!(
                        "`{spec}`: cannot write video as .{other}; expected one of: {VIDEO_OUTPUTS}"
                    ),
                }
            }
            ("null", None) => Ok(Self::Null),
            ("window", None) => Ok(Self::Window),
            ("pipewire", None) => Ok(Self::PipeWire(DEFAULT_VIRTUAL_CAMERA.to_string())),
            ("pipewire", Some(name)) if !name.trim().is_empty() => {
                Ok(Self::PipeWire(name.to_string()))
            }
            ("v4l2", Some(path)) if !path.is_empty() => Ok(Self::V4l2(PathBuf::from(path))),
            ("v4l2", _) => bail!("`{spec}` needs a device, as in v4l2:/dev/video10"),
            _ => bail!("unknown video output `{spec}`; expected one of: {VIDEO_OUTPUTS}"),
        }
    }
}

impl AudioInputSpec {
    /// Opens a pulled input; `format` is used by synthetic inputs (files
    /// have their own). Devices are opened by the pipeline, which knows
    /// the device settings.
    ///
    /// # Errors
    /// Missing or malformed files.
    pub fn open(&self, format: AudioFormat) -> anyhow::Result<Box<AudioSource>> {
        Ok(match self {
            Self::File(path) => Box::new(source::WavSource::open(path)?),
            Self::Tone(hz) => Box::new(source::SignalSource::new(
                format,
                source::Tone::new(format, *hz),
            )),
            Self::Clicks(period) => Box::new(source::SignalSource::new(
                format,
                source::ClickTrain::new(format, *period),
            )),
            Self::Silence => Box::new(source::SilenceSource::new(format)),
            Self::Device(name) => bail!("device:{name} is opened by the pipeline"),
        })
    }

    pub fn is_synthetic(&self) -> bool {
        matches!(self, Self::Tone(_) | Self::Clicks(_) | Self::Silence)
    }
}

impl VideoInputSpec {
    /// Opens the input; `format` is used by the pattern (files have their own).
    ///
    /// # Errors
    /// Missing or malformed files.
    pub fn open(&self, format: VideoFormat) -> anyhow::Result<Box<VideoSource>> {
        Ok(match self {
            Self::File(path) => Box::new(source::Y4mSource::open(path)?),
            Self::Pattern => Box::new(source::PatternSource::new(format)),
            Self::Camera(name) => bail!("camera:{name} is opened by the pipeline"),
        })
    }

    pub fn is_synthetic(&self) -> bool {
        matches!(self, Self::Pattern)
    }
}

impl AudioOutputSpec {
    /// # Errors
    /// When the output file cannot be created.
    pub fn open(&self, format: AudioFormat) -> anyhow::Result<Box<AudioSink>> {
        Ok(match self {
            Self::Wav(path) => Box::new(sink::WavSink::create(path, format)?),
            Self::Null => Box::new(sink::NullSink),
            Self::Device(name) => bail!("device:{name} is opened by the pipeline"),
        })
    }
}

impl VideoOutputSpec {
    /// # Errors
    /// When the output file cannot be created.
    pub fn open(&self, format: VideoFormat) -> anyhow::Result<Box<VideoSink>> {
        Ok(match self {
            Self::Y4m(path) => Box::new(sink::Y4mSink::create(path, format)?),
            Self::Png(path) => Box::new(sink::PngSnapshotSink::create(path, format)?),
            Self::Null => Box::new(sink::NullSink),
            Self::Window => Box::new(sink::WindowSink::open("Sandstream", format)?),
            #[cfg(target_os = "linux")]
            Self::PipeWire(name) => Box::new(sink::PipeWireCamera::create(name, format)?),
            #[cfg(target_os = "linux")]
            Self::V4l2(path) => Box::new(sink::LoopbackSink::open(path, format)?),
            #[cfg(not(target_os = "linux"))]
            Self::PipeWire(_) | Self::V4l2(_) => {
                bail!("PipeWire and v4l2loopback cameras exist on Linux only (see README)")
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_form() {
        assert_eq!(
            "tone:440".parse::<AudioInputSpec>().unwrap(),
            AudioInputSpec::Tone(440.0)
        );
        assert_eq!(
            "silence".parse::<AudioInputSpec>().unwrap(),
            AudioInputSpec::Silence
        );
        assert_eq!(
            "file:a b.wav".parse::<AudioInputSpec>().unwrap(),
            AudioInputSpec::File("a b.wav".into())
        );
        assert_eq!(
            "pattern".parse::<VideoInputSpec>().unwrap(),
            VideoInputSpec::Pattern
        );
        assert_eq!(
            "null".parse::<AudioOutputSpec>().unwrap(),
            AudioOutputSpec::Null
        );
        assert_eq!(
            "device:Monitor of MicFeed"
                .parse::<AudioInputSpec>()
                .unwrap(),
            AudioInputSpec::Device("Monitor of MicFeed".into())
        );
        assert_eq!(
            "default".parse::<AudioOutputSpec>().unwrap(),
            AudioOutputSpec::Device("default".into())
        );
        assert_eq!(
            "file:x.PNG".parse::<VideoOutputSpec>().unwrap(),
            VideoOutputSpec::Png("x.PNG".into())
        );
        assert_eq!(
            "camera:0".parse::<VideoInputSpec>().unwrap(),
            VideoInputSpec::Camera("0".into())
        );
        assert_eq!(
            "pipewire".parse::<VideoOutputSpec>().unwrap(),
            VideoOutputSpec::PipeWire("Sandstream Camera".into())
        );
        assert_eq!(
            "pipewire:Blur Cam".parse::<VideoOutputSpec>().unwrap(),
            VideoOutputSpec::PipeWire("Blur Cam".into())
        );
        assert_eq!(
            "v4l2:/dev/video10".parse::<VideoOutputSpec>().unwrap(),
            VideoOutputSpec::V4l2("/dev/video10".into())
        );
        assert_eq!(
            "window".parse::<VideoOutputSpec>().unwrap(),
            VideoOutputSpec::Window
        );
    }

    #[test]
    fn bad_specs_say_what_is_accepted() {
        let err = "mic".parse::<AudioInputSpec>().unwrap_err().to_string();
        assert!(
            err.contains("unknown audio input `mic`") && err.contains("tone:FREQ_HZ"),
            "{err}"
        );
        let err = "tone:loud"
            .parse::<AudioInputSpec>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("positive number of Hz"), "{err}");
        let err = "clicks:5"
            .parse::<AudioInputSpec>()
            .unwrap_err()
            .to_string();
        assert_eq!(err, "`clicks:5`: the click period must be 10 to 10000 ms");
        let err = "clicks".parse::<AudioInputSpec>().unwrap_err().to_string();
        assert!(err.contains("as in clicks:200"), "{err}");
        assert_eq!(
            "clicks:250".parse::<AudioInputSpec>().unwrap(),
            AudioInputSpec::Clicks(std::time::Duration::from_millis(250))
        );
        let err = "file:out.mp3"
            .parse::<AudioOutputSpec>()
            .unwrap_err()
            .to_string();
        assert!(err.contains(".mp3"), "{err}");
        let err = "file:".parse::<VideoInputSpec>().unwrap_err().to_string();
        assert!(err.contains("needs a path"), "{err}");
        let err = "device:".parse::<AudioInputSpec>().unwrap_err().to_string();
        assert!(err.contains("needs a device name"), "{err}");
        let err = "camera:".parse::<VideoInputSpec>().unwrap_err().to_string();
        assert!(err.contains("camera:default"), "{err}");
        let err = "v4l2".parse::<VideoOutputSpec>().unwrap_err().to_string();
        assert!(err.contains("v4l2:/dev/video10"), "{err}");
        let err = "webcam".parse::<VideoOutputSpec>().unwrap_err().to_string();
        assert!(err.contains("pipewire:NAME"), "{err}");
    }
}
