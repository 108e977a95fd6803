//! The streamer: sources -> read -> process (guest) -> sync -> write -> sinks,
//! one thread per stage, joined by bounded channels. See
//! `docs/ARCHITECTURE.md` for the picture.

pub mod budget;
mod control;
mod pace;
mod process;
mod queue;
mod read;
mod safety;
mod sync;
mod write;

pub use crate::metrics::{Counters, Report};
pub use control::{Clocking, RunControl, UserStop};
pub use read::{Feed, PulledFeed, Tap, TappedFeed};
pub use sync::{Hold, LipSync, Released};

use crate::clock;
use crate::guest::controller::{ControlHandle, Controller, FileWatcher, Maker, WorkshopHandle};
use crate::guest::sandbox::{self, EpochTicker};
use crate::guest::{
    CompileCache, GuestInstance, GuestProgram, GuestRecipe, SandboxPolicy, StreamFormats, World,
    engine_for,
};
use crate::lifecycle::{self, Deadlines, Lifecycle};
use crate::media::{AudioBlock, AudioFormat, BufferPool, Fps, Item, VideoFormat, VideoFrame};
use crate::sink::{AudioSink, NullSink, VideoSink};
use crate::source::{AudioSource, Source, VideoSource};
use crate::spec::{AudioInputSpec, AudioOutputSpec, VideoInputSpec, VideoOutputSpec};
use anyhow::{Context as _, anyhow, bail};
use process::{GuestCall, Lane, Outlet, ProcessLanes};
use queue::Handoff;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use sync::SyncLane;
use write::Sinks;

/// Items queued between two stages offline, where nothing is dropped: deep
/// enough that the stages overlap. (Real time: from the latency budget.)
const OFFLINE_QUEUE_DEPTH: usize = 8;

/// Ends the run for a stage's error: a device that went away stops it with
/// its outputs kept; anything else fails it (outputs discarded).
fn end_for(run: &RunControl, error: anyhow::Error) {
    if let Some(stop) = error.downcast_ref::<control::UserStop>() {
        tracing::info!("{stop}: stopping");
        run.request_stop();
    } else if crate::device::is_disconnect(&error) {
        run.interrupt(error);
    } else {
        run.fail(error);
    }
}

/// Defaults, as in the original streamer.
pub const DEFAULT_BLOCK_FRAMES: u32 = 512;
pub const DEFAULT_SAMPLE_RATE: u32 = 48_000;
pub const DEFAULT_CHANNELS: u16 = 2;
pub const DEFAULT_WIDTH: u32 = 640;
pub const DEFAULT_HEIGHT: u32 = 360;
pub const DEFAULT_FPS: f64 = 30.0;
pub const DEFAULT_MAX_UNSYNCED: Duration = Duration::from_millis(10);
/// How long one stream waits for the other to start (a camera can take a
/// second to deliver its first frame).
const SYNC_START_HOLD_NS: u64 = 2_000_000_000;

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
    Ready(Input<AudioBlock>),
}

enum VideoIn {
    Spec(VideoInputSpec),
    Ready(Input<VideoFrame>),
}

/// An opened input: pulled by the read stage, or a device that pushes.
pub enum Input<I: Item> {
    Pulled(Box<dyn Source<I>>),
    Live(Box<dyn Feed<I>>),
}

