/*
 * sender.c -- the outbox worker (see sender.h).
 */
#include "sender.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../journey/journey.h"
#include "../lib/cs_crypto.h"
#include "../lib/cs_json.h"
#include "../template/locale.h"
#include "../tracking/carriers.h"
#include "../tracking/promise.h"
#include "../tracking/watch.h"

#define BATCH_MAX 64

struct cs_sender {
    cs_engine_t *engine;
    cs_sender_opts_t o;
    cs_policy_conf_t policy; /* quiet hours and holds at the hand-over, when has_policy;
                                else the default (order.ticket_open for templates) */
    bool has_policy;
    char default_locale[16];
    char *shop_name, *public_url, *link_secret, *support_email;
    uint64_t next_ns[CS_OUT__CHANNELS]; /* rate limits: earliest next send */

    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, poked;

    _Atomic uint64_t st_sent, st_retried, st_failed, st_suppressed, st_render;
};

/* ---- signed links: hex(id) "." hmac ---- */

/* The MAC of a link: over "purpose:id" (t: a tracking page, u: an
 * unsubscribe page), so a token for one kind of page opens no other; over
 * the id alone (purpose NULL) for unsubscribe links sent before they had
 * a purpose. */
static void link_mac(const char *secret, const char *purpose, const char *id, char *hex)
{
    uint8_t mac[CS_SHA256_LEN];
    char msg[CS_ID_MAX + 40];
    if (purpose)
        snprintf(msg, sizeof msg, "%s:%s", purpose, id);
    else
        cs_strlcpy(msg, id, sizeof msg);
    cs_hmac_sha256(secret, strlen(secret), msg, strlen(msg), mac);
    cs_hex(mac, CS_SHA256_LEN, hex);
}

void cs_link_token(const char *secret, const char *purpose, const char *id, char *out,
                   size_t size)
{
    size_t n = strlen(id);
    char hexmac[CS_SHA256_HEX_LEN];
    link_mac(secret, purpose, id, hexmac);
    size_t o = 0;
    for (size_t i = 0; i < n && o + 3 < size; i++)
        o += (size_t)snprintf(out + o, size - o, "%02x", (unsigned char)id[i]);
    snprintf(out + o, size - o, ".%.32s", hexmac);
}

bool cs_link_token_check(const char *secret, const char *purpose, const char *token, char *id,
                         size_t size)
{
    const char *dot = strchr(token, '.');
    if (!dot || (dot - token) % 2 || dot == token || (size_t)(dot - token) / 2 >= size ||
        (size_t)(dot - token) / 2 > CS_ID_MAX || strlen(dot + 1) != 32)
        return false;
    size_t n = (size_t)(dot - token) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (!isxdigit((unsigned char)token[2 * i]) || !isxdigit((unsigned char)token[2 * i + 1]) ||
            sscanf(token + 2 * i, "%2x", &v) != 1 || v == 0)
            return false;
        id[i] = (char)v;
    }
    id[n] = '\0';
    char want[CS_SHA256_HEX_LEN];
    link_mac(secret, purpose, id, want);
    return cs_ct_equal(want, dot + 1, 32);
}

void cs_unsubscribe_token(const char *secret, const char *customer, char *out, size_t size)
{
    cs_link_token(secret, "u", customer, out, size);
}

/* An unsubscribe link sent before they were signed over "u:ID" signs the
 * id alone, and is honoured still; but not for an id that reads as a
 * purpose's signed text ("t:1001"): that MAC is the tracking link's of
 * order 1001, which would then unsubscribe customer "t:1001". (Such old
 * links of a customer "t:1001" open order 1001's page in turn; only a new
 * link_secret ends them: docs/channels.md.) */
bool cs_unsubscribe_token_check(const char *secret, const char *token, char *customer,
                                size_t size)
{
    if (cs_link_token_check(secret, "u", token, customer, size))
        return true;
    if (!cs_link_token_check(secret, NULL, token, customer, size))
        return false;
    return !(islower((unsigned char)customer[0]) && customer[1] == ':');
}

/* ---- life cycle ---- */

static char *dup_or_empty(const char *s) { return cs_strdup(s ? s : ""); }

cs_rc cs_sender_new(cs_engine_t *e, cs_sender_opts_t *opts, cs_sender_t **out, cs_err_t *err)
{
    *out = NULL;
    cs_sender_t *s = cs_calloc(1, sizeof *s);
    if (!s || !(s->shop_name = dup_or_empty(opts->shop_name)) ||
        !(s->public_url = dup_or_empty(opts->public_url)) ||
        !(s->link_secret = dup_or_empty(opts->link_secret)) ||
        !(s->support_email = dup_or_empty(opts->support_email))) {
        if (s) {
            cs_free(s->shop_name);
            cs_free(s->public_url);
            cs_free(s->link_secret);
            cs_free(s->support_email);
            cs_free(s);
        }
        for (int i = 0; i < CS_OUT__CHANNELS; i++)
            cs_transport_close(&opts->transports[i]);
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    }
    s->engine = e;
    s->o = *opts;
    s->o.policy = NULL; /* borrowed by the caller: copied */
    if (opts->policy) {
        s->policy = *opts->policy;
        s->has_policy = true;
    } else {
        cs_policy_conf_default(&s->policy);
    }
    for (int i = 0; i < CS_OUT__CHANNELS; i++)
        opts->transports[i] = NULL; /* moved */
    if (!s->o.max_attempts)
        s->o.max_attempts = 8;
    if (!s->o.webhook_attempts)
        s->o.webhook_attempts = 20;
    if (!s->o.retry_base)
        s->o.retry_base = 60 * 1000;
    if (!s->o.retry_max)
        s->o.retry_max = 6 * 3600 * 1000;
    if (!s->o.lease)
        s->o.lease = 5 * 60 * 1000;
    if (!s->o.batch || s->o.batch > BATCH_MAX)
        s->o.batch = 32;
    cs_strlcpy(s->default_locale, opts->default_locale ? opts->default_locale : "de",
               sizeof s->default_locale);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    *out = s;
    return CS_OK;
}

