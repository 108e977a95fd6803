//! Counters every stage updates and the report a run ends with. Its own
//! module, so the guest lifecycle and the pipeline both count into it
//! without importing each other.

pub mod histogram;
pub mod latency;

pub use histogram::{AtomicHistogram, Summary};
pub use latency::{LatencySnapshot, LatencySummary, Stage, StageLatencies};

use crate::media::StreamKind;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Live counters of one stream (relaxed atomics: each has one writer).
#[derive(Debug, Default)]
pub struct StreamCounters {
    /// Blocks or frames read from the input.
    pub items_in: AtomicU64,
    /// Audio frames or video frames read (equal to `items_in` for video).
    pub units_in: AtomicU64,
    pub items_out: AtomicU64,
    pub units_out: AtomicU64,
    /// Frames above the requested rate, skipped at the input (video).
    pub skipped_by_rate_cap: AtomicU64,
    pub dropped_by_guest: AtomicU64,
    /// Items that went through the guest's own buffers (not as lists).
    pub mapped: AtomicU64,
    /// Items dropped between stages because the next one was late (the
    /// oldest queued goes).
    pub overruns: AtomicU64,
    /// Items skipped before the guest because they were already too old
    /// to leave within the latency budget.
    pub late_drops: AtomicU64,
    /// Items an output missed because it was slower than the stream.
    pub output_drops: AtomicU64,
    /// Capture callbacks whose data did not fit the capture ring.
    pub capture_overruns: AtomicU64,
    /// Units of capture data lost in those callbacks.
    pub capture_units_lost: AtomicU64,
    /// Playback callbacks that found too little to play (silence filled).
    pub playback_underruns: AtomicU64,
    /// Times the playback ring held more than the latency budget and its
    /// oldest audio was dropped (with a fade).
    pub latency_drops: AtomicU64,
    /// Units dropped by those.
    pub latency_units_dropped: AtomicU64,
    /// The drift correction the adaptive resampler applies now, in parts
    /// per million.
    pub drift_correction_ppm: AtomicU64,
    pub timestamp_regressions: AtomicU64,
    /// How long after it is handed over the stream's real-time output
    /// plays an item, in steady state (its queue's target and the
    /// device's buffer); 0 when no output says.
    pub output_delay_ns: AtomicU64,
    /// The output device's own buffering, as it last said (audio).
    pub device_delay_ns: AtomicU64,
    /// Capture time of the end of the last item written.
    pub last_end_ns: AtomicU64,
    /// Capture → each stage (see [`Stage`]).
    pub latency: StageLatencies,
}

/// Live counters, shared by the stages.
#[derive(Debug, Default)]
pub struct Counters {
    pub audio: StreamCounters,
    pub video: StreamCounters,
    /// Items the sync stage let go later than `--max-unsynced` after they
    /// were due (a stream was slower than the latency budget allows).
    pub sync_forced_releases: AtomicU64,
    /// Items dropped at the start, captured before the other stream began.
    pub sync_trimmed: AtomicU64,
    /// The capture → perceived latency both streams are scheduled to, in
    /// microseconds.
    pub sync_latency_us: AtomicU64,
    pub fault_timeouts: AtomicU64,
    pub fault_blocked: AtomicU64,
    pub fault_memory: AtomicU64,
    pub fault_traps: AtomicU64,
    pub fault_exits: AtomicU64,
    pub fault_errors: AtomicU64,
    pub fault_wrong_size: AtomicU64,
    pub fault_too_large: AtomicU64,
    pub setup_faults: AtomicU64,
    pub restarts: AtomicU64,
    pub quarantines: AtomicU64,
    pub nonfinite_samples: AtomicU64,
    pub limited_samples: AtomicU64,
    pub swaps: AtomicU64,
    pub recycles: AtomicU64,
    pub swap_failures: AtomicU64,
    pub states_carried: AtomicU64,
    pub states_lost: AtomicU64,
    last_swap_error: std::sync::Mutex<Option<String>>,
}

impl Counters {
    /// Counts a refused swap and keeps its reason for the report.
    pub fn refuse_swap(&self, why: String) {
        self.swap_failures.fetch_add(1, Relaxed);
        *self
            .last_swap_error
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(why);
    }

    pub fn stream(&self, kind: StreamKind) -> &StreamCounters {
        match kind {
            StreamKind::Audio => &self.audio,
            StreamKind::Video => &self.video,
        }
    }
}

/// What one stream did; see [`StreamCounters`] for each field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamReport {
    pub items_in: u64,
    pub units_in: u64,
    pub items_out: u64,
    pub units_out: u64,
    pub skipped_by_rate_cap: u64,
    pub dropped_by_guest: u64,
    pub mapped: u64,
    pub overruns: u64,
    pub late_drops: u64,
    pub output_drops: u64,
    pub capture_overruns: u64,
    pub capture_units_lost: u64,
    pub playback_underruns: u64,
    pub latency_drops: u64,
    pub latency_units_dropped: u64,
    pub drift_correction_ppm: u64,
    pub timestamp_regressions: u64,
    /// The output device's own buffering, as it last said (audio).
    pub device_delay_ns: u64,
    /// Capture time of the end of the last item written.
    pub end_ns: u64,
    /// Capture → each stage, median/p99/max (real time only).
    pub latency: LatencySummary,
}

