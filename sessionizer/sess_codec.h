/* sess_codec: the fixed little-endian encoding of the sessionizer's saved
 * state. A writer into a caller's buffer that notes overflow instead of
 * writing past it, and a reader that notes any short or oversized field, so
 * a damaged value is rejected as a whole and never read past its end. */
#ifndef LICMON_SESS_CODEC_H
#define LICMON_SESS_CODEC_H
#include <stddef.h>
#include <stdint.h>

struct sess_codec_w {
    uint8_t *buf;
    size_t len, cap;
    int overflow;
};

struct sess_codec_r {
    const uint8_t *buf;
    size_t len, pos;
    int error;
};

void sess_codec_w_init(struct sess_codec_w *w, uint8_t *buf, size_t cap);
void sess_codec_put_u8(struct sess_codec_w *w, uint8_t v);
void sess_codec_put_u32(struct sess_codec_w *w, uint32_t v);
void sess_codec_put_i64(struct sess_codec_w *w, int64_t v);
/* one length byte, then the bytes (at most 255) */
void sess_codec_put_str(struct sess_codec_w *w, const char *s);

void sess_codec_r_init(struct sess_codec_r *r, const void *buf, size_t len);
uint8_t sess_codec_get_u8(struct sess_codec_r *r);
uint32_t sess_codec_get_u32(struct sess_codec_r *r);
int64_t sess_codec_get_i64(struct sess_codec_r *r);
/* Reads a string written by sess_codec_put_str into out (NUL-terminated);
 * an error when it does not fit in cap - 1 bytes or holds a NUL. */
void sess_codec_get_str(struct sess_codec_r *r, char *out, size_t cap);
/* 1 when every field was read and nothing is left over */
int sess_codec_r_done(const struct sess_codec_r *r);

#endif
