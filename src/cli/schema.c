/*
 * schema.c -- `consonance schema [sqlite|postgresql] [--from N]`: print the
 * store's migrations expanded for a dialect (src/store/schema.h), each
 * headed by its version, for operators who review or apply them by hand
 * and for the tests that apply them to a real PostgreSQL.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../store/schema.h"
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: consonance schema [sqlite|postgresql] [--from VERSION]\n"
               "Prints the store's migrations for a dialect (default sqlite), from VERSION\n"
               "(default 1) on, each headed by its version.\n");
}

int cs_cmd_schema(int argc, char **argv)
{
    const char *dialect = NULL;
    long from = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return CS_EXIT_OK;
        }
        if (strcmp(argv[i], "--from") == 0 && i + 1 < argc) {
            int64_t v = 0;
            bool ok = cs_parse_digits(argv[++i], &v);
            from = ok && v <= LONG_MAX ? (long)v : 0;
            /* past the last version there is nothing to print: say so */
            if (from < 1 || (size_t)from > cs_schema_count()) {
                fprintf(stderr, "consonance schema: --from: expected a version 1..%zu (the "
                                "store's latest), got %s\n",
                        cs_schema_count(), argv[i]);
                return CS_EXIT_USAGE;
            }
        } else if (argv[i][0] != '-' && !dialect) {
            dialect = argv[i];
        } else if (argv[i][0] != '-') { /* which of the two was meant? */
            fprintf(stderr, "consonance schema: expected one dialect, got %s and %s\n", dialect,
                    argv[i]);
            return CS_EXIT_USAGE;
        } else if (strcmp(argv[i], "--from") == 0) {
            return cs_cli_usage("schema", usage, "--from: expected a version 1..%zu after it",
                                cs_schema_count());
        } else {
            return cs_cli_usage("schema", usage, "unknown option \"%s\"", argv[i]);
        }
    }
    if (!dialect)
        dialect = "sqlite";
    int d = cs_dialect_from_name(dialect);
    if (d < 0) {
        fprintf(stderr, "consonance schema: dialect: expected sqlite or postgresql, got %s\n",
                dialect);
        return CS_EXIT_USAGE;
    }
    for (size_t i = (size_t)from - 1; i < cs_schema_count(); i++) {
        char *sql = cs_schema_migration(i, (cs_dialect_t)d);
        if (!sql) {
            fprintf(stderr, "consonance schema: out of memory\n");
            return CS_EXIT_FAIL;
        }
        /* one statement a line: the migrations keep theirs on one string */
        printf("-- version %zu\n", i + 1);
        for (const char *p = sql; *p; p++) {
            putchar(*p);
            if (*p == ';')
                putchar('\n');
        }
        if (cs_schema_step(i))
            printf("-- and a step only consonance runs (%s): when it opens the store at "
                   "version %zu, or, applied by hand, the next time it opens the store\n",
                   cs_schema_step(i), i);
        printf("\n");
        cs_free(sql);
    }
    return CS_EXIT_OK;
}
