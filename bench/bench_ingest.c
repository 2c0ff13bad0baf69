/*
 * bench_ingest.c -- library ingest against a raw SQLite insert of the same
 * rows, same durability, same run; and resident memory while ingesting.
 *
 *   bench_ingest ingest DIR N      engine vs raw SQLite, N events
 *   bench_ingest rss DIR N         engine only; RSS sampled every N/10 events
 *   bench_ingest guest DIR N       the journey passes of one customer with N orders
 *
 * Prints key=value lines. The event mix imitates a shop's stream: for every
 * order a customer upsert, the order (1..4 line items), a shipment, three or
 * four carrier scans, message statuses and sometimes a review or a ticket.
 * Events are produced as JSON text on the fly (as they would arrive over
 * HTTP), so the engine's figure includes parsing and validation. They are
 * parsed as `consonance import` parses them, into their batch's arena
 * (BENCH_NO_ARENA=1: with malloc, as before that).
 *
 * The baseline gets every advantage: event ids and types handed to it
 * precomputed, one table, one prepared INSERT per row, the same WAL +
 * synchronous=FULL, the same page cache and the same number of events per
 * transaction as the engine's group commit actually used.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/engine.h"
#include "engine/journeys.h"
#include "lib/cs_arena.h"

#define BATCH 1000      /* events per engine request */
#define IN_FLIGHT 8     /* requests queued at once */

/* ---- the event mix ---- */

static const char *const skus[][3] = {
    {"KAF-250", "Kaffeebohnen Espresso 250 g", "kaffee"},
    {"FIL-102", "Kaffeefilter Gr. 4, 100 Stück", "kaffee"},
    {"MUG-01", "Steingut-Becher 350 ml", "kueche"},
    {"PAN-28", "Gusseisenpfanne 28 cm", "kueche"},
    {"GRL-SET", "Grillbesteck-Set Edelstahl", "garten"},
    {"TNT-2P", "Trekkingzelt 2 Personen", "outdoor"},
    {"LMP-USB", "Stirnlampe USB-C", "outdoor"},
    {"SOC-3P", "Wandersocken Merino, 3 Paar", "outdoor"},
};
static const char *const scan_status[] = {"info_received", "in_transit", "out_for_delivery",
                                          "delivered"};
static const char *const carriers[] = {"dhl", "dpd", "hermes", "gls"};

