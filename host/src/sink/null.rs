use super::Sink;
use crate::media::{AudioBlock, VideoFrame};

/// Discards everything (for benchmarks and runs that only want counters).
pub struct NullSink;

impl Sink<AudioBlock> for NullSink {
    fn write(&mut self, _block: &AudioBlock) -> anyhow::Result<()> {
        Ok(())
    }

    fn finish(self: Box<Self>) -> anyhow::Result<()> {
        Ok(())
    }

    fn describe(&self) -> String {
        "null".to_string()
    }
}

impl Sink<VideoFrame> for NullSink {
    fn write(&mut self, _frame: &VideoFrame) -> anyhow::Result<()> {
        Ok(())
    }

    fn finish(self: Box<Self>) -> anyhow::Result<()> {
        Ok(())
    }

    fn describe(&self) -> String {
        "null".to_string()
    }
}
