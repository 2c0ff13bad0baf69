/*
 * mustache_spec.c -- run the official Mustache specification's JSON test
 * files (comments, delimiters, interpolation, inverted, partials, sections,
 * ~inheritance, ~dynamic-names) against src/template.
 *
 *   mustache_spec DIR      exit 0 all pass, 1 a failure, 77 DIR is absent
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/mustache.h"

static void show(const char *label, const char *s)
{
    fprintf(stderr, "    %s: \"", label);
    for (; *s; s++) {
        if (*s == '\n')
            fputs("\\n", stderr);
        else if (*s == '\r')
            fputs("\\r", stderr);
        else
            fputc(*s, stderr);
    }
    fputs("\"\n", stderr);
}

static int run_file(const char *path, int *passed, int *failed)
{
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    if (!doc) {
        fprintf(stderr, "%s: %s (line %d)\n", path, jerr.text, jerr.line);
        return -1;
    }
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(doc, "tests"), i, t) {
        const char *name = json_string_value(json_object_get(t, "name"));
        const char *tmpl = json_string_value(json_object_get(t, "template"));
        const char *expected = json_string_value(json_object_get(t, "expected"));
        json_t *partials = json_object_get(t, "partials");
        cs_tplset_t *set = NULL;
        cs_err_t err;
        cs_buf_t out;
        cs_buf_init(&out, 1 << 20);
        cs_err_clear(&err);
        cs_rc rc = cs_tplset_new(&set, NULL);
        const char *pname;
        json_t *pv;
        json_object_foreach(partials, pname, pv) {
            if (!rc)
                rc = cs_tplset_add(set, pname, json_string_value(pv), json_string_length(pv),
                                   &err);
        }
        if (!rc)
            rc = cs_tplset_add(set, "<spec test>", tmpl, strlen(tmpl), &err);
        if (!rc)
            rc = cs_tplset_render(set, "<spec test>", json_object_get(t, "data"), NULL, &out,
                                  &err);
        const char *got = out.data ? out.data : "";
        if (!rc && strcmp(got, expected) == 0) {
            (*passed)++;
        } else {
            (*failed)++;
            fprintf(stderr, "FAIL %s: %s\n", strrchr(path, '/') + 1, name);
            show("template", tmpl);
            if (rc)
                fprintf(stderr, "    error: %s\n", err.msg);
            show("expected", expected);
            show("got     ", got);
        }
        cs_buf_free(&out);
        cs_tplset_free(set);
    }
    json_decref(doc);
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : NULL;
    struct dirent **names = NULL;
    int n = dir ? scandir(dir, &names, NULL, by_name) : -1;
    if (n < 0) {
        printf("SKIP: the Mustache specification is not at %s (it comes with ../shared)\n",
               dir ? dir : "(no folder given)");
        return 77;
    }
    int passed = 0, failed = 0, files = 0, bad = 0;
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        size_t l = strlen(nm);
        if (l > 5 && strcmp(nm + l - 5, ".json") == 0) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, nm);
            int before = failed;
            if (run_file(path, &passed, &failed) < 0)
                bad++;
            printf("%-22s %s\n", nm, failed == before ? "ok" : "FAILED");
            files++;
        }
        free(names[i]);
    }
    free(names);
    printf("mustache spec: %d files, %d tests passed, %d failed\n", files, passed, failed);
    if (files == 0) {
        printf("SKIP: no spec files in %s\n", dir);
        return 77;
    }
    return failed || bad ? 1 : 0;
}
