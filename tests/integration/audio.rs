use crate::common::*;

#[test]
fn gain_halves_a_sine_made_by_sox() {
    let dir = scratch("gain");
    let input = dir.join("sine.wav");
    let output = dir.join("out.wav");
    tool(
        "sox",
        &[
            "-n",
            "-r",
            "44100",
            "-c",
            "2",
            "-b",
            "16",
            &s(&input),
            "synth",
            "1.5",
            "sine",
            "1000",
            "vol",
            "0.5",
        ],
    );

    let run = sandstream(&[
        "run",
        &s(&guest("gain")),
        "--audio-in",
        &file(&input),
        "--audio-out",
        &file(&output),
        "--set",
        "gain=0.5",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));

    let original = hound::WavReader::open(&input).unwrap();
    let processed = hound::WavReader::open(&output).unwrap();
    assert_eq!(processed.spec().sample_rate, 44100);
    assert_eq!(processed.spec().channels, 2);
    assert_eq!(
        processed.duration(),
        original.duration(),
        "same number of frames"
    );
    assert_eq!(processed.duration(), 66150);

    let rms_in = sox_stat(&input, "RMS     amplitude");
    let rms_out = sox_stat(&output, "RMS     amplitude");
    let ratio = rms_out / rms_in;
    assert!(
        (ratio - 0.5).abs() < 0.005,
        "RMS ratio {ratio} (in {rms_in}, out {rms_out})"
    );
}

#[test]
fn a_synthetic_tone_has_the_asked_length_and_frequency() {
    let dir = scratch("tone");
    let output = dir.join("tone.wav");
    let run = sandstream(&[
        "run",
        &s(&guest("gain")),
        "--audio-in",
        "tone:440",
        "--duration",
        "2",
        "--sample-rate",
        "16000",
        "--channels",
        "1",
        "--block",
        "100",
        "--audio-out",
        &file(&output),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let reader = hound::WavReader::open(&output).unwrap();
    assert_eq!(
        (reader.spec().sample_rate, reader.spec().channels),
        (16000, 1)
    );
    assert_eq!(reader.duration(), 32000);
    let freq = sox_stat(&output, "Rough   frequency");
    assert!((freq - 440.0).abs() < 5.0, "sox measures {freq} Hz");
    let max = sox_stat(&output, "Maximum amplitude");
    assert!((max - 0.5).abs() < 0.01, "tone at -6 dBFS, max {max}");
}

#[test]
fn a_guest_passes_through_the_stream_it_does_not_process() {
    let dir = scratch("passthrough-video");
    let video = dir.join("v.y4m");
    let run = sandstream(&[
        "run",
        &s(&guest("gain")),
        "--audio-in",
        "silence",
        "--video-in",
        "pattern",
        "--duration",
        "0.5",
        "--video-out",
        &file(&video),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(
        Y4m::read(&video).frames.len(),
        15,
        "30 fps x 0.5 s, unprocessed"
    );
}
