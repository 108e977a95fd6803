/*
 * grayscale-c: the `grayscale` example in C. Turns every video frame gray,
 * keeping its brightness, byte for byte like the Rust example.
 *
 * World: sandstream:av/video-effect-mapped. Frames never travel as lists:
 * the host writes each RGBA8 frame into `frame`, a buffer this effect
 * allocates once and announces in `prepare`, and reads the result back
 * from it (at 1080p that saves an 8 MB allocation and a copy per frame).
 *
 * Build: ./build.sh (clang for wasm32-wasi, then `sandstream componentize`).
 * Run:   sandstream run grayscale-c.wasm --video-in pattern \
 *            --video-out file:gray.y4m --duration 2
 */
#include "sandstream.h"

/* BT.601 luma weights in 1/256ths (77 + 150 + 29 = 256): integer maths, so
 * every language computes the same bytes. */
enum { R_WEIGHT = 77, G_WEIGHT = 150, B_WEIGHT = 29 };

static uint8_t *frame;    /* the mapped buffer: one frame, processed in place */
static size_t frame_bytes;

bool exports_sandstream_av_setup_configure(ss_config_t *config, ss_formats_t *formats,
                                           ss_string_t *err) {
    exports_sandstream_av_setup_config_free(config); /* no settings */
    if (formats->video.is_some) {
        frame_bytes = (size_t)formats->video.val.width * formats->video.val.height * 4;
        frame = (uint8_t *)ss_buffer_alloc(frame_bytes);
        if (frame == NULL) {
            return ss_fail(err, "no memory for a %zu-byte frame", frame_bytes);
        }
    }
    return true;
}

bool exports_sandstream_av_mapped_video_prepare(ss_buffers_t *buffers, ss_string_t *err) {
    if (frame == NULL) {
        return ss_fail(err, "grayscale-c was configured without a video stream");
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
