/*
 * copy.c -- copy an SQLite store into PostgreSQL (see copy.h).
 *
 * Both stores are first opened through the store interface, which brings
 * each to the newest schema: the two then have the same tables with the
 * same columns (schema.c; test_pg_schema checks it). Every SQLite table is
 * read in one read transaction (a consistent snapshot) and streamed into
 * its PostgreSQL twin, which must hold no rows yet, with COPY ... FROM
 * STDIN in one transaction that holds the cross-node write lock; identity
 * sequences are moved past the copied keys, and the row counts are
 * compared before the commit. Any
 * failure rolls everything back: the target is left as empty as it was.
 */
#include "copy.h"

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "../lib/cs.h"
#include "sql_int.h"

typedef struct copier {
    sqlite3 *lite;
    PGconn *pg;
    cs_buf_t line;
    cs_copy_progress_fn progress;
    void *ud;
} copier_t;

static cs_rc pg_fail(copier_t *c, cs_err_t *err, const char *what, PGresult *r)
{
    char msg[400];
    cs_strlcpy(msg, r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg), sizeof msg);
    msg[strcspn(msg, "\n")] = '\0';
    return cs_errf(err, CS_ERR_STORE, "copy: %s: %s", what, msg);
}

static cs_rc pg_exec(copier_t *c, const char *sql, cs_err_t *err)
{
    PGresult *r = PQexec(c->pg, sql);
    ExecStatusType st = PQresultStatus(r);
    cs_rc rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? CS_OK : pg_fail(c, err, sql, r);
    PQclear(r);
    return rc;
}

static int64_t pg_count(copier_t *c, const char *table)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    PGresult *r = PQexec(c->pg, sql);
    int64_t n = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
                    ? strtoll(PQgetvalue(r, 0, 0), NULL, 10)
                    : -1;
    PQclear(r);
    return n;
}

/* COPY text format: \N for NULL; backslash, tab, newline and CR escaped. */
static cs_rc put_value(cs_buf_t *b, sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return cs_buf_puts(b, "\\N");
    const unsigned char *v = sqlite3_column_text(st, col);
    int n = sqlite3_column_bytes(st, col);
    cs_rc rc = CS_OK;
    int from = 0;
    for (int i = 0; i < n && !rc; i++) {
        const char *esc = v[i] == '\\' ? "\\\\" : v[i] == '\t' ? "\\t" : v[i] == '\n' ? "\\n"
                          : v[i] == '\r' ? "\\r" : NULL;
        if (!esc)
            continue;
        if (!(rc = cs_buf_append(b, v + from, (size_t)(i - from))))
            rc = cs_buf_puts(b, esc);
        from = i + 1;
    }
    return rc ? rc : cs_buf_append(b, v + from, (size_t)(n - from));
}

