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
    /// Host time of the last playback callback, and the frames it took:
    /// the ring's next frame plays after those.
    pub last_callback_ns: AtomicU64,
    pub last_callback_frames: AtomicU64,
    /// Data callbacks so far: a device whose callbacks stop is checked
    /// for presence (some backends never report a removed device).
    pub callbacks: AtomicU64,
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

/// Asks the device system whether a device is still there (true) — for
/// backends that never report a removed device, only stop calling back.
pub type PresenceCheck = Box<dyn FnMut() -> bool + Send>;

/// How long a device may stay silent before its presence is checked.
pub const SILENCE_BEFORE_CHECK_NS: u64 = 1_000_000_000;

/// How often presence is checked while callbacks come: a sound server may
/// move a removed device's stream to another device (PulseAudio's
/// module-rescue-streams), so callbacks alone do not prove the device.
pub const CHECK_EVERY_NS: u64 = 2_000_000_000;

/// Watches a device's callbacks and checks its presence when they stop,
/// and every couple of seconds.
pub struct Watchdog {
    check: Option<PresenceCheck>,
    seen_callbacks: u64,
    last_callback_ns: u64,
    last_check_ns: u64,
}

impl Watchdog {
    pub fn new(check: Option<PresenceCheck>) -> Self {
        let now = crate::clock::now_ns();
        Self {
            check,
            seen_callbacks: 0,
            last_callback_ns: now,
            last_check_ns: now,
        }
    }

    /// Called from the pipeline side now and then (never a device
    /// callback); marks the device disconnected once it is gone.
    pub fn check(&mut self, status: &DeviceStatus) {
        let Some(check) = &mut self.check else {
            return;
        };
        let now = crate::clock::now_ns();
        let callbacks = status.callbacks.load(Relaxed);
        if callbacks != self.seen_callbacks {
            self.seen_callbacks = callbacks;
            self.last_callback_ns = now;
        }
        let silent = now.saturating_sub(self.last_callback_ns) >= SILENCE_BEFORE_CHECK_NS;
        let due = now.saturating_sub(self.last_check_ns)
            >= if silent {
                SILENCE_BEFORE_CHECK_NS
            } else {
                CHECK_EVERY_NS
            };
        if !due {
            return;
        }
        self.last_check_ns = now;
        // Asking the sound system allocates: it is not a hot-path step
        // but a rare one, on the pipeline's side.
        if !crate::rt::outside_hot(check) {
            status.disconnect("it is no longer listed by the sound system".to_string());
        }
    }
}
