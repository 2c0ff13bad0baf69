/*
 * engine.c -- the single writer and its group commit. See engine.h.
 *
 * Shape: submitters append requests to a queue under `mu` and signal `cv`.
 * The writer thread takes as many queued requests as fit into one group
 * (max_group_events, but always at least one request), writes them in one
 * transaction and, once the commit is durable, completes every request of
 * the group. A store that can defer the fsync (ops commit_deferred + sync)
 * hands the committed group to the syncer thread, which fsyncs once for
 * every group queued before it began and completes them, while the writer
 * goes on with the next group (requests that queue while a group is
 * written join it before its commit when the syncer is still busy: they
 * could not be durable sooner); otherwise the commit itself is durable and
 * the writer completes the group. A store failure inside a group rolls the
 * group back and replays it one event per transaction, so one poisonous
 * event cannot take its neighbours down.
 *
 * Shutdown: `closing` refuses new submissions; the writer drains what is
 * queued before it exits and the syncer answers the last groups after it,
 * so nothing acknowledged -- and nothing accepted into the queue -- is
 * dropped.
 */
#include "engine.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../tracking/carriers.h"

typedef struct writer_task {
    cs_rc (*fn)(cs_store_t *s, void *arg);
    void *arg;
    cs_rc rc;
    bool done;
    struct writer_task *next;
} writer_task_t;

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
} waiter_t;

struct cs_engine {
    char *target;              /* owned copy of the store target */
    const cs_clock_t *clock;   /* borrowed */
    cs_store_t *writer;        /* used only by the writer thread (and open/close) */
    size_t max_group;
    size_t max_queue;
    int64_t cache_kib;
    bool durable;
    cs_carriers_t *carriers;   /* borrowed; NULL = raw scans stay unmapped */

    pthread_t thread;
    bool thread_started;
    /* deferred durability (store ops commit_deferred + sync): committed
     * groups wait here for the syncer's fsync before they are answered */
    pthread_t syncer;
    bool syncer_started;
    pthread_mutex_t smu;       /* guards the sync queue and syncer_stop */
    pthread_cond_t scv;
    cs_ingest_req_t *shead, *stail;
    bool syncer_stop;
    _Atomic bool sync_busy;    /* groups handed to the syncer and not answered yet */
    /* a sync failed: the store refuses every write until it is opened
     * again (walbuf.h); set once by the syncer, read by health checks */
    _Atomic bool refusing;
    cs_err_t refuse_err;       /* why; guarded by smu */
    /* a store several nodes share: the other nodes' word of new work */
    pthread_t listener;
    bool listener_started;
    _Atomic bool listener_stop;
    cs_store_t *wake;          /* the listener's own handle */

    pthread_mutex_t mu;        /* guards the queue, tasks and closing */
    pthread_cond_t cv;         /* writer waits for work */
    pthread_cond_t task_cv;    /* task submitters wait for completion */
    cs_ingest_req_t *head, *tail;
    size_t queued_events;
    writer_task_t *tasks;
    bool closing;
    cs_engine_hook_t hook;     /* set before traffic; run only by the writer */
    cs_ms_t hook_next;         /* engine-clock time the hook asked for; 0 = none */
    bool hook_poked;
    bool hook_pending;         /* groups came in since the hook last ran */
    int64_t hook_ran_ms;       /* monotonic ms of the hook's last run */

    pthread_mutex_t rmu;       /* guards the reader pool */
    cs_store_t **readers;      /* free reader handles */
    size_t n_readers;
    size_t max_readers;

    _Atomic uint64_t st_new, st_dup, st_failed, st_commits, st_commit_ns, st_group_max,
        st_store_errors, st_hook_runs, st_hook_errors, st_syncs, st_sync_ns, st_joined;
    _Atomic uint64_t st_by_type[CS_EV__COUNT];
};

void cs_engine_opts_default(cs_engine_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->store = "sqlite:consonance.db";
    o->durable = true;
}

const cs_clock_t *cs_engine_clock(const cs_engine_t *e)
{
    return e->clock;
}

struct cs_carriers *cs_engine_carriers(const cs_engine_t *e)
{
    return e->carriers;
}

/* ---- the writer ---- */

