//! `sandstream latency GUEST`: capture → output latency by the click
//! method, per device buffer size. A click source paced to the clock (so
//! each click's capture time is known exactly) goes through the guest into
//! an output device, and a recorder on that device's monitor finds every
//! click with the time the sound server says it played. A click's latency
//! is the two times apart. The host's own account of the same run (its
//! "played" histogram, the status line, `--stats-json`) is printed beside
//! it. Without `--output`, a null sink is made for the measurement (on
//! PulseAudio, or PipeWire's pulse server) and removed after.

use super::monitor::{Monitor, MonitorOptions, json_output};
use super::virtual_mic::pactl;
use anyhow::{Context as _, bail};
use clap::Args;
use sandstream::clicks::Clicks;
use sandstream::device;
use sandstream::media::{AudioBlock, AudioFormat, BufferPool};
use sandstream::pipeline::{CacheSetting, DeviceSettings, Feed, RunControl, Streamer};
use sandstream::spec::{AudioInputSpec, AudioOutputSpec};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const FORMAT: AudioFormat = AudioFormat {
    sample_rate: 48_000,
    channels: 2,
};
const PERIOD: Duration = Duration::from_millis(200);
/// Clicks at the start not counted: the playback ring is still priming.
const WARM_UP_CLICKS: u64 = 3;

#[derive(Debug, Args)]
pub struct LatencyArgs {
    /// The effect to measure through (e.g. target/guests/passthrough.wasm).
    guest: PathBuf,
    /// Device buffer sizes to measure, in frames; each is also the block
    /// size.
    #[arg(long, value_delimiter = ',', default_value = "128,256,512")]
    buffers: Vec<u32>,
    /// Clicks measured per size (one every 200 ms).
    #[arg(long, default_value_t = 20)]
    clicks: u32,
    /// The output to measure, a PulseAudio/PipeWire sink whose monitor is
    /// recorded [default: a null sink made for the measurement].
    #[arg(long, value_name = "SINK")]
    output: Option<String>,
    /// Audio host API [default: as `run` chooses].
    #[arg(long, value_name = "HOST")]
    audio_host: Option<String>,
    /// The latency budget, as in `run` [default: as in `run`].
    #[arg(long, value_name = "MS")]
    latency: Option<f64>,
    /// Also write `run`'s live JSON numbers for each measurement to FILE
    /// (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    stats_json: Option<PathBuf>,
    /// Compile cache directory [default: $SANDSTREAM_CACHE_DIR or ~/.cache/sandstream].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
}

/// A null sink that exists for the measurement only.
struct TemporarySink {
    name: String,
    module: String,
}

impl TemporarySink {
    fn create() -> anyhow::Result<Self> {
        let name = format!("sandstream-latency-{}", std::process::id());
        let module = pactl(&[
            "load-module",
            "module-null-sink",
            &format!("sink_name={name}"),
            "rate=48000",
            "channels=2",
            "format=float32le",
        ])
        .context("making a null sink to measure with (or give --output SINK)")?;
        Ok(Self { name, module })
    }
}

impl Drop for TemporarySink {
    fn drop(&mut self) {
        let _ = pactl(&["unload-module", &self.module]);
    }
}

pub fn latency(args: &LatencyArgs) -> anyhow::Result<()> {
    if args.buffers.iter().any(|b| !(16..=8192).contains(b)) {
        bail!("--buffers must be between 16 and 8192 frames each");
    }
    if !(1..=10_000).contains(&args.clicks) {
        bail!("--clicks must be between 1 and 10000");
    }
    let latency = match args.latency {
        None => None,
        Some(ms) if ms.is_finite() && (5.0..=10_000.0).contains(&ms) => {
            Some(Duration::from_secs_f64(ms / 1e3))
        }
        Some(ms) => bail!("--latency must be between 5 and 10000 ms, got {ms}"),
    };
    let temporary = match &args.output {
        Some(_) => None,
        None => Some(TemporarySink::create()?),
    };
    let output = args
        .output
        .clone()
        .or_else(|| temporary.as_ref().map(|t| t.name.clone()))
        .expect("an output or a temporary sink");
    println!(
        "capture -> output latency of {} by the click method, into {output} \
         (recorded from its monitor), {} clicks per size:",
        args.guest.display(),
        args.clicks
    );
    for &buffer in &args.buffers {
        let settings = DeviceSettings {
            host: args.audio_host.clone(),
            buffer_frames: Some(buffer),
            latency,
        };
        println!("{}", measure(args, &output, &settings, buffer)?);
    }
    Ok(())
}

/// What the recorder heard: samples of the left channel, and each block's
/// first sample with its capture time.
struct Recording {
    mono: Vec<f32>,
    blocks: Vec<(usize, u64)>,
}

impl Recording {
    /// The host time sample `i` was played (captured from the monitor).
    fn time_of(&self, i: usize) -> Option<u64> {
        let at = self.blocks.partition_point(|(start, _)| *start <= i);
        let (start, ns) = *self.blocks.get(at.checked_sub(1)?)?;
        Some(ns + FORMAT.frame_time_ns((i - start) as u64))
    }
}

