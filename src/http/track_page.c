/*
 * track_page.c -- the tracking page customers open: GET /t/{token} shows
 * one order (status, the window and why it is there, the first promise when
 * it moved, the scans, the items, links to returns and support, the shop's
 * reassurance) in German or English, server-rendered, with the shop's
 * logo and colour inline: nothing is loaded from anywhere else.
 *
 * Access: the token is signed (link_secret, purpose "t"; messages carry it
 * as {{links.tracking}}), or GET /t shows a form and POST /t finds the
 * order by its number plus the delivery postcode or the customer's email
 * and redirects to its signed link. A wrong pair and an unknown order get
 * the same answer; failed lookups are counted per client address (and per
 * order number) over 15 minutes, and past `tracking_lookups` the address
 * gets 429 with Retry-After: no enumeration, no guessing.
 *
 * Pages are cached, rendered, by order, language and day: a request reads
 * only the order's version (its latest event, its promise's last update,
 * its customer's last change) and serves the cached page while that and
 * the day are the same, so a page is never older than the store.
 */
#include "http_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../engine/sender.h"
#include "../template/locale.h"
#include "../tracking/carriers.h"

/* ---- the guard against guessing ---- */

#define LIMIT_SLOTS 4096
#define LIMIT_WINDOW_MS (15 * 60 * 1000)
#define ORDER_LIMIT_FACTOR 2 /* one order number may be tried twice as often, from anywhere */

struct limit_slot {
    uint64_t key;     /* 0 = free */
    int64_t since;    /* window start, monotonic ms */
    int fails;
};

/* ---- the page cache: direct-mapped by the key's hash ---- */

#define PAGE_SLOTS 16384

#define PAGE_KEY_MAX (2 * CS_ID_MAX + 48)

struct page_slot {
    uint64_t hash;                /* 0 = empty */
    char key[PAGE_KEY_MAX];       /* the link's token, the language asked for */
    char id[CS_ID_MAX + 1];       /* the order the token was verified for */
    int64_t version[3];
    const cs_tz_t *tz;            /* the zone its day words were made in */
    int64_t day;
    char *html;                   /* cs_malloc'd */
    size_t len;
    uint64_t used;                /* page_tick when last used */
};

cs_rc cs__track_init(cs_http_t *h)
{
    pthread_mutex_init(&h->limit_mu, NULL);
    pthread_mutex_init(&h->page_mu, NULL);
    h->limits = cs_calloc(LIMIT_SLOTS, sizeof *h->limits);
    h->pages = cs_calloc(PAGE_SLOTS, sizeof *h->pages);
    if (!h->limits || !h->pages) {
        cs_free(h->limits);
        cs_free(h->pages);
        h->limits = NULL;
        h->pages = NULL;
        pthread_mutex_destroy(&h->limit_mu);
        pthread_mutex_destroy(&h->page_mu);
        return CS_ERR_NOMEM;
    }
    return CS_OK;
}

void cs__track_free(cs_http_t *h)
{
    if (!h->limits)
        return;
    for (size_t i = 0; i < PAGE_SLOTS; i++)
        cs_free(h->pages[i].html);
    cs_free(h->pages);
    cs_free(h->limits);
    h->limits = NULL;
    h->pages = NULL;
    pthread_mutex_destroy(&h->limit_mu);
    pthread_mutex_destroy(&h->page_mu);
}

#define PAGE_WAYS 4 /* a key lives in one of 4 slots of its set; the least recently used goes */

static struct page_slot *page_set(cs_http_t *h, uint64_t hash)
{
    return &h->pages[((hash >> 1) % (PAGE_SLOTS / PAGE_WAYS)) * PAGE_WAYS];
}

/* The order of a cached key: a token found here was verified when its
 * page was cached, so it needs no HMAC again. */
static bool page_id(cs_http_t *h, const char *key, uint64_t hash, char *id, size_t size)
{
    bool found = false;
    pthread_mutex_lock(&h->page_mu);
    struct page_slot *set = page_set(h, hash);
    for (int i = 0; i < PAGE_WAYS && !found; i++)
        if (set[i].hash == hash && strcmp(set[i].key, key) == 0) {
            cs_strlcpy(id, set[i].id, size);
            found = true;
        }
    pthread_mutex_unlock(&h->page_mu);
    return found;
}

/* A copy of the cached page (malloc'd, for MHD to free), or NULL. */
static char *page_get(cs_http_t *h, const char *key, uint64_t hash, const int64_t version[3],
                      cs_ms_t now, size_t *len)
{
    char *copy = NULL;
    pthread_mutex_lock(&h->page_mu);
    struct page_slot *set = page_set(h, hash);
    for (int i = 0; i < PAGE_WAYS; i++) {
        struct page_slot *p = &set[i];
        if (p->hash == hash && strcmp(p->key, key) == 0) {
            if (memcmp(p->version, version, sizeof p->version) == 0 &&
                cs_tz_day(p->tz, now) == p->day && (copy = malloc(p->len))) {
                memcpy(copy, p->html, p->len);
                *len = p->len;
                p->used = ++h->page_tick;
            }
            break;
        }
    }
    pthread_mutex_unlock(&h->page_mu);
    return copy;
}

