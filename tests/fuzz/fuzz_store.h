/* Scratch stores for the harnesses that need a real RocksDB database
 * (fuzz_agg_state, fuzz_outbox): real databases through lib/store.c, with
 * the program's options, opened once and emptied between inputs. Every
 * input starts on a store holding no key; how it gets there was chosen by
 * profiling (perf, the ASan + libFuzzer build; numbers in README.md):
 *
 *  - in memory (store_open_mem, RocksDB's in-memory Env), not on /dev/shm:
 *    on tmpfs every write is system calls (WAL append, fallocate of its
 *    preallocation, fsync of the synced commits, file creation at each
 *    flush): 44% of fuzz_agg_state's CPU time went to the kernel, 12% in
 *    memory. And the databases stayed behind in /dev/shm when a crash
 *    killed the fuzzer (they were removed by system("rm -rf"));
 *  - emptied, not reopened: opening a database costs 10-25 ms under ASan
 *    (RocksDB writes its OPTIONS file and parses it back, starts a timer
 *    thread, allocates and clears the memtable's 1.3 MB bloom filter),
 *    what 3 to 10 inputs cost;
 *  - by one range deletion, not key by key: deleting each key needs a scan
 *    to find them and leaves a tombstone per key in the memtable, over
 *    which every later seek steps one by one (the product's iterators had
 *    no upper bound then: a seek into an empty namespace walked every
 *    tombstone behind it; store_iter_range has since bounded them, but a
 *    seek still steps over those inside its range). With a fresh database
 *    every 100 inputs that was most of the run time. The range deletion is
 *    one write; the keys it covers still sit in the memtable, where seeks
 *    step over them too and every insertion is slower, so
 *  - a full compaction (store_compact: flush, then compaction to the last
 *    level) drops them and the tombstones once the inputs since the last
 *    one wrote FUZZ_STORE_COMPACT_ENTRIES entries, or after
 *    FUZZ_STORE_COMPACT_INPUTS inputs (each leaves a range tombstone, and
 *    RocksDB 7.8 fragments all of a memtable's range tombstones again after
 *    every write that adds one). A compaction costs about what one to
 *    three inputs do: the entry count keeps big inputs (a few hundred
 *    entries each) from piling up, the input count keeps small ones (a
 *    few entries) from paying a compaction each;
 *  - a fresh database every FUZZ_STORE_REOPEN_EVERY inputs all the same:
 *    RocksDB's own in-memory files (MANIFEST, info LOG) grow with every
 *    compaction. */
#ifndef LICMON_FUZZ_STORE_H
#define LICMON_FUZZ_STORE_H
#include "store.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_STORE_COMPACT_ENTRIES 1024
#define FUZZ_STORE_COMPACT_INPUTS 32
#define FUZZ_STORE_REOPEN_EVERY 4096

struct fuzz_store {
    struct store *st;
    const char *name;
    unsigned long inputs;  /* emptied for so many */
    unsigned long since;   /* inputs since the last compaction */
    unsigned long written; /* entries written since the last compaction */
};

static void fuzz_store_open(struct fuzz_store *fs, const char *name)
{
    *fs = (struct fuzz_store){.st = store_open_mem(name), .name = name};
    if (!fs->st)
        abort();
}

static void fuzz_store_close(struct fuzz_store *fs)
{
    store_close(&fs->st);
}

/* store_write, counting the entries; a failure aborts. (Writes of the
 * product's own are not counted: only those the harness makes.) */
static void fuzz_store_write(struct fuzz_store *fs, struct store_batch *b, bool sync)
{
    fs->written += (unsigned long)store_batch_count(b);
    if (store_write(fs->st, b, sync) != 0)
        abort();
}

/* Readies the store for the next input: no key left. */
static void fuzz_store_empty(struct fuzz_store *fs)
{
    if (++fs->inputs % FUZZ_STORE_REOPEN_EVERY == 0) {
        unsigned long inputs = fs->inputs;
        fuzz_store_close(fs);
        fuzz_store_open(fs, fs->name);
        fs->inputs = inputs;
        return;
    }
    struct store_batch *b = store_batch_new();
    store_batch_del_range(b, "", 0, "\xff", 1);
    /* keys from 0xff on (no namespace of the product's) are past the range */
    struct store_iter *it = store_iter_ns(fs->st, 0xff);
    for (; store_iter_valid(it); store_iter_next(it)) {
        size_t kl;
        const char *k = store_iter_key(it, &kl);
        store_batch_del(b, k, kl);
    }
    store_iter_free(&it);
    if (store_write(fs->st, b, false) != 0)
        abort();
    store_batch_free(&b);
    if (++fs->since >= FUZZ_STORE_COMPACT_INPUTS || fs->written >= FUZZ_STORE_COMPACT_ENTRIES) {
        store_compact(fs->st);
        fs->since = 0;
        fs->written = 0;
    }
}

/* RocksDB keeps allocations from one input to the next (memtables, caches),
 * so libFuzzer's leak check after each input would scan the whole heap every
 * time (90% of the run time): -detect_leaks=0 is added unless the command
 * line sets it. LeakSanitizer still checks the whole run at exit. */
static void no_per_input_leak_check(int *argc, char ***argv)
{
    for (int i = 1; i < *argc; i++)
        if (!strncmp((*argv)[i], "-detect_leaks=", 14))
            return;
    static char *args[256];
    static char flag[] = "-detect_leaks=0";
    int n = 0;
    for (int i = 0; i < *argc && n < 254; i++)
        args[n++] = (*argv)[i];
    args[n++] = flag;
    args[n] = NULL;
    *argc = n;
    *argv = args;
}

/* AddressSanitizer's defaults for these harnesses (ASAN_OPTIONS, when set,
 * still wins): no stack recorded at each malloc and free. Recording them
 * (unwinding plus the stack depot) was 12% of fuzz_agg_state's time, RocksDB
 * allocating at every iterator and write. Detection is unchanged: a report
 * still names the bad access and its stack; only the "allocated at" and
 * "freed at" stacks are missing, and rerunning the input with
 * ASAN_OPTIONS=malloc_context_size=30 prints them. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "malloc_context_size=0";
}

#endif
