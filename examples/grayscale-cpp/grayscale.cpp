/*
 * grayscale-cpp: the `grayscale` example in C++. Turns every video frame
 * gray, keeping its brightness, byte for byte like the Rust example.
 *
 * World: sandstream:av/video-effect-mapped. Frames never travel as lists:
 * the host writes each RGBA8 frame into `frame`, a buffer this effect
 * allocates once and announces in `prepare`, and reads the result back
 * from it (at 1080p that saves an 8 MB allocation and a copy per frame).
 *
 * It uses the C bindings (effect.h) and the C helper sandstream.h, which
 * both have extern "C" guards: the three exports below keep C linkage
 * because effect.h declares them first. No exceptions, no RTTI.
 *
 * Build: ./build.sh (clang++ for wasm32-wasi, then `sandstream componentize`).
 * Run:   sandstream run grayscale-cpp.wasm --video-in pattern \
 *            --video-out file:gray.y4m --duration 2
 */
#include <cstdint>
#include <span>

#include "sandstream.h"

namespace {
// BT.601 luma weights in 1/256ths (77 + 150 + 29 = 256): integer maths, so
// every language computes the same bytes.
constexpr uint32_t R_WEIGHT = 77, G_WEIGHT = 150, B_WEIGHT = 29;

// One RGBA8 pixel, as the host lays it out: four bytes, no padding.
struct Pixel {
    uint8_t r, g, b, a;
};
static_assert(sizeof(Pixel) == 4);

std::span<Pixel> frame; // the mapped buffer: one frame, processed in place
} // namespace

// Called once: no settings to read; size the buffer for the video format.
bool exports_sandstream_av_setup_configure(ss_config_t *config, ss_formats_t *formats,
                                           ss_string_t *err) {
    exports_sandstream_av_setup_config_free(config); // no settings
    if (formats->video.is_some) {
        const auto &video = formats->video.val;
        size_t pixels = size_t{video.width} * video.height;
        auto *memory = static_cast<Pixel *>(ss_buffer_alloc(pixels * sizeof(Pixel)));
        if (memory == nullptr) {
            return ss_fail(err, "no memory for a %zu-pixel frame", pixels);
        }
        frame = {memory, pixels};
    }
    return true;
}

// Called once after configure: where the host should put each frame.
bool exports_sandstream_av_mapped_video_prepare(ss_buffers_t *buffers, ss_string_t *err) {
    if (frame.empty()) {
        return ss_fail(err, "grayscale-cpp was configured without a video stream");
    }
    *buffers = ss_in_place(frame.data(), frame.size_bytes());
    return true;
}

// Called for every frame: the first `width * height` pixels of `frame`.
bool exports_sandstream_av_mapped_video_process(ss_video_info_t *info, ss_outcome_t *outcome,
                                                ss_string_t *) {
    for (Pixel &pixel : frame.first(size_t{info->width} * info->height)) {
        auto luma = static_cast<uint8_t>(
            (R_WEIGHT * pixel.r + G_WEIGHT * pixel.g + B_WEIGHT * pixel.b + 128) >> 8);
        pixel.r = pixel.g = pixel.b = luma;
        // Alpha (pixel.a) is kept.
    }
    *outcome = SS_KEEP;
    return true;
}
