//! The `sandstream` command line: flags are parsed by clap, merged with the
//! config file, and turned into a [`StreamerBuilder`]. No logic lives in
//! `main`.

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use devices::{DeviceArgs, DevicesArgs};
use sandstream::config_file::{ConfigFile, OneOrMany};
use sandstream::growth;
use sandstream::guest::sandbox::{self, EpochTicker, LoadLimits};
use sandstream::guest::{
    CompileCache, DataPath, FaultPolicy, GuestProgram, SandboxPolicy, StreamFormats, engine_for,
};
use sandstream::media::{AudioFormat, Fps, VideoFormat};
use sandstream::pipeline::{self, CacheSetting, Streamer, StreamerBuilder};
use sandstream::spec::{AudioInputSpec, AudioOutputSpec, VideoInputSpec, VideoOutputSpec};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Run audio/video effects written as WebAssembly components.
mod bindings;
mod componentize;
mod devices;
mod latency;
mod monitor;
mod new;
mod virtual_mic;

#[derive(Debug, Parser)]
#[command(name = "sandstream", version, about, propagate_version = true)]
pub struct Cli {
    /// Only warnings and errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Debug logging (or set RUST_LOG).
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size difference between variants is moot.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Run a guest over audio and/or video.
    Run(RunArgs),
    /// Say which world a guest implements, what it imports and exports, and
    /// whether it would run.
    Check(CheckArgs),
    /// Time single calls into a guest on each data path, beside a memcpy of
    /// the same bytes (median and 99th percentile).
    Bench(BenchArgs),
    /// List audio inputs and outputs with their formats and the host API.
    Devices(DevicesArgs),
    /// Create a virtual microphone other apps can pick (removed on
    /// Ctrl-C, or kept with --keep); sandstream plays into it with
    /// --audio-out device:NAME.
    VirtualMic(virtual_mic::VirtualMicArgs),
    /// Measure capture -> output latency by the click method: clicks
    /// through a guest into an output device, found again on its monitor
    /// (PulseAudio or PipeWire), per device buffer size.
    Latency(latency::LatencyArgs),
    /// Make a component of a core WebAssembly module (C, C++, Zig, Go
    /// built for wasm32-wasip1), for one of the worlds.
    Componentize(componentize::ComponentizeArgs),
    /// Write the bindings and helpers a guest in C, C++, Zig, Go, Python or
    /// JavaScript compiles against, for one world.
    Bindings(bindings::BindingsArgs),
    /// Start a guest project in DIR from the language's example, with its
    /// build command (`DIR/build.sh`).
    New(new::NewArgs),
}

#[derive(Debug, Args)]
struct CacheArgs {
    /// Compile the guest every time instead of using the compile cache.
    #[arg(long)]
    no_cache: bool,
    /// Compile cache directory [default: $SANDSTREAM_CACHE_DIR or ~/.cache/sandstream].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
}

impl CacheArgs {
    fn setting(&self) -> CacheSetting {
        match (&self.cache_dir, self.no_cache) {
            (_, true) => CacheSetting::Off,
            (Some(dir), false) => CacheSetting::Dir(dir.clone()),
            (None, false) => CacheSetting::Default,
        }
    }
}

/// Bounds on the guest file, checked before any of it runs.
#[derive(Debug, Args)]
struct LoadArgs {
    /// Largest guest file accepted [default: 256].
    #[arg(long, value_name = "MIB")]
    max_guest_size: Option<u64>,
    /// Longest the guest may take to compile [default: 120].
    #[arg(long, value_name = "SECS")]
    compile_timeout: Option<f64>,
}

