/* Test helper: what a piece of code writes to stderr (the log). Include
 * after cmocka.h. */
#ifndef LICMON_TEST_CAPTURE_H
#define LICMON_TEST_CAPTURE_H
#include "xmem.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs fn with stderr going to a file; returns what it wrote (caller frees). */
static inline char *stderr_of(void (*fn)(void))
{
    char path[] = "/tmp/lm-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int saved = dup(STDERR_FILENO);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    fn();
    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    off_t n = lseek(fd, 0, SEEK_END);
    char *out = xcalloc(1, (size_t)n + 1);
    assert_int_equal(pread(fd, out, (size_t)n, 0), n);
    close(fd);
    unlink(path);
    return out;
}

/* Runs fn in a child process with stderr silenced; returns the child's
 * exit status (0 when fn returns). For code that exits on a fatal error. */
static inline int exit_status_of(void (*fn)(void))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, STDERR_FILENO);
        fn();
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* How many lines out holds. */
static inline int lines_of(const char *out)
{
    int lines = 0;
    for (const char *p = out; (p = strchr(p, '\n')); p++)
        lines++;
    return lines;
}

#endif