void cs_sender_poke(cs_sender_t *s)
{
    pthread_mutex_lock(&s->mu);
    s->poked = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void cs_sender_stats(cs_sender_t *s, cs_sender_stats_t *out)
{
    out->sent = atomic_load(&s->st_sent);
    out->retried = atomic_load(&s->st_retried);
    out->failed = atomic_load(&s->st_failed);
    out->suppressed = atomic_load(&s->st_suppressed);
    out->render_errors = atomic_load(&s->st_render);
}

/* ---- claiming and recording (writer tasks) ---- */

/* Where a message the sender moves to another channel goes, or the
 * address a hand-over went to (the result's recipient and fallback point
 * here). */
typedef struct move_buf {
    char to[256];
    char rest[32];
} move_buf_t;

typedef struct claim_task {
    cs_sender_t *s;
    cs_outmsg_t msgs[BATCH_MAX];
    size_t n;
    cs_out_result_t res[BATCH_MAX];
    char reasons[BATCH_MAX][256];
    char refs[BATCH_MAX][128];
    move_buf_t moves[BATCH_MAX];
    size_t rec_from, rec_to; /* the results record_fn writes */
    size_t applied;          /* early statuses record_fn turned into events */
    cs_err_t err;
} claim_task_t;

static cs_rc claim_fn(cs_store_t *st, void *arg)
{
    claim_task_t *t = arg;
    cs_ms_t now = cs_clock_now(cs_engine_clock(t->s->engine));
    cs_rc rc = cs_store_begin(st, &t->err);
    if (rc)
        return rc;
    if ((rc = cs_store_call(st, outbox_claim, now, now + t->s->o.lease, t->msgs, t->s->o.batch,
                            &t->n, &t->err)) ||
        (rc = cs_store_commit(st, &t->err))) {
        cs_store_rollback(st);
        t->n = 0;
    }
    return rc;
}

cs_rc cs_sender_status_event(const cs_outmsg_t *m, int status, const char *detail, cs_ms_t at,
                             cs_event_t **out, cs_err_t *err)
{
    const char *ch = cs_out_channel_name(m->channel);
    char eid[CS_ID_MAX + 1], mid[32], ts[40], src[48];
    *out = NULL;
    snprintf(eid, sizeof eid, "cb-%s-%lld-%s", ch, (long long)m->id,
             cs_msg_status_name((cs_msg_status_t)status));
    snprintf(mid, sizeof mid, "%lld", (long long)m->id);
    snprintf(src, sizeof src, "callback-%s", ch);
    cs_time_format(at, ts, sizeof ts);
    json_t *ev = json_pack("{s:s,s:s,s:s,s:s,s:{s:s,s:s,s:s,s:s}}", "event_id", eid, "type",
                           "message.status", "occurred_at", ts, "source", src, "data",
                           "message_id", mid, "status",
                           cs_msg_status_name((cs_msg_status_t)status), "channel", ch,
                           "customer_id", m->customer_id);
    if (ev && detail && *detail &&
        json_object_set_new(json_object_get(ev, "data"), "detail", json_string(detail))) {
        json_decref(ev);
        ev = NULL;
    }
    char *text = ev ? cs_json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    if (!text)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    cs_rc rc = cs_event_parse(text, strlen(text), out, err);
    free(text);
    return rc;
}

/* Statuses the provider reported for a reference before it was recorded
 * here (its callback was faster than this write) become message.status
 * events now, in the transaction that records the reference. *applied
 * counts them. */
static cs_rc apply_early(cs_sender_t *s, cs_store_t *st, const cs_outmsg_t *m, const char *ref,
                         size_t *applied, cs_err_t *err)
{
    cs_early_status_t early[CS_MSG__COUNT];
    size_t n = 0;
    cs_ms_t now = cs_clock_now(cs_engine_clock(s->engine));
    cs_rc rc = cs_store_call(st, early_status_take, m->channel, ref, early, CS_ARRAY_LEN(early),
                             &n, err);
    for (size_t i = 0; i < n && !rc; i++) {
        cs_event_t *ev = NULL;
        cs_ingest_outcome_t outcome;
        int64_t seq;
        if (!(rc = cs_sender_status_event(m, early[i].status, early[i].detail,
                                          early[i].occurred_at, &ev, err)))
            rc = cs_store_ingest(st, ev, now, &outcome, &seq, err);
        cs_event_free(&ev);
        if (!rc && outcome != CS_INGEST_DUPLICATE)
            (*applied)++;
    }
    return rc;
}

/* Outcomes are recorded relaxed: on the embedded store a killed daemon
 * loses none of them, and a power failure at worst the last few -- whose
 * messages are then handed over again with the same idempotency key
 * (Message-ID, provider idempotency header), never lost. The statuses
 * kept for a reference go with the transaction that records it: lost
 * with it, they are still kept. */
static cs_rc record_fn(cs_store_t *st, void *arg)
{
    claim_task_t *t = arg;
    cs_rc rc = cs_store_begin_relaxed(st, &t->err);
    t->applied = 0;
    if (rc)
        return rc;
    for (size_t i = t->rec_from; i < t->rec_to && !rc; i++) {
        rc = cs_store_call(st, outbox_result, &t->res[i], &t->err);
        /* only SMS and WhatsApp statuses are kept early (callbacks.c): an
         * email's reference is not looked for */
        if (!rc && t->res[i].provider_ref &&
            (t->msgs[i].channel == CS_CHANNEL_SMS || t->msgs[i].channel == CS_CHANNEL_WHATSAPP))
            rc = apply_early(t->s, st, &t->msgs[i], t->res[i].provider_ref, &t->applied,
                             &t->err);
    }
    if (rc || (rc = cs_store_commit(st, &t->err))) {
        cs_store_rollback(st);
        t->applied = 0;
    }
    return rc;
}

/* ---- rendering ---- */

typedef struct ctx_task {
    const cs_outmsg_t *m;
    const cs_policy_conf_t *policy; /* the sender's: order.ticket_open as the journeys judge it */
    cs_ms_t now;              /* the hand-over's */
    json_t *customer, *order, *shipment;
    bool has_discount;        /* the run issued a code (the latest one), or the order's
                                 compensation code when the run has none */
    cs_discount_t discount;
    bool has_promise;         /* the order watch's record of the order */
    cs_promise_rec_t promise;
    bool withdrawn;           /* the run's trigger is the watch's delay signal, and the
                                 order is no longer at risk */
    bool ticket_open;         /* a message about a known order, asks and marketing: a ticket
                                 of the customer, or about the order, is open (the
                                 policy's hold reads it for asks and marketing) */
    cs_ms_t ticket_at;        /* ... and the last update of the open one updated last */
    bool has_contact;         /* a message to the customer (not a webhook) of a known
                                 customer: their contact data, as the journeys read it
                                 (contact_get), from the customer read for the context */
    cs_contact_t who;
    cs_err_t err;
} ctx_task_t;

/* Is the event at seq the order watch's delivery_at_risk signal for a
 * parcel still meant to arrive (not one on its way back)? */
typedef struct risk_probe {
    int64_t seq;
    bool is_delay;
} risk_probe_t;

static cs_rc probe_fn(int64_t seq, const char *order_id, const char *customer_id,
                      const char *body, size_t len, void *ud)
{
    risk_probe_t *r = ud;
    cs_event_t *ev;
    cs_err_t perr;
    (void)order_id;
    (void)customer_id;
    if (seq != r->seq || cs_event_parse(body, len, &ev, &perr) != CS_OK)
        return CS_OK;
    if (ev->type == CS_EV_SIGNAL && ev->source && strcmp(ev->source, CS_WATCH_SOURCE) == 0 &&
        strcmp(ev->u.signal.name, CS_WATCH_AT_RISK) == 0) {
        const char *risk = json_string_value(json_object_get(ev->u.signal.properties, "risk"));
        r->is_delay = !(risk && strcmp(risk, cs_promise_reason_name(CS_PR_RETURNED)) == 0);
    }
    cs_event_free(&ev);
    return CS_OK;
}

static cs_rc ctx_fn(cs_store_t *st, void *arg)
{
    ctx_task_t *c = arg;
    cs_rc rc;
    int64_t about = 0; /* the run's trigger: its parcel is the message's */
    if (c->m->run_id && c->m->order_id[0]) {
        cs_run_t run;
        rc = cs_store_call(st, run_get, c->m->run_id, &run, &c->err);
        if (rc && rc != CS_ERR_NOTFOUND)
            return rc;
        if (!rc)
            about = run.trigger_seq;
    }
    rc = cs_store_call(st, journey_context, c->m->customer_id, c->m->order_id, about,
                       CS_CTX_FULL, &c->customer, &c->order, &c->shipment, &c->err);
    /* whether a ticket is open, read once: for the order's ticket_open (as
     * the journeys judge it; a webhook carries the order) and for the hold
     * of asks and marketing (held: as the journeys read it, also about no
     * order) */
    if (!rc && c->order)
        rc = cs_journeys_ticket_open(c->policy, st, c->m->customer_id, c->order, c->now,
                                     &c->ticket_open, &c->ticket_at, &c->err);
    else if (!rc && cs_policy_is_marketing((cs_msg_class_t)c->m->cls))
        rc = cs_store_call(st, ticket_open, c->m->customer_id, c->m->order_id, &c->ticket_open,
                           &c->ticket_at, &c->err);
    if (rc)
        return rc;
    /* consent, the address and the channels to fall back to: from the
     * customer's row just read, not read again */
    if (c->m->channel < CS_CHANNEL__COUNT && c->customer) {
        cs_contact_from_json(c->customer, &c->who);
        c->has_contact = true;
    }
    if (c->m->run_id) {
        rc = cs_store_call(st, discount_for_run, c->m->run_id, &c->discount, &c->err);
        c->has_discount = rc == CS_OK;
        if (rc && rc != CS_ERR_NOTFOUND)
            return rc;
    }
    if (!c->m->order_id[0])
        return CS_OK;
    rc = cs_store_call(st, promise_get, c->m->order_id, &c->promise, &c->err);
    c->has_promise = rc == CS_OK;
    if (rc && rc != CS_ERR_NOTFOUND)
        return rc;
    if (!c->has_discount && c->has_promise && c->promise.comp_code[0]) {
        char key[CS_ID_MAX + 8];
        snprintf(key, sizeof key, "comp:%s", c->m->order_id);
        rc = cs_store_call(st, discount_by_key, key, &c->discount, &c->err);
        c->has_discount = rc == CS_OK;
        if (rc && rc != CS_ERR_NOTFOUND)
            return rc;
    }
    /* A delay notice held back (the mail server down, quiet hours) must
     * not tell of a delay that is over: delivered, cancelled, or the watch
     * no longer has the order at risk. Only then, and only for an order
     * the watch ever found at risk, is the trigger read. */
    if (about && c->has_promise && c->promise.risk_events > 0 &&
        (c->promise.closed || !c->promise.at_risk)) {
        risk_probe_t r = { .seq = about };
        int64_t examined;
        rc = cs_store_call(st, events_after, about - 1, 1, 0, probe_fn, &r, &examined, &c->err);
        if (rc)
            return rc;
        c->withdrawn = r.is_delay;
    }
    return CS_OK;
}

static cs_rc read_ctx(cs_sender_t *s, ctx_task_t *c)
{
    cs_store_t *st;
    cs_rc rc = cs_engine_reader_acquire(s->engine, &st, &c->err);
    if (rc == CS_ERR_UNSUPPORTED)
        return cs_engine_with_writer(s->engine, ctx_fn, c); /* in-memory store */
    if (rc)
        return rc;
    rc = ctx_fn(st, c);
    cs_engine_reader_release(s->engine, st);
    return rc;
}

static int64_t minor(json_t *v)
{
    return (int64_t)llround((json_is_real(v) ? json_real_value(v) : (double)json_integer_value(v)) *
                            100.0);
}

static void set_money(json_t *o, const char *key, json_t *v, const char *cur, const char *loc)
{
    char b[CS_FMT_MAX];
    if (v && !json_is_null(v))
        json_object_set_new(o, key, json_string(cs_fmt_money(minor(v), cur, loc, b, sizeof b)));
}

static void set_date(json_t *o, const char *key, json_t *v, const cs_tz_t *tz,
                     cs_date_style_t style, const char *loc)
{
    cs_ms_t t;
    char b[CS_FMT_MAX];
    if (json_is_string(v) && cs_time_parse(json_string_value(v), &t))
        json_object_set_new(o, key, json_string(cs_fmt_date(t, tz, style, loc, b, sizeof b)));
}

/* A promised day: the shop's day (a plain date is that day in any zone,
 * cs_tz_date_day), told as that date wherever the customer reads it. */
static void set_day(json_t *o, const char *key, json_t *v, const cs_tz_t *stz,
                    const cs_tz_t *tz, const char *loc)
{
    cs_ms_t t;
    char b[CS_FMT_MAX];
    if (json_is_string(v) && cs_time_parse(json_string_value(v), &t)) {
        t = cs_tz_day_start(tz, cs_tz_date_day(stz, t));
        json_object_set_new(o, key, json_string(cs_fmt_date(t, tz, CS_DATE_DAY, loc, b, sizeof b)));
    }
}

/* The carrier as customers know it; NULL stays NULL (a section, not text). */
static const char *carrier_name(const cs_sender_t *s, const char *c)
{
    return c ? cs_carriers_display_name(cs_engine_carriers(s->engine), c) : NULL;
}

/* A parcel as templates see it: its carrier by name, its delivery day,
 * whether it arrived. */
static json_t *parcel_ctx(cs_sender_t *s, json_t *sh, const cs_tz_t *tz, const char *lang)
{
    const char *carrier = json_string_value(json_object_get(sh, "carrier"));
    json_t *so = json_pack("{s:s?,s:s?,s:s?}", "carrier", carrier_name(s, carrier),
                           "tracking_number", json_string_value(json_object_get(sh, "tracking_number")),
                           "status", json_string_value(json_object_get(sh, "status")));
    if (!so)
        return NULL;
    json_t *at = json_object_get(sh, "delivered_at");
    set_date(so, "delivered", at, tz, CS_DATE_DAY, lang);
    /* with the customer, or waiting for them at a pickup point */
    const char *st = json_string_value(json_object_get(sh, "status"));
    json_object_set_new(so, "arrived", json_boolean(json_is_string(at) ||
                                                    (st && strcmp(st, "available_for_pickup") == 0)));
    return so;
}

/* The template context of a message: formatted for the customer's locale. */
static json_t *message_ctx(cs_sender_t *s, const cs_outmsg_t *m, ctx_task_t *c, const char *lang)
{
    json_t *cu = c->customer, *o = c->order, *sh = c->shipment;
    /* the customer's zone, else the shop's; promised days are the shop's */
    const cs_tz_t *stz = s->o.shop_tz ? s->o.shop_tz : cs_tz_get_or_utc(NULL);
    const cs_tz_t *tz = cs_tz_get_or(json_string_value(json_object_get(cu, "timezone")), stz);
    cs_ms_t now = cs_clock_now(cs_engine_clock(s->engine));
    const char *name = json_string_value(json_object_get(cu, "name"));
    /* the given name, whole: a name is short text, and a cut inside a
     * character would make the context no JSON (no message) */
    char first[CS_SHORT_MAX + 1];
    cs_first_name(name, first, sizeof first);
    json_t *ctx = json_pack("{s:s,s:{s:s,s:s,s:s},s:{s:s?,s:s?,s:s?}}", "locale", lang, "shop",
                            "name", s->shop_name, "url", s->public_url, "support_email",
                            s->support_email, "customer", "name", name, "first_name",
                            first[0] ? first : NULL, "email",
                            json_string_value(json_object_get(cu, "email")));
    if (!ctx)
        return NULL;
    json_object_set_new(ctx, "first_purchase", json_boolean(cs_first_purchase(cu, o)));
    /* (no unsubscribe link in the text footer of an order's own mail, as
     * no List-Unsubscribe header) */
    json_object_set_new(ctx, "transactional", json_boolean(m->cls == CS_CLASS_TRANSACTIONAL));
    if (o) {
        const char *cur = json_string_value(json_object_get(o, "currency"));
        json_t *oo = json_pack("{s:s?,s:s?}", "id", json_string_value(json_object_get(o, "id")),
                               "status", json_string_value(json_object_get(o, "status")));
        set_money(oo, "total", json_object_get(o, "total"), cur, lang);
        set_money(oo, "subtotal", json_object_get(o, "subtotal"), cur, lang);
        set_money(oo, "shipping", json_object_get(o, "shipping"), cur, lang);
        set_money(oo, "discount", json_object_get(o, "discount"), cur, lang);
        /* whether to list them between the items and the total, which
         * otherwise does not add up for the customer */
        json_object_set_new(oo, "paid_shipping",
                            json_boolean(minor(json_object_get(o, "shipping")) > 0));
        json_object_set_new(oo, "discounted",
                            json_boolean(minor(json_object_get(o, "discount")) > 0));
        set_date(oo, "placed", json_object_get(o, "placed_at"), tz, CS_DATE_LONG, lang);
        /* the shop's promise, while its last day is still to come: one
         * already past (an order shipped late, an order that reached us
         * late) is not told as what we expect; templates then fall back
         * to the watch's window (promise.window) */
        cs_ms_t pto;
        const char *pto_s = json_string_value(json_object_get(o, "promised_to"));
        if (pto_s && cs_time_parse(pto_s, &pto) &&
            cs_tz_date_day(stz, pto) >= cs_tz_day(stz, now)) {
            set_day(oo, "promised_from", json_object_get(o, "promised_from"), stz, tz, lang);
            set_day(oo, "promised_to", json_object_get(o, "promised_to"), stz, tz, lang);
        }
        json_t *items = json_array();
        size_t i;
        json_t *it;
        json_array_foreach(json_object_get(o, "items"), i, it) {
            json_t *x = json_pack("{s:s?,s:s?,s:O}", "name",
                                  json_string_value(json_object_get(it, "name")), "sku",
                                  json_string_value(json_object_get(it, "sku")), "quantity",
                                  json_object_get(it, "quantity"));
            set_money(x, "price", json_object_get(it, "unit_price"), cur, lang);
            int64_t line = minor(json_object_get(it, "unit_price")) *
                               json_integer_value(json_object_get(it, "quantity")) -
                           minor(json_object_get(it, "discount"));
            char b[CS_FMT_MAX];
            json_object_set_new(x, "total", json_string(cs_fmt_money(line, cur, lang, b, sizeof b)));
            json_array_append_new(items, x);
        }
        json_object_set_new(oo, "items", items);
        json_object_set(oo, "items_count", json_object_get(o, "items_count"));
        /* every parcel of the order, in the order they were created */
        json_t *parcels = json_array();
        json_array_foreach(json_object_get(o, "shipments"), i, it)
            json_array_append_new(parcels, parcel_ctx(s, it, tz, lang));
        json_object_set_new(oo, "shipments", parcels);
        json_object_set_new(oo, "shipments_count",
                            json_integer((json_int_t)json_array_size(parcels)));
        json_object_set_new(oo, "several_parcels", json_boolean(json_array_size(parcels) > 1));
        json_object_set_new(ctx, "order", oo);
    }
    if (sh)
        json_object_set_new(ctx, "shipment", parcel_ctx(s, sh, tz, lang));
    if (c->has_discount) {
        const cs_discount_t *d = &c->discount;
        char b[CS_FMT_MAX];
        json_t *dj = json_pack("{s:s,s:b,s:b,s:b}", "code", d->code, "percent",
                               d->kind == CS_DISCOUNT_PERCENT, "amount",
                               d->kind == CS_DISCOUNT_AMOUNT, "free_shipping",
                               d->kind == CS_DISCOUNT_FREE_SHIPPING);
        if (d->kind == CS_DISCOUNT_PERCENT) {
            /* 12.5 % is told as 12,5 / 12.5, not cut to 12 */
            int64_t h = llround(d->value * 100.0);
            int dec = h % 10 ? 2 : h % 100 ? 1 : 0;
            int64_t v = dec == 2 ? h : dec == 1 ? h / 10 : h / 100;
            json_object_set_new(dj, "value",
                                json_string(cs_fmt_number(v, dec, lang, b, sizeof b)));
        } else if (d->kind == CS_DISCOUNT_AMOUNT) {
            json_object_set_new(dj, "value",
                                json_string(cs_fmt_money((int64_t)llround(d->value * 100.0),
                                                         d->currency, lang, b, sizeof b)));
        }
        json_object_set_new(dj, "expires", json_string(cs_fmt_date(d->expires_at, tz, CS_DATE_DAY,
                                                                   lang, b, sizeof b)));
        json_object_set_new(ctx, "discount", dj);
    }
    if (c->has_promise && c->promise.to) {
        /* the current window in words, why it is there, and the first one
         * when it moved later */
        const cs_promise_rec_t *p = &c->promise;
        char w[2 * CS_FMT_MAX + 40], why[256], b[CS_FMT_MAX];
        int reason = cs_promise_reason_from_name(p->at_risk ? p->risk_reason : p->reason);
        /* the shop's days, named from the customer's today (as the status
         * answer and the page do) */
        json_t *po = json_pack("{s:s,s:b,s:b,s:i}", "window",
                               cs_fmt_window(stz, tz, now, p->from, p->to, lang, w, sizeof w),
                               "at_risk", p->at_risk, "moved", p->to > p->first_to,
                               "late_days", p->late_days);
        /* the same after a label ("Neue Erwartung: Sonntag, 6. Dezember"),
         * where "am Sonntag" reads wrong */
        if (po)
            json_object_set_new(po, "window_bare", json_string(cs_window_bare(w)));
        /* an address the carrier cannot deliver to is the one delay the
         * customer can end: the notice asks for the right one */
        if (po)
            json_object_set_new(po, "address", json_boolean(reason == CS_PR_ADDRESS));
        if (po && reason > 0)
            json_object_set_new(po, "reason",
                                json_string(cs_promise_reason_text((cs_promise_reason_t)reason,
                                                                   lang, p->quiet_days, why,
                                                                   sizeof why)));
        if (po && p->first_to)
            json_object_set_new(po, "first_to", json_string(cs_fmt_date(p->first_to, stz,
                                                                         CS_DATE_DAY, lang, b,
                                                                         sizeof b)));
        if (po)
            json_object_set_new(ctx, "promise", po);
    }
    json_t *links = json_object();
    if (s->public_url[0] && s->link_secret[0]) {
        char tok[2 * CS_ID_MAX + 64], url[1200];
        cs_unsubscribe_token(s->link_secret, m->customer_id, tok, sizeof tok);
        snprintf(url, sizeof url, "%s/u/%s", s->public_url, tok);
        json_object_set_new(links, "unsubscribe", json_string(url));
        if (m->order_id[0]) {
            cs_link_token(s->link_secret, "t", m->order_id, tok, sizeof tok);
            snprintf(url, sizeof url, "%s/t/%s", s->public_url, tok);
            json_object_set_new(links, "tracking", json_string(url));
        }
    }
    json_object_set_new(ctx, "links", links);
    return ctx;
}

/* The language a message's template is written in: the customer's when
 * it has the message's text (.txt, or .sms for SMS and WhatsApp), else the
 * default locale's. Every part then comes from that one language: an
 * optional part (.html, .sms, the footer) missing in it is left out, not
 * taken from another language. */
static const char *template_lang(const cs_sender_t *s, const char *tmpl, const char *lang,
                                 bool email)
{
    char name[CS_JID_MAX + 32];
    snprintf(name, sizeof name, "%s.%s.txt", tmpl, lang);
    if (cs_tplset_has(s->o.templates, name))
        return lang;
    snprintf(name, sizeof name, "%s.%s.sms", tmpl, lang);
    if (!email && cs_tplset_has(s->o.templates, name))
        return lang;
    return cs_locale_lang(s->default_locale);
}

/* Render `<tmpl>.<lang>.<part>`. */
static cs_rc render_part(cs_sender_t *s, const char *tmpl, const char *lang, const char *part,
                         bool html, json_t *ctx, char **out, cs_err_t *err)
{
    char name[CS_JID_MAX + 32];
    *out = NULL;
    snprintf(name, sizeof name, "%s.%s.%s", tmpl, lang, part);
    if (!cs_tplset_has(s->o.templates, name))
        return cs_errf(err, CS_ERR_NOTFOUND, "template %s.%s.%s missing", tmpl, lang, part);
    cs_tpl_opts_t to = { .escape = html ? CS_TPL_ESCAPE_HTML : CS_TPL_ESCAPE_NONE,
                         .strict = true };
    cs_buf_t b;
    cs_buf_init(&b, CS_TPL_OUTPUT_MAX);
    cs_rc rc = cs_tplset_render(s->o.templates, name, ctx, &to, &b, err);
    if (rc) {
        cs_buf_free(&b);
        return rc;
    }
    *out = cs_buf_steal(&b, NULL);
    if (!*out)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    if (!html) { /* subjects and texts: trim the trailing newline of the file */
        size_t n = strlen(*out);
        while (n && ((*out)[n - 1] == '\n' || (*out)[n - 1] == '\r'))
            (*out)[--n] = '\0';
    }
    return CS_OK;
}

/* An email's text part ends with the shop's footer (footer.<lang>.txt,
 * when the templates have one) below a "-- " line, as its HTML part ends
 * with its own: the support address, the unsubscribe link. It is added
 * here, not in the .txt, because the .txt is also the SMS and WhatsApp
 * text of a template without a .sms, where it does not belong. */
static cs_rc add_footer(cs_sender_t *s, const char *lang, json_t *ctx, char **text,
                        cs_err_t *err)
{
    char *footer = NULL, *out = NULL;
    cs_rc rc = render_part(s, "footer", lang, "txt", false, ctx, &footer, err);
    if (rc == CS_ERR_NOTFOUND) {
        cs_err_clear(err);
        return CS_OK;
    }
    if (rc)
        return rc;
    if (footer[0]) {
        cs_buf_t b;
        cs_buf_init(&b, 2 * CS_TPL_OUTPUT_MAX);
        if ((rc = cs_buf_puts(&b, *text)) || (rc = cs_buf_puts(&b, "\n\n-- \n")) ||
            (rc = cs_buf_puts(&b, footer)) || !(out = cs_buf_steal(&b, NULL))) {
            cs_buf_free(&b);
            rc = cs_errf(err, rc ? rc : CS_ERR_NOMEM, "the text part and its footer: %s",
                         cs_strerror(rc ? rc : CS_ERR_NOMEM));
            goto out;
        }
        cs_free(*text);
        *text = out;
    }
out:
    cs_free(footer);
    return rc;
}

/* Quiet hours in the customer's zone (else the shop's) at the hand-over:
 * a message queued before them and sent later (a retry, a rate-limited
 * backlog) waits for their end like one the journeys defer. */
static bool quiet_now(const cs_sender_t *s, const cs_outmsg_t *m, json_t *cu, cs_ms_t now,
                      cs_ms_t *end)
{
    if (!s->has_policy)
        return false;
    const cs_tz_t *stz = s->o.shop_tz ? s->o.shop_tz : cs_tz_get_or_utc(NULL);
    const cs_tz_t *tz = cs_tz_get_or(json_string_value(json_object_get(cu, "timezone")), stz);
    return cs_policy_quiet(&s->policy, (cs_msg_class_t)m->cls, tz, now, end);
}

/* The policy's holds again at the hand-over (cs_policy_hold): an ask or
 * marketing message waiting in the outbox (a retry, a backlog, quiet
 * hours) does not go out into a ticket opened, or a delivery gone late,
 * since it was queued. The hold counts from when the message was queued:
 * hold_max after that it is dropped, as it is at most that late. */
static cs_policy_result_t held(const cs_sender_t *s, const cs_outmsg_t *m, const ctx_task_t *c,
                               cs_ms_t now)
{
    cs_policy_result_t none = { CS_VERDICT_SEND, 0, NULL };
    if (!s->has_policy)
        return none;
    const cs_tz_t *stz = s->o.shop_tz ? s->o.shop_tz : cs_tz_get_or_utc(NULL);
    cs_policy_input_t in = {
        .cls = (cs_msg_class_t)m->cls,
        .channel = (cs_channel_t)m->channel,
        .now = now,
        .delivery_late = cs_journeys_delivery_late(stz, c->order, c->shipment, now),
        .ticket_open = c->ticket_open,
        .ticket_at = c->ticket_at,
        .refund_pending = json_is_true(json_object_get(c->order, "refund_pending")),
        .held_since = m->created_at,
    };
    return cs_policy_hold(&s->policy, &in);
}

/* Consent and the address may have changed since the message was
 * queued: the contact policy's own rules (cs_policy_channel, rules 0 to
 * 2, and the unsubscribe of rule 3) read again from the customer's
 * contact row, as the journeys read it when they queued the message --
 * not a copy of them here. Its channel is configured (the caller checked).
 *
 * *to gets where the message goes: on a first hand-over, the customer's
 * address on its channel now (a customer who changed their email since
 * gets it at the new one); on a retry (attempts > 1: an earlier hand-over
 * may have reached the customer), the address that hand-over went to, as
 * recorded: the repeat is the same request under the same idempotency key,
 * which the provider can then recognise, and is not sent to a second
 * address. An address removed since stops a retry too (as a consent
 * withdrawn does): the repeat goes where it went, or nowhere. */
static const char *suppressed(const cs_outmsg_t *m, const ctx_task_t *c, cs_ms_t now,
                              const char **to)
{
    *to = m->recipient;
    if (!c->customer || !c->has_contact)
        return "unknown_customer";
    cs_policy_input_t pi = { .cls = (cs_msg_class_t)m->cls, .now = now };
    const char *addr = cs_journeys_contact_input(&c->who, (cs_channel_t)m->channel, 0, &pi);
    if (cs_policy_unsubscribed(&pi))
        return "unsubscribed_before_send";
    const char *refused = cs_policy_channel(&pi);
    if (!refused) {
        if (m->attempts <= 1)
            *to = addr;
        return NULL;
    }
    return strcmp(refused, "bounced") == 0      ? "bounced_before_send"
           : strcmp(refused, "no_address") == 0 ? "no_address_before_send"
                                                : "consent_withdrawn_before_send";
}

/* A message whose channel is refused at the hand-over for the channel's
 * own sake (`why`: its consent withdrawn, its address bounced or removed
 * since it was queued, the channel switched off since) goes by the next
 * channel its send listed that the contact policy lets carry it now
 * (cs_policy_channel, as the journeys chose: configured, not bounced, an
 * address, the consent), to the customer's address there. It is not handed
 * over in this claim: the move is recorded first -- the same row, so the
 * same idempotency key -- and the next claim takes it on the new channel,
 * through this hand-over's checks again (consent, holds, quiet hours). A
 * message already handed over on its channel (a retry) is not moved: that
 * hand-over may have reached the customer. Returns false when there is
 * nothing to move to (the message is skipped with `why`). */
static bool fall_back(const cs_sender_t *s, const cs_outmsg_t *m, const ctx_task_t *c,
                      const char *why, cs_ms_t now, cs_out_result_t *res, char *reason,
                      size_t rsize, move_buf_t *mv)
{
    if (!c->has_contact || m->attempts > 1 || m->channel >= CS_CHANNEL__COUNT ||
        (strcmp(why, "consent_withdrawn_before_send") != 0 &&
         strcmp(why, "bounced_before_send") != 0 &&
         strcmp(why, "no_address_before_send") != 0 && strcmp(why, "channel_off") != 0))
        return false;
    unsigned off = 0;
    for (int ch = 0; ch < CS_CHANNEL__COUNT; ch++)
        if (!s->o.transports[ch])
            off |= 1u << ch;
    const char *p = m->fallback;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char name[16];
        cs_strlcpy(name, p, n < sizeof name ? n + 1 : sizeof name);
        p += n + (comma ? 1 : 0);
        int ch = cs_channel_from_name(name);
        if (ch < 0)
            continue;
        cs_policy_input_t pi = { .cls = (cs_msg_class_t)m->cls, .now = now };
        const char *addr = cs_journeys_contact_input(&c->who, (cs_channel_t)ch, off, &pi);
        if (cs_policy_channel(&pi))
            continue;
        cs_strlcpy(mv->to, addr, sizeof mv->to);
        cs_strlcpy(mv->rest, p, sizeof mv->rest);
        res->move = true;
        res->status = CS_OUT_QUEUED;
        res->untried = true;
        res->next_at = now;
        res->channel = ch;
        res->recipient = mv->to;
        res->fallback = mv->rest[0] ? mv->rest : NULL;
        res->lease_until = m->lease_until; /* only while the claim is still this one */
        snprintf(reason, rsize, "%s on %s", why, cs_channel_name((cs_channel_t)m->channel));
        res->reason = reason;
        return true;
    }
    return false;
}

