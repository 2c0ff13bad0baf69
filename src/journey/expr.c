/*
 * expr.c -- recursive-descent compiler to a node array, and a tree-walking
 * evaluator over jansson values.
 */
#include "expr.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum op {
    E_LIT,   /* lit */
    E_PATH,  /* path */
    E_LIST,  /* a .. a+n: element node indices in kids */
    E_NOT,
    E_AND,
    E_OR,
    E_EQ,
    E_NE,
    E_LT,
    E_LE,
    E_GT,
    E_GE,
    E_IN,
    E_NOTIN
} op_t;

typedef struct node {
    op_t op;
    int a, b;          /* operands (node indices), -1 = none */
    json_t *lit;       /* E_LIT, and E_LIST built at compile time when constant */
    char *path;        /* E_PATH */
    int *kids;         /* E_LIST elements */
    int nkids;
} node_t;

struct cs_expr {
    char *src;
    node_t *n;
    int count, cap;
    int root;
};

typedef struct parser {
    cs_expr_t *e;
    const char *s;
    size_t pos;
    cs_err_t *err;
    cs_rc rc;
    int depth;
} parser_t;

static int fail(parser_t *p, const char *what)
{
    if (!p->rc) {
        /* a long condition is quoted in part, so that what was expected
         * and where is not cut off the end of the message */
        const char *at = p->s + p->pos;
        bool cut = strlen(p->s) > 60;
        p->rc = cs_errf(p->err, CS_ERR_INVALID, "in condition '%.*s%s': %s at column %zu%s%.20s%s",
                        cut ? 50 : 60, p->s, cut ? "..." : "", what, p->pos + 1,
                        *at ? " near '" : " (end)", at, *at ? "'" : "");
    }
    return -1;
}

static int add(parser_t *p, op_t op, int a, int b)
{
    if (p->rc)
        return -1;
    cs_expr_t *e = p->e;
    if (e->count == e->cap) {
        int cap = e->cap ? e->cap * 2 : 16;
        node_t *n = cs_realloc(e->n, (size_t)cap * sizeof *n);
        if (!n) {
            p->rc = cs_errf(p->err, CS_ERR_NOMEM, "out of memory compiling a condition");
            return -1;
        }
        e->n = n;
        e->cap = cap;
    }
    node_t *k = &e->n[e->count];
    memset(k, 0, sizeof *k);
    k->op = op;
    k->a = a;
    k->b = b;
    return e->count++;
}

static void skip(parser_t *p)
{
    while (p->s[p->pos] && isspace((unsigned char)p->s[p->pos]))
        p->pos++;
}

/* Is the next token the word w (not a prefix of a longer identifier)? */
static bool word(parser_t *p, const char *w)
{
    skip(p);
    size_t n = strlen(w);
    const char *s = p->s + p->pos;
    if (strncmp(s, w, n) != 0)
        return false;
    char c = s[n];
    if (isalnum((unsigned char)c) || c == '_' || c == '.')
        return false;
    p->pos += n;
    return true;
}

static bool sym(parser_t *p, const char *w)
{
    skip(p);
    size_t n = strlen(w);
    if (strncmp(p->s + p->pos, w, n) != 0)
        return false;
    p->pos += n;
    return true;
}

static int parse_or(parser_t *p);

static int parse_string(parser_t *p)
{
    char q = p->s[p->pos++];
    cs_buf_t b;
    cs_buf_init(&b, CS_EXPR_MAX);
    while (p->s[p->pos] && p->s[p->pos] != q) {
        char c = p->s[p->pos++];
        if (c == '\\' && p->s[p->pos])
            c = p->s[p->pos++];
        if (cs_buf_append(&b, &c, 1)) {
            cs_buf_free(&b);
            return fail(p, "string too long");
        }
    }
    if (p->s[p->pos] != q) {
        cs_buf_free(&b);
        return fail(p, "unterminated string");
    }
    p->pos++;
    int k = add(p, E_LIT, -1, -1);
    if (k >= 0)
        p->e->n[k].lit = json_stringn(b.data ? b.data : "", b.len);
    cs_buf_free(&b);
    if (k >= 0 && !p->e->n[k].lit)
        return fail(p, "a string that is not UTF-8");
    return k;
}

