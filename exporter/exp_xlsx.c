/* exp_xlsx: the xlsx export over libxlsxwriter (see exp_xlsx.h). Rows of a
 * sheet are written in order (constant-memory mode needs that); Summary and
 * Licenses are written last, so the Summary can say where every session
 * went. Instants are Excel date-times in UTC; durations are both [h]:mm:ss
 * cells and whole seconds. */
#include "exp_xlsx.h"
#include "exp_buf.h"
#include "exp_csv.h"
#include "exp_view.h"
#include "timeutil.h"
#include "xmem.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xlsxwriter.h>

#define XLSX_EPOCH_DAYS 25569.0 /* 1970-01-01 as an Excel serial date */
#define XLSX_SESSION_COLS 15

/* Compression level of the zip. libxlsxwriter asks zlib (through minizip)
 * for the default level 6 and has no setting for it; on a million session
 * rows deflate at level 6 is ~70% of the export's time, level 1 is about
 * three times faster for a file ~30% bigger. So while this thread closes a
 * workbook, the deflateInit2_ below (which the program's own symbol table
 * puts ahead of zlib's) asks for level 1; every other caller, and this
 * thread at any other time, gets what it asked for. Declared without
 * zlib.h: the pointer arguments are passed through untouched. */
#define XLSX_DEFLATE_LEVEL 1
static __thread bool xlsx_closing;

int deflateInit2_(void *strm, int level, int method, int window_bits, int mem_level, int strategy,
                  const char *version, int stream_size);
int deflateInit2_(void *strm, int level, int method, int window_bits, int mem_level, int strategy,
                  const char *version, int stream_size)
{
    typedef int (*init_fn)(void *, int, int, int, int, int, const char *, int);
    static _Atomic(init_fn) real;
    init_fn f = real;
    if (!f) {
        f = (init_fn)dlsym(RTLD_NEXT, "deflateInit2_");
        if (!f)
            return -2; /* Z_STREAM_ERROR: no zlib below us */
        real = f;
    }
    return f(strm, xlsx_closing ? XLSX_DEFLATE_LEVEL : level, method, window_bits, mem_level,
             strategy, version, stream_size);
}

uint64_t exp_xlsx_per_sheet(uint32_t max_rows)
{
    if (max_rows < 2 || max_rows > EXP_XLSX_EXCEL_ROWS)
        max_rows = EXP_XLSX_EXCEL_ROWS;
    return (uint64_t)max_rows - 1;
}

void exp_xlsx_place(uint64_t i, uint32_t max_rows, uint32_t *sheet, uint32_t *row)
{
    uint64_t per = exp_xlsx_per_sheet(max_rows);
    *sheet = (uint32_t)(i / per);
    *row = (uint32_t)(i % per) + 1;
}

uint32_t exp_xlsx_sheets(uint64_t n, uint32_t max_rows)
{
    uint64_t per = exp_xlsx_per_sheet(max_rows);
    return n == 0 ? 1 : (uint32_t)((n + per - 1) / per);
}

void exp_xlsx_sheet_name(uint32_t sheet, char *buf, size_t len)
{
    if (sheet == 0)
        snprintf(buf, len, "Sessions");
    else
        snprintf(buf, len, "Sessions (%u)", sheet + 1);
}

struct exp_xlsx {
    lxw_workbook *wb;
    lxw_worksheet *summary, *daily, *sess;
    uint32_t max_rows;
    uint32_t sheet;     /* index of sess */
    uint32_t daily_row; /* next row of daily */
    uint64_t n_sessions;
    lxw_format *f_title, *f_head, *f_bold, *f_time, *f_dur, *f_pct, *f_num2;
    lxw_format *f_state[4]; /* ok, minor, major, non_applicable */
    struct exp_buf scratch;
};

static lxw_format *xlsx_state_format(struct exp_xlsx *x, const char *state)
{
    if (state && !strcmp(state, "ok"))
        return x->f_state[0];
    if (state && !strcmp(state, "minor"))
        return x->f_state[1];
    if (state && !strcmp(state, "major"))
        return x->f_state[2];
    return x->f_state[3];
}

