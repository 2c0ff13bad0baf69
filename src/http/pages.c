/*
 * pages.c -- pages for customers: GET /u/{token} shows an unsubscribe page
 * (German or English, by the customer's locale) with one button;
 * POST /u/{token} unsubscribes at once -- the RFC 8058 one-click request
 * that mail clients send ("List-Unsubscribe=One-Click"), or the button.
 * The token is signed (link_secret): a forged one gets 404 and nothing
 * about any customer. Unsubscribing records a message.status event
 * (unsubscribed) in the log like any other: journeys exit and the policy
 * stops every message that is not transactional.
 */
#include "http_int.h"

#include <stdio.h>
#include <string.h>

#include "../engine/sender.h"
#include "../template/locale.h"

typedef struct cust_ctx {
    const char *id;
    json_t *out;
    cs_err_t err;
} cust_ctx_t;

static cs_rc cust_fn(cs_store_t *s, void *arg)
{
    cust_ctx_t *c = arg;
    json_t *o, *sh;
    return cs_store_call(s, journey_context, c->id, NULL, 0, CS_CTX_LITE, &c->out, &o, &sh,
                         &c->err);
}

static enum MHD_Result page(hreq_t *r, int status, const char *lang, const char *title,
                            const char *body_html)
{
    cs_buf_t b;
    cs_buf_init(&b, 64 * 1024);
    cs_buf_printf(&b,
                  "<!doctype html><html lang=\"%s\"><head><meta charset=\"utf-8\">"
                  "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
                  "<title>%s</title><style>body{font:16px/1.5 system-ui,sans-serif;"
                  "max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}"
                  "button{font:inherit;padding:.6rem 1.2rem;border:0;border-radius:.4rem;"
                  "background:#2d5b3f;color:#fff;cursor:pointer}</style></head><body>"
                  "<h1>%s</h1>%s</body></html>",
                  lang, title, title, body_html);
    size_t len;
    char *text = cs_buf_steal(&b, &len);
    if (!text)
        return MHD_NO;
    /* cs_buf_steal's memory is cs_malloc'd; the reply frees with free().
     * A customer's page: no-store, no referrer (the link names them), CSP;
     * a 503 says when to try again, as intake's do */
    return cs__http_reply_page(r, status, text, len, NULL, status == 503 ? 1 : 0);
}

enum MHD_Result cs__http_unsubscribe(hreq_t *r, const char *url, const char *method)
{
    cs_http_t *h = r->h;
    const char *token = cs__http_path_nul(r) ? "" : url + 3; /* a token cut by a NUL: none */
    char customer[CS_ID_MAX + 1];
    if (!h->opts.link_secret || !h->opts.link_secret[0] ||
        !cs_unsubscribe_token_check(h->opts.link_secret, token, customer, sizeof customer)) {
        return page(r, 404, "en", "Link not valid / Link ungültig",
                    "<p>This link is not valid. / Dieser Link ist nicht gültig.</p>");
    }
    cust_ctx_t c = { customer, NULL, { 0 } };
    cs_err_t err;
    cs_err_clear(&err);
    /* the customer's language, else the shop's default_locale */
    const char *lang = h->opts.default_locale ? h->opts.default_locale : "de", *loc = NULL;
    if (cs__http_with_reader(h, cust_fn, &c, &err) == CS_OK && c.out)
        loc = json_string_value(json_object_get(c.out, "locale"));
    if (loc && *loc)
        lang = cs_locale_lang(loc);
    json_decref(c.out);
    bool de = strcmp(lang, "de") == 0;
    if (strcmp(method, "POST") != 0) {
        char form[512];
        snprintf(form, sizeof form,
                 "<p>%s</p><form method=\"post\"><button type=\"submit\">%s</button></form>",
                 de ? "Sie erhalten dann keine Werbung, Bewertungsbitten und Umfragen mehr. "
                      "Nachrichten zu Ihren Bestellungen bekommen Sie weiterhin."
                    : "You will no longer get offers, review requests or surveys. Messages "
                      "about your orders still reach you.",
                 de ? "Abmelden" : "Unsubscribe");
        return page(r, 200, lang, de ? "Abmelden" : "Unsubscribe", form);
    }
    /* record it: message.status unsubscribed, one event per customer and
     * minute (a double click is one); the id names the customer by a hash
     * of the whole id, as ids (up to 128 bytes) do not fit after the minute */
    cs_ms_t now = cs_clock_now(cs_engine_clock(h->engine));
    char ts[40], body[1024];
    cs_time_format(now, ts, sizeof ts);
    json_t *ev = json_pack("{s:s,s:s,s:s,s:s,s:{s:s,s:s,s:s,s:s}}", "event_id", "", "type",
                           "message.status", "occurred_at", ts, "source", "unsubscribe-link",
                           "data", "message_id", "unsubscribe-link", "status", "unsubscribed",
                           "customer_id", customer, "detail", "one-click");
    char eid[CS_ID_MAX + 1];
    snprintf(eid, sizeof eid, "unsub-%lld-%.80s-%016llx", (long long)(now / 60000), customer,
             (unsigned long long)cs_hash_str(CS_HASH_INIT, customer));
    json_object_set_new(ev, "event_id", json_string(eid));
    char *text = ev ? cs_json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    cs_event_t *e = NULL;
    cs_rc rc = text ? cs_event_parse(text, strlen(text), &e, &err) : CS_ERR_NOMEM;
    free(text);
    if (!rc) {
        cs_ingest_item_t item;
        memset(&item, 0, sizeof item);
        item.ev = e;
        cs_ingest_req_t req;
        memset(&req, 0, sizeof req);
        req.items = &item;
        req.n = 1;
        rc = cs_engine_ingest(h->engine, &req);
        if (rc)
            cs_event_free(&item.ev); /* not taken: still ours */
        else
            rc = item.rc;
    }
    if (rc) {
        snprintf(body, sizeof body, "<p>%s</p>",
                 de ? "Das hat gerade nicht geklappt. Bitte versuchen Sie es gleich noch einmal."
                    : "That did not work just now. Please try again in a moment.");
        return page(r, 503, lang, de ? "Bitte noch einmal" : "Please try again", body);
    }
    snprintf(body, sizeof body, "<p>%s</p>",
             de ? "Sie sind abgemeldet. Nachrichten zu Ihren Bestellungen erhalten Sie weiterhin."
                : "You are unsubscribed. Messages about your orders still reach you.");
    return page(r, 200, lang, de ? "Abgemeldet" : "Unsubscribed", body);
}
