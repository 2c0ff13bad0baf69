/*
 * test_store.h -- the store a unit test runs on. By default a fresh SQLite
 * file; when CS_TEST_PG names a PostgreSQL database (tests/blackbox/with_pg.py
 * sets it for the *.postgresql variants in tests/CMakeLists.txt), that
 * database, emptied for each fresh store. The same test then proves both
 * backends. The store conformance suite uses test_pg_empty too.
 */
#ifndef CS_TEST_STORE_H
#define CS_TEST_STORE_H

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline const char *test_pg(void)
{
    const char *u = getenv("CS_TEST_PG");
    return u && *u ? u : NULL;
}

/* Empty a PostgreSQL database (its public schema); 0 on success, the
 * reason on stderr otherwise. */
static inline int test_pg_empty(const char *uri)
{
    PGconn *c = PQconnectdb(uri);
    int rc = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, "SET client_min_messages=warning;"
                                "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
        rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
        if (rc)
            fprintf(stderr, "empty %s: %s", uri, PQresultErrorMessage(r));
        PQclear(r);
    } else {
        fprintf(stderr, "connect %s: %s", uri, PQerrorMessage(c));
    }
    PQfinish(c);
    return rc;
}

/* A fresh store's name: a new temporary path from tmpl ("/tmp/x_XXXXXX");
 * on PostgreSQL the database is emptied too. 0 on success. */
static inline int test_store_fresh(char *path, size_t size, const char *tmpl)
{
    snprintf(path, size, "%s", tmpl);
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    close(fd);
    unlink(path);
    return test_pg() ? test_pg_empty(test_pg()) : 0;
}

/* The target for the store named by path. */
static inline void test_store_target(char *buf, size_t size, const char *path)
{
    if (test_pg())
        snprintf(buf, size, "%s", test_pg());
    else
        snprintf(buf, size, "sqlite:%s", path);
}

#endif /* CS_TEST_STORE_H */
