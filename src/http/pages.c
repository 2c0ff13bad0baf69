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
 *
 * And what the customers' pages share (http_int.h): the language a page is
 * in, the head with the shop's name or logo and colour, HTML escaping, and
 * the answer to a method they do not take.
 */
#include "http_int.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* ---- what the customers' pages share ---- */

void cs__page_esc(cs_buf_t *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': cs_buf_puts(b, "&amp;"); break;
        case '<': cs_buf_puts(b, "&lt;"); break;
        case '>': cs_buf_puts(b, "&gt;"); break;
        case '"': cs_buf_puts(b, "&quot;"); break;
        case '\'': cs_buf_puts(b, "&#39;"); break;
        default: cs_buf_append(b, s, 1); break;
        }
    }
}

static const char *color_of(cs_http_t *h)
{
    const char *c = h->opts.brand_color;
    return c && strlen(c) == 7 && c[0] == '#' && strspn(c + 1, "0123456789abcdefABCDEF") == 6
               ? c
               : "#2d5b3f";
}

/* Channel i (0 red, 1 green, 2 blue) of "#rrggbb" in linear light, 0..1. */
static double linear(const char *c, int i)
{
    char hex[3] = { c[1 + 2 * i], c[2 + 2 * i], '\0' };
    double v = (double)strtol(hex, NULL, 16) / 255.0;
    return v <= 0.03928 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4);
}

/* WCAG 2's relative luminance of "#rrggbb". */
static double luminance(const char *c)
{
    return 0.2126 * linear(c, 0) + 0.7152 * linear(c, 1) + 0.0722 * linear(c, 2);
}

static double contrast(double a, double b)
{
    return a > b ? (a + 0.05) / (b + 0.05) : (b + 0.05) / (a + 0.05);
}

#define INK "#1d1d1f" /* the page's text colour */

/* The shade of the shop's colour (brand, "#rrggbb") the page's marks are
 * drawn in on white (the progress bar, the history's current dot and
 * line): the colour itself where it stands out from white by WCAG's 3:1
 * for graphics that carry meaning (2.1, SC 1.4.11), else the colour with
 * less light -- each channel's linear light scaled by one factor, which
 * keeps its hue (in OKLab exactly: L, a and b all shrink by the factor's
 * cube root) and darkens it just to 3:1. A yellow becomes an olive, a
 * pale blue a mid blue; drawn in the colour itself, a light colour's bar
 * was 1.4:1 on white, hard to tell from the grey of the steps to come.
 * out: "#rrggbb", size at least 8. */
static void mark_of(const char *brand, char *out, size_t size)
{
    cs_strlcpy(out, brand, size);
    double l = luminance(brand);
    if (contrast(l, 1.0) >= 3.0)
        return;
    /* 3:1 on white is a luminance of at most 1.05 / 3 - 0.05 = 0.3: aim a
     * little under it, and lower the factor while rounding to 8 bits
     * leaves the shade short */
    double k = 0.3 / l * 0.995;
    for (int tries = 0; tries < 64; tries++, k *= 0.99) {
        unsigned ch[3];
        for (int i = 0; i < 3; i++) {
            double v = linear(brand, i) * k;
            v = v <= 0.0030402 ? v * 12.92 : 1.055 * pow(v, 1 / 2.4) - 0.055;
            long n = lround(v * 255.0);
            ch[i] = (unsigned)(n < 0 ? 0 : n > 255 ? 255 : n);
        }
        snprintf(out, size, "#%02x%02x%02x", ch[0], ch[1], ch[2]);
        if (contrast(luminance(out), 1.0) >= 3.0)
            return;
    }
    cs_strlcpy(out, INK, size); /* not reached: the factor shrinks towards black */
}

/* The text colours that go with the shop's colour (brand, "#rrggbb"):
 * *on, for text on it (the header, the buttons), white or the page's ink,
 * whichever stands out more; *ink, for text in it on white (the second
 * button, and its border, all that shows it is a button), the colour
 * itself when it reads there (4.5:1, WCAG's for body text), else the
 * page's ink. A light colour (a yellow) would otherwise carry white text
 * nobody can read, and draw a second button nobody can see. */
static void colors_on(const char *brand, const char **on, const char **ink)
{
    double b = luminance(brand), white = 1.0, dark = luminance(INK);
    *on = contrast(b, white) >= contrast(b, dark) ? "#fff" : INK;
    *ink = contrast(b, white) >= 4.5 ? brand : INK;
}

/* The page's head and header. The logo is /t/logo, linked relative to the
 * page (/t/TOKEN, /t or /u/TOKEN), so it works under any prefix a proxy
 * adds. A word wider than a phone (a German compound, a carrier's text
 * without blanks) breaks: overflowing, it would make a phone's browser
 * shrink the whole page to fit. */
