/*
 * import.c -- `consonance import [...] ndjson FILE|-` and
 * `consonance import [...] olist DIR`: load events into the store through
 * the engine (the same validation, idempotency and group commit as HTTP).
 * Prints a JSON summary; exit 1 when some input was rejected (the valid
 * events are kept) or the import stopped part-way (the summary then says
 * why in "stopped", and counts what was stored before).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../importer/importer.h"
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: consonance import [--config FILE] [--store TARGET] ndjson FILE|-\n"
               "       consonance import [--config FILE] [--store TARGET] olist DIR\n"
               "\n"
               "ndjson: canonical events (docs/events.md), one per line.\n"
               "olist:  a folder in the Olist CSV layout (orders, items, customers, reviews, ...).\n"
               "Re-importing is safe: events already stored are counted as duplicates.\n");
}

int cs_cmd_import(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"store", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *store = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:s:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 's': store = optarg; break;
        case 'h': usage(stdout); return CS_EXIT_OK;
        default: usage(stderr); return CS_EXIT_USAGE;
        }
    }
    if (optind == argc)
        return cs_cli_usage("import", usage, "expected a format (ndjson or olist) and what to "
                                             "read");
    if (strcmp(argv[optind], "ndjson") != 0 && strcmp(argv[optind], "olist") != 0)
        return cs_cli_usage("import", usage, "unknown format \"%s\"; expected ndjson or olist",
                            argv[optind]);
    if (argc - optind == 1)
        return cs_cli_usage("import", usage, "%s: expected %s", argv[optind],
                            strcmp(argv[optind], "olist") == 0
                                ? "the folder of the Olist CSV files"
                                : "the file of events, or - for standard input");
    if (argc - optind > 2)
        return cs_cli_usage("import", usage, "unexpected argument \"%s\"", argv[optind + 2]);
    const char *kind = argv[optind], *src = argv[optind + 1];
    FILE *in = NULL;
    if (strcmp(kind, "ndjson") == 0) {
        in = strcmp(src, "-") == 0 ? stdin : fopen(src, "r");
        if (!in) {
            perror(src);
            return CS_EXIT_FAIL;
        }
        struct stat st_in;
        if (fstat(fileno(in), &st_in) == 0 && S_ISDIR(st_in.st_mode)) {
            fprintf(stderr, "consonance import: %s: is a directory, expected an NDJSON file "
                            "(or - for stdin; olist DIR reads a folder)\n",
                    src);
            fclose(in);
            return CS_EXIT_FAIL;
        }
    }
    cs_engine_t *e = NULL;
    cs_sink_t *sink = NULL;
    cs_import_stats_t st;
    cs_report_t report = {.f = stderr};
    cs_err_t err;
    cs_rc rc;
    int status = CS_EXIT_FAIL;
    memset(&st, 0, sizeof st);
    cs_err_clear(&err);
    if ((status = cs_cli_open_engine("import", config, store, &e)) != CS_EXIT_OK)
        goto out;
    status = CS_EXIT_FAIL;
    if ((rc = cs_sink_open(e, &st, &report, &sink, &err))) {
        cs_cli_fail("import", &err);
        goto out;
    }
    if (in)
        rc = cs_import_ndjson(in, strcmp(src, "-") == 0 ? "stdin" : src, cs_sink_emit, sink,
                              &report, &st, &err);
    else
        rc = cs_import_olist(src, cs_sink_emit, sink, &report, &st, &err);
    cs_err_t cerr;
    cs_err_clear(&cerr);
    cs_rc crc = cs_sink_close(&sink, &cerr);
    const cs_err_t *stop = rc ? &err : crc ? &cerr : NULL;
    if (stop)
        cs_cli_fail("import", stop);
    /* the summary also when the import stopped part-way: what it says was
     * accepted is stored, and the rest of the input was not read */
    json_t *sum = cs_import_stats_json(&st);
    if (sum && stop)
        json_object_set_new(sum, "stopped", json_string(stop->msg));
    json_dumpf(sum, stdout, JSON_COMPACT);
    printf("\n");
    json_decref(sum);
    status = (stop || st.rejected || st.failed) ? CS_EXIT_FAIL : CS_EXIT_OK;
out:
    cs_sink_close(&sink, NULL);
    cs_engine_close(&e);
    if (in && in != stdin)
        fclose(in);
    return status;
}
