/*
 * test_json.c -- the JSON fast path against jansson, and the request
 * arenas under jansson's allocations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/cs_arena.h"
#include "lib/cs_json.h"

/* Documents the fast path must take, each equal to jansson's reading. */
static const char *const taken[] = {
    "{}",
    "[]",
    " \t\r\n{ \"a\" : 1 } \n",
    "{\"event_id\":\"e-1\",\"type\":\"order.placed\",\"data\":{\"items\":[{\"sku\":\"A\",\"quantity\":2,"
    "\"unit_price\":\"8.90\"},{\"sku\":\"B\",\"unit_price\":12.5}],\"paid\":true,\"note\":null}}",
    "[0,-0,1,-1,9223372036854775807,-9223372036854775808,0.5,-0.5,1e3,1E-3,2.5e+2,1.7976931348623157e308,"
    "4.9e-324,1e-400]",
    "{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}",
    "{\"u\":\"\\u00e9\\u20AC\\ud83d\\ude00\\u0001\"}",
    "{\"utf8\":\"Grüße, 😀, €, \xdf\xbf \xe0\xa0\x80 \xed\x9f\xbf \xef\xbf\xbf \xf0\x90\x80\x80 \xf4\x8f\xbf\xbf\"}",
    "{\"\":\"empty key\",\"k\\u00fc\":\"escaped key\"}",
    "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]",
    "{\"a\":{\"b\":{\"c\":[true,false,null,\"x\",{}]}}}",
};

/* Documents jansson refuses: the fast path must refuse them too, and
 * cs_json_loadb must answer with jansson's error. */
static const char *const refused[] = {
    "",
    "   ",
    "1",
    "\"a string\"",
    "null",
    "{",
    "{\"a\":}",
    "{\"a\" 1}",
    "{\"a\":1,}",
    "[1,]",
    "[1 2]",
    "{\"a\":1}x",
    "{\"a\":1}{}",
    "{a:1}",
    "{\"a\":01}",
    "{\"a\":1.}",
    "{\"a\":.5}",
    "{\"a\":1e}",
    "{\"a\":-}",
    "{\"a\":+1}",
    "{\"a\":tru}",
    "{\"a\":truex}",
    "{\"a\":NaN}",
    "{\"a\":9223372036854775808}",
    "{\"a\":-9223372036854775809}",
    "{\"a\":1e400}",
    "{\"a\":\"\\u0000\"}",
    "{\"a\":\"\\ud800\"}",
    "{\"a\":\"\\udc00\"}",
    "{\"a\":\"\\ud800\\u0041\"}",
    "{\"a\":\"\\x41\"}",
    "{\"a\":\"\\u12\"}",
    "{\"a\":\"tab\there\"}",
    "{\"a\":\"unterminated}",
    "{\"a\":\"\xff\"}",
    "{\"a\":\"\xc0\xaf\"}",
    "{\"a\":\"\xe0\x80\xaf\"}",
    "{\"a\":\"\xed\xa0\x80\"}",
    "{\"a\":\"\xf4\x90\x80\x80\"}",
    "{\"a\":\"\xf0\x9f\x98\"}",
    "{\"a\":1,\"a\":2}",
    "\xef\xbb\xbf{}",
};

static void check(const char *text, size_t len, bool want_fast)
{
    json_error_t je;
    json_t *ref = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    json_t *fast = cs_json_fast(text, len);
    if (want_fast) {
        if (!fast)
            fail_msg("the fast path did not take %s", text);
        assert_non_null(ref);
    }
    if (fast) {
        if (!ref)
            fail_msg("the fast path took what jansson refuses: %s", text);
        assert_true(json_equal(fast, ref));
        char *a = json_dumps(fast, JSON_COMPACT), *b = json_dumps(ref, JSON_COMPACT);
        assert_string_equal(a, b);
        cs_json_free(a);
        cs_json_free(b);
    }
    json_error_t e2;
    json_t *any = cs_json_loadb(text, len, &e2);
    assert_int_equal(!any, !ref);
    if (any)
        assert_true(json_equal(any, ref));
    else {
        assert_string_equal(e2.text, je.text);
        assert_int_equal(e2.position, je.position);
    }
    json_decref(any);
    json_decref(fast);
    json_decref(ref);
}

static void test_taken(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof taken / sizeof taken[0]; i++)
        check(taken[i], strlen(taken[i]), true);
}

static void test_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        check(refused[i], strlen(refused[i]), false);
    /* a NUL byte inside the given length */
    check("{\"a\":\"x\0y\"}", 11, false);
    check("{\"a\":1}\0", 8, false);
}

/* Integers beyond 64 bits, read as reals where each sits, with its path;
 * numbers beyond a double's range, as the largest double of their sign;
 * anything else wrong keeps the document refused. */