static void rate_wait(cs_sender_t *s, int ch)
{
    double rate = s->o.rate[ch];
    if (rate <= 0)
        return;
    uint64_t now = cs_mono_ns();
    if (s->next_ns[ch] > now) {
        uint64_t d = s->next_ns[ch] - now;
        struct timespec ts = { (time_t)(d / 1000000000ULL), (long)(d % 1000000000ULL) };
        nanosleep(&ts, NULL);
        now = s->next_ns[ch];
    }
    s->next_ns[ch] = now + (uint64_t)(1e9 / rate);
}

static cs_ms_t backoff(cs_sender_t *s, int attempts, cs_ms_t now)
{
    double d = (double)s->o.retry_base * pow(2.0, attempts > 1 ? attempts - 1 : 0);
    if (d > (double)s->o.retry_max)
        d = (double)s->o.retry_max;
    uint32_t r = 0;
    cs_random_bytes(&r, sizeof r);
    double jitter = 0.8 + 0.4 * ((double)r / 4294967295.0); /* +-20% */
    return now + (cs_ms_t)(d * jitter);
}

/* Hand-overs a temporarily failing message gets: a webhook goes to the
 * shop's own system, whose outage may last a day or two, so it has its own
 * (longer) count. */
static int attempts_for(const cs_sender_t *s, const cs_outmsg_t *m)
{
    return m->channel == CS_OUT_WEBHOOK ? s->o.webhook_attempts : s->o.max_attempts;
}