/* Under load the background hook runs at most this often: a pass after
 * every group of a few single events would cost more than the events
 * (each pass reads the log's new events for the promise model, the order
 * watch and the journeys). Real time, not the engine clock: a test clock
 * may stand still. */
#define HOOK_GAP_MS 10

static int64_t mono_ms(void)
{
    return (int64_t)(cs_mono_ns() / 1000000u);
}

/* Milliseconds until the hook may run again after groups (<= 0: now). */
static int64_t hook_gap_left(const cs_engine_t *e)
{
    return HOOK_GAP_MS - (mono_ms() - e->hook_ran_ms);
}

static void complete(cs_engine_t *e, cs_ingest_req_t *req)
{
    if (!req->keep_events)
        for (size_t i = 0; i < req->n; i++)
            cs_event_free(&req->items[i].ev);
    (void)e;
    if (req->done) {
        req->done(req, req->done_arg);
    } else if (req->waiter_) {
        waiter_t *w = req->waiter_;
        pthread_mutex_lock(&w->mu);
        w->done = true;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
    }
}

static void account(cs_engine_t *e, cs_ingest_item_t *it)
{
    if (it->rc == CS_ERR_RULE) {
        /* refused by the store's rules: the caller counts it rejected */
    } else if (it->rc) {
        atomic_fetch_add(&e->st_failed, 1);
    } else if (it->outcome == CS_INGEST_DUPLICATE) {
        atomic_fetch_add(&e->st_dup, 1);
    } else {
        atomic_fetch_add(&e->st_new, 1);
        if (it->ev && (unsigned)it->ev->type < CS_EV__COUNT)
            atomic_fetch_add(&e->st_by_type[it->ev->type], 1);
        /* counted once stored: a webhook sent again adds no unmapped scans */
        if (it->ev && it->ev->type == CS_EV_TRACKING_EVENT && it->ev->u.scan.unmapped)
            cs_carriers_count_unmapped(e->carriers, it->ev->u.scan.carrier);
    }
}

static cs_rc timed_commit(cs_engine_t *e, bool deferred, cs_err_t *err)
{
    uint64_t t0 = cs_mono_ns();
    cs_rc rc = deferred ? e->writer->ops->commit_deferred(e->writer, err)
                        : cs_store_commit(e->writer, err);
    if (rc == CS_OK) {
        atomic_fetch_add(&e->st_commits, 1);
        atomic_fetch_add(&e->st_commit_ns, cs_mono_ns() - t0);
    }
    return rc;
}

/* Tell the store which events follow (a remote store looks them up in one
 * go). */
static cs_rc hint_group(cs_engine_t *e, cs_ingest_req_t *group, cs_err_t *err)
{
    size_t n = 0, k = 0;
    for (cs_ingest_req_t *r = group; r; r = r->next_)
        n += r->n;
    const cs_event_t **evs = cs_calloc(n ? n : 1, sizeof *evs);
    if (!evs)
        return CS_OK; /* a hint only */
    for (cs_ingest_req_t *r = group; r; r = r->next_)
        for (size_t i = 0; i < r->n; i++)
            evs[k++] = r->items[i].ev;
    cs_rc rc = cs_store_ingest_hint(e->writer, evs, n, err);
    cs_free(evs);
    return rc;
}

/* Take whole requests off the queue, up to `room` events (at least one
 * request when `one` is set, whatever its size); NULL when none. With mu
 * held. */
static cs_ingest_req_t *take_requests(cs_engine_t *e, size_t room, bool one, size_t *n_events)
{
    cs_ingest_req_t *first = e->head, *last = NULL;
    size_t n = 0;
    for (cs_ingest_req_t *r = e->head; r; r = r->next_) {
        if ((last || !one) && n + r->n > room)
            break;
        n += r->n;
        last = r;
    }
    *n_events = n;
    if (!last)
        return NULL;
    e->head = last->next_;
    if (!e->head)
        e->tail = NULL;
    last->next_ = NULL;
    e->queued_events -= n;
    return first;
}

static cs_rc ingest_requests(cs_engine_t *e, cs_ingest_req_t *r, cs_ms_t now, cs_err_t *err)
{
    for (; r; r = r->next_) {
        for (size_t i = 0; i < r->n; i++) {
            cs_ingest_item_t *it = &r->items[i];
            cs_rc rc = cs_store_ingest(e->writer, it->ev, now, &it->outcome, &it->seq, err);
            if (rc)
                return rc;
        }
    }
    return CS_OK;
}

