/*
 * callbacks.c -- delivery status callbacks from the channels' providers,
 * recorded as message.status events:
 *
 *   POST /v1/callbacks/sms       Twilio-style status callback (form fields
 *                                MessageSid, MessageStatus, ErrorCode),
 *                                signed with X-Twilio-Signature (sms_token)
 *   GET  /v1/callbacks/whatsapp  Meta's subscription check (hub.verify_token)
 *   POST /v1/callbacks/whatsapp  WhatsApp Cloud API webhook (statuses, and
 *                                user_preferences: a number's customers
 *                                stopped the shop's marketing), signed with
 *                                X-Hub-Signature-256 (app secret)
 *   POST /v1/callbacks/email     a generic JSON form for email bounces and
 *                                complaints (an API key with write scope)
 *
 * A status names the provider's reference (the SMS sid, the wamid, the
 * Message-ID); the outbox knows which message that is (a message of
 * another channel is not the provider's to report on). The event gets a
 * deterministic id (provider, message, status), so a provider that retries
 * a callback records it once. The answer comes once the event is durable;
 * a provider that gets no 2xx sends it again. An SMS or WhatsApp status
 * may come before the sender has recorded the reference the provider gave
 * back for the hand-over: it is kept in the store (keep_fn) and becomes
 * the message's event when the reference is recorded (sender.c).
 */
#include "http_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/sender.h"
#include "../lib/cs_crypto.h"

#define CB_MAX 256 /* statuses in one email callback; WhatsApp's, recorded at a time */
/* A WhatsApp text refused outside the window: the detail names the cause
 * and the fix, with the message's template once it is known (record). */
#define WA_WINDOW_TEXT "outside WhatsApp's 24-hour window: map the template to an approved " \
                       "WhatsApp template"
#define WA_WINDOW_TPL "outside WhatsApp's 24-hour window: map template %.80s to an approved " \
                      "WhatsApp template"

typedef struct cb_status {
    char ref[160];            /* the provider's reference */
    cs_msg_status_t status;
    char detail[160];         /* "" = none */
    cs_ms_t at;               /* 0 = now */
    bool wa_window;           /* a WhatsApp text refused outside the 24-hour window */
    /* filled in by the lookup */
    bool found;
    bool other;               /* the reference is another channel's message */
    bool kept;                /* no message has it yet: kept for when one has */
    cs_outmsg_t m;
} cb_status_t;

/* A provider's detail, cut to fit between two characters: a cut inside
 * one is no longer text, and the event would go without its detail. */
