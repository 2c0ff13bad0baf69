/*
 * test_event_docs.c -- every ```json example in docs/events.md parses as a
 * valid event, and every event type has an example: the manual cannot go
 * stale.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/event.h"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = '\0';
    fclose(f);
    return s;
}

static void test_examples_parse(void **state)
{
    (void)state;
    char *doc = slurp(CS_SOURCE_DIR "/docs/events.md");
    assert_non_null(doc);
    bool seen[CS_EV__COUNT] = {false};
    int examples = 0;
    const char *p = doc;
    while ((p = strstr(p, "```json\n")) != NULL) {
        p += 8;
        const char *end = strstr(p, "```");
        assert_non_null(end);
        cs_event_t *ev = NULL;
        cs_err_t err;
        cs_err_clear(&err);
        if (cs_event_parse(p, (size_t)(end - p), &ev, &err) != CS_OK)
            fail_msg("docs/events.md example %d does not parse: %s\n%.*s", examples + 1, err.msg,
                     (int)(end - p), p);
        seen[ev->type] = true;
        cs_event_free(&ev);
        examples++;
        p = end + 3;
    }
    for (int t = 1; t < CS_EV__COUNT; t++)
        if (!seen[t])
            fail_msg("docs/events.md has no example of %s", cs_event_type_name((cs_event_type_t)t));
    assert_true(examples >= CS_EV__COUNT - 1);
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_examples_parse)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