impl StreamCounters {
    pub fn report(&self) -> StreamReport {
        StreamReport {
            items_in: self.items_in.load(Relaxed),
            units_in: self.units_in.load(Relaxed),
            items_out: self.items_out.load(Relaxed),
            units_out: self.units_out.load(Relaxed),
            skipped_by_rate_cap: self.skipped_by_rate_cap.load(Relaxed),
            dropped_by_guest: self.dropped_by_guest.load(Relaxed),
            mapped: self.mapped.load(Relaxed),
            overruns: self.overruns.load(Relaxed),
            late_drops: self.late_drops.load(Relaxed),
            output_drops: self.output_drops.load(Relaxed),
            capture_overruns: self.capture_overruns.load(Relaxed),
            capture_units_lost: self.capture_units_lost.load(Relaxed),
            playback_underruns: self.playback_underruns.load(Relaxed),
            latency_drops: self.latency_drops.load(Relaxed),
            latency_units_dropped: self.latency_units_dropped.load(Relaxed),
            drift_correction_ppm: self.drift_correction_ppm.load(Relaxed),
            timestamp_regressions: self.timestamp_regressions.load(Relaxed),
            device_delay_ns: self.device_delay_ns.load(Relaxed),
            end_ns: self.last_end_ns.load(Relaxed),
            latency: self.latency.summary(),
        }
    }
}

impl StreamReport {
    /// Device glitches: capture overruns and playback underruns.
    pub fn xruns(&self) -> u64 {
        self.capture_overruns + self.playback_underruns
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, kind: StreamKind) -> fmt::Result {
        if self.items_in == 0 {
            return Ok(());
        }
        match kind {
            StreamKind::Audio => write!(
                f,
                "audio: {} blocks ({} frames) in, {} blocks ({} frames) out, ",
                self.items_in, self.units_in, self.items_out, self.units_out
            )?,
            StreamKind::Video => write!(
                f,
                "video: {} frames in, {} out, {} skipped by fps cap, ",
                self.items_in, self.items_out, self.skipped_by_rate_cap
            )?,
        }
        write!(
            f,
            "{} dropped by guest, {} overruns",
            self.dropped_by_guest, self.overruns
        )?;
        if self.late_drops > 0 {
            write!(
                f,
                ", {} skipped as too late for the latency budget",
                self.late_drops
            )?;
        }
        writeln!(f, "; {} through mapped memory", self.mapped)?;
        let device_events = self.xruns() + self.latency_drops + self.output_drops;
        match kind {
            StreamKind::Audio if device_events + self.latency.played.count > 0 => writeln!(
                f,
                "audio devices: {} capture overruns ({} frames lost), {} playback underruns, \
                 {} latency drops ({} frames), {} items missed by slow outputs; \
                 drift correction {} ppm",
                self.capture_overruns,
                self.capture_units_lost,
                self.playback_underruns,
                self.latency_drops,
                self.latency_units_dropped,
                self.output_drops,
                self.drift_correction_ppm
            )?,
            StreamKind::Video if device_events > 0 => writeln!(
                f,
                "video devices: {} frames dropped at capture (the pipeline was late, or \
                 undecodable), {} frames missed by outputs",
                self.capture_units_lost, self.output_drops
            )?,
            _ => {}
        }
        let latency = &self.latency;
        if latency.read.count > 0 {
            writeln!(
                f,
                "{} latency from capture, ms median/p99/max: {}; end to end {}; guest call {}",
                kind.name(),
                latency.stages_line(),
                latency.end_to_end(),
                latency.guest_call
            )?;
        }
        if latency.played.count > 0 {
            let played = latency.played;
            writeln!(
                f,
                "{} latency, capture to device output: median {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                kind.name(),
                played.median_us as f64 / 1e3,
                played.p99_us as f64 / 1e3,
                played.max_us as f64 / 1e3
            )?;
        }
        Ok(())
    }
}

/// What a run did, returned by [`crate::RunningStream::wait`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub audio: StreamReport,
    pub video: StreamReport,
    pub sync_forced_releases: u64,
    pub sync_trimmed: u64,
    pub sync_latency_us: u64,
    /// Calls interrupted at their deadline while running guest code.
    pub fault_timeouts: u64,
    /// Calls cut off at their deadline while waiting in a host call (a
    /// sleep, a poll).
    pub fault_blocked: u64,
    /// Traps after the memory cap refused a growth.
    pub fault_memory: u64,
    /// Other traps (unreachable, out of bounds, stack overflow, panics).
    pub fault_traps: u64,
    /// Calls that ended with the guest calling `exit`.
    pub fault_exits: u64,
    /// Errors the guest returned.
    pub fault_errors: u64,
    /// Outputs of the wrong size.
    pub fault_wrong_size: u64,
    /// Results, messages or snapshots over their size cap.
    pub fault_too_large: u64,
    /// Instantiations or `configure` calls that failed.
    pub setup_faults: u64,
    /// Fresh instances created after faults.
    pub restarts: u64,
    /// 1 when the guest ended the run quarantined.
    pub quarantines: u64,
    /// NaN/Inf samples replaced with silence.
    pub nonfinite_samples: u64,
    /// Samples the safety limiter brought back to ±1.0.
    pub limited_samples: u64,
    /// Guests swapped in or reconfigured while running.
    pub swaps: u64,
    /// Instances replaced because they held too much memory.
    pub recycles: u64,
    /// Swaps or reconfigurations refused (the running guest stayed).
    pub swap_failures: u64,
    /// Why the last one was refused.
    pub last_swap_error: Option<String>,
    /// Swaps that carried the old guest's state to the new one.
    pub states_carried: u64,
    /// Swaps whose state handoff failed, so the new guest started fresh.
    pub states_lost: u64,
}

