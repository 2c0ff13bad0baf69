/*
 * sqlite.c -- the embedded store backend: opening (pragmas, migrations),
 * transactions, the statement cache, API keys and counts. Folding events
 * into state is in sqlite_fold.c, the JSON views in sqlite_views.c. The
 * schema is documented in docs/store.md.
 *
 * Targets: "sqlite:PATH" (a file, WAL) and "sqlite::memory:" (a private
 * in-memory store for tests; it cannot be shared with reader handles, so
 * opening a read-only handle on it gives CS_ERR_UNSUPPORTED and callers use
 * the writer handle for views).
 *
 * Thread-safety: a handle is used by one thread at a time (SQLite's
 * multi-thread mode). Ownership: the handle owns its connection and its
 * prepared statements; close releases both.
 */
#include "sqlite_int.h"
#include "schema.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- schema: src/store/schema.c, user_version is the count applied ---- */


/* ---- every statement, by id ---- */

static const char *const stmt_sql[Q__COUNT] = {
    [Q_EV_INSERT] = "INSERT INTO events(event_id,type,occurred_at,received_at,customer_id,"
                    "order_id,entity,body) VALUES(?1,?2,?3,?4,?5,?6,?7,?8) "
                    "ON CONFLICT(event_id) DO NOTHING",
    [Q_EV_SEQ_BY_ID] = "SELECT seq FROM events WHERE event_id=?1",
    [Q_EV_ADOPT_ORPHANS] = "UPDATE events SET order_id=?2 WHERE entity=?1 AND order_id IS NULL",
    [Q_EV_ADOPT_SCANS] = "UPDATE events SET order_id=?2 WHERE order_id IS NULL AND seq IN "
                         "(SELECT seq FROM scans WHERE shipment_id=?1)",

    [Q_CU_GET] = "SELECT email,phone,name,locale,timezone,consent,attributes,first_seen_at,"
                 "updated_at FROM customers WHERE id=?1",
    [Q_CU_PUT] = "INSERT OR REPLACE INTO customers(id,email,phone,name,locale,timezone,consent,"
                 "attributes,first_seen_at,updated_at) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",

    [Q_OR_GET] = "SELECT placed_at,status,cancel_reason,cancelled_at,updated_at FROM orders "
                 "WHERE id=?1",
    [Q_OR_PUT] = "INSERT OR REPLACE INTO orders(id,customer_id,currency,placed_at,subtotal,"
                 "shipping,tax,discount,total,promised_from,promised_to,status,cancel_reason,"
                 "cancelled_at,attributes,updated_at) "
                 "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16)",
    [Q_OR_CANCEL_STUB] = "INSERT INTO orders(id,status,cancel_reason,cancelled_at,updated_at) "
                         "VALUES(?1,'cancelled',?2,?3,0)",
    [Q_OR_CANCEL] = "UPDATE orders SET status='cancelled',cancel_reason=coalesce(?2,cancel_reason),"
                    "cancelled_at=min(coalesce(cancelled_at,?3),?3) WHERE id=?1",
    [Q_OI_DELETE] = "DELETE FROM order_items WHERE order_id=?1",
    [Q_OI_INSERT] = "INSERT INTO order_items(order_id,line,sku,name,category,unit_price,quantity,"
                    "discount) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",

    [Q_SH_GET] = "SELECT order_id,status,status_at,delivered_at,created_at FROM shipments "
                 "WHERE id=?1",
    [Q_SH_BY_TRACKING] = "SELECT id,order_id,status,status_at,delivered_at FROM shipments "
                         "WHERE carrier=?1 AND tracking_number=?2 LIMIT 1",
    [Q_SH_PUT] = "INSERT INTO shipments(id,order_id,carrier,service,tracking_number,origin,"
                 "destination,created_at,attributes) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9) "
                 "ON CONFLICT(id) DO UPDATE SET order_id=excluded.order_id,"
                 "carrier=excluded.carrier,service=excluded.service,"
                 "tracking_number=excluded.tracking_number,origin=excluded.origin,"
                 "destination=excluded.destination,created_at=excluded.created_at,"
                 "attributes=excluded.attributes WHERE excluded.created_at>=shipments.created_at",
    [Q_SH_SET_STATUS] = "UPDATE shipments SET status=?2,status_at=?3,delivered_at=?4 WHERE id=?1",
    [Q_SC_INSERT] = "INSERT INTO scans(seq,shipment_id,want_shipment_id,carrier,tracking_number,"
                    "status,carrier_code,carrier_text,location,occurred_at,reason,unmapped) "
                    "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
    [Q_SC_ADOPT] = "UPDATE scans SET shipment_id=?1 WHERE shipment_id IS NULL AND carrier=?2 AND "
                   "tracking_number=?3",
    [Q_SC_ADOPT_WANT] = "UPDATE scans SET shipment_id=?1 WHERE shipment_id IS NULL AND "
                        "want_shipment_id=?1",
    [Q_SC_LATEST] = "SELECT status,occurred_at FROM scans WHERE shipment_id=?1 "
                    "ORDER BY occurred_at DESC, seq DESC LIMIT 1",
    [Q_SC_DELIVERED] = "SELECT min(occurred_at) FROM scans WHERE shipment_id=?1 AND status=?2",

    [Q_RE_GET] = "SELECT order_id,status,resolution,refund_amount,requested_at,status_at "
                 "FROM returns WHERE id=?1",
    [Q_RE_PUT] = "INSERT OR REPLACE INTO returns(id,order_id,status,resolution,refund_amount,"
                 "requested_at,status_at) VALUES(?1,?2,?3,?4,?5,?6,?7)",
    [Q_RI_DELETE] = "DELETE FROM return_items WHERE return_id=?1",
    [Q_RI_INSERT] = "INSERT INTO return_items(return_id,line,sku,quantity,reason) "
                    "VALUES(?1,?2,?3,?4,?5)",

    [Q_TI_GET] = "SELECT customer_id,order_id,status,created_at,status_at FROM tickets "
                 "WHERE id=?1",
    [Q_TI_PUT] = "INSERT OR REPLACE INTO tickets(id,customer_id,order_id,status,channel,subject,"
                 "body,category,created_at,status_at) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
    [Q_TI_SET_STATUS] = "UPDATE tickets SET status=?2,status_at=?3 WHERE id=?1",
    [Q_FB_PUT] = "INSERT INTO feedback(id,kind,score,customer_id,order_id,sku,title,text,locale,"
                 "occurred_at) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10) "
                 "ON CONFLICT(id) DO UPDATE SET kind=excluded.kind,score=excluded.score,"
                 "customer_id=excluded.customer_id,order_id=excluded.order_id,sku=excluded.sku,"
                 "title=excluded.title,text=excluded.text,locale=excluded.locale,"
                 "occurred_at=excluded.occurred_at WHERE excluded.occurred_at>=feedback.occurred_at",
    /* the latest status by time wins; a later callback of an earlier time
     * (providers retry) does not roll it back */
    [Q_MS_OUTBOX] = "UPDATE outbox SET delivery=?2,delivery_at=?3 WHERE id=?1 AND "
                    "(delivery_at IS NULL OR delivery_at<=?3)",
    [Q_MS_INSERT] = "INSERT INTO message_events(seq,message_id,status,channel,customer_id,detail,"
                    "occurred_at) VALUES(?1,?2,?3,?4,?5,?6,?7)",
    [Q_CU_TOUCH] = "INSERT INTO customers(id,first_seen_at,updated_at) VALUES(?1,?2,0) "
                   "ON CONFLICT(id) DO UPDATE SET first_seen_at=excluded.first_seen_at "
                   "WHERE excluded.first_seen_at<customers.first_seen_at",

    [Q_AK_PUT] = "INSERT INTO apikeys(id,name,hash,scopes,created_at,revoked_at) "
                 "VALUES(?1,?2,?3,?4,?5,NULL)",
    [Q_AK_FIND] = "SELECT id,name,hash,scopes,created_at,revoked_at FROM apikeys WHERE hash=?1",
    [Q_AK_LIST] = "SELECT id,name,scopes,created_at,revoked_at FROM apikeys ORDER BY created_at,id",
    [Q_AK_REVOKE] = "UPDATE apikeys SET revoked_at=?2 WHERE id=?1 AND revoked_at IS NULL",

    [Q_V_CUSTOMER] = "SELECT id,email,phone,name,locale,timezone,consent,attributes,"
                     "first_seen_at,updated_at FROM customers WHERE id=?1",
    [Q_V_CUSTOMER_ORDERS] = "SELECT id,placed_at,total,currency,status FROM orders "
                            "WHERE customer_id=?1 AND placed_at IS NOT NULL "
                            "ORDER BY placed_at DESC, id DESC LIMIT 50",
    [Q_V_CUSTOMER_SPENT] = "SELECT currency,count(*),sum(CASE WHEN status='placed' THEN total "
                           "ELSE 0 END),min(placed_at),max(placed_at),"
                           "sum(status='cancelled') FROM orders "
                           "WHERE customer_id=?1 AND placed_at IS NOT NULL GROUP BY currency "
                           "ORDER BY currency",
    [Q_V_ORDER] = "SELECT id,customer_id,currency,placed_at,subtotal,shipping,tax,discount,total,"
                  "promised_from,promised_to,status,cancel_reason,cancelled_at,attributes "
                  "FROM orders WHERE id=?1 AND placed_at IS NOT NULL",
    [Q_V_ORDER_ITEMS] = "SELECT sku,name,category,unit_price,quantity,discount FROM order_items "
                        "WHERE order_id=?1 ORDER BY line",
    [Q_V_ORDER_SHIPMENTS] = "SELECT id,carrier,service,tracking_number,origin,destination,"
                            "status,status_at,delivered_at,created_at FROM shipments "
                            "WHERE order_id=?1 ORDER BY created_at,id",
    [Q_V_SHIPMENT_SCANS] = "SELECT status,carrier_code,carrier_text,location,occurred_at,"
                           "reason,unmapped FROM scans WHERE shipment_id=?1 ORDER BY occurred_at,seq",
    [Q_V_ORDER_RETURNS] = "SELECT id,status,resolution,refund_amount,requested_at,status_at "
                          "FROM returns WHERE order_id=?1 ORDER BY requested_at,id",
    [Q_V_RETURN_ITEMS] = "SELECT sku,quantity,reason FROM return_items WHERE return_id=?1 "
                         "ORDER BY line",
    [Q_V_ORDER_TICKETS] = "SELECT id,status,channel,subject,category,created_at,status_at "
                          "FROM tickets WHERE order_id=?1 ORDER BY created_at,id",
    [Q_V_ORDER_FEEDBACK] = "SELECT id,kind,score,sku,title,text,locale,occurred_at "
                           "FROM feedback WHERE order_id=?1 ORDER BY occurred_at,id",
    [Q_V_ORDER_TIMELINE] = "SELECT seq,event_id,type,occurred_at,received_at FROM events "
                           "WHERE order_id=?1 ORDER BY occurred_at,seq",
#define EVQ_COLS "SELECT seq,event_id,type,occurred_at,received_at,customer_id,order_id,body " \
                 "FROM events WHERE "
#define EVQ_COND "seq>?1 AND (?2=0 OR seq<?2) AND (?3=0 OR type=?3)"
    [Q_V_EVENTS_ASC] = EVQ_COLS EVQ_COND " ORDER BY seq ASC LIMIT ?4",
    [Q_V_EVENTS_DESC] = EVQ_COLS EVQ_COND " ORDER BY seq DESC LIMIT ?4",
    [Q_V_EVENTS_CUST_ASC] = EVQ_COLS "customer_id=?5 AND " EVQ_COND " ORDER BY seq ASC LIMIT ?4",
    [Q_V_EVENTS_CUST_DESC] = EVQ_COLS "customer_id=?5 AND " EVQ_COND " ORDER BY seq DESC LIMIT ?4",
    [Q_V_EVENTS_ORDER_ASC] = EVQ_COLS "order_id=?5 AND " EVQ_COND " ORDER BY seq ASC LIMIT ?4",
    [Q_V_EVENTS_ORDER_DESC] = EVQ_COLS "order_id=?5 AND " EVQ_COND " ORDER BY seq DESC LIMIT ?4",

    [Q_COUNTS] = "SELECT (SELECT count(*) FROM events),(SELECT count(*) FROM customers),"
                 "(SELECT count(*) FROM orders WHERE placed_at IS NOT NULL),"
                 "(SELECT count(*) FROM order_items),(SELECT count(*) FROM shipments),"
                 "(SELECT count(*) FROM scans),"
                 "(SELECT count(*) FROM scans WHERE shipment_id IS NULL),"
                 "(SELECT count(*) FROM returns),(SELECT count(*) FROM tickets),"
                 "(SELECT count(*) FROM feedback),(SELECT count(*) FROM message_events),"
                 "(SELECT coalesce(max(seq),0) FROM events)",
};

