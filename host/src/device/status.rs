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

/// Asks the device system whether a device is still there: `Some(true)`
/// listed, `Some(false)` not listed, `None` the system did not answer —
/// for backends that never report a removed device, only stop calling
/// back.
pub type PresenceCheck = Box<dyn FnMut() -> Option<bool> + Send>;

/// How long a device may stay silent before its presence is checked.
pub const SILENCE_BEFORE_CHECK_NS: u64 = 1_000_000_000;

/// How often presence is checked while callbacks come: a sound server may
/// move a removed device's stream to another device (PulseAudio's
/// module-rescue-streams), so callbacks alone do not prove the device.
pub const CHECK_EVERY_NS: u64 = 2_000_000_000;

/// How often the watchdog looks at the callbacks.
const TICK: std::time::Duration = std::time::Duration::from_millis(250);

/// Watches a device's callbacks on a thread of its own, and asks the
/// device system whether the device is still there when they stop, and
/// every couple of seconds. Asking takes milliseconds (a listing through
/// the sound server), so it never runs on a pipeline thread. It marks the
/// device disconnected once it is gone; it stops when dropped.
pub struct Watchdog {
    stop: std::sync::Arc<AtomicBool>,
}

/// The watchdog thread's view of the device.
struct Watch {
    check: PresenceCheck,
    seen_callbacks: u64,
    last_callback_ns: u64,
    last_check_ns: u64,
}

impl Watchdog {
    /// Starts watching `status` with `check`.
    pub fn spawn(check: PresenceCheck, status: std::sync::Arc<DeviceStatus>) -> Self {
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let now = crate::clock::now_ns();
        let mut watch = Watch {
            check,
            seen_callbacks: 0,
            last_callback_ns: now,
            last_check_ns: now,
        };
        let spawned = std::thread::Builder::new()
            .name("sandstream-watchdog".into())
            .spawn(move || {
                while !flag.load(Relaxed) && status.disconnected("").is_none() {
                    std::thread::sleep(TICK);
                    watch.look(&status, crate::clock::now_ns());
                }
            });
        if let Err(error) = spawned {
            tracing::warn!("cannot watch the device for removal: {error}");
        }
        Self { stop }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
    }
}

impl Watch {
    fn look(&mut self, status: &DeviceStatus, now: u64) {
        let callbacks = status.callbacks.load(Relaxed);
        if callbacks != self.seen_callbacks {
            self.seen_callbacks = callbacks;
            self.last_callback_ns = now;
        }
        let silent = now.saturating_sub(self.last_callback_ns) >= SILENCE_BEFORE_CHECK_NS;
        let every = if silent {
            SILENCE_BEFORE_CHECK_NS
        } else {
            CHECK_EVERY_NS
        };
        if now.saturating_sub(self.last_check_ns) < every {
            return;
        }
        self.last_check_ns = now;
        match (self.check)() {
            Some(false) => status.disconnect("it is no longer listed by the sound system".into()),
            // No answer while the device is silent: the sound system
            // itself has gone. While callbacks come, the device is there.
            None if silent => status.disconnect("the sound system no longer answers".into()),
            _ => {}
        }
    }
}
