//! The host's one clock: monotonic nanoseconds since the process started.
//! Audio and video are stamped from it, which is what makes A/V sync
//! possible.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since the clock's epoch.
pub fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

/// Sleeps until the clock reads `deadline_ns` (returns at once if past).
pub fn sleep_until_ns(deadline_ns: u64) {
    let now = now_ns();
    if deadline_ns > now {
        std::thread::sleep(Duration::from_nanos(deadline_ns - now));
    }
}

/// The `Instant` at which the clock reads `ns` (for timed waits).
pub fn instant_at(ns: u64) -> Instant {
    epoch() + Duration::from_nanos(ns)
}
