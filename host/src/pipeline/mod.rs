//! The streamer: sources -> read -> process (guest) -> sync -> write -> sinks,
//! one thread per stage, joined by bounded channels. See
//! `docs/ARCHITECTURE.md` for the picture.

mod safety;
mod stages;
mod sync;

pub use crate::metrics::{Counters, Report};
pub use sync::{Aligner, Released};

use crate::clock;
use crate::guest::controller::{ControlHandle, Controller, FileWatcher, Maker, WorkshopHandle};
use crate::guest::sandbox::{self, EpochTicker};
use crate::guest::{
    CompileCache, GuestInstance, GuestProgram, GuestRecipe, SandboxPolicy, StreamFormats, World,
    engine_for,
};
use crate::lifecycle::{self, Clocking, Deadlines, Lifecycle};
use crate::media::{AudioFormat, BufferPool, Fps, VideoFormat};
use crate::sink::{AudioSink, NullSink, VideoSink};
use crate::source::{AudioSource, VideoSource};
use crate::spec::{AudioInputSpec, AudioOutputSpec, VideoInputSpec, VideoOutputSpec};
use anyhow::{Context as _, anyhow, bail};
use stages::{Lane, ProcessLanes, RunControl, Timing};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Queue depths between stages. Deep enough to absorb jitter, shallow
/// enough to keep latency low in real time.
const AUDIO_QUEUE: usize = 16;
const VIDEO_QUEUE: usize = 4;

/// Defaults, as in the original streamer.
pub const DEFAULT_BLOCK_FRAMES: u32 = 512;
pub const DEFAULT_SAMPLE_RATE: u32 = 48_000;
pub const DEFAULT_CHANNELS: u16 = 2;
pub const DEFAULT_WIDTH: u32 = 640;
pub const DEFAULT_HEIGHT: u32 = 360;
pub const DEFAULT_FPS: f64 = 30.0;
pub const DEFAULT_MAX_UNSYNCED: Duration = Duration::from_millis(10);

/// The guest's lifecycle as the pipeline runs it.
pub type GuestLifecycle = Lifecycle<WorkshopHandle>;

/// Where compiled guests are cached.
#[derive(Debug, Clone, Default)]
pub enum CacheSetting {
    /// `$SANDSTREAM_CACHE_DIR` or the user's cache directory.
    #[default]
    Default,
    Dir(PathBuf),
    Off,
}

enum GuestChoice {
    Path(PathBuf),
    Program(Arc<GuestProgram>),
}

enum AudioIn {
    Spec(AudioInputSpec),
    Source(Box<dyn AudioSource>),
}

enum VideoIn {
    Spec(VideoInputSpec),
    Source(Box<dyn VideoSource>),
}

enum AudioOut {
    Spec(AudioOutputSpec),
    Sink(Box<dyn AudioSink>),
}

enum VideoOut {
    Spec(VideoOutputSpec),
    Sink(Box<dyn VideoSink>),
}

/// Configures a [`Streamer`]: a guest, its configuration, inputs, outputs
/// and timing. Mirrors the original `AudioVideoStreamer`'s parameters.
#[derive(Default)]
pub struct StreamerBuilder {
    guest: Option<GuestChoice>,
    config: Vec<(String, String)>,
    audio_in: Option<AudioIn>,
    audio_out: Vec<AudioOut>,
    video_in: Option<VideoIn>,
    video_out: Vec<VideoOut>,
    block_frames: Option<u32>,
    sample_rate: Option<u32>,
    channels: Option<u16>,
    width: Option<u32>,
    height: Option<u32>,
    fps: Option<f64>,
    max_unsynced: Option<Duration>,
    realtime: bool,
    duration: Option<Duration>,
    cache: CacheSetting,
    sandbox: SandboxPolicy,
    crossfade: Duration,
}

impl StreamerBuilder {
    /// Crossfade audio from a swapped-out guest to the new one over this
    /// long, to avoid a click (default: switch at once).
    pub fn crossfade(mut self, duration: Duration) -> Self {
        self.crossfade = duration;
        self
    }

