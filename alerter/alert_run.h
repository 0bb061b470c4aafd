/* alert_run: the alerter's moving parts joined: the stage callbacks that
 * feed usage updates to alert_state and put the resulting notifications in
 * the outbox within the same commit, the wall-clock expiry check, and the
 * send timer that drives the outbox. main.c only builds these and hands the
 * callbacks to lib/stage and lib/svc. Everything runs on the svc thread. */
#ifndef ALERT_RUN_H
#define ALERT_RUN_H
#include "alert_outbox.h"
#include "alert_state.h"
#include "stage.h"
#include "store.h"

#include <stdint.h>

#define ALERT_RUN_SEND_PERIOD_MS 20

struct alert_run;

/* Restores the saved state from store (log_fatal when unreadable). The
 * outbox stays owned by the caller. now_offset_ms shifts the wall clock
 * (tests of expiry reminders only). A threshold crossing seen more than
 * max_age_ms after it happened is followed but not mailed (0: every one is
 * mailed). */
struct alert_run *alert_run_new(struct store *store, struct alert_outbox *ob, int64_t now_offset_ms,
                                int64_t max_age_ms);
/* The stage feeding it: expiry checks wait until it has caught up. */
void alert_run_set_stage(struct alert_run *r, struct stage *st);
void alert_run_free(struct alert_run **r);

/* The alerter's clock: the host's through a steady clock (a step is taken
 * only once it has lasted; timeutil.h), with the offset. */
int64_t alert_run_now(struct alert_run *r);

/* stage_ops callbacks (arg = the alert_run). */
int alert_run_apply(void *arg, struct stage *st, uint64_t seq, const uint8_t *data, size_t len);
void alert_run_flush(void *arg, struct stage *st, struct store_batch *b);
void alert_run_committed(void *arg, struct stage *st);

/* svc timers (arg = the alert_run). */
void alert_run_expiry_timer(void *arg); /* reminders due now; prunes old outbox records */
void alert_run_send_timer(void *arg);   /* drives the outbox */

/* At shutdown: lets deliveries in flight finish for up to max_ms. */
void alert_run_drain(struct alert_run *r, int64_t max_ms);

struct alert_state *alert_run_state(struct alert_run *r);

#endif