/* One table: its columns from SQLite, every row through COPY. */
static cs_rc copy_table(copier_t *c, const char *table, int64_t *rows, cs_err_t *err)
{
    cs_buf_t cols, sql;
    sqlite3_stmt *st = NULL;
    PGresult *r = NULL;
    cs_rc rc = CS_OK;
    int ncols = 0;
    *rows = 0;
    cs_buf_init(&cols, 4096);
    cs_buf_init(&sql, 4096);
    if (cs_buf_printf(&sql, "PRAGMA table_info(\"%s\")", table) ||
        sqlite3_prepare_v2(c->lite, sql.data, -1, &st, NULL) != SQLITE_OK) {
        rc = cs_errf(err, CS_ERR_STORE, "copy: %s: %s", table, sqlite3_errmsg(c->lite));
        goto out;
    }
    while (!rc && sqlite3_step(st) == SQLITE_ROW) {
        rc = cs_buf_printf(&cols, "%s%s", ncols ? "," : "", (const char *)sqlite3_column_text(st, 1));
        ncols++;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc) {
        rc = cs_errf(err, CS_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (!ncols)
        goto out;
    /* a store with no events may still hold rows: a node that ran on it
     * made its API key, journey versions and cursors there */
    int64_t there = pg_count(c, table);
    if (there != 0) {
        rc = there < 0 ? pg_fail(c, err, table, NULL)
                       : cs_err_field(err, CS_ERR_RULE, "to",
                                      "copy: the target already holds %lld rows in %s (has a "
                                      "node run on it?); copy into an empty database",
                                      (long long)there, table);
        goto out;
    }
    cs_buf_reset(&sql);
    if (cs_buf_printf(&sql, "COPY %s(%s) FROM STDIN", table, cols.data)) {
        rc = cs_errf(err, CS_ERR_NOMEM, "out of memory");
        goto out;
    }
    r = PQexec(c->pg, sql.data);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        rc = pg_fail(c, err, table, r);
        goto out;
    }
    PQclear(r);
    r = NULL;
    cs_buf_reset(&sql);
    if (cs_buf_printf(&sql, "SELECT %s FROM \"%s\"", cols.data, table) ||
        sqlite3_prepare_v2(c->lite, sql.data, -1, &st, NULL) != SQLITE_OK) {
        rc = cs_errf(err, CS_ERR_STORE, "copy: %s: %s", table, sqlite3_errmsg(c->lite));
        PQputCopyEnd(c->pg, "source failed");
        goto drain;
    }
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        cs_rc brc = CS_OK;
        for (int i = 0; i < ncols && !brc; i++) {
            if (i)
                brc = cs_buf_puts(&c->line, "\t");
            if (!brc)
                brc = put_value(&c->line, st, i);
        }
        if (!brc)
            brc = cs_buf_puts(&c->line, "\n");
        (*rows)++;
        if (brc) {
            rc = cs_errf(err, CS_ERR_NOMEM, "copy: %s: a row too large or out of memory", table);
            PQputCopyEnd(c->pg, "copy failed");
            goto drain;
        }
        if (c->line.len >= 1 << 20) {
            if (PQputCopyData(c->pg, c->line.data, (int)c->line.len) != 1) {
                rc = pg_fail(c, err, table, NULL);
                PQputCopyEnd(c->pg, "copy failed");
                goto drain;
            }
            cs_buf_reset(&c->line);
        }
    }
    if (step != SQLITE_DONE) {
        rc = cs_errf(err, CS_ERR_STORE, "copy: read %s: %s", table, sqlite3_errmsg(c->lite));
        PQputCopyEnd(c->pg, "source failed");
        goto drain;
    }
    if ((c->line.len && PQputCopyData(c->pg, c->line.data, (int)c->line.len) != 1) ||
        PQputCopyEnd(c->pg, NULL) != 1) {
        rc = pg_fail(c, err, table, NULL);
        goto drain;
    }
drain:
    cs_buf_reset(&c->line);
    while ((r = PQgetResult(c->pg))) {
        if (!rc && PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = pg_fail(c, err, table, r);
        PQclear(r);
    }
    r = NULL;
out:
    sqlite3_finalize(st);
    PQclear(r);
    cs_buf_free(&cols);
    cs_buf_free(&sql);
    return rc;
}

/* Identity keys continue after the copied ones. */
static cs_rc move_sequences(copier_t *c, cs_err_t *err)
{
    PGresult *r = PQexec(c->pg, "SELECT table_name, column_name FROM information_schema.columns "
                                "WHERE table_schema = current_schema() AND is_identity = 'YES'");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        cs_rc rc = pg_fail(c, err, "identity columns", r);
        PQclear(r);
        return rc;
    }
    cs_rc rc = CS_OK;
    for (int i = 0; i < PQntuples(r) && !rc; i++) {
        char sql[400];
        const char *t = PQgetvalue(r, i, 0), *col = PQgetvalue(r, i, 1);
        snprintf(sql, sizeof sql,
                 "SELECT setval(pg_get_serial_sequence('%s', '%s'), "
                 "coalesce((SELECT max(%s) FROM %s), 0) + 1, false)",
                 t, col, col, t);
        rc = pg_exec(c, sql, err);
    }
    PQclear(r);
    return rc;
}