/* Event i of the stream as JSON text into buf; returns its length. */
static size_t gen_event(uint64_t i, char *buf, size_t size)
{
    uint64_t o = i / 10, k = i % 10;
    unsigned day = (unsigned)(1 + o % 28), hour = (unsigned)(6 + k), min = (unsigned)(o % 60);
    char cust[32], order[32], ts[32];
    snprintf(cust, sizeof cust, "cust-%llu", (unsigned long long)(o % 50000));
    snprintf(order, sizeof order, "ord-%llu", (unsigned long long)o);
    snprintf(ts, sizeof ts, "2026-03-%02uT%02u:%02u:00+01:00", day, hour, min);
    const char *carrier = carriers[o % 4];
    int n;
    switch (k) {
    case 0:
        n = snprintf(buf, size,
                     "{\"event_id\":\"e%llu\",\"type\":\"customer.upserted\",\"occurred_at\":\"%s\","
                     "\"data\":{\"id\":\"%s\",\"email\":\"%s@beispiel.de\",\"name\":\"Kunde %llu\","
                     "\"locale\":\"de\",\"timezone\":\"Europe/Berlin\",\"consents\":{\"email\":"
                     "{\"transactional\":true,\"marketing\":%s}}}}",
                     (unsigned long long)i, ts, cust, cust, (unsigned long long)(o % 50000),
                     o % 3 ? "true" : "false");
        break;
    case 1: {
        char items[1024];
        size_t len = 0;
        unsigned nitems = (unsigned)(1 + o % 4);
        for (unsigned j = 0; j < nitems; j++) {
            const char *const *s = skus[(o + j) % CS_ARRAY_LEN(skus)];
            len += (size_t)snprintf(items + len, sizeof items - len,
                                    "%s{\"sku\":\"%s\",\"name\":\"%s\",\"category\":\"%s\","
                                    "\"unit_price\":\"%u.%02u\",\"quantity\":%u}",
                                    j ? "," : "", s[0], s[1], s[2], 5 + (unsigned)((o + j) % 90),
                                    (unsigned)((o * 7 + j) % 100), 1 + (unsigned)(j % 2));
        }
        n = snprintf(buf, size,
                     "{\"event_id\":\"e%llu\",\"type\":\"order.placed\",\"occurred_at\":\"%s\","
                     "\"source\":\"shopware\",\"data\":{\"id\":\"%s\",\"customer_id\":\"%s\","
                     "\"currency\":\"EUR\",\"items\":[%s],\"totals\":{\"shipping\":\"4.90\"},"
                     "\"promised_delivery\":{\"earliest\":\"2026-04-02\",\"latest\":\"2026-04-04\"}}}",
                     (unsigned long long)i, ts, order, cust, items);
        break;
    }
    case 2:
        n = snprintf(buf, size,
                     "{\"event_id\":\"e%llu\",\"type\":\"shipment.created\",\"occurred_at\":\"%s\","
                     "\"data\":{\"id\":\"shp-%s\",\"order_id\":\"%s\",\"carrier\":\"%s\","
                     "\"service\":\"paket\",\"tracking_number\":\"JJD%012llu\","
                     "\"origin\":{\"postal_code\":\"04109\",\"city\":\"Leipzig\",\"country\":\"DE\"},"
                     "\"destination\":{\"postal_code\":\"%05llu\",\"country\":\"DE\"}}}",
                     (unsigned long long)i, ts, order, order, carrier, (unsigned long long)o,
                     (unsigned long long)(10000 + o % 89999));
        break;
    case 3: case 4: case 5: case 6:
        n = snprintf(buf, size,
                     "{\"event_id\":\"e%llu\",\"type\":\"tracking.event\",\"occurred_at\":\"%s\","
                     "\"data\":{\"shipment_id\":\"shp-%s\",\"carrier\":\"%s\","
                     "\"tracking_number\":\"JJD%012llu\",\"status\":\"%s\",\"carrier_code\":\"%llu\","
                     "\"carrier_text\":\"Die Sendung wurde im Start-Paketzentrum bearbeitet.\","
                     "\"location\":{\"city\":\"Leipzig\",\"country\":\"DE\"}}}",
                     (unsigned long long)i, ts, order, carrier, (unsigned long long)o,
                     scan_status[k - 3], (unsigned long long)k);
        break;
    case 7: case 8:
        n = snprintf(buf, size,
                     "{\"event_id\":\"e%llu\",\"type\":\"message.status\",\"occurred_at\":\"%s\","
                     "\"data\":{\"message_id\":\"msg-%s-%llu\",\"status\":\"%s\",\"channel\":\"email\","
                     "\"customer_id\":\"%s\"}}",
                     (unsigned long long)i, ts, order, (unsigned long long)k,
                     k == 7 ? "delivered" : "opened", cust);
        break;
    default:
        if (o % 3 == 0)
            n = snprintf(buf, size,
                         "{\"event_id\":\"e%llu\",\"type\":\"ticket.created\",\"occurred_at\":\"%s\","
                         "\"data\":{\"id\":\"tkt-%s\",\"customer_id\":\"%s\",\"order_id\":\"%s\","
                         "\"channel\":\"email\",\"category\":\"wismo\",\"subject\":\"Wo ist meine "
                         "Bestellung?\",\"body\":\"Hallo, meine Bestellung ist noch nicht da.\"}}",
                         (unsigned long long)i, ts, order, cust, order);
        else
            n = snprintf(buf, size,
                         "{\"event_id\":\"e%llu\",\"type\":\"feedback.submitted\",\"occurred_at\":\"%s\","
                         "\"data\":{\"id\":\"rev-%s\",\"kind\":\"review\",\"score\":%llu,"
                         "\"customer_id\":\"%s\",\"order_id\":\"%s\",\"title\":\"Gerne wieder\","
                         "\"text\":\"Schnelle Lieferung, gute Qualität.\",\"locale\":\"de\"}}",
                         (unsigned long long)i, ts, order, 1 + (unsigned long long)(o % 5), cust,
                         order);
        break;
    }
    return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

/* ---- helpers ---- */

static double now_s(void)
{
    return (double)cs_mono_ns() / 1e9;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            char *end;
            kib = strtol(line + 6, &end, 10);
            break;
        }
    fclose(f);
    return kib;
}

