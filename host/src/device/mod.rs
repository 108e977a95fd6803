//! Live devices: typed errors, and the lock-free rings between a device's
//! own callback thread and the pipeline (capture, playback with a latency
//! budget and drift correction), and a scripted fake device to test them.

mod capture;
mod cpal_backend;
mod drift;
mod error;
pub mod fake;
mod matching;
mod playback;
mod status;

pub use capture::{CaptureFeed, CaptureSide, capture_ring, capture_time_ns};
pub use cpal_backend::{
    DeviceCapture, DeviceInfo, DevicePlayback, find, host, host_names, list, open_input,
    open_output, preferred_format,
};
pub use drift::DriftCorrector;
pub use error::{DeviceError, Direction, is_disconnect};
pub use matching::matching;
pub use playback::{PlaybackBudget, PlaybackSide, PlaybackSink, playback_ring};
pub use status::DeviceStatus;

#[cfg(test)]
mod tests;