/// Records `feed` until `stop`, on its own thread.
fn record(
    mut feed: Box<dyn Feed<AudioBlock>>,
    run: Arc<RunControl>,
) -> std::thread::JoinHandle<anyhow::Result<Recording>> {
    std::thread::spawn(move || {
        let pool = BufferPool::new(8, 8192 * 2);
        let mut recording = Recording {
            mono: Vec::new(),
            blocks: Vec::new(),
        };
        while let Some(block) = feed.next(&pool, &run)? {
            recording
                .blocks
                .push((recording.mono.len(), block.timestamp_ns));
            recording.mono.extend(block.samples.iter().step_by(2));
            pool.give(block.samples);
        }
        Ok(recording)
    })
}

fn measure(
    args: &LatencyArgs,
    output: &str,
    settings: &DeviceSettings,
    buffer: u32,
) -> anyhow::Result<String> {
    let host = device::host(settings.host.as_deref())?;
    let monitor = format!("{output}.monitor");
    let feed = device::open_input(
        &host,
        &monitor,
        Some(FORMAT),
        (None, None),
        buffer,
        buffer as usize,
    )
    .with_context(|| format!("recording {output}'s monitor"))?;
    let recorder_run = Arc::new(RunControl::default());
    let recorder = record(Box::new(feed), recorder_run.clone());

    let clicks = u64::from(args.clicks) + WARM_UP_CLICKS + 1;
    let cache = match &args.cache_dir {
        Some(dir) => CacheSetting::Dir(dir.clone()),
        None => CacheSetting::Default,
    };
    let streamer = Streamer::builder()
        .guest_path(&args.guest)
        .cache(cache)
        .audio_input(AudioInputSpec::Clicks(PERIOD))
        .audio_output(AudioOutputSpec::Device(output.to_string()))
        .sample_rate(FORMAT.sample_rate)
        .channels(FORMAT.channels)
        .block_frames(buffer)
        .devices(settings.clone())
        .realtime(true)
        .duration(PERIOD * clicks as u32)
        .build()?;
    let budget_ms = streamer.latency_budget().as_secs_f64() * 1e3;
    let running = streamer.start()?;
    let zero_ns = running
        .media_zero_ns()
        .context("a paced run has a media time zero")?;
    let json = (args.stats_json.as_deref())
        .map(|path| json_output(path, true))
        .transpose()?;
    let monitor = json
        .map(|json| {
            let options = MonitorOptions {
                status_line: false,
                json: Some(json),
                audio: true,
                video: false,
            };
            Monitor::start(running.stats_handle(), options)
        })
        .transpose()?;
    let result = running.wait();
    if let Some(monitor) = monitor {
        monitor.stop();
    }
    let report = result?;
    // Let the last clicks reach the recorder.
    std::thread::sleep(Duration::from_millis(300));
    recorder_run.request_stop();
    let recording = recorder
        .join()
        .map_err(|_| anyhow::anyhow!("the recorder panicked"))??;

    let train = Clicks::new(FORMAT.sample_rate, PERIOD);
    let period_ns = PERIOD.as_nanos() as u64;
    let mut latencies: Vec<f64> = train
        .find(&recording.mono, FORMAT.sample_rate)
        .into_iter()
        .filter_map(|onset| {
            let played_ns = recording.time_of(onset.frame)?;
            let since_zero = FORMAT.frame_time_ns(1);
            let frames = played_ns.checked_sub(zero_ns)? / since_zero;
            let n = train.which(onset.number, frames)?;
            (n >= WARM_UP_CLICKS).then(|| (played_ns - zero_ns - n * period_ns) as f64 / 1e6)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    if latencies.is_empty() {
        bail!(
            "no clicks reached {output}'s monitor at {buffer} frames: is {output} a sink of \
             this sound server? ({report})"
        );
    }
    let quantile = |q: f64| latencies[((q * latencies.len() as f64).ceil() as usize).max(1) - 1];
    let audio = &report.audio;
    let own = audio.latency.played;
    // What the host adds: all of it but the device's own buffer and the
    // guest's time.
    let outside_ms =
        (audio.device_delay_ns as f64 + audio.latency.guest_call.median_us as f64 * 1e3) / 1e6;
    Ok(format!(
        "  {buffer} frames ({:.1} ms): {} clicks, capture -> output median {:.1} ms, \
         p99 {:.1} ms, max {:.1} ms; host-added (less the device's {:.1} ms buffer and \
         the guest's time) median {:.1} ms, p99 {:.1} ms; the host's own account: \
         median {:.1} ms, p99 {:.1} ms; budget {budget_ms:.0} ms; {} xruns, {} latency drops",
        FORMAT.frame_time_ns(u64::from(buffer)) as f64 / 1e6,
        latencies.len(),
        quantile(0.5),
        quantile(0.99),
        latencies[latencies.len() - 1],
        audio.device_delay_ns as f64 / 1e6,
        quantile(0.5) - outside_ms,
        quantile(0.99) - outside_ms,
        own.median_us as f64 / 1e3,
        own.p99_us as f64 / 1e3,
        audio.xruns(),
        audio.latency_drops,
    ))
}