impl<I: Item> Input<I> {
    fn format(&self) -> I::Format {
        match self {
            Self::Pulled(source) => source.format(),
            Self::Live(feed) => feed.format(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Pulled(source) => source.describe(),
            Self::Live(feed) => feed.describe(),
        }
    }

    fn is_endless(&self) -> bool {
        match self {
            Self::Pulled(source) => source.is_endless(),
            Self::Live(_) => true,
        }
    }

    fn is_live(&self) -> bool {
        matches!(self, Self::Live(_))
    }
}

enum AudioOut {
    Spec(AudioOutputSpec),
    Sink(Box<AudioSink>),
}

enum VideoOut {
    Spec(VideoOutputSpec),
    Sink(Box<VideoSink>),
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
    devices: DeviceSettings,
    preview_input: bool,
}

/// How audio devices are opened.
#[derive(Debug, Clone, Default)]
pub struct DeviceSettings {
    /// The host API by name (`alsa`, `pulseaudio`…); the OS default if none.
    pub host: Option<String>,
    /// Frames per device callback [default: 512].
    pub buffer_frames: Option<u32>,
    /// The latency budget: the longest from capture to the output playing
    /// an item (see [`budget`]) [default: for audio, a block and two device
    /// buffers plus 6 buffers or blocks of playback ring, at least 50 ms of
    /// it; for video, 3 frames, at least 100 ms].
    pub latency: Option<Duration>,
}

/// Frames per device callback unless told: the smallest size that ran
/// reliably on a loaded 2-core VM (docs/PERFORMANCE.md).
pub const DEFAULT_DEVICE_BUFFER: u32 = 512;

impl DeviceSettings {
    fn buffer(&self) -> u32 {
        self.buffer_frames.unwrap_or(DEFAULT_DEVICE_BUFFER)
    }
}

impl StreamerBuilder {
    /// Host API, device buffer and latency budget for `device:` inputs and
    /// outputs.
    pub fn devices(mut self, settings: DeviceSettings) -> Self {
        self.devices = settings;
        self
    }

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

    /// A custom audio source the pipeline pulls from (a test signal...).
    pub fn audio_source(mut self, source: Box<AudioSource>) -> Self {
        self.audio_in = Some(AudioIn::Ready(Input::Pulled(source)));
        self
    }

    /// Audio pushed by a device (see [`crate::device`]): the run is live.
    pub fn audio_feed(mut self, feed: Box<dyn Feed<AudioBlock>>) -> Self {
        self.audio_in = Some(AudioIn::Ready(Input::Live(feed)));
        self
    }

    /// Adds an audio output; several may be given (all get every block).
    pub fn audio_output(mut self, spec: AudioOutputSpec) -> Self {
        self.audio_out.push(AudioOut::Spec(spec));
        self
    }

    pub fn audio_sink(mut self, sink: Box<AudioSink>) -> Self {
        self.audio_out.push(AudioOut::Sink(sink));
        self
    }

    pub fn video_input(mut self, spec: VideoInputSpec) -> Self {
        self.video_in = Some(VideoIn::Spec(spec));
        self
    }

    pub fn video_source(mut self, source: Box<VideoSource>) -> Self {
        self.video_in = Some(VideoIn::Ready(Input::Pulled(source)));
        self
    }

    /// Video pushed by a camera (see [`crate::camera`]): the run is live.
    pub fn video_feed(mut self, feed: Box<dyn Feed<VideoFrame>>) -> Self {
        self.video_in = Some(VideoIn::Ready(Input::Live(feed)));
        self
    }

    /// Shows the input beside the output in the preview window
    /// (`--video-out window`).
    pub fn preview_input(mut self, on: bool) -> Self {
        self.preview_input = on;
        self
    }

    pub fn video_output(mut self, spec: VideoOutputSpec) -> Self {
        self.video_out.push(VideoOut::Spec(spec));
        self
    }

