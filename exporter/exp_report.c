/* exp_report: the HTML report (see exp_report.h). Every piece of text from
 * outside (org, type, integration names) goes through exp_buf_html. */
#include "exp_report.h"
#include "exp_buf.h"
#include "exp_view.h"
#include "timeutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define CH_W 960.0
#define CH_H 320.0
#define CH_L 56.0
#define CH_R 16.0
#define CH_T 16.0
#define CH_B 44.0

static const char *rp_str(const json_t *o, const char *k1, const char *k2)
{
    const json_t *v = json_object_get(k2 ? json_object_get(o, k1) : o, k2 ? k2 : k1);
    return json_string_value(v);
}

static bool rp_num(const json_t *o, const char *k1, const char *k2, double *out)
{
    const json_t *v = json_object_get(k2 ? json_object_get(o, k1) : o, k2 ? k2 : k1);
    *out = json_number_value(v);
    return json_is_number(v);
}

/* A round step for about `ticks` ticks up to max. */
static double rp_step(double max, int ticks)
{
    double raw = max / ticks;
    if (raw <= 1)
        return 1;
    double mag = pow(10, floor(log10(raw)));
    double n = raw / mag;
    return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10) * mag;
}

char *exp_report_chart(Licmon__V1__UsageRow *const *rows, size_t n, int64_t owned,
                       int64_t threshold_count, size_t *len)
{
    struct exp_buf b = {0};
    double top = (double)(owned > threshold_count ? owned : threshold_count);
    for (size_t i = 0; i < n; i++) {
        top = fmax(top, (double)rows[i]->peak);
        top = fmax(top, (double)rows[i]->users);
    }
    double step = rp_step(top > 0 ? top : 1, 5);
    double ymax = ceil((top > 0 ? top : 1) / step) * step;
    if (ymax < top * 1.05)
        ymax += step;
    double pw = CH_W - CH_L - CH_R, ph = CH_H - CH_T - CH_B;
#define YPOS(v) (CH_T + ph - (v) / ymax * ph)
    exp_buf_printf(&b,
                   "<svg class=\"chart\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" "
                   "aria-labelledby=\"chart-title chart-desc\" "
                   "xmlns=\"http://www.w3.org/2000/svg\">\n"
                   "<title id=\"chart-title\">Daily license usage</title>\n"
                   "<desc id=\"chart-desc\">Bars: peak concurrent seats per day; line with "
                   "dots: distinct users per day%s%s.</desc>\n",
                   CH_W, CH_H, owned > 0 ? "; dashed line: seats owned" : "",
                   threshold_count > 0 && threshold_count != owned ? "; dotted line: the threshold"
                                                                   : "");
    /* grid and y axis */
    for (double v = 0; v <= ymax + step / 2; v += step) {
        double y = YPOS(v);
        exp_buf_printf(&b,
                       "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>"
                       "<text x=\"%.1f\" y=\"%.1f\" class=\"ylab\">%.0f</text>\n",
                       CH_L, y, CH_W - CH_R, y, CH_L - 6, y + 4, v);
    }
    double slot = n ? pw / (double)n : pw;
    double bw = slot * 0.7;
    /* bars: peak seats */
    for (size_t i = 0; i < n; i++) {
        double h = (double)rows[i]->peak / ymax * ph;
        if (h <= 0)
            continue;
        exp_buf_printf(&b,
                       "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
                       "class=\"bar\"><title>",
                       CH_L + slot * (double)i + (slot - bw) / 2, CH_T + ph - h, bw, h);
        exp_buf_html(&b, rows[i]->date);
        exp_buf_printf(&b, ": peak %lld seats, %lld distinct users</title></rect>\n",
                       (long long)rows[i]->peak, (long long)rows[i]->users);
    }
    /* line: distinct users */
    if (n) {
        exp_buf_adds(&b, "<polyline class=\"users\" points=\"");
        for (size_t i = 0; i < n; i++)
            exp_buf_printf(&b, "%s%.2f,%.2f", i ? " " : "", CH_L + slot * ((double)i + 0.5),
                           YPOS((double)rows[i]->users));
        exp_buf_adds(&b, "\"/>\n");
        if (n <= 92)
            for (size_t i = 0; i < n; i++)
                exp_buf_printf(&b, "<circle class=\"dot\" cx=\"%.2f\" cy=\"%.2f\" r=\"2.6\"/>",
                               CH_L + slot * ((double)i + 0.5), YPOS((double)rows[i]->users));
        exp_buf_addc(&b, '\n');
    }
    /* owned and threshold */
    if (owned > 0) {
        double y = YPOS((double)owned);
        exp_buf_printf(&b,
                       "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"owned\"/>"
                       "<text x=\"%.1f\" y=\"%.1f\" class=\"lab owned-lab\">owned %lld</text>\n",
                       CH_L, y, CH_W - CH_R, y, CH_W - CH_R - 4, y - 4, (long long)owned);
    }
    if (threshold_count > 0 && threshold_count != owned) {
        double y = YPOS((double)threshold_count);
        exp_buf_printf(&b,
                       "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"thr\"/>"
                       "<text x=\"%.1f\" y=\"%.1f\" class=\"lab thr-lab\">threshold %lld</text>\n",
                       CH_L, y, CH_W - CH_R, y, CH_W - CH_R - 4, y + 13,
                       (long long)threshold_count);
    }
    /* x axis: about 12 date labels at most */
    size_t every = n > 12 ? (n + 11) / 12 : 1;
    exp_buf_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"axis\"/>\n",
                   CH_L, CH_T + ph, CH_W - CH_R, CH_T + ph);
    for (size_t i = 0; i < n; i += every) {
        const char *d = rows[i]->date ? rows[i]->date : "";
        exp_buf_printf(&b, "<text x=\"%.2f\" y=\"%.1f\" class=\"xlab\">",
                       CH_L + slot * ((double)i + 0.5), CH_T + ph + 16);
        exp_buf_html(&b, strlen(d) == 10 ? d + 5 : d); /* MM-DD */
        exp_buf_adds(&b, "</text>");
    }
    if (n == 0)
        exp_buf_printf(&b,
                       "<text x=\"%.1f\" y=\"%.1f\" class=\"none\">no data in this period</text>",
                       CH_L + pw / 2, CH_T + ph / 2);
    exp_buf_adds(&b, "\n</svg>\n");
