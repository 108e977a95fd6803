//! `sandstream virtual-mic`: a microphone other apps can pick, fed by
//! `--audio-out device:NAME`. On Linux it is a null sink (where sandstream
//! plays) plus a remapped source of its monitor (what apps list as a
//! microphone), made through `pactl`, so it works with PulseAudio and with
//! PipeWire's pipewire-pulse alike. No root, no kernel module.

use anyhow::{Context as _, bail};
use clap::Args;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

#[derive(Debug, Args)]
pub struct VirtualMicArgs {
    /// Name of the sink sandstream plays into (`--audio-out device:NAME`);
    /// the microphone is NAME_mic.
    #[arg(long, default_value = "sandstream")]
    name: String,
    /// What apps show for the microphone.
    #[arg(long, default_value = "Sandstream Microphone")]
    description: String,
    /// Create it and exit, leaving it in place (remove with --remove).
    #[arg(long, conflicts_with = "remove")]
    keep: bool,
    /// Remove a virtual microphone made with --keep.
    #[arg(long)]
    remove: bool,
}

pub(crate) fn pactl(args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("pactl").args(args).output().context(
        "this needs `pactl` (Debian/Ubuntu: pulseaudio-utils; Fedora: pulseaudio-utils \
         or pipewire-pulseaudio)",
    )?;
    if !output.status.success() {
        bail!(
            "pactl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Module ids of the sink and source named after `name`.
fn modules_of(name: &str) -> anyhow::Result<Vec<String>> {
    let sink = format!("sink_name={name} ");
    let source = format!("source_name={name}_mic ");
    Ok(pactl(&["list", "short", "modules"])?
        .lines()
        .filter(|line| {
            let line = format!("{line} ");
            line.contains(&sink) || line.contains(&source)
        })
        .filter_map(|line| line.split_whitespace().next().map(str::to_string))
        .collect())
}

fn remove(name: &str) -> anyhow::Result<usize> {
    let mut modules = modules_of(name)?;
    // The source depends on the sink's monitor: unload it first.
    modules.reverse();
    for module in &modules {
        pactl(&["unload-module", module])?;
    }
    Ok(modules.len())
}

fn create(args: &VirtualMicArgs) -> anyhow::Result<()> {
    if !args
        .name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        bail!(
            "--name may use letters, digits, '_' and '-' only, got `{}`",
            args.name
        );
    }
    if !modules_of(&args.name)?.is_empty() {
        bail!(
            "a virtual microphone named `{}` exists already (remove it with \
             `sandstream virtual-mic --remove --name {}`)",
            args.name,
            args.name
        );
    }
    // Module arguments nest: the property list in single quotes, the
    // description in double quotes inside it.
    let properties = |text: &str| {
        let clean: String = text
            .chars()
            .filter(|c| !matches!(c, '"' | '\'' | '\\'))
            .collect();
        format!("'device.description=\"{clean}\"'")
    };
    let sink_description = format!("{} (sandstream output)", args.description);
    pactl(&[
        "load-module",
        "module-null-sink",
        &format!("sink_name={}", args.name),
        &format!("sink_properties={}", properties(&sink_description)),
        "rate=48000",
        "channels=2",
        "format=float32le",
    ])?;
    let made = pactl(&[
        "load-module",
        "module-remap-source",
        &format!("master={}.monitor", args.name),
        &format!("source_name={}_mic", args.name),
        &format!("source_properties={}", properties(&args.description)),
    ]);
    if let Err(err) = made {
        let _ = remove(&args.name);
        return Err(err);
    }
    println!(
        "virtual microphone \"{}\" is ready: apps list it as a microphone ({}_mic).\n\
         send audio to it with: sandstream run EFFECT.wasm --audio-in device:default \
         --audio-out device:{}",
        args.description, args.name, args.name
    );
    Ok(())
}

pub fn virtual_mic(args: &VirtualMicArgs) -> anyhow::Result<()> {
    if args.remove {
        let removed = remove(&args.name)?;
        if removed == 0 {
            bail!("no virtual microphone named `{}` to remove", args.name);
        }
        println!("removed virtual microphone `{}`", args.name);
        return Ok(());
    }
    create(args)?;
    if args.keep {
        println!(
            "it stays until `sandstream virtual-mic --remove --name {}` (or the sound server restarts)",
            args.name
        );
        return Ok(());
    }
    println!("press Ctrl-C to remove it");
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Relaxed)).context("installing Ctrl-C handler")?;
    while !stop.load(Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    remove(&args.name)?;
    println!("removed virtual microphone `{}`", args.name);
    Ok(())
}