/* Writes text from outside as a string cell: never a formula. Bytes that
 * are not UTF-8 become U+FFFD (an xlsx must be valid XML); libxlsxwriter
 * escapes control characters itself (_xHHHH_). */
static void xlsx_text(struct exp_xlsx *x, lxw_worksheet *ws, uint32_t row, uint16_t col,
                      const char *s, lxw_format *f)
{
    if (!s || !*s)
        return;
    size_t n = strlen(s);
    if (!exp_utf8_valid(s, n)) {
        exp_buf_reset(&x->scratch);
        const unsigned char *p = (const unsigned char *)s;
        for (size_t i = 0; i < n;) {
            size_t k = exp_utf8_seq(p + i, n - i);
            exp_buf_add(&x->scratch, k ? (const char *)p + i : "\xef\xbf\xbd", k ? k : 3);
            i += k ? k : 1;
        }
        s = x->scratch.data;
    }
    worksheet_write_string(ws, row, col, s, f);
}

static void xlsx_instant(struct exp_xlsx *x, lxw_worksheet *ws, uint32_t row, uint16_t col,
                         int64_t ms)
{
    worksheet_write_number(ws, row, col, XLSX_EPOCH_DAYS + (double)ms / 86400000.0, x->f_time);
}

static void xlsx_header(struct exp_xlsx *x, lxw_worksheet *ws, const char *const *names,
                        const double *widths, uint16_t n)
{
    for (uint16_t c = 0; c < n; c++) {
        worksheet_write_string(ws, 0, c, names[c], x->f_head);
        worksheet_set_column(ws, c, c, widths[c], NULL);
    }
    worksheet_freeze_panes(ws, 1, 0);
}

static const char *const sess_names[XLSX_SESSION_COLS] = {"session_id",
                                                          "org",
                                                          "user",
                                                          "license_type",
                                                          "requested_type",
                                                          "start (UTC)",
                                                          "last_activity (UTC)",
                                                          "end (UTC)",
                                                          "end reason",
                                                          "user inactivity [h]:mm:ss",
                                                          "user_inactivity_s",
                                                          "license inactivity [h]:mm:ss",
                                                          "license_inactivity_s",
                                                          "license_released_at (UTC)",
                                                          "license_tail_s"};

static void xlsx_sessions_sheet(struct exp_xlsx *x, uint32_t index)
{
    static const double widths[XLSX_SESSION_COLS] = {26, 12, 30, 14, 14, 23, 23, 23,
                                                     16, 14, 12, 14, 12, 23, 12};
    char name[32];
    exp_xlsx_sheet_name(index, name, sizeof(name));
    x->sess = workbook_add_worksheet(x->wb, name);
    x->sheet = index;
    xlsx_header(x, x->sess, sess_names, widths, XLSX_SESSION_COLS);
}

static void xlsx_sessions_filter(struct exp_xlsx *x, uint32_t last_row)
{
    if (x->sess && last_row > 0)
        worksheet_autofilter(x->sess, 0, 0, last_row, XLSX_SESSION_COLS - 1);
}

static lxw_format *xlsx_fill(lxw_workbook *wb, lxw_color_t bg, lxw_color_t fg)
{
    lxw_format *f = workbook_add_format(wb);
    format_set_bg_color(f, bg);
    format_set_pattern(f, LXW_PATTERN_SOLID);
    format_set_font_color(f, fg);
    format_set_bold(f);
    return f;
}