cs_rc cs_store_copy(const char *from, const char *to, cs_copy_progress_fn progress, void *ud,
                    cs_err_t *err)
{
    copier_t c = { .progress = progress, .ud = ud };
    cs_store_t *s = NULL;
    cs_store_counts_t counts;
    sqlite3_stmt *tables = NULL;
    cs_rc rc;
    bool in_pg_tx = false, in_lite_tx = false;
    cs_buf_init(&c.line, (size_t)64 << 20);
    if (strncmp(from, "sqlite:", 7) != 0 || strcmp(from, "sqlite::memory:") == 0)
        return cs_err_field(err, CS_ERR_CONFIG, "from",
                            "copy: the source must be an SQLite file store sqlite:PATH, got "
                            "\"%.100s\"",
                            from);
    if (strncmp(to, "postgres", 8) != 0)
        return cs_err_field(err, CS_ERR_CONFIG, "to",
                            "copy: the target must be a PostgreSQL store postgresql://..., got "
                            "\"%.100s\"",
                            to);
    /* both at the newest schema; the target must hold nothing yet */
    if ((rc = cs_store_open(from, NULL, &s, err)))
        goto out;
    cs_store_close(&s);
    if ((rc = cs_store_open(to, NULL, &s, err)) || (rc = cs_store_counts(s, &counts, err)))
        goto out;
    cs_store_close(&s);
    if (counts.events || counts.customers || counts.orders) {
        rc = cs_err_field(err, CS_ERR_RULE, "to",
                          "copy: the target already holds a store (%lld events); copy into an "
                          "empty database",
                          (long long)counts.events);
        goto out;
    }
    if (sqlite3_open_v2(from + 7, &c.lite, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        rc = cs_errf(err, CS_ERR_STORE, "copy: open %s: %s", from + 7,
                     c.lite ? sqlite3_errmsg(c.lite) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(c.lite, 5000);
    c.pg = PQconnectdb(to);
    if (PQstatus(c.pg) != CONNECTION_OK) {
        rc = pg_fail(&c, err, "connect", NULL);
        goto out;
    }
    if (sqlite3_exec(c.lite, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        rc = cs_errf(err, CS_ERR_STORE, "copy: %s", sqlite3_errmsg(c.lite));
        goto out;
    }
    in_lite_tx = true;
    char sql[128];
    snprintf(sql, sizeof sql, "BEGIN; SELECT pg_advisory_xact_lock(%lld)", (long long)CS_PG_LOCK_WRITE);
    if ((rc = pg_exec(&c, sql, err)))
        goto out;
    in_pg_tx = true;
    /* the schema bookkeeping stays the target's own */
    if (sqlite3_prepare_v2(c.lite,
                           "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE "
                           "'sqlite_%' ORDER BY name",
                           -1, &tables, NULL) != SQLITE_OK) {
        rc = cs_errf(err, CS_ERR_STORE, "copy: %s", sqlite3_errmsg(c.lite));
        goto out;
    }
    while (sqlite3_step(tables) == SQLITE_ROW) {
        char table[128];
        int64_t rows = 0;
        cs_strlcpy(table, (const char *)sqlite3_column_text(tables, 0), sizeof table);
        if ((rc = copy_table(&c, table, &rows, err)))
            goto out;
        int64_t there = pg_count(&c, table);
        if (there != rows) {
            rc = cs_errf(err, CS_ERR_STORE, "copy: %s: %lld rows read, %lld in the target",
                         table, (long long)rows, (long long)there);
            goto out;
        }
        if (c.progress)
            c.progress(table, rows, c.ud);
    }
    if ((rc = move_sequences(&c, err)))
        goto out;
    PGresult *r = PQexec(c.pg, "COMMIT");
    in_pg_tx = false;
    if (PQresultStatus(r) != PGRES_COMMAND_OK || strcmp(PQcmdStatus(r), "COMMIT") != 0)
        rc = pg_fail(&c, err, "commit", r);
    PQclear(r);
out:
    if (in_pg_tx)
        PQclear(PQexec(c.pg, "ROLLBACK"));
    sqlite3_finalize(tables);
    if (in_lite_tx)
        sqlite3_exec(c.lite, "ROLLBACK", NULL, NULL, NULL);
    if (c.lite)
        sqlite3_close(c.lite);
    if (c.pg)
        PQfinish(c.pg);
    cs_store_close(&s);
    cs_buf_free(&c.line);
    return rc;
}
