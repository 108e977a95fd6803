//! Cameras, through nokhwa: listing with the modes each offers, matching
//! by name or index, choosing the mode closest to what was asked, and a
//! capture thread that decodes frames to RGBA and hands them to the
//! pipeline (see [`CameraFeed`]).

mod decode;
pub mod fake;
mod feed;
mod modes;

pub use decode::{FrameDecoder, PixelLayout};
pub use feed::CameraFeed;
pub use modes::{CameraMode, ModeRequest, choose_mode, summarize};

use crate::device::DeviceError;
use nokhwa::Camera;
use nokhwa::utils::{ApiBackend, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType};

/// A camera as listed by `sandstream devices`.
#[derive(Debug, Clone)]
pub struct CameraInfo {
    /// The index `camera:INDEX` takes (`/dev/videoN` on Linux).
    pub index: String,
    pub name: String,
    pub detail: String,
    /// Its modes, or why they could not be read (in use, no permission).
    pub modes: Result<Vec<CameraMode>, String>,
}

/// The name of the platform's camera API, for messages.
pub fn backend_name() -> &'static str {
    if cfg!(target_os = "linux") {
        "Video4Linux"
    } else if cfg!(target_os = "macos") {
        "AVFoundation"
    } else {
        "Media Foundation"
    }
}

fn layout_of(format: FrameFormat) -> PixelLayout {
    match format {
        FrameFormat::MJPEG => PixelLayout::Mjpeg,
        FrameFormat::YUYV => PixelLayout::Yuyv,
        FrameFormat::NV12 => PixelLayout::Nv12,
        FrameFormat::GRAY => PixelLayout::Gray,
        FrameFormat::RAWRGB => PixelLayout::Rgb,
        FrameFormat::RAWBGR => PixelLayout::Bgr,
    }
}

fn frame_format_of(layout: PixelLayout) -> FrameFormat {
    match layout {
        PixelLayout::Mjpeg => FrameFormat::MJPEG,
        PixelLayout::Yuyv => FrameFormat::YUYV,
        PixelLayout::Nv12 => FrameFormat::NV12,
        PixelLayout::Gray => FrameFormat::GRAY,
        PixelLayout::Rgb => FrameFormat::RAWRGB,
        PixelLayout::Bgr => FrameFormat::RAWBGR,
    }
}

fn index_text(index: &CameraIndex) -> String {
    match index {
        CameraIndex::Index(i) => i.to_string(),
        CameraIndex::String(s) => s.clone(),
    }
}

/// Opens a camera without starting it, in whatever mode it is in.
fn open_camera(index: &CameraIndex) -> Result<Camera, nokhwa::NokhwaError> {
    let any = RequestedFormat::with_formats(RequestedFormatType::None, &ALL_FORMATS);
    Camera::new(index.clone(), any)
}

/// Opens a camera in exactly `mode`.
fn open_in_mode(index: &CameraIndex, mode: CameraMode) -> Result<Camera, nokhwa::NokhwaError> {
    let exact = nokhwa::utils::CameraFormat::new(
        nokhwa::utils::Resolution::new(mode.width, mode.height),
        frame_format_of(mode.layout),
        mode.fps,
    );
    let request = RequestedFormat::with_formats(RequestedFormatType::Exact(exact), &ALL_FORMATS);
    Camera::new(index.clone(), request)
}

const ALL_FORMATS: [FrameFormat; 6] = [
    FrameFormat::YUYV,
    FrameFormat::NV12,
    FrameFormat::MJPEG,
    FrameFormat::GRAY,
    FrameFormat::RAWRGB,
    FrameFormat::RAWBGR,
];

fn modes_of(camera: &mut Camera) -> Result<Vec<CameraMode>, nokhwa::NokhwaError> {
    let mut modes: Vec<CameraMode> = camera
        .compatible_camera_formats()?
        .into_iter()
        .map(|f| CameraMode {
            layout: layout_of(f.format()),
            width: f.resolution().width(),
            height: f.resolution().height(),
            fps: f.frame_rate(),
        })
        .collect();
    modes.sort();
    modes.dedup();
    Ok(modes)
}

