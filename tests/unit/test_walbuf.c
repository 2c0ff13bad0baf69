/* test_walbuf.c -- the WAL write-gathering VFS: a commit's frames reach the
 * file in a few writes instead of two per page (counted with the process's
 * write system calls), what readers see after every commit is what was
 * committed (synchronous FULL and NORMAL, frames rewritten inside a
 * transaction after a cache spill, transactions larger than the buffer),
 * the file is sound after reopening, and with deferred syncs every commit
 * that returned survives the process being killed, and the syncs SQLite
 * orders its writes with -- the WAL header's after a restart, the WAL's
 * before a checkpoint writes the database file -- are never deferred
 * (seen through a VFS below the gathering one that watches the writes and
 * syncs reaching the disk). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/walbuf.h"

static char dir[] = "/tmp/cs_walbuf_XXXXXX";

static void path_of(const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", dir, name);
}

static void remove_db(const char *path)
{
    char p[600];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : sqlite3_errmsg(db));
}

static sqlite3 *open_db(const char *path, const char *vfs, const char *sync)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs),
                     SQLITE_OK);
    char sql[128];
    exec_ok(db, "PRAGMA journal_mode=WAL");
    snprintf(sql, sizeof sql, "PRAGMA synchronous=%s", sync);
    exec_ok(db, sql);
    exec_ok(db, "PRAGMA wal_autocheckpoint=0");
    return db;
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

static void integrity_ok(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
}

/* Write system calls of this process so far (/proc/self/io); -1 if unknown. */
static long write_calls(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    long v = -1;
    char line[128];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "syscw: %ld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

/* 20 transactions of 100 rows with a random index key each: hundreds of
 * dirty pages per commit. Returns the write calls it took. */
static long workload(sqlite3 *db, int64_t *sum)
{
    exec_ok(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, k BLOB, v BLOB)");
    exec_ok(db, "CREATE INDEX t_k ON t(k)");
    long w0 = write_calls();
    for (int tx = 0; tx < 20; tx++) {
        exec_ok(db, "BEGIN");
        exec_ok(db, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) "
                    "INSERT INTO t(k, v) SELECT randomblob(16), zeroblob(600) FROM n");
        exec_ok(db, "COMMIT");
    }
    long w1 = write_calls();
    *sum = one_int(db, "SELECT count(*) + sum(length(v)) FROM t");
    return w0 < 0 || w1 < 0 ? -1 : w1 - w0;
}

static void test_gathers_writes(void **state)
{
    (void)state;
    char plain[512], gathered[512];
    path_of("plain.db", plain, sizeof plain);
    path_of("gathered.db", gathered, sizeof gathered);
    sqlite3 *a = open_db(plain, NULL, "FULL");
    sqlite3 *b = open_db(gathered, CS_WALBUF_VFS, "FULL");
    int64_t sum_a, sum_b;
    long wa = workload(a, &sum_a), wb = workload(b, &sum_b);
    assert_int_equal(sum_a, sum_b);
    if (wa < 0 || wb < 0) {
        print_message("no /proc/self/io: write calls not counted\n");
    } else {
        print_message("write calls for 20 commits: SQLite's VFS %ld, gathering %ld\n", wa, wb);
        assert_true(wb * 5 < wa);
        assert_true(wb >= 20); /* every commit still writes */
    }
    sqlite3_close(a);
    sqlite3_close(b);
    sqlite3 *c = open_db(gathered, CS_WALBUF_VFS, "FULL");
    integrity_ok(c);
    assert_int_equal(one_int(c, "SELECT count(*) + sum(length(v)) FROM t"), sum_b);
    sqlite3_close(c);
    remove_db(plain);
    remove_db(gathered);
}

