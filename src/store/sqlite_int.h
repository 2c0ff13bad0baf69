/*
 * sqlite_int.h -- private to the SQLite backend (sqlite*.c): the handle, the
 * statement cache and helpers shared by the open/fold/view files.
 *
 * Every SQL text lives in the `stmt_sql` table in sqlite.c, indexed by
 * stmt_id_t; statements are prepared on first use with
 * SQLITE_PREPARE_PERSISTENT and reset after each use, so no SQL is built
 * from data and nothing is parsed twice.
 */
#ifndef CS_STORE_SQLITE_INT_H
#define CS_STORE_SQLITE_INT_H

#include <pthread.h>
#include <sqlite3.h>

#include "store.h"

typedef enum stmt_id {
    /* events */
    Q_EV_INSERT,
    Q_EV_SEQ_BY_ID,
    Q_EV_ADOPT_ORPHANS,   /* set order_id on earlier updates of an entity */
    Q_EV_ADOPT_SCANS,     /* set order_id on scan events of a shipment */
    /* customers */
    Q_CU_GET,
    Q_CU_PUT,
    Q_CU_TOUCH,
    /* orders */
    Q_OR_GET,
    Q_OR_PUT,
    Q_OR_CANCEL_STUB,
    Q_OR_CANCEL,
    Q_OI_DELETE,
    Q_OI_INSERT,
    /* shipments and scans */
    Q_SH_GET,
    Q_SH_BY_TRACKING,
    Q_SH_PUT,
    Q_SH_SET_STATUS,
    Q_SC_INSERT,
    Q_SC_ADOPT,
    Q_SC_ADOPT_WANT,
    Q_SC_LATEST,
    Q_SC_DELIVERED,
    /* returns */
    Q_RE_GET,
    Q_RE_PUT,
    Q_RI_DELETE,
    Q_RI_INSERT,
    /* tickets, feedback, messages */
    Q_TI_GET,
    Q_TI_PUT,
    Q_TI_SET_STATUS,
    Q_FB_PUT,
    Q_MS_INSERT,
    Q_MS_OUTBOX,
    /* api keys */
    Q_AK_PUT,
    Q_AK_FIND,
    Q_AK_LIST,
    Q_AK_REVOKE,
    /* views */
    Q_V_CUSTOMER,
    Q_V_CUSTOMER_ORDERS,
    Q_V_CUSTOMER_SPENT,
    Q_V_ORDER,
    Q_V_ORDER_ITEMS,
    Q_V_ORDER_SHIPMENTS,
    Q_V_SHIPMENT_SCANS,
    Q_V_ORDER_RETURNS,
    Q_V_RETURN_ITEMS,
    Q_V_ORDER_TICKETS,
    Q_V_ORDER_FEEDBACK,
    Q_V_ORDER_TIMELINE,
    Q_V_EVENTS_ASC,
    Q_V_EVENTS_DESC,
    Q_V_EVENTS_CUST_ASC,
    Q_V_EVENTS_CUST_DESC,
    Q_V_EVENTS_ORDER_ASC,
    Q_V_EVENTS_ORDER_DESC,
    Q_COUNTS,
    Q__COUNT
} stmt_id_t;

