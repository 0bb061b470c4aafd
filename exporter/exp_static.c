/* exp_static: serving the embedded dashboard files (see exp_static.h). */
#include "exp_static.h"

#include <microhttpd.h>
#include <string.h>

const struct exp_asset *exp_static_find(const char *url)
{
    if (!strcmp(url, "/"))
        url = "/index.html";
    for (const struct exp_asset *a = exp_assets; a->path; a++)
        if (!strcmp(a->path, url))
            return a;
    return NULL;
}

int exp_static_handle(struct MHD_Connection *c, const char *method, const char *url,
                      int *mhd_result)
{
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return 0;
    const struct exp_asset *a = exp_static_find(url);
    if (!a)
        return 0;
    const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match");
    unsigned status = MHD_HTTP_OK;
    struct MHD_Response *r;
    if (inm && !strcmp(inm, a->etag)) {
        status = MHD_HTTP_NOT_MODIFIED;
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    } else {
        r = MHD_create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, "Content-Type", a->content_type);
    }
    MHD_add_response_header(r, "ETag", a->etag);
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; style-src 'self' "
                            "'unsafe-inline'; frame-ancestors 'none'");
    *mhd_result = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return 1;
}