    /// Deadlines, memory cap, fault policy, limiter (see [`SandboxPolicy`]).
    pub fn sandbox(mut self, policy: SandboxPolicy) -> Self {
        self.sandbox = policy;
        self
    }

    /// The guest component to run, loaded from a file at `build()`.
    pub fn guest_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.guest = Some(GuestChoice::Path(path.into()));
        self
    }

    /// An already loaded guest (compiled once, shared between streamers).
    pub fn guest(mut self, program: Arc<GuestProgram>) -> Self {
        self.guest = Some(GuestChoice::Program(program));
        self
    }

    /// One configuration entry passed to the guest's `configure`. A later
    /// value for the same key replaces an earlier one.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        self.config.retain(|(k, _)| *k != key);
        self.config.push((key, value.into()));
        self
    }

    pub fn audio_input(mut self, spec: AudioInputSpec) -> Self {
        self.audio_in = Some(AudioIn::Spec(spec));
        self
    }

    /// A custom audio source (a device, a test signal...).
    pub fn audio_source(mut self, source: Box<dyn AudioSource>) -> Self {
        self.audio_in = Some(AudioIn::Source(source));
        self
    }

    /// Adds an audio output; several may be given (all get every block).
    pub fn audio_output(mut self, spec: AudioOutputSpec) -> Self {
        self.audio_out.push(AudioOut::Spec(spec));
        self
    }

    pub fn audio_sink(mut self, sink: Box<dyn AudioSink>) -> Self {
        self.audio_out.push(AudioOut::Sink(sink));
        self
    }

    pub fn video_input(mut self, spec: VideoInputSpec) -> Self {
        self.video_in = Some(VideoIn::Spec(spec));
        self
    }

    pub fn video_source(mut self, source: Box<dyn VideoSource>) -> Self {
        self.video_in = Some(VideoIn::Source(source));
        self
    }

    pub fn video_output(mut self, spec: VideoOutputSpec) -> Self {
        self.video_out.push(VideoOut::Spec(spec));
        self
    }

    pub fn video_sink(mut self, sink: Box<dyn VideoSink>) -> Self {
        self.video_out.push(VideoOut::Sink(sink));
        self
    }

    /// Audio frames per guest call (the original's processing size).
    pub fn block_frames(mut self, frames: u32) -> Self {
        self.block_frames = Some(frames);
        self
    }

    /// Sample rate of synthetic audio; for a file, the rate it must have.
    pub fn sample_rate(mut self, hz: u32) -> Self {
        self.sample_rate = Some(hz);
        self
    }

    /// Channels of synthetic audio; for a file, the count it must have.
    pub fn channels(mut self, channels: u16) -> Self {
        self.channels = Some(channels);
        self
    }

    /// Frame size of the test pattern; for a file, the size it must have.
    pub fn frame_size(mut self, width: u32, height: u32) -> Self {
        self.width = Some(width);
        self.height = Some(height);
        self
    }

    /// Frame rate of the pattern, and a cap for faster sources (frames
    /// beyond it are skipped and counted).
    pub fn fps(mut self, fps: f64) -> Self {
        self.fps = Some(fps);
        self
    }

    /// How far apart audio and video output may drift (real time only).
    pub fn max_unsynced(mut self, max: Duration) -> Self {
        self.max_unsynced = Some(max);
        self
    }

    /// Pace inputs to the clock (as live capture would) instead of reading
    /// as fast as possible; enables the sync stage.
    pub fn realtime(mut self, realtime: bool) -> Self {
        self.realtime = realtime;
        self
    }

    /// Stop after this much media time.
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = Some(duration);
        self
    }

    pub fn cache(mut self, cache: CacheSetting) -> Self {
        self.cache = cache;
        self
    }

    /// Loads the guest, opens inputs and outputs, instantiates the guest
    /// and calls its `configure`. Nothing runs until [`Streamer::start`].
    ///
    /// # Errors
    /// Any bad input: the guest file, an input or output, conflicting
    /// formats, or the guest refusing its configuration.
    pub fn build(self) -> anyhow::Result<Streamer> {
        let cache = match &self.cache {
            CacheSetting::Default => CompileCache::default_location(),
            CacheSetting::Dir(dir) => Some(CompileCache::new(dir)),
            CacheSetting::Off => None,
        };
        let program = match self.guest {
            None => bail!("no guest given"),
            Some(GuestChoice::Program(program)) => program,
            Some(GuestChoice::Path(path)) => {
                let engine = engine_for(self.sandbox.trusted)?;
                let program =
                    GuestProgram::load_within(&engine, &path, cache.as_ref(), self.sandbox.load)
                        .with_context(|| format!("cannot use {} as a guest", path.display()))?;
                Arc::new(program)
            }
        };
        let world = program.world();
        check_streams_match_world(&program, self.audio_in.is_some(), self.video_in.is_some())?;

        let block_frames = self.block_frames.unwrap_or(DEFAULT_BLOCK_FRAMES);
        if !(1..=1 << 20).contains(&block_frames) {
            bail!("block size must be between 1 and 1048576 frames, got {block_frames}");
        }
        let max_unsynced = self.max_unsynced.unwrap_or(DEFAULT_MAX_UNSYNCED);

        let audio = match self.audio_in {
            None => None,
            Some(input) => Some(open_audio(
                input,
                self.audio_out,
                self.sample_rate,
                self.channels,
            )?),
        };
        let video = match self.video_in {
            None => None,
            Some(input) => Some(open_video(
                input,
                self.video_out,
                self.width,
                self.height,
                self.fps,
            )?),
        };
        let endless = audio.as_ref().is_some_and(|a| a.source.is_endless())
            || video.as_ref().is_some_and(|v| v.source.is_endless());
        if endless && self.duration.is_none() && !self.realtime {
            let which = [
                audio
                    .as_ref()
                    .filter(|a| a.source.is_endless())
                    .map(|a| a.source.describe()),
                video
                    .as_ref()
                    .filter(|v| v.source.is_endless())
                    .map(|v| v.source.describe()),
            ];
            let which: Vec<String> = which.into_iter().flatten().collect();
            bail!(
                "{} never ends: give --duration SECS, or --realtime and stop with Ctrl-C",
                which.join(" and ")
            );
        }

        let formats = StreamFormats {
            audio: audio
                .as_ref()
                .filter(|_| world.processes_audio())
                .map(|a| (a.format, block_frames)),
            video: video
                .as_ref()
                .filter(|_| world.processes_video())
                .map(|v| v.output_format),
        };
        // The ticker must run before `configure`, which has a deadline too.
        let ticker = if self.sandbox.trusted {
            tracing::warn!(
                "trusted mode: no deadlines, a guest that loops forever freezes the stream"
            );
            None
        } else {
            Some(
                EpochTicker::start(program.engine().clone())
                    .context("starting the epoch ticker")?,
            )
        };
        let deadlines = deadlines(&self.sandbox, self.realtime, &formats);
        let run = Arc::new(RunControl::default());
        let recipe = GuestRecipe {
            program: program.clone(),
            config: Arc::new(self.config),
        };
        let maker = Maker {
            formats,
            policy: self.sandbox.clone(),
            deadlines,
        };
        let first = maker.make(&recipe);
        if let Ok(instance) = &first {
            describe_data_paths(&program, &formats, instance);
        }
        let (controller, control, workshop) =
            Controller::new(recipe.clone(), maker, cache, run.counters.clone());
        let options = lifecycle::Options {
            on_fault: self.sandbox.on_fault,
            deadlines,
            clocking: if self.realtime {
                Clocking::RealTime
            } else {
                Clocking::Offline
            },
        };
        let mut guest = Lifecycle::start(workshop, recipe, first, options, run.counters.clone())?;
        if let Some((format, _)) = formats.audio {
            guest.set_crossfade_frames(
                (self.crossfade.as_secs_f64() * f64::from(format.sample_rate)).round() as u64,
            );
        }

        Ok(Streamer {
            program,
            guest,
            controller,
            control,
            run,
            ticker,
            sandbox: self.sandbox,
            deadlines,
            audio,
            video,
            block_frames,
            max_unsynced,
            realtime: self.realtime,
            duration: self.duration,
        })
    }
}

