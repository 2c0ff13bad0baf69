/*
 * promise_eval.c -- evaluate the promise model on Olist-layout CSVs (see
 * promise_eval.h): learn from one folder's deliveries, predict the other's
 * orders at their purchase time, and compare with the shop's own
 * order_estimated_delivery_date on the same orders.
 *
 * The replay is in time order, as the daemon would live it: a delivery is
 * learned when it completes (train and test orders alike), a test order is
 * predicted when it is placed, with everything delivered before then (and
 * the parcels under way then). A test order's own delivery teaches the
 * test orders placed after it arrived, as it would in production.
 *
 * The shop's order_estimated_delivery_date is a date, not a window: it is
 * scored late or on time (on_time_rate = 1 - late_rate), never with the
 * window hit rate (from <= delivered <= to) that the model's window gets.
 */
#include "promise_eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../importer/importer.h"
#include "../lib/cs_map.h"

typedef struct ord {
    char id[40];
    char state_from[8], state_to[8];
    cs_ms_t placed, shipped, delivered, estimated;
    bool test;
} ord_t;

/* At the same instant: learn, then note parcels handed over, then predict. */
enum { STEP_DELIVERED, STEP_SHIPPED, STEP_PREDICT };

typedef struct step {
    cs_ms_t at;
    int kind; /* STEP_* */
    size_t i;
} step_t;

static int by_at(const void *a, const void *b)
{
    const step_t *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    return x->kind - y->kind;
}

/* "2017-07-09 21:57:05" (or the date alone) in São Paulo time: true with
 * *ms set, or 0 when s is empty; false when s is not such a time (a 25th
 * hour or a 13th month is not carried into the next day or year). It is
 * read by cs_time_parse as a UTC wall time, which checks the calendar's and
 * the clock's ranges as for any timestamp, then placed in tz. */
static bool olist_ms(const cs_tz_t *tz, const char *s, cs_ms_t *ms)
{
    size_t len = strlen(s);
    char iso[24];
    cs_ms_t t;
    cs_local_t l;
    *ms = 0;
    if (!len)
        return true;
    if ((len != 10 && len != 19) || (len == 19 && s[10] != ' '))
        return false;
    snprintf(iso, sizeof iso, len == 19 ? "%sZ" : "%s", s);
    if (!cs_time_parse(iso, &t))
        return false;
    cs_tz_to_local(cs_tz_get_or_utc(NULL), t, &l);
    *ms = cs_tz_from_local(tz, &l);
    return true;
}

typedef struct table {
    cs_map_t customer_state; /* customer_id -> state (owned strdup) */
    cs_map_t seller_state;   /* seller_id -> state */
    cs_map_t order_seller;   /* order_id -> seller_id (first item) */
} table_t;

static void table_free(table_t *t)
{
    cs_map_t *maps[] = { &t->customer_state, &t->seller_state, &t->order_seller };
    for (size_t k = 0; k < 3; k++) {
        for (size_t i = 0; i < maps[k]->cap; i++)
            if (cs_map_key_at(maps[k], i))
                cs_free(maps[k]->vals[i]);
        cs_map_free(maps[k]);
    }
}