void cs__page_head(hreq_t *r, cs_buf_t *b, const char *lang, const char *title)
{
    cs_http_t *h = r->h;
    const char *c = color_of(h), *on, *ink;
    char mark[8];
    colors_on(c, &on, &ink);
    mark_of(c, mark, sizeof mark);
    cs_buf_printf(b,
                  "<!doctype html><html lang=\"%s\"><head><meta charset=\"utf-8\">"
                  "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
                  "<meta name=\"robots\" content=\"noindex\"><title>",
                  lang);
    cs__page_esc(b, title);
    /* the shop's name too: a tab or a bookmark among others says whose */
    const char *shop = h->opts.shop_name && *h->opts.shop_name ? h->opts.shop_name : NULL;
    if (shop) {
        cs_buf_puts(b, " – ");
        cs__page_esc(b, shop);
    }
    cs_buf_printf(
        b,
        "</title><style>"
        ":root{--b:%s;--on:%s;--ink:%s;--mark:%s}*{box-sizing:border-box}"
        "body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
        "color:#1d1d1f;background:#f5f5f2;overflow-wrap:break-word}"
        "header{background:var(--b);color:var(--on);padding:.8rem 1rem}"
        "header .in{max-width:40rem;margin:0 auto;display:flex;align-items:center;gap:.8rem}"
        "header img{max-height:2.2rem;max-width:10rem}"
        "header .shop{font-weight:600;font-size:1.1rem}"
        "main{max-width:40rem;margin:0 auto;padding:1rem}"
        "h1{font-size:1.35rem;margin:.4rem 0 1rem}h2{font-size:1.05rem;margin:0 0 .6rem}"
        "section{background:#fff;border-radius:.8rem;padding:1rem 1.1rem;margin:0 0 1rem;"
        "box-shadow:0 1px 2px rgba(0,0,0,.06)}"
        ".state{font-size:1.25rem;font-weight:650;margin:0}"
        ".when{margin:.3rem 0 0}.why{margin:.6rem 0 0;color:#8a4b00}.act{margin:.6rem 0 0}"
        ".risk{border-left:.3rem solid #d98c00}.was{color:#666;font-size:.9rem;margin:.4rem 0 0}"
        ".steps{display:flex;list-style:none;padding:0;margin:1rem 0 0;gap:.2rem}"
        ".steps li{flex:1;min-width:0;font-size:.75rem;line-height:1.3;text-align:center;"
        "color:#666;padding-top:.5rem;border-top:.3rem solid #ddd;hyphens:auto;"
        "overflow-wrap:break-word}"
        ".steps li.done{border-color:var(--mark);color:#333}"
        ".steps li.now{border-color:var(--mark);color:#111;font-weight:650}"
        "ol.tl{list-style:none;margin:0;padding:0}"
        "ol.tl li{padding:.5rem 0 .5rem 1rem;border-left:2px solid #ddd;position:relative}"
        "ol.tl li.now{border-color:var(--mark)}"
        "ol.tl li:before{content:'';position:absolute;left:-.4rem;top:.85rem;width:.7rem;"
        "height:.7rem;border-radius:50%%;background:#ccc}"
        "ol.tl li.now:before{background:var(--mark)}"
        "ol.tl time{display:block;font-size:.8rem;color:#666}"
        ".where{color:#555}.raw{display:block;font-size:.8rem;color:#666}"
        "ul.items{margin:0;padding:0;list-style:none}ul.items li{padding:.25rem 0}"
        ".btn{display:inline-block;margin:.4rem .5rem 0 0;padding:.6rem 1rem;border-radius:.5rem;"
        "background:var(--b);color:var(--on);text-decoration:none}"
        ".btn.alt{background:#fff;color:var(--ink);border:1px solid var(--ink)}"
        ".code{font:600 1.1rem ui-monospace,monospace;letter-spacing:.05em}"
        "label{display:block;margin:.6rem 0 .2rem}"
        "input{width:100%%;font:inherit;padding:.55rem;border:1px solid #bbb;border-radius:.4rem}"
        "button{font:inherit;margin-top:1rem;padding:.6rem 1.2rem;border:0;border-radius:.5rem;"
        "background:var(--b);color:var(--on)}"
        "footer{max-width:40rem;margin:0 auto;padding:0 1rem 2rem;font-size:.8rem;color:#595959}"
        "footer a{color:inherit}"
        "</style></head><body><header><div class=\"in\">",
        c, on, ink, mark);
    if (!shop)
        shop = "Shop";
    if (h->logo) {
        /* the hash makes the URL change with the logo: cached for a year */
        cs_buf_printf(b, "<img src=\"%slogo?v=%.16s\" alt=\"",
                      r->route == R_TRACK_PAGE    ? ""
                      : r->route == R_UNSUBSCRIBE ? "../t/"
                                                  : "t/",
                      h->logo_etag + 1);
        cs__page_esc(b, shop);
        cs_buf_puts(b, "\">");
    } else {
        cs_buf_puts(b, "<span class=\"shop\">");
        cs__page_esc(b, shop);
        cs_buf_puts(b, "</span>");
    }
    cs_buf_puts(b, "</div></header><main>");
}

