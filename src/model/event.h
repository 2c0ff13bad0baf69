/*
 * event.h -- the canonical event model (schema version 1): types, parsing and
 * validation with errors that name the field. No I/O.
 *
 * The wire form is documented in docs/events.md. A parsed event owns its
 * jansson document (`json`); every `const char *` inside the typed payload
 * borrows from that document and lives exactly as long as the event. Arrays
 * (line items, return items) are owned by the event. cs_event_free releases
 * everything.
 *
 * Money is carried as int64 minor units (cents) of the order's currency; on
 * the wire it is a JSON number or decimal string in major units ("49.90").
 * Times are cs_ms_t (UTC milliseconds); on the wire RFC 3339.
 *
 * Thread-safety: parsing is reentrant; an event is not shared between threads
 * while it is being modified.
 */
#ifndef CS_MODEL_EVENT_H
#define CS_MODEL_EVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "../lib/cs.h"
#include "../lib/cs_time.h"

/* Bounds applied before anything is stored. */
#define CS_ID_MAX 128          /* event_id and every entity id */
#define CS_TEXT_MAX 16384      /* free text: review text, ticket body */
#define CS_SHORT_MAX 512       /* names, subjects, carrier text */
#define CS_ITEMS_MAX 500       /* line items per order / return */
#define CS_EVENT_BYTES_MAX (256 * 1024) /* one serialized event */
/* A tracking number as carriers match it (cs_tracking_number_canon: no
 * spaces, upper case), in bytes: the same bound for shipments and scans
 * and at every intake, so a scan is never kept for a number no shipment
 * could have. The raw text is bounded by CS_ID_MAX first. */
#define CS_TRACKING_NUMBER_MAX 64

/* Event types. Append only; the numbers are stored. */
typedef enum cs_event_type {
    CS_EV_UNKNOWN = 0,
    CS_EV_CUSTOMER_UPSERTED = 1,
    CS_EV_ORDER_PLACED = 2,
    CS_EV_ORDER_CANCELLED = 3,
    CS_EV_SHIPMENT_CREATED = 4,
    CS_EV_TRACKING_EVENT = 5,
    CS_EV_RETURN_REQUESTED = 6,
    CS_EV_RETURN_UPDATED = 7,
    CS_EV_TICKET_CREATED = 8,
    CS_EV_TICKET_UPDATED = 9,
    CS_EV_FEEDBACK_SUBMITTED = 10,
    CS_EV_MESSAGE_STATUS = 11,
    CS_EV_SIGNAL = 12,
    CS_EV_SHIPMENT_CANCELLED = 13,
    CS_EV__COUNT
} cs_event_type_t;

/* "order.placed" etc.; NULL for CS_EV_UNKNOWN. */
const char *cs_event_type_name(cs_event_type_t t);
cs_event_type_t cs_event_type_from_name(const char *s);

/* Normalized tracking statuses. Append only. */
typedef enum cs_track_status {
    CS_TRACK_INFO_RECEIVED = 0,
    CS_TRACK_IN_TRANSIT,
    CS_TRACK_OUT_FOR_DELIVERY,
    CS_TRACK_FAILED_ATTEMPT,
    CS_TRACK_AVAILABLE_FOR_PICKUP,
    CS_TRACK_DELIVERED,
    CS_TRACK_EXCEPTION,
    CS_TRACK_RETURNED_TO_SENDER,
    CS_TRACK__COUNT
} cs_track_status_t;
const char *cs_track_status_name(cs_track_status_t s);

/* Why a parcel is held up, kept apart from the status. */
typedef enum cs_incident {
    CS_INCIDENT_NONE = 0,
    CS_INCIDENT_ADDRESS_PROBLEM,
    CS_INCIDENT_CUSTOMS,
    CS_INCIDENT_WEATHER,
    CS_INCIDENT_DAMAGED,
    CS_INCIDENT_REFUSED,
    CS_INCIDENT_HELD_AT_DEPOT,
    CS_INCIDENT_RECIPIENT_ABSENT,
    CS_INCIDENT_LOST,
    CS_INCIDENT_DELAYED,
    CS_INCIDENT_OTHER,
    CS_INCIDENT__COUNT
} cs_incident_t;
/* "address_problem" etc.; NULL for CS_INCIDENT_NONE. */
const char *cs_incident_name(cs_incident_t r);
int cs_incident_from_name(const char *s);
/* Returns -1 when unknown. */
int cs_track_status_from_name(const char *s);

