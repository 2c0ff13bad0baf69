/*
 * track_page.c -- the tracking page customers open: GET /t/{token} shows
 * one order (status, the window and why it is there, the first promise when
 * it moved, each parcel with its scans, the items, the returns sent back,
 * links to returns and support, the shop's reassurance) in German or
 * English, server-rendered with inline CSS; the shop's logo is GET /t/logo
 * on the same server, cached by browsers. Nothing is loaded from other
 * hosts.
 *
 * Access: the token is signed (link_secret, purpose "t"; messages carry it
 * as {{links.tracking}}), or GET /t shows a form and POST /t finds the
 * order by its number plus the delivery postcode or the customer's email
 * and redirects to its signed link. A wrong pair and an unknown order get
 * the same answer after the same reads; failed lookups are counted per
 * client address (IPv6 per /64) and per order number over 15 minutes, and
 * past `tracking_lookups` the address gets 429 with Retry-After. A block is
 * never forgotten to make room: no enumeration, no guessing (the guard is
 * track_guard.c).
 *
 * Pages are cached, rendered, by link, language (de, en or none) and day,
 * within `tracking_page_cache` bytes: a request reads only the order's version (its
 * latest event, its promise's last update, its customer's latest event)
 * and serves the cached page while that and the day are the same -- and,
 * for a page whose window was computed from the promise model rather than
 * taken from the watch, while the model has learned nothing new -- so a
 * page is never older than the store. Thread-safety: the cache has a
 * mutex (the guard its own); the logo is read-only after cs__track_init.
 */
#include "http_int.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../engine/sender.h"
#include "../journey/journey.h"
#include "../model/region.h"
#include "../template/locale.h"
#include "../tracking/carriers.h"
#include "../tracking/tracker.h"

/* ---- the page cache: set-associative by the key's hash, bounded by bytes ---- */

#define PAGE_SLOTS 16384
#define PAGE_BUDGET_DEFAULT ((size_t)32 << 20) /* `tracking_page_cache`; docs/tracking.md */

#define PAGE_KEY_MAX (2 * CS_ID_MAX + 48)

struct page_slot {
    uint64_t hash;                /* 0 = empty */
    char key[PAGE_KEY_MAX];       /* the link's token, the language asked for */
    char id[CS_ID_MAX + 1];       /* the order the token was verified for */
    int64_t version[3];
    int64_t model;                /* the deliveries the promise model had learned when
                                     the page's window was computed from it; -1 = the
                                     window was the watch's (in the version) */
    const cs_tz_t *tz;            /* the zone its day words were made in */
    int64_t day;
    char *html;                   /* cs_malloc'd; NULL = empty */
    size_t len;
    uint64_t used;                /* page_tick when last used */
    bool ref;                     /* used since the eviction clock last passed */
};

/* The logo from its data: URI ("data:TYPE;base64,DATA"), decoded once. */
static int b64v(unsigned char c)
{
    return c >= 'A' && c <= 'Z'   ? c - 'A'
           : c >= 'a' && c <= 'z' ? c - 'a' + 26
           : c >= '0' && c <= '9' ? c - '0' + 52
           : c == '+'             ? 62
           : c == '/'             ? 63
                                  : -1;
}

