/*
 * sandstream.h: a thin helper for Sandstream effects in C, C++ and Zig.
 *
 * It sits on top of the bindings `sandstream bindings --lang c` generates
 * (effect.h / effect.c, from wit-bindgen) and takes away the boilerplate:
 *
 *   - short names for the WIT types (ss_config_t, ss_buffers_t, ...);
 *   - config getters whose error messages are those of the Rust SDK
 *     ("setting `gain`: cannot read \"loud\" as f32");
 *   - ss_fail(): return an error message to the host, printf-style;
 *   - ss_log_info() and friends: write to the host's log, printf-style;
 *   - ss_buffer_alloc() / ss_in_place(): buffers for the mapped worlds.
 *
 * Everything is `static inline`: include it from one file or several.
 * The effect itself implements the export functions declared in effect.h
 * (exports_sandstream_av_setup_configure, ..._mapped_audio_prepare, ...).
 */
#ifndef SANDSTREAM_H
#define SANDSTREAM_H

#include "effect.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Short names for the WIT types. */
typedef effect_string_t ss_string_t;
typedef sandstream_av_types_config_t ss_config_t;
typedef sandstream_av_types_stream_formats_t ss_formats_t;
typedef sandstream_av_types_audio_info_t ss_audio_info_t;
typedef sandstream_av_types_video_info_t ss_video_info_t;
typedef sandstream_av_types_buffers_t ss_buffers_t;
typedef sandstream_av_types_outcome_t ss_outcome_t;

#define SS_KEEP SANDSTREAM_AV_TYPES_OUTCOME_KEEP
#define SS_DROP SANDSTREAM_AV_TYPES_OUTCOME_DROP

/* ---- Errors ------------------------------------------------------------ */

/*
 * Writes a printf-style message into `err` and returns false, so a failing
 * export reads `return ss_fail(err, "gain needs %s", "audio");`. The host
 * frees the message after the call (the bindings' post-return does).
 */
