/*
 * sqlite.c -- the embedded store backend's driver: opening (pragmas,
 * migrations), the background checkpointer and transactions. Everything
 * else runs the SQL shared with PostgreSQL (sql_int.h). The schema is
 * documented in docs/store.md.
 *
 * Targets: "sqlite:PATH" (a file, WAL) and "sqlite::memory:" (a private
 * in-memory store for tests; it cannot be shared with reader handles, so
 * opening a read-only handle on it gives CS_ERR_UNSUPPORTED and callers use
 * the writer handle for views).
 *
 * Thread-safety: a handle is used by one thread at a time (SQLite's
 * multi-thread mode). Ownership: the handle owns its connection and its
 * prepared statements; close releases both.
 */
#include "sql_int.h"
#include "pcache.h"
#include "schema.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- schema: src/store/schema.c, user_version is the count applied ---- */


static cs_rc exec(cs_sql_t *s, const char *sql, cs_err_t *err)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        cs_rc rc = cs_errf(err, CS_ERR_STORE, "store: %s", msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return rc;
    }
    return CS_OK;
}

/* ---- held snapshots: a reader's read transaction kept between uses ----
 *
 * Each statement of a reader outside a transaction begins and ends a WAL
 * read transaction of its own, and each of those takes and drops a read
 * lock on the WAL index (two fcntl calls on the -shm file per request of
 * a tracking page served from the page cache). A reader
 * handle instead begins a transaction when it is taken from the engine's
 * pool (read_enter) and keeps it when it is given back (read_leave), for
 * the next use, as long as
 *   - no commit of this process's writer came since it was taken: the
 *     writer's wal hook counts commits (commit_gen), after each one is in
 *     the WAL; a use after an acknowledged write always reads it;
 *   - it is younger than 2 ms (snap_ns_max): another process writing the
 *     same file (an import) is seen that much later at most.
 * A snapshot held by a handle that waits in the pool would keep the WAL
 * from being copied back and started over. So the handles holding one wait
 * in an idle list, and the checkpointer ends theirs before each pass and
 * at least once a second, and the writer before it checkpoints itself.
 * Without a writer in this process counting its commits (no wal hook),
 * nothing is held: each use reads afresh, as before. A use also reads
 * all its statements from one snapshot now. */
static _Atomic uint64_t snap_ns_max = 2 * 1000 * 1000;
static _Atomic uint64_t commit_gen; /* commits of this process's writers */
static _Atomic int counting;        /* writers whose wal hook counts them */
static pthread_mutex_t idle_mu = PTHREAD_MUTEX_INITIALIZER;
static cs_sql_t *idle_snaps; /* readers in a pool holding a snapshot (snap_next) */

/* End s's read transaction; a statement left unfinished would keep it
 * open, so one that will not end is reset and the transaction rolled back
 * (it wrote nothing). The caller owns s (in use, or in the idle list under
 * idle_mu). */
