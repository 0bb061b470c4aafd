/* exp_xlsx: the xlsx export, the only caller of libxlsxwriter. The
 * workbook is written in constant-memory mode (one row in memory per sheet;
 * the rest in temp files under tmpdir), so memory stays flat however many
 * sessions go in. Sheets: Summary (the cards with their states, the
 * period, the zone, when it was made, where the sessions are), Daily usage
 * (per type and local date), Sessions (every field of SPEC.md section 3.1;
 * past max_rows rows a sheet, they go on "Sessions (2)", ...), Licenses.
 * Text from outside is only ever written as a string cell, never as a
 * formula. Private to exporter/. */
#ifndef EXP_XLSX_H
#define EXP_XLSX_H
#include "pb.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXP_XLSX_EXCEL_ROWS 1048576u /* rows of an Excel sheet */

/* Row split: how many session rows fit a sheet of max_rows rows (a header
 * row included), on which sheet (0 = "Sessions") and row (1 = under the
 * header) session number i (from 0) goes, and how many sheets n sessions
 * need (at least one: an empty Sessions sheet still has its header). */
uint64_t exp_xlsx_per_sheet(uint32_t max_rows);
void exp_xlsx_place(uint64_t i, uint32_t max_rows, uint32_t *sheet, uint32_t *row);
uint32_t exp_xlsx_sheets(uint64_t n, uint32_t max_rows);
/* "Sessions" for sheet 0, "Sessions (2)" for sheet 1, ... */
void exp_xlsx_sheet_name(uint32_t sheet, char *buf, size_t len);

struct exp_xlsx_summary {
    const char *org, *type, *timezone;
    const char *user;                  /* the sessions are this user's only, else NULL */
    const char *from, *to;             /* the local dates exported */
    const char *asked_from, *asked_to; /* as asked, when clamping moved them (else NULL) */
    bool sessions_cut;                 /* sessions are kept for fewer days than the period has */
    const char *sessions_from;         /* their first date, NULL when none is kept */
    int64_t session_days;              /* how many days sessions are kept */
    int64_t generated_ms;
    const json_t *stats;    /* GET /stats's answer (cards), or NULL */
    const json_t *licenses; /* GET /licenses's answer */
};

struct exp_xlsx;

/* A workbook to be written at path. max_rows: rows per Sessions sheet
 * (0 or more than Excel's: Excel's). NULL with err when it cannot start. */
struct exp_xlsx *exp_xlsx_new(const char *path, const char *tmpdir, uint32_t max_rows, char *err,
                              size_t errlen);
/* One row of the Daily usage sheet: a type's usage on one local date. */
void exp_xlsx_daily(struct exp_xlsx *x, const char *type, int64_t owned,
                    const Licmon__V1__UsageRow *r);
/* The next session record. */
void exp_xlsx_session(struct exp_xlsx *x, const Licmon__V1__SessionRecord *s);
uint64_t exp_xlsx_session_count(const struct exp_xlsx *x);
/* Writes Summary and Licenses and closes the file. 0, or -1 with err. */
int exp_xlsx_finish(struct exp_xlsx **x, const struct exp_xlsx_summary *sum, char *err,
                    size_t errlen);
/* Drops an unfinished workbook (its temp files go; the file at path may
 * remain and is the caller's to remove). */
void exp_xlsx_abandon(struct exp_xlsx **x);

#endif
