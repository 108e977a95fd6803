//! Live observability while a run goes: a status line on a terminal
//! (redrawn 4 times a second) and, with `--stats-json`, one JSON object
//! per second. Both show the last second's numbers, from the run's own
//! counters and histograms; docs/STATS.md documents every field.

use anyhow::Context as _;
use sandstream::media::StreamKind;
use sandstream::metrics::{LatencySnapshot, Report, StreamReport, Summary};
use sandstream::pipeline::StatsHandle;
use serde::Serialize;
use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_millis(250);
/// Ticks per JSON line and per window: one second.
const TICKS_PER_SECOND: usize = 4;

/// Set while a status line is on screen: other text clears it first.
static STATUS_LINE_SHOWN: AtomicBool = AtomicBool::new(false);

/// Standard error for log lines and answers to live commands: clears the
/// status line first, if one is shown, so text never lands in the middle
/// of it (the next tick draws it again below).
pub struct StderrUnderStatus;

impl Write for StderrUnderStatus {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut err = std::io::stderr().lock();
        if STATUS_LINE_SHOWN.swap(false, Relaxed) {
            err.write_all(b"\r\x1b[2K")?;
        }
        err.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Where the monitor writes.
pub struct MonitorOptions {
    pub status_line: bool,
    pub json: Option<Box<dyn Write + Send>>,
    pub audio: bool,
    pub video: bool,
}

/// Where `--stats-json PATH` writes: standard output for `-`, else the
/// file, created or (`append`) added to.
pub fn json_output(path: &Path, append: bool) -> anyhow::Result<Box<dyn Write + Send>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(std::io::stdout()));
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)
        .with_context(|| format!("cannot write --stats-json {}", path.display()))?;
    Ok(Box::new(std::io::LineWriter::new(file)))
}

/// The monitor's thread; stop it before printing the final report.
pub struct Monitor {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Monitor {
    pub fn start(stats: StatsHandle, options: MonitorOptions) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sandstream-monitor".into())
            .spawn(move || watch(&stats, options, &flag))?;
        Ok(Self { stop, thread })
    }

    /// Ends the monitor and clears its status line.
    pub fn stop(self) {
        self.stop.store(true, Relaxed);
        let _ = self.thread.join();
    }
}

/// One moment of the run, kept to make one-second windows.
struct Moment {
    audio: LatencySnapshot,
    video: LatencySnapshot,
}

fn watch(stats: &StatsHandle, mut options: MonitorOptions, stop: &AtomicBool) {
    let started = Instant::now();
    let mut history: VecDeque<Moment> = VecDeque::with_capacity(TICKS_PER_SECOND + 1);
    let mut ticks = 0usize;
    while !stop.load(Relaxed) {
        std::thread::sleep(TICK);
        ticks += 1;
        let now = Moment {
            audio: stats.latency(StreamKind::Audio),
            video: stats.latency(StreamKind::Video),
        };
        let window_start = history.front().unwrap_or(&now);
        let line = StatsLine::new(
            started.elapsed(),
            &stats.report(),
            (
                options.audio.then(|| now.audio.since(&window_start.audio)),
                options.video.then(|| now.video.since(&window_start.video)),
            ),
        );
        if options.status_line {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{}", line.status());
            let _ = err.flush();
            STATUS_LINE_SHOWN.store(true, Relaxed);
        }
        if ticks.is_multiple_of(TICKS_PER_SECOND)
            && let Some(out) = &mut options.json
            && serde_json::to_writer(&mut *out, &line)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out))
                .and_then(|()| out.flush())
                .is_err()
        {
            tracing::warn!("--stats-json: cannot write: stats are no longer written");
            options.json = None;
        }
        history.push_back(now);
        if history.len() > TICKS_PER_SECOND {
            history.pop_front();
        }
    }
    if STATUS_LINE_SHOWN.swap(false, Relaxed) {
        eprint!("\r\x1b[2K");
    }
}

/// Median, 99th percentile and maximum, in milliseconds.
#[derive(Debug, Serialize)]
struct Millis {
    median: f64,
    p99: f64,
    max: f64,
}

impl From<Summary> for Millis {
    fn from(s: Summary) -> Self {
        let ms = |us: u64| us as f64 / 1e3;
        Self {
            median: ms(s.median_us),
            p99: ms(s.p99_us),
            max: ms(s.max_us),
        }
    }
}

/// Capture → each stage over the last second (stages items did not
/// reach are left out).
#[derive(Debug, Serialize)]
struct StageMillis {
    #[serde(skip_serializing_if = "Option::is_none")]
    read: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    guest_start: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    guest_end: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sync: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    played: Option<Millis>,
}

