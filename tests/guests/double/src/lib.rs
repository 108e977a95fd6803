//! Test guest: doubles the audio and ignores its configuration. Swapped
//! with `gain` (at 0.5) in the hot-swap tests, so every output block shows
//! which guest produced it.

use sandstream_guest::prelude::*;

struct Double;

impl Effect for Double {
    fn setup(_config: &Config, _formats: &Formats) -> Result<Self, String> {
        Ok(Double)
    }

    fn process_audio(&mut self, block: AudioBlock<'_>) -> Result<Output, String> {
        for sample in block.samples.iter_mut() {
            *sample *= 2.0;
        }
        Ok(Output::Keep)
    }
}

sandstream_guest::export!(Double);
