/* test_wamap.c -- WhatsApp template mappings (T.L.whatsapp): the line
 * format parsed, every error naming the file, the line and what was
 * expected, and a templates folder's mappings loaded and looked up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "template/wamap.h"

static cs_rc parse(const char *file, const char *src, cs_wa_tpl_t **t, cs_err_t *err)
{
    cs_err_clear(err);
    return cs_wa_tpl_parse(file, src, strlen(src), t, err);
}

static void test_parse_complete(void **state)
{
    (void)state;
    cs_wa_tpl_t *t = NULL;
    cs_err_t err;
    const char *src = "# the shop's approved template\n"
                      "name: bestellung_versandt_2\n"
                      "\n"
                      "language: de\n"
                      "header:  {{order.id}}  \r\n"
                      "body: {{customer.first_name}}\n"
                      "  body : Bestellung {{order.id}}\n"
                      "button: {{links.tracking_token}}\n"
                      "button 2: {{order.id}}";
    assert_int_equal(parse("shipped.de.whatsapp", src, &t, &err), CS_OK);
    assert_non_null(t);
    assert_string_equal(t->file, "shipped.de.whatsapp");
    assert_string_equal(t->key, "shipped.de");
    assert_string_equal(t->name, "bestellung_versandt_2");
    assert_string_equal(t->language, "de");
    assert_int_equal(t->header.line, 5);
    assert_string_equal(t->header.src, "{{order.id}}");
    assert_int_equal(t->nbody, 2);
    assert_string_equal(t->body[0].src, "{{customer.first_name}}");
    assert_int_equal(t->body[1].line, 7);
    assert_string_equal(t->body[1].src, "Bestellung {{order.id}}");
    assert_int_equal(t->button[0].line, 8);
    assert_string_equal(t->button[0].src, "{{links.tracking_token}}");
    assert_int_equal(t->button[1].line, 0);
    assert_string_equal(t->button[2].src, "{{order.id}}");
    char name[64];
    cs_wa_param_name(t, &t->body[1], name, sizeof name);
    assert_string_equal(name, "shipped.de.whatsapp#7");
    cs_wa_tpl_free(&t);
    assert_null(t);
}

static void test_language_defaults_to_the_files(void **state)
{
    (void)state;
    cs_wa_tpl_t *t = NULL;
    cs_err_t err;
    assert_int_equal(parse("order_confirmation.en.whatsapp", "name: order_ok\n", &t, &err),
                     CS_OK);
    assert_string_equal(t->language, "en");
    assert_int_equal(t->nbody, 0);
    cs_wa_tpl_free(&t);
    assert_int_equal(parse("a.b.en.whatsapp", "name: x\nlanguage: en_US\n", &t, &err), CS_OK);
    assert_string_equal(t->key, "a.b.en");
    assert_string_equal(t->language, "en_US");
    cs_wa_tpl_free(&t);
    /* a file saved with a byte order mark and CRLF lines */
    assert_int_equal(parse("x.de.whatsapp", "\xEF\xBB\xBFname: x\r\nbody: {{a}}\r\n", &t, &err),
                     CS_OK);
    assert_string_equal(t->name, "x");
    assert_string_equal(t->body[0].src, "{{a}}");
    cs_wa_tpl_free(&t);
}

/* Each refusal: the rc, and the words its message must have (file:line,
 * the key, what was expected). */
static void refused(const char *file, const char *src, const char *want1, const char *want2)
{
    cs_wa_tpl_t *t = (cs_wa_tpl_t *)1;
    cs_err_t err;
    assert_int_equal(parse(file, src, &t, &err), CS_ERR_CONFIG);
    assert_null(t);
    if (!strstr(err.msg, want1) || (want2 && !strstr(err.msg, want2)))
        fail_msg("for %s: got \"%s\", wanted \"%s\" and \"%s\"", src, err.msg, want1,
                 want2 ? want2 : "");
}

