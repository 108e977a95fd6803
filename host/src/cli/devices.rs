//! `sandstream devices`: the audio devices and cameras this machine has,
//! with their formats, and the device flags of `run`.

use clap::Args;
use sandstream::camera;
use sandstream::config_file::ConfigFile;
use sandstream::device::{self, DeviceInfo, Direction};
use sandstream::pipeline::DeviceSettings;
use std::time::Duration;

/// Which audio host and how devices are driven (for `run` and `devices`).
#[derive(Debug, Args)]
pub struct DeviceArgs {
    /// Audio host API: pulseaudio (also serves PipeWire through
    /// pipewire-pulse) or alsa [default: PulseAudio when a server runs,
    /// else ALSA].
    #[arg(long, value_name = "HOST")]
    pub audio_host: Option<String>,
    /// Frames per device callback, independent of --block [default: 512].
    #[arg(long, value_name = "FRAMES")]
    pub device_buffer: Option<u32>,
    /// The latency budget: the longest from capture to played. Queues hold
    /// this much at most; late work is dropped, oldest first, counted
    /// [default for audio: a block and two device buffers plus 6 buffers
    /// of playback ring, at least 50 ms of it; for video: 3 frames, at
    /// least 100].
    #[arg(long, value_name = "MS")]
    pub latency: Option<f64>,
}

impl DeviceArgs {
    /// The settings from flags, else from the run's config file.
    pub fn settings(&self, file: &ConfigFile) -> anyhow::Result<DeviceSettings> {
        let device_buffer = self.device_buffer.or(file.device_buffer);
        if let Some(frames) = device_buffer
            && !(16..=65_536).contains(&frames)
        {
            anyhow::bail!("--device-buffer must be between 16 and 65536 frames, got {frames}");
        }
        let latency = match self.latency.or(file.latency) {
            None => None,
            Some(ms) if ms.is_finite() && (5.0..=10_000.0).contains(&ms) => {
                Some(Duration::from_secs_f64(ms / 1000.0))
            }
            Some(ms) => anyhow::bail!("--latency must be between 5 and 10000 ms, got {ms}"),
        };
        Ok(DeviceSettings {
            host: self.audio_host.clone().or_else(|| file.audio_host.clone()),
            buffer_frames: device_buffer,
            latency,
        })
    }
}

#[derive(Debug, Args)]
pub struct DevicesArgs {
    /// Audio host API to list [default: as `run` would choose].
    #[arg(long, value_name = "HOST")]
    audio_host: Option<String>,
}

/// Audio first, then cameras; one missing does not hide the other.
pub fn devices(args: &DevicesArgs) -> anyhow::Result<()> {
    let audio = audio_devices(args);
    if let Err(error) = &audio {
        println!("audio: {error:#}");
    }
    cameras();
    audio
}

fn audio_devices(args: &DevicesArgs) -> anyhow::Result<()> {
    let host = device::host(args.audio_host.as_deref())?;
    println!(
        "audio host: {} (built in: {}; choose with --audio-host)",
        host.id().name(),
        device::host_names().join(", ")
    );
    for direction in [Direction::Input, Direction::Output] {
        let infos = device::list(&host, direction)?;
        println!("audio {}s:", direction.noun());
        if infos.is_empty() {
            println!("  (none)");
        }
        for info in &infos {
            print_device(info);
        }
    }
    println!(
        "use: --audio-in device:NAME, --audio-out device:NAME (NAME: any part of the \
         name or the description, any case; `default` for the default)"
    );
    Ok(())
}

fn cameras() {
    println!("cameras ({}):", camera::backend_name());
    match camera::list(true) {
        Err(error) => println!("  cannot list them: {error}"),
        Ok(cameras) if cameras.is_empty() => println!("  (none)"),
        Ok(cameras) => {
            for info in &cameras {
                println!(
                    "  camera:{}  \"{}\"  {}",
                    info.index, info.name, info.detail
                );
                match &info.modes {
                    Ok(modes) => {
                        for line in camera::summarize(modes) {
                            println!("      {line}");
                        }
                    }
                    Err(why) => println!("      (modes unreadable: {why})"),
                }
            }
        }
    }
    println!(
        "use: --video-in camera:NAME or camera:INDEX (`default`: the first); --width, \
         --height and --fps pick the closest mode"
    );
}

fn print_device(info: &DeviceInfo) {
    let default = if info.is_default { "  [default]" } else { "" };
    if info.description.is_empty() || info.description == info.id {
        println!("  {}{default}", info.id);
    } else {
        println!("  {}  \"{}\"{default}", info.id, info.description);
    }
    for format in &info.formats {
        println!("      {format}");
    }
}
