/*
 * demo.c -- `consonance demo`: generate the German demo shop into the store
 * (or as NDJSON with --out). Deterministic for a seed and an --end, so a
 * second run with the same ones adds nothing (every event is a duplicate).
 * Without --end the period ends now: what would come later has not
 * happened yet.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "../importer/importer.h"
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: consonance demo [--config FILE] [--store TARGET] [--customers N] "
               "[--months M] [--seed S] [--end YYYY-MM-DD] [--out FILE.ndjson]\n"
               "\n"
               "Generates \"Waldkauz Haus & Outdoor\", a German demo shop: customers, orders over\n"
               "M months (of 30 days, not starting before 2000-01-01) up to --end (default\n"
               "now; not later than today), DHL/DPD/Hermes/GLS shipments and scans, returns,\n"
               "tickets, reviews. Nothing after the end is written: the last days' orders are\n"
               "still on their way. Into the store, or as NDJSON with --out (- = stdout).\n");
}

static bool num(const char *flag, const char *v, int64_t lo, int64_t hi, int64_t *out)
{
    if (!cs_parse_i64(v, out) || *out < lo || *out > hi) {
        fprintf(stderr, "consonance demo: %s: expected an integer %lld..%lld, got \"%s\"\n", flag,
                (long long)lo, (long long)hi, v);
        return false;
    }
    return true;
}

/* --end: a date whose period (months of 30 days before it) starts no
 * earlier than 2000-01-01, where intake takes times from
 * (CS_EVENT_TIME_MIN), and that is not after today (its events would be
 * ahead of the clock). A date before 2000 is said to be one, not to be
 * malformed. */
static bool end_date(const char *v, int months, cs_ms_t *out)
{
    cs_ms_t min = CS_EVENT_TIME_MIN + (cs_ms_t)months * 30 * CS_MS_PER_DAY, t;
    char first[40];
    cs_time_format(min, first, sizeof first);
    first[10] = '\0';
    if (strlen(v) == 10 && strspn(v, "0123456789") == 4 && v[4] == '-' && strncmp(v, "2000", 4) < 0) {
        fprintf(stderr, "consonance demo: --end: expected a date from 2000-01-01 on, got \"%s\"\n",
                v);
        return false;
    }
    if (!cs_date_parse(v, &t)) {
        fprintf(stderr, "consonance demo: --end: expected a date like 2026-11-01, got \"%s\"\n", v);
        return false;
    }
    if (t < min) {
        fprintf(stderr,
                "consonance demo: --end: expected a date from %s on (the %d months before it "
                "must not start before 2000-01-01), got \"%s\"\n",
                first, months, v);
        return false;
    }
    cs_ms_t now = cs_clock_now(cs_clock_system());
    if (t > now) {
        char today[40];
        cs_time_format(now, today, sizeof today);
        today[10] = '\0';
        fprintf(stderr,
                "consonance demo: --end: expected a date no later than today (%s), got \"%s\"\n",
                today, v);
        return false;
    }
    *out = t;
    return true;
}

int cs_cmd_demo(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"store", required_argument, NULL, 's'},
        {"customers", required_argument, NULL, 'n'}, {"months", required_argument, NULL, 'm'},
        {"seed", required_argument, NULL, 'S'},   {"end", required_argument, NULL, 'e'},
        {"out", required_argument, NULL, 'o'},    {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *store = NULL, *out_path = NULL, *end_arg = NULL;
    cs_demo_opts_t o;
    int64_t x;
    int c;
    cs_demo_opts_default(&o);
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:s:n:m:S:e:o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 's': store = optarg; break;
        case 'n':
            if (!num("--customers", optarg, 1, 10000000, &x))
                return CS_EXIT_USAGE;
            o.customers = (int)x;
            break;
        case 'm':
            if (!num("--months", optarg, 1, 120, &x))
                return CS_EXIT_USAGE;
            o.months = (int)x;
            break;
        case 'S':
            if (!num("--seed", optarg, 0, INT64_MAX, &x))
                return CS_EXIT_USAGE;
            o.seed = (uint64_t)x;
            break;
        case 'e': end_arg = optarg; break;
        case 'o': out_path = optarg; break;
        case 'h': usage(stdout); return CS_EXIT_OK;
        default: usage(stderr); return CS_EXIT_USAGE;
        }
    }
    if (optind != argc)
        return cs_cli_usage("demo", usage, "unexpected argument \"%s\"", argv[optind]);
    if (end_arg && !end_date(end_arg, o.months, &o.end))
        return CS_EXIT_USAGE;
    if (out_path && (store || config)) { /* the events would not go where asked */
        fprintf(stderr, "consonance demo: --out writes the events to a file and opens no store: "
                        "expected --out or --store/--config, not both\n");
        return CS_EXIT_USAGE;
    }
    cs_import_stats_t st;
    cs_err_t err;
    cs_rc rc;
    int status = CS_EXIT_FAIL;
    cs_engine_t *e = NULL;
    cs_sink_t *sink = NULL;
    FILE *out = NULL;
    memset(&st, 0, sizeof st);
    cs_err_clear(&err);
    if (out_path) {
        out = strcmp(out_path, "-") == 0 ? stdout : fopen(out_path, "w");
        if (!out) {
            perror(out_path);
            return CS_EXIT_FAIL;
        }
        rc = cs_demo_generate(&o, cs_ndjson_emit, out, &st, &err);
        if (out != stdout && fclose(out) != 0 && !rc)
            rc = cs_errf(&err, CS_ERR_IO, "%s: write failed", out_path);
        if (rc) {
            cs_cli_fail("demo", &err);
            return CS_EXIT_FAIL;
        }
        st.accepted = st.read; /* written */
        json_t *sum = cs_import_stats_json(&st);
        json_dumpf(sum, out == stdout ? stderr : stdout, JSON_COMPACT);
        fprintf(out == stdout ? stderr : stdout, "\n");
        json_decref(sum);
        return CS_EXIT_OK;
    }
    if ((status = cs_cli_open_engine("demo", config, store, &e)) != CS_EXIT_OK)
        goto done;
    status = CS_EXIT_FAIL;
    if ((rc = cs_sink_open(e, &st, NULL, &sink, &err)) ||
        (rc = cs_demo_generate(&o, cs_sink_emit, sink, &st, &err))) {
        cs_cli_fail("demo", &err);
        goto done;
    }
    if ((rc = cs_sink_close(&sink, &err))) {
        cs_cli_fail("demo", &err);
        goto done;
    }
    json_t *sum = cs_import_stats_json(&st);
    json_dumpf(sum, stdout, JSON_COMPACT);
    printf("\n");
    json_decref(sum);
    status = st.failed ? CS_EXIT_FAIL : CS_EXIT_OK;
done:
    cs_sink_close(&sink, NULL);
    cs_engine_close(&e);
    return status;
}
