/* Test helper: a fresh folder under /tmp, removed with everything in it.
 * Include after cmocka.h. */
#ifndef LICMON_TEST_TMPDIR_H
#define LICMON_TEST_TMPDIR_H
#include "xmem.h"

#include <stdlib.h>

static inline char *tmpdir_new(void)
{
    char tmpl[] = "/tmp/lm-test.XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return xstrdup(d);
}

static inline void tmpdir_free(char **d)
{
    char *cmd = xasprintf("rm -rf '%s'", *d);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(*d);
    *d = NULL;
}

#endif
