//! Test guest written against the raw WIT (the host's own `host-view`
//! world: every export) and raw WASI, to attack the host where the SDK
//! would not let a guest go. When it is not misbehaving it halves the
//! audio (so each output block shows whether the guest or the host's
//! fallback produced it) and inverts the video.
//!
//! Settings:
//! - `mode`: what to do — `sleep` (a one-hour `thread::sleep`: a clock
//!   pollable blocked on), `poll` (`wasi:io/poll` on a far deadline),
//!   `spin` (a loop; the SDK-built `hostile` guest's tests cover it),
//!   `exit` (`exit(7)`), `huge-error` (an 8 MiB error message), `forge`
//!   (an error, a log line and stdout lines made to look like host
//!   output, with escapes), `log-flood` (100 000 `log` calls),
//!   `huge-log` (one 32 MiB `log` message), `huge-snapshot` (a 64 MiB
//!   state), `handles` (a million pollables), `random` (1 GiB of random
//!   bytes asked for at once), `huge-list` (64 MiB of samples returned
//!   for a block, on the list path), `slow` (takes `ms` milliseconds,
//!   sleeping: a guest too slow for its stream, not a hung one), `busy`
//!   (the same, computing: no blocking host call);
//! - `in`: which export does it — `configure`, `prepare`, `process`
//!   (default: audio), `process-video`, `snapshot`, `restore`;
//! - `every`: process calls do it when their number (from 1, per
//!   instance) is a multiple of this (default 1: every call).

wit_bindgen::generate!({
    path: "../../../wit",
    world: "sandstream:av/host-view",
    generate_all,
});

use exports::sandstream::av::{audio, mapped_audio, mapped_video, setup, state, video};
use sandstream::av::log::{Level, log};
use sandstream::av::types::{
    AudioInfo, Buffers, Config, Outcome, Region, StreamFormats, VideoInfo,
};
use std::cell::{Cell, RefCell};