/* A second connection sees every commit at once, whatever the sync mode. */
static void test_readers_see_commits(void **state)
{
    (void)state;
    char path[512];
    path_of("readers.db", path, sizeof path);
    sqlite3 *w = open_db(path, CS_WALBUF_VFS, "FULL");
    exec_ok(w, "PRAGMA cache_size=10"); /* spills inside big transactions */
    exec_ok(w, "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
    sqlite3 *r = NULL;
    assert_int_equal(sqlite3_open_v2(path, &r, SQLITE_OPEN_READONLY, CS_WALBUF_VFS), SQLITE_OK);
    static const char *const modes[] = { "FULL", "NORMAL", "FULL", "OFF", "EXTRA" };
    int64_t rows = 0;
    for (int round = 0; round < 40; round++) {
        char sql[256];
        snprintf(sql, sizeof sql, "PRAGMA synchronous=%s", modes[round % 5]);
        exec_ok(w, sql);
        int n = round % 7 == 0 ? 3000 : 1 + round * 3; /* some far beyond the 2 MiB buffer */
        exec_ok(w, "BEGIN");
        snprintf(sql, sizeof sql,
                 "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) "
                 "INSERT INTO t(v) SELECT randomblob(900) FROM n",
                 n);
        exec_ok(w, sql);
        /* pages written to the WAL by the spill are changed again */
        exec_ok(w, "UPDATE t SET v = zeroblob(900) WHERE id % 5 = 0");
        exec_ok(w, "COMMIT");
        rows += n;
        assert_int_equal(one_int(r, "SELECT count(*) FROM t"), rows);
        assert_int_equal(one_int(r, "SELECT count(*) FROM t WHERE id % 5 = 0 AND v != zeroblob(900)"),
                         0);
    }
    /* a rolled-back transaction leaves nothing */
    exec_ok(w, "BEGIN");
    exec_ok(w, "DELETE FROM t");
    exec_ok(w, "ROLLBACK");
    assert_int_equal(one_int(r, "SELECT count(*) FROM t"), rows);
    integrity_ok(r);
    sqlite3_close(r);
    sqlite3_close(w);
    sqlite3 *again = open_db(path, CS_WALBUF_VFS, "FULL");
    integrity_ok(again);
    assert_int_equal(one_int(again, "SELECT count(*) FROM t"), rows);
    sqlite3_close(again);
    remove_db(path);
}

/* Deferred syncs: the child commits with its syncs deferred and reports
 * every commit that returned; killed at a random moment, none is lost
 * (the bytes are in the file when the commit returns; only the fsync
 * waits), and the file is sound. */
static void test_deferred_commits_survive_kill(void **state)
{
    (void)state;
    char path[512];
    path_of("deferred.db", path, sizeof path);
    sqlite3 *db = open_db(path, CS_WALBUF_VFS, "FULL");
    exec_ok(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
    sqlite3_close(db);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        sqlite3 *c = open_db(path, CS_WALBUF_VFS, "FULL");
        cs_walbuf_t *wal = cs_walbuf_of(c);
        if (!wal)
            _exit(3);
        for (int32_t i = 1;; i++) {
            cs_walbuf_defer(wal, true);
            if (sqlite3_exec(c, "BEGIN; INSERT INTO t(v) SELECT randomblob(3000); COMMIT", NULL,
                             NULL, NULL) != SQLITE_OK)
                _exit(4);
            cs_walbuf_defer(wal, false);
            if (i % 10 == 0 && cs_walbuf_sync(wal) != SQLITE_OK)
                _exit(5);
            if (write(fds[1], &i, sizeof i) != sizeof i)
                _exit(6);
        }
    }
    close(fds[1]);
    int32_t last = 0, v;
    while (last < 400 && read(fds[0], &v, sizeof v) == sizeof v)
        last = v;
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    while (read(fds[0], &v, sizeof v) == sizeof v)
        last = v; /* reported before it died */
    close(fds[0]);
    assert_true(WIFSIGNALED(status));
    db = open_db(path, CS_WALBUF_VFS, "FULL");
    integrity_ok(db);
    int64_t have = one_int(db, "SELECT count(*) FROM t");
    print_message("commits reported %d, found %lld\n", last, (long long)have);
    assert_true(have >= last);
    assert_true(have <= last + 1); /* at most the one it was answering */
    sqlite3_close(db);
    remove_db(path);
}

/* ---- the spy: SQLite's default VFS, watched ---- */

/* Below the gathering VFS (it wraps the default one): notes the order of
 * the writes and syncs that reach the files while `spy.on`. A deferred
 * sync passes it by (cs_walbuf_sync calls fdatasync itself), so the test
 * says when one ran (spy_synced). */
static struct {
    bool on;
    bool wal_dirty;     /* the WAL written since its last sync */
    bool hdr_dirty;     /* its header written since its last sync */
    int hdr_writes;     /* header writes seen (WAL restarts) */
    int db_writes;      /* database file writes seen (checkpoints) */
    int frames_after_hdr; /* WAL writes after an unsynced header write */
    int db_after_wal;   /* database writes while the WAL held unsynced bytes */
    bool full;          /* WAL writes fail as on a full disk */
} spy;

typedef struct {
    sqlite3_file base;
    sqlite3_file *real;
    int kind; /* 0 other, 1 main database, 2 WAL */
} spy_file;

static sqlite3_vfs *spy_root;
static sqlite3_vfs spy_vfs;

static void spy_synced(void)
{
    spy.wal_dirty = spy.hdr_dirty = false;
}

#define SPY_REAL(f) (((spy_file *)(f))->real)
static int spy_close(sqlite3_file *f) { return SPY_REAL(f)->pMethods->xClose(SPY_REAL(f)); }
static int spy_read(sqlite3_file *f, void *p, int n, sqlite3_int64 o)
{
    return SPY_REAL(f)->pMethods->xRead(SPY_REAL(f), p, n, o);
}
static int spy_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 o)
{
    spy_file *s = (spy_file *)f;
    if (spy.full && s->kind == 2)
        return SQLITE_FULL;
    if (spy.on && s->kind == 2) {
        if (spy.hdr_dirty)
            spy.frames_after_hdr++;
        if (o == 0) {
            spy.hdr_writes++;
            spy.hdr_dirty = true;
        }
        spy.wal_dirty = true;
    } else if (spy.on && s->kind == 1) {
        spy.db_writes++;
        if (spy.wal_dirty)
            spy.db_after_wal++;
    }
    return s->real->pMethods->xWrite(s->real, p, n, o);
}
static int spy_truncate(sqlite3_file *f, sqlite3_int64 n)
{
    return SPY_REAL(f)->pMethods->xTruncate(SPY_REAL(f), n);
}
static int spy_sync(sqlite3_file *f, int flags)
{
    spy_file *s = (spy_file *)f;
    int rc = s->real->pMethods->xSync(s->real, flags);
    if (rc == SQLITE_OK && s->kind == 2)
        spy_synced();
    return rc;
}
static int spy_size(sqlite3_file *f, sqlite3_int64 *n)
{
    return SPY_REAL(f)->pMethods->xFileSize(SPY_REAL(f), n);
}
static int spy_lock(sqlite3_file *f, int l) { return SPY_REAL(f)->pMethods->xLock(SPY_REAL(f), l); }
static int spy_unlock(sqlite3_file *f, int l)
{
    return SPY_REAL(f)->pMethods->xUnlock(SPY_REAL(f), l);
}
static int spy_reserved(sqlite3_file *f, int *o)
{
    return SPY_REAL(f)->pMethods->xCheckReservedLock(SPY_REAL(f), o);
}
static int spy_fcntl(sqlite3_file *f, int op, void *a)
{
    return SPY_REAL(f)->pMethods->xFileControl(SPY_REAL(f), op, a);
}
static int spy_sector(sqlite3_file *f) { return SPY_REAL(f)->pMethods->xSectorSize(SPY_REAL(f)); }
static int spy_dev(sqlite3_file *f)
{
    return SPY_REAL(f)->pMethods->xDeviceCharacteristics(SPY_REAL(f));
}
static int spy_shm_map(sqlite3_file *f, int pg, int sz, int ext, void volatile **o)
{
    return SPY_REAL(f)->pMethods->xShmMap(SPY_REAL(f), pg, sz, ext, o);
}
static int spy_shm_lock(sqlite3_file *f, int o, int n, int fl)
{
    return SPY_REAL(f)->pMethods->xShmLock(SPY_REAL(f), o, n, fl);
}
static void spy_shm_barrier(sqlite3_file *f) { SPY_REAL(f)->pMethods->xShmBarrier(SPY_REAL(f)); }
static int spy_shm_unmap(sqlite3_file *f, int d)
{
    return SPY_REAL(f)->pMethods->xShmUnmap(SPY_REAL(f), d);
}
static int spy_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **pp)
{
    return SPY_REAL(f)->pMethods->xFetch(SPY_REAL(f), o, n, pp);
}
static int spy_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p)
{
    return SPY_REAL(f)->pMethods->xUnfetch(SPY_REAL(f), o, p);
}