/* The outcome of a hand-over: sent, retried later, or failed for good. */
static void record_send(cs_sender_t *s, const cs_outmsg_t *m, const cs_send_result_t *sr_,
                        cs_out_result_t *res, char *reason, size_t rsize, char *ref,
                        size_t refsize)
{
    const cs_send_result_t sr = *sr_;
    cs_ms_t now = cs_clock_now(cs_engine_clock(s->engine));
    cs_strlcpy(ref, sr.provider_ref, refsize);
    res->provider_ref = ref[0] ? ref : NULL;
    if (sr.status == CS_SEND_OK) {
        res->status = CS_OUT_SENT;
        res->sent_at = now;
        atomic_fetch_add(&s->st_sent, 1);
    } else if (sr.status == CS_SEND_RETRY && m->attempts < attempts_for(s, m)) {
        res->status = CS_OUT_QUEUED;
        res->next_at = backoff(s, m->attempts, now);
        snprintf(reason, rsize, "retry %d: %.200s", m->attempts, sr.detail);
        res->reason = reason;
        atomic_fetch_add(&s->st_retried, 1);
    } else {
        res->status = CS_OUT_FAILED;
        snprintf(reason, rsize, "%s%.230s", sr.status == CS_SEND_RETRY ? "gave up: " : "",
                 sr.detail);
        res->reason = reason;
        atomic_fetch_add(&s->st_failed, 1);
    }
}

