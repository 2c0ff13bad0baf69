/*
 * promise.c -- see promise.h.
 */
#include "promise.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/cs_map.h"

#define LEVELS 4

typedef struct sample {
    float total;     /* purchase to delivery, working days */
    int32_t ship_handling; /* the same in ship-time seconds (Monday..Friday); < 0 = unknown */
    float transit;   /* hand-over to delivery; < 0 = unknown */
    float gap;       /* the longest silence on the way; < 0 = unknown */
    float rest_dest; /* first scan in the destination region to delivery; < 0 = unknown */
    int16_t transit_days; /* working days from the hand-over's day to the delivery's; < 0 = unknown */
    cs_ms_t at;      /* purchase time, for the weight */
    double w0;       /* its weight at WEIGHT_EPOCH (age_weight) */
} sample_t;

/* The values a lane's samples are kept sorted by, one order each, so a
 * quantile walks them in order instead of sorting thousands per query. */
enum { KEY_TOTAL, KEY_HANDLING, KEY_TRANSIT, KEY_GAP, KEY_REST_DEST, KEYS };

static float sample_key(const sample_t *s, int key)
{
    switch (key) {
    case KEY_TOTAL: return s->total;
    case KEY_HANDLING: return s->ship_handling >= 0 ? (float)s->ship_handling / 86400 : -1;
    case KEY_TRANSIT: return s->transit;
    case KEY_GAP: return s->gap;
    default: return s->rest_dest;
    }
}

typedef struct flight flight_t;

/* Whole working days of transit counted per lane (lane_s.tdays): the
 * window's floor (fastest_transit_days) reads these few counts, not the
 * lane's thousands of samples, at every estimate. The last count holds
 * every sample of TDAYS_MAX - 1 days or more: a floor is at most that
 * (no lane's fastest parcel takes over ten weeks; one in flight for 45
 * days is taken for lost). */
#define TDAYS_MAX 64

typedef struct lane_s {
    sample_t *s;
    int n, cap, head; /* a ring once full */
    int32_t tdays[TDAYS_MAX]; /* samples by transit_days (the last: that many or more);
                                 kept as samples come and, in a full ring, go */
    int32_t tdays_n;          /* their sum: the samples whose transit_days is known */
    int32_t *ord[KEYS]; /* s's indexes by each key, ascending (cap allotted) */
    bool sorted;        /* ord is s's order (cs_promise_settle); else not to be used */
    bool changed;       /* listed in the model's `changed` */
    flight_t **f;     /* the parcels in flight on it (borrowed from `flights`) */
    int nf, fcap;
} lane_s;

/* A parcel handed over and not delivered yet: listed in the lane of each
 * level at index slot[level]. */
struct flight {
    cs_ms_t placed, shipped;
    double wt_placed, wt_shipped; /* working time of purchase and hand-over */
    double wt_dest;               /* of its first scan in its destination region; < 0 = not there */
    double w0;                    /* its weight at WEIGHT_EPOCH (age_weight) */
    int64_t ship_handling;        /* purchase to hand-over, ship-time seconds; < 0 = unknown */
    lane_s *home;                 /* its own lane (level 0), listed there or not */
    lane_s *lane[LEVELS];         /* where it is listed; NULL = not (a full lane) */
    int slot[LEVELS];
};

struct cs_promise_model {
    cs_promise_opts_t o;
    cs_map_t lanes;   /* level key -> lane_s* */
    cs_map_t flights; /* parcel id -> flight_t* (owned) */
    size_t samples;
    size_t flight_adds;
    lane_s **changed; /* lanes observed since the last settle */
    size_t nchanged, changed_cap;
};

/* ---- sample weights ---- */

/* A sample's weight by its age at `now`: it halves every half-life, and
 * is 1 for a time not past. As 0.5^(age / half-life) = w0 * f(now), with
 * w0 = 2^((at - WEIGHT_EPOCH) / half-life) kept with the sample and f(now)
 * = 2^((WEIGHT_EPOCH - now) / half-life) once per query, a query costs a
 * multiplication per sample, not a power. Each factor is exact while its
 * exponent is within +-900 (a double holds 2^+-1023): for half-lives of a
 * few days and more that is any time a store holds. Beyond, the factor is
 * NAN, and the weight is the power itself (clamping both factors instead
 * would give 2^-900 * 2^900 = 1 to every sample of a store far from the
 * epoch: data from 2018 with a half-life of a day or two). */
#define WEIGHT_EPOCH ((cs_ms_t)1767225600000) /* 2026-01-01 */
#define WEIGHT_EXP_MAX 900.0

static double weight_exp(const cs_promise_model_t *m, cs_ms_t from, cs_ms_t to)
{
    double e = (double)(to - from) / (m->o.half_life_days * CS_MS_PER_DAY);
    return fabs(e) <= WEIGHT_EXP_MAX ? exp2(e) : NAN;
}

static double weight_w0(const cs_promise_model_t *m, cs_ms_t at)
{
    return weight_exp(m, WEIGHT_EPOCH, at);
}

static double weight_now(const cs_promise_model_t *m, cs_ms_t now)
{
    return weight_exp(m, now, WEIGHT_EPOCH);
}

static double age_weight(const cs_promise_model_t *m, cs_ms_t at, double w0, cs_ms_t now,
                         double f_now)
{
    if (at >= now)
        return 1.0;
    if (isnan(w0) || isnan(f_now))
        return exp2((double)(at - now) / (m->o.half_life_days * CS_MS_PER_DAY));
    return w0 * f_now;
}

/* ---- working days (Monday..Saturday) ----
 *
 * Less the calendar's closed days (calendar.h: public holidays, the
 * shop's own); m->o.calendar NULL is weekdays alone. */

/* Working time: the working-day index of t's local date plus the part of
 * the day gone (a Sunday or a closed day counts as the start of the next
 * working day). */
static double worktime(const cs_promise_model_t *m, cs_ms_t t)
{
    cs_local_t l;
    cs_tz_to_local(m->o.tz, t, &l);
    int64_t z = cs_days_from_civil(l.year, (unsigned)l.month, (unsigned)l.day);
    double f = (l.hour * 3600 + l.min * 60 + l.sec) / 86400.0;
    int64_t k = cs_calendar_wd(m->o.calendar, z);
    return cs_calendar_open(m->o.calendar, z) ? (double)k + f : (double)(k + 1);
}

/* ---- ship days (Monday..Friday): when shops hand parcels over ----
 *
 * Carriers deliver on Saturdays, shops rarely hand over on weekends: a
 * Friday evening order waits for Monday. The handling time of a delivery
 * is kept in ship days, and a new order replays it from its own purchase
 * time (cs_promise_estimate): the weekday effect comes from the calendar,
 * not from a table per weekday that thin lanes could not fill. */

/* Ship time in seconds (exact, so a replay lands on the day it should):
 * the ship-day index of t's local date times a day, plus the seconds of
 * the day gone; a weekend or closed day counts as the start of the next
 * ship day. */
static int64_t shiptime(const cs_promise_model_t *m, cs_ms_t t)
{
    cs_local_t l;
    cs_tz_to_local(m->o.tz, t, &l);
    int64_t z = cs_days_from_civil(l.year, (unsigned)l.month, (unsigned)l.day);
    int64_t secs = l.hour * 3600 + l.min * 60 + l.sec;
    return cs_calendar_sd(m->o.calendar, z) * 86400 +
           (cs_calendar_ship_open(m->o.calendar, z) ? secs : 0);
}