/* The supported language ?lang= asks for, or NULL (absent or unknown: an
 * unknown one falls back like a missing one). */
const char *cs__page_query_lang(hreq_t *r)
{
    const char *q = cs__http_query(r, "lang");
    return q && strcmp(q, "de") == 0 ? "de" : q && strcmp(q, "en") == 0 ? "en" : NULL;
}

/* The browser's preferred language between German and English by its
 * Accept-Language q-values (equal weights: the first listed), or NULL. */
static const char *accept_lang(const char *al)
{
    const char *best = NULL;
    int best_q = 0;
    while (al && *al) {
        size_t n = strcspn(al, ",");
        const char *p = al;
        while (p < al + n && *p == ' ')
            p++;
        const char *lang = NULL;
        if (al + n - p >= 2 && (p + 2 == al + n || p[2] == '-' || p[2] == ';' || p[2] == ' ')) {
            if (strncasecmp(p, "de", 2) == 0)
                lang = "de";
            else if (strncasecmp(p, "en", 2) == 0)
                lang = "en";
        }
        int q = 1000; /* thousandths */
        const char *qp = memchr(p, ';', (size_t)(al + n - p));
        while (qp && qp < al + n && (*qp == ';' || *qp == ' '))
            qp++;
        if (qp && al + n - qp >= 2 && (qp[0] == 'q' || qp[0] == 'Q') && qp[1] == '=') {
            const char *d = qp + 2;
            q = 0;
            if (*d == '1') {
                q = 1000;
            } else if (*d == '0' && d + 1 < al + n && d[1] == '.') {
                int scale = 100;
                for (d += 2; d < al + n && isdigit((unsigned char)*d) && scale; d++, scale /= 10)
                    q += (*d - '0') * scale;
            }
        }
        if (lang && q > best_q) {
            best = lang;
            best_q = q;
        }
        al += n;
        if (*al == ',')
            al++;
    }
    return best;
}

/* The language of a page: ?lang=, else the customer's locale (when it is
 * German or English), else the browser's choice between them, else the
 * language the customer's messages are in (English for a locale of
 * neither), else the shop's default_locale. */
const char *cs__page_lang(hreq_t *r, const char *customer)
{
    const char *q = cs__page_query_lang(r);
    if (q)
        return q;
    if (customer && cs_locale_known(customer))
        return cs_locale_lang(customer);
    const char *al = accept_lang(cs__http_header(r, "Accept-Language"));
    if (al)
        return al;
    if (customer)
        return cs_locale_lang(customer);
    const char *d = r->h->opts.default_locale;
    return cs_locale_lang(d && *d ? d : "de");
}

/* ---- the unsubscribe page ---- */

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
    cs_rc rrc = cs__http_with_reader(h, cust_fn, &c, &err);
    bool read = rrc == CS_OK && c.known;
    const char *lang = cs__page_lang(r, read && c.who.locale[0] ? c.who.locale : NULL);
    bool de = strcmp(lang, "de") == 0;
    /* the store away: whether the customer unsubscribed already is not
     * known, so neither the button nor "unsubscribed already" is shown
     * but a page asking to reload (a POST still tries its write below) */
    if (rrc != CS_OK && strcmp(method, "POST") != 0)
        return page(r, 503, lang, de ? "Bitte noch einmal" : "Please try again",
                    de ? "<p>Das hat gerade nicht geklappt. Bitte laden Sie die Seite gleich "
                         "noch einmal.</p>"
                       : "<p>That did not work just now. Please reload in a moment.</p>");
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
    cs_event_t *e = NULL;
    cs_rc rc = cs_event_compose(ev, &e, &err);
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

enum MHD_Result cs__page_method(hreq_t *r)
{
    const char *lang = cs__page_lang(r, NULL);
    bool de = strcmp(lang, "de") == 0, unsub = r->route == R_UNSUBSCRIBE;
    return page(r, 405, lang,
                unsub ? (de ? "Abmelden" : "Unsubscribe")
                      : (de ? "Sendung verfolgen" : "Track your order"),
                de ? "<p class=\"why\" role=\"alert\">Diese Seite lässt sich so nicht aufrufen. "
                     "Bitte öffnen Sie den Link aus Ihrer Nachricht im Browser.</p>"
                   : "<p class=\"why\" role=\"alert\">This page cannot be opened this way. "
                     "Please open the link from your message in a browser.</p>");
}
