use crate::common::*;
use sandstream::Streamer;
use sandstream::media::{AudioBlock, VideoFrame};
use sandstream::sink::Sink;
use sandstream::spec::{AudioInputSpec, AudioOutputSpec, VideoInputSpec, VideoOutputSpec};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Records the timestamp and size of everything written.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<(u64, usize)>>>);

impl Recorder {
    fn items(&self) -> Vec<(u64, usize)> {
        self.0.lock().unwrap().clone()
    }
}

impl Sink<AudioBlock> for Recorder {
    fn write(&mut self, block: &AudioBlock) -> anyhow::Result<()> {
        self.0
            .lock()
            .unwrap()
            .push((block.timestamp_ns, block.samples.len()));
        Ok(())
    }
    fn finish(self: Box<Self>) -> anyhow::Result<()> {
        Ok(())
    }
    fn describe(&self) -> String {
        "recorder".into()
    }
}

impl Sink<VideoFrame> for Recorder {
    fn write(&mut self, frame: &VideoFrame) -> anyhow::Result<()> {
        self.0
            .lock()
            .unwrap()
            .push((frame.timestamp_ns, frame.pixels.len()));
        Ok(())
    }
    fn finish(self: Box<Self>) -> anyhow::Result<()> {
        Ok(())
    }
    fn describe(&self) -> String {
        "recorder".into()
    }
}

fn assert_strictly_increasing(items: &[(u64, usize)], what: &str) {
    for pair in items.windows(2) {
        assert!(
            pair[1].0 > pair[0].0,
            "{what} timestamps not increasing: {} then {}",
            pair[0].0,
            pair[1].0
        );
    }
}

#[test]
fn level_meter_over_file_inputs() {
    let dir = scratch("av-files");
    let (wav_in, y4m_in) = (dir.join("tone.wav"), dir.join("testsrc.y4m"));
    let (wav_out, y4m_out) = (dir.join("out.wav"), dir.join("out.y4m"));
    tool(
        "sox",
        &[
            "-n",
            "-r",
            "48000",
            "-c",
            "2",
            "-b",
            "16",
            &s(&wav_in),
            "synth",
            "2",
            "sine",
            "440",
            "vol",
            "0.8",
        ],
    );
    testsrc(&y4m_in, "160x120", 25, 2.0, "yuv420p");
    let (audio, video) = (Recorder::default(), Recorder::default());

    let streamer = Streamer::builder()
        .guest_path(guest("level-meter"))
        .cache(sandstream::CacheSetting::Dir(cache_dir()))
        .audio_input(AudioInputSpec::File(wav_in.clone()))
        .video_input(VideoInputSpec::File(y4m_in))
        .audio_output(AudioOutputSpec::Wav(wav_out.clone()))
        .video_output(VideoOutputSpec::Y4m(y4m_out.clone()))
        .audio_sink(Box::new(audio.clone()))
        .video_sink(Box::new(video.clone()))
        .build()
        .unwrap();
    let report = streamer.start().unwrap().wait().unwrap();

    // Both outputs complete.
    assert_eq!(hound::WavReader::open(&wav_out).unwrap().duration(), 96_000);
    let frames = Y4m::read(&y4m_out);
    assert_eq!(frames.frames.len(), 50);
    assert_eq!(
        (report.audio.units_out, report.video.units_out),
        (96_000, 50)
    );

    // Timestamps monotonic, as written.
    let (audio, video) = (audio.items(), video.items());
    assert_strictly_increasing(&audio, "audio");
    assert_strictly_increasing(&video, "video");
    assert_eq!(
        report.audio.timestamp_regressions + report.video.timestamp_regressions,
        0
    );

    // Durations equal within one video frame (40 ms at 25 fps).
    let (audio_end, video_end) = (report.audio.end_ns as i64, report.video.end_ns as i64);
    assert!(
        (audio_end - video_end).abs() <= 40_000_000,
        "audio ends at {audio_end} ns, video at {video_end} ns"
    );

    // The guest drew the level: the bottom rows have a bright green bar
    // whose width follows the 0.8 peak (luma of green ~ 150).
    let last = frames.frames.last().unwrap();
    let luma = frames.luma(last);
    let bottom_row = &luma[(frames.height - 2) * frames.width..(frames.height - 1) * frames.width];
    let lit = bottom_row.iter().filter(|&&y| y > 100).count();
    let expected = (0.8 * frames.width as f64) as usize;
    assert!(
        lit.abs_diff(expected) <= 3,
        "bar is {lit} px wide, expected about {expected}"
    );
}

#[test]
fn realtime_run_keeps_both_streams_and_every_block() {
    let (audio, video) = (Recorder::default(), Recorder::default());
    let streamer = Streamer::builder()
        .guest_path(guest("level-meter"))
        .cache(sandstream::CacheSetting::Dir(cache_dir()))
        .audio_input(AudioInputSpec::Tone(440.0))
        .video_input(VideoInputSpec::Pattern)
        .frame_size(64, 48)
        .block_frames(480)
        .duration(Duration::from_millis(500))
        .realtime(true)
        .audio_sink(Box::new(audio.clone()))
        .video_sink(Box::new(video.clone()))
        .build()
        .unwrap();
    let report = streamer.start().unwrap().wait().unwrap();
    let (audio, video) = (audio.items(), video.items());
    // 0.5 s at 48 kHz in 480-frame blocks; 0.5 s at 30 fps.
    assert_eq!(audio.len() as u64 + report.audio.overruns, 50, "{report:?}");
    assert_eq!(video.len() as u64 + report.video.overruns, 15, "{report:?}");
    assert_strictly_increasing(&audio, "audio");
    assert_strictly_increasing(&video, "video");
    // Real-time stamps are on the host clock, 10 ms apart for 480 frames
    // (a multiple of that if a block was dropped as an overrun).
    assert!(
        audio
            .windows(2)
            .all(|p| (p[1].0 - p[0].0) % 10_000_000 == 0),
        "audio stamps on a 10 ms grid"
    );
}

#[test]
fn stop_ends_an_endless_realtime_stream_with_outputs_finalized() {
    let dir = scratch("stop");
    let wav = dir.join("out.wav");
    let running = Streamer::builder()
        .guest_path(guest("gain"))
        .cache(sandstream::CacheSetting::Dir(cache_dir()))
        .audio_input(AudioInputSpec::Silence)
        .audio_output(AudioOutputSpec::Wav(wav.clone()))
        .realtime(true)
        .build()
        .unwrap()
        .start()
        .unwrap();
    running.stop();
    let report = running.wait().unwrap();
    let written = hound::WavReader::open(&wav)
        .expect("a finalized WAV after stop")
        .duration();
    assert_eq!(u64::from(written), report.audio.units_out);
}
