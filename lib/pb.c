/* pb: protobuf helpers and enum names (see pb.h). */
#include "pb.h"
#include "xmem.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

uint8_t *pb_pack(const ProtobufCMessage *m, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = xmalloc(n);
    *len = protobuf_c_message_pack(m, buf);
    return buf;
}

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

int pb_wire_next(const uint8_t **pp, const uint8_t *end, struct pb_wire *f)
{
    const uint8_t *p = *pp;
    uint64_t key;
    size_t skip = 0;
    if (p >= end || read_varint(&p, end, &key) != 0)
        return -1;
    *f = (struct pb_wire){.num = key >> 3, .type = (int)(key & 7)};
    switch (f->type) {
    case 0: /* varint */
        if (read_varint(&p, end, &f->v) != 0)
            return -1;
        break;
    case 1: /* 64-bit */
        skip = 8;
        break;
    case 2: /* length-delimited */
        if (read_varint(&p, end, &f->v) != 0 || f->v > (uint64_t)(end - p))
            return -1;
        skip = (size_t)f->v;
        f->data = p;
        f->len = skip;
        break;
    case 5: /* 32-bit */
        skip = 4;
        break;
    default:
        return -1;
    }
    if (skip > (size_t)(end - p))
        return -1;
    *pp = p + skip;
    return 0;
}

int pb_peek_varint(const uint8_t *buf, size_t len, uint32_t field, uint64_t *out)
{
    const uint8_t *p = buf, *end = buf + len;
    struct pb_wire f;
    int found = -1;
    while (pb_wire_next(&p, end, &f) == 0)
        if (f.type == 0 && f.num == field) {
            *out = f.v;
            found = 0;
        }
    return found;
}

const char *pb_string_with_nul(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len)
{
    const uint8_t *p = buf, *end = buf + len;
    struct pb_wire f;
    const char *found = NULL;
    /* a singular field may occur more than once: protobuf-c keeps the last */
    bool *last_nul = xcalloc(d->n_fields + 1, sizeof(*last_nul));
    while (!found && pb_wire_next(&p, end, &f) == 0) {
        if (f.type != 2 || f.num > UINT32_MAX)
            continue;
        const ProtobufCFieldDescriptor *fd =
            protobuf_c_message_descriptor_get_field(d, (unsigned)f.num);
        if (!fd)
            continue;
        bool nul = fd->type == PROTOBUF_C_TYPE_STRING && f.len && memchr(f.data, 0, f.len);
        if (fd->type == PROTOBUF_C_TYPE_MESSAGE)
            found = pb_string_with_nul(fd->descriptor, f.data, f.len);
        else if (fd->label == PROTOBUF_C_LABEL_REPEATED && nul)
            found = fd->name;
        else if (fd->type == PROTOBUF_C_TYPE_STRING)
            last_nul[fd - d->fields] = nul;
    }
    for (unsigned i = 0; !found && i < d->n_fields; i++)
        if (last_nul[i])
            found = d->fields[i].name;
    free(last_nul);
    return found;
}

#define PB_CHUNK_KEEP (16u << 20)

void pb_chunk_add(struct pb_chunk *c, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    size_t need = c->len + 1 + 10 + n; /* key, varint length, message */
    if (need > c->cap) {
        c->cap = c->cap ? c->cap : 64 * 1024;
        while (c->cap < need)
            c->cap *= 2;
        c->buf = xrealloc(c->buf, c->cap);
    }
    uint8_t *p = c->buf + c->len;
    *p++ = 1 << 3 | PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED; /* field 1: items */
    for (size_t v = n;; v >>= 7) {
        *p++ = (uint8_t)(v < 0x80 ? v : (v & 0x7f) | 0x80);
        if (v < 0x80)
            break;
    }
    size_t packed = protobuf_c_message_pack(m, p);
    c->len = (size_t)(p - c->buf) + packed;
    c->n++;
}

void pb_chunk_clear(struct pb_chunk *c)
{
    if (c->cap > PB_CHUNK_KEEP) /* a rare big one: give its memory back */
        pb_chunk_free(c);
    c->len = 0;
    c->n = 0;
}

void pb_chunk_free(struct pb_chunk *c)
{
    free(c->buf);
    *c = (struct pb_chunk){0};
}

static void *pb_arena_alloc(void *data, size_t size)
{
    struct pb_arena *a = data;
    size_t aligned = (size + 15) & ~(size_t)15;
    if (aligned <= a->cap - a->used) {
        void *p = a->buf + a->used;
        a->used += aligned;
        return p;
    }
    if (a->nbig == a->capbig) {
        a->capbig = a->capbig ? a->capbig * 2 : 16;
        a->big = xrealloc(a->big, a->capbig * sizeof(*a->big));
    }
    return a->big[a->nbig++] = xmalloc(size);
}

static void pb_arena_release(void *data, void *p)
{
    (void)data, (void)p; /* everything goes at pb_arena_reset */
}

void pb_arena_init(struct pb_arena *a, size_t cap)
{
    *a = (struct pb_arena){.cap = cap};
    a->buf = xmalloc(cap);
    a->allocator = (ProtobufCAllocator){pb_arena_alloc, pb_arena_release, a};
}

ProtobufCAllocator *pb_arena_allocator(struct pb_arena *a)
{
    return &a->allocator;
}

void pb_arena_reset(struct pb_arena *a)
{
    for (size_t i = 0; i < a->nbig; i++)
        free(a->big[i]);
    a->nbig = 0;
    a->used = 0;
}

void pb_arena_free(struct pb_arena *a)
{
    pb_arena_reset(a);
    free(a->big);
    free(a->buf);
    *a = (struct pb_arena){0};
}

static const char *const pb_kinds[] = {"unspecified", "login", "activity", "logout", "denied"};

const char *pb_kind_name(Licmon__V1__EventKind k)
{
    return (unsigned)k < sizeof(pb_kinds) / sizeof(pb_kinds[0]) ? pb_kinds[k] : "unknown";
}

int pb_kind_parse(const char *name, Licmon__V1__EventKind *out)
{
    for (unsigned i = 1; i < sizeof(pb_kinds) / sizeof(pb_kinds[0]); i++)
        if (!strcmp(name, pb_kinds[i])) {
            *out = (Licmon__V1__EventKind)i;
            return 0;
        }
    return -1;
}

const char *pb_end_reason_name(Licmon__V1__EndReason r)
{
    static const char *const names[] = {"open",    "manual_logout",      "user_inactivity",
                                        "relogin", "license_inactivity", "switched"};
    return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "unknown";
}

const char *pb_model_name(Licmon__V1__LicenseModel m)
{
    return m == LICMON__V1__LICENSE_MODEL__NAMED ? "named" : "floating";
}