static void page_put(cs_http_t *h, const char *key, uint64_t hash, const char *id,
                     const int64_t version[3], const cs_tz_t *tz, cs_ms_t now, const char *html,
                     size_t len)
{
    char *keep = cs_malloc(len ? len : 1);
    if (!keep)
        return;
    memcpy(keep, html, len);
    pthread_mutex_lock(&h->page_mu);
    struct page_slot *set = page_set(h, hash), *p = &set[0];
    for (int i = 0; i < PAGE_WAYS; i++) {
        if (set[i].hash == hash && strcmp(set[i].key, key) == 0) {
            p = &set[i]; /* a newer version of the same page */
            break;
        }
        if (set[i].used < p->used)
            p = &set[i];
    }
    cs_free(p->html);
    p->hash = hash;
    cs_strlcpy(p->key, key, sizeof p->key);
    cs_strlcpy(p->id, id, sizeof p->id);
    memcpy(p->version, version, sizeof p->version);
    p->tz = tz;
    p->day = cs_tz_day(tz, now);
    p->html = keep;
    p->len = len;
    p->used = ++h->page_tick;
    pthread_mutex_unlock(&h->page_mu);
}

static uint64_t hash_key(const char *kind, const char *v)
{
    return cs_hash_str(cs_hash_str(cs_hash_str(CS_HASH_INIT, kind), ":"), v) | 1;
}

static int64_t mono_ms(void) { return (int64_t)(cs_mono_ns() / 1000000); }

/* The slot of a key (probing a little; the oldest of the probed slots is
 * taken over when all are in use). Under limit_mu. */
static struct limit_slot *slot_of(cs_http_t *h, uint64_t key, int64_t now)
{
    struct limit_slot *oldest = NULL;
    for (int i = 0; i < 8; i++) {
        struct limit_slot *s = &h->limits[(key + (uint64_t)i) % LIMIT_SLOTS];
        if (s->key == key) {
            if (now - s->since >= LIMIT_WINDOW_MS) {
                s->since = now;
                s->fails = 0;
            }
            return s;
        }
        if (!s->key || now - s->since >= LIMIT_WINDOW_MS) {
            s->key = key;
            s->since = now;
            s->fails = 0;
            return s;
        }
        if (!oldest || s->since < oldest->since)
            oldest = s;
    }
    oldest->key = key;
    oldest->since = now;
    oldest->fails = 0;
    return oldest;
}

/* Seconds until the client may try again; 0 = go ahead. */
static int limited(cs_http_t *h, const char *client, const char *order)
{
    int limit = h->opts.tracking_lookups > 0 ? h->opts.tracking_lookups : 10;
    int64_t now = mono_ms();
    int wait = 0;
    pthread_mutex_lock(&h->limit_mu);
    struct limit_slot *c = slot_of(h, hash_key("ip", client), now);
    if (c->fails >= limit)
        wait = (int)((c->since + LIMIT_WINDOW_MS - now) / 1000) + 1;
    if (!wait && order && *order) {
        struct limit_slot *o = slot_of(h, hash_key("order", order), now);
        if (o->fails >= limit * ORDER_LIMIT_FACTOR)
            wait = (int)((o->since + LIMIT_WINDOW_MS - now) / 1000) + 1;
    }
    pthread_mutex_unlock(&h->limit_mu);
    return wait;
}

static void failed(cs_http_t *h, const char *client, const char *order)
{
    int64_t now = mono_ms();
    pthread_mutex_lock(&h->limit_mu);
    slot_of(h, hash_key("ip", client), now)->fails++;
    if (order && *order)
        slot_of(h, hash_key("order", order), now)->fails++;
    pthread_mutex_unlock(&h->limit_mu);
}

/* The client's address; behind a proxy on this machine, the address it
 * forwards (the last X-Forwarded-For entry, the one the proxy added). */
static void client_of(hreq_t *r, char *out, size_t size)
{
    cs_strlcpy(out, "?", size);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    bool loopback = false;
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET) {
            const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
            inet_ntop(AF_INET, &a->sin_addr, out, (socklen_t)size);
            loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
        } else if (sa->sa_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
            inet_ntop(AF_INET6, &a->sin6_addr, out, (socklen_t)size);
            loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
        }
    }
    const char *xff = loopback ? cs__http_header(r, "X-Forwarded-For") : NULL;
    if (xff && *xff) {
        const char *last = strrchr(xff, ',');
        last = last ? last + 1 : xff;
        while (*last == ' ')
            last++;
        if (*last && strlen(last) < size)
            cs_strlcpy(out, last, size);
    }
}

