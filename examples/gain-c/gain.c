/*
 * gain-c: the `gain` example in C. Multiplies every audio sample by the
 * `gain` setting (default 1), byte for byte like the Rust example.
 *
 * World: sandstream:av/audio-effect-mapped. Blocks never travel as lists:
 * the host writes each block into `block`, a buffer this effect allocates
 * once and announces in `prepare`, and reads the result back from it.
 *
 * Build: ./build.sh (clang for wasm32-wasi, then `sandstream componentize`).
 * Run:   sandstream run gain-c.wasm --audio-in tone:440 \
 *            --audio-out file:out.wav --set gain=0.5 --duration 2
 */
#include <math.h>

#include "sandstream.h"

static float gain = 1.0f;
static float *block;      /* the mapped buffer: one block, processed in place */
static size_t block_bytes;

/* Called once: read the settings, size the buffer for the audio format. */
bool exports_sandstream_av_setup_configure(ss_config_t *config, ss_formats_t *formats,
                                           ss_string_t *err) {
    /* The arguments belong to the effect: free the config once read. */
    bool ok = ss_config_f32(config, "gain", 1.0f, &gain, err);
    exports_sandstream_av_setup_config_free(config);
    if (!ok) {
        return false; /* err says: setting `gain`: cannot read "loud" as f32 */
    }
    if (!isfinite(gain)) {
        /* As Rust prints it: inf, -inf or NaN. */
        const char *shown = isnan(gain) ? "NaN" : gain < 0 ? "-inf" : "inf";
        return ss_fail(err, "setting `gain` must be a finite number, got %s", shown);
    }
    if (formats->audio.is_some) {
        const sandstream_av_types_audio_format_t *audio = &formats->audio.val;
        block_bytes = (size_t)audio->block_frames * audio->channels * sizeof(float);
        block = (float *)ss_buffer_alloc(block_bytes);
        if (block == NULL) {
            return ss_fail(err, "no memory for a %zu-byte block", block_bytes);
        }
    }
    return true;
}

/* Called once after configure: where the host should put each block. */
bool exports_sandstream_av_mapped_audio_prepare(ss_buffers_t *buffers, ss_string_t *err) {
    if (block == NULL) {
        return ss_fail(err, "gain-c was configured without an audio stream");
    }
    *buffers = ss_in_place(block, block_bytes);
    return true;
}

/* Called for every block: `samples` interleaved values are in `block`. */
bool exports_sandstream_av_mapped_audio_process(ss_audio_info_t *info, uint32_t samples,
                                                ss_outcome_t *outcome, ss_string_t *err) {
    (void)info;
    (void)err;
    for (uint32_t i = 0; i < samples; i++) {
        block[i] *= gain;
    }
    *outcome = SS_KEEP;
    return true;
}