thread_local! {
    static MODE: RefCell<String> = const { RefCell::new(String::new()) };
    static WHERE: RefCell<String> = const { RefCell::new(String::new()) };
    static EVERY: Cell<u64> = const { Cell::new(1) };
    static SLOW_MS: Cell<u64> = const { Cell::new(0) };
    static CALLS: Cell<u64> = const { Cell::new(0) };
    static AUDIO: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static VIDEO: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn setting(config: &Config, key: &str) -> Option<String> {
    config
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

/// Misbehaves as `mode` says if `export` is where it should; otherwise
/// returns `Ok`. Modes that return something bad return it as `Err`.
fn misbehave(export: &str) -> Result<(), String> {
    if WHERE.with_borrow(|w| w != export) {
        return Ok(());
    }
    if export == "process" {
        let call = CALLS.get() + 1;
        CALLS.set(call);
        if !call.is_multiple_of(EVERY.get()) {
            return Ok(());
        }
    }
    match MODE.with_borrow(|m| m.clone()).as_str() {
        "sleep" => std::thread::sleep(std::time::Duration::from_secs(3600)),
        "poll" => {
            let far = wasi::clocks::monotonic_clock::subscribe_duration(3_600_000_000_000);
            wasi::io::poll::poll(&[&far]);
        }
        "spin" =>
        {
            #[allow(clippy::empty_loop)]
            loop {}
        }
        "slow" => std::thread::sleep(std::time::Duration::from_millis(SLOW_MS.get())),
        "busy" => {
            let until = std::time::Instant::now() + std::time::Duration::from_millis(SLOW_MS.get());
            while std::time::Instant::now() < until {
                std::hint::spin_loop();
            }
        }
        "exit" => std::process::exit(7),
        "huge-error" => {
            return Err(format!(
                "{}\nerror: forged by the guest",
                "x".repeat(8 << 20)
            ));
        }
        "forge" => {
            let forged = "ok\nerror: the host is compromised\x1b[2J\x1b[31m";
            log(Level::Error, forged);
            println!("innocent\nguest faults: 0 timeouts\u{202e}gnp.exe");
            return Err(forged.to_string());
        }
        "log-flood" => {
            for i in 0..100_000 {
                log(Level::Info, &format!("flood {i}"));
            }
        }
        "huge-log" => log(Level::Info, &"y".repeat(32 << 20)),
        "handles" => {
            let mut held = Vec::new();
            for _ in 0..1_000_000 {
                held.push(wasi::clocks::monotonic_clock::subscribe_duration(1));
            }
            std::hint::black_box(&held);
        }
        "random" => {
            let bytes = wasi::random::random::get_random_bytes(1 << 30);
            std::hint::black_box(&bytes);
        }
        _ => {}
    }
    Ok(())
}

struct Adversary;

impl setup::Guest for Adversary {
    fn configure(config: Config, formats: StreamFormats) -> Result<(), String> {
        MODE.set(setting(&config, "mode").unwrap_or_default());
        WHERE.set(setting(&config, "in").unwrap_or_else(|| "process".into()));
        EVERY.set(
            setting(&config, "every")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
        );
        SLOW_MS.set(
            setting(&config, "ms")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        );
        if let Some(audio) = formats.audio {
            let samples = (audio.block_frames * audio.channels) as usize;
            AUDIO.set(vec![0.0; samples]);
        }
        if let Some(video) = formats.video {
            VIDEO.set(vec![0; (video.width * video.height * 4) as usize]);
        }
        misbehave("configure")
    }
}

fn halve(samples: &mut [f32]) {
    samples.iter_mut().for_each(|s| *s *= 0.5);
}

fn invert(pixels: &mut [u8]) {
    for pixel in pixels.chunks_exact_mut(4) {
        for c in &mut pixel[..3] {
            *c = 255 - *c;
        }
    }
}

impl audio::Guest for Adversary {
    fn process_audio(_info: AudioInfo, mut samples: Vec<f32>) -> Result<Vec<f32>, String> {
        misbehave("process")?;
        if MODE.with_borrow(|m| m == "huge-list") {
            return Ok(vec![0.25; 16 << 20]);
        }
        halve(&mut samples);
        Ok(samples)
    }
}

impl video::Guest for Adversary {
    fn process_video(_info: VideoInfo, mut pixels: Vec<u8>) -> Result<Vec<u8>, String> {
        misbehave("process-video")?;
        invert(&mut pixels);
        Ok(pixels)
    }
}

fn region_of<T>(buffer: &[T]) -> Buffers {
    let region = Region {
        offset: buffer.as_ptr() as u32,
        length: size_of_val(buffer) as u32,
    };
    Buffers {
        input: region,
        output: region,
    }
}

impl mapped_audio::Guest for Adversary {
    fn prepare() -> Result<Buffers, String> {
        misbehave("prepare")?;
        Ok(AUDIO.with_borrow(|b| region_of(b)))
    }

    fn process(_info: AudioInfo, samples: u32) -> Result<Outcome, String> {
        misbehave("process")?;
        AUDIO.with_borrow_mut(|b| halve(&mut b[..samples as usize]));
        Ok(Outcome::Keep)
    }
}

impl mapped_video::Guest for Adversary {
    fn prepare() -> Result<Buffers, String> {
        Ok(VIDEO.with_borrow(|b| region_of(b)))
    }

    fn process(_info: VideoInfo) -> Result<Outcome, String> {
        misbehave("process-video")?;
        VIDEO.with_borrow_mut(|b| invert(b));
        Ok(Outcome::Keep)
    }
}

impl state::Guest for Adversary {
    fn snapshot() -> Vec<u8> {
        let _ = misbehave("snapshot");
        let huge =
            WHERE.with_borrow(|w| w == "snapshot") && MODE.with_borrow(|m| m == "huge-snapshot");
        if huge {
            return vec![7; 64 << 20];
        }
        CALLS.get().to_le_bytes().to_vec()
    }

    fn restore(state: Vec<u8>) -> Result<(), String> {
        misbehave("restore")?;
        let calls = state.try_into().map_err(|_| "a snapshot is 8 bytes")?;
        CALLS.set(u64::from_le_bytes(calls));
        Ok(())
    }
}

export!(Adversary);
