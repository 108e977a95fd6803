/*
 * gain-grayscale-cpp: an A/V effect in C++, the `gain` and `grayscale`
 * examples in one. Multiplies every audio sample by the `gain` setting
 * (default 1) and turns every video frame gray, byte for byte like those
 * two examples.
 *
 * World: sandstream:av/av-effect-mapped. One instance gets both streams:
 * the audio and the video functions below live in one module and see the
 * same variables (one call at a time: the host never overlaps calls, so no
 * locking). So state can be shared, e.g. the audio level measured on each
 * block could drive the video, as the Rust level-meter example draws it;
 * these two halves happen to share nothing.
 *
 * Blocks and frames never travel as lists: the host writes each into a
 * buffer this effect allocates once and announces in `prepare` (one per
 * stream), and reads the result back from it.
 *
 * It uses the C bindings (effect.h) and the C helper sandstream.h, which
 * both have extern "C" guards: the five exports below keep C linkage
 * because effect.h declares them first. No exceptions, no RTTI.
 *
 * Build: ./build.sh (clang++ for wasm32-wasi, then `sandstream componentize`).
 * Run:   sandstream run gain-grayscale-cpp.wasm --audio-in tone:440 \
 *            --video-in pattern --audio-out file:out.wav \
 *            --video-out file:gray.y4m --set gain=0.5 --duration 2
 *        (or either stream alone: a run may bring only one of them).
 */
#include <cmath>
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

float gain = 1.0f;
std::span<float> block; // audio: one block, processed in place
std::span<Pixel> frame; // video: one frame, processed in place
} // namespace

// Called once: read the settings, size a buffer for each stream the run
// has (`formats` leaves out a stream the run does not bring).
bool exports_sandstream_av_setup_configure(ss_config_t *config, ss_formats_t *formats,
                                           ss_string_t *err) {
    // The arguments belong to the effect: free the config once read.
    bool ok = ss_config_f32(config, "gain", 1.0f, &gain, err);
    exports_sandstream_av_setup_config_free(config);
    if (!ok) {
        return false; // err says: setting `gain`: cannot read "loud" as f32
    }
    if (!std::isfinite(gain)) {
        // As Rust prints it: inf, -inf or NaN.
        const char *shown = std::isnan(gain) ? "NaN" : gain < 0 ? "-inf" : "inf";
        return ss_fail(err, "setting `gain` must be a finite number, got %s", shown);
    }
    if (formats->audio.is_some) {
        const auto &audio = formats->audio.val;
        size_t samples = size_t{audio.block_frames} * audio.channels;
        auto *memory = static_cast<float *>(ss_buffer_alloc(samples * sizeof(float)));
        if (memory == nullptr) {
            return ss_fail(err, "no memory for a %zu-sample block", samples);
        }
        block = {memory, samples};
    }
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

// ---- Audio -----------------------------------------------------------------

// Called once after configure, if the run has audio: where to put blocks.
bool exports_sandstream_av_mapped_audio_prepare(ss_buffers_t *buffers, ss_string_t *err) {
    if (block.empty()) {
        return ss_fail(err, "gain-grayscale-cpp was configured without an audio stream");
    }
    *buffers = ss_in_place(block.data(), block.size_bytes());
    return true;
}

// Called for every block: the first `samples` interleaved values of `block`.
bool exports_sandstream_av_mapped_audio_process(ss_audio_info_t *, uint32_t samples,
                                                ss_outcome_t *outcome, ss_string_t *) {
    for (float &sample : block.first(samples)) {
        sample *= gain;
    }
    *outcome = SS_KEEP;
    return true;
}

// ---- Video -----------------------------------------------------------------

// Called once after configure, if the run has video: where to put frames.
bool exports_sandstream_av_mapped_video_prepare(ss_buffers_t *buffers, ss_string_t *err) {
    if (frame.empty()) {
        return ss_fail(err, "gain-grayscale-cpp was configured without a video stream");
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