struct exp_xlsx *exp_xlsx_new(const char *path, const char *tmpdir, uint32_t max_rows, char *err,
                              size_t errlen)
{
    lxw_workbook_options opt = {.constant_memory = LXW_TRUE,
                                .tmpdir = (char *)(tmpdir && *tmpdir ? tmpdir : NULL),
                                .use_zip64 = LXW_FALSE};
    lxw_workbook *wb = workbook_new_opt(path, &opt);
    if (!wb) {
        snprintf(err, errlen, "cannot start a workbook at %s", path);
        return NULL;
    }
    struct exp_xlsx *x = xcalloc(1, sizeof(*x));
    x->wb = wb;
    x->max_rows = max_rows < 2 || max_rows > EXP_XLSX_EXCEL_ROWS ? EXP_XLSX_EXCEL_ROWS : max_rows;
    x->f_title = workbook_add_format(wb);
    format_set_bold(x->f_title);
    format_set_font_size(x->f_title, 14);
    x->f_head = workbook_add_format(wb);
    format_set_bold(x->f_head);
    format_set_bottom(x->f_head, LXW_BORDER_THIN);
    format_set_bg_color(x->f_head, 0xE7E6E6);
    format_set_pattern(x->f_head, LXW_PATTERN_SOLID);
    x->f_bold = workbook_add_format(wb);
    format_set_bold(x->f_bold);
    x->f_time = workbook_add_format(wb);
    format_set_num_format(x->f_time, "yyyy-mm-dd hh:mm:ss.000");
    x->f_dur = workbook_add_format(wb);
    format_set_num_format(x->f_dur, "[h]:mm:ss");
    x->f_pct = workbook_add_format(wb);
    format_set_num_format(x->f_pct, "0.0%");
    x->f_num2 = workbook_add_format(wb);
    format_set_num_format(x->f_num2, "0.00");
    x->f_state[0] = xlsx_fill(wb, 0xC6EFCE, 0x006100);
    x->f_state[1] = xlsx_fill(wb, 0xFFEB9C, 0x9C5700);
    x->f_state[2] = xlsx_fill(wb, 0xFFC7CE, 0x9C0006);
    x->f_state[3] = xlsx_fill(wb, 0xEDEDED, 0x595959);
    lxw_doc_properties props = {.title = "licmon export", .author = "licmon"};
    workbook_set_properties(wb, &props);

    x->summary = workbook_add_worksheet(wb, "Summary");
    x->daily = workbook_add_worksheet(wb, "Daily usage");
    static const char *const daily_names[] = {"license type",
                                              "date",
                                              "peak (concurrent seats)",
                                              "distinct users",
                                              "owned",
                                              "% of owned",
                                              "logins",
                                              "denials",
                                              "denied users",
                                              "downgrades",
                                              "downgraded users"};
    static const double daily_widths[] = {16, 12, 22, 14, 8, 11, 8, 8, 12, 11, 16};
    xlsx_header(x, x->daily, daily_names, daily_widths, 11);
    x->daily_row = 1;
    xlsx_sessions_sheet(x, 0);
    return x;
}

void exp_xlsx_daily(struct exp_xlsx *x, const char *type, int64_t owned,
                    const Licmon__V1__UsageRow *r)
{
    if (x->daily_row >= EXP_XLSX_EXCEL_ROWS)
        return; /* 64 types x 5 years fit many times over; never reached */
    uint32_t row = x->daily_row++;
    lxw_worksheet *ws = x->daily;
    xlsx_text(x, ws, row, 0, type, NULL);
    xlsx_text(x, ws, row, 1, r->date, NULL);
    worksheet_write_number(ws, row, 2, (double)r->peak, NULL);
    worksheet_write_number(ws, row, 3, (double)r->users, NULL);
    if (exp_view_has_capacity(type))
        worksheet_write_number(ws, row, 4, (double)owned, NULL);
    if (owned > 0) /* shown as 0.0%: cut to that, so 79.97% does not read 80.0% */
        worksheet_write_number(
            ws, row, 5, exp_view_cut(exp_view_pct((double)r->peak, owned), 1) / 100.0, x->f_pct);
    worksheet_write_number(ws, row, 6, (double)r->logins, NULL);
    worksheet_write_number(ws, row, 7, (double)r->denials, NULL);
    worksheet_write_number(ws, row, 8, (double)r->denied_users, NULL);
    worksheet_write_number(ws, row, 9, (double)r->downgrades, NULL);
    worksheet_write_number(ws, row, 10, (double)r->downgraded_users, NULL);
}