/* Journey statements (sqlite_journey.c). */
typedef enum jstmt_id {
    QJ_VERSION_FIND,
    QJ_VERSION_MAX,
    QJ_VERSION_PUT,
    QJ_VERSION_SOURCE,
    QJ_SWITCH_GET,
    QJ_SWITCH_SET,
    QJ_RUN_INSERT,
    QJ_RUN_GET,
    QJ_RUN_UPDATE,
    QJ_RUNS_ORDER,
    QJ_RUNS_CUSTOMER,
    QJ_RUNS_VIEW,
    QJ_TIMER_ADD,
    QJ_TIMERS_DUE,
    QJ_TIMER_DELETE,
    QJ_TIMERS_DELETE_DUE,
    QJ_TIMER_NEXT,
    QJ_TIMER_COUNT,
    QJ_OUT_PUT,
    QJ_OUT_ID,
    QJ_OUT_BUDGET,
    QJ_OUT_LAST_ASK,
    QJ_OUT_ORDER_ASKED,
    QJ_OUT_VIEW,
    QJ_OUT_CLAIMABLE,
    QJ_OUT_CLAIM,
    QJ_OUT_RESULT,
    QJ_OUT_NEXT,
    QJ_OUT_RELEASE,
    QJ_OUT_BY_REF,
    QJ_OUT_GET,
    QJ_CURSOR_GET,
    QJ_CURSOR_SET,
    QJ_EVENTS_AFTER,
    QJ_CTX_CUSTOMER,
    QJ_CTX_ORDERS,
    QJ_CTX_LAST_ORDER,
    QJ_CTX_UNSUB,
    QJ_CTX_ORDER,
    QJ_CTX_OTHER_ORDERS,
    QJ_CTX_ITEMS,
    QJ_CTX_SHIPMENT,
    QJ_CTX_TICKET_OPEN,
    QJ_CTX_REFUND_PENDING,
    QJ_CONTACT,
    QJ_DELIVERY_OF,
    QJ_DISC_PUT,
    QJ_DISC_BY_KEY,
    QJ_DISC_BY_RUN,
    QJ_DISC_VIEW,
    QJ__COUNT
} jstmt_id_t;

/* Order watch statements (sqlite_track.c). */
typedef enum tstmt_id {
    QT_ORDER,
    QT_SHIPMENT,
    QT_LAST_SCAN,
    QT_CUSTOMER,
    QT_GET,
    QT_PUT,
    QT_MOVE,
    QT_DUE,
    QT_NEXT,
    QT_SPENT,
    QT_V_MOVES,
    QT_VERSION,
    QT__COUNT
} tstmt_id_t;

/* The background checkpointer of a file store's writer: it copies WAL
 * frames into the database file on its own connection, so the writer's
 * commits only append to the WAL and fsync it. */
typedef struct ckpt {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool running, stop, wanted;
    char *path;
} ckpt_t;

typedef struct cs_sqlite {
    cs_store_t base;            /* must be first */
    sqlite3 *db;
    bool read_only;
    bool in_tx;
    bool durable;     /* synchronous=FULL; a relaxed transaction drops to NORMAL */
    bool relaxed;     /* in a relaxed transaction */
    sqlite3_stmt *stmts[Q__COUNT];
    sqlite3_stmt *jstmts[QJ__COUNT];
    sqlite3_stmt *tstmts[QT__COUNT];
    ckpt_t ckpt;
} cs_sqlite_t;

/* Prepared (cached) statement, reset and unbound; NULL with err set on failure. */
sqlite3_stmt *cs__sqlite_stmt(cs_sqlite_t *s, stmt_id_t id, cs_err_t *err);
/* The same for any statement table: prepared into *slot on first use. */
sqlite3_stmt *cs__sqlite_cached(cs_sqlite_t *s, sqlite3_stmt **slot, const char *sql,
                                cs_err_t *err);
/* Reset a statement and clear its bindings after use. */
void cs__stmt_done(sqlite3_stmt *st);
/* Copy a text column into a bounded buffer ("" for NULL). */
void cs__col_copy(char *dst, size_t size, sqlite3_stmt *st, int col);
/* Report the connection's last error as CS_ERR_STORE. */
cs_rc cs__sqlite_fail(cs_sqlite_t *s, cs_err_t *err, const char *what);

/* Bind helpers: NULL strings bind NULL; time 0 binds NULL. */
void cs__bind_text(sqlite3_stmt *st, int i, const char *v);
void cs__bind_time(sqlite3_stmt *st, int i, cs_ms_t v);
/* Column helpers: borrowed text (NULL when NULL), time (0 when NULL). */
const char *cs__col_text(sqlite3_stmt *st, int i);
cs_ms_t cs__col_time(sqlite3_stmt *st, int i);
/* A time as JSON: RFC 3339 text, or null for 0. */
json_t *cs__json_time(cs_ms_t t);

