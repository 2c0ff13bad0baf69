/*
 * store.h -- the store interface: a const table of functions that every
 * backend (sqlite.c, pg.c) implements, plus the dispatching
 * wrappers callers use. Callers never name a backend; they pass a target:
 *
 *     "sqlite:PATH"            embedded SQLite file (WAL)
 *     "sqlite::memory:"        throwaway in-memory store (tests)
 *     "postgresql://..."       PostgreSQL (several nodes may share it)
 *
 * Contract every backend honours (tests/conformance checks it):
 *  - The event log is append-only and idempotent on event_id: ingesting an
 *    event whose event_id is already present reports CS_INGEST_DUPLICATE and
 *    changes nothing.
 *  - Current state is folded from events in arrival order but tolerates any
 *    order: an update older than the state it would overwrite (by
 *    occurred_at) is logged but does not regress the state; an update for an
 *    entity not yet seen creates a stub that the later create fills in; a
 *    scan for an unknown shipment is kept and shows up on that shipment once
 *    it is created.
 *  - ingest is only called between begin and commit. A failed ingest leaves
 *    the transaction unusable: the caller rolls back.
 *  - One handle is used by one thread at a time. The writer handle is the
 *    only one that writes; readers open their own handles (read_only).
 *
 * Ownership: views return owned json_t (json_decref it). Strings passed in
 * are borrowed for the duration of the call.
 */
#ifndef CS_STORE_H
#define CS_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "../lib/cs.h"
#include "../lib/cs_crypto.h"
#include "../lib/cs_time.h"
#include "../model/event.h"

typedef struct cs_store cs_store_t;
typedef struct cs_store_ops cs_store_ops_t;

/* Every backend's handle starts with this. */
struct cs_store {
    const cs_store_ops_t *ops;
};

typedef struct cs_store_opts {
    bool read_only;      /* a reader handle: no migrations, no writes */
    bool durable;        /* fsync on every commit (default true); false only for throwaway stores */
    int64_t cache_kib;   /* page cache per handle; 0 = backend default (SQLite: 16 MiB) */
    int busy_timeout_ms; /* how long to wait on a lock; 0 = 5000 */
    /* this node's name in outbox claims: outbox_release gives back only
     * this node's; NULL or "" = the host name. Nodes sharing a store need
     * distinct names. The embedded store has one node and ignores it.
     * Borrowed for the open call. */
    const char *node;
} cs_store_opts_t;

/* Defaults: durable, writer, backend cache. */
void cs_store_opts_default(cs_store_opts_t *o);

typedef enum cs_ingest_outcome {
    CS_INGEST_NEW = 0,
    CS_INGEST_DUPLICATE = 1,
    /* new, and a scan whose shipment is not known yet: kept, and attached
     * to it when its shipment.created arrives */
    CS_INGEST_PENDING = 2
} cs_ingest_outcome_t;

typedef struct cs_store_counts {
    int64_t events;
    int64_t customers;
    int64_t orders;
    int64_t order_items;
    int64_t shipments;
    int64_t scans;
    int64_t pending_scans; /* scans whose shipment has not arrived yet */
    int64_t returns;
    int64_t tickets;
    int64_t feedback;
    int64_t message_events;
    int64_t last_seq;      /* highest event sequence number, 0 when empty */
} cs_store_counts_t;

typedef struct cs_event_query {
    int64_t after_seq;      /* only events with seq > after_seq (0 = from the start) */
    int64_t before_seq;     /* only events with seq < before_seq (0 = no bound) */
    int limit;              /* 1..1000 */
    const char *type;       /* event type name filter; NULL = all */
    const char *customer_id;/* NULL = all */
    const char *order_id;   /* NULL = all */
    bool newest_first;      /* order by seq descending */
} cs_event_query_t;

/* API key scopes, a bit set. */
enum {
    CS_SCOPE_READ = 1,  /* views of personal data */
    CS_SCOPE_WRITE = 2, /* event intake */
    CS_SCOPE_ADMIN = 4  /* key management and operator actions */
};

typedef struct cs_apikey {
    char id[32];                     /* public id, e.g. "key_3f9a1c2b"; shown in lists */
    char name[128];                  /* operator's label */
    char hash_hex[CS_SHA256_HEX_LEN]; /* SHA-256 of the full secret, lower-case hex */
    int scopes;
    cs_ms_t created_at;
    cs_ms_t revoked_at;              /* 0 = active */
} cs_apikey_t;


/* ---- journeys: runs, durable timers, the outbox ---- */

#define CS_JID_MAX 64 /* journey ids */

typedef enum cs_run_status {
    CS_RUN_ACTIVE = 1,
    CS_RUN_DONE = 2,   /* reached its end */
    CS_RUN_EXITED = 3  /* ended early: exit step, exit condition, timeout, disabled */
} cs_run_status_t;
const char *cs_run_status_name(int status);

/* One customer's (or order's) way through one journey. */
typedef struct cs_run {
    int64_t id;
    char journey[CS_JID_MAX + 1];
    int version;                     /* the definition it entered on; it stays on it */
    /* "o:ORDER", "c:CUSTOMER" or "e:EVENT": one run per key; "oc:HEX" for
     * an order's customer after an edit gave it to them (journeys.c) */
    char run_key[CS_ID_MAX + 3];
    char customer_id[CS_ID_MAX + 1];
    char order_id[CS_ID_MAX + 1];    /* "" when none */
    int status;                      /* cs_run_status_t */
    int pc;                          /* next instruction */
    int64_t gen;                     /* bumped on every move: older timers are stale */
    int wait_event;                  /* event type a wait_for waits for; 0 = none */
    int64_t trigger_seq;             /* the event that started it */
    cs_ms_t started_at, updated_at;
    cs_ms_t held_since;              /* the current send has been held back since; 0 = not */
    char exit_reason[64];
    /* why the current send waits: "quiet_hours", or a hold's cause
     * ("ticket_open", "delivery_late", "refund_pending", "no_address");
     * "" = it does not */
    char held_for[24];
} cs_run_t;

