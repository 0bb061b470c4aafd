/* xmem: allocation wrappers that exit on failure (see xmem.h). */
#include "xmem.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

void xrandom(void *p, size_t n)
{
    for (size_t got = 0; got < n;) {
        ssize_t r = getrandom((uint8_t *)p + got, n - got, 0);
        if (r < 0 && errno != EINTR)
            log_fatal("getrandom: %s", strerror(errno));
        got += r > 0 ? (size_t)r : 0;
    }
}

void xrandom_hex(char *out, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    uint8_t raw[64];
    for (size_t done = 0; done < n;) {
        size_t k = n - done < sizeof(raw) ? n - done : sizeof(raw);
        xrandom(raw, k);
        for (size_t i = 0; i < k; i++) {
            out[2 * (done + i)] = digits[raw[i] >> 4];
            out[2 * (done + i) + 1] = digits[raw[i] & 15];
        }
        done += k;
    }
    out[2 * n] = 0;
    explicit_bzero(raw, sizeof(raw));
}

static void *xmem_check(void *p, size_t n)
{
    if (p == NULL && n != 0)
        log_fatal("out of memory allocating %zu bytes", n);
    return p;
}

void *xmalloc(size_t n)
{
    return xmem_check(malloc(n ? n : 1), n);
}

void *xcalloc(size_t count, size_t n)
{
    return xmem_check(calloc(count ? count : 1, n ? n : 1), count * n);
}

void *xrealloc(void *p, size_t n)
{
    return xmem_check(realloc(p, n ? n : 1), n);
}

char *xstrdup(const char *s)
{
    return xmemdup(s, strlen(s) + 1);
}

char *xstrndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *r = xmalloc(len + 1);
    memcpy(r, s, len);
    r[len] = '\0';
    return r;
}

void *xmemdup(const void *p, size_t n)
{
    void *r = xmalloc(n);
    if (n)
        memcpy(r, p, n);
    return r;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *r = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&r, fmt, ap);
    va_end(ap);
    if (n < 0)
        log_fatal("out of memory formatting a string");
    return r;
}
