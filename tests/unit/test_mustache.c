/* test_mustache.c -- the template engine beyond the official specification:
 * syntax errors with positions, strict mode, limits, escaping modes, value
 * formatting, truthiness and thread-shared caching. The specification itself
 * runs in tests/spec/mustache_spec.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "template/mustache.h"

/* Render `tmpl` with JSON `data`; returns the rc, output in *out (static). */
static cs_rc render(const char *tmpl, const char *data, const cs_tpl_opts_t *opts,
                    const char **out, cs_err_t *err)
{
    static char result[4096];
    cs_tplset_t *set;
    cs_buf_t b;
    json_t *d = data ? json_loads(data, JSON_DECODE_ANY, NULL) : NULL;
    assert_true(!data || d);
    assert_int_equal(cs_tplset_new(&set, NULL), CS_OK);
    cs_buf_init(&b, 1 << 20);
    cs_rc rc = cs_tplset_add(set, "t", tmpl, strlen(tmpl), err);
    if (!rc)
        rc = cs_tplset_render(set, "t", d, opts, &b, err);
    cs_strlcpy(result, b.data ? b.data : "", sizeof result);
    *out = result;
    cs_buf_free(&b);
    cs_tplset_free(set);
    json_decref(d);
    return rc;
}

static void expect(const char *tmpl, const char *data, const char *want)
{
    const char *got;
    cs_err_t err;
    cs_err_clear(&err);
    assert_int_equal(render(tmpl, data, NULL, &got, &err), CS_OK);
    assert_string_equal(got, want);
}

static void expect_error(const char *tmpl, const char *data, const cs_tpl_opts_t *opts,
                         cs_rc want_rc, const char *msg_part)
{
    const char *got;
    cs_err_t err;
    cs_err_clear(&err);
    assert_int_equal(render(tmpl, data, opts, &got, &err), want_rc);
    if (!strstr(err.msg, msg_part))
        fail_msg("error '%s' does not mention '%s'", err.msg, msg_part);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    expect_error("Hallo {{name", "{}", NULL, CS_ERR_INVALID, "line 1, column 7: unclosed tag");
    expect_error("a\n{{#items}}\nx\n", "{}", NULL, CS_ERR_INVALID,
                 "line 2, column 1: section is never closed: '{{#items}}'");
    expect_error("{{#a}}{{/b}}", "{}", NULL, CS_ERR_INVALID, "'b' closes 'a'");
    expect_error("x\n  {{/a}}", "{}", NULL, CS_ERR_INVALID,
                 "line 2, column 3: closing tag without an opening one");
    expect_error("{{}}", "{}", NULL, CS_ERR_INVALID, "empty tag");
    expect_error("{{first name}}", "{}", NULL, CS_ERR_INVALID, "cannot contain spaces");
    expect_error("{{=<%=}}", "{}", NULL, CS_ERR_INVALID, "two delimiters");
    expect_error("{{=a= b=}}", "{}", NULL, CS_ERR_INVALID, "two delimiters");
    /* the template is named in the message */
    expect_error("{{#x}}", "{}", NULL, CS_ERR_INVALID, "template 't'");
    /* NUL bytes are refused */
    cs_err_t err;
    assert_int_equal(cs_tpl_check("n", "a\0b", 3, &err), CS_ERR_INVALID);
    assert_non_null(strstr(err.msg, "NUL"));
    assert_int_equal(cs_tpl_check("ok", "{{#a}}{{b}}{{/a}}", 17, &err), CS_OK);
}

static void test_strict_mode(void **state)
{
    (void)state;
    cs_tpl_opts_t strict = { .strict = true };
    const char *got;
    cs_err_t err;
    expect_error("Hallo {{customer.frist_name}}!", "{\"customer\":{\"first_name\":\"Eva\"}}",
                 &strict, CS_ERR_RULE, "line 1, column 7: no value for 'customer.frist_name'");
    /* null is a value; sections over missing names are allowed */
    assert_int_equal(render("[{{a}}]{{#b}}x{{/b}}", "{\"a\":null}", &strict, &got, &err), CS_OK);
    assert_string_equal(got, "[]");
    expect_error("{{>missing}}", "{}", &strict, CS_ERR_RULE, "no template named 'missing'");
    /* lenient by default */
    expect("Hallo {{customer.frist_name}}!", "{}", "Hallo !");
}

