/* sess_codec: bounded writer and reader of the saved-state encoding (see
 * sess_codec.h). Errors are sticky: after the first one every read returns
 * 0 and the caller checks once at the end. */
#include "sess_codec.h"

#include <string.h>

void sess_codec_w_init(struct sess_codec_w *w, uint8_t *buf, size_t cap)
{
    w->buf = buf;
    w->len = 0;
    w->cap = cap;
    w->overflow = 0;
}

static void codec_put(struct sess_codec_w *w, const void *p, size_t n)
{
    if (w->overflow || w->cap - w->len < n) {
        w->overflow = 1;
        return;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

void sess_codec_put_u8(struct sess_codec_w *w, uint8_t v)
{
    codec_put(w, &v, 1);
}

void sess_codec_put_u32(struct sess_codec_w *w, uint32_t v)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    codec_put(w, b, 4);
}

void sess_codec_put_i64(struct sess_codec_w *w, int64_t v)
{
    uint8_t b[8];
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(u >> (8 * i));
    codec_put(w, b, 8);
}

void sess_codec_put_str(struct sess_codec_w *w, const char *s)
{
    size_t n = strlen(s);
    if (n > 255) {
        w->overflow = 1;
        return;
    }
    sess_codec_put_u8(w, (uint8_t)n);
    codec_put(w, s, n);
}

void sess_codec_r_init(struct sess_codec_r *r, const void *buf, size_t len)
{
    r->buf = buf;
    r->len = buf ? len : 0;
    r->pos = 0;
    r->error = 0;
}

static const uint8_t *codec_take(struct sess_codec_r *r, size_t n)
{
    if (r->error || r->len - r->pos < n) {
        r->error = 1;
        return NULL;
    }
    const uint8_t *p = r->buf + r->pos;
    r->pos += n;
    return p;
}

uint8_t sess_codec_get_u8(struct sess_codec_r *r)
{
    const uint8_t *p = codec_take(r, 1);
    return p ? p[0] : 0;
}

uint32_t sess_codec_get_u32(struct sess_codec_r *r)
{
    const uint8_t *p = codec_take(r, 4);
    uint32_t v = 0;
    if (!p)
        return 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

int64_t sess_codec_get_i64(struct sess_codec_r *r)
{
    const uint8_t *p = codec_take(r, 8);
    uint64_t v = 0;
    if (!p)
        return 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return (int64_t)v;
}

void sess_codec_get_str(struct sess_codec_r *r, char *out, size_t cap)
{
    size_t n = sess_codec_get_u8(r);
    const uint8_t *p;
    out[0] = '\0';
    if (r->error)
        return;
    if (n + 1 > cap) {
        r->error = 1;
        return;
    }
    p = codec_take(r, n);
    if (!p)
        return;
    if (memchr(p, 0, n)) {
        r->error = 1;
        return;
    }
    memcpy(out, p, n);
    out[n] = '\0';
}

int sess_codec_r_done(const struct sess_codec_r *r)
{
    return !r->error && r->pos == r->len;
}
