/*
 * test_engine.c -- the writer and its group commit: synchronous and
 * asynchronous ingest, concurrency, duplicates, the drain on close, readers
 * and writer tasks. Uses a real SQLite file store in a temporary folder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/engine.h"
#include "test_store.h"

static char tmpdir[256];
static char target[512];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cs-engine-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(target, sizeof target, "sqlite:%s/engine.db", tmpdir);
    if (test_pg()) {
        char unused[64];
        if (test_store_fresh(unused, sizeof unused, "/tmp/cs-engine-pg-XXXXXX") != 0)
            return -1;
        snprintf(target, sizeof target, "%s", test_pg());
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static cs_event_t *order_event(const char *event_id, const char *order_id, const char *customer)
{
    char text[1024];
    snprintf(text, sizeof text,
             "{\"event_id\":\"%s\",\"type\":\"order.placed\",\"occurred_at\":\"2026-03-01T10:00:00Z\","
             "\"data\":{\"id\":\"%s\",\"customer_id\":\"%s\",\"currency\":\"EUR\","
             "\"items\":[{\"sku\":\"KAF-1\",\"name\":\"Kaffee\",\"unit_price\":\"12.90\",\"quantity\":2}]}}",
             event_id, order_id, customer);
    cs_event_t *ev = NULL;
    cs_err_t err;
    cs_rc rc = cs_event_parse(text, strlen(text), &ev, &err);
    if (rc)
        fail_msg("parse: %s (%s)", err.msg, err.field);
    return ev;
}

/* The defaults on the test's store; `tune` (may be NULL) changes some. */
static cs_engine_t *open_engine_tuned(void (*tune)(cs_engine_opts_t *o))
{
    cs_engine_opts_t o;
    cs_engine_opts_default(&o);
    o.store = target;
    if (tune)
        tune(&o);
    cs_engine_t *e = NULL;
    cs_err_t err;
    cs_rc rc = cs_engine_open(&o, &e, &err);
    if (rc)
        fail_msg("engine open: %s", err.msg);
    return e;
}

static cs_engine_t *open_engine(void)
{
    return open_engine_tuned(NULL);
}

static int64_t count_events(cs_engine_t *e)
{
    cs_store_t *r = NULL;
    cs_err_t err;
    assert_int_equal(cs_engine_reader_acquire(e, &r, &err), CS_OK);
    cs_store_counts_t c;
    assert_int_equal(cs_store_counts(r, &c, &err), CS_OK);
    cs_engine_reader_release(e, r);
    return c.events;
}

static int64_t count_events_reopened(void)
{
    cs_engine_t *e = open_engine();
    int64_t n = count_events(e);
    cs_engine_close(&e);
    return n;
}

static void test_sync_ingest_and_duplicates(void **state)
{
    (void)state;
    cs_engine_t *e = open_engine();
    cs_ingest_item_t items[3] = {0};
    items[0].ev = order_event("e1", "o1", "c1");
    items[1].ev = order_event("e2", "o2", "c1");
    items[2].ev = order_event("e1", "o1", "c1"); /* replay inside the same batch */
    cs_ingest_req_t req = {.items = items, .n = 3};
    assert_int_equal(cs_engine_ingest(e, &req), CS_OK);
    assert_int_equal(items[0].rc, CS_OK);
    assert_int_equal(items[0].outcome, CS_INGEST_NEW);
    assert_int_equal(items[1].outcome, CS_INGEST_NEW);
    assert_int_equal(items[2].outcome, CS_INGEST_DUPLICATE);
    assert_int_equal(items[2].seq, items[0].seq);
    assert_null(items[0].ev); /* consumed */
    assert_int_equal(count_events(e), 2);

    cs_engine_stats_t st;
    cs_engine_stats(e, &st);
    assert_int_equal(st.events_new, 2);
    assert_int_equal(st.events_duplicate, 1);
    assert_int_equal(st.by_type[CS_EV_ORDER_PLACED], 2);
    assert_true(st.commits >= 1);
    cs_engine_close(&e);
    assert_null(e);

    /* durable across a reopen */
    e = open_engine();
    assert_int_equal(count_events(e), 2);
    cs_engine_close(&e);
}