static void set_detail(cb_status_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_detail(cb_status_t *c, const char *fmt, ...)
{
    char s[sizeof c->detail + 32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s, sizeof s, fmt, ap);
    va_end(ap);
    cs_strlcpy(c->detail, s, cs_utf8_clip(s, strlen(s), sizeof c->detail - 1) + 1);
}

/* ---- recording ---- */

typedef struct lookup {
    cb_status_t *st;
    size_t n;
    int channel; /* the provider's: a reference to another channel's message is not ours */
    cs_err_t err;
} lookup_t;

/* The message of c's reference: found (on the provider's channel), or
 * another channel's; CS_ERR_NOTFOUND when no message has it yet. */
static cs_rc look_up(cs_store_t *s, lookup_t *l, cb_status_t *c)
{
    cs_rc rc = cs_store_call(s, outbox_by_ref, c->ref, &c->m, &l->err);
    if (rc == CS_OK) {
        c->found = c->m.channel == l->channel;
        c->other = !c->found;
    }
    return rc;
}

static cs_rc lookup_fn(cs_store_t *s, void *arg)
{
    lookup_t *l = arg;
    for (size_t i = 0; i < l->n; i++) {
        cs_rc rc = look_up(s, l, &l->st[i]);
        if (rc && rc != CS_ERR_NOTFOUND)
            return rc;
    }
    return CS_OK;
}

typedef struct keep_task {
    lookup_t *l;
    cs_ms_t now;
} keep_task_t;

/* On the writer: the statuses whose reference no message had when they
 * were looked up. The sender records a reference (on the writer too)
 * right after the provider's answer to the hand-over, and a provider's
 * callback may come before that: looked up again here, a status either
 * finds its message now or is kept in the store, where the sender's
 * record of the reference finds it (sender.c). Between the two writer
 * transactions nothing is missed. */
static cs_rc keep_fn(cs_store_t *s, void *arg)
{
    keep_task_t *k = arg;
    lookup_t *l = k->l;
    cs_rc rc = cs_store_begin(s, &l->err);
    if (rc)
        return rc;
    for (size_t i = 0; i < l->n && !rc; i++) {
        cb_status_t *c = &l->st[i];
        if (c->found || c->other)
            continue;
        rc = look_up(s, l, c);
        if (rc == CS_ERR_NOTFOUND) {
            cs_early_status_t e;
            memset(&e, 0, sizeof e);
            e.channel = l->channel;
            cs_strlcpy(e.ref, c->ref, sizeof e.ref);
            e.status = (int)c->status;
            cs_strlcpy(e.detail, c->detail, sizeof e.detail);
            e.occurred_at = c->at ? c->at : k->now;
            e.received_at = k->now;
            rc = cs_store_call(s, early_status_put, &e, k->now - CS_EARLY_STATUS_KEEP_MS,
                               &l->err);
            c->kept = rc == CS_OK;
        }
    }
    if (rc || (rc = cs_store_commit(s, &l->err))) {
        cs_store_rollback(s);
        for (size_t i = 0; i < l->n; i++)
            l->st[i].kept = false;
    }
    return rc;
}

/* Ingest the k events of items (consumed when taken) and wait until they
 * are durable: CS_OK once every one is logged (or was already). */
static cs_rc ingest_events(cs_http_t *h, cs_ingest_item_t *items, size_t k, cs_err_t *err)
{
    cs_ingest_req_t req;
    memset(&req, 0, sizeof req);
    req.items = items;
    req.n = k;
    cs_rc rc = cs_engine_ingest(h->engine, &req);
    if (rc) {
        *err = req.err;
        for (size_t i = 0; i < k; i++) /* not taken: still ours */
            cs_event_free(&items[i].ev);
    }
    for (size_t i = 0; !rc && i < k; i++) {
        if (items[i].rc) {
            rc = items[i].rc;
            *err = items[i].err;
        }
    }
    return rc;
}

/* Record the statuses that belong to our messages on the provider's
 * channel; *unknown counts the others. With `keep`, a status whose
 * reference no message has yet is kept for the message that gets it
 * (see keep_fn) and counted in *kept, not *unknown. CS_OK once all
 * recorded and kept are durable. */
static cs_rc record(hreq_t *r, cs_channel_t channel, bool keep, cb_status_t *st, size_t n,
                    size_t *unknown, size_t *recorded, size_t *kept, cs_err_t *err)
{
    cs_http_t *h = r->h;
    lookup_t l = { st, n, (int)channel, { 0 } };
    *unknown = *recorded = *kept = 0;
    cs_rc rc = cs__http_with_reader(h, lookup_fn, &l, err);
    if (rc)
        return cs__http_task_err(rc, &l.err, err,
                                 "look up the messages of delivery statuses");
    cs_ms_t now = cs_clock_now(cs_engine_clock(h->engine));
    bool missing = false;
    for (size_t i = 0; i < n; i++)
        missing |= !st[i].found && !st[i].other;
    if (keep && missing) {
        keep_task_t kt = { &l, now };
        if ((rc = cs_engine_with_writer(h->engine, keep_fn, &kt))) {
            *err = l.err;
            if (err->rc == CS_OK)
                cs_errf(err, rc, "store: cannot keep a delivery status for later");
            return err->rc;
        }
    }
    cs_ingest_item_t *items = calloc(n ? n : 1, sizeof *items);
    if (!items)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        cb_status_t *c = &st[i];
        if (c->kept) {
            (*kept)++;
            continue;
        }
        if (!c->found) {
            (*unknown)++;
            continue;
        }
        if (c->wa_window) /* the message's template, named (after the code) */
            set_detail(c, "%.*s " WA_WINDOW_TPL, (int)strcspn(c->detail, " "), c->detail,
                       c->m.template_name);
        rc = cs_sender_status_event(&c->m, (int)c->status, c->detail, c->at ? c->at : now,
                                    &items[k].ev, err);
        if (!rc)
            k++;
    }
    if (!rc && k) {
        if (!(rc = ingest_events(h, items, k, err)))
            *recorded = k;
    } else {
        for (size_t i = 0; i < k; i++)
            cs_event_free(&items[i].ev);
    }
    free(items);
    return rc;
}

