/* svc: poll loop, timers and signals (see svc.h). */
#include "svc.h"
#include "log.h"
#include "timeutil.h"
#include "xmem.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <zmq.h>

#define SVC_MAX_WATCH 32
#define SVC_MAX_TIMERS 16

struct svc_watch {
    void *zsock;
    int fd;
    svc_fn fn;
    void *arg;
};

struct svc_timer {
    int64_t period, next;
    svc_fn fn;
    void *arg;
};

struct svc {
    struct svc_watch watch[SVC_MAX_WATCH];
    int nwatch;
    struct svc_timer timers[SVC_MAX_TIMERS];
    int ntimers;
    int sigfd;
    bool stop;
};

static sigset_t svc_sigset(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    return set;
}

void svc_child_signals(void)
{
    sigset_t set = svc_sigset();
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    signal(SIGPIPE, SIG_DFL);
}

void svc_block_signals(void)
{
    sigset_t set = svc_sigset();
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        log_fatal("pthread_sigmask: %s", strerror(errno));
    signal(SIGPIPE, SIG_IGN);
}

struct svc *svc_new(void)
{
    struct svc *s = xcalloc(1, sizeof(*s));
    sigset_t set = svc_sigset();
    svc_block_signals();
    s->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (s->sigfd < 0)
        log_fatal("signalfd: %s", strerror(errno));
    return s;
}

void svc_free(struct svc **sp)
{
    if (!*sp)
        return;
    close((*sp)->sigfd);
    free(*sp);
    *sp = NULL;
}

void svc_watch(struct svc *s, void *zsock, int fd, svc_fn fn, void *arg)
{
    if (s->nwatch >= SVC_MAX_WATCH)
        log_panic("more than %d watched sockets", SVC_MAX_WATCH);
    s->watch[s->nwatch++] = (struct svc_watch){zsock, fd, fn, arg};
}

void svc_unwatch(struct svc *s, void *zsock, int fd)
{
    for (int i = 0; i < s->nwatch; i++)
        if (s->watch[i].zsock == zsock && s->watch[i].fd == fd) {
            s->watch[i] = s->watch[--s->nwatch];
            return;
        }
}

void svc_every(struct svc *s, int64_t period_ms, svc_fn fn, void *arg)
{
    if (s->ntimers >= SVC_MAX_TIMERS)
        log_panic("more than %d timers", SVC_MAX_TIMERS);
    s->timers[s->ntimers++] = (struct svc_timer){period_ms, time_mono_ms() + period_ms, fn, arg};
}

void svc_stop(struct svc *s)
{
    s->stop = true;
}

int svc_run(struct svc *s)
{
    zmq_pollitem_t items[SVC_MAX_WATCH + 1];
    while (!s->stop) {
        int n = 0;
        items[n++] = (zmq_pollitem_t){.socket = NULL, .fd = s->sigfd, .events = ZMQ_POLLIN};
        struct svc_watch snapshot[SVC_MAX_WATCH];
        int nw = s->nwatch;
        memcpy(snapshot, s->watch, sizeof(snapshot[0]) * (size_t)nw);
        for (int i = 0; i < nw; i++)
            items[n++] = (zmq_pollitem_t){.socket = snapshot[i].zsock,
                                          .fd = snapshot[i].fd < 0 ? 0 : snapshot[i].fd,
                                          .events = ZMQ_POLLIN};
        int64_t now = time_mono_ms(), wait = 1000;
        for (int i = 0; i < s->ntimers; i++) {
            int64_t d = s->timers[i].next - now;
            if (d < wait)
                wait = d < 0 ? 0 : d;
        }
        int rc = zmq_poll(items, n, (long)wait);
        if (rc < 0 && errno != EINTR)
            log_fatal("zmq_poll: %s", zmq_strerror(errno));
        if (rc > 0 && (items[0].revents & ZMQ_POLLIN)) {
            struct signalfd_siginfo si;
            if (read(s->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                log_info("signal %u: shutting down", si.ssi_signo);
                return (int)si.ssi_signo;
            }
        }
        for (int i = 0; rc > 0 && i < nw && !s->stop; i++)
            if (items[i + 1].revents & ZMQ_POLLIN)
                snapshot[i].fn(snapshot[i].arg);
        now = time_mono_ms();
        for (int i = 0; i < s->ntimers && !s->stop; i++)
            if (s->timers[i].next <= now) {
                s->timers[i].next = now + s->timers[i].period;
                s->timers[i].fn(s->timers[i].arg);
            }
    }
    return 0;
}