/* A scan kept waiting for its parcel is attached when a shipment.created
 * for it comes later in the same group; its answer then says accepted
 * rather than "waiting_for shipment". The store settles which were
 * attached: asked only for the waiting scans before such a shipment, so
 * a group without both costs nothing. `stop` ends the walk (the item
 * being written one by one; the items after it are not written yet), NULL
 * for the whole group. Inside the group's transaction, or after the
 * commit of the one-by-one replay's shipment. */
static cs_rc settle_waiting(cs_engine_t *e, cs_ingest_req_t *group, const cs_ingest_item_t *stop,
                            cs_err_t *err)
{
    cs_ingest_item_t *last_shipment = NULL;
    bool waiting_before = false, done = false;
    for (cs_ingest_req_t *r = group; r && !done; r = r->next_) {
        for (size_t i = 0; i < r->n && !done; i++) {
            cs_ingest_item_t *it = &r->items[i];
            if (it->rc == CS_OK && it->outcome == CS_INGEST_PENDING)
                waiting_before = true;
            else if (it->rc == CS_OK && it->outcome == CS_INGEST_NEW && waiting_before &&
                     it->ev->type == CS_EV_SHIPMENT_CREATED)
                last_shipment = it;
            done = it == stop;
        }
    }
    if (!last_shipment)
        return CS_OK;
    for (cs_ingest_req_t *r = group; r; r = r->next_) {
        for (size_t i = 0; i < r->n; i++) {
            cs_ingest_item_t *it = &r->items[i];
            if (it == last_shipment)
                return CS_OK;
            bool waiting = true;
            cs_rc rc;
            if (it->rc != CS_OK || it->outcome != CS_INGEST_PENDING)
                continue;
            if ((rc = cs_store_scan_waiting(e->writer, it->seq, &waiting, err)))
                return rc;
            if (!waiting)
                it->outcome = CS_INGEST_NEW;
        }
    }
    return CS_OK;
}

/* One transaction for the whole group. Returns non-zero when the group
 * failed and was rolled back (items are then untouched for the replay);
 * *began is false when not even the transaction could start (the store is
 * away: a replay would only wait again).
 *
 * While the syncer is still busy with the groups before it, this one
 * could not be made durable any sooner than the next sync: the requests
 * that came in while it was written join it (up to max_group events), so
 * one commit serves more events. They are appended to the group's list,
 * which the caller answers, or replays one by one on failure. Nothing
 * waits for them: only what is already queued joins. */
static cs_rc write_group(cs_engine_t *e, cs_ingest_req_t *group, size_t *n_events, cs_ms_t now,
                         bool *began, cs_err_t *err)
{
    cs_rc rc = cs_store_begin(e->writer, err);
    *began = rc == CS_OK;
    if (rc)
        return rc;
    if (e->writer->ops->ingest_hint && (rc = hint_group(e, group, err)))
        goto fail;
    if ((rc = ingest_requests(e, group, now, err)))
        goto fail;
    cs_ingest_req_t *tail = group;
    while (tail->next_)
        tail = tail->next_;
    while (e->syncer_started && atomic_load(&e->sync_busy) && *n_events < e->max_group) {
        size_t m = 0;
        pthread_mutex_lock(&e->mu);
        cs_ingest_req_t *more =
            e->tasks || e->closing ? NULL : take_requests(e, e->max_group - *n_events, false, &m);
        pthread_mutex_unlock(&e->mu);
        if (!more)
            break;
        tail->next_ = more; /* in the group now: answered or replayed with it */
        while (tail->next_)
            tail = tail->next_;
        *n_events += m;
        atomic_fetch_add(&e->st_joined, m);
        if ((e->writer->ops->ingest_hint && (rc = hint_group(e, more, err))) ||
            (rc = ingest_requests(e, more, now, err)))
            goto fail;
    }
    if ((rc = settle_waiting(e, group, NULL, err)))
        goto fail;
    rc = timed_commit(e, e->syncer_started, err);
    if (rc)
        goto fail;
    return CS_OK;
fail:
    cs_store_rollback(e->writer);
    return rc;
}

