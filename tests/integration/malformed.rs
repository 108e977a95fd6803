//! Property test over malformed input: mutated components, WAV and Y4M
//! files must each give a clear error (or, if the mutation was harmless,
//! load), never a panic. Bounded: a fixed seed and a fixed number of cases.

use crate::common::*;
use sandstream::guest::{GuestProgram, new_engine};
use sandstream::source::{Source, WavSource, Y4mSource};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One random mutation: flip bytes, cut the tail, or splice in garbage.
fn mutate(rng: &mut Rng, original: &[u8]) -> Vec<u8> {
    let mut bytes = original.to_vec();
    match rng.below(3) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(bytes.len());
                bytes[at] ^= 1 << rng.below(8);
            }
        }
        1 => bytes.truncate(rng.below(bytes.len())),
        _ => {
            let at = rng.below(bytes.len());
            let garbage: Vec<u8> = (0..1 + rng.below(64)).map(|_| rng.next() as u8).collect();
            bytes.splice(at..(at + garbage.len()).min(bytes.len()), garbage);
        }
    }
    bytes
}

#[test]
fn mutated_components_never_panic_the_loader() {
    let engine = new_engine().unwrap();
    let original = std::fs::read(guest("gain")).unwrap();
    let mut rng = Rng(0x5eed_0001);
    let (mut rejected, mut loaded) = (0, 0);
    for case in 0..150 {
        let bytes = mutate(&mut rng, &original);
        let result = catch_unwind(AssertUnwindSafe(|| {
            GuestProgram::from_bytes(&engine, "fuzz.wasm", &bytes, None)
        }));
        match result {
            Err(_) => panic!("case {case}: the loader panicked"),
            Ok(Ok(_)) => loaded += 1,
            Ok(Err(err)) => {
                let message = err.to_string();
                assert!(
                    !message.is_empty() && !message.contains('\n'),
                    "case {case}: {message:?}"
                );
                rejected += 1;
            }
        }
    }
    assert!(
        rejected > 100,
        "most mutations must be rejected ({rejected} rejected, {loaded} loaded)"
    );
}

#[test]
fn mutated_wav_and_y4m_files_never_panic_the_readers() {
    let dir = scratch("malformed-media");
    let wav = dir.join("in.wav");
    let y4m = dir.join("in.y4m");
    tool(
        "sox",
        &[
            "-n",
            "-r",
            "8000",
            "-c",
            "2",
            "-b",
            "16",
            &s(&wav),
            "synth",
            "0.05",
            "sine",
            "440",
        ],
    );
    testsrc(&y4m, "16x8", 5, 0.6, "yuv420p");
    let (wav_bytes, y4m_bytes) = (std::fs::read(&wav).unwrap(), std::fs::read(&y4m).unwrap());
    let case_path = dir.join("case");
    let mut rng = Rng(0x5eed_0002);
    for case in 0..300 {
        let is_wav = case % 2 == 0;
        let bytes = mutate(&mut rng, if is_wav { &wav_bytes } else { &y4m_bytes });
        std::fs::write(&case_path, &bytes).unwrap();
        let outcome = catch_unwind(AssertUnwindSafe(|| -> anyhow::Result<usize> {
            let mut count = 0;
            if is_wav {
                let mut source = WavSource::open(&case_path)?;
                let mut samples = Vec::new();
                while source.read(&mut samples, 256)? > 0 {
                    count += 1;
                    samples.clear();
                }
            } else {
                let mut source = Y4mSource::open(&case_path)?;
                let mut rgba = Vec::new();
                while source.read(&mut rgba, 1)? > 0 {
                    count += 1;
                }
            }
            Ok(count)
        }));
        match outcome {
            Err(_) => panic!(
                "case {case} ({}): a reader panicked",
                if is_wav { "wav" } else { "y4m" }
            ),
            Ok(Err(err)) => assert!(!format!("{err:#}").is_empty(), "case {case}: empty error"),
            Ok(Ok(_)) => {}
        }
    }
}