/// Says once how each stream reaches the guest, with the reason when it is
/// not the mapped path the guest offers.
fn describe_data_paths(program: &GuestProgram, formats: &StreamFormats, instance: &GuestInstance) {
    if formats.audio.is_some() && program.world().processes_audio() {
        tracing::info!(
            "guest {}: audio through {}",
            program.name(),
            instance.audio_path()
        );
    }
    if formats.video.is_some() && program.world().processes_video() {
        tracing::info!(
            "guest {}: video through {}",
            program.name(),
            instance.video_path()
        );
    }
}

/// Per-call budgets. In real time a call must fit its share of the
/// stream (half an audio block, one video frame), and a state handoff,
/// which holds the stream between two blocks, the share of the streams it
/// holds; offline, deadlines only catch hangs.
fn deadlines(policy: &SandboxPolicy, realtime: bool, formats: &StreamFormats) -> Deadlines {
    let audio = formats
        .audio
        .map_or(sandbox::OFFLINE_DEADLINE, |(format, block)| {
            let block = Duration::from_nanos(format.frame_time_ns(u64::from(block)));
            if realtime {
                (block / 2).max(Duration::from_millis(1))
            } else {
                sandbox::OFFLINE_DEADLINE
            }
        });
    let video = formats.video.map_or(sandbox::OFFLINE_DEADLINE, |format| {
        if realtime {
            Duration::from_nanos(format.fps.frame_time_ns(1))
        } else {
            sandbox::OFFLINE_DEADLINE
        }
    });
    let audio = policy.deadline.unwrap_or(audio);
    let video = policy.deadline.unwrap_or(video);
    let streams = [formats.audio.map(|_| audio), formats.video.map(|_| video)];
    Deadlines {
        audio,
        video,
        setup: sandbox::SETUP_DEADLINE.max(audio).max(video),
        state: streams
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(sandbox::OFFLINE_DEADLINE),
    }
}