/* A durable timer: at due_at, run run_id continues if its gen still matches. */
typedef struct cs_timer {
    int64_t id;
    cs_ms_t due_at;
    int64_t run_id;
    int64_t gen;
} cs_timer_t;

typedef enum cs_out_status {
    CS_OUT_QUEUED = 1,  /* waiting for its channel */
    CS_OUT_SENDING = 2, /* handed to a channel worker */
    CS_OUT_SENT = 3,
    CS_OUT_FAILED = 4,  /* permanently (hard bounce, invalid number, retries used up) */
    CS_OUT_SKIPPED = 5  /* the policy said no; reason says why */
} cs_out_status_t;
const char *cs_out_status_name(int status);

/* Outbox channels: the contact channels (cs_channel_t), and webhooks. */
#define CS_OUT_WEBHOOK CS_CHANNEL__COUNT
#define CS_OUT__CHANNELS (CS_CHANNEL__COUNT + 1)
const char *cs_out_channel_name(int channel);

/* A provider's delivery status for a reference no message has yet: the
 * provider's callback came before the sender recorded the reference it
 * got back from the hand-over. */
typedef struct cs_early_status {
    int channel;                     /* cs_channel_t: the provider's */
    char ref[160];                   /* the provider's reference */
    int status;                      /* cs_msg_status_t */
    char detail[160];                /* "" = none */
    cs_ms_t occurred_at;
    cs_ms_t received_at;
} cs_early_status_t;
#define CS_EARLY_STATUS_KEEP_MS (60 * 60 * 1000LL) /* how long one is kept */

/* A unique discount code a journey issued. */
typedef struct cs_discount {
    int64_t id;
    char code[48];
    char idem_key[CS_JID_MAX + CS_ID_MAX + 40]; /* one code per run step */
    int64_t run_id;
    char journey[CS_JID_MAX + 1];
    char customer_id[CS_ID_MAX + 1];
    char order_id[CS_ID_MAX + 1];   /* "" when none */
    int kind;                       /* cs_discount_kind_t */
    double value;                   /* percent or amount; 0 for free shipping */
    char currency[4];               /* amounts: the order's; "" otherwise */
    cs_ms_t created_at, expires_at;
} cs_discount_t;
/* {code, kind, value, currency, journey, order_id, created_at, expires_at} */
json_t *cs_discount_json(const cs_discount_t *d);

/* A message recorded before anything is sent. idem_key is unique: putting
 * the same key twice keeps the first. */
typedef struct cs_outmsg {
    int64_t id;
    char idem_key[CS_JID_MAX + CS_ID_MAX + 40];
    int64_t run_id;
    char journey[CS_JID_MAX + 1];
    char customer_id[CS_ID_MAX + 1];
    char order_id[CS_ID_MAX + 1];
    int channel;                     /* cs_channel_t */
    char template_name[CS_JID_MAX + 1];
    int cls;                         /* cs_msg_class_t */
    int status;                      /* cs_out_status_t */
    char reason[64];
    char recipient[256];
    char locale[16];
    int attempts;
    cs_ms_t next_at;                 /* QUEUED: not before */
    cs_ms_t created_at, sent_at;
    char provider_ref[128];          /* the channel's id for it (Message-ID, SMS sid) */
    cs_ms_t lease_until;             /* SENDING: claimed until */
    char fallback[32];               /* the channels after `channel` its send listed, in
                                        order, by name ("sms,email"): the sender's
                                        fallback when `channel` is refused at the
                                        hand-over; "" = none */
    cs_ms_t handed_at;               /* when its last hand-over whose outcome was recorded
                                        was made (a retry goes where that one went); 0 =
                                        none since it was queued or requeued: a claim
                                        whose outcome never came (its sender died) is
                                        not one */
    cs_ms_t requeued_at;             /* an operator's last requeue (outbox_requeue); 0 =
                                        none: the holds' hold_max counts from it, else
                                        from created_at */
} cs_outmsg_t;

/* Which FAILED messages outbox_requeue takes: all of the given tests. */
typedef struct cs_out_filter {
    cs_ms_t failed_since;            /* failed at or after this */
    cs_ms_t failed_until;            /* and before this; 0 = no bound */
    int channel;                     /* an outbox channel; -1 = any */
    const char *journey;             /* NULL = any (borrowed, as the rest) */
    const char *customer_id;         /* NULL = any */
    const char *reason_prefix;       /* NULL = any; else the reason starts with it */
} cs_out_filter_t;

/* The outcome of one send attempt, recorded by outbox_result. */
typedef struct cs_out_result {
    int64_t id;
    cs_ms_t at;                      /* when: a FAILED one's failed_at (0 = its
                                        created_at) */
    int status;                      /* SENT, FAILED, SKIPPED, or QUEUED again (a retry
                                        at next_at) */
    cs_ms_t next_at;
    cs_ms_t sent_at;
    const char *reason;              /* NULL = none */
    const char *provider_ref;        /* NULL = none */
    bool untried;                    /* QUEUED or SKIPPED: not handed over (quiet hours,
                                        a store error, an order given to another
                                        customer), the claim's attempt is given back */
    cs_ms_t lease_until;             /* not 0: recorded only while the message still has
                                        this lease (a claim its sender left alone, which
                                        another may have taken since) */
    bool move;                       /* not handed over: the message is QUEUED again at
                                        next_at on `channel` to `recipient`, with
                                        `fallback` (NULL = none) left, its attempt given
                                        back (status and untried are not read) */
    int channel;                     /* move: cs_channel_t */
    const char *recipient;           /* move: where it goes now; else, not NULL: the
                                        address the hand-over went to (kept as the
                                        message's) */
    const char *fallback;            /* move */
    bool handed;                     /* the outcome of a hand-over: the message's
                                        handed_at becomes `at` */
} cs_out_result_t;

/* journey_context flags: CS_CTX_LITE reads only the rows themselves (the
 * customer with `unsubscribed`, the order without items, aggregates or
 * ticket/refund flags, the shipment): enough to send a transactional
 * message. */
