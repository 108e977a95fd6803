//! Test guest: doubles the audio. Swapped with `gain` (at 0.5) in the
//! hot-swap tests, so every output block shows which guest produced it.
//! `double-fault=setup` makes its setup fail; `double-fault=trap` makes it
//! trap on its first call (broken saves the watcher must refuse).

use sandstream_guest::prelude::*;

struct Double {
    trap: bool,
}

impl Effect for Double {
    fn setup(config: &Config, _formats: &Formats) -> Result<Self, String> {
        match config.get("double-fault") {
            Some("setup") => Err("double refuses to start (double-fault=setup)".to_string()),
            fault => Ok(Double {
                trap: fault == Some("trap"),
            }),
        }
    }

    fn process_audio(&mut self, block: AudioBlock<'_>) -> Result<Output, String> {
        if self.trap {
            core::arch::wasm32::unreachable();
        }
        for sample in block.samples.iter_mut() {
            *sample *= 2.0;
        }
        Ok(Output::Keep)
    }
}

sandstream_guest::export!(Double);
