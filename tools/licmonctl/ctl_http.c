/* ctl_http: licmonctl's only door to libcurl: one request with a bearer
 * token, a download into a file, and the /healthz probe used by `up`.
 * curl's errors are turned into one line of text here. */
#include "ctl.h"
#include "xmem.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CTL_HTTP_BODY_MAX (64u << 20) /* JSON answers; exports go to a file */

static void ctl_http_global(void)
{
    static bool done;
    if (!done) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        done = true;
    }
}

struct ctl_http_buf {
    char *data;
    size_t len, cap;
    bool too_big;
};

static size_t ctl_http_collect(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct ctl_http_buf *b = arg;
    size_t n = size * nmemb;
    if (b->len + n > CTL_HTTP_BODY_MAX) {
        b->too_big = true;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->data = xrealloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static CURL *ctl_http_easy(const char *url, const char *token, long timeout_ms,
                           struct curl_slist **headers)
{
    ctl_http_global();
    CURL *c = curl_easy_init();
    if (!c)
        return NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 5000 ? timeout_ms : 5000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "licmonctl");
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    *headers = curl_slist_append(*headers, "Accept: application/json");
    if (token && *token) {
        char *h = xasprintf("Authorization: Bearer %s", token);
        *headers = curl_slist_append(*headers, h);
        free(h);
    }
    return c;
}

int ctl_http_request(const char *method, const char *url, const char *token, const char *body,
                     long timeout_ms, struct ctl_http_resp *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    struct curl_slist *headers = NULL;
    CURL *c = ctl_http_easy(url, token, timeout_ms, &headers);
    if (!c) {
        snprintf(err, errlen, "cannot start libcurl");
        return -1;
    }
    char curl_err[CURL_ERROR_SIZE] = "";
    struct ctl_http_buf buf = {0};
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else if (!strcmp(method, "GET")) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ctl_http_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &buf);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
    CURLcode rc = curl_easy_perform(c);
    int ret = 0;
    if (rc != CURLE_OK) {
        if (buf.too_big)
            snprintf(err, errlen, "%s: the answer is larger than %u MiB", url,
                     CTL_HTTP_BODY_MAX >> 20);
        else
            snprintf(err, errlen, "cannot reach %s: %s", url,
                     *curl_err ? curl_err : curl_easy_strerror(rc));
        free(buf.data);
        ret = -1;
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
        out->body = buf.data ? buf.data : xstrdup("");
        out->len = buf.len;
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    return ret;
}

void ctl_http_resp_free(struct ctl_http_resp *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

static int ctl_http_xfer(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                         curl_off_t ulnow)
{
    (void)ultotal;
    (void)ulnow;
    struct ctl_progress *p = arg;
    char note[64];
    snprintf(note, sizeof(note), "%.1f MiB", (double)dlnow / 1048576.0);
    p->total = dltotal > 0 ? (uint64_t)dltotal : 0;
    ctl_progress_update(p, (uint64_t)dlnow, note);
    return 0;
}

int ctl_http_download(const char *url, const char *token, const char *path, long *status, char *err,
                      size_t errlen)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot write: %m", path);
        return -1;
    }
    struct curl_slist *headers = NULL;
    CURL *c = ctl_http_easy(url, token, 600000L, &headers);
    if (!c) {
        fclose(f);
        snprintf(err, errlen, "cannot start libcurl");
        return -1;
    }
    char curl_err[CURL_ERROR_SIZE] = "";
    struct ctl_progress prog;
    ctl_progress_init(&prog, "downloading", 0);
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, ctl_http_xfer);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &prog);
    CURLcode rc = curl_easy_perform(c);
    ctl_progress_done(&prog);
    int ret = 0;
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "cannot reach %s: %s", url,
                 *curl_err ? curl_err : curl_easy_strerror(rc));
        ret = -1;
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    }
    if (fclose(f) != 0 && ret == 0) {
        snprintf(err, errlen, "%s: cannot write: %m", path);
        ret = -1;
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    return ret;
}

bool ctl_http_healthy(const char *hostport, long timeout_ms)
{
    char *url = xasprintf("http://%s/healthz", hostport);
    struct ctl_http_resp r;
    char err[256];
    bool ok = ctl_http_request("GET", url, NULL, NULL, timeout_ms, &r, err, sizeof(err)) == 0 &&
              r.status == 200;
    if (r.body)
        ctl_http_resp_free(&r);
    free(url);
    return ok;
}

char *ctl_http_escape(const char *s)
{
    ctl_http_global();
    char *e = curl_easy_escape(NULL, s, 0);
    char *out = xstrdup(e ? e : "");
    curl_free(e);
    return out;
}