/* Message statuses (delivery callbacks). Append only. */
typedef enum cs_msg_status {
    CS_MSG_SENT = 0,
    CS_MSG_DELIVERED,
    CS_MSG_OPENED,
    CS_MSG_CLICKED,
    CS_MSG_BOUNCED,
    CS_MSG_COMPLAINED,
    CS_MSG_UNSUBSCRIBED,
    CS_MSG_FAILED,       /* not delivered for a cause not the address's (a WhatsApp text
                            outside the 24-hour window, a template refused): stops nothing */
    CS_MSG__COUNT
} cs_msg_status_t;
const char *cs_msg_status_name(cs_msg_status_t s);
int cs_msg_status_from_name(const char *s);

/* WhatsApp's error 131050: the customer stopped the shop's marketing
 * messages in WhatsApp. A `failed` WhatsApp status whose detail starts
 * with this code (and a space, or nothing more) is the customer's refusal
 * of WhatsApp marketing: the store records the consent withdrawn. */
#define CS_WA_MARKETING_STOPPED 131050
/* The words after the code in such a status's detail, as the delivery
 * callback and the sender (a send the Cloud API refused so) write them. */
#define CS_WA_MARKETING_TEXT "the customer stopped the shop's marketing messages in " \
                             "WhatsApp: WhatsApp marketing consent withdrawn"
/* Does a status of this channel (a name; NULL: none) with this detail
 * (NULL: none) withdraw the customer's WhatsApp marketing consent? */
bool cs_msg_stops_wa_marketing(cs_msg_status_t status, const char *channel, const char *detail);

/* The most bytes of a status's detail a message's delivery keeps (the
 * messages view's delivery_detail), cut between two characters. */
#define CS_DELIVERY_DETAIL_MAX 300

/* Channels a customer can be reached on. */
typedef enum cs_channel {
    CS_CHANNEL_EMAIL = 0,
    CS_CHANNEL_SMS,
    CS_CHANNEL_WHATSAPP,
    CS_CHANNEL__COUNT
} cs_channel_t;
const char *cs_channel_name(cs_channel_t c);
int cs_channel_from_name(const char *s);

/* A tri-state consent: not stated, granted, refused. */
typedef enum cs_consent { CS_CONSENT_UNSET = 0, CS_CONSENT_YES = 1, CS_CONSENT_NO = 2 } cs_consent_t;

typedef struct cs_address {
    const char *postal_code; /* may be NULL */
    const char *region;      /* state / Bundesland; may be NULL */
    const char *country;     /* ISO 3166-1 alpha-2, upper case; may be NULL */
    const char *city;        /* may be NULL */
} cs_address_t;

typedef struct cs_customer {
    const char *id;
    const char *email;    /* may be NULL */
    const char *phone;    /* E.164; may be NULL */
    const char *name;     /* may be NULL */
    const char *locale;   /* "de", "en", "de-DE", ...; NULL = unset */
    const char *timezone; /* IANA name; NULL = unset */
    /* consent[channel][0] transactional, [1] marketing */
    cs_consent_t consent[CS_CHANNEL__COUNT][2];
} cs_customer_t;

typedef struct cs_line_item {
    const char *sku;
    const char *name;
    const char *category; /* may be NULL */
    int64_t unit_price;   /* minor units */
    int64_t quantity;     /* >= 1 */
    int64_t discount;     /* minor units, total for the line; >= 0 */
} cs_line_item_t;