#define CS_CTX_FULL 0u
#define CS_CTX_LITE 1u
/* The most parcels of an order a full context lists (order.shipments). */
#define CS_CTX_PARCELS_MAX 50

/* What sending needs to know about a customer, read without building JSON:
 * addresses, language, time zone, consent and unsubscribe state. */
typedef struct cs_contact {
    char email[256];
    char phone[40];
    char locale[16];
    char timezone[64];
    /* consent per channel (email, sms, whatsapp), two letters each:
     * transactional then marketing; 'y' yes, 'n' no, '-' never said */
    char consent[8];
    unsigned unsubscribed; /* channels (1 << cs_channel_t) an unsubscribe or a complaint
                              stops: those that did not start over since it (a new
                              address or a consent granted on the channel) */
    unsigned bounced;      /* channels that bounced since they last started over */
    /* per channel, when the latest unsubscribe or complaint that stops it
     * (unsubscribed) occurred, and the latest bounce of it (bounced); 0
     * where it does not hold. contact_get's alone: cs_contact_from_json
     * leaves them 0 (the journeys' context has no times) */
    cs_ms_t unsubscribed_at[CS_CHANNEL__COUNT];
    cs_ms_t bounced_at[CS_CHANNEL__COUNT];
    /* per channel, when it last started over (a new address on it, a
     * consent granted on it): the stops before it no longer hold; 0 when
     * it never did. contact_get's alone, as the times above */
    cs_ms_t started_at[CS_CHANNEL__COUNT];
} cs_contact_t;
/* The contact data of a customer as journey_context gives it (borrowed;
 * its email, phone, locale, timezone, consents, unsubscribed_channels and
 * bounced), into *out: what contact_get reads of the same row, for a
 * caller that needs both without reading the customer twice. A NULL customer gives an
 * empty contact. */
void cs_contact_from_json(json_t *customer, cs_contact_t *out);
/* What stops or lets messages through on each channel of a contact
 * (borrowed), as the customer view shows it: {"email": {"unsubscribed",
 * "unsubscribed_at", "bounced", "bounced_at", "started_over_at",
 * "consents": {"transactional", "marketing"}}, "sms": ..., "whatsapp":
 * ...}, times as ISO 8601 or null,
 * consents true, false or null (never stated). Returns owned JSON, NULL
 * when out of memory. */
json_t *cs_contact_json(const cs_contact_t *c);

/* An address or a scan's place as the store keeps it, JSON: postal code
 * and country (CS_ID_MAX), city and region (CS_SHORT_MAX), each byte
 * possibly escaped, and the keys. A longer copy would be cut into JSON
 * that does not parse, and the parcel would lose its lane. */
#define CS_ADDRESS_JSON_MAX (4 * CS_SHORT_MAX + 4 * CS_ID_MAX + 64)

/* A completed delivery, for the promise model. Strings are borrowed for
 * the duration of the callback (or owned by the row for delivery_of_scan). */
typedef struct cs_delivery_row {
    char carrier[CS_ID_MAX + 1];
    char service[CS_ID_MAX + 1];
    char origin[CS_ADDRESS_JSON_MAX]; /* the shipment's origin address as JSON; "" = none */
    char destination[CS_ADDRESS_JSON_MAX];
    cs_ms_t placed_at, shipped_at, delivered_at;
    /* the longest silence of its journey: from hand-over or a scan to the
     * next scan (the delivery included); 0, 0 when not known */
    cs_ms_t gap_from, gap_to;
    /* its first scan in its destination region (model/region.h); 0 = none */
    cs_ms_t dest_at;
    char shipment_id[CS_ID_MAX + 1]; /* from delivery_of_scan; "" from deliveries_each */
} cs_delivery_row_t;

/* What the contact policy needs to know about a customer's recent messages. */
typedef struct cs_contact_stats {
    int budget_used;      /* budgeted classes (reassurance, ask, marketing) queued/sent since */
    cs_ms_t last_ask_at;  /* 0 = never */
    bool order_asked;     /* an ask queued/sent for the given order */
    bool ticket_open;     /* a ticket of the customer, or about the given order, is open */
    cs_ms_t ticket_at;    /* ticket_open: the latest status time (tickets.status_at: its
                             creation or latest update) among the open ones; else 0 */
    bool other_late;      /* another order of the customer is late (other_order_late) */
} cs_contact_stats_t;


/* What the order watch needs to know about an order, read without JSON:
 * the order, the shipment its promise follows (the latest one still on
 * its way, else the one delivered last) and that shipment's latest scan.
 * Money in minor units. */
typedef struct cs_order_track {
    char customer_id[CS_ID_MAX + 1];
    char status[16];          /* "placed", "cancelled", ... */
    char currency[4];
    int64_t total, shipping;  /* minor units */
    cs_ms_t placed_at;        /* 0 = only a stub so far */
    cs_ms_t promised_from, promised_to; /* the shop's own promise; 0 = none */
    bool shipped;             /* a shipment exists that is not cancelled */
    char shipment_id[CS_ID_MAX + 1]; /* the followed one (SQL_FOLLOWED_PARCEL_ORDER) of those;
                                        "" = none */
    /* the followed shipment's; before one exists, what order.placed said of
     * its shipping (an address the shipment lacks is taken from there too) */
    char carrier[CS_ID_MAX + 1];
    char service[CS_ID_MAX + 1];
    /* addresses as JSON; "" = none */
    char origin[CS_ADDRESS_JSON_MAX], destination[CS_ADDRESS_JSON_MAX];
    cs_ms_t shipped_at, delivered_at;
    int last_status;          /* cs_track_status_t of the latest scan; -1 = none */
    int last_reason;          /* cs_incident_t */
    cs_ms_t last_scan_at;
    cs_ms_t stay_since;       /* the first of the latest scans at the latest scan's place;
                                 0 = the place is not known */
    cs_ms_t dest_since;       /* while its latest scan is in its destination region
                                 (model/region.h), the first scan there; else 0 */
    cs_ms_t pickup_since;     /* while its latest scans say it waits at a pickup point, or
                                 was collected there, the first "ready for pickup" scan
                                 of that run (it arrived then); else 0 */
    cs_ms_t customs_since;    /* while its latest scan says it is in customs clearance
                                 (reason customs, not an exception), the first scan of
                                 the trailing run of those; else 0 */
    bool replaces;            /* the followed shipment, not on its way back, was sent again
                                 for a parcel of the order gone back to the shop: one not
                                 cancelled, on its way back, that went wrong (its first
                                 failed attempt, exception or return scan) before this one
                                 was created -- the order view's `replaced` */
} cs_order_track_t;

