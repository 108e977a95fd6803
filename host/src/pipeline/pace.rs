//! Is the guest fast enough for its streams? The processing stage tells
//! [`Pace`] how long each call took and how much media it covered; once
//! the guest needs more than real time — one stream, or both together —
//! the user is told once, with the numbers. The guest's usual time per
//! call also tells the stage which items can no longer make the budget.

use crate::media::StreamKind;
use crate::rt;

/// Calls over which the guest's speed is judged.
const WINDOW: u32 = 32;

#[derive(Debug, Default, Clone, Copy)]
struct StreamPace {
    /// A running average of the guest's time per call.
    typical_call_ns: u64,
    /// This window: time in the guest, and media time it processed.
    busy_ns: u64,
    media_ns: u64,
    calls: u32,
}

impl StreamPace {
    /// Times real time the guest needs for this stream.
    fn load(&self) -> f64 {
        self.busy_ns as f64 / self.media_ns.max(1) as f64
    }
}

/// The guest's speed against its streams, on the processing thread.
#[derive(Debug, Default)]
pub struct Pace {
    audio: StreamPace,
    video: StreamPace,
    calls: u32,
    warned: bool,
}

impl Pace {
    fn stream(&mut self, kind: StreamKind) -> &mut StreamPace {
        match kind {
            StreamKind::Audio => &mut self.audio,
            StreamKind::Video => &mut self.video,
        }
    }

    /// The guest's usual time for one call on `kind` (0 before any).
    pub fn typical_call_ns(&self, kind: StreamKind) -> u64 {
        match kind {
            StreamKind::Audio => self.audio.typical_call_ns,
            StreamKind::Video => self.video.typical_call_ns,
        }
    }

    /// One call took `call_ns` for `media_ns` of `kind`; `budget_ns` is
    /// for the message.
    pub fn observe(&mut self, kind: StreamKind, call_ns: u64, media_ns: u64, budget_ns: u64) {
        let stream = self.stream(kind);
        stream.typical_call_ns = match stream.typical_call_ns {
            0 => call_ns,
            typical => (typical * 7 + call_ns) / 8,
        };
        stream.busy_ns += call_ns;
        stream.media_ns += media_ns;
        stream.calls += 1;
        self.calls += 1;
        if self.calls < WINDOW {
            return;
        }
        let load = self.audio.load() + self.video.load();
        if load > 1.0 && !self.warned {
            self.warned = true;
            let (audio, video) = (self.audio, self.video);
            rt::outside_hot(|| tracing::warn!("{}", too_slow(load, [audio, video], budget_ns)));
        }
        for stream in [&mut self.audio, &mut self.video] {
            *stream = StreamPace {
                typical_call_ns: stream.typical_call_ns,
                ..StreamPace::default()
            };
        }
        self.calls = 0;
    }
}

/// The warning for a guest that needs `load` times real time.
fn too_slow(load: f64, [audio, video]: [StreamPace; 2], budget_ns: u64) -> String {
    let ms = |ns: u64| ns as f64 / 1e6;
    let per = |pace: &StreamPace, item: &str| {
        let calls = u64::from(pace.calls.max(1));
        format!(
            "{:.1} ms per {item} that lasts {:.1} ms",
            ms(pace.busy_ns / calls),
            ms(pace.media_ns / calls)
        )
    };
    // A stream too slow on its own is named alone (with its own load);
    // "together" is for two that fit alone but not side by side.
    let named = match (audio.load() > 1.0, video.load() > 1.0) {
        (true, false) => (true, false),
        (false, true) => (false, true),
        _ => (audio.calls > 0, video.calls > 0),
    };
    let load = match named {
        (true, false) => audio.load(),
        (false, true) => video.load(),
        _ => load,
    };
    let (streams, numbers, items) = match named {
        (true, true) => (
            "the audio and video streams together",
            format!(
                "{} and {}",
                per(&audio, "audio block"),
                per(&video, "video frame")
            ),
            "audio blocks and video frames",
        ),
        (true, false) => (
            "the audio stream",
            per(&audio, "audio block"),
            "audio blocks",
        ),
        _ => (
            "the video stream",
            per(&video, "video frame"),
            "video frames",
        ),
    };
    format!(
        "the guest is too slow for {streams}: {numbers} ({load:.1}x real time); {items} are \
         skipped to stay within the {:.0} ms latency budget (counted as late and overruns in \
         the report)",
        ms(budget_ns)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_guest_within_real_time_is_not_warned_about_and_its_usual_time_is_known() {
        let mut pace = Pace::default();
        for _ in 0..100 {
            pace.observe(StreamKind::Audio, 5 * MS, 10 * MS, 100 * MS);
        }
        assert!(!pace.warned);
        assert_eq!(pace.typical_call_ns(StreamKind::Audio), 5 * MS);
        assert_eq!(pace.typical_call_ns(StreamKind::Video), 0);
    }

    #[test]
    fn two_streams_that_fit_alone_but_not_together_are_warned_about() {
        let mut pace = Pace::default();
        // Audio needs 0.75 of real time, video 0.45: 1.2 together.
        for i in 0..96 {
            if i % 3 == 0 {
                pace.observe(StreamKind::Video, 15 * MS, 33 * MS, 100 * MS);
            } else {
                pace.observe(StreamKind::Audio, 8 * MS, 10_667_000, 100 * MS);
            }
        }
        assert!(pace.warned);
    }

    #[test]
    fn a_stream_too_slow_on_its_own_is_named_alone() {
        let pace = |busy_ns, media_ns, calls| StreamPace {
            typical_call_ns: busy_ns / u64::from(calls),
            busy_ns,
            media_ns,
            calls,
        };
        // 4 frames of 45 ms per 33 ms; 28 audio blocks of 10 µs.
        let video = pace(180 * MS, 133 * MS, 4);
        let audio = pace(280_000, 149_333_000, 28);
        let message = too_slow(1.36, [audio, video], 200 * MS);
        assert_eq!(
            message,
            "the guest is too slow for the video stream: 45.0 ms per video frame that lasts \
             33.2 ms (1.4x real time); video frames are skipped to stay within the 200 ms \
             latency budget (counted as late and overruns in the report)"
        );
        // Neither alone, both together: both named.
        let audio = pace(28 * 4 * MS, 149_333_000, 28);
        let video = pace(80 * MS, 133 * MS, 4);
        let message = too_slow(1.35, [audio, video], 200 * MS);
        assert!(
            message.contains("the audio and video streams together"),
            "{message}"
        );
    }
}