void exp_xlsx_session(struct exp_xlsx *x, const Licmon__V1__SessionRecord *s)
{
    uint32_t sheet, row;
    exp_xlsx_place(x->n_sessions, x->max_rows, &sheet, &row);
    if (sheet != x->sheet) {
        xlsx_sessions_filter(x, (uint32_t)exp_xlsx_per_sheet(x->max_rows));
        xlsx_sessions_sheet(x, sheet);
    }
    x->n_sessions++;
    lxw_worksheet *ws = x->sess;
    bool open = s->end_reason == LICMON__V1__END_REASON__OPEN;
    xlsx_text(x, ws, row, 0, s->session_id, NULL);
    xlsx_text(x, ws, row, 1, s->org, NULL);
    xlsx_text(x, ws, row, 2, s->user, NULL);
    xlsx_text(x, ws, row, 3, s->license_type, NULL);
    xlsx_text(x, ws, row, 4, s->requested_type, NULL);
    xlsx_instant(x, ws, row, 5, s->start_ms);
    xlsx_instant(x, ws, row, 6, s->last_activity_ms);
    if (!open && s->end_ms)
        xlsx_instant(x, ws, row, 7, s->end_ms);
    worksheet_write_string(ws, row, 8, pb_end_reason_name(s->end_reason), NULL);
    if (s->license_released_at_ms)
        xlsx_instant(x, ws, row, 13, s->license_released_at_ms);
    if (open) /* no end: none of the metrics measured to it */
        return;
    worksheet_write_number(ws, row, 9, (double)s->user_inactivity_s / 86400.0, x->f_dur);
    worksheet_write_number(ws, row, 10, (double)s->user_inactivity_s, NULL);
    worksheet_write_number(ws, row, 11, (double)s->license_inactivity_s / 86400.0, x->f_dur);
    worksheet_write_number(ws, row, 12, (double)s->license_inactivity_s, NULL);
    if (exp_view_tail_known(s))
        worksheet_write_number(ws, row, 14, (double)s->license_tail_s, NULL);
}

uint64_t exp_xlsx_session_count(const struct exp_xlsx *x)
{
    return x->n_sessions;
}

/* ---- Summary ---- */

static const char *xj_str(const json_t *o, const char *path1, const char *key)
{
    const json_t *v = json_object_get(path1 ? json_object_get(o, path1) : o, key);
    return json_string_value(v);
}

static double xj_num(const json_t *o, const char *path1, const char *key, bool *present)
{
    const json_t *v = json_object_get(path1 ? json_object_get(o, path1) : o, key);
    if (present)
        *present = json_is_number(v);
    return json_number_value(v);
}

static void sum_pair(struct exp_xlsx *x, uint32_t *row, const char *label, const char *value)
{
    worksheet_write_string(x->summary, *row, 0, label, x->f_bold);
    xlsx_text(x, x->summary, *row, 1, value, NULL);
    (*row)++;
}

/* One card row: name, value, detail, state (colour and words). */
static void sum_card(struct exp_xlsx *x, uint32_t row, const char *name, const char *value,
                     const char *detail, const char *state)
{
    worksheet_write_string(x->summary, row, 0, name, NULL);
    xlsx_text(x, x->summary, row, 1, value, NULL);
    xlsx_text(x, x->summary, row, 2, detail, NULL);
    char words[64];
    const char *icon = !state || !strcmp(state, "non_applicable") ? "\xe2\x80\x93" /* – */
                       : !strcmp(state, "ok")                     ? "\xe2\x9c\x93" /* ✓ */
                       : !strcmp(state, "minor")                  ? "\xe2\x96\xb2" /* ▲ */
                                                                  : "\xe2\x9c\x96";                 /* ✖ */
    snprintf(words, sizeof(words), "%s %s", icon, exp_view_state_words(state));
    worksheet_write_string(x->summary, row, 3, words, xlsx_state_format(x, state));
}

