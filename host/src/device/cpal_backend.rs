//! Real audio devices through cpal: choosing the host API, listing and
//! finding devices by name, negotiating a format, and opening capture and
//! playback streams whose callbacks feed our rings.

use super::status::PresenceCheck;
use super::{
    CaptureFeed, DeviceError, DeviceStatus, Direction, PlaybackBudget, PlaybackSink, capture_ring,
    capture_time_ns, playback_ring,
};
use crate::media::{AudioBlock, AudioFormat, BufferPool};
use crate::pipeline::{Feed, RunControl};
use crate::sink::Sink;
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{BufferSize, SampleFormat, StreamConfig, SupportedBufferSize};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// The hosts this build has, by the names `--audio-host` takes, each
/// marked when it cannot be used now.
pub fn host_names() -> Vec<String> {
    let available = cpal::available_hosts();
    cpal::ALL_HOSTS
        .iter()
        .map(|id| {
            let name = id.name().to_lowercase();
            if available.contains(id) {
                name
            } else {
                format!("{name} (not running)")
            }
        })
        .collect()
}

/// Runs `f` with the process's stderr sent to /dev/null when `host` is
/// ALSA: probing ALSA's plugin devices makes alsa-lib and libjack print
/// pages of errors there that say nothing about our devices.
fn quietly<T>(host: &cpal::Host, f: impl FnOnce() -> T) -> T {
    #[cfg(target_os = "linux")]
    if host.id() == cpal::HostId::Alsa {
        return silence_stderr(f);
    }
    let _ = host;
    f()
}

#[cfg(target_os = "linux")]
fn silence_stderr<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: plain descriptor calls on our own fds; stderr is restored
    // before returning, and nothing here is shared with other code.
    unsafe {
        let saved = libc::dup(2);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
        if saved < 0 || null < 0 {
            return f();
        }
        libc::dup2(null, 2);
        libc::close(null);
        let result = f();
        libc::dup2(saved, 2);
        libc::close(saved);
        result
    }
}

/// The host API: by name (`alsa`, `pulseaudio`, `pipewire`…, any case),
/// or cpal's default for the OS (on Linux: PipeWire or PulseAudio when a
/// server is running, else ALSA).
///
/// # Errors
/// An unknown or unavailable name, listing those that exist.
pub fn host(name: Option<&str>) -> Result<cpal::Host, DeviceError> {
    let Some(name) = name else {
        return Ok(cpal::default_host());
    };
    let wanted = name.to_lowercase();
    let id = cpal::ALL_HOSTS
        .iter()
        .find(|id| id.name().to_lowercase() == wanted)
        .ok_or_else(|| DeviceError::Unavailable {
            host: format!("audio host `{name}`"),
            detail: "not built into this sandstream".to_string(),
            hint: format!("choose one of: {}", host_names().join(", ")),
        })?;
    cpal::host_from_id(*id).map_err(|e| unavailable(id.name(), &e))
}

fn unavailable(host: &str, error: &cpal::Error) -> DeviceError {
    DeviceError::Unavailable {
        host: host.to_string(),
        detail: error.to_string(),
        hint: match host {
            "PulseAudio" => "no sound server found at $PULSE_SERVER or \
                             $XDG_RUNTIME_DIR/pulse/native; start one (`pulseaudio --start`, \
                             or pipewire with pipewire-pulse), or choose --audio-host alsa"
                .to_string(),
            "PipeWire" => "start pipewire, or choose another host with --audio-host".to_string(),
            _ => format!(
                "choose another host with --audio-host ({})",
                host_names().join(", ")
            ),
        },
    }
}

/// One device as `sandstream devices` shows it.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    /// The host's id for it (`mic_feed.monitor`).
    pub id: String,
    /// Its human name (`Monitor of MicFeed`).
    pub description: String,
    pub is_default: bool,
    /// Formats it supports, one line each.
    pub formats: Vec<String>,
}

/// A device as enumerated: what matching by name needs, without probing
/// its formats (on ALSA that opens the device).
struct Enumerated {
    device: cpal::Device,
    id: String,
    description: String,
    is_default: bool,
}