/* Give every item after (r, i) the failure of `like`. */
static void fail_rest(cs_ingest_req_t *r, size_t i, const cs_ingest_item_t *like)
{
    for (; r; r = r->next_, i = 0) {
        for (; i < r->n; i++) {
            r->items[i].rc = like->rc;
            r->items[i].err = like->err;
        }
    }
}

/* Replay a failed group one event per transaction: the events that the
 * store accepts are committed, the others get their own error. */
static void write_one_by_one(cs_engine_t *e, cs_ingest_req_t *group, cs_ms_t now)
{
    for (cs_ingest_req_t *r = group; r; r = r->next_) {
        for (size_t i = 0; i < r->n; i++) {
            cs_ingest_item_t *it = &r->items[i];
            cs_err_clear(&it->err);
            it->rc = cs_store_begin(e->writer, &it->err);
            if (it->rc) {
                /* the store itself is away: the rest fail alike, unasked */
                fail_rest(r, i + 1, it);
                return;
            }
            it->rc = cs_store_ingest(e->writer, it->ev, now, &it->outcome, &it->seq, &it->err);
            if (it->rc == CS_OK)
                it->rc = timed_commit(e, false, &it->err);
            if (it->rc) {
                cs_store_rollback(e->writer);
            } else if (it->ev->type == CS_EV_SHIPMENT_CREATED) {
                /* after its commit: a failed one must not settle anything */
                cs_err_t serr;
                cs_err_clear(&serr);
                if (settle_waiting(e, group, it, &serr))
                    cs_warn("%s; the scans before it still say they wait", serr.msg);
            }
        }
    }
}

/* Answer a written group: account every item and complete its requests. */
static void answer_group(cs_engine_t *e, cs_ingest_req_t *group)
{
    for (cs_ingest_req_t *r = group, *next; r; r = next) {
        next = r->next_; /* the request may be freed by its callback */
        r->next_ = NULL;
        r->rc = CS_OK;
        for (size_t i = 0; i < r->n; i++)
            account(e, &r->items[i]);
        complete(e, r);
    }
}

/* The syncer: takes every committed group queued so far, makes them
 * durable with one sync and answers them. A failed sync fails them (their
 * events are committed but perhaps not on disk) and stays failed: the store
 * refuses every later write until it is opened again (walbuf.h). */
static void *syncer_main(void *arg)
{
    cs_engine_t *e = arg;
    cs_thread_name("cs-syncer");
    pthread_mutex_lock(&e->smu);
    for (;;) {
        while (!e->shead && !e->syncer_stop)
            pthread_cond_wait(&e->scv, &e->smu);
        cs_ingest_req_t *batch = e->shead;
        e->shead = e->stail = NULL;
        if (!batch && e->syncer_stop)
            break;
        pthread_mutex_unlock(&e->smu);
        cs_err_t err;
        cs_err_clear(&err);
        uint64_t t0 = cs_mono_ns();
        cs_rc rc = e->writer->ops->sync(e->writer, &err);
        atomic_fetch_add(&e->st_syncs, 1);
        atomic_fetch_add(&e->st_sync_ns, cs_mono_ns() - t0);
        if (rc) {
            atomic_fetch_add(&e->st_store_errors, 1);
            cs_error("%s; the events of the groups waiting for it are refused, and the store "
                     "takes no more writes until the daemon is restarted",
                     err.msg);
            pthread_mutex_lock(&e->smu);
            if (!atomic_load(&e->refusing)) {
                cs_errf(&e->refuse_err, CS_ERR_STORE,
                        "%.300s; the store refuses every write until the daemon is restarted",
                        err.msg);
                atomic_store(&e->refusing, true);
            }
            pthread_mutex_unlock(&e->smu);
            cs_ingest_item_t like = { .rc = CS_ERR_STORE, .err = err };
            fail_rest(batch, 0, &like);
        }
        answer_group(e, batch);
        pthread_mutex_lock(&e->smu);
        if (!e->shead)
            atomic_store(&e->sync_busy, false);
    }
    pthread_mutex_unlock(&e->smu);
    return NULL;
}