/* Step a statement that returns no rows; resets it. */
cs_rc cs__sqlite_exec_stmt(cs_sqlite_t *s, sqlite3_stmt *st, cs_err_t *err, const char *what);

/* sqlite_fold.c */
cs_rc cs__sqlite_ingest(cs_store_t *store, const cs_event_t *ev, cs_ms_t received_at,
                        cs_ingest_outcome_t *outcome, int64_t *seq, cs_err_t *err);

/* sqlite_views.c */
cs_rc cs__sqlite_customer_view(cs_store_t *store, const char *id, json_t **out, cs_err_t *err);
cs_rc cs__sqlite_order_view(cs_store_t *store, const char *id, json_t **out, cs_err_t *err);
cs_rc cs__sqlite_events_query(cs_store_t *store, const cs_event_query_t *q, json_t **out,
                              cs_err_t *err);

/* sqlite_journey.c */
void cs__sqlite_journey_close(cs_sqlite_t *s);
cs_rc cs__sqlite_journey_version(cs_store_t *store, const char *journey, const char *hash,
                                 const char *source, cs_ms_t now, int *version, cs_err_t *err);
cs_rc cs__sqlite_journey_versions_each(cs_store_t *store,
                                       cs_rc (*fn)(const char *journey, int version, void *ud),
                                       void *ud, cs_err_t *err);
cs_rc cs__sqlite_journey_source(cs_store_t *store, const char *journey, int version,
                                char **source, cs_err_t *err);
cs_rc cs__sqlite_journey_enabled_get(cs_store_t *store, const char *journey, int *enabled,
                                     cs_err_t *err);
cs_rc cs__sqlite_journey_enabled_set(cs_store_t *store, const char *journey, bool on,
                                     cs_ms_t now, cs_err_t *err);
cs_rc cs__sqlite_run_insert(cs_store_t *store, cs_run_t *run, bool *existed, cs_err_t *err);
cs_rc cs__sqlite_run_get(cs_store_t *store, int64_t id, cs_run_t *out, cs_err_t *err);
cs_rc cs__sqlite_run_update(cs_store_t *store, const cs_run_t *run, cs_err_t *err);
cs_rc cs__sqlite_runs_active(cs_store_t *store, const char *order_id, const char *customer_id,
                             cs_run_t **out, size_t *n, cs_err_t *err);
cs_rc cs__sqlite_runs_view(cs_store_t *store, const char *customer_id, json_t **out,
                           cs_err_t *err);
cs_rc cs__sqlite_timer_add(cs_store_t *store, const cs_timer_t *t, int64_t *id, cs_err_t *err);
cs_rc cs__sqlite_timers_due(cs_store_t *store, cs_ms_t before, cs_timer_t *out, size_t max,
                            size_t *n, cs_err_t *err);
cs_rc cs__sqlite_timers_delete_due(cs_store_t *store, cs_ms_t before, size_t max, cs_err_t *err);
cs_rc cs__sqlite_timer_delete(cs_store_t *store, int64_t id, cs_err_t *err);
cs_rc cs__sqlite_timer_next(cs_store_t *store, cs_ms_t *due_at, cs_err_t *err);
cs_rc cs__sqlite_timer_count(cs_store_t *store, int64_t *n, cs_err_t *err);
cs_rc cs__sqlite_outbox_put(cs_store_t *store, cs_outmsg_t *m, bool *existed, cs_err_t *err);
cs_rc cs__sqlite_contact_stats(cs_store_t *store, const char *customer_id, const char *order_id,
                               cs_ms_t since, cs_contact_stats_t *out, cs_err_t *err);
cs_rc cs__sqlite_outbox_view(cs_store_t *store, const char *customer_id, json_t **out,
                             cs_err_t *err);
cs_rc cs__sqlite_outbox_claim(cs_store_t *store, cs_ms_t now, cs_ms_t lease_until,
                              cs_outmsg_t *out, size_t max, size_t *n, cs_err_t *err);