/* The working time of ship time x (a ship day: a working day too). */
static double ship_to_work(const cs_calendar_t *cal, int64_t x)
{
    int64_t k = cs_floordiv(x, 86400);
    int64_t z = cs_calendar_sd_day(cal, k);
    return (double)cs_calendar_wd(cal, z) + (double)(x - k * 86400) / 86400.0;
}

static cs_ms_t midnight(const cs_promise_model_t *m, int64_t z)
{
    return cs_tz_day_start(m->o.tz, z);
}

/* The working day with index k. */
static int64_t day_of_index(const cs_promise_model_t *m, int64_t k)
{
    return cs_calendar_wd_day(m->o.calendar, k);
}

double cs_promise_workdays(const cs_promise_model_t *m, cs_ms_t from, cs_ms_t to)
{
    return worktime(m, to) - worktime(m, from);
}

cs_ms_t cs_promise_add_workdays(const cs_promise_model_t *m, cs_ms_t from, double wd)
{
    double w = worktime(m, from) + wd;
    return midnight(m, day_of_index(m, (int64_t)floor(w)));
}

int cs_workdays_late(const cs_tz_t *tz, const cs_calendar_t *cal, cs_ms_t promised_to,
                     cs_ms_t at)
{
    int64_t a = cs_tz_day(tz, at), p = cs_tz_day(tz, promised_to);
    if (a <= p)
        return 0;
    int64_t n = cs_calendar_wd(cal, a) - cs_calendar_wd(cal, p);
    return n < 1 ? 1 : (int)n;
}

/* ---- the model ---- */

cs_rc cs_promise_new(const cs_promise_opts_t *opts, cs_promise_model_t **out, cs_err_t *err)
{
    cs_promise_model_t *m = cs_calloc(1, sizeof *m);
    *out = NULL;
    if (!m)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    if (opts)
        m->o = *opts;
    if (!m->o.tz)
        m->o.tz = cs_tz_get_or_utc(NULL);
    if (m->o.q_low == 0)
        m->o.q_low = 0.10;
    if (m->o.q_high == 0)
        m->o.q_high = 0.90;
    /* the window's quantiles are taken with the median between them, in
     * ascending order (km_quantiles): a median outside the window would
     * give a window that ends before it starts */
    if (!(m->o.q_low > 0 && m->o.q_low < 0.5) || !(m->o.q_high > 0.5 && m->o.q_high < 1)) {
        double lo = m->o.q_low, hi = m->o.q_high;
        cs_free(m);
        return cs_err_field(err, CS_ERR_INVALID,
                            !(lo > 0 && lo < 0.5) ? "q_low" : "q_high",
                            "q_low,q_high: expected 0 < q_low < 0.5 < q_high < 1, got %g,%g",
                            lo, hi);
    }
    if (m->o.half_life_days <= 0)
        m->o.half_life_days = 90;
    if (m->o.min_weight <= 0)
        m->o.min_weight = 12;
    if (m->o.per_lane_max <= 0)
        m->o.per_lane_max = 4000;
    if (m->o.in_flight_days <= 0)
        m->o.in_flight_days = 45;
    cs_map_init(&m->lanes);
    cs_map_init(&m->flights);
    *out = m;
    return CS_OK;
}

void cs_promise_free(cs_promise_model_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->lanes.cap; i++)
        if (cs_map_key_at(&m->lanes, i)) {
            lane_s *l = m->lanes.vals[i];
            for (int k = 0; k < KEYS; k++)
                cs_free(l->ord[k]);
            cs_free(l->s);
            cs_free(l->f);
            cs_free(l);
        }
    for (size_t i = 0; i < m->flights.cap; i++)
        if (cs_map_key_at(&m->flights, i))
            cs_free(m->flights.vals[i]);
    cs_map_free(&m->lanes);
    cs_map_free(&m->flights);
    cs_free(m->changed);
    cs_free(m);
}

double cs_promise_opts_q_low(const cs_promise_model_t *m) { return m->o.q_low; }
double cs_promise_opts_q_high(const cs_promise_model_t *m) { return m->o.q_high; }
double cs_promise_opts_half_life(const cs_promise_model_t *m) { return m->o.half_life_days; }