static enum MHD_Result answer(hreq_t *r, cs_rc rc, const cs_err_t *err, size_t recorded,
                              size_t unknown, size_t kept)
{
    if (rc)
        return cs__http_reply_err(r, err);
    if (unknown)
        cs_log(CS_LOG_DEBUG, "callbacks: %zu statuses for messages this store does not know",
               unknown);
    atomic_fetch_add(&r->h->callbacks_unknown, unknown);
    return cs__http_reply(r, 200, json_pack("{s:I,s:I,s:I}", "recorded", (json_int_t)recorded,
                                            "unknown", (json_int_t)unknown, "kept",
                                            (json_int_t)kept));
}

/* 403 naming the header or parameter that failed, as the tracking
 * webhooks' are. */
static enum MHD_Result forbidden(hreq_t *r, const char *field, const char *why)
{
    char msg[CS_ERR_MSG_MAX];
    snprintf(msg, sizeof msg, "%s: %s", field, why);
    return cs__http_reply(r, 403, json_pack("{s:{s:s,s:s,s:s}}", "error", "code", "forbidden",
                                            "field", field, "message", msg));
}

/* ---- SMS (Twilio-style) ---- */

static int kv_cmp(const void *a, const void *b)
{
    return strcmp(((const kv_t *)a)->k, ((const kv_t *)b)->k);
}


static enum MHD_Result sms_callback(hreq_t *r)
{
    cs_http_t *h = r->h;
    if (!h->opts.sms_token || !h->opts.sms_token[0])
        return cs__http_reply_code(r, 404, "not_found", "SMS status callbacks are off (sms_token is not set)");
    if (!h->opts.public_url || !h->opts.public_url[0])
        return cs__http_reply_code(r, 503, "not_configured",
                         "public_url must be set to verify X-Twilio-Signature");
    const char *ct = cs__http_header(r, "Content-Type");
    if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0) {
        cs_err_t err;
        cs_err_field(&err, CS_ERR_UNSUPPORTED, "Content-Type",
                     "Content-Type: expected application/x-www-form-urlencoded, got \"%.64s\"",
                     ct ? ct : "(none)");
        return cs__http_reply_err(r, &err);
    }
    /* the fields, decoded and sorted by name as the signature wants them */
    char *text = cs_strndup(r->body.data ? r->body.data : "", r->body.len);
    kv_t *f = NULL;
    size_t n = 0, max = 1;
    if (!text)
        return MHD_NO;
    /* every field: the signature covers them all (a body is at most 1 MiB) */
    for (const char *p = text; *p; p++)
        max += *p == '&';
    if (!(f = cs_calloc(max, sizeof *f))) {
        cs_free(text);
        return MHD_NO;
    }
    n = cs__http_form(text, f, max);
    qsort(f, n, sizeof *f, kv_cmp);
    cs_buf_t sig;
    cs_buf_init(&sig, strlen(h->opts.public_url) + r->body.len + 64);
    cs_buf_printf(&sig, "%s/v1/callbacks/sms", h->opts.public_url);
    for (size_t i = 0; i < n; i++)
        cs_buf_printf(&sig, "%s%s", f[i].k, f[i].v);
    uint8_t mac[CS_SHA1_LEN];
    char want[64];
    cs_hmac_sha1(h->opts.sms_token, strlen(h->opts.sms_token), sig.data ? sig.data : "", sig.len,
                 mac);
    size_t wl = cs_base64(mac, sizeof mac, want);
    cs_buf_free(&sig);
    const char *got = cs__http_header(r, "X-Twilio-Signature");
    enum MHD_Result ret;
    if (!got || strlen(got) != wl || !cs_ct_equal(got, want, wl)) {
        ret = forbidden(r, "X-Twilio-Signature",
                        !got ? "missing (expected the provider's signature of the request)"
                             : "does not match the request signed with sms_token (the URL "
                               "signed is public_url followed by /v1/callbacks/sms)");
        goto out;
    }
    const char *sid = cs__http_form_get(f, n, "MessageSid");
    const char *status = cs__http_form_get(f, n, "MessageStatus");
    if (!sid || !*sid || !status) {
        cs_err_t err;
        cs_err_field(&err, CS_ERR_INVALID, sid && *sid ? "MessageStatus" : "MessageSid",
                     "%s: required in a status callback",
                     sid && *sid ? "MessageStatus" : "MessageSid");
        ret = cs__http_reply_err(r, &err);
        goto out;
    }
    cb_status_t c;
    memset(&c, 0, sizeof c);
    cs_strlcpy(c.ref, sid, sizeof c.ref);
    if (strcmp(status, "sent") == 0)
        c.status = CS_MSG_SENT;
    else if (strcmp(status, "delivered") == 0)
        c.status = CS_MSG_DELIVERED;
    else if (strcmp(status, "read") == 0)
        c.status = CS_MSG_OPENED;
    else if (strcmp(status, "undelivered") == 0 || strcmp(status, "failed") == 0)
        c.status = CS_MSG_BOUNCED;
    else { /* queued, sending, accepted, scheduled, canceled: nothing to record */
        ret = answer(r, CS_OK, NULL, 0, 0, 0);
        goto out;
    }
    const char *code = cs__http_form_get(f, n, "ErrorCode");
    if (c.status == CS_MSG_BOUNCED)
        set_detail(&c, "%s%s%.*s", status, code && *code ? " " : "", (int)sizeof c.detail,
                   code ? code : "");
    cs_err_t err;
    cs_err_clear(&err);
    size_t unknown, recorded, kept;
    cs_rc rc = record(r, CS_CHANNEL_SMS, true, &c, 1, &unknown, &recorded, &kept, &err);
    ret = answer(r, rc, &err, recorded, unknown, kept);
