/*
 * http_provider.c -- SMS through a Twilio-style API (form POST, Basic auth,
 * {"sid": ...}) and WhatsApp through the Cloud API (JSON POST, Bearer token,
 * {"messages":[{"id": ...}]}). libcurl, one handle per transport (keep-alive).
 *
 * Journey webhooks go out the same way: a JSON POST to the step's URL,
 * signed X-Consonance-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
 * "<t>.<body>" with webhook_secret>, with X-Consonance-Delivery (the
 * idempotency key) and X-Consonance-Event.
 *
 * A WhatsApp message goes as the approved template the shop mapped its
 * template to (`"type":"template"`, cs_wa_template_msg_t), else as text,
 * which the Cloud API delivers only inside the 24-hour window after the
 * customer last wrote to the shop.
 *
 * Outcomes: 2xx ok; 408, 429, 5xx and transport errors retry; so do 401
 * and 403, our credentials refused (the messages wait for the operator's
 * fix, with a reason naming the settings); other 4xx are permanent
 * (invalid number, recipient not on WhatsApp, rejected content). The
 * Cloud API's refusals of a text outside the window and of a template
 * (not approved, paused, parameters that do not fit) are permanent, with
 * a reason that names the cause and the file to fix (wa_refused). Its
 * 131050 (the customer stopped the shop's marketing in WhatsApp) is
 * permanent, with the detail the status callback gives it, which the
 * sender records as the customer's refusal of WhatsApp marketing.
 */
#include "channel.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "../lib/cs_crypto.h"
#include "../lib/cs_json.h"

typedef enum kind { K_TWILIO, K_WHATSAPP, K_WEBHOOK } kind_t;

/* The longest idempotency key sent whole (the outbox's are at most 231
 * characters: journey, run key, step). A header cut shorter would give two
 * messages whose keys differ only at the end the same key, and the
 * receiving side would drop the second as a repeat. */
#define IDEM_KEY_MAX 255

typedef struct hp {
    cs_transport_t base; /* must be first */
    kind_t kind;
    CURL *curl;
    char *url, *user, *token, *from;
    bool verify;
    long timeout_ms;
} hp_t;

/* The answer is read for the provider's id or error, never whole: what
 * passes the buffer's limit is dropped, not refused -- a refused write
 * fails the transfer, and a 2xx with a large body (a receiver's HTML page)
 * would count as a transport error and be sent again and again. */
static size_t write_cb(char *p, size_t size, size_t n, void *ud)
{
    cs_buf_t *b = ud;
    size_t room = b->max > b->len ? b->max - b->len : 0;
    if (room)
        (void)cs_buf_append(b, p, size * n < room ? size * n : room);
    return size * n;
}

/* The Cloud API's template message: the approved template by name and
 * language, its header, body and URL buttons' parameters as text, in
 * order. */
static json_t *wa_template_json(const cs_mail_t *m)
{
    const cs_wa_template_msg_t *w = m->wa_template;
    json_t *comps = json_array(), *body = json_array();
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:{s:s,s:{s:s}}}", "messaging_product", "whatsapp",
                          "recipient_type", "individual", "to", m->to + 1, "type", "template",
                          "template", "name", w->name, "language", "code", w->language);
    bool ok = o && comps && body;
    if (ok && w->header)
        ok = !json_array_append_new(
            comps, json_pack("{s:s,s:[{s:s,s:s}]}", "type", "header", "parameters", "type",
                             "text", "text", w->header));
    for (int i = 0; ok && i < w->nbody; i++)
        ok = !json_array_append_new(body, json_pack("{s:s,s:s}", "type", "text", "text",
                                                    w->body[i]));
    if (ok && w->nbody)
        ok = !json_array_append_new(comps, json_pack("{s:s,s:O}", "type", "body",
                                                     "parameters", body));
    for (int i = 0; ok && i < CS_WA_MSG_BUTTONS_MAX; i++) {
        char idx[4];
        if (!w->button[i])
            continue;
        snprintf(idx, sizeof idx, "%d", i);
        ok = !json_array_append_new(
            comps, json_pack("{s:s,s:s,s:s,s:[{s:s,s:s}]}", "type", "button", "sub_type", "url",
                             "index", idx, "parameters", "type", "text", "text", w->button[i]));
    }
    if (ok && json_array_size(comps))
        ok = !json_object_set(json_object_get(o, "template"), "components", comps);
    json_decref(comps);
    json_decref(body);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* r's detail: msg, cut to fit between two characters. */