/* A committed group waits for the syncer. */
static void await_sync(cs_engine_t *e, cs_ingest_req_t *group)
{
    cs_ingest_req_t *last = group;
    while (last->next_)
        last = last->next_;
    pthread_mutex_lock(&e->smu);
    if (e->stail)
        e->stail->next_ = group;
    else
        e->shead = group;
    e->stail = last;
    atomic_store(&e->sync_busy, true);
    pthread_cond_signal(&e->scv);
    pthread_mutex_unlock(&e->smu);
}

static void run_tasks(cs_engine_t *e, writer_task_t *tasks)
{
    for (writer_task_t *t = tasks; t;) {
        writer_task_t *next = t->next; /* t may be gone once done is set */
        cs_rc rc = t->fn(e->writer, t->arg);
        pthread_mutex_lock(&e->mu);
        t->rc = rc;
        t->done = true;
        pthread_cond_broadcast(&e->task_cv);
        pthread_mutex_unlock(&e->mu);
        t = next;
    }
}

/* On a store several nodes share, the hook also runs at least this often:
 * the others' events and timers are found by polling (a wake-up from them
 * only makes it sooner). */
#define SHARED_POLL_MS 2000

/* Run the background hook; remember when it wants to run next. */
static void run_hook(cs_engine_t *e)
{
    cs_ms_t next = 0;
    cs_err_t err;
    cs_err_clear(&err);
    e->hook_ran_ms = mono_ms();
    atomic_fetch_add(&e->st_hook_runs, 1);
    if (e->hook.run(e->writer, e->hook.arg, &next, &err) != CS_OK) {
        atomic_fetch_add(&e->st_hook_errors, 1);
        cs_warn("background pass failed (%s); retrying in a second", err.msg);
        next = cs_clock_now(e->clock) + 1000;
    }
    if (e->writer->ops->shared) {
        cs_ms_t poll = cs_clock_now(e->clock) + SHARED_POLL_MS;
        if (!next || next > poll)
            next = poll;
    }
    pthread_mutex_lock(&e->mu);
    e->hook_next = next;
    e->hook_pending = false;
    pthread_mutex_unlock(&e->mu);
}

/* Is the hook due? Called with mu held. */
static bool hook_due(cs_engine_t *e)
{
    return e->hook.run &&
           (e->hook_poked || (e->hook_pending && hook_gap_left(e) <= 0) ||
            (e->hook_next && cs_clock_now(e->clock) >= e->hook_next));
}

/* Wait for work with mu held; with a hook time set, wake up for it. The
 * clock may be a test clock, so real waits are capped at a second and the
 * clock is read again. */
static void wait_for_work(cs_engine_t *e)
{
    while (!e->head && !e->tasks && !e->closing && !hook_due(e)) {
        if (!e->hook.run || (!e->hook_next && !e->hook_pending)) {
            pthread_cond_wait(&e->cv, &e->mu);
            continue;
        }
        cs_ms_t wait = e->hook_next ? e->hook_next - cs_clock_now(e->clock) : 1000;
        int64_t gap = e->hook_pending ? hook_gap_left(e) : wait;
        if (gap < wait)
            wait = gap;
        if (wait > 1000)
            wait = 1000;
        if (wait < 1)
            wait = 1;
        struct timespec ts;
        cs_deadline_in(&ts, wait);
        pthread_cond_timedwait(&e->cv, &e->mu, &ts);
    }
}