/// One stream: totals since the start, latencies over the last second.
#[derive(Debug, Serialize)]
struct StreamStats {
    items_in: u64,
    items_out: u64,
    /// Capture overruns and playback underruns.
    xruns: u64,
    capture_overruns: u64,
    playback_underruns: u64,
    /// Dropped between stages because the next was late.
    overruns: u64,
    /// Skipped before the guest: too old for the budget.
    late_drops: u64,
    /// Dropped by the playback ring above the budget.
    latency_drops: u64,
    /// Missed by outputs slower than the stream.
    output_drops: u64,
    dropped_by_guest: u64,
    /// Capture → the last stage reached (played, where the output says).
    latency_ms: Option<Millis>,
    stages_ms: StageMillis,
    guest_call_ms: Option<Millis>,
}

impl StreamStats {
    fn new(report: &StreamReport, window: &LatencySnapshot) -> Self {
        let latency = window.summary();
        let some = |s: Summary| (s.count > 0).then(|| Millis::from(s));
        Self {
            items_in: report.items_in,
            items_out: report.items_out,
            xruns: report.xruns(),
            capture_overruns: report.capture_overruns,
            playback_underruns: report.playback_underruns,
            overruns: report.overruns,
            late_drops: report.late_drops,
            latency_drops: report.latency_drops,
            output_drops: report.output_drops,
            dropped_by_guest: report.dropped_by_guest,
            latency_ms: some(latency.end_to_end()),
            stages_ms: StageMillis {
                read: some(latency.read),
                guest_start: some(latency.guest_start),
                guest_end: some(latency.guest_end),
                sync: some(latency.sync),
                output: some(latency.output),
                played: some(latency.played),
            },
            guest_call_ms: some(latency.guest_call),
        }
    }

    fn drops(&self) -> u64 {
        self.overruns + self.late_drops + self.latency_drops + self.output_drops
    }
}

#[derive(Debug, Serialize)]
struct SyncStats {
    /// Capture → perceived, both streams.
    latency_ms: f64,
    /// Audio's perceived latency minus video's over the last second.
    skew_ms: Option<f64>,
    trimmed_at_start: u64,
    unsynced: u64,
}

#[derive(Debug, Serialize)]
struct GuestStats {
    faults: u64,
    restarts: u64,
    swaps: u64,
    quarantined: bool,
}

/// One `--stats-json` line.
#[derive(Debug, Serialize)]
struct StatsLine {
    /// Seconds since the run started.
    t_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    audio: Option<StreamStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    video: Option<StreamStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sync: Option<SyncStats>,
    guest: GuestStats,
}

impl StatsLine {
    fn new(
        elapsed: Duration,
        report: &Report,
        (audio, video): (Option<LatencySnapshot>, Option<LatencySnapshot>),
    ) -> Self {
        let skew_ms = match (&audio, &video) {
            (Some(a), Some(v)) => {
                let (a, v) = (a.summary().end_to_end(), v.summary().end_to_end());
                (a.count > 0 && v.count > 0)
                    .then(|| (a.median_us as f64 - v.median_us as f64) / 1e3)
            }
            _ => None,
        };
        Self {
            t_s: (elapsed.as_secs_f64() * 100.0).round() / 100.0,
            audio: audio.map(|window| StreamStats::new(&report.audio, &window)),
            video: video.map(|window| StreamStats::new(&report.video, &window)),
            sync: (report.sync_latency_us > 0).then(|| SyncStats {
                latency_ms: report.sync_latency_us as f64 / 1e3,
                skew_ms,
                trimmed_at_start: report.sync_trimmed,
                unsynced: report.sync_forced_releases,
            }),
            guest: GuestStats {
                faults: report.faults(),
                restarts: report.restarts,
                swaps: report.swaps,
                quarantined: report.quarantines > 0,
            },
        }
    }

    /// The status line: latency per stream, xruns, drops, guest time,
    /// faults.
    fn status(&self) -> String {
        let mut parts = Vec::new();
        for (name, stream) in [("audio", &self.audio), ("video", &self.video)] {
            let Some(stream) = stream else { continue };
            let latency = stream.latency_ms.as_ref().map_or("-".to_string(), |l| {
                format!("{:.1} ms (p99 {:.1})", l.median, l.p99)
            });
            let guest = stream
                .guest_call_ms
                .as_ref()
                .map_or(String::new(), |g| format!(", guest {:.2} ms", g.median));
            parts.push(format!(
                "{name} {latency}{guest}, {} xruns, {} drops",
                stream.xruns,
                stream.drops()
            ));
        }
        if let Some(sync) = &self.sync
            && let Some(skew) = sync.skew_ms
        {
            parts.push(format!("A/V skew {skew:+.1} ms"));
        }
        parts.push(format!("{} faults", self.guest.faults));
        format!("[{:.0} s] {}", self.t_s, parts.join(" | "))
    }
}