static cs_event_t *parse(const char *text)
{
    cs_event_t *ev = NULL;
    cs_err_t err;
    if (cs_event_parse(text, strlen(text), &ev, &err))
        fail_msg("parse: %s (%s)", err.msg, err.field);
    return ev;
}

static cs_event_t *scan_event(const char *event_id, const char *tracking_number)
{
    char text[512];
    snprintf(text, sizeof text,
             "{\"event_id\":\"%s\",\"type\":\"tracking.event\",\"occurred_at\":"
             "\"2026-03-02T08:00:00Z\",\"data\":{\"carrier\":\"dhl\",\"tracking_number\":"
             "\"%s\",\"status\":\"in_transit\"}}",
             event_id, tracking_number);
    return parse(text);
}

static cs_event_t *shipment_event(const char *event_id, const char *order_id,
                                  const char *tracking_number)
{
    char text[512];
    snprintf(text, sizeof text,
             "{\"event_id\":\"%s\",\"type\":\"shipment.created\",\"occurred_at\":"
             "\"2026-03-01T18:00:00Z\",\"data\":{\"id\":\"shp-%s\",\"order_id\":\"%s\","
             "\"carrier\":\"dhl\",\"tracking_number\":\"%s\"}}",
             event_id, tracking_number, order_id, tracking_number);
    return parse(text);
}

/* A scan waits for its parcel only while no shipment.created has claimed
 * it: one announced later in the same request attaches it before the
 * answer, which then says accepted, not waiting. */
static void test_waiting_scan_settled_in_its_group(void **state)
{
    (void)state;
    cs_engine_t *e = open_engine();
    cs_ingest_item_t items[6] = {0};
    items[0].ev = scan_event("w1", "T1");        /* its parcel comes below */
    items[1].ev = scan_event("w2", "T2");        /* its parcel never comes */
    items[2].ev = order_event("w3", "o-w", "c-w");
    items[3].ev = shipment_event("w4", "o-w", "T1");
    items[4].ev = scan_event("w5", "T1");        /* known by then */
    items[5].ev = scan_event("w6", "T3");        /* after the last shipment */
    cs_ingest_req_t req = {.items = items, .n = 6};
    assert_int_equal(cs_engine_ingest(e, &req), CS_OK);
    for (int i = 0; i < 6; i++)
        assert_int_equal(items[i].rc, CS_OK);
    assert_int_equal(items[0].outcome, CS_INGEST_NEW);
    assert_int_equal(items[1].outcome, CS_INGEST_PENDING);
    assert_int_equal(items[3].outcome, CS_INGEST_NEW);
    assert_int_equal(items[4].outcome, CS_INGEST_NEW);
    assert_int_equal(items[5].outcome, CS_INGEST_PENDING);

    /* the store's answer, read back: attached, waiting, no such scan */
    cs_store_t *r = NULL;
    cs_err_t err;
    bool waiting = true;
    assert_int_equal(cs_engine_reader_acquire(e, &r, &err), CS_OK);
    assert_int_equal(cs_store_scan_waiting(r, items[0].seq, &waiting, &err), CS_OK);
    assert_false(waiting);
    assert_int_equal(cs_store_scan_waiting(r, items[1].seq, &waiting, &err), CS_OK);
    assert_true(waiting);
    assert_int_equal(cs_store_scan_waiting(r, items[2].seq, &waiting, &err), CS_OK);
    assert_false(waiting); /* an order's seq is no scan */
    cs_engine_reader_release(e, r);

    /* a shipment in a later request attaches the rest; the earlier answer
     * stands as given */
    cs_ingest_item_t later[1] = {{.ev = shipment_event("w7", "o-w", "T2")}};
    cs_ingest_req_t req2 = {.items = later, .n = 1};
    assert_int_equal(cs_engine_ingest(e, &req2), CS_OK);
    assert_int_equal(later[0].rc, CS_OK);
    assert_int_equal(later[0].outcome, CS_INGEST_NEW);
    assert_int_equal(cs_engine_reader_acquire(e, &r, &err), CS_OK);
    assert_int_equal(cs_store_scan_waiting(r, items[1].seq, &waiting, &err), CS_OK);
    assert_false(waiting);
    cs_engine_reader_release(e, r);
    cs_engine_close(&e);
}

