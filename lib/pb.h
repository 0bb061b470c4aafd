/* pb: the generated protobuf-c messages (proto/licmon.proto) and small
 * helpers around them. Unpacked messages are validated by their users. */
#ifndef LICMON_PB_H
#define LICMON_PB_H
#include "licmon.pb-c.h"

#include <stddef.h>
#include <stdint.h>

/* Packs any message into a new buffer; caller frees. */
uint8_t *pb_pack(const ProtobufCMessage *m, size_t *len);

/* Reads the varint field `field` of a top-level message without unpacking
 * it (a frame too large or too damaged to unpack can still name its batch
 * id): walks the field keys, skipping the others. 0 and *out set (the last
 * occurrence, as protobuf reads it), or -1 if not found before the end or
 * the first damaged key. */
int pb_peek_varint(const uint8_t *buf, size_t len, uint32_t field, uint64_t *out);

/* One field of a message's wire bytes: its number and wire type, a
 * varint's value (or a length-delimited field's length) and the bytes of a
 * length-delimited field. */
struct pb_wire {
    uint64_t num, v;
    int type;
    const uint8_t *data;
    size_t len;
};
/* Reads the field at *p (before end) into f and moves *p past it; -1 at the
 * end, at a damaged field or at a group (no message of ours has one). */
int pb_wire_next(const uint8_t **p, const uint8_t *end, struct pb_wire *f);

/* The name of a string field, of the message of type d in buf or of its
 * submessages, that holds a NUL byte as protobuf-c unpacks it (whole: and
 * every C string use then stops there); of a singular field only the last
 * occurrence counts, as it is the one kept. The first such field in the
 * descriptor's order, a repeated or nested one first; NULL when none. (A
 * singular submessage occurring twice is merged by protobuf-c; each
 * occurrence is judged here: none of ours is.) */
const char *pb_string_with_nul(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len);

/* A Chunk (proto: repeated bytes items = 1) built in place: each item is
 * packed straight after its field key and length, so buf always holds the
 * packed Chunk of the items added since the last clear — no per-item
 * buffer, no copy at the end. Zero-initialise, then add, use, clear. */
struct pb_chunk {
    uint8_t *buf;
    size_t len, cap;
    size_t n; /* items */
};
void pb_chunk_add(struct pb_chunk *c, const ProtobufCMessage *m);
void pb_chunk_clear(struct pb_chunk *c);
void pb_chunk_free(struct pb_chunk *c);

#define PB_FREE(type, p)                                                                           \
    do {                                                                                           \
        if (p)                                                                                     \
            licmon__v1__##type##__free_unpacked(p, NULL);                                          \
        (p) = NULL;                                                                                \
    } while (0)

/* A bump allocator for unpacking: messages unpacked with
 * pb_arena_allocator() are released all at once by pb_arena_reset(), not by
 * free_unpacked. For the hot paths that unpack one message per record. */
struct pb_arena {
    ProtobufCAllocator allocator;
    char *buf;
    size_t cap, used;
    void **big; /* allocations larger than the buffer */
    size_t nbig, capbig;
};
void pb_arena_init(struct pb_arena *a, size_t cap);
ProtobufCAllocator *pb_arena_allocator(struct pb_arena *a);
void pb_arena_reset(struct pb_arena *a);
void pb_arena_free(struct pb_arena *a);

/* Names used in logs and JSON for the enums. */
const char *pb_kind_name(Licmon__V1__EventKind k);
int pb_kind_parse(const char *name, Licmon__V1__EventKind *out);
const char *pb_end_reason_name(Licmon__V1__EndReason r);
const char *pb_model_name(Licmon__V1__LicenseModel m);

#endif
