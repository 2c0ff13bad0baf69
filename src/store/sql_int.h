/*
 * sql_int.h -- private to the SQL backends: the handle, the statement
 * abstraction, the statement cache and the helpers the backend's files
 * share.
 *
 * Both backends (SQLite in sqlite.c, PostgreSQL in pg.c) run the same
 * code (sql.c, sql_fold.c, sql_views.c, sql_journey.c, sql_track.c,
 * sql_migrate.c) and the same SQL texts: each text is written once in the
 * SQL both databases understand (numbered ?N parameters, ON CONFLICT
 * upserts, RETURNING, no SQLite-only functions) and pg.c rewrites ?N to
 * $N. Only opening, migrations and transactions differ; they live in the
 * driver files.
 *
 * A sql_stmt is a statement of either database with SQLite's calling
 * conventions (bind, step to SQL_ROW / SQL_DONE, column, reset). On SQLite
 * the calls go straight to SQLite; on PostgreSQL the first step runs the
 * statement (prepared on the server on first use) and later steps walk the
 * rows of its result. Columns are valid until the next step or reset, on
 * both.
 *
 * Every SQL text lives in a table indexed by an id (stmt_sql in sql.c,
 * jstmt_sql, tstmt_sql); statements are prepared on first use and reset
 * after each use, so no SQL is built from data and nothing is parsed twice.
 */
#ifndef CS_STORE_SQL_INT_H
#define CS_STORE_SQL_INT_H

#include <pthread.h>
#include <sqlite3.h>

#include "../lib/cs_map.h"
#include "store.h"
#include "walbuf.h"

/* PostgreSQL advisory lock keys ("Cons" + purpose): migrations, and the
 * write lock every writer transaction takes (pg.c; copy.c takes it too) */
#define CS_PG_LOCK_MIGRATE 0x436f6e7301LL
#define CS_PG_LOCK_WRITE 0x436f6e7302LL

/* An ORDER BY over an order's shipments that puts first the parcel its
 * promise follows: the latest one still on its way (not delivered, not
 * returned: status 7, not waiting at a pickup point: status 4, which has
 * arrived as far as the carrier goes), else the latest waiting at a
 * pickup point, else the one delivered last, else the latest. The order
 * watch and the status answer (order_track, sql_track.c) and the
 * journeys' context (sql_journey.c) read it. */
#define SQL_FOLLOWED_PARCEL_ORDER                                                          \
    "(delivered_at IS NULL AND coalesce(status,0) NOT IN (4,7)) DESC,"                     \
    "(delivered_at IS NULL AND coalesce(status,0)<>7) DESC,coalesce(delivered_at,0) DESC," \
    "created_at DESC,id DESC"
_Static_assert(CS_TRACK_RETURNED_TO_SENDER == 7, "SQL_FOLLOWED_PARCEL_ORDER says 7");
_Static_assert(CS_TRACK_AVAILABLE_FOR_PICKUP == 4, "SQL_FOLLOWED_PARCEL_ORDER says 4");

/* Whether scan `s` counts for its parcel's status. A delivered parcel
 * stays delivered: a scan after its first delivery (a carrier's late
 * transit event, a code the tables do not know) is kept and shown but does
 * not undo it -- only a return to the sender does. A parcel on its way
 * back stays so: the scans after its first return (its way back, its
 * delivery to the shop) are shown, not counted. At the same instant a
 * return wins over anything, a delivery over anything else.
 * store/sql_fold.c folds by the same rules (fold_scan). Each query reads
 * the parcel's first return and first delivery once, as derived table f
 * (SQL_SCAN_FIRSTS, of the parcel bound as `p`), and joins it with s. */
#define SQL_SCAN_FIRSTS(p)                                                                  \
    "(SELECT (SELECT min(occurred_at) FROM scans WHERE shipment_id=" p " AND status=7) AS "  \
    "fr,(SELECT min(occurred_at) FROM scans WHERE shipment_id=" p " AND status=5) AS fd) f"
#define SQL_SCAN_COUNTS                                                                     \
    "(f.fr IS NULL OR s.occurred_at<f.fr OR (s.occurred_at=f.fr AND s.status=7)) AND "      \
    "(f.fd IS NULL OR s.occurred_at<f.fd OR s.status IN (5,7))"
_Static_assert(CS_TRACK_DELIVERED == 5 && CS_TRACK_RETURNED_TO_SENDER == 7,
               "SQL_SCAN_FIRSTS and SQL_SCAN_COUNTS say 5 and 7");

/* The same scan told twice: a producer, a carrier or an aggregator that
 * sent it again under another event id. Of one parcel (for scans still
 * waiting for theirs: of one carrier and number), the same instant, the
 * same status and incident reason, the same raw code and text and the same
 * location (as sent: its JSON text). The parcel keeps it once: the fold
 * stores no scan of its parcel again (fold_scan, store/sql_fold.c), the
 * event is logged all the same. Scan `x` against the values a..lo (columns
 * or parameters); a missing value equals only a missing one. */
#define SQL_SAME_VALUE(a, b) "(" a "=" b " OR (" a " IS NULL AND " b " IS NULL))"
#define SQL_SAME_SCAN(x, at, st, re, co, te, lo)                                          \
    x ".occurred_at=" at " AND " x ".status=" st " AND " SQL_SAME_VALUE(x ".reason", re)  \
    " AND " SQL_SAME_VALUE(x ".carrier_code", co) " AND "                                 \
    SQL_SAME_VALUE(x ".carrier_text", te) " AND " SQL_SAME_VALUE(x ".location", lo)

