/* ctl_progress: a one-line progress bar on stderr, drawn only when stderr
 * is a terminal, and the messages that must clear it before they print. */
#include "ctl.h"
#include "timeutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#define CTL_BAR_WIDTH 30

static struct ctl_progress *ctl_progress_shown;

void ctl_progress_init(struct ctl_progress *p, const char *label, uint64_t total)
{
    p->on = isatty(STDERR_FILENO);
    p->label = label;
    p->total = total;
    p->last_ms = 0;
    p->drawn = false;
}

static void ctl_progress_erase(void)
{
    if (ctl_progress_shown && ctl_progress_shown->drawn) {
        fputs("\r\033[K", stderr);
        ctl_progress_shown->drawn = false;
    }
}

void ctl_progress_update(struct ctl_progress *p, uint64_t done, const char *note)
{
    if (!p->on)
        return;
    int64_t now = time_mono_ms();
    if (p->drawn && now - p->last_ms < 100)
        return;
    p->last_ms = now;
    ctl_progress_shown = p;
    if (p->total > 0) {
        uint64_t d = done > p->total ? p->total : done;
        int fill = (int)(d * CTL_BAR_WIDTH / p->total);
        char bar[CTL_BAR_WIDTH + 1];
        for (int i = 0; i < CTL_BAR_WIDTH; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[CTL_BAR_WIDTH] = '\0';
        fprintf(stderr, "\r\033[K%s [%s] %3d%% %s", p->label, bar, (int)(d * 100 / p->total),
                note ? note : "");
    } else {
        static const char spin[] = "|/-\\";
        fprintf(stderr, "\r\033[K%s %c %s", p->label, spin[(now / 100) % 4], note ? note : "");
    }
    fflush(stderr);
    p->drawn = true;
}

void ctl_progress_done(struct ctl_progress *p)
{
    if (ctl_progress_shown == p) {
        ctl_progress_erase();
        ctl_progress_shown = NULL;
    }
    p->on = false;
}

void ctl_err(const char *cmd, const char *fmt, ...)
{
    ctl_progress_erase();
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "licmonctl %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void ctl_note(const char *fmt, ...)
{
    ctl_progress_erase();
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