/* ---- HTML ---- */

static void esc(cs_buf_t *b, const char *s)
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

/* URL-encode into a query value. */
static void urlenc(cs_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            cs_buf_append(b, s, 1);
        } else {
            char e[3] = { '%', hex[c >> 4], hex[c & 15] };
            cs_buf_append(b, e, 3);
        }
    }
}

static const char *color_of(cs_http_t *h)
{
    const char *c = h->opts.brand_color;
    return c && strlen(c) == 7 && c[0] == '#' ? c : "#2d5b3f";
}

static void head(cs_http_t *h, cs_buf_t *b, const char *lang, const char *title)
{
    const char *c = color_of(h);
    cs_buf_printf(b,
                  "<!doctype html><html lang=\"%s\"><head><meta charset=\"utf-8\">"
                  "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
                  "<meta name=\"robots\" content=\"noindex\"><title>",
                  lang);
    esc(b, title);
    cs_buf_printf(
        b,
        "</title><style>"
        ":root{--b:%s}*{box-sizing:border-box}"
        "body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
        "color:#1d1d1f;background:#f5f5f2}"
        "header{background:var(--b);color:#fff;padding:.8rem 1rem}"
        "header .in{max-width:40rem;margin:0 auto;display:flex;align-items:center;gap:.8rem}"
        "header img{max-height:2.2rem;max-width:10rem}"
        "header .shop{font-weight:600;font-size:1.1rem}"
        "main{max-width:40rem;margin:0 auto;padding:1rem}"
        "h1{font-size:1.35rem;margin:.4rem 0 1rem}h2{font-size:1.05rem;margin:0 0 .6rem}"
        "section{background:#fff;border-radius:.8rem;padding:1rem 1.1rem;margin:0 0 1rem;"
        "box-shadow:0 1px 2px rgba(0,0,0,.06)}"
        ".state{font-size:1.25rem;font-weight:650;margin:0}"
        ".when{margin:.3rem 0 0}.why{margin:.6rem 0 0;color:#8a4b00}"
        ".risk{border-left:.3rem solid #d98c00}.was{color:#666;font-size:.9rem;margin:.4rem 0 0}"
        ".steps{display:flex;list-style:none;padding:0;margin:1rem 0 0;gap:.25rem}"
        ".steps li{flex:1;min-width:0;font-size:.66rem;line-height:1.3;text-align:center;"
        "color:#888;padding-top:.5rem;border-top:.3rem solid #ddd;hyphens:auto}"
        ".steps li.done{border-color:var(--b);color:#333}"
        ".steps li.now{border-color:var(--b);color:#111;font-weight:650}"
        "ol.tl{list-style:none;margin:0;padding:0}"
        "ol.tl li{padding:.5rem 0 .5rem 1rem;border-left:2px solid #ddd;position:relative}"
        "ol.tl li:first-child{border-color:var(--b)}"
        "ol.tl li:before{content:'';position:absolute;left:-.4rem;top:.85rem;width:.7rem;"
        "height:.7rem;border-radius:50%%;background:#ccc}"
        "ol.tl li:first-child:before{background:var(--b)}"
        "ol.tl time{display:block;font-size:.8rem;color:#666}"
        ".where{color:#555}.raw{display:block;font-size:.8rem;color:#777}"
        "ul.items{margin:0;padding:0;list-style:none}ul.items li{padding:.25rem 0}"
        ".btn{display:inline-block;margin:.4rem .5rem 0 0;padding:.6rem 1rem;border-radius:.5rem;"
        "background:var(--b);color:#fff;text-decoration:none}"
        ".btn.alt{background:#fff;color:var(--b);border:1px solid var(--b)}"
        ".code{font:600 1.1rem ui-monospace,monospace;letter-spacing:.05em}"
        "label{display:block;margin:.6rem 0 .2rem}"
        "input{width:100%%;font:inherit;padding:.55rem;border:1px solid #bbb;border-radius:.4rem}"
        "button{font:inherit;margin-top:1rem;padding:.6rem 1.2rem;border:0;border-radius:.5rem;"
        "background:var(--b);color:#fff}"
        "footer{max-width:40rem;margin:0 auto;padding:0 1rem 2rem;font-size:.8rem;color:#777}"
        "footer a{color:inherit}"
        "</style></head><body><header><div class=\"in\">",
        c);
    const char *shop = h->opts.shop_name && *h->opts.shop_name ? h->opts.shop_name : "Shop";
    if (h->opts.brand_logo && *h->opts.brand_logo) {
        cs_buf_puts(b, "<img src=\"");
        esc(b, h->opts.brand_logo);
        cs_buf_puts(b, "\" alt=\"");
        esc(b, shop);
        cs_buf_puts(b, "\">");
    } else {
        cs_buf_puts(b, "<span class=\"shop\">");
        esc(b, shop);
        cs_buf_puts(b, "</span>");
    }
    cs_buf_puts(b, "</div></header><main>");
}