/* When a delivered scan `s` says the parcel was delivered: when it
 * happened, but never after its event `e` was received -- a carrier's
 * clock ahead (up to CS_EVENT_AHEAD_MAX_MS is taken) does not deliver a
 * parcel in the future. A scan without its event (an older release's
 * rows) at its own time. A parcel's delivered_at is the earliest of its
 * delivered scans' (Q_SC_DELIVERED). */
#define SQL_DELIVERED_AT(s, e)                                                            \
    "CASE WHEN " e ".received_at<" s ".occurred_at THEN " e ".received_at ELSE " s        \
    ".occurred_at END"

/* A tracking number used again. Carriers hand a number out again once its
 * parcel is long gone, so several shipments may share carrier + number. A
 * parcel's life starts when its order was placed -- when the order is not
 * known, two weeks before its shipment was announced, as labels are often
 * printed before that -- and a day earlier still for clocks
 * (SQL_PARCEL_CLOCK_MS). A scan found by its number belongs to the shipment
 * whose life started last at or before the scan; among shipments that start
 * together (parcels of one order sharing a number), the first announced. A
 * scan that names its shipment belongs to it from the start of its life on
 * only, or from its announcement when the order was placed later (Q_SH_GET,
 * Q_SC_ADOPT_WANT); before, it is found by its number. A
 * scan older than every such life waits as a scan for an unknown shipment
 * does, and a shipment announced later takes from an earlier life the scans
 * that are its own (fold_shipment, store/sql_fold.c). SQL_PARCEL_START is
 * the start of shipment `sh` joined with its order as `o`. */
#define SQL_PARCEL_START "coalesce(o.placed_at,sh.created_at-1209600000)"
#define SQL_PARCEL_JOIN "shipments sh LEFT JOIN orders o ON o.id=sh.order_id"
#define SQL_PARCEL_CLOCK_MS 86400000 /* a day */

/* What the customer spent on order `o` (a row of orders joined as `o`),
 * in its currency, minor units: nothing for a cancelled order, else its
 * total less the money its returns gave back, never below 0. A return
 * `r` gave back (SQL_RETURN_GAVE) once it was refunded -- an update said
 * `refunded`, or closed it naming an amount: refunded_at, kept by the
 * fold -- whatever later updates say of where it is (received, closed),
 * unless it was rejected since (rejected_at, or `rejected` now): its
 * refund_amount (the latest one named), or, when none was, the returned
 * items at what was paid for them (each line's price after its discount,
 * per unit; shipping and the order's own discount not). A return still
 * under way (an amount named while `approved` is the refund to come), one
 * closed without an amount (an exchange, store credit) and one rejected
 * gave back nothing. The one definition of what is spent: the customer
 * view's total_spent (sql_views.c), the order watch's compensation tier
 * (customer_totals, sql_track.c) and the customers' tally the journeys
 * read (Q_OR_TALLY) all read it, so they never disagree (docs/api.md,
 * docs/tracking.md). */
#define SQL_RETURN_GAVE(r)                                                                  \
    "(" r ".refunded_at IS NOT NULL AND " r ".refunded_at>=coalesce(" r ".rejected_at,0) AND " \
    r ".status<>'rejected')"
#define SQL_RETURN_ITEMS_PAID_AS(INT)                                                      \
    "(SELECT coalesce(sum(CASE WHEN ri.quantity>=l.q THEN l.v ELSE l.v/l.q*ri.quantity "   \
    "END),0) FROM return_items ri JOIN (SELECT oi.sku AS sku,CAST(sum(oi.quantity) AS "    \
    INT ") AS q,CAST(sum(oi.unit_price*oi.quantity-oi.discount) AS " INT ") AS v FROM "   \
    "order_items oi WHERE oi.order_id=o.id GROUP BY oi.sku) l ON l.sku=ri.sku WHERE "     \
    "ri.return_id=r.id)"
/* (_AS: with the migrations' word for the integer type, schema.c) */
#define SQL_ORDER_SPENT_AS(INT)                                                            \
    "(CASE WHEN o.status='cancelled' THEN 0 ELSE (SELECT CASE WHEN b.given>=o.total THEN " \
    "0 ELSE o.total-b.given END FROM (SELECT coalesce(sum(coalesce(r.refund_amount,"       \
    SQL_RETURN_ITEMS_PAID_AS(INT) ")),0) AS given FROM returns r WHERE r.order_id=o.id "   \
    "AND " SQL_RETURN_GAVE("r") ") b) END)"
#define SQL_RETURN_ITEMS_PAID SQL_RETURN_ITEMS_PAID_AS("BIGINT")
/* Whether the customer sent order `o` back: it has items, and every unit
 * of each (per sku) was in a return that gave back (SQL_RETURN_GAVE: the
 * refund counts, not its amount; a return under way, or rejected after
 * its refund, does not). The compensation tier does not count such an
 * order (customer_totals, sql_track.c; docs/configuration.md), as what
 * was spent (SQL_ORDER_SPENT) already nets its refund. */
#define SQL_ORDER_SENT_BACK                                                                \
    "(EXISTS(SELECT 1 FROM returns r WHERE r.order_id=o.id AND " SQL_RETURN_GAVE("r") ") " \
    "AND EXISTS(SELECT 1 FROM order_items oi WHERE oi.order_id=o.id) AND NOT EXISTS("      \
    "SELECT 1 FROM (SELECT oi.sku AS sku,sum(oi.quantity) AS q FROM order_items oi WHERE " \
    "oi.order_id=o.id GROUP BY oi.sku) l WHERE l.q>(SELECT coalesce(sum(ri.quantity),0) "  \
    "FROM return_items ri JOIN returns r ON r.id=ri.return_id WHERE r.order_id=o.id AND "  \
    SQL_RETURN_GAVE("r") " AND ri.sku=l.sku)))"
#define SQL_ORDER_SPENT SQL_ORDER_SPENT_AS("BIGINT")

