/*
 * bench_promise.c -- what a delivery promise costs with a shop's full
 * history behind it: estimates per second on settled lanes (deliveries
 * kept in order, cs_promise_settle) against the same model's estimates
 * before it settled (each query sorts its level's values), in the same run.
 *
 *   bench_promise [DELIVERIES [QUERIES]]
 *
 * The model learns DELIVERIES (default 200,000) deliveries of the last 120
 * days on 4 carriers from 2 origin states to 16 destination states, so the
 * carrier and whole-shop levels are full (4,000 each) and a lane holds
 * about 1,500; 5,000 parcels are in flight; German public holidays close
 * days, as the daemon's default calendar does. The queries mix the three kinds
 * the daemon asks, each measured alone: a checkout's (not handed over:
 * every delivery's handling and transit replayed from its purchase, which
 * no kept order serves), a parcel's on its way (the rest of the transit;
 * the lane's silences), and one scanned in its destination region (the
 * rest of the way from there). Prints key=value lines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tracking/promise.h"

#define CARRIERS 4
#define DESTS 16
#define FLIGHTS 5000

static const char *const carriers[CARRIERS] = { "dhl", "dpd", "hermes", "gls" };
static const char *const dests[DESTS] = { "DE-BE", "DE-BY", "DE-BW", "DE-HH", "DE-HE", "DE-NI",
                                          "DE-NW", "DE-RP", "DE-SL", "DE-SN", "DE-ST", "DE-SH",
                                          "DE-TH", "DE-MV", "DE-BB", "DE-HB" };
static const char *const origins[2] = { "DE-SN", "DE-BY" };

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint32_t rnd(uint32_t *state)
{
    *state = *state * 1103515245u + 12345u;
    return *state >> 8;
}

static void die(const char *what, const cs_err_t *err)
{
    fprintf(stderr, "bench_promise: %s: %s\n", what, err->msg);
    exit(1);
}

enum { CHECKOUT, ON_ITS_WAY, IN_REGION, KINDS };
static const char *const kind_name[KINDS] = { "checkout", "on_its_way", "in_region" };

/* n queries of one kind, the same for both runs. */
static void make_queries(cs_promise_query_t *q, size_t n, int kind, cs_ms_t now)
{
    uint32_t r = 99;
    for (size_t i = 0; i < n; i++) {
        memset(&q[i], 0, sizeof q[i]);
        q[i].lane = (cs_lane_t){ carriers[rnd(&r) % CARRIERS], "paket", origins[rnd(&r) % 2],
                                 dests[rnd(&r) % DESTS] };
        q[i].now = now;
        q[i].last_status = CS_TRACK__COUNT;
        switch (kind) {
        case CHECKOUT:
            q[i].placed_at = now;
            break;
        case ON_ITS_WAY: /* scanned this morning */
            q[i].placed_at = now - (cs_ms_t)(1 + rnd(&r) % 3) * CS_MS_PER_DAY;
            q[i].shipped_at = q[i].placed_at + 8 * 3600000;
            q[i].last_status = CS_TRACK_IN_TRANSIT;
            q[i].last_scan_at = now - 5 * 3600000;
            break;
        default: /* in its destination region since this morning */
            q[i].placed_at = now - 2 * CS_MS_PER_DAY;
            q[i].shipped_at = q[i].placed_at + 8 * 3600000;
            q[i].last_status = CS_TRACK_IN_TRANSIT;
            q[i].last_scan_at = now - 4 * 3600000;
            q[i].dest_since = q[i].last_scan_at;
            break;
        }
    }
}

static double run(const cs_promise_model_t *m, const cs_promise_query_t *q, size_t n,
                  int64_t *sum)
{
    cs_err_t err;
    double t0 = now_s();
    for (size_t i = 0; i < n; i++) {
        cs_promise_t p;
        if (cs_promise_estimate(m, &q[i], &p, &err))
            die("estimate", &err);
        *sum += p.to / 1000 + p.level; /* the answers, compared across the runs */
    }
    return (double)n / (now_s() - t0);
}