typedef struct cs_order {
    const char *id;
    const char *customer_id;
    const char *currency;    /* ISO 4217, upper case */
    cs_ms_t placed_at;       /* data.placed_at, defaults to occurred_at */
    bool placed_at_given;    /* data.placed_at was sent (an edit without it keeps the stored) */
    bool promised_from_given; /* promised_delivery.earliest was sent (else placed_at) */
    int64_t subtotal;        /* minor units; computed from items when absent */
    int64_t shipping;
    int64_t tax;
    int64_t discount;
    int64_t total;           /* minor units; computed when absent */
    cs_ms_t promised_from;   /* 0 = no promise */
    cs_ms_t promised_to;
    /* How it will be sent, as checkout knew it (data.shipping; optional):
     * the lane of its first promise before a shipment exists. */
    struct {
        const char *carrier;     /* lower case; may be NULL */
        const char *service;     /* may be NULL */
        cs_address_t origin;
        cs_address_t destination;
    } ship;
    size_t n_items;
    cs_line_item_t *items;   /* owned */
    /* An embedded customer (optional): when present (customer.id set), the
     * store upserts it as a customer.upserted would. */
    bool has_customer;
    cs_customer_t customer;
} cs_order_t;

typedef struct cs_order_cancel {
    const char *order_id;
    const char *reason; /* may be NULL */
} cs_order_cancel_t;

typedef struct cs_shipment {
    const char *id;
    const char *order_id;
    const char *carrier;         /* lower case: "dhl", "dpd", "hermes", "gls", "ups", ... */
    const char *service;         /* may be NULL */
    const char *tracking_number;
    cs_address_t origin;
    cs_address_t destination;
} cs_shipment_t;

/* A parcel announced with shipment.created that will not be handed over
 * (a label voided, a fulfilment cancelled). */
typedef struct cs_shipment_cancel {
    const char *id;          /* the shipment */
    const char *order_id;    /* the order it was announced for */
    const char *reason;      /* may be NULL */
} cs_shipment_cancel_t;

typedef struct cs_scan {
    const char *shipment_id;     /* may be NULL: then carrier + tracking_number identify it */
    const char *carrier;
    const char *tracking_number;
    cs_track_status_t status;    /* in_transit until mapped when !status_given */
    bool status_given;           /* false: the carrier tables map carrier_code/text */
    cs_incident_t reason;        /* CS_INCIDENT_NONE when none */
    bool unmapped;               /* no table knew the raw code: shown as in transit */
    const char *carrier_code;    /* raw; may be NULL */
    const char *carrier_text;    /* raw; may be NULL */
    cs_address_t location;
} cs_scan_t;

typedef struct cs_return_item {
    const char *sku;
    int64_t quantity;
    const char *reason; /* may be NULL */
} cs_return_item_t;

typedef struct cs_return {
    const char *id;
    const char *order_id;       /* required for requested; NULL on update */
    const char *status;         /* requested|approved|label_created|in_transit|received|refunded|rejected|closed */
    const char *resolution;     /* refund|exchange|store_credit; may be NULL on update */
    int64_t refund_amount;      /* minor units; -1 = not stated */
    size_t n_items;
    cs_return_item_t *items;    /* owned */
} cs_return_t;

typedef struct cs_ticket {
    const char *id;
    const char *customer_id; /* required for created */
    const char *order_id;    /* may be NULL */
    const char *status;      /* open|pending|solved|closed */
    const char *channel;     /* email|chat|phone|form|...; may be NULL */
    const char *subject;     /* may be NULL */
    const char *body;        /* may be NULL */
    const char *category;    /* may be NULL, e.g. "wismo" */
} cs_ticket_t;

typedef struct cs_feedback {
    const char *id;
    const char *kind;        /* nps|csat|review */
    const char *customer_id; /* may be NULL */
    const char *order_id;    /* may be NULL */
    const char *sku;         /* may be NULL (reviews of one product) */
    int64_t score;           /* nps 0..10, csat 1..5, review 1..5 */
    const char *title;       /* may be NULL */
    const char *text;        /* may be NULL */
    const char *locale;      /* may be NULL */
} cs_feedback_t;

