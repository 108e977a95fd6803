//! `sandstream bench`: how long one call into a guest takes on this
//! machine, per data path, beside a memcpy of the same bytes measured in the
//! same run. Reports the median and the 99th percentile of single calls,
//! which criterion (`cargo bench`) does not.

use crate::guest::sandbox::{OFFLINE_DEADLINE, SETUP_DEADLINE};
use crate::guest::{
    AudioCall, DataPath, GuestInstance, GuestProgram, SandboxPolicy, StreamFormats, VideoCall,
};
use crate::lifecycle::Fault;
use crate::media::{AudioFormat, VideoFormat};
use std::fmt;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// How long each measured case may take at most.
const TIME_BOX: Duration = Duration::from_secs(3);
/// Calls before measuring: caches, branch predictors, lazy page faults.
const WARM_UP_CALLS: usize = 20;

/// Latency of one kind of call.
#[derive(Debug, Clone)]
pub struct Timing {
    pub calls: usize,
    pub median: Duration,
    pub p99: Duration,
}

/// One row: a kind of call, timed, or why it could not be.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub outcome: Result<Timing, String>,
}

/// The cases of one stream, the reference (memcpy) first.
#[derive(Debug, Clone)]
pub struct Table {
    pub title: String,
    pub cases: Vec<Case>,
}

impl Table {
    /// The rows whose calls failed (a trap, a timeout, an error), as
    /// "stream path: why".
    pub fn failures(&self) -> Vec<String> {
        let stream = self.title.split(':').next().unwrap_or_default();
        (self.cases.iter())
            .filter_map(|c| {
                Some(format!(
                    "{stream} {}: {}",
                    c.name,
                    c.outcome.as_ref().err()?
                ))
            })
            .collect()
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.title)?;
        writeln!(
            f,
            "  {:<44} {:>11} {:>11} {:>10}",
            "", "median", "p99", "vs memcpy"
        )?;
        let reference = (self.cases.first())
            .and_then(|c| c.outcome.as_ref().ok())
            .map(|t| t.median.as_secs_f64());
        for case in &self.cases {
            let timing = match &case.outcome {
                Ok(timing) => timing,
                Err(why) => {
                    writeln!(f, "  {:<44} failed: {why}", case.name)?;
                    continue;
                }
            };
            let ratio = reference
                .filter(|r| *r > 0.0)
                .map(|r| format!("{:.2}x", timing.median.as_secs_f64() / r))
                .unwrap_or_default();
            writeln!(
                f,
                "  {:<44} {:>11} {:>11} {:>10}",
                format!("{} ({} calls)", case.name, timing.calls),
                human(timing.median),
                human(timing.p99),
                ratio
            )?;
        }
        Ok(())
    }
}

fn human(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 10_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else {
        format!("{:.2} ms", ns as f64 / 1e6)
    }
}

/// Times `call` until `max_calls` or the time box, after a warm-up; a
/// failed call ends the case with its fault.
fn measure(name: &str, max_calls: usize, mut call: impl FnMut() -> Result<(), Fault>) -> Case {
    let mut time = || -> Result<Timing, Fault> {
        for _ in 0..WARM_UP_CALLS {
            call()?;
        }
        let mut times = Vec::with_capacity(max_calls);
        let start = Instant::now();
        while times.len() < max_calls && start.elapsed() < TIME_BOX {
            let before = Instant::now();
            call()?;
            times.push(before.elapsed());
        }
        times.sort_unstable();
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        Ok(Timing {
            calls: times.len(),
            median: at(0.5),
            p99: at(0.99),
        })
    };
    Case {
        name: name.to_string(),
        outcome: time().map_err(|fault| fault.to_string()),
    }
}

/// A configured instance of `program` on `path`, set up and then called
/// under the same deadlines and caps as an offline `run`.
///
/// # Errors
/// The step of the setup that failed, in words.
fn instance(
    program: &GuestProgram,
    policy: &SandboxPolicy,
    config: &Vec<(String, String)>,
    formats: &StreamFormats,
    path: DataPath,
) -> Result<GuestInstance, String> {
    let policy = SandboxPolicy {
        data_path: path,
        ..policy.clone()
    };
    let mut instance = program
        .prepare(&policy, SETUP_DEADLINE, config, formats)
        .map_err(|error| error.to_string())?;
    instance.set_budget(OFFLINE_DEADLINE);
    Ok(instance)
}

