/*
 * sink.c -- the engine sink (batches of 1000 events, four in flight; the
 * events are freed on the producing thread once committed, and the JSON
 * parsed for a batch is carved from its arena: cs_sink_arena), the NDJSON
 * writer, stats and reporting.
 */
#include "importer.h"

#include "../lib/cs_arena.h"

#include <pthread.h>
#include <string.h>

#define SINK_BATCH 1000
#define SINK_SLOTS 4
#define SINK_FILES 16 /* source files named (NDJSON: one; Olist: a few) */
/* a batch's arena takes at most this many 64 KiB chunks (a batch of
 * typical events needs a few dozen); beyond, its parses go to malloc */
#define SINK_ARENA_CHUNKS 256

typedef struct slot {
    cs_ingest_req_t req;
    cs_ingest_item_t items[SINK_BATCH];
    const char *where[SINK_BATCH]; /* the item's source file (interned) or NULL */
    uint64_t line[SINK_BATCH];     /* and its line there */
    size_t n;
    cs_arena_t arena; /* the JSON of its events (cs_sink_arena), until settled */
    bool busy;     /* submitted, not yet done */
    bool counted;  /* outcomes added to stats */
} slot_t;

struct cs_sink {
    cs_engine_t *e;
    cs_import_stats_t *st;
    cs_report_t *report;     /* borrowed; NULL = refusals logged */
    char *files[SINK_FILES]; /* owned copies of the source files named */
    size_t n_files;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    slot_t slots[SINK_SLOTS];
    int cur; /* slot being filled */
};

static void on_done(cs_ingest_req_t *req, void *arg)
{
    cs_sink_t *s = arg;
    (void)req;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < SINK_SLOTS; i++)
        if (&s->slots[i].req == req)
            s->slots[i].busy = false;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* The sink's own copy of where (a producer's buffer may change), NULL when
 * none or when the table is full (the refusal is then logged by event id). */
static const char *intern(cs_sink_t *s, const char *where)
{
    if (!where)
        return NULL;
    if (s->n_files && strcmp(s->files[s->n_files - 1], where) == 0)
        return s->files[s->n_files - 1];
    for (size_t i = 0; i < s->n_files; i++)
        if (strcmp(s->files[i], where) == 0)
            return s->files[i];
    if (s->n_files == SINK_FILES || !(s->files[s->n_files] = cs_strdup(where)))
        return NULL;
    return s->files[s->n_files++];
}

/* Count and free a finished slot (on the producer's thread). */
static void settle(cs_sink_t *s, slot_t *sl)
{
    if (sl->counted)
        return;
    for (size_t i = 0; i < sl->n; i++) {
        cs_ingest_item_t *it = &sl->items[i];
        if (!sl->req.rc && it->rc == CS_ERR_RULE) {
            /* refused by the store's rules (a delivered parcel cancelled) */
            s->st->rejected++;
            if (s->report && sl->where[i]) { /* where its record is, as a parse error */
                cs_err_t e;
                cs_err_field(&e, it->rc, it->err.field, "event %s refused: %s",
                             it->ev->event_id, it->err.msg);
                cs_report(s->report, sl->where[i], sl->line[i], &e);
            } else
                cs_warn("import: event %s refused: %s", it->ev->event_id, it->err.msg);
        } else if (sl->req.rc || it->rc)
            s->st->failed++;
        else if (it->outcome == CS_INGEST_DUPLICATE)
            s->st->duplicates++;
        else
            s->st->accepted++;
        cs_event_free(&it->ev);
    }
    cs_arena_release(&sl->arena); /* nothing of its events is left */
    sl->n = 0;
    sl->counted = true;
}

cs_arena_t *cs_sink_arena(cs_sink_t *s)
{
    slot_t *sl = &s->slots[s->cur];
    if (sl->n == 0) /* what is in it is left of lines refused */
        cs_arena_release(&sl->arena);
    return sl->arena.chunks < SINK_ARENA_CHUNKS ? &sl->arena : NULL;
}

cs_rc cs_sink_open(cs_engine_t *e, cs_import_stats_t *stats, cs_report_t *report,
                   cs_sink_t **out, cs_err_t *err)
{
    cs_sink_t *s = cs_calloc(1, sizeof *s);
    *out = NULL;
    if (!s)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    s->e = e;
    s->st = stats;
    s->report = report;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    cs_arena_setup();
    for (int i = 0; i < SINK_SLOTS; i++) {
        s->slots[i].counted = true;
        cs_arena_init(&s->slots[i].arena);
    }
    *out = s;
    return CS_OK;
}

static cs_rc submit(cs_sink_t *s, slot_t *sl, cs_err_t *err)
{
    memset(&sl->req, 0, sizeof sl->req);
    sl->req.items = sl->items;
    sl->req.n = sl->n;
    sl->req.keep_events = true;
    sl->req.done = on_done;
    sl->req.done_arg = s;
    sl->busy = true;
    sl->counted = false;
    cs_rc rc;
    while ((rc = cs_engine_submit(s->e, &sl->req)) == CS_ERR_BUSY) {
        /* the queue is full: wait for one of ours to finish */
        pthread_mutex_lock(&s->mu);
        bool any = false;
        for (int i = 0; i < SINK_SLOTS; i++)
            any |= s->slots[i].busy && &s->slots[i] != sl;
        if (any)
            pthread_cond_wait(&s->cv, &s->mu);
        pthread_mutex_unlock(&s->mu);
        if (!any)
            break;
    }
    if (rc) {
        sl->busy = false;
        sl->req.rc = rc;
        return cs_errf(err, rc, "the engine refused a batch: %s", sl->req.err.msg);
    }
    return CS_OK;
}