impl LoadArgs {
    fn limits(&self, file: &ConfigFile) -> anyhow::Result<LoadLimits> {
        let mut limits = LoadLimits::default();
        if let Some(mib) = self.max_guest_size.or(file.max_guest_size) {
            if !(1..=4096).contains(&mib) {
                bail!("--max-guest-size must be between 1 and 4096 MiB, got {mib}");
            }
            limits.max_bytes = mib << 20;
        }
        if let Some(secs) = self.compile_timeout.or(file.compile_timeout) {
            if !(secs.is_finite() && secs > 0.0 && secs <= 3600.0) {
                bail!("--compile-timeout must be between 0 and 3600 seconds, got {secs}");
            }
            limits.compile_timeout = Duration::from_secs_f64(secs);
        }
        Ok(limits)
    }
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The guest component (.wasm).
    guest: PathBuf,
    /// Audio input: device:NAME (a microphone; `sandstream devices` lists
    /// them), default, file:PATH.wav, tone:FREQ_HZ, clicks:PERIOD_MS or
    /// silence.
    #[arg(long, value_name = "SRC")]
    audio_in: Option<AudioInputSpec>,
    /// Audio output: device:NAME (e.g. the virtual microphone), default,
    /// file:PATH.wav or null (repeat for several).
    #[arg(long, value_name = "SINK")]
    audio_out: Vec<AudioOutputSpec>,
    /// Video input: camera:NAME or camera:INDEX (`sandstream devices` lists
    /// them; camera:default for the first), file:PATH.y4m or pattern.
    #[arg(long, value_name = "SRC")]
    video_in: Option<VideoInputSpec>,
    /// Video output: pipewire:NAME (a virtual camera browsers and apps
    /// list), window (a preview), v4l2:/dev/videoN (v4l2loopback),
    /// file:PATH.y4m, file:PATH.png (last frame) or null (repeat for
    /// several).
    #[arg(long, value_name = "SINK")]
    video_out: Vec<VideoOutputSpec>,
    /// Show the input beside the output in the preview window
    /// (--video-out window).
    #[arg(long)]
    preview_input: bool,
    /// Guest configuration entry (repeatable); wins over the config file.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    set: Vec<(String, String)>,
    /// TOML file with run options and a [config] table for the guest.
    #[arg(long, value_name = "FILE.toml")]
    config: Option<PathBuf>,
    /// Stop after this many seconds of media.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    duration: Option<f64>,
    /// Audio frames per guest call [default: 512].
    #[arg(long, value_name = "FRAMES")]
    block: Option<u32>,
    /// Sample rate of synthetic audio [default: 48000].
    #[arg(long, value_name = "HZ")]
    sample_rate: Option<u32>,
    /// Channels of synthetic audio [default: 2].
    #[arg(long, value_name = "N")]
    channels: Option<u16>,
    /// Width of the test pattern [default: 640].
    #[arg(long, value_name = "W")]
    width: Option<u32>,
    /// Height of the test pattern [default: 360].
    #[arg(long, value_name = "H")]
    height: Option<u32>,
    /// Frame rate of the pattern; caps faster video sources [default: 30].
    #[arg(long, value_name = "F")]
    fps: Option<f64>,
    /// Largest A/V offset allowed at the outputs, real time only [default: 10].
    #[arg(long, value_name = "MS")]
    max_unsynced: Option<f64>,
    /// Pace inputs to the clock, like live capture (files otherwise run as
    /// fast as possible).
    #[arg(long)]
    realtime: bool,
    /// Swap in the guest file whenever it changes (validated first: a broken
    /// save keeps the running guest).
    #[arg(long)]
    watch: bool,
    /// Read live commands from stdin: `swap PATH`, `set KEY=VALUE`,
    /// `stats`, `stop`, `help`.
    #[arg(long)]
    commands: bool,
    /// Crossfade audio from the old guest to the new one on a swap.
    #[arg(long, value_name = "MS")]
    crossfade: Option<f64>,
    /// Write one JSON object per second with the live numbers to FILE, or
    /// to stdout with `-` (fields: docs/STATS.md).
    #[arg(long, value_name = "FILE")]
    stats_json: Option<PathBuf>,
    /// No status line (it is shown only when stderr is a terminal).
    #[arg(long)]
    no_status: bool,
    #[command(flatten)]
    devices: DeviceArgs,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    sandbox: SandboxArgs,
    #[command(flatten)]
    load: LoadArgs,
}

