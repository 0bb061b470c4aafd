/* exp_static: the dashboard's files (exporter/web/), embedded in the binary
 * at build time by tools/embed_assets.py and served without a token: the
 * page itself only talks to the token-protected API. */
#ifndef LICMON_EXP_STATIC_H
#define LICMON_EXP_STATIC_H
#include <stddef.h>

struct exp_asset {
    const char *path; /* "/index.html" */
    const char *content_type;
    const char *etag; /* quoted */
    const unsigned char *data;
    size_t len;
};

/* The generated table, ended by an entry with path NULL. */
extern const struct exp_asset exp_assets[];

/* The asset for a request path ("/" is "/index.html"), or NULL. */
const struct exp_asset *exp_static_find(const char *url);

struct MHD_Connection;
/* Answers GET/HEAD of an embedded asset (with ETag / If-None-Match);
 * returns 1 when url named one, 0 otherwise. */
int exp_static_handle(struct MHD_Connection *c, const char *method, const char *url,
                      int *mhd_result);

#endif