static void test_escaping_modes(void **state)
{
    (void)state;
    expect("{{v}}|{{{v}}}|{{&v}}", "{\"v\":\"<a href='x'>&\\\"</a>\"}",
           "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;|<a href='x'>&\"</a>|<a href='x'>&\"</a>");
    cs_tpl_opts_t text = { .escape = CS_TPL_ESCAPE_NONE };
    const char *got;
    cs_err_t err;
    assert_int_equal(render("{{v}}", "{\"v\":\"Müller & Söhne <GmbH>\"}", &text, &got, &err),
                     CS_OK);
    assert_string_equal(got, "Müller & Söhne <GmbH>");
}

static void test_values_and_truthiness(void **state)
{
    (void)state;
    expect("{{i}} {{r}} {{big}} {{t}} {{f}} {{o}} {{a}}",
           "{\"i\":-42,\"r\":0.1,\"big\":1e21,\"t\":true,\"f\":false,\"o\":{\"k\":1},\"a\":[1,2]}",
           "-42 0.1 1e+21 true false {&quot;k&quot;:1} [1,2]");
    /* JavaScript's falsiness for sections: "", 0 and [] hide, " " and "0" show */
    expect("{{#s}}S{{/s}}{{#z}}Z{{/z}}{{#e}}E{{/e}}{{#sp}}P{{/sp}}{{#zs}}Q{{/zs}}{{^z}}!{{/z}}",
           "{\"s\":\"\",\"z\":0,\"e\":[],\"sp\":\" \",\"zs\":\"0\"}", "PQ!");
    /* array elements by position */
    expect("{{items.0.name}}/{{items.1.name}}/{{items.9.name}}",
           "{\"items\":[{\"name\":\"Zelt\"},{\"name\":\"Kocher\"}]}", "Zelt/Kocher/");
    /* a scalar as the root context */
    expect("{{.}}", "\"nur Text\"", "nur Text");
    expect("ohne Daten {{x}}", NULL, "ohne Daten ");
}

static void test_limits(void **state)
{
    (void)state;
    /* a partial that includes itself forever */
    cs_tplset_t *set;
    cs_buf_t b;
    cs_err_t err;
    assert_int_equal(cs_tplset_new(&set, NULL), CS_OK);
    assert_int_equal(cs_tplset_add(set, "loop", "x{{>loop}}", 10, &err), CS_OK);
    cs_buf_init(&b, 1 << 20);
    assert_int_equal(cs_tplset_render(set, "loop", NULL, NULL, &b, &err), CS_ERR_RULE);
    assert_non_null(strstr(err.msg, "nested more than 64 deep"));
    cs_buf_reset(&b);
    /* output bound */
    assert_int_equal(cs_tplset_add(set, "big", "{{#l}}0123456789{{/l}}", 22, &err), CS_OK);
    json_t *d = json_pack("{s:[iiiiiiiiii]}", "l", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10);
    cs_tpl_opts_t small = { .max_output = 50 };
    assert_int_equal(cs_tplset_render(set, "big", d, &small, &b, &err), CS_ERR_TOOBIG);
    cs_buf_reset(&b);
    assert_int_equal(cs_tplset_render(set, "big", d, NULL, &b, &err), CS_OK);
    assert_int_equal(b.len, 100);
    /* unknown template */
    assert_int_equal(cs_tplset_render(set, "nope", d, NULL, &b, &err), CS_ERR_NOTFOUND);
    /* replacing a template keeps the old one on a syntax error */
    assert_int_equal(cs_tplset_add(set, "big", "{{#l}}", 6, &err), CS_ERR_INVALID);
    cs_buf_reset(&b);
    assert_int_equal(cs_tplset_render(set, "big", d, NULL, &b, &err), CS_OK);
    assert_int_equal(b.len, 100);
    json_decref(d);
    cs_buf_free(&b);
    cs_tplset_free(set);
}

/* Several threads render indented partials (which go through the cache). */
typedef struct job {
    cs_tplset_t *set;
    int failures;
} job_t;

static void *worker(void *arg)
{
    job_t *j = arg;
    json_t *d = json_pack("{s:[{s:s},{s:s}]}", "items", "name", "Zelt", "name", "Kocher");
    for (int i = 0; i < 500; i++) {
        cs_buf_t b;
        cs_err_t err;
        cs_buf_init(&b, 4096);
        if (cs_tplset_render(j->set, "mail", d, NULL, &b, &err) != CS_OK ||
            strcmp(b.data, "Ihre Bestellung:\n  - Zelt\n  - Kocher\nDanke!\n") != 0)
            j->failures++;
        cs_buf_free(&b);
    }
    json_decref(d);
    return NULL;
}