static void wide(const char *text, const char *path0, const char *path1, size_t want)
{
    json_error_t je;
    char path[CS_JSON_WIDE_MAX][CS_JSON_PATH_MAX];
    size_t n = 99;
    assert_null(cs_json_loadb(text, strlen(text), &je));
    json_t *v = cs_json_load_wide(text, strlen(text), &je, path, NULL, &n);
    assert_int_equal(n, want);
    if (!want) {
        assert_null(v);
        return;
    }
    assert_non_null(v);
    assert_string_equal(path[0], path0);
    if (path1)
        assert_string_equal(path[1], path1);
    json_decref(v);
}

static void test_load_wide(void **state)
{
    (void)state;
    wide("{\"a\":9223372036854775808}", "a", NULL, 1);
    wide("{\"x\":\"a,[\\\"{\",\"d\":{\"items\":[{\"q\":1},{\"k\":[],\"q\":-99999999999999999999}]},"
         "\"z\":[0,1,123456789012345678901234567890]}",
         "d.items[1].q", "z[2]", 2);
    wide("[{},{\"s\":1e400,\"b\":1}]", "[1].s", NULL, 1);     /* a real too large */
    wide("{\"a\":1e400,\"a\":1}", NULL, NULL, 0);          /* and a duplicate key */
    wide("{\"a\":1e400 1}", NULL, NULL, 0);                  /* and something else */
    wide("{\"a\":99999999999999999999,\"a\":1}", NULL, NULL, 0); /* and a duplicate key */
    json_error_t je;
    char path[CS_JSON_WIDE_MAX][CS_JSON_PATH_MAX];
    size_t n;
    const char *t = "{\"a\":1,\"b\":[-100000000000000000000]}";
    assert_null(cs_json_loadb(t, strlen(t), &je));
    json_t *v = cs_json_load_wide(t, strlen(t), &je, path, NULL, &n);
    assert_true(json_is_integer(json_object_get(v, "a")));
    assert_true(json_real_value(json_array_get(json_object_get(v, "b"), 0)) == -1e20);
    json_decref(v);

    /* too large for a double: a real (1e400, -1.5E+999), an integer of
     * more than 308 digits, beside one a double holds; each flagged */
    char text[1200];
    size_t k = (size_t)snprintf(text, sizeof text,
                                "{\"r\":[1e400,-1.5E+999],\"w\":123456789012345678901,\"i\":-");
    for (int d = 0; d < 400; d++)
        text[k++] = d ? '7' : '1';
    snprintf(text + k, sizeof text - k, ",\"z\":[0]}");
    bool huge[CS_JSON_WIDE_MAX];
    assert_null(cs_json_loadb(text, strlen(text), &je));
    v = cs_json_load_wide(text, strlen(text), &je, path, huge, &n);
    assert_non_null(v);
    assert_int_equal(n, 4);
    static const char *const want[] = { "r[0]", "r[1]", "w", "i" };
    static const bool big[] = { true, true, false, true };
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(path[i], want[i]);
        assert_int_equal(huge[i], big[i]);
    }
    json_t *r = json_object_get(v, "r");
    assert_true(json_real_value(json_array_get(r, 0)) == DBL_MAX);
    assert_true(json_real_value(json_array_get(r, 1)) == -DBL_MAX);
    assert_true(json_real_value(json_object_get(v, "w")) == 123456789012345678901.0);
    assert_true(json_real_value(json_object_get(v, "i")) == -DBL_MAX);
    assert_true(json_is_integer(json_array_get(json_object_get(v, "z"), 0)));
    json_decref(v);
    /* a 308-digit integer a double still holds: a real, not flagged */
    k = 0;
    text[k++] = '[';
    for (int d = 0; d < 308; d++)
        text[k++] = d ? '0' : '9';
    text[k++] = ']';
    text[k] = '\0';
    assert_null(cs_json_loadb(text, k, &je));
    v = cs_json_load_wide(text, k, &je, path, huge, &n);
    assert_int_equal(n, 1);
    assert_false(huge[0]);
    assert_true(json_real_value(json_array_get(v, 0)) == 9e307);
    json_decref(v);
}

