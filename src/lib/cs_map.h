/*
 * cs_map.h -- a string-keyed hash map (open addressing, linear probing):
 * keys are copied and owned by the map; values are borrowed pointers the
 * caller manages. For in-memory indexes of bounded size (importers, caches).
 *
 * Thread-safety: none; one owner at a time.
 */
#ifndef CS_MAP_H
#define CS_MAP_H

#include <stddef.h>

#include "cs.h"

typedef struct cs_map {
    char **keys;
    void **vals;
    size_t cap;   /* power of two */
    size_t n;
} cs_map_t;

void cs_map_init(cs_map_t *m);
/* Frees the keys (not the values). NULL-safe. */
void cs_map_free(cs_map_t *m);
/* Insert or replace. CS_ERR_NOMEM on allocation failure. */
cs_rc cs_map_put(cs_map_t *m, const char *key, void *val);
/* NULL when absent. */
void *cs_map_get(const cs_map_t *m, const char *key);
/* Remove key (its value is the caller's); returns the value, NULL when
 * absent. */
void *cs_map_del(cs_map_t *m, const char *key);
/* Iterate: i from 0 while i < cap; returns the key at i or NULL for a hole. */
static inline const char *cs_map_key_at(const cs_map_t *m, size_t i) { return m->keys[i]; }

#endif /* CS_MAP_H */
