/*
 * bench_timers.c -- durable timers: schedule N delayed messages, let them all
 * come due at one instant, fire them into the outbox; timers/s, lateness,
 * and memory per pending timer.
 *
 *   bench_timers DIR N [TARGET [NODES]]
 *
 * TARGET (default: a durable SQLite file in DIR) may be a PostgreSQL
 * database; NODES (default 1) firing threads then fire concurrently, each
 * with its own connection and journey runtime, as that many nodes would
 * (the store's cross-node write lock decides who goes next).
 *
 * The product's path, on a durable SQLite store (WAL, synchronous=FULL):
 * N order.placed events are ingested and the journey runtime runs a journey
 * that waits one day and then sends a transactional email; scheduling is
 * the ingest plus the journey passes that start the runs and arm their
 * timers. The clock is the injectable manual clock, set one day and a bit
 * later in one step: every timer is due at that instant. Firing runs the
 * same passes the daemon's writer runs (2,000 timers per transaction): each
 * fired timer loads its run, builds the message context, asks the contact
 * policy and writes a queued outbox row. Lateness of a timer is the real
 * time from the instant it came due until the transaction that fired it
 * committed. Prints key=value lines.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/journeys.h"

#define CUSTOMERS 10000
#define BATCH 5000
#define FIRE_BATCH 2000

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            v = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

static void die(const char *what, const cs_err_t *err)
{
    fprintf(stderr, "bench_timers: %s: %s\n", what, err->msg);
    exit(1);
}

static void ingest(cs_store_t *s, const char *text, cs_ms_t now)
{
    cs_event_t *ev;
    cs_err_t err;
    cs_ingest_outcome_t oc;
    int64_t seq;
    if (cs_event_parse(text, strlen(text), &ev, &err))
        die("parse", &err);
    if (cs_store_ingest(s, ev, now, &oc, &seq, &err))
        die("ingest", &err);
    cs_event_free(&ev);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static const char *const yaml = "journey: delayed_message\n"
                                "trigger: {event: order.placed}\n"
                                "steps:\n"
                                "  - wait: 1d\n"
                                "  - send: {channel: email, template: order_confirmation, "
                                "class: transactional}\n";

static cs_journeys_t *runtime(cs_clock_manual_t *clock)
{
    cs_journeys_opts_t jo = { .clock = &clock->clock };
    jo.policy_set = true;
    cs_policy_conf_default(&jo.policy);
    jo.policy.quiet_start = jo.policy.quiet_end = 0;
    cs_journeys_t *js;
    cs_journey_t *j;
    cs_err_t err;
    if (cs_journeys_new(&jo, &js, &err) || cs_journey_parse("bench.yaml", yaml, strlen(yaml), &j, &err) ||
        cs_journeys_add(js, j, &err))
        die("journey", &err);
    return js;
}

/* One firing node: its own connection and runtime; fires until nothing is
 * due. Every fired timer's lateness is the time from due_ns to the commit
 * of its transaction. */
typedef struct node {
    pthread_t th;
    const char *target;
    cs_clock_manual_t *clock;
    uint64_t due_ns;
    double *lat;        /* shared, n slots */
    size_t *fired;      /* shared counter */
    size_t n;
    pthread_mutex_t *mu;
    cs_store_t *s;
    cs_journeys_t *js;
} node_t;