/* What the fast path leaves to jansson still parses, the same. */
static void test_handed_to_jansson(void **state)
{
    (void)state;
    char deep[1000];
    size_t n = 0;
    for (int i = 0; i < 100; i++)
        deep[n++] = '[';
    for (int i = 0; i < 100; i++)
        deep[n++] = ']';
    assert_null(cs_json_fast(deep, n));
    check(deep, n, false);
    json_error_t je;
    json_t *v = cs_json_loadb(deep, n, &je);
    assert_non_null(v);
    json_decref(v);

    /* a long escaped string, a long number */
    char *big = malloc(10000);
    n = (size_t)snprintf(big, 10000, "{\"s\":\"");
    for (int i = 0; i < 1500; i++)
        n += (size_t)snprintf(big + n, 10000 - n, "\\n");
    n += (size_t)snprintf(big + n, 10000 - n, "\",\"x\":1.");
    for (int i = 0; i < 80; i++)
        big[n++] = '5';
    big[n++] = '}';
    assert_null(cs_json_fast(big, n));
    check(big, n, false);
    v = cs_json_loadb(big, n, &je);
    assert_non_null(v);
    assert_int_equal(strlen(json_string_value(json_object_get(v, "s"))), 1500);
    json_decref(v);
    free(big);
}

static void *decref_elsewhere(void *arg)
{
    json_decref(arg);
    return NULL;
}

/* cs_json_dumpb writes what jansson writes, or 0 where jansson must. */
static void dump_same(const json_t *v, size_t size)
{
    char ours[1024], theirs[1024];
    assert_true(size <= sizeof ours);
    size_t n = cs_json_dumpb(v, ours, size);
    size_t m = json_dumpb(v, theirs, sizeof theirs, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_true(m > 0 && m < sizeof theirs);
    if (n == 0) {
        if (m <= size)
            fail_msg("cs_json_dumpb gave up on %.*s", (int)m, theirs);
        return;
    }
    assert_int_equal(n, m);
    assert_memory_equal(ours, theirs, n);
}

static void test_dump(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "{}",
        "[]",
        "{\"city\":\"Leipzig\",\"country\":\"DE\",\"postal_code\":\"04109\"}",
        "{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f x\"}",
        "{\"u\":\"Grüße \\u20ac \\ud83d\\ude00 \\u2028\"}",
        "{\"\":\"\",\"k\\u00fc\\n\":[1,-1,0,9223372036854775807,-9223372036854775808]}",
        "{\"a\":{\"b\":{\"c\":[true,false,null,\"x\",{},[]]}},\"z\":0}",
        "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        json_error_t je;
        json_t *v = json_loads(docs[i], 0, &je);
        if (!v)
            fail_msg("test document %zu: %s", i, je.text);
        dump_same(v, 1024);
        /* every shorter buffer: 0, never a cut text */
        char buf[1024];
        size_t full = cs_json_dumpb(v, buf, sizeof buf);
        for (size_t size = 0; size < full; size++)
            assert_int_equal(cs_json_dumpb(v, buf, size), 0);
        json_decref(v);
    }
    /* a string with an embedded NUL, scalars on their own */
    json_t *nul = json_stringn("a\0b", 3);
    dump_same(nul, 64);
    json_decref(nul);
    json_t *i = json_integer(-42);
    dump_same(i, 64);
    json_decref(i);
    char buf[64];
    assert_int_equal(cs_json_dumpb(NULL, buf, sizeof buf), 0);
}

/* Reals print in the fewest digits that read back as the same double,
 * each of them, wherever they are nested. */
static void test_dump_reals(void **state)
{
    (void)state;
    json_error_t je;
    json_t *v = json_loads("{\"a\":9.90,\"b\":[0.1,{\"c\":-2.5e-7}],\"d\":1.0,\"e\":3}", 0, &je);
    assert_non_null(v);
    char *text = cs_json_dumps(v, JSON_COMPACT);
    assert_string_equal(text, "{\"a\":9.9,\"b\":[0.1,{\"c\":-2.5e-7}],\"d\":1.0,\"e\":3}");
    free(text);
    /* one real that needs 17 digits: every real still reads back the same */
    json_object_set_new(v, "f", json_real(0.1 + 0.2));
    text = cs_json_dumps(v, JSON_COMPACT);
    json_t *back = json_loads(text, 0, &je);
    assert_non_null(back);
    assert_true(json_equal(v, back));
    assert_non_null(strstr(text, "0.30000000000000004"));
    json_decref(back);
    free(text);
    json_decref(v);
    /* each real as jansson writes it at that real's own fewest digits */
    static const double reals[] = { 1.5, 1.0, 10.0, -0.0, 100.0, 1e21, 1e-7, 2.5e-7, 1e300,
                                    123456789012345680000.0, 5e-324, 1.7976931348623157e308,
                                    0.1 + 0.2, 1.0 / 3.0, 9.9, -1234.5678 };
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        json_t *r = json_real(reals[i]);
        char ours[64], theirs[64];
        size_t n = cs_json_dumpb(r, ours, sizeof ours);
        assert_true(n > 0);
        for (int p = 1; p <= 17; p++) { /* jansson's shortest text that reads back */
            size_t m = json_dumpb(r, theirs, sizeof theirs, JSON_ENCODE_ANY | JSON_REAL_PRECISION(p));
            theirs[m] = '\0';
            if (strtod(theirs, NULL) == reals[i])
                break;
        }
        assert_int_equal(n, strlen(theirs));
        assert_memory_equal(ours, theirs, n);
        json_decref(r);
    }
    /* no reals: no precision asked for */
    v = json_pack("{s:i, s:s}", "n", 1, "s", "x");
    assert_int_equal(cs_json_real_flags(v), 0);
    assert_int_equal(cs_json_real_flags(NULL), 0);
    json_decref(v);
}

