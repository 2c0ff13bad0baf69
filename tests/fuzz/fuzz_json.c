/*
 * fuzz_json.c -- libFuzzer target for the JSON fast path, differential
 * against jansson: whatever cs_json_fast takes, json_loadb (with
 * JSON_REJECT_DUPLICATES) takes too and gives an equal value with the same
 * compact text (member order, numbers); whatever jansson refuses, the fast
 * path refuses. And cs_json_loadb answers as jansson does, inside a request
 * arena as outside; cs_json_dumpb writes jansson's compact text, but for
 * reals, each in its fewest digits that read back as the same double.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cs_arena.h"
#include "lib/cs_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* what cs_json_dumpb must write: nesting up to the parser's 64 (reals with
 * no_reals set: then the text is jansson's byte for byte) */
static int plain(const json_t *v, int depth, int no_reals)
{
    if (depth > 64 || (no_reals && json_is_real(v)))
        return 0;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (!plain(json_array_get(v, i), depth + 1, no_reals))
                return 0;
    } else if (json_is_object(v)) {
        const char *k;
        json_t *m;
        json_object_foreach ((json_t *)v, k, m)
            if (!plain(m, depth + 1, no_reals))
                return 0;
    }
    return 1;
}

static void same(json_t *a, json_t *b)
{
    if (!json_equal(a, b))
        abort();
    char *ta = json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY);
    char *tb = json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!ta || !tb || strcmp(ta, tb) != 0)
        abort();
    /* the compact writer: jansson's text (reals in their fewest digits,
     * reading back as the same value), or 0 (too long, too deep) */
    static char buf[1 << 16];
    size_t n = cs_json_dumpb(b, buf, sizeof buf);
    if (n && plain(b, 0, 1) && (n != strlen(tb) || memcmp(buf, tb, n) != 0))
        abort();
    if (n && !plain(b, 0, 1)) {
        json_t *back = json_loadb(buf, n, JSON_DECODE_ANY, NULL);
        if (!back || !json_equal(back, b))
            abort();
        json_decref(back);
    }
    /* (a real in fewer digits may take an exponent jansson's does not:
     * 6.666666444444445e16 for 66666664444444448.0, a byte longer) */
    if (!n && 2 * strlen(tb) < sizeof buf && plain(b, 0, 0))
        abort(); /* gave up on a text it should write */
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
