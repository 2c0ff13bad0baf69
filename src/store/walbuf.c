/*
 * walbuf.c -- see walbuf.h.
 *
 * Every file this VFS opens is a wb_file followed by the wrapped VFS's own
 * file object; calls are forwarded. A main database file records whether
 * its connection runs with synchronous=FULL (SQLite tells the VFS every
 * PRAGMA through SQLITE_FCNTL_PRAGMA); its WAL gathers writes only then,
 * so every commit's frames meet a sync before the WAL index names them.
 *
 * Two of SQLite's syncs order writes rather than make a commit durable,
 * and are never deferred: the one after a (re)started WAL's header, before
 * frames overwrite the old ones (SQLite ticket ff5be73dee: a power cut
 * could otherwise keep new frames behind the old header, whose old frames
 * would be replayed over newer pages), and the WAL's sync before a
 * checkpoint writes pages into the database file (a checkpoint the
 * deferring connection runs itself: a page of a commit the cut takes
 * away must not already be in the database file). The first is seen by
 * its write at offset 0, the second by the database file's first write.
 */
#include "walbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define WB_CAP ((size_t)2 << 20) /* bytes gathered before they are written */
/* Bytes per write: the unix VFS masks a write's length to 17 bits (a
 * write of exactly 128 KiB would become a write of nothing). */
#define WB_CHUNK ((size_t)124 << 10)

typedef struct wb_file wb_file;
struct wb_file {
    sqlite3_file base;
    sqlite3_file *real; /* the wrapped VFS's file, right after this struct */
    bool is_wal;
    bool sync_full;     /* main database: its connection syncs every commit */
    bool defer;         /* main database: its commits' syncs are deferred */
    _Atomic(wb_file *) wal; /* main database: its open WAL (not owned) */
    wb_file *db;        /* WAL: its main database (not owned) */
    unsigned char *buf; /* WAL: the gathered bytes (owned), file offset `off` */
    size_t len;
    sqlite3_int64 off;
    int err;            /* a flush that failed where it could not be reported: sticky */
    /* WAL, deferred syncs: an fd of its own (owned) for cs_walbuf_sync */
    int sync_fd;
    bool synced_once;
    bool hdr_written;   /* the WAL's header written since its last real sync */
    _Atomic unsigned long deferred, synced; /* syncs asked for / done */
    /* a sync of the deferred commits failed: sticky, for the file's life.
     * The kernel may have dropped the pages it could not write, and a
     * later fdatasync would report success without them. */
    _Atomic int sync_err;
};

static sqlite3_vfs *root;

static int flush(wb_file *w)
{
    if (w->err)
        return w->err;
    if (!w->len)
        return SQLITE_OK;
    int rc = SQLITE_OK;
    for (size_t done = 0; done < w->len && rc == SQLITE_OK; done += WB_CHUNK) {
        size_t n = w->len - done < WB_CHUNK ? w->len - done : WB_CHUNK;
        rc = w->real->pMethods->xWrite(w->real, w->buf + done, (int)n,
                                       w->off + (sqlite3_int64)done);
    }
    /* On failure the caller tells SQLite, which fails the transaction
     * these bytes were of (the buffer holds only the current one's: every
     * commit syncs) and writes its frames again: a full disk is over when
     * there is room again. */
    w->len = 0;
    return rc;
}

/* Deferred syncs up to `want` are done (only ever forward). */
static void mark_synced(wb_file *wal, unsigned long want)
{
    unsigned long was = atomic_load(&wal->synced);
    while (was < want && !atomic_compare_exchange_weak(&wal->synced, &was, want))
        ;
}

static bool gathering(const wb_file *w)
{
    return w->is_wal && w->db && w->db->sync_full && !w->err;
}

static int wb_close(sqlite3_file *f)
{
    wb_file *w = (wb_file *)f;
    int frc = w->is_wal ? flush(w) : SQLITE_OK;
    if (w->db && atomic_load(&w->db->wal) == w)
        atomic_store(&w->db->wal, NULL);
    wb_file *wal = atomic_load(&w->wal);
    if (wal && wal->db == w)
        wal->db = NULL;
    sqlite3_free(w->buf);
    w->buf = NULL;
    if (w->sync_fd >= 0)
        close(w->sync_fd);
    w->sync_fd = -1;
    int rc = w->real->pMethods->xClose(w->real);
    return frc != SQLITE_OK ? frc : rc;
}