/* An order's delivery promise as the watch keeps it: the first one shown
 * to the customer, the current one and why it is there, the at-risk flag,
 * the next re-check, and the compensation when the first one broke. */
#define CS_PR_NAME_MAX 24
typedef struct cs_promise_rec {
    char order_id[CS_ID_MAX + 1];
    char customer_id[CS_ID_MAX + 1];
    cs_ms_t first_from, first_to, first_point; /* local midnights */
    char first_source[8];     /* "shop" (the order's window) or "model" */
    cs_ms_t first_at;
    cs_ms_t from, to, point;  /* current; 0 = no window (returned) */
    char reason[CS_PR_NAME_MAX]; /* cs_promise_reason_name */
    int quiet_days;
    int level;                /* the model's lane level; -1 = no history */
    cs_ms_t updated_at;
    bool at_risk;
    char risk_reason[CS_PR_NAME_MAX];
    cs_ms_t risk_at;
    int risk_events;          /* at-risk signals emitted so far */
    cs_ms_t check_at;         /* next re-check; 0 = nothing to watch */
    bool closed;              /* delivered, returned or cancelled */
    cs_ms_t broken_at;        /* the first promise broke; 0 = kept so far */
    int late_days;            /* working days past the first promise */
    cs_ms_t comp_at;          /* compensation decided; 0 = not yet */
    char comp_code[48];       /* "" = none issued */
    int64_t comp_cost;        /* what it may cost, minor units, for the daily budget */
    char comp_note[64];       /* how it was sized, or why none was issued */
    char closed_shipment[CS_ID_MAX + 1]; /* the parcel followed when it closed on a delivery
                                            or a return ("" = none) */
    cs_ms_t own_to;           /* the followed parcel was sent again for one gone back to
                                 the shop (cs_order_track_t.replaces) and its own window
                                 (the model's at its hand-over) ends after first_to: that
                                 window's last day (a local midnight), which the order is
                                 late after (a journey's risk.late too); else 0 */
} cs_promise_rec_t;

struct cs_store_ops {
    const char *name;   /* "sqlite" */
    const char *prefix; /* target prefix that selects this backend: "sqlite:" */
    bool shared;        /* several nodes may share it: poll for the others' work */

    cs_rc (*open)(const char *target, const cs_store_opts_t *opts, cs_store_t **out,
                  cs_err_t *err);
    void (*close)(cs_store_t *s);

    /* Transactions. The writer wraps each group of events in one. */
    cs_rc (*begin)(cs_store_t *s, cs_err_t *err);
    /* A transaction whose commit survives a crash of this process at once
     * but may reach stable storage only with the next commit (SQLite WAL
     * with synchronous=NORMAL for it; PostgreSQL synchronous_commit=off).
     * For records whose loss on power failure costs a repeat, never data:
     * the sender's outcomes. */
    cs_rc (*begin_relaxed)(cs_store_t *s, cs_err_t *err);
    cs_rc (*commit)(cs_store_t *s, cs_err_t *err);
    /* Optional (NULL = commit is durable when it returns): commit without
     * waiting for stable storage. The transaction is visible at once and
     * durable once a `sync` that began after it returned; the group commit
     * acknowledges only then, and goes on with the next group meanwhile. */
    cs_rc (*commit_deferred)(cs_store_t *s, cs_err_t *err);
    /* Make every commit so far durable. The one call that may run on a
     * second thread while the handle's owner goes on. */
    cs_rc (*sync)(cs_store_t *s, cs_err_t *err);
    /* Optional (NULL = never): true once a sync failed, after which the
     * handle takes no more commits (a later sync could report pages as
     * written that the kernel dropped); only a handle opened afresh does.
     * Any thread. */
    bool (*refusing)(cs_store_t *s);
    /* Optional (NULL = no such check): whether the database would take a
     * write now, by a check that writes nothing; CS_ERR_STORE naming why
     * not. For /healthz: a database that reads but takes no writes (a
     * standby, a read-only default) must not look healthy. Any handle,
     * readers included, outside a transaction. */
    cs_rc (*writable)(cs_store_t *s, cs_err_t *err);
    /* Optional (NULL = nothing to do): a reader handle is taken from its
     * pool for one use (a request's reads), and given back. A SQLite reader
     * keeps its read snapshot from one use to the next while no commit of
     * this process came in between, for a few milliseconds at most: a use
     * then reads no older data than it would have without (another process
     * writing the same file is seen within those milliseconds). */
    void (*read_enter)(cs_store_t *s);
    void (*read_leave)(cs_store_t *s);
    void (*rollback)(cs_store_t *s);

    /* Append ev to the log and fold it into current state. received_at is the
     * server's arrival time. On success *outcome says NEW or DUPLICATE and
     * *seq is the log sequence number (of the original on duplicates). */
    cs_rc (*ingest)(cs_store_t *s, const cs_event_t *ev, cs_ms_t received_at,
                    cs_ingest_outcome_t *outcome, int64_t *seq, cs_err_t *err);
    /* Whether the scan logged at `seq` still waits for its shipment
     * (false once attached, or for no such scan). Between begin and commit
     * it sees the transaction's own ingests: a scan kept waiting and then
     * attached by a shipment.created later in the same group is not. */
    cs_rc (*scan_waiting)(cs_store_t *s, int64_t seq, bool *waiting, cs_err_t *err);
    /* Optional, for shared stores (NULL = none): wait up to timeout_ms on
     * a handle kept for it for another node's word that it committed work
     * (events, timers, messages); *woken says whether it came. A hint:
     * polling stays the guarantee. */
    cs_rc (*wakeup_wait)(cs_store_t *s, int timeout_ms, bool *woken, cs_err_t *err);
    /* Optional (NULL = no use): the events about to be ingested in this
     * transaction, so a backend far from the caller can look them up in
     * one go. A hint only: ingest's outcomes are the same without it. */
    cs_rc (*ingest_hint)(cs_store_t *s, const cs_event_t *const *evs, size_t n, cs_err_t *err);

