/*
 * render.c -- the outbox worker's rendering (see sender_int.h): a
 * message's context as the templates see it, read from the store at the
 * hand-over; its parts (subject, text, HTML, SMS) in the customer's
 * language; and the start-up check that renders every template a journey
 * sends against a sample.
 */
#include "sender_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../journey/journey.h"
#include "../lib/cs_json.h"
#include "../template/locale.h"
#include "../tracking/carriers.h"
#include "../tracking/promise.h"
#include "../tracking/watch.h"

/* ---- rendering ---- */


/* Is the event at seq the order watch's delivery_at_risk signal for a
 * parcel still meant to arrive (not one on its way back), and for which
 * risk, or a scan that took a parcel out for delivery? */
typedef struct risk_probe {
    int64_t seq;
    bool is_delay;
    char event_id[CS_ID_MAX + 1]; /* the signal's */
    bool out_for_delivery;
    bool announcement; /* the parcel's shipment.created */
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
        cs_strlcpy(r->event_id, ev->event_id, sizeof r->event_id);
    }
    r->out_for_delivery = ev->type == CS_EV_TRACKING_EVENT &&
                          ev->u.scan.status == CS_TRACK_OUT_FOR_DELIVERY;
    r->announcement = ev->type == CS_EV_SHIPMENT_CREATED;
    cs_event_free(&ev);
    return CS_OK;
}

/* Has every parcel of the list (an order's, the cancelled ones left out)
 * arrived -- delivered, or back at the shop -- so that none is on its way? */
static bool none_on_its_way(json_t *parcels)
{
    size_t i;
    json_t *p;
    if (!json_is_array(parcels))
        return false;
    json_array_foreach(parcels, i, p) {
        const char *st = json_string_value(json_object_get(p, "status"));
        if (!st || (strcmp(st, "delivered") != 0 && strcmp(st, "returned_to_sender") != 0))
            return false;
    }
    return true;
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
    /* and, for the same hold, whether another of the customer's orders is
     * late (the order watch has it at risk) */
    if (!rc && cs_policy_is_marketing((cs_msg_class_t)c->m->cls))
        rc = cs_store_call(st, other_order_late, c->m->customer_id, c->m->order_id,
                           &c->other_late, &c->err);
    if (rc)
        return rc;
    /* consent, the address and the channels to fall back to: from the
     * customer's row just read, not read again */
    if (c->m->channel < CS_CHANNEL__COUNT && c->customer) {
        cs_contact_from_json(c->customer, &c->who);
        c->has_contact = true;
        /* a retry goes to the address its hand-over went to (sender.c,
         * suppressed): when that is no longer the customer's, its own
         * bounces are the ones that stop it */
        const char *now_addr =
            c->m->channel == CS_CHANNEL_EMAIL ? c->who.email : c->who.phone;
        c->to_old = c->m->handed_at && c->m->recipient[0] && now_addr[0] &&
                    strcmp(c->m->recipient, now_addr) != 0;
        if (c->to_old &&
            (rc = cs_store_call(st, address_bounced, c->m->customer_id, c->m->channel,
                                c->m->recipient, c->m->created_at, &c->old_bounced, &c->err)))
            return rc;
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
     * no longer has the order at risk (for an order the watch ever found
     * at risk). Nor, still at risk, one whose signal is not the watch's
     * latest for the order (it raised another since, for a new risk):
     * that one's notice tells the same state, as both are written when
     * they are sent, and the customer would read it twice. Likewise "your
     * parcel arrives today" held back must not come once the parcel has
     * been delivered, failed to be, waits at a pickup point or went back
     * to the depot: for a transactional message (the notice; a shop's
     * journey started by that scan that waits for the delivery and then
     * sends is of another class) of a run started by the scan that took
     * it out for delivery, when its parcel has moved on since. And "your order is
     * on its way" held back must not come once nothing of the order is:
     * for a transactional message (the shipping notice; a journey's own
     * message after waiting for the delivery is of another class) of a
     * run started by a parcel's announcement, when every parcel of the
     * order has been delivered or went back to the shop (or the shop
     * cancelled them). Only then is the trigger read, once for all. */
    const char *st_now = json_string_value(json_object_get(c->shipment, "status"));
    bool risk_seen = c->has_promise && c->promise.risk_events > 0;
    bool delay_over = risk_seen && (c->promise.closed || !c->promise.at_risk);
    bool moved_on = c->m->cls == CS_CLASS_TRANSACTIONAL && st_now &&
                    strcmp(st_now, "out_for_delivery") != 0;
    bool arrived = c->m->cls == CS_CLASS_TRANSACTIONAL && c->order && c->shipment &&
                   none_on_its_way(json_object_get(c->order, "shipments"));
    if (about && (risk_seen || moved_on || arrived)) {
        risk_probe_t r = { .seq = about };
        int64_t examined;
        rc = cs_store_call(st, events_after, about - 1, 1, 0, probe_fn, &r, &examined, &c->err);
        if (rc)
            return rc;
        c->withdrawn = delay_over && r.is_delay;
        if (risk_seen && !delay_over && r.is_delay) {
            char latest[64];
            cs_watch_risk_event_id(c->m->order_id, c->promise.risk_events, latest,
                                   sizeof latest);
            c->superseded = strcmp(r.event_id, latest) != 0;
        }
        c->delivery_over = moved_on && r.out_for_delivery;
        c->not_on_its_way = arrived && r.announcement;
    }
    return CS_OK;
}

cs_rc cs__sender_read_ctx(cs_sender_t *s, ctx_task_t *c)
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
    /* the carrier's last word on an incident: the recipient refused it
     * (a parcel going back for that is no address problem) */
    json_object_set_new(so, "refused", json_boolean(json_is_true(json_object_get(sh, "refused"))));
    return so;
}

