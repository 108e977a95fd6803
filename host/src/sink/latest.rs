//! The newest frame, handed from a writer thread to a thread that shows
//! or serves it at its own pace (a window, a PipeWire node). A triple
//! buffer: neither side waits for the other or allocates, and a frame the
//! reader had no time for is replaced by the next one (counted by the
//! writer).

use crate::media::VideoFrame;
use triple_buffer::{Input, Output, TripleBuffer};

/// One frame's pixels and stamps, preallocated at the stream's size.
#[derive(Debug, Clone, Default)]
pub struct Slot {
    pub pixels: Vec<u8>,
    pub index: u64,
    pub timestamp_ns: u64,
}

/// The writing side.
pub struct FramePoster {
    input: Input<Slot>,
    /// Frames replaced before the reader took them.
    pub replaced: u64,
}

/// The reading side.
pub struct FrameReader {
    output: Output<Slot>,
}

/// A mailbox for frames of `frame_bytes`.
pub fn latest_frame(frame_bytes: usize) -> (FramePoster, FrameReader) {
    let empty = Slot {
        pixels: vec![0; frame_bytes],
        index: 0,
        timestamp_ns: 0,
    };
    let (input, output) = TripleBuffer::new(&empty).split();
    (FramePoster { input, replaced: 0 }, FrameReader { output })
}

impl FramePoster {
    /// Copies `frame` in and makes it the newest.
    pub fn post(&mut self, frame: &VideoFrame) {
        let slot = self.input.input_buffer_mut();
        slot.pixels.clear();
        slot.pixels.extend_from_slice(&frame.pixels);
        slot.index = frame.index;
        slot.timestamp_ns = frame.timestamp_ns;
        if self.input.publish() {
            self.replaced += 1;
        }
    }
}

impl FrameReader {
    /// The newest frame, if one arrived since the last call.
    pub fn take_new(&mut self) -> Option<&Slot> {
        if self.output.update() {
            Some(self.output.output_buffer())
        } else {
            None
        }
    }

    /// The last frame taken (blank before the first).
    pub fn current(&mut self) -> &Slot {
        self.output.output_buffer()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(index: u64) -> VideoFrame {
        VideoFrame {
            pixels: vec![index as u8; 8],
            index,
            timestamp_ns: index * 10,
        }
    }

    #[test]
    fn the_reader_gets_the_newest_and_the_writer_counts_what_it_replaced() {
        let (mut poster, mut reader) = latest_frame(8);
        assert!(reader.take_new().is_none());
        poster.post(&frame(1));
        poster.post(&frame(2));
        poster.post(&frame(3));
        assert_eq!(poster.replaced, 2);
        let newest = reader.take_new().expect("a new frame");
        assert_eq!((newest.index, newest.timestamp_ns), (3, 30));
        assert_eq!(newest.pixels, vec![3; 8]);
        assert!(reader.take_new().is_none());
        assert_eq!(reader.current().index, 3);
    }
}