/* The cards of type (or "all"): where one does not apply, no percentage of
 * the seats and no threshold in seats, as on the dashboard. */
static void sum_cards(struct exp_xlsx *x, uint32_t *row, const json_t *st, const char *type,
                      const char *model)
{
    char v[96], d[200];
    bool has;
    long long k;
    static const char *const head[] = {"Card", "Value", "Detail", "State"};
    for (uint16_t c = 0; c < 4; c++)
        worksheet_write_string(x->summary, *row, c, head[c], x->f_head);
    (*row)++;
    int64_t owned = (int64_t)xj_num(st, NULL, "owned", NULL);
    double pct = xj_num(st, "average_daily_usage", "pct", &has);
    const char *state = xj_str(st, "average_daily_usage", "state");
    has = has && exp_view_card_applies(state);
    snprintf(v, sizeof(v), "%.2f seats", xj_num(st, "average_daily_usage", "value", NULL));
    if (has)
        snprintf(d, sizeof(d), "%.1f%% of %lld owned", exp_view_cut(pct, 1), (long long)owned);
    else
        snprintf(d, sizeof(d), "mean of the daily peaks");
    sum_card(x, (*row)++, "Average daily license usage", v, d, state);

    const char *at = xj_str(st, "peak_usage", "at");
    pct = xj_num(st, "peak_usage", "pct", &has);
    state = xj_str(st, "peak_usage", "state");
    has = has && exp_view_card_applies(state);
    snprintf(v, sizeof(v), "%lld seats", (long long)xj_num(st, "peak_usage", "value", NULL));
    snprintf(d, sizeof(d), "%s%s%s%s", at ? "first reached " : "no use in the period", at ? at : "",
             has ? ", " : "", "");
    if (has) {
        size_t l = strlen(d);
        snprintf(d + l, sizeof(d) - l, "%.1f%% of %lld owned", exp_view_cut(pct, 1),
                 (long long)owned);
    }
    sum_card(x, (*row)++, "Peak license usage", v, d, state);

    k = (long long)xj_num(st, "days_over_threshold", "value", NULL);
    snprintf(v, sizeof(v), "%lld day%s", k, k == 1 ? "" : "s");
    state = xj_str(st, "days_over_threshold", "state");
    if (exp_view_card_applies(state))
        snprintf(d, sizeof(d), "%lld at capacity (threshold %lld seats = %lld%%)",
                 (long long)xj_num(st, "days_over_threshold", "days_at_capacity", NULL),
                 (long long)xj_num(st, NULL, "threshold_count", NULL),
                 (long long)xj_num(st, NULL, "threshold_pct", NULL));
    else
        snprintf(d, sizeof(d), "%s", exp_view_na_reason(type, model, owned));
    sum_card(x, (*row)++, "Days over license threshold", v, d, state);

    k = (long long)xj_num(st, "users_denied", "users", NULL);
    snprintf(v, sizeof(v), "%lld user%s", k, k == 1 ? "" : "s");
    k = (long long)xj_num(st, "users_denied", "events", NULL);
    snprintf(d, sizeof(d), "%lld denial%s", k, k == 1 ? "" : "s");
    sum_card(x, (*row)++, "Users denied access", v, d, xj_str(st, "users_denied", "state"));

    k = (long long)xj_num(st, "users_downgraded", "users", NULL);
    snprintf(v, sizeof(v), "%lld user%s", k, k == 1 ? "" : "s");
    k = (long long)xj_num(st, "users_downgraded", "events", NULL);
    snprintf(d, sizeof(d), "%lld downgrade%s", k, k == 1 ? "" : "s");
    sum_card(x, (*row)++, "Users downgraded", v, d, xj_str(st, "users_downgraded", "state"));

    snprintf(v, sizeof(v), "%lld in use", (long long)xj_num(st, "current_usage", "in_use", NULL));
    snprintf(d, sizeof(d), "%lld owned, %lld free",
             (long long)xj_num(st, "current_usage", "owned", NULL),
             (long long)xj_num(st, "current_usage", "free", NULL));
    worksheet_write_string(x->summary, *row, 0, "Current usage", NULL);
    xlsx_text(x, x->summary, *row, 1, v, NULL);
    xlsx_text(x, x->summary, *row, 2, d, NULL);
    (*row)++;

    double days_left = xj_num(st, "license_expiration", "days_left", &has);
    const char *expires = xj_str(st, "license_expiration", "expires");
    if (has) {
        snprintf(v, sizeof(v), days_left < 0 ? "expired %lld days ago" : "%lld days left",
                 (long long)(days_left < 0 ? -days_left : days_left));
        snprintf(d, sizeof(d), "expires %s", expires ? expires : "");
    } else {
        snprintf(v, sizeof(v), "no expiry date");
        d[0] = '\0';
    }
    sum_card(x, (*row)++, "License expiration", v, d, xj_str(st, "license_expiration", "state"));
}

