/*
 * importer.h -- getting events in without HTTP: a sink that batches events
 * into the engine, an RFC 4180 CSV reader, importers for NDJSON of canonical
 * events and for the Olist CSV layout, and the German demo shop generator.
 *
 * Every event goes through the same validation as HTTP intake
 * (cs_event_from_json). Producers hand events to an emit function that
 * consumes them: cs_sink_emit (into the engine) or cs_ndjson_emit (to a
 * file).
 *
 * Thread-safety: a sink is used from one thread. Ownership: emit functions
 * consume the event on every path.
 */
#ifndef CS_IMPORTER_H
#define CS_IMPORTER_H

#include <stdint.h>
#include <stdio.h>

#include "../engine/engine.h"
#include "../lib/cs_map.h"

typedef struct cs_import_stats {
    uint64_t read;        /* events produced or lines read */
    uint64_t accepted;    /* new in the store */
    uint64_t duplicates;  /* already in the store */
    uint64_t rejected;    /* failed validation (not stored) */
    uint64_t failed;      /* refused by the store */
    uint64_t skipped;     /* source rows that could not be mapped to an event */
    uint64_t by_type[CS_EV__COUNT]; /* produced events by type */
} cs_import_stats_t;

/* JSON summary of stats (owned). */
json_t *cs_import_stats_json(const cs_import_stats_t *st);

/* Where an importer reports rejected input ("FILE:LINE: field: message")
 * and source rows it skipped ("FILE:LINE: skipped: message"). Problems and
 * skips have budgets of their own, and skips one per kind and file, so the
 * hundreds of orders without items of an Olist export neither crowd out a
 * bad price nor each other; what is over a budget is counted and said by
 * cs_report_end. Zero-initialize; set f. */
#define CS_REPORT_SKIP_KINDS 8
typedef struct cs_report_skips {
    char where[256];      /* the file (cut at 255 bytes) */
    const char *kind;     /* static: "orders without items" */
    uint64_t seen;
} cs_report_skips_t;
typedef struct cs_report {
    FILE *f;              /* NULL = silent */
    uint64_t max_lines;   /* problems: print this many (0 = 100) */
    uint64_t printed;     /* problems seen */
    uint64_t max_skip_lines; /* skips: print this many of each kind and file (0 = 10) */
    cs_report_skips_t skips[CS_REPORT_SKIP_KINDS];
    size_t n_skips;
} cs_report_t;
void cs_report(cs_report_t *r, const char *where, uint64_t line, const cs_err_t *err);
/* A source row skipped (the caller counts it in stats->skipped); kind is a
 * static plural noun phrase naming what was skipped. NULL-safe. */
void cs_report_skip(cs_report_t *r, const char *where, uint64_t line, const char *kind,
                    const cs_err_t *err);
/* Say how many problems, and skips of each kind, were counted beyond their
 * budgets, and start the counts again. The importers call it as they end. */
void cs_report_end(cs_report_t *r);

/* An emit function consumes ev on every path. where and line (borrowed for
 * the call) are the source record the event came from, for messages about
 * it later (a refusal by the store's rules): NULL and 0 when none (the demo
 * shop). */
typedef cs_rc (*cs_emit_fn)(void *arg, cs_event_t *ev, const char *where, uint64_t line,
                            cs_err_t *err);

/* ---- the engine sink ---- */
/* An event the store's rules refuse (a delivered parcel cancelled) is
 * counted as rejected and reported to report (borrowed; it must outlive
 * the sink) as "FILE:LINE: event ID refused: ..." when its emit named
 * where it came from, else logged as a warning naming the event. The
 * outcomes come with the batch's commit, so these lines may follow
 * problems of later lines. */
typedef struct cs_sink cs_sink_t;
cs_rc cs_sink_open(cs_engine_t *e, cs_import_stats_t *stats, cs_report_t *report,
                   cs_sink_t **out, cs_err_t *err);
cs_rc cs_sink_emit(void *sink, cs_event_t *ev, const char *where, uint64_t line, cs_err_t *err);
/* The arena (cs_arena.h) of the batch the next event emitted joins, for
 * the producer to parse that event in (cs_arena_use around the parse
 * alone): the batch's JSON is given back in one go once it is committed
 * and settled, not value by value. NULL when the batch's arena is full
 * (parse with malloc). Nothing parsed in it may outlive its event. */
struct cs_arena;
struct cs_arena *cs_sink_arena(cs_sink_t *s);
/* Flush, wait for every commit, count outcomes into stats, and end the
 * report (cs_report_end) for the refusals reported here. NULL-safe. */
cs_rc cs_sink_close(cs_sink_t **s, cs_err_t *err);

/* ---- an NDJSON writer (arg is a FILE *) ---- */
cs_rc cs_ndjson_emit(void *file, cs_event_t *ev, const char *where, uint64_t line,
                     cs_err_t *err);

/* ---- CSV (RFC 4180) ---- */
typedef struct cs_csv cs_csv_t;
#define CS_CSV_FIELD_MAX (64 * 1024)
#define CS_CSV_FIELDS_MAX 256
cs_rc cs_csv_open(const char *path, cs_csv_t **out, cs_err_t *err);
void cs_csv_close(cs_csv_t **c);
/* Next record: CS_OK with *fields (borrowed until the next call) and *n;
 * CS_ERR_NOTFOUND at the end; CS_ERR_INVALID on a malformed record (err
 * names file and line). The first call returns the header. */
cs_rc cs_csv_next(cs_csv_t *c, char ***fields, size_t *n, cs_err_t *err);
/* Line number where the last record started. */
uint64_t cs_csv_line(const cs_csv_t *c);
/* Index of a header column; -1 when absent. Valid after the header was read. */
int cs_csv_column(const cs_csv_t *c, const char *name);
/* Read the header and resolve columns; CS_ERR_INVALID naming a missing one. */
cs_rc cs_csv_header(cs_csv_t *c, const char *const *names, int *idx, size_t n, cs_err_t *err);

/* ---- importers ---- */
/* One canonical event per line; bad lines are reported and skipped. */
cs_rc cs_import_ndjson(FILE *in, const char *name, cs_emit_fn emit, void *arg,
                       cs_report_t *report, cs_import_stats_t *st, cs_err_t *err);
/* The Olist CSV layout in dir (docs/events.md#olist describes the mapping). */
cs_rc cs_import_olist(const char *dir, cs_emit_fn emit, void *arg, cs_report_t *report,
                      cs_import_stats_t *st, cs_err_t *err);

/* ---- the demo shop ---- */
typedef struct cs_demo_opts {
    uint64_t seed;      /* same seed, same shop */
    int customers;      /* default 500 */
    int months;         /* default 6 */
    cs_ms_t end;        /* the period's end, no event after it; 0 = now; the
                         * period (months x 30 days before it) must not start
                         * before 1970-01-01, and it must not be after now
                         * (CS_ERR_INVALID naming "end") */
    cs_ms_t now;        /* the time the demo is made at; 0 = the system clock
                         * (tests pin it); what would happen after it has
                         * not happened yet: orders are left in flight */
} cs_demo_opts_t;
void cs_demo_opts_default(cs_demo_opts_t *o);
cs_rc cs_demo_generate(const cs_demo_opts_t *o, cs_emit_fn emit, void *arg,
                       cs_import_stats_t *st, cs_err_t *err);

#endif /* CS_IMPORTER_H */