typedef struct thread_arg {
    cs_engine_t *e;
    int id;
    int n;
} thread_arg_t;

static void *submitter(void *p)
{
    thread_arg_t *a = p;
    for (int i = 0; i < a->n; i++) {
        char eid[64], oid[64];
        snprintf(eid, sizeof eid, "t%d-e%d", a->id, i);
        snprintf(oid, sizeof oid, "t%d-o%d", a->id, i);
        cs_ingest_item_t item = {.ev = order_event(eid, oid, "c")};
        cs_ingest_req_t req = {.items = &item, .n = 1};
        if (cs_engine_ingest(a->e, &req) != CS_OK || item.rc != CS_OK)
            return (void *)1;
    }
    return NULL;
}

static void test_concurrent_submitters_share_commits(void **state)
{
    (void)state;
    cs_engine_t *e = open_engine();
    enum { T = 8, N = 100 };
    pthread_t th[T];
    thread_arg_t args[T];
    for (int i = 0; i < T; i++) {
        args[i] = (thread_arg_t){e, i, N};
        pthread_create(&th[i], NULL, submitter, &args[i]);
    }
    for (int i = 0; i < T; i++) {
        void *res;
        pthread_join(th[i], &res);
        assert_null(res);
    }
    assert_int_equal(count_events(e), T * N);
    cs_engine_stats_t st;
    cs_engine_stats(e, &st);
    assert_int_equal(st.events_new, T * N);
    /* group commit: with 8 concurrent single-event submitters, some commits
     * must have carried more than one event */
    assert_true(st.commits < (uint64_t)(T * N));
    assert_true(st.group_events_max > 1);
    cs_engine_close(&e);
}

static atomic_int callbacks;

static void on_done(cs_ingest_req_t *req, void *arg)
{
    (void)arg;
    if (req->rc == CS_OK && req->items[0].rc == CS_OK)
        atomic_fetch_add(&callbacks, 1);
}

static void test_close_drains_queue(void **state)
{
    (void)state;
    cs_engine_t *e = open_engine();
    enum { N = 500 };
    cs_ingest_item_t *items = calloc(N, sizeof *items);
    cs_ingest_req_t *reqs = calloc(N, sizeof *reqs);
    atomic_store(&callbacks, 0);
    for (int i = 0; i < N; i++) {
        char eid[32];
        snprintf(eid, sizeof eid, "q%d", i);
        items[i].ev = order_event(eid, eid, "c");
        reqs[i] = (cs_ingest_req_t){.items = &items[i], .n = 1, .done = on_done};
        assert_int_equal(cs_engine_submit(e, &reqs[i]), CS_OK);
    }
    cs_engine_close(&e); /* must commit all 500 before returning */
    assert_int_equal(atomic_load(&callbacks), N);
    free(items);
    free(reqs);
    e = open_engine();
    assert_int_equal(count_events(e), N);
    cs_engine_close(&e);
}

static off_t file_size(const char *suffix)
{
    char p[600];
    snprintf(p, sizeof p, "%s/engine.db%s", tmpdir, suffix);
    struct stat st;
    return stat(p, &st) == 0 ? st.st_size : -1;
}

/* Requests that queue while a group is written join it when the syncer is
 * still busy with the group before: each keeps its own outcome (new or
 * duplicate), every one is answered once, and a group never exceeds
 * max_group_events. */
static atomic_int join_new, join_dup, join_bad;

static void on_join_done(cs_ingest_req_t *req, void *arg)
{
    bool want_dup = arg != NULL;
    if (req->rc != CS_OK || req->items[0].rc != CS_OK)
        atomic_fetch_add(&join_bad, 1);
    else if (req->items[0].outcome == CS_INGEST_DUPLICATE)
        atomic_fetch_add(want_dup ? &join_dup : &join_bad, 1);
    else
        atomic_fetch_add(want_dup ? &join_bad : &join_new, 1);
}