fn check_streams_match_world(
    program: &GuestProgram,
    has_audio: bool,
    has_video: bool,
) -> anyhow::Result<()> {
    let world = program.world();
    let name = program.name();
    if !has_audio && !has_video {
        bail!(
            "nothing to process: give an audio input (--audio-in) and/or a video input (--video-in)"
        );
    }
    match world {
        World::Audio if !has_audio => {
            bail!("{name} implements {world}, but no audio input was given (--audio-in)")
        }
        World::Video if !has_video => {
            bail!("{name} implements {world}, but no video input was given (--video-in)")
        }
        _ => {}
    }
    if has_audio && !world.processes_audio() {
        tracing::info!("{name} does not process audio: audio passes through unchanged");
    }
    if has_video && !world.processes_video() {
        tracing::info!("{name} does not process video: video passes through unchanged");
    }
    Ok(())
}

struct AudioPlan {
    source: Box<dyn AudioSource>,
    sinks: Vec<Box<dyn AudioSink>>,
    format: AudioFormat,
}

struct VideoPlan {
    source: Box<dyn VideoSource>,
    sinks: Vec<Box<dyn VideoSink>>,
    /// The source's format with the fps cap applied.
    output_format: VideoFormat,
}

fn open_audio(
    input: AudioIn,
    outputs: Vec<AudioOut>,
    sample_rate: Option<u32>,
    channels: Option<u16>,
) -> anyhow::Result<AudioPlan> {
    let wanted = AudioFormat {
        sample_rate: sample_rate.unwrap_or(DEFAULT_SAMPLE_RATE),
        channels: channels.unwrap_or(DEFAULT_CHANNELS),
    };
    if !(1..=768_000).contains(&wanted.sample_rate) || !(1..=64).contains(&wanted.channels) {
        bail!("unsupported audio format {wanted} (1-768000 Hz, 1-64 channels)");
    }
    let source = match input {
        AudioIn::Spec(spec) => spec.open(wanted)?,
        AudioIn::Source(source) => source,
    };
    let format = source.format();
    let conflict = |flag: &str, asked: String, actual: String| {
        anyhow!(
            "{} is {actual}, but {flag} {asked} was asked for (resampling is not supported yet: \
             drop the flag or convert the file, e.g. with sox)",
            source.describe()
        )
    };
    if let Some(rate) = sample_rate.filter(|r| *r != format.sample_rate) {
        return Err(conflict(
            "--sample-rate",
            rate.to_string(),
            format!("{} Hz", format.sample_rate),
        ));
    }
    if let Some(ch) = channels.filter(|c| *c != format.channels) {
        return Err(conflict(
            "--channels",
            ch.to_string(),
            format!("{} channels", format.channels),
        ));
    }
    let mut sinks = Vec::new();
    for output in outputs {
        sinks.push(match output {
            AudioOut::Spec(spec) => spec.open(format)?,
            AudioOut::Sink(sink) => sink,
        });
    }
    if sinks.is_empty() {
        tracing::info!("no audio output given: processed audio is discarded (--audio-out null)");
        sinks.push(Box::new(NullSink));
    }
    Ok(AudioPlan {
        source,
        sinks,
        format,
    })
}

