/* libFuzzer harness: the exporter's hand-written encoders of outside text
 * (user ids, org ids, license types come from producers' events and end up
 * in JSON answers, CSV exports and the HTML report): exp_buf_json_str,
 * exp_csv_field and exp_buf_html. Properties, checked on any bytes:
 *  - the JSON text parses (jansson) as one string, equal to the input when
 *    the input is valid UTF-8 (otherwise bad bytes become U+FFFD);
 *  - the CSV field reads back (RFC 4180) as the input, with a leading '
 *    when it starts like a formula, and never breaks the row, nor splits
 *    where a spreadsheet's separator is ; or tab;
 *  - the HTML text has no < > " ' and every & starts an entity. */
#include "../../exporter/exp_buf.h"
#include "../../exporter/exp_csv.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_json(const char *s, size_t n)
{
    struct exp_buf b = {0};
    exp_buf_json_str(&b, s);
    json_error_t jerr;
    json_t *j = json_loadb(b.data, b.len, JSON_DECODE_ANY, &jerr);
    if (!j || !json_is_string(j))
        abort(); /* not one JSON string */
    if (exp_utf8_valid(s, n) &&
        (json_string_length(j) != n || memcmp(json_string_value(j), s, n) != 0))
        abort(); /* valid text did not survive */
    json_decref(j);
    exp_buf_free(&b);
}

static void check_csv(const char *s, size_t n)
{
    struct exp_buf b = {0};
    exp_csv_field(&b, s, true);
    const char *o = b.data ? b.data : "";
    size_t ol = b.len;
    char *back = malloc(ol + 1);
    size_t bl = 0;
    if (ol && o[0] == '"') {
        if (ol < 2 || o[ol - 1] != '"')
            abort();
        for (size_t i = 1; i < ol - 1; i++) {
            if (o[i] == '"') {
                if (i + 1 >= ol - 1 || o[i + 1] != '"')
                    abort(); /* a lone quote inside a quoted field */
                i++;
            }
            back[bl++] = o[i];
        }
    } else {
        if (strpbrk(o, ",\"\r\n;\t"))
            abort(); /* an unquoted field that breaks the row (; and tab in
                      * the spreadsheets that split on them) */
        memcpy(back, o, ol);
        bl = ol;
    }
    size_t off = 0;
    if (exp_csv_formula_like(s)) {
        if (bl < 1 || back[0] != '\'')
            abort(); /* a formula left live */
        off = 1;
    } else if (bl && (back[0] == '=' || back[0] == '+' || back[0] == '-' || back[0] == '@')) {
        abort();
    }
    if (bl - off != n || memcmp(back + off, s, n) != 0)
        abort(); /* the text did not survive */
    free(back);
    exp_buf_free(&b);
}

static void check_html(const char *s)
{
    struct exp_buf b = {0};
    exp_buf_html(&b, s);
    static const char *const ent[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;"};
    for (size_t i = 0; i < b.len; i++) {
        char c = b.data[i];
        if (c == '<' || c == '>' || c == '"' || c == '\'')
            abort();
        if (c == '&') {
            int ok = 0;
            for (int k = 0; k < 5; k++)
                ok |= !strncmp(b.data + i, ent[k], strlen(ent[k]));
            if (!ok)
                abort();
        }
    }
    if (b.len && !exp_utf8_valid(b.data, b.len))
        abort(); /* the page must stay valid UTF-8 */
    exp_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    size_t n = strlen(s); /* C strings: the text ends at a NUL */
    check_json(s, n);
    check_csv(s, n);
    check_html(s);
    free(s);
    return 0;
}
