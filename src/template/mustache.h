/*
 * mustache.h -- Mustache templates: the official specification (interpolation,
 * sections, inverted sections, comments, partials, set delimiters) plus the
 * optional template inheritance (parents and blocks) and dynamic names.
 * Lambdas are not supported: the data is JSON.
 *
 * A template set holds named templates; partials and parents are looked up
 * in the same set. Templates are compiled when added (syntax errors name the
 * template, line and column), and rendering walks the compiled form.
 *
 * Values: strings print as they are, integers in decimal, reals in the
 * shortest form that reads back the same, true/false as words, null and
 * missing values as nothing (or an error in strict mode), arrays and objects
 * as compact JSON. Sections treat false, null, a missing value, an empty
 * list, "" and 0 as false (JavaScript's rule, which shop developers expect).
 *
 * Thread-safety: cs_tplset_render may run on several threads at once;
 * cs_tplset_add must not run concurrently with anything else on the set
 * (load a new set and swap instead).
 */
#ifndef CS_MUSTACHE_H
#define CS_MUSTACHE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "../lib/cs.h"

#define CS_TPL_SOURCE_MAX (1024 * 1024) /* bytes per template */
#define CS_TPL_OUTPUT_MAX (4 * 1024 * 1024)
#define CS_TPL_NEST_MAX 64              /* partials/parents/blocks expanded inside each other */
#define CS_TPL_DEPTH_MAX 256            /* context stack (nested sections) */

typedef struct cs_tplset cs_tplset_t;

typedef enum cs_tpl_escape {
    CS_TPL_ESCAPE_HTML = 0, /* {{x}} escapes & < > " ' (the HTML part of a message) */
    CS_TPL_ESCAPE_NONE = 1  /* plain-text parts and SMS: nothing is escaped */
} cs_tpl_escape_t;

typedef struct cs_tpl_opts {
    cs_tpl_escape_t escape;
    bool strict;       /* an interpolated name or a partial that is missing is an error */
    size_t max_output; /* 0 = CS_TPL_OUTPUT_MAX */
} cs_tpl_opts_t;

/* A new, empty set (owned by the caller; free with cs_tplset_free). On
 * failure *out is NULL and err (may be NULL) says what failed. */
cs_rc cs_tplset_new(cs_tplset_t **out, cs_err_t *err);
void cs_tplset_free(cs_tplset_t *set);

/* Compile `src` (len bytes, UTF-8, no NUL) and add it under `name`,
 * replacing a template of that name. On a syntax error nothing changes and
 * err names the template, line and column. */
cs_rc cs_tplset_add(cs_tplset_t *set, const char *name, const char *src, size_t len,
                    cs_err_t *err);
bool cs_tplset_has(const cs_tplset_t *set, const char *name);

/* Render template `name` with `data` (borrowed; any JSON value) and append
 * the result to `out`. opts may be NULL (HTML escaping, lenient). */
cs_rc cs_tplset_render(cs_tplset_t *set, const char *name, json_t *data,
                       const cs_tpl_opts_t *opts, cs_buf_t *out, cs_err_t *err);

/* Add every regular file of a folder (not starting with '.'), named by its
 * file name ("order_confirmation.de.html"). Stops at the first template
 * that does not compile, naming it. *count gets the number added. */
cs_rc cs_tplset_load_dir(cs_tplset_t *set, const char *dir, size_t *count, cs_err_t *err);

/* Read the file `name` of the templates folder `dir` whole into `buf` (the
 * caller's, at least CS_TPL_SOURCE_MAX + 1 bytes), its length in *len.
 * *regular is false, and nothing read, for an entry that is not a regular
 * file (a folder); a link is followed, and one whose file is gone is an
 * error saying so. Errors name the path; a file over CS_TPL_SOURCE_MAX is
 * CS_ERR_TOOBIG. */
cs_rc cs_tpl_read_file(const char *dir, const char *name, char *buf, size_t *len, bool *regular,
                       cs_err_t *err);

/* Check the syntax of a template without keeping it. */
cs_rc cs_tpl_check(const char *name, const char *src, size_t len, cs_err_t *err);

#endif /* CS_MUSTACHE_H */