static void snap_end(cs_sql_t *s)
{
    if (!sqlite3_get_autocommit(s->db) &&
        sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        for (sqlite3_stmt *st = sqlite3_next_stmt(s->db, NULL); st;
             st = sqlite3_next_stmt(s->db, st))
            sqlite3_reset(st);
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
    s->snap_open = false;
}

/* Whether s's snapshot may serve another use: still open (an error did
 * not roll it back), no commit since, young enough. */
static bool snap_fresh(const cs_sql_t *s)
{
    return s->snap_open && !sqlite3_get_autocommit(s->db) &&
           atomic_load(&commit_gen) == s->snap_gen &&
           cs_mono_ns() - s->snap_ns < atomic_load(&snap_ns_max);
}

void cs_store_sqlite_snapshot_ns(uint64_t ns)
{
    atomic_store(&snap_ns_max, ns);
}

static void idle_unlink(cs_sql_t *s)
{
    for (cs_sql_t **p = &idle_snaps; *p; p = &(*p)->snap_next)
        if (*p == s) {
            *p = s->snap_next;
            break;
        }
    s->snap_next = NULL;
    s->snap_idle = false;
}

/* End the snapshots of every reader waiting in a pool. Any thread. */
static void snaps_sweep(void)
{
    pthread_mutex_lock(&idle_mu);
    while (idle_snaps) {
        cs_sql_t *s = idle_snaps;
        idle_unlink(s);
        snap_end(s);
    }
    pthread_mutex_unlock(&idle_mu);
}

static void sqlite_read_enter(cs_store_t *store)
{
    cs_sql_t *s = (cs_sql_t *)store;
    if (!s->read_only)
        return;
    pthread_mutex_lock(&idle_mu); /* a sweep may be ending its snapshot */
    if (s->snap_idle)
        idle_unlink(s);
    pthread_mutex_unlock(&idle_mu);
    if (s->snap_open && !snap_fresh(s))
        snap_end(s);
    if (s->snap_open || atomic_load(&counting) == 0)
        return;
    /* the count before the snapshot (taken at the first read): a commit
     * in between only makes it end sooner */
    s->snap_gen = atomic_load(&commit_gen);
    s->snap_ns = cs_mono_ns();
    s->snap_open = sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
}

static void sqlite_read_leave(cs_store_t *store)
{
    cs_sql_t *s = (cs_sql_t *)store;
    if (!s->snap_open)
        return;
    if (!snap_fresh(s)) {
        snap_end(s);
        return;
    }
    pthread_mutex_lock(&idle_mu);
    s->snap_idle = true;
    s->snap_next = idle_snaps;
    idle_snaps = s;
    pthread_mutex_unlock(&idle_mu);
}

/* ---- the background checkpointer ---- */

/* The checkpointer is asked to copy frames each time the WAL has grown by
 * CKPT_FRAMES (32 MiB): a pass copies each page once however often it was
 * committed, so under single-event intake (about 30 frames per commit,
 * mostly the same hot pages) passes at 8,000 frames cost the checkpointer a
 * third less time per event than at 2,000.
 * A PASSIVE checkpoint never catches up with a writer that keeps
 * appending, and the WAL restarts from its start only once every frame is
 * copied; so at CKPT_MAX_FRAMES the writer checkpoints itself, between two
 * commits: the background has already copied most frames, the rest is
 * quick, and the next commit writes the WAL from its start again (the WAL
 * file stays near 256 MiB and its blocks are overwritten, not allocated).
 * Under sustained intake the WAL reaches this bound every few seconds even
 * with the checkpointer keeping up (a passive pass never copies the frames
 * committed while it runs). The writer's pass cost it 9-17 ms of CPU at
 * 16,000 frames and 32-46 ms at 64,000, but comes a quarter as often: 4% of
 * its time then, under 2% now (HTTP benchmark, batches of 100). */
#define CKPT_FRAMES 8000
#define CKPT_MAX_FRAMES 64000

static void *ckpt_main(void *arg)
{
    cs_sql_t *s = arg;
    sqlite3 *db = NULL;
    cs_thread_name("cs-checkpoint");
    if (sqlite3_open_v2(s->ckpt.path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        cs_warn("store: checkpointer cannot open %s; the writer checkpoints itself",
                s->ckpt.path);
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 1000);
    /* A connection learns that the database is in WAL mode only when it
     * first reads it; until then sqlite3_wal_checkpoint_v2() returns OK
     * with log = -1 and copies nothing. Read the schema once to open the
     * WAL (without it the checkpointer ran idle and the WAL grew to the
     * writer's own bound, CKPT_MAX_FRAMES). */
    if (sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) != SQLITE_OK)
        cs_warn("store: checkpointer cannot read %s: %s", s->ckpt.path, sqlite3_errmsg(db));
    pthread_mutex_lock(&s->ckpt.mu);
    for (;;) {
        while (!s->ckpt.stop && !s->ckpt.wanted) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            if (pthread_cond_timedwait(&s->ckpt.cv, &s->ckpt.mu, &ts) != 0)
                break; /* once a second anyway */
        }
        if (s->ckpt.stop)
            break;
        snaps_sweep(); /* at least once a second, and before a pass */
        if (!s->ckpt.wanted)
            continue;
        s->ckpt.wanted = false;
        s->ckpt.in_pass = true;
        pthread_mutex_unlock(&s->ckpt.mu);
        int log = 0, done = 0;
        /* PASSIVE: copies what it can, never blocks the writer */
        sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        if (log < 0 && !s->ckpt.warned) {
            cs_warn("store: the checkpointer sees no WAL in %s; the writer bounds it alone",
                    s->ckpt.path);
            s->ckpt.warned = true;
        }
        pthread_mutex_lock(&s->ckpt.mu);
        s->ckpt.in_pass = false;
        pthread_cond_broadcast(&s->ckpt.idle_cv);
    }
    pthread_mutex_unlock(&s->ckpt.mu);
    sqlite3_close(db);
    return NULL;
}

