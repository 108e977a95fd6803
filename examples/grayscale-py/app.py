"""grayscale-py: the `grayscale` example in Python. Turns every video frame
gray, keeping its brightness, byte for byte like the Rust example.

World: sandstream:av/video-effect-mapped. The frame lives in a buffer in
this effect's own memory: the host writes each frame into it, calls
`process`, and reads the result back from it. (The list world,
`video-effect`, would leak: componentize-py 0.25 never frees its copy of
the bytes a function returns, so every frame returned stays allocated until
the instance runs out of memory.)

Build: ./build.sh (componentize-py, from PyPI: pip install componentize-py)
Run:   sandstream run grayscale-py.wasm --video-in pattern \
           --video-out file:gray.y4m --duration 2
"""

import sandstream
from wit_world import exports

# Set up in `configure`, for the life of the instance: the frame buffer (a
# memoryview of RGBA8 bytes), where it is (for `prepare`), and masks.
frame = buffers = None
low = alpha = half = 0


class Setup(exports.Setup):
    def configure(self, config, formats):
        global frame, buffers, low, alpha, half
        if formats.video is None:
            raise sandstream.Err("grayscale-py needs a video stream")
        pixels = formats.video.width * formats.video.height
        frame, buffers = sandstream.mapped_buffer(4 * pixels)
        # Numbers with one byte set in every 32-bit pixel (see `process`).
        low = int.from_bytes(b"\xff\0\0\0" * pixels, "little")  # 0xff in each
        alpha = low << 24  # 0xff000000 in each
        half = (low // 255) << 7  # 128 in each


class MappedVideo(exports.MappedVideo):
    def prepare(self):
        return buffers

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
