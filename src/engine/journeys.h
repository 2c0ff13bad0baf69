/*
 * journeys.h -- the journey runtime: follows the event log with a durable
 * cursor, starts, advances and ends journey runs, arms durable timers, and
 * records every message decision in the outbox (queued, or skipped with the
 * policy's reason). Channels pick queued messages up from there.
 *
 * Every call that changes state runs on the store's writer inside one
 * begin/commit: the events a pass consumed, the runs it moved, the timers
 * it fired or armed and the messages it recorded commit together with the
 * cursor, so a crash anywhere repeats the pass exactly, never half of it.
 *
 * The first sync on a store starts the cursor at the end of its log, and
 * events older than trigger_max_age start no runs: history never messages
 * customers.
 *
 * Runs keep the version of the definition they entered on; changed files
 * become new versions for new runs. An operator switch (in the store)
 * overrides a file's `enabled`; a disabled journey starts no runs and its
 * running ones exit at their next step. A run whose order an edit gave to
 * another customer exits before its next step that acts or reads the
 * order (CS_ORDER_GIVEN_AWAY).
 *
 * Thread-safety: a runtime belongs to the writer thread.
 */
#ifndef CS_JOURNEYS_H
#define CS_JOURNEYS_H

#include "../journey/journey.h"
#include "../policy/policy.h"
#include "../store/store.h"
#include "../tracking/calendar.h"

typedef struct cs_journeys cs_journeys_t;

typedef struct cs_journeys_opts {
    const cs_clock_t *clock;    /* NULL = system clock */
    cs_policy_conf_t policy;    /* cs_policy_conf_default() unless set */
    bool policy_set;
    const char *default_locale; /* for customers without one; NULL = "de" */
    unsigned channels_off;      /* bit set of (1 << cs_channel_t) not configured: skipped
                                 * as "channel_off", the next preferred channel is tried */
    cs_ms_t trigger_max_age;    /* events older than this start no runs; 0 = 3 days */
    const cs_tz_t *shop_tz;     /* quiet hours and local-time waits of customers without a
                                 * time zone, or with one not known here; NULL = UTC */
    const cs_calendar_t *calendar; /* the shop's closed days (holidays, closed_days): no
                                    * business day for wait_until (borrowed: outlives the
                                    * runtime); NULL = Monday to Friday */
} cs_journeys_opts_t;

cs_rc cs_journeys_new(const cs_journeys_opts_t *opts, cs_journeys_t **out, cs_err_t *err);
void cs_journeys_free(cs_journeys_t *js);

/* Add a definition (the runtime takes ownership, also on failure).
 * CS_ERR_DUPLICATE when the id is already loaded. */
cs_rc cs_journeys_add(cs_journeys_t *js, cs_journey_t *j, cs_err_t *err);
/* Load every *.yaml / *.yml file of a folder, in name order. The first
 * invalid file stops the load with its error (file, line, field). */
cs_rc cs_journeys_load_dir(cs_journeys_t *js, const char *dir, cs_err_t *err);
size_t cs_journeys_count(const cs_journeys_t *js);
const cs_journey_t *cs_journeys_at(const cs_journeys_t *js, size_t i);

/* Record the loaded definitions' versions in the store (inside a
 * transaction). Call once after loading, before the passes below. */
cs_rc cs_journeys_sync(cs_journeys_t *js, cs_store_t *s, cs_err_t *err);

/* Is the journey on (operator switch, else the file's default)? */
cs_rc cs_journeys_enabled(cs_journeys_t *js, cs_store_t *s, const char *id, bool *on,
                          cs_err_t *err);

/* Is the delivery late, as the policy's hold reads it (risk.late in
 * conditions too)? order and shipment are a full journey_context's
 * (borrowed; either may be NULL): a parcel in exception or gone back, the
 * order watch's at-risk flag, or the shop's promised day (in shop_tz)
 * passed -- for an order sent again, its new parcel's own window's last
 * day when that ends later, as the watch judges it (order.due_to_ms) --
 * unless the run's parcel and every other of the order still to come were
 * delivered; never for a cancelled order. The sender asks it again at the
 * hand-over. */