static void sum_write(struct exp_xlsx *x, const struct exp_xlsx_summary *sum)
{
    lxw_worksheet *ws = x->summary;
    worksheet_set_column(ws, 0, 0, 30, NULL);
    worksheet_set_column(ws, 1, 1, 26, NULL);
    worksheet_set_column(ws, 2, 2, 56, NULL);
    worksheet_set_column(ws, 3, 3, 18, NULL);
    uint32_t row = 0;
    worksheet_write_string(ws, row++, 0, "licmon license usage export", x->f_title);
    row++;
    char buf[256], t[40];
    sum_pair(x, &row, "Organization", sum->org);
    sum_pair(x, &row, "License type", sum->type);
    if (sum->user) { /* the filter applies to the sessions alone */
        worksheet_write_string(ws, row, 2,
                               "only this user's sessions; the cards and the daily usage cover "
                               "every user",
                               NULL);
        sum_pair(x, &row, "Sessions of user", sum->user);
    }
    snprintf(buf, sizeof(buf), "%s to %s (local dates, both included)", sum->from, sum->to);
    sum_pair(x, &row, "Period", buf);
    if (sum->asked_from && sum->asked_to) {
        snprintf(buf, sizeof(buf),
                 "%s to %s was asked; only the dates that exist (within retention, up to "
                 "today) are exported",
                 sum->asked_from, sum->asked_to);
        sum_pair(x, &row, "Note", buf);
    }
    if (sum->sessions_cut) {
        if (sum->sessions_from)
            snprintf(buf, sizeof(buf),
                     "%lld days: the Sessions sheets start on %s (the daily usage covers the "
                     "whole period)",
                     (long long)sum->session_days, sum->sessions_from);
        else
            snprintf(buf, sizeof(buf),
                     "%lld days: none of this period's sessions are kept (the daily usage "
                     "covers the whole period)",
                     (long long)sum->session_days);
        sum_pair(x, &row, "Sessions kept", buf);
    }
    sum_pair(x, &row, "Reporting time zone", sum->timezone);
    snprintf(buf, sizeof(buf), "%s (UTC)", time_format_rfc3339(sum->generated_ms, t, sizeof(t)));
    sum_pair(x, &row, "Generated at", buf);
    sum_pair(x, &row, "Times on the Sessions sheets", "UTC");
    row++;
    if (sum->stats) {
        sum_cards(x, &row, sum->stats, sum->type, exp_view_license_model(sum->licenses, sum->type));
        row++;
    }
    uint32_t sheets = exp_xlsx_sheets(x->n_sessions, x->max_rows);
    struct exp_buf names = {0};
    for (uint32_t i = 0; i < sheets; i++) {
        char name[32];
        exp_xlsx_sheet_name(i, name, sizeof(name));
        if (i)
            exp_buf_adds(&names, i + 1 == sheets ? " and " : ", ");
        exp_buf_printf(&names, "\"%s\"", name);
    }
    snprintf(buf, sizeof(buf), "%llu session rows", (unsigned long long)x->n_sessions);
    worksheet_write_string(ws, row, 0, "Sessions", x->f_bold);
    worksheet_write_string(ws, row, 1, buf, NULL);
    char *where = sheets > 1
                      ? xasprintf("split over %u sheets of at most %llu rows each: %s", sheets,
                                  (unsigned long long)exp_xlsx_per_sheet(x->max_rows), names.data)
                      : xasprintf("on the sheet %s", names.data);
    worksheet_write_string(ws, row++, 2, where, NULL);
    free(where);
    exp_buf_free(&names);
}

