//! The limits a guest runs under, and what enforces them: a deadline per
//! call (epoch interruption, driven by a ticker thread, plus a cut-off for
//! host calls that wait — see `wasi`), one memory cap for everything an
//! instance holds, caps on what it hands the host, and the capabilities it
//! is granted (none by default). Every bound is listed in docs/SECURITY.md.

pub use crate::lifecycle::FaultPolicy;

use crate::clock;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use wasmtime::Engine;

/// One epoch tick. Deadlines are whole ticks, so this is their resolution.
pub const TICK: Duration = Duration::from_millis(1);

/// Default cap on everything one guest instance holds: its linear
/// memories and tables together.
pub const DEFAULT_MEMORY_LIMIT: usize = 256 << 20;

/// Deadline for a call when no real-time budget applies (offline runs):
/// protects against hangs, not against slowness.
pub const OFFLINE_DEADLINE: Duration = Duration::from_secs(2);

/// Shortest deadline ever given to instantiation, `configure` and
/// `prepare`.
pub const SETUP_DEADLINE: Duration = Duration::from_secs(2);

/// Largest guest file read by default (the JavaScript and Python examples
/// are 12–18 MB).
pub const DEFAULT_MAX_GUEST_BYTES: u64 = 256 << 20;

/// Longest a guest may take to compile by default (a Python guest takes
/// ~7 s on the project's 2-core machines).
pub const DEFAULT_COMPILE_TIMEOUT: Duration = Duration::from_secs(120);

/// Bytes a guest may hand the host in one transfer besides its frames: an
/// error message, a log message, a write to stdout. Checked by wasmtime
/// before anything is copied (its "hostcall fuel").
pub const TEXT_TRANSFER_BYTES: usize = 64 << 10;

/// Resources (pollables, streams...) a guest may hold at once.
pub const MAX_HANDLES: usize = 4096;

/// Largest `wasi:random` request: the host fills the whole request before
/// the guest sees a byte of it.
pub const MAX_RANDOM_BYTES: u64 = 64 << 10;

/// Memory charged per table element (a table is an array of pointers).
const TABLE_ELEMENT_BYTES: usize = 8;

/// Table entries allowed in one table: far more than any real guest's
/// function table.
const TABLE_ELEMENTS: usize = 1 << 20;

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

/// Bounds on reading and compiling a guest file, checked before any of
/// its code runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadLimits {
    /// Largest file accepted.
    pub max_bytes: u64,
    /// Longest compilation accepted.
    pub compile_timeout: Duration,
}

impl Default for LoadLimits {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_GUEST_BYTES,
            compile_timeout: DEFAULT_COMPILE_TIMEOUT,
        }
    }
}

/// The sandbox settings of one run.
#[derive(Debug, Clone)]
pub struct SandboxPolicy {
    /// Explicit capabilities (none by default).
    pub grants: Grants,
    /// No epoch instrumentation: guest code has no deadline, full speed.
    /// For the author's own code only.
    pub trusted: bool,
    /// Cap on everything an instance holds (all linear memories and
    /// tables together), bytes.
    pub memory_limit: usize,
    /// Percent of `memory_limit` at which an instance that has grown to it
    /// is replaced by a fresh one (0: never). See `lifecycle::Options`.
    pub recycle_at_percent: u8,
    /// Per-call deadline; `None` derives it from the stream (see
    /// `pipeline`).
    pub deadline: Option<Duration>,
    pub on_fault: FaultPolicy,
    /// Keep audio within ±1.0 full scale after the guest.
    pub limiter: bool,
    /// Whether frames may go through the guest's own buffers.
    pub data_path: super::DataPath,
    /// Bounds on the guest file and its compilation.
    pub load: LoadLimits,
}

impl Default for SandboxPolicy {
    fn default() -> Self {
        Self {
            grants: Grants::default(),
            trusted: false,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            recycle_at_percent: 75,
            deadline: None,
            on_fault: FaultPolicy::Bypass,
            limiter: true,
            data_path: super::DataPath::Auto,
            load: LoadLimits::default(),
        }
    }
}

/// Ticks to allow for a budget: rounded up, plus one because the current
/// tick may be about to end.
pub fn ticks_for(budget: Duration) -> u64 {
    let ticks = budget.as_micros().div_ceil(TICK.as_micros());
    ticks.min(u128::from(u64::MAX / 4)) as u64 + 1
}

/// Tickers running in this process, and the clock reading of the latest
/// tick: a call's deadline for host waits is taken from it, which costs no
/// clock read per call (a read is ~35 ns, a tenth of an audio call).
static TICKERS: AtomicUsize = AtomicUsize::new(0);
static LAST_TICK_NS: AtomicU64 = AtomicU64::new(0);

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
        LAST_TICK_NS.fetch_max(clock::now_ns(), Ordering::Relaxed);
        TICKERS.fetch_add(1, Ordering::Relaxed);
        let thread = std::thread::Builder::new()
            .name("sandstream-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    LAST_TICK_NS.fetch_max(clock::now_ns(), Ordering::Relaxed);
                    engine.increment_epoch();
                }
            });
        match thread {
            Ok(thread) => Ok(Self {
                stop,
                thread: Some(thread),
            }),
            Err(err) => {
                TICKERS.fetch_sub(1, Ordering::Relaxed);
                Err(err)
            }
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        TICKERS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A call's time budget, with what arming a call needs worked out once:
/// budgets change rarely, calls are armed thousands of times a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    duration: Duration,
    ticks: u64,
    nanos: u64,
}