static void test_threads_share_cache(void **state)
{
    (void)state;
    cs_tplset_t *set;
    cs_err_t err;
    assert_int_equal(cs_tplset_new(&set, NULL), CS_OK);
    const char *mail = "Ihre Bestellung:\n  {{>list}}\nDanke!\n";
    const char *list = "{{#items}}\n- {{name}}\n{{/items}}\n";
    assert_int_equal(cs_tplset_add(set, "mail", mail, strlen(mail), &err), CS_OK);
    assert_int_equal(cs_tplset_add(set, "list", list, strlen(list), &err), CS_OK);
    pthread_t th[4];
    job_t jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i].set = set;
        jobs[i].failures = 0;
        assert_int_equal(pthread_create(&th[i], NULL, worker, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].failures, 0);
    }
    cs_tplset_free(set);
}

/* Every way making a set or loading a folder fails says what failed: the
 * command line prints err's message (cs_cli_open_sender), and an empty
 * one tells the operator nothing. */
static void test_failures_say_what(void **state)
{
    (void)state;
    cs_tplset_t *set = (cs_tplset_t *)&set;
    cs_err_t err;
    cs_err_clear(&err);
    cs_alloc_fail_after(1);
    cs_rc rc = cs_tplset_new(&set, &err);
    cs_alloc_fail_after(0);
    assert_int_equal(rc, CS_ERR_NOMEM);
    assert_null(set);
    assert_int_equal(err.rc, CS_ERR_NOMEM);
    assert_non_null(strstr(err.msg, "template set"));

    char dir[] = "/tmp/cs-tpl-XXXXXX", path[128], cmd[160];
    size_t count = 7;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/order.en.txt", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("Hello {{name}}\n", f);
    fclose(f);
    assert_int_equal(cs_tplset_new(&set, &err), CS_OK);
    /* no memory for the read buffer: the folder is named */
    cs_err_clear(&err);
    cs_alloc_fail_after(1);
    rc = cs_tplset_load_dir(set, dir, &count, &err);
    cs_alloc_fail_after(0);
    assert_int_equal(rc, CS_ERR_NOMEM);
    assert_int_equal(count, 0);
    assert_non_null(strstr(err.msg, dir));
    assert_non_null(strstr(err.msg, "out of memory"));
    /* a file that opens but cannot be read (here: a process's memory at
     * address 0) is an error naming it, not an empty template */
    snprintf(path, sizeof path, "%s/broken.en.txt", dir);
    if (symlink("/proc/self/mem", path) == 0) {
        cs_err_clear(&err);
        rc = cs_tplset_load_dir(set, dir, &count, &err);
        assert_int_equal(rc, CS_ERR_IO);
        assert_non_null(strstr(err.msg, "broken.en.txt"));
        assert_non_null(strstr(err.msg, "cannot read"));
        assert_false(cs_tplset_has(set, "broken.en.txt"));
        unlink(path);
    }
    /* a link to a template that is gone is an error naming it and why,
     * not a template skipped without a word */
    snprintf(path, sizeof path, "%s/shipped.de.txt", dir);
    assert_int_equal(symlink("/nonexistent/cs-tpl-gone.de.txt", path), 0);
    cs_err_clear(&err);
    rc = cs_tplset_load_dir(set, dir, &count, &err);
    assert_int_equal(rc, CS_ERR_IO);
    assert_non_null(strstr(err.msg, "shipped.de.txt: cannot read the file this link points to: "));
    assert_non_null(strstr(err.msg, strerror(ENOENT)));
    unlink(path);
    cs_err_clear(&err);
    assert_int_equal(cs_tplset_load_dir(set, dir, &count, &err), CS_OK);
    assert_int_equal(count, 1);
    cs_tplset_free(set);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syntax_errors),     cmocka_unit_test(test_strict_mode),
        cmocka_unit_test(test_escaping_modes),    cmocka_unit_test(test_values_and_truthiness),
        cmocka_unit_test(test_limits),            cmocka_unit_test(test_threads_share_cache),
        cmocka_unit_test(test_failures_say_what),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
