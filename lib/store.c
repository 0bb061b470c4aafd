/* store: RocksDB through its C API (see store.h). Errors are translated into
 * logged warnings and -1 here, at the border. */
#include "store.h"
#include "keys.h"
#include "log.h"
#include "xmem.h"

#include <rocksdb/c.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct store_expiry {
    store_expired_fn fn;
    void *arg;
};

struct store {
    rocksdb_t *db;
    rocksdb_compactionfilter_t *filter;
    rocksdb_block_based_table_options_t *table;
    struct store_expiry expiry;
    rocksdb_options_t *opts;
    rocksdb_readoptions_t *ropts;
    rocksdb_writeoptions_t *wopts_sync;
    rocksdb_writeoptions_t *wopts_async;
    rocksdb_env_t *env; /* store_open_mem's in-memory Env, else NULL */
    char *path;
    struct log_limit read_errors; /* a damaged disk fails every read alike */
};

struct store_batch {
    rocksdb_writebatch_t *wb;
};

struct store_iter {
    struct store *s; /* its path and read error limit */
    rocksdb_iterator_t *it;
    rocksdb_readoptions_t *ropts; /* holds the bounds, which point into bounds */
    char *bounds;                 /* lo then hi */
};

static unsigned char store_filter(void *state, int level, const char *key, size_t klen,
                                  const char *val, size_t vlen, char **new_val, size_t *new_vlen,
                                  unsigned char *changed)
{
    const struct store_expiry *e = state;
    (void)level, (void)new_val, (void)new_vlen;
    *changed = 0;
    return e->fn(e->arg, key, klen, val, vlen) ? 1 : 0;
}

static void store_filter_destroy(void *state)
{
    (void)state; /* owned by the store */
}

static const char *store_filter_name(void *state)
{
    (void)state;
    return "licmon-retention";
}

struct store *store_open(const char *path)
{
    return store_open_expiring(path, NULL, NULL);
}

static struct store *store_open_env(const char *path, store_expired_fn expired, void *arg,
                                    rocksdb_env_t *env)
{
    struct store *s = xcalloc(1, sizeof(*s));
    s->opts = rocksdb_options_create();
    s->env = env;
    if (env)
        rocksdb_options_set_env(s->opts, env);
    if (expired) {
        s->expiry = (struct store_expiry){expired, arg};
        s->filter = rocksdb_compactionfilter_create(&s->expiry, store_filter_destroy, store_filter,
                                                    store_filter_name);
        rocksdb_options_set_compaction_filter(s->opts, s->filter);
    }
    rocksdb_options_set_create_if_missing(s->opts, 1);
    rocksdb_options_increase_parallelism(s->opts, 2);
    rocksdb_options_set_compression(s->opts, rocksdb_lz4_compression);
    rocksdb_options_set_max_open_files(s->opts, 256);
    /* bloom filters: most duplicate-index lookups are for keys that are
     * not there, and those should not cost a read of every level */
    s->table = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_filter_policy(s->table, rocksdb_filterpolicy_create_bloom(10));
    rocksdb_options_set_block_based_table_factory(s->opts, s->table);
    rocksdb_options_set_memtable_prefix_bloom_size_ratio(s->opts, 0.02);
    rocksdb_options_set_memtable_whole_key_filtering(s->opts, 1);
    char *err = NULL;
    s->db = rocksdb_open(s->opts, path, &err);
    if (err) {
        log_warn("open database %s: %s", path, err);
        free(err);
        rocksdb_options_destroy(s->opts);
        rocksdb_block_based_options_destroy(s->table);
        if (s->filter)
            rocksdb_compactionfilter_destroy(s->filter);
        if (s->env)
            rocksdb_env_destroy(s->env);
        free(s);
        return NULL;
    }
    s->ropts = rocksdb_readoptions_create();
    s->wopts_sync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(s->wopts_sync, 1);
    s->wopts_async = rocksdb_writeoptions_create();
    s->path = xstrdup(path);
    return s;
}

struct store *store_open_expiring(const char *path, store_expired_fn expired, void *arg)
{
    return store_open_env(path, expired, arg, NULL);
}

struct store *store_open_mem(const char *name)
{
    return store_open_env(name, NULL, NULL, rocksdb_create_mem_env());
}

void store_close(struct store **sp)
{
    struct store *s = *sp;
    if (!s)
        return;
    rocksdb_close(s->db);
    rocksdb_readoptions_destroy(s->ropts);
    rocksdb_writeoptions_destroy(s->wopts_sync);
    rocksdb_writeoptions_destroy(s->wopts_async);
    rocksdb_options_destroy(s->opts);
    rocksdb_block_based_options_destroy(s->table);
    if (s->filter)
        rocksdb_compactionfilter_destroy(s->filter);
    if (s->env)
        rocksdb_env_destroy(s->env);
    free(s->path);
    free(s);
    *sp = NULL;
}

int store_get(struct store *s, const void *key, size_t klen, char **val, size_t *vlen)
{
    char *err = NULL;
    size_t len = 0;
    char *v = rocksdb_get(s->db, s->ropts, key, klen, &len, &err);
    if (err) {
        log_warn_limited(&s->read_errors, "read %s: %s", s->path, err);
        free(err);
        return -1;
    }
    if (!v)
        return 0;
    *val = v;
    *vlen = len;
    return 1;
}

int store_get_fixed(struct store *s, const void *key, size_t klen, void *buf, size_t len)
{
    char *val;
    size_t vlen;
    int rc = store_get(s, key, klen, &val, &vlen);
    if (rc <= 0)
        return rc;
    if (vlen == len)
        memcpy(buf, val, len);
    free(val);
    return vlen == len ? 1 : 2;
}