    /* Views. CS_ERR_NOTFOUND when the entity is unknown. Shapes are
     * documented in docs/api.md and identical across backends. */
    cs_rc (*customer_view)(cs_store_t *s, const char *id, json_t **out, cs_err_t *err);
    /* The ids of the customers whose phone is `phone` (E.164, as customers
     * store it), in id order after `after` ("" = from the first), at most
     * max of them into ids; *n how many. */
    cs_rc (*customers_by_phone)(cs_store_t *s, const char *phone, const char *after,
                                char (*ids)[CS_ID_MAX + 1], size_t max, size_t *n,
                                cs_err_t *err);
    cs_rc (*order_view)(cs_store_t *s, const char *id, json_t **out, cs_err_t *err);
    cs_rc (*events_query)(cs_store_t *s, const cs_event_query_t *q, json_t **out,
                          cs_err_t *err);
    cs_rc (*counts)(cs_store_t *s, cs_store_counts_t *out, cs_err_t *err);

    /* API keys (outside the event log; each call is its own transaction and
     * must not be called inside begin/commit). */
    cs_rc (*apikey_put)(cs_store_t *s, const cs_apikey_t *key, cs_err_t *err);
    cs_rc (*apikey_find)(cs_store_t *s, const char *hash_hex, cs_apikey_t *out, cs_err_t *err);
    cs_rc (*apikey_list)(cs_store_t *s, json_t **out, cs_err_t *err);
    cs_rc (*apikey_revoke)(cs_store_t *s, const char *id, cs_ms_t at, cs_err_t *err);

