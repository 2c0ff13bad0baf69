/*
 * policy.h -- the contact policy: may this message go to this customer on
 * this channel now? Pure functions of the message, the customer's state and
 * the time; the runtime gathers the inputs from the store.
 *
 * Order of the rules (the first that applies decides):
 *   0. the channel is off (not configured), or the customer's address on
 *      it bounced                        -> skip "channel_off", "bounced"
 *   1. no address on the channel                       -> skip "no_address"
 *   2. consent for the purpose (transactional or marketing) on the channel:
 *      email transactional unless refused; SMS and WhatsApp only with a
 *      recorded yes; marketing and asks only with a recorded yes
 *                                                      -> skip "no_consent"
 *   3. unsubscribed (on the channel: an unsubscribe holds on each channel
 *      until that channel starts over): only transactional and service go
 *      on it                                           -> skip "unsubscribed"
 *   Rules 0 to 3 are the channel's: a send that lists several channels
 *   tries the next one for them (cs_policy_channel).
 *   4. held back: marketing and asks while a delivery is late or a ticket
 *      is open (one not updated for ticket_stale_after holds nothing: a
 *      helpdesk that never closes its tickets); asks also while a refund
 *      is pending; re-tried daily, skipped after hold_max -> defer / skip
 *   5. asks: one per order, a cool-down per customer    -> skip
 *   6. contact budget over a rolling window for reassurance, asks and
 *      marketing; marketing leaves `marketing_reserve` slots free, so a
 *      reassurance or ask still fits                     -> skip "budget"
 *   7. quiet hours in the customer's zone, unless the class is exempt
 *                                                      -> defer to their end
 */
#ifndef CS_POLICY_H
#define CS_POLICY_H

#include <stdbool.h>

#include "../journey/journey.h"
#include "../lib/cs_tz.h"
#include "../model/event.h"

typedef struct cs_policy_conf {
    int budget;              /* budgeted messages per window (reassurance, ask, marketing) */
    cs_ms_t budget_window;   /* rolling window */
    int marketing_reserve;   /* slots of the budget marketing may not take */
    int quiet_start;         /* minute of the local day quiet hours start (21:00 = 1260) */
    int quiet_end;           /* ... and end (08:00 = 480); equal = no quiet hours */
    unsigned quiet_exempt;   /* bit set of (1 << cs_msg_class_t) that ignore quiet hours */
    cs_ms_t ask_cooldown;    /* between two asks to one customer, any channel */
    cs_ms_t hold_max;        /* how long a held-back message may wait before it is dropped */
    cs_ms_t ticket_stale_after; /* an open ticket not updated for this long holds nothing;
                                   0 = open tickets hold however old they are */
    cs_ms_t hold_retry;      /* how often a held-back message is looked at again */
    cs_ms_t address_wait;    /* how long a transactional or service message waits for an
                                address (or the customer) that has not come yet */
} cs_policy_conf_t;

void cs_policy_conf_default(cs_policy_conf_t *c);

typedef struct cs_policy_input {
    cs_msg_class_t cls;
    cs_channel_t channel;
    bool channel_off;            /* the channel is not configured */
    bool bounced;                /* the customer's address on the channel bounced */
    bool has_address;            /* email / phone known for the channel */
    cs_consent_t transactional;  /* consent for the channel, per purpose */
    cs_consent_t marketing;
    bool unsubscribed;           /* an unsubscribe or complaint holds on the channel */
    const cs_tz_t *tz;           /* the customer's; NULL = UTC */
    cs_ms_t now;
    int budget_used;             /* budgeted messages queued or sent within the window */
    bool order_asked;            /* an ask already went out for this order */
    cs_ms_t last_ask_at;         /* 0 = never */
    bool delivery_late;          /* late or in exception */
    bool ticket_open;
    cs_ms_t ticket_at;           /* ticket_open: the last status time (creation or update)
                                    of the open ticket updated last; 0 = not known (holds) */
    bool refund_pending;
    cs_ms_t held_since;          /* first time this message was held back; 0 = not yet */
} cs_policy_input_t;

typedef enum cs_verdict {
    CS_VERDICT_SEND = 0,
    CS_VERDICT_SKIP = 1,
    CS_VERDICT_DEFER = 2
} cs_verdict_t;

typedef struct cs_policy_result {
    cs_verdict_t verdict;
    cs_ms_t until;          /* DEFER: when to look again */
    const char *reason;     /* static text: "quiet_hours", "budget", ... (NULL for SEND) */
} cs_policy_result_t;

cs_policy_result_t cs_policy_decide(const cs_policy_conf_t *c, const cs_policy_input_t *in);

/* Rules 0 to 3 alone, the ones of the channel rather than the message
 * (cls, channel, channel_off, bounced, has_address, the consents and
 * unsubscribed are read): NULL when the channel may carry a message of
 * this class, else why not ("channel_off", "bounced", "no_address",
 * "no_consent", "unsubscribed"; static text). An unsubscribe is the
 * channel's as a bounce is: it holds on each channel until that channel
 * starts over, so a customer unsubscribed from email marketing who opted
 * in to SMS marketing since is reached by SMS. A send that lists several
 * channels moves on to the next one for these, and for no other reason;
 * cs_policy_decide starts with them. The sender asks again at the
 * hand-over, for the message's own channel (a consent withdrawn, a bounce
 * or an unsubscribe since it was queued) and for each of the send's
 * channels it may fall back to. */
const char *cs_policy_channel(const cs_policy_input_t *in);

/* Rule 4 alone: is a message of this class held back now (cls, now,
 * delivery_late, ticket_open, ticket_at, refund_pending and held_since
 * are read)?
 * SEND when no hold is in force; else DEFER to when to look again, or
 * SKIP once hold_max has passed since held_since (0 = now), with the
 * hold's "held_*" reason. The sender asks again at the hand-over: a
 * message waiting in the outbox (a retry, a backlog) must not go out into
 * a ticket opened or a delivery gone late since it was queued. */
cs_policy_result_t cs_policy_hold(const cs_policy_conf_t *c, const cs_policy_input_t *in);

/* Rule 4's open ticket alone: does it hold (ticket_open, ticket_at and
 * now are read)? Not one left without an update for ticket_stale_after.
 * The journeys' order.ticket_open is this, so that a condition on it
 * agrees with the hold (cs_journeys_ticket_open). */
bool cs_policy_ticket_holds(const cs_policy_conf_t *c, const cs_policy_input_t *in);

/* Do quiet hours hold a message of this class back at now in tz (NULL =
 * UTC)? Then *end is when they end. The sender asks again at the
 * hand-over: a retry or a backlog must not carry a message into them. */
bool cs_policy_quiet(const cs_policy_conf_t *c, cs_msg_class_t cls, const cs_tz_t *tz,
                     cs_ms_t now, cs_ms_t *end);

/* Does the class count against the contact budget? */
bool cs_policy_budgeted(cs_msg_class_t cls);
/* The purpose consent is checked for: true = marketing. */
bool cs_policy_is_marketing(cs_msg_class_t cls);
/* Does an unsubscribe stop messages of cls (reassurance, asks, marketing;
 * not an order's own mail nor a delay or problem notice)? Only those
 * offer one: a List-Unsubscribe header, the footer's link. */
bool cs_policy_unsubscribable(cs_msg_class_t cls);

/* The next instant at local time hour:minute strictly after `now` in tz,
 * on a business day (Monday to Friday) when asked. */
cs_ms_t cs_next_local_time(const cs_tz_t *tz, cs_ms_t now, int hour, int minute,
                           bool business_day);

#endif /* CS_POLICY_H */