/* ---- helpers shared by the backend's files ---- */

cs_rc cs__sqlite_fail(cs_sqlite_t *s, cs_err_t *err, const char *what)
{
    int code = sqlite3_extended_errcode(s->db);
    return cs_errf(err, CS_ERR_STORE, "store: %s: %s (sqlite %d)", what, sqlite3_errmsg(s->db),
                   code);
}

sqlite3_stmt *cs__sqlite_cached(cs_sqlite_t *s, sqlite3_stmt **slot, const char *sql,
                                cs_err_t *err)
{
    if (*slot)
        return *slot;
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL) != SQLITE_OK) {
        cs__sqlite_fail(s, err, "prepare");
        *slot = NULL;
        return NULL;
    }
    return *slot;
}

sqlite3_stmt *cs__sqlite_stmt(cs_sqlite_t *s, stmt_id_t id, cs_err_t *err)
{
    return cs__sqlite_cached(s, &s->stmts[id], stmt_sql[id], err);
}

void cs__stmt_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

void cs__col_copy(char *dst, size_t size, sqlite3_stmt *st, int col)
{
    const char *v = cs__col_text(st, col);
    cs_strlcpy(dst, v ? v : "", size);
}

void cs__bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

void cs__bind_time(sqlite3_stmt *st, int i, cs_ms_t v)
{
    if (v)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

const char *cs__col_text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

json_t *cs__json_time(cs_ms_t t)
{
    char buf[40];
    return t ? json_string(cs_time_format(t, buf, sizeof buf)) : json_null();
}

cs_ms_t cs__col_time(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, i);
}

