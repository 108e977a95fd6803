//! What can go wrong in one entry into a guest, said so that a user knows
//! which call failed, how, and for how long it held the stream.

use crate::text::GuestText;
use std::fmt;
use std::time::Duration;

/// Every way the host enters a guest. Each has its own deadline
/// ([`super::Deadlines::for_call`]) and its own name in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// Instantiation: the component's start functions run.
    Instantiate,
    Configure,
    /// `mapped-audio.prepare` / `mapped-video.prepare`.
    Prepare,
    Audio,
    Video,
    Snapshot,
    Restore,
}

impl CallKind {
    /// The export (or phase) as the user knows it from the WIT.
    pub fn name(self) -> &'static str {
        match self {
            CallKind::Instantiate => "instantiation (start functions)",
            CallKind::Configure => "setup.configure",
            CallKind::Prepare => "mapped-*.prepare",
            CallKind::Audio => "process-audio",
            CallKind::Video => "process-video",
            CallKind::Snapshot => "state.snapshot",
            CallKind::Restore => "state.restore",
        }
    }
}

/// What went wrong in one call into the guest.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Guest code ran past the call's deadline and was interrupted.
    Timeout { budget: Duration },
    /// The guest waited in a host call (a sleep, a poll) until the call's
    /// deadline, where the host cut the wait off.
    Blocked {
        import: &'static str,
        budget: Duration,
    },
    /// The guest hit its memory cap (and trapped).
    OutOfMemory { detail: String },
    /// The call trapped (unreachable, out of bounds, a panic...).
    /// `backtrace`: the guest's functions at the trap, innermost first,
    /// sanitized (their names come from the guest), logged at `-v`.
    Trap {
        detail: String,
        backtrace: Option<String>,
    },
    /// The guest called WASI `exit`.
    Exited { code: i32 },
    /// The guest returned an error message.
    Reported { message: GuestText },
    /// The guest tried to hand the host more bytes at once than the call
    /// allows (a result, an error message, a log line, a snapshot).
    TooLarge { cap: usize },
    /// The guest returned data of the wrong size.
    WrongSize {
        got: usize,
        expected: usize,
        unit: &'static str,
    },
    /// The guest does not implement this call.
    NotImplemented(&'static str),
    /// A mapped buffer no longer lies inside the guest's memory.
    BadBuffer { detail: String },
    /// A guest of a `-mapped` world cannot take a stream through its
    /// buffers, and has no list path to fall back on.
    NoDataPath {
        interface: &'static str,
        reason: String,
    },
}

impl Fault {
    /// True when the instance must be thrown away (its state is unknown
    /// after a trap or an interrupted call); an error or a wrong-sized
    /// result leaves it usable.
    pub fn poisons_instance(&self) -> bool {
        !matches!(
            self,
            Fault::Reported { .. } | Fault::WrongSize { .. } | Fault::NotImplemented(_)
        )
    }

    /// True when the fault held the stream for the call's whole deadline:
    /// such faults cost the stream the most time, and count double towards
    /// quarantine.
    pub fn held_the_stream(&self) -> bool {
        matches!(self, Fault::Timeout { .. } | Fault::Blocked { .. })
    }
}

impl Fault {
    /// The wasm backtrace of a trap, when there is one.
    pub fn backtrace(&self) -> Option<&str> {
        match self {
            Fault::Trap { backtrace, .. } => backtrace.as_deref(),
            _ => None,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Timeout { budget } => {
                write!(f, "ran past its {} deadline", millis(*budget))
            }
            Fault::Blocked { import, budget } => write!(
                f,
                "waited in a host call ({import}) until its {} deadline",
                millis(*budget)
            ),
            Fault::OutOfMemory { detail } => write!(f, "hit its memory limit: {detail}"),
            Fault::Trap { detail, .. } => write!(f, "trapped: {detail}"),
            Fault::Exited { code } => write!(f, "called exit({code})"),
            Fault::Reported { message } => write!(f, "returned an error: \"{message}\""),
            Fault::TooLarge { cap } => write!(
                f,
                "tried to hand the host more than {cap} bytes at once (a result, an error \
                 message or a log line)"
            ),
            Fault::WrongSize {
                got,
                expected,
                unit,
            } => write!(
                f,
                "returned {got} {unit} where {expected} were expected (or 0 to drop)"
            ),
            Fault::NotImplemented(what) => write!(f, "does not implement {what}"),
            Fault::BadBuffer { detail } => {
                write!(f, "announced a buffer the host cannot use: {detail}")
            }
            Fault::NoDataPath { interface, reason } => write!(
                f,
                "exports only {interface} (a -mapped world), whose buffers cannot be used: \
                 {reason}"
            ),
        }
    }
}

impl std::error::Error for Fault {}

/// `5.3 ms`, `2000 ms`.
pub fn millis(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1e3;
    if ms < 10.0 && ms.fract() != 0.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_name_the_cause_and_the_time() {
        let timeout = Fault::Timeout {
            budget: Duration::from_micros(5_333),
        };
        assert_eq!(timeout.to_string(), "ran past its 5.3 ms deadline");
        let blocked = Fault::Blocked {
            import: "wasi:io/poll.poll",
            budget: Duration::from_secs(2),
        };
        assert_eq!(
            blocked.to_string(),
            "waited in a host call (wasi:io/poll.poll) until its 2000 ms deadline"
        );
        assert_eq!(Fault::Exited { code: 3 }.to_string(), "called exit(3)");
        let reported = Fault::Reported {
            message: GuestText::new("bad\nerror: forged", 100),
        };
        assert_eq!(
            reported.to_string(),
            "returned an error: \"bad\\nerror: forged\""
        );
    }

    #[test]
    fn only_clean_refusals_keep_the_instance() {
        assert!(!Fault::NotImplemented("state").poisons_instance());
        assert!(Fault::Exited { code: 0 }.poisons_instance());
        assert!(Fault::TooLarge { cap: 1 }.poisons_instance());
        assert!(
            Fault::Blocked {
                import: "x",
                budget: Duration::ZERO
            }
            .held_the_stream()
        );
    }
}