static void test_arena(void **state)
{
    (void)state;
    cs_arena_setup();
    size_t before = cs_arena_chunks_in_use();
    cs_arena_t a;
    cs_arena_init(&a);
    cs_arena_t *prev = cs_arena_use(&a);
    assert_null(prev);
    json_t *docs[200];
    char big[6000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int i = 0; i < 200; i++) {
        docs[i] = json_pack("{s:i, s:s, s:[i,i,i], s:s}", "n", i, "name", "Kaffeebohnen", "list",
                            1, 2, 3, "big", i % 50 == 0 ? big : "small");
        assert_non_null(docs[i]);
    }
    assert_ptr_equal(cs_arena_use(prev), &a);
    assert_false(cs_arena_holds_all(&a)); /* the big strings went to malloc */
    assert_true(a.chunks >= 2); /* 200 small documents do not fit one 64 KiB chunk */
    assert_int_equal(cs_arena_chunks_in_use(), before + a.chunks);
    /* outside the arena: malloc as before, freed as before */
    json_t *heap = json_pack("{s:s}", "k", "v");
    json_object_set_new(docs[0], "heap", heap); /* a heap value in an arena document */
    /* arena values are released by any thread, in any order, as a no-op */
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, decref_elsewhere, docs[1]), 0);
    pthread_join(t, NULL);
    for (int i = 0; i < 200; i++)
        if (i != 1)
            json_decref(docs[i]);
    cs_arena_release(&a);
    assert_int_equal(cs_arena_chunks_in_use(), before);
    assert_int_equal(a.chunks, 0);
    /* a released arena is used again */
    assert_false(cs_arena_holds_all(&a)); /* not in use since the release */
    cs_arena_use(&a);
    json_t *again = cs_json_loadb("{\"a\":[1,2,3]}", 13, NULL);
    cs_arena_use(NULL);
    assert_non_null(again);
    assert_true(cs_arena_holds_all(&a)); /* all of it in the arena */
    assert_int_equal(json_integer_value(json_array_get(json_object_get(again, "a"), 2)), 3);
    json_decref(again);
    cs_arena_release(&a);
    cs_arena_release(NULL);
    assert_int_equal(cs_arena_chunks_in_use(), before);
}

/* One thread releases more chunks than are kept backed while another
 * takes them and checks what it wrote: a chunk handed back to the kernel
 * must never be one somebody already uses again. */
typedef struct churn {
    volatile bool stop;
    int bad;
} churn_t;

static void *churn_big(void *arg)
{
    churn_t *c = arg;
    while (!c->stop) {
        cs_arena_t a;
        cs_arena_init(&a);
        cs_arena_use(&a);
        for (int i = 0; i < 20000; i++) /* ~330 chunks of small strings */
            json_decref(json_string("a string of some thirty bytes.."));
        cs_arena_use(NULL);
        cs_arena_release(&a);
    }
    return NULL;
}

static void *churn_check(void *arg)
{
    churn_t *c = arg;
    while (!c->stop) {
        cs_arena_t a;
        cs_arena_init(&a);
        cs_arena_use(&a);
        json_t *arr = json_array();
        for (int i = 0; i < 3000; i++)
            json_array_append_new(arr, json_integer(i));
        cs_arena_use(NULL);
        for (int i = 0; i < 3000; i++)
            if (json_integer_value(json_array_get(arr, (size_t)i)) != i)
                c->bad++;
        json_decref(arr);
        cs_arena_release(&a);
    }
    return NULL;
}

static void test_arena_threads(void **state)
{
    (void)state;
    size_t before = cs_arena_chunks_in_use();
    churn_t c = { false, 0 };
    pthread_t t1, t2;
    assert_int_equal(pthread_create(&t1, NULL, churn_big, &c), 0);
    assert_int_equal(pthread_create(&t2, NULL, churn_check, &c), 0);
    struct timespec ts = { 1, 0 };
    nanosleep(&ts, NULL);
    c.stop = true;
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    assert_int_equal(c.bad, 0);
    assert_int_equal(cs_arena_chunks_in_use(), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_taken),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_load_wide),
        cmocka_unit_test(test_handed_to_jansson),
        cmocka_unit_test(test_dump),
        cmocka_unit_test(test_dump_reals),
        cmocka_unit_test(test_arena),
        cmocka_unit_test(test_arena_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
