/*
 * pcache.c -- see pcache.h.
 *
 * A cache here is a pc_cache in front of the wrapped cache's own object;
 * pages are the wrapped cache's and pass through untouched.
 */
#include "pcache.h"

#include <stdatomic.h>
#include <stddef.h>

typedef struct pc_cache {
    sqlite3_pcache *inner; /* the wrapped cache's (owned) */
    /* Every page of the cache has a number <= max_key, or == parked. */
    unsigned max_key;
    unsigned parked; /* a page moved past max_key (0: none) */
} pc_cache;

static sqlite3_pcache_methods2 inner_m; /* SQLite's own cache, set once at install */
static _Atomic uint64_t st_truncates, st_forwarded, st_parked;

static int pc_init(void *arg)
{
    (void)arg;
    return inner_m.xInit ? inner_m.xInit(inner_m.pArg) : SQLITE_OK;
}

static void pc_shutdown(void *arg)
{
    (void)arg;
    if (inner_m.xShutdown)
        inner_m.xShutdown(inner_m.pArg);
}

static sqlite3_pcache *pc_create(int page_size, int extra, int purgeable)
{
    pc_cache *c = sqlite3_malloc(sizeof *c);
    if (!c)
        return NULL;
    c->inner = inner_m.xCreate(page_size, extra, purgeable);
    if (!c->inner) {
        sqlite3_free(c);
        return NULL;
    }
    c->max_key = 0;
    c->parked = 0;
    return (sqlite3_pcache *)c;
}

static void pc_cachesize(sqlite3_pcache *p, int n)
{
    inner_m.xCachesize(((pc_cache *)p)->inner, n);
}

static int pc_pagecount(sqlite3_pcache *p)
{
    return inner_m.xPagecount(((pc_cache *)p)->inner);
}

static sqlite3_pcache_page *pc_fetch(sqlite3_pcache *p, unsigned key, int create)
{
    pc_cache *c = (pc_cache *)p;
    sqlite3_pcache_page *pg = inner_m.xFetch(c->inner, key, create);
    if (pg && key > c->max_key && key != c->parked)
        c->max_key = key;
    return pg;
}

static void pc_unpin(sqlite3_pcache *p, sqlite3_pcache_page *pg, int discard)
{
    inner_m.xUnpin(((pc_cache *)p)->inner, pg, discard);
}

/* A swap parks a page past the end and moves it back right after; a second
 * page past the bound while one is parked raises the bound instead. */
static void pc_rekey(sqlite3_pcache *p, sqlite3_pcache_page *pg, unsigned old_key,
                     unsigned new_key)
{
    pc_cache *c = (pc_cache *)p;
    inner_m.xRekey(c->inner, pg, old_key, new_key);
    if (old_key == c->parked)
        c->parked = 0; /* numbers are unique in a cache: none is there now */
    if (new_key > c->max_key && new_key != c->parked) {
        atomic_fetch_add_explicit(&st_parked, 1, memory_order_relaxed);
        if (!c->parked) {
            c->parked = new_key;
        } else {
            c->max_key = new_key > c->parked ? new_key : c->parked;
            c->parked = 0;
        }
    }
}

static void pc_truncate(sqlite3_pcache *p, unsigned limit)
{
    pc_cache *c = (pc_cache *)p;
    atomic_fetch_add_explicit(&st_truncates, 1, memory_order_relaxed);
    if (c->max_key < limit && (!c->parked || c->parked < limit))
        return; /* every page is below the limit: nothing to drop */
    atomic_fetch_add_explicit(&st_forwarded, 1, memory_order_relaxed);
    inner_m.xTruncate(c->inner, limit);
    if (limit && c->max_key >= limit)
        c->max_key = limit - 1;
    if (c->parked >= limit)
        c->parked = 0;
}

static void pc_destroy(sqlite3_pcache *p)
{
    pc_cache *c = (pc_cache *)p;
    inner_m.xDestroy(c->inner);
    sqlite3_free(c);
}

static void pc_shrink(sqlite3_pcache *p)
{
    inner_m.xShrink(((pc_cache *)p)->inner);
}

int cs_pcache_install(void)
{
    static const sqlite3_pcache_methods2 ours = {
        .iVersion = 1,
        .pArg = NULL,
        .xInit = pc_init,
        .xShutdown = pc_shutdown,
        .xCreate = pc_create,
        .xCachesize = pc_cachesize,
        .xPagecount = pc_pagecount,
        .xFetch = pc_fetch,
        .xUnpin = pc_unpin,
        .xRekey = pc_rekey,
        .xTruncate = pc_truncate,
        .xDestroy = pc_destroy,
        .xShrink = pc_shrink,
    };
    sqlite3_pcache_methods2 cur;
    int rc = sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &cur);
    if (rc != SQLITE_OK)
        return rc;
    if (cur.xCreate == pc_create)
        return SQLITE_OK; /* already in front */
    inner_m = cur;
    return sqlite3_config(SQLITE_CONFIG_PCACHE2, &ours);
}

void cs_pcache_stats(cs_pcache_stats_t *out)
{
    out->truncates = atomic_load_explicit(&st_truncates, memory_order_relaxed);
    out->forwarded = atomic_load_explicit(&st_forwarded, memory_order_relaxed);
    out->parked = atomic_load_explicit(&st_parked, memory_order_relaxed);
}
