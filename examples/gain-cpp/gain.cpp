/*
 * gain-cpp: the `gain` example in C++. Multiplies every audio sample by the
 * `gain` setting (default 1), byte for byte like the Rust example.
 *
 * World: sandstream:av/audio-effect-mapped. Blocks never travel as lists:
 * the host writes each block into `block`, a buffer this effect allocates
 * once and announces in `prepare`, and reads the result back from it.
 *
 * It uses the C bindings (effect.h) and the C helper sandstream.h, which
 * both have extern "C" guards: the three exports below keep C linkage
 * because effect.h declares them first. No exceptions, no RTTI.
 *
 * Build: ./build.sh (clang++ for wasm32-wasi, then `sandstream componentize`).
 * Run:   sandstream run gain-cpp.wasm --audio-in tone:440 \
 *            --audio-out file:out.wav --set gain=0.5 --duration 2
 */
#include <cmath>
#include <span>

#include "sandstream.h"

namespace {
float gain = 1.0f;
std::span<float> block; // the mapped buffer: one block, processed in place
} // namespace

// Called once: read the settings, size the buffer for the audio format.
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
    return true;
}

// Called once after configure: where the host should put each block.
bool exports_sandstream_av_mapped_audio_prepare(ss_buffers_t *buffers, ss_string_t *err) {
    if (block.empty()) {
        return ss_fail(err, "gain-cpp was configured without an audio stream");
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
