/* exp_internal: the exporter's internal ROUTER socket, so licmonctl and
 * the other programs can ask it the Request{status} every program answers.
 * Runs on the main thread's svc loop. Private to exporter/. */
#ifndef EXP_INTERNAL_H
#define EXP_INTERNAL_H
#include "svc.h"

struct exp_internal;

/* Binds endpoint and registers with svc; NULL with a logged reason. */
struct exp_internal *exp_internal_open(const char *endpoint, struct svc *svc);
void exp_internal_close(struct exp_internal **in, struct svc *svc);

#endif