cs_rc cs__sqlite_exec_stmt(cs_sqlite_t *s, sqlite3_stmt *st, cs_err_t *err, const char *what)
{
    int r = sqlite3_step(st);
    cs_rc rc = CS_OK;
    if (r != SQLITE_DONE && r != SQLITE_ROW)
        rc = cs__sqlite_fail(s, err, what);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

static cs_rc exec(cs_sqlite_t *s, const char *sql, cs_err_t *err)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        cs_rc rc = cs_errf(err, CS_ERR_STORE, "store: %s", msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return rc;
    }
    return CS_OK;
}

/* ---- the background checkpointer ---- */

#define CKPT_FRAMES 2000   /* ask for a checkpoint when the WAL holds this many */
#define CKPT_MAX_FRAMES 200000 /* beyond this the writer checkpoints itself */

static void *ckpt_main(void *arg)
{
    cs_sqlite_t *s = arg;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(s->ckpt.path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        cs_warn("store: checkpointer cannot open %s; the writer checkpoints itself",
                s->ckpt.path);
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 1000);
    pthread_mutex_lock(&s->ckpt.mu);
    for (;;) {
        while (!s->ckpt.stop && !s->ckpt.wanted) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            if (pthread_cond_timedwait(&s->ckpt.cv, &s->ckpt.mu, &ts) != 0)
                break; /* once a second anyway */
        }
        if (s->ckpt.stop)
            break;
        s->ckpt.wanted = false;
        pthread_mutex_unlock(&s->ckpt.mu);
        int log = 0, done = 0;
        /* PASSIVE: copies what it can, never blocks the writer */
        sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        pthread_mutex_lock(&s->ckpt.mu);
    }
    pthread_mutex_unlock(&s->ckpt.mu);
    sqlite3_close(db);
    return NULL;
}

