//! `gain`: multiplies every audio sample by a constant.
//!
//! Run it: `sandstream run target/guests/gain.wasm --audio-in tone:440 \
//!          --audio-out file:out.wav --set gain=0.5 --duration 2`

use sandstream_guest::prelude::*;

/// The effect's state: just the factor, read once from the configuration.
struct Gain {
    gain: f32,
}

impl Effect for Gain {
    fn setup(config: &Config, _formats: &Formats) -> Result<Self, String> {
        // `get_or` parses the value and returns a readable error such as
        // "setting `gain`: cannot read \"loud\" as f32" when it cannot.
        let gain: f32 = config.get_or("gain", 1.0)?;
        if !gain.is_finite() {
            return Err(format!(
                "setting `gain` must be a finite number, got {gain}"
            ));
        }
        Ok(Gain { gain })
    }

    fn process_audio(&mut self, block: AudioBlock<'_>) -> Result<Output, String> {
        // Samples are interleaved; a plain gain does not care about channels.
        for sample in block.samples.iter_mut() {
            *sample *= self.gain;
        }
        Ok(Output::Keep)
    }
}

sandstream_guest::export!(Gain);