/* The first request's answer: it runs on the syncer, which it keeps busy
 * (as a slow fsync would) until the test lets it go. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool entered, release;
} hold = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false};

static void on_held_done(cs_ingest_req_t *req, void *arg)
{
    pthread_mutex_lock(&hold.mu);
    hold.entered = true;
    pthread_cond_broadcast(&hold.cv);
    while (!hold.release)
        pthread_cond_wait(&hold.cv, &hold.mu);
    pthread_mutex_unlock(&hold.mu);
    on_join_done(req, arg);
}

static void small_groups(cs_engine_opts_t *o)
{
    o->max_group_events = 50;
}

/* Wait until `cond` holds, polling; fail naming `what` after a minute
 * (none of the waits takes more than moments). */
#define WAIT_UNTIL(cond, what)                                                                  \
    do {                                                                                       \
        int waited_ = 0;                                                                       \
        while (!(cond)) {                                                                      \
            if (++waited_ > 60 * 1000)                                                         \
                fail_msg("waited a minute for %s", what);                                      \
            usleep(1000);                                                                      \
        }                                                                                      \
    } while (0)

static void submit_join(cs_engine_t *e, cs_ingest_item_t *items, cs_ingest_req_t *reqs, int i,
                        bool dup, cs_ingest_done_fn done)
{
    char eid[32];
    snprintf(eid, sizeof eid, "j%d", dup ? i - 1 : i);
    items[i].ev = order_event(eid, eid, "c");
    reqs[i] = (cs_ingest_req_t){ .items = &items[i], .n = 1, .done = done,
                                 .done_arg = dup ? (void *)1 : NULL };
    assert_int_equal(cs_engine_submit(e, &reqs[i]), CS_OK);
}

/* Made to happen, not waited for by chance: the first request's answer
 * holds the syncer busy; the test's own connection holds SQLite's write
 * lock while the writer takes the second request, so the writer waits
 * for it inside that group's transaction while JOINERS more requests
 * queue. Let go, the writer writes the second request, finds the syncer
 * busy and the queue full, and 49 of them join its group (50 events at
 * most); the rest make the next group. The writer waits for the lock up
 * to the store's busy timeout (5 s); the test holds it only while it
 * queues the requests. */
static void test_queued_requests_join_the_group(void **state)
{
    (void)state;
    if (test_pg())
        skip(); /* the syncer is the SQLite backend's */
    cs_engine_t *e = open_engine_tuned(small_groups);
    enum { JOINERS = 60, N = 2 + JOINERS, ROOM = 50 - 1 };
    cs_ingest_item_t items[N];
    cs_ingest_req_t reqs[N];
    memset(items, 0, sizeof items);
    atomic_store(&join_new, 0);
    atomic_store(&join_dup, 0);
    atomic_store(&join_bad, 0);
    hold.entered = hold.release = false;
    cs_engine_stats_t st;

    submit_join(e, items, reqs, 0, false, on_held_done);
    pthread_mutex_lock(&hold.mu);
    while (!hold.entered)
        pthread_cond_wait(&hold.cv, &hold.mu);
    pthread_mutex_unlock(&hold.mu);

    char path[600];
    snprintf(path, sizeof path, "%s/engine.db", tmpdir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 60 * 1000);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    submit_join(e, items, reqs, 1, false, on_join_done);
    WAIT_UNTIL((cs_engine_stats(e, &st), st.queue_events == 0),
               "the writer to take the second request");
    /* every fourth event repeats the one sent just before */
    int dups = 0;
    for (int i = 2; i < N; i++) {
        submit_join(e, items, reqs, i, i % 4 == 3, on_join_done);
        dups += i % 4 == 3;
    }
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    /* the second group is written (the joiners in it) before the syncer
     * is let go */
    WAIT_UNTIL((cs_engine_stats(e, &st), st.queue_events == 0 && st.commits >= 3),
               "the writer to write the queued requests");
    pthread_mutex_lock(&hold.mu);
    hold.release = true;
    pthread_cond_broadcast(&hold.cv);
    pthread_mutex_unlock(&hold.mu);
    WAIT_UNTIL(atomic_load(&join_new) + atomic_load(&join_dup) + atomic_load(&join_bad) == N,
               "every request to be answered");

    cs_engine_stats(e, &st);
    assert_int_equal(st.group_events_joined, ROOM);
    assert_int_equal(st.group_events_max, 50);
    assert_int_equal(st.commits, 3); /* the first request, it with 49 joined, the rest */
    assert_int_equal(atomic_load(&join_bad), 0);
    assert_int_equal(atomic_load(&join_new), N - dups);
    assert_int_equal(atomic_load(&join_dup), dups);
    assert_int_equal(count_events(e), N - dups);
    cs_engine_close(&e);
}