    pub fn video_sink(mut self, sink: Box<VideoSink>) -> Self {
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
                (self.sample_rate, self.channels),
                block_frames,
                &self.devices,
            )?),
        };
        let video = match self.video_in {
            None => None,
            Some(input) => Some(open_video(
                input,
                self.video_out,
                (self.width, self.height, self.fps),
                self.preview_input,
                &self.devices,
            )?),
        };
        let live = audio.as_ref().is_some_and(|a| a.input.is_live())
            || video.as_ref().is_some_and(|v| v.input.is_live());
        // A file played into a device or a virtual camera plays at its own
        // rate, not as fast as the disk reads.
        let real_time_output = audio
            .iter()
            .flat_map(|a| a.sinks.iter().map(|s| (s.is_real_time(), s.describe())))
            .chain(
                video
                    .iter()
                    .flat_map(|v| v.sinks.iter().map(|s| (s.is_real_time(), s.describe()))),
            )
            .find_map(|(real_time, name)| real_time.then_some(name));
        if let Some(output) = &real_time_output
            && !live
            && !self.realtime
        {
            tracing::info!("inputs paced to the clock: {output} plays in real time");
        }
        let clocking = if live {
            Clocking::Live
        } else if self.realtime || real_time_output.is_some() {
            Clocking::Paced
        } else {
            Clocking::Offline
        };
        let endless = audio.as_ref().is_some_and(|a| a.input.is_endless())
            || video.as_ref().is_some_and(|v| v.input.is_endless());
        if endless && self.duration.is_none() && !clocking.is_real_time() {
            let which = [
                audio
                    .as_ref()
                    .filter(|a| a.input.is_endless())
                    .map(|a| a.input.describe()),
                video
                    .as_ref()
                    .filter(|v| v.input.is_endless())
                    .map(|v| v.input.describe()),
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
                .map(|v| v.format),
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
        let deadlines = deadlines(&self.sandbox, clocking.is_real_time(), &formats);
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
            clocking: if clocking.is_real_time() {
                lifecycle::Clocking::RealTime
            } else {
                lifecycle::Clocking::Offline
            },
            // Three quarters by default: room for the old instance to run
            // on until the fresh one is ready.
            recycle_at: (self.sandbox.recycle_at_percent > 0).then(|| {
                self.sandbox.memory_limit / 100 * usize::from(self.sandbox.recycle_at_percent)
            }),
        };
        let mut guest = Lifecycle::start(workshop, recipe, first, options, run.counters.clone())?;
        if let Some((format, _)) = formats.audio {
            guest.set_crossfade_frames(
                (self.crossfade.as_secs_f64() * f64::from(format.sample_rate)).round() as u64,
            );
        }

        let budget = [
            audio.as_ref().map(|a| a.budget),
            video.as_ref().map(|v| v.budget),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or_default();
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
            budget,
            clocking,
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
            bail!(
                "{name} implements {}, but no audio input was given (--audio-in)",
                program.world_name()
            )
        }
        World::Video if !has_video => {
            bail!(
                "{name} implements {}, but no video input was given (--video-in)",
                program.world_name()
            )
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

/// One stream, opened and ready to start.
struct StreamPlan<I: Item> {
    input: Input<I>,
    sinks: Sinks<I>,
    /// What leaves the input stage (for video, with the fps cap applied).
    format: I::Format,
    /// Units per item: the audio block, one video frame.
    chunk: usize,
    /// Sees each input item as it is read (the preview's input side).
    tap: Option<Tap<I>>,
    /// The stream's latency budget (real time).
    budget: Duration,
}

fn open_audio(
    input: AudioIn,
    outputs: Vec<AudioOut>,
    (sample_rate, channels): (Option<u32>, Option<u16>),
    block_frames: u32,
    devices: &DeviceSettings,
) -> anyhow::Result<StreamPlan<AudioBlock>> {
    // The device host is opened once, and only when a device is used.
    let mut host = None;
    let wanted = AudioFormat {
        sample_rate: sample_rate.unwrap_or(DEFAULT_SAMPLE_RATE),
        channels: channels.unwrap_or(DEFAULT_CHANNELS),
    };
    if !(1..=768_000).contains(&wanted.sample_rate) || !(1..=64).contains(&wanted.channels) {
        bail!("unsupported audio format {wanted} (1-768000 Hz, 1-64 channels)");
    }
    let input = match input {
        AudioIn::Spec(AudioInputSpec::Device(name)) => {
            Input::Live(Box::new(crate::device::open_input(
                lazy_host(&mut host, devices)?,
                &name,
                None,
                (sample_rate, channels),
                devices.buffer(),
                block_frames as usize,
            )?))
        }
        AudioIn::Spec(spec) => Input::Pulled(spec.open(wanted)?),
        AudioIn::Ready(input) => input,
    };
    let format = input.format();
    let conflict = |flag: &str, asked: String, actual: String| {
        anyhow!(
            "{} is {actual}, but {flag} {asked} was asked for (resampling is not supported yet: \
             drop the flag or convert the file, e.g. with sox)",
            input.describe()
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
            AudioOut::Spec(AudioOutputSpec::Device(name)) => Box::new(crate::device::open_output(
                lazy_host(&mut host, devices)?,
                &name,
                format,
                devices.buffer(),
                block_frames as usize,
                devices.playback_budget(format, block_frames),
            )?),
            AudioOut::Spec(spec) => spec.open(format)?,
            AudioOut::Sink(sink) => sink,
        });
    }
    if sinks.is_empty() {
        tracing::info!("no audio output given: processed audio is discarded (--audio-out null)");
        sinks.push(Box::new(NullSink));
    }
    Ok(StreamPlan {
        input,
        sinks,
        format,
        chunk: block_frames as usize,
        tap: None,
        budget: devices.audio_budget(format, block_frames),
    })
}

/// The device host, opened on first use.
fn lazy_host<'a>(
    slot: &'a mut Option<cpal::Host>,
    devices: &DeviceSettings,
) -> anyhow::Result<&'a cpal::Host> {
    if slot.is_none() {
        *slot = Some(crate::device::host(devices.host.as_deref())?);
    }
    Ok(slot.as_ref().expect("just set"))
}

