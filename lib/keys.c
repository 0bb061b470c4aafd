/* keys: key building (see keys.h). */
#include "keys.h"

#include <string.h>

size_t keys_make(uint8_t *buf, size_t cap, char ns, const char *const *parts, int nparts)
{
    size_t pos = 0;
    if (cap < 1)
        return 0;
    buf[pos++] = (uint8_t)ns;
    for (int i = 0; i < nparts; i++) {
        size_t l = strlen(parts[i]);
        if (pos + l + 1 > cap)
            return 0;
        memcpy(buf + pos, parts[i], l);
        pos += l;
        if (i + 1 < nparts)
            buf[pos++] = 0;
    }
    return pos;
}