/* The WAL is copied into the database file while the writer goes on, and
 * it stays bounded under a steady stream of small commits (a checkpointer
 * whose connection never opened the WAL copied nothing, and the WAL grew to
 * hundreds of MiB before the writer stepped in). */
/* the same WAL and checkpoints, without an fsync per commit */
static void not_durable(cs_engine_opts_t *o)
{
    o->durable = false;
}

static void test_wal_checkpointed_and_bounded(void **state)
{
    (void)state;
    if (test_pg())
        skip(); /* the WAL is the SQLite backend's */
    cs_engine_t *e = open_engine_tuned(not_durable);
    enum { N1 = 2500, N = 9000 };
    off_t wal_max = 0, db = 0;
    for (int i = 0; i < N; i++) {
        char eid[32], cust[32];
        snprintf(eid, sizeof eid, "w%d", i);
        snprintf(cust, sizeof cust, "c%d", i % 97);
        cs_ingest_item_t item = {.ev = order_event(eid, eid, cust)};
        cs_ingest_req_t req = {.items = &item, .n = 1};
        assert_int_equal(cs_engine_ingest(e, &req), CS_OK);
        assert_int_equal(item.rc, CS_OK);
        off_t w = file_size("-wal");
        if (w > wal_max)
            wal_max = w;
        if (i + 1 == N1) {
            /* about 20,000 frames: past the checkpointer's 8,000 and below
             * the writer's own bound, so only the background checkpointer
             * can have copied pages into the file */
            assert_true(wal_max < (off_t)64000 * (4096 + 24));
            /* up to a minute: the checkpointer's thread on a busy machine
             * (ASan, a parallel suite) may be slow to get its turn */
            for (int k = 0; k < 1200 && (db = file_size("")) < 256 * 1024; k++)
                usleep(50 * 1000);
            assert_true(db >= 256 * 1024);
        }
    }
    /* 9,000 commits of about eight pages each: unbounded, the WAL would pass
     * 280 MiB; the writer's bound is 64,000 frames (~256 MiB, CKPT_MAX_FRAMES
     * in sqlite.c) */
    assert_true(wal_max < (off_t)65000 * (4096 + 24));
    cs_engine_close(&e);
    /* a clean close leaves everything in the database file */
    assert_true(file_size("-wal") <= 0);
    assert_int_equal(count_events_reopened(), N);
}

static void ingest_one(cs_engine_t *e, const char *id)
{
    cs_ingest_item_t item = {.ev = order_event(id, id, "c-snap")};
    cs_ingest_req_t req = {.items = &item, .n = 1};
    assert_int_equal(cs_engine_ingest(e, &req), CS_OK);
    assert_int_equal(item.rc, CS_OK);
}

/* A reader's use reads all its statements from one moment, on either
 * store: a view built of several reads while a write commits (another
 * node's, on PostgreSQL) is of one moment, not half of each. The next use
 * reads the write. */
static void test_reader_use_reads_one_moment(void **state)
{
    (void)state;
    cs_engine_t *e = open_engine();
    ingest_one(e, "m1");
    cs_store_t *r = NULL;
    cs_err_t err;
    cs_store_counts_t c;
    assert_int_equal(cs_engine_reader_acquire(e, &r, &err), CS_OK);
    assert_int_equal(cs_store_counts(r, &c, &err), CS_OK);
    assert_int_equal(c.events, 1);
    ingest_one(e, "m2"); /* acknowledged: committed while the use goes on */
    assert_int_equal(cs_store_counts(r, &c, &err), CS_OK);
    assert_int_equal(c.events, 1);
    cs_engine_reader_release(e, r);
    assert_int_equal(count_events(e), 2);
    cs_engine_close(&e);
}

