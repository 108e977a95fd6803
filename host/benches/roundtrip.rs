//! Round trips through a guest, beside a plain memcpy of the same bytes and
//! the same kernel run natively, on both data paths:
//! - list: the frame is a canonical-ABI `list` argument and result;
//! - mapped, copied: the frame is copied into the guest's own buffer and the
//!   result copied back out (what the pipeline does today);
//! - mapped, in place: `process_video_with` fills the guest's buffer (here
//!   with a memcpy, standing in for a decoder) and reads the result where it
//!   lies (standing in for an encoder), so the one copy left is the one a
//!   device would force.
//!
//! Guests come from `cargo xtask guests` (`cargo xtask bench` builds them
//! first). Numbers and the machine they were measured on:
//! docs/PERFORMANCE.md.

use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use sandstream::guest::{
    AudioCall, DataPath, GuestInstance, GuestProgram, StreamFormats, VideoCall, engine_for,
};
use sandstream::media::{AudioFormat, Fps, VideoFormat};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

const AUDIO: AudioFormat = AudioFormat {
    sample_rate: 48_000,
    channels: 2,
};
const BLOCK_FRAMES: u32 = 512;

fn video_format(width: u32, height: u32) -> VideoFormat {
    VideoFormat {
        width,
        height,
        fps: Fps { num: 30, den: 1 },
    }
}

/// A configured instance on `path`; `trusted` compiles without epoch
/// checks (no deadlines), as `--trusted` does.
fn instance(name: &str, trusted: bool, formats: StreamFormats, path: DataPath) -> GuestInstance {
    let file = std::env::var_os("SANDSTREAM_GUESTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/guests"))
        .join(format!("{name}.wasm"));
    assert!(
        file.is_file(),
        "{} missing: run `cargo xtask guests`",
        file.display()
    );
    let engine = engine_for(trusted).unwrap();
    let program = GuestProgram::load(&engine, &file, None).unwrap();
    let mut instance = program.instantiate().unwrap();
    instance.configure(&Vec::new(), &formats).unwrap();
    instance.map_buffers(&formats, path).unwrap();
    instance
}

const PATHS: [(&str, DataPath); 2] = [("list", DataPath::Lists), ("mapped", DataPath::Auto)];

fn audio(c: &mut Criterion) {
    let samples: Vec<f32> = (0..BLOCK_FRAMES as usize * 2)
        .map(|i| (i as f32 * 0.01).sin())
        .collect();
    let call = AudioCall {
        timestamp_ns: 0,
        first_frame: 0,
        format: AUDIO,
    };
    let formats = StreamFormats {
        audio: Some((AUDIO, BLOCK_FRAMES)),
        video: None,
    };
    let mut group = c.benchmark_group("audio 512 stereo frames");
    quick(&mut group);
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
        for (path_name, path) in PATHS {
            for guest in ["passthrough", "gain"] {
                let mut instance = instance(guest, trusted, formats, path);
                let mut block = samples.clone();
                group.bench_function(format!("guest {guest}, {path_name}, {mode}"), |b| {
                    b.iter(|| {
                        block.copy_from_slice(&samples);
                        instance.process_audio(call, black_box(&mut block)).unwrap()
                    })
                });
            }
        }
    }
    group.finish();
}

/// A test frame: a deterministic, busy pattern.
fn frame(format: VideoFormat) -> Vec<u8> {
    (0..format.frame_bytes())
        .map(|i| (i * 7 % 251) as u8)
        .collect()
}

/// The identity round trip at each size: host overhead alone.
fn video_overhead(c: &mut Criterion) {
    for (width, height) in [(1280, 720), (1920, 1080), (3840, 2160)] {
        let format = video_format(width, height);
        let input = frame(format);
        let call = VideoCall {
            timestamp_ns: 0,
            index: 0,
            format,
        };
        let formats = StreamFormats {
            audio: None,
            video: Some(format),
        };
        let mut group = c.benchmark_group(format!("video {width}x{height} RGBA passthrough"));
        quick(&mut group);
        group.throughput(Throughput::Bytes(input.len() as u64));
        let mut out = vec![0u8; input.len()];
        group.bench_function("memcpy", |b| {
            b.iter(|| out.copy_from_slice(black_box(&input)))
        });
        for (path_name, path) in PATHS {
            let mut guest = instance("passthrough", false, formats, path);
            group.bench_function(format!("{path_name}, copied in and out"), |b| {
                b.iter(|| guest.process_video(call, black_box(&mut out)).unwrap())
            });
        }
        let mut guest = instance("passthrough", false, formats, DataPath::Auto);
        group.bench_function("mapped, filled and read in place", |b| {
            b.iter(|| fill_and_read_in_place(&mut guest, call, &input))
        });
        group.finish();
    }
}

/// One frame on the in-place path: `input` copied into the guest's buffer
/// (a decoder's one copy), the result read where it lies.
fn fill_and_read_in_place(guest: &mut GuestInstance, call: VideoCall, input: &[u8]) {
    guest
        .process_video_with(
            call,
            |dst| dst.copy_from_slice(black_box(input)),
            |src| {
                black_box(src);
            },
        )
        .unwrap();
}

/// The grayscale example's kernel, compiled natively.
fn native_grayscale(pixels: &mut [u8]) {
    for pixel in pixels.chunks_exact_mut(4) {
        let luma = ((77 * u32::from(pixel[0])
            + 150 * u32::from(pixel[1])
            + 29 * u32::from(pixel[2])
            + 128)
            >> 8) as u8;
        pixel[..3].fill(luma);
    }
}

fn video_grayscale(c: &mut Criterion) {
    let format = video_format(1920, 1080);
    let input = frame(format);
    let call = VideoCall {
        timestamp_ns: 0,
        index: 0,
        format,
    };
    let formats = StreamFormats {
        audio: None,
        video: Some(format),
    };
    let mut group = c.benchmark_group("video 1920x1080 RGBA grayscale");
    quick(&mut group);
    group.throughput(Throughput::Bytes(input.len() as u64));
    let mut out = vec![0u8; input.len()];
    group.bench_function("native kernel + memcpy", |b| {
        b.iter(|| {
            out.copy_from_slice(black_box(&input));
            native_grayscale(&mut out);
        })
    });
    for (mode, trusted) in [("sandboxed", false), ("trusted", true)] {
        for (path_name, path) in PATHS {
            let mut guest = instance("grayscale", trusted, formats, path);
            // Gray in, gray out: the kernel's cost does not depend on the
            // pixels, so the frame is not reset between calls.
            out.copy_from_slice(&input);
            group.bench_function(format!("simd128 guest, {path_name}, copied, {mode}"), |b| {
                b.iter(|| guest.process_video(call, black_box(&mut out)).unwrap())
            });
        }
        let mut guest = instance("grayscale", trusted, formats, DataPath::Auto);
        group.bench_function(format!("simd128 guest, mapped, in place, {mode}"), |b| {
            b.iter(|| fill_and_read_in_place(&mut guest, call, &input))
        });
    }
    group.finish();
}

/// Short runs: the medians settle within a few seconds and the whole bench
/// must fit a developer's patience on two cores.
fn quick<M: criterion::measurement::Measurement>(group: &mut BenchmarkGroup<'_, M>) {
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.sample_size(30);
}

criterion_group!(benches, audio, video_overhead, video_grayscale);
criterion_main!(benches);
