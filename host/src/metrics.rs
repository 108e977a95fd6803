//! Counters every stage updates and the report a run ends with. Its own
//! module, so the guest lifecycle and the pipeline both count into it
//! without importing each other.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Live counters, shared by the stages (relaxed atomics: each has one writer).
#[derive(Debug, Default)]
pub struct Counters {
    pub audio_blocks_in: AtomicU64,
    pub audio_frames_in: AtomicU64,
    pub audio_blocks_out: AtomicU64,
    pub audio_frames_out: AtomicU64,
    pub audio_dropped_by_guest: AtomicU64,
    pub audio_mapped: AtomicU64,
    pub audio_overruns: AtomicU64,
    pub audio_timestamp_regressions: AtomicU64,
    pub audio_last_end_ns: AtomicU64,
    pub video_frames_in: AtomicU64,
    pub video_frames_out: AtomicU64,
    pub video_skipped_by_fps_cap: AtomicU64,
    pub video_dropped_by_guest: AtomicU64,
    pub video_mapped: AtomicU64,
    pub video_overruns: AtomicU64,
    pub video_timestamp_regressions: AtomicU64,
    pub video_last_end_ns: AtomicU64,
    pub sync_forced_releases: AtomicU64,
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
}

/// What a run did, returned by [`crate::RunningStream::wait`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub audio_blocks_in: u64,
    pub audio_frames_in: u64,
    pub audio_blocks_out: u64,
    pub audio_frames_out: u64,
    pub audio_dropped_by_guest: u64,
    /// Blocks that went through the guest's own buffers (not as lists).
    pub audio_mapped: u64,
    pub audio_overruns: u64,
    pub audio_timestamp_regressions: u64,
    /// Timestamp of the end of the last audio block written.
    pub audio_end_ns: u64,
    pub video_frames_in: u64,
    pub video_frames_out: u64,
    pub video_skipped_by_fps_cap: u64,
    pub video_dropped_by_guest: u64,
    /// Frames that went through the guest's own buffers (not as lists).
    pub video_mapped: u64,
    pub video_overruns: u64,
    pub video_timestamp_regressions: u64,
    /// Timestamp of the end of the last video frame written.
    pub video_end_ns: u64,
    pub sync_forced_releases: u64,
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
            audio_blocks_in: self.audio_blocks_in.load(Relaxed),
            audio_frames_in: self.audio_frames_in.load(Relaxed),
            audio_blocks_out: self.audio_blocks_out.load(Relaxed),
            audio_frames_out: self.audio_frames_out.load(Relaxed),
            audio_dropped_by_guest: self.audio_dropped_by_guest.load(Relaxed),
            audio_mapped: self.audio_mapped.load(Relaxed),
            audio_overruns: self.audio_overruns.load(Relaxed),
            audio_timestamp_regressions: self.audio_timestamp_regressions.load(Relaxed),
            audio_end_ns: self.audio_last_end_ns.load(Relaxed),
            video_frames_in: self.video_frames_in.load(Relaxed),
            video_frames_out: self.video_frames_out.load(Relaxed),
            video_skipped_by_fps_cap: self.video_skipped_by_fps_cap.load(Relaxed),
            video_dropped_by_guest: self.video_dropped_by_guest.load(Relaxed),
            video_mapped: self.video_mapped.load(Relaxed),
            video_overruns: self.video_overruns.load(Relaxed),
            video_timestamp_regressions: self.video_timestamp_regressions.load(Relaxed),
            video_end_ns: self.video_last_end_ns.load(Relaxed),
            sync_forced_releases: self.sync_forced_releases.load(Relaxed),
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
        if self.audio_blocks_in > 0 {
            writeln!(
                f,
                "audio: {} blocks ({} frames) in, {} blocks ({} frames) out, {} dropped by guest, \
                 {} overruns; {} through mapped memory",
                self.audio_blocks_in,
                self.audio_frames_in,
                self.audio_blocks_out,
                self.audio_frames_out,
                self.audio_dropped_by_guest,
                self.audio_overruns,
                self.audio_mapped
            )?;
        }
        if self.video_frames_in > 0 {
            writeln!(
                f,
                "video: {} frames in, {} out, {} skipped by fps cap, {} dropped by guest, {} overruns; \
                 {} through mapped memory",
                self.video_frames_in,
                self.video_frames_out,
                self.video_skipped_by_fps_cap,
                self.video_dropped_by_guest,
                self.video_overruns,
                self.video_mapped
            )?;
        }
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
        if self.swaps + self.swap_failures > 0 {
            writeln!(
                f,
                "swaps: {} done, {} refused; state carried {} times, lost {} times",
                self.swaps, self.swap_failures, self.states_carried, self.states_lost
            )?;
        }
        if self.sync_forced_releases > 0 {
            writeln!(
                f,
                "sync: {} items released unsynced (a stream stalled)",
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
