/*
 * olist.c -- import the Olist CSV layout (the public Brazilian e-commerce
 * dataset) as canonical events. Mapping (docs/events.md, "Importing"):
 *
 *   customers        -> customer.upserted (id = customer_unique_id: Olist's
 *                       customer_id is per order), locale pt-BR,
 *                       timezone America/Sao_Paulo, address as attributes
 *   orders + items   -> order.placed (currency BRL; identical products of
 *                       one order merged into a quantity; freight summed as
 *                       shipping; order_estimated_delivery_date as the
 *                       latest promised delivery)
 *   canceled / unavailable -> order.cancelled
 *   order_delivered_carrier_date  -> shipment.created (carrier "olist": the
 *                       dataset does not name carriers; tracking number =
 *                       order id; origin = the seller, destination = the
 *                       customer) + tracking.event in_transit
 *   order_delivered_customer_date -> tracking.event delivered
 *   reviews          -> feedback.submitted (kind review, pt-BR)
 *
 * Olist times carry no zone; they are São Paulo local time (-03:00).
 * Event ids are derived from the source ids, so a re-import is all
 * duplicates. Rows that cannot be mapped (an order without items or of an
 * unknown customer) are counted as skipped and reported, a few of each
 * kind (cs_report_skip: they must not crowd out the errors), and so are
 * item and review rows of an order the orders file lacks; a value that is
 * not what its column holds (a time, a price, a score) or a row short of
 * fields is reported with its file, line and column and counted as
 * rejected, and what it belongs
 * to is not emitted rather than emitted without it (an order without one
 * of its items would hold a wrong total). Neither stops the import.
 */
#include "importer.h"

#include <stdlib.h>
#include <string.h>

/* ---- a bump arena for the loaded tables ---- */

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    char data[];
} chunk_t;

typedef struct arena {
    chunk_t *head;
} arena_t;

