//! `grayscale`: turns every video frame gray, keeping its brightness.
//!
//! Run it: `sandstream run target/guests/grayscale.wasm --video-in pattern \
//!          --video-out file:gray.y4m --duration 2`

use sandstream_guest::prelude::*;

struct Grayscale;

/// BT.601 luma weights in 1/256ths (77 + 150 + 29 = 256): integer maths the
/// compiler vectorises well with simd128.
const R_WEIGHT: u32 = 77;
const G_WEIGHT: u32 = 150;
const B_WEIGHT: u32 = 29;

impl Effect for Grayscale {
    fn setup(_config: &Config, _formats: &Formats) -> Result<Self, String> {
        Ok(Grayscale)
    }

    fn process_video(&mut self, mut frame: VideoFrame<'_>) -> Result<Output, String> {
        for pixel in frame.pixels_mut() {
            let luma = (R_WEIGHT * pixel[0] as u32
                + G_WEIGHT * pixel[1] as u32
                + B_WEIGHT * pixel[2] as u32
                + 128)
                >> 8;
            let luma = luma as u8;
            pixel[0] = luma;
            pixel[1] = luma;
            pixel[2] = luma;
            // Alpha (pixel[3]) is kept.
        }
        Ok(Output::Keep)
    }
}

sandstream_guest::export!(Grayscale);