bool cs_journeys_delivery_late(const cs_tz_t *shop_tz, json_t *order, json_t *shipment,
                               cs_ms_t now);

/* Set order.ticket_open of a full journey_context's order (borrowed;
 * NULL: nothing to do): whether a ticket of the customer (NULL: none) or
 * about the order is open and holds by the contact policy c's rule
 * (cs_policy_ticket_holds at now: not one left without an update for
 * ticket_stale_after), so that a condition on it agrees with the hold.
 * The sender sets it again for its templates, and takes what the store
 * read (the ticket_open op's open and at; either may be NULL) for its own
 * hold, not reading it twice. */
cs_rc cs_journeys_ticket_open(const cs_policy_conf_t *c, cs_store_t *s, const char *customer_id,
                              json_t *order, cs_ms_t now, bool *open, cs_ms_t *at,
                              cs_err_t *err);

/* Why a run about an order that an order.placed edit has since given to
 * another customer ends at its next step, and why a message to the old
 * customer about that order is skipped at the hand-over: it would show
 * them someone else's order (items, parcel, tracking link). */
#define CS_ORDER_GIVEN_AWAY "order_given_to_another_customer"

/* Is order (a journey_context's order, borrowed; NULL when not known)
 * another customer's than customer_id now? An order that names no
 * customer is nobody else's. */
bool cs_journeys_order_given_away(json_t *order, const char *customer_id);

/* What the contact policy reads of a customer's contact row for one
 * channel: into *pi its channel, channel_off (from channels_off, a bit set
 * of 1 << cs_channel_t), bounced, has_address, both consents and
 * unsubscribed (on that channel); the rest of *pi is left as it is.
 * Returns the customer's address on the channel (borrowed from who; ""
 * when none). The journeys decide a send by it, the sender its fallback
 * at the hand-over. */
const char *cs_journeys_contact_input(const cs_contact_t *who, cs_channel_t ch,
                                      unsigned channels_off, cs_policy_input_t *pi);

typedef struct cs_journeys_stats {
    size_t events;       /* log events consumed */
    size_t started;      /* runs started */
    size_t timers;       /* timers fired (stale ones included) */
    size_t queued;       /* messages queued */
    size_t skipped;      /* messages skipped by the policy */
    size_t deferred;     /* sends put off (quiet hours, holds) */
    size_t exited;       /* runs ended early */
    size_t finished;     /* runs that reached their end */
    size_t codes;        /* discount codes issued */
    size_t signals;      /* signal events emitted (the next pass reads them) */
    size_t webhooks;     /* webhooks queued */
    int64_t seq;         /* the log position read to (the cursor after the pass;
                            in totals, the latest: a position, not a sum) */
} cs_journeys_stats_t;

/* Consume up to `max` log events after the cursor (inside a transaction). */
cs_rc cs_journeys_process_events(cs_journeys_t *js, cs_store_t *s, size_t max,
                                 cs_journeys_stats_t *st, cs_err_t *err);
/* Fire up to `max` timers due at the clock's now (inside a transaction). */
cs_rc cs_journeys_fire_due(cs_journeys_t *js, cs_store_t *s, size_t max,
                           cs_journeys_stats_t *st, cs_err_t *err);

/* One background pass in its own transaction: up to `batch` log events,
 * then up to `batch` due timers. *next is the clock's now when more is
 * waiting, else the next timer's due time (0 = none). Rolls back on
 * failure. Totals add up in the runtime (cs_journeys_totals). */
cs_rc cs_journeys_pass(cs_journeys_t *js, cs_store_t *s, size_t batch, cs_ms_t *next,
                       cs_err_t *err);
/* The same with the engine hook's signature (arg is the runtime; batch 1000). */
cs_rc cs_journeys_hook(cs_store_t *s, void *arg, cs_ms_t *next, cs_err_t *err);
/* Totals of all passes so far (thread-safe). */
void cs_journeys_totals(cs_journeys_t *js, cs_journeys_stats_t *out);

#endif /* CS_JOURNEYS_H */
