/*
 * cs_map.c -- see cs_map.h. FNV-1a hashing; grows at 70% load.
 */
#include "cs_map.h"

#include <stdbool.h>
#include <string.h>

static size_t hash(const char *s)
{
    return (size_t)cs_hash_str(CS_HASH_INIT, s);
}

void cs_map_init(cs_map_t *m)
{
    memset(m, 0, sizeof *m);
}

void cs_map_free(cs_map_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->cap; i++)
        cs_free(m->keys[i]);
    cs_free(m->keys);
    cs_free(m->vals);
    memset(m, 0, sizeof *m);
}

static size_t slot_of(const cs_map_t *m, const char *key)
{
    size_t i = hash(key) & (m->cap - 1);
    while (m->keys[i] && strcmp(m->keys[i], key) != 0)
        i = (i + 1) & (m->cap - 1);
    return i;
}

static cs_rc grow(cs_map_t *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 64;
    char **keys = cs_calloc(ncap, sizeof *keys);
    void **vals = cs_calloc(ncap, sizeof *vals);
    if (!keys || !vals) {
        cs_free(keys);
        cs_free(vals);
        return CS_ERR_NOMEM;
    }
    cs_map_t nm = {.keys = keys, .vals = vals, .cap = ncap, .n = m->n};
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i]) {
            size_t j = slot_of(&nm, m->keys[i]);
            nm.keys[j] = m->keys[i];
            nm.vals[j] = m->vals[i];
        }
    cs_free(m->keys);
    cs_free(m->vals);
    *m = nm;
    return CS_OK;
}

cs_rc cs_map_put(cs_map_t *m, const char *key, void *val)
{
    if ((m->n + 1) * 10 > m->cap * 7 && grow(m) != CS_OK)
        return CS_ERR_NOMEM;
    size_t i = slot_of(m, key);
    if (!m->keys[i]) {
        if (!(m->keys[i] = cs_strdup(key)))
            return CS_ERR_NOMEM;
        m->n++;
    }
    m->vals[i] = val;
    return CS_OK;
}

void *cs_map_get(const cs_map_t *m, const char *key)
{
    if (!m->cap)
        return NULL;
    size_t i = slot_of(m, key);
    return m->keys[i] ? m->vals[i] : NULL;
}

/* Backward-shift deletion: the entries after the hole that probed past it
 * move up, so every key stays reachable from its home slot without
 * tombstones. */
void *cs_map_del(cs_map_t *m, const char *key)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1, i = slot_of(m, key);
    if (!m->keys[i])
        return NULL;
    void *val = m->vals[i];
    cs_free(m->keys[i]);
    m->keys[i] = NULL;
    m->vals[i] = NULL;
    m->n--;
    for (size_t j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
        size_t home = hash(m->keys[j]) & mask;
        /* j's key may fill the hole at i unless its home lies in (i, j] */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        m->keys[i] = m->keys[j];
        m->vals[i] = m->vals[j];
        m->keys[j] = NULL;
        m->vals[j] = NULL;
        i = j;
    }
    return val;
}
