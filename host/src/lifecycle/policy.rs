//! The rules the lifecycle applies: what replaces a faulted block, how long
//! each kind of call may run, and when a guest has cost the stream enough to
//! be quarantined.

use super::fault::{CallKind, Fault};
use std::collections::VecDeque;
use std::str::FromStr;
use std::time::Duration;

/// What the host sends on for a block whose guest call faulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FaultPolicy {
    /// The unprocessed input.
    #[default]
    Bypass,
    /// Silence, or a black frame.
    Mute,
    /// Video: the last good output frame (black before the first). Audio:
    /// silence, since repeating a block is a buzz.
    Hold,
    /// Stop the run with an error.
    Stop,
}

impl FromStr for FaultPolicy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "bypass" => Ok(Self::Bypass),
            "mute" => Ok(Self::Mute),
            "hold" => Ok(Self::Hold),
            "stop" => Ok(Self::Stop),
            other => Err(format!(
                "unknown fault policy `{other}`; expected bypass, mute, hold or stop"
            )),
        }
    }
}

/// How long each kind of call may run, all of it: guest code and any host
/// call it makes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Deadlines {
    pub audio: Duration,
    pub video: Duration,
    /// Instantiation, `configure`, `prepare`: at start, and on the control
    /// thread for restarts and swaps (never on the real-time thread).
    pub setup: Duration,
    /// `snapshot` and `restore`: a swap interrupts the stream between two
    /// blocks, so they get the budget of the streams the run serves.
    pub state: Duration,
}

impl Deadlines {
    pub fn for_call(&self, kind: CallKind) -> Duration {
        match kind {
            CallKind::Instantiate | CallKind::Configure | CallKind::Prepare => self.setup,
            CallKind::Audio => self.audio,
            CallKind::Video => self.video,
            CallKind::Snapshot | CallKind::Restore => self.state,
        }
    }
}

/// Faults within [`BURST_WINDOW`] of stream time that quarantine a guest.
pub const BURST_FAULTS: usize = 5;
pub const BURST_WINDOW: Duration = Duration::from_secs(10);

/// The long memory: every fault adds 1 to a score (2 when it held the
/// stream for its whole deadline: a timeout, a blocked host call), the
/// score halves every [`SCORE_HALF_LIFE`] of stream time, and a score of
/// [`SCORE_LIMIT`] quarantines. So three stalls in a row quarantine, faults
/// that come seconds apart add up (a guest stalling a live stream every
/// 3 s is out after its 3rd stall, one trapping every 3 s after its 7th),
/// while a rare fault every minute or so only costs a restart.
pub const SCORE_HALF_LIFE: Duration = Duration::from_secs(30);
pub const SCORE_LIMIT: f64 = 5.5;

/// First restart delay after a fault; doubles per fault in the burst window.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(10);
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// What to do after a fault.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Carry on; a new instance (if one is needed) may take over from this
    /// stream time on.
    Retry { not_before_ns: u64 },
    /// Stop calling the guest for the rest of the run, and why.
    Quarantine { why: String },
}

/// A guest's fault history, in stream time (media time offline, capture
/// time live), so the same run decides the same way every time.
#[derive(Debug)]
pub struct FaultLedger {
    burst: VecDeque<u64>,
    score: f64,
    scored_at_ns: u64,
    faults: u64,
    held: u64,
    first_ns: Option<u64>,
}

impl Default for FaultLedger {
    fn default() -> Self {
        Self {
            // Never grows past this: recording a fault allocates nothing.
            burst: VecDeque::with_capacity(BURST_FAULTS + 1),
            score: 0.0,
            scored_at_ns: 0,
            faults: 0,
            held: 0,
            first_ns: None,
        }
    }
}

impl FaultLedger {
    /// Records a fault at stream time `at_ns` and decides.
    pub fn record(&mut self, at_ns: u64, fault: &Fault) -> Verdict {
        let window = BURST_WINDOW.as_nanos() as u64;
        self.burst.push_back(at_ns);
        while self
            .burst
            .front()
            .is_some_and(|&t| at_ns.saturating_sub(t) > window)
            || self.burst.len() > BURST_FAULTS
        {
            self.burst.pop_front();
        }
        self.score = self.score_at(at_ns) + if fault.held_the_stream() { 2.0 } else { 1.0 };
        self.scored_at_ns = self.scored_at_ns.max(at_ns);
        self.faults += 1;
        self.held += u64::from(fault.held_the_stream());
        let first = *self.first_ns.get_or_insert(at_ns);

        if self.burst.len() >= BURST_FAULTS {
            return Verdict::Quarantine {
                why: format!("{BURST_FAULTS} faults within {} s", BURST_WINDOW.as_secs()),
            };
        }
        if self.score >= SCORE_LIMIT {
            return Verdict::Quarantine {
                why: format!(
                    "{} faults in {:.1} s of stream ({} of them held the stream for their whole \
                     deadline): they cost the stream too much time",
                    self.faults,
                    at_ns.saturating_sub(first) as f64 / 1e9,
                    self.held
                ),
            };
        }
        let doublings = self.burst.len().saturating_sub(1) as u32;
        let backoff = (FIRST_BACKOFF * 2u32.pow(doublings)).min(MAX_BACKOFF);
        Verdict::Retry {
            not_before_ns: at_ns + backoff.as_nanos() as u64,
        }
    }