typedef struct cs_message_status {
    const char *message_id;
    cs_msg_status_t status;
    const char *channel;     /* may be NULL */
    const char *customer_id; /* may be NULL */
    const char *detail;      /* may be NULL, e.g. bounce reason */
} cs_message_status_t;

/* A named signal: emitted by a journey's emit step (or by the shop) for
 * other journeys to trigger on or wait for. */
typedef struct cs_signal {
    const char *name;
    const char *customer_id;
    const char *order_id;    /* may be NULL */
    json_t *properties;      /* borrowed from the event's JSON; may be NULL */
} cs_signal_t;

typedef struct cs_event {
    int schema;               /* always CS_SCHEMA_VERSION after parse */
    cs_event_type_t type;
    const char *event_id;
    cs_ms_t occurred_at;
    const char *source;       /* producer name; may be NULL */
    json_t *json;             /* owned: the whole validated document */
    char *body;               /* owned, may be NULL: the event as JSON text, as it is
                               * stored (the producer's text when it needed no
                               * normalization); see cs_event_serialize */
    size_t body_len;
    bool normalized;          /* validation rewrote a value in `json` (carrier case) */
    /* the producer chose event_id (the event API, an NDJSON import): an
     * event sent again under it must say the same (type and data), else
     * it is refused, not taken for the one already logged. Ids made here
     * (a scan's, a callback's) mean the same happening, told anew */
    bool producer_id;
    char *warning;            /* owned, may be NULL: what intake left out of the event
                               * and why, naming the field (cs_event_check_received) */
    const char *warning_field; /* static: that field's path, NULL when none */
    union {
        cs_customer_t customer;
        cs_order_t order;
        cs_order_cancel_t cancel;
        cs_shipment_t shipment;
        cs_shipment_cancel_t shipment_cancel;
        cs_scan_t scan;
        cs_return_t ret;
        cs_ticket_t ticket;
        cs_feedback_t feedback;
        cs_message_status_t msg;
        cs_signal_t signal;
    } u;
} cs_event_t;

/* Validate `doc` and build an event. Consumes nothing: on success the event
 * takes its own reference to doc (json_incref). On failure *out is NULL and
 * err names the field ("data.items[1].unit_price") and what was expected;
 * err->rc is CS_ERR_INVALID for form errors (wrong type, missing field) and
 * CS_ERR_RULE for valid values that break a rule (unknown type, schema
 * version, quantity 0). */
cs_rc cs_event_from_json(json_t *doc, cs_event_t **out, cs_err_t *err);

/* What an ISO 4217 code that is no money an order is paid in is ("no
 * currency" for XXX, "gold, not money" for XAU, ...), else NULL. */
const char *cs_currency_not_money(const char *code);

/* Parse one JSON text (len bytes, not NUL-terminated) and validate it. Invalid
 * UTF-8 and malformed JSON give CS_ERR_INVALID with the position. */
cs_rc cs_event_parse(const char *text, size_t len, cs_event_t **out, cs_err_t *err);
/* An event the engine composes itself (a provider's status, an
 * unsubscribe, a WhatsApp marketing stop), doc (taken; NULL: out of
 * memory), as the intake takes a producer's: its text parsed and
 * validated (cs_event_parse), and kept as the stored body. */
cs_rc cs_event_compose(json_t *doc, cs_event_t **out, cs_err_t *err);

/* The error for an event (doc, borrowed) that held numbers too large for
 * their types at the JSON paths path[0..n) (n >= 1), as cs_json_load_wide
 * read them (huge[i]: too large for a double, read as the largest one):
 * the first failing field's own (data.items[0].quantity: expected an
 * integer 1..1000000, got 1e+20; "got a number too large for any number
 * type" for a huge one), or, where no field wants them, one naming
 * path[0]. Never CS_OK. */
cs_rc cs_event_wide_error(json_t *doc, const char *const *path, const bool *huge, size_t n,
                          cs_err_t *err);

/* cs_event_parse for one line of NDJSON: text is line `line` (1-based) of
 * its file or body, starting at character column col0 + 1 (col0 characters
 * of the line, blanks, come before it); malformed JSON is reported at that
 * line and the column in it. */
