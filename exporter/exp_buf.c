/* exp_buf: byte buffer and escaping (see exp_buf.h). */
#include "exp_buf.h"
#include "xmem.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void exp_buf_free(struct exp_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void exp_buf_reset(struct exp_buf *b)
{
    b->len = b->off = 0;
    if (b->data)
        b->data[0] = '\0';
}

void exp_buf_reserve(struct exp_buf *b, size_t n)
{
    if (b->len + n + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void exp_buf_add(struct exp_buf *b, const void *p, size_t n)
{
    exp_buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void exp_buf_adds(struct exp_buf *b, const char *s)
{
    exp_buf_add(b, s, strlen(s));
}

void exp_buf_addc(struct exp_buf *b, char c)
{
    exp_buf_reserve(b, 1);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

void exp_buf_printf(struct exp_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(small)) {
        exp_buf_add(b, small, (size_t)n);
        return;
    }
    exp_buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void exp_buf_int(struct exp_buf *b, int64_t v)
{
    char tmp[24];
    char *p = tmp + sizeof(tmp);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    exp_buf_add(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

void exp_buf_num(struct exp_buf *b, double v, int decimals)
{
    if (!isfinite(v)) {
        exp_buf_adds(b, "null");
        return;
    }
    char tmp[64];
    int n = snprintf(tmp, sizeof(tmp), "%.*f", decimals, v);
    if (n <= 0 || (size_t)n >= sizeof(tmp)) {
        exp_buf_adds(b, "null");
        return;
    }
    if (strchr(tmp, '.')) {
        while (n > 0 && tmp[n - 1] == '0')
            n--;
        if (n > 0 && tmp[n - 1] == '.')
            n--;
    }
    tmp[n] = '\0';
    if (!strcmp(tmp, "-0"))
        exp_buf_adds(b, "0");
    else
        exp_buf_add(b, tmp, (size_t)n);
}

size_t exp_utf8_seq(const unsigned char *s, size_t n)
{
    if (n == 0)
        return 0;
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

bool exp_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t k = exp_utf8_seq(p + i, n - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

void exp_buf_json_str(struct exp_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p);
    exp_buf_reserve(b, n + 2);
    exp_buf_addc(b, '"');
    size_t i = 0, run = 0; /* run: bytes at p+i-run.. that need no escaping */
    while (i < n) {
        unsigned char c = p[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            run++;
            continue;
        }
        if (run)
            exp_buf_add(b, p + i - run, run);
        run = 0;
        if (c >= 0x80) {
            size_t k = exp_utf8_seq(p + i, n - i);
            if (k) {
                exp_buf_add(b, p + i, k);
                i += k;
            } else {
                exp_buf_adds(b, "\xef\xbf\xbd");
                i++;
            }
            continue;
        }
        switch (c) {
        case '"':
            exp_buf_adds(b, "\\\"");
            break;
        case '\\':
            exp_buf_adds(b, "\\\\");
            break;
        case '\n':
            exp_buf_adds(b, "\\n");
            break;
        case '\r':
            exp_buf_adds(b, "\\r");
            break;
        case '\t':
            exp_buf_adds(b, "\\t");
            break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            exp_buf_add(b, u, 6);
        }
        }
        i++;
    }
    if (run)
        exp_buf_add(b, p + i - run, run);
    exp_buf_addc(b, '"');
}

void exp_buf_json_key(struct exp_buf *b, const char *key, bool first)
{
    if (!first)
        exp_buf_addc(b, ',');
    exp_buf_json_str(b, key);
    exp_buf_addc(b, ':');
}

void exp_buf_html(struct exp_buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p), i = 0;
    while (i < n) {
        unsigned char c = p[i];
        const char *rep = NULL;
        switch (c) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            break;
        }
        if (rep) {
            exp_buf_adds(b, rep);
            i++;
        } else if (c >= 0x80) {
            size_t k = exp_utf8_seq(p + i, n - i);
            exp_buf_add(b, k ? (const char *)p + i : "\xef\xbf\xbd", k ? k : 3);
            i += k ? k : 1;
        } else if (c < 0x20 && c != '\n' && c != '\t') {
            exp_buf_adds(b, "\xef\xbf\xbd");
            i++;
        } else {
            exp_buf_addc(b, (char)c);
            i++;
        }
    }
}

size_t exp_buf_unread(const struct exp_buf *b)
{
    return b->len - b->off;
}

size_t exp_buf_take(struct exp_buf *b, char *out, size_t max)
{
    size_t n = b->len - b->off;
    if (n > max)
        n = max;
    memcpy(out, b->data + b->off, n);
    b->off += n;
    if (b->off == b->len)
        exp_buf_reset(b);
    return n;
}

char *exp_buf_steal(struct exp_buf *b, size_t *len)
{
    char *d = b->data ? b->data : xstrdup("");
    if (len)
        *len = b->len;
    memset(b, 0, sizeof(*b));
    return d;
}