out:
    cs_free(f);
    cs_free(text);
    return ret;
}

/* ---- WhatsApp Cloud API ---- */

/* A failed WhatsApp message whose error says the number cannot get it:
 * 131026 (not on WhatsApp, an app too old, the terms not accepted) and
 * 131021 (the recipient is the sender). Only these are recorded as
 * `bounced`, which stops WhatsApp for the customer until the number
 * changes. Every other failure is about what was sent or about the
 * shop's account, not the number -- a text outside the 24-hour window
 * (131047; 470 before it), a template refused (132xxx), a rate or
 * spam limit (130429, 131048, 131056), the per-user marketing limit
 * (131049), the account's payment or lock (131042, 131031), Meta's own
 * trouble (131000, 131016) -- or names no error at all: it is `failed`
 * and stops nothing, for the next message (an approved template, another
 * day) may well reach the customer. One is `failed` and stops the
 * customer's WhatsApp marketing alone: 131050, the customer stopped the
 * shop's marketing in WhatsApp (the store records it as their refusal of
 * WhatsApp marketing, cs_msg_stops_wa_marketing). */
static bool wa_the_number(json_int_t code)
{
    return code == 131026 || code == 131021;
}

static enum MHD_Result whatsapp_verify(hreq_t *r)
{
    cs_http_t *h = r->h;
    const char *mode = cs__http_query(r, "hub.mode");
    const char *tok =
        cs__http_query(r, "hub.verify_token");
    const char *chal =
        cs__http_query(r, "hub.challenge");
    const char *want = h->opts.wa_verify_token;
    if (!mode || strcmp(mode, "subscribe") != 0)
        return forbidden(r, "hub.mode", "expected subscribe");
    if (!chal)
        return forbidden(r, "hub.challenge", "missing (expected the text to echo)");
    if (!want || !*want || !tok || strlen(tok) != strlen(want) ||
        !cs_ct_equal(tok, want, strlen(want)))
        return forbidden(r, "hub.verify_token", "does not match whatsapp_verify_token");
    char *text = strdup(chal);
    return text ? cs__http_reply_text(r, 200, text, strlen(text), "text/plain") : MHD_NO;
}

/* ---- WhatsApp's user preferences ----
 *
 * Meta tells the shop that a customer stopped (or resumed) its marketing
 * messages in WhatsApp by a webhook's user_preferences item, which names
 * the number (wa_id: the E.164 number's digits), not a message. A `stop`
 * of marketing_messages is the refusal of WhatsApp marketing of every
 * customer whose phone is that number, recorded as a customer.upserted
 * saying so at the item's time, as the shop's own would be (a consent
 * stated later wins, one stated before does not undo it). A `resume` is
 * no consent the shop holds: nothing is recorded for it. */

#define PREF_IDS 64 /* customers of one number recorded at a time */

typedef struct pref_lookup {
    char phone[24]; /* "+" and the wa_id */
    char after[CS_ID_MAX + 1];
    char ids[PREF_IDS][CS_ID_MAX + 1];
    size_t n;
    cs_err_t err;
} pref_lookup_t;

static cs_rc pref_lookup_fn(cs_store_t *s, void *arg)
{
    pref_lookup_t *l = arg;
    return cs_store_call(s, customers_by_phone, l->phone, l->after, l->ids, PREF_IDS, &l->n,
                         &l->err);
}