cs_rc cs_event_parse_line(const char *text, size_t len, uint64_t line, unsigned col0,
                          cs_event_t **out, cs_err_t *err);

/* How far ahead of its receipt an event may be dated: a day, for a
 * producer that writes local time with the wrong offset. Beyond it the
 * producer's clock is wrong, and a scan dated in 2031 must not decide a
 * parcel's status, a broken promise or the delivery times the promise model
 * learns. */
#define CS_EVENT_AHEAD_MAX_MS (24 * 3600 * 1000LL)
/* ... and none is dated before 2000-01-01T00:00:00Z (cs_event_check_received). */
#define CS_EVENT_TIME_MIN 946684800000LL

/* A tracking number as carriers match it, into out: without spaces or
 * tabs, in upper case ("1z 999 aa1" and "1Z999AA1" are one parcel);
 * its length (cut to size - 1). CS_TRACKING_NUMBER_MAX bounds this form. */
size_t cs_tracking_number_canon(const char *in, char *out, size_t size);
/* A carrier id as shipments, scans, lanes and the carrier tables match it,
 * into out: without the white space around it (a no-break space too, as
 * cs_utf8_blank counts it) and in lower case (" DHL " is "dhl"); its
 * length, 0 when in is blank (cut to size - 1, never inside a character). */
size_t cs_carrier_canon(const char *in, char *out, size_t size);

/* The checks made once, when an event is received (every intake calls it
 * after parsing), not when a stored event is read back: what they judge
 * can change under an event already accepted (the clock, the system's
 * time zone database), and an accepted event must always read back.
 *
 * CS_ERR_INVALID naming occurred_at when ev is dated before
 * CS_EVENT_TIME_MIN or more than CS_EVENT_AHEAD_MAX_MS after now (the
 * receiving clock), or data.placed_at when an order.placed says its
 * purchase is. CS_ERR_RULE naming
 * data.timezone when a customer.upserted names a time zone the system's
 * database does not have (cs_tz_get), or data.email when its email's part
 * before the @ is not ASCII. An order.placed whose embedded customer has
 * such a zone or address is kept: they are left out of ev (its JSON and
 * its stored text, ev->body, serialized again) and ev->warning says so,
 * naming data.customer.timezone, data.customer.email or (both)
 * data.customer in ev->warning_field. Modifies ev only so; CS_ERR_NOMEM
 * when that fails. */
cs_rc cs_event_check_received(cs_event_t *ev, cs_ms_t now, cs_err_t *err);

/* NULL-safe; NULLs the pointer. */
void cs_event_free(cs_event_t **ev);

/* Fill ev->body (compact JSON of ev->json) when it is not set yet. Callers on
 * a parallel thread use it so the single writer does not have to. */
cs_rc cs_event_serialize(cs_event_t *ev, cs_err_t *err);

/* The customer an event belongs to, when known from the event alone (order
 * placed, customer upserted, ticket, feedback); NULL otherwise. Borrowed. */
const char *cs_event_customer_id(const cs_event_t *ev);

/* Money helpers: parse a JSON number or decimal string in major units into
 * minor units (at most 2 decimals... or 3 for currencies that use them is not
 * supported in v1: 2 decimals), at most CS_MONEY_MAX_TEXT (10^12 major
 * units). cs_money_check says why a value is not money: malformed (not a
 * number >= 0 with at most 2 decimals) or well-formed but too large;
 * cs_money_from_json is false for either. */
#define CS_MONEY_MAX_TEXT "1000000000000.00"
typedef enum cs_money_check {
    CS_MONEY_OK = 0,
    CS_MONEY_MALFORMED,
    CS_MONEY_TOO_LARGE,
} cs_money_check_t;
cs_money_check_t cs_money_check(const json_t *v, int64_t *minor);
bool cs_money_from_json(const json_t *v, int64_t *minor);
/* Format minor units as "49.90" into buf. */
const char *cs_money_format(int64_t minor, char *buf, size_t size);

#endif /* CS_MODEL_EVENT_H */
