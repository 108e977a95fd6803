//! The limits a guest runs under: a deadline per call (epoch interruption,
//! driven by a ticker thread), a memory cap, and what happens to a block
//! when the guest faults.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use wasmtime::Engine;

/// One epoch tick. Deadlines are whole ticks, so this is their resolution.
pub const TICK: Duration = Duration::from_millis(1);

/// Default cap on a guest's linear memory.
pub const DEFAULT_MEMORY_LIMIT: usize = 256 << 20;

/// Deadline for a call when no real-time budget applies (offline runs):
/// protects against hangs, not against slowness.
pub const OFFLINE_DEADLINE: Duration = Duration::from_secs(2);

/// Shortest deadline ever given to `configure`.
pub const SETUP_DEADLINE: Duration = Duration::from_secs(2);

/// Faults within [`FAULT_WINDOW`] that get a guest quarantined.
pub const QUARANTINE_AFTER: usize = 5;
pub const FAULT_WINDOW: Duration = Duration::from_secs(10);

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

/// Capabilities given to a guest on purpose. Empty by default: nothing is
/// granted unless the user names it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Host directories preopened read-only, with the path the guest sees.
    pub dirs: Vec<(std::path::PathBuf, String)>,
    /// Environment variables copied from the host, with their values.
    pub env: Vec<(String, String)>,
}

impl Grants {
    pub fn is_empty(&self) -> bool {
        self.dirs.is_empty() && self.env.is_empty()
    }

    /// Adds `HOST[:GUEST]` as a read-only preopened directory.
    ///
    /// # Errors
    /// When the host path is not a directory.
    pub fn grant_dir(&mut self, spec: &str) -> Result<(), String> {
        let (host, guest) = match spec.split_once(':') {
            Some((host, guest)) => (host, guest.to_string()),
            None => (spec, spec.to_string()),
        };
        if !std::path::Path::new(host).is_dir() {
            return Err(format!("--grant-dir {spec}: {host} is not a directory"));
        }
        self.dirs.push((host.into(), guest));
        Ok(())
    }

    /// Copies the host's value of `key` into the guest's environment.
    ///
    /// # Errors
    /// When the host has no such variable.
    pub fn grant_env(&mut self, key: &str) -> Result<(), String> {
        let value = std::env::var(key)
            .map_err(|_| format!("--grant-env {key}: the variable is not set"))?;
        self.env.push((key.to_string(), value));
        Ok(())
    }

    /// One line for the start-up summary (values of variables not shown).
    pub fn describe(&self) -> String {
        if self.is_empty() {
            return "nothing granted (no files, network or environment)".to_string();
        }
        let mut parts: Vec<String> = self
            .dirs
            .iter()
            .map(|(host, guest)| format!("read-only dir {} as {guest}", host.display()))
            .collect();
        parts.extend(self.env.iter().map(|(key, _)| format!("env {key}")));
        format!("GRANTED: {}; no network", parts.join(", "))
    }
}

/// The sandbox settings of one run.
#[derive(Debug, Clone)]
pub struct SandboxPolicy {
    /// Explicit capabilities (none by default).
    pub grants: Grants,
    /// No epoch instrumentation: no deadlines, full speed. For the author's
    /// own code only.
    pub trusted: bool,
    /// Cap on each linear memory (and on their total), bytes.
    pub memory_limit: usize,
    /// Per-call deadline; `None` derives it from the stream (see
    /// `pipeline`).
    pub deadline: Option<Duration>,
    pub on_fault: FaultPolicy,
    /// Keep audio within ±1.0 full scale after the guest.
    pub limiter: bool,
    /// Whether frames may go through the guest's own buffers.
    pub data_path: super::DataPath,
}

impl Default for SandboxPolicy {
    fn default() -> Self {
        Self {
            grants: Grants::default(),
            trusted: false,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            deadline: None,
            on_fault: FaultPolicy::Bypass,
            limiter: true,
            data_path: super::DataPath::Auto,
        }
    }
}

/// Ticks to allow for a budget: rounded up, plus one because the current
/// tick may be about to end.
pub fn ticks_for(budget: Duration) -> u64 {
    budget.as_micros().div_ceil(TICK.as_micros()) as u64 + 1
}

/// Advances the engine's epoch every [`TICK`] until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// # Errors
    /// When the thread cannot be spawned.
    pub fn start(engine: Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sandstream-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Caps linear memory and tables, and remembers whether it refused a
/// growth, so an out-of-memory trap can be told apart from other traps.
#[derive(Debug)]
pub struct MemoryCap {
    limit: usize,
    pub denied: bool,
}

impl MemoryCap {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            denied: false,
        }
    }
}

/// Table entries allowed: far more than any real guest's function table.
const TABLE_ELEMENTS: usize = 1 << 20;

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.limit;
        self.denied |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= TABLE_ELEMENTS;
        self.denied |= !allowed;
        Ok(allowed)
    }

    fn instances(&self) -> usize {
        // A component is a handful of core instances; this bounds nesting.
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        // Components from wit-component have one or two memories.
        4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up_to_whole_ticks_plus_one() {
        assert_eq!(ticks_for(Duration::from_micros(5_300)), 7);
        assert_eq!(ticks_for(Duration::from_millis(33)), 34);
        assert_eq!(ticks_for(Duration::ZERO), 1);
    }

    #[test]
    fn policies_parse_and_reject_unknown_names() {
        assert_eq!("hold".parse::<FaultPolicy>().unwrap(), FaultPolicy::Hold);
        let err = "ignore".parse::<FaultPolicy>().unwrap_err();
        assert!(err.contains("bypass, mute, hold or stop"), "{err}");
    }
}
