//! What a device's callbacks and the pipeline both see: glitch counts the
//! callbacks add to with relaxed atomics, and whether the device went away.

use super::DeviceError;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub struct DeviceStatus {
    /// Capture callbacks dropped because the ring was full.
    pub overruns: AtomicU64,
    /// Playback callbacks that found too little audio (silence filled).
    pub underruns: AtomicU64,
    /// Frames lost to overruns (capture).
    pub frames_lost: AtomicU64,
    /// Times the playback ring was over budget and its oldest audio went.
    pub latency_drops: AtomicU64,
    pub frames_dropped: AtomicU64,
    /// The playback device has asked for audio at least once.
    pub started: AtomicBool,
    /// How long after its callback the device plays what the callback
    /// wrote (the device's own buffering), as it last said.
    pub output_delay_ns: AtomicU64,
    disconnected: AtomicBool,
    /// Why, set once by the device's error callback (not the data one).
    detail: Mutex<Option<String>>,
}

impl DeviceStatus {
    /// Called from the device's error callback (never the data callback).
    pub fn disconnect(&self, detail: String) {
        *self.detail.lock().unwrap_or_else(|e| e.into_inner()) = Some(detail);
        self.disconnected.store(true, Relaxed);
    }

    /// The disconnect error for `device`, once it happened.
    pub fn disconnected(&self, device: &str) -> Option<DeviceError> {
        if !self.disconnected.load(Relaxed) {
            return None;
        }
        let detail = self
            .detail
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| "the device stopped".to_string());
        Some(DeviceError::Disconnected {
            device: device.to_string(),
            detail,
        })
    }
}