static const sqlite3_io_methods spy_methods = {
    3, spy_close, spy_read, spy_write, spy_truncate, spy_sync, spy_size, spy_lock, spy_unlock,
    spy_reserved, spy_fcntl, spy_sector, spy_dev, spy_shm_map, spy_shm_lock, spy_shm_barrier,
    spy_shm_unmap, spy_fetch, spy_unfetch,
};

static int spy_open(sqlite3_vfs *v, sqlite3_filename name, sqlite3_file *f, int flags, int *oflags)
{
    (void)v;
    spy_file *s = (spy_file *)f;
    memset(s, 0, sizeof *s);
    s->real = (sqlite3_file *)&s[1];
    s->kind = flags & SQLITE_OPEN_MAIN_DB ? 1 : flags & SQLITE_OPEN_WAL ? 2 : 0;
    int rc = spy_root->xOpen(spy_root, name, s->real, flags, oflags);
    if (s->real->pMethods)
        s->base.pMethods = &spy_methods;
    return rc;
}

/* Becomes the default VFS (which the gathering one wraps); the rest of
 * SQLite's default VFS is used as it is. */
static int spy_register(void)
{
    spy_root = sqlite3_vfs_find(NULL);
    if (!spy_root)
        return SQLITE_ERROR;
    spy_vfs = *spy_root;
    spy_vfs.zName = "cs-test-spy";
    spy_vfs.szOsFile = (int)sizeof(spy_file) + spy_root->szOsFile;
    spy_vfs.xOpen = spy_open;
    spy_vfs.pNext = NULL;
    return sqlite3_vfs_register(&spy_vfs, 1);
}

