/* exp_report: the print-ready HTML report of a selection (GET /report):
 * the daily chart as inline SVG (peak seats as bars, distinct users as a
 * line, owned and threshold as dashed lines), the cards with their state
 * in colour, icon and words, the license details, the period and zone.
 * No scripts; print CSS for A4 or Letter. Pure: everything comes in.
 * Private to exporter/. */
#ifndef EXP_REPORT_H
#define EXP_REPORT_H
#include "exp_params.h"
#include "pb.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct exp_report_in {
    const char *org, *type, *timezone;
    const char *from, *to;             /* local dates of the report */
    const char *asked_from, *asked_to; /* when clamping moved them, else NULL */
    bool empty;                        /* nothing of the period exists */
    enum exp_paper paper;
    int64_t generated_ms;
    const json_t *stats;    /* GET /stats's answer */
    const json_t *licenses; /* GET /licenses's answer */
    Licmon__V1__UsageRow *const *rows;
    size_t n_rows;
};

/* The page (caller frees), *len its length. */
char *exp_report_html(const struct exp_report_in *in, size_t *len);
/* Just the chart (caller frees): an <svg> element. */
char *exp_report_chart(Licmon__V1__UsageRow *const *rows, size_t n, int64_t owned,
                       int64_t threshold_count, size_t *len);

#endif