static enum MHD_Result finish(hreq_t *r, cs_buf_t *b, int status, const char *location,
                              int retry)
{
    size_t len;
    char *text = cs_buf_steal(b, &len);
    if (!text)
        return MHD_NO;
    return cs__http_reply_page(r, status, text, len, location, retry);
}

/* The language of a page: ?lang=, else the browser's first choice between
 * German and English, else German. */
static const char *page_lang(hreq_t *r, const char *fallback)
{
    const char *q = cs__http_query(r, "lang");
    if (q && (strcmp(q, "de") == 0 || strcmp(q, "en") == 0))
        return q;
    if (fallback)
        return cs_locale_lang(fallback);
    const char *al = cs__http_header(r, "Accept-Language");
    if (al) {
        const char *de = strcasestr(al, "de"), *en = strcasestr(al, "en");
        if (en && (!de || en < de))
            return "en";
    }
    return "de";
}

/* Links to our own pages: under public_url when it is set (a proxy may
 * serve us under a prefix), else from the root. */
static const char *base_of(cs_http_t *h)
{
    return h->opts.public_url ? h->opts.public_url : "";
}

static enum MHD_Result lookup_form(hreq_t *r, const char *lang, int status, const char *note,
                                   const char *order, int retry)
{
    cs_http_t *h = r->h;
    bool de = strcmp(lang, "de") == 0;
    cs_buf_t b;
    cs_buf_init(&b, 1024 * 1024);
    head(h, &b, lang, de ? "Sendung verfolgen" : "Track your order");
    cs_buf_printf(&b, "<h1>%s</h1><section>", de ? "Sendung verfolgen" : "Track your order");
    if (note) {
        cs_buf_puts(&b, "<p class=\"why\" role=\"alert\">");
        esc(&b, note);
        cs_buf_puts(&b, "</p>");
    }
    cs_buf_printf(&b,
                  "<form method=\"post\" action=\"");
    esc(&b, base_of(h));
    cs_buf_printf(&b,
                  "/t\"><input type=\"hidden\" name=\"lang\" "
                  "value=\"%s\"><label for=\"order\">%s</label><input id=\"order\" name=\"order\" "
                  "required maxlength=\"%d\" autocomplete=\"off\" value=\"",
                  lang, de ? "Bestellnummer" : "Order number", CS_ID_MAX);
    esc(&b, order ? order : "");
    cs_buf_printf(&b,
                  "\"><label for=\"key\">%s</label><input id=\"key\" name=\"key\" required "
                  "maxlength=\"254\" autocomplete=\"off\"><button type=\"submit\">%s</button>"
                  "</form></section><footer><a href=\"?lang=%s\">%s</a></footer></main>"
                  "</body></html>",
                  de ? "Postleitzahl der Lieferadresse oder E-Mail-Adresse"
                     : "Delivery postcode or email address",
                  de ? "Sendung anzeigen" : "Show my order", de ? "en" : "de",
                  de ? "English" : "Deutsch");
    return finish(r, &b, status, NULL, retry);
}

/* ---- reading ---- */

typedef struct page_ctx {
    const char *id;
    json_t *order;
    cs_contact_t who;
    bool has_who;
    cs_err_t err;
    /* the page: the version only, unless it is not in the cache */
    bool version_first;
    int64_t version[3];
    cs_http_t *h;
    const char *key;
    uint64_t hash;
    cs_ms_t now;
    char *cached;
    size_t cached_len;
} page_ctx_t;

static cs_rc read_fn(cs_store_t *s, void *arg)
{
    page_ctx_t *c = arg;
    cs_rc rc;
    if (c->version_first) {
        if ((rc = cs_store_call(s, order_version, c->id, c->version, &c->err)))
            return rc;
        c->cached = page_get(c->h, c->key, c->hash, c->version, c->now, &c->cached_len);
        if (c->cached)
            return CS_OK;
    }
    return cs__order_read(s, c->id, &c->order, &c->who, &c->has_who, &c->err);
}

/* Postcodes compare without spaces and case ("10115", "SW1A 1AA"). */
static void norm_postcode(const char *in, char *out, size_t size)
{
    size_t o = 0;
    for (; in && *in && o + 1 < size; in++)
        if (!isspace((unsigned char)*in))
            out[o++] = (char)toupper((unsigned char)*in);
    out[o] = '\0';
}