#[derive(Debug, Args)]
struct SandboxArgs {
    /// What replaces a block whose guest call faulted: bypass (the input),
    /// mute (silence / black), hold (last good frame), stop (end the run)
    /// [default: bypass].
    #[arg(long, value_name = "POLICY")]
    on_fault: Option<FaultPolicy>,
    /// Per-call deadline, guest code and host calls together [default: half
    /// an audio block / one video frame in real time, 2000 offline].
    #[arg(long, value_name = "MS")]
    deadline: Option<f64>,
    /// Cap on the guest's memory: all its memories and tables together
    /// [default: 256].
    #[arg(long, value_name = "MIB")]
    memory_limit: Option<u64>,
    /// Replace an instance that has grown to this percent of its memory
    /// cap with a fresh one (its state carried over when it offers it), so
    /// a guest that leaks runs on; 0: never [default: 75].
    #[arg(long, value_name = "PERCENT")]
    recycle_at: Option<u8>,
    /// Let audio past ±1.0 full scale (the safety limiter is on by default).
    #[arg(long)]
    no_limiter: bool,
    /// Run without deadline checks, at full speed: for your own guests only.
    #[arg(long)]
    trusted: bool,
    /// Let the guest read a host directory (read-only), seen by the guest at
    /// GUEST_PATH or the same path (repeatable).
    #[arg(long, value_name = "HOST_DIR[:GUEST_PATH]")]
    grant_dir: Vec<String>,
    /// Give the guest this host environment variable (repeatable).
    #[arg(long, value_name = "KEY")]
    grant_env: Vec<String>,
    /// How frames reach the guest: auto (through the guest's own buffers
    /// when it offers them, as lists otherwise) or list [default: auto].
    #[arg(long, value_name = "PATH")]
    data_path: Option<DataPath>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandstream::guest::controller::Command;

    #[test]
    fn live_commands_parse() {
        assert_eq!(
            parse_command("swap /a b.wasm").unwrap(),
            Some(LiveCommand::Control(Command::Swap("/a b.wasm".into())))
        );
        assert_eq!(
            parse_command("  set gain=2 ").unwrap(),
            Some(LiveCommand::Control(Command::Set(
                "gain".into(),
                "2".into()
            )))
        );
        assert_eq!(parse_command("stats").unwrap(), Some(LiveCommand::Stats));
        assert_eq!(parse_command("").unwrap(), None);
        assert!(
            parse_command("swap")
                .unwrap_err()
                .contains("unknown command")
        );
        assert!(parse_command("set gain").unwrap_err().contains("KEY=VALUE"));
    }
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// The guest component (.wasm).
    guest: PathBuf,
    /// Configuration for the guest's configure (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    set: Vec<(String, String)>,
    /// Frame width.
    #[arg(long, value_name = "W", default_value_t = 1920)]
    width: u32,
    /// Frame height.
    #[arg(long, value_name = "H", default_value_t = 1080)]
    height: u32,
    /// Audio frames per call.
    #[arg(long, value_name = "FRAMES", default_value_t = 512)]
    block: u32,
    /// Audio channels.
    #[arg(long, value_name = "N", default_value_t = 2)]
    channels: u16,
    /// Compile without epoch checks, as `run --trusted` does.
    #[arg(long)]
    trusted: bool,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    load: LoadArgs,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// The guest component (.wasm).
    guest: PathBuf,
    /// Configuration to try the guest's configure with (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    set: Vec<(String, String)>,
    /// Blocks and frames to send through the guest, to measure how much
    /// its memory grows per call (0: none). A guest that would reach its
    /// memory cap within an hour of stream is reported as leaking.
    #[arg(long, default_value_t = 50, value_name = "N")]
    calls: usize,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    load: LoadArgs,
}

fn parse_key_value(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err(format!("expected KEY=VALUE, got `{raw}`")),
    }
}

fn parse_seconds(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 => Ok(secs),
        _ => Err(format!(
            "expected a positive number of seconds, got `{raw}`"
        )),
    }
}

