/* Test helper: damage a RocksDB database on disk as bit rot or a torn copy
 * would. Include after cmocka.h. */
#ifndef LICMON_TEST_DAMAGE_H
#define LICMON_TEST_DAMAGE_H
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Bytes that do not compress, so that n of them fill table blocks. */
static inline void incompressible(void *buf, size_t n, uint32_t *x)
{
    for (size_t j = 0; j < n; j++) {
        *x ^= *x << 13, *x ^= *x >> 17, *x ^= *x << 5;
        ((char *)buf)[j] = (char)*x;
    }
}

/* Overwrites 64 bytes in the middle of the largest table file (.sst) of the
 * database in dir (closed), which must be over min_size bytes: RocksDB's
 * block checksum then refuses that block. */
static inline void damage_largest_table(const char *dir, off_t min_size)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    char sst[256] = "";
    off_t largest = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".sst") != 0)
            continue;
        char path[256];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        int fd = open(path, O_RDONLY);
        off_t size = lseek(fd, 0, SEEK_END);
        close(fd);
        if (size > largest)
            largest = size, snprintf(sst, sizeof(sst), "%s", path);
    }
    closedir(d);
    assert_true(largest > min_size);
    int fd = open(sst, O_WRONLY);
    assert_true(fd >= 0);
    char junk[64];
    memset(junk, 0x5a, sizeof(junk));
    assert_int_equal(pwrite(fd, junk, sizeof(junk), largest / 2), (ssize_t)sizeof(junk));
    close(fd);
}

#endif
