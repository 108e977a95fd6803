"""grayscale-py: the `grayscale` example in Python. Turns every video frame
gray, keeping its brightness, byte for byte like the Rust example.

World: sandstream:av/video-effect. Frames arrive as `bytes` (RGBA8, rows top
to bottom) and the result goes back as `bytes` of the same size.

Build: ./build.sh (componentize-py, from PyPI: pip install componentize-py)
Run:   sandstream run grayscale-py.wasm --video-in pattern \
           --video-out file:gray.y4m --duration 2
"""

import sandstream
from wit_world import exports


class Setup(exports.Setup):
    def configure(self, config, formats):
        if formats.video is None:
            raise sandstream.Err("grayscale-py needs a video stream")


class Video(exports.Video):
    def process_video(self, info, pixels):
        out = bytearray(pixels)
        for i in range(0, len(out), 4):
            luma = (77 * out[i] + 150 * out[i + 1] + 29 * out[i + 2] + 128) >> 8
            out[i] = out[i + 1] = out[i + 2] = luma
        return bytes(out)