static void *arena_alloc(arena_t *a, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (!a->head || a->head->used + n > a->head->cap) {
        size_t cap = n > 65536 ? n : 65536;
        chunk_t *c = cs_malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    return p;
}

static char *arena_strdup(arena_t *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = arena_alloc(a, n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static void arena_free(arena_t *a)
{
    for (chunk_t *c = a->head, *next; c; c = next) {
        next = c->next;
        cs_free(c);
    }
    a->head = NULL;
}

/* ---- loaded records ---- */

typedef struct place {
    const char *zip, *city, *state;
} place_t;

typedef struct customer {
    const char *unique_id;
    place_t place;
    bool emitted;
} customer_t;

typedef struct item {
    const char *product_id, *seller_id, *price, *freight; /* NULL: a short row */
    uint64_t line; /* in the items file */
    struct item *next;
    struct item *tail; /* of the list, kept on its head */
    bool seen;         /* on the head: its order has a row in the orders file */
} item_t;

typedef struct review {
    const char *id, *score, *title, *message, *created;
    uint64_t line; /* in the reviews file */
    struct review *next;
    struct review *tail; /* on the head, as item_t's */
    bool seen;     /* on the head: as item_t's */
} review_t;

#define ORDERS_FILE "olist_orders_dataset.csv"
#define ITEMS_FILE "olist_order_items_dataset.csv"
#define REVIEWS_FILE "olist_order_reviews_dataset.csv"

typedef struct olist {
    arena_t arena;
    cs_map_t categories; /* pt -> en */
    cs_map_t products;   /* product_id -> category (pt) */
    cs_map_t sellers;    /* seller_id -> place_t */
    cs_map_t customers;  /* customer_id -> customer_t */
    cs_map_t uniques;    /* customer_unique_id -> customer_t (the first seen) */
    cs_map_t items;      /* order_id -> item_t list */
    cs_map_t reviews;    /* order_id -> review_t list */
    cs_emit_fn emit;
    void *arg;
    cs_report_t *report;
    cs_import_stats_t *st;
    const char *dir;
    uint64_t line; /* of the record being loaded */
} olist_t;

static cs_rc oom(cs_err_t *err)
{
    return cs_errf(err, CS_ERR_NOMEM, "out of memory");
}

typedef cs_rc (*row_fn)(olist_t *o, char **f, const int *ix, cs_err_t *err);

static cs_rc row_item(olist_t *o, char **f, const int *ix, cs_err_t *err);
static cs_rc item_add(olist_t *o, const char *order_id, char **f, const int *ix, cs_err_t *err);

/* A row of path (at o->line) with fewer fields than the columns asked
 * for: reported and counted as input rejected, with the order it keeps
 * out when it names one. */
static void short_row(olist_t *o, const char *path, int want, size_t got, const char *order_id)
{
    cs_err_t e;
    if (order_id)
        cs_errf(&e, CS_ERR_INVALID,
                "expected %d fields, got %zu; order %.64s: order.placed not imported", want, got,
                order_id);
    else
        cs_errf(&e, CS_ERR_INVALID, "expected %d fields, got %zu; row not imported", want, got);
    cs_report(o->report, path, o->line, &e);
    o->st->read++;
    o->st->rejected++;
}

/* Read one CSV file of dir, calling fn for each record. */
static cs_rc load(olist_t *o, const char *dir, const char *file, const char *const *cols,
                  size_t ncols, bool required, row_fn fn, cs_err_t *err)
{
    char path[4096];
    cs_csv_t *c = NULL;
    int ix[16];
    char **f;
    size_t n;
    cs_rc rc;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if ((rc = cs_csv_open(path, &c, err))) {
        if (!required && rc == CS_ERR_IO)
            return CS_OK;
        return rc;
    }
    if ((rc = cs_csv_header(c, cols, ix, ncols, err)))
        goto out;
    while ((rc = cs_csv_next(c, &f, &n, err)) == CS_OK) {
        int need = 0;
        for (size_t i = 0; i < ncols; i++)
            if (ix[i] > need)
                need = ix[i];
        o->line = cs_csv_line(c);
        if ((size_t)need >= n) {
            /* an item row of an order that can be named keeps that order
             * out, as a bad price does (its total would be wrong) */
            bool of_order = fn == row_item && (size_t)ix[0] < n && f[ix[0]][0];
            short_row(o, path, need + 1, n, of_order ? f[ix[0]] : NULL);
            if (of_order && (rc = item_add(o, f[ix[0]], NULL, NULL, err)))
                goto out;
            continue;
        }
        if ((rc = fn(o, f, ix, err)))
            goto out;
    }
    if (rc == CS_ERR_NOTFOUND)
        rc = CS_OK;
out:
    cs_csv_close(&c);
    return rc;
}

static cs_rc row_category(olist_t *o, char **f, const int *ix, cs_err_t *err)
{
    char *en = arena_strdup(&o->arena, f[ix[1]]);
    if (!en || cs_map_put(&o->categories, f[ix[0]], en))
        return oom(err);
    return CS_OK;
}

static cs_rc row_product(olist_t *o, char **f, const int *ix, cs_err_t *err)
{
    char *cat = arena_strdup(&o->arena, f[ix[1]]);
    if (!cat || cs_map_put(&o->products, f[ix[0]], cat))
        return oom(err);
    return CS_OK;
}

static cs_rc row_seller(olist_t *o, char **f, const int *ix, cs_err_t *err)
{
    place_t *p = arena_alloc(&o->arena, sizeof *p);
    if (!p || !(p->zip = arena_strdup(&o->arena, f[ix[1]])) ||
        !(p->city = arena_strdup(&o->arena, f[ix[2]])) ||
        !(p->state = arena_strdup(&o->arena, f[ix[3]])) || cs_map_put(&o->sellers, f[ix[0]], p))
        return oom(err);
    return CS_OK;
}

static cs_rc row_customer(olist_t *o, char **f, const int *ix, cs_err_t *err)
{
    customer_t *c = arena_alloc(&o->arena, sizeof *c);
    if (!c)
        return oom(err);
    memset(c, 0, sizeof *c);
    if (!(c->unique_id = arena_strdup(&o->arena, f[ix[1]])) ||
        !(c->place.zip = arena_strdup(&o->arena, f[ix[2]])) ||
        !(c->place.city = arena_strdup(&o->arena, f[ix[3]])) ||
        !(c->place.state = arena_strdup(&o->arena, f[ix[4]])) ||
        cs_map_put(&o->customers, f[ix[0]], c))
        return oom(err);
    if (!cs_map_get(&o->uniques, c->unique_id) && cs_map_put(&o->uniques, c->unique_id, c))
        return oom(err);
    return CS_OK;
}

/* Append item it (NULL: a short row, no fields) of order_id, at o->line. */
static cs_rc item_add(olist_t *o, const char *order_id, char **f, const int *ix, cs_err_t *err)
{
    item_t *it = arena_alloc(&o->arena, sizeof *it);
    if (!it)
        return oom(err);
    memset(it, 0, sizeof *it);
    if (f && (!(it->product_id = arena_strdup(&o->arena, f[ix[1]])) ||
              !(it->seller_id = arena_strdup(&o->arena, f[ix[2]])) ||
              !(it->price = arena_strdup(&o->arena, f[ix[3]])) ||
              !(it->freight = arena_strdup(&o->arena, f[ix[4]]))))
        return oom(err);
    it->line = o->line;
    /* keep file order: append (at the tail: an order of many rows must
     * not cost the square of their number) */
    item_t *head = cs_map_get(&o->items, order_id);
    if (!head) {
        it->tail = it;
        return cs_map_put(&o->items, order_id, it) ? oom(err) : CS_OK;
    }
    head->tail->next = it;
    head->tail = it;
    return CS_OK;
}

static cs_rc row_item(olist_t *o, char **f, const int *ix, cs_err_t *err)
{
    return item_add(o, f[ix[0]], f, ix, err);
}

static cs_rc row_review(olist_t *o, char **f, const int *ix, cs_err_t *err)
{
    review_t *r = arena_alloc(&o->arena, sizeof *r);
    if (r)
        memset(r, 0, sizeof *r);
    if (!r || !(r->id = arena_strdup(&o->arena, f[ix[0]])) ||
        !(r->score = arena_strdup(&o->arena, f[ix[2]])) ||
        !(r->title = arena_strdup(&o->arena, f[ix[3]])) ||
        !(r->message = arena_strdup(&o->arena, f[ix[4]])) ||
        !(r->created = arena_strdup(&o->arena, f[ix[5]])))
        return oom(err);
    r->line = o->line;
    /* keep file order: append */
    review_t *head = cs_map_get(&o->reviews, f[ix[1]]);
    if (!head) {
        r->tail = r;
        return cs_map_put(&o->reviews, f[ix[1]], r) ? oom(err) : CS_OK;
    }
    head->tail->next = r;
    head->tail = r;
    return CS_OK;
}

/* ---- building events ---- */

/* "2017-07-09 21:57:05" (São Paulo) -> "2017-07-09T21:57:05-03:00"; false when empty/bad. */
static bool olist_time(const char *s, char *out, size_t size)
{
    cs_ms_t t;
    if (strlen(s) != 19 || s[10] != ' ')
        return false;
    snprintf(out, size, "%.10sT%.8s-03:00", s, s + 11);
    return cs_time_parse(out, &t);
}

/* A value that is not what its column holds, at file:line of dir: reported
 * naming the column, counted as input rejected. */
static void bad_value(olist_t *o, const char *file, uint64_t line, const char *column,
                      const char *value, const char *expected, const char *consequence)
{
    char path[4096];
    cs_err_t e;
    snprintf(path, sizeof path, "%s/%s", o->dir, file);
    cs_err_field(&e, CS_ERR_INVALID, column, "%s: expected %s, got \"%.64s\"; %s", column,
                 expected, value, consequence);
    cs_report(o->report, path, line, &e);
    o->st->read++;
    o->st->rejected++;
}

#define OLIST_TIME "a time like 2017-10-02 10:56:33"
#define OLIST_MONEY "an amount >= 0 with at most 2 decimals like 29.99"
#define OLIST_MONEY_MAX "an amount of at most " CS_MONEY_MAX_TEXT

static json_t *address(const place_t *p)
{
    json_t *a = json_object();
    if (!a || !p)
        return a;
    if (p->zip[0])
        json_object_set_new(a, "postal_code", json_string(p->zip));
    if (p->city[0])
        json_object_set_new(a, "city", json_string(p->city));
    if (p->state[0])
        json_object_set_new(a, "region", json_string(p->state));
    json_object_set_new(a, "country", json_string("BR"));
    return a;
}

/* Validate doc (consumed) and emit it; validation failures are reported.
 * An event dated more than a day after now is refused as the API and the
 * NDJSON import refuse it (a date gone wrong in the export must not
 * become a parcel's latest scan). */
static cs_rc put_event(olist_t *o, json_t *doc, const char *where, uint64_t line, cs_err_t *err)
{
    cs_event_t *ev = NULL;
    cs_err_t e;
    cs_err_clear(&e);
    if (!doc)
        return oom(err);
    o->st->read++;
    cs_rc rc = cs_event_from_json(doc, &ev, &e);
    if (!rc && (rc = cs_event_check_received(ev, cs_clock_now(cs_clock_system()), &e)))
        cs_event_free(&ev);
    json_decref(doc);
    if (rc == CS_ERR_NOMEM)
        return oom(err);
    if (rc) {
        cs_report(o->report, where, line, &e);
        o->st->rejected++;
        return CS_OK;
    }
    o->st->by_type[ev->type]++;
    return o->emit(o->arg, ev, where, line, err);
}

static json_t *envelope(const char *event_id, const char *type, const char *at, json_t *data)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:o}", "event_id", event_id, "type", type,
                     "occurred_at", at, "source", "olist", "data", data);
}