    /* Journeys. Writes run inside begin/commit on the writer. */
    /* Find or add the version of a journey definition with this hash. */
    cs_rc (*journey_version)(cs_store_t *s, const char *journey, const char *hash,
                             const char *source, cs_ms_t now, int *version, cs_err_t *err);
    /* The source of a version (owned by the caller, free with cs_free). */
    cs_rc (*journey_source)(cs_store_t *s, const char *journey, int version, char **source,
                            cs_err_t *err);
    /* Every stored version of every journey, in no particular order. */
    cs_rc (*journey_versions_each)(cs_store_t *s,
                                   cs_rc (*fn)(const char *journey, int version, void *ud),
                                   void *ud, cs_err_t *err);
    /* Operator switch: -1 = never set (use the file's default), 0 off, 1 on. */
    cs_rc (*journey_enabled_get)(cs_store_t *s, const char *journey, int *enabled, cs_err_t *err);
    cs_rc (*journey_enabled_set)(cs_store_t *s, const char *journey, bool on, cs_ms_t now,
                                 cs_err_t *err);
    /* Insert a run; *existed (the run key is taken) leaves the old one untouched. */
    cs_rc (*run_insert)(cs_store_t *s, cs_run_t *run, bool *existed, cs_err_t *err);
    cs_rc (*run_get)(cs_store_t *s, int64_t id, cs_run_t *out, cs_err_t *err);
    /* The run of journey with run_key (whatever its status); CS_ERR_NOTFOUND. */
    cs_rc (*run_find)(cs_store_t *s, const char *journey, const char *run_key, cs_run_t *out,
                      cs_err_t *err);
    cs_rc (*run_update)(cs_store_t *s, const cs_run_t *run, cs_err_t *err);
    /* Active runs for an order and/or a customer (either may be NULL), by id,
     * each once: of the customer's, all with customer_all, else only those
     * about no order (what an event about one order concerns besides that
     * order's runs; a customer with thousands of orders under way has tens
     * of thousands). *out is owned by the caller (cs_free). */
    cs_rc (*runs_active)(cs_store_t *s, const char *order_id, const char *customer_id,
                         bool customer_all, cs_run_t **out, size_t *n, cs_err_t *err);
    /* As runs_active without customer_all, and besides the customer's
     * active runs of the journeys listed (borrowed), whatever their order:
     * those an event about one order may end or advance among the
     * customer's other orders' runs (an order placed ends the win-back of
     * the one before). An index reads only the active runs of each. */
    cs_rc (*runs_active_in)(cs_store_t *s, const char *order_id, const char *customer_id,
                            const char *const *journeys, size_t njourneys, cs_run_t **out,
                            size_t *n, cs_err_t *err);
    /* All runs of a customer, newest first, as JSON for the API. */
    cs_rc (*runs_view)(cs_store_t *s, const char *customer_id, json_t **out, cs_err_t *err);
    cs_rc (*timer_add)(cs_store_t *s, const cs_timer_t *t, int64_t *id, cs_err_t *err);
    /* Timers due before `before`, by due time then id, at most `max`. */
    cs_rc (*timers_due)(cs_store_t *s, cs_ms_t before, cs_timer_t *out, size_t max, size_t *n,
                        cs_err_t *err);
    cs_rc (*timer_delete)(cs_store_t *s, int64_t id, cs_err_t *err);
    /* Delete exactly the timers timers_due(before, max) returned, in one go
     * (same transaction, nothing added in between). */
    cs_rc (*timers_delete_due)(cs_store_t *s, cs_ms_t before, size_t max, cs_err_t *err);
    /* Earliest due time; 0 when there is none. */
    cs_rc (*timer_next)(cs_store_t *s, cs_ms_t *due_at, cs_err_t *err);
    cs_rc (*timer_count)(cs_store_t *s, int64_t *n, cs_err_t *err);
    cs_rc (*outbox_put)(cs_store_t *s, cs_outmsg_t *m, bool *existed, cs_err_t *err);
    cs_rc (*contact_stats)(cs_store_t *s, const char *customer_id, const char *order_id,
                           cs_ms_t since, cs_contact_stats_t *out, cs_err_t *err);
    /* contact_stats' ticket_open and ticket_at alone: whether a ticket of
     * the customer, or about the order (NULL or "": none), is open, and
     * the latest status time among the open ones (0 when none is). */
    cs_rc (*ticket_open)(cs_store_t *s, const char *customer_id, const char *order_id,
                         bool *open, cs_ms_t *at, cs_err_t *err);
    /* contact_stats' other_late alone: whether an order of the customer
     * other than order_id (NULL or "": any) is one the order watch has at
     * risk now (its promise at risk and not closed; not cancelled). Asks
     * and marketing wait while any delivery of the customer is late, not
     * only the one they are about. */
    cs_rc (*other_order_late)(cs_store_t *s, const char *customer_id, const char *order_id,
                              bool *late, cs_err_t *err);
    /* Claim up to max messages to send: QUEUED ones due at now, and SENDING
     * ones whose lease ran out (their sender died). They become SENDING
     * with lease_until and one more attempt. */
    cs_rc (*outbox_claim)(cs_store_t *s, cs_ms_t now, cs_ms_t lease_until, cs_outmsg_t *out,
                          size_t max, size_t *n, cs_err_t *err);
    cs_rc (*outbox_result)(cs_store_t *s, const cs_out_result_t *r, cs_err_t *err);
    /* At start-up: messages this node (cs_store_opts_t.node) had claimed
     * when it stopped (killed) go back to QUEUED at once, to be sent again
     * with the same key; other nodes' claims run out with their lease.
     * *n gets their number. */
    cs_rc (*outbox_release)(cs_store_t *s, cs_ms_t now, int64_t *n, cs_err_t *err);
    /* An operator's retry: the FAILED messages f matches go back to QUEUED
     * in one statement, due at now, with no attempts, no lease, no
     * handed_at (a first hand-over again), requeued_at now and the
     * reason "requeued: " and the one they failed with; each keeps its
     * row and idempotency key. SENT, SKIPPED, QUEUED and SENDING ones are
     * not touched, and two requeues at once take each message once. With
     * dry_run nothing changes. *n gets how many matched; ids (max of
     * them, borrowed) the lowest of their ids, in order, *n_ids how many. */
    cs_rc (*outbox_requeue)(cs_store_t *s, const cs_out_filter_t *f, cs_ms_t now,
                            bool dry_run, int64_t *ids, size_t max, size_t *n_ids,
                            int64_t *n, cs_err_t *err);
    /* When the next queued message is due (0 = none queued). */
    cs_rc (*outbox_next)(cs_store_t *s, cs_ms_t *at, cs_err_t *err);
    /* The message a provider reference belongs to (CS_ERR_NOTFOUND when none). */
    cs_rc (*outbox_by_ref)(cs_store_t *s, const char *ref, cs_outmsg_t *out, cs_err_t *err);
    cs_rc (*outbox_get)(cs_store_t *s, int64_t id, cs_outmsg_t *out, cs_err_t *err);
    /* Keep a status whose reference no message has yet (a status kept
     * already stays as it was) and drop those received before
     * `drop_before`. In a transaction. */
    cs_rc (*early_status_put)(cs_store_t *s, const cs_early_status_t *e, cs_ms_t drop_before,
                              cs_err_t *err);
    /* Take (return and delete) the statuses kept for a channel's reference,
     * oldest first, at most max (CS_MSG__COUNT: one per status). In a
     * transaction. */
    cs_rc (*early_status_take)(cs_store_t *s, int channel, const char *ref,
                               cs_early_status_t *out, size_t max, size_t *n, cs_err_t *err);
    /* A customer's messages, newest first, as JSON for the API. */
    cs_rc (*outbox_view)(cs_store_t *s, const char *customer_id, json_t **out, cs_err_t *err);
    /* Named positions in the event log (the journey processor's).
     * cursor_get gives CS_ERR_NOTFOUND (and *seq 0) for a name never set. */
    cs_rc (*cursor_get)(cs_store_t *s, const char *name, int64_t *seq, cs_err_t *err);
    cs_rc (*cursor_set)(cs_store_t *s, const char *name, int64_t seq, cs_err_t *err);
    /* The log's end: the highest sequence number, 0 when empty (every
     * node's events, on a shared store). */
    cs_rc (*log_end)(cs_store_t *s, int64_t *seq, cs_err_t *err);
    /* Events after seq whose type is in `types` (bits 1 << cs_event_type_t;
     * 0 = all), by seq, at most max: seq, the order and customer the store
     * routed it to (NULL when none), and the stored event text. *examined
     * gets the position a reader's cursor may move to: the last event
     * given when max were given, else the log's end when the call began
     * (events fn appends come after it). */
    cs_rc (*events_after)(cs_store_t *s, int64_t after, size_t max, uint32_t types,
                          cs_rc (*fn)(int64_t seq, const char *order_id, const char *customer_id,
                                      const char *body, size_t len, void *ud),
                          void *ud, int64_t *examined, cs_err_t *err);
    /* The order's events that came before seq `before`, of the types (a
     * bit set as for events_after; 0 = all), by seq, at most max, given to
     * fn as events_after gives them; with shipment_id, only the scans of
     * that parcel. For a journey pass that learns of an order (or a
     * parcel) only after some of its events: fn may use the store, but
     * not call this again. */
    cs_rc (*events_of_order)(cs_store_t *s, const char *order_id, const char *shipment_id,
                             int64_t before, uint32_t types, size_t max,
                             cs_rc (*fn)(int64_t seq, const char *order_id,
                                         const char *customer_id, const char *body, size_t len,
                                         void *ud),
                             void *ud, cs_err_t *err);
    /* The channel the fold logged for the message.status at log seq `seq`
     * (message_events): the status's own, else, when its message_id is
     * one of our messages and what it names is the message's, the
     * message's (the status's customer is then the message's too, as
     * events_after gives it); "" when neither, or for no such status. */
    cs_rc (*message_channel)(cs_store_t *s, int64_t seq, char out[16], cs_err_t *err);
    /* The log seq of the first ticket.created of ticket `ticket_id` (the
     * first logged: a helpdesk's retry under a new event id comes after
     * it); 0 when none came. A ticket.created at another seq was sent
     * before: it opened no new ticket. */
    cs_rc (*ticket_created_seq)(cs_store_t *s, const char *ticket_id, int64_t *seq,
                                cs_err_t *err);
    /* State for journey conditions and templates: the customer (with
     * orders_count, first_order_at, last_order_id), the order (with items),
     * one of the order's shipments; JSON objects or NULL when unknown. The
     * shipment is the parcel of the event `about` (the seq of a run's
     * trigger: a scan or a shipment.created of this order), else the one
     * the order's promise follows (the latest still on its way, else the
     * one delivered last); about = 0 for none. The order's ticket_open
     * is not the store's: the journeys judge it by the contact policy
     * (cs_journeys_ticket_open, from ticket_open below). */
    cs_rc (*journey_context)(cs_store_t *s, const char *customer_id, const char *order_id,
                             int64_t about, unsigned flags, json_t **customer, json_t **order,
                             json_t **shipment, cs_err_t *err);
    /* Discount codes. discount_put keeps the first code of an idem_key
     * (*existed, and d gets the stored code) and gives CS_ERR_DUPLICATE
     * when the code itself is taken (draw another). */
    cs_rc (*discount_put)(cs_store_t *s, cs_discount_t *d, bool *existed, cs_err_t *err);
    /* The latest code of a run; CS_ERR_NOTFOUND when it has none. */
    cs_rc (*discount_for_run)(cs_store_t *s, int64_t run_id, cs_discount_t *out, cs_err_t *err);
    /* A customer's codes, newest first, as JSON for the API. */
    cs_rc (*discounts_view)(cs_store_t *s, const char *customer_id, json_t **out, cs_err_t *err);
    /* Deliveries: every delivered shipment of a placed order, the earliest
     * delivered first (a model that keeps so many keeps the newest); and the one
     * scan `seq` completed, when it is its parcel's first delivered scan
     * (the earliest, the first logged among equals: CS_ERR_NOTFOUND for
     * any other scan), so that learning as scans arrive counts each parcel
     * once, as the bulk read does. */
    cs_rc (*deliveries_each)(cs_store_t *s,
                             cs_rc (*fn)(const cs_delivery_row_t *d, void *ud), void *ud,
                             cs_err_t *err);
    cs_rc (*delivery_of_scan)(cs_store_t *s, int64_t seq, cs_delivery_row_t *out,
                         cs_err_t *err);
    /* The customer's contact data; CS_ERR_NOTFOUND when unknown. */
    cs_rc (*contact_get)(cs_store_t *s, const char *customer_id, cs_contact_t *out,
                         cs_err_t *err);
    /* Whether an address the customer no longer has bounced: a bounce
     * (message.status) at or after `since` of one of the customer's
     * messages on `channel` (a cs_channel_t) whose recipient is `address`.
     * The customer's own bounces (cs_contact_t.bounced) are those of the
     * address they have now; a retry goes to the one its earlier
     * hand-over went to. */
    cs_rc (*address_bounced)(cs_store_t *s, const char *customer_id, int channel,
                             const char *address, cs_ms_t since, bool *out, cs_err_t *err);
    /* The order watch (docs/tracking.md). order_track reads an order for
     * the promise (CS_ERR_NOTFOUND when unknown). promise_put writes the
     * record; with `move` (a reason name) it also appends the current
     * window to the order's history of moves. promises_due gives records
     * whose check_at is before `before`, earliest first. comp_spent sums
     * the compensation cost decided since `since`. discount_by_key reads
     * a code by its idem_key (CS_ERR_NOTFOUND). */
    cs_rc (*order_track)(cs_store_t *s, const char *order_id, cs_ms_t placed_after,
                         cs_order_track_t *out, cs_err_t *err);
    /* fn(destination) for the address checkout sent it to (order.placed's
     * shipping) and each of its shipments' but the cancelled ones, as JSON
     * ("" when none), that first, then oldest first; nothing for an
     * unknown order. The tracking
     * page's lookup checks a postcode against every one. */
    cs_rc (*order_destinations)(cs_store_t *s, const char *order_id,
                                cs_rc (*fn)(const char *destination, void *ud), void *ud,
                                cs_err_t *err);
    /* The id of the order order_id names, or of the next one by id (the
     * last one past the end) when there is none such: the tracking page's
     * lookup reads that order whether the one asked for exists or not, so
     * the work done does not tell (CS_ERR_NOTFOUND: no orders at all). */
    cs_rc (*order_near)(cs_store_t *s, const char *order_id, char out[CS_ID_MAX + 1],
                        cs_err_t *err);
    cs_rc (*promise_get)(cs_store_t *s, const char *order_id, cs_promise_rec_t *out,
                         cs_err_t *err);
    cs_rc (*promise_put)(cs_store_t *s, const cs_promise_rec_t *p, const char *move,
                         cs_err_t *err);
    cs_rc (*promises_due)(cs_store_t *s, cs_ms_t before, cs_promise_rec_t *out, size_t max,
                          size_t *n, cs_err_t *err);
    cs_rc (*promise_next)(cs_store_t *s, cs_ms_t *at, cs_err_t *err);
    cs_rc (*comp_spent)(cs_store_t *s, cs_ms_t since, int64_t *cost, cs_err_t *err);
    cs_rc (*discount_by_key)(cs_store_t *s, const char *idem_key, cs_discount_t *out,
                             cs_err_t *err);
    /* What an order's pages are made of, as three numbers that change when
     * it does: its latest event, its promise's last update, its customer's
     * last change (0 when none). CS_ERR_NOTFOUND for an unknown order. */
    cs_rc (*order_version)(cs_store_t *s, const char *order_id, int64_t version[3],
                           cs_err_t *err);
    /* How many of a customer's placed, not cancelled orders placed at or
     * before `until` it did not send back (every item returned and
     * refunded: SQL_ORDER_SENT_BACK, store/sql_int.h), and what was spent
     * on all of those in `currency` (minor units): their totals less what
     * their returns gave back (SQL_ORDER_SPENT; the customer view's
     * total_spent counts the same). */
    cs_rc (*customer_totals)(cs_store_t *s, const char *customer_id, cs_ms_t until,
                             const char *currency, int64_t *orders, int64_t *spent,
                             cs_err_t *err);
};