static void *writer_main(void *arg)
{
    cs_engine_t *e = arg;
    cs_thread_name("cs-writer");
    for (;;) {
        pthread_mutex_lock(&e->mu);
        wait_for_work(e);
        bool hook_now = hook_due(e);
        e->hook_poked = false;
        writer_task_t *tasks = e->tasks;
        e->tasks = NULL;
        /* take a group: whole requests up to max_group events */
        size_t n_events = 0;
        cs_ingest_req_t *group = take_requests(e, e->max_group, true, &n_events);
        bool stop = e->closing && !e->head && !group && !tasks;
        pthread_mutex_unlock(&e->mu);

        if (tasks)
            run_tasks(e, tasks);
        if (stop)
            break;
        if (!group) {
            if (hook_now && !e->closing)
                run_hook(e);
            continue;
        }

        cs_ms_t now = cs_clock_now(e->clock);
        cs_err_t gerr;
        cs_err_clear(&gerr);
        bool began, deferred = false;
        cs_rc wrc = write_group(e, group, &n_events, now, &began, &gerr);
        uint64_t gmax = atomic_load(&e->st_group_max);
        if (n_events > gmax)
            atomic_store(&e->st_group_max, n_events);
        if (wrc != CS_OK) {
            /* an event the store's rules refuse (CS_ERR_RULE: a delivered
             * parcel cancelled) fails its group too: the others are
             * written one by one, it gets its error; the store is fine */
            bool refused = wrc == CS_ERR_RULE;
            if (!refused)
                atomic_fetch_add(&e->st_store_errors, 1);
            if (began) {
                cs_log(refused ? CS_LOG_INFO : CS_LOG_WARN,
                       "group of %zu events failed (%s); replaying one by one", n_events,
                       gerr.msg);
                write_one_by_one(e, group, now);
            } else {
                cs_warn("store unavailable (%s); %zu events refused", gerr.msg, n_events);
                cs_ingest_item_t like = { .rc = gerr.rc ? gerr.rc : CS_ERR_STORE, .err = gerr };
                fail_rest(group, 0, &like);
            }
        } else {
            for (cs_ingest_req_t *r = group; r; r = r->next_)
                for (size_t i = 0; i < r->n; i++)
                    r->items[i].rc = CS_OK;
            deferred = e->syncer_started;
        }
        if (deferred)
            await_sync(e, group); /* answered once durable; the next group goes on */
        else
            answer_group(e, group);
        /* the new events may start or move journeys: now, or once
         * HOOK_GAP_MS have passed since the last run */
        if (e->hook.run && !e->closing) {
            if (hook_gap_left(e) <= 0) {
                run_hook(e);
            } else {
                pthread_mutex_lock(&e->mu);
                e->hook_pending = true;
                pthread_mutex_unlock(&e->mu);
            }
        }
    }
    return NULL;
}

/* The listener: waits for other nodes' word of new work and pokes the
 * hook. A lost connection is retried after a second. */
static void *listener_main(void *arg)
{
    cs_engine_t *e = arg;
    cs_thread_name("cs-listener");
    while (!atomic_load(&e->listener_stop)) {
        bool woken = false;
        cs_err_t err;
        cs_err_clear(&err);
        if (e->wake->ops->wakeup_wait(e->wake, 500, &woken, &err) != CS_OK) {
            cs_log(CS_LOG_DEBUG, "wake-ups: %s", err.msg);
            for (int i = 0; i < 10 && !atomic_load(&e->listener_stop); i++)
                usleep(100 * 1000);
            continue;
        }
        if (woken)
            cs_engine_poke(e);
    }
    return NULL;
}

static void listener_start(cs_engine_t *e, const cs_store_opts_t *so)
{
    cs_err_t err;
    if (!e->writer->ops->wakeup_wait)
        return;
    if (cs_store_open(e->target, so, &e->wake, &err) != CS_OK) {
        cs_warn("wake-ups from other nodes off (%s); polling only", err.msg);
        return;
    }
    if (pthread_create(&e->listener, NULL, listener_main, e) != 0) {
        cs_store_close(&e->wake);
        return;
    }
    e->listener_started = true;
}