/// The cameras the system lists; with `with_modes`, each is opened to read
/// its modes.
///
/// # Errors
/// When the camera API itself fails.
pub fn list(with_modes: bool) -> Result<Vec<CameraInfo>, DeviceError> {
    let found = nokhwa::query(ApiBackend::Auto).map_err(|e| DeviceError::Backend {
        device: backend_name().to_string(),
        detail: format!("cannot list cameras: {e}"),
    })?;
    Ok(found
        .into_iter()
        .map(|info| {
            let mut name = info.human_name();
            let modes = if with_modes {
                // Opened, a camera may name itself better than the list
                // does (the V4L2 card name instead of the device path).
                open_camera(info.index())
                    .and_then(|mut camera| {
                        let own = camera.info().human_name();
                        if !own.is_empty() {
                            name = own;
                        }
                        modes_of(&mut camera)
                    })
                    .map_err(|e| e.to_string())
            } else {
                Ok(Vec::new())
            };
            CameraInfo {
                index: index_text(info.index()),
                name,
                detail: info.description().to_string(),
                modes,
            }
        })
        .collect())
}

/// Which camera `camera:NAME`, `camera:INDEX` or `default` means: a
/// number is an index (opened even when the system does not list it, as
/// with PipeWire's V4L2 emulation); a name matches whole, then as a part,
/// case-insensitively.
fn find(name: &str) -> Result<(CameraIndex, String), DeviceError> {
    if let Ok(index) = name.trim().parse::<u32>() {
        return Ok((CameraIndex::Index(index), format!("camera:{index}")));
    }
    let listed = list(false)?;
    let found: Vec<&CameraInfo> = if name.eq_ignore_ascii_case("default") {
        listed.iter().take(1).collect()
    } else {
        crate::device::matching(&listed, name, |c| vec![c.name.as_str()])
            .into_iter()
            .map(|i| &listed[i])
            .collect()
    };
    let label = |c: &CameraInfo| format!("{} (camera:{})", c.name, c.index);
    match found.as_slice() {
        [one] => {
            let index = one.index.parse::<u32>().map_or_else(
                |_| CameraIndex::String(one.index.clone()),
                CameraIndex::Index,
            );
            Ok((index, one.name.clone()))
        }
        [] if name.eq_ignore_ascii_case("default") => {
            // Nothing listed: try the first index all the same.
            Ok((CameraIndex::Index(0), "camera:0".to_string()))
        }
        [] => Err(DeviceError::NotFound {
            what: "camera".to_string(),
            wanted: name.to_string(),
            host: backend_name().to_string(),
            available: listed.iter().map(label).collect(),
        }),
        several => Err(DeviceError::NotFound {
            what: "camera".to_string(),
            wanted: format!("{name}` uniquely (it matches several; give more of the name)`"),
            host: backend_name().to_string(),
            available: several.iter().map(|c| label(c)).collect(),
        }),
    }
}

/// Opens the camera `name` in the mode closest to `request`, and says
/// which mode that is.
///
/// # Errors
/// No such camera (listing those that exist), none of its modes usable,
/// or the camera refusing the mode.
pub fn open(name: &str, request: ModeRequest) -> anyhow::Result<CameraFeed> {
    let (index, label) = find(name)?;
    let mut camera = open_camera(&index).map_err(|e| open_error(&label, &e))?;
    let label = match camera.info().human_name() {
        n if n.is_empty() => label,
        n => format!("{n} (camera:{})", index_text(&index)),
    };
    let modes = modes_of(&mut camera).map_err(|e| DeviceError::Backend {
        device: label.clone(),
        detail: format!("cannot read its modes: {e}"),
    })?;
    let mode = choose_mode(&modes, request).ok_or_else(|| DeviceError::FormatUnsupported {
        device: label.clone(),
        wanted: request.to_string(),
        supported: summarize(&modes),
    })?;
    // nokhwa's camera is not Send: the capture thread opens its own, in
    // the mode chosen here.
    drop(camera);
    if request.is_exactly(&mode) {
        tracing::info!("{label}: {mode}");
    } else {
        tracing::info!("{label}: {mode} (the closest to {request} it offers)");
    }
    Ok(CameraFeed::new(index, mode, label))
}

fn open_error(label: &str, error: &nokhwa::NokhwaError) -> DeviceError {
    let text = error.to_string();
    if text.contains("No such file") {
        DeviceError::NotFound {
            what: "camera".to_string(),
            wanted: label.to_string(),
            host: backend_name().to_string(),
            available: list(false)
                .unwrap_or_default()
                .iter()
                .map(|c| format!("{} (camera:{})", c.name, c.index))
                .collect(),
        }
    } else {
        DeviceError::Backend {
            device: label.to_string(),
            detail: format!("cannot open it: {text}"),
        }
    }
}
