//! Test guest: counts the blocks it has processed and writes the count
//! (in thousandths) into every sample, so the output shows whether the
//! count survived a hot swap. Its state is the count.

use sandstream_guest::prelude::*;

struct Counter {
    blocks: u64,
}

impl Effect for Counter {
    fn setup(_config: &Config, _formats: &Formats) -> Result<Self, String> {
        Ok(Counter { blocks: 0 })
    }

    fn process_audio(&mut self, block: AudioBlock<'_>) -> Result<Output, String> {
        self.blocks += 1;
        block.samples.fill(self.blocks as f32 / 1000.0);
        Ok(Output::Keep)
    }

    type State = u64;

    fn save_state(&self) -> u64 {
        self.blocks
    }

    fn restore_state(&mut self, blocks: u64) {
        self.blocks = blocks;
    }
}

sandstream_guest::export!(Counter);
