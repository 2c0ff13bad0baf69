/*
 * cs_arena.h -- request arenas for jansson: the JSON documents parsed for
 * one request are carved out of a few 64 KiB chunks and released with the
 * request in one go, instead of one malloc and one free per value, key and
 * hash bucket (a batch of 100 events is some 4,000 of each).
 *
 * How: cs_arena_setup installs jansson allocation functions. While a thread
 * has an arena in use (cs_arena_use), jansson's small allocations on that
 * thread come from it; everything else goes to malloc as before. The chunks
 * live in one reserved address range, so the free function knows arena
 * memory by its address alone: freeing it is a no-op, from any thread, at
 * any time while the arena lives. The memory comes back when the arena is
 * released (cs_arena_release), which must come after the last use of
 * anything allocated in it. Allocations larger than a few KiB, and any
 * once the range is used up, go to malloc, so an arena never fails where
 * malloc would not.
 *
 * jansson memory that code frees itself (json_dumps) must go through
 * cs_json_free, never free(), while an arena may be in use on the thread
 * that allocated it.
 *
 * Thread-safety: an arena belongs to one thread while in use; chunks are
 * taken and given back under a lock. Under AddressSanitizer a released
 * chunk is poisoned, so a use after release is reported.
 */
#ifndef CS_ARENA_H
#define CS_ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cs_arena {
    char *cur;       /* next free byte in the current chunk */
    size_t left;     /* bytes left in it */
    int64_t last;    /* the arena's newest chunk (-1: none); chunks chain back */
    size_t chunks;   /* chunks held */
    size_t spilled;  /* allocations made while in use that went to malloc */
    bool used;       /* in use at least once since init or release */
} cs_arena_t;

/* Install the allocation functions (once per process; idempotent and
 * thread-safe). cs_arena_use calls it too; call it before threads start. */
void cs_arena_setup(void);

void cs_arena_init(cs_arena_t *a);
/* Route this thread's jansson allocations into a (NULL: back to malloc);
 * returns the arena that was in use, to restore afterwards. */
cs_arena_t *cs_arena_use(cs_arena_t *a);
/* Give the arena's chunks back. Nothing allocated in it may be used after
 * this. The arena may be used again. NULL-safe. */
void cs_arena_release(cs_arena_t *a);
/* True when the arena has been in use and every jansson allocation made
 * while it was came from it: JSON built only then needs no json_decref
 * before the release (nothing of it is on the heap). */
bool cs_arena_holds_all(const cs_arena_t *a);
/* Free what jansson allocated (json_dumps' text), arena memory or not. */
void cs_json_free(void *p);
/* Chunks held by all arenas now (for tests and metrics). */
size_t cs_arena_chunks_in_use(void);

#endif /* CS_ARENA_H */
