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
        return grayscale(pixels)


def grayscale(pixels):
    """luma = (77 r + 150 g + 29 b + 128) >> 8 for every pixel, alpha kept.

    A loop over pixels costs ~200 ms a frame at 640x360 in Python, so this
    does the same integer maths on whole frames at once, in C inside
    CPython: each channel goes into one big integer with 16 bits per pixel,
    and since 77 + 150 + 29 = 256, a pixel's sum never leaves its 16 bits
    (at most 255 * 256 + 128). Its high byte is then the luma.
    """
    count = len(pixels) // 4
    lanes = bytearray(2 * count)  # 16-bit little-endian lanes, high bytes 0

    def channel(c):
        lanes[0::2] = pixels[c::4]
        return int.from_bytes(lanes, "little")

    lanes[0::2] = b"\x80" * count  # the +128 that rounds
    total = int.from_bytes(lanes, "little") + 77 * channel(0) + 150 * channel(1) + 29 * channel(2)
    luma = total.to_bytes(2 * count, "little")[1::2]
    out = bytearray(pixels)
    out[0::4] = out[1::4] = out[2::4] = luma
    return bytes(out)