size_t cs_promise_samples(const cs_promise_model_t *m)
{
    return m->samples;
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

static void level_key(const cs_lane_t *l, int level, char *out, size_t size)
{
    switch (level) {
    case 0:
        snprintf(out, size, "0|%s|%s|%s|%s", nz(l->carrier), nz(l->service), nz(l->origin),
                 nz(l->destination));
        break;
    case 1: snprintf(out, size, "1|%s|%s", nz(l->carrier), nz(l->destination)); break;
    case 2: snprintf(out, size, "2|%s", nz(l->carrier)); break;
    default: snprintf(out, size, "3"); break;
    }
}

static lane_s *lane_get(cs_promise_model_t *m, const char *key)
{
    lane_s *l = cs_map_get(&m->lanes, key);
    if (!l && (l = cs_calloc(1, sizeof *l)) && cs_map_put(&m->lanes, key, l) != CS_OK) {
        cs_free(l);
        l = NULL;
    }
    return l;
}

static int tdays_slot(int16_t td)
{
    return td < TDAYS_MAX - 1 ? td : TDAYS_MAX - 1;
}

static cs_rc add_sample(cs_promise_model_t *m, const char *key, const sample_t *s)
{
    lane_s *l = lane_get(m, key);
    if (!l)
        return CS_ERR_NOMEM;
    if (!l->changed) {
        if (m->nchanged == m->changed_cap) {
            size_t cap = m->changed_cap ? m->changed_cap * 2 : 64;
            lane_s **p = cs_realloc(m->changed, cap * sizeof *p);
            if (!p)
                return CS_ERR_NOMEM;
            m->changed = p;
            m->changed_cap = cap;
        }
        m->changed[m->nchanged++] = l;
        l->changed = true;
    }
    l->sorted = false;
    if (l->n < m->o.per_lane_max) {
        if (l->n == l->cap) {
            int cap = l->cap ? l->cap * 2 : 16;
            if (cap > m->o.per_lane_max)
                cap = m->o.per_lane_max;
            sample_t *p = cs_realloc(l->s, (size_t)cap * sizeof *p);
            if (!p)
                return CS_ERR_NOMEM;
            l->s = p;
            l->cap = cap;
        }
        l->s[l->n++] = *s;
    } else {
        if (l->s[l->head].transit_days >= 0) { /* full: the oldest makes room */
            l->tdays[tdays_slot(l->s[l->head].transit_days)]--;
            l->tdays_n--;
        }
        l->s[l->head] = *s;
        l->head = (l->head + 1) % l->n;
    }
    if (s->transit_days >= 0) {
        l->tdays[tdays_slot(s->transit_days)]++;
        l->tdays_n++;
    }
    return CS_OK;
}

/* A value with its weight: what quantiles are taken of (and, sorting a
 * lane's orders, a key with its sample's index). */
typedef struct wv {
    double v, w;
    bool seen; /* delivered after v; false: still under way after v (censored) */
} wv_t;

static int by_v(const void *a, const void *b)
{
    const wv_t *x = a, *y = b;
    if (x->v != y->v)
        return x->v < y->v ? -1 : 1;
    return (int)y->seen - (int)x->seen; /* deliveries before the censored at a tie */
}

/* A double's bits as an unsigned key in the same order. */
static uint64_t v_key(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u >> 63 ? ~u : u | (uint64_t)1 << 63;
}

/* Sort a[n] by v, stably (the order among equal values is kept), with
 * tmp[n] as scratch: a byte at a time, skipping the bytes all keys share.
 * Thousands of replayed totals per query sort several times faster than
 * with qsort. */
static void sort_v(wv_t *a, size_t n, wv_t *tmp)
{
    wv_t *src = a, *dst = tmp;
    for (int shift = 0; shift < 64; shift += 8) {
        size_t count[256] = { 0 };
        for (size_t i = 0; i < n; i++)
            count[(v_key(src[i].v) >> shift) & 0xff]++;
        if (n == 0 || count[(v_key(src[0].v) >> shift) & 0xff] == n)
            continue; /* all alike in this byte */
        size_t pos = 0;
        for (int d = 0; d < 256; d++) {
            size_t c = count[d];
            count[d] = pos;
            pos += c;
        }
        for (size_t i = 0; i < n; i++)
            dst[count[(v_key(src[i].v) >> shift) & 0xff]++] = src[i];
        wv_t *x = src;
        src = dst;
        dst = x;
    }
    if (src != a)
        memcpy(a, src, n * sizeof *a);
}

/* Sort a lane's orders (tmp: 2n entries): each key's values with their
 * sample's index (in w) through sort_v. */
static void lane_sort(lane_s *l, wv_t *tmp)
{
    size_t n = (size_t)l->n;
    for (int k = 0; k < KEYS; k++) {
        for (size_t i = 0; i < n; i++)
            tmp[i] = (wv_t){ sample_key(&l->s[i], k), (double)i, true };
        sort_v(tmp, n, tmp + n);
        for (size_t i = 0; i < n; i++)
            l->ord[k][i] = (int32_t)tmp[i].w;
    }
    l->sorted = true;
}

void cs_promise_settle(cs_promise_model_t *m)
{
    wv_t *tmp = NULL;
    size_t tmp_cap = 0;
    for (size_t i = 0; i < m->nchanged; i++) {
        lane_s *l = m->changed[i];
        l->changed = false;
        if (!l->n)
            continue;
        bool room = true;
        for (int k = 0; k < KEYS && room; k++) {
            int32_t *o = cs_realloc(l->ord[k], (size_t)l->cap * sizeof *o);
            if ((room = o != NULL))
                l->ord[k] = o;
        }
        if (room && tmp_cap < 2 * (size_t)l->n) {
            wv_t *p = cs_realloc(tmp, 2 * (size_t)l->cap * sizeof *p);
            if ((room = p != NULL)) {
                tmp = p;
                tmp_cap = 2 * (size_t)l->cap;
            }
        }
        if (room)
            lane_sort(l, tmp);
    }
    m->nchanged = 0;
    cs_free(tmp);
}

cs_rc cs_promise_observe(cs_promise_model_t *m, const cs_delivery_t *d, cs_err_t *err)
{
    if (!d->placed_at || !d->delivered_at || d->delivered_at < d->placed_at)
        return cs_errf(err, CS_ERR_INVALID, "a delivery needs its purchase and delivery times");
    sample_t s;
    s.at = d->placed_at;
    s.w0 = weight_w0(m, s.at);
    s.total = (float)cs_promise_workdays(m, d->placed_at, d->delivered_at);
    s.transit = -1;
    s.transit_days = -1;
    s.ship_handling = -1;
    if (d->shipped_at >= d->placed_at && d->shipped_at <= d->delivered_at) {
        int64_t sh = shiptime(m, d->shipped_at) - shiptime(m, d->placed_at);
        s.ship_handling = sh <= INT32_MAX ? (int32_t)sh : -1;
        s.transit = (float)cs_promise_workdays(m, d->shipped_at, d->delivered_at);
        double td = floor(worktime(m, d->delivered_at)) - floor(worktime(m, d->shipped_at));
        s.transit_days = td >= 0 && td <= INT16_MAX ? (int16_t)td : -1;
    }
    s.gap = d->gap_to > d->gap_from && d->gap_from ? (float)cs_promise_workdays(m, d->gap_from,
                                                                                 d->gap_to)
                                                   : -1;
    s.rest_dest = d->dest_at && d->dest_at >= d->shipped_at && d->dest_at <= d->delivered_at
                      ? (float)cs_promise_workdays(m, d->dest_at, d->delivered_at)
                      : -1;
    for (int level = 0; level < LEVELS; level++) {
        char key[4 * (CS_ID_MAX + 1) + 8];
        level_key(&d->lane, level, key, sizeof key);
        if (add_sample(m, key, &s))
            return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    }
    m->samples++;
    if (d->id)
        cs_promise_forget(m, d->id); /* arrived: observed, no longer censored */
    return CS_OK;
}

/* ---- parcels in flight ---- */

/* Parcels in flight listed per lane and level: the most recently bought.
 * Enough to tell a slowdown; a query's cost stays bounded with thousands
 * of open orders on one carrier. */
#define FLIGHTS_PER_LANE 200

static void flight_unlist(flight_t *f)
{
    for (int level = 0; level < LEVELS; level++) {
        lane_s *l = f->lane[level];
        if (!l)
            continue;
        int k = f->slot[level];
        flight_t *last = l->f[--l->nf];
        l->f[k] = last; /* the last one takes its place */
        last->slot[level] = k;
        f->lane[level] = NULL;
    }
}

void cs_promise_forget(cs_promise_model_t *m, const char *id)
{
    flight_t *f = id ? cs_map_del(&m->flights, id) : NULL;
    if (!f)
        return;
    flight_unlist(f);
    cs_free(f);
}

size_t cs_promise_in_flight_count(const cs_promise_model_t *m)
{
    return m->flights.n;
}

/* Parcels in flight for longer than in_flight_days are lost, not slow:
 * dropped now and then so the map does not grow with them. */
static void prune_lost(cs_promise_model_t *m, cs_ms_t now)
{
    cs_ms_t limit = (cs_ms_t)(m->o.in_flight_days * CS_MS_PER_DAY);
    for (size_t i = 0; i < m->flights.cap;) {
        const char *key = cs_map_key_at(&m->flights, i);
        flight_t *f = key ? m->flights.vals[i] : NULL;
        if (f && now - f->placed > limit) {
            cs_promise_forget(m, key); /* backward shift: slot i is looked at again */
            continue;
        }
        i++;
    }
}

cs_rc cs_promise_in_flight(cs_promise_model_t *m, const char *id, const cs_lane_t *lane,
                           cs_ms_t placed_at, cs_ms_t shipped_at, cs_ms_t dest_at, cs_err_t *err)
{
    double wt_dest = dest_at >= shipped_at && dest_at ? worktime(m, dest_at) : -1;
    if (!id || !*id || !placed_at || !shipped_at || shipped_at < placed_at)
        return cs_errf(err, CS_ERR_INVALID,
                       "a parcel in flight needs its id, purchase and hand-over times");
    /* the order watch says it again at every look: unchanged, nothing to do */
    flight_t *was = cs_map_get(&m->flights, id);
    if (was && was->placed == placed_at && was->shipped == shipped_at && was->home) {
        char key[4 * (CS_ID_MAX + 1) + 8];
        level_key(lane, 0, key, sizeof key);
        if (cs_map_get(&m->lanes, key) == was->home) {
            was->wt_dest = wt_dest; /* reached its region, or left it */
            return CS_OK;
        }
    }
    cs_promise_forget(m, id);
    flight_t *f = cs_calloc(1, sizeof *f);
    if (!f)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    f->placed = placed_at;
    f->w0 = weight_w0(m, placed_at);
    f->shipped = shipped_at;
    f->wt_placed = worktime(m, placed_at);
    f->wt_shipped = worktime(m, shipped_at);
    f->wt_dest = wt_dest;
    f->ship_handling = shipped_at >= placed_at ? shiptime(m, shipped_at) - shiptime(m, placed_at)
                                               : -1;
    for (int level = 0; level < LEVELS; level++) {
        char key[4 * (CS_ID_MAX + 1) + 8];
        level_key(lane, level, key, sizeof key);
        lane_s *l = lane_get(m, key);
        if (level == 0)
            f->home = l;
        if (l && l->nf >= FLIGHTS_PER_LANE) {
            /* full: the parcel bought longest ago makes room (at this
             * level), unless that is this one; one left out is not tried
             * again while its lane and times stay (see above), so parcels
             * do not push one another out at every look */
            int k = 0;
            for (int i = 1; i < l->nf; i++)
                if (l->f[i]->placed < l->f[k]->placed)
                    k = i;
            if (placed_at <= l->f[k]->placed)
                continue;
            l->f[k]->lane[level] = NULL;
            f->lane[level] = l;
            f->slot[level] = k;
            l->f[k] = f;
            continue;
        }
        if (l && l->nf == l->fcap) {
            int cap = l->fcap ? l->fcap * 2 : 16;
            flight_t **p = cs_realloc(l->f, (size_t)cap * sizeof *p);
            if (p) {
                l->f = p;
                l->fcap = cap;
            }
        }
        if (!l || l->nf == l->fcap) {
            flight_unlist(f);
            cs_free(f);
            return cs_errf(err, CS_ERR_NOMEM, "out of memory");
        }
        f->lane[level] = l;
        f->slot[level] = l->nf;
        l->f[l->nf++] = f;
    }
    if (cs_map_put(&m->flights, id, f) != CS_OK) {
        flight_unlist(f);
        cs_free(f);
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    }
    if (++m->flight_adds % 1024 == 0)
        prune_lost(m, shipped_at > placed_at ? shipped_at : placed_at);
    return CS_OK;
}

/* ---- quantiles ---- */

/* Weighted Kaplan-Meier quantiles of sorted values: for each q (ascending)
 * the first value where the estimated share delivered reaches it. Without
 * censored values this is the plain weighted quantile. Where the parcels
 * still under way leave q out of reach, the largest value known. */
static void km_quantiles(const wv_t *v, size_t n, const double *q, int nq, double *out)
{
    double at_risk = 0, surv = 1;
    for (size_t i = 0; i < n; i++)
        at_risk += v[i].w;
    int k = 0;
    for (size_t i = 0; i < n && k < nq;) {
        double val = v[i].v, died = 0, gone = 0;
        for (; i < n && v[i].v == val; i++) {
            if (v[i].seen)
                died += v[i].w;
            gone += v[i].w;
        }
        if (died > 0 && at_risk > 0)
            surv *= 1 - died / at_risk;
        at_risk -= gone;
        while (k < nq && 1 - surv >= q[k] - 1e-12)
            out[k++] = val;
    }
    for (; k < nq; k++)
        out[k] = n ? v[n - 1].v : 0;
}

enum { WHAT_TOTAL, WHAT_TRANSIT_AFTER, WHAT_HANDLING, WHAT_GAP, WHAT_REST_DEST };

/* A parcel in flight counts at `now` once handed over, until it is taken
 * for lost (in_flight_days after purchase). */
static bool flight_counts(const cs_promise_model_t *m, const flight_t *f, cs_ms_t now,
                          double wt_now)
{
    cs_ms_t age = now - f->placed;
    return age >= 0 && age <= (cs_ms_t)(m->o.in_flight_days * CS_MS_PER_DAY) &&
           wt_now >= f->wt_shipped;
}

/* An order to replay deliveries for (WHAT_TOTAL): its purchase in ship
 * time and in working time. NULL: the totals as they were. */
typedef struct replay {
    int64_t ship_placed; /* ship-time seconds */
    double work_placed;
} replay_t;

/* What a delivery's handling (ship-time seconds) and transit (working
 * days) would take for the replayed order, in working days from its
 * purchase. */
static double replayed(const cs_promise_model_t *m, const replay_t *r, int64_t ship_handling,
                       double transit)
{
    return ship_to_work(m->o.calendar, r->ship_placed + ship_handling) + transit -
           r->work_placed;
}

/* Collect the weighted values of one level's delivered parcels, ascending:
 * the total (replayed for rp's purchase time when given and the handling
 * is known), the rest of the transit after `elapsed` working days
 * (parcels that had not arrived then), the handling time, the longest
 * silence or the rest of the way after the first scan in the destination
 * region (of parcels that had not arrived `elapsed` working days after
 * it). Each is its sample's key less a constant, so the key's order
 * (once the lane is settled) is theirs; replayed totals, and the values of
 * a lane changed since, are sorted here. Adds their weight to *total,
 * and to *known that of every sample the value is known of, those that
 * arrived within `elapsed` too: how well the level knows the lane. */
static size_t collect_seen(const cs_promise_model_t *m, const lane_s *l, int what,
                           double elapsed, const replay_t *rp, cs_ms_t now, wv_t *out,
                           wv_t *tmp, double *total, double *known)
{
    static const int key_of[] = { [WHAT_TOTAL] = KEY_TOTAL,
                                  [WHAT_TRANSIT_AFTER] = KEY_TRANSIT,
                                  [WHAT_HANDLING] = KEY_HANDLING,
                                  [WHAT_GAP] = KEY_GAP,
                                  [WHAT_REST_DEST] = KEY_REST_DEST };
    const int32_t *ord = l->sorted ? l->ord[key_of[what]] : NULL;
    double f_now = weight_now(m, now);
    size_t k = 0;
    for (int i = 0; i < l->n; i++) {
        const sample_t *s = &l->s[ord ? ord[i] : i];
        double v;
        if (what == WHAT_TOTAL)
            v = rp && s->ship_handling >= 0 && s->transit >= 0
                    ? replayed(m, rp, s->ship_handling, s->transit)
                    : s->total;
        else if (what == WHAT_HANDLING) /* in ship days: weekends hand nothing over */
            v = s->ship_handling >= 0 ? (double)s->ship_handling / 86400 : -1;
        else if (what == WHAT_GAP)
            v = s->gap;
        else /* the rest after `elapsed`, of the way or from the region */
            v = what == WHAT_REST_DEST ? s->rest_dest : s->transit;
        if (v < 0)
            continue; /* not known of this sample */
        double w = age_weight(m, s->at, s->w0, now, f_now);
        *known += w;
        if (what == WHAT_TRANSIT_AFTER || what == WHAT_REST_DEST) {
            if (v <= elapsed)
                continue; /* arrived within `elapsed`: not among those still going */
            v -= elapsed;
        }
        out[k++] = (wv_t){ v, w, true };
        *total += w;
    }
    if (!ord || (what == WHAT_TOTAL && rp))
        sort_v(out, k, tmp);
    return k;
}

/* The same level's parcels in flight add what is known of them -- longer
 * than their age so far -- to the total, the transit and the rest of the
 * way from their region (the other values know nothing of them); sorted. */
static size_t collect_flights(const cs_promise_model_t *m, const lane_s *l, int what,
                              double elapsed, const replay_t *rp, cs_ms_t now, wv_t *out,
                              wv_t *tmp, double *total)
{
    size_t k = 0;
    if (!l->nf || (what != WHAT_TOTAL && what != WHAT_TRANSIT_AFTER && what != WHAT_REST_DEST))
        return k;
    double wt_now = worktime(m, now), f_now = weight_now(m, now);
    for (int i = 0; i < l->nf; i++) {
        const flight_t *f = l->f[i];
        if (!flight_counts(m, f, now, wt_now))
            continue;
        if (what == WHAT_REST_DEST && f->wt_dest < 0)
            continue; /* not in its region yet */
        double v = what == WHAT_REST_DEST   ? wt_now - f->wt_dest - elapsed
                   : what != WHAT_TOTAL     ? wt_now - f->wt_shipped - elapsed
                   : rp && f->ship_handling >= 0
                       ? replayed(m, rp, f->ship_handling, wt_now - f->wt_shipped)
                       : wt_now - f->wt_placed;
        if (v <= 0)
            continue; /* tells nothing yet */
        double w = age_weight(m, f->placed, f->w0, now, f_now);
        out[k++] = (wv_t){ v, w, false };
        *total += w;
    }
    sort_v(out, k, tmp);
    return k;
}

/* Merge two ascending runs into out (deliveries first at a tie, as by_v). */
static void merge(const wv_t *a, size_t na, const wv_t *b, size_t nb, wv_t *out)
{
    size_t i = 0, j = 0, k = 0;
    while (i < na && j < nb)
        out[k++] = by_v(&b[j], &a[i]) < 0 ? b[j++] : a[i++];
    while (i < na)
        out[k++] = a[i++];
    while (j < nb)
        out[k++] = b[j++];
}

/* Quantiles (low, mid, high) from the most specific level with weight;
 * `weight` gets the level's weight behind them, in-flight parcels
 * included, and `known` (may be NULL) that of its delivered parcels the
 * value is known of: below min_weight the level gives a window but no
 * yardstick for "slow".
 *
 * The level is the first that knows the lane (min_weight of delivered
 * parcels), not the first with enough parcels still going after
 * `elapsed`: those thin out as a parcel travels, and a coarser level --
 * other destinations, other carriers -- would answer for a parcel that is
 * on time for its own lane with their slower parcels, widening its window
 * by days for no reason. Within the level, the parcels still going then
 * say what is left, however few; only when none of them went that long
 * does a coarser level that knows its parcels answer (and
 * cs_promise_estimate says why: slow transit, share_beyond). */
static int quantiles(const cs_promise_model_t *m, const cs_lane_t *lane, int what, double elapsed,
                     const replay_t *rp, cs_ms_t now, double qs[3], double *weight,
                     double *known)
{
    for (int level = 0; level < LEVELS; level++) {
        char key[4 * (CS_ID_MAX + 1) + 8];
        level_key(lane, level, key, sizeof key);
        const lane_s *l = cs_map_get(&m->lanes, key);
        if (!l || !l->n)
            continue; /* no delivery: its parcels in flight alone tell nothing */
        /* v: the delivered, then those in flight; scratch: room to sort
         * either, then both merged */
        size_t room = (size_t)l->n + (size_t)l->nf;
        wv_t *v = malloc(2 * room * sizeof *v);
        if (!v)
            return -2;
        wv_t *scratch = v + room;
        double seen = 0, knows = 0;
        size_t n = collect_seen(m, l, what, elapsed, rp, now, v, scratch, &seen, &knows);
        /* a level speaks when enough of its parcels arrived (those under
         * way only correct it, and are not looked at before) and some of
         * them took this long; else a coarser level's that did */
        if ((knows < m->o.min_weight && level < LEVELS - 1) || knows <= 0 || !n || seen <= 0) {
            free(v);
            continue;
        }
        double total = seen;
        wv_t *all = v;
        size_t nf = collect_flights(m, l, what, elapsed, rp, now, v + n, scratch, &total);
        if (nf) {
            all = scratch;
            merge(v, n, v + n, nf, all);
        }
        const double want[3] = { m->o.q_low, 0.5, m->o.q_high };
        km_quantiles(all, n + nf, want, 3, qs);
        *weight = total;
        if (known)
            *known = knows;
        free(v);
        return level;
    }
    return -1;
}

/* A window from fewer deliveries than min_weight -- a new shop's first
 * few, which only the level of all its deliveries gives -- leans on the
 * cautious default `def` for what they cannot tell yet: each delivery
 * counts as a min_weight-th of the evidence, the default as the rest.
 * One parcel handed over and delivered the hour it was ordered does not
 * promise the next order "today" (nor the one placed at 23:58, which the
 * watch would call late at midnight); twelve such parcels do. */
static void lean_on_default(const cs_promise_model_t *m, double known, const double def[3],
                            double qs[3])
{
    if (known >= m->o.min_weight)
        return;
    double a = known > 0 ? known / m->o.min_weight : 0;
    for (int i = 0; i < 3; i++)
        qs[i] = a * qs[i] + (1 - a) * def[i];
}

/* The share of the parcels of the most specific level that knows its
 * transit times (enough delivered weight) that took longer than `elapsed`
 * working days after hand-over -- those still under way that long count
 * as longer. -1 when no level knows. A parcel beyond its lane's q_high is
 * slow for its lane even where coarser levels, other carriers and other
 * regions, have parcels as slow. */
static double share_beyond(const cs_promise_model_t *m, const cs_lane_t *lane, double elapsed,
                           cs_ms_t now)
{
    double wt_now = worktime(m, now), f_now = weight_now(m, now);
    for (int level = 0; level < LEVELS; level++) {
        char key[4 * (CS_ID_MAX + 1) + 8];
        level_key(lane, level, key, sizeof key);
        const lane_s *l = cs_map_get(&m->lanes, key);
        double seen = 0, all = 0, beyond = 0;
        for (int i = 0; l && i < l->n; i++) {
            const sample_t *s = &l->s[i];
            if (s->transit < 0)
                continue;
            double w = age_weight(m, s->at, s->w0, now, f_now);
            seen += w;
            all += w;
            beyond += s->transit > elapsed ? w : 0;
        }
        if (seen < m->o.min_weight)
            continue;
        for (int i = 0; i < l->nf; i++) {
            const flight_t *f = l->f[i];
            if (!flight_counts(m, f, now, wt_now))
                continue;
            double w = age_weight(m, f->placed, f->w0, now, f_now);
            all += w;
            beyond += wt_now - f->wt_shipped > elapsed ? w : 0;
        }
        return beyond / all;
    }
    return -1;
}

/* The fewest working days, hand-over day to delivery day, that the
 * delivered parcels of the lane at `level` took (0: same-day deliveries),
 * after setting aside its fastest few: 1 + n/50 (rounded up) of its n
 * samples with known transit days, but at most (n - 1) / 2, so the floor
 * is never above the median of what the level saw. One delivery recorded
 * with a bad timestamp (delivered "the day it was handed over") does not
 * take a lane's floor away; a lane whose parcels do arrive that day (more
 * than one in fifty of them) keeps it. 1 when the level knows none (a
 * parcel is on its way a working day at the least, as the cautious
 * default says). Counted in whole days: a sample handed over at 17:00
 * and delivered at 09:00 took a day, however few hours, and replaying
 * its hours from a purchase at 03:05 must not land on the purchase day.
 * Read from the lane's counts (tdays), so an estimate does not walk its
 * samples for it. */
static int64_t fastest_transit_days(const cs_promise_model_t *m, const cs_lane_t *lane,
                                    int level)
{
    if (level < 0 || level >= LEVELS)
        return 1;
    char key[4 * (CS_ID_MAX + 1) + 8];
    level_key(lane, level, key, sizeof key);
    const lane_s *l = cs_map_get(&m->lanes, key);
    if (!l || l->tdays_n <= 0)
        return 1;
    int32_t n = l->tdays_n, skip = 1 + (n + 49) / 50;
    if (skip > (n - 1) / 2)
        skip = (n - 1) / 2;
    int32_t below = 0;
    for (int d = 0; d < TDAYS_MAX; d++)
        if ((below += l->tdays[d]) > skip)
            return d;
    return TDAYS_MAX - 1; /* (not reached: the counts sum to n) */
}

/* Extra working days an incident usually costs. */
static double incident_days(cs_incident_t r, cs_promise_reason_t *why)
{
    switch (r) {
    case CS_INCIDENT_CUSTOMS: *why = CS_PR_CUSTOMS; return 2;
    case CS_INCIDENT_ADDRESS_PROBLEM: *why = CS_PR_ADDRESS; return 2;
    case CS_INCIDENT_WEATHER: *why = CS_PR_WEATHER; return 1;
    case CS_INCIDENT_RECIPIENT_ABSENT: *why = CS_PR_FAILED_ATTEMPT; return 1;
    case CS_INCIDENT_HELD_AT_DEPOT: *why = CS_PR_HELD_AT_DEPOT; return 1;
    default: *why = CS_PR_EXCEPTION; return 2;
    }
}

/* Since when the window that the last scan's added days gave stands (see
 * cs_promise_estimate): an exception's, weather's or a delay's scan; a
 * customs hold from when clearance had lasted CS_PROMISE_CLEARANCE_DAYS
 * working days (or a later scan in customs). 0 = none: no days added, or
 * the scan's own status counts from it already (a failed attempt) or
 * from today (out for delivery). */
static cs_ms_t window_given_at(const cs_promise_model_t *m, const cs_promise_query_t *q)
{
    if (!q->last_scan_at || q->last_status < 0 || q->last_status >= CS_TRACK__COUNT)
        return 0;
    if (q->last_status == CS_TRACK_EXCEPTION)
        return q->last_scan_at;
    if (q->last_status == CS_TRACK_OUT_FOR_DELIVERY ||
        q->last_status == CS_TRACK_AVAILABLE_FOR_PICKUP ||
        q->last_status == CS_TRACK_FAILED_ATTEMPT)
        return 0;
    if (q->last_reason == CS_INCIDENT_DELAYED || q->last_reason == CS_INCIDENT_WEATHER)
        return q->last_scan_at;
    if (q->last_reason != CS_INCIDENT_CUSTOMS)
        return 0;
    /* the instant clearance has lasted its usual working days: the local
     * time of day it came, that many working days on (a few seconds more
     * where the sums round below) */
    cs_ms_t since = q->customs_since ? q->customs_since : q->last_scan_at;
    double w0 = worktime(m, since), w = w0 + CS_PROMISE_CLEARANCE_DAYS;
    int64_t k = (int64_t)floor(w);
    int64_t secs = (int64_t)floor((w - (double)k) * 86400);
    if (secs < 0)
        secs = 0;
    if (secs > 86399)
        secs = 86399;
    int y;
    unsigned mo, d;
    cs_civil_from_days(day_of_index(m, k), &y, &mo, &d);
    cs_local_t l = { .year = y, .month = (int)mo, .day = (int)d, .hour = (int)(secs / 3600),
                     .min = (int)(secs / 60 % 60), .sec = (int)(secs % 60) };
    cs_ms_t held = cs_tz_from_local_on(m->o.tz, &l);
    for (int i = 0; i < 4 && worktime(m, held) - w0 < CS_PROMISE_CLEARANCE_DAYS; i++)
        held += 1000;
    return held > q->last_scan_at ? held : q->last_scan_at;
}

cs_rc cs_promise_estimate(const cs_promise_model_t *m, const cs_promise_query_t *q,
                          cs_promise_t *out, cs_err_t *err)
{
    memset(out, 0, sizeof *out);
    out->level = -1;
    if (!q->placed_at)
        return cs_errf(err, CS_ERR_INVALID, "placed_at: a promise needs the purchase time");
    cs_ms_t now = q->now ? q->now : q->placed_at;
    /* a purchase yet to come (a checkout asking ahead) is weighed with
     * the samples as they are now, and delivered from its own day on */
    int64_t today = cs_tz_day(m->o.tz, now > q->placed_at ? now : q->placed_at);
    cs_ms_t today0 = midnight(m, today);

    if (q->delivered_at) {
        out->from = out->to = out->point = midnight(m, cs_tz_day(m->o.tz, q->delivered_at));
        out->reason = CS_PR_DELIVERED;
        out->level = 0;
        return CS_OK;
    }
    if (q->last_status == CS_TRACK_RETURNED_TO_SENDER) {
        out->reason = CS_PR_RETURNED;
        out->at_risk = true;
        out->from = out->to = out->point = 0;
        return CS_OK;
    }

    /* days the last scan adds (an exception, a customs hold, weather, a
     * delay) are counted once, from when they came: the window given then
     * stands as given while no scan follows, until its last day -- a
     * re-check without news (each night's) does not count them again from
     * its own day, which would move the window a day later each day.
     * Once it has passed with no word from the carrier, after an
     * exception nothing is known of when it arrives, and a window counted
     * from today again ("between tomorrow and Friday", months later) would
     * be a promise no scan backs: no window, the reason says why, and it
     * stays at risk. After a hold, weather or a delay the parcel is still
     * under way: a window counted from today, its days still added -- and
     * once the parcel has also been silent for longer than the lane's expected
     * gap, the silence is what is known (spent: below), not the incident
     * whose days have run out; else it would be promised its days again
     * from each day, weeks on, and never said to be silent. */
    bool spent = false;
    cs_ms_t given_at = window_given_at(m, q);
    if (given_at && given_at < now) {
        cs_promise_query_t then_q = *q;
        then_q.now = given_at;
        cs_promise_t then;
        cs_rc rc = cs_promise_estimate(m, &then_q, &then, err);
        if (rc)
            return rc;
        bool passed = today > cs_tz_day(m->o.tz, then.to);
        if (then.to && q->last_status == CS_TRACK_EXCEPTION) {
            *out = then;
            out->at_risk = true;
            if (passed)
                out->from = out->to = out->point = 0;
            return CS_OK;
        }
        if (then.to && !passed) {
            *out = then;
            return CS_OK;
        }
        spent = then.to != 0;
    }

    double qs[3], w = 0, known = 0; /* known: the delivered weight behind qs */
    double base; /* working time the quantiles count from */
    int level;
    if (q->shipped_at) {
        double elapsed = worktime(m, now) - worktime(m, q->shipped_at);
        if (elapsed < 0)
            elapsed = 0;
        /* the cautious default transit from the hand-over (past it:
         * today at the earliest, within a working day at the latest) */
        static const double transit[3] = { 1, 2, 4 }, least[3] = { 0, 0.5, 1 };
        double def[3];
        for (int i = 0; i < 3; i++)
            def[i] = fmax(transit[i] - elapsed, least[i]);
        level = quantiles(m, &q->lane, WHAT_TRANSIT_AFTER, elapsed, NULL, now, qs, &w, &known);
        base = worktime(m, now);
        if (level < 0) {
            double tq[3], tw, tk = 0;
            int tl = quantiles(m, &q->lane, WHAT_TOTAL, 0, NULL, now, tq, &tw, &tk);
            level = tl;
            w = tl >= 0 ? tw : 0;
            known = tl >= 0 ? tk : 0;
            if (tl >= 0 && tk >= m->o.min_weight) {
                /* nobody on the lane took this long: a day or two more */
                qs[0] = 0.5;
                qs[1] = 1;
                qs[2] = 2;
                out->reason = CS_PR_SLOW_TRANSIT;
                out->at_risk = true;
            } else {
                /* no delivery known, or too few to be a yardstick (a new
                 * shop): the default; nothing to call slow */
                level = -1;
                w = known = 0;
                memcpy(qs, def, sizeof qs);
            }
        } else {
            lean_on_default(m, known, def, qs);
            /* beyond the lane's own high quantile, where the window came
             * from a coarser level that has parcels this slow */
            double beyond = share_beyond(m, &q->lane, elapsed, now);
            if (beyond >= 0 && beyond < 1 - m->o.q_high) {
                out->reason = CS_PR_SLOW_TRANSIT;
                out->at_risk = true;
            }
        }
    } else {
        /* every delivery's handling and transit replayed from this purchase */
        replay_t rp = { shiptime(m, q->placed_at), worktime(m, q->placed_at) };
        level = quantiles(m, &q->lane, WHAT_TOTAL, 0, &rp, now, qs, &w, &known);
        base = worktime(m, q->placed_at);
        static const double def[3] = { 2, 3, 5 }; /* a cautious default */
        if (level < 0) /* no history at all */
            memcpy(qs, def, sizeof qs);
        else
            lean_on_default(m, known, def, qs);
        /* not handed over when most parcels would have been, once
         * enough of them tell it; counted in ship days (Monday..Friday),
         * so a Friday order is not late for its hand-over on Sunday */
        double hq[3], hw, hk = 0;
        double waited = (double)(shiptime(m, now) - shiptime(m, q->placed_at)) / 86400;
        if (quantiles(m, &q->lane, WHAT_HANDLING, 0, NULL, now, hq, &hw, &hk) >= 0 &&
            hk >= m->o.min_weight && waited > hq[2] + 0.5) {
            /* the usual hand-over, in working time, is behind by this much */
            double usual = ship_to_work(m->o.calendar,
                                        shiptime(m, q->placed_at) + (int64_t)(hq[1] * 86400));
            double shift = worktime(m, now) - usual;
            if (shift < 0)
                shift = 0;
            qs[0] += shift;
            qs[1] += shift;
            qs[2] += shift;
            out->reason = CS_PR_MISSED_HANDOVER;
            out->at_risk = true;
        }
    }
    /* scanned in its destination region: the rest of the way of the
     * lane's parcels that had been there as long, once enough tell it */
    if (q->shipped_at && q->dest_since >= q->shipped_at && q->dest_since <= now) {
        double since = worktime(m, now) - worktime(m, q->dest_since);
        double dq[3], dw = 0, dk = 0;
        int dl = quantiles(m, &q->lane, WHAT_REST_DEST, since < 0 ? 0 : since, NULL, now, dq,
                           &dw, &dk);
        if (dl >= 0 && dk >= m->o.min_weight) {
            memcpy(qs, dq, sizeof qs);
            base = worktime(m, now);
            level = dl;
            w = dw;
            known = dk;
            if (out->reason == CS_PR_NONE)
                out->reason = CS_PR_IN_REGION;
        }
    }
    out->level = level;
    out->weight = w;
    out->yardstick = level >= 0 && known >= m->o.min_weight;

    /* what the last scan says */
    double extra = 0;
    if (q->last_status == CS_TRACK_OUT_FOR_DELIVERY && q->last_scan_at >= today0) {
        qs[0] = qs[1] = qs[2] = 0;
        base = worktime(m, now);
        out->reason = CS_PR_OUT_FOR_DELIVERY;
        out->at_risk = false; /* however slow the way was, it arrives today */
    } else if (q->last_status == CS_TRACK_AVAILABLE_FOR_PICKUP) {
        qs[0] = qs[1] = qs[2] = 0;
        base = worktime(m, now);
        out->reason = CS_PR_PICKUP_READY;
        out->at_risk = false;
    } else if (q->last_status == CS_TRACK_FAILED_ATTEMPT) {
        /* the next attempt: a working day after this one, not after each
         * time the window is asked for (past: today at the earliest) */
        base = worktime(m, q->last_scan_at && q->last_scan_at <= now ? q->last_scan_at : now);
        qs[0] = 1;
        qs[1] = 1;
        qs[2] = 2;
        out->reason = CS_PR_FAILED_ATTEMPT;
    } else if (q->last_status == CS_TRACK_EXCEPTION) {
        cs_promise_reason_t why;
        extra = incident_days(q->last_reason, &why);
        out->reason = why;
        out->at_risk = true;
    } else if (q->last_status == CS_TRACK__COUNT || q->last_status < 0) {
        /* no scan yet */
    } else if (q->last_reason == CS_INCIDENT_CUSTOMS) {
        /* clearance: routine for a while (CS_PROMISE_CLEARANCE_DAYS) */
        cs_ms_t since = q->customs_since ? q->customs_since : q->last_scan_at;
        double in = since && since <= now ? worktime(m, now) - worktime(m, since) : 0;
        if (in >= CS_PROMISE_CLEARANCE_DAYS) {
            cs_promise_reason_t why;
            extra = incident_days(q->last_reason, &why);
            out->reason = why;
            out->at_risk = true;
        } else {
            out->reason = CS_PR_IN_CUSTOMS;
        }
    } else if (q->last_reason == CS_INCIDENT_DELAYED || q->last_reason == CS_INCIDENT_WEATHER) {
        cs_promise_reason_t why;
        extra = incident_days(q->last_reason, &why);
        out->reason = why;
    }
    /* silence: longer without a scan than most parcels go between scans
     * (said rather than "slow": it is what the customer can see) */
    /* (from the hand-over when no scan came at all: the gap counts from it;
     * after a hold, weather or a delay whose window has passed too) */
    cs_ms_t heard = q->last_scan_at ? q->last_scan_at : q->shipped_at;
    if (q->shipped_at && heard <= now &&
        (out->reason == CS_PR_NONE || out->reason == CS_PR_SLOW_TRANSIT ||
         out->reason == CS_PR_IN_REGION || spent)) {
        double quiet = worktime(m, now) - worktime(m, heard);
        /* the lane's longest usual silence, once enough parcels tell it */
        double gq[3], gw = 0, gk = 0, expected = 3;
        if (quantiles(m, &q->lane, WHAT_GAP, 0, NULL, now, gq, &gw, &gk) >= 0 &&
            gk >= m->o.min_weight)
            expected = gq[2] < 1 ? 1 : gq[2];
        if (quiet >= expected) {
            out->reason = CS_PR_NO_SCAN;
            /* judged in working days, told in the days the customer counts */
            out->quiet_days = (int)((now - heard) / CS_MS_PER_DAY);
            out->at_risk = true;
            /* silence's own day; an incident's (spent) were given once */
            extra = 1;
        }
    }
    qs[0] += extra * 0.5;
    qs[1] += extra;
    qs[2] += extra;

    /* dates: never before today (nothing arrives in the past) */
    int64_t kmin = cs_calendar_wd(m->o.calendar, today) + !cs_calendar_open(m->o.calendar, today);
    /* nor before the first day a delivery is possible at all: the day of
     * the hand-over (before it, the first ship day from the purchase on)
     * plus the fastest transit the level has seen in whole working days.
     * Replayed and conditional windows count in fractions of a day, and a
     * sample handed over an hour after its purchase and delivered the
     * next morning, replayed from a purchase at 03:05, would arrive the
     * same day. A parcel out for delivery or at a pickup point is there. */
    if (out->reason != CS_PR_OUT_FOR_DELIVERY && out->reason != CS_PR_PICKUP_READY) {
        double handover = q->shipped_at ? floor(worktime(m, q->shipped_at))
                                        : floor(ship_to_work(m->o.calendar,
                                                             shiptime(m, q->placed_at)));
        /* (a few deliveries, no yardstick, set no floor above the
         * default's working day: one parcel ten days under way does not
         * make ten days the least) */
        int64_t fastest = fastest_transit_days(m, &q->lane, level);
        if (!out->yardstick && fastest > 1)
            fastest = 1;
        int64_t kfirst = (int64_t)handover + fastest;
        if (kmin < kfirst)
            kmin = kfirst;
    }
    int64_t k[3];
    for (int i = 0; i < 3; i++) {
        k[i] = (int64_t)floor(base + qs[i]);
        if (k[i] < kmin)
            k[i] = kmin;
    }
    if (k[1] < k[0])
        k[1] = k[0];
    if (k[2] < k[1])
        k[2] = k[1];
    out->from = midnight(m, day_of_index(m, k[0]));
    out->point = midnight(m, day_of_index(m, k[1]));
    out->to = midnight(m, day_of_index(m, k[2]));
    /* out for delivery: today, also on a day the calendar closes (a
     * carrier's Sunday round, a holiday): the scan says it is on its way
     * to the door now */
    if (out->reason == CS_PR_OUT_FOR_DELIVERY)
        out->from = out->point = out->to = today0;
    return CS_OK;
}

/* ---- reasons ---- */

const char *cs_promise_reason_name(cs_promise_reason_t r)
{
    static const char *const names[CS_PR__COUNT] = {
        "none", "out_for_delivery", "failed_attempt", "pickup_ready", "customs", "address_problem",
        "weather", "exception", "no_scan", "missed_handover", "slow_transit", "delivered",
        "returned", "held_at_depot", "late", "stuck", "in_region", "in_customs",
    };
    return (unsigned)r < CS_PR__COUNT ? names[r] : "none";
}

int cs_promise_reason_from_name(const char *name)
{
    for (int i = 0; name && i < CS_PR__COUNT; i++)
        if (strcmp(cs_promise_reason_name((cs_promise_reason_t)i), name) == 0)
            return i;
    return -1;
}

const char *cs_promise_reason_text(cs_promise_reason_t r, const char *lang, int days, char *buf,
                                   size_t size)
{
    bool de = lang && strncmp(lang, "de", 2) == 0;
    const char *t = "";
    switch (r) {
    case CS_PR_NONE: t = de ? "Alles läuft nach Plan." : "Everything is on track."; break;
    case CS_PR_OUT_FOR_DELIVERY:
        t = de ? "Das Paket ist heute in der Zustellung." : "The parcel is out for delivery today.";
        break;
    case CS_PR_FAILED_ATTEMPT:
        t = de ? "Die Zustellung hat nicht geklappt; der nächste Versuch folgt."
               : "Delivery did not work out; the next attempt follows.";
        break;
    case CS_PR_PICKUP_READY:
        t = de ? "Das Paket liegt zur Abholung bereit." : "The parcel is ready for pickup.";
        break;
    case CS_PR_CUSTOMS:
        t = de ? "Das Paket wird beim Zoll geprüft." : "The parcel is being checked by customs.";
        break;
    case CS_PR_ADDRESS:
        t = de ? "Mit der Adresse gibt es ein Problem." : "There is a problem with the address.";
        break;
    case CS_PR_WEATHER:
        t = de ? "Das Wetter verzögert die Zustellung." : "The weather is delaying delivery.";
        break;
    case CS_PR_EXCEPTION:
        t = de ? "Der Versanddienst meldet eine Störung." : "The carrier reports a problem.";
        break;
    case CS_PR_NO_SCAN:
        if (days == 1) /* the one singular: "einem Tag", "1 day" */
            snprintf(buf, size, "%s",
                     de ? "Seit einem Tag kein neuer Scan des Versanddienstes."
                        : "No scan from the carrier for 1 day.");
        else
            snprintf(buf, size,
                     de ? "Seit %d Tagen kein neuer Scan des Versanddienstes."
                        : "No scan from the carrier for %d days.",
                     days);
        return buf;
    case CS_PR_STUCK:
        snprintf(buf, size,
                 de ? "Das Paket liegt seit %d Tagen am selben Ort des Versanddienstes."
                    : "The parcel has been at the same carrier location for %d days.",
                 days);
        return buf;
    case CS_PR_MISSED_HANDOVER:
        /* (said while it has not been handed over yet, and after) */
        t = de ? "Die Übergabe an den Versanddienst dauert länger als üblich."
               : "Handing the parcel to the carrier is taking longer than usual.";
        break;
    case CS_PR_SLOW_TRANSIT:
        t = de ? "Das Paket ist länger unterwegs als üblich."
               : "The parcel is taking longer than usual.";
        break;
    case CS_PR_DELIVERED: t = de ? "Zugestellt." : "Delivered."; break;
    case CS_PR_IN_REGION:
        t = de ? "Das Paket ist in Ihrer Region angekommen."
               : "The parcel has reached your region.";
        break;
    case CS_PR_IN_CUSTOMS:
        t = de ? "Das Paket ist in der Zollabfertigung." : "The parcel is going through customs.";
        break;
    case CS_PR_HELD_AT_DEPOT:
        t = de ? "Das Paket wird in einem Depot des Versanddienstes festgehalten."
               : "The parcel is being held at a carrier depot.";
        break;
    case CS_PR_LATE:
        t = de ? "Die Zustellung dauert länger als zugesagt."
               : "Delivery is taking longer than promised.";
        break;
    case CS_PR_RETURNED:
        t = de ? "Das Paket geht an uns zurück." : "The parcel is on its way back to us.";
        break;
    default: break;
    }
    snprintf(buf, size, "%s", t);
    return buf;
}