#undef YPOS
    return exp_buf_steal(&b, len);
}

static const char *rp_icon(const char *state)
{
    if (!state || !strcmp(state, "non_applicable"))
        return "&#8211;"; /* – */
    if (!strcmp(state, "ok"))
        return "&#10003;"; /* ✓ */
    if (!strcmp(state, "minor"))
        return "&#9650;"; /* ▲ */
    return "&#10006;";    /* ✖ */
}

static const char *rp_state_class(const char *state)
{
    if (state && (!strcmp(state, "ok") || !strcmp(state, "minor") || !strcmp(state, "major")))
        return state;
    return "na";
}

static void rp_badge(struct exp_buf *b, const char *state)
{
    exp_buf_printf(b, "<span class=\"badge %s\"><span aria-hidden=\"true\">%s</span> %s</span>",
                   rp_state_class(state), rp_icon(state), exp_view_state_words(state));
}

static void rp_card(struct exp_buf *b, const char *title, const char *value, const char *detail,
                    const char *state)
{
    exp_buf_printf(b, "<div class=\"card %s\"><div class=\"ct\">",
                   state ? rp_state_class(state) : "plain");
    exp_buf_html(b, title);
    exp_buf_adds(b, "</div><div class=\"cv\">");
    exp_buf_html(b, value);
    exp_buf_adds(b, "</div><div class=\"cd\">");
    exp_buf_html(b, detail);
    exp_buf_adds(b, "</div>");
    if (state)
        rp_badge(b, state);
    exp_buf_adds(b, "</div>\n");
}

/* The cards; type: the license type of the report (or "all"). Where a card
 * does not apply it shows no percentage of the seats and no threshold in
 * seats, as on the dashboard. */
