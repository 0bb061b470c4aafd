/* agg_query: answers the exporter's queries (licenses, current sessions,
 * settings) from the aggregator's state. */
#ifndef LICMON_AGG_QUERY_H
#define LICMON_AGG_QUERY_H
#include "agg_state.h"
#include "pb.h"

/* Fills rep->query for req (a Query); rep memory is released by
 * agg_query_clear. Returns 0, or -1 with rep->error set. */
int agg_query_answer(const struct agg_state *st, const Licmon__V1__Query *q,
                     Licmon__V1__Reply *rep);
void agg_query_clear(Licmon__V1__Reply *rep);

#endif
