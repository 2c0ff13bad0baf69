/*
 * walbuf.h -- a SQLite VFS that writes a transaction's WAL frames with one
 * system call instead of two per page.
 *
 * SQLite appends every frame of a commit to the WAL with two writes (a
 * 24-byte header and the page). A group commit of a few hundred dirty pages
 * is then hundreds of pwrite calls, each a trip into the kernel (and on a
 * virtual machine an expensive one). This VFS wraps the default one and,
 * for WAL files only, gathers contiguous writes in a buffer that goes to
 * the file in one write before anything can look at it:
 *
 *   - before the WAL is synced (a durable commit),
 *   - before the database file's shared-memory barrier (SQLite publishes a
 *     commit in the WAL index only after that barrier, so no reader can
 *     see a frame that is still in the buffer; this covers commits without
 *     a sync),
 *   - before any read, truncate, size query, lock change or close of the
 *     WAL, and when a write does not continue the buffer.
 *
 * The bytes that reach the file, and their order relative to every sync,
 * are exactly SQLite's own; only the number of system calls changes.
 *
 * Deferred sync: while a connection's commits are deferred, the WAL's sync
 * at commit only writes the gathered bytes, and cs_walbuf_sync -- on any
 * thread, while the connection goes on with its next transaction -- makes
 * every commit so far durable with one fdatasync. A commit is visible to
 * readers when it returns and durable when a sync that began after it
 * returns; the WAL is written in order, so after a crash the file holds a
 * prefix of the commits (SQLite's recovery stops at the first frame whose
 * checksum chain breaks). The first sync of a WAL file is never deferred,
 * so the file's directory entry is synced as SQLite does it; nor are the
 * syncs that order writes: the one after the WAL's header is written (a
 * restart after a checkpoint), and the WAL's before a checkpoint by the
 * deferring connection writes the database file.
 *
 * Thread-safety: the VFS is registered once (cs_walbuf_register is
 * idempotent and thread-safe); a file object is used by one connection,
 * except cs_walbuf_sync, which may run on one other thread.
 */
#ifndef CS_STORE_WALBUF_H
#define CS_STORE_WALBUF_H

#include <sqlite3.h>
#include <stdbool.h>

#define CS_WALBUF_VFS "consonance-wal"

/* Registers the VFS (not as the default). 0 = SQLITE_OK. */
int cs_walbuf_register(void);

/* A connection's main database file; NULL when it is not on this VFS.
 * Borrowed: valid while the connection is open. */
typedef struct wb_file cs_walbuf_t;
cs_walbuf_t *cs_walbuf_of(sqlite3 *db);

/* Defer the WAL sync of the connection's commits (its own thread only). */
void cs_walbuf_defer(cs_walbuf_t *w, bool on);

/* Make every deferred commit so far durable. SQLITE_OK or an I/O error.
 * A failure is final for the open WAL: later syncs and the connection's
 * commits fail with it (a later fdatasync could report pages as written
 * that the kernel dropped); a connection opened afresh starts over. */
int cs_walbuf_sync(cs_walbuf_t *w);

/* Has a sync of the WAL or of the database file failed (deferred or not)?
 * Then the connection takes no more commits. Any thread. */
bool cs_walbuf_failed(cs_walbuf_t *w);

#endif /* CS_STORE_WALBUF_H */
