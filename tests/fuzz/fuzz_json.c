/*
 * fuzz_json.c -- libFuzzer target for the JSON fast path, differential
 * against jansson: whatever cs_json_fast takes, json_loadb (with
 * JSON_REJECT_DUPLICATES) takes too and gives an equal value with the same
 * compact text (member order, numbers); whatever jansson refuses, the fast
 * path refuses. And cs_json_loadb answers as jansson does, inside a request
 * arena as outside.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cs_arena.h"
#include "lib/cs_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(json_t *a, json_t *b)
{
    if (!json_equal(a, b))
        abort();
    char *ta = json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY);
    char *tb = json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!ta || !tb || strcmp(ta, tb) != 0)
        abort();
    cs_json_free(ta);
    cs_json_free(tb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    json_error_t je;
    json_t *ref = json_loadb(text, size, JSON_REJECT_DUPLICATES, &je);
    json_t *fast = cs_json_fast(text, size);
    if (fast && !ref)
        abort(); /* took what jansson refuses */
    if (fast)
        same(fast, ref);
    json_decref(fast);

    cs_arena_t arena;
    cs_arena_init(&arena);
    cs_arena_t *prev = cs_arena_use(&arena);
    json_t *any = cs_json_loadb(text, size, &je);
    cs_arena_use(prev);
    if (!any != !ref)
        abort();
    if (any)
        same(any, ref);
    json_decref(any);
    cs_arena_release(&arena);
    json_decref(ref);
    return 0;
}