static void trim_copy(const char *in, char *out, size_t size)
{
    while (in && isspace((unsigned char)*in))
        in++;
    cs_strlcpy(out, in ? in : "", size);
    size_t n = strlen(out);
    while (n && isspace((unsigned char)out[n - 1]))
        out[--n] = '\0';
}

/* The order is the one whose customer has this email, or one of whose
 * shipments goes to this postcode. */
static bool key_matches(const page_ctx_t *c, const char *key)
{
    char k[256];
    trim_copy(key, k, sizeof k);
    if (!k[0])
        return false;
    if (strchr(k, '@'))
        return c->has_who && c->who.email[0] && strcasecmp(c->who.email, k) == 0;
    char want[32], got[32];
    norm_postcode(k, want, sizeof want);
    if (strlen(want) < 3)
        return false;
    size_t i;
    json_t *sh;
    json_array_foreach(json_object_get(c->order, "shipments"), i, sh) {
        const char *pc = json_string_value(
            json_object_get(json_object_get(sh, "destination"), "postal_code"));
        norm_postcode(pc, got, sizeof got);
        if (got[0] && strcmp(got, want) == 0)
            return true;
    }
    return false;
}

enum MHD_Result cs__http_track_lookup(hreq_t *r, const char *method)
{
    cs_http_t *h = r->h;
    if (strcmp(method, "POST") != 0)
        return lookup_form(r, page_lang(r, NULL), 200, NULL, NULL, 0);
    char *text = cs_strndup(r->body.data ? r->body.data : "", r->body.len);
    if (!text)
        return MHD_NO;
    kv_t f[8];
    size_t n = r->too_big ? 0 : cs__http_form(text, f, CS_ARRAY_LEN(f));
    const char *lang = cs__http_form_get(f, n, "lang");
    lang = lang && strcmp(lang, "en") == 0 ? "en" : "de";
    bool de = strcmp(lang, "de") == 0;
    char order[CS_ID_MAX + 1];
    trim_copy(cs__http_form_get(f, n, "order"), order, sizeof order);
    const char *key = cs__http_form_get(f, n, "key");
    char client[64];
    client_of(r, client, sizeof client);
    int wait = limited(h, client, order);
    if (wait) {
        atomic_fetch_add(&h->lookups_refused, 1);
        char note[256];
        snprintf(note, sizeof note,
                 de ? "Zu viele Versuche. Bitte versuchen Sie es in %d Minuten noch einmal."
                    : "Too many attempts. Please try again in %d minutes.",
                 (wait + 59) / 60);
        enum MHD_Result ret = lookup_form(r, lang, 429, note, order, wait);
        cs_free(text);
        return ret;
    }
    bool found = false;
    if (order[0] && key && h->opts.link_secret && h->opts.link_secret[0]) {
        page_ctx_t c;
        memset(&c, 0, sizeof c);
        c.id = order;
        cs_err_t err;
        cs_err_clear(&err);
        if (cs__http_with_reader(h, read_fn, &c, &err) == CS_OK)
            found = key_matches(&c, key);
        json_decref(c.order);
    }
    if (!found) {
        failed(h, client, order);
        enum MHD_Result ret = lookup_form(
            r, lang, 404,
            de ? "Wir haben keine Bestellung mit diesen Angaben gefunden. Bitte prüfen Sie "
                 "Bestellnummer und Postleitzahl oder E-Mail-Adresse."
               : "We found no order with these details. Please check the order number and the "
                 "postcode or email address.",
            order, 0);
        cs_free(text);
        return ret;
    }
    char tok[2 * CS_ID_MAX + 64];
    cs_link_token(h->opts.link_secret, "t", order, tok, sizeof tok);
    cs_free(text);
    cs_buf_t loc;
    cs_buf_init(&loc, 4096);
    cs_buf_printf(&loc, "%s/t/%s?lang=%s", base_of(h), tok, lang);
    cs_buf_t b;
    cs_buf_init(&b, 1024 * 1024); /* the logo is inline */
    head(h, &b, lang, de ? "Weiter" : "Continue");
    cs_buf_puts(&b, "<section><p><a href=\"");
    esc(&b, loc.data);
    cs_buf_printf(&b, "\">%s</a></p></section></main></body></html>",
                  de ? "Weiter zur Sendung" : "Continue to your order");
    enum MHD_Result ret = finish(r, &b, 303, loc.data, 0);
    cs_buf_free(&loc);
    return ret;
}

/* ---- the page ---- */