static inline bool ss_fail(ss_string_t *err, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static inline bool ss_fail(ss_string_t *err, const char *format, ...) {
    va_list args;
    va_start(args, format);
    int length = vsnprintf(NULL, 0, format, args);
    va_end(args);
    if (length < 0) {
        length = 0;
    }
    char *text = (char *)malloc((size_t)length + 1);
    if (text == NULL) {
        err->ptr = NULL;
        err->len = 0;
        return false;
    }
    va_start(args, format);
    vsnprintf(text, (size_t)length + 1, format, args);
    va_end(args);
    err->ptr = (uint8_t *)text;
    err->len = (size_t)length;
    return false;
}

/* ---- Logging ----------------------------------------------------------- */

static inline void ss_log(sandstream_av_log_level_t level, const char *format, va_list args) {
    char line[1024];
    int length = vsnprintf(line, sizeof line, format, args);
    if (length < 0) {
        return;
    }
    ss_string_t message;
    message.ptr = (uint8_t *)line;
    message.len = (size_t)length < sizeof line ? (size_t)length : sizeof line - 1;
    sandstream_av_log_log(level, &message);
}

#define SS_DEFINE_LOG(name, level)                                                   \
    static inline void name(const char *format, ...)                                 \
        __attribute__((format(printf, 1, 2)));                                       \
    static inline void name(const char *format, ...) {                               \
        va_list args;                                                                \
        va_start(args, format);                                                      \
        ss_log(level, format, args);                                                 \
        va_end(args);                                                                \
    }

/* One line in the host's log, tagged with the guest's name (max 1 KiB). */
SS_DEFINE_LOG(ss_log_trace, SANDSTREAM_AV_LOG_LEVEL_TRACE)
SS_DEFINE_LOG(ss_log_debug, SANDSTREAM_AV_LOG_LEVEL_DEBUG)
SS_DEFINE_LOG(ss_log_info, SANDSTREAM_AV_LOG_LEVEL_INFO)
SS_DEFINE_LOG(ss_log_warn, SANDSTREAM_AV_LOG_LEVEL_WARN)
SS_DEFINE_LOG(ss_log_error, SANDSTREAM_AV_LOG_LEVEL_ERROR)
#undef SS_DEFINE_LOG

/* ---- Configuration ----------------------------------------------------- */

/* The raw value of `key` (not NUL-terminated), or NULL when it is not set. */
static inline const ss_string_t *ss_config_get(const ss_config_t *config, const char *key) {
    size_t key_length = strlen(key);
    for (size_t i = 0; i < config->len; i++) {
        const ss_string_t *k = &config->ptr[i].f0;
        if (k->len == key_length && memcmp(k->ptr, key, key_length) == 0) {
            return &config->ptr[i].f1;
        }
    }
    return NULL;
}

/* Rust's `{:?}` of a string: quoted, with \", \\ and control characters escaped. */
static inline void ss_quote_(char *out, size_t size, const ss_string_t *raw) {
    size_t at = 0;
    out[at++] = '"';
    for (size_t i = 0; i < raw->len && at + 12 < size; i++) {
        unsigned char c = raw->ptr[i];
        if (c == '"' || c == '\\') {
            out[at++] = '\\';
            out[at++] = (char)c;
        } else if (c == '\n') {
            at += (size_t)snprintf(out + at, size - at, "\\n");
        } else if (c == '\t') {
            at += (size_t)snprintf(out + at, size - at, "\\t");
        } else if (c == '\r') {
            at += (size_t)snprintf(out + at, size - at, "\\r");
        } else if (c < 0x20 || c == 0x7f) {
            at += (size_t)snprintf(out + at, size - at, "\\u{%x}", c);
        } else {
            out[at++] = (char)c;
        }
    }
    out[at++] = '"';
    out[at] = '\0';
}

/* The value with surrounding ASCII whitespace trimmed, NUL-terminated. */
static inline bool ss_trimmed_(const ss_string_t *raw, char *out, size_t size) {
    size_t start = 0, end = raw->len;
    while (start < end && strchr(" \t\n\r\f\v", raw->ptr[start]) != NULL) {
        start++;
    }
    while (end > start && strchr(" \t\n\r\f\v", raw->ptr[end - 1]) != NULL) {
        end--;
    }
    if (end - start >= size || memchr(raw->ptr + start, '\0', end - start) != NULL) {
        return false;
    }
    memcpy(out, raw->ptr + start, end - start);
    out[end - start] = '\0';
    return out[0] != '\0';
}

static inline bool ss_cannot_read_(ss_string_t *err, const char *key, const ss_string_t *raw,
                                   const char *type) {
    char quoted[256];
    ss_quote_(quoted, sizeof quoted, raw);
    return ss_fail(err, "setting `%s`: cannot read %s as %s", key, quoted, type);
}

static inline bool ss_missing_(ss_string_t *err, const char *key) {
    return ss_fail(err, "missing required setting `%s` (pass --set %s=VALUE)", key, key);
}

/* Which number syntaxes Rust's parse() accepts that strto* would too. */
static inline bool ss_plain_number_(const char *text) {
    return strpbrk(text, "xX(") == NULL;
}

static inline bool ss_parse_f64_(const ss_string_t *raw, double *out) {
    char text[128];
    char *end;
    if (!ss_trimmed_(raw, text, sizeof text) || !ss_plain_number_(text)) {
        return false;
    }
    *out = strtod(text, &end);
    return *end == '\0';
}

static inline bool ss_parse_f32_(const ss_string_t *raw, float *out) {
    char text[128];
    char *end;
    if (!ss_trimmed_(raw, text, sizeof text) || !ss_plain_number_(text)) {
        return false;
    }
    /* strtof rounds once, as Rust's f32 parse does. */
    *out = strtof(text, &end);
    return *end == '\0';
}

static inline bool ss_parse_i64_(const ss_string_t *raw, int64_t min, int64_t max, int64_t *out) {
    char text[64];
    char *end;
    if (!ss_trimmed_(raw, text, sizeof text) || strchr("+-0123456789", text[0]) == NULL ||
        text[strspn(text, "+-0123456789")] != '\0') {
        return false;
    }
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (*end != '\0' || errno != 0 || value < min || value > max) {
        return false;
    }
    *out = value;
    return true;
}

/*
 * `key` parsed into *out, or `fallback` when it is not set. On a bad value
 * they write the Rust SDK's message into `err` and return false:
 *
 *     float gain;
 *     if (!ss_config_f32(config, "gain", 1.0f, &gain, err)) return false;
 */
static inline bool ss_config_f32(const ss_config_t *config, const char *key, float fallback,
                                 float *out, ss_string_t *err) {
    const ss_string_t *raw = ss_config_get(config, key);
    *out = fallback;
    return raw == NULL || ss_parse_f32_(raw, out) || ss_cannot_read_(err, key, raw, "f32");
}

static inline bool ss_config_f64(const ss_config_t *config, const char *key, double fallback,
                                 double *out, ss_string_t *err) {
    const ss_string_t *raw = ss_config_get(config, key);
    *out = fallback;
    return raw == NULL || ss_parse_f64_(raw, out) || ss_cannot_read_(err, key, raw, "f64");
}

static inline bool ss_config_i32(const ss_config_t *config, const char *key, int32_t fallback,
                                 int32_t *out, ss_string_t *err) {
    const ss_string_t *raw = ss_config_get(config, key);
    int64_t value = fallback;
    if (raw != NULL && !ss_parse_i64_(raw, INT32_MIN, INT32_MAX, &value)) {
        return ss_cannot_read_(err, key, raw, "i32");
    }
    *out = (int32_t)value;
    return true;
}

static inline bool ss_config_u32(const ss_config_t *config, const char *key, uint32_t fallback,
                                 uint32_t *out, ss_string_t *err) {
    const ss_string_t *raw = ss_config_get(config, key);
    int64_t value = fallback;
    if (raw != NULL &&
        (memchr(raw->ptr, '-', raw->len) != NULL || !ss_parse_i64_(raw, 0, UINT32_MAX, &value))) {
        return ss_cannot_read_(err, key, raw, "u32");
    }
    *out = (uint32_t)value;
    return true;
}

static inline bool ss_config_bool(const ss_config_t *config, const char *key, bool fallback,
                                  bool *out, ss_string_t *err) {
    const ss_string_t *raw = ss_config_get(config, key);
    char text[8];
    *out = fallback;
    if (raw == NULL) {
        return true;
    }
    if (ss_trimmed_(raw, text, sizeof text) && (strcmp(text, "true") == 0 || strcmp(text, "false") == 0)) {
        *out = text[0] == 't';
        return true;
    }
    return ss_cannot_read_(err, key, raw, "bool");
}

/* `key` parsed as f32; an error (the Rust SDK's) when it is missing. */
static inline bool ss_config_require_f32(const ss_config_t *config, const char *key, float *out,
                                         ss_string_t *err) {
    return ss_config_get(config, key) != NULL ? ss_config_f32(config, key, 0.0f, out, err)
                                              : ss_missing_(err, key);
}

/* ---- Buffers of the mapped worlds ------------------------------------- */

/*
 * Zeroed memory for a mapped buffer, 16-byte aligned (for simd128). Keep
 * it for the life of the instance: the host writes into it on every call.
 */
static inline void *ss_buffer_alloc(size_t bytes) {
    void *buffer = aligned_alloc(16, (bytes + 15) / 16 * 16);
    if (buffer != NULL) {
        memset(buffer, 0, bytes);
    }
    return buffer;
}

/* One buffer for input and output: the host writes, the effect works in place. */
static inline ss_buffers_t ss_in_place(const void *buffer, size_t bytes) {
    ss_buffers_t buffers;
    buffers.input.offset = (uint32_t)(uintptr_t)buffer;
    buffers.input.length = (uint32_t)bytes;
    buffers.output = buffers.input;
    return buffers;
}

/* Separate input and output buffers of `bytes` each. */
static inline ss_buffers_t ss_in_and_out(const void *input, const void *output, size_t bytes) {
    ss_buffers_t buffers = ss_in_place(input, bytes);
    buffers.output.offset = (uint32_t)(uintptr_t)output;
    return buffers;
}

#ifdef __cplusplus
}
#endif

#endif /* SANDSTREAM_H */