fn open_video(
    input: VideoIn,
    outputs: Vec<VideoOut>,
    width: Option<u32>,
    height: Option<u32>,
    fps: Option<f64>,
) -> anyhow::Result<VideoPlan> {
    let fps_asked = match fps {
        None => None,
        Some(f) => Some(
            Fps::from_f64(f).ok_or_else(|| anyhow!("--fps must be between 0 and 1000, got {f}"))?,
        ),
    };
    let wanted = VideoFormat {
        width: width.unwrap_or(DEFAULT_WIDTH),
        height: height.unwrap_or(DEFAULT_HEIGHT),
        fps: fps_asked.unwrap_or(Fps {
            num: DEFAULT_FPS as u32,
            den: 1,
        }),
    };
    if !(2..=7680).contains(&wanted.width) || !(2..=4320).contains(&wanted.height) {
        bail!(
            "unsupported frame size {}x{} (2x2 to 7680x4320)",
            wanted.width,
            wanted.height
        );
    }
    let source = match input {
        VideoIn::Spec(spec) => spec.open(wanted)?,
        VideoIn::Source(source) => source,
    };
    let format = source.format();
    let size_asked = width.is_some() || height.is_some();
    if size_asked && (wanted.width, wanted.height) != (format.width, format.height) {
        bail!(
            "{} is {}x{}, but {}x{} was asked for (scaling is not supported yet: drop --width/--height)",
            source.describe(),
            format.width,
            format.height,
            wanted.width,
            wanted.height
        );
    }
    let output_fps = match fps_asked {
        Some(cap) if cap.as_f64() < format.fps.as_f64() => cap,
        _ => format.fps,
    };
    let output_format = VideoFormat {
        fps: output_fps,
        ..format
    };
    let mut sinks = Vec::new();
    for output in outputs {
        sinks.push(match output {
            VideoOut::Spec(spec) => spec.open(output_format)?,
            VideoOut::Sink(sink) => sink,
        });
    }
    if sinks.is_empty() {
        tracing::info!("no video output given: processed video is discarded (--video-out null)");
        sinks.push(Box::new(NullSink));
    }
    Ok(VideoPlan {
        source,
        sinks,
        output_format,
    })
}