impl Enumerated {
    /// "mic_feed.monitor (Monitor of MicFeed)"
    fn label(&self) -> String {
        if self.description.is_empty() || self.description == self.id {
            self.id.clone()
        } else {
            format!("{} ({})", self.id, self.description)
        }
    }
}

/// The input or output devices of `host`, enumerated once, defaults first.
fn enumerate(host: &cpal::Host, direction: Direction) -> Result<Vec<Enumerated>, DeviceError> {
    let default_id = default_device(host, direction).and_then(|d| d.id().ok());
    let found = devices(host, direction)?;
    let mut all: Vec<Enumerated> = quietly(host, || {
        found
            .into_iter()
            .map(|device| {
                let id = device
                    .id()
                    .map(|id| id.id().to_string())
                    .unwrap_or_default();
                let description = device
                    .description()
                    .map(|d| d.name().to_string())
                    .unwrap_or_default();
                Enumerated {
                    is_default: default_id.as_ref().is_some_and(|d| d.id() == id),
                    device,
                    id,
                    description,
                }
            })
            .collect()
    });
    all.sort_by_key(|found| !found.is_default);
    Ok(all)
}

/// The input or output devices of `host` with their formats, defaults
/// first.
///
/// # Errors
/// When the host cannot list its devices (a server gone away).
pub fn list(host: &cpal::Host, direction: Direction) -> Result<Vec<DeviceInfo>, DeviceError> {
    let all = enumerate(host, direction)?;
    Ok(quietly(host, || {
        all.into_iter()
            .map(|found| DeviceInfo {
                formats: formats(&found.device, direction),
                id: found.id,
                description: found.description,
                is_default: found.is_default,
            })
            .collect()
    }))
}

fn devices(host: &cpal::Host, direction: Direction) -> Result<Vec<cpal::Device>, DeviceError> {
    let result = quietly(host, || match direction {
        Direction::Input => host.input_devices().map(Iterator::collect),
        Direction::Output => host.output_devices().map(Iterator::collect),
    });
    result.map_err(|e| unavailable(host.id().name(), &e))
}

fn default_device(host: &cpal::Host, direction: Direction) -> Option<cpal::Device> {
    match direction {
        Direction::Input => host.default_input_device(),
        Direction::Output => host.default_output_device(),
    }
}

fn configs(device: &cpal::Device, direction: Direction) -> Vec<cpal::SupportedStreamConfigRange> {
    let configs = match direction {
        Direction::Input => device.supported_input_configs().map(Iterator::collect),
        Direction::Output => device.supported_output_configs().map(Iterator::collect),
    };
    configs.unwrap_or_default()
}

/// "f32, 2 ch, 1-384000 Hz, buffer 4-4194304 frames"
fn describe_config(config: &cpal::SupportedStreamConfigRange) -> String {
    let rates = if config.min_sample_rate() == config.max_sample_rate() {
        format!("{} Hz", config.min_sample_rate())
    } else {
        format!(
            "{}-{} Hz",
            config.min_sample_rate(),
            config.max_sample_rate()
        )
    };
    let buffer = match config.buffer_size() {
        SupportedBufferSize::Range { min, max } => format!(", buffer {min}-{max} frames"),
        SupportedBufferSize::Unknown => String::new(),
    };
    format!(
        "{}, {} ch, {rates}{buffer}",
        config.sample_format(),
        config.channels()
    )
}