static cs_rc logo_init(cs_http_t *h)
{
    const char *uri = h->opts.brand_logo;
    if (!uri || !*uri)
        return CS_OK;
    const char *semi = strchr(uri, ';'), *comma = strchr(uri, ',');
    if (strncmp(uri, "data:", 5) != 0 || !semi || !comma || comma < semi ||
        strncmp(semi, ";base64,", 8) != 0 || (size_t)(semi - uri - 5) >= sizeof h->logo_type)
        return CS_ERR_INVALID;
    memcpy(h->logo_type, uri + 5, (size_t)(semi - uri - 5));
    h->logo_type[semi - uri - 5] = '\0';
    const char *p = comma + 1;
    size_t n = strlen(p);
    unsigned char *out = cs_malloc(n / 4 * 3 + 3);
    if (!out)
        return CS_ERR_NOMEM;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (; *p && *p != '='; p++) {
        int v = b64v((unsigned char)*p);
        if (v < 0) {
            cs_free(out);
            return CS_ERR_INVALID;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    char hex[CS_SHA256_HEX_LEN];
    cs_sha256_hex(out, o, hex);
    snprintf(h->logo_etag, sizeof h->logo_etag, "\"%.16s\"", hex);
    h->logo = out;
    h->logo_len = o;
    return CS_OK;
}

cs_rc cs__track_init(cs_http_t *h)
{
    cs_rc rc = cs__track_guard_init(h);
    if (rc)
        return rc;
    pthread_mutex_init(&h->page_mu, NULL);
    h->pages = cs_calloc(PAGE_SLOTS, sizeof *h->pages);
    h->page_budget = h->opts.page_cache_bytes ? h->opts.page_cache_bytes : PAGE_BUDGET_DEFAULT;
    if (!h->pages) {
        rc = CS_ERR_NOMEM;
        goto out;
    }
    rc = logo_init(h);
out:
    if (rc) {
        cs_free(h->logo);
        cs_free(h->pages);
        h->logo = NULL;
        h->pages = NULL;
        pthread_mutex_destroy(&h->page_mu);
        cs__track_guard_free(h);
    }
    return rc;
}

void cs__track_free(cs_http_t *h)
{
    if (!h->pages)
        return;
    for (size_t i = 0; i < PAGE_SLOTS; i++)
        cs_free(h->pages[i].html);
    cs_free(h->pages);
    cs_free(h->logo);
    h->logo = NULL;
    h->pages = NULL;
    pthread_mutex_destroy(&h->page_mu);
    cs__track_guard_free(h);
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
                      int64_t model, cs_ms_t now, size_t *len)
{
    char *copy = NULL;
    pthread_mutex_lock(&h->page_mu);
    struct page_slot *set = page_set(h, hash);
    for (int i = 0; i < PAGE_WAYS; i++) {
        struct page_slot *p = &set[i];
        if (p->hash == hash && p->html && strcmp(p->key, key) == 0) {
            if (memcmp(p->version, version, sizeof p->version) == 0 &&
                (p->model < 0 || p->model == model) && cs_tz_day(p->tz, now) == p->day &&
                (copy = malloc(p->len))) {
                memcpy(copy, p->html, p->len);
                *len = p->len;
                p->used = ++h->page_tick;
                p->ref = true;
            }
            break;
        }
    }
    pthread_mutex_unlock(&h->page_mu);
    return copy;
}

/* Empty a slot. Under page_mu. */
static void page_drop(cs_http_t *h, struct page_slot *p)
{
    if (p->html)
        h->page_bytes -= p->len;
    cs_free(p->html);
    p->html = NULL;
    p->len = 0;
    p->hash = 0;
    p->key[0] = '\0';
    p->ref = false;
    p->used = 0;
}

static void page_put(cs_http_t *h, const char *key, uint64_t hash, const char *id,
                     const int64_t version[3], int64_t model, const cs_tz_t *tz, cs_ms_t now,
                     const char *html, size_t len)
{
    if (len > h->page_budget / 64)
        return; /* an outlier is not worth 1/64 of the budget */
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
    page_drop(h, p);
    /* over the budget: a clock sweeps the table and drops the pages not
     * used since it last passed (two rounds at most drop every page) */
    for (size_t n = 0; h->page_bytes + len > h->page_budget && n < 2 * PAGE_SLOTS; n++) {
        struct page_slot *q = &h->pages[h->page_hand];
        h->page_hand = (h->page_hand + 1) % PAGE_SLOTS;
        if (!q->html)
            continue;
        if (q->ref)
            q->ref = false;
        else
            page_drop(h, q);
    }
    p->hash = hash;
    cs_strlcpy(p->key, key, sizeof p->key);
    cs_strlcpy(p->id, id, sizeof p->id);
    memcpy(p->version, version, sizeof p->version);
    p->model = model;
    p->tz = tz;
    p->day = cs_tz_day(tz, now);
    p->html = keep;
    p->len = len;
    p->used = ++h->page_tick;
    p->ref = true;
    h->page_bytes += len;
    pthread_mutex_unlock(&h->page_mu);
}

/* GET /t/logo: the shop's logo, cached by browsers for a year (its URL
 * carries its hash, so a new logo gets a new URL). Without one, a 404
 * that says so, cached for an hour like any answer of this route (a
 * logo set later is linked under its own URL, so none waits for it). */
static enum MHD_Result logo_reply(hreq_t *r)
{
    static const char none[] = "This shop has no logo (brand_logo is not set).\n";
    cs_http_t *h = r->h;
    const char *inm = cs__http_header(r, "If-None-Match");
    bool same = h->logo && inm && strstr(inm, h->logo_etag);
    int status = !h->logo ? 404 : same ? 304 : 200;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        status == 200 ? h->logo_len : status == 404 ? sizeof none - 1 : 0,
        status == 200 ? h->logo : status == 404 ? (void *)none : (void *)"",
        MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    if (h->logo) {
        MHD_add_response_header(resp, "Content-Type", h->logo_type);
        MHD_add_response_header(resp, "ETag", h->logo_etag);
        MHD_add_response_header(resp, "Cache-Control", "public, max-age=31536000, immutable");
    } else {
        MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
        MHD_add_response_header(resp, "Cache-Control", "public, max-age=3600");
    }
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    /* an SVG opened on its own runs nothing */
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'none'; style-src 'unsafe-inline'; sandbox");
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    cs__http_count(r, status);
    return ret;
}

/* ---- HTML ---- */

static void esc(cs_buf_t *b, const char *s)
{
    cs__page_esc(b, s);
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

static void head(hreq_t *r, cs_buf_t *b, const char *lang, const char *title)
{
    cs__page_head(r, b, lang, title);
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

static const char *page_lang(hreq_t *r, const char *customer)
{
    return cs__page_lang(r, customer);
}

static const char *query_lang(hreq_t *r)
{
    return cs__page_query_lang(r);
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
    bool de = strcmp(lang, "de") == 0;
    cs_buf_t b;
    cs_buf_init(&b, 1024 * 1024);
    head(r, &b, lang, de ? "Sendung verfolgen" : "Track your order");
    cs_buf_printf(&b, "<h1>%s</h1><section>", de ? "Sendung verfolgen" : "Track your order");
    /* a pair that found nothing marks both fields, the note their
     * description (a screen reader tells which fields and why) */
    bool wrong = status == 404 && order;
    const char *inv = wrong ? " aria-invalid=\"true\"" : "";
    if (note) {
        cs_buf_puts(&b, "<p id=\"note\" class=\"why\" role=\"alert\">");
        esc(&b, note);
        cs_buf_puts(&b, "</p>");
    }
    cs_buf_printf(&b,
                  "<form method=\"post\" action=\"");
    esc(&b, base_of(r->h));
    /* (a phone's keyboard would capitalise or correct what is typed: an
     * order number "wb-1001" would go as "Wb-1001", which is no order) */
    cs_buf_printf(&b,
                  "/t\"><input type=\"hidden\" name=\"lang\" "
                  "value=\"%s\"><label for=\"order\">%s</label><input id=\"order\" name=\"order\" "
                  "required maxlength=\"%d\" autocomplete=\"off\" autocapitalize=\"none\" "
                  "autocorrect=\"off\" spellcheck=\"false\"%s%s value=\"",
                  lang, de ? "Bestellnummer" : "Order number", CS_ID_MAX, inv,
                  wrong ? " aria-describedby=\"note\"" : "");
    esc(&b, order ? order : "");
    /* the postcode is the checkout's shipping destination or a parcel's:
     * a shop that sends neither before shipping has only the email then */
    cs_buf_printf(&b,
                  "\"><label for=\"key\">%s</label><input id=\"key\" name=\"key\" required "
                  "maxlength=\"254\" autocomplete=\"off\" autocapitalize=\"none\" "
                  "autocorrect=\"off\" spellcheck=\"false\"%s aria-describedby=\"%skeyhint\">"
                  "<p id=\"keyhint\" class=\"was\">%s</p><button type=\"submit\">%s</button>"
                  "</form></section></main><footer><a href=\"?lang=%s\" lang=\"%s\" "
                  "hreflang=\"%s\">%s</a></footer></body></html>",
                  de ? "Postleitzahl der Lieferadresse oder E-Mail-Adresse"
                     : "Delivery postcode or email address",
                  inv, wrong ? "note " : "",
                  de ? "Die Postleitzahl, an die wir liefern, oder die E-Mail-Adresse, mit der "
                       "Sie bestellt haben."
                     : "The postcode we deliver to, or the email address you ordered with.",
                  de ? "Sendung anzeigen" : "Show my order", de ? "en" : "de", de ? "en" : "de",
                  de ? "en" : "de", de ? "English" : "Deutsch");
    return finish(r, &b, status, NULL, retry);
}

/* Without link_secret no link can be signed, so the page is off: the form
 * and links answer 404 saying so (and that link_secret is what the shop
 * lacks), neither a "not found" for details that were right nor a failed
 * lookup counted towards a 429. */
static bool tracking_off(cs_http_t *h)
{
    return !h->opts.link_secret || !h->opts.link_secret[0];
}

static enum MHD_Result off_page(hreq_t *r, const char *lang)
{
    bool de = strcmp(lang, "de") == 0;
    cs_buf_t b;
    cs_buf_init(&b, 64 * 1024);
    head(r, &b, lang, de ? "Sendung verfolgen" : "Track your order");
    cs_buf_printf(&b,
                  "<h1>%s</h1><section><p class=\"why\" role=\"alert\">%s</p>"
                  "<p class=\"was\">%s</p></section></main></body></html>",
                  de ? "Sendung verfolgen" : "Track your order",
                  de ? "Die Sendungsverfolgung ist hier nicht eingerichtet."
                     : "Order tracking is not set up here.",
                  de ? "Für den Shop: link_secret ist nicht gesetzt; erwartet wird eine "
                       "zufällige Zeichenkette von mindestens 16 Zeichen (docs/tracking.md)."
                     : "For the shop: link_secret is not set; expected a random string of at "
                       "least 16 characters (docs/tracking.md).");
    return finish(r, &b, 404, NULL, 0);
}

/* "in einer Minute" / "in 3 Minuten", from seconds to wait */
static void try_again(char *out, size_t size, int wait, bool de)
{
    int min = (wait + 59) / 60;
    if (min <= 1)
        cs_strlcpy(out,
                   de ? "Zu viele Versuche. Bitte versuchen Sie es in einer Minute noch einmal."
                      : "Too many attempts. Please try again in a minute.",
                   size);
    else
        snprintf(out, size,
                 de ? "Zu viele Versuche. Bitte versuchen Sie es in %d Minuten noch einmal."
                    : "Too many attempts. Please try again in %d minutes.",
                 min);
}

/* ---- reading ---- */

typedef struct page_ctx {
    const char *id;
    cs_order_read_t rd;
    cs_err_t err;
    /* the page: the version only, unless it is not in the cache */
    int64_t version[3];
    int64_t model; /* cs_tracker_learned when the request began */
    cs_http_t *h;
    const char *key;
    uint64_t hash;
    cs_ms_t now;
    char *cached;
    size_t cached_len;
    cs_discount_t disc; /* the compensation code's, when the order has one */
    bool has_disc;
} page_ctx_t;

static cs_rc read_fn(cs_store_t *s, void *arg)
{
    page_ctx_t *c = arg;
    cs_rc rc;
    if ((rc = cs_store_call(s, order_version, c->id, c->version, &c->err)))
        return rc;
    c->cached = page_get(c->h, c->key, c->hash, c->version, c->model, c->now, &c->cached_len);
    if (c->cached)
        return CS_OK;
    if ((rc = cs__order_read(c->h, s, c->id, c->now, &c->rd, &c->err)))
        return rc;
    /* what the compensation code is worth and until when: the watch
     * issues it once per order, under comp:ORDER (tracking/watch.c) */
    if (json_is_string(json_object_get(
            json_object_get(json_object_get(c->rd.order, "promise"), "compensation"), "code"))) {
        char key[CS_ID_MAX + 8];
        snprintf(key, sizeof key, "comp:%s", c->id);
        rc = cs_store_call(s, discount_by_key, key, &c->disc, &c->err);
        if (rc && rc != CS_ERR_NOTFOUND)
            return rc;
        c->has_disc = rc == CS_OK;
    }
    return CS_OK;
}

/* Postcodes compare without spaces and case ("10115", "SW1A 1AA"), and
 * without a country prefix of one or two letters before digits alone
 * ("D-01067", "D 01067", "CH-8001", "LT-01103": as the promise's regions read them,
 * model/region.c), which a shop may store and a customer does not type,
 * or the other way round. */
static void norm_postcode(const char *in, char *out, size_t size)
{
    cs_postal_norm(in, out, size);
    for (char *c = out; *c; c++)
        *c = (char)toupper((unsigned char)*c);
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

/* The lookup reads only what the pair is checked against: the order's row,
 * its parcels' destinations and its customer's email. It reads them of
 * the order the store finds at or after the number typed (order_near):
 * the order itself when it exists, else its neighbour by id, which no
 * client chooses. Then it compares, and an unknown order is a no: a wrong
 * pair and an unknown order cost the same reads, so the time taken does
 * not tell whether an order exists. */
typedef struct key_ctx {
    const char *id;
    const char *key;     /* what the customer typed */
    bool found;
    char order[CS_ID_MAX + 1]; /* when found: the order's id as the shop sent it */
    cs_err_t err;
} key_ctx_t;

/* The forms of an order number as a customer may type it that name the
 * order: as typed; without the "#" a shop shows before it ("#1001", "#
 * 1001"); and each in capitals and in small letters ("wb-1001" for
 * "WB-1001": a phone's keyboard, or a customer copying it by eye).
 * Distinct forms into out[6]; returns their count. */
static size_t id_forms(const char *typed, char out[6][CS_ID_MAX + 1])
{
    size_t n = 0;
    const char *bare = typed;
    if (*bare == '#') {
        bare++;
        while (*bare == ' ')
            bare++;
    }
    const char *base[2] = { typed, bare };
    for (size_t b = 0; b < 2; b++) {
        if (!*base[b])
            continue;
        for (int c = 0; c < 3; c++) { /* as typed, capitals, small letters */
            char f[CS_ID_MAX + 1];
            cs_strlcpy(f, base[b], sizeof f);
            for (char *q = f; c && *q; q++)
                *q = (char)(c == 1 ? toupper((unsigned char)*q) : tolower((unsigned char)*q));
            bool seen = false;
            for (size_t i = 0; i < n && !seen; i++)
                seen = strcmp(out[i], f) == 0;
            if (!seen)
                memcpy(out[n++], f, sizeof f);
        }
    }
    return n;
}

/* One parcel's destination against the postcode typed (normalized). */
typedef struct post_ctx {
    const char *want;
    bool match;
} post_ctx_t;

static cs_rc post_fn(const char *destination, void *ud)
{
    post_ctx_t *p = ud;
    char got[32];
    json_t *dest = destination[0] ? json_loads(destination, 0, NULL) : NULL;
    norm_postcode(json_string_value(json_object_get(dest, "postal_code")), got, sizeof got);
    json_decref(dest);
    p->match |= got[0] && strcmp(got, p->want) == 0;
    return CS_OK; /* every parcel read, matching or not: the same work */
}

static cs_rc keys_fn(cs_store_t *s, void *arg)
{
    key_ctx_t *c = arg;
    cs_order_track_t t;
    cs_contact_t who;
    char read_id[CS_ID_MAX + 1] = "", forms[6][CS_ID_MAX + 1];
    bool exists = false;
    cs_rc rc = CS_OK;
    c->found = false;
    /* every form is looked for, found or not: the same reads for a number
     * typed the same way, whichever of its forms exists */
    size_t nf = id_forms(c->id, forms);
    for (size_t i = 0; i < nf; i++) {
        char near[CS_ID_MAX + 1];
        rc = cs_store_call(s, order_near, forms[i], near, &c->err);
        if (rc == CS_ERR_NOTFOUND)
            return CS_OK; /* no orders at all */
        if (rc)
            return rc;
        if (!exists && (strcmp(near, forms[i]) == 0 || !read_id[0])) {
            exists = strcmp(near, forms[i]) == 0;
            cs_strlcpy(read_id, near, sizeof read_id);
        }
    }
    if (!nf)
        return CS_OK;
    /* the order's row alone (a cutoff past every purchase skips its
     * shipment and scans): the destinations are read below */
    rc = cs_store_call(s, order_track, read_id, INT64_MAX, &t, &c->err);
    if (rc && rc != CS_ERR_NOTFOUND)
        return rc;
    if (rc)
        memset(&t, 0, sizeof t);
    /* a customer without a record is looked up all the same */
    rc = cs_store_call(s, contact_get, t.customer_id[0] ? t.customer_id : "\x1f", &who, &c->err);
    if (rc && rc != CS_ERR_NOTFOUND)
        return rc;
    bool has_who = rc == CS_OK, match = false;
    char k[256], want[32];
    trim_copy(c->key, k, sizeof k);
    if (strchr(k, '@')) {
        match = has_who && who.email[0] && strcasecmp(who.email, k) == 0;
    } else if (k[0]) {
        /* the postcode of any parcel of the order */
        norm_postcode(k, want, sizeof want);
        post_ctx_t p = { want, false };
        if ((rc = cs_store_call(s, order_destinations, read_id, post_fn, &p, &c->err)))
            return rc;
        match = strlen(want) >= 3 && p.match;
    }
    c->found = exists && match;
    if (c->found)
        cs_strlcpy(c->order, read_id, sizeof c->order);
    return CS_OK;
}

enum MHD_Result cs__http_track_lookup(hreq_t *r, const char *method)
{
    cs_http_t *h = r->h;
    if (tracking_off(h))
        return off_page(r, page_lang(r, NULL));
    if (strcmp(method, "POST") != 0)
        return lookup_form(r, page_lang(r, NULL), 200, NULL, NULL, 0);
    char *text = cs_strndup(r->body.data ? r->body.data : "", r->body.len);
    if (!text)
        return MHD_NO;
    kv_t f[8];
    size_t n = r->too_big ? 0 : cs__http_form(text, f, CS_ARRAY_LEN(f));
    const char *lang = cs__http_form_get(f, n, "lang");
    lang = lang && strcmp(lang, "en") == 0 ? "en" : lang && strcmp(lang, "de") == 0 ? "de"
                                                                                     : page_lang(r, NULL);
    bool de = strcmp(lang, "de") == 0;
    char order[CS_ID_MAX + 1];
    trim_copy(cs__http_form_get(f, n, "order"), order, sizeof order);
    const char *key = cs__http_form_get(f, n, "key");
    /* text that is not UTF-8 (a browser sending Latin-1) names no order:
     * a failed lookup like any other, without asking the store, and not
     * echoed into the form */
    if (!cs_utf8_valid(order, strlen(order)))
        order[0] = '\0';
    if (key && !cs_utf8_valid(key, strlen(key)))
        key = NULL;
    char client[64];
    cs__track_guard_client(r, client, sizeof client);
    int wait = cs__track_guard_wait(h, client, order);
    if (wait) {
        atomic_fetch_add(&h->lookups_refused, 1);
        char note[256];
        try_again(note, sizeof note, wait, de);
        enum MHD_Result ret = lookup_form(r, lang, 429, note, order, wait);
        cs_free(text);
        return ret;
    }
    bool found = false;
    if (order[0] && key && h->opts.link_secret && h->opts.link_secret[0]) {
        key_ctx_t c = { .id = order, .key = key };
        cs_err_clear(&c.err);
        cs_err_t err;
        cs_err_clear(&err);
        if (cs__http_with_reader(h, keys_fn, &c, &err) != CS_OK) {
            /* the store away is no wrong pair: not "no such order" (the
             * customer would think it lost), and no failure counted */
            enum MHD_Result ret = lookup_form(
                r, lang, 503,
                de ? "Das hat gerade nicht geklappt. Bitte versuchen Sie es gleich noch einmal."
                   : "That did not work just now. Please try again in a moment.",
                order, 1);
            cs_free(text);
            return ret;
        }
        found = c.found;
        if (found) /* the order's own id: "#1001" typed finds 1001 */
            cs_strlcpy(order, c.order, sizeof order);
    }
    if (!found) {
        cs__track_guard_failed(h, client, order);
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
    cs_buf_init(&b, 64 * 1024);
    head(r, &b, lang, de ? "Weiter" : "Continue");
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

/* A scan's line in the history: its status, or for a parcel still moving
 * what the carrier said holds it up (customs clearance, a delay). */
static const char *scan_label(int st, const char *reason, bool de)
{
    if (st == CS_TRACK_IN_TRANSIT && reason) {
        if (strcmp(reason, "customs") == 0)
            return de ? "Zollabfertigung" : "Customs clearance";
        if (strcmp(reason, "delayed") == 0 || strcmp(reason, "weather") == 0)
            return de ? "Unterwegs, verzögert" : "In transit, delayed";
    }
    return status_label(st, de);
}

static cs_ms_t jtime(json_t *v)
{
    cs_ms_t t = 0;
    return json_is_string(v) && cs_time_parse(json_string_value(v), &t) ? t : 0;
}

/* A <time> with its instant for machines (UTC); the words are the
 * reader's. */
static void time_open(cs_buf_t *b, cs_ms_t t)
{
    char iso[40];
    cs_buf_printf(b, "<time datetime=\"%s\">", cs_time_format(t, iso, sizeof iso));
}

/* The step a parcel is at: 0 ordered (its label created, not yet with the
 * carrier), 1 sent, 2 on its way, 3 out for delivery (or waiting after
 * an attempt, or at a pickup point), 4 delivered. */
static int step_of(int st)
{
    switch (st) {
    case CS_TRACK_INFO_RECEIVED: return 0;
    case CS_TRACK_IN_TRANSIT:
    case CS_TRACK_EXCEPTION: return 2;
    case CS_TRACK_OUT_FOR_DELIVERY:
    case CS_TRACK_FAILED_ATTEMPT:
    case CS_TRACK_AVAILABLE_FOR_PICKUP: return 3;
    case CS_TRACK_DELIVERED: return 4;
    default: return 1;
    }
}

/* The incident reason of the scan that gave a parcel its status, or NULL. */
static const char *status_reason(json_t *sh)
{
    cs_ms_t at = jtime(json_object_get(sh, "status_at"));
    const char *st = json_string_value(json_object_get(sh, "status"));
    json_t *scans = json_object_get(sh, "scans");
    for (size_t k = json_array_size(scans); at && st && k-- > 0;) {
        json_t *s = json_array_get(scans, k);
        const char *sst = json_string_value(json_object_get(s, "status"));
        if (jtime(json_object_get(s, "occurred_at")) == at && sst && strcmp(sst, st) == 0)
            return json_string_value(json_object_get(s, "reason"));
    }
    return NULL;
}

/* What the customer has to do now, if anything: collect a parcel waiting
 * at a pickup point, or send the right address for one the carrier could
 * not deliver. Said under the status, and in place of the default "there
 * is nothing you need to do", which would tell them to wait for a parcel
 * that waits for them. Returns whether there was something. */
static bool to_do(cs_buf_t *b, json_t *ships, bool de, bool help)
{
    size_t n = json_array_size(ships), i;
    json_t *sh;
    bool any = false;
    json_array_foreach(ships, i, sh) {
        int st = cs__parcel_status(sh);
        const char *why = status_reason(sh);
        bool pickup = st == CS_TRACK_AVAILABLE_FOR_PICKUP;
        bool address = (st == CS_TRACK_EXCEPTION || st == CS_TRACK_FAILED_ATTEMPT) && why &&
                       strcmp(why, "address_problem") == 0;
        if (!pickup && !address)
            continue;
        cs_buf_puts(b, any ? " " : "<p class=\"act\"><strong>");
        any = true;
        char which[64];
        if (n > 1)
            snprintf(which, sizeof which, de ? "Paket %zu von %zu" : "parcel %zu of %zu", i + 1,
                     n);
        else
            cs_strlcpy(which, de ? "Ihr Paket" : "your parcel", sizeof which);
        if (pickup)
            cs_buf_printf(b,
                          de ? "Bitte holen Sie %s ab: Es wird dort nur für begrenzte Zeit "
                               "aufbewahrt."
                             : "Please collect %s: it is kept there only for a limited time.",
                          which);
        else if (n > 1)
            cs_buf_printf(b,
                          de ? "Paket %zu von %zu konnte nicht zugestellt werden: Bitte prüfen "
                               "Sie die Lieferadresse und teilen Sie uns die richtige mit%s"
                             : "Parcel %zu of %zu could not be delivered: please check the "
                               "delivery address and tell us the right one%s",
                          i + 1, n,
                          help ? (de ? " (über „Hilfe“ unten)." : " (Help, below).") : ".");
        else
            cs_buf_printf(b,
                          de ? "Bitte prüfen Sie Ihre Lieferadresse und teilen Sie uns die "
                               "richtige mit%s"
                             : "Please check your delivery address and tell us the right one%s",
                          help ? (de ? " (über „Hilfe“ unten)." : " (Help, below).") : ".");
    }
    if (any)
        cs_buf_puts(b, "</strong></p>");
    return any;
}

/* The order's returns, each with where it is (and what came back for a
 * refund), when, and its items by the order's names for them: a customer
 * who sent something back looks here for it. */
static void returns(cs_buf_t *b, json_t *o, bool de, const char *lang, const cs_tz_t *tz,
                    cs_ms_t now)
{
    static const char *const names[][3] = {
        { "requested", "Angemeldet", "Requested" },
        { "approved", "Angenommen", "Approved" },
        { "label_created", "Rücksendeetikett erstellt", "Return label created" },
        { "in_transit", "Unterwegs zu uns", "On its way to us" },
        { "received", "Bei uns angekommen", "Received" },
        { "refunded", "Erstattet", "Refunded" },
        { "rejected", "Abgelehnt", "Declined" },
        { "closed", "Abgeschlossen", "Closed" },
    };
    json_t *rets = json_object_get(o, "returns"), *items = json_object_get(o, "items");
    size_t n = json_array_size(rets), i;
    json_t *rt;
    if (!n)
        return;
    cs_buf_printf(b, "<section><h2>%s</h2><ul class=\"items\">",
                  n > 1 ? (de ? "Ihre Rücksendungen" : "Your returns")
                        : (de ? "Ihre Rücksendung" : "Your return"));
    json_array_foreach(rets, i, rt) {
        const char *st = json_string_value(json_object_get(rt, "status")), *label = NULL;
        for (size_t k = 0; st && k < CS_ARRAY_LEN(names) && !label; k++)
            if (strcmp(st, names[k][0]) == 0)
                label = names[k][de ? 1 : 2];
        cs_buf_puts(b, "<li><strong>");
        esc(b, label ? label : (de ? "In Bearbeitung" : "Being handled"));
        int64_t minor;
        const char *cur = json_string_value(json_object_get(o, "currency"));
        if (st && strcmp(st, "refunded") == 0 && cur &&
            cs_money_from_json(json_object_get(rt, "refund_amount"), &minor)) {
            char money[CS_FMT_MAX];
            cs_buf_puts(b, ": ");
            esc(b, cs_fmt_money(minor, cur, lang, money, sizeof money));
        }
        cs_buf_puts(b, "</strong>");
        cs_ms_t at = jtime(json_object_get(rt, "updated_at"));
        if (at) {
            char day[CS_FMT_MAX];
            cs__fmt_day(at, tz, now, lang, 0, day, sizeof day);
            cs_buf_puts(b, " <span class=\"where\">· ");
            time_open(b, at);
            esc(b, day);
            cs_buf_puts(b, "</time></span>");
        }
        size_t j, m;
        json_t *ri, *it;
        json_array_foreach(json_object_get(rt, "items"), j, ri) {
            const char *sku = json_string_value(json_object_get(ri, "sku")), *name = sku;
            json_array_foreach(items, m, it) {
                const char *isku = json_string_value(json_object_get(it, "sku"));
                if (sku && isku && strcmp(sku, isku) == 0) {
                    name = json_string_value(json_object_get(it, "name"));
                    break;
                }
            }
            cs_buf_printf(b, "<br>%lld × ",
                          (long long)json_integer_value(json_object_get(ri, "quantity")));
            esc(b, name);
        }
        cs_buf_puts(b, "</li>");
    }
    cs_buf_puts(b, "</ul></section>");
}

/* The steps of the order: ordered, sent, on its way, out for delivery,
 * delivered; with several parcels, where the one furthest behind is. A
 * parcel on its way back to the shop goes no further on them: it is left
 * out, and with every parcel on its way back there are no steps to show. */
static void steps(cs_buf_t *b, json_t *ships, bool de)
{
    /* five labels side by side fit a phone 320 px wide only broken into
     * syllables: the soft hyphens say where (a browser without German
     * hyphenation would otherwise draw "Unterwegs" over "In Zustellung") */
    static const char *const de_s[] = { "Bestellt", "Ver&shy;sen&shy;det", "Un&shy;ter&shy;wegs",
                                        "In Zu&shy;stel&shy;lung", "Zu&shy;ge&shy;stellt" };
    static const char *const en_s[] = { "Ordered", "Sent", "On its way", "Out for de&shy;liv&shy;ery",
                                        "De&shy;liv&shy;ered" };
    int at = json_array_size(ships) ? 4 : 0;
    size_t i, back = 0;
    json_t *sh;
    json_array_foreach(ships, i, sh) {
        int st = cs__parcel_status(sh);
        if (st == CS_TRACK_RETURNED_TO_SENDER) {
            back++;
            continue;
        }
        int s = step_of(st);
        if (s < at)
            at = s;
    }
    if (back && back == json_array_size(ships))
        return;
    cs_buf_puts(b, "<ol class=\"steps\">");
    for (int k = 0; k < 5; k++)
        cs_buf_printf(b, "<li class=\"%s\"%s>%s</li>", k < at ? "done" : k == at ? "now" : "",
                      k == at ? " aria-current=\"step\"" : "", de ? de_s[k] : en_s[k]);
    cs_buf_puts(b, "</ol>");
}

/* One parcel: its carrier and number, its status, its scans newest first
 * and, under them, when the order came in: each parcel's way starts at the
 * order (a customer reading only the second of two parcels would not
 * find it otherwise). Days near the reader's today are words ("Heute,
 * 14:05"), so a page is cached for its day only. A scan sent again
 * under another event id is stored once (SQL_SAME_SCAN, store/sql_int.h),
 * so shown once. The scan marked as where the parcel is now is the one its
 * status comes from: the newest, but for a delivered parcel (or one on its
 * way back) the newest saying so -- scans a carrier reports after the
 * delivery are shown but do not count (docs/events.md), and are told as
 * reported after it rather than marked as where the parcel is. */
/* One entry of a parcel's history that is no scan (the order's coming in,
 * its cancellation): its day and time, and what happened. */
static void history_item(cs_buf_t *b, cs_ms_t t, bool is_now, const char *what,
                         const char *lang, const cs_tz_t *tz, cs_ms_t now)
{
    char day[CS_FMT_MAX], tm[CS_FMT_MAX];
    cs__fmt_day(t, tz, now, lang, CS__DAY_CAP, day, sizeof day);
    cs_fmt_date(t, tz, CS_DATE_TIME, lang, tm, sizeof tm);
    cs_buf_puts(b, is_now ? "<li class=\"now\" aria-current=\"true\">" : "<li>");
    time_open(b, t);
    esc(b, day);
    cs_buf_puts(b, ", ");
    esc(b, tm);
    cs_buf_puts(b, "</time>");
    esc(b, what);
    cs_buf_puts(b, "</li>");
}

static void parcel(cs_buf_t *b, const cs_carriers_t *cc, json_t *o, json_t *sh, size_t i,
                   size_t n, bool de, const char *lang, const cs_tz_t *tz, cs_ms_t now)
{
    char day[CS_FMT_MAX], tm[CS_FMT_MAX];
    if (n > 1)
        cs_buf_printf(b, de ? "<section class=\"parcel\"><h2>Paket %zu von %zu</h2>"
                            : "<section class=\"parcel\"><h2>Parcel %zu of %zu</h2>",
                      i + 1, n);
    else
        cs_buf_printf(b, "<section class=\"parcel\"><h2>%s</h2>",
                      de ? "Sendungsverlauf" : "Tracking history");
    const char *carrier = json_string_value(json_object_get(sh, "carrier"));
    const char *tn = json_string_value(json_object_get(sh, "tracking_number"));
    cs_buf_puts(b, "<p class=\"where\">");
    if (n > 1) {
        cs_buf_puts(b, "<strong class=\"pst\">");
        esc(b, status_label(cs__parcel_status(sh), de));
        cs_buf_puts(b, "</strong> · ");
    }
    esc(b, cs_carriers_display_name(cc, carrier));
    if (tn) {
        cs_buf_puts(b, " · ");
        esc(b, tn);
    }
    cs_buf_puts(b, "</p><ol class=\"tl\">");
    json_t *scans = json_object_get(sh, "scans");
    int pst = cs__parcel_status(sh);
    size_t ns = json_array_size(scans), cur = ns ? ns - 1 : 0;
    if (pst == CS_TRACK_DELIVERED || pst == CS_TRACK_RETURNED_TO_SENDER)
        for (size_t k = ns; k-- > 0;)
            if (cs_track_status_from_name(json_string_value(
                    json_object_get(json_array_get(scans, k), "status"))) == pst) {
                cur = k;
                break;
            }
    /* a cancelled order's cancellation, among the scans by its time: where
     * the order is now when nothing came after it (a parcel already on its
     * way may go on moving) */
    const char *ost = json_string_value(json_object_get(o, "status"));
    cs_ms_t cancelled = ost && strcmp(ost, "cancelled") == 0
                            ? jtime(json_object_get(o, "cancelled_at"))
                            : 0;
    const char *cancel_text = de ? "Bestellung storniert" : "Order cancelled";
    bool cancel_now = cancelled &&
                      (!ns || cancelled >= jtime(json_object_get(json_array_get(scans, ns - 1),
                                                                 "occurred_at")));
    for (size_t k = ns; k-- > 0;) {
        json_t *s = json_array_get(scans, k);
        cs_ms_t t = jtime(json_object_get(s, "occurred_at"));
        if (cancelled && cancelled >= t) {
            history_item(b, cancelled, cancel_now, cancel_text, lang, tz, now);
            cancelled = 0;
        }
        int sst = cs_track_status_from_name(json_string_value(json_object_get(s, "status")));
        const char *city =
            json_string_value(json_object_get(json_object_get(s, "location"), "city"));
        const char *raw = json_string_value(json_object_get(s, "carrier_text"));
        bool unmapped = json_is_true(json_object_get(s, "unmapped"));
        /* a code no table knows, without a text (or one of blanks, as
         * the event API takes): the code is the carrier's only word */
        if (!cs__has_word(raw) && unmapped)
            raw = json_string_value(json_object_get(s, "carrier_code"));
        cs__fmt_day(t, tz, now, lang, CS__DAY_CAP, day, sizeof day);
        cs_fmt_date(t, tz, CS_DATE_TIME, lang, tm, sizeof tm);
        bool after = k > cur && pst == CS_TRACK_DELIVERED;
        cs_buf_puts(b, k == cur && !cancel_now ? "<li class=\"now\" aria-current=\"true\">"
                                               : "<li>");
        time_open(b, t);
        esc(b, day);
        cs_buf_puts(b, ", ");
        esc(b, tm);
        cs_buf_puts(b, "</time>");
        esc(b, scan_label(sst, json_string_value(json_object_get(s, "reason")), de));
        if (city) {
            cs_buf_puts(b, " <span class=\"where\">· ");
            esc(b, city);
            cs_buf_puts(b, "</span>");
        }
        if (raw && (unmapped || sst == CS_TRACK_EXCEPTION)) {
            cs_buf_puts(b, "<span class=\"raw\">");
            esc(b, raw);
            cs_buf_puts(b, "</span>");
        }
        if (after)
            cs_buf_printf(b, "<span class=\"raw\">%s</span>",
                          de ? "Nach der Zustellung gemeldet" : "Reported after the delivery");
        cs_buf_puts(b, "</li>");
    }
    if (cancelled) /* before every scan */
        history_item(b, cancelled, cancel_now, cancel_text, lang, tz, now);
    cs_ms_t placed = jtime(json_object_get(o, "placed_at"));
    if (placed)
        history_item(b, placed, !ns && !cancel_now,
                     de ? "Bestellung eingegangen" : "Order received", lang, tz, now);
    cs_buf_puts(b, "</ol></section>");
}

enum MHD_Result cs__http_track_page(hreq_t *r, const char *url)
{
    cs_http_t *h = r->h;
    const char *token = cs__http_path_nul(r) ? "" : url + 3; /* a token cut by a NUL: none */
    if (strcmp(token, "logo") == 0)
        return logo_reply(r);
    /* a link with a slash after it (a mail client's or a chat's): to the
     * link without it, relative, so under any prefix a proxy adds; the
     * page's own links are relative to /t/. Only what has a token's
     * shape (hex digits and its dot): other text is a bad token. */
    size_t tn = strlen(token);
    if (tn > 1 && token[tn - 1] == '/' && tn < 2 * CS_ID_MAX + 64 &&
        strspn(token, "0123456789abcdef.") == tn - 1) {
        const char *ql = query_lang(r);
        char loc[2 * CS_ID_MAX + 96];
        snprintf(loc, sizeof loc, "../%.*s%s%s", (int)(tn - 1), token, ql ? "?lang=" : "",
                 ql ? ql : "");
        const char *lang = page_lang(r, NULL);
        bool de = strcmp(lang, "de") == 0;
        cs_buf_t b;
        cs_buf_init(&b, 4096);
        head(r, &b, lang, de ? "Weiter" : "Continue");
        cs_buf_puts(&b, "<section><p><a href=\"");
        esc(&b, loc);
        cs_buf_printf(&b, "\">%s</a></p></section></main></body></html>",
                      de ? "Weiter zur Sendung" : "Continue to your order");
        return finish(r, &b, 301, loc, 0);
    }
    if (tracking_off(h))
        return off_page(r, page_lang(r, NULL));
    char id[CS_ID_MAX + 1], client[64];
    page_ctx_t c;
    memset(&c, 0, sizeof c);
    c.id = id;
    cs_err_t err;
    cs_err_clear(&err);
    /* the cache key: the link's token and the language the request asks
     * for, both reduced to de, en or none (the customer's own language is
     * part of the version), so one order has at most six pages */
    char key[PAGE_KEY_MAX];
    const char *qlang = query_lang(r);
    int kn = snprintf(key, sizeof key, "%s|%s|%s", token, qlang ? qlang : "",
                      page_lang(r, NULL));
    c.hash = cs__track_hash_key("page", key);
    /* a signed link always opens (it cannot be guessed, and a shared
     * address must not lock customers out); only bad tokens count */
    bool valid = kn > 0 && (size_t)kn < sizeof key && h->opts.link_secret &&
                 h->opts.link_secret[0] &&
                 (page_id(h, key, c.hash, id, sizeof id) ||
                  cs_link_token_check(h->opts.link_secret, "t", token, id, sizeof id));
    c.h = h;
    c.key = key;
    c.now = cs_clock_now(cs_engine_clock(h->engine));
    c.model = h->opts.tracker ? (int64_t)cs_tracker_learned(h->opts.tracker) : 0;
    cs_rc rc = CS_ERR_NOTFOUND;
    if (valid)
        rc = cs__http_with_reader(h, read_fn, &c, &err);
    if (!rc && c.cached) {
        atomic_fetch_add(&h->page_hits, 1);
        return cs__http_reply_page(r, 200, c.cached, c.cached_len, NULL, 0);
    }
    if (rc) {
        json_decref(c.rd.order);
        const char *lang = page_lang(r, NULL);
        bool de = strcmp(lang, "de") == 0;
        if (rc != CS_ERR_NOTFOUND)
            return lookup_form(r, lang, 503,
                               de ? "Das hat gerade nicht geklappt. Bitte laden Sie die Seite "
                                    "gleich noch einmal."
                                  : "That did not work just now. Please reload in a moment.",
                               NULL, 1);
        cs__track_guard_client(r, client, sizeof client);
        int wait = cs__track_guard_wait(h, client, NULL);
        if (wait) {
            atomic_fetch_add(&h->lookups_refused, 1);
            char note[256];
            try_again(note, sizeof note, wait, de);
            return lookup_form(r, lang, 429, note, NULL, wait);
        }
        cs__track_guard_failed(h, client, NULL);
        return lookup_form(r, lang, 404,
                           de ? "Dieser Link ist nicht gültig. Sie können Ihre Sendung mit "
                                "Bestellnummer und Postleitzahl oder E-Mail-Adresse finden."
                              : "This link is not valid. You can find your order with its "
                                "number and your postcode or email address.",
                           NULL, 0);
    }
    const cs_order_read_t *rd = &c.rd;
    const char *lang = page_lang(r, rd->has_who && rd->who.locale[0] ? rd->who.locale : NULL);
    bool de = strcmp(lang, "de") == 0;
    /* dates in the order of the customer's region, as their messages
     * give them (en-US: the month first), on a page in their language */
    const char *dloc = cs_locale_for(lang, rd->has_who ? rd->who.locale : NULL);
    const cs_tz_t *tz = rd->tz;
    cs_order_status_t st;
    cs__order_status(h, rd, dloc, c.now, &st);
    json_t *o = rd->order;
    json_t *watch = json_object_get(o, "promise");
    json_t *ships = json_object_get(o, "shipments");
    bool all_delivered = st.parcels > 0 && st.delivered == st.parcels;

    cs_buf_t b;
    cs_buf_init(&b, 1024 * 1024);
    char title[CS_ID_MAX + 64], day[CS_FMT_MAX];
    snprintf(title, sizeof title, de ? "Bestellung %s" : "Order %s", id);
    head(r, &b, lang, title);
    cs_buf_puts(&b, "<h1>");
    esc(&b, title);
    cs_buf_printf(&b, "</h1><section class=\"status%s\"><p class=\"state\">",
                  st.at_risk && !st.cancelled ? " risk" : "");
    esc(&b, st.cancelled               ? (de ? "Storniert" : "Cancelled")
            : st.parcels > 1 && all_delivered ? status_label(CS_TRACK_DELIVERED, de)
            : st.delivered > 0 && st.parcels > 1 ? (de ? "Teilweise zugestellt" : "Partly delivered")
                                                 : status_label(st.shipped ? st.status : -1, de));
    cs_buf_puts(&b, "</p>");
    /* (a parcel at a pickup point is not delivered to anyone: the text
     * says where it waits) */
    if (st.have_window && !all_delivered && st.status != CS_TRACK_DELIVERED && !st.cancelled &&
        st.status != CS_TRACK_AVAILABLE_FOR_PICKUP) {
        cs_buf_printf(&b, "<p class=\"when\">%s <strong>",
                      de ? "Voraussichtliche Lieferung:" : "Expected delivery:");
        /* after a label, a date stands alone: not "Lieferung: am 12. März" */
        esc(&b, cs_window_bare(st.window_words));
        cs_buf_puts(&b, "</strong></p>");
    }
    cs_buf_puts(&b, "<p class=\"text\">");
    esc(&b, st.text);
    cs_buf_puts(&b, "</p>");
    /* the reason, unless the paragraph says it already (a parcel on its
     * way back is told so there) */
    if (st.at_risk && !st.cancelled && st.status != CS_TRACK_DELIVERED &&
        st.status != CS_TRACK_RETURNED_TO_SENDER && !strstr(st.text, st.reason_text)) {
        cs_buf_puts(&b, "<p class=\"why\">");
        esc(&b, st.reason_text);
        cs_buf_puts(&b, "</p>");
    }
    /* what the customer has to do, right under the status */
    bool help = (h->opts.support_url && *h->opts.support_url) ||
                (h->opts.support_email && *h->opts.support_email);
    bool act = !st.cancelled && to_do(&b, ships, de, help);
    /* the first promise, when the window moved past it */
    cs_ms_t first_to = jtime(json_object_get(json_object_get(watch, "first"), "to"));
    if (first_to && st.have_window &&
        cs_tz_day(rd->shop_tz, st.to) > cs_tz_day(rd->shop_tz, first_to) &&
        st.status != CS_TRACK_DELIVERED && !st.cancelled) {
        /* a promised day is the shop's (as the window's); a date, as
         * "promised by today" reads as no promise */
        cs_fmt_date(first_to, rd->shop_tz, CS_DATE_DAY, dloc, day, sizeof day);
        cs_buf_printf(&b, "<p class=\"was\">%s ",
                      de ? "Ursprünglich zugesagt bis" : "Originally promised by");
        esc(&b, day);
        cs_buf_puts(&b, "</p>");
    }
    if (!st.cancelled)
        steps(&b, ships, de);
    cs_buf_puts(&b, "</section>");

    /* the apology, when the promise broke and a code was issued */
    const char *code = json_string_value(
        json_object_get(json_object_get(watch, "compensation"), "code"));
    if (code) {
        cs_buf_printf(&b, "<section><h2>%s</h2><p>", de ? "Entschuldigung" : "We are sorry");
        if (c.has_disc && strcmp(c.disc.code, code) == 0) {
            /* what it gives and until when, as the apology mail says it */
            const cs_discount_t *dc = &c.disc;
            char what[CS_FMT_MAX + 32], v[CS_FMT_MAX], until[CS_FMT_MAX];
            if (dc->kind == CS_DISCOUNT_PERCENT) {
                int64_t hv = llround(dc->value * 100.0);
                int dec = hv % 10 ? 2 : hv % 100 ? 1 : 0;
                cs_fmt_number(dec == 2 ? hv : dec == 1 ? hv / 10 : hv / 100, dec, lang, v,
                              sizeof v);
                /* in German with a narrow no-break space (U+202F), as
                 * the apology mail has it: number and sign stay together */
                snprintf(what, sizeof what, de ? "%s\xe2\x80\xaf%% Rabatt" : "%s%% off", v);
            } else if (dc->kind == CS_DISCOUNT_AMOUNT) {
                cs_fmt_money((int64_t)llround(dc->value * 100.0), dc->currency, lang, v,
                             sizeof v);
                snprintf(what, sizeof what, de ? "%s Rabatt" : "%s off", v);
            } else {
                cs_strlcpy(what, de ? "kostenlosen Versand" : "free shipping", sizeof what);
            }
            cs_fmt_valid_until(dc->expires_at, tz, dloc, until, sizeof until);
            cs_buf_puts(&b, de ? "Wir haben unser Lieferversprechen nicht gehalten. Als kleine "
                                 "Entschuldigung erhalten Sie mit diesem Code "
                               : "We did not keep our delivery promise. As a small apology, "
                                 "this code gives you ");
            esc(&b, what);
            cs_buf_puts(&b, de ? " auf Ihre nächste Bestellung, gültig bis "
                               : " on your next order, valid until ");
            esc(&b, until);
            cs_buf_puts(&b, ":");
        } else {
            cs_buf_puts(&b, de ? "Wir haben unser Lieferversprechen nicht gehalten. Mit diesem "
                                 "Code sparen Sie bei Ihrer nächsten Bestellung:"
                               : "We did not keep our delivery promise. This code saves you "
                                 "something on your next order:");
        }
        cs_buf_puts(&b, "</p><p class=\"code\">");
        esc(&b, code);
        cs_buf_puts(&b, "</p></section>");
    }

    /* every parcel with its scans */
    for (size_t i = 0; i < json_array_size(ships); i++)
        parcel(&b, cs_engine_carriers(h->engine), o, json_array_get(ships, i), i,
               json_array_size(ships), de, dloc, tz, c.now);

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

    returns(&b, o, de, dloc, tz, c.now);

    /* reassurance and help; returns once something has left the shop */
    const char *re = de ? h->opts.reassurance_de : h->opts.reassurance_en;
    cs_buf_puts(&b, "<section><p>");
    /* (the shop's own sentence stands in every state; the default says
     * there is nothing to do only while that is so, and nothing of
     * keeping an eye on a parcel that has arrived) */
    if (st.cancelled)
        esc(&b, de ? "Haben Sie Fragen zur Stornierung? Wir helfen gern."
                   : "Questions about the cancellation? We are happy to help.");
    else if (re && *re)
        esc(&b, re);
    else if (act)
        esc(&b, de ? "Haben Sie Fragen? Wir helfen gern." : "Any questions? We are happy to help.");
    else if (all_delivered)
        esc(&b, de ? "Ist mit Ihrer Lieferung etwas nicht in Ordnung? Wir helfen gern."
                   : "Is anything wrong with your delivery? We are happy to help.");
    else
        esc(&b, de ? "Sie müssen nichts tun: Wir behalten Ihre Sendung im Blick und "
                     "melden uns, wenn sich etwas ändert."
                   : "There is nothing you need to do: we keep an eye on your parcel and "
                     "let you know if anything changes.");
    cs_buf_puts(&b, "</p>");
    if (h->opts.returns_url && *h->opts.returns_url && st.handed_over && !st.cancelled) {
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
    /* the other language's name is said in that language (a screen reader
     * reading "Deutsch" as English words) */
    const char *other = de ? "en" : "de";
    cs_buf_printf(&b,
                  " · <a href=\"?lang=%s\" lang=\"%s\" hreflang=\"%s\">%s</a></footer></body>"
                  "</html>",
                  other, other, other, de ? "English" : "Deutsch");
    json_decref(c.rd.order);
    atomic_fetch_add(&h->page_misses, 1);
    if (b.data)
        page_put(h, key, c.hash, id, c.version, st.computed ? c.model : -1, tz, c.now, b.data,
                 b.len);
    return finish(r, &b, 200, NULL, 0);
}