/* After every commit: wake the checkpointer when the WAL has grown. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    cs_sqlite_t *s = arg;
    (void)name;
    if (frames >= CKPT_MAX_FRAMES) {
        /* the checkpointer cannot keep up (a long reader?): bound the WAL */
        sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    } else if (frames >= CKPT_FRAMES) {
        pthread_mutex_lock(&s->ckpt.mu);
        s->ckpt.wanted = true;
        pthread_cond_signal(&s->ckpt.cv);
        pthread_mutex_unlock(&s->ckpt.mu);
    }
    return SQLITE_OK;
}

static void ckpt_start(cs_sqlite_t *s, const char *path)
{
    pthread_mutex_init(&s->ckpt.mu, NULL);
    pthread_cond_init(&s->ckpt.cv, NULL);
    s->ckpt.path = cs_strdup(path);
    if (!s->ckpt.path || pthread_create(&s->ckpt.thread, NULL, ckpt_main, s) != 0) {
        cs_free(s->ckpt.path);
        s->ckpt.path = NULL;
        return; /* keep SQLite's own autocheckpoint */
    }
    s->ckpt.running = true;
    sqlite3_wal_hook(s->db, wal_hook, s); /* replaces the autocheckpoint */
}

static void ckpt_stop(cs_sqlite_t *s)
{
    if (!s->ckpt.running)
        return;
    sqlite3_wal_hook(s->db, NULL, NULL);
    pthread_mutex_lock(&s->ckpt.mu);
    s->ckpt.stop = true;
    pthread_cond_signal(&s->ckpt.cv);
    pthread_mutex_unlock(&s->ckpt.mu);
    pthread_join(s->ckpt.thread, NULL);
    pthread_mutex_destroy(&s->ckpt.mu);
    pthread_cond_destroy(&s->ckpt.cv);
    cs_free(s->ckpt.path);
    s->ckpt.running = false;
}