/* What the writer does when the WAL grows too long (sqlite.c): a
 * checkpoint of its own, from the WAL hook, inside its deferred commit. */
static int ckpt_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)arg;
    (void)name;
    if (frames >= 200)
        sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SQLITE_OK;
}

/* Deferred commits across checkpoints of the writer's own and the WAL
 * restarts after them: SQLite syncs a restarted WAL's new header before
 * any frame is written over the old ones (else a power cut could keep new
 * frames behind the old header and replay old pages: the database is
 * corrupt), and syncs the WAL before a checkpoint writes its pages into
 * the database file. Neither may wait for the syncer. */
static void test_ordering_syncs_not_deferred(void **state)
{
    (void)state;
    char path[512];
    path_of("order.db", path, sizeof path);
    sqlite3 *db = open_db(path, CS_WALBUF_VFS, "FULL");
    exec_ok(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
    cs_walbuf_t *wal = cs_walbuf_of(db);
    assert_non_null(wal);
    exec_ok(db, "INSERT INTO t(v) SELECT randomblob(100)"); /* the first sync: not deferred */
    sqlite3_wal_hook(db, ckpt_hook, NULL);
    memset(&spy, 0, sizeof spy);
    spy.on = true;
    for (int i = 0; i < 300; i++) {
        cs_walbuf_defer(wal, true);
        exec_ok(db, "BEGIN; INSERT INTO t(v) SELECT randomblob(3000); "
                    "UPDATE t SET v = randomblob(100) WHERE id = 1; COMMIT");
        cs_walbuf_defer(wal, false);
        if (i % 3 == 2) { /* the syncer */
            assert_int_equal(cs_walbuf_sync(wal), SQLITE_OK);
            spy_synced();
        }
    }
    spy.on = false;
    print_message("WAL restarts %d, database writes %d; frames after an unsynced header %d, "
                  "database writes before the WAL's sync %d\n",
                  spy.hdr_writes, spy.db_writes, spy.frames_after_hdr, spy.db_after_wal);
    assert_true(spy.hdr_writes > 0);
    assert_true(spy.db_writes > 0);
    assert_int_equal(spy.frames_after_hdr, 0);
    assert_int_equal(spy.db_after_wal, 0);
    sqlite3_close(db);
    db = open_db(path, CS_WALBUF_VFS, "FULL");
    integrity_ok(db);
    assert_int_equal(one_int(db, "SELECT count(*) FROM t"), 301);
    sqlite3_close(db);
    remove_db(path);
}

/* A full disk fails the commit that met it; once there is room again the
 * same connection commits as before (it used to fail every later write and
 * read of the WAL, until the process was restarted). */
static void test_recovers_after_full_disk(void **state)
{
    (void)state;
    char path[512];
    path_of("full.db", path, sizeof path);
    sqlite3 *db = open_db(path, CS_WALBUF_VFS, "FULL");
    exec_ok(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
    cs_walbuf_t *wal = cs_walbuf_of(db);
    assert_non_null(wal);
    for (int round = 0; round < 2; round++) {
        cs_walbuf_defer(wal, round == 1);
        exec_ok(db, "INSERT INTO t(v) SELECT randomblob(2000)");
        spy.full = true;
        int rc = sqlite3_exec(db, "BEGIN; INSERT INTO t(v) SELECT randomblob(2000); COMMIT", NULL,
                              NULL, NULL);
        spy.full = false;
        assert_int_equal(rc & 0xff, SQLITE_FULL);
        if (!sqlite3_get_autocommit(db))
            exec_ok(db, "ROLLBACK");
        exec_ok(db, "BEGIN; INSERT INTO t(v) SELECT randomblob(2000); COMMIT");
        cs_walbuf_defer(wal, false);
        assert_int_equal(cs_walbuf_sync(wal), SQLITE_OK);
        assert_int_equal(one_int(db, "SELECT count(*) FROM t"), 2 * (round + 1));
    }
    sqlite3_close(db);
    db = open_db(path, CS_WALBUF_VFS, "FULL");
    integrity_ok(db);
    assert_int_equal(one_int(db, "SELECT count(*) FROM t"), 4);
    sqlite3_close(db);
    remove_db(path);
}

/* fdatasync, failing while fail_fdatasync is set (the gathering VFS's
 * deferred syncs call it directly). */
static bool fail_fdatasync;

int fdatasync(int fd)
{
    if (fail_fdatasync) {
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_fdatasync, fd);
}

/* SQLite's own VFS syncs by fsync() where it was built without fdatasync */
int fsync(int fd)
{
    if (fail_fdatasync) {
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_fsync, fd);
}

/* After a deferred sync failed, the kernel may have dropped the pages it
 * could not write and a later fdatasync reports success: the commits it
 * was for are not known to be on disk, so no later sync may say they are
 * (a retry of their events, a duplicate, was answered as stored), and the
 * connection takes no more commits. */
static void test_failed_sync_stays_failed(void **state)
{
    (void)state;
    char path[512];
    path_of("eio.db", path, sizeof path);
    sqlite3 *db = open_db(path, CS_WALBUF_VFS, "FULL");
    exec_ok(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
    cs_walbuf_t *wal = cs_walbuf_of(db);
    assert_non_null(wal);
    cs_walbuf_defer(wal, true);
    exec_ok(db, "INSERT INTO t(v) SELECT randomblob(2000)");
    cs_walbuf_defer(wal, false);
    fail_fdatasync = true;
    assert_int_not_equal(cs_walbuf_sync(wal), SQLITE_OK);
    fail_fdatasync = false;
    assert_int_not_equal(cs_walbuf_sync(wal), SQLITE_OK);
    assert_true(cs_walbuf_failed(wal));
    cs_walbuf_defer(wal, true);
    assert_int_not_equal(sqlite3_exec(db, "INSERT INTO t(v) SELECT randomblob(2000)", NULL, NULL,
                                      NULL),
                         SQLITE_OK);
    cs_walbuf_defer(wal, false);
    assert_int_not_equal(cs_walbuf_sync(wal), SQLITE_OK);
    sqlite3_close(db);
    db = open_db(path, CS_WALBUF_VFS, "FULL"); /* a new connection starts afresh */
    integrity_ok(db);
    exec_ok(db, "INSERT INTO t(v) SELECT randomblob(2000)");
    assert_int_equal(one_int(db, "SELECT count(*) FROM t"), 2);
    sqlite3_close(db);
    remove_db(path);
}

/* The same for a sync that is not deferred (a commit of the writer's own
 * tasks, SQLite's sync of the WAL before a checkpoint): once it failed, no
 * later commit on the connection may report success over pages the kernel
 * may have dropped. */
static void test_failed_plain_sync_stays_failed(void **state)
{
    (void)state;
    char path[512];
    path_of("eio2.db", path, sizeof path);
    sqlite3 *db = open_db(path, CS_WALBUF_VFS, "FULL");
    exec_ok(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
    exec_ok(db, "INSERT INTO t(v) VALUES('acked')");
    assert_false(cs_walbuf_failed(cs_walbuf_of(db)));
    fail_fdatasync = true;
    assert_int_not_equal(sqlite3_exec(db, "INSERT INTO t(v) VALUES('sync failed')", NULL, NULL,
                                      NULL),
                         SQLITE_OK);
    fail_fdatasync = false;
    assert_int_not_equal(sqlite3_exec(db, "INSERT INTO t(v) VALUES('refused')", NULL, NULL, NULL),
                         SQLITE_OK);
    assert_true(cs_walbuf_failed(cs_walbuf_of(db))); /* what /healthz reports */
    sqlite3_close(db);
    db = open_db(path, CS_WALBUF_VFS, "FULL"); /* a new connection starts afresh */
    assert_false(cs_walbuf_failed(cs_walbuf_of(db)));
    integrity_ok(db);
    exec_ok(db, "INSERT INTO t(v) VALUES('after')");
    /* what was acknowledged is there, what was refused is not (the commit
     * whose sync failed was not acknowledged: it may be either) */
    assert_int_equal(one_int(db, "SELECT count(*) FROM t WHERE v IN ('acked','after')"), 2);
    assert_int_equal(one_int(db, "SELECT count(*) FROM t WHERE v='refused'"), 0);
    sqlite3_close(db);
    remove_db(path);
}

/* A connection on SQLite's own VFS has no gathering file. */
static void test_not_on_the_vfs(void **state)
{
    (void)state;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    assert_null(cs_walbuf_of(db));
    sqlite3_close(db);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir) || spy_register() != SQLITE_OK)
        return -1;
    return cs_walbuf_register() == SQLITE_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    rmdir(dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gathers_writes),
        cmocka_unit_test(test_readers_see_commits),
        cmocka_unit_test(test_deferred_commits_survive_kill),
        cmocka_unit_test(test_ordering_syncs_not_deferred),
        cmocka_unit_test(test_recovers_after_full_disk),
        cmocka_unit_test(test_failed_sync_stays_failed),
        cmocka_unit_test(test_failed_plain_sync_stays_failed),
        cmocka_unit_test(test_not_on_the_vfs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