static int wb_read(sqlite3_file *f, void *p, int amt, sqlite3_int64 off)
{
    wb_file *w = (wb_file *)f;
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xRead(w->real, p, amt, off);
}

/* A main database file is written only by checkpoints: the WAL frames
 * they copy must be on disk first, deferred commits included. */
static int sync_wal_first(wb_file *db)
{
    wb_file *wal = atomic_load(&db->wal);
    if (!wal)
        return SQLITE_OK;
    unsigned long want = atomic_load(&wal->deferred);
    if (want == atomic_load(&wal->synced))
        return SQLITE_OK;
    int rc = atomic_load(&wal->sync_err);
    if (rc == SQLITE_OK)
        rc = flush(wal);
    if (rc == SQLITE_OK && (rc = wal->real->pMethods->xSync(wal->real, SQLITE_SYNC_NORMAL)))
        atomic_store(&wal->sync_err, rc);
    if (rc == SQLITE_OK)
        mark_synced(wal, want);
    return rc;
}

static int wb_write(sqlite3_file *f, const void *p, int amt, sqlite3_int64 off)
{
    wb_file *w = (wb_file *)f;
    int rc;
    if (w->is_wal && off == 0)
        w->hdr_written = true;
    if (!w->is_wal && (rc = sync_wal_first(w)) != SQLITE_OK)
        return rc;
    if (!gathering(w)) {
        if ((rc = flush(w)) != SQLITE_OK)
            return rc;
        return w->real->pMethods->xWrite(w->real, p, amt, off);
    }
    size_t n = (size_t)amt;
    if (w->len) {
        if (off == w->off + (sqlite3_int64)w->len && w->len + n <= WB_CAP) {
            memcpy(w->buf + w->len, p, n);
            w->len += n;
            return SQLITE_OK;
        }
        if (off >= w->off && off + amt <= w->off + (sqlite3_int64)w->len) {
            memcpy(w->buf + (off - w->off), p, n); /* a frame rewritten in place */
            return SQLITE_OK;
        }
        if ((rc = flush(w)) != SQLITE_OK)
            return rc;
    }
    if (n > WB_CAP / 2)
        return w->real->pMethods->xWrite(w->real, p, amt, off);
    if (!w->buf && !(w->buf = sqlite3_malloc64(WB_CAP)))
        return w->real->pMethods->xWrite(w->real, p, amt, off);
    memcpy(w->buf, p, n);
    w->len = n;
    w->off = off;
    return SQLITE_OK;
}

static int wb_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    wb_file *w = (wb_file *)f;
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xTruncate(w->real, size);
}

static int wb_sync(sqlite3_file *f, int flags)
{
    wb_file *w = (wb_file *)f;
    int rc = w->is_wal ? atomic_load(&w->sync_err) : SQLITE_OK;
    if (rc != SQLITE_OK) {
        w->len = 0; /* the transaction fails: its frames never reach the file */
        return rc;
    }
    if ((rc = flush(w)) != SQLITE_OK)
        return rc;
    if (w->is_wal && w->db && w->db->defer && w->synced_once && !w->hdr_written &&
        w->sync_fd >= 0) {
        atomic_fetch_add(&w->deferred, 1); /* written; cs_walbuf_sync makes it durable */
#ifdef SYNC_FILE_RANGE_WRITE
        /* start writing the pages out now: the fdatasync that follows on
         * the syncer then mostly waits for the disk's cache flush (it took
         * 40% less time under single events). Only a hint: durability is
         * still that fdatasync's. */
        sync_file_range(w->sync_fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#endif
        return SQLITE_OK;
    }
    rc = w->real->pMethods->xSync(w->real, flags);
    if (rc == SQLITE_OK) {
        w->synced_once = true;
        w->hdr_written = false;
    } else {
        /* final, as a failed deferred sync is: the kernel may have dropped
         * the pages it could not write (the WAL's, or the database file's
         * a checkpoint wrote), and a later sync would report success */
        wb_file *wal = w->is_wal ? w : atomic_load(&w->wal);
        if (wal)
            atomic_store(&wal->sync_err, rc);
    }
    return rc;
}

static int wb_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    wb_file *w = (wb_file *)f;
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xFileSize(w->real, size);
}