/// A configured, not yet running stream.
pub struct Streamer {
    program: Arc<GuestProgram>,
    guest: GuestLifecycle,
    controller: Controller,
    control: ControlHandle,
    run: Arc<RunControl>,
    ticker: Option<EpochTicker>,
    sandbox: SandboxPolicy,
    deadlines: Deadlines,
    audio: Option<AudioPlan>,
    video: Option<VideoPlan>,
    block_frames: u32,
    max_unsynced: Duration,
    realtime: bool,
    duration: Option<Duration>,
}

impl Streamer {
    pub fn builder() -> StreamerBuilder {
        StreamerBuilder::default()
    }

    pub fn program(&self) -> &GuestProgram {
        &self.program
    }

    pub fn audio_format(&self) -> Option<AudioFormat> {
        self.audio.as_ref().map(|a| a.format)
    }

    pub fn video_format(&self) -> Option<VideoFormat> {
        self.video.as_ref().map(|v| v.output_format)
    }

    /// A one-paragraph description of what will run, for the user.
    pub fn describe(&self) -> String {
        let mut lines = vec![format!(
            "guest {} ({})",
            self.program.name(),
            self.program.world()
        )];
        if let Some(a) = &self.audio {
            let sinks: Vec<String> = a.sinks.iter().map(|s| s.describe()).collect();
            lines.push(format!(
                "audio {} [{}], {}-frame blocks -> {}",
                a.source.describe(),
                a.format,
                self.block_frames,
                sinks.join(", ")
            ));
        }
        if let Some(v) = &self.video {
            let sinks: Vec<String> = v.sinks.iter().map(|s| s.describe()).collect();
            lines.push(format!(
                "video {} [{}] -> {}",
                v.source.describe(),
                v.output_format,
                sinks.join(", ")
            ));
        }
        let sandbox = &self.sandbox;
        lines.push(if sandbox.trusted {
            format!(
                "sandbox: TRUSTED (no deadlines); {}",
                sandbox.grants.describe()
            )
        } else {
            format!(
                "sandbox: {}; deadline {:.1} ms audio / {:.1} ms video; memory limit {} MiB; \
                 on fault: {:?}; limiter {}",
                sandbox.grants.describe(),
                self.deadlines.audio.as_secs_f64() * 1e3,
                self.deadlines.video.as_secs_f64() * 1e3,
                sandbox.memory_limit >> 20,
                sandbox.on_fault,
                if sandbox.limiter { "on" } else { "off" }
            )
        });
        lines.push(if self.realtime {
            format!(
                "real time, A/V kept within {} ms",
                self.max_unsynced.as_millis()
            )
        } else {
            "offline: as fast as possible, media-time timestamps".to_string()
        });
        lines.join("\n")
    }

