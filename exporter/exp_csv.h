/* exp_csv: the session table as CSV (RFC 4180: comma-separated, CRLF line
 * ends, a field quoted when it holds a comma, quote, CR or LF, quotes
 * doubled; UTF-8, no byte-order mark), and also when it holds ; or tab,
 * the separators of spreadsheets in other locales. A text cell a
 * spreadsheet would run as a formula (starting with = + - @ tab or CR) gets
 * a leading ' so it stays inert text. Pure. Private to exporter/. */
#ifndef EXP_CSV_H
#define EXP_CSV_H
#include "exp_buf.h"
#include "pb.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Does this text start like a formula? */
bool exp_csv_formula_like(const char *s);
/* Appends one field; text fields are neutralised, others (numbers and
 * instants we wrote ourselves) are not. */
void exp_csv_field(struct exp_buf *b, const char *s, bool text);
/* "[h]:mm:ss" of a number of seconds (hours run past 24; negative as 0). */
char *exp_csv_duration(int64_t seconds, char *buf, size_t len);
/* The header line and one line per session record (both end with CRLF). */
void exp_csv_session_header(struct exp_buf *b);
void exp_csv_session_row(struct exp_buf *b, const Licmon__V1__SessionRecord *s);

#endif
