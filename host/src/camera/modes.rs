//! Camera modes (layout, size, rate) and the choice of the one closest to
//! what the user asked for.

use super::PixelLayout;
use std::collections::BTreeMap;
use std::fmt;

/// One mode a camera offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CameraMode {
    pub layout: PixelLayout,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

impl fmt::Display for CameraMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}x{} {} @ {} fps",
            self.width,
            self.height,
            self.layout.name(),
            self.fps
        )
    }
}

/// The mode asked for (`--width/--height/--fps`, or the defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModeRequest {
    pub width: u32,
    pub height: u32,
    pub fps: f64,
}

impl ModeRequest {
    pub fn is_exactly(&self, mode: &CameraMode) -> bool {
        (mode.width, mode.height) == (self.width, self.height)
            && (f64::from(mode.fps) - self.fps).abs() < 0.01
    }
}

impl fmt::Display for ModeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{} @ {} fps", self.width, self.height, self.fps)
    }
}

/// The closest mode: nearest size first, then nearest rate (a rate below
/// the one asked counts double: dropping frames is cheap, missing them is
/// not), then the cheapest to decode.
pub fn choose_mode(modes: &[CameraMode], request: ModeRequest) -> Option<CameraMode> {
    modes
        .iter()
        .filter(|m| m.width > 0 && m.height > 0 && m.fps > 0)
        .min_by_key(|m| {
            let dx = i64::from(m.width) - i64::from(request.width);
            let dy = i64::from(m.height) - i64::from(request.height);
            let rate = f64::from(m.fps) - request.fps;
            let rate_miss = if rate < 0.0 { -2.0 * rate } else { rate };
            (
                dx * dx + dy * dy,
                (rate_miss * 1000.0) as i64,
                m.layout.decode_cost(),
            )
        })
        .copied()
}

/// Modes grouped for people: one line per layout and size, with its rates
/// ("YUYV 1280x720 @ 30, 15 fps").
pub fn summarize(modes: &[CameraMode]) -> Vec<String> {
    let mut grouped: BTreeMap<(PixelLayout, u32, u32), Vec<u32>> = BTreeMap::new();
    for m in modes {
        grouped
            .entry((m.layout, m.width, m.height))
            .or_default()
            .push(m.fps);
    }
    grouped
        .into_iter()
        .map(|((layout, w, h), mut rates)| {
            rates.sort_unstable_by(|a, b| b.cmp(a));
            rates.dedup();
            let rates: Vec<String> = rates.iter().map(u32::to_string).collect();
            format!("{} {w}x{h} @ {} fps", layout.name(), rates.join(", "))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(layout: PixelLayout, width: u32, height: u32, fps: u32) -> CameraMode {
        CameraMode {
            layout,
            width,
            height,
            fps,
        }
    }

    fn webcam() -> Vec<CameraMode> {
        vec![
            mode(PixelLayout::Yuyv, 640, 480, 30),
            mode(PixelLayout::Yuyv, 1280, 720, 10),
            mode(PixelLayout::Mjpeg, 1280, 720, 30),
            mode(PixelLayout::Mjpeg, 1920, 1080, 30),
            mode(PixelLayout::Yuyv, 1920, 1080, 5),
        ]
    }

    #[test]
    fn nearest_size_then_rate_then_cheapest_layout() {
        let pick = |w, h, fps| {
            choose_mode(
                &webcam(),
                ModeRequest {
                    width: w,
                    height: h,
                    fps,
                },
            )
            .unwrap()
        };
        // 720p30 exists only as MJPEG: a slower YUYV mode is not preferred.
        assert_eq!(
            pick(1280, 720, 30.0),
            mode(PixelLayout::Mjpeg, 1280, 720, 30)
        );
        // At 10 fps YUYV is exact and cheaper to decode.
        assert_eq!(
            pick(1280, 720, 10.0),
            mode(PixelLayout::Yuyv, 1280, 720, 10)
        );
        // 640x360 is closest to 640x480.
        assert_eq!(pick(640, 360, 30.0), mode(PixelLayout::Yuyv, 640, 480, 30));
        assert_eq!(
            pick(1920, 1080, 30.0),
            mode(PixelLayout::Mjpeg, 1920, 1080, 30)
        );
        assert!(
            choose_mode(
                &[],
                ModeRequest {
                    width: 1,
                    height: 1,
                    fps: 1.0
                }
            )
            .is_none()
        );
    }

    #[test]
    fn summary_groups_rates_per_size() {
        let mut modes = webcam();
        modes.push(mode(PixelLayout::Yuyv, 640, 480, 15));
        let summary = summarize(&modes);
        assert!(
            summary.contains(&"YUYV 640x480 @ 30, 15 fps".to_string()),
            "{summary:?}"
        );
        assert_eq!(summary.len(), 5, "{summary:?}");
    }
}