typedef struct merged {
    const char *product_id;
    int64_t price;
    int64_t qty;
} merged_t;

/* The items and reviews of order_id belong to a row of the orders file
 * (whatever becomes of it, it is reported there). */
static void mark_seen(olist_t *o, const char *order_id)
{
    item_t *it = cs_map_get(&o->items, order_id);
    review_t *r = cs_map_get(&o->reviews, order_id);
    if (it)
        it->seen = true;
    if (r)
        r->seen = true;
}

/* A row of the items or reviews file whose order has no row in the orders
 * file: skipped (nothing to attach it to), reported in file order. */
typedef struct orphan {
    uint64_t line;
    const char *order_id, *review_id; /* review_id NULL: an item row */
} orphan_t;

static int orphan_cmp(const void *a, const void *b)
{
    const orphan_t *x = a, *y = b;
    if ((x->review_id != NULL) != (y->review_id != NULL))
        return x->review_id ? 1 : -1; /* items first, then reviews */
    return x->line < y->line ? -1 : x->line > y->line;
}

/* Append to a growing array of orphans. */
static bool orphan_add(orphan_t **v, size_t *n, size_t *cap, orphan_t x)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        orphan_t *nv = cs_realloc(*v, ncap * sizeof *nv);
        if (!nv)
            return false;
        *v = nv;
        *cap = ncap;
    }
    (*v)[(*n)++] = x;
    return true;
}

