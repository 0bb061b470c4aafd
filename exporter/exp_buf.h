/* exp_buf: a growable byte buffer for the text the exporter writes by hand
 * (JSON rows, NDJSON, CSV, HTML), with JSON and HTML escaping. Rows of a
 * long answer are written here a chunk at a time and handed to the HTTP
 * layer, so a year of sessions never sits in memory. Private to exporter/. */
#ifndef EXP_BUF_H
#define EXP_BUF_H
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct exp_buf {
    char *data; /* NUL-terminated when len > 0 */
    size_t len, cap;
    size_t off; /* bytes already handed out by exp_buf_take */
};

void exp_buf_free(struct exp_buf *b);
void exp_buf_reset(struct exp_buf *b);
/* Makes room for n more bytes (one allocation instead of many). */
void exp_buf_reserve(struct exp_buf *b, size_t n);
void exp_buf_add(struct exp_buf *b, const void *p, size_t n);
void exp_buf_adds(struct exp_buf *b, const char *s);
void exp_buf_addc(struct exp_buf *b, char c);
void exp_buf_printf(struct exp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void exp_buf_int(struct exp_buf *b, int64_t v);
/* A JSON number with at most `decimals` decimals, trailing zeros dropped. */
void exp_buf_num(struct exp_buf *b, double v, int decimals);
/* A JSON string (quotes included). Bytes that are not valid UTF-8 become
 * U+FFFD, so one bad byte never breaks the document. */
void exp_buf_json_str(struct exp_buf *b, const char *s);
/* "key": (with a leading comma unless first) */
void exp_buf_json_key(struct exp_buf *b, const char *key, bool first);
/* Text for HTML element content and attribute values: & < > " ' escaped. */
void exp_buf_html(struct exp_buf *b, const char *s);
/* Copies up to max unread bytes into out; returns how many. The buffer is
 * reset once everything has been taken. */
size_t exp_buf_take(struct exp_buf *b, char *out, size_t max);
size_t exp_buf_unread(const struct exp_buf *b);
/* Takes the contents (caller frees); the buffer is left empty. */
char *exp_buf_steal(struct exp_buf *b, size_t *len);

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when the bytes at s
 * (n available) are not one. */
size_t exp_utf8_seq(const unsigned char *s, size_t n);
bool exp_utf8_valid(const char *s, size_t n);

#endif