/* A wa_id: the digits of an E.164 number (at most 15, no leading 0). */
static bool wa_id_valid(const char *s)
{
    size_t n = s ? strspn(s, "0123456789") : 0;
    return n >= 1 && n <= 15 && s[n] == '\0' && s[0] != '0';
}

/* Customer cid's refusal of WhatsApp marketing at `at`, stopped in
 * WhatsApp by the number wa_id at Meta's time secs (0: it gave none, and
 * `at` is the arrival): a customer.upserted under an id made of the item
 * and the customer, so an item Meta sends again is a duplicate. *out is
 * owned by the caller. */
static cs_rc stop_event(const char *cid, const char *wa_id, int64_t secs, cs_ms_t at,
                        cs_event_t **out, cs_err_t *err)
{
    char eid[CS_ID_MAX + 1], ts[40];
    *out = NULL;
    snprintf(eid, sizeof eid, "wa-stop-%s-%lld-%.*s-%016llx", wa_id, (long long)secs,
             (int)cs_utf8_clip(cid, strlen(cid), 48), cid,
             (unsigned long long)cs_hash_str(CS_HASH_INIT, cid));
    cs_time_format(at, ts, sizeof ts);
    return cs_event_compose(json_pack("{s:s,s:s,s:s,s:s,s:{s:s,s:{s:{s:b}}}}", "event_id", eid,
                                      "type", "customer.upserted", "occurred_at", ts, "source",
                                      "whatsapp-user-preferences", "data", "id", cid, "consents",
                                      "whatsapp", "marketing", 0),
                            out, err);
}

/* Record the number wa_id's stop for each of its customers, PREF_IDS at a
 * time: *recorded counts them (duplicates too, as statuses are counted);
 * *unknown is 1 when no customer has the number. CS_OK once all are
 * durable. */
static cs_rc record_stop(hreq_t *r, const char *wa_id, int64_t secs, cs_ms_t at,
                         size_t *recorded, size_t *unknown, cs_err_t *err)
{
    cs_http_t *h = r->h;
    cs_ingest_item_t *items = NULL;
    pref_lookup_t *l = calloc(1, sizeof *l);
    cs_rc rc = CS_OK;
    size_t found = 0;
    *recorded = *unknown = 0;
    if (!l || !(items = calloc(PREF_IDS, sizeof *items))) {
        rc = cs_errf(err, CS_ERR_NOMEM, "out of memory");
        goto out;
    }
    snprintf(l->phone, sizeof l->phone, "+%s", wa_id);
    for (;;) {
        cs_err_clear(&l->err);
        if ((rc = cs__http_with_reader(h, pref_lookup_fn, l, err))) {
            rc = cs__http_task_err(rc, &l->err, err, "look up the customers of a number");
            goto out;
        }
        size_t k = 0;
        memset(items, 0, PREF_IDS * sizeof *items);
        for (size_t i = 0; i < l->n && !rc; i++)
            if (!(rc = stop_event(l->ids[i], wa_id, secs, at, &items[k].ev, err)))
                k++;
        if (!rc && k)
            rc = ingest_events(h, items, k, err);
        else
            for (size_t i = 0; i < k; i++)
                cs_event_free(&items[i].ev);
        if (rc)
            goto out;
        found += l->n;
        if (l->n < PREF_IDS)
            break;
        cs_strlcpy(l->after, l->ids[l->n - 1], sizeof l->after);
    }
    *recorded = found;
    *unknown = found ? 0 : 1;
out:
    free(items);
    free(l);
    return rc;
}