    /// The score decayed to stream time `at_ns`.
    fn score_at(&self, at_ns: u64) -> f64 {
        let elapsed = at_ns.saturating_sub(self.scored_at_ns) as f64;
        self.score * 0.5f64.powf(elapsed / SCORE_HALF_LIFE.as_nanos() as f64)
    }

    /// Forgets everything: a swapped-in guest starts with a clean record.
    pub fn clear(&mut self) {
        self.burst.clear();
        self.score = 0.0;
        self.faults = 0;
        self.held = 0;
        self.first_ns = None;
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    pub(in crate::lifecycle) fn trap() -> Fault {
        Fault::Trap {
            detail: "unreachable".into(),
            backtrace: None,
        }
    }

    pub(in crate::lifecycle) fn stall() -> Fault {
        Fault::Blocked {
            import: "wasi:io/poll.poll",
            budget: Duration::from_millis(5),
        }
    }

    #[test]
    fn five_quick_faults_quarantine_with_growing_backoff() {
        let mut ledger = FaultLedger::default();
        let mut backoffs = Vec::new();
        for i in 0..4 {
            let at = i * SECOND / 10;
            match ledger.record(at, &trap()) {
                Verdict::Retry { not_before_ns } => backoffs.push(not_before_ns - at),
                other => panic!("fault {i}: {other:?}"),
            }
        }
        assert_eq!(backoffs, [10, 20, 40, 80].map(|ms| ms * 1_000_000));
        assert!(matches!(
            ledger.record(SECOND / 2, &trap()),
            Verdict::Quarantine { why } if why == "5 faults within 10 s"
        ));
    }

    #[test]
    fn stalls_seconds_apart_add_up() {
        // Far outside the burst window, but each held the stream.
        let mut ledger = FaultLedger::default();
        let verdicts: Vec<Verdict> = (1..=3)
            .map(|i| ledger.record(i * 3 * SECOND, &stall()))
            .collect();
        assert!(matches!(verdicts[1], Verdict::Retry { .. }), "{verdicts:?}");
        let Verdict::Quarantine { why } = &verdicts[2] else {
            panic!("{verdicts:?}");
        };
        assert!(
            why.starts_with("3 faults in 6.0 s of stream (3 of them held"),
            "{why}"
        );
    }

    #[test]
    fn rare_faults_only_cost_restarts() {
        let mut ledger = FaultLedger::default();
        for i in 1..=100 {
            let verdict = ledger.record(i * 60 * SECOND, &stall());
            assert!(matches!(verdict, Verdict::Retry { .. }), "fault {i}");
        }
    }

    #[test]
    fn traps_every_few_seconds_are_quarantined_later_than_stalls() {
        let mut ledger = FaultLedger::default();
        let quarantined_at = (1..=20)
            .position(|i| {
                matches!(
                    ledger.record(i * 3 * SECOND, &trap()),
                    Verdict::Quarantine { .. }
                )
            })
            .map(|i| i + 1);
        assert_eq!(quarantined_at, Some(7));
    }

    #[test]
    fn clearing_starts_a_clean_record() {
        let mut ledger = FaultLedger::default();
        for i in 0..4 {
            ledger.record(i, &trap());
        }
        ledger.clear();
        assert!(matches!(ledger.record(5, &trap()), Verdict::Retry { .. }));
    }

    #[test]
    fn each_call_kind_has_its_deadline() {
        let ms = Duration::from_millis;
        let deadlines = Deadlines {
            audio: ms(5),
            video: ms(33),
            setup: ms(2000),
            state: ms(5),
        };
        assert_eq!(deadlines.for_call(CallKind::Snapshot), ms(5));
        assert_eq!(deadlines.for_call(CallKind::Prepare), ms(2000));
        assert_eq!(deadlines.for_call(CallKind::Video), ms(33));
    }

    #[test]
    fn policies_parse_and_reject_unknown_names() {
        assert_eq!("hold".parse::<FaultPolicy>().unwrap(), FaultPolicy::Hold);
        let err = "ignore".parse::<FaultPolicy>().unwrap_err();
        assert!(err.contains("bypass, mute, hold or stop"), "{err}");
    }
}