int store_get_u64(struct store *s, const void *key, size_t klen, uint64_t *v)
{
    uint8_t b[8];
    int rc = store_get_fixed(s, key, klen, b, sizeof(b));
    if (rc == 2) {
        log_warn("read %s: a counter that is not 8 bytes", s->path);
        return -1;
    }
    if (rc == 1)
        *v = keys_get_u64(b);
    return rc;
}

struct store_batch *store_batch_new(void)
{
    struct store_batch *b = xcalloc(1, sizeof(*b));
    b->wb = rocksdb_writebatch_create();
    return b;
}

void store_batch_free(struct store_batch **bp)
{
    if (!*bp)
        return;
    rocksdb_writebatch_destroy((*bp)->wb);
    free(*bp);
    *bp = NULL;
}

void store_batch_put(struct store_batch *b, const void *k, size_t kl, const void *v, size_t vl)
{
    rocksdb_writebatch_put(b->wb, k, kl, v, vl);
}

void store_batch_put_u64(struct store_batch *b, const void *k, size_t kl, uint64_t v)
{
    uint8_t buf[8];
    keys_put_u64(buf, v);
    rocksdb_writebatch_put(b->wb, k, kl, (const char *)buf, 8);
}

void store_batch_del(struct store_batch *b, const void *k, size_t kl)
{
    rocksdb_writebatch_delete(b->wb, k, kl);
}

void store_batch_del_range(struct store_batch *b, const void *from, size_t fl, const void *to,
                           size_t tl)
{
    rocksdb_writebatch_delete_range(b->wb, from, fl, to, tl);
}

void store_batch_clear(struct store_batch *b)
{
    rocksdb_writebatch_clear(b->wb);
}

int store_batch_count(const struct store_batch *b)
{
    return rocksdb_writebatch_count(b->wb);
}

int store_write(struct store *s, struct store_batch *b, bool sync)
{
    char *err = NULL;
    rocksdb_write(s->db, sync ? s->wopts_sync : s->wopts_async, b->wb, &err);
    if (err) {
        log_warn("write %s: %s", s->path, err);
        free(err);
        return -1;
    }
    return 0;
}

void store_batch_write(void *batch, const void *key, size_t klen, const void *val, size_t vlen)
{
    if (val)
        store_batch_put(batch, key, klen, val, vlen);
    else
        store_batch_del(batch, key, klen);
}

long store_load_namespaces(struct store *s, const char *ns, store_load_fn load, void *arg)
{
    long n = 0;
    for (; *ns && n >= 0; ns++) {
        struct store_iter *it = store_iter_ns(s, (uint8_t)*ns);
        for (; store_iter_valid(it); store_iter_next(it)) {
            size_t kl, vl;
            const char *k = store_iter_key(it, &kl);
            const char *v = store_iter_value(it, &vl);
            if (load(arg, k, kl, v, vl) < 0) {
                log_warn("%s: saved state under key namespace '%c' is unreadable", s->path, *ns);
                n = -1;
                break;
            }
            n++;
        }
        if (n >= 0 && store_iter_status(it) < 0)
            n = -1;
        store_iter_free(&it);
    }
    return n;
}

void store_compact(struct store *s)
{
    rocksdb_compact_range(s->db, NULL, 0, NULL, 0);
}

struct store_iter *store_iter_range(struct store *s, const void *lo, size_t lol, const void *hi,
                                    size_t hil)
{
    struct store_iter *it = xcalloc(1, sizeof(*it));
    it->s = s;
    it->bounds = xmalloc(lol + hil + 1);
    memcpy(it->bounds, lo, lol);
    if (hi)
        memcpy(it->bounds + lol, hi, hil);
    it->ropts = rocksdb_readoptions_create();
    rocksdb_readoptions_set_iterate_lower_bound(it->ropts, it->bounds, lol);
    if (hi)
        rocksdb_readoptions_set_iterate_upper_bound(it->ropts, it->bounds + lol, hil);
    it->it = rocksdb_create_iterator(s->db, it->ropts);
    rocksdb_iter_seek(it->it, lo, lol);
    return it;
}

struct store_iter *store_iter_ns(struct store *s, uint8_t ns)
{
    uint8_t hi = (uint8_t)(ns + 1);
    return store_iter_range(s, &ns, 1, ns == 0xff ? NULL : &hi, 1);
}

void store_iter_free(struct store_iter **itp)
{
    struct store_iter *it = *itp;
    if (!it)
        return;
    rocksdb_iter_destroy(it->it);
    rocksdb_readoptions_destroy(it->ropts);
    free(it->bounds);
    free(it);
    *itp = NULL;
}

bool store_iter_valid(const struct store_iter *it)
{
    return rocksdb_iter_valid(it->it);
}

int store_iter_status(const struct store_iter *it)
{
    char *err = NULL;
    rocksdb_iter_get_error(it->it, &err);
    if (!err)
        return 0;
    log_warn_limited(&it->s->read_errors, "read %s: %s", it->s->path, err);
    free(err);
    return -1;
}

void store_iter_next(struct store_iter *it)
{
    rocksdb_iter_next(it->it);
}

const char *store_iter_key(const struct store_iter *it, size_t *klen)
{
    return rocksdb_iter_key(it->it, klen);
}

const char *store_iter_value(const struct store_iter *it, size_t *vlen)
{
    return rocksdb_iter_value(it->it, vlen);
}