static void set_detail(cs_send_result_t *r, const char *msg)
{
    cs_strlcpy(r->detail, msg, cs_utf8_clip(msg, strlen(msg), sizeof r->detail - 1) + 1);
}

/* The Cloud API's refusals of what we sent rather than of the recipient:
 * a text outside the 24-hour window (131047; 470 before it), which only an
 * approved template may cross, and a template it will not send (its name
 * or language not approved, paused, disabled, parameters that do not
 * fit). No retry helps; the operator's fix does, so the reason names it.
 * Returns false for any other error. */
static bool wa_refused(const cs_mail_t *m, long code, json_t *e, cs_send_result_t *r)
{
    json_int_t pcode = json_integer_value(json_object_get(e, "code"));
    const char *details = json_string_value(
        json_object_get(json_object_get(e, "error_data"), "details"));
    const char *ref = m->template_ref ? m->template_ref : "?";
    char msg[512];
    if (!m->wa_template && (pcode == 131047 || pcode == 470)) {
        r->status = CS_SEND_PERMANENT;
        snprintf(msg, sizeof msg,
                 "outside WhatsApp's 24-hour window: map template %.60s to an approved "
                 "WhatsApp template (%.60s.whatsapp); http %ld, code %lld",
                 ref, ref, code, (long long)pcode);
        set_detail(r, msg);
        return true;
    }
    const char *what = NULL;
    switch (pcode) {
    case 132000: what = "its parameters are not as many as the approved template's"; break;
    case 132001: what = "no approved template of that name in that language"; break;
    case 132005: what = "the text with its parameters is too long"; break;
    case 132007: what = "the text with its parameters breaks WhatsApp's format rules"; break;
    case 132012: what = "a parameter's format is not the approved template's"; break;
    case 132015: what = "the template is paused (its quality is low)"; break;
    case 132016: what = "the template is disabled"; break;
    default: break;
    }
    if (!m->wa_template || !what)
        return false;
    r->status = CS_SEND_PERMANENT;
    snprintf(msg, sizeof msg,
             "whatsapp template %.48s (%.16s) of %.64s refused: %s; http %ld, code %lld%s%.80s",
             m->wa_template->name, m->wa_template->language,
             m->wa_template->file ? m->wa_template->file : ref, what, code, (long long)pcode,
             details ? ": " : "", details ? details : "");
    set_detail(r, msg);
    return true;
}