/// The paths worth timing for a guest: lists unless it implements a
/// `-mapped` world, mapped when it exports that interface.
fn paths(program: &GuestProgram) -> Vec<DataPath> {
    let surface = program.surface();
    let mut paths = Vec::new();
    if !surface.mapped_only(program.world()) {
        paths.push(DataPath::Lists);
    }
    if surface.offers_mapped() {
        paths.push(DataPath::Auto);
    }
    paths
}

fn failed(name: &str, why: String) -> Case {
    Case {
        name: name.to_string(),
        outcome: Err(why),
    }
}

/// Audio blocks of `block` frames through the guest, on each path. A path
/// whose setup or calls fail is reported as such, and the others timed.
pub fn audio(
    program: &GuestProgram,
    policy: &SandboxPolicy,
    config: &Vec<(String, String)>,
    format: AudioFormat,
    block: u32,
) -> Table {
    let formats = StreamFormats {
        audio: Some((format, block)),
        video: None,
    };
    let input: Vec<f32> = (0..block as usize * usize::from(format.channels))
        .map(|i| (i as f32 * 0.01).sin() * 0.5)
        .collect();
    let call = AudioCall {
        timestamp_ns: 0,
        first_frame: 0,
        format,
    };
    // Each call restores the input block first (gain applied over and over
    // would sink into denormals); the memcpy row is exactly that copy.
    let calls = 20_000;
    let mut samples = input.clone();
    let mut cases = vec![measure("memcpy", calls, || {
        samples.copy_from_slice(black_box(&input));
        Ok(())
    })];
    for path in paths(program) {
        let name = if path == DataPath::Lists {
            "lists"
        } else {
            "mapped"
        };
        let mut guest = match instance(program, policy, config, &formats, path) {
            Ok(guest) => guest,
            Err(why) => {
                cases.push(failed(name, why));
                continue;
            }
        };
        if path == DataPath::Auto
            && !matches!(guest.audio_path(), crate::guest::StreamPath::Mapped { .. })
        {
            continue;
        }
        cases.push(measure(name, calls, || {
            samples.copy_from_slice(&input);
            guest.process_audio(call, &mut samples).map(drop)
        }));
    }
    Table {
        title: format!(
            "audio: blocks of {block} frames x {} channels through {}",
            format.channels,
            program.name()
        ),
        cases,
    }
}

/// Video frames through the guest, on each path (failures as for
/// [`audio`]).
pub fn video(
    program: &GuestProgram,
    policy: &SandboxPolicy,
    config: &Vec<(String, String)>,
    format: VideoFormat,
) -> Table {
    let formats = StreamFormats {
        audio: None,
        video: Some(format),
    };
    let input: Vec<u8> = (0..format.frame_bytes())
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let call = VideoCall {
        timestamp_ns: 0,
        index: 0,
        format,
    };
    let calls = 300;
    let mut frame = input.clone();
    let mut cases = vec![measure("memcpy", calls, || {
        frame.copy_from_slice(black_box(&input));
        Ok(())
    })];
    // Frames are processed over and over: the cost of a video kernel does
    // not depend on the pixels, and a reset copy would blur the ratios.
    for path in paths(program) {
        let mut guest = match instance(program, policy, config, &formats, path) {
            Ok(guest) => guest,
            Err(why) => {
                let name = if path == DataPath::Lists {
                    "lists"
                } else {
                    "mapped"
                };
                cases.push(failed(name, why));
                continue;
            }
        };
        if path == DataPath::Lists {
            cases.push(measure("lists", calls, || {
                guest.process_video(call, &mut frame).map(drop)
            }));
            continue;
        }
        if !matches!(guest.video_path(), crate::guest::StreamPath::Mapped { .. }) {
            continue;
        }
        cases.push(measure("mapped, copied in and out", calls, || {
            guest.process_video(call, &mut frame).map(drop)
        }));
        cases.push(measure("mapped, filled and read in place", calls, || {
            guest
                .process_video_with(
                    call,
                    |dst| dst.copy_from_slice(&input),
                    |src| {
                        black_box(src);
                    },
                )
                .map(drop)
        }));
    }
    Table {
        title: format!(
            "video: {}x{} RGBA frames through {}",
            format.width,
            format.height,
            program.name()
        ),
        cases,
    }
}
