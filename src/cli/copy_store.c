/*
 * copy_store.c -- `consonance copy-store SOURCE TARGET`: copy an embedded
 * SQLite store into an empty PostgreSQL database, all or nothing
 * (src/store/copy.h). Stop the daemon on the source first.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../store/copy.h"
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: consonance copy-store sqlite:PATH postgresql://USER@HOST:PORT/DATABASE\n"
               "Copies every table of an SQLite store into an empty PostgreSQL database in one\n"
               "transaction. Stop the daemon on the SQLite store first.\n");
}

static void progress(const char *table, int64_t rows, void *ud)
{
    int64_t *total = ud;
    *total += rows;
    printf("  %-22s %12" PRId64 " rows\n", table, rows);
}

int cs_cmd_copy_store(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return CS_EXIT_OK;
    }
    if (argc == 1)
        return cs_cli_usage("copy-store", usage, "expected the SQLite store to copy and the "
                                                 "PostgreSQL database to copy it into");
    if (argc == 2)
        return cs_cli_usage("copy-store", usage,
                            "expected the PostgreSQL database to copy into after %s", argv[1]);
    if (argc > 3)
        return cs_cli_usage("copy-store", usage, "unexpected argument \"%s\"", argv[3]);
    cs_err_t err;
    cs_err_clear(&err);
    int64_t total = 0;
    printf("copying %s into PostgreSQL\n", argv[1]);
    if (cs_store_copy(argv[1], argv[2], progress, &total, &err) != CS_OK) {
        cs_cli_fail("copy-store", &err);
        fprintf(stderr, "consonance copy-store: nothing was copied (the target is unchanged)\n");
        return CS_EXIT_FAIL;
    }
    printf("done: %" PRId64 " rows; point `store` at the PostgreSQL target and start the nodes\n",
           total);
    return CS_EXIT_OK;
}