static int parse_primary(parser_t *p)
{
    if (++p->depth > 64)
        return fail(p, "condition nested too deeply");
    skip(p);
    const char *s = p->s + p->pos;
    int k = -1;
    if (*s == '(') {
        p->pos++;
        k = parse_or(p);
        if (k >= 0 && !sym(p, ")"))
            k = fail(p, "expected ')'");
    } else if (*s == '\'' || *s == '"') {
        k = parse_string(p);
    } else if (*s == '[') {
        p->pos++;
        int items[64], n = 0;
        skip(p);
        if (!sym(p, "]")) {
            do {
                if (n == 64)
                    return fail(p, "a list has at most 64 elements");
                int it = parse_primary(p);
                if (it < 0)
                    return -1;
                items[n++] = it;
            } while (sym(p, ","));
            if (!sym(p, "]"))
                return fail(p, "expected ',' or ']' in a list");
        }
        k = add(p, E_LIST, -1, -1);
        if (k >= 0) {
            p->e->n[k].kids = cs_calloc(n ? (size_t)n : 1, sizeof(int));
            if (!p->e->n[k].kids)
                return fail(p, "out of memory");
            memcpy(p->e->n[k].kids, items, (size_t)n * sizeof(int));
            p->e->n[k].nkids = n;
        }
    } else if (isdigit((unsigned char)*s) || (*s == '-' && isdigit((unsigned char)s[1]))) {
        double d;
        size_t len = cs_parse_number(s, &d);
        const char *end = s + len;
        /* 0x1F, 1e999, 12abc: not a number as written here */
        if (!len || isalnum((unsigned char)*end) || *end == '_' || *end == '.')
            return fail(p, "expected a decimal number like 12 or 9.90");
        bool integral = true;
        for (const char *c = s; c < end; c++)
            if (*c == '.' || *c == 'e' || *c == 'E')
                integral = false;
        k = add(p, E_LIT, -1, -1);
        if (k >= 0) {
            p->e->n[k].lit = integral && fabs(d) < 9e15 ? json_integer((json_int_t)d) : json_real(d);
            p->pos += (size_t)(end - s);
        }
    } else if (word(p, "true") || word(p, "false") || word(p, "null")) {
        char c = s[0];
        k = add(p, E_LIT, -1, -1);
        if (k >= 0)
            p->e->n[k].lit = c == 't' ? json_true() : c == 'f' ? json_false() : json_null();
    } else if (isalpha((unsigned char)*s) || *s == '_') {
        size_t n = 0;
        while (isalnum((unsigned char)s[n]) || s[n] == '_' || s[n] == '.')
            n++;
        for (size_t j = 0; j + 1 < n; j++)
            if (s[j] == '.' && s[j + 1] == '.')
                return fail(p, "a path cannot contain '..'");
        if (s[n - 1] == '.')
            return fail(p, "a path cannot end with '.'");
        k = add(p, E_PATH, -1, -1);
        if (k >= 0) {
            if (!(p->e->n[k].path = cs_strndup(s, n)))
                return fail(p, "out of memory");
            p->pos += n;
        }
    } else {
        k = fail(p, *s ? "expected a value (a path, number, 'string', true, false, null or [list])"
                       : "expected a value");
    }
    p->depth--;
    return k;
}

static int parse_cmp(parser_t *p)
{
    int a = parse_primary(p);
    if (a < 0)
        return -1;
    static const struct { const char *s; op_t op; } ops[] = {
        { "==", E_EQ }, { "!=", E_NE }, { "<=", E_LE }, { ">=", E_GE }, { "<", E_LT }, { ">", E_GT },
    };
    for (size_t i = 0; i < CS_ARRAY_LEN(ops); i++)
        if (sym(p, ops[i].s)) {
            int b = parse_primary(p);
            return b < 0 ? -1 : add(p, ops[i].op, a, b);
        }
    size_t save = p->pos;
    if (word(p, "in")) {
        int b = parse_primary(p);
        return b < 0 ? -1 : add(p, E_IN, a, b);
    }
    if (word(p, "not") && word(p, "in")) {
        int b = parse_primary(p);
        return b < 0 ? -1 : add(p, E_NOTIN, a, b);
    }
    p->pos = save;
    return a;
}

