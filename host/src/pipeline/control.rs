//! State shared by every stage of one run: stop requests, the first
//! failure, and the counters.

use crate::metrics::Counters;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// How a run's inputs meet the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Clocking {
    /// As fast as possible, stamped with media time; nothing is dropped.
    #[default]
    Offline,
    /// Files and synthetic inputs paced to the host clock, as live capture
    /// would be; a late stage drops (counted) instead of queueing.
    Paced,
    /// At least one input is a device, which sets the pace; other inputs
    /// are paced. A late stage drops, as in `Paced`.
    Live,
}

impl Clocking {
    pub fn is_real_time(self) -> bool {
        self != Self::Offline
    }
}

/// An output's way of saying the user ended the run (closed the preview
/// window): a clean stop, as with Ctrl-C.
#[derive(Debug)]
pub struct UserStop(pub String);

impl std::fmt::Display for UserStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UserStop {}

/// How a run ended, when it did not simply run out of input.
enum Ending {
    /// Something went wrong: outputs are thrown away.
    Failed(anyhow::Error),
    /// A device went away: the run stops with this error, but what was
    /// written so far is kept.
    Interrupted(anyhow::Error),
}

#[derive(Default)]
pub struct RunControl {
    stop: AtomicBool,
    ending: Mutex<Option<Ending>>,
    /// Shared with the guest lifecycle, which counts faults.
    pub counters: Arc<Counters>,
}

impl RunControl {
    pub fn request_stop(&self) {
        self.stop.store(true, Relaxed);
    }

    pub fn stop_requested(&self) -> bool {
        self.stop.load(Relaxed)
    }

    /// Records the run's first failure and stops everything; outputs are
    /// discarded.
    pub fn fail(&self, error: anyhow::Error) {
        self.end(Ending::Failed(error));
    }

    /// Stops the run with an error, but keeps (finalizes) its outputs: a
    /// device that disappeared does not make the recording so far invalid.
    pub fn interrupt(&self, error: anyhow::Error) {
        self.end(Ending::Interrupted(error));
    }

    fn end(&self, ending: Ending) {
        let mut slot = self.ending.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(ending);
        }
        self.request_stop();
    }

    /// True when the run failed in a way that invalidates its outputs.
    pub fn failed(&self) -> bool {
        matches!(
            *self.ending.lock().unwrap_or_else(|e| e.into_inner()),
            Some(Ending::Failed(_))
        )
    }

    /// The error the run ended with, if any.
    pub fn take_error(&self) -> Option<anyhow::Error> {
        match self.ending.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(Ending::Failed(error) | Ending::Interrupted(error)) => Some(error),
            None => None,
        }
    }
}

/// Held by each stage's thread: if the thread panics, the run stops, so no
/// stage keeps feeding one that is gone (real-time queues never report a
/// taker gone). The panic itself is reported when the thread is joined.
pub struct StopOnPanic<'a>(pub &'a RunControl);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.request_stop();
        }
    }
}