static int wb_lock(sqlite3_file *f, int level)
{
    wb_file *w = (wb_file *)f;
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xLock(w->real, level);
}

static int wb_unlock(sqlite3_file *f, int level)
{
    wb_file *w = (wb_file *)f;
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xUnlock(w->real, level);
}

static int wb_check_reserved(sqlite3_file *f, int *out)
{
    wb_file *w = (wb_file *)f;
    return w->real->pMethods->xCheckReservedLock(w->real, out);
}

/* "FULL", "EXTRA", 2, 3: every commit is synced. */
static bool sync_is_full(const char *v)
{
    return v && (strcasecmp(v, "full") == 0 || strcasecmp(v, "extra") == 0 ||
                 strcmp(v, "2") == 0 || strcmp(v, "3") == 0);
}

static int wb_file_control(sqlite3_file *f, int op, void *arg)
{
    wb_file *w = (wb_file *)f;
    if (op == SQLITE_FCNTL_PRAGMA && !w->is_wal) {
        char **a = arg; /* a[1] the pragma's name, a[2] its value or NULL */
        if (a[1] && strcasecmp(a[1], "synchronous") == 0 && a[2]) {
            wb_file *wal = atomic_load(&w->wal);
            if (wal) {
                int rc = flush(wal);
                if (rc != SQLITE_OK)
                    return rc;
            }
            w->sync_full = sync_is_full(a[2]);
        }
    }
    return w->real->pMethods->xFileControl(w->real, op, arg);
}

static int wb_sector_size(sqlite3_file *f)
{
    wb_file *w = (wb_file *)f;
    return w->real->pMethods->xSectorSize(w->real);
}

static int wb_device_characteristics(sqlite3_file *f)
{
    wb_file *w = (wb_file *)f;
    return w->real->pMethods->xDeviceCharacteristics(w->real);
}

static int wb_shm_map(sqlite3_file *f, int page, int size, int extend, void volatile **out)
{
    wb_file *w = (wb_file *)f;
    return w->real->pMethods->xShmMap(w->real, page, size, extend, out);
}

static int wb_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    wb_file *w = (wb_file *)f;
    return w->real->pMethods->xShmLock(w->real, offset, n, flags);
}

/* SQLite writes the WAL index header's second copy after this barrier: a
 * commit becomes visible only after it, so the frames must be in the file. */
static void wb_shm_barrier(sqlite3_file *f)
{
    wb_file *w = (wb_file *)f;
    wb_file *wal = atomic_load(&w->wal);
    int rc;
    if (wal && (rc = flush(wal)) != SQLITE_OK)
        wal->err = rc; /* the file no longer holds what SQLite wrote */
    w->real->pMethods->xShmBarrier(w->real);
}

static int wb_shm_unmap(sqlite3_file *f, int del)
{
    wb_file *w = (wb_file *)f;
    return w->real->pMethods->xShmUnmap(w->real, del);
}

static int wb_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp)
{
    wb_file *w = (wb_file *)f;
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xFetch(w->real, off, amt, pp);
}

static int wb_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    wb_file *w = (wb_file *)f;
    return w->real->pMethods->xUnfetch(w->real, off, p);
}

static const sqlite3_io_methods wb_methods = {
    3,
    wb_close,
    wb_read,
    wb_write,
    wb_truncate,
    wb_sync,
    wb_file_size,
    wb_lock,
    wb_unlock,
    wb_check_reserved,
    wb_file_control,
    wb_sector_size,
    wb_device_characteristics,
    wb_shm_map,
    wb_shm_lock,
    wb_shm_barrier,
    wb_shm_unmap,
    wb_fetch,
    wb_unfetch,
};

static int wb_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags,
                   int *out_flags)
{
    (void)vfs;
    wb_file *w = (wb_file *)f;
    memset(w, 0, sizeof *w);
    w->sync_fd = -1;
    w->real = (sqlite3_file *)&w[1];
    int rc = root->xOpen(root, name, w->real, flags, out_flags);
    if (!w->real->pMethods)
        return rc; /* nothing to close */
    w->base.pMethods = &wb_methods;
    if (rc == SQLITE_OK && (flags & SQLITE_OPEN_WAL) && name) {
        wb_file *db = (wb_file *)sqlite3_database_file_object(name);
        if (db && db->base.pMethods == &wb_methods) {
            w->is_wal = true;
            w->db = db;
            w->sync_fd = open(name, O_RDONLY | O_CLOEXEC); /* -1: syncs are not deferred */
            atomic_store(&db->wal, w);
        }
    }
    return rc;
}