/// What a device supports, summarised: servers such as PulseAudio offer
/// every sample format at every channel count, which is hundreds of ranges.
fn formats(device: &cpal::Device, direction: Direction) -> Vec<String> {
    let ranges = configs(device, direction);
    if ranges.is_empty() {
        return Vec::new();
    }
    let mut sample_formats: Vec<SampleFormat> = Vec::new();
    for range in &ranges {
        if !sample_formats.contains(&range.sample_format()) {
            sample_formats.push(range.sample_format());
        }
    }
    // f32, the format we use, first.
    sample_formats.sort_by_key(|f| (*f != SampleFormat::F32, f.to_string()));
    let channels_min = ranges.iter().map(|r| r.channels()).min().unwrap_or(0);
    let channels_max = ranges.iter().map(|r| r.channels()).max().unwrap_or(0);
    let rate_min = ranges
        .iter()
        .map(|r| r.min_sample_rate())
        .min()
        .unwrap_or(0);
    let rate_max = ranges
        .iter()
        .map(|r| r.max_sample_rate())
        .max()
        .unwrap_or(0);
    let span = |min: u32, max: u32| {
        if min == max {
            min.to_string()
        } else {
            format!("{min}-{max}")
        }
    };
    let names: Vec<String> = sample_formats.iter().map(ToString::to_string).collect();
    let mut lines = vec![format!(
        "{}; {} channels; {} Hz",
        names.join(" "),
        span(channels_min.into(), channels_max.into()),
        span(rate_min, rate_max)
    )];
    let default = match direction {
        Direction::Input => device.default_input_config(),
        Direction::Output => device.default_output_config(),
    };
    if let Ok(default) = default {
        lines.push(format!(
            "default: {} {} ch {} Hz",
            default.sample_format(),
            default.channels(),
            default.sample_rate()
        ));
    }
    lines
}

/// Finds a device: `default`, or a case-insensitive match of `name` with
/// a device's id or description — whole first, then as a substring.
///
/// # Errors
/// No match or several, listing the devices that exist.
pub fn find(
    host: &cpal::Host,
    direction: Direction,
    name: &str,
) -> Result<(cpal::Device, String), DeviceError> {
    let all = enumerate(host, direction)?;
    let what = format!("audio {}", direction.noun());
    let not_found = |available: Vec<String>| DeviceError::NotFound {
        what: what.clone(),
        wanted: name.to_string(),
        host: host.id().name().to_string(),
        available,
    };
    let labels = || all.iter().map(Enumerated::label).collect::<Vec<_>>();
    let found = if name.eq_ignore_ascii_case("default") {
        let listed = all.iter().position(|d| d.is_default);
        // A host may name a default it does not enumerate: take it as is.
        if listed.is_none()
            && let Some(device) = default_device(host, direction)
        {
            let id = device
                .id()
                .map(|id| id.id().to_string())
                .unwrap_or_default();
            return Ok((device, id));
        }
        listed.into_iter().collect()
    } else {
        super::matching(&all, name, |d| vec![d.id.as_str(), d.description.as_str()])
    };
    match found.as_slice() {
        [one] => {
            let chosen = all.into_iter().nth(*one).expect("an index of `all`");
            Ok((chosen.device, chosen.id))
        }
        [] => Err(not_found(labels())),
        several => Err(DeviceError::NotFound {
            what,
            wanted: format!("{name}` uniquely (it matches several; give more of the name)`"),
            host: host.id().name().to_string(),
            available: several.iter().map(|&i| all[i].label()).collect(),
        }),
    }
}

/// The stream config for `format` with a fixed device buffer, if the
/// device offers f32 at that rate and channel count.
///
/// # Errors
/// What the device supports instead.
fn negotiate(
    device: &cpal::Device,
    direction: Direction,
    name: &str,
    format: AudioFormat,
    device_buffer: u32,
) -> Result<StreamConfig, DeviceError> {
    let ranges = configs(device, direction);
    let fits = ranges.iter().find(|range| {
        range.sample_format() == SampleFormat::F32
            && range.channels() == format.channels
            && range.contains_rate(format.sample_rate)
            && match range.buffer_size() {
                SupportedBufferSize::Range { min, max } => (*min..=*max).contains(&device_buffer),
                SupportedBufferSize::Unknown => true,
            }
    });
    match fits {
        Some(_) => Ok(StreamConfig {
            channels: format.channels,
            sample_rate: format.sample_rate,
            buffer_size: BufferSize::Fixed(device_buffer),
        }),
        None => Err(DeviceError::FormatUnsupported {
            device: name.to_string(),
            wanted: format!("f32 {format} with a {device_buffer}-frame buffer"),
            supported: if ranges.len() <= 8 {
                ranges.iter().map(describe_config).collect()
            } else {
                formats(device, direction)
            },
        }),
    }
}