/* A reader given back to the pool may keep its read snapshot for its next
 * use: a write acknowledged since is read all the same, and a snapshot
 * waiting in the pool is ended (by the checkpointer, at least once a
 * second), so the WAL can be copied back and started over. */
static void test_reader_snapshot_kept_and_ended(void **state)
{
    (void)state;
    if (test_pg())
        skip(); /* the held snapshot is the SQLite backend's */
    /* kept for a minute: only a commit can end it before the checks */
    cs_store_sqlite_snapshot_ns((uint64_t)60 * 1000 * 1000 * 1000);
    cs_engine_t *e = open_engine();
    ingest_one(e, "s1");
    assert_int_equal(count_events(e), 1); /* the reader goes back holding its snapshot */
    ingest_one(e, "s2");
    assert_int_equal(count_events(e), 2); /* the same reader, reading the write */
    ingest_one(e, "s3");                  /* the reader waits behind it */

    char path[600];
    snprintf(path, sizeof path, "%s/engine.db", tmpdir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 100);
    /* a connection opens the WAL at its first read */
    assert_int_equal(sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL),
                     SQLITE_OK);
    /* TRUNCATE waits for every reader to read the latest snapshot: one left
     * in the pool on an older one keeps it from ever succeeding */
    int rc = SQLITE_BUSY, log = -1;
    for (int k = 0; k < 100 && (rc != SQLITE_OK || log != 0); k++) {
        rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, NULL);
        if (rc != SQLITE_OK || log != 0)
            usleep(100 * 1000);
    }
    sqlite3_close(db);
    assert_int_equal(rc, SQLITE_OK);
    assert_int_equal(log, 0);
    assert_int_equal(count_events(e), 3);
    cs_engine_close(&e);
}

static cs_rc count_task(cs_store_t *s, void *arg)
{
    cs_store_counts_t c;
    cs_rc rc = cs_store_counts(s, &c, NULL);
    *(int64_t *)arg = c.events;
    return rc;
}

static void test_writer_task_and_apikeys(void **state)
{
    (void)state;
    cs_engine_t *e = open_engine();
    cs_ingest_item_t item = {.ev = order_event("k1", "k1", "c")};
    cs_ingest_req_t req = {.items = &item, .n = 1};
    assert_int_equal(cs_engine_ingest(e, &req), CS_OK);
    int64_t n = -1;
    assert_int_equal(cs_engine_with_writer(e, count_task, &n), CS_OK);
    assert_int_equal(n, 1);

    cs_store_t *r = NULL;
    cs_err_t err;
    assert_int_equal(cs_engine_reader_acquire(e, &r, &err), CS_OK);
    cs_engine_reader_release(e, r);
    cs_engine_close(&e);

    /* keys: created hashed, verified, revoked */
    cs_store_t *s = NULL;
    assert_int_equal(cs_store_open(target, NULL, &s, &err), CS_OK);
    char secret[CS_APIKEY_SECRET_MAX];
    cs_apikey_t k, found;
    assert_int_equal(cs_apikey_create(s, "shop", CS_SCOPE_WRITE, 1000, secret, &k, &err), CS_OK);
    assert_true(strncmp(secret, "cs_live_", 8) == 0);
    assert_int_equal(cs_apikey_verify(s, secret, &found, &err), CS_OK);
    assert_int_equal(found.scopes, CS_SCOPE_WRITE);
    assert_string_equal(found.id, k.id);
    assert_int_equal(cs_apikey_verify(s, "cs_live_nope", &found, &err), CS_ERR_AUTH);
    assert_int_equal(s->ops->apikey_revoke(s, k.id, 2000, &err), CS_OK);
    assert_int_equal(cs_apikey_verify(s, secret, &found, &err), CS_ERR_AUTH);
    cs_store_close(&s);
}

/* A writer whose connection the server ended while it was idle (a restart,
 * a failover, pg_terminate_backend) connects again at its next
 * transaction: the first group after it is written, not refused. */