static int parse_not(parser_t *p)
{
    if (word(p, "not")) {
        if (++p->depth > 64)
            return fail(p, "condition nested too deeply");
        int a = parse_not(p);
        p->depth--;
        return a < 0 ? -1 : add(p, E_NOT, a, -1);
    }
    return parse_cmp(p);
}

static int parse_and(parser_t *p)
{
    int a = parse_not(p);
    while (a >= 0 && word(p, "and")) {
        int b = parse_not(p);
        a = b < 0 ? -1 : add(p, E_AND, a, b);
    }
    return a;
}

static int parse_or(parser_t *p)
{
    int a = parse_and(p);
    while (a >= 0 && word(p, "or")) {
        int b = parse_and(p);
        a = b < 0 ? -1 : add(p, E_OR, a, b);
    }
    return a;
}

void cs_expr_free(cs_expr_t *e)
{
    if (!e)
        return;
    for (int i = 0; i < e->count; i++) {
        json_decref(e->n[i].lit);
        cs_free(e->n[i].path);
        cs_free(e->n[i].kids);
    }
    cs_free(e->n);
    cs_free(e->src);
    cs_free(e);
}

cs_rc cs_expr_compile(const char *src, cs_expr_t **out, cs_err_t *err)
{
    *out = NULL;
    if (!src || !*src)
        return cs_errf(err, CS_ERR_INVALID, "empty condition");
    if (strlen(src) > CS_EXPR_MAX)
        return cs_errf(err, CS_ERR_TOOBIG, "condition longer than %d bytes", CS_EXPR_MAX);
    cs_expr_t *e = cs_calloc(1, sizeof *e);
    if (!e || !(e->src = cs_strdup(src))) {
        cs_free(e);
        return cs_errf(err, CS_ERR_NOMEM, "out of memory compiling a condition");
    }
    parser_t p = { e, e->src, 0, err, CS_OK, 0 };
    e->root = parse_or(&p);
    skip(&p);
    if (!p.rc && p.s[p.pos])
        fail(&p, "unexpected text (an operator like ==, and, or, in was expected)");
    if (p.rc || e->root < 0) {
        cs_rc rc = p.rc ? p.rc : CS_ERR_INVALID;
        cs_expr_free(e);
        return rc;
    }
    *out = e;
    return CS_OK;
}

const char *cs_expr_source(const cs_expr_t *e) { return e->src; }

/* ---- evaluation ---- */

bool cs_json_truthy(json_t *v)
{
    if (!v)
        return false;
    switch (json_typeof(v)) {
    case JSON_NULL:
    case JSON_FALSE: return false;
    case JSON_TRUE: return true;
    case JSON_INTEGER: return json_integer_value(v) != 0;
    case JSON_REAL: return json_real_value(v) != 0.0 && !isnan(json_real_value(v));
    case JSON_STRING: return json_string_length(v) > 0;
    case JSON_ARRAY: return json_array_size(v) > 0;
    default: return true;
    }
}

json_t *cs_json_path(json_t *v, const char *path)
{
    const char *p = path;
    while (v && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (json_is_object(v)) {
            v = json_object_getn(v, p, n);
        } else if (json_is_array(v) && n > 0 && n < 10 && strspn(p, "0123456789") >= n) {
            v = json_array_get(v, (size_t)strtoul(p, NULL, 10));
        } else {
            v = NULL;
        }
        p += n + (dot ? 1 : 0);
    }
    return v;
}

static bool is_num(json_t *v) { return json_is_integer(v) || json_is_real(v); }
static double num(json_t *v)
{
    return json_is_integer(v) ? (double)json_integer_value(v) : json_real_value(v);
}