    /// Starts every stage on its own thread.
    ///
    /// # Errors
    /// When a thread cannot be spawned.
    pub fn start(self) -> anyhow::Result<RunningStream> {
        let run = self.run;
        let timing = Timing {
            // A small lead so the first block is not already late.
            realtime_start_ns: self.realtime.then(|| clock::now_ns() + 20_000_000),
            duration_ns: self.duration.map(|d| d.as_nanos() as u64),
        };
        let world = self.program.world();
        let mut threads = Vec::new();
        let mut spawn = |name: &str, body: Box<dyn FnOnce() + Send>| -> anyhow::Result<()> {
            let handle = std::thread::Builder::new()
                .name(format!("sandstream-{name}"))
                .spawn(body)
                .with_context(|| format!("spawning the {name} thread"))?;
            threads.push((name.to_string(), handle));
            Ok(())
        };

        // Reader -> [processor] -> [sync] -> writer, per stream.
        let mut lanes = ProcessLanes {
            audio: None,
            video: None,
        };
        let mut audio_to_sync = None;
        let mut video_to_sync = None;
        let mut audio_writer = None;
        let mut video_writer = None;
        let use_sync = self.realtime && self.audio.is_some() && self.video.is_some();

        if let Some(plan) = self.audio {
            let samples = self.block_frames as usize * usize::from(plan.format.channels);
            let pool = BufferPool::new(AUDIO_QUEUE * 3, samples);
            let (read_tx, read_rx) = crossbeam_channel::bounded(AUDIO_QUEUE);
            let (write_tx, write_rx) = crossbeam_channel::bounded(AUDIO_QUEUE);
            let processed_rx = if world.processes_audio() {
                let (tx, rx) = crossbeam_channel::bounded(AUDIO_QUEUE);
                lanes.audio = Some(Lane {
                    input: read_rx,
                    output: tx,
                    pool: pool.clone(),
                    format: plan.format,
                });
                rx
            } else {
                read_rx
            };
            let into_writer = if use_sync {
                audio_to_sync = Some((processed_rx, write_tx));
                write_rx
            } else {
                drop(write_tx);
                drop(write_rx);
                processed_rx
            };
            let (source, block, run_r, pool_r) = (
                plan.source,
                self.block_frames as usize,
                run.clone(),
                pool.clone(),
            );
            spawn(
                "audio-read",
                Box::new(move || stages::read_audio(source, block, timing, pool_r, read_tx, run_r)),
            )?;
            let (sinks, format, run_w) = (plan.sinks, plan.format, run.clone());
            audio_writer = Some(
                std::thread::Builder::new()
                    .name("sandstream-audio-write".into())
                    .spawn(move || stages::write_audio(sinks, format, pool, into_writer, run_w))?,
            );
        }

        if let Some(plan) = self.video {
            let format = plan.output_format;
            let pool = BufferPool::new(VIDEO_QUEUE * 3, format.frame_bytes());
            let (read_tx, read_rx) = crossbeam_channel::bounded(VIDEO_QUEUE);
            let (write_tx, write_rx) = crossbeam_channel::bounded(VIDEO_QUEUE);
            let processed_rx = if world.processes_video() {
                let (tx, rx) = crossbeam_channel::bounded(VIDEO_QUEUE);
                lanes.video = Some(Lane {
                    input: read_rx,
                    output: tx,
                    pool: pool.clone(),
                    format,
                });
                rx
            } else {
                read_rx
            };
            let into_writer = if use_sync {
                video_to_sync = Some((processed_rx, write_tx));
                write_rx
            } else {
                drop(write_tx);
                drop(write_rx);
                processed_rx
            };
            let (source, run_r, pool_r) = (plan.source, run.clone(), pool.clone());
            spawn(
                "video-read",
                Box::new(move || {
                    stages::read_video(source, format.fps, timing, pool_r, read_tx, run_r)
                }),
            )?;
            let (sinks, run_w) = (plan.sinks, run.clone());
            video_writer = Some(
                std::thread::Builder::new()
                    .name("sandstream-video-write".into())
                    .spawn(move || {
                        stages::write_video(sinks, format.fps, pool, into_writer, run_w)
                    })?,
            );
        }

        // Swaps, reconfigurations and restarts are prepared on their own
        // thread; the processing thread only switches. The controller is
        // not joined: it ends when the processing thread has ended.
        let controller = self.controller;
        std::thread::Builder::new()
            .name("sandstream-control".into())
            .spawn(move || controller.run())
            .context("spawning the control thread")?;
        let (guest, run_p) = (self.guest, run.clone());
        let order = if self.realtime {
            stages::Order::Arrival
        } else {
            stages::Order::MediaTime
        };
        let limiter = self.sandbox.limiter;
        spawn(
            "process",
            Box::new(move || stages::process(guest, lanes, run_p, order, limiter)),
        )?;

        if let (Some(audio), Some(video)) = (audio_to_sync, video_to_sync) {
            let max_unsynced = self.max_unsynced.as_nanos() as u64;
            // A stream that stalls for 200 ms no longer holds the other back.
            let aligner = Aligner::new(max_unsynced, max_unsynced + 200_000_000);
            let run_s = run.clone();
            spawn(
                "sync",
                Box::new(move || stages::sync(audio, video, aligner, run_s)),
            )?;
        }

        Ok(RunningStream {
            run,
            threads,
            audio_writer,
            video_writer,
            _ticker: self.ticker,
            control: self.control,
            watcher: None,
        })
    }
}

