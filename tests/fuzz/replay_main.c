/* A main() for the fuzz harnesses without libFuzzer: runs
 * LLVMFuzzerTestOneInput once on every file named (or found in a folder
 * named) on the command line. `make test` links each harness with this and
 * the ordinary build (gcc; ASan and UBSan under SANITIZE=1) and replays the
 * committed corpora and crash inputs: a regression test of every input that
 * ever found something new, with no clang and no randomness. When an input
 * crashes, its path is printed before the process dies. */
#include "xmem.h"

#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);
/* present when linked with a sanitizer, which reports and exits by itself */
__attribute__((weak)) void __sanitizer_set_death_callback(void (*cb)(void));

static char current[4096];
static size_t current_len;

static void say_current(void)
{
    static const char msg[] = "\nreplay: this input failed: ";
    ssize_t w = write(2, msg, sizeof(msg) - 1);
    w = write(2, current, current_len);
    w = write(2, "\n", 1);
    (void)w;
}

static void on_fatal(int sig)
{
    say_current();
    signal(sig, SIG_DFL);
    raise(sig);
}

static long run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    if (!buf || (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)) {
        fprintf(stderr, "%s: cannot read\n", path);
        exit(2);
    }
    fclose(f);
    current_len = (size_t)snprintf(current, sizeof(current), "%s", path);
    if (current_len >= sizeof(current))
        current_len = sizeof(current) - 1;
    LLVMFuzzerTestOneInput(buf, (size_t)n);
    free(buf);
    return 1;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static long run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        perror(path);
        exit(2);
    }
    if (!S_ISDIR(st.st_mode))
        return run_file(path);
    DIR *d = opendir(path);
    if (!d) {
        perror(path);
        exit(2);
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            names = xrealloc(names, cap * sizeof(*names));
        }
        names[n++] = xasprintf("%s/%s", path, e->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof(*names), by_name); /* the same order every time */
    long runs = 0;
    for (size_t i = 0; i < n; i++) {
        runs += run_path(names[i]);
        free(names[i]);
    }
    free(names);
    return runs;
}

int main(int argc, char **argv)
{
    signal(SIGABRT, on_fatal);
    signal(SIGSEGV, on_fatal);
    signal(SIGBUS, on_fatal);
    signal(SIGFPE, on_fatal);
    if (__sanitizer_set_death_callback)
        __sanitizer_set_death_callback(say_current);
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    long runs = 0;
    for (int i = 1; i < argc; i++)
        if (argv[i][0] != '-') /* libFuzzer-style flags are not ours */
            runs += run_path(argv[i]);
    printf("%s: %ld inputs replayed\n", argc > 0 ? argv[0] : "replay", runs);
    return 0;
}
