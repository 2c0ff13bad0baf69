/*
 * pages.c -- pages for customers: GET /u/{token} shows an unsubscribe page
 * (German or English, chosen as the tracking page's language is; under the
 * shop's header, naming the shop) with one button;
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
    cs_contact_t who;
    bool known;
    cs_err_t err;
} cust_ctx_t;

/* The customer's language and whether their email is unsubscribed. */
static cs_rc cust_fn(cs_store_t *s, void *arg)
{
    cust_ctx_t *c = arg;
    cs_rc rc = cs_store_call(s, contact_get, c->id, &c->who, &c->err);
    c->known = rc == CS_OK;
    return rc == CS_ERR_NOTFOUND ? CS_OK : rc;
}

/* The page: the shop's header (its name or logo and colour, as on the
 * tracking page), a heading and body_html (trusted HTML). */
static enum MHD_Result page(hreq_t *r, int status, const char *lang, const char *title,
                            const char *body_html)
{
    cs_buf_t b;
    cs_buf_init(&b, 64 * 1024);
    cs__page_head(r, &b, lang, title);
    cs_buf_printf(&b, "<h1>%s</h1><section>%s</section></main></body></html>", title, body_html);
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
        const char *lang = cs__page_lang(r, NULL);
        bool de = strcmp(lang, "de") == 0;
        return page(r, 404, lang, de ? "Link ungültig" : "Link not valid",
                    de ? "<p>Dieser Link ist nicht gültig.</p>"
                       : "<p>This link is not valid.</p>");
    }
    cust_ctx_t c;
    memset(&c, 0, sizeof c);
    c.id = customer;
    cs_err_t err;
    cs_err_clear(&err);
    /* as the tracking page: ?lang=, the customer's language, the browser's,
     * else the shop's default_locale */
    bool read = cs__http_with_reader(h, cust_fn, &c, &err) == CS_OK && c.known;
    const char *lang = cs__page_lang(r, read && c.who.locale[0] ? c.who.locale : NULL);
    bool de = strcmp(lang, "de") == 0;
    /* the link came by email: unsubscribed there (and not started over
     * since) is unsubscribed, and a second visit is told so rather than
     * offered the button again */
    bool already = read && (c.who.unsubscribed & (1u << CS_CHANNEL_EMAIL));
    /* who the customer unsubscribes from: the shop, by name */
    const char *shop = h->opts.shop_name && *h->opts.shop_name ? h->opts.shop_name : NULL;
    cs_buf_t from;
    cs_buf_init(&from, 2048); /* the name (at most 255 bytes), escaped */
    if (shop) {
        cs_buf_puts(&from, de ? " von " : " from ");
        cs__page_esc(&from, shop);
    }
    const char *by = from.data ? from.data : "";
    if (strcmp(method, "POST") != 0 && already) {
        char text[4096];
        snprintf(text, sizeof text, "<p>%s%s%s</p>",
                 de ? "Sie sind bereits" : "You are already unsubscribed", by,
                 de ? " abgemeldet. Nachrichten zu Ihren Bestellungen erhalten Sie weiterhin."
                    : ". Messages about your orders still reach you.");
        cs_buf_free(&from);
        return page(r, 200, lang, de ? "Abgemeldet" : "Unsubscribed", text);
    }
    if (strcmp(method, "POST") != 0) {
        char form[4096];
        snprintf(form, sizeof form,
                 "<p>%s%s%s</p><form method=\"post\"><button type=\"submit\">%s</button></form>",
                 de ? "Nach der Abmeldung erhalten Sie"
                    : "You will no longer get offers, review requests or surveys",
                 by,
                 de ? " keine Werbung, Bewertungsbitten und Umfragen mehr. Nachrichten zu Ihren "
                      "Bestellungen bekommen Sie weiterhin."
                    : ". Messages about your orders still reach you.",
                 de ? "Abmelden" : "Unsubscribe");
        cs_buf_free(&from);
        return page(r, 200, lang, de ? "Abmelden" : "Unsubscribe", form);
    }
    /* record it: message.status unsubscribed, one event per customer and
     * minute (a double click is one); the id names the customer by a hash
     * of the whole id, as ids (up to 128 bytes) do not fit after the minute */
    cs_ms_t now = cs_clock_now(cs_engine_clock(h->engine));
    char ts[40], body[4096];
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
        cs_buf_free(&from);
        snprintf(body, sizeof body, "<p>%s</p>",
                 de ? "Das hat gerade nicht geklappt. Bitte versuchen Sie es gleich noch einmal."
                    : "That did not work just now. Please try again in a moment.");
        return page(r, 503, lang, de ? "Bitte noch einmal" : "Please try again", body);
    }
    snprintf(body, sizeof body, "<p>%s%s%s</p>", de ? "Sie sind" : "You are unsubscribed", by,
             de ? " abgemeldet. Nachrichten zu Ihren Bestellungen erhalten Sie weiterhin."
                : ". Messages about your orders still reach you.");
    cs_buf_free(&from);
    return page(r, 200, lang, de ? "Abgemeldet" : "Unsubscribed", body);
}