static int wb_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
    (void)v;
    return root->xDelete(root, name, sync_dir);
}

static int wb_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
    (void)v;
    return root->xAccess(root, name, flags, out);
}

static int wb_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
    (void)v;
    return root->xFullPathname(root, name, n, out);
}

static void *wb_dlopen(sqlite3_vfs *v, const char *name)
{
    (void)v;
    return root->xDlOpen(root, name);
}

static void wb_dlerror(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    root->xDlError(root, n, out);
}

static void (*wb_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
    (void)v;
    return root->xDlSym(root, h, sym);
}

static void wb_dlclose(sqlite3_vfs *v, void *h)
{
    (void)v;
    root->xDlClose(root, h);
}

static int wb_randomness(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return root->xRandomness(root, n, out);
}

static int wb_sleep(sqlite3_vfs *v, int us)
{
    (void)v;
    return root->xSleep(root, us);
}

static int wb_current_time(sqlite3_vfs *v, double *out)
{
    (void)v;
    return root->xCurrentTime(root, out);
}

static int wb_last_error(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return root->xGetLastError ? root->xGetLastError(root, n, out) : 0;
}

static int wb_current_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
    (void)v;
    return root->xCurrentTimeInt64(root, out);
}

static sqlite3_vfs wb_vfs = {
    .iVersion = 2,
    .zName = CS_WALBUF_VFS,
    .xOpen = wb_open,
    .xDelete = wb_delete,
    .xAccess = wb_access,
    .xFullPathname = wb_full_pathname,
    .xDlOpen = wb_dlopen,
    .xDlError = wb_dlerror,
    .xDlSym = wb_dlsym,
    .xDlClose = wb_dlclose,
    .xRandomness = wb_randomness,
    .xSleep = wb_sleep,
    .xCurrentTime = wb_current_time,
    .xGetLastError = wb_last_error,
    .xCurrentTimeInt64 = wb_current_time64,
};

cs_walbuf_t *cs_walbuf_of(sqlite3 *db)
{
    sqlite3_file *f = NULL;
    if (sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &f) != SQLITE_OK || !f ||
        f->pMethods != &wb_methods)
        return NULL;
    return (wb_file *)f;
}

void cs_walbuf_defer(cs_walbuf_t *w, bool on)
{
    w->defer = on;
}

bool cs_walbuf_failed(cs_walbuf_t *w)
{
    wb_file *wal = atomic_load(&w->wal);
    return wal && atomic_load(&wal->sync_err) != SQLITE_OK;
}

int cs_walbuf_sync(cs_walbuf_t *w)
{
    wb_file *wal = atomic_load(&w->wal);
    if (!wal)
        return SQLITE_OK;
    int rc = atomic_load(&wal->sync_err);
    if (rc != SQLITE_OK)
        return rc;
    unsigned long want = atomic_load(&wal->deferred);
    if (want == atomic_load(&wal->synced))
        return SQLITE_OK;
    int r;
    do
        r = fdatasync(wal->sync_fd);
    while (r != 0 && errno == EINTR);
    if (r != 0) {
        atomic_store(&wal->sync_err, SQLITE_IOERR_FSYNC);
        return SQLITE_IOERR_FSYNC;
    }
    mark_synced(wal, want);
    return SQLITE_OK;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int register_rc = SQLITE_ERROR;

static void register_once(void)
{
    root = sqlite3_vfs_find(NULL);
    if (!root || root->iVersion < 2 || !root->xCurrentTimeInt64) {
        register_rc = SQLITE_ERROR;
        return;
    }
    wb_vfs.szOsFile = (int)sizeof(wb_file) + root->szOsFile;
    wb_vfs.mxPathname = root->mxPathname;
    register_rc = sqlite3_vfs_register(&wb_vfs, 0);
}

int cs_walbuf_register(void)
{
    pthread_once(&once, register_once);
    return register_rc;
}