static const char *status_label(int st, bool de)
{
    static const char *const names_de[CS_TRACK__COUNT] = {
        "Angekündigt", "Unterwegs", "In Zustellung", "Zustellversuch", "Abholbereit",
        "Zugestellt", "Problem gemeldet", "Auf dem Rückweg",
    };
    static const char *const names_en[CS_TRACK__COUNT] = {
        "Label created", "In transit", "Out for delivery", "Delivery attempt",
        "Ready for pickup", "Delivered", "Problem reported", "Returning to us",
    };
    if (st < 0 || st >= CS_TRACK__COUNT)
        return de ? "In Bearbeitung" : "Being prepared";
    return de ? names_de[st] : names_en[st];
}

static cs_ms_t jtime(json_t *v)
{
    cs_ms_t t = 0;
    return json_is_string(v) && cs_time_parse(json_string_value(v), &t) ? t : 0;
}

static void steps(cs_buf_t *b, const cs_order_status_t *st, bool de)
{
    /* ordered, shipped, on its way, out for delivery, delivered */
    static const char *const de_s[] = { "Bestellt", "Versendet", "Unterwegs", "In Zustellung",
                                        "Zugestellt" };
    static const char *const en_s[] = { "Ordered", "Shipped", "On its way", "Out for delivery",
                                        "Delivered" };
    int at = 0;
    if (st->shipped)
        at = 1;
    if (st->status == CS_TRACK_IN_TRANSIT || st->status == CS_TRACK_EXCEPTION)
        at = 2;
    if (st->status == CS_TRACK_OUT_FOR_DELIVERY || st->status == CS_TRACK_FAILED_ATTEMPT ||
        st->status == CS_TRACK_AVAILABLE_FOR_PICKUP)
        at = 3;
    if (st->status == CS_TRACK_DELIVERED)
        at = 4;
    cs_buf_puts(b, "<ol class=\"steps\">");
    for (int i = 0; i < 5; i++)
        cs_buf_printf(b, "<li class=\"%s\"%s>%s</li>", i < at ? "done" : i == at ? "now" : "",
                      i == at ? " aria-current=\"step\"" : "", de ? de_s[i] : en_s[i]);
    cs_buf_puts(b, "</ol>");
}

enum MHD_Result cs__http_track_page(hreq_t *r, const char *url)
{
    cs_http_t *h = r->h;
    const char *token = url + 3;
    char id[CS_ID_MAX + 1], client[64];
    page_ctx_t c;
    memset(&c, 0, sizeof c);
    c.id = id;
    cs_err_t err;
    cs_err_clear(&err);
    /* the cache key: the link's token and the language the request asks
     * for (the customer's own is part of the version) */
    char key[PAGE_KEY_MAX];
    const char *qlang = cs__http_query(r, "lang");
    int kn = snprintf(key, sizeof key, "%s|%s|%s", token, qlang ? qlang : "",
                      page_lang(r, NULL));
    c.hash = hash_key("page", key);
    /* a signed link always opens (it cannot be guessed, and a shared
     * address must not lock customers out); only bad tokens count */
    bool valid = kn > 0 && (size_t)kn < sizeof key && h->opts.link_secret &&
                 h->opts.link_secret[0] &&
                 (page_id(h, key, c.hash, id, sizeof id) ||
                  cs_link_token_check(h->opts.link_secret, "t", token, id, sizeof id));
    c.version_first = true;
    c.h = h;
    c.key = key;
    c.now = cs_clock_now(cs_engine_clock(h->engine));
    cs_rc rc = CS_ERR_NOTFOUND;
    if (valid)
        rc = cs__http_with_reader(h, read_fn, &c, &err);
    if (!rc && c.cached) {
        atomic_fetch_add(&h->page_hits, 1);
        return cs__http_reply_page(r, 200, c.cached, c.cached_len, NULL, 0);
    }
    if (rc) {
        json_decref(c.order);
        const char *lang = page_lang(r, NULL);
        bool de = strcmp(lang, "de") == 0;
        if (rc != CS_ERR_NOTFOUND)
            return lookup_form(r, lang, 503,
                               de ? "Das hat gerade nicht geklappt. Bitte laden Sie die Seite "
                                    "gleich noch einmal."
                                  : "That did not work just now. Please reload in a moment.",
                               NULL, 1);
        client_of(r, client, sizeof client);
        int wait = limited(h, client, NULL);
        if (wait) {
            atomic_fetch_add(&h->lookups_refused, 1);
            return lookup_form(r, lang, 429,
                               de ? "Zu viele Versuche. Bitte versuchen Sie es später noch einmal."
                                  : "Too many attempts. Please try again later.",
                               NULL, wait);
        }
        failed(h, client, NULL);
        return lookup_form(r, lang, 404,
                           de ? "Dieser Link ist nicht gültig. Sie können Ihre Sendung mit "
                                "Bestellnummer und Postleitzahl finden."
                              : "This link is not valid. You can find your order with its "
                                "number and your postcode.",
                           NULL, 0);
    }
    const char *lang = page_lang(r, c.has_who && c.who.locale[0] ? c.who.locale : NULL);
    bool de = strcmp(lang, "de") == 0;
    const cs_tz_t *tz = h->opts.shop_tz ? h->opts.shop_tz : cs_tz_get_or_utc(NULL);
    if (c.has_who && c.who.timezone[0])
        tz = cs_tz_get_or_utc(c.who.timezone);
    cs_ms_t now = c.now;
    cs_order_status_t st;
    cs__order_status(h, c.order, lang, tz, now, &st);
    json_t *o = c.order;
    json_t *watch = json_object_get(o, "promise");