/* ---- dispatching wrappers: what callers use ---- */

/* The backends compiled in, NULL-terminated. */
extern const cs_store_ops_t *const cs_store_backends[];
extern const cs_store_ops_t cs_store_sqlite_ops;
/* For tests: how long a SQLite reader may keep its snapshot between uses
 * (read_enter; 2 ms unless set). Process-wide; set before the readers run. */
void cs_store_sqlite_snapshot_ns(uint64_t ns);
extern const cs_store_ops_t cs_store_pg_ops;

/* Choose the backend by the target's prefix and open. opts may be NULL. */
cs_rc cs_store_open(const char *target, const cs_store_opts_t *opts, cs_store_t **out,
                    cs_err_t *err);
/* NULL-safe; NULLs the pointer. */
void cs_store_close(cs_store_t **s);

static inline cs_rc cs_store_begin(cs_store_t *s, cs_err_t *e) { return s->ops->begin(s, e); }
static inline cs_rc cs_store_begin_relaxed(cs_store_t *s, cs_err_t *e)
{
    return s->ops->begin_relaxed ? s->ops->begin_relaxed(s, e) : s->ops->begin(s, e);
}
static inline cs_rc cs_store_commit(cs_store_t *s, cs_err_t *e) { return s->ops->commit(s, e); }
static inline void cs_store_read_enter(cs_store_t *s)
{
    if (s->ops->read_enter)
        s->ops->read_enter(s);
}
static inline void cs_store_read_leave(cs_store_t *s)
{
    if (s->ops->read_leave)
        s->ops->read_leave(s);
}
static inline void cs_store_rollback(cs_store_t *s) { s->ops->rollback(s); }
static inline cs_rc cs_store_ingest(cs_store_t *s, const cs_event_t *ev, cs_ms_t received_at,
                                    cs_ingest_outcome_t *outcome, int64_t *seq, cs_err_t *e)
{
    return s->ops->ingest(s, ev, received_at, outcome, seq, e);
}
static inline cs_rc cs_store_scan_waiting(cs_store_t *s, int64_t seq, bool *waiting, cs_err_t *e)
{
    return s->ops->scan_waiting(s, seq, waiting, e);
}
static inline cs_rc cs_store_ingest_hint(cs_store_t *s, const cs_event_t *const *evs, size_t n,
                                         cs_err_t *e)
{
    return s->ops->ingest_hint ? s->ops->ingest_hint(s, evs, n, e) : CS_OK;
}
static inline cs_rc cs_store_customer_view(cs_store_t *s, const char *id, json_t **out,
                                           cs_err_t *e)
{
    return s->ops->customer_view(s, id, out, e);
}
static inline cs_rc cs_store_order_view(cs_store_t *s, const char *id, json_t **out,
                                        cs_err_t *e)
{
    return s->ops->order_view(s, id, out, e);
}
static inline cs_rc cs_store_events_query(cs_store_t *s, const cs_event_query_t *q,
                                          json_t **out, cs_err_t *e)
{
    return s->ops->events_query(s, q, out, e);
}
static inline cs_rc cs_store_counts(cs_store_t *s, cs_store_counts_t *out, cs_err_t *e)
{
    return s->ops->counts(s, out, e);
}