fn open_video(
    input: VideoIn,
    outputs: Vec<VideoOut>,
    (width, height, fps): (Option<u32>, Option<u32>, Option<f64>),
    preview_input: bool,
    devices: &DeviceSettings,
) -> anyhow::Result<StreamPlan<VideoFrame>> {
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
    let input = match input {
        VideoIn::Spec(VideoInputSpec::Camera(name)) => {
            // The camera's closest mode is taken (and reported), not refused.
            let request = crate::camera::ModeRequest {
                width: wanted.width,
                height: wanted.height,
                fps: wanted.fps.as_f64(),
            };
            Input::Live(Box::new(crate::camera::open(&name, request)?))
        }
        VideoIn::Spec(spec) => Input::Pulled(spec.open(wanted)?),
        VideoIn::Ready(input) => input,
    };
    let format = input.format();
    let size_asked = width.is_some() || height.is_some();
    if size_asked
        && !input.is_live()
        && (wanted.width, wanted.height) != (format.width, format.height)
    {
        bail!(
            "{} is {}x{}, but {}x{} was asked for (scaling is not supported yet: drop --width/--height)",
            input.describe(),
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
    let mut tap: Option<Tap<VideoFrame>> = None;
    for output in outputs {
        sinks.push(match output {
            VideoOut::Spec(VideoOutputSpec::Window) if preview_input && tap.is_none() => {
                let (mut poster, reader) = crate::sink::latest_frame(format.frame_bytes());
                tap = Some(Box::new(move |frame: &VideoFrame| poster.post(frame)));
                Box::new(crate::sink::WindowSink::open_with_input(
                    "Sandstream",
                    output_format,
                    Some(reader),
                )?)
            }
            VideoOut::Spec(spec) => spec.open(output_format)?,
            VideoOut::Sink(sink) => sink,
        });
    }
    if preview_input && tap.is_none() {
        bail!(
            "--preview-input shows the input beside the output in the preview window: add --video-out window"
        );
    }
    if sinks.is_empty() {
        tracing::info!("no video output given: processed video is discarded (--video-out null)");
        sinks.push(Box::new(NullSink));
    }
    Ok(StreamPlan {
        input,
        sinks,
        format: output_format,
        chunk: 1,
        tap,
        budget: devices.video_budget(output_format),
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
    audio: Option<StreamPlan<AudioBlock>>,
    video: Option<StreamPlan<VideoFrame>>,
    block_frames: u32,
    max_unsynced: Duration,
    /// The latency budget (real time): the larger stream's.
    budget: Duration,
    clocking: Clocking,
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
        self.video.as_ref().map(|v| v.format)
    }

    /// The latency budget real-time runs keep (see [`budget`]).
    pub fn latency_budget(&self) -> Duration {
        self.budget
    }

    /// How the run meets the clock (live when an input is a device).
    pub fn clocking(&self) -> Clocking {
        self.clocking
    }

    /// A one-paragraph description of what will run, for the user.
    pub fn describe(&self) -> String {
        let mut lines = vec![format!(
            "guest {} ({})",
            self.program.name(),
            self.program.world_name()
        )];
        if let Some(a) = &self.audio {
            let sinks: Vec<String> = a.sinks.iter().map(|s| s.describe()).collect();
            lines.push(format!(
                "audio {} [{}], {}-frame blocks -> {}",
                a.input.describe(),
                a.format,
                self.block_frames,
                sinks.join(", ")
            ));
        }
        if let Some(v) = &self.video {
            let sinks: Vec<String> = v.sinks.iter().map(|s| s.describe()).collect();
            lines.push(format!(
                "video {} [{}] -> {}",
                v.input.describe(),
                v.format,
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
        let both = self.audio.is_some() && self.video.is_some();
        let mut keeps = format!(", latency budget {:.0} ms", self.budget.as_secs_f64() * 1e3);
        if both {
            keeps += &format!(
                ", audio and video perceived together within {} ms",
                self.max_unsynced.as_millis()
            );
        }
        lines.push(match self.clocking {
            Clocking::Offline => "offline: as fast as possible, media-time timestamps".to_string(),
            Clocking::Paced => format!("real time: inputs paced to the clock{keeps}"),
            Clocking::Live => format!("live: paced by the devices{keeps}"),
        });
        lines.join("\n")
    }

    /// Starts every stage on its own thread.
    ///
    /// # Errors
    /// When a thread cannot be spawned.
    pub fn start(self) -> anyhow::Result<RunningStream> {
        let run = self.run;
        let real_time = self.clocking.is_real_time();
        let timing = Timing {
            // A small lead so the first block is not already late.
            start_ns: real_time.then(|| clock::now_ns() + 20_000_000),
            duration_ns: self.duration.map(|d| d.as_nanos() as u64),
            real_time,
        };
        let world = self.program.world();
        let use_sync = real_time && self.audio.is_some() && self.video.is_some();
        let sync_plan = use_sync.then_some(SyncPlan {
            budget: self.budget,
            max_unsynced: self.max_unsynced,
        });
        let mut threads = Vec::new();

        // Reader -> [processor] -> [sync] -> writer, per stream.
        let wiring = (sync_plan, timing, &run);
        let audio = (self.audio)
            .map(|plan| launch(plan, world.processes_audio(), wiring, &mut threads))
            .transpose()?;
        let video = (self.video)
            .map(|plan| launch(plan, world.processes_video(), wiring, &mut threads))
            .transpose()?;
        let (audio_lane, audio_to_sync, audio_writer) = Launched::parts(audio);
        let (video_lane, video_to_sync, video_writer) = Launched::parts(video);

        // Swaps, reconfigurations and restarts are prepared on their own
        // thread; the processing thread only switches. The controller is
        // not joined: it ends when the processing thread has ended.
        let controller = self.controller;
        std::thread::Builder::new()
            .name("sandstream-control".into())
            .spawn(move || controller.run())
            .context("spawning the control thread")?;
        let guest = process::Guest {
            lifecycle: self.guest,
            limiter: self.sandbox.limiter,
            timed: real_time,
            pace: pace::Pace::default(),
        };
        let lanes = ProcessLanes {
            audio: audio_lane,
            video: video_lane,
        };
        let order = if real_time {
            process::Order::Deadline
        } else {
            process::Order::MediaTime
        };
        let run_p = run.clone();
        spawn(&mut threads, "process", move || {
            process::process(guest, lanes, &run_p, order);
        })?;

        if let (Some(audio), Some(video)) = (audio_to_sync, video_to_sync) {
            let max_unsynced = self.max_unsynced.as_nanos() as u64;
            let budget = self.budget.as_nanos() as u64;
            let lip_sync = LipSync::new(
                (max_unsynced, budget, SYNC_START_HOLD_NS),
                audio.hold.clone(),
                video.hold.clone(),
            );
            let run_s = run.clone();
            spawn(&mut threads, "sync", move || {
                sync::sync(audio, video, lip_sync, &run_s);
            })?;
        }

        Ok(RunningStream {
            run,
            media_zero_ns: timing.start_ns,
            threads,
            audio_writer,
            video_writer,
            _ticker: self.ticker,
            control: self.control,
            watcher: None,
        })
    }
}

/// When the inputs run against the clock, and when they stop.
#[derive(Debug, Clone, Copy)]
struct Timing {
    /// Real time: the host clock at media time zero of pulled inputs.
    start_ns: Option<u64>,
    /// Stop after this much media time.
    duration_ns: Option<u64>,
    real_time: bool,
}

type Threads = Vec<(String, JoinHandle<()>)>;

fn spawn(
    threads: &mut Threads,
    name: &str,
    body: impl FnOnce() + Send + 'static,
) -> anyhow::Result<()> {
    let handle = std::thread::Builder::new()
        .name(format!("sandstream-{name}"))
        .spawn(body)
        .with_context(|| format!("spawning the {name} thread"))?;
    threads.push((name.to_string(), handle));
    Ok(())
}

/// One stream's running stages, and where the processing stage (and, for
/// A/V in real time, the sync stage) connect.
struct Launched<I: Item> {
    lane: Option<Lane<I>>,
    to_sync: Option<SyncLane<I>>,
    writer: JoinHandle<Sinks<I>>,
}

type LaunchedParts<I> = (
    Option<Lane<I>>,
    Option<SyncLane<I>>,
    Option<JoinHandle<Sinks<I>>>,
);

impl<I: Item> Launched<I> {
    fn parts(launched: Option<Self>) -> LaunchedParts<I> {
        match launched {
            Some(l) => (l.lane, l.to_sync, Some(l.writer)),
            None => (None, None, None),
        }
    }
}

/// What the lip-sync stage keeps to (real time, both streams).
#[derive(Clone, Copy)]
struct SyncPlan {
    /// The run's budget (the larger stream's).
    budget: Duration,
    max_unsynced: Duration,
}

/// Starts a stream's read and write stages and wires the queues between
/// them: read -> [process] -> [sync] -> write.
fn launch<I: GuestCall>(
    plan: StreamPlan<I>,
    processed: bool,
    (sync_plan, timing, run): (Option<SyncPlan>, Timing, &Arc<RunControl>),
    threads: &mut Threads,
) -> anyhow::Result<Launched<I>> {
    use crate::media::StreamFormat as _;
    let real_time = timing.real_time;
    let item_ns = plan.format.unit_time_ns(plan.chunk as u64);
    // In real time every queue holds the budget's worth of items at most.
    let depth = if real_time {
        budget::queue_depth(plan.budget, item_ns)
    } else {
        OFFLINE_QUEUE_DEPTH
    };
    // Queues: read -> [process] -> [sync] -> the last sink's writer.
    let queues = 2 + usize::from(processed) + usize::from(sync_plan.is_some());
    let held = sync_plan.map_or(0, |sync| {
        budget::hold_items(sync.budget, sync.max_unsynced, item_ns)
    });
    let pool = BufferPool::new(
        budget::pool_size(queues, depth, held),
        plan.chunk * plan.format.unit_len(),
    );
    let (read_tx, read_rx) = crossbeam_channel::bounded(depth);
    let read_out = Handoff::new(read_tx, &read_rx, real_time);
    let mut lane = None;
    let mut next = read_rx;
    if processed {
        let (tx, rx) = crossbeam_channel::bounded(depth);
        lane = Some(Lane {
            input: next,
            outlet: Outlet {
                output: Handoff::new(tx, &rx, real_time),
                pool: pool.clone(),
                format: plan.format,
                budget_ns: real_time.then_some(plan.budget.as_nanos() as u64),
            },
        });
        next = rx;
    }
    let mut to_sync = None;
    if sync_plan.is_some() {
        let (tx, rx) = crossbeam_channel::bounded(depth);
        to_sync = Some(SyncLane {
            input: next,
            output: Handoff::new(tx, &rx, real_time),
            hold: Hold {
                items: held,
                pool: pool.clone(),
            },
        });
        next = rx;
    }
    let mut feed: Box<dyn Feed<I>> = match plan.input {
        Input::Live(feed) => feed,
        Input::Pulled(source) => {
            let mut feed = PulledFeed::new(source, plan.chunk)
                .paced_from(timing.start_ns)
                .limited_to(timing.duration_ns);
            if feed.format() != plan.format {
                feed = feed.rate_capped(plan.format);
            }
            Box::new(feed)
        }
    };
    if let Some(tap) = plan.tap {
        feed = Box::new(TappedFeed { feed, tap });
    }
    let kind = I::KIND.name();
    let (run_r, pool_r) = (run.clone(), pool.clone());
    spawn(threads, &format!("{kind}-read"), move || {
        read::read(
            feed,
            (timing.real_time, timing.duration_ns),
            pool_r,
            read_out,
            &run_r,
        );
    })?;
    let (sinks, format, run_w) = (plan.sinks, plan.format, run.clone());
    let writer = std::thread::Builder::new()
        .name(format!("sandstream-{kind}-write"))
        .spawn(move || write::write(sinks, (format, depth), pool, next, &run_w, real_time))
        .with_context(|| format!("spawning the {kind}-write thread"))?;
    Ok(Launched {
        lane,
        to_sync,
        writer,
    })
}

/// Reads a running stream's counters from another thread.
#[derive(Clone)]
pub struct StatsHandle(Arc<RunControl>);

impl StatsHandle {
    pub fn report(&self) -> Report {
        self.0.counters.report()
    }

    /// Every latency histogram of a stream so far.
    pub fn latency(&self, kind: crate::media::StreamKind) -> crate::metrics::LatencySnapshot {
        self.0.counters.stream(kind).latency.snapshot()
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
    /// Real time: the host clock at media time zero of pulled inputs.
    media_zero_ns: Option<u64>,
    threads: Vec<(String, JoinHandle<()>)>,
    audio_writer: Option<JoinHandle<Sinks<AudioBlock>>>,
    video_writer: Option<JoinHandle<Sinks<VideoFrame>>>,
    /// Drives deadlines until the stream ends.
    _ticker: Option<EpochTicker>,
    control: ControlHandle,
    watcher: Option<FileWatcher>,
}

impl RunningStream {
    /// Real time: the host clock (see [`crate::clock`]) at media time zero
    /// of pulled inputs, whose items are stamped `media_zero_ns + media
    /// time`: a file or synthetic input's frame `n` is "captured" then.
    pub fn media_zero_ns(&self) -> Option<u64> {
        self.media_zero_ns
    }

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
        close(audio_sinks, failed, &self.run);
        close(video_sinks, failed, &self.run);
        match self.run.take_error() {
            Some(err) => Err(err),
            None => Ok(self.run.counters.report()),
        }
    }
}

/// Finishes a stream's outputs, or throws them away after a failure.
fn close<I: Item>(sinks: Sinks<I>, failed: bool, run: &RunControl) {
    for sink in sinks {
        if failed {
            sink.abort();
        } else if let Err(err) = sink.finish() {
            run.fail(err);
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