/* After every commit: wake the checkpointer each time the WAL has grown by
 * CKPT_FRAMES since it was last asked. Each of its passes fsyncs the WAL and
 * the database file, and on this one disk those fsyncs queue with the
 * writer's own: a pass per commit doubled the writer's fsync time. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    cs_sql_t *s = arg;
    (void)name;
    atomic_fetch_add(&commit_gen, 1); /* held snapshots end at their next use */
    if (frames < s->ckpt.asked_at)
        s->ckpt.asked_at = 0; /* the WAL started over */
    if (frames >= CKPT_MAX_FRAMES) {
        snaps_sweep(); /* an idle reader's snapshot would keep frames in the WAL */
        /* the checkpointer has not caught up (it never does while the
         * writer appends, or a reader holds an old snapshot): copy the rest
         * here, so the next commit can start the WAL over. Only one
         * connection checkpoints at a time and SQLite answers BUSY at once
         * to a second: while a background pass runs, the writer waits for
         * it to end, else the bound holds only when the writer is lucky. */
        if (sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) ==
            SQLITE_BUSY) {
            pthread_mutex_lock(&s->ckpt.mu);
            while (s->ckpt.in_pass)
                pthread_cond_wait(&s->ckpt.idle_cv, &s->ckpt.mu);
            pthread_mutex_unlock(&s->ckpt.mu);
            sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        }
        s->ckpt.asked_at = frames;
    } else if (frames - s->ckpt.asked_at >= CKPT_FRAMES) {
        s->ckpt.asked_at = frames;
        pthread_mutex_lock(&s->ckpt.mu);
        s->ckpt.wanted = true;
        pthread_cond_signal(&s->ckpt.cv);
        pthread_mutex_unlock(&s->ckpt.mu);
    }
    return SQLITE_OK;
}

static void ckpt_start(cs_sql_t *s, const char *path)
{
    pthread_mutex_init(&s->ckpt.mu, NULL);
    pthread_cond_init(&s->ckpt.cv, NULL);
    pthread_cond_init(&s->ckpt.idle_cv, NULL);
    s->ckpt.path = cs_strdup(path);
    if (!s->ckpt.path || pthread_create(&s->ckpt.thread, NULL, ckpt_main, s) != 0) {
        cs_free(s->ckpt.path);
        s->ckpt.path = NULL;
        return; /* keep SQLite's own autocheckpoint */
    }
    s->ckpt.running = true;
    sqlite3_wal_hook(s->db, wal_hook, s); /* replaces the autocheckpoint */
    atomic_fetch_add(&counting, 1);
}

static void ckpt_stop(cs_sql_t *s)
{
    if (!s->ckpt.running)
        return;
    sqlite3_wal_hook(s->db, NULL, NULL);
    atomic_fetch_sub(&counting, 1);
    atomic_fetch_add(&commit_gen, 1); /* snapshots held from here on end at their next use */
    pthread_mutex_lock(&s->ckpt.mu);
    s->ckpt.stop = true;
    pthread_cond_signal(&s->ckpt.cv);
    pthread_mutex_unlock(&s->ckpt.mu);
    pthread_join(s->ckpt.thread, NULL);
    pthread_mutex_destroy(&s->ckpt.mu);
    pthread_cond_destroy(&s->ckpt.cv);
    pthread_cond_destroy(&s->ckpt.idle_cv);
    cs_free(s->ckpt.path);
    s->ckpt.running = false;
}

/* ---- open, migrate, close ---- */