/* ---- open, migrate, close ---- */

static cs_rc migrate(cs_sqlite_t *s, cs_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int version = 0;
    cs_rc rc = CS_OK;
    const int latest = (int)cs_schema_count();
    if ((rc = exec(s, "BEGIN IMMEDIATE", err)))
        return rc;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        rc = cs__sqlite_fail(s, err, "read schema version");
        goto out;
    }
    version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st); /* a pending statement would lock tables a migration drops from */
    st = NULL;
    if (version > latest) {
        rc = cs_errf(err, CS_ERR_CONFIG,
                     "store: schema version %d is newer than this program understands (%d); "
                     "upgrade consonance",
                     version, latest);
        goto out;
    }
    for (int v = version; v < latest; v++) {
        char pragma[48];
        char *sql = cs_schema_migration((size_t)v, CS_DIALECT_SQLITE);
        if (!sql) {
            rc = cs_errf(err, CS_ERR_NOMEM, "out of memory");
            goto out;
        }
        rc = exec(s, sql, err);
        cs_free(sql);
        if (rc)
            goto out;
        snprintf(pragma, sizeof pragma, "PRAGMA user_version=%d", v + 1);
        if ((rc = exec(s, pragma, err)))
            goto out;
        if (v + 1 == latest)
            cs_log(CS_LOG_DEBUG, "store: schema migrated to version %d", v + 1);
    }
out:
    sqlite3_finalize(st);
    if (rc)
        exec(s, "ROLLBACK", NULL);
    else
        rc = exec(s, "COMMIT", err);
    return rc;
}

static void sqlite_close(cs_store_t *store)
{
    cs_sqlite_t *s = (cs_sqlite_t *)store;
    if (!s)
        return;
    ckpt_stop(s);
    for (int i = 0; i < Q__COUNT; i++)
        sqlite3_finalize(s->stmts[i]);
    cs__sqlite_journey_close(s);
    cs__sqlite_track_close(s);
    if (s->in_tx)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close_v2(s->db);
    cs_free(s);
}

/* Process-wide SQLite settings, before its first use: no memory statistics
 * (they take a global mutex on every allocation), multi-thread mode (each
 * connection is used by one thread at a time). */
static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;
static void sqlite_init_once(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
    sqlite3_initialize();
}