static void hp_send(cs_transport_t *t, const cs_mail_t *m, cs_send_result_t *r)
{
    hp_t *h = (hp_t *)t;
    memset(r, 0, sizeof *r);
    if (h->kind != K_WEBHOOK && !cs_phone_valid(m->to)) {
        r->status = CS_SEND_PERMANENT;
        snprintf(r->detail, sizeof r->detail, "invalid_number");
        return;
    }
    if ((!m->text || !*m->text) && !(h->kind == K_WHATSAPP && m->wa_template)) {
        r->status = CS_SEND_PERMANENT;
        snprintf(r->detail, sizeof r->detail, "empty_message");
        return;
    }
    if (strlen(m->idem_key) > IDEM_KEY_MAX) {
        r->status = CS_SEND_PERMANENT;
        snprintf(r->detail, sizeof r->detail, "idempotency key longer than %d characters",
                 IDEM_KEY_MAX);
        return;
    }
    CURL *c = h->curl;
    struct curl_slist *hdr = NULL;
    char *body = NULL, idem[64 + IDEM_KEY_MAX], auth[600];
    cs_buf_t resp;
    cs_buf_init(&resp, 1 << 20);
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, h->verify ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, h->verify ? 2L : 0L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, h->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_URL, h->kind == K_WEBHOOK ? m->to : h->url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
    if (h->kind == K_TWILIO) {
        char *to = curl_easy_escape(c, m->to, 0), *from = curl_easy_escape(c, h->from, 0),
             *text = curl_easy_escape(c, m->text, 0);
        size_t n = (to ? strlen(to) : 0) + (from ? strlen(from) : 0) + (text ? strlen(text) : 0) +
                   32;
        body = to && from && text ? cs_malloc(n) : NULL;
        if (body)
            snprintf(body, n, "To=%s&From=%s&Body=%s", to, from, text);
        curl_free(to);
        curl_free(from);
        curl_free(text);
        snprintf(idem, sizeof idem, "I-Twilio-Idempotency-Token: %s", m->idem_key);
        hdr = curl_slist_append(hdr, "Content-Type: application/x-www-form-urlencoded");
        curl_easy_setopt(c, CURLOPT_USERNAME, h->user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, h->token);
    } else if (h->kind == K_WEBHOOK) {
        /* signed over "<t>.<body>", so a replayed body with a new time fails */
        char sig[64 + 2 * CS_SHA256_LEN], event[160], hex[CS_SHA256_HEX_LEN] = "";
        long long ts = (long long)(m->date / 1000);
        body = cs_strdup(m->text);
        if (body && cs_webhook_signature(h->token, ts, body, strlen(body), hex) != CS_OK) {
            cs_free(body); /* not sent unsigned */
            body = NULL;
        }
        snprintf(sig, sizeof sig, "X-Consonance-Signature: t=%lld,v1=%s", ts, hex);
        snprintf(event, sizeof event, "X-Consonance-Event: %.120s",
                 m->subject ? m->subject : "");
        snprintf(idem, sizeof idem, "X-Consonance-Delivery: %s", m->idem_key);
        hdr = curl_slist_append(hdr, "Content-Type: application/json");
        hdr = curl_slist_append(hdr, "User-Agent: consonance-webhook/1");
        hdr = curl_slist_append(hdr, sig);
        hdr = curl_slist_append(hdr, event);
    } else {
        json_t *j = m->wa_template ? wa_template_json(m)
                                   : json_pack("{s:s,s:s,s:s,s:s,s:{s:b,s:s}}",
                                               "messaging_product", "whatsapp",
                                               "recipient_type", "individual", "to", m->to + 1,
                                               "type", "text", "text", "preview_url", 1, "body",
                                               m->text);
        body = j ? cs_json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        snprintf(idem, sizeof idem, "Idempotency-Key: %s", m->idem_key);
        snprintf(auth, sizeof auth, "Authorization: Bearer %.500s", h->token);
        hdr = curl_slist_append(hdr, "Content-Type: application/json");
        hdr = curl_slist_append(hdr, auth);
    }
    hdr = curl_slist_append(hdr, idem);
    if (!body || !hdr) {
        r->status = CS_SEND_RETRY;
        snprintf(r->detail, sizeof r->detail, "out of memory");
        goto out;
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    CURLcode cc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    json_t *j = resp.data ? json_loadb(resp.data, resp.len, 0, NULL) : NULL;
    if (cc != CURLE_OK) {
        r->status = CS_SEND_RETRY;
        snprintf(r->detail, sizeof r->detail, "%s", curl_easy_strerror(cc));
    } else if (code >= 200 && code < 300) {
        const char *id = h->kind == K_TWILIO ? json_string_value(json_object_get(j, "sid"))
                         : h->kind == K_WHATSAPP
                             ? json_string_value(json_object_get(
                                   json_array_get(json_object_get(j, "messages"), 0), "id"))
                             : NULL;
        r->status = CS_SEND_OK;
        snprintf(r->provider_ref, sizeof r->provider_ref, "%s", id ? id : "");
    } else if (code >= 300 && code < 400) {
        /* not followed (a signed POST goes where it was configured to):
         * said with where it pointed, so the URL can be corrected */
        char *to = NULL;
        curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &to);
        r->status = CS_SEND_PERMANENT;
        snprintf(r->detail, sizeof r->detail, "http %ld: redirected to %.200s (not followed)",
                 code, to ? to : "an address it did not give");
    } else if (code == 401 || code == 403) {
        /* our credentials refused (a wrong, rotated or expired token):
         * every message alike until the operator fixes the setting, so
         * they wait for that, as SMTP's refused AUTH does (smtp.c) */
        json_t *e = h->kind == K_TWILIO ? j : json_object_get(j, "error");
        json_int_t pcode = json_integer_value(json_object_get(e, "code"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        r->status = CS_SEND_RETRY;
        snprintf(r->detail, sizeof r->detail, "%s configuration (%s refused): http %ld, code %lld: "
                 "%.120s",
                 h->kind == K_TWILIO ? "sms" : h->kind == K_WHATSAPP ? "whatsapp" : "webhook",
                 h->kind == K_TWILIO     ? "sms_account, sms_token"
                 : h->kind == K_WHATSAPP ? "whatsapp_token"
                                         : "webhook_secret",
                 code, (long long)pcode, msg ? msg : "");
    } else {
        /* the provider's own code and message, when it gave them */
        json_t *e = h->kind == K_TWILIO ? j : json_object_get(j, "error");
        json_int_t pcode = json_integer_value(json_object_get(e, "code"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        if (h->kind == K_WHATSAPP && pcode == CS_WA_MARKETING_STOPPED) {
            /* the customer stopped the shop's marketing in WhatsApp: the
             * detail reads as the status callback's, for the sender
             * records it as their refusal of WhatsApp marketing too
             * (cs_msg_stops_wa_marketing) */
            r->status = CS_SEND_PERMANENT;
            snprintf(r->detail, sizeof r->detail, "%d %s", CS_WA_MARKETING_STOPPED,
                     CS_WA_MARKETING_TEXT);
        } else if (h->kind != K_WHATSAPP || !wa_refused(m, code, e, r)) {
            r->status = code == 408 || code == 429 || code >= 500 ? CS_SEND_RETRY
                                                                 : CS_SEND_PERMANENT;
            snprintf(r->detail, sizeof r->detail, "http %ld, code %lld: %.180s", code,
                     (long long)pcode, msg ? msg : "");
        }
    }
    json_decref(j);
out:
    curl_slist_free_all(hdr);
    if (h->kind == K_WHATSAPP)
        free(body); /* jansson's */
    else
        cs_free(body);
    cs_buf_free(&resp);
}

static void hp_close(cs_transport_t *t)
{
    hp_t *h = (hp_t *)t;
    if (h->curl)
        curl_easy_cleanup(h->curl);
    cs_free(h->url);
    cs_free(h->user);
    cs_free(h->token);
    cs_free(h->from);
    cs_free(h);
}

static const cs_transport_ops_t twilio_ops = { "sms-twilio", hp_send, hp_close };
static const cs_transport_ops_t whatsapp_ops = { "whatsapp-cloud", hp_send, hp_close };
static const cs_transport_ops_t webhook_ops = { "webhook", hp_send, hp_close };

static cs_rc hp_open(kind_t kind, const cs_http_provider_conf_t *c, cs_transport_t **out,
                     cs_err_t *err)
{
    const char *what = kind == K_TWILIO ? "sms" : kind == K_WHATSAPP ? "whatsapp" : "webhook";
    *out = NULL;
    if (kind == K_WEBHOOK && (!c->token || !*c->token))
        return cs_errf(err, CS_ERR_CONFIG, "webhook_secret: missing");
    if (kind != K_WEBHOOK &&
        (!c->url || (strncmp(c->url, "http://", 7) != 0 && strncmp(c->url, "https://", 8) != 0))) {
        char shown[256];
        cs_url_shown(c->url ? c->url : "", shown, sizeof shown); /* no user:password@ */
        return cs_errf(err, CS_ERR_CONFIG, "%s_url: expected an http(s) URL, got '%s'", what,
                       shown);
    }
    if (!c->token || !*c->token)
        return cs_errf(err, CS_ERR_CONFIG, "%s_token: missing", what);
    if (kind == K_TWILIO && (!c->user || !*c->user || !c->from || !*c->from))
        return cs_errf(err, CS_ERR_CONFIG, "sms_account and sms_from: both are needed");
    hp_t *h = cs_calloc(1, sizeof *h);
    if (!h || !(h->curl = curl_easy_init()) ||
        !(h->url = cs_strdup(c->url ? c->url : "")) ||
        !(h->token = cs_strdup(c->token)) || !(h->user = cs_strdup(c->user ? c->user : "")) ||
        !(h->from = cs_strdup(c->from ? c->from : ""))) {
        if (h)
            hp_close(&h->base);
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    }
    h->base.ops = kind == K_TWILIO     ? &twilio_ops
                  : kind == K_WHATSAPP ? &whatsapp_ops
                                       : &webhook_ops;
    h->kind = kind;
    h->verify = c->tls_verify;
    h->timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : 15000;
    *out = &h->base;
    return CS_OK;
}

cs_rc cs_sms_twilio_open(const cs_http_provider_conf_t *c, cs_transport_t **out, cs_err_t *err)
{
    return hp_open(K_TWILIO, c, out, err);
}

cs_rc cs_whatsapp_cloud_open(const cs_http_provider_conf_t *c, cs_transport_t **out,
                             cs_err_t *err)
{
    return hp_open(K_WHATSAPP, c, out, err);
}

cs_rc cs_webhook_open(const cs_http_provider_conf_t *c, cs_transport_t **out, cs_err_t *err)
{
    return hp_open(K_WEBHOOK, c, out, err);
}