static cs_rc report_orphans(olist_t *o, cs_err_t *err)
{
    orphan_t *v = NULL;
    size_t n = 0, cap = 0;
    cs_rc rc = CS_OK;
    char ipath[4096], rpath[4096];
    for (size_t i = 0; i < o->items.cap; i++) {
        const char *order_id = cs_map_key_at(&o->items, i);
        item_t *head = order_id ? o->items.vals[i] : NULL;
        for (item_t *it = head && !head->seen ? head : NULL; it; it = it->next)
            if (it->price && /* a short row is reported as such */
                !orphan_add(&v, &n, &cap, (orphan_t){.line = it->line, .order_id = order_id})) {
                rc = oom(err);
                goto out;
            }
    }
    for (size_t i = 0; i < o->reviews.cap; i++) {
        const char *order_id = cs_map_key_at(&o->reviews, i);
        review_t *head = order_id ? o->reviews.vals[i] : NULL;
        for (review_t *r = head && !head->seen ? head : NULL; r; r = r->next)
            if (!orphan_add(&v, &n, &cap,
                            (orphan_t){.line = r->line, .order_id = order_id, .review_id = r->id})) {
                rc = oom(err);
                goto out;
            }
    }
    if (n > 1)
        qsort(v, n, sizeof *v, orphan_cmp);
    snprintf(ipath, sizeof ipath, "%s/%s", o->dir, ITEMS_FILE);
    snprintf(rpath, sizeof rpath, "%s/%s", o->dir, REVIEWS_FILE);
    for (size_t i = 0; i < n; i++) {
        cs_err_t e;
        if (v[i].review_id) {
            cs_errf(&e, CS_ERR_INVALID, "order %.64s is not in " ORDERS_FILE ": review %.64s not imported",
                    v[i].order_id, v[i].review_id);
            cs_report_skip(o->report, rpath, v[i].line, "reviews of an order not in " ORDERS_FILE, &e);
        } else {
            cs_errf(&e, CS_ERR_INVALID, "order %.64s is not in " ORDERS_FILE ": item not imported",
                    v[i].order_id);
            cs_report_skip(o->report, ipath, v[i].line, "items of an order not in " ORDERS_FILE, &e);
        }
        o->st->skipped++;
    }
out:
    cs_free(v);
    return rc;
}