static cs_rc sqlite_open(const char *target, const cs_store_opts_t *opts, cs_store_t **out,
                         cs_err_t *err)
{
    cs_sqlite_t *s = NULL;
    cs_rc rc = CS_OK;
    char pragma[96];
    pthread_once(&sqlite_once, sqlite_init_once);
    const char *path = target + strlen("sqlite:");
    bool memory = strcmp(path, ":memory:") == 0;
    *out = NULL;
    if (!*path)
        return cs_err_field(err, CS_ERR_CONFIG, "store",
                            "store: expected sqlite:PATH or sqlite::memory:, got \"%.100s\"",
                            target);
    if (memory && opts->read_only)
        return cs_errf(err, CS_ERR_UNSUPPORTED,
                       "store: an in-memory store has no separate reader handles");
    s = cs_calloc(1, sizeof *s);
    if (!s)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory opening the store");
    s->base.ops = &cs_store_sqlite_ops;
    s->read_only = opts->read_only;
    int flags = SQLITE_OPEN_NOMUTEX |
                (opts->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        rc = s->db ? cs__sqlite_fail(s, err, path)
                   : cs_errf(err, CS_ERR_NOMEM, "out of memory opening the store");
        goto out;
    }
    sqlite3_extended_result_codes(s->db, 1);
    /* a larger lookaside: most of SQLite's small allocations stay off malloc */
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_LOOKASIDE, NULL, 512, 512);
    sqlite3_busy_timeout(s->db, opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 5000);
    int64_t cache = opts->cache_kib > 0 ? opts->cache_kib : 16384;
    snprintf(pragma, sizeof pragma, "PRAGMA cache_size=-%lld", (long long)cache);
    if ((rc = exec(s, pragma, err)) || (rc = exec(s, "PRAGMA foreign_keys=OFF", err)))
        goto out;
    if (opts->read_only) {
        if ((rc = exec(s, "PRAGMA query_only=ON", err)))
            goto out;
        /* a store that was never migrated has nothing to read yet */
        sqlite3_stmt *st = NULL;
        int v = 0;
        if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        if (v == 0) {
            rc = cs_errf(err, CS_ERR_STORE, "store: %s has no schema yet (open a writer first)",
                         path);
            goto out;
        }
    } else {
        if (!memory && (rc = exec(s, "PRAGMA journal_mode=WAL", err)))
            goto out;
        if ((rc = exec(s, opts->durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=OFF",
                       err)) ||
            (rc = exec(s, "PRAGMA temp_store=MEMORY", err)) ||
            (rc = exec(s, "PRAGMA wal_autocheckpoint=4000", err)) ||
            (rc = migrate(s, err)))
            goto out;
        s->durable = opts->durable && !memory;
        if (!memory)
            ckpt_start(s, path);
    }
out:
    if (rc) {
        sqlite_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return CS_OK;
}

/* ---- transactions ---- */

static cs_rc sqlite_begin(cs_store_t *store, cs_err_t *err)
{
    cs_sqlite_t *s = (cs_sqlite_t *)store;
    if (s->read_only)
        return cs_errf(err, CS_ERR_INTERNAL, "store: begin on a read-only handle");
    cs_rc rc = exec(s, "BEGIN IMMEDIATE", err);
    if (!rc)
        s->in_tx = true;
    return rc;
}

/* WAL with synchronous=NORMAL: the commit is in the OS's hands when it
 * returns (a killed process loses nothing); the fsync comes with the next
 * FULL commit or checkpoint. */
static cs_rc sqlite_begin_relaxed(cs_store_t *store, cs_err_t *err)
{
    cs_sqlite_t *s = (cs_sqlite_t *)store;
    if (s->durable) {
        cs_rc rc = exec(s, "PRAGMA synchronous=NORMAL", err);
        if (rc)
            return rc;
        s->relaxed = true;
    }
    cs_rc rc = sqlite_begin(store, err);
    if (rc && s->relaxed) {
        exec(s, "PRAGMA synchronous=FULL", NULL);
        s->relaxed = false;
    }
    return rc;
}

static void end_relaxed(cs_sqlite_t *s)
{
    if (s->relaxed) {
        exec(s, "PRAGMA synchronous=FULL", NULL);
        s->relaxed = false;
    }
}

static cs_rc sqlite_commit(cs_store_t *store, cs_err_t *err)
{
    cs_sqlite_t *s = (cs_sqlite_t *)store;
    cs_rc rc = exec(s, "COMMIT", err);
    if (!rc) {
        s->in_tx = false;
        end_relaxed(s);
    }
    return rc;
}

static void sqlite_rollback(cs_store_t *store)
{
    cs_sqlite_t *s = (cs_sqlite_t *)store;
    if (sqlite3_get_autocommit(s->db) == 0)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    s->in_tx = false;
    end_relaxed(s);
}

/* ---- counts ---- */

