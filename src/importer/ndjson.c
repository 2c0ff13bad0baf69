/*
 * ndjson.c -- import canonical events, one JSON object per line. Lines are
 * bounded (CS_EVENT_BYTES_MAX); a bad line is reported with its number and
 * skipped, the others are kept. A UTF-8 byte order mark at the start of
 * the file (an editor's "UTF-8 with BOM") is not part of the first event.
 */
#include "importer.h"

#include <string.h>

#include "../lib/cs_arena.h"

cs_rc cs_import_ndjson(FILE *in, const char *name, cs_emit_fn emit, void *arg,
                       cs_report_t *report, cs_import_stats_t *st, cs_err_t *err)
{
    cs_buf_t line;
    uint64_t lineno = 0;
    cs_rc rc = CS_OK;
    int ch;
    bool too_long = false;
    cs_buf_init(&line, CS_EVENT_BYTES_MAX);
    for (;;) {
        ch = getc_unlocked(in); /* (the stream is this thread's alone) */
        if (ch != EOF && ch != '\n') {
            if (!too_long && cs_buf_append(&line, &(char){(char)ch}, 1) != CS_OK)
                too_long = true;
            continue;
        }
        if (ch == EOF && line.len == 0 && !too_long)
            break;
        lineno++;
        const char *p = line.data ? line.data : "";
        size_t n = line.len;
        unsigned col0 = 0; /* the blanks before the event, for a parse error's column */
        if (lineno == 1 && n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
            p += 3; /* no column an editor shows */
            n -= 3;
        }
        while (n && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        while (n && (*p == ' ' || *p == '\t')) {
            p++;
            n--;
            col0++;
        }
        if (too_long) {
            cs_err_t e;
            cs_errf(&e, CS_ERR_TOOBIG, "line longer than %d bytes", CS_EVENT_BYTES_MAX);
            cs_report(report, name, lineno, &e);
            st->read++;
            st->rejected++;
        } else if (n > 0) {
            cs_event_t *ev = NULL;
            cs_err_t e;
            cs_err_clear(&e);
            st->read++;
            /* into the engine: parsed in its batch's arena */
            cs_arena_t *prev =
                cs_arena_use(emit == cs_sink_emit ? cs_sink_arena((cs_sink_t *)arg) : NULL);
            cs_rc prc = cs_event_parse_line(p, n, lineno, col0, &ev, &e);
            if (!prc && (prc = cs_event_check_received(ev, cs_clock_now(cs_clock_system()), &e)))
                cs_event_free(&ev);
            cs_arena_use(prev);
            if (prc) {
                if (prc == CS_ERR_NOMEM) {
                    rc = cs_errf(err, CS_ERR_NOMEM, "out of memory");
                    goto out;
                }
                cs_report(report, name, lineno, &e);
                st->rejected++;
            } else {
                if (ev->warning) { /* kept, with something left out: said as a problem is */
                    cs_err_t w;
                    cs_err_field(&w, CS_ERR_RULE, ev->warning_field, "%s", ev->warning);
                    cs_report(report, name, lineno, &w);
                }
                st->by_type[ev->type]++;
                ev->producer_id = true;
                if ((rc = emit(arg, ev, name, lineno, err)))
                    goto out;
            }
        }
        cs_buf_reset(&line);
        too_long = false;
        if (ch == EOF)
            break;
    }
    if (ferror(in))
        rc = cs_errf(err, CS_ERR_IO, "%s: read error", name);
out:
    cs_buf_free(&line);
    cs_report_end(report);
    return rc;
}