static void die(const char *what, const cs_err_t *err)
{
    fprintf(stderr, "bench_ingest: %s: %s %s\n", what, err ? err->field : "",
            err ? err->msg : "");
    exit(1);
}

/* ---- engine run ---- */

typedef struct slot {
    cs_ingest_req_t req;
    cs_ingest_item_t items[BATCH];
    cs_arena_t arena;
    bool busy;
} slot_t;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static uint64_t failed_items;

static void on_done(cs_ingest_req_t *req, void *arg)
{
    slot_t *s = arg;
    uint64_t bad = 0;
    for (size_t i = 0; i < req->n; i++)
        if (req->items[i].rc != CS_OK)
            bad++;
    pthread_mutex_lock(&mu);
    failed_items += bad + (req->rc != CS_OK ? req->n : 0);
    s->busy = false;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

typedef struct run_result {
    double seconds;
    uint64_t commits;
    long rss_samples[11];
} run_result_t;

static void run_engine(const char *target, uint64_t n, int64_t cache_kib, bool sample_rss,
                       run_result_t *res)
{
    cs_engine_opts_t o;
    cs_engine_t *e = NULL;
    cs_err_t err;
    static slot_t slots[IN_FLIGHT];
    char text[4096];
    cs_arena_setup();
    for (int k = 0; k < IN_FLIGHT; k++)
        cs_arena_init(&slots[k].arena);
    cs_engine_opts_default(&o);
    o.store = target;
    o.cache_kib = cache_kib;
    if (cs_engine_open(&o, &e, &err) != CS_OK)
        die("engine open", &err);
    memset(res, 0, sizeof *res);
    res->rss_samples[0] = rss_kib();
    uint64_t step = n / 10 ? n / 10 : 1;
    double t0 = now_s();
    uint64_t i = 0;
    while (i < n) {
        slot_t *s = NULL;
        pthread_mutex_lock(&mu);
        for (;;) {
            for (int k = 0; k < IN_FLIGHT && !s; k++)
                if (!slots[k].busy)
                    s = &slots[k];
            if (s)
                break;
            pthread_cond_wait(&cv, &mu);
        }
        s->busy = true;
        pthread_mutex_unlock(&mu);
        for (size_t k = 0; k < s->req.n; k++)
            cs_event_free(&s->items[k].ev); /* the previous batch, freed on this thread */
        /* parsed as `consonance import` does: in the batch's arena
         * (cs_sink_arena), given back once the batch is done */
        cs_arena_release(&s->arena);
        if (!getenv("BENCH_NO_ARENA"))
            cs_arena_use(&s->arena);
        size_t m = 0;
        uint64_t before = i;
        for (; m < BATCH && i < n; m++, i++) {
            size_t len = gen_event(i, text, sizeof text);
            memset(&s->items[m], 0, sizeof s->items[m]);
            if (cs_event_parse(text, len, &s->items[m].ev, &err) != CS_OK)
                die("generated event does not parse", &err);
        }
        cs_arena_use(NULL);
        memset(&s->req, 0, sizeof s->req);
        s->req.items = s->items;
        s->req.n = m;
        s->req.done = on_done;
        s->req.keep_events = true;
        s->req.done_arg = s;
        cs_rc rc;
        while ((rc = cs_engine_submit(e, &s->req)) == CS_ERR_BUSY)
            usleep(1000);
        if (rc != CS_OK)
            die("submit", NULL);
        if (sample_rss && i / step != before / step && i / step <= 10) {
            /* wait for everything queued so the sample reflects steady state */
            pthread_mutex_lock(&mu);
            for (int k = 0; k < IN_FLIGHT; k++)
                while (slots[k].busy)
                    pthread_cond_wait(&cv, &mu);
            pthread_mutex_unlock(&mu);
            res->rss_samples[i / step] = rss_kib();
        }
    }
    pthread_mutex_lock(&mu);
    for (int k = 0; k < IN_FLIGHT; k++)
        while (slots[k].busy)
            pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    res->seconds = now_s() - t0;
    for (int k = 0; k < IN_FLIGHT; k++) {
        for (size_t j = 0; j < slots[k].req.n; j++)
            cs_event_free(&slots[k].items[j].ev);
        cs_arena_release(&slots[k].arena);
    }
    cs_engine_stats_t st;
    cs_engine_stats(e, &st);
    res->commits = st.commits;
    if (st.events_new != n || failed_items) {
        fprintf(stderr, "bench_ingest: expected %llu new events, got %llu (failed %llu)\n",
                (unsigned long long)n, (unsigned long long)st.events_new,
                (unsigned long long)failed_items);
        exit(1);
    }
    cs_engine_close(&e);
}

/* ---- raw SQLite baseline ---- */

static double run_raw(const char *path, uint64_t n, uint64_t per_txn, int64_t cache_kib)
{
    sqlite3 *db;
    sqlite3_stmt *ins;
    char text[4096], id[32], pragma[64];
    static const char *const types[] = {"customer.upserted", "order.placed", "shipment.created",
                                        "tracking.event", "tracking.event", "tracking.event",
                                        "tracking.event", "message.status", "message.status",
                                        "feedback.submitted"};
    if (sqlite3_open(path, &db) != SQLITE_OK)
        die("raw open", NULL);
    snprintf(pragma, sizeof pragma, "PRAGMA cache_size=-%lld", (long long)cache_kib);
    if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", 0, 0, 0) ||
        sqlite3_exec(db, pragma, 0, 0, 0) ||
        sqlite3_exec(db, "CREATE TABLE events(seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL "
                         "UNIQUE, type TEXT NOT NULL, occurred_at INTEGER NOT NULL, body TEXT "
                         "NOT NULL)", 0, 0, 0) ||
        sqlite3_prepare_v2(db, "INSERT INTO events(event_id,type,occurred_at,body) "
                               "VALUES(?,?,?,?)", -1, &ins, 0))
        die(sqlite3_errmsg(db), NULL);
    double t0 = now_s();
    for (uint64_t i = 0; i < n; i++) {
        if (i % per_txn == 0 && sqlite3_exec(db, "BEGIN", 0, 0, 0))
            die(sqlite3_errmsg(db), NULL);
        size_t len = gen_event(i, text, sizeof text);
        snprintf(id, sizeof id, "e%llu", (unsigned long long)i);
        sqlite3_bind_text(ins, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, types[i % 10], -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 3, (sqlite3_int64)(1772323200000LL + (int64_t)i * 1000));
        sqlite3_bind_text(ins, 4, text, (int)len, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE)
            die(sqlite3_errmsg(db), NULL);
        sqlite3_reset(ins);
        if ((i + 1) % per_txn == 0 || i + 1 == n)
            if (sqlite3_exec(db, "COMMIT", 0, 0, 0))
                die(sqlite3_errmsg(db), NULL);
    }
    double secs = now_s() - t0;
    sqlite3_finalize(ins);
    sqlite3_close(db);
    return secs;
}