static cs_rc sqlite_counts(cs_store_t *store, cs_store_counts_t *c, cs_err_t *err)
{
    cs_sqlite_t *s = (cs_sqlite_t *)store;
    sqlite3_stmt *st = cs__sqlite_stmt(s, Q_COUNTS, err);
    memset(c, 0, sizeof *c);
    if (!st)
        return CS_ERR_STORE;
    cs_rc rc = CS_OK;
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = cs__sqlite_fail(s, err, "counts");
    } else {
        int64_t *f[] = {&c->events,   &c->customers, &c->orders,        &c->order_items,
                        &c->shipments, &c->scans,   &c->pending_scans, &c->returns,
                        &c->tickets,  &c->feedback, &c->message_events, &c->last_seq};
        for (int i = 0; i < (int)CS_ARRAY_LEN(f); i++)
            *f[i] = sqlite3_column_int64(st, i);
    }
    sqlite3_reset(st);
    return rc;
}

/* ---- api keys (each call its own transaction) ---- */

static cs_rc sqlite_apikey_put(cs_store_t *store, const cs_apikey_t *k, cs_err_t *err)
{
    cs_sqlite_t *s = (cs_sqlite_t *)store;
    sqlite3_stmt *st = cs__sqlite_stmt(s, Q_AK_PUT, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, k->id);
    cs__bind_text(st, 2, k->name);
    cs__bind_text(st, 3, k->hash_hex);
    sqlite3_bind_int(st, 4, k->scopes);
    sqlite3_bind_int64(st, 5, k->created_at);
    return cs__sqlite_exec_stmt(s, st, err, "store an API key");
}

static void read_key(sqlite3_stmt *st, cs_apikey_t *k)
{
    memset(k, 0, sizeof *k);
    cs_strlcpy(k->id, cs__col_text(st, 0) ? cs__col_text(st, 0) : "", sizeof k->id);
    cs_strlcpy(k->name, cs__col_text(st, 1) ? cs__col_text(st, 1) : "", sizeof k->name);
    cs_strlcpy(k->hash_hex, cs__col_text(st, 2) ? cs__col_text(st, 2) : "", sizeof k->hash_hex);
    k->scopes = sqlite3_column_int(st, 3);
    k->created_at = cs__col_time(st, 4);
    k->revoked_at = cs__col_time(st, 5);
}

static cs_rc sqlite_apikey_find(cs_store_t *store, const char *hash_hex, cs_apikey_t *out,
                                cs_err_t *err)
{
    cs_sqlite_t *s = (cs_sqlite_t *)store;
    sqlite3_stmt *st = cs__sqlite_stmt(s, Q_AK_FIND, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, hash_hex);
    int r = sqlite3_step(st);
    cs_rc rc = CS_OK;
    if (r == SQLITE_ROW)
        read_key(st, out);
    else if (r == SQLITE_DONE)
        rc = cs_errf(err, CS_ERR_NOTFOUND, "no such API key");
    else
        rc = cs__sqlite_fail(s, err, "find an API key");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

static cs_rc sqlite_apikey_list(cs_store_t *store, json_t **out, cs_err_t *err)
{
    cs_sqlite_t *s = (cs_sqlite_t *)store;
    sqlite3_stmt *st = cs__sqlite_stmt(s, Q_AK_LIST, err);
    json_t *keys = NULL;
    cs_rc rc = CS_OK;
    int r;
    char tb[40], sb[40];
    *out = NULL;
    if (!st)
        return CS_ERR_STORE;
    if (!(keys = json_array())) {
        rc = cs_errf(err, CS_ERR_NOMEM, "out of memory");
        goto out;
    }
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        cs_ms_t revoked = cs__col_time(st, 4);
        json_t *k = json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", cs__col_text(st, 0), "name",
                              cs__col_text(st, 1), "scopes",
                              cs_scopes_format(sqlite3_column_int(st, 2), sb, sizeof sb),
                              "created_at", cs_time_format(cs__col_time(st, 3), tb, sizeof tb),
                              "revoked_at", json_null());
        if (!k || json_array_append_new(keys, k)) {
            rc = cs_errf(err, CS_ERR_NOMEM, "out of memory");
            goto out;
        }
        if (revoked)
            json_object_set_new(k, "revoked_at", json_string(cs_time_format(revoked, tb, sizeof tb)));
    }
    if (r != SQLITE_DONE)
        rc = cs__sqlite_fail(s, err, "list API keys");