/* Move to the next slot, waiting until it is done, and settle it. */
static void advance(cs_sink_t *s)
{
    s->cur = (s->cur + 1) % SINK_SLOTS;
    slot_t *sl = &s->slots[s->cur];
    pthread_mutex_lock(&s->mu);
    while (sl->busy)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    settle(s, sl);
}

cs_rc cs_sink_emit(void *arg, cs_event_t *ev, const char *where, uint64_t line, cs_err_t *err)
{
    cs_sink_t *s = arg;
    slot_t *sl = &s->slots[s->cur]; /* always free or filling */
    memset(&sl->items[sl->n], 0, sizeof sl->items[0]);
    sl->where[sl->n] = s->report ? intern(s, where) : NULL;
    sl->line[sl->n] = line;
    sl->items[sl->n++].ev = ev;
    if (sl->n < SINK_BATCH)
        return CS_OK;
    cs_rc rc = submit(s, sl, err);
    if (rc) {
        sl->counted = false;
        settle(s, sl); /* nothing stored: counted as failed */
        return rc;
    }
    advance(s);
    return CS_OK;
}

cs_rc cs_sink_close(cs_sink_t **sp, cs_err_t *err)
{
    if (!sp || !*sp)
        return CS_OK;
    cs_sink_t *s = *sp;
    cs_rc rc = CS_OK;
    slot_t *cur = &s->slots[s->cur];
    if (cur->n > 0 && (rc = submit(s, cur, err)) != CS_OK)
        cur->counted = false;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < SINK_SLOTS; i++)
        while (s->slots[i].busy)
            pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < SINK_SLOTS; i++)
        settle(s, &s->slots[i]);
    cs_report_end(s->report);
    for (size_t i = 0; i < s->n_files; i++)
        cs_free(s->files[i]);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    cs_free(s);
    *sp = NULL;
    return rc;
}

cs_rc cs_ndjson_emit(void *file, cs_event_t *ev, const char *where, uint64_t line,
                     cs_err_t *err)
{
    FILE *f = file;
    (void)where;
    (void)line;
    cs_rc rc = cs_event_serialize(ev, err);
    if (!rc && (fwrite(ev->body, 1, ev->body_len, f) != ev->body_len || fputc('\n', f) == EOF))
        rc = cs_errf(err, CS_ERR_IO, "cannot write NDJSON output");
    cs_event_free(&ev);
    return rc;
}

json_t *cs_import_stats_json(const cs_import_stats_t *st)
{
    json_t *by = json_object();
    for (int t = 1; t < CS_EV__COUNT; t++)
        if (st->by_type[t])
            json_object_set_new(by, cs_event_type_name((cs_event_type_t)t),
                                json_integer((json_int_t)st->by_type[t]));
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "read", (json_int_t)st->read,
                     "accepted", (json_int_t)st->accepted, "duplicates",
                     (json_int_t)st->duplicates, "rejected", (json_int_t)st->rejected, "failed",
                     (json_int_t)st->failed, "skipped", (json_int_t)st->skipped, "by_type", by);
}

static void report_line(FILE *f, const char *where, uint64_t line, const char *tag,
                        const cs_err_t *err)
{
    if (err->field[0] && !strstr(err->msg, err->field))
        fprintf(f, "%s:%llu: %s%s: %s\n", where, (unsigned long long)line, tag, err->field,
                err->msg);
    else
        fprintf(f, "%s:%llu: %s%s\n", where, (unsigned long long)line, tag, err->msg);
}

void cs_report(cs_report_t *r, const char *where, uint64_t line, const cs_err_t *err)
{
    if (!r || !r->f)
        return;
    uint64_t max = r->max_lines ? r->max_lines : 100;
    if (r->printed < max)
        report_line(r->f, where, line, "", err);
    r->printed++;
}

void cs_report_skip(cs_report_t *r, const char *where, uint64_t line, const char *kind,
                    const cs_err_t *err)
{
    if (!r || !r->f)
        return;
    uint64_t max = r->max_skip_lines ? r->max_skip_lines : 10;
    cs_report_skips_t *k = NULL;
    for (size_t i = 0; i < r->n_skips && !k; i++)
        if (r->skips[i].kind == kind && strncmp(r->skips[i].where, where, sizeof r->skips[i].where - 1) == 0)
            k = &r->skips[i];
    if (!k && r->n_skips < CS_REPORT_SKIP_KINDS) {
        k = &r->skips[r->n_skips++];
        snprintf(k->where, sizeof k->where, "%s", where);
        k->kind = kind;
        k->seen = 0;
    }
    if (!k) { /* more kinds than the table holds: under the problems' budget */
        cs_report(r, where, line, err);
        return;
    }
    if (k->seen < max)
        report_line(r->f, where, line, "skipped: ", err);
    k->seen++;
}

void cs_report_end(cs_report_t *r)
{
    if (!r)
        return;
    uint64_t max = r->max_skip_lines ? r->max_skip_lines : 10;
    for (size_t i = 0; r->f && i < r->n_skips; i++)
        if (r->skips[i].seen > max)
            fprintf(r->f, "%s: %llu more skipped (%s), counted, not printed\n", r->skips[i].where,
                    (unsigned long long)(r->skips[i].seen - max), r->skips[i].kind);
    max = r->max_lines ? r->max_lines : 100;
    if (r->f && r->printed > max)
        fprintf(r->f, "(%llu more problem%s counted, not printed)\n",
                (unsigned long long)(r->printed - max), r->printed - max == 1 ? "" : "s");
    r->printed = 0;
    r->n_skips = 0;
}