    cs_buf_t b;
    cs_buf_init(&b, 1024 * 1024);
    char title[CS_ID_MAX + 64], day[CS_FMT_MAX], tm[CS_FMT_MAX];
    snprintf(title, sizeof title, de ? "Bestellung %s" : "Order %s", id);
    head(h, &b, lang, title);
    cs_buf_puts(&b, "<h1>");
    esc(&b, title);
    cs_buf_printf(&b, "</h1><section class=\"status%s\"><p class=\"state\">",
                  st.at_risk ? " risk" : "");
    esc(&b, st.cancelled ? (de ? "Storniert" : "Cancelled") : status_label(st.status, de));
    cs_buf_puts(&b, "</p>");
    if (st.have_window && st.status != CS_TRACK_DELIVERED && !st.cancelled) {
        cs_buf_printf(&b, "<p class=\"when\">%s <strong>",
                      de ? "Voraussichtliche Lieferung:" : "Expected delivery:");
        esc(&b, st.window_words);
        cs_buf_puts(&b, "</strong></p>");
    }
    cs_buf_puts(&b, "<p class=\"text\">");
    esc(&b, st.text);
    cs_buf_puts(&b, "</p>");
    if (st.at_risk && st.status != CS_TRACK_DELIVERED && !strstr(st.text, st.reason_text)) {
        cs_buf_puts(&b, "<p class=\"why\">");
        esc(&b, st.reason_text);
        cs_buf_puts(&b, "</p>");
    }
    /* the first promise, when the window moved past it */
    cs_ms_t first_to = jtime(json_object_get(json_object_get(watch, "first"), "to"));
    if (first_to && st.have_window && cs_tz_day(tz, st.to) > cs_tz_day(tz, first_to) &&
        st.status != CS_TRACK_DELIVERED) {
        cs_fmt_date(first_to, tz, CS_DATE_DAY, lang, day, sizeof day);
        cs_buf_printf(&b, "<p class=\"was\">%s ",
                      de ? "Ursprünglich zugesagt bis" : "Originally promised by");
        esc(&b, day);
        cs_buf_puts(&b, "</p>");
    }
    if (!st.cancelled)
        steps(&b, &st, de);
    cs_buf_puts(&b, "</section>");

    /* the apology, when the promise broke and a code was issued */
    const char *code = json_string_value(
        json_object_get(json_object_get(watch, "compensation"), "code"));
    if (code) {
        cs_buf_printf(&b, "<section><h2>%s</h2><p>%s</p><p class=\"code\">",
                      de ? "Entschuldigung" : "We are sorry",
                      de ? "Wir haben unser Lieferversprechen nicht gehalten. Mit diesem Code "
                           "sparen Sie bei Ihrer nächsten Bestellung:"
                         : "We did not keep our delivery promise. This code saves you something "
                           "on your next order:");
        esc(&b, code);
        cs_buf_puts(&b, "</p></section>");
    }