static void test_errors_name_file_line_and_expectation(void **state)
{
    (void)state;
    refused("x.de.whatsapp", "language: de\n", "x.de.whatsapp: name: missing",
            "approved WhatsApp template's name");
    refused("x.de.whatsapp", "name: Bestellung-OK\n", "x.de.whatsapp:1: name: expected",
            "got \"Bestellung-OK\"");
    refused("x.de.whatsapp", "name: a\nname: b\n", "x.de.whatsapp:2: name: given twice",
            "first on line 1");
    refused("x.de.whatsapp", "name: a\nlanguage: deutsch\n", "x.de.whatsapp:2: language:",
            "such as de, en or en_US, got \"deutsch\"");
    refused("x.de.whatsapp", "name: a\nlanguage: en_us\n", "x.de.whatsapp:2: language:", NULL);
    refused("x.de.whatsapp", "name: a\n\n# c\nbody {{order.id}}\n",
            "x.de.whatsapp:4: expected 'key: value'", "got \"body {{order.id}}\"");
    refused("x.de.whatsapp", "name: a\nbdy: {{order.id}}\n", "x.de.whatsapp:2: unknown key \"bdy\"",
            "expected name, language, header, body or button");
    refused("x.de.whatsapp", "name: a\nbody:\n", "x.de.whatsapp:2: body: expected a value",
            "got nothing");
    refused("x.de.whatsapp", "name: a\nbody: {{#order}}x\n", "x.de.whatsapp:2: body:",
            "x.de.whatsapp#2");
    refused("x.de.whatsapp", "name: a\nheader: 1\nheader: 2\n",
            "x.de.whatsapp:3: header: given twice", "first on line 2");
    refused("x.de.whatsapp", "name: a\nbutton 10: x\n", "x.de.whatsapp:2: button 10: expected",
            "index N from 0 to 9");
    refused("x.de.whatsapp", "name: a\nbutton x: y\n", "x.de.whatsapp:2: button x: expected",
            NULL);
    refused("x.de.whatsapp", "name: a\nbutton: x\nbutton 0: y\n",
            "x.de.whatsapp:3: button 0: given twice", "first on line 2");
    refused("whatsapp.whatsapp", "name: a\n", "expected a file name TEMPLATE.LANG.whatsapp",
            NULL);
    refused("x.deutsch.whatsapp", "name: a\n", "x.deutsch.whatsapp: language: missing",
            "\"deutsch\" is no WhatsApp language code");
    /* one body parameter more than the limit */
    char src[2048];
    size_t len = (size_t)snprintf(src, sizeof src, "name: a\n");
    for (int i = 0; i <= CS_WA_BODY_MAX; i++)
        len += (size_t)snprintf(src + len, sizeof src - len, "body: {{order.id}}\n");
    char want[64];
    snprintf(want, sizeof want, "x.de.whatsapp:%d: body: at most %d", CS_WA_BODY_MAX + 2,
             CS_WA_BODY_MAX);
    refused("x.de.whatsapp", src, want, NULL);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_load_dir_and_render(void **state)
{
    (void)state;
    char dir[] = "/tmp/cs-wamap-XXXXXX";
    assert_non_null(mkdtemp(dir));
    write_file(dir, "shipped.de.txt", "Hallo {{customer.name}}");
    write_file(dir, "shipped.de.whatsapp", "name: versand\nbody: {{customer.name}}\n"
                                           "button: {{order.id}}\n");
    write_file(dir, "z.en.whatsapp", "name: z\n");
    write_file(dir, ".hidden.de.whatsapp", "not a mapping");
    cs_tplset_t *set = NULL;
    cs_wamap_t *map = NULL;
    cs_err_t err;
    size_t n = 0;
    assert_int_equal(cs_tplset_new(&set, &err), CS_OK);
    assert_int_equal(cs_wamap_load_dir(set, dir, &map, &n, &err), CS_OK);
    assert_int_equal(n, 2);
    const cs_wa_tpl_t *t = cs_wamap_get(map, "shipped", "de");
    assert_non_null(t);
    assert_string_equal(t->name, "versand");
    assert_null(cs_wamap_get(map, "shipped", "en"));
    assert_non_null(cs_wamap_get(map, "z", "en"));
    assert_null(cs_wamap_get(NULL, "z", "en"));
    /* the parameters are templates of the set, rendered with a context */
    json_t *ctx = json_pack("{s:{s:s},s:{s:s}}", "customer", "name", "Anna", "order", "id", "42");
    cs_buf_t b;
    cs_buf_init(&b, 1024);
    cs_tpl_opts_t to = { .escape = CS_TPL_ESCAPE_NONE, .strict = true };
    assert_int_equal(cs_tplset_render(set, "shipped.de.whatsapp#2", ctx, &to, &b, &err), CS_OK);
    assert_int_equal(cs_tplset_render(set, "shipped.de.whatsapp#3", ctx, &to, &b, &err), CS_OK);
    assert_string_equal(b.data, "Anna42");
    cs_buf_free(&b);
    json_decref(ctx);
    cs_wamap_free(&map);
    assert_null(map);
    /* a bad file stops the load, naming the folder, the file and the line */
    write_file(dir, "bad.de.whatsapp", "name: b\nbody {{x}}\n");
    assert_int_equal(cs_wamap_load_dir(set, dir, &map, &n, &err), CS_ERR_CONFIG);
    assert_null(map);
    assert_non_null(strstr(err.msg, dir));
    assert_non_null(strstr(err.msg, "bad.de.whatsapp:2: expected 'key: value'"));
    write_file(dir, "bad.de.whatsapp", "name: b\n");
    /* a link to a mapping that is gone is an error saying so */
    char link[512];
    snprintf(link, sizeof link, "%s/gone.de.whatsapp", dir);
    assert_int_equal(symlink("/nonexistent/cs-wamap-gone.de.whatsapp", link), 0);
    assert_int_equal(cs_wamap_load_dir(set, dir, &map, &n, &err), CS_ERR_IO);
    assert_null(map);
    assert_non_null(strstr(err.msg, "gone.de.whatsapp: cannot read the file this link points to: "));
    assert_non_null(strstr(err.msg, strerror(ENOENT)));
    unlink(link);
    /* a folder named like a mapping is passed over */
    snprintf(link, sizeof link, "%s/sub.de.whatsapp", dir);
    assert_int_equal(mkdir(link, 0700), 0);
    assert_int_equal(cs_wamap_load_dir(set, dir, &map, &n, &err), CS_OK);
    assert_int_equal(n, 3);
    cs_wamap_free(&map);
    rmdir(link);
    cs_tplset_free(set);
    const char *names[] = { "shipped.de.txt", "shipped.de.whatsapp", "z.en.whatsapp",
                            ".hidden.de.whatsapp", "bad.de.whatsapp" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_complete),
        cmocka_unit_test(test_language_defaults_to_the_files),
        cmocka_unit_test(test_errors_name_file_line_and_expectation),
        cmocka_unit_test(test_load_dir_and_render),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
