/*
 * pcache.h -- SQLite's own page cache, minus a scan of the whole cache at
 * every commit.
 *
 * At the end of every write transaction SQLite asks its page cache to drop
 * the pages past the end of the database (xTruncate). The default cache
 * (pcache1) skips that when no page number it ever saw is that large; but
 * when a B-tree rebalance swaps two pages it parks one for a moment at the
 * page number of the lock byte (1 GiB / page size + 1), far past the end
 * of any smaller database. From then on every commit walks every hash
 * bucket and every page of the cache, only to find nothing to drop: with
 * the writer's 16 MiB cache, about 4,000 pages per commit -- 5-7% of the
 * writer's time under single-event intake, where commits are small and
 * many (docs/benchmarks.md).
 *
 * This wraps the default cache and forwards every call, and keeps per
 * cache a bound on its page numbers: the largest page number it was asked
 * for or moved a page to, plus at most one page parked past that bound for
 * a swap. A truncation that can drop nothing (every page number below the
 * limit) is answered here; any other goes to SQLite's cache, which then
 * does exactly what it did before. The bound is an over-estimate, never an
 * under-estimate: a page the bound does not know of cannot exist, so no
 * truncation that has something to drop is ever skipped.
 *
 * Thread-safety: install once, before sqlite3_initialize (the store does
 * it in its once-only set-up); each cache is used by one connection, as
 * SQLite uses its caches.
 */
#ifndef CS_STORE_PCACHE_H
#define CS_STORE_PCACHE_H

#include <sqlite3.h>
#include <stdint.h>

/* Put the wrapper in front of SQLite's current page cache. SQLITE_OK, or
 * SQLite's answer when it is already initialized (nothing changes then). */
int cs_pcache_install(void);

typedef struct cs_pcache_stats {
    uint64_t truncates;   /* truncations asked for */
    uint64_t forwarded;   /* ... that went to SQLite's cache */
    uint64_t parked;      /* pages moved past every page number seen (swaps) */
} cs_pcache_stats_t;

/* Since the process started, over all caches. */
void cs_pcache_stats(cs_pcache_stats_t *out);

#endif