impl Budget {
    pub fn new(duration: Duration) -> Self {
        Self {
            duration,
            ticks: ticks_for(duration),
            nanos: duration.as_nanos().min(u128::from(u64::MAX / 4)) as u64,
        }
    }

    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Epoch ticks to allow (see [`ticks_for`]).
    pub fn ticks(&self) -> u64 {
        self.ticks
    }
}

/// Until when host calls of the current guest call may wait.
#[derive(Debug, Clone, Copy)]
pub struct WaitLimit {
    /// On the host clock; `None` when no ticker runs (then each wait may
    /// take the whole budget).
    until_ns: Option<u64>,
    budget: Duration,
}

impl WaitLimit {
    /// For a call that starts now and may take `budget`.
    pub fn starting_now(budget: Budget) -> Self {
        let ticking = TICKERS.load(Ordering::Relaxed) > 0;
        // The last tick may be up to a tick old: allow one more.
        let until_ns = ticking
            .then(|| LAST_TICK_NS.load(Ordering::Relaxed) + budget.nanos + TICK.as_nanos() as u64);
        Self {
            until_ns,
            budget: budget.duration,
        }
    }

    /// How much longer a host call may wait.
    pub fn remaining(&self) -> Duration {
        match self.until_ns {
            Some(until) => Duration::from_nanos(until.saturating_sub(clock::now_ns())),
            None => self.budget,
        }
    }
}

/// One cap for everything an instance holds — every linear memory and
/// every table, added up, at instantiation and on growth — and the counts
/// of instances, memories and tables. Remembers whether it refused
/// something, so an out-of-memory trap can be told apart from other traps.
#[derive(Debug)]
pub struct InstanceLimits {
    limit: usize,
    /// Bytes of memories and tables granted so far. A growth that is
    /// granted and then fails stays counted: wasmtime does not say which
    /// growth failed, and counting too much is the safe side.
    used: usize,
    pub denied: bool,
}

impl InstanceLimits {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            used: 0,
            denied: false,
        }
    }

    /// Bytes of memories and tables the instance holds now.
    pub fn used(&self) -> usize {
        self.used
    }

    fn grant(&mut self, bytes: usize) -> bool {
        let allowed = self
            .used
            .checked_add(bytes)
            .is_some_and(|total| total <= self.limit);
        if allowed {
            self.used += bytes;
        } else {
            self.denied = true;
        }
        allowed
    }
}

impl wasmtime::ResourceLimiter for InstanceLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grant(desired.saturating_sub(current)))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > TABLE_ELEMENTS {
            self.denied = true;
            return Ok(false);
        }
        let elements = desired.saturating_sub(current);
        Ok(self.grant(elements.saturating_mul(TABLE_ELEMENT_BYTES)))
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
    use wasmtime::ResourceLimiter;

    #[test]
    fn deadlines_round_up_to_whole_ticks_plus_one() {
        assert_eq!(ticks_for(Duration::from_micros(5_300)), 7);
        assert_eq!(ticks_for(Duration::from_millis(33)), 34);
        assert_eq!(ticks_for(Duration::ZERO), 1);
        assert_eq!(ticks_for(Duration::MAX), u64::MAX / 4 + 1, "saturates");
    }

    #[test]
    fn the_cap_covers_all_memories_and_tables_together() {
        let mib = 1 << 20;
        let mut limits = InstanceLimits::new(10 * mib);
        assert!(limits.memory_growing(0, 4 * mib, None).unwrap());
        assert!(
            limits.memory_growing(0, 4 * mib, None).unwrap(),
            "a second memory"
        );
        assert!(!limits.memory_growing(4 * mib, 6 * mib + 1, None).unwrap());
        assert!(limits.denied);
        // 2 MiB left: a table of 256 Ki pointers takes it all.
        assert!(limits.table_growing(0, 256 << 10, None).unwrap());
        assert!(!limits.memory_growing(0, 64 << 10, None).unwrap());
        assert_eq!(limits.used(), 10 * mib);
        assert!(!limits.table_growing(0, TABLE_ELEMENTS + 1, None).unwrap());
    }

    #[test]
    fn without_a_ticker_a_wait_may_take_the_whole_budget() {
        if TICKERS.load(Ordering::Relaxed) == 0 {
            let limit = WaitLimit::starting_now(Budget::new(Duration::from_millis(7)));
            assert_eq!(limit.remaining(), Duration::from_millis(7));
        }
    }
}