static void lic_write(struct exp_xlsx *x, const json_t *lic)
{
    lxw_worksheet *ws = workbook_add_worksheet(x->wb, "Licenses");
    static const char *const names[] = {"license type", "model",     "owned",
                                        "expires",      "days left", "expiration state",
                                        "threshold %",  "in use now"};
    static const double widths[] = {16, 10, 8, 12, 10, 20, 12, 11};
    xlsx_header(x, ws, names, widths, 8);
    uint32_t row = 1;
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(lic, "licenses"), i, l)
    {
        xlsx_text(x, ws, row, 0, xj_str(l, NULL, "type"), NULL);
        xlsx_text(x, ws, row, 1, xj_str(l, NULL, "model"), NULL);
        worksheet_write_number(ws, row, 2, xj_num(l, NULL, "owned", NULL), NULL);
        xlsx_text(x, ws, row, 3, xj_str(l, NULL, "expires"), NULL);
        bool has;
        double d = xj_num(l, NULL, "days_left", &has);
        if (has)
            worksheet_write_number(ws, row, 4, d, NULL);
        const char *st = xj_str(l, NULL, "expiration_state");
        char words[64];
        snprintf(words, sizeof(words), "%s", exp_view_state_words(st));
        worksheet_write_string(ws, row, 5, words, xlsx_state_format(x, st));
        worksheet_write_number(ws, row, 6, xj_num(l, NULL, "threshold_pct", NULL), NULL);
        worksheet_write_number(ws, row, 7, xj_num(l, NULL, "in_use", NULL), NULL);
        row++;
    }
    row++;
    worksheet_write_string(ws, row++, 0, "Integrations", x->f_head);
    json_t *v;
    json_array_foreach(json_object_get(lic, "integrations"), i, v)
        xlsx_text(x, ws, row++, 0, json_string_value(v), NULL);
}

int exp_xlsx_finish(struct exp_xlsx **xp, const struct exp_xlsx_summary *sum, char *err,
                    size_t errlen)
{
    struct exp_xlsx *x = *xp;
    *xp = NULL;
    uint32_t last_sheet, last_row;
    if (x->n_sessions) {
        exp_xlsx_place(x->n_sessions - 1, x->max_rows, &last_sheet, &last_row);
        xlsx_sessions_filter(x, last_row);
    }
    if (x->daily_row > 1)
        worksheet_autofilter(x->daily, 0, 0, x->daily_row - 1, 10);
    if (sum->licenses)
        lic_write(x, sum->licenses);
    sum_write(x, sum);
    xlsx_closing = true;
    lxw_error rc = workbook_close(x->wb);
    xlsx_closing = false;
    exp_buf_free(&x->scratch);
    free(x);
    if (rc != LXW_NO_ERROR) {
        snprintf(err, errlen, "the workbook could not be written: %s", lxw_strerror(rc));
        return -1;
    }
    return 0;
}

void exp_xlsx_abandon(struct exp_xlsx **xp)
{
    struct exp_xlsx *x = *xp;
    if (!x)
        return;
    lxw_workbook_free(x->wb);
    exp_buf_free(&x->scratch);
    free(x);
    *xp = NULL;
}
