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
pub struct Case {
    pub name: String,
    pub calls: usize,
    pub median: Duration,
    pub p99: Duration,
}

/// The cases of one stream, the reference (memcpy) first.
#[derive(Debug, Clone)]
pub struct Table {
    pub title: String,
    pub cases: Vec<Case>,
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.title)?;
        writeln!(
            f,
            "  {:<44} {:>11} {:>11} {:>10}",
            "", "median", "p99", "vs memcpy"
        )?;
        let reference = self.cases.first().map(|c| c.median.as_secs_f64());
        for case in &self.cases {
            let ratio = reference
                .filter(|r| *r > 0.0)
                .map(|r| format!("{:.2}x", case.median.as_secs_f64() / r))
                .unwrap_or_default();
            writeln!(
                f,
                "  {:<44} {:>11} {:>11} {:>10}",
                format!("{} ({} calls)", case.name, case.calls),
                human(case.median),
                human(case.p99),
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

/// Times `call` until `max_calls` or the time box, after a warm-up.
///
/// # Errors
/// The first error `call` returns.
fn measure<E>(
    name: &str,
    max_calls: usize,
    mut call: impl FnMut() -> Result<(), E>,
) -> Result<Case, E> {
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
    Ok(Case {
        name: name.to_string(),
        calls: times.len(),
        median: at(0.5),
        p99: at(0.99),
    })
}

/// A configured instance of `program` on `path`, set up and then called
/// under the same deadlines and caps as an offline `run`.
///
/// # Errors
/// The step of the setup that failed.
fn instance(
    program: &GuestProgram,
    policy: &SandboxPolicy,
    config: &Vec<(String, String)>,
    formats: &StreamFormats,
    path: DataPath,
) -> anyhow::Result<GuestInstance> {
    let policy = SandboxPolicy {
        data_path: path,
        ..policy.clone()
    };
    let mut instance = program
        .prepare(&policy, SETUP_DEADLINE, config, formats)
        .map_err(|error| anyhow::anyhow!("guest {} {error}", program.name()))?;
    instance.set_budget(OFFLINE_DEADLINE);
    Ok(instance)
}

/// A fault of a measured call, named with the call.
fn named(program: &GuestProgram, call: &str) -> impl Fn(Fault) -> anyhow::Error {
    let name = program.name().to_string();
    let call = call.to_string();
    move |fault| anyhow::anyhow!("guest {name} {fault} in {call}")
}

/// Audio blocks of `block` frames through the guest, on each path.
///
/// # Errors
/// A fault of the guest (named with the call).
pub fn audio(
    program: &GuestProgram,
    policy: &SandboxPolicy,
    config: &Vec<(String, String)>,
    format: AudioFormat,
    block: u32,
) -> anyhow::Result<Table> {
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
        Ok::<_, Fault>(())
    })?];
    for (name, path) in [("lists", DataPath::Lists), ("mapped", DataPath::Auto)] {
        let mut guest = instance(program, policy, config, &formats, path)?;
        if path == DataPath::Auto
            && !matches!(guest.audio_path(), crate::guest::StreamPath::Mapped { .. })
        {
            continue;
        }
        let case = measure(name, calls, || {
            samples.copy_from_slice(&input);
            guest.process_audio(call, &mut samples).map(drop)
        });
        cases.push(case.map_err(named(program, "process-audio"))?);
    }
    Ok(Table {
        title: format!(
            "audio: blocks of {block} frames x {} channels through {}",
            format.channels,
            program.name()
        ),
        cases,
    })
}

/// Video frames through the guest, on each path.
///
/// # Errors
/// A fault of the guest.
pub fn video(
    program: &GuestProgram,
    policy: &SandboxPolicy,
    config: &Vec<(String, String)>,
    format: VideoFormat,
) -> anyhow::Result<Table> {
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
        Ok::<_, Fault>(())
    })?];
    let faulted = named(program, "process-video");
    let mut lists = instance(program, policy, config, &formats, DataPath::Lists)?;
    // Frames are processed over and over: the cost of a video kernel does
    // not depend on the pixels, and a reset copy would blur the ratios.
    let case = measure("lists", calls, || {
        lists.process_video(call, &mut frame).map(drop)
    });
    cases.push(case.map_err(&faulted)?);
    drop(lists);
    let mut mapped = instance(program, policy, config, &formats, DataPath::Auto)?;
    if matches!(mapped.video_path(), crate::guest::StreamPath::Mapped { .. }) {
        let case = measure("mapped, copied in and out", calls, || {
            mapped.process_video(call, &mut frame).map(drop)
        });
        cases.push(case.map_err(&faulted)?);
        let case = measure("mapped, filled and read in place", calls, || {
            mapped
                .process_video_with(
                    call,
                    |dst| dst.copy_from_slice(&input),
                    |src| {
                        black_box(src);
                    },
                )
                .map(drop)
        });
        cases.push(case.map_err(&faulted)?);
    }
    Ok(Table {
        title: format!(
            "video: {}x{} RGBA frames through {}",
            format.width,
            format.height,
            program.name()
        ),
        cases,
    })
}