void cs_engine_set_hook(cs_engine_t *e, const cs_engine_hook_t *hook)
{
    pthread_mutex_lock(&e->mu);
    e->hook = *hook;
    e->hook_poked = true;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

void cs_engine_poke(cs_engine_t *e)
{
    pthread_mutex_lock(&e->mu);
    e->hook_poked = true;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

/* ---- public API ---- */

cs_rc cs_engine_open(const cs_engine_opts_t *opts, cs_engine_t **out, cs_err_t *err)
{
    cs_engine_opts_t def;
    cs_engine_t *e = NULL;
    cs_rc rc = CS_OK;
    *out = NULL;
    if (!opts) {
        cs_engine_opts_default(&def);
        opts = &def;
    }
    e = cs_calloc(1, sizeof *e);
    if (!e)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory opening the engine");
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    pthread_cond_init(&e->task_cv, NULL);
    pthread_mutex_init(&e->rmu, NULL);
    pthread_mutex_init(&e->smu, NULL);
    pthread_cond_init(&e->scv, NULL);
    e->clock = opts->clock ? opts->clock : cs_clock_system();
    e->max_group = opts->max_group_events ? opts->max_group_events : 4000;
    e->max_queue = opts->max_queue_events ? opts->max_queue_events : 200000;
    e->max_readers = opts->readers > 0 ? (size_t)opts->readers : 4;
    e->cache_kib = opts->cache_kib;
    e->durable = opts->durable;
    e->carriers = opts->carriers;
    e->target = cs_strdup(opts->store);
    e->readers = cs_calloc(e->max_readers, sizeof *e->readers);
    if (!e->target || !e->readers) {
        rc = cs_errf(err, CS_ERR_NOMEM, "out of memory opening the engine");
        goto out;
    }
    cs_store_opts_t so;
    cs_store_opts_default(&so);
    so.durable = opts->durable;
    so.cache_kib = opts->cache_kib;
    so.node = opts->node;
    rc = cs_store_open(e->target, &so, &e->writer, err);
    if (rc)
        goto out;
    /* without a syncer every group is durable when its commit returns */
    if (e->durable && e->writer->ops->commit_deferred && e->writer->ops->sync &&
        pthread_create(&e->syncer, NULL, syncer_main, e) == 0)
        e->syncer_started = true;
    if (pthread_create(&e->thread, NULL, writer_main, e) != 0) {
        rc = cs_errf(err, CS_ERR_INTERNAL, "cannot start the writer thread");
        goto out;
    }
    e->thread_started = true;
    listener_start(e, &so);
out:
    if (rc) {
        cs_engine_close(&e);
        return rc;
    }
    *out = e;
    return CS_OK;
}

void cs_engine_close(cs_engine_t **ep)
{
    if (!ep || !*ep)
        return;
    cs_engine_t *e = *ep;
    pthread_mutex_lock(&e->mu);
    e->closing = true;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    if (e->listener_started) {
        atomic_store(&e->listener_stop, true);
        pthread_join(e->listener, NULL);
    }
    cs_store_close(&e->wake);
    if (e->thread_started)
        pthread_join(e->thread, NULL);
    if (e->syncer_started) { /* after the writer: it answers the last groups */
        pthread_mutex_lock(&e->smu);
        e->syncer_stop = true;
        pthread_cond_signal(&e->scv);
        pthread_mutex_unlock(&e->smu);
        pthread_join(e->syncer, NULL);
    }
    /* the readers first: the last connection to close copies the WAL into
     * the database file and removes it, and only the writer may */
    for (size_t i = 0; i < e->n_readers; i++)
        cs_store_close(&e->readers[i]);
    cs_store_close(&e->writer);
    cs_free(e->readers);
    cs_free(e->target);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    pthread_cond_destroy(&e->task_cv);
    pthread_mutex_destroy(&e->rmu);
    pthread_mutex_destroy(&e->smu);
    pthread_cond_destroy(&e->scv);
    cs_free(e);
    *ep = NULL;
}

cs_rc cs_engine_submit(cs_engine_t *e, cs_ingest_req_t *req)
{
    cs_err_clear(&req->err);
    req->rc = CS_OK;
    req->next_ = NULL;
    for (size_t i = 0; i < req->n; i++) {
        if (!req->items[i].ev)
            return cs_errf(&req->err, CS_ERR_INTERNAL, "item %zu has no event", i);
        req->items[i].rc = CS_OK;
        req->items[i].outcome = CS_INGEST_NEW;
        req->items[i].seq = 0;
        cs_err_clear(&req->items[i].err);
        /* raw carrier scans get their status here, on the submitting thread */
        cs_rc rc = cs_carriers_normalize(e->carriers, req->items[i].ev, &req->err);
        if (rc)
            return rc;
    }
    pthread_mutex_lock(&e->mu);
    if (e->closing) {
        pthread_mutex_unlock(&e->mu);
        return cs_errf(&req->err, CS_ERR_BUSY, "shutting down; not accepting events");
    }
    if (e->queued_events && e->queued_events + req->n > e->max_queue) {
        pthread_mutex_unlock(&e->mu);
        return cs_errf(&req->err, CS_ERR_BUSY, "ingest queue full (%zu events); retry later",
                       e->max_queue);
    }
    if (e->tail)
        e->tail->next_ = req;
    else
        e->head = req;
    e->tail = req;
    e->queued_events += req->n;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    return CS_OK;
}

cs_rc cs_engine_ingest(cs_engine_t *e, cs_ingest_req_t *req)
{
    waiter_t w;
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    w.done = false;
    req->done = NULL;
    req->waiter_ = &w;
    cs_rc rc = cs_engine_submit(e, req);
    if (rc == CS_OK) {
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        rc = req->rc;
    }
    req->waiter_ = NULL;
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return rc;
}

cs_rc cs_engine_with_writer(cs_engine_t *e, cs_rc (*fn)(cs_store_t *s, void *arg), void *arg)
{
    writer_task_t t = {.fn = fn, .arg = arg, .rc = CS_OK, .done = false, .next = NULL};
    pthread_mutex_lock(&e->mu);
    if (e->closing) {
        pthread_mutex_unlock(&e->mu);
        return CS_ERR_BUSY;
    }
    t.next = e->tasks;
    e->tasks = &t;
    pthread_cond_signal(&e->cv);
    while (!t.done)
        pthread_cond_wait(&e->task_cv, &e->mu);
    pthread_mutex_unlock(&e->mu);
    return t.rc;
}

cs_rc cs_engine_reader_acquire(cs_engine_t *e, cs_store_t **out, cs_err_t *err)
{
    *out = NULL;
    pthread_mutex_lock(&e->rmu);
    if (e->n_readers) {
        *out = e->readers[--e->n_readers];
        e->readers[e->n_readers] = NULL;
    }
    pthread_mutex_unlock(&e->rmu);
    if (!*out) {
        cs_store_opts_t so;
        cs_store_opts_default(&so);
        so.read_only = true;
        so.cache_kib = e->cache_kib;
        cs_rc rc = cs_store_open(e->target, &so, out, err);
        if (rc)
            return rc;
    }
    cs_store_read_enter(*out);
    return CS_OK;
}

void cs_engine_reader_release(cs_engine_t *e, cs_store_t *s)
{
    if (!s)
        return;
    cs_store_read_leave(s);
    pthread_mutex_lock(&e->rmu);
    if (e->n_readers < e->max_readers) {
        e->readers[e->n_readers++] = s;
        s = NULL;
    }
    pthread_mutex_unlock(&e->rmu);
    cs_store_close(&s);
}

bool cs_engine_refusing(cs_engine_t *e, cs_err_t *why)
{
    /* the syncer sets it; a sync the writer made itself (its own tasks, a
     * checkpoint) is seen in the store */
    if (!atomic_load(&e->refusing) && e->writer && e->writer->ops->refusing &&
        e->writer->ops->refusing(e->writer)) {
        pthread_mutex_lock(&e->smu);
        if (!atomic_load(&e->refusing)) {
            cs_errf(&e->refuse_err, CS_ERR_STORE,
                    "store: a sync of the WAL or database file failed; the store refuses every "
                    "write until the daemon is restarted");
            atomic_store(&e->refusing, true);
        }
        pthread_mutex_unlock(&e->smu);
    }
    if (!atomic_load(&e->refusing))
        return false;
    if (why) {
        pthread_mutex_lock(&e->smu);
        *why = e->refuse_err;
        pthread_mutex_unlock(&e->smu);
    }
    return true;
}

void cs_engine_stats(cs_engine_t *e, cs_engine_stats_t *out)
{
    memset(out, 0, sizeof *out);
    out->events_new = atomic_load(&e->st_new);
    out->events_duplicate = atomic_load(&e->st_dup);
    out->events_failed = atomic_load(&e->st_failed);
    for (int i = 0; i < CS_EV__COUNT; i++)
        out->by_type[i] = atomic_load(&e->st_by_type[i]);
    out->commits = atomic_load(&e->st_commits);
    out->commit_ns_total = atomic_load(&e->st_commit_ns);
    out->syncs = atomic_load(&e->st_syncs);
    out->sync_ns_total = atomic_load(&e->st_sync_ns);
    out->group_events_max = atomic_load(&e->st_group_max);
    out->group_events_joined = atomic_load(&e->st_joined);
    out->store_errors = atomic_load(&e->st_store_errors);
    out->hook_runs = atomic_load(&e->st_hook_runs);
    out->hook_errors = atomic_load(&e->st_hook_errors);
    pthread_mutex_lock(&e->mu);
    out->queue_events = e->queued_events;
    pthread_mutex_unlock(&e->mu);
}