static cs_rc order_rows(olist_t *o, char **f, const int *ix, const char *where, uint64_t line,
                        cs_err_t *err)
{
    const char *order_id = f[ix[0]], *cust_id = f[ix[1]], *status = f[ix[2]];
    char purchased[40], approved[40], carrier[40], delivered[40], eid[256];
    cs_rc rc;
    cs_err_t e;
    static const char *const time_cols[] = {"order_purchase_timestamp", "order_approved_at",
                                            "order_delivered_carrier_date",
                                            "order_delivered_customer_date",
                                            "order_estimated_delivery_date"};
    char tbuf[40];
    mark_seen(o, order_id);
    /* a time that is there must be one: read as absent, a garbled
     * delivery date would leave the parcel in transit for good */
    for (size_t k = 0; k < CS_ARRAY_LEN(time_cols); k++) {
        const char *v = f[ix[3 + k]];
        if ((k == 0 || v[0]) && !olist_time(v, tbuf, sizeof tbuf)) {
            char what[160];
            snprintf(what, sizeof what, "order %.64s: nothing of the row imported", order_id);
            bad_value(o, ORDERS_FILE, line, time_cols[k], v, OLIST_TIME, what);
            return CS_OK;
        }
    }
    customer_t *cu = cs_map_get(&o->customers, cust_id);
    if (!cu) {
        cs_err_field(&e, CS_ERR_INVALID, "customer_id",
                     "order %.64s: unknown customer_id %.64s: nothing of the row imported",
                     order_id, cust_id);
        cs_report_skip(o->report, where, line, "orders of an unknown customer", &e);
        o->st->skipped++;
        return CS_OK;
    }
    olist_time(f[ix[3]], purchased, sizeof purchased);
    bool has_approved = olist_time(f[ix[4]], approved, sizeof approved);
    bool has_carrier = olist_time(f[ix[5]], carrier, sizeof carrier);
    bool has_delivered = olist_time(f[ix[6]], delivered, sizeof delivered);

    /* the customer, once, when first seen */
    customer_t *uc = cs_map_get(&o->uniques, cu->unique_id);
    if (uc && !uc->emitted) {
        uc->emitted = true;
        snprintf(eid, sizeof eid, "olist:customer:%s", cu->unique_id);
        json_t *attrs = json_pack("{s:s, s:s, s:s}", "zip_code_prefix", cu->place.zip, "city",
                                  cu->place.city, "state", cu->place.state);
        rc = put_event(o, envelope(eid, "customer.upserted", purchased,
                                   json_pack("{s:s, s:s, s:s, s:o}", "id", cu->unique_id,
                                             "locale", "pt-BR", "timezone", "America/Sao_Paulo",
                                             "attributes", attrs)),
                       where, line, err);
        if (rc)
            return rc;
    }

    /* the order: identical products merged into a quantity */
    item_t *items = cs_map_get(&o->items, order_id);
    const place_t *origin = NULL;
    if (!items) {
        cs_errf(&e, CS_ERR_INVALID, "order %.64s (%.32s) has no items: order.placed not emitted",
                order_id, status);
        cs_report_skip(o->report, where, line, "orders without items", &e);
        o->st->skipped++;
    } else {
        merged_t m[CS_ITEMS_MAX];
        size_t nm = 0;
        int64_t freight = 0;
        bool whole = true;
        for (item_t *it = items; it && whole; it = it->next) {
            int64_t price = 0, fr = 0;
            if (!it->price) { /* a short row, reported as such */
                whole = false;
                break;
            }
            json_t *pj = json_string(it->price), *fj = json_string(it->freight);
            cs_money_check_t pc = pj ? cs_money_check(pj, &price) : CS_MONEY_MALFORMED;
            cs_money_check_t fc = fj ? cs_money_check(fj, &fr) : CS_MONEY_MALFORMED;
            json_decref(pj);
            json_decref(fj);
            if (!pj || !fj)
                return oom(err);
            if (pc != CS_MONEY_OK || fc != CS_MONEY_OK) {
                /* without this item the order's lines and total are wrong */
                char what[160];
                bool price_ok = pc == CS_MONEY_OK;
                snprintf(what, sizeof what, "order %.64s: order.placed not imported", order_id);
                bad_value(o, ITEMS_FILE, it->line, price_ok ? "freight_value" : "price",
                          price_ok ? it->freight : it->price,
                          (price_ok ? fc : pc) == CS_MONEY_TOO_LARGE ? OLIST_MONEY_MAX : OLIST_MONEY,
                          what);
                whole = false;
                break;
            }
            if (__builtin_add_overflow(freight, fr, &freight))
                freight = INT64_MAX; /* refused as too large a shipping amount, not wrapped */
            if (!origin)
                origin = cs_map_get(&o->sellers, it->seller_id);
            size_t k = 0;
            while (k < nm && !(strcmp(m[k].product_id, it->product_id) == 0 && m[k].price == price))
                k++;
            if (k == nm && nm == CS_ARRAY_LEN(m)) {
                cs_errf(&e, CS_ERR_INVALID,
                        "order %s: more than %d different items: order.placed not imported",
                        order_id, CS_ITEMS_MAX);
                cs_report(o->report, where, line, &e);
                o->st->read++;
                o->st->rejected++;
                whole = false;
                break;
            }
            if (k == nm)
                m[nm++] = (merged_t){.product_id = it->product_id, .price = price, .qty = 0};
            m[k].qty++;
        }
        if (!whole)
            goto after_order;
        json_t *arr = json_array();
        for (size_t k = 0; k < nm && arr; k++) {
            const char *pt = cs_map_get(&o->products, m[k].product_id);
            const char *en = pt ? cs_map_get(&o->categories, pt) : NULL;
            const char *cat = en && *en ? en : (pt && *pt ? pt : "uncategorized");
            char name[160], price[40];
            snprintf(name, sizeof name, "%s %.8s", cat, m[k].product_id);
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:I}", "sku",
                                                 m[k].product_id, "name", name, "category", cat,
                                                 "unit_price",
                                                 cs_money_format(m[k].price, price, sizeof price),
                                                 "quantity", (json_int_t)m[k].qty));
        }
        char ship[40];
        json_t *data = json_pack("{s:s, s:s, s:s, s:s, s:o, s:{s:s}, s:{s:s}}", "id", order_id,
                                 "customer_id", cu->unique_id, "placed_at", purchased, "currency",
                                 "BRL", "items", arr, "totals", "shipping",
                                 cs_money_format(freight, ship, sizeof ship), "attributes",
                                 "olist_status", status);
        const char *est = f[ix[7]];
        if (data && est[0]) { /* checked above: "YYYY-MM-DD hh:mm:ss" */
            char day[11];
            memcpy(day, est, 10);
            day[10] = '\0';
            json_object_set_new(data, "promised_delivery", json_pack("{s:s}", "latest", day));
        }
        /* known at purchase: the seller it ships from, the buyer's address */
        if (data)
            json_object_set_new(data, "shipping",
                                json_pack("{s:s, s:o, s:o}", "carrier", "olist", "origin",
                                          address(origin), "destination", address(&cu->place)));
        snprintf(eid, sizeof eid, "olist:order:%s", order_id);
        if ((rc = put_event(o, envelope(eid, "order.placed", purchased, data), where, line, err)))
            return rc;
    }