out:
    sqlite3_reset(st);
    if (rc) {
        json_decref(keys);
        return rc;
    }
    *out = json_pack("{s:o}", "keys", keys);
    return *out ? CS_OK : cs_errf(err, CS_ERR_NOMEM, "out of memory");
}

static cs_rc sqlite_apikey_revoke(cs_store_t *store, const char *id, cs_ms_t at, cs_err_t *err)
{
    cs_sqlite_t *s = (cs_sqlite_t *)store;
    sqlite3_stmt *st = cs__sqlite_stmt(s, Q_AK_REVOKE, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, at);
    cs_rc rc = cs__sqlite_exec_stmt(s, st, err, "revoke an API key");
    if (!rc && sqlite3_changes(s->db) == 0)
        rc = cs_err_field(err, CS_ERR_NOTFOUND, "id", "no active API key with id \"%.40s\"", id);
    return rc;
}

const cs_store_ops_t cs_store_sqlite_ops = {
    .name = "sqlite",
    .prefix = "sqlite:",
    .open = sqlite_open,
    .close = sqlite_close,
    .begin = sqlite_begin,
    .begin_relaxed = sqlite_begin_relaxed,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .ingest = cs__sqlite_ingest,
    .customer_view = cs__sqlite_customer_view,
    .order_view = cs__sqlite_order_view,
    .events_query = cs__sqlite_events_query,
    .counts = sqlite_counts,
    .apikey_put = sqlite_apikey_put,
    .apikey_find = sqlite_apikey_find,
    .apikey_list = sqlite_apikey_list,
    .apikey_revoke = sqlite_apikey_revoke,
    .journey_version = cs__sqlite_journey_version,
    .journey_source = cs__sqlite_journey_source,
    .journey_versions_each = cs__sqlite_journey_versions_each,
    .journey_enabled_get = cs__sqlite_journey_enabled_get,
    .journey_enabled_set = cs__sqlite_journey_enabled_set,
    .run_insert = cs__sqlite_run_insert,
    .run_get = cs__sqlite_run_get,
    .run_update = cs__sqlite_run_update,
    .runs_active = cs__sqlite_runs_active,
    .runs_view = cs__sqlite_runs_view,
    .timer_add = cs__sqlite_timer_add,
    .timers_due = cs__sqlite_timers_due,
    .timer_delete = cs__sqlite_timer_delete,
    .timers_delete_due = cs__sqlite_timers_delete_due,
    .timer_next = cs__sqlite_timer_next,
    .timer_count = cs__sqlite_timer_count,
    .outbox_put = cs__sqlite_outbox_put,
    .contact_stats = cs__sqlite_contact_stats,
    .outbox_view = cs__sqlite_outbox_view,
    .outbox_claim = cs__sqlite_outbox_claim,
    .outbox_result = cs__sqlite_outbox_result,
    .outbox_release = cs__sqlite_outbox_release,
    .outbox_next = cs__sqlite_outbox_next,
    .outbox_by_ref = cs__sqlite_outbox_by_ref,
    .outbox_get = cs__sqlite_outbox_get,
    .cursor_get = cs__sqlite_cursor_get,
    .cursor_set = cs__sqlite_cursor_set,
    .events_after = cs__sqlite_events_after,
    .journey_context = cs__sqlite_journey_context,
    .contact_get = cs__sqlite_contact_get,
    .order_track = cs__sqlite_order_track,
    .promise_get = cs__sqlite_promise_get,
    .promise_put = cs__sqlite_promise_put,
    .promises_due = cs__sqlite_promises_due,
    .promise_next = cs__sqlite_promise_next,
    .comp_spent = cs__sqlite_comp_spent,
    .discount_by_key = cs__sqlite_discount_by_key,
    .order_version = cs__sqlite_order_version,
    .customer_totals = cs__sqlite_customer_totals,
    .deliveries_each = cs__sqlite_deliveries_each,
    .delivery_of = cs__sqlite_delivery_of,
    .discount_put = cs__sqlite_discount_put,
    .discount_for_run = cs__sqlite_discount_for_run,
    .discounts_view = cs__sqlite_discounts_view,
};
