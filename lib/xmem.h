/* xmem: allocation that never returns NULL. Running out of memory is an
 * environment failure: we log and exit, and the supervisor restarts us. */
#ifndef LICMON_XMEM_H
#define LICMON_XMEM_H
#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);
/* n random bytes from the kernel (getrandom); exits when it has none */
void xrandom(void *p, size_t n);
/* n random bytes as 2n lowercase hex digits and a NUL, into out[2n + 1] */
void xrandom_hex(char *out, size_t n);
/* printf into a new string; caller frees */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