/* ---- raw SQLite baseline 2: the same rows the engine stored ----
 *
 * Every row of every table of the engine's store (the log and the folded
 * state), read into memory first, then inserted raw into a fresh file with
 * the same schema and indexes through one prepared INSERT per table, in
 * transactions of the engine's group size, same pragmas. Returns seconds;
 * *rows_out the number of rows. */
typedef struct rowset {
    char *table;
    int ncol;
    size_t nrows, cap;
    sqlite3_value **vals; /* nrows * ncol */
} rowset_t;

static double run_same_rows(const char *src_path, const char *dst_path, uint64_t per_txn_events,
                            uint64_t n_events, int64_t cache_kib, uint64_t *rows_out)
{
    sqlite3 *src, *dst;
    sqlite3_stmt *st;
    rowset_t sets[32];
    int nsets = 0;
    char sql[512], pragma[64];
    uint64_t total_rows = 0;
    if (sqlite3_open_v2(src_path, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        die("open engine store", NULL);
    if (sqlite3_open(dst_path, &dst) != SQLITE_OK)
        die("open raw store", NULL);
    snprintf(pragma, sizeof pragma, "PRAGMA cache_size=-%lld", (long long)cache_kib);
    if (sqlite3_exec(dst, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", 0, 0, 0) ||
        sqlite3_exec(dst, pragma, 0, 0, 0))
        die(sqlite3_errmsg(dst), NULL);
    /* the same schema: tables first, then indexes */
    for (int pass = 0; pass < 2; pass++) {
        sqlite3_prepare_v2(src, pass == 0 ? "SELECT name, sql FROM sqlite_master WHERE type='table' "
                                            "AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
                                          : "SELECT name, sql FROM sqlite_master WHERE type='index' "
                                            "AND sql IS NOT NULL ORDER BY rowid",
                           -1, &st, NULL);
        while (sqlite3_step(st) == SQLITE_ROW) {
            if (sqlite3_exec(dst, (const char *)sqlite3_column_text(st, 1), 0, 0, 0))
                die(sqlite3_errmsg(dst), NULL);
            if (pass == 0 && nsets < 32) {
                rowset_t *r = &sets[nsets++];
                memset(r, 0, sizeof *r);
                r->table = strdup((const char *)sqlite3_column_text(st, 0));
            }
        }
        sqlite3_finalize(st);
    }
    /* read every row into memory (not timed) */
    for (int i = 0; i < nsets; i++) {
        rowset_t *r = &sets[i];
        snprintf(sql, sizeof sql, "SELECT * FROM \"%s\"", r->table);
        if (sqlite3_prepare_v2(src, sql, -1, &st, NULL))
            die(sqlite3_errmsg(src), NULL);
        r->ncol = sqlite3_column_count(st);
        while (sqlite3_step(st) == SQLITE_ROW) {
            if (r->nrows == r->cap) {
                r->cap = r->cap ? r->cap * 2 : 1024;
                r->vals = realloc(r->vals, r->cap * (size_t)r->ncol * sizeof *r->vals);
            }
            for (int c = 0; c < r->ncol; c++)
                r->vals[r->nrows * (size_t)r->ncol + (size_t)c] = sqlite3_value_dup(sqlite3_column_value(st, c));
            r->nrows++;
        }
        sqlite3_finalize(st);
        total_rows += r->nrows;
    }
    sqlite3_close(src);
    /* as many rows per transaction as the engine's groups held, on average */
    uint64_t per_txn = per_txn_events * total_rows / (n_events ? n_events : 1);
    if (per_txn < 1)
        per_txn = 1;
    double t0 = now_s();
    uint64_t in_txn = 0;
    for (int i = 0; i < nsets; i++) {
        rowset_t *r = &sets[i];
        size_t len = (size_t)snprintf(sql, sizeof sql, "INSERT INTO \"%s\" VALUES(", r->table);
        for (int c = 0; c < r->ncol; c++)
            len += (size_t)snprintf(sql + len, sizeof sql - len, "%s?", c ? "," : "");
        snprintf(sql + len, sizeof sql - len, ")");
        if (sqlite3_prepare_v2(dst, sql, -1, &st, NULL))
            die(sqlite3_errmsg(dst), NULL);
        for (size_t k = 0; k < r->nrows; k++) {
            if (in_txn == 0 && sqlite3_exec(dst, "BEGIN", 0, 0, 0))
                die(sqlite3_errmsg(dst), NULL);
            for (int c = 0; c < r->ncol; c++)
                sqlite3_bind_value(st, c + 1, r->vals[k * (size_t)r->ncol + (size_t)c]);
            if (sqlite3_step(st) != SQLITE_DONE)
                die(sqlite3_errmsg(dst), NULL);
            sqlite3_reset(st);
            if (++in_txn == per_txn) {
                if (sqlite3_exec(dst, "COMMIT", 0, 0, 0))
                    die(sqlite3_errmsg(dst), NULL);
                in_txn = 0;
            }
        }
        sqlite3_finalize(st);
    }
    if (in_txn && sqlite3_exec(dst, "COMMIT", 0, 0, 0))
        die(sqlite3_errmsg(dst), NULL);
    double secs = now_s() - t0;
    sqlite3_close(dst);
    for (int i = 0; i < nsets; i++) {
        for (size_t k = 0; k < sets[i].nrows * (size_t)sets[i].ncol; k++)
            sqlite3_value_free(sets[i].vals[k]);
        free(sets[i].vals);
        free(sets[i].table);
    }
    *rows_out = total_rows;
    return secs;
}


/* ---- one customer with many orders (a marketplace's shared guest) ----
 *
 * The shipped playbook (etc/journeys) on a SQLite store, the journey
 * runtime driven directly with a manual clock (no writer thread): N
 * orders of one customer, five minutes apart, each with its parcel, a
 * scan on the way and the delivery status of a message; a journey pass
 * after each order's events, as the daemon runs one after a group. The
 * customer's runs pile up (the review request and the survey wait for a
 * delivery that does not come, 21 days), so a pass that reads all of
 * them for each order.placed grows with the orders. Prints the CPU time
 * of the passes (this thread's), and of the last tenth of the orders. */
static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void guest_ingest(cs_store_t *s, const char *text, cs_ms_t now)
{
    cs_event_t *ev;
    cs_err_t err;
    cs_ingest_outcome_t oc;
    int64_t seq;
    if (cs_event_parse(text, strlen(text), &ev, &err))
        die("guest: parse", &err);
    if (cs_store_begin(s, &err) || cs_store_ingest(s, ev, now, &oc, &seq, &err) ||
        cs_store_commit(s, &err))
        die("guest: ingest", &err);
    cs_event_free(&ev);
}

static void run_guest(const char *dir, uint64_t n)
{
    char target[1024], ts[40], buf[2048];
    cs_err_t err;
    cs_store_t *s;
    cs_store_opts_t so;
    cs_store_opts_default(&so);
    so.durable = false; /* CPU, not the disk's flushes */
    snprintf(target, sizeof target, "sqlite:%s/guest.db", dir);
    if (cs_store_open(target, &so, &s, &err))
        die("guest: open", &err);
    cs_clock_manual_t clock;
    cs_ms_t t0;
    cs_time_parse("2026-11-02T09:00:00Z", &t0);
    cs_clock_manual_init(&clock, t0);
    cs_journeys_opts_t jo = { .clock = &clock.clock };
    cs_journeys_t *js;
    if (cs_journeys_new(&jo, &js, &err) || cs_journeys_load_dir(js, CS_PLAYBOOK_DIR, &err))
        die("guest: journeys", &err);
    if (cs_store_begin(s, &err) || cs_journeys_sync(js, s, &err) || cs_store_commit(s, &err))
        die("guest: sync", &err);
    double cpu = 0, cpu_tail = 0;
    uint64_t tail_from = n - n / 10;
    for (uint64_t o = 0; o < n; o++) {
        cs_ms_t now = t0 + (cs_ms_t)o * 5 * 60 * 1000;
        cs_clock_manual_set(&clock, now);
        cs_time_format(now, ts, sizeof ts);
        snprintf(buf, sizeof buf,
                 "{\"event_id\":\"g%llu-o\",\"type\":\"order.placed\",\"occurred_at\":\"%s\","
                 "\"data\":{\"id\":\"g-%llu\",\"customer_id\":\"guest\",\"currency\":\"EUR\","
                 "\"customer\":{\"id\":\"guest\",\"email\":\"gast@beispiel.de\","
                 "\"consents\":{\"email\":{\"transactional\":true,\"marketing\":true}}},"
                 "\"items\":[{\"sku\":\"KAF-250\",\"name\":\"Kaffeebohnen 250 g\","
                 "\"unit_price\":\"8.90\",\"quantity\":%llu}]}}",
                 (unsigned long long)o, ts, (unsigned long long)o,
                 1 + (unsigned long long)(o % 3));
        guest_ingest(s, buf, now);
        snprintf(buf, sizeof buf,
                 "{\"event_id\":\"g%llu-s\",\"type\":\"shipment.created\",\"occurred_at\":\"%s\","
                 "\"data\":{\"id\":\"gs-%llu\",\"order_id\":\"g-%llu\",\"carrier\":\"dhl\","
                 "\"tracking_number\":\"G%012llu\"}}",
                 (unsigned long long)o, ts, (unsigned long long)o, (unsigned long long)o,
                 (unsigned long long)o);
        guest_ingest(s, buf, now);
        snprintf(buf, sizeof buf,
                 "{\"event_id\":\"g%llu-t\",\"type\":\"tracking.event\",\"occurred_at\":\"%s\","
                 "\"data\":{\"shipment_id\":\"gs-%llu\",\"carrier\":\"dhl\","
                 "\"tracking_number\":\"G%012llu\",\"status\":\"in_transit\"}}",
                 (unsigned long long)o, ts, (unsigned long long)o, (unsigned long long)o);
        guest_ingest(s, buf, now);
        snprintf(buf, sizeof buf,
                 "{\"event_id\":\"g%llu-m\",\"type\":\"message.status\",\"occurred_at\":\"%s\","
                 "\"data\":{\"message_id\":\"gm-%llu\",\"status\":\"delivered\","
                 "\"channel\":\"email\",\"customer_id\":\"guest\"}}",
                 (unsigned long long)o, ts, (unsigned long long)o);
        guest_ingest(s, buf, now);
        double a = thread_cpu_s();
        cs_ms_t next;
        if (cs_journeys_pass(js, s, 1000, &next, &err))
            die("guest: pass", &err);
        double d = thread_cpu_s() - a;
        cpu += d;
        if (o >= tail_from)
            cpu_tail += d;
    }
    json_t *runs;
    if (cs_store_call(s, runs_view, "guest", &runs, &err))
        die("guest: runs", &err);
    json_decref(runs);
    cs_journeys_stats_t tot;
    cs_journeys_totals(js, &tot);
    printf("guest_orders=%llu\nguest_events=%llu\nguest_runs_started=%llu\n"
           "guest_runs_exited=%llu\nguest_pass_cpu_s=%.2f\nguest_pass_cpu_ms_per_order=%.2f\n"
           "guest_pass_cpu_ms_per_order_last_tenth=%.2f\n",
           (unsigned long long)n, (unsigned long long)tot.events,
           (unsigned long long)tot.started, (unsigned long long)tot.exited, cpu,
           cpu * 1000.0 / (double)n, n / 10 ? cpu_tail * 1000.0 / (double)(n / 10) : 0.0);
    cs_journeys_free(js);
    cs_store_close(&s);
}

int main(int argc, char **argv)
{
    if (argc != 4 ||
        (strcmp(argv[1], "ingest") && strcmp(argv[1], "rss") && strcmp(argv[1], "guest"))) {
        fprintf(stderr, "usage: bench_ingest ingest|rss|guest DIR N\n");
        return 2;
    }
    const char *dir = argv[2];
    int64_t n64;
    if (!cs_parse_i64(argv[3], &n64) || n64 < 10) {
        fprintf(stderr, "bench_ingest: N must be an integer >= 10\n");
        return 2;
    }
    uint64_t n = (uint64_t)n64;
    const int64_t cache_kib = 16384;
    char target[1024], raw[1024];
    cs_log_set_level(CS_LOG_WARN);
    run_result_t r;
    if (strcmp(argv[1], "guest") == 0) {
        run_guest(dir, n);
        return 0;
    }
    if (strcmp(argv[1], "rss") == 0) {
        snprintf(target, sizeof target, "sqlite:%s/rss.db", dir);
        run_engine(target, n, cache_kib, true, &r);
        printf("rss_events=%llu\nrss_cache_kib=%lld\n", (unsigned long long)n,
               (long long)cache_kib);
        for (int k = 0; k <= 10; k++)
            printf("rss_kib_at_%llu=%ld\n", (unsigned long long)(n / 10 * (uint64_t)k),
                   r.rss_samples[k]);
        printf("rss_events_per_s=%.0f\n", (double)n / r.seconds);
        return 0;
    }
    snprintf(target, sizeof target, "sqlite:%s/engine.db", dir);
    snprintf(raw, sizeof raw, "%s/raw.db", dir);
    run_engine(target, n, cache_kib, false, &r);
    uint64_t per_txn = r.commits ? (n + r.commits - 1) / r.commits : n;
    char engine_path[1024], same[1024];
    snprintf(engine_path, sizeof engine_path, "%s/engine.db", dir);
    snprintf(same, sizeof same, "%s/same-rows.db", dir);
    uint64_t rows = 0;
    double same_s = run_same_rows(engine_path, same, per_txn, n, cache_kib, &rows);
    double raw_s = run_raw(raw, n, per_txn, cache_kib);
    double eng_rate = (double)n / r.seconds, raw_rate = (double)n / raw_s;
    double same_rate = (double)n / same_s;
    printf("ingest_events=%llu\ningest_commits=%llu\ningest_events_per_commit=%llu\n"
           "ingest_engine_events_per_s=%.0f\n"
           "ingest_same_rows=%llu\ningest_same_rows_per_s=%.0f\ningest_same_rows_events_per_s=%.0f\n"
           "ingest_ratio=%.3f\n"
           "ingest_raw_sqlite_rows_per_s=%.0f\ningest_ratio_log_only=%.3f\n",
           (unsigned long long)n, (unsigned long long)r.commits, (unsigned long long)per_txn,
           eng_rate, (unsigned long long)rows, (double)rows / same_s, same_rate,
           eng_rate / same_rate, raw_rate, eng_rate / raw_rate);
    return 0;
}