static cs_rc migrate(cs_sql_t *s, cs_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int version = 0;
    cs_rc rc = CS_OK;
    const int latest = (int)cs_schema_count();
    if ((rc = exec(s, "BEGIN IMMEDIATE", err)))
        return rc;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        rc = cs__sql_fail(s, err, "read schema version");
        goto out;
    }
    version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st); /* a pending statement would lock tables a migration drops from */
    st = NULL;
    if (version > latest) {
        rc = cs_errf(err, CS_ERR_CONFIG,
                     "store: schema version %d is newer than this program understands (%d); "
                     "upgrade consonance",
                     version, latest);
        goto out;
    }
    for (int v = version; v < latest; v++) {
        char pragma[48];
        char *sql = cs_schema_migration((size_t)v, CS_DIALECT_SQLITE);
        if (!sql) {
            rc = cs_errf(err, CS_ERR_NOMEM, "out of memory");
            goto out;
        }
        rc = exec(s, sql, err);
        cs_free(sql);
        if (rc || (rc = cs__sql_after_migration(s, v + 1, err)))
            goto out;
        snprintf(pragma, sizeof pragma, "PRAGMA user_version=%d", v + 1);
        if ((rc = exec(s, pragma, err)))
            goto out;
        if (v + 1 == latest)
            cs_log(CS_LOG_DEBUG, "store: schema migrated to version %d", v + 1);
    }
    rc = cs__sql_resume_steps(s, err);
out:
    sqlite3_finalize(st);
    if (rc)
        exec(s, "ROLLBACK", NULL);
    else
        rc = exec(s, "COMMIT", err);
    return rc;
}

static void sqlite_close(cs_store_t *store)
{
    cs_sql_t *s = (cs_sql_t *)store;
    if (!s)
        return;
    ckpt_stop(s);
    pthread_mutex_lock(&idle_mu);
    if (s->snap_idle)
        idle_unlink(s);
    pthread_mutex_unlock(&idle_mu);
    if (s->snap_open)
        snap_end(s);
    cs__sql_free_stmts(s->stmts, CS_ARRAY_LEN(s->stmts));
    cs__sql_journey_close(s);
    cs__sql_track_close(s);
    cs__sql_touch_close(s);
    if (s->in_tx)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close_v2(s->db);
    cs_free(s);
}

/* Process-wide SQLite settings, before its first use: no memory statistics
 * (they take a global mutex on every allocation), multi-thread mode (each
 * connection is used by one thread at a time). */
static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;
static const char *vfs_name; /* NULL = SQLite's default */

static void sqlite_init_once(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
    if (cs_pcache_install() != SQLITE_OK)
        cs_warn("store: SQLite was set up before the store; its page cache stays unwrapped");
    sqlite3_initialize();
    if (cs_walbuf_register() != SQLITE_OK)
        cs_warn("store: the WAL write-gathering VFS is not available; using SQLite's own");
    else
        vfs_name = CS_WALBUF_VFS;
}

