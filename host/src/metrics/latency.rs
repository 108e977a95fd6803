//! Where a block or frame's time goes, stage by stage: every stage records
//! how long after capture the item reached it, into histograms allocated
//! once per run (real time only: offline timestamps are media time).

use super::histogram::{AtomicHistogram, Snapshot, Summary};
use crate::clock;
use serde::Serialize;

/// The points of an item's way through the host, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Taken out of the input (a device's ring, a camera's queue).
    Read,
    /// Handed to the guest.
    GuestStart,
    /// Back from the guest.
    GuestEnd,
    /// Let go by the A/V sync stage (runs with both streams only).
    Sync,
    /// Handed to an output (a device's ring, a virtual camera).
    Output,
    /// Played or shown, as the output says (its own queue and the
    /// device's buffer after the hand-over): what the user perceives.
    Played,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Read,
        Stage::GuestStart,
        Stage::GuestEnd,
        Stage::Sync,
        Stage::Output,
        Stage::Played,
    ];

    /// The name used in the report and in `--stats-json`.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Read => "read",
            Stage::GuestStart => "guest_start",
            Stage::GuestEnd => "guest_end",
            Stage::Sync => "sync",
            Stage::Output => "output",
            Stage::Played => "played",
        }
    }
}

/// One stream's latency histograms, shared by its stages.
#[derive(Debug, Default)]
pub struct StageLatencies {
    stages: [AtomicHistogram; 6],
    /// How long each guest call took (not from capture).
    pub guest_call: AtomicHistogram,
}

impl StageLatencies {
    /// Records that an item captured at `captured_ns` reached `stage` at
    /// `now_ns`.
    pub fn record_at(&self, stage: Stage, captured_ns: u64, now_ns: u64) {
        self.stages[stage as usize].record_ns(now_ns.saturating_sub(captured_ns));
    }

    /// Records that an item captured at `captured_ns` reaches `stage` now.
    pub fn record(&self, stage: Stage, captured_ns: u64) {
        self.record_at(stage, captured_ns, clock::now_ns());
    }

    pub fn stage(&self, stage: Stage) -> &AtomicHistogram {
        &self.stages[stage as usize]
    }

    /// Copies of every histogram, for differences over time.
    pub fn snapshot(&self) -> LatencySnapshot {
        LatencySnapshot {
            stages: Stage::ALL.map(|s| self.stage(s).snapshot()),
            guest_call: self.guest_call.snapshot(),
        }
    }

    pub fn summary(&self) -> LatencySummary {
        self.snapshot().summary()
    }
}

/// Every histogram of a stream at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatencySnapshot {
    stages: [Snapshot; 6],
    guest_call: Snapshot,
}

impl LatencySnapshot {
    /// What was recorded between `earlier` and this one.
    pub fn since(&self, earlier: &LatencySnapshot) -> LatencySnapshot {
        LatencySnapshot {
            stages: std::array::from_fn(|i| self.stages[i].since(&earlier.stages[i])),
            guest_call: self.guest_call.since(&earlier.guest_call),
        }
    }

    pub fn stage(&self, stage: Stage) -> &Snapshot {
        &self.stages[stage as usize]
    }

    pub fn guest_call(&self) -> &Snapshot {
        &self.guest_call
    }

    /// The histograms as a table: one row per stage items reached, with
    /// percentiles in milliseconds (the `stats` live command).
    pub fn table(&self) -> String {
        let ms = |us: u64| format!("{:.1}", us as f64 / 1e3);
        let mut lines = vec![format!(
            "  {:<12} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "from capture", "count", "p50", "p90", "p99", "p99.9", "max"
        )];
        let rows = Stage::ALL
            .iter()
            .map(|&s| (s.name(), self.stage(s)))
            .chain([("guest call", &self.guest_call)]);
        for (name, histogram) in rows {
            if histogram.count() == 0 {
                continue;
            }
            lines.push(format!(
                "  {:<12} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
                name,
                histogram.count(),
                ms(histogram.quantile(0.5)),
                ms(histogram.quantile(0.9)),
                ms(histogram.quantile(0.99)),
                ms(histogram.quantile(0.999)),
                ms(histogram.summary().max_us)
            ));
        }
        lines.join("\n") + "\n"
    }

    pub fn summary(&self) -> LatencySummary {
        let at = |stage: Stage| self.stages[stage as usize].summary();
        LatencySummary {
            read: at(Stage::Read),
            guest_start: at(Stage::GuestStart),
            guest_end: at(Stage::GuestEnd),
            sync: at(Stage::Sync),
            output: at(Stage::Output),
            played: at(Stage::Played),
            guest_call: self.guest_call.summary(),
        }
    }
}

/// Capture → each stage, and the guest's time per call; a stage no item
/// reached has a count of 0. Field names are those of `--stats-json`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LatencySummary {
    pub read: Summary,
    pub guest_start: Summary,
    pub guest_end: Summary,
    pub sync: Summary,
    pub output: Summary,
    pub played: Summary,
    pub guest_call: Summary,
}

impl LatencySummary {
    pub fn stage(&self, stage: Stage) -> Summary {
        match stage {
            Stage::Read => self.read,
            Stage::GuestStart => self.guest_start,
            Stage::GuestEnd => self.guest_end,
            Stage::Sync => self.sync,
            Stage::Output => self.output,
            Stage::Played => self.played,
        }
    }

    /// Capture → the last stage items reached: played where an output
    /// says when it plays, else handed to the output.
    pub fn end_to_end(&self) -> Summary {
        Stage::ALL
            .iter()
            .rev()
            .map(|&s| self.stage(s))
            .find(|s| s.count > 0)
            .unwrap_or_default()
    }

    /// `read 0.1/0.3/0.9, guest_start …` (ms, median/p99/max) for the
    /// stages items reached.
    pub fn stages_line(&self) -> String {
        Stage::ALL
            .iter()
            .map(|&s| (s.name(), self.stage(s)))
            .filter(|(_, summary)| summary.count > 0)
            .map(|(name, summary)| format!("{name} {summary}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