/* Read two columns of a CSV into a map (first value per key wins). */
static cs_rc read_pairs(const char *dir, const char *file, const char *kcol, const char *vcol,
                        cs_map_t *m, cs_err_t *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    cs_csv_t *c;
    cs_rc rc = cs_csv_open(path, &c, err);
    if (rc)
        return rc;
    const char *names[2] = { kcol, vcol };
    int ix[2];
    char **f;
    size_t n;
    if ((rc = cs_csv_header(c, names, ix, 2, err)))
        goto out;
    while ((rc = cs_csv_next(c, &f, &n, err)) == CS_OK) {
        if ((size_t)ix[0] >= n || (size_t)ix[1] >= n || cs_map_get(m, f[ix[0]]))
            continue;
        char *v = cs_strdup(f[ix[1]]);
        if (!v || cs_map_put(m, f[ix[0]], v)) {
            cs_free(v);
            rc = cs_errf(err, CS_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    if (rc == CS_ERR_NOTFOUND)
        rc = CS_OK;
out:
    cs_csv_close(&c);
    return rc;
}

static cs_rc read_folder(const char *dir, table_t *t, cs_err_t *err)
{
    cs_rc rc;
    if ((rc = read_pairs(dir, "olist_customers_dataset.csv", "customer_id", "customer_state",
                         &t->customer_state, err)) ||
        (rc = read_pairs(dir, "olist_sellers_dataset.csv", "seller_id", "seller_state",
                         &t->seller_state, err)) ||
        (rc = read_pairs(dir, "olist_order_items_dataset.csv", "order_id", "seller_id",
                         &t->order_seller, err)))
        return rc;
    return CS_OK;
}

#define SKIPS_TOLD 10
typedef struct orders {
    ord_t *o;
    size_t n, cap;
    size_t skipped;                 /* rows left out: too short, or a time that is not one */
    char told[SKIPS_TOLD][320];     /* the first of them, why */
} orders_t;

static void skip_row(orders_t *out, const char *path, uint64_t line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void skip_row(orders_t *out, const char *path, uint64_t line, const char *fmt, ...)
{
    if (out->skipped < SKIPS_TOLD) {
        char *b = out->told[out->skipped];
        size_t size = sizeof out->told[0];
        int k = snprintf(b, size, "%s:%llu: ", path, (unsigned long long)line);
        va_list ap;
        va_start(ap, fmt);
        if (k > 0 && (size_t)k < size)
            vsnprintf(b + k, size - (size_t)k, fmt, ap);
        va_end(ap);
    }
    out->skipped++;
}

/* Orders of a folder; test orders (or, with split_at, those placed at or
 * after it) are flagged. */
static cs_rc read_orders(const char *dir, const table_t *t, const cs_tz_t *tz, int mode,
                         cs_ms_t split_at, orders_t *out, cs_err_t *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/olist_orders_dataset.csv", dir);
    cs_csv_t *c;
    cs_rc rc = cs_csv_open(path, &c, err);
    if (rc)
        return rc;
    static const char *const names[] = { "order_id", "customer_id", "order_status",
                                         "order_purchase_timestamp", "order_delivered_carrier_date",
                                         "order_delivered_customer_date",
                                         "order_estimated_delivery_date" };
    int ix[7];
    char **f;
    size_t n;
    if ((rc = cs_csv_header(c, names, ix, 7, err)))
        goto out;
    while ((rc = cs_csv_next(c, &f, &n, err)) == CS_OK) {
        uint64_t line = cs_csv_line(c);
        size_t need = 0;
        for (int k = 0; k < 7; k++)
            need = (size_t)ix[k] >= need ? (size_t)ix[k] + 1 : need;
        if (n < need) {
            skip_row(out, path, line, "%zu fields, expected %zu", n, need);
            continue;
        }
        ord_t o;
        memset(&o, 0, sizeof o);
        /* every time is one, or empty (not yet); the purchase is needed */
        static const int when[] = { 3, 4, 5, 6 };
        cs_ms_t *to[] = { &o.placed, &o.shipped, &o.delivered, &o.estimated };
        int bad = -1;
        for (int k = 0; k < 4 && bad < 0; k++)
            if (!olist_ms(tz, f[ix[when[k]]], to[k]))
                bad = when[k];
        if (bad >= 0) {
            skip_row(out, path, line, "order %.40s: %s \"%.40s\" is not a time like "
                     "2017-07-09 21:57:05", f[ix[0]], names[bad], f[ix[bad]]);
            continue;
        }
        if (!o.placed) {
            skip_row(out, path, line, "order %.40s: order_purchase_timestamp is empty", f[ix[0]]);
            continue;
        }
        if (strcmp(f[ix[2]], "delivered") != 0)
            o.delivered = 0;
        const char *cst = cs_map_get(&t->customer_state, f[ix[1]]);
        const char *sid = cs_map_get(&t->order_seller, f[ix[0]]);
        const char *sst = sid ? cs_map_get(&t->seller_state, sid) : NULL;
        cs_strlcpy(o.id, f[ix[0]], sizeof o.id);
        cs_strlcpy(o.state_to, cst ? cst : "", sizeof o.state_to);
        cs_strlcpy(o.state_from, sst ? sst : "", sizeof o.state_from);
        o.test = mode == 1 || (mode == 2 && o.placed >= split_at);
        if (out->n == out->cap) {
            size_t cap = out->cap ? out->cap * 2 : 1024;
            ord_t *p = cs_realloc(out->o, cap * sizeof *p);
            if (!p) {
                rc = cs_errf(err, CS_ERR_NOMEM, "out of memory");
                goto out;
            }
            out->o = p;
            out->cap = cap;
        }
        out->o[out->n++] = o;
    }
    if (rc == CS_ERR_NOTFOUND)
        rc = CS_OK;
out:
    cs_csv_close(&c);
    return rc;
}

/* Calendar days between the local dates of a and b. */
static int64_t date_diff(const cs_tz_t *tz, cs_ms_t a, cs_ms_t b)
{
    return cs_tz_day(tz, b) - cs_tz_day(tz, a);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double median_i64(int64_t *v, size_t n)
{
    if (!n)
        return NAN;
    qsort(v, n, sizeof *v, cmp_i64);
    return n % 2 ? (double)v[n / 2] : ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2.0;
}

/* hit_key names what `hit` counts: "window_hit_rate" for a window
 * (from <= got <= to), "on_time_rate" for the shop's estimate, a date and
 * no window (got <= estimate: 1 - late_rate, not comparable with a hit). */
static json_t *figures(double mae, int64_t *ends, size_t n, size_t late, const char *hit_key,
                       size_t hit)
{
    double med = median_i64(ends, n);
    return json_pack("{s:f,s:f,s:f,s:f}", "point_mae_days", round(mae * 100) / 100,
                     "median_window_end_days", med, "late_rate",
                     n ? round((double)late / (double)n * 10000) / 10000 : 0.0, hit_key,
                     n ? round((double)hit / (double)n * 10000) / 10000 : 0.0);
}

/* ---- the bound: what knowing the test period itself would buy ----
 *
 * An oracle that is told the delivery times of the test orders themselves:
 * each order's window ends at a quantile of the other test orders of its
 * group (leave-one-out), its point is their median. No model that promises
 * at purchase with only that grouping can do better on these orders; it
 * shows where the sample itself puts the limit. */

#define BOUND_MIN_GROUP 5   /* fewer others in the group: all test orders */
#define BOUND_QS 50         /* quantiles 0.50, 0.51, ... 0.99 */

typedef struct known {
    const ord_t *o;
    int64_t got; /* days from purchase to delivery */
} known_t;

typedef struct ranked {
    const known_t *k;
    size_t i; /* index in the known array */
} ranked_t;

/* Orders by their group's key: destination state (grouping 0), then the
 * origin state too (grouping 1). */
static int group_cmp(const ord_t *a, const ord_t *b, int grouping)
{
    int c = strcmp(a->state_to, b->state_to);
    return c || grouping == 0 ? c : strcmp(a->state_from, b->state_from);
}

static bool same_group(const ord_t *a, const ord_t *b, int grouping)
{
    return group_cmp(a, b, grouping) == 0;
}

static int by_got(const void *a, const void *b)
{
    const ranked_t *x = a, *y = b;
    return x->k->got < y->k->got ? -1 : x->k->got > y->k->got;
}

static int by_dest(const void *a, const void *b)
{
    const ranked_t *x = a, *y = b;
    int c = group_cmp(x->k->o, y->k->o, 0);
    return c ? c : by_got(a, b);
}

static int by_lane(const void *a, const void *b)
{
    const ranked_t *x = a, *y = b;
    int c = group_cmp(x->k->o, y->k->o, 1);
    return c ? c : by_got(a, b);
}

/* The j-th smallest (0-based) of the m sorted values v without the one at
 * position p: leave-one-out without copying. */
static int64_t loo_at(const ranked_t *v, size_t p, size_t j)
{
    return j < p ? v[j].k->got : v[j + 1].k->got;
}

/* Fill ends[q * n + i] for every quantile step and add up the late orders
 * and the point's absolute error. Each group is sorted once; an order's
 * leave-one-out quantiles are read off its group's sorted values by
 * position. false when out of memory. */
static bool bound_ends(const known_t *k, size_t n, int grouping, int64_t *ends, size_t *late,
                       double *abs_err)
{
    *abs_err = 0;
    memset(late, 0, BOUND_QS * sizeof *late);
    ranked_t *g = cs_calloc(n + 1, sizeof *g), *all = cs_calloc(n + 1, sizeof *all);
    size_t *pos_all = cs_calloc(n + 1, sizeof *pos_all);
    if (!g || !all || !pos_all) {
        cs_free(g);
        cs_free(all);
        cs_free(pos_all);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        g[i] = all[i] = (ranked_t){ &k[i], i };
    qsort(g, n, sizeof *g, grouping == 0 ? by_dest : by_lane);
    qsort(all, n, sizeof *all, by_got);
    for (size_t j = 0; j < n; j++)
        pos_all[all[j].i] = j;
    for (size_t a = 0; a < n;) {
        size_t b = a + 1;
        while (b < n && same_group(g[a].k->o, g[b].k->o, grouping))
            b++;
        for (size_t p = a; p < b; p++) {
            size_t i = g[p].i;
            /* the others of its group, or all other test orders */
            const ranked_t *v = g + a;
            size_t m = b - a, at = p - a;
            if (m - 1 < BOUND_MIN_GROUP) {
                v = all;
                m = n;
                at = pos_all[i];
            }
            if (m < 2)
                continue;
            size_t others = m - 1;
            *abs_err += (double)llabs(loo_at(v, at, others / 2) - k[i].got);
            for (int s = 0; s < BOUND_QS; s++) {
                double q = 0.50 + 0.01 * s;
                size_t r = (size_t)ceil(q * (double)others - 1e-9); /* nearest rank */
                r = r < 1 ? 1 : r > others ? others : r;
                int64_t end = loo_at(v, at, r - 1);
                ends[(size_t)s * n + i] = end;
                late[s] += k[i].got > end;
            }
        }
        a = b;
    }
    cs_free(g);
    cs_free(all);
    cs_free(pos_all);
    return true;
}

/* a / b to three places, or null when the shop promised every order for
 * its purchase day (b = 0: no length to compare with) */
static json_t *ratio_of(double a, double b)
{
    return b > 0 ? json_real(round(a / b * 1000) / 1000) : json_null();
}

static json_t *bound_at_shop(const known_t *k, size_t n, int grouping, size_t shop_late,
                             double shop_median_end, int64_t *ends)
{
    size_t late[BOUND_QS];
    double abs_err;
    if (!bound_ends(k, n, grouping, ends, late, &abs_err))
        return NULL;
    int s = 0;
    while (s < BOUND_QS - 1 && late[s] > shop_late)
        s++;
    double med = median_i64(ends + (size_t)s * n, n);
    return json_pack("{s:s,s:f,s:f,s:f,s:o,s:f}", "grouping",
                     grouping == 0 ? "destination state" : "lane (seller state to customer state)",
                     "q_high", round((0.50 + 0.01 * s) * 100) / 100, "median_window_end_days", med,
                     "late_rate", round((double)late[s] / (double)n * 10000) / 10000,
                     "window_end_ratio", ratio_of(med, shop_median_end),
                     "point_mae_days", round(abs_err / (double)n * 100) / 100);
}

cs_rc cs_promise_eval_olist(const cs_promise_eval_opts_t *eo, json_t **out, cs_err_t *err)
{
    *out = NULL;
    const cs_tz_t *tz = cs_tz_get_or_utc("America/Sao_Paulo");
    table_t t;
    memset(&t, 0, sizeof t);
    cs_map_init(&t.customer_state);
    cs_map_init(&t.seller_state);
    cs_map_init(&t.order_seller);
    orders_t os;
    memset(&os, 0, sizeof os);
    step_t *steps = NULL;
    int64_t *ours_end = NULL, *shop_end = NULL, *bends = NULL;
    known_t *kn = NULL;
    cs_promise_model_t *m = NULL;
    cs_rc rc;
    bool split = eo->split_at > 0;
    if ((rc = read_folder(eo->train_dir, &t, err)) ||
        (!split && (rc = read_folder(eo->test_dir, &t, err))) ||
        (rc = read_orders(eo->train_dir, &t, tz, split ? 2 : 0, eo->split_at, &os, err)) ||
        (!split && (rc = read_orders(eo->test_dir, &t, tz, 1, 0, &os, err))))
        goto out;
    steps = cs_calloc(os.n * 3 + 1, sizeof *steps);
    ours_end = cs_calloc(os.n + 1, sizeof *ours_end);
    shop_end = cs_calloc(os.n + 1, sizeof *shop_end);
    kn = cs_calloc(os.n + 1, sizeof *kn);
    bends = cs_calloc((os.n + 1) * BOUND_QS, sizeof *bends);
    if (!steps || !ours_end || !shop_end || !kn || !bends) {
        rc = cs_errf(err, CS_ERR_NOMEM, "out of memory");
        goto out;
    }
    size_t ns = 0, train_deliveries = 0;
    for (size_t i = 0; i < os.n; i++) {
        const ord_t *o = &os.o[i];
        if (o->delivered && o->delivered >= o->placed) {
            steps[ns++] = (step_t){ o->delivered, STEP_DELIVERED, i };
            train_deliveries += !o->test;
        }
        /* every parcel handed over is under way until it arrives (or, never
         * arriving, is taken for lost after in_flight_days) */
        if (o->shipped && o->shipped >= o->placed &&
            (!o->delivered || o->shipped <= o->delivered))
            steps[ns++] = (step_t){ o->shipped, STEP_SHIPPED, i };
        if (o->test && o->delivered && o->estimated)
            steps[ns++] = (step_t){ o->placed, STEP_PREDICT, i };
    }
    qsort(steps, ns, sizeof *steps, by_at);
    cs_promise_opts_t po = eo->model;
    po.tz = tz;
    if ((rc = cs_promise_new(&po, &m, err)))
        goto out;
    size_t n = 0, late = 0, hit = 0, shop_late = 0, shop_on_time = 0;
    double abs_err = 0, shop_abs = 0;
    for (size_t k = 0; k < ns; k++) {
        const ord_t *o = &os.o[steps[k].i];
        cs_lane_t lane = { "olist", "", o->state_from, o->state_to };
        if (steps[k].kind == STEP_DELIVERED) {
            /* no scans in the Olist layout: the hand-over to the delivery is one silence */
            cs_delivery_t d = { lane,       o->placed,    o->shipped, o->delivered,
                                o->shipped, o->delivered, o->id,      0 };
            if ((rc = cs_promise_observe(m, &d, err)))
                goto out;
            continue;
        }
        if (steps[k].kind == STEP_SHIPPED) {
            if ((rc = cs_promise_in_flight(m, o->id, &lane, o->placed, o->shipped, 0, err)))
                goto out;
            continue;
        }
        cs_promise_settle(m); /* the deliveries since the last order, in order */
        cs_promise_query_t q;
        memset(&q, 0, sizeof q);
        q.lane = lane;
        q.placed_at = q.now = o->placed;
        q.last_status = CS_TRACK__COUNT;
        cs_promise_t p;
        if ((rc = cs_promise_estimate(m, &q, &p, err)))
            goto out;
        int64_t end = date_diff(tz, o->placed, p.to);
        int64_t got = date_diff(tz, o->placed, o->delivered);
        int64_t from = date_diff(tz, o->placed, p.from);
        ours_end[n] = end;
        kn[n] = (known_t){ o, got };
        abs_err += (double)llabs(date_diff(tz, p.point, o->delivered));
        late += got > end;
        hit += got >= from && got <= end;
        int64_t est = date_diff(tz, o->placed, o->estimated);
        shop_end[n] = est;
        shop_abs += (double)llabs(date_diff(tz, o->estimated, o->delivered));
        shop_late += got > est;
        shop_on_time += got <= est;
        n++;
    }
    if (!n) {
        rc = cs_errf(err, CS_ERR_NOTFOUND, "no delivered test orders with an estimate");
        goto out;
    }
    json_t *ours = figures(abs_err / (double)n, ours_end, n, late, "window_hit_rate", hit);
    json_t *shop = figures(shop_abs / (double)n, shop_end, n, shop_late, "on_time_rate",
                           shop_on_time);
    json_t *ratio = ratio_of(json_real_value(json_object_get(ours, "median_window_end_days")),
                             json_real_value(json_object_get(shop, "median_window_end_days")));
    json_t *bound = json_array();
    for (int g = 0; bound && g < 2; g++)
        if (json_array_append_new(bound, bound_at_shop(kn, n, g, shop_late,
                                                       json_real_value(json_object_get(
                                                           shop, "median_window_end_days")),
                                                       bends)))
            break;
    if (!bound || json_array_size(bound) != 2) {
        json_decref(bound);
        json_decref(ratio);
        json_decref(ours);
        json_decref(shop);
        rc = cs_errf(err, CS_ERR_NOMEM, "out of memory");
        goto out;
    }
    *out = json_pack("{s:I,s:I,s:{s:f,s:f,s:f},s:o,s:o,s:o,s:o}", "train_deliveries",
                     (json_int_t)train_deliveries, "test_orders", (json_int_t)n, "model", "q_low",
                     cs_promise_opts_q_low(m), "q_high", cs_promise_opts_q_high(m),
                     "half_life_days", cs_promise_opts_half_life(m), "ours", ours, "shop", shop,
                     "window_end_ratio", ratio, "bound", bound);
    /* rows left out, and why (the first SKIPS_TOLD) */
    json_t *told = json_array();
    for (size_t i = 0; i < os.skipped && i < SKIPS_TOLD; i++)
        json_array_append_new(told, json_string(os.told[i]));
    if (!*out)
        json_decref(told);
    else if (json_object_set_new(*out, "skipped", told) ||
             json_object_set_new(*out, "skipped_rows", json_integer((json_int_t)os.skipped))) {
        json_decref(*out);
        *out = NULL;
    }
    if (!*out)
        rc = cs_errf(err, CS_ERR_NOMEM, "out of memory");
out:
    cs_promise_free(m);
    cs_free(steps);
    cs_free(ours_end);
    cs_free(shop_end);
    cs_free(kn);
    cs_free(bends);
    cs_free(os.o);
    table_free(&t);
    return rc;
}