/* A webhook's body: the journey's event with the raw state it concerns. */
static char *webhook_body(const cs_outmsg_t *m, ctx_task_t *c)
{
    char ts[40];
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:O,s:O,s:O}", "id", m->idem_key, "event",
                          m->template_name, "journey", m->journey, "created_at",
                          cs_time_format(m->created_at, ts, sizeof ts), "customer",
                          c->customer ? c->customer : json_null(), "order",
                          c->order ? c->order : json_null(), "shipment",
                          c->shipment ? c->shipment : json_null());
    if (o && c->has_discount)
        json_object_set_new(o, "discount", cs_discount_json(&c->discount));
    char *text = o ? cs_json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    char *out = text ? cs_strdup(text) : NULL; /* cs_free-able like the rendered parts */
    free(text);
    return out;
}

/* Is the claim still this sender's for a whole hand-over? Its lease was
 * taken for the batch; one that ran out (slow servers, rate limits) may be
 * another node's claim by now, and sending it as well would hand it over
 * twice. A fifth of the lease is kept for the hand-over itself (the
 * transports' timeouts are 15 and 30 s of the default 5 minutes). */
static bool claim_holds(cs_sender_t *s, const cs_outmsg_t *m)
{
    cs_ms_t now = cs_clock_now(cs_engine_clock(s->engine));
    return !m->lease_until || now + s->o.lease / 5 < m->lease_until;
}

