/* exp_csv: CSV writing and formula neutralising (see exp_csv.h). */
#include "exp_csv.h"
#include "exp_view.h"
#include "timeutil.h"

#include <stdio.h>
#include <string.h>

bool exp_csv_formula_like(const char *s)
{
    return s && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' || s[0] == '\t' ||
                 s[0] == '\r');
}

void exp_csv_field(struct exp_buf *b, const char *s, bool text)
{
    s = s ? s : "";
    bool neutral = text && exp_csv_formula_like(s);
    /* ; and tab too: a spreadsheet whose list separator is ; (many locales)
     * or tab would split the field there, and a formula after the split
     * would run; quoted, it is one cell */
    bool quote = strpbrk(s, ",\"\r\n;\t") != NULL;
    if (!quote && !neutral) {
        exp_buf_adds(b, s);
        return;
    }
    if (quote)
        exp_buf_addc(b, '"');
    if (neutral)
        exp_buf_addc(b, '\'');
    for (const char *p = s;;) {
        const char *q = strchr(p, '"');
        if (!q) {
            exp_buf_adds(b, p);
            break;
        }
        exp_buf_add(b, p, (size_t)(q - p + 1));
        exp_buf_addc(b, '"');
        p = q + 1;
    }
    if (quote)
        exp_buf_addc(b, '"');
}

char *exp_csv_duration(int64_t seconds, char *buf, size_t len)
{
    if (seconds < 0)
        seconds = 0;
    snprintf(buf, len, "%lld:%02d:%02d", (long long)(seconds / 3600), (int)(seconds / 60 % 60),
             (int)(seconds % 60));
    return buf;
}

void exp_csv_session_header(struct exp_buf *b)
{
    exp_buf_adds(b, "session_id,org,user,license_type,requested_type,start,last_activity,end,"
                    "end_reason,user_inactivity,user_inactivity_s,license_inactivity,"
                    "license_inactivity_s,license_released_at,license_tail_s\r\n");
}

static void csv_instant(struct exp_buf *b, int64_t ms, bool empty)
{
    exp_buf_addc(b, ',');
    if (!empty) {
        char t[40];
        exp_buf_adds(b, time_format_rfc3339(ms, t, sizeof(t)));
    }
}

/* "h:mm:ss,seconds", or two empty cells when absent */
static void csv_seconds(struct exp_buf *b, int64_t s, bool absent, char *d, size_t dlen)
{
    if (!absent)
        exp_buf_adds(b, exp_csv_duration(s, d, dlen));
    exp_buf_addc(b, ',');
    if (!absent)
        exp_buf_int(b, s);
}

void exp_csv_session_row(struct exp_buf *b, const Licmon__V1__SessionRecord *s)
{
    char d[32];
    bool open = s->end_reason == LICMON__V1__END_REASON__OPEN;
    exp_csv_field(b, s->session_id, true);
    exp_buf_addc(b, ',');
    exp_csv_field(b, s->org, true);
    exp_buf_addc(b, ',');
    exp_csv_field(b, s->user, true);
    exp_buf_addc(b, ',');
    exp_csv_field(b, s->license_type, true);
    exp_buf_addc(b, ',');
    exp_csv_field(b, s->requested_type, true);
    csv_instant(b, s->start_ms, false);
    csv_instant(b, s->last_activity_ms, false);
    csv_instant(b, s->end_ms, open || s->end_ms == 0);
    exp_buf_addc(b, ',');
    exp_buf_adds(b, pb_end_reason_name(s->end_reason));
    exp_buf_addc(b, ',');
    /* an open session has no end: its metrics are empty cells */
    csv_seconds(b, s->user_inactivity_s, open, d, sizeof(d));
    exp_buf_addc(b, ',');
    csv_seconds(b, s->license_inactivity_s, open, d, sizeof(d));
    csv_instant(b, s->license_released_at_ms, s->license_released_at_ms == 0);
    exp_buf_addc(b, ',');
    if (exp_view_tail_known(s))
        exp_buf_int(b, s->license_tail_s);
    exp_buf_adds(b, "\r\n");
}