cs_rc cs__sqlite_outbox_result(cs_store_t *store, const cs_out_result_t *r, cs_err_t *err);
cs_rc cs__sqlite_outbox_release(cs_store_t *store, cs_ms_t now, int64_t *n, cs_err_t *err);
cs_rc cs__sqlite_outbox_next(cs_store_t *store, cs_ms_t *at, cs_err_t *err);
cs_rc cs__sqlite_outbox_by_ref(cs_store_t *store, const char *ref, cs_outmsg_t *out,
                               cs_err_t *err);
cs_rc cs__sqlite_outbox_get(cs_store_t *store, int64_t id, cs_outmsg_t *out, cs_err_t *err);
cs_rc cs__sqlite_cursor_get(cs_store_t *store, const char *name, int64_t *seq, cs_err_t *err);
cs_rc cs__sqlite_cursor_set(cs_store_t *store, const char *name, int64_t seq, cs_err_t *err);
cs_rc cs__sqlite_events_after(cs_store_t *store, int64_t after, size_t max, uint32_t types,
                              cs_rc (*fn)(int64_t seq, const char *order_id,
                                          const char *customer_id, const char *body, size_t len,
                                          void *ud),
                              void *ud, int64_t *examined, cs_err_t *err);
cs_rc cs__sqlite_discount_put(cs_store_t *store, cs_discount_t *d, bool *existed, cs_err_t *err);
cs_rc cs__sqlite_discount_for_run(cs_store_t *store, int64_t run_id, cs_discount_t *out,
                                  cs_err_t *err);
cs_rc cs__sqlite_discounts_view(cs_store_t *store, const char *customer_id, json_t **out,
                                cs_err_t *err);
cs_rc cs__sqlite_deliveries_each(cs_store_t *store,
                                 cs_rc (*fn)(const cs_delivery_row_t *d, void *ud), void *ud,
                                 cs_err_t *err);
cs_rc cs__sqlite_delivery_of(cs_store_t *store, const char *order_id, cs_delivery_row_t *out,
                             cs_err_t *err);
cs_rc cs__sqlite_contact_get(cs_store_t *store, const char *customer_id, cs_contact_t *out,
                             cs_err_t *err);
cs_rc cs__sqlite_journey_context(cs_store_t *store, const char *customer_id,
                                 const char *order_id, unsigned flags, json_t **customer,
                                 json_t **order, json_t **shipment, cs_err_t *err);

/* sqlite_track.c */
void cs__sqlite_track_close(cs_sqlite_t *s);
/* The order's promise as JSON for the order view; NULL when none. */
cs_rc cs__sqlite_promise_json(cs_sqlite_t *s, const char *order_id, json_t **out, cs_err_t *err);
cs_rc cs__sqlite_order_track(cs_store_t *store, const char *order_id, cs_ms_t placed_after,
                             cs_order_track_t *out, cs_err_t *err);
cs_rc cs__sqlite_promise_get(cs_store_t *store, const char *order_id, cs_promise_rec_t *out,
                             cs_err_t *err);
cs_rc cs__sqlite_promise_put(cs_store_t *store, const cs_promise_rec_t *p, const char *move,
                             cs_err_t *err);
cs_rc cs__sqlite_promises_due(cs_store_t *store, cs_ms_t before, cs_promise_rec_t *out,
                              size_t max, size_t *n, cs_err_t *err);
cs_rc cs__sqlite_promise_next(cs_store_t *store, cs_ms_t *at, cs_err_t *err);
cs_rc cs__sqlite_comp_spent(cs_store_t *store, cs_ms_t since, int64_t *cost, cs_err_t *err);
cs_rc cs__sqlite_order_version(cs_store_t *store, const char *order_id, int64_t version[3],
                               cs_err_t *err);
cs_rc cs__sqlite_customer_totals(cs_store_t *store, const char *customer_id, int64_t *orders,
                                 int64_t *spent, cs_err_t *err);
cs_rc cs__sqlite_discount_by_key(cs_store_t *store, const char *idem_key, cs_discount_t *out,
                                 cs_err_t *err);

#endif /* CS_STORE_SQLITE_INT_H */
