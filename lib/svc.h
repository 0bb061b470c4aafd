/* svc: the service skeleton every program's main() hands its sockets and
 * timers to. One thread, one zmq_poll loop over ZeroMQ sockets, plain file
 * descriptors and periodic timers; SIGTERM and SIGINT arrive through a
 * signalfd and end the loop cleanly. */
#ifndef LICMON_SVC_H
#define LICMON_SVC_H
#include <stdbool.h>
#include <stdint.h>

struct svc;
typedef void (*svc_fn)(void *arg);

struct svc *svc_new(void);
void svc_free(struct svc **s);
/* Calls fn(arg) while zsock has a message waiting (fd < 0) or fd is readable. */
void svc_watch(struct svc *s, void *zsock, int fd, svc_fn fn, void *arg);
void svc_unwatch(struct svc *s, void *zsock, int fd);
/* Calls fn(arg) every period_ms (first call after one period). */
void svc_every(struct svc *s, int64_t period_ms, svc_fn fn, void *arg);
/* Runs until a signal or svc_stop(); returns the signal number (0 for stop). */
int svc_run(struct svc *s);
void svc_stop(struct svc *s);
/* Blocks SIGTERM/SIGINT/SIGHUP (they are read from the signalfd instead).
 * Must run before any thread starts (threads inherit the mask; a thread
 * with them unblocked would take the default action and kill the process):
 * prog_start() calls it first. svc_child_signals() undoes it in a child. */
void svc_block_signals(void);
void svc_child_signals(void);

#endif
