/* test_pcache.c -- the page cache wrapper: a truncation is answered without
 * SQLite's cache only when no page could be at or past its limit (pages
 * fetched, moved past the end for a swap and back, moved past the end for
 * good), and under SQLite itself -- random index inserts that rebalance
 * with swaps, transactions that grow the file and roll back -- the
 * database stays sound while most commits skip the scan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/pcache.h"

static sqlite3_pcache_methods2 m; /* the installed methods: the wrapper's */

static int setup(void **state)
{
    (void)state;
    if (cs_pcache_install() != SQLITE_OK ||
        sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &m) != SQLITE_OK)
        return -1;
    return sqlite3_initialize() == SQLITE_OK ? 0 : -1;
}

static uint64_t forwarded(void)
{
    cs_pcache_stats_t st;
    cs_pcache_stats(&st);
    return st.forwarded;
}

static sqlite3_pcache_page *get(sqlite3_pcache *c, unsigned key)
{
    sqlite3_pcache_page *pg = m.xFetch(c, key, 2);
    assert_non_null(pg);
    return pg;
}

static void add_pages(sqlite3_pcache *c, unsigned from, unsigned to)
{
    for (unsigned k = from; k <= to; k++)
        m.xUnpin(c, get(c, k), 0);
}

/* What a B-tree swap does: A to the parking number, B to A, A to B. */
static void swap(sqlite3_pcache *c, unsigned a, unsigned b, unsigned park)
{
    sqlite3_pcache_page *pa = get(c, a), *pb = get(c, b);
    m.xRekey(c, pa, a, park);
    m.xRekey(c, pb, b, a);
    m.xRekey(c, pa, park, b);
    m.xUnpin(c, pa, 0);
    m.xUnpin(c, pb, 0);
}

static void test_skips_only_what_drops_nothing(void **state)
{
    (void)state;
    const unsigned park = 262145;
    sqlite3_pcache *c = m.xCreate(4096, 64, 1);
    assert_non_null(c);
    m.xCachesize(c, 1000);
    add_pages(c, 1, 100);
    assert_int_equal(m.xPagecount(c), 100);

    /* nothing at or past 101 */
    uint64_t f = forwarded();
    m.xTruncate(c, 101);
    assert_int_equal(forwarded(), f);
    assert_int_equal(m.xPagecount(c), 100);

    /* a swap parks past the end and comes back: still nothing past 100 */
    swap(c, 40, 7, park);
    m.xTruncate(c, 101);
    assert_int_equal(forwarded(), f);
    assert_int_equal(m.xPagecount(c), 100);

    /* a page left parked past the end must be dropped */
    sqlite3_pcache_page *pg = get(c, 30);
    m.xRekey(c, pg, 30, park);
    m.xUnpin(c, pg, 0);
    m.xTruncate(c, 101);
    assert_int_equal(forwarded(), f + 1);
    assert_int_equal(m.xPagecount(c), 99);
    assert_null(m.xFetch(c, park, 0));

    /* two pages moved past the end: the bound rises, both are dropped */
    add_pages(c, 30, 30);
    pg = get(c, 10);
    m.xRekey(c, pg, 10, park);
    m.xUnpin(c, pg, 0);
    pg = get(c, 11);
    m.xRekey(c, pg, 11, park + 5);
    m.xUnpin(c, pg, 0);
    m.xTruncate(c, 101);
    assert_int_equal(forwarded(), f + 2);
    assert_int_equal(m.xPagecount(c), 98);

    /* a real truncation drops the pages past the limit; after it the cache
     * knows nothing is past it */
    m.xTruncate(c, 51);
    assert_int_equal(forwarded(), f + 3);
    assert_int_equal(m.xPagecount(c), 48); /* 1..50 but 10 and 11 */
    assert_null(m.xFetch(c, 60, 0));
    m.xTruncate(c, 51);
    assert_int_equal(forwarded(), f + 3);

    /* a page fetched past the bound raises it */
    add_pages(c, 70, 70);
    m.xTruncate(c, 61);
    assert_int_equal(forwarded(), f + 4);
    assert_null(m.xFetch(c, 70, 0));
    m.xDestroy(c);
}

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : sqlite3_errmsg(db));
}

static int64_t one_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void check_sound(sqlite3 *db, int64_t rows, int64_t sum)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    assert_int_equal(one_int(db, "SELECT count(*) FROM t"), rows);
    assert_int_equal(one_int(db, "SELECT coalesce(sum(n),0) FROM t"), sum);
    /* the index agrees with the table */
    assert_int_equal(one_int(db, "SELECT count(*) FROM t INDEXED BY t_k WHERE k >= ''"), rows);
}

static void test_sqlite_stays_sound(void **state)
{
    (void)state;
    char dir[] = "/tmp/cs_pcache_XXXXXX", path[64], sql[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/t.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    exec_ok(db, "PRAGMA journal_mode=WAL");
    exec_ok(db, "PRAGMA cache_size=-4096");
    exec_ok(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT NOT NULL, n INTEGER NOT NULL,"
                " pad TEXT NOT NULL)");
    exec_ok(db, "CREATE INDEX t_k ON t(k)");
    cs_pcache_stats_t before, after;
    cs_pcache_stats(&before);
    int64_t rows = 0, sum = 0;
    srand(7);
    for (int tx = 0; tx < 600; tx++) {
        /* every tenth transaction grows the file by a few hundred pages
         * and is rolled back: the pages past the end must go */
        bool undo = tx % 10 == 9;
        exec_ok(db, "BEGIN");
        int n = undo ? 400 : 20;
        for (int i = 0; i < n; i++) {
            int v = rand();
            snprintf(sql, sizeof sql,
                     "INSERT INTO t(k,n,pad) VALUES('%08x-%d', %d, printf('%%.*c', %d, 'x'))", v,
                     tx, v % 1000, undo ? 3000 : 60 + v % 200);
            exec_ok(db, sql);
            if (!undo) {
                rows++;
                sum += v % 1000;
            }
        }
        exec_ok(db, undo ? "ROLLBACK" : "COMMIT");
        if (tx % 100 == 99) {
            exec_ok(db, "PRAGMA wal_checkpoint(TRUNCATE)");
            check_sound(db, rows, sum);
        }
    }
    cs_pcache_stats(&after);
    uint64_t asked = after.truncates - before.truncates;
    uint64_t went = after.forwarded - before.forwarded;
    /* swaps happened (else this test shows nothing) and most commits
     * skipped the scan all the same */
    assert_true(after.parked > before.parked);
    assert_true(asked >= 600);
    assert_true(went >= 60); /* at least the rollbacks */
    assert_true(went < asked / 2);
    sqlite3_close(db);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    check_sound(db, rows, sum);
    sqlite3_close(db);
    snprintf(sql, sizeof sql, "rm -rf '%s'", dir);
    assert_int_equal(system(sql), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_skips_only_what_drops_nothing),
        cmocka_unit_test(test_sqlite_stays_sound),
    };
    return cmocka_run_group_tests_name("pcache", tests, setup, NULL);
}