static void rp_cards(struct exp_buf *b, const json_t *st, const char *type, const char *model)
{
    char v[96], d[200];
    double x, pct, owned = 0, tc = 0, tp = 0;
    rp_num(st, "owned", NULL, &owned);
    rp_num(st, "threshold_count", NULL, &tc);
    rp_num(st, "threshold_pct", NULL, &tp);
    exp_buf_adds(b, "<section class=\"cards\">\n");
    rp_num(st, "average_daily_usage", "value", &x);
    snprintf(v, sizeof(v), "%.2f", x);
    const char *state = rp_str(st, "average_daily_usage", "state");
    if (rp_num(st, "average_daily_usage", "pct", &pct) && exp_view_card_applies(state))
        snprintf(d, sizeof(d), "seats a day on average, %.1f%% of %.0f owned", exp_view_cut(pct, 1),
                 owned);
    else
        snprintf(d, sizeof(d), "seats a day on average (mean of the daily peaks)");
    rp_card(b, "Average daily license usage", v, d, state);

    rp_num(st, "peak_usage", "value", &x);
    snprintf(v, sizeof(v), "%.0f", x);
    const char *at = rp_str(st, "peak_usage", "at");
    state = rp_str(st, "peak_usage", "state");
    if (rp_num(st, "peak_usage", "pct", &pct) && exp_view_card_applies(state))
        snprintf(d, sizeof(d), "seats at once, %.1f%% of owned%s%s", exp_view_cut(pct, 1),
                 at ? "; first at " : "", at ? at : "");
    else
        snprintf(d, sizeof(d), "seats at once%s%s", at ? "; first at " : "", at ? at : "");
    rp_card(b, "Peak license usage", v, d, state);

    rp_num(st, "days_over_threshold", "value", &x);
    snprintf(v, sizeof(v), "%.0f", x);
    rp_num(st, "days_over_threshold", "days_at_capacity", &pct);
    state = rp_str(st, "days_over_threshold", "state");
    if (exp_view_card_applies(state))
        snprintf(d, sizeof(d), "days at or over %.0f seats (%.0f%%); %.0f at capacity", tc, tp,
                 pct);
    else
        snprintf(d, sizeof(d), "%s", exp_view_na_reason(type, model, (int64_t)owned));
    rp_card(b, "Days over license threshold", v, d, state);

    rp_num(st, "users_denied", "users", &x);
    rp_num(st, "users_denied", "events", &pct);
    snprintf(v, sizeof(v), "%.0f", x);
    snprintf(d, sizeof(d), "users denied a seat; denials: %.0f", pct);
    rp_card(b, "Users denied access", v, d, rp_str(st, "users_denied", "state"));

    rp_num(st, "users_downgraded", "users", &x);
    rp_num(st, "users_downgraded", "events", &pct);
    snprintf(v, sizeof(v), "%.0f", x);
    snprintf(d, sizeof(d), "users given a lower type; downgrades: %.0f", pct);
    rp_card(b, "Users downgraded", v, d, rp_str(st, "users_downgraded", "state"));

    double in_use = 0, free_seats = 0;
    rp_num(st, "current_usage", "in_use", &in_use);
    rp_num(st, "current_usage", "free", &free_seats);
    snprintf(v, sizeof(v), "%.0f", in_use);
    snprintf(d, sizeof(d), "in use now; %.0f owned, %.0f free", owned, free_seats);
    rp_card(b, "Current usage", v, d, NULL);

    const char *expires = rp_str(st, "license_expiration", "expires");
    if (rp_num(st, "license_expiration", "days_left", &x)) {
        snprintf(v, sizeof(v), "%.0f", fabs(x));
        snprintf(d, sizeof(d), "%s%s%s", x < 0 ? "days since it expired" : "days left",
                 expires ? "; expires " : "", expires ? expires : "");
    } else {
        snprintf(v, sizeof(v), "\xe2\x80\x93");
        snprintf(d, sizeof(d), "no expiry date");
    }
    rp_card(b, "License expiration", v, d, rp_str(st, "license_expiration", "state"));
    exp_buf_adds(b, "</section>\n");
}