static enum MHD_Result whatsapp_callback(hreq_t *r)
{
    cs_http_t *h = r->h;
    cs_ms_t now = cs_clock_now(cs_engine_clock(h->engine));
    const char *secret = h->opts.wa_app_secret;
    if (!secret || !*secret)
        return cs__http_reply_code(r, 404, "not_found",
                         "WhatsApp status callbacks are off (whatsapp_app_secret is not set)");
    size_t len = r->body.len;
    const char *body = r->body.data;
    uint8_t mac[CS_SHA256_LEN];
    char want[7 + 2 * CS_SHA256_LEN + 1] = "sha256=";
    cs_hmac_sha256(secret, strlen(secret), body ? body : "", len, mac);
    cs_hex(mac, sizeof mac, want + 7);
    const char *got = cs__http_header(r, "X-Hub-Signature-256");
    if (!got || strlen(got) != strlen(want) || !cs_ct_equal(got, want, strlen(want)))
        return forbidden(r, "X-Hub-Signature-256",
                         !got ? "missing (expected sha256= and the HMAC-SHA256 of the body)"
                              : "does not match the body signed with whatsapp_app_secret");
    json_error_t je;
    json_t *doc = json_loadb(body ? body : "", len, 0, &je);
    cs_err_t err;
    cs_err_clear(&err);
    if (!json_is_object(doc)) {
        if (doc)
            cs_err_field(&err, CS_ERR_INVALID, "body", "body: expected a JSON object, got %s",
                         cs_json_type_word(doc));
        else
            cs_err_field(&err, CS_ERR_INVALID, "body",
                         "body: expected a JSON object; malformed JSON at line %d: %s", je.line,
                         je.text);
        json_decref(doc);
        return cs__http_reply_err(r, &err);
    }
    /* Meta batches statuses: they are recorded CB_MAX at a time, every one
     * of them before the answer (a 200 tells Meta they are all ours now) */
    cb_status_t *st = calloc(CB_MAX, sizeof *st);
    size_t n = 0, i, j, k, unknown = 0, recorded = 0, kept = 0;
    json_t *entry, *change, *s;
    cs_rc rc = CS_OK;
    if (!st) {
        json_decref(doc);
        return MHD_NO;
    }
    json_array_foreach (json_object_get(doc, "entry"), i, entry) {
        json_array_foreach (json_object_get(entry, "changes"), j, change) {
            json_t *value = json_object_get(change, "value");
            json_array_foreach (json_object_get(value, "statuses"), k, s) {
                const char *id = json_string_value(json_object_get(s, "id"));
                const char *status = json_string_value(json_object_get(s, "status"));
                if (n == CB_MAX && !rc) {
                    size_t u, rec, kp;
                    rc = record(r, CS_CHANNEL_WHATSAPP, true, st, n, &u, &rec, &kp, &err);
                    unknown += u;
                    recorded += rec;
                    kept += kp;
                    memset(st, 0, CB_MAX * sizeof *st);
                    n = 0;
                }
                if (rc || !id || !status)
                    continue;
                cb_status_t *c = &st[n];
                if (strcmp(status, "sent") == 0)
                    c->status = CS_MSG_SENT;
                else if (strcmp(status, "delivered") == 0)
                    c->status = CS_MSG_DELIVERED;
                else if (strcmp(status, "read") == 0)
                    c->status = CS_MSG_OPENED;
                else if (strcmp(status, "failed") == 0)
                    c->status = CS_MSG_BOUNCED;
                else
                    continue;
                cs_strlcpy(c->ref, id, sizeof c->ref);
                /* Meta's time in seconds; one more than a day ahead of
                 * ours (no status comes from the future; a number that
                 * is no time would overflow as milliseconds) is taken as
                 * the arrival, as the other callbacks' times are bounded */
                int64_t secs;
                const char *ts = json_string_value(json_object_get(s, "timestamp"));
                if (ts && cs_parse_i64(ts, &secs) && secs > 0 &&
                    secs <= (now + CS_EVENT_AHEAD_MAX_MS) / 1000)
                    c->at = secs * 1000;
                json_t *e0 = json_array_get(json_object_get(s, "errors"), 0);
                json_int_t code = json_integer_value(json_object_get(e0, "code"));
                if (c->status == CS_MSG_BOUNCED && !wa_the_number(code)) {
                    /* nothing says the number is bad: what was sent is
                     * (a text outside the window, a template refused), or
                     * the account or Meta had trouble */
                    c->status = CS_MSG_FAILED;
                    c->wa_window = code == 131047 || code == 470;
                }
                if (c->wa_window) {
                    set_detail(c, "%lld %s", (long long)code, WA_WINDOW_TEXT);
                } else if (c->status == CS_MSG_FAILED && code == CS_WA_MARKETING_STOPPED) {
                    /* the store takes it as the customer's refusal of WhatsApp marketing
                     * (cs_msg_stops_wa_marketing), and the detail says so */
                    set_detail(c, "%lld %s", (long long)code, CS_WA_MARKETING_TEXT);
                } else if (e0) {
                    const char *title = json_string_value(json_object_get(e0, "title"));
                    set_detail(c, "%lld %.*s", (long long)code, (int)sizeof c->detail,
                               title ? title : "");
                }
                n++;
            }
            /* a customer stopped the shop's marketing in WhatsApp; an item
             * that is not a stop of marketing_messages records nothing (a
             * resume grants no consent), nor does one without a number,
             * as a status without its id; a time that is none, or more
             * than a day ahead, is taken as the arrival, as a status's */
            json_array_foreach (json_object_get(value, "user_preferences"), k, s) {
                const char *wa_id = json_string_value(json_object_get(s, "wa_id"));
                const char *cat = json_string_value(json_object_get(s, "category"));
                const char *val = json_string_value(json_object_get(s, "value"));
                json_t *jts = json_object_get(s, "timestamp");
                int64_t secs = 0;
                size_t u, rec;
                if (rc || !wa_id_valid(wa_id) || !cat || strcmp(cat, "marketing_messages") != 0 ||
                    !val || strcmp(val, "stop") != 0)
                    continue;
                if (json_is_integer(jts))
                    secs = json_integer_value(jts);
                else if (!json_is_string(jts) || !cs_parse_i64(json_string_value(jts), &secs))
                    secs = 0;
                if (secs < CS_EVENT_TIME_MIN / 1000 ||
                    secs > (now + CS_EVENT_AHEAD_MAX_MS) / 1000)
                    secs = 0;
                rc = record_stop(r, wa_id, secs, secs ? secs * 1000 : now, &rec, &u, &err);
                unknown += u;
                recorded += rec;
            }
        }
    }
    json_decref(doc);
    if (n && !rc) {
        size_t u, rec, kp;
        rc = record(r, CS_CHANNEL_WHATSAPP, true, st, n, &u, &rec, &kp, &err);
        unknown += u;
        recorded += rec;
        kept += kp;
    }
    free(st);
    return answer(r, rc, &err, recorded, unknown, kept);
}

