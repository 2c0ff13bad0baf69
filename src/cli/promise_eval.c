/*
 * promise_eval.c -- `consonance promise-eval`: how good the delivery promise
 * is on Olist-layout CSVs, against the shop's own estimate (JSON on stdout).
 *
 *   promise-eval TRAIN_DIR TEST_DIR          learn from one, promise the other
 *   promise-eval --split-at DATE DIR         orders placed before DATE teach,
 *                                            the rest are promised
 *   --quantiles LOW,HIGH (default 0.10,0.90)  --half-life DAYS (default 90)
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
               "       consonance promise-eval [options] --split-at YYYY-MM-DD DIR\n");
}

int cs_cmd_promise_eval(int argc, char **argv)
{
    static const struct option opts[] = {
        { "split-at", required_argument, NULL, 's' },
        { "quantiles", required_argument, NULL, 'q' },
        { "half-life", required_argument, NULL, 'h' },
        { "help", no_argument, NULL, '?' },
        { NULL, 0, NULL, 0 },
    };
    cs_promise_eval_opts_t eo;
    memset(&eo, 0, sizeof eo);
    cs_err_t err;
    cs_err_clear(&err);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
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
            eo.model.q_low = strtod(optarg, &end);
            if (*end != ',' || !(eo.model.q_low > 0 && eo.model.q_low < 1) ||
                !((eo.model.q_high = strtod(end + 1, &end)) > eo.model.q_low &&
                  eo.model.q_high < 1) || *end) {
                fprintf(stderr, "consonance promise-eval: --quantiles: expected LOW,HIGH with "
                                "0 < LOW < HIGH < 1, got '%s'\n", optarg);
                return CS_EXIT_USAGE;
            }
            break;
        case 'h':
            eo.model.half_life_days = strtod(optarg, &end);
            if (*end || !(eo.model.half_life_days > 0)) {
                fprintf(stderr, "consonance promise-eval: --half-life: expected days > 0, "
                                "got '%s'\n", optarg);
                return CS_EXIT_USAGE;
            }
            break;
        default: usage(c == '?' ? stdout : stderr); return c == '?' ? CS_EXIT_OK : CS_EXIT_USAGE;
        }
    }
    int rest = argc - optind;
    if ((eo.split_at && rest != 1) || (!eo.split_at && rest != 2)) {
        usage(stderr);
        return CS_EXIT_USAGE;
    }
    eo.train_dir = argv[optind];
    eo.test_dir = eo.split_at ? NULL : argv[optind + 1];
    json_t *out;
    if (cs_promise_eval_olist(&eo, &out, &err) != CS_OK)
        return cs_cli_fail("promise-eval", &err);
    char *text = json_dumps(out, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    json_decref(out);
    if (!text)
        return CS_EXIT_FAIL;
    printf("%s\n", text);
    free(text);
    return CS_EXIT_OK;
}