impl Report {
    /// Every guest fault of the run, of any kind.
    pub fn faults(&self) -> u64 {
        self.fault_timeouts
            + self.fault_blocked
            + self.fault_memory
            + self.fault_traps
            + self.fault_exits
            + self.fault_errors
            + self.fault_wrong_size
            + self.fault_too_large
            + self.setup_faults
    }
}

impl Counters {
    pub fn report(&self) -> Report {
        Report {
            audio: self.audio.report(),
            video: self.video.report(),
            sync_forced_releases: self.sync_forced_releases.load(Relaxed),
            sync_trimmed: self.sync_trimmed.load(Relaxed),
            sync_latency_us: self.sync_latency_us.load(Relaxed),
            fault_timeouts: self.fault_timeouts.load(Relaxed),
            fault_blocked: self.fault_blocked.load(Relaxed),
            fault_memory: self.fault_memory.load(Relaxed),
            fault_traps: self.fault_traps.load(Relaxed),
            fault_exits: self.fault_exits.load(Relaxed),
            fault_errors: self.fault_errors.load(Relaxed),
            fault_wrong_size: self.fault_wrong_size.load(Relaxed),
            fault_too_large: self.fault_too_large.load(Relaxed),
            setup_faults: self.setup_faults.load(Relaxed),
            restarts: self.restarts.load(Relaxed),
            quarantines: self.quarantines.load(Relaxed),
            nonfinite_samples: self.nonfinite_samples.load(Relaxed),
            limited_samples: self.limited_samples.load(Relaxed),
            swaps: self.swaps.load(Relaxed),
            recycles: self.recycles.load(Relaxed),
            swap_failures: self.swap_failures.load(Relaxed),
            last_swap_error: self
                .last_swap_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            states_carried: self.states_carried.load(Relaxed),
            states_lost: self.states_lost.load(Relaxed),
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.audio.write(f, StreamKind::Audio)?;
        self.video.write(f, StreamKind::Video)?;
        if self.faults() > 0 || self.restarts > 0 || self.quarantines > 0 {
            writeln!(
                f,
                "guest faults: {} timeouts, {} blocked in host calls, {} memory, {} traps, {} exits, \
                 {} errors, {} wrong size, {} too large, {} setup; {} restarts{}",
                self.fault_timeouts,
                self.fault_blocked,
                self.fault_memory,
                self.fault_traps,
                self.fault_exits,
                self.fault_errors,
                self.fault_wrong_size,
                self.fault_too_large,
                self.setup_faults,
                self.restarts,
                if self.quarantines > 0 {
                    ", quarantined"
                } else {
                    ""
                }
            )?;
        }
        if self.nonfinite_samples + self.limited_samples > 0 {
            writeln!(
                f,
                "audio safety: {} NaN/Inf samples silenced, {} samples limited to full scale",
                self.nonfinite_samples, self.limited_samples
            )?;
        }
        if self.recycles > 0 {
            writeln!(
                f,
                "recycled: {} times, a fresh instance replacing one whose memory had grown past \
                 three quarters of its cap",
                self.recycles
            )?;
        }
        if self.swaps + self.swap_failures > 0 {
            writeln!(
                f,
                "swaps: {} done, {} refused; state carried {} times, lost {} times",
                self.swaps, self.swap_failures, self.states_carried, self.states_lost
            )?;
        }
        if self.sync_latency_us > 0 {
            writeln!(
                f,
                "sync: audio and video perceived {:.1} ms after capture; {} items dropped at the \
                 start (captured before the other stream began), {} released late (unsynced)",
                self.sync_latency_us as f64 / 1e3,
                self.sync_trimmed,
                self.sync_forced_releases
            )?;
        }
        Ok(())
    }
}

/// This process's peak resident memory since it started (`VmHWM`), where
/// the system says (Linux). Unlike `getrusage`, it does not count what a
/// parent held before it started this program.
pub fn peak_resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// CPU time this process has used so far: (user, system) seconds.
pub fn cpu_seconds() -> Option<(f64, f64)> {
    // SAFETY: getrusage fills a zeroed struct we own.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        (libc::getrusage(libc::RUSAGE_SELF, &raw mut usage) == 0).then_some(usage)
    }?;
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some((seconds(usage.ru_utime), seconds(usage.ru_stime)))
}