/* ---- email: a generic JSON form ---- */

static enum MHD_Result email_callback(hreq_t *r)
{
    enum MHD_Result ret;
    cs_err_t err;
    cs_err_clear(&err);
    size_t len = r->body.len;
    const char *body = r->body.data;
    json_error_t je;
    json_t *doc = json_loadb(body ? body : "", len, 0, &je);
    if (!doc) {
        cs_err_field(&err, CS_ERR_INVALID, "body", "body: invalid JSON at line %d: %s", je.line,
                     je.text);
        return cs__http_reply_err(r, &err);
    }
    json_t *arr = json_is_array(doc) ? json_incref(doc) : json_pack("[O]", doc);
    json_decref(doc);
    size_t n = json_array_size(arr);
    if (n == 0) {
        json_decref(arr);
        cs_err_field(&err, CS_ERR_INVALID, "body",
                     "body: an empty array; expected a status object or an array of 1..%d",
                     CB_MAX);
        return cs__http_reply_err(r, &err);
    }
    if (n > CB_MAX) {
        json_decref(arr);
        cs_errf(&err, CS_ERR_TOOBIG, "at most %d statuses in one callback, got %zu", CB_MAX, n);
        return cs__http_reply_err(r, &err);
    }
    cs_ms_t now = cs_clock_now(cs_engine_clock(r->h->engine));
    cb_status_t *st = calloc(n ? n : 1, sizeof *st);
    json_t *rejected = json_array();
    size_t *index = calloc(n ? n : 1, sizeof *index);
    size_t m = 0, i;
    json_t *o;
    if (!st || !rejected || !index) {
        ret = MHD_NO;
        goto out;
    }
    json_array_foreach (arr, i, o) {
        const char *id = json_string_value(json_object_get(o, "message_id"));
        const char *status = json_string_value(json_object_get(o, "status"));
        json_t *jdetail = json_object_get(o, "detail"), *jat = json_object_get(o, "occurred_at");
        /* null states nothing, as in an event (docs/events.md): a processor
         * that writes every member has no detail or time to give */
        if (json_is_null(jdetail))
            jdetail = NULL;
        if (json_is_null(jat))
            jat = NULL;
        const char *detail = json_string_value(jdetail);
        const char *at = json_string_value(jat);
        int sv = status ? cs_msg_status_from_name(status) : -1;
        const char *field = NULL, *why = NULL, *slip = "";
        cs_ms_t t = 0;
        if (!json_is_object(o))
            field = "body", why = "expected a status object ({\"message_id\": ..., \"status\": ...})";
        else if (!id || !*id || strlen(id) + 2 >= sizeof st->ref)
            field = "message_id", why = "expected the message's Message-ID (a string of 1..157 "
                                        "bytes)";
        else if (sv < 0)
            field = "status", why = "expected sent, delivered, opened, clicked, bounced, "
                                    "complained, unsubscribed or failed";
        else if (at && !cs_time_parse(at, &t) && cs_time_before_1970(at))
            field = "occurred_at", why = "expected a time from 2000-01-01 on (check how the "
                                         "sender writes its times)";
        else if ((jat && !at) || (at && (strlen(at) == 10 || !cs_time_parse(at, &t))))
            field = "occurred_at", why = "expected an RFC 3339 time like 2026-12-07T09:00:00Z",
            slip = at ? cs_time_slip(at) : "";
        else if (at && t < CS_EVENT_TIME_MIN) /* as the event intake refuses it */
            field = "occurred_at", why = "expected a time from 2000-01-01 on (check how the "
                                         "sender writes its times)";
        else if (t > now + CS_EVENT_AHEAD_MAX_MS) /* as the event intake refuses it */
            field = "occurred_at", why = "expected a time at most a day in the future (check "
                                         "the sender's clock and time zone)";
        else if (jdetail && !detail)
            field = "detail", why = "expected a string";
        if (field) {
            /* "status: expected sent, ..., got \"bounce\"": the field, what
             * it expects and what came, as every other refusal says it */
            json_t *v = strcmp(field, "body") == 0 ? o : json_object_get(o, field);
            char e[CS_HTTP_ECHO_MAX], msg[CS_ERR_MSG_MAX];
            snprintf(msg, sizeof msg, "%s: %s, got %s%s", field, why,
                     json_is_string(v) ? cs__http_echo(json_string_value(v), e, sizeof e)
                     : v               ? cs_json_type_word(v)
                                       : "nothing",
                     slip);
            json_array_append_new(rejected, json_pack("{s:I,s:{s:s,s:s,s:s}}", "index",
                                                      (json_int_t)i, "error", "code", "invalid",
                                                      "field", field, "message", msg));
            continue;
        }
        /* Message-IDs are recorded as the header has them, in angle
         * brackets (mime.c); a processor may give them without */
        size_t il = strlen(id);
        if (id[0] == '<' && id[il - 1] == '>' && il > 2)
            cs_strlcpy(st[m].ref, id, sizeof st[m].ref);
        else
            snprintf(st[m].ref, sizeof st[m].ref, "<%s>", id);
        st[m].status = (cs_msg_status_t)sv;
        set_detail(&st[m], "%s", detail ? detail : "");
        st[m].at = t;
        index[m++] = i;
    }
    size_t unknown = 0, recorded = 0, kept = 0;
    cs_rc rc = m ? record(r, CS_CHANNEL_EMAIL, false, st, m, &unknown, &recorded, &kept, &err)
                 : CS_OK;
    if (rc) {
        ret = cs__http_reply_err(r, &err);
        goto out;
    }
    for (size_t k = 0; k < m; k++)
        if (!st[k].found) {
            char e[CS_HTTP_ECHO_MAX], msg[CS_ERR_MSG_MAX];
            snprintf(msg, sizeof msg, "message_id: no email of ours has the Message-ID %s",
                     cs__http_echo(st[k].ref, e, sizeof e));
            json_array_append_new(rejected,
                                  json_pack("{s:I,s:{s:s,s:s,s:s}}", "index", (json_int_t)index[k],
                                            "error", "code", "not_found", "field", "message_id",
                                            "message", msg));
        }
    atomic_fetch_add(&r->h->callbacks_unknown, unknown);
    ret = cs__http_reply(r, recorded ? 200 : 422,
                         json_pack("{s:I,s:O}", "recorded", (json_int_t)recorded, "rejected",
                                   rejected));
out:
    json_decref(rejected);
    json_decref(arr);
    free(st);
    free(index);
    return ret;
}

enum MHD_Result cs__http_callback(hreq_t *r, const char *method)
{
    if (r->too_big) {
        cs_err_t err;
        cs_errf(&err, CS_ERR_TOOBIG, "request body exceeds the callbacks' limit of %d bytes (1 MiB)",
                CS_HTTP_HOOK_BODY_MAX);
        return cs__http_reply_err(r, &err);
    }
    switch (r->route) {
    case R_CB_SMS: return sms_callback(r);
    case R_CB_WHATSAPP:
        return strcmp(method, "POST") == 0 ? whatsapp_callback(r) : whatsapp_verify(r);
    case R_CB_EMAIL: return email_callback(r);
    default: return MHD_NO;
    }
}