after_order:

    if (strcmp(status, "canceled") == 0 || strcmp(status, "unavailable") == 0) {
        snprintf(eid, sizeof eid, "olist:cancel:%s", order_id);
        rc = put_event(o, envelope(eid, "order.cancelled", has_approved ? approved : purchased,
                                   json_pack("{s:s, s:s}", "order_id", order_id, "reason",
                                             strcmp(status, "canceled") == 0 ? "canceled"
                                                                             : "unavailable")),
                       where, line, err);
        if (rc)
            return rc;
    }

    if (has_carrier || has_delivered) {
        snprintf(eid, sizeof eid, "olist:shipment:%s", order_id);
        char sid[80];
        snprintf(sid, sizeof sid, "olist-%s", order_id);
        rc = put_event(o, envelope(eid, "shipment.created", has_carrier ? carrier : delivered,
                                   json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "id", sid,
                                             "order_id", order_id, "carrier", "olist",
                                             "tracking_number", order_id, "origin",
                                             address(origin), "destination",
                                             address(&cu->place))),
                       where, line, err);
        if (rc)
            return rc;
        if (has_carrier) {
            snprintf(eid, sizeof eid, "olist:scan:%s:handover", order_id);
            rc = put_event(o, envelope(eid, "tracking.event", carrier,
                                       json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "shipment_id",
                                                 sid, "carrier", "olist", "tracking_number",
                                                 order_id, "status", "in_transit", "carrier_code",
                                                 "delivered_carrier", "carrier_text",
                                                 "handed over to the carrier")),
                           where, line, err);
            if (rc)
                return rc;
        }
        if (has_delivered) {
            snprintf(eid, sizeof eid, "olist:scan:%s:delivered", order_id);
            rc = put_event(o, envelope(eid, "tracking.event", delivered,
                                       json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "shipment_id",
                                                 sid, "carrier", "olist", "tracking_number",
                                                 order_id, "status", "delivered", "carrier_code",
                                                 "delivered_customer", "location",
                                                 address(&cu->place))),
                           where, line, err);
            if (rc)
                return rc;
        }
    }

    char rpath[4096];
    snprintf(rpath, sizeof rpath, "%s/%s", o->dir, REVIEWS_FILE);
    for (review_t *r = cs_map_get(&o->reviews, order_id); r; r = r->next) {
        char at[40], fid[200], what[160];
        int64_t score;
        snprintf(what, sizeof what, "review %.64s not imported", r->id);
        if (!cs_parse_i64(r->score, &score) || score < 1 || score > 5) {
            bad_value(o, REVIEWS_FILE, r->line, "review_score", r->score, "an integer 1..5", what);
            continue;
        }
        if (!olist_time(r->created, at, sizeof at)) {
            bad_value(o, REVIEWS_FILE, r->line, "review_creation_date", r->created, OLIST_TIME,
                      what);
            continue;
        }
        snprintf(fid, sizeof fid, "%s-%s", r->id, order_id);
        snprintf(eid, sizeof eid, "olist:review:%s", fid);
        json_t *data = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s}", "id", fid, "kind", "review",
                                 "score", (json_int_t)score, "customer_id", cu->unique_id,
                                 "order_id", order_id, "locale", "pt-BR");
        if (data && r->title[0])
            json_object_set_new(data, "title", json_string(r->title));
        if (data && r->message[0])
            json_object_set_new(data, "text", json_string(r->message));
        if ((rc = put_event(o, envelope(eid, "feedback.submitted", at, data), rpath, r->line,
                            err)))
            return rc;
    }
    return CS_OK;
}