/* The template context of a message: formatted for the customer's locale. */
json_t *cs__sender_message_ctx(cs_sender_t *s, const cs_outmsg_t *m, ctx_task_t *c,
                               const char *lang)
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
    /* dates in the order of the customer's region (en-US: the month first) */
    const char *dloc = cs_locale_for(lang, m->locale[0] ? m->locale : s->default_locale);
    json_t *ctx = json_pack("{s:s,s:{s:s,s:s,s:s},s:{s:s?,s:s?,s:s?}}", "locale", lang, "shop",
                            "name", s->shop_name, "url", s->public_url, "support_email",
                            s->support_email, "customer", "name", name, "first_name",
                            first[0] ? first : NULL, "email",
                            json_string_value(json_object_get(cu, "email")));
    if (!ctx)
        return NULL;
    json_object_set_new(ctx, "first_purchase", json_boolean(cs_first_purchase(cu, o)));
    /* (no unsubscribe link in the footers of an order's own mail, nor of
     * a delay or problem notice, which an unsubscribe does not stop: as
     * no List-Unsubscribe header) */
    json_object_set_new(ctx, "transactional", json_boolean(m->cls == CS_CLASS_TRANSACTIONAL));
    json_object_set_new(ctx, "unsubscribable",
                        json_boolean(cs_policy_unsubscribable((cs_msg_class_t)m->cls)));
    if (o) {
        const char *cur = json_string_value(json_object_get(o, "currency"));
        json_t *oo = json_pack("{s:s?,s:s?}", "id", json_string_value(json_object_get(o, "id")),
                               "status", json_string_value(json_object_get(o, "status")));
        set_money(oo, "total", json_object_get(o, "total"), cur, lang);
        set_money(oo, "subtotal", json_object_get(o, "subtotal"), cur, lang);
        set_money(oo, "shipping", json_object_get(o, "shipping"), cur, lang);
        set_money(oo, "discount", json_object_get(o, "discount"), cur, lang);
        set_money(oo, "tax", json_object_get(o, "tax"), cur, lang);
        /* whether to list them between the items and the total, which
         * otherwise does not add up for the customer */
        json_object_set_new(oo, "paid_shipping",
                            json_boolean(minor(json_object_get(o, "shipping")) > 0));
        json_object_set_new(oo, "discounted",
                            json_boolean(minor(json_object_get(o, "discount")) > 0));
        /* a tax added to the prices (a sales tax), not one they include
         * (German VAT, which a shop may name with a total without it) */
        int64_t tax = minor(json_object_get(o, "tax"));
        json_object_set_new(oo, "taxed",
                            json_boolean(tax > 0 && minor(json_object_get(o, "subtotal")) +
                                                        minor(json_object_get(o, "shipping")) +
                                                        tax -
                                                        minor(json_object_get(o, "discount")) ==
                                                    minor(json_object_get(o, "total"))));
        set_date(oo, "placed", json_object_get(o, "placed_at"), tz, CS_DATE_LONG, dloc);
        /* the shop's promise, while its last day is still to come: one
         * already past (an order shipped late, an order that reached us
         * late) is not told as what we expect, nor one the order watch
         * has at risk with a window ending after it (the delay notice
         * sent beside it tells that window); templates then fall back
         * to the watch's window (promise.window) */
        cs_ms_t pto;
        const char *pto_s = json_string_value(json_object_get(o, "promised_to"));
        bool overtaken = pto_s && c->has_promise && c->promise.at_risk && c->promise.to &&
                         cs_time_parse(pto_s, &pto) &&
                         cs_tz_day(stz, c->promise.to) > cs_tz_date_day(stz, pto);
        if (pto_s && !overtaken && cs_time_parse(pto_s, &pto) &&
            cs_tz_date_day(stz, pto) >= cs_tz_day(stz, now)) {
            set_day(oo, "promised_from", json_object_get(o, "promised_from"), stz, tz, dloc);
            set_day(oo, "promised_to", json_object_get(o, "promised_to"), stz, tz, dloc);
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
            json_array_append_new(parcels, parcel_ctx(s, it, tz, dloc));
        json_object_set_new(oo, "shipments", parcels);
        json_object_set_new(oo, "shipments_count",
                            json_integer((json_int_t)json_array_size(parcels)));
        json_object_set_new(oo, "several_parcels", json_boolean(json_array_size(parcels) > 1));
        json_object_set_new(ctx, "order", oo);
    }
    if (sh)
        json_object_set_new(ctx, "shipment", parcel_ctx(s, sh, tz, dloc));
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
        /* the last day the code holds all day, not the day it ends on (at
         * the hour it was issued: a code used that evening was refused) */
        json_object_set_new(dj, "expires", json_string(cs_fmt_valid_until(d->expires_at, tz, dloc,
                                                                          b, sizeof b)));
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
                               cs_fmt_window(stz, tz, now, p->from, p->to, dloc, w, sizeof w),
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
                                                                         CS_DATE_DAY, dloc, b,
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
            /* alone, for a WhatsApp URL button approved as .../t/{{1}} */
            json_object_set_new(links, "tracking_token", json_string(tok));
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
const char *cs__sender_template_lang(const cs_sender_t *s, const char *tmpl, const char *lang,
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
cs_rc cs__sender_render_part(cs_sender_t *s, const char *tmpl, const char *lang,
                             const char *part, bool html, json_t *ctx, char **out,
                             cs_err_t *err)
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

/* An SMS goes in GSM-7, 160 characters a segment, while every character
 * of it is one of that alphabet; one that is not -- the no-break spaces a
 * German amount (U+00A0) or percentage (U+202F) is written with --
 * sends the whole text as UCS-2, 70 a segment: two or three paid
 * messages instead of one. A phone wraps an SMS where it likes anyway, so
 * they go as plain spaces there. */
void cs__sender_sms_spaces(char *text)
{
    char *w = text;
    for (const char *p = text; *p;) {
        if ((unsigned char)p[0] == 0xC2 && (unsigned char)p[1] == 0xA0) {
            *w++ = ' ';
            p += 2;
        } else if ((unsigned char)p[0] == 0xE2 && (unsigned char)p[1] == 0x80 &&
                   (unsigned char)p[2] == 0xAF) {
            *w++ = ' ';
            p += 3;
        } else {
            *w++ = *p++;
        }
    }
    *w = '\0';
}

/* An email's text part ends with the shop's footer (footer.<lang>.txt,
 * when the templates have one) below a "-- " line, as its HTML part ends
 * with its own: the support address, the unsubscribe link. It is added
 * here, not in the .txt, because the .txt is also the SMS and WhatsApp
 * text of a template without a .sms, where it does not belong. */
cs_rc cs__sender_add_footer(cs_sender_t *s, const char *lang, json_t *ctx, char **text,
                            cs_err_t *err)
{
    char *footer = NULL, *out = NULL;
    cs_rc rc = cs__sender_render_part(s, "footer", lang, "txt", false, ctx, &footer, err);
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

/* a mapping's parameters fit the transport's message */
_Static_assert(CS_WA_BODY_MAX <= CS_WA_MSG_BODY_MAX && CS_WA_BUTTONS_MAX <= CS_WA_MSG_BUTTONS_MAX,
               "wamap.h and channel.h disagree on a WhatsApp template's parameters");

/* One parameter of a WhatsApp template: rendered, then made a text the
 * Cloud API takes -- no line breaks or tabs, no run of spaces (it refuses
 * them in a parameter), and not empty (it refuses that too). */
static cs_rc render_wa_param(cs_sender_t *s, const cs_wa_tpl_t *t, const cs_wa_param_t *p,
                             const char *what, json_t *ctx, char **out, cs_err_t *err)
{
    char name[CS_WA_NAME_MAX];
    cs_err_t e;
    *out = NULL;
    cs_wa_param_name(t, p, name, sizeof name);
    cs_tpl_opts_t to = { .escape = CS_TPL_ESCAPE_NONE, .strict = true };
    cs_buf_t b;
    cs_buf_init(&b, CS_TPL_OUTPUT_MAX);
    cs_rc rc = cs_tplset_render(s->o.templates, name, ctx, &to, &b, &e);
    char *v = rc ? NULL : cs_buf_steal(&b, NULL);
    cs_buf_free(&b);
    if (rc)
        return cs_errf(err, rc, "%s:%d: %s: %s", t->file, p->line, what, e.msg);
    if (!v)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    size_t n = 0;
    for (const char *q = v; *q; q++) {
        char c = *q == '\n' || *q == '\r' || *q == '\t' ? ' ' : *q;
        if (c == ' ' && (n == 0 || v[n - 1] == ' '))
            continue;
        v[n++] = c;
    }
    while (n && v[n - 1] == ' ')
        n--;
    v[n] = '\0';
    if (!n) {
        cs_free(v);
        return cs_errf(err, CS_ERR_RULE,
                       "%s:%d: %s: rendered empty, which WhatsApp refuses (give a text for "
                       "when it is missing: {{^x}}...{{/x}})",
                       t->file, p->line, what);
    }
    *out = v;
    return CS_OK;
}

cs_rc cs__sender_render_wa(cs_sender_t *s, const cs_wa_tpl_t *t, json_t *ctx,
                           cs_wa_rendered_t *out, cs_err_t *err)
{
    memset(out, 0, sizeof *out);
    out->msg.name = t->name;
    out->msg.language = t->language;
    out->msg.file = t->file;
    cs_rc rc = CS_OK;
    char what[32];
    if (t->header.line && !(rc = render_wa_param(s, t, &t->header, "header", ctx,
                                                 &out->own[out->nown], err)))
        out->msg.header = out->own[out->nown++];
    for (int i = 0; !rc && i < t->nbody; i++) {
        snprintf(what, sizeof what, "body parameter %d", i + 1);
        if (!(rc = render_wa_param(s, t, &t->body[i], what, ctx, &out->own[out->nown], err)))
            out->msg.body[out->msg.nbody++] = out->own[out->nown++];
    }
    for (int i = 0; !rc && i < CS_WA_BUTTONS_MAX; i++) {
        if (!t->button[i].line)
            continue;
        snprintf(what, sizeof what, "button %d", i);
        if (!(rc = render_wa_param(s, t, &t->button[i], what, ctx, &out->own[out->nown], err)))
            out->msg.button[i] = out->own[out->nown++];
    }
    if (rc)
        cs__sender_wa_free(out);
    return rc;
}

void cs__sender_wa_free(cs_wa_rendered_t *w)
{
    for (int i = 0; i < w->nown; i++)
        cs_free(w->own[i]);
    memset(w, 0, sizeof *w);
}

cs_rc cs_sender_load_whatsapp(cs_sender_t *s, const char *dir, size_t *count, cs_err_t *err)
{
    cs_wamap_free(&s->wamap);
    return cs_wamap_load_dir(s->o.templates, dir, &s->wamap, count, err);
}

/* ---- start-up checks ---- */

static const char *const sample_customer =
    "{\"id\":\"c-sample\",\"name\":\"Anna M\u00fcller\",\"email\":\"anna@example.de\","
    "\"phone\":\"+4915112345678\",\"locale\":\"de\",\"timezone\":\"Europe/Berlin\","
    "\"orders_count\":1,\"unsubscribed\":false,\"unsubscribed_channels\":[],\"consents\":{}}";
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
        json_t *ctx = tc.rc ? NULL : cs__sender_message_ctx(s, &m, &c, langs[l]);
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
                    /* and the approved WhatsApp template it is mapped to */
                    const cs_wa_tpl_t *wt =
                        tc.in->channels[ch] == CS_CHANNEL_WHATSAPP
                            ? cs_wamap_get(s->wamap, tc.in->text, langs[l])
                            : NULL;
                    cs_wa_rendered_t wr;
                    cs_err_t e;
                    if (!tc.rc && wt && cs__sender_render_wa(s, wt, ctx, &wr, &e))
                        tc.rc = cs_errf(err, CS_ERR_CONFIG, "%s:%d: %s", tc.j->file,
                                        tc.in->line, e.msg);
                    else if (!tc.rc && wt)
                        cs__sender_wa_free(&wr);
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