/// The format to open a device with: what the user asked for, else 48 kHz
/// stereo when the device can, else the device's own default.
pub fn preferred_format(
    device: &cpal::Device,
    direction: Direction,
    rate: Option<u32>,
    channels: Option<u16>,
) -> AudioFormat {
    let ranges = configs(device, direction);
    let offers = |rate: u32, channels: u16| {
        ranges.iter().any(|r| {
            r.sample_format() == SampleFormat::F32
                && r.channels() == channels
                && r.contains_rate(rate)
        })
    };
    let default = match direction {
        Direction::Input => device.default_input_config(),
        Direction::Output => device.default_output_config(),
    }
    .ok();
    let rate = rate.unwrap_or_else(|| {
        if offers(48_000, channels.unwrap_or(2)) {
            48_000
        } else {
            default.as_ref().map_or(48_000, |d| d.sample_rate())
        }
    });
    let channels = channels.unwrap_or_else(|| {
        if offers(rate, 2) {
            2
        } else {
            default.as_ref().map_or(2, |d| d.channels())
        }
    });
    AudioFormat {
        sample_rate: rate,
        channels,
    }
}

/// Sends a cpal stream error where it belongs: a vanished device ends the
/// run (outputs kept); an xrun is counted; anything else is said once.
fn on_stream_error(status: &DeviceStatus, direction: Direction, name: &str, error: cpal::Error) {
    use cpal::ErrorKind;
    use std::sync::atomic::Ordering::Relaxed;
    match error.kind() {
        ErrorKind::DeviceNotAvailable
        | ErrorKind::StreamInvalidated
        | ErrorKind::HostUnavailable => status.disconnect(error.to_string()),
        ErrorKind::Xrun => {
            let count = match direction {
                Direction::Input => &status.overruns,
                Direction::Output => &status.underruns,
            };
            count.fetch_add(1, Relaxed);
        }
        _ => tracing::warn!("{name}: {error}"),
    }
}

/// A capture device: the ring's feed, and the stream that fills it (the
/// stream stops when this is dropped).
pub struct DeviceCapture {
    feed: CaptureFeed,
    stream: cpal::Stream,
}

/// Opens `name` for capture in `format` with `device_buffer`-frame
/// callbacks, re-chunked into `block_frames` blocks.
///
/// # Errors
/// Unknown device, unsupported format, or the stream failing to start.
pub fn open_input(
    host: &cpal::Host,
    name: &str,
    format: Option<AudioFormat>,
    (rate, channels): (Option<u32>, Option<u16>),
    device_buffer: u32,
    block_frames: usize,
) -> anyhow::Result<DeviceCapture> {
    let (device, id) = find(host, Direction::Input, name)?;
    let format =
        format.unwrap_or_else(|| preferred_format(&device, Direction::Input, rate, channels));
    let label = format!("device:{id}");
    let config = negotiate(&device, Direction::Input, &label, format, device_buffer)?;
    // One second of ring: a reader that falls that far behind loses audio
    // (counted), the latency budget downstream keeps the rest bounded.
    let capacity = (format.sample_rate as usize).max(4 * block_frames);
    let (mut side, feed) = capture_ring(format, capacity, block_frames, label.clone());
    let feed = feed.watched_by(presence_check(host, Direction::Input, &id));
    let status = side.status();
    let error_label = label.clone();
    let stream = device
        .build_input_stream::<f32, _, _>(
            config,
            move |data: &[f32], info: &cpal::InputCallbackInfo| {
                let _hot = crate::rt::hot();
                let stamp = info.timestamp();
                let age = stamp.callback.duration_since(stamp.capture);
                side.push(data, capture_time_ns(Some(age)));
            },
            move |error| on_stream_error(&status, Direction::Input, &error_label, error),
            Some(Duration::from_secs(5)),
        )
        .map_err(|e| backend(&label, &e))?;
    stream.play().map_err(|e| backend(&label, &e))?;
    Ok(DeviceCapture { feed, stream })
}