/* Any backend operation: cs_store_call(s, run_get, id, &run, &err). */
#define cs_store_call(s, op, ...) ((s)->ops->op((s), __VA_ARGS__))

/* Issue d (idem_key, owner, kind, value, times filled in) under a fresh
 * code PREFIX-XXXXXXXX (8 characters without 0/O/1/I/L: 40 random bits),
 * drawing again while the code is taken. *existed: the idem_key already
 * had a code, now in d. Inside a transaction. */
cs_rc cs_discount_issue(cs_store_t *s, cs_discount_t *d, const char *prefix, bool *existed,
                        cs_err_t *err);

/* Append a `signal` event (docs/events.md) to the log: event_id makes it
 * idempotent; props (consumed; NULL = {}) become its properties. *is_new
 * is false for a repeat. Inside a transaction. */
cs_rc cs_store_signal(cs_store_t *s, cs_ms_t now, const char *event_id, const char *source,
                      const char *name, const char *customer_id, const char *order_id,
                      json_t *props, bool *is_new, cs_err_t *err);

/* ---- API keys: creation and verification on top of the backend ---- */

/* Create a key: writes the secret ("cs_live_" + 48 hex digits) into
 * secret_out (at least CS_APIKEY_SECRET_MAX bytes) -- shown once, stored only
 * hashed -- and the record into key_out (may be NULL). */
#define CS_APIKEY_SECRET_MAX 64
cs_rc cs_apikey_create(cs_store_t *s, const char *name, int scopes, cs_ms_t now,
                       char *secret_out, cs_apikey_t *key_out, cs_err_t *err);
/* Look up a presented secret. CS_ERR_AUTH when unknown or revoked. */
cs_rc cs_apikey_verify(cs_store_t *s, const char *secret, cs_apikey_t *out, cs_err_t *err);
/* "read,write" -> bits; -1 on an unknown scope name. */
int cs_scopes_parse(const char *s);
/* bits -> "read,write" into buf. */
const char *cs_scopes_format(int scopes, char *buf, size_t size);

#endif /* CS_STORE_H */