/* <0, 0, >0, or 2 when not comparable */
static int compare(json_t *a, json_t *b)
{
    if (is_num(a) && is_num(b)) {
        if (json_is_integer(a) && json_is_integer(b)) {
            json_int_t x = json_integer_value(a), y = json_integer_value(b);
            return x < y ? -1 : x > y;
        }
        double x = num(a), y = num(b);
        return x < y ? -1 : x > y ? 1 : x == y ? 0 : 2;
    }
    if (json_is_string(a) && json_is_string(b)) {
        size_t la = json_string_length(a), lb = json_string_length(b);
        int c = memcmp(json_string_value(a), json_string_value(b), la < lb ? la : lb);
        return c ? (c < 0 ? -1 : 1) : la < lb ? -1 : la > lb;
    }
    return 2;
}

static bool equal(json_t *a, json_t *b)
{
    if (!a)
        a = json_null();
    if (!b)
        b = json_null();
    if (is_num(a) && is_num(b))
        return compare(a, b) == 0;
    return json_equal(a, b);
}

static json_t *eval(const cs_expr_t *e, int i, json_t *ctx);

static bool contains(json_t *hay, json_t *needle)
{
    if (json_is_array(hay)) {
        size_t k;
        json_t *x;
        json_array_foreach(hay, k, x) {
            if (equal(x, needle))
                return true;
        }
        return false;
    }
    if (json_is_string(hay) && json_is_string(needle))
        return memmem(json_string_value(hay), json_string_length(hay), json_string_value(needle),
                      json_string_length(needle)) != NULL;
    return false;
}

static json_t *boolean(bool b) { return b ? json_true() : json_false(); }

static json_t *eval(const cs_expr_t *e, int i, json_t *ctx)
{
    const node_t *k = &e->n[i];
    json_t *a, *b, *r;
    switch (k->op) {
    case E_LIT: return json_incref(k->lit);
    case E_PATH: {
        json_t *v = cs_json_path(ctx, k->path);
        return v ? json_incref(v) : json_null();
    }
    case E_LIST:
        r = json_array();
        for (int j = 0; r && j < k->nkids; j++)
            json_array_append_new(r, eval(e, k->kids[j], ctx));
        return r;
    case E_NOT:
        a = eval(e, k->a, ctx);
        r = boolean(!cs_json_truthy(a));
        json_decref(a);
        return r;
    case E_AND:
    case E_OR: {
        a = eval(e, k->a, ctx);
        bool t = cs_json_truthy(a);
        json_decref(a);
        if (k->op == E_AND ? !t : t)
            return boolean(t);
        b = eval(e, k->b, ctx);
        t = cs_json_truthy(b);
        json_decref(b);
        return boolean(t);
    }
    default: break;
    }
    a = eval(e, k->a, ctx);
    b = eval(e, k->b, ctx);
    bool res = false;
    int c;
    switch (k->op) {
    case E_EQ: res = equal(a, b); break;
    case E_NE: res = !equal(a, b); break;
    case E_LT: res = (c = compare(a, b)) != 2 && c < 0; break;
    case E_LE: res = (c = compare(a, b)) != 2 && c <= 0; break;
    case E_GT: res = (c = compare(a, b)) != 2 && c > 0; break;
    case E_GE: res = (c = compare(a, b)) != 2 && c >= 0; break;
    case E_IN: res = contains(b, a); break;
    case E_NOTIN: res = !contains(b, a); break;
    default: break;
    }
    json_decref(a);
    json_decref(b);
    return boolean(res);
}

json_t *cs_expr_eval(const cs_expr_t *e, json_t *ctx) { return eval(e, e->root, ctx); }

bool cs_expr_test(const cs_expr_t *e, json_t *ctx)
{
    json_t *v = eval(e, e->root, ctx);
    bool t = cs_json_truthy(v);
    json_decref(v);
    return t;
}

void cs_expr_paths(const cs_expr_t *e, bool (*fn)(const char *path, void *ud), void *ud)
{
    for (int i = 0; i < e->count; i++)
        if (e->n[i].op == E_PATH && !fn(e->n[i].path, ud))
            return;
}