/// Whether the device `id` is still listed: some hosts (cpal's PulseAudio)
/// never report a removed device, its callbacks just stop.
/// Lists the host's devices to see whether `id` is among them, through one
/// connection kept for the run: a connection per check would make the
/// sound server count (and, at its limit, refuse) a client every time.
fn presence_check(host: &cpal::Host, direction: Direction, id: &str) -> PresenceCheck {
    let (host_id, id) = (host.id(), id.to_string());
    let mut connection: Option<cpal::Host> = None;
    Box::new(move || {
        if connection.is_none() {
            connection = cpal::host_from_id(host_id).ok();
        }
        let listed = devices(connection.as_ref()?, direction);
        match listed {
            Ok(found) => Some(
                found
                    .iter()
                    .any(|d| d.id().is_ok_and(|found| found.id() == id)),
            ),
            Err(_) => {
                // Reconnect next time.
                connection = None;
                None
            }
        }
    })
}

fn backend(device: &str, error: &cpal::Error) -> DeviceError {
    DeviceError::Backend {
        device: device.to_string(),
        detail: error.to_string(),
    }
}

impl Feed<AudioBlock> for DeviceCapture {
    fn format(&self) -> AudioFormat {
        self.feed.format()
    }

    fn describe(&self) -> String {
        self.feed.describe()
    }

    fn next(
        &mut self,
        pool: &BufferPool<f32>,
        run: &RunControl,
    ) -> anyhow::Result<Option<AudioBlock>> {
        let _ = &self.stream;
        self.feed.next(pool, run)
    }
}

/// A playback device: the ring's sink, and the stream that drains it.
pub struct DevicePlayback {
    sink: PlaybackSink,
    stream: cpal::Stream,
}

/// Opens `name` for playback of `format` with `device_buffer`-frame
/// callbacks, fed in `block_frames` blocks, holding at most `budget`.
///
/// # Errors
/// Unknown device, unsupported format, or the stream failing to start.
pub fn open_output(
    host: &cpal::Host,
    name: &str,
    format: AudioFormat,
    device_buffer: u32,
    block_frames: usize,
    budget: PlaybackBudget,
) -> anyhow::Result<DevicePlayback> {
    let (device, id) = find(host, Direction::Output, name)?;
    let label = format!("device:{id}");
    let config = negotiate(&device, Direction::Output, &label, format, device_buffer)?;
    let (sink, mut side) = playback_ring(format, block_frames, budget, label.clone())?;
    let sink = sink.watched_by(presence_check(host, Direction::Output, &id));
    let status = side.status();
    let delay = side.status();
    let error_label = label.clone();
    let stream = device
        .build_output_stream::<f32, _, _>(
            config,
            move |data: &mut [f32], info: &cpal::OutputCallbackInfo| {
                let _hot = crate::rt::hot();
                let stamp = info.timestamp();
                let ahead = stamp.playback.duration_since(stamp.callback);
                delay
                    .output_delay_ns
                    .store(ahead.as_nanos() as u64, Relaxed);
                side.fill(data);
            },
            move |error| on_stream_error(&status, Direction::Output, &error_label, error),
            Some(Duration::from_secs(5)),
        )
        .map_err(|e| backend(&label, &e))?;
    stream.play().map_err(|e| backend(&label, &e))?;
    Ok(DevicePlayback { sink, stream })
}

impl Sink<AudioBlock> for DevicePlayback {
    fn write(&mut self, block: &AudioBlock) -> anyhow::Result<()> {
        self.sink.write(block)
    }

    fn finish(self: Box<Self>) -> anyhow::Result<()> {
        let Self { sink, stream } = *self;
        let result = Box::new(sink).finish();
        drop(stream);
        result
    }

    fn describe(&self) -> String {
        self.sink.describe()
    }

    fn report(&self, counters: &crate::metrics::StreamCounters) {
        self.sink.report(counters);
    }

    fn is_real_time(&self) -> bool {
        self.sink.is_real_time()
    }

    fn output_delay(&self) -> Option<crate::sink::OutputDelay> {
        self.sink.output_delay()
    }
}