/// Reads a running stream's counters from another thread.
#[derive(Clone)]
pub struct StatsHandle(Arc<RunControl>);

impl StatsHandle {
    pub fn report(&self) -> Report {
        self.0.counters.report()
    }
}

/// Stops a running stream from another thread (e.g. a Ctrl-C handler).
#[derive(Clone)]
pub struct StopHandle(Arc<RunControl>);

impl StopHandle {
    /// Asks every stage to stop; outputs are finalized normally.
    pub fn stop(&self) {
        self.0.request_stop();
    }
}

/// A stream whose stages are running.
pub struct RunningStream {
    run: Arc<RunControl>,
    threads: Vec<(String, JoinHandle<()>)>,
    audio_writer: Option<JoinHandle<Vec<Box<dyn AudioSink>>>>,
    video_writer: Option<JoinHandle<Vec<Box<dyn VideoSink>>>>,
    /// Drives deadlines until the stream ends.
    _ticker: Option<EpochTicker>,
    control: ControlHandle,
    watcher: Option<FileWatcher>,
}

impl RunningStream {
    /// Swaps guests and changes configuration while running.
    pub fn control(&self) -> ControlHandle {
        self.control.clone()
    }

    /// Swaps to the file at `path` whenever it changes (validated first: a
    /// broken save leaves the running guest in place).
    ///
    /// # Errors
    /// When the file's directory cannot be watched.
    pub fn watch(&mut self, path: &std::path::Path) -> anyhow::Result<()> {
        self.watcher = Some(FileWatcher::start(path, self.control.clone())?);
        Ok(())
    }

    /// Asks the stream to stop; then call [`RunningStream::wait`].
    pub fn stop(&self) {
        self.run.request_stop();
    }

    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.run.clone())
    }

    pub fn stats_handle(&self) -> StatsHandle {
        StatsHandle(self.run.clone())
    }

    /// The counters so far.
    pub fn report(&self) -> Report {
        self.run.counters.report()
    }

    /// Waits for the end of the stream (inputs exhausted, duration reached
    /// or stopped), then completes the outputs.
    ///
    /// # Errors
    /// The first failure of any stage. Outputs of a failed run are removed,
    /// never left truncated.
    pub fn wait(self) -> anyhow::Result<Report> {
        for (name, handle) in self.threads {
            if handle.join().is_err() {
                self.run
                    .fail(anyhow!("internal error: the {name} stage panicked"));
            }
        }
        let audio_sinks = join_writer(self.audio_writer, "audio-write", &self.run);
        let video_sinks = join_writer(self.video_writer, "video-write", &self.run);
        // Decide once for all outputs, so no file is committed from a run
        // that failed in another stream.
        let failed = self.run.failed();
        for sink in audio_sinks {
            if failed {
                sink.abort();
            } else if let Err(err) = sink.finish() {
                self.run.fail(err);
            }
        }
        for sink in video_sinks {
            if failed {
                sink.abort();
            } else if let Err(err) = sink.finish() {
                self.run.fail(err);
            }
        }
        match self.run.take_failure() {
            Some(err) => Err(err),
            None => Ok(self.run.counters.report()),
        }
    }
}

fn join_writer<S>(handle: Option<JoinHandle<Vec<S>>>, name: &str, run: &RunControl) -> Vec<S> {
    match handle.map(JoinHandle::join) {
        None => Vec::new(),
        Some(Ok(sinks)) => sinks,
        Some(Err(_)) => {
            run.fail(anyhow!("internal error: the {name} stage panicked"));
            Vec::new()
        }
    }
}