    /* the scans, newest first */
    json_t *ships = json_object_get(o, "shipments");
    json_t *sh = json_array_get(ships, json_array_size(ships) ? json_array_size(ships) - 1 : 0);
    json_t *scans = json_object_get(sh, "scans");
    if (sh) {
        cs_buf_printf(&b, "<section><h2>%s</h2>", de ? "Sendungsverlauf" : "Tracking history");
        const char *carrier = json_string_value(json_object_get(sh, "carrier"));
        const char *tn = json_string_value(json_object_get(sh, "tracking_number"));
        cs_buf_puts(&b, "<p class=\"where\">");
        esc(&b, cs_carrier_display_name(carrier));
        if (tn) {
            cs_buf_puts(&b, " · ");
            esc(&b, tn);
        }
        cs_buf_puts(&b, "</p><ol class=\"tl\">");
        for (size_t i = json_array_size(scans); i-- > 0;) {
            json_t *s = json_array_get(scans, i);
            cs_ms_t t = jtime(json_object_get(s, "occurred_at"));
            int sst = cs_track_status_from_name(json_string_value(json_object_get(s, "status")));
            const char *city =
                json_string_value(json_object_get(json_object_get(s, "location"), "city"));
            const char *raw = json_string_value(json_object_get(s, "carrier_text"));
            bool unmapped = json_is_true(json_object_get(s, "unmapped"));
            cs_fmt_date(t, tz, CS_DATE_DAY, lang, day, sizeof day);
            cs_fmt_date(t, tz, CS_DATE_TIME, lang, tm, sizeof tm);
            cs_buf_puts(&b, "<li><time>");
            esc(&b, day);
            cs_buf_puts(&b, ", ");
            esc(&b, tm);
            cs_buf_puts(&b, "</time>");
            esc(&b, status_label(sst, de));
            if (city) {
                cs_buf_puts(&b, " <span class=\"where\">· ");
                esc(&b, city);
                cs_buf_puts(&b, "</span>");
            }
            if (raw && (unmapped || sst == CS_TRACK_EXCEPTION)) {
                cs_buf_puts(&b, "<span class=\"raw\">");
                esc(&b, raw);
                cs_buf_puts(&b, "</span>");
            }
            cs_buf_puts(&b, "</li>");
        }
        cs_ms_t placed = jtime(json_object_get(o, "placed_at"));
        if (placed) {
            cs_fmt_date(placed, tz, CS_DATE_DAY, lang, day, sizeof day);
            cs_fmt_date(placed, tz, CS_DATE_TIME, lang, tm, sizeof tm);
            cs_buf_puts(&b, "<li><time>");
            esc(&b, day);
            cs_buf_puts(&b, ", ");
            esc(&b, tm);
            cs_buf_printf(&b, "</time>%s</li>", de ? "Bestellung eingegangen" : "Order received");
        }
        cs_buf_puts(&b, "</ol></section>");
    }

    /* the items */
    json_t *items = json_object_get(o, "items");
    if (json_array_size(items)) {
        cs_buf_printf(&b, "<section><h2>%s</h2><ul class=\"items\">",
                      de ? "Ihre Artikel" : "Your items");
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it) {
            cs_buf_printf(&b, "<li>%lld × ",
                          (long long)json_integer_value(json_object_get(it, "quantity")));
            esc(&b, json_string_value(json_object_get(it, "name")));
            cs_buf_puts(&b, "</li>");
        }
        cs_buf_puts(&b, "</ul></section>");
    }

    /* reassurance and help */
    const char *re = de ? h->opts.reassurance_de : h->opts.reassurance_en;
    cs_buf_puts(&b, "<section><p>");
    esc(&b, re && *re
                ? re
                : (de ? "Sie müssen nichts tun: Wir behalten Ihre Sendung im Blick und melden "
                        "uns, wenn sich etwas ändert."
                      : "There is nothing you need to do: we keep an eye on your parcel and let "
                        "you know if anything changes."));
    cs_buf_puts(&b, "</p>");
    if (h->opts.returns_url && *h->opts.returns_url) {
        cs_buf_puts(&b, "<a class=\"btn\" href=\"");
        esc(&b, h->opts.returns_url);
        cs_buf_puts(&b, strchr(h->opts.returns_url, '?') ? "&amp;order=" : "?order=");
        cs_buf_t q;
        cs_buf_init(&q, 1024);
        urlenc(&q, id);
        esc(&b, q.data ? q.data : "");
        cs_buf_free(&q);
        cs_buf_printf(&b, "\">%s</a>", de ? "Rücksendung" : "Return an item");
    }
    if (h->opts.support_url && *h->opts.support_url) {
        cs_buf_puts(&b, "<a class=\"btn alt\" href=\"");
        esc(&b, h->opts.support_url);
        cs_buf_printf(&b, "\">%s</a>", de ? "Hilfe" : "Help");
    } else if (h->opts.support_email && *h->opts.support_email) {
        cs_buf_puts(&b, "<a class=\"btn alt\" href=\"mailto:");
        esc(&b, h->opts.support_email);
        cs_buf_puts(&b, "?subject=");
        cs_buf_t q;
        cs_buf_init(&q, 1024);
        urlenc(&q, title);
        esc(&b, q.data ? q.data : "");
        cs_buf_free(&q);
        cs_buf_printf(&b, "\">%s</a>", de ? "Hilfe" : "Help");
    }
    cs_buf_puts(&b, "</section></main><footer>");
    esc(&b, h->opts.shop_name && *h->opts.shop_name ? h->opts.shop_name : "");
    cs_buf_printf(&b, " · <a href=\"?lang=%s\">%s</a></footer></body></html>", de ? "en" : "de",
                  de ? "English" : "Deutsch");
    json_decref(c.order);
    atomic_fetch_add(&h->page_misses, 1);
    if (b.data)
        page_put(h, key, c.hash, id, c.version, tz, c.now, b.data, b.len);
    return finish(r, &b, 200, NULL, 0);
}
