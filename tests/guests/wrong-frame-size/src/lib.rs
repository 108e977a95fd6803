//! Test guest: returns video frames half the size it was given. The host
//! must stop with a clear error rather than write a corrupt frame.

wit_bindgen::generate!({ path: "../../../wit", world: "sandstream:av/video-effect" });

use exports::sandstream::av::{setup, video};
use sandstream::av::types::{StreamFormats, VideoInfo};

struct WrongFrameSize;

impl setup::Guest for WrongFrameSize {
    fn configure(_config: Vec<(String, String)>, _formats: StreamFormats) -> Result<(), String> {
        Ok(())
    }
}

impl video::Guest for WrongFrameSize {
    fn process_video(_info: VideoInfo, mut pixels: Vec<u8>) -> Result<Vec<u8>, String> {
        pixels.truncate(pixels.len() / 2);
        Ok(pixels)
    }
}

export!(WrongFrameSize);