static cs_rc sqlite_open(const char *target, const cs_store_opts_t *opts, cs_store_t **out,
                         cs_err_t *err)
{
    cs_sql_t *s = NULL;
    cs_rc rc = CS_OK;
    char pragma[96];
    pthread_once(&sqlite_once, sqlite_init_once);
    const char *path = target + strlen("sqlite:");
    bool memory = strcmp(path, ":memory:") == 0;
    *out = NULL;
    if (!*path)
        return cs_err_field(err, CS_ERR_CONFIG, "store",
                            "store: expected sqlite:PATH or sqlite::memory:, got \"%.100s\"",
                            target);
    if (memory && opts->read_only)
        return cs_errf(err, CS_ERR_UNSUPPORTED,
                       "store: an in-memory store has no separate reader handles");
    s = cs_calloc(1, sizeof *s);
    if (!s)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory opening the store");
    s->base.ops = &cs_store_sqlite_ops;
    s->read_only = opts->read_only; /* s->node stays "": the only node, its claims are all */
    int flags = SQLITE_OPEN_NOMUTEX |
                (opts->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    if (sqlite3_open_v2(path, &s->db, flags, vfs_name) != SQLITE_OK) {
        rc = s->db ? cs__sql_fail(s, err, path)
                   : cs_errf(err, CS_ERR_NOMEM, "out of memory opening the store");
        goto out;
    }
    sqlite3_extended_result_codes(s->db, 1);
    /* a larger lookaside: most of SQLite's small allocations stay off malloc */
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_LOOKASIDE, NULL, 512, 512);
    sqlite3_busy_timeout(s->db, opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 5000);
    int64_t cache = opts->cache_kib > 0 ? opts->cache_kib : 16384;
    snprintf(pragma, sizeof pragma, "PRAGMA cache_size=-%lld", (long long)cache);
    if ((rc = exec(s, pragma, err)) || (rc = exec(s, "PRAGMA foreign_keys=OFF", err)))
        goto out;
    if (opts->read_only) {
        if ((rc = exec(s, "PRAGMA query_only=ON", err)))
            goto out;
        /* a store that was never migrated has nothing to read yet */
        sqlite3_stmt *st = NULL;
        int v = 0;
        if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        if (v == 0) {
            rc = cs_errf(err, CS_ERR_STORE, "store: %s has no schema yet (open a writer first)",
                         path);
            goto out;
        }
    } else {
        if (!memory && (rc = exec(s, "PRAGMA journal_mode=WAL", err)))
            goto out;
        if ((rc = exec(s, opts->durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=OFF",
                       err)) ||
            (rc = exec(s, "PRAGMA temp_store=MEMORY", err)) ||
            (rc = exec(s, "PRAGMA wal_autocheckpoint=4000", err)) ||
            (rc = migrate(s, err)))
            goto out;
        s->durable = opts->durable && !memory;
        if (!memory)
            ckpt_start(s, path);
        if (s->durable)
            s->wal = cs_walbuf_of(s->db);
    }
out:
    if (rc) {
        sqlite_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return CS_OK;
}

/* ---- transactions ---- */

static cs_rc sqlite_begin(cs_store_t *store, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    if (s->read_only)
        return cs_errf(err, CS_ERR_INTERNAL, "store: begin on a read-only handle");
    cs_rc rc = exec(s, "BEGIN IMMEDIATE", err);
    if (!rc)
        s->in_tx = true;
    return rc;
}

/* WAL with synchronous=NORMAL: the commit is in the OS's hands when it
 * returns (a killed process loses nothing); the fsync comes with the next
 * FULL commit or checkpoint. */
static cs_rc sqlite_begin_relaxed(cs_store_t *store, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    if (s->durable) {
        cs_rc rc = exec(s, "PRAGMA synchronous=NORMAL", err);
        if (rc)
            return rc;
        s->relaxed = true;
    }
    cs_rc rc = sqlite_begin(store, err);
    if (rc && s->relaxed) {
        exec(s, "PRAGMA synchronous=FULL", NULL);
        s->relaxed = false;
    }
    return rc;
}

static void end_relaxed(cs_sql_t *s)
{
    if (s->relaxed) {
        exec(s, "PRAGMA synchronous=FULL", NULL);
        s->relaxed = false;
    }
}

static cs_rc sqlite_commit(cs_store_t *store, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    cs_rc rc = exec(s, "COMMIT", err);
    if (!rc) {
        s->in_tx = false;
        end_relaxed(s);
    }
    return rc;
}

/* COMMIT with the WAL's sync deferred to sqlite_sync (walbuf.h). Without
 * the gathering VFS the commit is simply durable at once. */
static cs_rc sqlite_commit_deferred(cs_store_t *store, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    if (!s->wal || s->relaxed)
        return sqlite_commit(store, err);
    cs_walbuf_defer(s->wal, true);
    cs_rc rc = sqlite_commit(store, err);
    cs_walbuf_defer(s->wal, false);
    return rc;
}

static cs_rc sqlite_sync(cs_store_t *store, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    if (s->wal && cs_walbuf_sync(s->wal) != SQLITE_OK)
        return cs_errf(err, CS_ERR_STORE, "store: fdatasync of the WAL failed");
    return CS_OK;
}

static bool sqlite_refusing(cs_store_t *store)
{
    cs_sql_t *s = (cs_sql_t *)store;
    return s->wal && cs_walbuf_failed(s->wal);
}

static void sqlite_rollback(cs_store_t *store)
{
    cs_sql_t *s = (cs_sql_t *)store;
    if (sqlite3_get_autocommit(s->db) == 0)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    cs__sql_touch_forget(s);
    s->in_tx = false;
    end_relaxed(s);
}

const cs_store_ops_t cs_store_sqlite_ops = {
    .name = "sqlite",
    .prefix = "sqlite:",
    .open = sqlite_open,
    .close = sqlite_close,
    .begin = sqlite_begin,
    .read_enter = sqlite_read_enter,
    .read_leave = sqlite_read_leave,
    .begin_relaxed = sqlite_begin_relaxed,
    .commit_deferred = sqlite_commit_deferred,
    .sync = sqlite_sync,
    .refusing = sqlite_refusing,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    CS_SQL_SHARED_OPS,
};