cs_rc cs_import_olist(const char *dir, cs_emit_fn emit, void *arg, cs_report_t *report,
                      cs_import_stats_t *st, cs_err_t *err)
{
    static const char *const c_cat[] = {"product_category_name", "product_category_name_english"};
    static const char *const c_prod[] = {"product_id", "product_category_name"};
    static const char *const c_sell[] = {"seller_id", "seller_zip_code_prefix", "seller_city",
                                         "seller_state"};
    static const char *const c_cust[] = {"customer_id", "customer_unique_id",
                                         "customer_zip_code_prefix", "customer_city",
                                         "customer_state"};
    static const char *const c_item[] = {"order_id", "product_id", "seller_id", "price",
                                         "freight_value"};
    static const char *const c_rev[] = {"review_id",      "order_id",
                                        "review_score",   "review_comment_title",
                                        "review_comment_message", "review_creation_date"};
    static const char *const c_ord[] = {"order_id",
                                        "customer_id",
                                        "order_status",
                                        "order_purchase_timestamp",
                                        "order_approved_at",
                                        "order_delivered_carrier_date",
                                        "order_delivered_customer_date",
                                        "order_estimated_delivery_date"};
    olist_t o;
    cs_rc rc;
    memset(&o, 0, sizeof o);
    o.emit = emit;
    o.arg = arg;
    o.report = report;
    o.st = st;
    o.dir = dir;
    cs_map_init(&o.categories);
    cs_map_init(&o.products);
    cs_map_init(&o.sellers);
    cs_map_init(&o.customers);
    cs_map_init(&o.uniques);
    cs_map_init(&o.items);
    cs_map_init(&o.reviews);
    if ((rc = load(&o, dir, "product_category_name_translation.csv", c_cat, 2, false,
                   row_category, err)) ||
        (rc = load(&o, dir, "olist_products_dataset.csv", c_prod, 2, false, row_product, err)) ||
        (rc = load(&o, dir, "olist_sellers_dataset.csv", c_sell, 4, false, row_seller, err)) ||
        (rc = load(&o, dir, "olist_customers_dataset.csv", c_cust, 5, true, row_customer, err)) ||
        (rc = load(&o, dir, ITEMS_FILE, c_item, 5, true, row_item, err)) ||
        (rc = load(&o, dir, REVIEWS_FILE, c_rev, 6, false, row_review, err)))
        goto out;

    char path[4096];
    cs_csv_t *c = NULL;
    int ix[8];
    char **f;
    size_t n;
    snprintf(path, sizeof path, "%s/%s", dir, ORDERS_FILE);
    if ((rc = cs_csv_open(path, &c, err)) || (rc = cs_csv_header(c, c_ord, ix, 8, err))) {
        cs_csv_close(&c);
        goto out;
    }
    int need = 0; /* the columns may stand anywhere in the header */
    for (size_t i = 0; i < 8; i++)
        if (ix[i] > need)
            need = ix[i];
    while ((rc = cs_csv_next(c, &f, &n, err)) == CS_OK) {
        if ((size_t)need >= n) {
            o.line = cs_csv_line(c);
            short_row(&o, path, need + 1, n, NULL);
            if ((size_t)ix[0] < n)
                mark_seen(&o, f[ix[0]]); /* not its items' fault */
            continue;
        }
        if ((rc = order_rows(&o, f, ix, path, cs_csv_line(c), err)))
            break;
    }
    if (rc == CS_ERR_NOTFOUND)
        rc = CS_OK;
    cs_csv_close(&c);
    if (!rc)
        rc = report_orphans(&o, err);
out:
    cs_map_free(&o.categories);
    cs_map_free(&o.products);
    cs_map_free(&o.sellers);
    cs_map_free(&o.customers);
    cs_map_free(&o.uniques);
    cs_map_free(&o.items);
    cs_map_free(&o.reviews);
    arena_free(&o.arena);
    cs_report_end(report);
    return rc;
}
