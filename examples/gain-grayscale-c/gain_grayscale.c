/*
 * gain-grayscale-c: an A/V effect in C, the `gain` and `grayscale` examples
 * in one. Multiplies every audio sample by the `gain` setting (default 1)
 * and turns every video frame gray, byte for byte like those two examples.
 *
 * World: sandstream:av/av-effect-mapped. One instance gets both streams:
 * the audio and the video functions below live in one module and see the
 * same globals (one call at a time: the host never overlaps calls, so no
 * locking). So state can be shared, e.g. the audio level measured on each
 * block could drive the video, as the Rust level-meter example draws it;
 * these two halves happen to share nothing.
 *
 * Blocks and frames never travel as lists: the host writes each into a
 * buffer this effect allocates once and announces in `prepare` (one per
 * stream), and reads the result back from it.
 *
 * Build: ./build.sh (clang for wasm32-wasi, then `sandstream componentize`).
 * Run:   sandstream run gain-grayscale-c.wasm --audio-in tone:440 \
 *            --video-in pattern --audio-out file:out.wav \
 *            --video-out file:gray.y4m --set gain=0.5 --duration 2
 *        (or either stream alone: a run may bring only one of them).
 */
#include <math.h>

#include "sandstream.h"

/* BT.601 luma weights in 1/256ths (77 + 150 + 29 = 256): integer maths, so
 * every language computes the same bytes. */
enum { R_WEIGHT = 77, G_WEIGHT = 150, B_WEIGHT = 29 };

static float gain = 1.0f;
static float *block;      /* audio: one block, processed in place */
static size_t block_bytes;
static uint8_t *frame;    /* video: one RGBA8 frame, processed in place */
static size_t frame_bytes;

/* Called once: read the settings, size a buffer for each stream the run
 * has (`formats` leaves out a stream the run does not bring). */
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
    if (formats->video.is_some) {
        frame_bytes = (size_t)formats->video.val.width * formats->video.val.height * 4;
        frame = (uint8_t *)ss_buffer_alloc(frame_bytes);
        if (frame == NULL) {
            return ss_fail(err, "no memory for a %zu-byte frame", frame_bytes);
        }
    }
    return true;
}

/* ---- Audio ------------------------------------------------------------- */

/* Called once after configure, if the run has audio: where to put blocks. */
bool exports_sandstream_av_mapped_audio_prepare(ss_buffers_t *buffers, ss_string_t *err) {
    if (block == NULL) {
        return ss_fail(err, "gain-grayscale-c was configured without an audio stream");
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

/* ---- Video ------------------------------------------------------------- */

/* Called once after configure, if the run has video: where to put frames. */
bool exports_sandstream_av_mapped_video_prepare(ss_buffers_t *buffers, ss_string_t *err) {
    if (frame == NULL) {
        return ss_fail(err, "gain-grayscale-c was configured without a video stream");
    }
    *buffers = ss_in_place(frame, frame_bytes);
    return true;
}

/* Called for every frame: `width * height` RGBA pixels are in `frame`. */
bool exports_sandstream_av_mapped_video_process(ss_video_info_t *info, ss_outcome_t *outcome,
                                                ss_string_t *err) {
    (void)err;
    size_t pixels = (size_t)info->width * info->height;
    for (size_t i = 0; i < pixels; i++) {
        uint8_t *pixel = frame + 4 * i;
        uint8_t luma = (uint8_t)((R_WEIGHT * pixel[0] + G_WEIGHT * pixel[1] +
                                  B_WEIGHT * pixel[2] + 128) >> 8);
        pixel[0] = luma;
        pixel[1] = luma;
        pixel[2] = luma;
        /* Alpha (pixel[3]) is kept. */
    }
    *outcome = SS_KEEP;
    return true;
}