static void rp_licenses(struct exp_buf *b, const json_t *lic)
{
    exp_buf_adds(b, "<section class=\"keep\"><h2>License details</h2>\n<table class=\"lic\">"
                    "<thead><tr><th>Type</th><th>Model</th><th class=\"n\">Owned</th>"
                    "<th class=\"n\">In use</th><th class=\"n\">Free</th><th>Expires</th>"
                    "<th class=\"n\">Days left</th><th>Expiration</th>"
                    "<th class=\"n\">Threshold</th></tr></thead>\n<tbody>\n");
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(lic, "licenses"), i, l)
    {
        double x;
        exp_buf_adds(b, "<tr><td>");
        exp_buf_html(b, rp_str(l, "type", NULL));
        exp_buf_adds(b, "</td><td>");
        exp_buf_html(b, rp_str(l, "model", NULL));
        static const char *const nums[] = {"owned", "in_use", "free"};
        for (int k = 0; k < 3; k++) {
            rp_num(l, nums[k], NULL, &x);
            exp_buf_printf(b, "</td><td class=\"n\">%.0f", x);
        }
        exp_buf_adds(b, "</td><td>");
        const char *e = rp_str(l, "expires", NULL);
        exp_buf_html(b, e ? e : "\xe2\x80\x93");
        if (rp_num(l, "days_left", NULL, &x))
            exp_buf_printf(b, "</td><td class=\"n\">%.0f</td><td>", x);
        else
            exp_buf_adds(b, "</td><td class=\"n\">&#8211;</td><td>");
        rp_badge(b, rp_str(l, "expiration_state", NULL));
        rp_num(l, "threshold_pct", NULL, &x);
        exp_buf_printf(b, "</td><td class=\"n\">%.0f%%</td></tr>\n", x);
    }
    if (!json_array_size(json_object_get(lic, "licenses")))
        exp_buf_adds(b, "<tr><td colspan=\"9\">No licenses are configured.</td></tr>\n");
    exp_buf_adds(b, "</tbody></table>\n<p><strong>Integrations:</strong> ");
    json_t *v;
    size_t n = json_array_size(json_object_get(lic, "integrations"));
    json_array_foreach(json_object_get(lic, "integrations"), i, v)
    {
        if (i)
            exp_buf_adds(b, ", ");
        exp_buf_html(b, json_string_value(v));
    }
    if (!n)
        exp_buf_adds(b, "none");
    exp_buf_adds(b, "</p></section>\n");
}

static void rp_daily_table(struct exp_buf *b, Licmon__V1__UsageRow *const *rows, size_t n)
{
    exp_buf_adds(b, "<section><h2>Day by day</h2>\n<table class=\"daily\"><thead><tr>"
                    "<th>Date</th><th class=\"n\">Peak seats</th><th class=\"n\">Distinct "
                    "users</th><th class=\"n\">Logins</th><th class=\"n\">Denials</th>"
                    "<th class=\"n\">Denied users</th><th class=\"n\">Downgrades</th>"
                    "<th class=\"n\">Downgraded users</th></tr></thead>\n<tbody>\n");
    for (size_t i = 0; i < n; i++) {
        const Licmon__V1__UsageRow *r = rows[i];
        exp_buf_adds(b, "<tr><td>");
        exp_buf_html(b, r->date);
        exp_buf_printf(b,
                       "</td><td class=\"n\">%lld</td><td class=\"n\">%lld</td><td "
                       "class=\"n\">%lld</td><td class=\"n\">%lld</td><td class=\"n\">%lld</td>"
                       "<td class=\"n\">%lld</td><td class=\"n\">%lld</td></tr>\n",
                       (long long)r->peak, (long long)r->users, (long long)r->logins,
                       (long long)r->denials, (long long)r->denied_users, (long long)r->downgrades,
                       (long long)r->downgraded_users);
    }
    exp_buf_adds(b, "</tbody></table></section>\n");
}

