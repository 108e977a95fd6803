//! `passthrough`: returns audio and video unchanged. The identity effect,
//! used to measure what the host itself costs (see `cargo bench`).

use sandstream_guest::prelude::*;

struct Passthrough;

impl Effect for Passthrough {
    fn setup(_config: &Config, _formats: &Formats) -> Result<Self, String> {
        Ok(Passthrough)
    }

    fn process_audio(&mut self, _block: AudioBlock<'_>) -> Result<Output, String> {
        Ok(Output::Keep)
    }

    fn process_video(&mut self, _frame: VideoFrame<'_>) -> Result<Output, String> {
        Ok(Output::Keep)
    }
}

sandstream_guest::export!(Passthrough);