int main(int argc, char **argv)
{
    size_t deliveries = argc > 1 ? strtoul(argv[1], NULL, 10) : 200000;
    size_t queries = argc > 2 ? strtoul(argv[2], NULL, 10) : 30000;
    /* German holidays, as the daemon has by default (Europe/Berlin): the
     * 120 days span Christmas, and every replayed day is looked up */
    cs_calendar_t *cal = NULL;
    cs_err_t err;
    if (cs_calendar_new("DE", NULL, &cal, &err))
        die("calendar", &err);
    cs_promise_opts_t o = { .tz = cs_tz_get_or_utc("Europe/Berlin"), .calendar = cal };
    cs_promise_model_t *m;
    if (cs_promise_new(&o, &m, &err))
        die("model", &err);
    cs_ms_t now = 1772438400000; /* 2026-03-02, a Monday, 08:00 UTC */
    cs_ms_t span = 120 * CS_MS_PER_DAY;
    uint32_t r = 7;
    double t0 = now_s();
    for (size_t i = 0; i < deliveries; i++) {
        cs_ms_t placed = now - span + (cs_ms_t)((double)span * (double)i / (double)deliveries);
        cs_ms_t shipped = placed + (cs_ms_t)(2 + rnd(&r) % 40) * 3600000;
        int c = (int)(rnd(&r) % CARRIERS), d = (int)(rnd(&r) % DESTS);
        cs_ms_t transit = (cs_ms_t)(18 + c * 6 + d + rnd(&r) % 60) * 3600000;
        cs_ms_t gap = transit / (2 + (cs_ms_t)(rnd(&r) % 3));
        cs_delivery_t dl = { { carriers[c], "paket", origins[rnd(&r) % 2], dests[d] },
                             placed, shipped, shipped + transit, shipped, shipped + gap, NULL,
                             shipped + transit - (cs_ms_t)(4 + rnd(&r) % 20) * 3600000 };
        if (dl.delivered_at > now)
            continue;
        if (cs_promise_observe(m, &dl, &err))
            die("observe", &err);
    }
    double learn_s = now_s() - t0;
    char id[32];
    for (int i = 0; i < FLIGHTS; i++) {
        snprintf(id, sizeof id, "f%d", i);
        cs_lane_t lane = { carriers[i % CARRIERS], "paket", origins[i % 2], dests[i % DESTS] };
        cs_ms_t placed = now - (cs_ms_t)(i % 96) * 3600000;
        if (cs_promise_in_flight(m, id, &lane, placed, placed + 6 * 3600000, 0, &err))
            die("in flight", &err);
    }
    cs_promise_query_t *q[KINDS];
    double before[KINDS], after[KINDS];
    int64_t sum_before[KINDS] = { 0 }, sum_after[KINDS] = { 0 };
    for (int k = 0; k < KINDS; k++) {
        if (!(q[k] = calloc(queries, sizeof *q[k])))
            return 1;
        make_queries(q[k], queries, k, now);
        /* each query sorts: fewer of them */
        before[k] = run(m, q[k], queries / 10, &sum_before[k]);
    }
    t0 = now_s();
    cs_promise_settle(m);
    double settle_s = now_s() - t0;
    for (int k = 0; k < KINDS; k++) {
        (void)run(m, q[k], queries / 10, &sum_after[k]);
        if (sum_after[k] != sum_before[k]) {
            fprintf(stderr, "bench_promise: settled lanes answered differently\n");
            return 1;
        }
        after[k] = run(m, q[k], queries, &sum_after[k]);
    }
    printf("promise_deliveries=%zu\n", cs_promise_samples(m));
    printf("promise_learn_per_s=%.0f\n", (double)cs_promise_samples(m) / learn_s);
    printf("promise_settle_ms=%.1f\n", settle_s * 1e3);
    printf("promise_in_flight=%d\n", FLIGHTS);
    printf("promise_queries=%zu\n", queries);
    for (int k = 0; k < KINDS; k++) {
        printf("promise_est_%s_unsettled_per_s=%.0f\n", kind_name[k], before[k]);
        printf("promise_est_%s_settled_per_s=%.0f\n", kind_name[k], after[k]);
        printf("promise_est_%s_ratio=%.1f\n", kind_name[k], after[k] / before[k]);
        free(q[k]);
    }
    cs_promise_free(m);
    cs_calendar_free(&cal);
    return 0;
}
