/* pb: protobuf helpers and enum names (see pb.h). */
#include "pb.h"
#include "xmem.h"

#include <string.h>

uint8_t *pb_pack(const ProtobufCMessage *m, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = xmalloc(n);
    *len = protobuf_c_message_pack(m, buf);
    return buf;
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