/// Entry point of the binary: exit 0 on success; on failure one line
/// `error: …` with the cause chain, and exit 1 (2 for usage errors).
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { 2 } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    init_logging(cli.quiet, cli.verbose);
    let result = match cli.command {
        Command::Run(args) => run(args, cli.quiet),
        Command::Check(args) => check(args),
        Command::Bench(args) => bench(args),
        Command::Devices(args) => devices::devices(&args),
        Command::VirtualMic(args) => virtual_mic::virtual_mic(&args),
        Command::Latency(args) => latency::latency(&args),
        Command::Componentize(args) => componentize::componentize_command(&args),
        Command::Bindings(args) => bindings::bindings_command(&args),
        Command::New(args) => new::new_command(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// The cause chain on one line, each part once.
fn one_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string().replace('\n', " ");
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

fn init_logging(quiet: bool, verbose: bool) {
    let default = if quiet {
        "warn"
    } else if verbose {
        "debug,cranelift=warn,wasmtime=info,pulseaudio=info"
    } else {
        "info,cranelift=warn,wasmtime=warn,pulseaudio=off"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal as _;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| monitor::StderrUnderStatus)
        // Colour codes only where a terminal reads them, never in a file.
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .try_init();
}

fn run(args: RunArgs, quiet: bool) -> anyhow::Result<()> {
    let (watch, commands, guest) = (args.watch, args.commands, args.guest.clone());
    use std::io::IsTerminal as _;
    let status_line = !args.no_status && !quiet && std::io::stderr().is_terminal();
    let json = (args.stats_json.as_deref())
        .map(|path| monitor::json_output(path, false))
        .transpose()?;
    let builder = builder_from_args(args)?;
    let streamer = builder.build()?;
    tracing::info!("{}", streamer.describe().replace('\n', "\n  "));
    let (audio, video) = (
        streamer.audio_format().is_some(),
        streamer.video_format().is_some(),
    );
    let mut running = streamer.start()?;
    let monitor = (status_line || json.is_some())
        .then(|| {
            let options = monitor::MonitorOptions {
                status_line,
                json,
                audio,
                video,
            };
            monitor::Monitor::start(running.stats_handle(), options)
        })
        .transpose()?;
    if watch {
        running.watch(&guest)?;
    }
    if commands {
        spawn_command_reader(&running)?;
    }
    let stop = running.stop_handle();
    let mut interrupts = 0;
    let _ = ctrlc::set_handler(move || {
        interrupts += 1;
        if interrupts > 1 {
            eprintln!("interrupted twice: exiting without finalizing outputs");
            std::process::exit(130);
        }
        eprintln!("stopping (Ctrl-C again to abort)...");
        stop.stop();
    });
    let result = running.wait();
    if let Some(monitor) = monitor {
        monitor.stop();
    }
    let report = result?;
    eprint!("{report}");
    if let Some(peak) = sandstream::metrics::peak_resident_bytes() {
        eprintln!("memory: peak {} MiB resident", peak >> 20);
    }
    if let Some((user, system)) = sandstream::metrics::cpu_seconds() {
        eprintln!("cpu: {user:.2} s user, {system:.2} s system");
    }
    Ok(())
}

/// Live control on stdin, one command per line; ends at end of input.
fn spawn_command_reader(running: &sandstream::RunningStream) -> anyhow::Result<()> {
    let (control, stop, stats) = (
        running.control(),
        running.stop_handle(),
        running.stats_handle(),
    );
    std::thread::Builder::new()
        .name("sandstream-stdin".into())
        .spawn(move || {
            for line in std::io::stdin().lines() {
                let Ok(line) = line else { break };
                match parse_command(&line) {
                    Ok(Some(LiveCommand::Control(command))) => control.send(command),
                    Ok(Some(LiveCommand::Stats)) => {
                        use std::io::Write as _;
                        let _ = write!(monitor::StderrUnderStatus, "{}", stats_text(&stats));
                    }
                    Ok(Some(LiveCommand::Stop)) => stop.stop(),
                    Ok(None) => {}
                    Err(message) => eprintln!("{message}"),
                }
            }
        })?;
    Ok(())
}

/// The `stats` command's answer: the counters and every latency
/// histogram so far.
fn stats_text(stats: &pipeline::StatsHandle) -> String {
    use sandstream::media::StreamKind;
    let mut text = stats.report().to_string();
    for kind in [StreamKind::Audio, StreamKind::Video] {
        let latency = stats.latency(kind);
        if latency.stage(sandstream::metrics::Stage::Read).count() > 0 {
            text += &format!(
                "{} latency histograms, ms:\n{}",
                kind.name(),
                latency.table()
            );
        }
    }
    text
}

/// A line typed while running.
#[derive(Debug, PartialEq)]
enum LiveCommand {
    Control(sandstream::guest::controller::Command),
    Stats,
    Stop,
}

const COMMAND_HELP: &str = "commands: swap PATH | set KEY=VALUE | stats | stop | help";

fn parse_command(line: &str) -> Result<Option<LiveCommand>, String> {
    use sandstream::guest::controller::Command;
    let line = line.trim();
    let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim();
    match (word, rest) {
        ("", _) => Ok(None),
        ("swap", path) if !path.is_empty() => {
            Ok(Some(LiveCommand::Control(Command::Swap(path.into()))))
        }
        ("set", pair) => {
            let (key, value) = parse_key_value(pair)?;
            Ok(Some(LiveCommand::Control(Command::Set(key, value))))
        }
        ("stats", "") => Ok(Some(LiveCommand::Stats)),
        ("stop", "") => Ok(Some(LiveCommand::Stop)),
        ("help", _) => Err(COMMAND_HELP.to_string()),
        _ => Err(format!("unknown command `{line}`; {COMMAND_HELP}")),
    }
}

fn builder_from_args(args: RunArgs) -> anyhow::Result<StreamerBuilder> {
    let file = match &args.config {
        Some(path) => ConfigFile::load(path)?,
        None => ConfigFile::default(),
    };
    let mut builder = Streamer::builder()
        .guest_path(&args.guest)
        .cache(args.cache.setting());
    for (key, value) in file.guest_config()? {
        builder = builder.set(key, value);
    }
    for (key, value) in args.set {
        builder = builder.set(key, value);
    }

    let audio_in = flag_or_file(args.audio_in, &file.audio_in, "audio-in")?;
    if let Some(spec) = audio_in {
        builder = builder.audio_input(spec);
    }
    let video_in = flag_or_file(args.video_in, &file.video_in, "video-in")?;
    if let Some(spec) = video_in {
        builder = builder.video_input(spec);
    }
    for spec in flags_or_file(args.audio_out, &file.audio_out, "audio-out")? {
        builder = builder.audio_output(spec);
    }
    for spec in flags_or_file(args.video_out, &file.video_out, "video-out")? {
        builder = builder.video_output(spec);
    }
    builder = builder.preview_input(args.preview_input);

    if let Some(secs) = args.duration.or(file.duration) {
        if !(secs.is_finite() && secs > 0.0) {
            bail!("duration must be a positive number of seconds, got {secs}");
        }
        builder = builder.duration(Duration::from_secs_f64(secs));
    }
    if let Some(block) = args.block.or(file.block) {
        builder = builder.block_frames(block);
    }
    if let Some(rate) = args.sample_rate.or(file.sample_rate) {
        builder = builder.sample_rate(rate);
    }
    if let Some(channels) = args.channels.or(file.channels) {
        builder = builder.channels(channels);
    }
    match (args.width.or(file.width), args.height.or(file.height)) {
        (Some(w), Some(h)) => builder = builder.frame_size(w, h),
        (None, None) => {}
        (Some(w), None) => builder = builder.frame_size(w, pipeline::DEFAULT_HEIGHT),
        (None, Some(h)) => builder = builder.frame_size(pipeline::DEFAULT_WIDTH, h),
    }
    if let Some(fps) = args.fps.or(file.fps) {
        builder = builder.fps(fps);
    }
    if let Some(ms) = args.max_unsynced.or(file.max_unsynced) {
        if !(ms.is_finite() && ms >= 0.0) {
            bail!("--max-unsynced must be a non-negative number of milliseconds, got {ms}");
        }
        builder = builder.max_unsynced(Duration::from_secs_f64(ms / 1000.0));
    }
    if let Some(ms) = args.crossfade {
        if !(ms.is_finite() && (0.0..=10_000.0).contains(&ms)) {
            bail!("--crossfade must be between 0 and 10000 ms, got {ms}");
        }
        builder = builder.crossfade(Duration::from_secs_f64(ms / 1000.0));
    }
    let mut sandbox = sandbox_policy(&args.sandbox, &file)?;
    sandbox.load = args.load.limits(&file)?;
    Ok(builder
        .devices(args.devices.settings(&file)?)
        .sandbox(sandbox)
        .realtime(args.realtime || file.realtime.unwrap_or(false)))
}

fn sandbox_policy(args: &SandboxArgs, file: &ConfigFile) -> anyhow::Result<SandboxPolicy> {
    let mut policy = SandboxPolicy::default();
    if let Some(text) = &file.on_fault {
        policy.on_fault = text
            .parse()
            .map_err(|e: String| anyhow::anyhow!("config file on-fault: {e}"))?;
    }
    if let Some(on_fault) = args.on_fault {
        policy.on_fault = on_fault;
    }
    if let Some(ms) = args.deadline.or(file.deadline) {
        if !(ms.is_finite() && ms > 0.0 && ms <= 3_600_000.0) {
            bail!("--deadline must be a positive number of milliseconds, got {ms}");
        }
        policy.deadline = Some(Duration::from_secs_f64(ms / 1000.0));
    }
    if let Some(mib) = args.memory_limit.or(file.memory_limit) {
        if !(1..=4096).contains(&mib) {
            bail!("--memory-limit must be between 1 and 4096 MiB, got {mib}");
        }
        policy.memory_limit = (mib as usize) << 20;
    }
    if let Some(percent) = args.recycle_at.or(file.recycle_at) {
        if percent > 95 {
            bail!(
                "--recycle-at must be between 0 (never) and 95 percent of the memory cap, got \
                 {percent}"
            );
        }
        policy.recycle_at_percent = percent;
    }
    policy.limiter = !args.no_limiter && file.limiter.unwrap_or(true);
    policy.trusted = args.trusted || file.trusted.unwrap_or(false);
    if let Some(text) = &file.data_path {
        policy.data_path = text
            .parse()
            .map_err(|e: String| anyhow::anyhow!("config file data-path: {e}"))?;
    }
    if let Some(path) = args.data_path {
        policy.data_path = path;
    }
    let file_dirs = file
        .grant_dir
        .clone()
        .map(OneOrMany::into_vec)
        .unwrap_or_default();
    for spec in file_dirs.iter().chain(&args.grant_dir) {
        policy
            .grants
            .grant_dir(spec)
            .map_err(|e| anyhow::anyhow!(e))?;
    }
    let file_env = file
        .grant_env
        .clone()
        .map(OneOrMany::into_vec)
        .unwrap_or_default();
    for key in file_env.iter().chain(&args.grant_env) {
        policy
            .grants
            .grant_env(key)
            .map_err(|e| anyhow::anyhow!(e))?;
    }
    Ok(policy)
}

/// The flag if given, else the config file's `key` parsed.
fn flag_or_file<T>(flag: Option<T>, file: &Option<String>, key: &str) -> anyhow::Result<Option<T>>
where
    T: std::str::FromStr<Err = anyhow::Error>,
{
    match (flag, file) {
        (Some(spec), _) => Ok(Some(spec)),
        (None, Some(text)) => Ok(Some(
            text.parse().with_context(|| format!("config file {key}"))?,
        )),
        (None, None) => Ok(None),
    }
}

/// Repeatable flags if any were given, else the config file's `key`.
fn flags_or_file<T>(flags: Vec<T>, file: &Option<OneOrMany>, key: &str) -> anyhow::Result<Vec<T>>
where
    T: std::str::FromStr<Err = anyhow::Error>,
{
    if !flags.is_empty() {
        return Ok(flags);
    }
    let texts = file.clone().map(OneOrMany::into_vec).unwrap_or_default();
    texts
        .iter()
        .map(|text| text.parse().with_context(|| format!("config file {key}")))
        .collect()
}

/// Loads a guest for `check` and `bench`, through the compile cache and
/// within the same load limits as `run`.
fn load_for_inspection(
    guest: &std::path::Path,
    cache: &CacheArgs,
    load: &LoadArgs,
    trusted: bool,
) -> anyhow::Result<GuestProgram> {
    let engine = engine_for(trusted)?;
    let cache = match cache.setting() {
        CacheSetting::Off => None,
        CacheSetting::Dir(dir) => Some(CompileCache::new(dir)),
        CacheSetting::Default => CompileCache::default_location(),
    };
    let limits = load.limits(&ConfigFile::default())?;
    GuestProgram::load_within(&engine, guest, cache.as_ref(), limits)
        .with_context(|| format!("{} is not a usable guest", guest.display()))
}

/// Drives deadlines while `check` or `bench` runs guest code, as in `run`
/// (none with `--trusted`, whose code has no epoch checks).
fn ticker_for(program: &GuestProgram, trusted: bool) -> anyhow::Result<Option<EpochTicker>> {
    if trusted {
        return Ok(None);
    }
    let ticker =
        EpochTicker::start(program.engine().clone()).context("starting the epoch ticker")?;
    Ok(Some(ticker))
}

fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let program = load_for_inspection(&args.guest, &args.cache, &args.load, args.trusted)?;
    let _ticker = ticker_for(&program, args.trusted)?;
    let world = program.world();
    let policy = SandboxPolicy::default();
    println!(
        "{} ({}), {} build",
        args.guest.display(),
        program.world_name(),
        if args.trusted {
            "trusted (no epoch checks)"
        } else {
            "sandboxed"
        }
    );
    let mut failures = Vec::new();
    if world.processes_audio() {
        let format = AudioFormat {
            sample_rate: 48_000,
            channels: args.channels,
        };
        if args.block == 0 || args.channels == 0 {
            bail!("--block and --channels must be at least 1");
        }
        let table = sandstream::bench::audio(&program, &policy, &args.set, format, args.block);
        print!("{table}");
        failures.extend(table.failures());
    }
    if world.processes_video() {
        if args.width == 0 || args.height == 0 || args.width > 7680 || args.height > 4320 {
            bail!(
                "--width and --height must be between 1 and 7680x4320, got {}x{}",
                args.width,
                args.height
            );
        }
        let format = VideoFormat {
            width: args.width,
            height: args.height,
            fps: Fps { num: 30, den: 1 },
        };
        let table = sandstream::bench::video(&program, &policy, &args.set, format);
        print!("{table}");
        failures.extend(table.failures());
    }
    if !failures.is_empty() {
        bail!(
            "guest {} failed on {} of the paths timed: {}",
            program.name(),
            failures.len(),
            failures.join("; ")
        );
    }
    Ok(())
}

fn check(args: CheckArgs) -> anyhow::Result<()> {
    let program = load_for_inspection(&args.guest, &args.cache, &args.load, false)?;
    let world = program.world();
    println!(
        "{}: implements {}",
        args.guest.display(),
        program.world_name()
    );
    println!("  exports: {}", program.surface().exports.join(", "));
    println!("  imports: {}", program.surface().imports.join(", "));
    if program.surface().has_state() {
        println!("  state: exports sandstream:av/state (carried across hot swaps)");
    }
    println!("  compile cache: {:?}", program.cache_outcome());
    // Would it run? Instantiate and configure it as `run` would — under the
    // same setup deadline and caps — with default formats for the streams
    // it processes.
    let formats = StreamFormats {
        audio: world.processes_audio().then_some((
            AudioFormat {
                sample_rate: pipeline::DEFAULT_SAMPLE_RATE,
                channels: pipeline::DEFAULT_CHANNELS,
            },
            pipeline::DEFAULT_BLOCK_FRAMES,
        )),
        video: world.processes_video().then_some(VideoFormat {
            width: pipeline::DEFAULT_WIDTH,
            height: pipeline::DEFAULT_HEIGHT,
            fps: Fps { num: 30, den: 1 },
        }),
    };
    let _ticker = ticker_for(&program, false)?;
    let policy = SandboxPolicy::default();
    let mut instance = program
        .prepare(&policy, sandbox::SETUP_DEADLINE, &args.set, &formats)
        .map_err(|error| anyhow::anyhow!("guest {} {error}", program.name()))?;
    if world.processes_audio() {
        println!("  audio data path: {}", instance.audio_path());
    }
    if world.processes_video() {
        println!("  video data path: {}", instance.video_path());
    }
    println!(
        "  memory after setup: {} KiB of the {} MiB cap",
        instance.memory_used() >> 10,
        policy.memory_limit >> 20
    );
    if args.calls == 0 {
        println!("  would run: yes (instantiated and configured)");
        return Ok(());
    }
    // Calls under the deadlines of an offline run.
    instance.set_budget(sandbox::OFFLINE_DEADLINE);
    let failed = |fault| anyhow::anyhow!("guest {} {fault} while being called", program.name());
    let cap = policy.memory_limit;
    let mut leaks = Vec::new();
    if let Some((format, block)) = formats.audio {
        let growth = growth::audio(&mut instance, format, block, args.calls, cap);
        leaks.push(growth.map_err(failed)?);
    }
    if let Some(format) = formats.video {
        leaks.push(growth::video(&mut instance, format, args.calls, cap).map_err(failed)?);
    }
    for growth in &leaks {
        println!("  {growth}");
    }
    if leaks.iter().any(growth::Growth::leaks) {
        tracing::warn!(
            "guest {} leaks memory: in a run the host replaces its instance with a fresh one \
             each time it holds three quarters of its cap (state carried when it offers it), \
             which costs a new instance each time; fix the leak (docs/LANGUAGES.md lists the \
             toolchains known to leak)",
            program.name()
        );
    }
    println!(
        "  would run: yes (instantiated, configured and called {} times per stream)",
        args.calls
    );
    Ok(())
}
