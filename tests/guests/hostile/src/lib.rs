//! Test guest: misbehaves on purpose, in the way `--set mode=...` says,
//! on its `nth` audio call (counted per instance; default 1). When it is
//! not misbehaving it halves the audio, so each output block shows whether
//! the guest or the host's fallback produced it. Video passes through.
//!
//! Modes: loop, memory-bomb, recursion, trap, panic, error, nan,
//! square (full-scale x10), stdout-flood, setup-hang, and the probes
//! open-file, open-socket, resolve, env (run in setup; the result is logged).

use sandstream_guest::prelude::*;

struct Hostile {
    mode: String,
    nth: u64,
    calls: u64,
}

// Recursion without end is the point: it must overflow the stack.
#[allow(unconditional_recursion)]
#[inline(never)]
fn recurse(depth: u64, sink: &mut [u64; 64]) -> u64 {
    sink[(depth % 64) as usize] = depth;
    // Keep the frame alive after the call so it is not a tail call.
    recurse(depth + 1, sink) + sink[(depth % 7) as usize]
}

fn probe(mode: &str) -> Option<String> {
    Some(match mode {
        "open-file" => match std::fs::read("/etc/passwd") {
            Ok(b) => format!("probe open-file: READ {} bytes", b.len()),
            Err(e) => format!("probe open-file: denied ({e})"),
        },
        "open-socket" => match std::net::TcpStream::connect("127.0.0.1:9") {
            Ok(_) => "probe open-socket: CONNECTED".to_string(),
            Err(e) => format!("probe open-socket: denied ({e})"),
        },
        "resolve" => match std::net::ToSocketAddrs::to_socket_addrs("localhost:80") {
            Ok(addrs) => format!("probe resolve: RESOLVED {}", addrs.count()),
            Err(e) => format!("probe resolve: denied ({e})"),
        },
        "env" => format!(
            "probe env: {} variables, {} args",
            std::env::vars().count(),
            std::env::args().count()
        ),
        _ => return None,
    })
}

impl Effect for Hostile {
    fn setup(config: &Config, _formats: &Formats) -> Result<Self, String> {
        let mode: String = config.get_or("mode", String::new())?;
        if mode == "setup-hang" {
            #[allow(clippy::empty_loop)]
            loop {}
        }
        if let Some(result) = probe(&mode) {
            sandstream_guest::log::warn(&result);
        }
        Ok(Hostile {
            nth: config.get_or("nth", 1)?,
            mode,
            calls: 0,
        })
    }

    fn process_audio(&mut self, block: AudioBlock<'_>) -> Result<Output, String> {
        self.calls += 1;
        if self.calls >= self.nth {
            match self.mode.as_str() {
                "loop" =>
                {
                    #[allow(clippy::empty_loop)]
                    loop {}
                }
                "memory-bomb" => {
                    let mut hoard: Vec<Vec<u8>> = Vec::new();
                    loop {
                        hoard.push(vec![1; 1 << 20]);
                        std::hint::black_box(&hoard);
                    }
                }
                "recursion" => {
                    let mut sink = [0; 64];
                    std::hint::black_box(recurse(0, &mut sink));
                }
                "trap" => core::arch::wasm32::unreachable(),
                "panic" => panic!("hostile guest panicked on purpose at call {}", self.calls),
                // A wrong-sized result cannot be expressed through the SDK's
                // in-place API (the `wrong-frame-size` guest does it raw);
                // this mode returns an error instead.
                "error" => return Err(format!("hostile guest refuses block {}", self.calls)),
                "nan" => {
                    for (i, s) in block.samples.iter_mut().enumerate() {
                        *s = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.25][i % 4];
                    }
                    return Ok(Output::Keep);
                }
                "square" => {
                    let channels = block.channels.max(1) as usize;
                    for (i, s) in block.samples.iter_mut().enumerate() {
                        *s = if (i / channels / 24).is_multiple_of(2) {
                            10.0
                        } else {
                            -10.0
                        };
                    }
                    return Ok(Output::Keep);
                }
                "stdout-flood" => {
                    let line = "x".repeat(1000);
                    for _ in 0..1000 {
                        println!("{line}");
                    }
                }
                _ => {}
            }
        }
        for s in block.samples.iter_mut() {
            *s *= 0.5;
        }
        Ok(Output::Keep)
    }

    fn process_video(&mut self, _frame: VideoFrame<'_>) -> Result<Output, String> {
        Ok(Output::Keep)
    }
}

sandstream_guest::export!(Hostile);
