//! State handoff on a swap: the old guest's `snapshot` goes into the new
//! guest's `restore`, each a guest call like any other — under the state
//! deadline, with the snapshot's size capped before it is copied. It runs
//! off the real-time thread (the workshop calls it); whatever goes wrong,
//! the new guest starts fresh and the log says why.

use super::{Fault, Instance};
use std::fmt;
use std::time::Duration;

/// Largest state snapshot the host takes from a guest.
pub const MAX_STATE_BYTES: usize = 1 << 20;

/// What became of the state on a swap.
#[derive(Debug, Clone)]
pub enum Handover {
    /// Carried over: this many bytes.
    Carried(usize),
    /// One side does not export `state`: the new guest starts fresh, as
    /// expected.
    NotOffered,
    /// The handoff failed and the new guest starts fresh.
    Failed(HandoverFailure),
}

#[derive(Debug, Clone)]
pub struct HandoverFailure {
    /// For the log: which guest, which call, what went wrong.
    pub why: String,
    /// The fault behind it (counted like any other).
    pub fault: Fault,
    /// The old instance faulted in `snapshot` (it must not run again, not
    /// even to fade out).
    pub old_poisoned: bool,
    /// The new instance faulted in `restore`: it must be replaced by a
    /// fresh one before it runs.
    pub new_poisoned: bool,
}

impl HandoverFailure {
    /// The handoff did not come back within `waited`: both instances are
    /// lost to it (the other thread drops them when it is done).
    pub fn timed_out(waited: Duration) -> Self {
        Self {
            why: format!(
                "the state handoff took longer than {}",
                super::millis(waited)
            ),
            fault: Fault::Timeout { budget: waited },
            old_poisoned: true,
            new_poisoned: true,
        }
    }
}

impl fmt::Display for HandoverFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.why)
    }
}

/// Moves the state of `old` into `new`. `names` are the old and new
/// guests' names, for the message.
pub fn hand_over<I: Instance>(
    old: &mut I,
    new: &mut I,
    budget: Duration,
    names: (&str, &str),
) -> Handover {
    if !old.has_state() || !new.has_state() {
        return Handover::NotOffered;
    }
    let failed = |name: &str, fault: Fault, call: &str, old_poisoned, new_poisoned| {
        Handover::Failed(HandoverFailure {
            why: format!("guest {name} {fault} in {call}"),
            fault,
            old_poisoned,
            new_poisoned,
        })
    };
    let snapshot = match old.snapshot(budget, MAX_STATE_BYTES) {
        Ok(snapshot) => snapshot,
        Err(fault) => {
            let poisoned = fault.poisons_instance();
            return failed(names.0, fault, "state.snapshot", poisoned, false);
        }
    };
    match new.restore(&snapshot, budget) {
        Ok(()) => Handover::Carried(snapshot.len()),
        Err(fault) => {
            let poisoned = fault.poisons_instance();
            failed(names.1, fault, "state.restore", false, poisoned)
        }
    }
}
