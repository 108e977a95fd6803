//! `sandstream check --calls N`: how much a guest's memory grows per call
//! once it is warm, so a guest that leaks (say, one frame per call) is
//! caught before a user's run hits the memory cap.
//!
//! Memory is what the instance holds (linear memories and tables, as the
//! cap counts it). It grows in 64 KiB pages, and allocators grow it in
//! steps while they warm up: the first fifth of the calls is not measured.

use crate::guest::{AudioCall, GuestInstance, VideoCall};
use crate::lifecycle::Fault;
use crate::media::{AudioFormat, VideoFormat};
use std::fmt;
use std::time::Duration;

/// A projected time to the cap shorter than this is a leak.
const LEAK_HORIZON: Duration = Duration::from_secs(3600);

/// Memory before and after the measured calls of one stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Growth {
    /// "audio" or "video".
    pub stream: &'static str,
    /// Calls measured (after the warm-up).
    pub calls: usize,
    /// Bytes held after the warm-up and after the last call.
    pub before: usize,
    pub after: usize,
    /// Calls per second at the stream's rate.
    pub rate: f64,
    /// The instance's memory cap.
    pub cap: usize,
}

impl Growth {
    pub fn per_call(&self) -> f64 {
        self.after.saturating_sub(self.before) as f64 / self.calls.max(1) as f64
    }

    /// How long a run at the stream's rate takes to reach the cap, if the
    /// memory keeps growing as it did.
    pub fn time_to_cap(&self) -> Option<Duration> {
        let per_call = self.per_call();
        (per_call > 0.0).then(|| {
            let calls = self.cap.saturating_sub(self.after) as f64 / per_call;
            Duration::from_secs_f64(calls / self.rate)
        })
    }

    /// Whether the growth would reach the cap within an hour.
    pub fn leaks(&self) -> bool {
        self.time_to_cap().is_some_and(|t| t < LEAK_HORIZON)
    }
}

impl fmt::Display for Growth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per_call = self.per_call();
        write!(
            f,
            "{} memory per call: {} over {} calls (after a warm-up)",
            self.stream,
            bytes(per_call),
            self.calls
        )?;
        if let Some(time) = self.time_to_cap() {
            write!(
                f,
                "; at that rate the {} MiB cap is reached after {:.0} s of stream",
                self.cap >> 20,
                time.as_secs_f64()
            )?;
            if self.leaks() {
                f.write_str(": the guest leaks")?;
            }
        }
        Ok(())
    }
}

fn bytes(per_call: f64) -> String {
    if per_call == 0.0 {
        "+0 bytes".into()
    } else if per_call < 1024.0 * 1024.0 {
        format!("+{:.1} KiB", per_call / 1024.0)
    } else {
        format!("+{:.2} MiB", per_call / 1048576.0)
    }
}

/// Split of `calls` into warm-up and measured calls.
fn split(calls: usize) -> (usize, usize) {
    let warm_up = (calls / 5).max(1);
    (warm_up, calls.saturating_sub(warm_up).max(1))
}

/// `calls` blocks of `block` frames through the instance.
///
/// # Errors
/// The first fault of a call.
pub fn audio(
    instance: &mut GuestInstance,
    format: AudioFormat,
    block: u32,
    calls: usize,
    cap: usize,
) -> Result<Growth, Fault> {
    let samples = block as usize * usize::from(format.channels);
    let input: Vec<f32> = (0..samples)
        .map(|i| (i as f32 * 0.01).sin() * 0.5)
        .collect();
    let mut buffer = input.clone();
    let call = |instance: &mut GuestInstance, n: usize| {
        buffer.clone_from(&input);
        let call = AudioCall {
            timestamp_ns: 0,
            first_frame: (n * block as usize) as u64,
            format,
        };
        instance.process_audio(call, &mut buffer).map(drop)
    };
    let rate = f64::from(format.sample_rate) / f64::from(block);
    measure(instance, "audio", (calls, rate, cap), call)
}

/// `calls` frames through the instance.
///
/// # Errors
/// The first fault of a call.
pub fn video(
    instance: &mut GuestInstance,
    format: VideoFormat,
    calls: usize,
    cap: usize,
) -> Result<Growth, Fault> {
    let input: Vec<u8> = (0..format.frame_bytes())
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let mut buffer = input.clone();
    let call = |instance: &mut GuestInstance, n: usize| {
        buffer.clone_from(&input);
        let call = VideoCall {
            timestamp_ns: 0,
            index: n as u64,
            format,
        };
        instance.process_video(call, &mut buffer).map(drop)
    };
    measure(instance, "video", (calls, format.fps.as_f64(), cap), call)
}

/// Warms up, then measures: `(calls, rate, cap)` as in [`Growth`].
fn measure(
    instance: &mut GuestInstance,
    stream: &'static str,
    (calls, rate, cap): (usize, f64, usize),
    mut call: impl FnMut(&mut GuestInstance, usize) -> Result<(), Fault>,
) -> Result<Growth, Fault> {
    let (warm_up, measured) = split(calls);
    for n in 0..warm_up {
        call(instance, n)?;
    }
    let before = instance.memory_used();
    for n in warm_up..warm_up + measured {
        call(instance, n)?;
    }
    Ok(Growth {
        stream,
        calls: measured,
        before,
        after: instance.memory_used(),
        rate,
        cap,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn growth(before: usize, after: usize, calls: usize) -> Growth {
        Growth {
            stream: "video",
            calls,
            before,
            after,
            rate: 30.0,
            cap: 256 << 20,
        }
    }

    #[test]
    fn a_frame_a_call_is_a_leak_and_says_when_it_hits_the_cap() {
        let frame = 640 * 360 * 4;
        let leak = growth(8 << 20, (8 << 20) + 40 * frame, 40);
        assert_eq!(leak.per_call(), frame as f64);
        assert!(leak.leaks());
        let text = leak.to_string();
        assert!(
            text.contains("video memory per call: +900.0 KiB over 40 calls"),
            "{text}"
        );
        // (256 MiB - 8 MiB - 40 frames) / 900 KiB per call / 30 per s
        assert!(
            text.contains("cap is reached after 8 s of stream: the guest leaks"),
            "{text}"
        );
    }

    #[test]
    fn flat_or_slow_growth_is_no_leak() {
        let flat = growth(1 << 20, 1 << 20, 40);
        assert!(!flat.leaks());
        assert_eq!(
            flat.to_string(),
            "video memory per call: +0 bytes over 40 calls (after a warm-up)"
        );
        // One 64 KiB page over 40 calls: the cap in ~2.4 h at 30 calls/s.
        assert!(!growth(1 << 20, (1 << 20) + 65536, 40).leaks());
    }
}