/* A message whose store reads fail is queued again with the reason
 * "store since TIME: ...", TIME the first of those failures in a row. */
#define STORE_SINCE "store since "

/* Since when the reads of a message have failed in a row: the time its
 * last reason names, else now (its last outcome was another). */
static cs_ms_t store_failing_since(const char *last_reason, cs_ms_t now)
{
    size_t n = strlen(STORE_SINCE);
    if (strncmp(last_reason, STORE_SINCE, n) != 0)
        return now;
    const char *end = strstr(last_reason + n, ": ");
    char ts[40];
    cs_ms_t t;
    if (!end || (size_t)(end - last_reason) - n >= sizeof ts)
        return now;
    memcpy(ts, last_reason + n, (size_t)(end - last_reason) - n);
    ts[(size_t)(end - last_reason) - n] = '\0';
    return cs_time_parse(ts, &t) && t <= now ? t : now;
}

/* How long a message's store reads may fail in a row before it fails: as
 * long as the retry schedule gives a message whose channel keeps failing
 * (send_attempts hand-overs, retry_base doubling up to retry_max, without
 * the jitter; about 2 hours by default). A shorter outage costs nothing. */
static cs_ms_t store_patience(const cs_sender_t *s)
{
    cs_ms_t total = 0, d = s->o.retry_base;
    for (int a = 1; a < s->o.max_attempts; a++) {
        if (d > s->o.retry_max)
            d = s->o.retry_max;
        total += d;
        d *= 2;
    }
    return total;
}

/* Returns false when the message was left alone (its claim ran out): not
 * sent, no outcome; it goes back to the queue if the claim is still ours. */
static bool handle(cs_sender_t *s, const cs_outmsg_t *m, cs_out_result_t *res, char *reason,
                   size_t rsize, char *ref, size_t refsize, move_buf_t *mv)
{
    bool handed = true;
    cs_ms_t now = cs_clock_now(cs_engine_clock(s->engine));
    ctx_task_t c;
    memset(&c, 0, sizeof c);
    c.m = m;
    c.policy = &s->policy;
    c.now = now;
    char *subject = NULL, *html = NULL, *text = NULL;
    cs_err_t err;
    cs_err_clear(&err);
    res->id = m->id;
    res->at = now;
    res->reason = NULL;
    res->provider_ref = NULL;
    res->untried = false;
    res->lease_until = 0;
    res->move = false;
    res->recipient = NULL;
    reason[0] = ref[0] = '\0';
    cs_transport_t *t = (unsigned)m->channel < CS_OUT__CHANNELS ? s->o.transports[m->channel]
                                                                : NULL;
    if (!t && !m->fallback[0]) {
        res->status = CS_OUT_FAILED;
        snprintf(reason, rsize, "channel_off");
        res->reason = reason;
        atomic_fetch_add(&s->st_failed, 1);
        return handed;
    }
    /* (a store or memory failure before the hand-over is untried: only a
     * hand-over counts against send_attempts) */
    if (read_ctx(s, &c)) {
        /* the store will be back; but a read that keeps failing (a row
         * that cannot be decoded) fails the message once it has failed
         * for store_patience, as one whose channel keeps failing does */
        cs_ms_t since = store_failing_since(m->reason, now);
        const char *why = c.err.msg; /* (the store's own errors say "store: ") */
        if (strncmp(why, "store: ", 7) == 0)
            why += 7;
        if (now - since >= store_patience(s)) {
            res->status = CS_OUT_FAILED;
            snprintf(reason, rsize, "store: %.200s", why);
            atomic_fetch_add(&s->st_failed, 1);
        } else {
            char ts[40];
            res->status = CS_OUT_QUEUED;
            res->next_at = backoff(s, 1, now);
            res->untried = true;
            snprintf(reason, rsize, "%s%s: %.200s", STORE_SINCE,
                     cs_time_format(since, ts, sizeof ts), why);
        }
        res->reason = reason;
        goto out; /* (what was read before the failure is released there) */
    }
    /* a message to the customer about an order that an edit gave to
     * another customer since (docs/events.md) would show them that
     * customer's order: not handed over, on no channel, and no attempt.
     * (A webhook goes to the shop's own system, whose body names the
     * order's customer: it goes.) */
    if (m->channel < CS_CHANNEL__COUNT && m->order_id[0] &&
        cs_journeys_order_given_away(c.order, m->customer_id)) {
        res->status = CS_OUT_SKIPPED;
        res->untried = true;
        snprintf(reason, rsize, "%s", CS_ORDER_GIVEN_AWAY);
        res->reason = reason;
        atomic_fetch_add(&s->st_suppressed, 1);
        goto out;
    }
    if (!t) {
        /* its channel was switched off since it was queued (a restart
         * without that channel's settings): the next one its send listed,
         * as for a consent withdrawn, else it fails */
        if (fall_back(s, m, &c, "channel_off", now, res, reason, rsize, mv))
            goto out;
        res->status = CS_OUT_FAILED;
        snprintf(reason, rsize, "channel_off");
        res->reason = reason;
        atomic_fetch_add(&s->st_failed, 1);
        goto out;
    }
    if (m->channel == CS_OUT_WEBHOOK) {
        if (!(text = webhook_body(m, &c))) {
            res->status = CS_OUT_QUEUED;
            res->next_at = backoff(s, 1, now);
            res->untried = true;
            snprintf(reason, rsize, "out of memory");
            res->reason = reason;
            goto out;
        }
        cs_mail_t hook = { .channel = CS_CHANNEL_EMAIL, .to = m->recipient,
                           .subject = m->template_name, .text = text,
                           .idem_key = m->idem_key, .date = now };
        cs_send_result_t sr;
        if (!(handed = claim_holds(s, m)))
            goto out;
        cs_transport_send(t, &hook, &sr);
        record_send(s, m, &sr, res, reason, rsize, ref, refsize);
        goto out;
    }
    const char *to = m->recipient;
    const char *why = c.withdrawn ? "no_longer_at_risk" : suppressed(m, &c, now, &to);
    if (why && fall_back(s, m, &c, why, now, res, reason, rsize, mv))
        goto out;
    if (why) {
        res->status = CS_OUT_SKIPPED;
        snprintf(reason, rsize, "%s", why);
        res->reason = reason;
        atomic_fetch_add(&s->st_suppressed, 1);
        goto out;
    }
    cs_policy_result_t hold = held(s, m, &c, now);
    if (hold.verdict == CS_VERDICT_SKIP) {
        res->status = CS_OUT_SKIPPED;
        snprintf(reason, rsize, "%s_before_send", hold.reason);
        res->reason = reason;
        atomic_fetch_add(&s->st_suppressed, 1);
        goto out;
    }
    if (hold.verdict == CS_VERDICT_DEFER) { /* looked at again; no attempt */
        res->status = CS_OUT_QUEUED;
        res->next_at = hold.until;
        res->untried = true;
        snprintf(reason, rsize, "%s", hold.reason);
        res->reason = reason;
        goto out;
    }
    cs_ms_t end;
    if (quiet_now(s, m, c.customer, now, &end)) {
        res->status = CS_OUT_QUEUED;
        res->next_at = end;
        res->untried = true;
        snprintf(reason, rsize, "quiet_hours");
        res->reason = reason;
        goto out;
    }
    const char *lang = cs_locale_lang(m->locale[0] ? m->locale : s->default_locale);
    json_t *ctx = message_ctx(s, m, &c, lang);
    cs_rc rc = ctx ? CS_OK : cs_errf(&err, CS_ERR_NOMEM, "out of memory building the context");
    const char *tlang = template_lang(s, m->template_name, lang,
                                      m->channel == CS_CHANNEL_EMAIL);
    if (!rc && m->channel == CS_CHANNEL_EMAIL) {
        if (!(rc = render_part(s, m->template_name, tlang, "subject", false, ctx, &subject,
                               &err)) &&
            !(rc = render_part(s, m->template_name, tlang, "txt", false, ctx, &text, &err)) &&
            !(rc = add_footer(s, tlang, ctx, &text, &err))) {
            rc = render_part(s, m->template_name, tlang, "html", true, ctx, &html, &err);
            if (rc == CS_ERR_NOTFOUND) /* a text-only email is fine */
                rc = CS_OK;
        }
    } else if (!rc) {
        rc = render_part(s, m->template_name, tlang, "sms", false, ctx, &text, &err);
        if (rc == CS_ERR_NOTFOUND)
            rc = render_part(s, m->template_name, tlang, "txt", false, ctx, &text, &err);
    }
    char unsub[1200] = "";
    json_t *u = json_object_get(json_object_get(ctx, "links"), "unsubscribe");
    if (json_is_string(u))
        cs_strlcpy(unsub, json_string_value(u), sizeof unsub);
    json_decref(ctx);
    if (rc) {
        res->status = CS_OUT_FAILED;
        snprintf(reason, rsize, "render: %.230s", err.msg);
        res->reason = reason;
        atomic_fetch_add(&s->st_render, 1);
        atomic_fetch_add(&s->st_failed, 1);
        goto out;
    }
    cs_mail_t mail = {
        .channel = (cs_channel_t)m->channel,
        .to = to,
        .to_name = json_string_value(json_object_get(c.customer, "name")),
        .subject = subject,
        .html = html,
        .text = text,
        .idem_key = m->idem_key,
        .unsubscribe_url = unsub[0] && m->cls != CS_CLASS_TRANSACTIONAL ? unsub : NULL,
        .date = now,
    };
    cs_send_result_t sr;
    rate_wait(s, m->channel);
    if (!(handed = claim_holds(s, m)))
        goto out;
    cs_transport_send(t, &mail, &sr);
    record_send(s, m, &sr, res, reason, rsize, ref, refsize);
    /* the address it went to, for the messages view and a retry */
    cs_strlcpy(mv->to, to, sizeof mv->to);
    res->recipient = mv->to;
out:
    cs_free(subject);
    cs_free(html);
    cs_free(text);
    json_decref(c.customer);
    json_decref(c.order);
    json_decref(c.shipment);
    return handed;
}

