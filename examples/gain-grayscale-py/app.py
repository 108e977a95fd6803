"""gain-grayscale-py: one effect on both streams, in Python. It multiplies
every audio sample by the `gain` setting (default 1), as the `gain` example
does, and turns every video frame gray, as `grayscale` does, both bit for
bit like the Rust examples. Start here for an effect whose audio and video
share state (one instance gets both streams).

World: sandstream:av/av-effect-mapped. Each stream has a buffer in this
effect's own memory: the host writes each block or frame into it, calls
`process`, and reads the result back from it. (The list world, `av-effect`,
would leak on video: componentize-py 0.25 never frees its copy of the bytes
a function returns, so every frame returned stays allocated until the
instance runs out of memory.)

Build: ./build.sh (componentize-py, from PyPI: pip install componentize-py)
Run:   sandstream run gain-grayscale-py.wasm --audio-in tone:440 \
           --video-in pattern --audio-out file:out.wav \
           --video-out file:gray.y4m --set gain=0.5 --duration 2

componentize-py looks in this module for one class per exported interface,
named after it (Setup, MappedAudio, MappedVideo), and calls their methods.
Raising sandstream.Err("message") returns that error to the host.
"""

import math
from array import array

import sandstream
from wit_world import exports

# The effect's state, set up in `configure` for the life of the instance (a
# run may have only one of the streams: the other's stays None):
#   gain: the factor;
#   block, audio_buffers: the audio buffer (a memoryview of f32 samples) and
#       where it is (for `prepare`);
#   frame, video_buffers: the same for video (RGBA8 bytes);
#   low, alpha, half: masks for the video (see MappedVideo.process).
gain = 1.0
block = audio_buffers = None
frame = video_buffers = None
low = alpha = half = 0


class Setup(exports.Setup):
    def configure(self, config, formats):
        global gain, block, audio_buffers, frame, video_buffers, low, alpha, half
        # get_f32 rounds to f32 as Rust does, and raises Err with the Rust
        # SDK's message ("setting `gain`: cannot read \"loud\" as f32").
        value = sandstream.Config(config).get_f32("gain", 1.0)
        if not math.isfinite(value):
            raise sandstream.Err(
                f"setting `gain` must be a finite number, got {sandstream.fmt_f32(value)}")
        gain = value
        if formats.audio is not None:
            samples = formats.audio.block_frames * formats.audio.channels
            block, audio_buffers = sandstream.mapped_buffer(samples, "f")
        if formats.video is not None:
            pixels = formats.video.width * formats.video.height
            frame, video_buffers = sandstream.mapped_buffer(4 * pixels)
            # Numbers with one byte set in every 32-bit pixel (see below).
            low = int.from_bytes(b"\xff\0\0\0" * pixels, "little")  # 0xff in each
            alpha = low << 24  # 0xff000000 in each
            half = (low // 255) << 7  # 128 in each


class MappedAudio(exports.MappedAudio):
    def prepare(self):
        # The host asks only for the streams it sends, so this is set.
        if audio_buffers is None:
            raise sandstream.Err("the effect was configured without an audio stream")
        return audio_buffers

    def process(self, info, samples):
        # The first `samples` values of the buffer (fewer than it holds for
        # the last block of a file), interleaved; a plain gain does not care
        # about channels. Both factors are f32 values, so each product is
        # exact in a Python float; storing it in an array("f") rounds it to
        # f32, which gives Rust's f32 multiply exactly. (One comprehension
        # and one copy back: faster than assigning sample by sample.)
        samples = block[:samples]
        samples[:] = array("f", [sample * gain for sample in samples])
        return sandstream.KEEP


class MappedVideo(exports.MappedVideo):
    def prepare(self):
        if video_buffers is None:
            raise sandstream.Err("the effect was configured without a video stream")
        return video_buffers

    def process(self, info):
        # For every pixel, as in the Rust example (BT.601 weights in 1/256ths):
        #     luma = (77 * r + 150 * g + 29 * b + 128) >> 8, alpha kept.
        # A loop over the pixels takes ~200 ms a frame at 640x360, so this
        # does it to all of them at once, in CPython's own C code: the frame
        # is read as one big number, pixel i in bits 32*i to 32*i + 31 (r in
        # the lowest byte). Masking and shifting picks one channel out of
        # every pixel; the weighted sum (at most 255 * 256 + 128) fits within
        # its pixel's 32 bits, so pixels never carry into each other. (One
        # term at a time: each number is as big as the frame.)
        p = int.from_bytes(frame, "little")
        luma = 77 * (p & low) + half
        luma += 150 * (p >> 8 & low)
        luma += 29 * (p >> 16 & low)
        luma = luma >> 8 & low
        frame[:] = (luma * 0x010101 + (p & alpha)).to_bytes(len(frame), "little")
        return sandstream.KEEP