static void one_in_tx(cs_store_t *s, const char *id)
{
    cs_err_t err;
    cs_ingest_outcome_t oc;
    int64_t seq;
    cs_event_t *ev = order_event(id, id, "c");
    cs_rc rc = cs_store_begin(s, &err);
    if (rc)
        fail_msg("begin after the connection was ended: %s", err.msg);
    assert_int_equal(cs_store_ingest(s, ev, 1000, &oc, &seq, &err), CS_OK);
    assert_int_equal(cs_store_commit(s, &err), CS_OK);
    assert_int_equal(oc, CS_INGEST_NEW);
    cs_event_free(&ev);
}

static void test_pg_writer_connects_again_at_begin(void **state)
{
    (void)state;
    if (!test_pg())
        skip(); /* PostgreSQL's connections */
    cs_store_t *s = NULL;
    cs_err_t err;
    assert_int_equal(cs_store_open(target, NULL, &s, &err), CS_OK);
    one_in_tx(s, "r1");
    /* end every other session on the database, waiting until they are gone */
    PGconn *c = PQconnectdb(test_pg());
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) "
                            "FROM pg_stat_activity WHERE datname=current_database() AND "
                            "pid<>pg_backend_pid()");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), "1");
    PQclear(r);
    PQfinish(c);
    one_in_tx(s, "r2");
    cs_store_counts_t n;
    assert_int_equal(cs_store_counts(s, &n, &err), CS_OK);
    assert_int_equal(n.events, 2);
    cs_store_close(&s);
}

/* A node that starts while another migrates the schema waits for it, however
 * long the migration takes; it failed at the lock timeout (5 s), so a
 * migration longer than that stopped every other node starting with it. */
typedef struct open_arg {
    cs_rc rc;
    cs_err_t err;
    atomic_bool done;
} open_arg_t;

static void *open_writer(void *arg)
{
    open_arg_t *a = arg;
    cs_store_opts_t o;
    cs_store_opts_default(&o);
    o.busy_timeout_ms = 200; /* the lock timeout, so the test need not wait 5 s */
    cs_store_t *s = NULL;
    a->rc = cs_store_open(target, &o, &s, &a->err);
    cs_store_close(&s);
    atomic_store(&a->done, true);
    return NULL;
}

static int64_t pg_int(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

static void test_pg_open_waits_for_a_migration(void **state)
{
    (void)state;
    if (!test_pg())
        skip(); /* PostgreSQL's migration lock */
    PGconn *c = PQconnectdb(test_pg());
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    /* another node migrating: it holds the migration lock (CS_PG_LOCK_MIGRATE,
     * src/store/sql_int.h) in its transaction */
    PGresult *r = PQexec(c, "BEGIN; SELECT pg_advisory_xact_lock(289632318209)");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    open_arg_t a = { .rc = CS_OK };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, open_writer, &a), 0);
    /* until the opening node waits for the lock (or has given up) */
    while (!atomic_load(&a.done) &&
           pg_int(c, "SELECT count(*) FROM pg_locks WHERE locktype='advisory' AND "
                     "NOT granted") == 0)
        usleep(10000);
    usleep(1000000); /* five times its lock timeout */
    r = PQexec(c, "COMMIT");
    PQclear(r);
    pthread_join(th, NULL);
    PQfinish(c);
    if (a.rc)
        fail_msg("open while another node migrates: %s", a.err.msg);
}

static void test_scopes(void **state)
{
    (void)state;
    assert_int_equal(cs_scopes_parse("read,write"), CS_SCOPE_READ | CS_SCOPE_WRITE);
    assert_int_equal(cs_scopes_parse("admin"), CS_SCOPE_ADMIN);
    assert_int_equal(cs_scopes_parse("read,delete"), -1);
    assert_int_equal(cs_scopes_parse(""), -1);
    char buf[64];
    assert_string_equal(cs_scopes_format(CS_SCOPE_READ | CS_SCOPE_ADMIN, buf, sizeof buf),
                        "read,admin");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sync_ingest_and_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_waiting_scan_settled_in_its_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_submitters_share_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queued_requests_join_the_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_drains_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_task_and_apikeys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_checkpointed_and_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_snapshot_kept_and_ended, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_use_reads_one_moment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_writer_connects_again_at_begin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_open_waits_for_a_migration, setup, teardown),
        cmocka_unit_test(test_scopes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