/* Claim i goes back to the queue at now, untried: its attempt and its
 * last reason given back, and only while the claim is still this one. */
static void give_back(claim_task_t *t, size_t i, cs_ms_t now)
{
    cs_out_result_t *r = &t->res[i];
    r->id = t->msgs[i].id;
    r->status = CS_OUT_QUEUED;
    r->next_at = now;
    r->sent_at = 0;
    r->reason = t->msgs[i].reason[0] ? t->msgs[i].reason : NULL;
    r->provider_ref = NULL;
    r->untried = true;
    r->lease_until = t->msgs[i].lease_until;
    r->move = false;
    r->recipient = NULL;
}

/* Recording claim i's outcome failed (the store is down): the batch stops
 * there, and the claims after it, not handed over, go back to the queue at
 * once with their attempts (left claimed, they waited for their lease and
 * then counted one more). So does claim i when it was not handed over
 * either; one that was stays claimed, and is handed over again with the
 * same key when its lease runs out. When the store fails this write too,
 * they wait for their lease as before. */
static void give_back_rest(cs_sender_t *s, claim_task_t *t, size_t i)
{
    cs_ms_t now = cs_clock_now(cs_engine_clock(s->engine));
    size_t from = t->res[i].status == CS_OUT_QUEUED && t->res[i].untried ? i : i + 1;
    for (size_t j = i + 1; j < t->n; j++)
        give_back(t, j, now);
    if (from >= t->n)
        return;
    t->rec_from = from;
    t->rec_to = t->n;
    if (cs_engine_with_writer(s->engine, record_fn, t) != CS_OK)
        cs_warn("sender: %zu claimed messages wait for their lease: %s", t->n - from,
                t->err.msg);
}

cs_rc cs_sender_run_once(cs_sender_t *s, size_t *handled, cs_err_t *err)
{
    claim_task_t *t = cs_calloc(1, sizeof *t);
    *handled = 0;
    if (!t)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    t->s = s;
    cs_err_clear(&t->err);
    cs_rc rc = cs_engine_with_writer(s->engine, claim_fn, t);
    if (rc) {
        if (err)
            *err = t->err;
        cs_free(t);
        return rc;
    }
    /* each outcome is recorded as soon as it is known: a crash can then
     * repeat at most the one hand-over that was in flight */
    for (size_t i = 0; i < t->n && !rc; i++) {
        if (!handle(s, &t->msgs[i], &t->res[i], t->reasons[i], sizeof t->reasons[i],
                    t->refs[i], sizeof t->refs[i], &t->moves[i])) {
            /* its claim ran out: not ours to send; back to the queue with
             * its attempt given back, unless another claim has it now */
            give_back(t, i, cs_clock_now(cs_engine_clock(s->engine)));
        }
        t->rec_from = i;
        t->rec_to = i + 1;
        if ((rc = cs_engine_with_writer(s->engine, record_fn, t)) && err)
            *err = t->err;
        if (!rc && t->applied)
            cs_engine_poke(s->engine); /* the journeys read the new statuses */
        if (rc)
            give_back_rest(s, t, i);
    }
    *handled = t->n;
    cs_free(t);
    return rc;
}

/* ---- the thread ---- */

typedef struct next_task {
    cs_ms_t at;
    cs_err_t err;
} next_task_t;

static cs_rc next_fn(cs_store_t *st, void *arg)
{
    next_task_t *n = arg;
    return cs_store_call(st, outbox_next, &n->at, &n->err);
}

