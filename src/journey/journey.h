/*
 * journey.h -- journey definitions: a YAML file per journey, validated at load
 * (errors name the file, line and field) and compiled to a small program that
 * the runtime (engine/journeys.c) steps through. Format: docs/journeys.md.
 *
 *   journey: review_request
 *   trigger: { event: order.placed }
 *   exit_when: [order_cancelled, return_requested, ticket_opened, unsubscribed]
 *   steps:
 *     - wait_for: { event: tracking.event, if: "event.status == 'delivered'",
 *                   timeout: 14d }
 *     - wait: 5d
 *     - wait_until: { time: "10:00", business_day: true }
 *     - send: { channel: [email], template: review_request, class: ask }
 *
 * Ownership: cs_journey_parse returns a journey owned by the caller
 * (cs_journey_free). A parsed journey is immutable and may be shared by
 * threads.
 */
#ifndef CS_JOURNEY_H
#define CS_JOURNEY_H

#include <stdbool.h>

#include "../lib/cs.h"
#include "../lib/cs_crypto.h"
#include "../lib/cs_time.h"
#include "../model/event.h"
#include "expr.h"

#define CS_JOURNEY_ID_MAX 64
#define CS_JOURNEY_FILE_MAX (256 * 1024)
#define CS_JOURNEY_STEPS_MAX 256
#define CS_CHANNELS_MAX 4

/* Message classes, in rising priority. */
typedef enum cs_msg_class {
    CS_CLASS_MARKETING = 0,    /* cross-sell, replenishment, win-back: marketing consent, budget */
    CS_CLASS_ASK = 1,          /* review request, survey, referral: marketing consent, budget, one per order */
    CS_CLASS_REASSURANCE = 2,  /* how-to, social proof, personal note: budget */
    CS_CLASS_SERVICE = 3,      /* delay notice, compensation: never budgeted */
    CS_CLASS_TRANSACTIONAL = 4 /* confirmation, shipped, out for delivery */
} cs_msg_class_t;
const char *cs_msg_class_name(cs_msg_class_t c);
bool cs_msg_class_parse(const char *s, cs_msg_class_t *out);
/* Is the order the customer's first (risk.first_purchase, the templates'
 * first_purchase)? By the orders placed before it when the order is known
 * (its `orders_before`), so a second order known by the time the first's
 * message is written does not take the welcome away; else by the
 * customer's orders_count. customer and order are the journey context's
 * JSON (either may be NULL). */
bool cs_first_purchase(const json_t *customer, const json_t *order);

/* Reasons a run ends early, a bit set. */
enum {
    CS_EXIT_ORDER_CANCELLED = 1,
    CS_EXIT_RETURN_REQUESTED = 2,
    CS_EXIT_TICKET_OPENED = 4,
    CS_EXIT_UNSUBSCRIBED = 8,
    CS_EXIT_ORDERED_AGAIN = 16,
    CS_EXIT_FEEDBACK_GIVEN = 32 /* a review, NPS or CSAT answer about the run's order */
};

typedef enum cs_once_per {
    CS_ONCE_PER_ORDER = 0,    /* one run per journey and order */
    CS_ONCE_PER_CUSTOMER = 1, /* one run per journey and customer, ever */
    CS_ONCE_PER_EVENT = 2     /* a run for every triggering event */
} cs_once_per_t;

typedef enum cs_op {
    CS_OP_SEND,       /* channels, template, class */
    CS_OP_WAIT,       /* ms, or days read from `text` (a context path) when set */
    CS_OP_WAIT_UNTIL, /* hour:minute local, business_day */
    CS_OP_WAIT_FOR,   /* event, cond (may be NULL), ms = timeout, target = on timeout */
    CS_OP_BRANCH,     /* cond; false -> target */
    CS_OP_GOTO,       /* target */
    CS_OP_EXIT,       /* text = reason */
    CS_OP_END,
    CS_OP_DISCOUNT,   /* discount kind, value, ms = valid for, text = code prefix */
    CS_OP_EMIT,       /* text = signal name, data = properties (JSON text) or NULL */
    CS_OP_WEBHOOK     /* url, text = event name */
} cs_op_t;

/* What a discount code gives. */
typedef enum cs_discount_kind {
    CS_DISCOUNT_PERCENT = 0,      /* value % off */
    CS_DISCOUNT_AMOUNT = 1,       /* value in the order's currency off */
    CS_DISCOUNT_FREE_SHIPPING = 2
} cs_discount_kind_t;
const char *cs_discount_kind_name(cs_discount_kind_t k);

typedef struct cs_instr {
    cs_op_t op;
    int line;                   /* in the journey file, for messages */
    int target;                 /* jump target (pc) */
    cs_ms_t ms;
    int hour, minute;
    bool business_day;
    int event_type;             /* cs_event_type_t for WAIT_FOR */
    cs_expr_t *cond;
    cs_channel_t channels[CS_CHANNELS_MAX];
    int nchannels;
    cs_msg_class_t cls;
    char *text;                 /* SEND: template name; EXIT: reason; WAIT: path of days */
    int kind;                   /* DISCOUNT: cs_discount_kind_t */
    double value;               /* DISCOUNT: percent or amount */
    char *data;                 /* EMIT: properties as compact JSON, or NULL */
    char *url;                  /* WEBHOOK: where to POST */
} cs_instr_t;

typedef struct cs_journey {
    char id[CS_JOURNEY_ID_MAX + 1];
    char *name;                 /* NULL when not given */
    char *file;                 /* where it came from, for messages */
    bool enabled;               /* the file's default; operators switch it in the store */
    int trigger_event;          /* cs_event_type_t */
    cs_expr_t *trigger_cond;    /* NULL = always */
    cs_once_per_t once_per;
    unsigned exit_mask;
    cs_instr_t *prog;
    int n;
    char hash[CS_SHA256_HEX_LEN]; /* of the source: the version's identity */
    char *source;
    size_t source_len;
    bool has_webhook;           /* a WEBHOOK step: needs webhook_secret to run */
} cs_journey_t;

/* Parse and validate one journey file's text. `file` names it in errors. */
cs_rc cs_journey_parse(const char *file, const char *src, size_t len, cs_journey_t **out,
                       cs_err_t *err);
/* Does the context's root (customer, order, shipment, risk, run) have the
 * field field[0..n)? True for the other roots (event: the event's data). */
bool cs_journey_context_field(const char *root, const char *field, size_t n);

/* As cs_journey_parse, for a version kept in the store (runs may be on it):
 * what an older release accepted keeps loading, so those runs go on as they
 * did. The checks added since are not made: a second YAML document (ignored)
 * and wait: {days: NUMBER} (the run exits there with no_days_at:NUMBER). */
cs_rc cs_journey_parse_stored(const char *file, const char *src, size_t len, cs_journey_t **out,
                              cs_err_t *err);
/* Read and parse a file. */
cs_rc cs_journey_load_file(const char *path, cs_journey_t **out, cs_err_t *err);
void cs_journey_free(cs_journey_t *j);

/* The templates a journey sends, for checking against the template set:
 * calls fn(template, line) for each SEND. */
void cs_journey_templates(const cs_journey_t *j, void (*fn)(const char *tmpl, int line, void *ud),
                          void *ud);

#endif /* CS_JOURNEY_H */
