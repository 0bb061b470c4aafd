/* ctl_keygen: `licmonctl keygen`, a CURVE key pair for ingest or for a
 * producer, in the files the programs read: the Z85 key on the first line.
 * The secret file is created 0600 and never overwritten. */
#include "ctl.h"
#include "conf.h"
#include "xmem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

static int keygen_write(const char *path, const char *key, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        ctl_err("keygen", "%s: %s", path, strerror(errno));
        return -1;
    }
    char line[64];
    int n = snprintf(line, sizeof(line), "%s\n", key);
    int rc = write(fd, line, (size_t)n) == n && fsync(fd) == 0 ? 0 : -1;
    if (rc)
        ctl_err("keygen", "%s: %s", path, strerror(errno));
    close(fd);
    return rc;
}

int ctl_keygen_main(int argc, char **argv)
{
    char *out;
    struct conf_opt opts[] = {
        CONF_STR("out", NULL, "", "write the keys to OUT.key (secret, 0600) and OUT.pub", &out),
        CONF_END};
    conf_parse(
        "licmonctl keygen",
        "licmonctl keygen --out PREFIX\n"
        "Makes a CURVE key pair: for ingest (--curve-secret-file PREFIX.key, producers\n"
        "get PREFIX.pub) or for a producer (its PREFIX.pub goes into ingest's\n"
        "--curve-allowed-keys; licmonctl send takes --curve-public-key/--curve-secret-key).\n"
        "Prints the public key. Exit status: 0 written, 1 failed, 2 usage.",
        opts, argc, argv, 2, NULL, NULL);
    int status = CTL_EXIT_USAGE;
    if (!*out) {
        ctl_err("keygen", "--out PREFIX is required");
        conf_free(opts);
        return status;
    }
    char pub[41], sec[41];
    status = CTL_EXIT_FAIL;
    if (zmq_curve_keypair(pub, sec) != 0) {
        ctl_err("keygen", "this libzmq has no CURVE support: %s", zmq_strerror(errno));
    } else {
        char *kpath = xasprintf("%s.key", out), *ppath = xasprintf("%s.pub", out);
        /* both or neither: a pair half written is refused whole at the next try */
        if (access(ppath, F_OK) == 0) {
            ctl_err("keygen", "%s: %s", ppath, strerror(EEXIST));
        } else if (keygen_write(kpath, sec, 0600) == 0) {
            if (keygen_write(ppath, pub, 0644) == 0) {
                printf("%s\n", pub);
                status = CTL_EXIT_OK;
            } else {
                unlink(kpath);
            }
        }
        explicit_bzero(sec, sizeof(sec));
        free(kpath);
        free(ppath);
    }
    conf_free(opts);
    return status;
}