static void *sender_main(void *arg)
{
    cs_sender_t *s = arg;
    cs_thread_name("cs-sender");
    for (;;) {
        pthread_mutex_lock(&s->mu);
        bool stop = s->stop;
        s->poked = false;
        pthread_mutex_unlock(&s->mu);
        if (stop)
            break;
        size_t n = 0;
        cs_err_t err;
        cs_err_clear(&err);
        if (cs_sender_run_once(s, &n, &err) != CS_OK)
            cs_warn("sender: %s", err.msg);
        if (n > 0)
            continue;
        /* nothing due: sleep until the next queued message, a poke, or 1 s */
        next_task_t nt = { 0, { 0 } };
        cs_ms_t wait = 1000;
        if (cs_engine_with_writer(s->engine, next_fn, &nt) == CS_OK && nt.at) {
            cs_ms_t d = nt.at - cs_clock_now(cs_engine_clock(s->engine));
            if (d < wait)
                wait = d < 1 ? 1 : d;
        }
        struct timespec ts;
        cs_deadline_in(&ts, wait);
        pthread_mutex_lock(&s->mu);
        while (!s->stop && !s->poked) {
            if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT)
                break;
        }
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

typedef struct release_task {
    cs_sender_t *s;
    int64_t n;
    cs_err_t err;
} release_task_t;

static cs_rc release_fn(cs_store_t *st, void *arg)
{
    release_task_t *r = arg;
    cs_rc rc = cs_store_begin(st, &r->err);
    if (rc)
        return rc;
    if ((rc = cs_store_call(st, outbox_release, cs_clock_now(cs_engine_clock(r->s->engine)),
                            &r->n, &r->err)) ||
        (rc = cs_store_commit(st, &r->err)))
        cs_store_rollback(st);
    return rc;
}

cs_rc cs_sender_start(cs_sender_t *s, cs_err_t *err)
{
    /* messages in hand when this node last stopped are sent again (same key) */
    release_task_t rel = { s, 0, { 0 } };
    if (cs_engine_with_writer(s->engine, release_fn, &rel) != CS_OK) {
        if (err)
            *err = rel.err;
        return rel.err.rc ? rel.err.rc : CS_ERR_STORE;
    }
    if (rel.n > 0)
        cs_info("sender: %lld messages were being sent when the daemon stopped; sending them "
                "again with the same Message-ID / idempotency key",
                (long long)rel.n);
    if (pthread_create(&s->thread, NULL, sender_main, s) != 0)
        return cs_errf(err, CS_ERR_INTERNAL, "cannot start the sender thread");
    s->started = true;
    return CS_OK;
}

void cs_sender_free(cs_sender_t *s)
{
    if (!s)
        return;
    if (s->started) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    for (int i = 0; i < CS_OUT__CHANNELS; i++)
        cs_transport_close(&s->o.transports[i]);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    cs_free(s->shop_name);
    cs_free(s->public_url);
    cs_free(s->link_secret);
    cs_free(s->support_email);
    cs_free(s);
}

/* ---- start-up checks ---- */

static const char *const sample_customer =
    "{\"id\":\"c-sample\",\"name\":\"Anna M\u00fcller\",\"email\":\"anna@example.de\","
    "\"phone\":\"+4915112345678\",\"locale\":\"de\",\"timezone\":\"Europe/Berlin\","
    "\"orders_count\":1,\"unsubscribed\":false,\"consents\":{}}";
static const char *const sample_order =
    "{\"id\":\"10001\",\"customer_id\":\"c-sample\",\"currency\":\"EUR\",\"total\":129.9,"
    "\"subtotal\":125.0,\"shipping\":4.9,\"discount\":0,\"status\":\"placed\","
    "\"placed_at\":\"2026-11-23T10:00:00Z\",\"promised_from\":\"2026-11-25T00:00:00Z\","
    "\"promised_to\":\"2026-11-27T00:00:00Z\",\"items_count\":2,\"items\":["
    "{\"sku\":\"ZELT-2\",\"name\":\"Trekkingzelt 2P\",\"unit_price\":99.0,\"quantity\":1,"
    "\"discount\":0},{\"sku\":\"HERING\",\"name\":\"Heringe\",\"unit_price\":13.0,"
    "\"quantity\":2,\"discount\":0}]}";
static const char *const sample_shipment =
    "{\"id\":\"s-1\",\"carrier\":\"dhl\",\"tracking_number\":\"00340434161234567890\","
    "\"status\":\"in_transit\",\"delivered_at\":\"2026-11-26T13:05:00Z\"}";
/* the order's second parcel, for the check with several */
static const char *const sample_shipment_2 =
    "{\"id\":\"s-2\",\"carrier\":\"dpd\",\"tracking_number\":\"01906000000002\","
    "\"status\":\"info_received\",\"delivered_at\":null}";

typedef struct tcheck {
    cs_sender_t *s;
    const cs_journey_t *j;
    const cs_instr_t *in;
    cs_err_t *err;
    cs_rc rc;
} tcheck_t;

static void check_one(tcheck_t *c, const char *lang, const char *const *parts, size_t nparts,
                      json_t *ctx)
{
    for (size_t p = 0; p < nparts && !c->rc; p++) {
        char name[CS_JID_MAX + 32];
        bool optional = parts[p][0] == '?';
        const char *part = optional ? parts[p] + 1 : parts[p];
        if (strcmp(part, "sms|txt") == 0) {
            snprintf(name, sizeof name, "%s.%s.sms", c->in->text, lang);
            if (!cs_tplset_has(c->s->o.templates, name))
                snprintf(name, sizeof name, "%s.%s.txt", c->in->text, lang);
        } else {
            snprintf(name, sizeof name, "%s.%s.%s", c->in->text, lang, part);
        }
        if (!cs_tplset_has(c->s->o.templates, name)) {
            if (!optional)
                c->rc = cs_errf(c->err, CS_ERR_CONFIG, "%s:%d: template %s is missing",
                                c->j->file, c->in->line, name);
            continue;
        }
        cs_tpl_opts_t to = { .escape = strstr(name, ".html") ? CS_TPL_ESCAPE_HTML
                                                             : CS_TPL_ESCAPE_NONE,
                             .strict = true };
        cs_buf_t b;
        cs_err_t e;
        cs_buf_init(&b, CS_TPL_OUTPUT_MAX);
        if (cs_tplset_render(c->s->o.templates, name, ctx, &to, &b, &e))
            c->rc = cs_errf(c->err, CS_ERR_CONFIG, "%s:%d: %s", c->j->file, c->in->line, e.msg);
        cs_buf_free(&b);
    }
}

cs_rc cs_sender_check_templates(cs_sender_t *s, const cs_journeys_t *js, cs_err_t *err)
{
    static const char *const email_parts[] = { "subject", "txt", "?html" };
    static const char *const short_parts[] = { "sms|txt" };
    static const char *const langs[] = { "de", "en" };
    ctx_task_t c;
    memset(&c, 0, sizeof c);
    c.customer = json_loads(sample_customer, 0, NULL);
    c.order = json_loads(sample_order, 0, NULL);
    c.shipment = json_loads(sample_shipment, 0, NULL);
    /* a sample code, so templates that show one can be checked */
    c.has_discount = true;
    cs_strlcpy(c.discount.code, "DANKE-7KQ4M2XP", sizeof c.discount.code);
    c.discount.kind = CS_DISCOUNT_PERCENT;
    c.discount.value = 10;
    c.discount.expires_at = 1798761600000LL;
    /* and a promise that moved, so delay notices can be checked */
    c.has_promise = true;
    cs_strlcpy(c.promise.order_id, "10001", sizeof c.promise.order_id);
    c.promise.first_from = c.promise.first_to = 1772575200000LL; /* 2026-03-04 */
    c.promise.from = 1772748000000LL;
    c.promise.to = c.promise.point = 1772834400000LL;
    cs_strlcpy(c.promise.reason, "customs", sizeof c.promise.reason);
    cs_strlcpy(c.promise.risk_reason, "customs", sizeof c.promise.risk_reason);
    c.promise.at_risk = true;
    c.promise.late_days = 2;
    cs_outmsg_t m;
    memset(&m, 0, sizeof m);
    cs_strlcpy(m.customer_id, "c-sample", sizeof m.customer_id);
    cs_strlcpy(m.order_id, "10001", sizeof m.order_id);
    c.m = &m;
    tcheck_t tc = { s, NULL, NULL, err, CS_OK };
    /* an order in one parcel, then in two: both sides of a template's
     * {{#order.several_parcels}} are checked */
    json_t *parcels = json_pack("[O]", c.shipment);
    if (!c.customer || !c.order || !c.shipment || !parcels ||
        json_object_set(c.order, "shipments", parcels))
        tc.rc = cs_errf(err, CS_ERR_NOMEM, "out of memory");
    for (size_t v = 0; v < 4 && !tc.rc; v++) {
        size_t l = v % 2;
        if (v == 2 && json_array_append_new(parcels, json_loads(sample_shipment_2, 0, NULL)))
            tc.rc = cs_errf(err, CS_ERR_NOMEM, "out of memory");
        json_t *ctx = tc.rc ? NULL : message_ctx(s, &m, &c, langs[l]);
        /* the email text parts' footer, when there is one */
        char footer[32];
        snprintf(footer, sizeof footer, "footer.%s.txt", langs[l]);
        if (ctx && cs_tplset_has(s->o.templates, footer)) {
            cs_tpl_opts_t to = { .escape = CS_TPL_ESCAPE_NONE, .strict = true };
            cs_buf_t b;
            cs_err_t e;
            cs_buf_init(&b, CS_TPL_OUTPUT_MAX);
            if (cs_tplset_render(s->o.templates, footer, ctx, &to, &b, &e))
                tc.rc = cs_errf(err, CS_ERR_CONFIG, "template %s: %s", footer, e.msg);
            cs_buf_free(&b);
        }
        for (size_t i = 0; ctx && i < cs_journeys_count(js) && !tc.rc; i++) {
            tc.j = cs_journeys_at(js, i);
            for (int k = 0; k < tc.j->n && !tc.rc; k++) {
                tc.in = &tc.j->prog[k];
                if (tc.in->op != CS_OP_SEND)
                    continue;
                for (int ch = 0; ch < tc.in->nchannels && !tc.rc; ch++) {
                    if (tc.in->channels[ch] == CS_CHANNEL_EMAIL)
                        check_one(&tc, langs[l], email_parts, 3, ctx);
                    else
                        check_one(&tc, langs[l], short_parts, 1, ctx);
                }
            }
        }
        json_decref(ctx);
    }
    json_decref(parcels);
    json_decref(c.customer);
    json_decref(c.order);
    json_decref(c.shipment);
    return tc.rc;
}
