//! Round trips through a guest, beside a plain memcpy of the same bytes and
//! the same kernel run natively. Guests come from `cargo xtask guests`
//! (`cargo xtask bench` builds them first).
//!
//! Numbers and the machine they were measured on: docs/PERFORMANCE.md.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sandstream::guest::{
    AudioCall, GuestInstance, GuestProgram, StreamFormats, VideoCall, engine_for,
};
use sandstream::media::{AudioFormat, Fps, VideoFormat};
use std::hint::black_box;
use std::path::PathBuf;

const AUDIO: AudioFormat = AudioFormat {
    sample_rate: 48_000,
    channels: 2,
};
const BLOCK_FRAMES: u32 = 512;
const VIDEO: VideoFormat = VideoFormat {
    width: 1920,
    height: 1080,
    fps: Fps { num: 30, den: 1 },
};

/// A configured instance; `trusted` compiles without epoch checks (no
/// deadlines), as `--trusted` does.
fn instance(name: &str, trusted: bool) -> GuestInstance {
    let path = std::env::var_os("SANDSTREAM_GUESTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/guests"))
        .join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} missing: run `cargo xtask guests`",
        path.display()
    );
    let engine = engine_for(trusted).unwrap();
    let program = GuestProgram::load(&engine, &path, None).unwrap();
    let mut instance = program.instantiate().unwrap();
    let formats = StreamFormats {
        audio: Some((AUDIO, BLOCK_FRAMES)),
        video: Some(VIDEO),
    };
    instance.configure(&Vec::new(), &formats).unwrap();
    instance
}

fn audio(c: &mut Criterion) {
    let samples: Vec<f32> = (0..BLOCK_FRAMES as usize * 2)
        .map(|i| (i as f32 * 0.01).sin())
        .collect();
    let call = AudioCall {
        timestamp_ns: 0,
        first_frame: 0,
        format: AUDIO,
    };
    let mut group = c.benchmark_group("audio 512 stereo frames");
    group.throughput(Throughput::Bytes((samples.len() * 4) as u64));
    let mut out = vec![0.0f32; samples.len()];
    group.bench_function("memcpy", |b| {
        b.iter(|| out.copy_from_slice(black_box(&samples)))
    });
    group.bench_function("native gain", |b| {
        b.iter(|| {
            for (o, s) in out.iter_mut().zip(black_box(&samples)) {
                *o = s * 0.5;
            }
        })
    });
    for (mode, trusted) in [("sandboxed", false), ("trusted", true)] {
        let mut passthrough = instance("passthrough", trusted);
        group.bench_function(format!("guest passthrough, list path, {mode}"), |b| {
            b.iter(|| {
                passthrough
                    .process_audio(call, black_box(&samples))
                    .unwrap()
            })
        });
        let mut gain = instance("gain", trusted);
        group.bench_function(format!("guest gain, list path, {mode}"), |b| {
            b.iter(|| gain.process_audio(call, black_box(&samples)).unwrap())
        });
    }
    group.finish();
}

fn native_grayscale(src: &[u8], dst: &mut [u8]) {
    for (d, s) in dst.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
        let luma = ((77 * u32::from(s[0]) + 150 * u32::from(s[1]) + 29 * u32::from(s[2]) + 128)
            >> 8) as u8;
        d.copy_from_slice(&[luma, luma, luma, s[3]]);
    }
}

fn video(c: &mut Criterion) {
    let frame: Vec<u8> = (0..VIDEO.frame_bytes())
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let call = VideoCall {
        timestamp_ns: 0,
        index: 0,
        format: VIDEO,
    };
    let mut group = c.benchmark_group("video 1920x1080 RGBA");
    group.sample_size(30);
    group.throughput(Throughput::Bytes(frame.len() as u64));
    let mut out = vec![0u8; frame.len()];
    group.bench_function("memcpy", |b| {
        b.iter(|| out.copy_from_slice(black_box(&frame)))
    });
    group.bench_function("native grayscale", |b| {
        b.iter(|| native_grayscale(black_box(&frame), &mut out))
    });
    for (mode, trusted) in [("sandboxed", false), ("trusted", true)] {
        let mut passthrough = instance("passthrough", trusted);
        group.bench_function(format!("guest passthrough, list path, {mode}"), |b| {
            b.iter(|| passthrough.process_video(call, black_box(&frame)).unwrap())
        });
        let mut grayscale = instance("grayscale", trusted);
        group.bench_function(format!("guest grayscale simd128, list path, {mode}"), |b| {
            b.iter(|| grayscale.process_video(call, black_box(&frame)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, audio, video);
criterion_main!(benches);