/* ---- the statement abstraction ---- */

/* step results and column types: SQLite's values */
#define SQL_OK SQLITE_OK
#define SQL_ROW SQLITE_ROW
#define SQL_DONE SQLITE_DONE
#define SQL_NULL SQLITE_NULL
#define SQL_TEXT SQLITE_TEXT
#define SQL_ERROR SQLITE_ERROR
#define SQL_CONSTRAINT SQLITE_CONSTRAINT

typedef struct cs_sql cs_sql_t;
typedef struct pg_exec pg_exec_t; /* pg.c: a PostgreSQL statement's parameters and result */

typedef struct sql_stmt {
    sqlite3_stmt *lite; /* SQLite: the statement; NULL on PostgreSQL */
    pg_exec_t *pg;      /* PostgreSQL; NULL on SQLite */
} sql_stmt;

/* pg.c: the PostgreSQL side of each call */
int cs__pg_bind_int64(pg_exec_t *p, int i, int64_t v);
int cs__pg_bind_double(pg_exec_t *p, int i, double v);
int cs__pg_bind_text(pg_exec_t *p, int i, const char *v, int n, bool copy);
int cs__pg_bind_null(pg_exec_t *p, int i);
int cs__pg_step(pg_exec_t *p);
void cs__pg_reset(pg_exec_t *p);
void cs__pg_clear_bindings(pg_exec_t *p);
bool cs__pg_isnull(pg_exec_t *p, int i);
int64_t cs__pg_int64(pg_exec_t *p, int i);
double cs__pg_double(pg_exec_t *p, int i);
const char *cs__pg_text(pg_exec_t *p, int i);
int cs__pg_bytes(pg_exec_t *p, int i);
/* Inside a pipelined transaction: send without waiting (*sent); else nothing. */
cs_rc cs__pg_exec_deferred(pg_exec_t *p, bool *sent);
cs_rc cs__pg_prepare(cs_sql_t *s, const char *sql, bool persistent, pg_exec_t **out,
                     cs_err_t *err);
void cs__pg_finalize(pg_exec_t *p);

static inline int sql_bind_int64(sql_stmt *st, int i, int64_t v)
{
    return st->lite ? sqlite3_bind_int64(st->lite, i, v) : cs__pg_bind_int64(st->pg, i, v);
}
static inline int sql_bind_int(sql_stmt *st, int i, int v)
{
    return st->lite ? sqlite3_bind_int(st->lite, i, v) : cs__pg_bind_int64(st->pg, i, v);
}
static inline int sql_bind_double(sql_stmt *st, int i, double v)
{
    return st->lite ? sqlite3_bind_double(st->lite, i, v) : cs__pg_bind_double(st->pg, i, v);
}
static inline int sql_bind_null(sql_stmt *st, int i)
{
    return st->lite ? sqlite3_bind_null(st->lite, i) : cs__pg_bind_null(st->pg, i);
}
/* Text of n bytes (-1: up to its NUL) that stays valid until the statement
 * is reset (sql_bind_text), or that is copied (sql_bind_text_copy). */
static inline int sql_bind_text(sql_stmt *st, int i, const char *v, int n)
{
    return st->lite ? sqlite3_bind_text(st->lite, i, v, n, SQLITE_STATIC)
                    : cs__pg_bind_text(st->pg, i, v, n, false);
}
static inline int sql_bind_text_copy(sql_stmt *st, int i, const char *v, int n)
{
    return st->lite ? sqlite3_bind_text(st->lite, i, v, n, SQLITE_TRANSIENT)
                    : cs__pg_bind_text(st->pg, i, v, n, true);
}
static inline int sql_step(sql_stmt *st)
{
    return st->lite ? sqlite3_step(st->lite) : cs__pg_step(st->pg);
}
static inline void sql_reset(sql_stmt *st)
{
    if (st->lite)
        sqlite3_reset(st->lite);
    else
        cs__pg_reset(st->pg);
}
static inline void sql_clear_bindings(sql_stmt *st)
{
    if (st->lite)
        sqlite3_clear_bindings(st->lite);
    else
        cs__pg_clear_bindings(st->pg);
}
static inline int sql_column_type(sql_stmt *st, int i)
{
    if (st->lite)
        return sqlite3_column_type(st->lite, i);
    return cs__pg_isnull(st->pg, i) ? SQL_NULL : SQL_TEXT;
}
static inline int64_t sql_column_int64(sql_stmt *st, int i)
{
    return st->lite ? sqlite3_column_int64(st->lite, i) : cs__pg_int64(st->pg, i);
}
static inline int sql_column_int(sql_stmt *st, int i)
{
    return st->lite ? sqlite3_column_int(st->lite, i) : (int)cs__pg_int64(st->pg, i);
}
static inline double sql_column_double(sql_stmt *st, int i)
{
    return st->lite ? sqlite3_column_double(st->lite, i) : cs__pg_double(st->pg, i);
}
static inline const unsigned char *sql_column_text(sql_stmt *st, int i)
{
    return st->lite ? sqlite3_column_text(st->lite, i)
                    : (const unsigned char *)cs__pg_text(st->pg, i);
}
static inline int sql_column_bytes(sql_stmt *st, int i)
{
    return st->lite ? sqlite3_column_bytes(st->lite, i) : cs__pg_bytes(st->pg, i);
}