static void *fire_main(void *arg)
{
    node_t *nd = arg;
    cs_err_t err;
    for (;;) {
        cs_journeys_stats_t st;
        memset(&st, 0, sizeof st);
        if (cs_store_begin(nd->s, &err))
            die("begin", &err);
        if (cs_journeys_fire_due(nd->js, nd->s, FIRE_BATCH, &st, &err) || cs_store_commit(nd->s, &err))
            die("fire", &err);
        double l = (double)(cs_mono_ns() - nd->due_ns) / 1e6;
        pthread_mutex_lock(nd->mu);
        for (size_t k = 0; k < st.timers && *nd->fired < nd->n; k++)
            nd->lat[(*nd->fired)++] = l;
        pthread_mutex_unlock(nd->mu);
        if (st.timers == 0)
            break;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: bench_timers DIR N [TARGET [NODES]]\n");
        return 2;
    }
    const char *dir = argv[1];
    char *end;
    long n = strtol(argv[2], &end, 10);
    if (*end != '\0' || n <= 0) {
        fprintf(stderr, "bench_timers: N must be a positive integer\n");
        return 2;
    }
    char target[1024], ts[40], buf[1024];
    snprintf(target, sizeof target, "sqlite:%s/timers.db", dir);
    if (argc >= 4)
        snprintf(target, sizeof target, "%s", argv[3]);
    long nodes = argc >= 5 ? strtol(argv[4], &end, 10) : 1;
    if ((argc >= 5 && *end != '\0') || nodes < 1 || nodes > 16) {
        fprintf(stderr, "bench_timers: NODES must be 1..16\n");
        return 2;
    }
    cs_err_t err;
    cs_store_t *s;
    cs_store_opts_t so;
    cs_store_opts_default(&so); /* durable */
    if (cs_store_open(target, &so, &s, &err))
        die("open", &err);
    cs_clock_manual_t clock;
    cs_ms_t t0;
    cs_time_parse("2026-11-02T09:00:00Z", &t0); /* a Monday morning */
    cs_clock_manual_init(&clock, t0);
    cs_time_format(t0, ts, sizeof ts);

    /* the journey, and customers who can be mailed */
    cs_journeys_t *js = runtime(&clock);
    if (cs_store_begin(s, &err))
        die("begin", &err);
    for (int c = 0; c < CUSTOMERS; c++) {
        snprintf(buf, sizeof buf,
                 "{\"event_id\":\"c%d\",\"type\":\"customer.upserted\",\"occurred_at\":\"%s\","
                 "\"data\":{\"id\":\"k%d\",\"email\":\"k%d@example.de\",\"locale\":\"de\","
                 "\"timezone\":\"Europe/Berlin\",\"consents\":{\"email\":{\"transactional\":true}}}}",
                 c, ts, c, c);
        ingest(s, buf, t0);
    }
    if (cs_journeys_sync(js, s, &err) || cs_store_commit(s, &err))
        die("setup", &err);

    /* schedule: N orders -> N runs waiting on N durable timers */
    long rss0 = rss_kib();
    uint64_t a = cs_mono_ns();
    for (long i = 0; i < n; i += BATCH) {
        if (cs_store_begin(s, &err))
            die("begin", &err);
        for (long k = i; k < i + BATCH && k < n; k++) {
            snprintf(buf, sizeof buf,
                     "{\"event_id\":\"o%ld\",\"type\":\"order.placed\",\"occurred_at\":\"%s\","
                     "\"data\":{\"id\":\"%ld\",\"customer_id\":\"k%ld\",\"currency\":\"EUR\","
                     "\"items\":[{\"sku\":\"KAF-250\",\"name\":\"Kaffeebohnen 250 g\","
                     "\"unit_price\":\"8.90\",\"quantity\":1}]}}",
                     k, ts, 100000 + k, k % CUSTOMERS);
            ingest(s, buf, t0);
        }
        if (cs_store_commit(s, &err))
            die("commit", &err);
        cs_ms_t next;
        if (cs_journeys_pass(js, s, BATCH, &next, &err))
            die("schedule pass", &err);
    }
    double sched_s = (double)(cs_mono_ns() - a) / 1e9;
    long rss1 = rss_kib();
    int64_t pending = 0;
    cs_store_call(s, timer_count, &pending, &err);

    /* fire: everything comes due at once, NODES firing side by side */
    double *lat = calloc((size_t)n + 1, sizeof *lat);
    size_t fired = 0;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    node_t nd[16];
    memset(nd, 0, sizeof nd);
    for (int i = 0; i < nodes; i++) {
        nd[i] = (node_t){ .target = target, .clock = &clock, .lat = lat, .fired = &fired,
                          .n = (size_t)n, .mu = &mu };
        if (i == 0) {
            nd[i].s = s;
            nd[i].js = js;
            continue;
        }
        if (cs_store_open(target, &so, &nd[i].s, &err))
            die("open a node", &err);
        nd[i].js = runtime(&clock);
        if (cs_store_begin(nd[i].s, &err) || cs_journeys_sync(nd[i].js, nd[i].s, &err) ||
            cs_store_commit(nd[i].s, &err))
            die("node setup", &err);
    }
    cs_clock_manual_set(&clock, t0 + CS_MS_PER_DAY + 60 * 1000);
    uint64_t due_ns = cs_mono_ns();
    for (int i = 0; i < nodes; i++) {
        nd[i].due_ns = due_ns;
        if (pthread_create(&nd[i].th, NULL, fire_main, &nd[i]) != 0) {
            fprintf(stderr, "bench_timers: cannot start a node thread\n");
            return 1;
        }
    }
    double last = 0;
    for (int i = 0; i < nodes; i++)
        pthread_join(nd[i].th, NULL);
    for (size_t k = 0; k < fired; k++)
        if (lat[k] > last)
            last = lat[k];
    double fire_s = last / 1000.0;
    qsort(lat, fired, sizeof *lat, cmp_double);
    cs_store_counts_t counts;
    cs_store_counts(s, &counts, &err);
    int64_t left = 0;
    cs_store_call(s, timer_count, &left, &err);
    cs_journeys_stats_t tot;
    cs_journeys_totals(js, &tot);

    printf("timers_n=%ld\n", n);
    printf("timers_nodes=%ld\n", nodes);
    printf("timers_pending=%lld\n", (long long)pending);
    printf("timers_schedule_s=%.2f\n", sched_s);
    printf("timers_schedule_per_s=%.0f\n", (double)n / sched_s);
    printf("timers_fired=%zu\n", fired);
    printf("timers_fire_s=%.2f\n", fire_s);
    printf("timers_fire_per_s=%.0f\n", (double)fired / fire_s);
    printf("timers_lateness_p50_ms=%.0f\n", fired ? lat[fired / 2] : 0.0);
    printf("timers_lateness_p99_ms=%.0f\n", fired ? lat[fired * 99 / 100] : 0.0);
    printf("timers_left=%lld\n", (long long)left);
    printf("timers_rss_before_kib=%ld\n", rss0);
    printf("timers_rss_pending_kib=%ld\n", rss1);
    printf("timers_bytes_per_pending=%.1f\n",
           pending ? (double)(rss1 - rss0) * 1024.0 / (double)pending : 0.0);
    free(lat);
    for (int i = 1; i < nodes; i++) {
        cs_journeys_free(nd[i].js);
        cs_store_close(&nd[i].s);
    }
    cs_journeys_free(js);
    cs_store_close(&s);
    return 0;
}