static const char rp_css[] =
    "*{box-sizing:border-box}"
    "body{font:10pt/1.35 -apple-system,'Segoe UI',Roboto,'DejaVu Sans',Arial,sans-serif;"
    "color:#1f2328;margin:0 auto;max-width:180mm;padding:8mm 0;"
    "-webkit-print-color-adjust:exact;print-color-adjust:exact}"
    "h1{font-size:17pt;margin:0 0 2mm}h2{font-size:12pt;margin:6mm 0 2mm}"
    ".meta{margin:0 0 4mm;color:#444}"
    ".meta span{display:inline-block;margin-right:5mm;white-space:nowrap}"
    ".note{border:1px solid #bbb;background:#f6f6f6;padding:2mm 3mm;margin:0 0 4mm}"
    ".chart{width:100%;height:auto;display:block}"
    ".grid{stroke:#e3e3e3;stroke-width:1}.axis{stroke:#777;stroke-width:1}"
    ".ylab{font-size:11px;text-anchor:end;fill:#555}"
    ".xlab{font-size:11px;text-anchor:middle;fill:#555}"
    ".bar{fill:#4472c4}.users{fill:none;stroke:#ed7d31;stroke-width:2}.dot{fill:#ed7d31}"
    ".owned{stroke:#9c0006;stroke-width:1.5;stroke-dasharray:8 4}"
    ".thr{stroke:#b07800;stroke-width:1.5;stroke-dasharray:3 3}"
    ".lab{font-size:11px;text-anchor:end}.owned-lab{fill:#9c0006}.thr-lab{fill:#8a5d00}"
    ".none{font-size:14px;text-anchor:middle;fill:#777}"
    ".legend{list-style:none;padding:0;margin:2mm 0 0;display:flex;flex-wrap:wrap;gap:6mm;"
    "font-size:9pt}"
    ".legend i{display:inline-block;width:14px;height:10px;margin-right:4px;"
    "vertical-align:middle}"
    ".lg-bar{background:#4472c4}.lg-users{border-top:2px solid #ed7d31;height:0!important}"
    ".lg-owned{border-top:2px dashed #9c0006;height:0!important}"
    ".lg-thr{border-top:2px dotted #b07800;height:0!important}"
    ".cards{display:grid;grid-template-columns:repeat(4,1fr);gap:3mm}"
    ".card{border:1px solid #ccc;border-left:5px solid #999;padding:2.5mm 3mm;"
    "break-inside:avoid}"
    ".card.ok{border-left-color:#2e7d32}.card.minor{border-left-color:#c9a000}"
    ".card.major{border-left-color:#c62828}.card.plain{border-left-color:#4472c4}"
    ".ct{font-size:8.5pt;color:#444;font-weight:600}.cv{font-size:16pt;font-weight:700;"
    "margin:1mm 0}.cd{font-size:8.5pt;color:#444;min-height:2.4em}"
    ".badge{display:inline-block;margin-top:1.5mm;padding:0.3mm 2mm;border-radius:2mm;"
    "font-size:8.5pt;font-weight:700;border:1px solid}"
    ".badge.ok{background:#c6efce;color:#006100;border-color:#006100}"
    ".badge.minor{background:#ffeb9c;color:#7a4400;border-color:#9c5700}"
    ".badge.major{background:#ffc7ce;color:#9c0006;border-color:#9c0006}"
    ".badge.na{background:#ededed;color:#595959;border-color:#8c8c8c}"
    "table{border-collapse:collapse;width:100%;font-size:9pt}"
    "th,td{border-bottom:1px solid #ddd;padding:1mm 1.5mm;text-align:left}"
    "th{background:#f0f0f0}td.n,th.n{text-align:right}td{white-space:nowrap}"
    "thead{display:table-header-group}tr{break-inside:avoid}"
    ".keep,figure{break-inside:avoid}figure{margin:0}"
    "footer{margin-top:6mm;font-size:8pt;color:#666}"
    "@media print{body{padding:0;max-width:none}}";