typedef enum stmt_id {
    /* events */
    Q_EV_INSERT,
    Q_EV_INSERT_SEQ,      /* with the seq given (PostgreSQL) */
    Q_EV_NEXT_SEQ,
    Q_EV_KNOWN,           /* which of a list of event ids are logged (PostgreSQL) */
    Q_EV_SEQ_BY_ID,
    Q_EV_ADOPT_ORPHANS,   /* set order_id, customer_id on earlier updates of an entity */
    Q_EV_ADOPT_SCANS,     /* set order_id (and its customer) on scan events of a shipment */
    Q_EV_ORDER_CUSTOMER,  /* set customer_id on an order's events that lack it */
    Q_EV_UNLINK_OTHERS,   /* other customers' ticket, feedback and signal events leave an
                             order */
    Q_EV_MOVE_CUSTOMER,   /* an order given to another customer takes its events along */
    /* customers */
    Q_CU_GET,
    Q_CU_PUT,
    Q_CU_TOUCH,
    Q_CU_BY_PHONE,        /* the customers of a phone number, by id (customers_by_phone) */
    /* orders */
    Q_OR_GET,
    Q_OR_CUSTOMER,
    Q_OR_PUT,
    Q_OR_CANCEL_STUB,
    Q_OR_TALLY,
    Q_OR_CANCEL,
    Q_OI_DELETE,
    Q_OI_INSERT,
    /* shipments and scans */
    Q_SH_GET,
    Q_SH_OWN,             /* the row of a shipment id itself (not an alias) */
    Q_SH_BY_TRACKING,     /* the shipment a scan belongs to (SQL_PARCEL_START) */
    Q_SH_START,           /* a shipment's SQL_PARCEL_START */
    Q_SH_EARLIER_LIFE,    /* a shipment of the number's earlier life holding scans */
    Q_SH_PUT,
    Q_SH_HANDOVER,        /* an older announcement's time is the hand-over */
    Q_SH_CANCEL_GET,      /* a cancelled shipment's row */
    Q_SH_CANCEL,
    Q_SH_CANCEL_KEEP,     /* a cancellation before its announcement */
    Q_SH_CANCEL_TAKE,     /* ... applied when the announcement comes */
    Q_SH_CANCEL_DROP,
    Q_SH_REVIVE,          /* a newer announcement than its cancellation */
    Q_SH_SET_STATUS,
    Q_SC_INSERT,
    Q_SC_ADOPT,
    Q_SC_ADOPT_WANT,
    Q_SC_MOVE,            /* scans from an earlier life of the number */
    Q_SH_ALIAS_OF,        /* the parcel a shipment id names besides its own */
    Q_SH_ALIAS_DROP,
    Q_SH_TWINS,           /* an order's shipments of one carrier and number */
    Q_SH_MERGE_SCANS,     /* a twin's scans to the parcel's first shipment */
    Q_SH_MERGE_ALIAS,     /* the twin's id names the first */
    Q_SH_MERGE_REPOINT,   /* ids that named the twin name the first */
    Q_SH_MERGE_CLOSED,    /* a watch closed on the twin closed on the first */
    Q_SH_DELETE,
    Q_PR_RECHECK,
    Q_SC_LATEST,
    Q_SC_DELIVERED,
    Q_SC_WAITING,
    Q_SC_SAME_PENDING,    /* the same scan (SQL_SAME_SCAN) waits already */
    /* returns */
    Q_RE_GET,
    Q_RE_PUT,
    Q_RI_DELETE,
    Q_RI_INSERT,
    /* tickets, feedback, messages */
    Q_TI_GET,
    Q_TI_PUT,
    Q_TI_UNLINK,          /* other customers' tickets leave an order placed */
    Q_FB_UNLINK,          /* ... and their feedback */
    Q_TI_MOVE,            /* an order given to another customer takes its tickets along */
    Q_FB_MOVE,            /* ... and its feedback */
    Q_TI_SET_STATUS,
    Q_FB_PUT,
    Q_MS_INSERT,
    Q_MS_OWNER,
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

/* Journey statements (sql_journey.c). */
typedef enum jstmt_id {
    QJ_VERSION_FIND,
    QJ_VERSION_MAX,
    QJ_VERSION_PUT,
    QJ_VERSION_SOURCE,
    QJ_SWITCH_GET,
    QJ_SWITCH_SET,
    QJ_RUN_INSERT,
    QJ_RUN_GET,
    QJ_RUN_BY_KEY,
    QJ_RUN_UPDATE,
    QJ_RUNS_ORDER,
    QJ_RUNS_CUSTOMER,
    QJ_RUNS_CUSTOMER_ORDERLESS,
    QJ_RUNS_CUSTOMER_JOURNEY,
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
    QJ_OUT_MOVE,
    QJ_OUT_NEXT,
    QJ_OUT_RELEASE,
    QJ_OUT_REQUEUE,
    QJ_OUT_REQUEUE_DRY,
    QJ_OUT_BY_REF,
    QJ_OUT_GET,
    QJ_CURSOR_GET,
    QJ_TICKET_CREATED_SEQ,
    QJ_MESSAGE_CHANNEL,
    QJ_CURSOR_SET,
    QJ_EVENTS_END,
    QJ_EVENTS_AFTER,
    QJ_EVENTS_OF_ORDER,
    QJ_EVENTS_OF_PARCEL,
    QJ_CTX_CUSTOMER,
    QJ_CTX_ORDERS,
    QJ_CTX_LAST_ORDER,
    QJ_CTX_UNSUB,
    QJ_CTX_ORDER,
    QJ_CTX_OTHER_ORDERS,
    QJ_CTX_ITEMS,
    QJ_CTX_SHIPMENT,
    QJ_CTX_ABOUT,
    QJ_TICKET_OPEN_AT,
    QJ_OTHER_LATE,
    QJ_CTX_REFUND_PENDING,
    QJ_CONTACT,
    QJ_ADDRESS_BOUNCED,
    QJ_EARLY_PUT,
    QJ_EARLY_PRUNE,
    QJ_EARLY_GET,
    QJ_EARLY_DELETE,
    QJ_DELIVERY_OF_SCAN,
    QJ_DELIVERY_SCANS,
    QJ_DISC_PUT,
    QJ_DISC_BY_KEY,
    QJ_DISC_BY_RUN,
    QJ_DISC_VIEW,
    QJ__COUNT
} jstmt_id_t;

/* Order watch statements (sql_track.c). */
typedef enum tstmt_id {
    QT_ORDER,
    QT_SHIPMENT,
    QT_LAST_SCAN,
    QT_STAY,
    QT_DEST,
    QT_DESTINATIONS,
    QT_NEAR,
    QT_PICKUP,
    QT_CUSTOMS,
    QT_REPLACES,
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
    pthread_cond_t idle_cv; /* signalled when a pass ends */
    bool running, stop, wanted;
    bool in_pass; /* the checkpointer is copying (it holds SQLite's checkpoint lock) */
    bool warned; /* "no WAL" said once (checkpointer thread only) */
    int asked_at; /* WAL frames when the checkpointer was last asked (writer only) */
    char *path;
} ckpt_t;

struct cs_sql {
    cs_store_t base;            /* must be first */
    sqlite3 *db;                /* SQLite; NULL on PostgreSQL */
    void *pg;                   /* PostgreSQL: the PGconn; NULL on SQLite */
    int64_t pg_changes;         /* rows the last PostgreSQL statement changed */
    int pg_names;               /* server-side statements prepared so far */
    int pg_gen;                 /* statement generation: bumped when prepared ones may be gone */
    bool pg_pipe;               /* in a writer transaction, in pipeline mode */
    bool pg_pipe_failed;        /* a pipelined statement failed: the transaction is lost */
    bool pg_snap;               /* a PostgreSQL reader's use, in its read-only transaction */
    int pg_pending;             /* pipelined results not read yet */
    bool pg_notify;             /* this transaction made work other nodes may take */
    int pg_listen_gen;          /* LISTEN issued on this connection generation (+1); 0 = not */
    char pg_error[512];         /* PostgreSQL: the last failed statement's error */
    char pg_state[6];           /* ... and its SQLSTATE */
    int pg_lock_ms;             /* PostgreSQL: how long to wait for a lock */
    char node[64];              /* this node's name in outbox claims; "" = the only one */
    /* PostgreSQL, within one writer transaction: the next event seq to
     * assign (0 = read it from the log first), the highest assigned, and
     * the event ids ingest_hint found new (their inserts are pipelined) */
    int64_t pg_next_seq, pg_seq_assigned;
    cs_map_t pg_new_ids;
    struct cs_touch_cache *touched; /* SQLite writer: see sql_fold.c; NULL until used */
    bool read_only;
    bool in_tx;
    bool durable;     /* synchronous=FULL; a relaxed transaction drops to NORMAL */
    bool relaxed;     /* in a relaxed transaction */
    bool following;   /* in events_after: its cached statements are in use */
    bool of_order;    /* in events_of_order: likewise */
    cs_walbuf_t *wal; /* the main file on the WAL-gathering VFS (borrowed); NULL = not */
    /* a SQLite reader's read snapshot kept between uses (sqlite.c, "held
     * snapshots"): open, the commit count and the time it was taken at, and
     * whether it waits in the idle list (guarded by that list's mutex) */
    bool snap_open, snap_idle;
    uint64_t snap_gen, snap_ns;
    struct cs_sql *snap_next;
    sql_stmt *stmts[Q__COUNT];
    sql_stmt *jstmts[QJ__COUNT];
    sql_stmt *tstmts[QT__COUNT];
    ckpt_t ckpt;
};

/* The node name from the open options (the host name by default). */
void cs__sql_set_node(cs_sql_t *s, const cs_store_opts_t *opts);

/* Rows the last statement inserted, updated or deleted. */
static inline int64_t sql_changes(cs_sql_t *s)
{
    return s->db ? sqlite3_changes(s->db) : s->pg_changes;
}

/* A private statement (not cached: callbacks may use the store while it
 * walks its rows); sql_finalize frees it (NULL-safe). */
cs_rc cs__sql_prepare(cs_sql_t *s, const char *sql, sql_stmt **out, cs_err_t *err);
void sql_finalize(sql_stmt *st);
/* Free every cached statement of a table. */
void cs__sql_free_stmts(sql_stmt **slots, size_t n);

/* Prepared (cached) statement, reset and unbound; NULL with err set on failure. */
sql_stmt *cs__sql_stmt(cs_sql_t *s, stmt_id_t id, cs_err_t *err);
/* The same for any statement table: prepared into *slot on first use. */
sql_stmt *cs__sql_cached(cs_sql_t *s, sql_stmt **slot, const char *sql,
                                cs_err_t *err);
/* Reset a statement and clear its bindings after use. */
void cs__stmt_done(sql_stmt *st);
/* Copy a text column into a bounded buffer ("" for NULL). */
void cs__col_copy(char *dst, size_t size, sql_stmt *st, int col);
/* Report the connection's last error as CS_ERR_STORE. */
cs_rc cs__sql_fail(cs_sql_t *s, cs_err_t *err, const char *what);

/* Bind helpers: NULL strings bind NULL; time 0 binds NULL. */
void cs__bind_text(sql_stmt *st, int i, const char *v);
void cs__bind_time(sql_stmt *st, int i, cs_ms_t v);
/* Column helpers: borrowed text (NULL when NULL), time (0 when NULL). */
const char *cs__col_text(sql_stmt *st, int i);
cs_ms_t cs__col_time(sql_stmt *st, int i);
/* A time as JSON: RFC 3339 text, or null for 0. */
json_t *cs__json_time(cs_ms_t t);

/* Step a statement that returns no rows; resets it. On PostgreSQL inside a
 * writer transaction it is only sent (pipelined): its failure shows at the
 * next statement that reads or at the commit, and sql_changes() is not
 * known after it. */
cs_rc cs__sql_exec_stmt(cs_sql_t *s, sql_stmt *st, cs_err_t *err, const char *what);
/* The same, run at once, with the rows it changed in *changes. */
cs_rc cs__sql_exec_count(cs_sql_t *s, sql_stmt *st, cs_err_t *err, const char *what,
                         int64_t *changes);

/* sql_migrate.c */
/* The step in C of migration `version` (1-based), if it has one: run by a
 * driver right after the migration's SQL, in the same transaction. */
cs_rc cs__sql_after_migration(cs_sql_t *s, int version, cs_err_t *err);
/* The steps of migrations whose SQL was applied without them (by hand,
 * from `consonance schema`), run now: by a driver after its migrations, in
 * the same transaction. */
cs_rc cs__sql_resume_steps(cs_sql_t *s, cs_err_t *err);

/* sql_fold.c */
/* PostgreSQL: which of the group's events are new, in one query; their
 * appends are then pipelined. Inside a writer transaction. */
cs_rc cs__sql_ingest_hint(cs_store_t *store, const cs_event_t *const *evs, size_t n,
                          cs_err_t *err);
/* End of a writer transaction: forget the seq and the new ids. */
void cs__sql_ingest_reset(cs_sql_t *s);
cs_rc cs__sql_ingest(cs_store_t *store, const cs_event_t *ev, cs_ms_t received_at,
                        cs_ingest_outcome_t *outcome, int64_t *seq, cs_err_t *err);
cs_rc cs__sql_scan_waiting(cs_store_t *store, int64_t seq, bool *waiting, cs_err_t *err);

/* sql_views.c */
cs_rc cs__sql_customer_view(cs_store_t *store, const char *id, json_t **out, cs_err_t *err);
cs_rc cs__sql_customers_by_phone(cs_store_t *store, const char *phone, const char *after,
                                 char (*ids)[CS_ID_MAX + 1], size_t max, size_t *n,
                                 cs_err_t *err);
cs_rc cs__sql_order_view(cs_store_t *store, const char *id, json_t **out, cs_err_t *err);
cs_rc cs__sql_events_query(cs_store_t *store, const cs_event_query_t *q, json_t **out,
                              cs_err_t *err);

/* sql_journey.c */
void cs__sql_journey_close(cs_sql_t *s);
cs_rc cs__sql_journey_version(cs_store_t *store, const char *journey, const char *hash,
                                 const char *source, cs_ms_t now, int *version, cs_err_t *err);
cs_rc cs__sql_journey_versions_each(cs_store_t *store,
                                       cs_rc (*fn)(const char *journey, int version, void *ud),
                                       void *ud, cs_err_t *err);
cs_rc cs__sql_journey_source(cs_store_t *store, const char *journey, int version,
                                char **source, cs_err_t *err);
cs_rc cs__sql_journey_enabled_get(cs_store_t *store, const char *journey, int *enabled,
                                     cs_err_t *err);
cs_rc cs__sql_journey_enabled_set(cs_store_t *store, const char *journey, bool on,
                                     cs_ms_t now, cs_err_t *err);
cs_rc cs__sql_run_insert(cs_store_t *store, cs_run_t *run, bool *existed, cs_err_t *err);
cs_rc cs__sql_run_get(cs_store_t *store, int64_t id, cs_run_t *out, cs_err_t *err);
cs_rc cs__sql_run_update(cs_store_t *store, const cs_run_t *run, cs_err_t *err);
cs_rc cs__sql_run_find(cs_store_t *store, const char *journey, const char *run_key, cs_run_t *out,
                        cs_err_t *err);
cs_rc cs__sql_runs_active_in(cs_store_t *store, const char *order_id, const char *customer_id,
                             const char *const *journeys, size_t njourneys, cs_run_t **out,
                             size_t *n, cs_err_t *err);
cs_rc cs__sql_runs_active(cs_store_t *store, const char *order_id, const char *customer_id,
                             bool customer_all, cs_run_t **out, size_t *n, cs_err_t *err);
cs_rc cs__sql_runs_view(cs_store_t *store, const char *customer_id, json_t **out,
                           cs_err_t *err);
cs_rc cs__sql_timer_add(cs_store_t *store, const cs_timer_t *t, int64_t *id, cs_err_t *err);
cs_rc cs__sql_timers_due(cs_store_t *store, cs_ms_t before, cs_timer_t *out, size_t max,
                            size_t *n, cs_err_t *err);
cs_rc cs__sql_timers_delete_due(cs_store_t *store, cs_ms_t before, size_t max, cs_err_t *err);
cs_rc cs__sql_timer_delete(cs_store_t *store, int64_t id, cs_err_t *err);
cs_rc cs__sql_timer_next(cs_store_t *store, cs_ms_t *due_at, cs_err_t *err);
cs_rc cs__sql_timer_count(cs_store_t *store, int64_t *n, cs_err_t *err);
cs_rc cs__sql_outbox_put(cs_store_t *store, cs_outmsg_t *m, bool *existed, cs_err_t *err);
cs_rc cs__sql_contact_stats(cs_store_t *store, const char *customer_id, const char *order_id,
                               cs_ms_t since, cs_contact_stats_t *out, cs_err_t *err);
cs_rc cs__sql_ticket_open(cs_store_t *store, const char *customer_id, const char *order_id,
                          bool *open, cs_ms_t *at, cs_err_t *err);
cs_rc cs__sql_other_order_late(cs_store_t *store, const char *customer_id, const char *order_id,
                               bool *late, cs_err_t *err);
cs_rc cs__sql_outbox_view(cs_store_t *store, const char *customer_id, json_t **out,
                             cs_err_t *err);
cs_rc cs__sql_outbox_claim(cs_store_t *store, cs_ms_t now, cs_ms_t lease_until,
                              cs_outmsg_t *out, size_t max, size_t *n, cs_err_t *err);
cs_rc cs__sql_outbox_result(cs_store_t *store, const cs_out_result_t *r, cs_err_t *err);
cs_rc cs__sql_outbox_release(cs_store_t *store, cs_ms_t now, int64_t *n, cs_err_t *err);
cs_rc cs__sql_outbox_requeue(cs_store_t *store, const cs_out_filter_t *f, cs_ms_t now,
                             bool dry_run, int64_t *ids, size_t max, size_t *n_ids,
                             int64_t *n, cs_err_t *err);
cs_rc cs__sql_outbox_next(cs_store_t *store, cs_ms_t *at, cs_err_t *err);
cs_rc cs__sql_outbox_by_ref(cs_store_t *store, const char *ref, cs_outmsg_t *out,
                               cs_err_t *err);
cs_rc cs__sql_outbox_get(cs_store_t *store, int64_t id, cs_outmsg_t *out, cs_err_t *err);
cs_rc cs__sql_early_status_put(cs_store_t *store, const cs_early_status_t *e,
                               cs_ms_t drop_before, cs_err_t *err);
cs_rc cs__sql_early_status_take(cs_store_t *store, int channel, const char *ref,
                                cs_early_status_t *out, size_t max, size_t *n, cs_err_t *err);
cs_rc cs__sql_cursor_get(cs_store_t *store, const char *name, int64_t *seq, cs_err_t *err);
cs_rc cs__sql_log_end(cs_store_t *store, int64_t *seq, cs_err_t *err);
cs_rc cs__sql_ticket_created_seq(cs_store_t *store, const char *ticket_id, int64_t *seq,
                                 cs_err_t *err);
cs_rc cs__sql_message_channel(cs_store_t *store, int64_t seq, char out[16], cs_err_t *err);
cs_rc cs__sql_cursor_set(cs_store_t *store, const char *name, int64_t seq, cs_err_t *err);
cs_rc cs__sql_events_after(cs_store_t *store, int64_t after, size_t max, uint32_t types,
                              cs_rc (*fn)(int64_t seq, const char *order_id,
                                          const char *customer_id, const char *body, size_t len,
                                          void *ud),
                              void *ud, int64_t *examined, cs_err_t *err);
cs_rc cs__sql_events_of_order(cs_store_t *store, const char *order_id, const char *shipment_id,
                              int64_t before, uint32_t types, size_t max,
                              cs_rc (*fn)(int64_t seq, const char *order_id,
                                          const char *customer_id, const char *body, size_t len,
                                          void *ud),
                              void *ud, cs_err_t *err);
cs_rc cs__sql_discount_put(cs_store_t *store, cs_discount_t *d, bool *existed, cs_err_t *err);
cs_rc cs__sql_discount_for_run(cs_store_t *store, int64_t run_id, cs_discount_t *out,
                                  cs_err_t *err);
cs_rc cs__sql_discounts_view(cs_store_t *store, const char *customer_id, json_t **out,
                                cs_err_t *err);
cs_rc cs__sql_deliveries_each(cs_store_t *store,
                                 cs_rc (*fn)(const cs_delivery_row_t *d, void *ud), void *ud,
                                 cs_err_t *err);
cs_rc cs__sql_delivery_of_scan(cs_store_t *store, int64_t seq, cs_delivery_row_t *out,
                             cs_err_t *err);
cs_rc cs__sql_contact_get(cs_store_t *store, const char *customer_id, cs_contact_t *out,
                             cs_err_t *err);
cs_rc cs__sql_address_bounced(cs_store_t *store, const char *customer_id, int channel,
                              const char *address, cs_ms_t since, bool *out, cs_err_t *err);
cs_rc cs__sql_journey_context(cs_store_t *store, const char *customer_id,
                                 const char *order_id, int64_t about, unsigned flags,
                                 json_t **customer, json_t **order, json_t **shipment,
                                 cs_err_t *err);

/* sql_track.c */
void cs__sql_track_close(cs_sql_t *s);
/* The customer touches a transaction remembered (sql_fold.c): forgotten
 * when it rolls back, freed on close. */
void cs__sql_touch_forget(cs_sql_t *s);
void cs__sql_touch_close(cs_sql_t *s);
/* The order's promise as JSON for the order view; NULL when none. */
cs_rc cs__sql_promise_json(cs_sql_t *s, const char *order_id, json_t **out, cs_err_t *err);
cs_rc cs__sql_order_track(cs_store_t *store, const char *order_id, cs_ms_t placed_after,
                             cs_order_track_t *out, cs_err_t *err);
cs_rc cs__sql_order_destinations(cs_store_t *store, const char *order_id,
                                 cs_rc (*fn)(const char *destination, void *ud), void *ud,
                                 cs_err_t *err);
/* A shipment's status and delivered time read again from its scans
 * (SQL_SCAN_COUNTS); sql_fold.c. */
cs_rc cs__sql_refresh_shipment(cs_sql_t *s, const char *id, cs_err_t *err);
/* An order's shipments of one carrier and number are one parcel (announced
 * again under another id): the others are folded into the first
 * announced (created_at, then id), whose id they name from then on
 * (shipment_aliases); *merged counts them. sql_fold.c. */
cs_rc cs__sql_merge_twins(cs_sql_t *s, const char *order_id, const char *carrier,
                          const char *number, int *merged, cs_err_t *err);
cs_rc cs__sql_order_near(cs_store_t *store, const char *order_id, char out[CS_ID_MAX + 1],
                         cs_err_t *err);
cs_rc cs__sql_promise_get(cs_store_t *store, const char *order_id, cs_promise_rec_t *out,
                             cs_err_t *err);
cs_rc cs__sql_promise_put(cs_store_t *store, const cs_promise_rec_t *p, const char *move,
                             cs_err_t *err);
cs_rc cs__sql_promises_due(cs_store_t *store, cs_ms_t before, cs_promise_rec_t *out,
                              size_t max, size_t *n, cs_err_t *err);
cs_rc cs__sql_promise_next(cs_store_t *store, cs_ms_t *at, cs_err_t *err);
cs_rc cs__sql_comp_spent(cs_store_t *store, cs_ms_t since, int64_t *cost, cs_err_t *err);
cs_rc cs__sql_order_version(cs_store_t *store, const char *order_id, int64_t version[3],
                               cs_err_t *err);
cs_rc cs__sql_customer_totals(cs_store_t *store, const char *customer_id, cs_ms_t until,
                              const char *currency,
                              int64_t *orders, int64_t *spent, cs_err_t *err);
cs_rc cs__sql_discount_by_key(cs_store_t *store, const char *idem_key, cs_discount_t *out,
                                 cs_err_t *err);


/* sql.c */
cs_rc cs__sql_counts(cs_store_t *store, cs_store_counts_t *c, cs_err_t *err);
cs_rc cs__sql_apikey_put(cs_store_t *store, const cs_apikey_t *k, cs_err_t *err);
cs_rc cs__sql_apikey_find(cs_store_t *store, const char *hash_hex, cs_apikey_t *out,
                          cs_err_t *err);
cs_rc cs__sql_apikey_list(cs_store_t *store, json_t **out, cs_err_t *err);
cs_rc cs__sql_apikey_revoke(cs_store_t *store, const char *id, cs_ms_t at, cs_err_t *err);

/* The operations both backends share (every one but open, close and the
 * transactions), for their ops tables. */
#define CS_SQL_SHARED_OPS \
    .ingest = cs__sql_ingest, \
    .scan_waiting = cs__sql_scan_waiting, \
    .customer_view = cs__sql_customer_view, \
    .customers_by_phone = cs__sql_customers_by_phone, \
    .order_view = cs__sql_order_view, \
    .events_query = cs__sql_events_query, \
    .counts = cs__sql_counts, \
    .apikey_put = cs__sql_apikey_put, \
    .apikey_find = cs__sql_apikey_find, \
    .apikey_list = cs__sql_apikey_list, \
    .apikey_revoke = cs__sql_apikey_revoke, \
    .journey_version = cs__sql_journey_version, \
    .journey_source = cs__sql_journey_source, \
    .journey_versions_each = cs__sql_journey_versions_each, \
    .journey_enabled_get = cs__sql_journey_enabled_get, \
    .journey_enabled_set = cs__sql_journey_enabled_set, \
    .run_insert = cs__sql_run_insert, \
    .run_get = cs__sql_run_get, \
    .run_update = cs__sql_run_update, \
    .runs_active = cs__sql_runs_active, \
    .runs_active_in = cs__sql_runs_active_in, \
    .run_find = cs__sql_run_find, \
    .runs_view = cs__sql_runs_view, \
    .timer_add = cs__sql_timer_add, \
    .timers_due = cs__sql_timers_due, \
    .timer_delete = cs__sql_timer_delete, \
    .timers_delete_due = cs__sql_timers_delete_due, \
    .timer_next = cs__sql_timer_next, \
    .timer_count = cs__sql_timer_count, \
    .outbox_put = cs__sql_outbox_put, \
    .contact_stats = cs__sql_contact_stats, \
    .ticket_open = cs__sql_ticket_open, \
    .other_order_late = cs__sql_other_order_late, \
    .outbox_view = cs__sql_outbox_view, \
    .outbox_claim = cs__sql_outbox_claim, \
    .outbox_release = cs__sql_outbox_release, \
    .outbox_requeue = cs__sql_outbox_requeue, \
    .outbox_result = cs__sql_outbox_result, \
    .outbox_next = cs__sql_outbox_next, \
    .outbox_by_ref = cs__sql_outbox_by_ref, \
    .outbox_get = cs__sql_outbox_get, \
    .early_status_put = cs__sql_early_status_put, \
    .early_status_take = cs__sql_early_status_take, \
    .cursor_get = cs__sql_cursor_get, \
    .cursor_set = cs__sql_cursor_set, \
    .log_end = cs__sql_log_end, \
    .events_after = cs__sql_events_after, \
    .events_of_order = cs__sql_events_of_order, \
    .ticket_created_seq = cs__sql_ticket_created_seq, \
    .message_channel = cs__sql_message_channel, \
    .journey_context = cs__sql_journey_context, \
    .contact_get = cs__sql_contact_get, \
    .address_bounced = cs__sql_address_bounced, \
    .order_track = cs__sql_order_track, \
    .order_destinations = cs__sql_order_destinations, \
    .order_near = cs__sql_order_near, \
    .promise_get = cs__sql_promise_get, \
    .promise_put = cs__sql_promise_put, \
    .promises_due = cs__sql_promises_due, \
    .promise_next = cs__sql_promise_next, \
    .comp_spent = cs__sql_comp_spent, \
    .discount_by_key = cs__sql_discount_by_key, \
    .order_version = cs__sql_order_version, \
    .customer_totals = cs__sql_customer_totals, \
    .deliveries_each = cs__sql_deliveries_each, \
    .delivery_of_scan = cs__sql_delivery_of_scan, \
    .discount_put = cs__sql_discount_put, \
    .discount_for_run = cs__sql_discount_for_run, \
    .discounts_view = cs__sql_discounts_view

#endif /* CS_STORE_SQL_INT_H */
