//! Test guest: exports the mapped video path and, depending on its `mode`
//! setting, lies about its buffers. Every mode inverts the colours, on the
//! list path too, so a test can tell processed frames from bypassed ones.
//!
//! Modes: `honest` (one buffer, in place), `separate` (input and output
//! apart), `grow` (honest, but grows its memory by 1 MiB every frame),
//! `out-of-range`, `huge-offset`, `overlap`, `short`, `decline`, and
//! `clobber` (announces offset 0, so frames land on its own stack and data),
//! `trap-in-prepare`.

wit_bindgen::generate!({
    path: "../../../wit",
    inline: "package test:lying;
        world lying {
            include sandstream:av/video-effect@0.1.0;
            export sandstream:av/mapped-video@0.1.0;
        }",
    generate_all,
});

use exports::sandstream::av::{mapped_video, setup, video};
use sandstream::av::types::{Buffers, Outcome, Region, StreamFormats, VideoInfo};
use std::cell::{Cell, RefCell};

thread_local! {
    static MODE: RefCell<String> = const { RefCell::new(String::new()) };
    static FRAME_BYTES: Cell<usize> = const { Cell::new(0) };
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static SECOND: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// What was announced, as raw addresses.
    static ANNOUNCED: Cell<(usize, usize, usize)> = const { Cell::new((0, 0, 0)) };
}

fn invert(pixels: &mut [u8]) {
    for pixel in pixels.chunks_exact_mut(4) {
        for c in &mut pixel[..3] {
            *c = 255 - *c;
        }
    }
}

fn mode() -> String {
    MODE.with_borrow(|m| m.clone())
}

struct Lying;

impl setup::Guest for Lying {
    fn configure(config: Vec<(String, String)>, formats: StreamFormats) -> Result<(), String> {
        let mode = config
            .into_iter()
            .find(|(k, _)| k == "mode")
            .map(|(_, v)| v)
            .unwrap_or_else(|| "honest".into());
        MODE.set(mode);
        let video = formats.video.ok_or("no video")?;
        FRAME_BYTES.set(video.width as usize * video.height as usize * 4);
        Ok(())
    }
}

impl video::Guest for Lying {
    fn process_video(_info: VideoInfo, mut pixels: Vec<u8>) -> Result<Vec<u8>, String> {
        invert(&mut pixels);
        Ok(pixels)
    }
}

fn region(offset: usize, length: usize) -> Region {
    Region {
        offset: offset as u32,
        length: length as u32,
    }
}

impl mapped_video::Guest for Lying {
    fn prepare() -> Result<Buffers, String> {
        let len = FRAME_BYTES.get();
        let buffer = BUFFER.with_borrow_mut(|b| {
            *b = vec![0; len + 4];
            b.as_mut_ptr() as usize
        });
        let second = SECOND.with_borrow_mut(|b| {
            *b = vec![0; len];
            b.as_mut_ptr() as usize
        });
        // Measured after the allocations above, which may grow the memory.
        let memory_bytes = core::arch::wasm32::memory_size(0) * 65536;
        let (input, output) = match mode().as_str() {
            "honest" | "grow" => (region(buffer, len), region(buffer, len)),
            "separate" => (region(buffer, len), region(second, len)),
            "out-of-range" => {
                let past_end = memory_bytes - len / 2;
                (region(past_end, len), region(past_end, len))
            }
            "huge-offset" => (region(u32::MAX as usize - 16, len), region(buffer, len)),
            "overlap" => (region(buffer, len), region(buffer + 4, len)),
            "short" => (region(buffer, len / 2), region(buffer, len / 2)),
            "decline" => return Err("not today".into()),
            "trap-in-prepare" => unreachable!("prepare traps"),
            "clobber" => (region(0, len), region(0, len)),
            other => return Err(format!("unknown mode {other}")),
        };
        ANNOUNCED.set((input.offset as usize, output.offset as usize, len));
        Ok(Buffers { input, output })
    }

    fn process(_info: VideoInfo) -> Result<Outcome, String> {
        let (input, output, len) = ANNOUNCED.get();
        if mode() == "grow" {
            core::arch::wasm32::memory_grow(0, 16);
        }
        // SAFETY (of this test guest only): the host wrote `len` bytes at
        // `input`; `output` was announced as `len` bytes too. In `clobber`
        // mode this is exactly the damage under test.
        unsafe {
            let src = std::slice::from_raw_parts(input as *const u8, len);
            let dst = std::slice::from_raw_parts_mut(output as *mut u8, len);
            if input != output {
                dst.copy_from_slice(src);
            }
            invert(dst);
        }
        Ok(Outcome::Keep)
    }
}

export!(Lying);
