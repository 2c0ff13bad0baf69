/*
 * cs_arena.c -- request arenas for jansson (see cs_arena.h).
 *
 * One range of REGION_CHUNKS chunks of CHUNK bytes is reserved at setup
 * (address space only: pages are backed when first touched). A chunk's
 * first 16 bytes hold the index of the arena's previous chunk, so an arena
 * is a bump pointer plus the head of its chain. Free chunks wait on a
 * stack; past KEEP_CHUNKS of them, released chunks are handed back to the
 * kernel so a burst does not pin its memory.
 */
#include "cs_arena.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define CHUNK (64 * 1024)
#define REGION_CHUNKS 4096          /* 256 MiB of address space */
/* free chunks kept backed: 64 MiB, what some 250 batches of 100 events in
 * flight hold (handing chunks back and faulting them in again cost more than
 * the parsing at 256 connections) */
#define KEEP_CHUNKS 1024
#define HEADER 16                   /* the chain link; keeps 16-byte alignment */
#define MAX_ALLOC 4096              /* larger ones go to malloc */

static char *region;                /* NULL: no arenas, everything is malloc */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* guards the stack below */
static uint32_t free_stack[REGION_CHUNKS];
static size_t n_free;               /* chunks on free_stack */
static size_t n_fresh;              /* chunks never handed out: [n_fresh, REGION_CHUNKS) */
static _Atomic size_t in_use;
static _Thread_local cs_arena_t *current;

static void *j_malloc(size_t n);
static void j_free(void *p);

static void setup_once(void)
{
    void *p = mmap(NULL, (size_t)CHUNK * REGION_CHUNKS, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED)
        region = p;
    json_set_alloc_funcs(j_malloc, j_free);
}

void cs_arena_setup(void)
{
    pthread_once(&once, setup_once);
}

static bool in_region(const void *p)
{
    return region && (uintptr_t)p - (uintptr_t)region < (uintptr_t)CHUNK * REGION_CHUNKS;
}

/* A chunk's index, or -1 when the range is used up. */
static int64_t chunk_take(void)
{
    int64_t c = -1;
    pthread_mutex_lock(&mu);
    if (n_free)
        c = free_stack[--n_free];
    else if (n_fresh < REGION_CHUNKS)
        c = (int64_t)n_fresh++;
    pthread_mutex_unlock(&mu);
    if (c >= 0) {
        UNPOISON(region + (size_t)c * CHUNK, CHUNK);
        atomic_fetch_add(&in_use, 1);
    }
    return c;
}

/* Everything is done to the chunk before it is on the stack: from then on
 * another thread may take it. */
static void chunk_give(int64_t c)
{
    char *base = region + (size_t)c * CHUNK;
    pthread_mutex_lock(&mu);
    bool drop = n_free >= KEEP_CHUNKS;
    pthread_mutex_unlock(&mu);
    if (drop)
        (void)madvise(base, CHUNK, MADV_DONTNEED);
    POISON(base, CHUNK);
    atomic_fetch_sub(&in_use, 1);
    pthread_mutex_lock(&mu);
    free_stack[n_free++] = (uint32_t)c;
    pthread_mutex_unlock(&mu);
}

static void *arena_alloc(cs_arena_t *a, size_t n)
{
    if (n > MAX_ALLOC)
        return NULL;
    n = (n + 15) & ~(size_t)15;
    if (n > a->left) {
        int64_t c = chunk_take();
        if (c < 0)
            return NULL;
        char *base = region + (size_t)c * CHUNK;
        *(int64_t *)(void *)base = a->last;
        a->last = c;
        a->chunks++;
        a->cur = base + HEADER;
        a->left = CHUNK - HEADER;
    }
    void *p = a->cur;
    a->cur += n;
    a->left -= n;
    return p;
}

static void *j_malloc(size_t n)
{
    cs_arena_t *a = current;
    if (a && region) {
        void *p = arena_alloc(a, n);
        if (p)
            return p;
    }
    if (a)
        a->spilled++;
    return malloc(n);
}

static void j_free(void *p)
{
    if (!in_region(p))
        free(p);
    /* arena memory comes back with its arena */
}

void cs_arena_init(cs_arena_t *a)
{
    a->cur = NULL;
    a->left = 0;
    a->last = -1;
    a->chunks = 0;
    a->spilled = 0;
    a->used = false;
}

cs_arena_t *cs_arena_use(cs_arena_t *a)
{
    cs_arena_setup();
    cs_arena_t *prev = current;
    current = a;
    if (a)
        a->used = true;
    return prev;
}

bool cs_arena_holds_all(const cs_arena_t *a)
{
    return a && a->used && a->spilled == 0 && region;
}

void cs_arena_release(cs_arena_t *a)
{
    if (!a)
        return;
    while (a->last >= 0) {
        int64_t c = a->last;
        a->last = *(int64_t *)(void *)(region + (size_t)c * CHUNK);
        chunk_give(c);
    }
    cs_arena_init(a);
}

void cs_json_free(void *p)
{
    j_free(p);
}

size_t cs_arena_chunks_in_use(void)
{
    return atomic_load(&in_use);
}