char *exp_report_html(const struct exp_report_in *in, size_t *len)
{
    struct exp_buf b = {0};
    char t[40];
    exp_buf_adds(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                     "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                     "<title>License usage report \xe2\x80\x93 ");
    exp_buf_html(&b, in->org);
    exp_buf_adds(&b, "</title>\n<style>");
    exp_buf_printf(&b, "@page{size:%s portrait;margin:14mm 14mm 16mm}",
                   in->paper == EXP_PAPER_LETTER ? "letter" : "A4");
    exp_buf_adds(&b, rp_css);
    exp_buf_adds(&b, "</style></head>\n<body>\n<header><h1>License usage report \xe2\x80\x93 ");
    exp_buf_html(&b, in->org);
    exp_buf_adds(&b, "</h1>\n<p class=\"meta\"><span><strong>License type:</strong> ");
    exp_buf_html(&b, in->type);
    exp_buf_adds(&b, "</span><span><strong>Period:</strong> ");
    exp_buf_html(&b, in->from);
    exp_buf_adds(&b, " to ");
    exp_buf_html(&b, in->to);
    exp_buf_adds(&b, " (local dates, both included)</span><span><strong>Time zone:</strong> ");
    exp_buf_html(&b, in->timezone);
    exp_buf_adds(&b, "</span><span><strong>Generated:</strong> ");
    exp_buf_html(&b, time_format_rfc3339(in->generated_ms, t, sizeof(t)));
    exp_buf_adds(&b, " UTC</span></p></header>\n");
    if (in->asked_from && in->asked_to) {
        exp_buf_adds(&b, "<p class=\"note\">Asked for ");
        exp_buf_html(&b, in->asked_from);
        exp_buf_adds(&b, " to ");
        exp_buf_html(&b, in->asked_to);
        exp_buf_adds(&b, in->empty ? "; none of these dates has data (they are outside the "
                                     "retention period or in the future).</p>\n"
                                   : "; the report covers the dates that exist (within the "
                                     "retention period, up to today).</p>\n");
    }
    double owned = 0, tc = 0;
    if (in->stats) {
        /* no owned line for all types together (no capacity anybody can
         * reach: the dashboard draws none either) */
        if (exp_view_has_capacity(in->type))
            rp_num(in->stats, "owned", NULL, &owned);
        /* no threshold line where the threshold cards do not apply (all,
         * a named type) */
        const char *st = json_string_value(
            json_object_get(json_object_get(in->stats, "days_over_threshold"), "state"));
        if (st && strcmp(st, "non_applicable"))
            rp_num(in->stats, "threshold_count", NULL, &tc);
    }
    exp_buf_adds(&b, "<section class=\"keep\"><h2>Daily usage</h2>\n<figure>\n");
    size_t clen;
    char *chart = exp_report_chart(in->rows, in->n_rows, (int64_t)owned, (int64_t)tc, &clen);
    exp_buf_add(&b, chart, clen);
    free(chart);
    exp_buf_adds(&b, "<ul class=\"legend\"><li><i class=\"lg-bar\"></i>Bars: peak concurrent "
                     "seats</li><li><i class=\"lg-users\"></i>Line with dots: distinct users</li>");
    if (owned > 0)
        exp_buf_adds(&b, "<li><i class=\"lg-owned\"></i>Dashed line: seats owned</li>");
    if (tc > 0 && tc != owned)
        exp_buf_adds(&b, "<li><i class=\"lg-thr\"></i>Dotted line: threshold</li>");
    exp_buf_adds(&b, "</ul></figure></section>\n");
    if (in->stats) {
        exp_buf_adds(&b, "<h2>Statistics</h2>\n");
        rp_cards(&b, in->stats, in->type, exp_view_license_model(in->licenses, in->type));
    }
    if (in->licenses)
        rp_licenses(&b, in->licenses);
    if (in->n_rows && in->n_rows <= 62)
        rp_daily_table(&b, in->rows, in->n_rows);
    else if (in->n_rows)
        exp_buf_adds(&b, "<p>The figures of every day are in the xlsx export (its Daily usage "
                         "sheet) or the json export of the same period.</p>\n");
    exp_buf_adds(&b, "<footer>Peak: the most seats held at the same time. Distinct users: how "
                     "many different users held a seat. Days and hours are counted in the "
                     "reporting time zone; licmon.</footer>\n</body></html>\n");
    return exp_buf_steal(&b, len);
}
