/*
 * promise_eval.c -- `consonance promise-eval`: how good the delivery promise
 * is on Olist-layout CSVs, against the shop's own estimate (JSON on stdout).
 *
 *   promise-eval TRAIN_DIR TEST_DIR          TRAIN_DIR's orders teach, TEST_DIR's
 *                                            are promised
 *   promise-eval --split-at DATE DIR         orders placed before DATE teach,
 *                                            the rest are promised
 *   --quantiles LOW,HIGH (default 0.10,0.90, 0 < LOW < 0.5 < HIGH < 1)
 *   --half-life DAYS (default 90)
 *   --holidays CC|none (default none): a country's public holidays (BR for
 *                      Olist's) close days, as the daemon's `holidays`
 *
 * The replay is in time order, as in production: every delivery, of a
 * training order or a test order, teaches when it completes; a test order
 * is promised when it is placed, from what was delivered (and what was
 * under way) by then. So test orders' deliveries teach the test orders
 * placed after they arrived, never their own promise.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tracking/promise_eval.h"
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: consonance promise-eval [--quantiles LOW,HIGH] [--half-life DAYS] "
               "TRAIN_DIR TEST_DIR\n"
               "       consonance promise-eval [options] --split-at YYYY-MM-DD DIR\n"
               "Replays the orders in time order: deliveries teach as they complete (the\n"
               "test orders' too, once delivered); each test order (TEST_DIR's, or placed\n"
               "from the --split-at date on) is promised when placed, from what was\n"
               "delivered and under way by then. The shop's estimate is a date, scored as\n"
               "on time or late. --quantiles: the window, 0 < LOW < 0.5 < HIGH < 1\n"
               "(default 0.10,0.90); --half-life: sample weight halves in DAYS (90);\n"
               "--holidays: a country's public holidays close days (" CS_CALENDAR_COUNTRIES
               ", or none: the default).\n");
}

/* The country as given ("br" -> "BR"), for the output. */
static const char *cal_name(const char *h)
{
    static char up[8];
    size_t i = 0;
    for (; h[i] && i < sizeof up - 1; i++)
        up[i] = (char)(h[i] >= 'a' && h[i] <= 'z' ? h[i] - 32 : h[i]);
    up[i] = '\0';
    return strcmp(up, "NONE") == 0 ? "none" : up;
}

int cs_cmd_promise_eval(int argc, char **argv)
{
    static const struct option opts[] = {
        { "split-at", required_argument, NULL, 's' },
        { "quantiles", required_argument, NULL, 'q' },
        { "half-life", required_argument, NULL, 'l' },
        { "holidays", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    cs_promise_eval_opts_t eo;
    memset(&eo, 0, sizeof eo);
    cs_calendar_t *cal = NULL; /* the model's (owned here) */
    const char *holidays = "none";
    cs_err_t err;
    cs_err_clear(&err);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 's':
            if (!cs_time_parse(optarg, &eo.split_at)) {
                fprintf(stderr, "consonance promise-eval: --split-at: expected a date like "
                                "2018-01-01, got '%s'\n", optarg);
                return CS_EXIT_USAGE;
            }
            break;
        case 'q':
            /* the median lies inside the window (cs_promise_new checks too) */
            eo.model.q_low = strtod(optarg, &end);
            if (*end != ',' || !(eo.model.q_low > 0 && eo.model.q_low < 0.5) ||
                !((eo.model.q_high = strtod(end + 1, &end)) > 0.5 &&
                  eo.model.q_high < 1) || *end) {
                fprintf(stderr, "consonance promise-eval: --quantiles: expected LOW,HIGH with "
                                "0 < LOW < 0.5 < HIGH < 1, got '%s'\n", optarg);
                return CS_EXIT_USAGE;
            }
            break;
        case 'l':
            eo.model.half_life_days = strtod(optarg, &end);
            if (*end || !(eo.model.half_life_days > 0)) {
                fprintf(stderr, "consonance promise-eval: --half-life: expected days > 0, "
                                "got '%s'\n", optarg);
                return CS_EXIT_USAGE;
            }
            break;
        case 'o':
            cs_calendar_free(&cal);
            if (cs_calendar_new(optarg, NULL, &cal, &err) != CS_OK) {
                fprintf(stderr, "consonance promise-eval: --%s\n", err.msg);
                return CS_EXIT_USAGE;
            }
            holidays = optarg;
            break;
        case 'h': cs_calendar_free(&cal); usage(stdout); return CS_EXIT_OK;
        default: cs_calendar_free(&cal); usage(stderr); return CS_EXIT_USAGE;
        }
    }
    int rest = argc - optind;
    if ((eo.split_at && rest != 1) || (!eo.split_at && rest != 2)) {
        cs_calendar_free(&cal);
        if (eo.split_at)
            return cs_cli_usage("promise-eval", usage,
                                "with --split-at: expected one folder of Olist CSV files, got %d",
                                rest);
        return cs_cli_usage("promise-eval", usage,
                            "expected two folders of Olist CSV files, to train on and to test "
                            "on (or one with --split-at), got %d",
                            rest);
    }
    eo.train_dir = argv[optind];
    eo.test_dir = eo.split_at ? NULL : argv[optind + 1];
    eo.model.calendar = cal;
    json_t *out;
    cs_rc rc = cs_promise_eval_olist(&eo, &out, &err);
    cs_calendar_free(&cal);
    if (rc != CS_OK)
        return cs_cli_fail("promise-eval", &err);
    /* rows left out are said where a person reads, and counted in the JSON */
    json_int_t skipped = json_integer_value(json_object_get(out, "skipped_rows"));
    if (skipped > 0) {
        fprintf(stderr, "consonance promise-eval: %lld rows left out", (long long)skipped);
        json_t *first = json_array_get(json_object_get(out, "skipped"), 0);
        if (first)
            fprintf(stderr, "; the first: %s", json_string_value(first));
        fprintf(stderr, "\n");
    }
    json_t *model = json_object_get(out, "model");
    if (model)
        json_object_set_new(model, "holidays", json_string(cal_name(holidays)));
    char *text = json_dumps(out, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    json_decref(out);
    if (!text)
        return CS_EXIT_FAIL;
    printf("%s\n", text);
    free(text);
    return CS_EXIT_OK;
}
