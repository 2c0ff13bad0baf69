/*
 * mustache.c -- Mustache compiler and renderer (see mustache.h).
 *
 * Compiling is three passes over one template text:
 *   1. scan: split the text into tokens (text runs that end at a newline,
 *      and tags), following set-delimiter tags as they come;
 *   2. match: pair every section, inverted section, parent and block with
 *      its closing tag (errors for strays and unclosed ones);
 *   3. standalone: a line holding only whitespace and one non-printing tag
 *      (or a parent/block pair, see the inheritance spec) is removed; its
 *      indentation is kept for partials, parents and blocks.
 * Rendering walks the tokens. Partials, parents and blocks expand template
 * *text* (indented or re-indented as the specification asks), compiled once
 * and kept in the set's cache keyed by text and delimiters.
 */
#include "mustache.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/cs_json.h"
#include "../lib/cs_map.h"

#define DELIM_MAX 16

typedef enum tkind {
    T_TEXT,
    T_VAR,      /* {{name}} */
    T_RAW,      /* {{{name}}} {{&name}} */
    T_SECTION,  /* {{#name}} */
    T_INVERTED, /* {{^name}} */
    T_CLOSE,    /* {{/name}} */
    T_COMMENT,  /* {{! ... }} */
    T_PARTIAL,  /* {{>name}} {{>*name}} */
    T_DELIM,    /* {{=<% %>=}} */
    T_PARENT,   /* {{<name}} {{<*name}} */
    T_BLOCK     /* {{$name}} */
} tkind_t;

typedef struct delims {
    char od[DELIM_MAX + 1], cd[DELIM_MAX + 1];
    size_t odl, cdl;
} delims_t;

typedef struct tok {
    uint8_t kind;
    bool dynamic;      /* partial/parent name is looked up in the data */
    bool standalone;   /* its line was removed */
    uint16_t d;        /* delimiters in force at this token (index into tpl->delims) */
    uint32_t start, end;       /* span in src; for text, trimmed by the standalone pass */
    uint32_t name, name_len;   /* tag content, trimmed */
    uint32_t ind, ind_len;     /* whitespace before a standalone tag */
    uint32_t body, body_len;   /* sections/blocks/parents: source between the tags */
    uint32_t match;            /* opening tags: index of the closing tag */
    uint32_t ls, le;           /* standalone: start of its line, end of what was removed */
    uint32_t line, col;
} tok_t;

typedef struct tpl {
    char *name;        /* for messages */
    char *src;
    size_t len;
    tok_t *toks;
    size_t n, cap;
    delims_t *delims;
    size_t nd;
} tpl_t;

typedef struct entry {
    tpl_t *tpl;
} entry_t;

struct cs_tplset {
    cs_map_t named;      /* name -> tpl_t* (default delimiters) */
    cs_map_t cache;      /* delims + text -> tpl_t* (expanded partials and blocks) */
    pthread_mutex_t mu;  /* guards cache */
};

/* ---- small helpers ---- */

static bool is_ws(char c) { return c == ' ' || c == '\t'; }
static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static void tpl_free(tpl_t *t)
{
    if (!t)
        return;
    cs_free(t->name);
    cs_free(t->src);
    cs_free(t->toks);
    cs_free(t->delims);
    cs_free(t);
}

static void line_col(const char *src, size_t pos, uint32_t *line, uint32_t *col)
{
    uint32_t l = 1, c = 1;
    for (size_t i = 0; i < pos; i++) {
        if (src[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = l;
    *col = c;
}

static cs_rc syntax(cs_err_t *err, const tpl_t *t, size_t pos, const char *what, const char *tag,
                    size_t tag_len)
{
    uint32_t line, col;
    line_col(t->src, pos, &line, &col);
    if (tag)
        return cs_errf(err, CS_ERR_INVALID, "template '%s' line %u, column %u: %s '%.*s'", t->name,
                       line, col, what, (int)(tag_len > 60 ? 60 : tag_len), tag);
    return cs_errf(err, CS_ERR_INVALID, "template '%s' line %u, column %u: %s", t->name, line, col,
                   what);
}

static tok_t *push_tok(tpl_t *t)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 32;
        tok_t *p = cs_realloc(t->toks, cap * sizeof *p);
        if (!p)
            return NULL;
        t->toks = p;
        t->cap = cap;
    }
    tok_t *k = &t->toks[t->n++];
    memset(k, 0, sizeof *k);
    k->d = (uint16_t)(t->nd - 1);
    return k;
}

static cs_rc push_delims(tpl_t *t, const char *od, size_t odl, const char *cd, size_t cdl)
{
    if (t->nd >= UINT16_MAX)
        return CS_ERR_TOOBIG;
    delims_t *p = cs_realloc(t->delims, (t->nd + 1) * sizeof *p);
    if (!p)
        return CS_ERR_NOMEM;
    t->delims = p;
    delims_t *d = &p[t->nd++];
    memcpy(d->od, od, odl);
    d->od[odl] = '\0';
    d->odl = odl;
    memcpy(d->cd, cd, cdl);
    d->cd[cdl] = '\0';
    d->cdl = cdl;
    return CS_OK;
}

static const char *find(const char *hay, size_t hay_len, size_t from, const char *needle,
                        size_t nlen)
{
    if (nlen == 0 || from > hay_len || hay_len - from < nlen)
        return NULL;
    const char *p = hay + from, *end = hay + hay_len - nlen + 1;
    while (p < end) {
        p = memchr(p, needle[0], (size_t)(end - p));
        if (!p)
            return NULL;
        if (memcmp(p, needle, nlen) == 0)
            return p;
        p++;
    }
    return NULL;
}

/* ---- pass 1: scan ---- */

static cs_rc add_text(tpl_t *t, size_t from, size_t to)
{
    while (from < to) {
        const char *nl = memchr(t->src + from, '\n', to - from);
        size_t stop = nl ? (size_t)(nl - t->src) + 1 : to;
        tok_t *k = push_tok(t);
        if (!k)
            return CS_ERR_NOMEM;
        k->kind = T_TEXT;
        k->start = (uint32_t)from;
        k->end = (uint32_t)stop;
        from = stop;
    }
    return CS_OK;
}

static cs_rc set_delims(tpl_t *t, size_t a, size_t b, size_t tag_pos, cs_err_t *err)
{
    /* content between "=" and "=": two whitespace-separated delimiters */
    const char *s = t->src;
    while (a < b && is_space(s[a]))
        a++;
    while (b > a && is_space(s[b - 1]))
        b--;
    size_t o1 = a;
    while (a < b && !is_space(s[a]))
        a++;
    size_t o2 = a;
    while (a < b && is_space(s[a]))
        a++;
    size_t c1 = a;
    while (a < b && !is_space(s[a]))
        a++;
    size_t c2 = a;
    if (o2 == o1 || c2 == c1 || a != b || o2 - o1 > DELIM_MAX || c2 - c1 > DELIM_MAX ||
        memchr(s + o1, '=', o2 - o1) || memchr(s + c1, '=', c2 - c1))
        return syntax(err, t, tag_pos,
                      "a set-delimiter tag needs two delimiters without spaces or '=', at most 16 "
                      "bytes each, as in {{=<% %>=}}",
                      NULL, 0);
    cs_rc rc = push_delims(t, s + o1, o2 - o1, s + c1, c2 - c1);
    return rc ? cs_errf(err, rc, "out of memory compiling template '%s'", t->name) : CS_OK;
}

static cs_rc scan(tpl_t *t, cs_err_t *err)
{
    const char *s = t->src;
    size_t pos = 0;
    while (pos < t->len) {
        const delims_t *d = &t->delims[t->nd - 1];
        const char *open = find(s, t->len, pos, d->od, d->odl);
        size_t tag = open ? (size_t)(open - s) : t->len;
        if (add_text(t, pos, tag))
            return cs_errf(err, CS_ERR_NOMEM, "out of memory compiling template '%s'", t->name);
        if (!open)
            break;
        size_t c = tag + d->odl; /* content start */
        tkind_t kind = T_VAR;
        const char *close_seq = d->cd;
        size_t close_len = d->cdl;
        char triple[DELIM_MAX + 2];
        if (c < t->len) {
            switch (s[c]) {
            case '#': kind = T_SECTION; c++; break;
            case '^': kind = T_INVERTED; c++; break;
            case '/': kind = T_CLOSE; c++; break;
            case '!': kind = T_COMMENT; c++; break;
            case '>': kind = T_PARTIAL; c++; break;
            case '<': kind = T_PARENT; c++; break;
            case '$': kind = T_BLOCK; c++; break;
            case '&': kind = T_RAW; c++; break;
            case '=':
                kind = T_DELIM;
                c++;
                triple[0] = '=';
                memcpy(triple + 1, d->cd, d->cdl);
                close_seq = triple;
                close_len = d->cdl + 1;
                break;
            case '{':
                kind = T_RAW;
                c++;
                triple[0] = '}';
                memcpy(triple + 1, d->cd, d->cdl);
                close_seq = triple;
                close_len = d->cdl + 1;
                break;
            default: break;
            }
        }
        const char *cl = find(s, t->len, c, close_seq, close_len);
        if (!cl)
            return syntax(err, t, tag, "unclosed tag", s + tag,
                          t->len - tag > 20 ? 20 : t->len - tag);
        size_t a = c, b = (size_t)(cl - s), end = b + close_len;
        if (kind == T_DELIM) {
            cs_rc rc = set_delims(t, a, b, tag, err);
            if (rc)
                return rc;
        }
        tok_t *k = push_tok(t);
        if (!k)
            return cs_errf(err, CS_ERR_NOMEM, "out of memory compiling template '%s'", t->name);
        if (kind == T_DELIM)
            k->d = (uint16_t)(t->nd - 2); /* the tag itself was read with the old ones */
        k->kind = (uint8_t)kind;
        k->start = (uint32_t)tag;
        k->end = (uint32_t)end;
        if (kind != T_COMMENT && kind != T_DELIM) {
            while (a < b && is_space(s[a]))
                a++;
            while (b > a && is_space(s[b - 1]))
                b--;
            if ((kind == T_PARTIAL || kind == T_PARENT || kind == T_CLOSE) && a < b &&
                s[a] == '*') {
                k->dynamic = true;
                a++;
                while (a < b && is_space(s[a]))
                    a++;
            }
            if (a == b)
                return syntax(err, t, tag, "empty tag", s + tag, end - tag);
            for (size_t i = a; i < b; i++)
                if (is_space(s[i]))
                    return syntax(err, t, tag, "a name cannot contain spaces in tag", s + tag,
                                  end - tag);
            k->name = (uint32_t)a;
            k->name_len = (uint32_t)(b - a);
        }
        pos = end;
    }
    return CS_OK;
}

/* ---- pass 2: match opening and closing tags ---- */

static bool opens(uint8_t kind)
{
    return kind == T_SECTION || kind == T_INVERTED || kind == T_PARENT || kind == T_BLOCK;
}

static cs_rc match(tpl_t *t, cs_err_t *err)
{
    uint32_t stack[CS_TPL_DEPTH_MAX];
    size_t depth = 0;
    for (size_t i = 0; i < t->n; i++) {
        tok_t *k = &t->toks[i];
        if (opens(k->kind)) {
            if (depth == CS_TPL_DEPTH_MAX)
                return syntax(err, t, k->start, "sections nested too deeply at", t->src + k->start,
                              k->end - k->start);
            stack[depth++] = (uint32_t)i;
        } else if (k->kind == T_CLOSE) {
            if (depth == 0)
                return syntax(err, t, k->start, "closing tag without an opening one:",
                              t->src + k->start, k->end - k->start);
            tok_t *o = &t->toks[stack[depth - 1]];
            if (o->name_len != k->name_len ||
                memcmp(t->src + o->name, t->src + k->name, k->name_len) != 0 ||
                o->dynamic != k->dynamic) {
                char msg[160];
                snprintf(msg, sizeof msg, "'%.*s' closes '%.*s', which is still open; found",
                         (int)(k->name_len > 40 ? 40 : k->name_len), t->src + k->name,
                         (int)(o->name_len > 40 ? 40 : o->name_len), t->src + o->name);
                return syntax(err, t, k->start, msg, t->src + k->start, k->end - k->start);
            }
            o->match = (uint32_t)i;
            depth--;
        }
    }
    if (depth > 0) {
        tok_t *o = &t->toks[stack[depth - 1]];
        return syntax(err, t, o->start, "section is never closed:", t->src + o->start,
                      o->end - o->start);
    }
    return CS_OK;
}

/* ---- pass 3: standalone lines ---- */

static bool can_stand_alone(uint8_t kind)
{
    return kind != T_TEXT && kind != T_VAR && kind != T_RAW;
}

/* Index of the opening tag that token `close` closes. */
static size_t opener_of(const tpl_t *t, size_t close)
{
    for (size_t i = close; i-- > 0;)
        if (opens(t->toks[i].kind) && t->toks[i].match == close)
            return i;
    return SIZE_MAX;
}

/* Is the text token whitespace, optionally ending in a newline? */
static bool blank_text(const tpl_t *t, const tok_t *k)
{
    for (uint32_t i = k->start; i < k->end; i++) {
        char c = t->src[i];
        if (c == '\n' || (c == '\r' && i + 1 < k->end && t->src[i + 1] == '\n'))
            continue;
        if (!is_ws(c))
            return false;
    }
    return true;
}

static void standalone(tpl_t *t)
{
    size_t i = 0;
    while (i < t->n) {
        /* one line: tokens [i, j) where j-1 is the text ending in a newline */
        size_t j = i;
        while (j < t->n) {
            const tok_t *k = &t->toks[j++];
            if (k->kind == T_TEXT && k->end > k->start && t->src[k->end - 1] == '\n')
                break;
        }
        size_t tags[3], ntags = 0;
        bool ok = true;
        for (size_t x = i; x < j && ok; x++) {
            const tok_t *k = &t->toks[x];
            if (k->kind == T_TEXT) {
                ok = blank_text(t, k);
            } else if (!can_stand_alone(k->kind) || ntags == 2) {
                ok = false;
            } else {
                tags[ntags++] = x;
            }
        }
        bool keep_newline = false;
        if (ok && ntags == 2) {
            /* the inheritance spec's pairs: {{<p}}{{/p}}, {{$b}}{{/b}},
             * {{<p}}{{$b}} and {{/b}}{{/p}}, side by side */
            const tok_t *a = &t->toks[tags[0]], *b = &t->toks[tags[1]];
            ok = tags[1] == tags[0] + 1;
            if (ok) {
                if ((a->kind == T_PARENT || a->kind == T_BLOCK) && a->match == tags[1]) {
                    keep_newline = a->kind == T_BLOCK;
                } else if (a->kind == T_PARENT && b->kind == T_BLOCK) {
                    ok = true;
                } else if (a->kind == T_CLOSE && b->kind == T_CLOSE) {
                    size_t oa = opener_of(t, tags[0]), ob = opener_of(t, tags[1]);
                    ok = oa != SIZE_MAX && ob != SIZE_MAX && t->toks[oa].kind == T_BLOCK &&
                         t->toks[ob].kind == T_PARENT;
                } else {
                    ok = false;
                }
            }
        }
        if (ok && ntags > 0) {
            tok_t *first = &t->toks[tags[0]];
            uint32_t line_start = t->toks[i].start, line_end = t->toks[j - 1].end;
            for (size_t x = i; x < j; x++) {
                tok_t *k = &t->toks[x];
                if (k->kind != T_TEXT)
                    continue;
                if (x < tags[0]) {
                    first->ind = k->start;
                    first->ind_len = k->end - k->start;
                    k->end = k->start; /* the indentation goes */
                } else if (keep_newline) {
                    uint32_t s = k->start;
                    while (s < k->end && is_ws(t->src[s]))
                        s++;
                    k->start = s; /* trailing blanks go, the newline stays */
                } else {
                    k->end = k->start; /* blanks and newline go */
                }
            }
            uint32_t ls = line_start, le = line_end;
            for (size_t x = 0; x < ntags; x++) {
                tok_t *k = &t->toks[tags[x]];
                k->standalone = true;
                k->ls = ls;
                k->le = keep_newline ? k->end : le;
            }
        }
        i = j;
    }
}

/* Source between an opening tag and its closing tag, without the lines that
 * standalone tags removed at either edge. */
static void bodies(tpl_t *t)
{
    for (size_t i = 0; i < t->n; i++) {
        tok_t *o = &t->toks[i];
        if (!opens(o->kind))
            continue;
        const tok_t *c = &t->toks[o->match];
        uint32_t a = o->standalone ? o->le : o->end;
        uint32_t b = c->standalone ? c->ls : c->start;
        if (a > c->start)
            a = c->start;
        if (b < a)
            b = a;
        o->body = a;
        o->body_len = b - a;
    }
}

static void positions(tpl_t *t)
{
    uint32_t line = 1, col = 1;
    size_t p = 0;
    for (size_t i = 0; i < t->n; i++) {
        tok_t *k = &t->toks[i];
        for (; p < k->start; p++) {
            if (t->src[p] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        k->line = line;
        k->col = col;
    }
}

static cs_rc compile(const char *name, const char *src, size_t len, const delims_t *d,
                     tpl_t **out, cs_err_t *err)
{
    *out = NULL;
    if (len > CS_TPL_SOURCE_MAX)
        return cs_errf(err, CS_ERR_TOOBIG, "template '%s' is %zu bytes; at most %d are allowed",
                       name, len, CS_TPL_SOURCE_MAX);
    if (memchr(src, '\0', len))
        return cs_errf(err, CS_ERR_INVALID, "template '%s' contains a NUL byte", name);
    tpl_t *t = cs_calloc(1, sizeof *t);
    cs_rc rc = CS_OK;
    if (!t || !(t->name = cs_strdup(name)) || !(t->src = cs_malloc(len + 1))) {
        rc = cs_errf(err, CS_ERR_NOMEM, "out of memory compiling template '%s'", name);
        goto out;
    }
    memcpy(t->src, src, len);
    t->src[len] = '\0';
    t->len = len;
    if (d)
        rc = push_delims(t, d->od, d->odl, d->cd, d->cdl);
    else
        rc = push_delims(t, "{{", 2, "}}", 2);
    if (rc) {
        rc = cs_errf(err, rc, "out of memory compiling template '%s'", name);
        goto out;
    }
    if ((rc = scan(t, err)) || (rc = match(t, err)))
        goto out;
    standalone(t);
    bodies(t);
    positions(t);
    *out = t;
    t = NULL;
out:
    tpl_free(t);
    return rc;
}

/* ---- text transformations for partials and blocks (owned results) ---- */

static bool blank_line(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_space(p[i]))
            return false;
    return true;
}

/* Prefix every line that is not blank with `ind`. */
static cs_rc indent(const char *s, size_t n, const char *ind, size_t ind_len, cs_buf_t *out)
{
    size_t p = 0;
    cs_rc rc = CS_OK;
    while (p < n && !rc) {
        const char *nl = memchr(s + p, '\n', n - p);
        size_t e = nl ? (size_t)(nl - s) + 1 : n;
        if (!blank_line(s + p, e - p))
            rc = cs_buf_append(out, ind, ind_len);
        if (!rc)
            rc = cs_buf_append(out, s + p, e - p);
        p = e;
    }
    if (!rc && !out->data)
        rc = cs_buf_append(out, "", 0);
    return rc;
}

/* Remove the whitespace prefix common to all lines that are not blank (and
 * blank lines' whitespace), like Python's textwrap.dedent. The removed
 * margin is returned through margin/margin_len (a span of `s`). */
static cs_rc dedent(const char *s, size_t n, cs_buf_t *out, size_t *margin_at, size_t *margin_len)
{
    size_t p = 0, m_at = 0, m_len = 0;
    bool have = false;
    while (p < n) {
        const char *nl = memchr(s + p, '\n', n - p);
        size_t e = nl ? (size_t)(nl - s) + 1 : n;
        if (!blank_line(s + p, e - p)) {
            size_t w = 0;
            while (p + w < e && is_ws(s[p + w]))
                w++;
            if (!have) {
                m_at = p;
                m_len = w;
                have = true;
            } else {
                size_t k = 0;
                while (k < m_len && k < w && s[m_at + k] == s[p + k])
                    k++;
                m_len = k;
            }
        }
        p = e;
    }
    *margin_at = m_at;
    *margin_len = m_len;
    cs_rc rc = CS_OK;
    p = 0;
    while (p < n && !rc) {
        const char *nl = memchr(s + p, '\n', n - p);
        size_t e = nl ? (size_t)(nl - s) + 1 : n;
        if (blank_line(s + p, e - p))
            rc = nl ? cs_buf_append(out, "\n", 1) : CS_OK;
        else
            rc = cs_buf_append(out, s + p + m_len, e - p - m_len);
        p = e;
    }
    if (!rc && !out->data)
        rc = cs_buf_append(out, "", 0);
    return rc;
}

/* ---- the set ---- */

cs_rc cs_tplset_new(cs_tplset_t **out, cs_err_t *err)
{
    cs_tplset_t *s = cs_calloc(1, sizeof *s);
    *out = NULL;
    if (!s)
        return cs_errf(err, CS_ERR_NOMEM, "templates: out of memory making the template set");
    cs_map_init(&s->named);
    cs_map_init(&s->cache);
    pthread_mutex_init(&s->mu, NULL);
    *out = s;
    return CS_OK;
}

static void free_values(cs_map_t *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (cs_map_key_at(m, i))
            tpl_free(m->vals[i]);
    cs_map_free(m);
}

void cs_tplset_free(cs_tplset_t *set)
{
    if (!set)
        return;
    free_values(&set->named);
    free_values(&set->cache);
    pthread_mutex_destroy(&set->mu);
    cs_free(set);
}

cs_rc cs_tplset_add(cs_tplset_t *set, const char *name, const char *src, size_t len,
                    cs_err_t *err)
{
    tpl_t *t;
    cs_rc rc = compile(name, src, len, NULL, &t, err);
    if (rc)
        return rc;
    tpl_t *old = cs_map_get(&set->named, name);
    if ((rc = cs_map_put(&set->named, name, t))) {
        tpl_free(t);
        return cs_errf(err, rc, "out of memory adding template '%s'", name);
    }
    tpl_free(old);
    return CS_OK;
}

bool cs_tplset_has(const cs_tplset_t *set, const char *name)
{
    return cs_map_get(&set->named, name) != NULL;
}

cs_rc cs_tpl_check(const char *name, const char *src, size_t len, cs_err_t *err)
{
    tpl_t *t;
    cs_rc rc = compile(name, src, len, NULL, &t, err);
    tpl_free(t);
    return rc;
}

/* The compiled form of an expanded text, from the cache or compiled now. */
static cs_rc cached(cs_tplset_t *set, const char *name, const char *text, size_t len,
                    const delims_t *d, tpl_t **out, cs_err_t *err)
{
    cs_buf_t key;
    cs_rc rc;
    cs_buf_init(&key, CS_TPL_SOURCE_MAX + 2 * DELIM_MAX + 8);
    if ((rc = cs_buf_printf(&key, "%s\x1f%s\x1f", d->od, d->cd)) ||
        (rc = cs_buf_append(&key, text, len))) {
        cs_buf_free(&key);
        return cs_errf(err, rc, "template '%s': expansion too large", name);
    }
    pthread_mutex_lock(&set->mu);
    *out = cs_map_get(&set->cache, key.data);
    pthread_mutex_unlock(&set->mu);
    if (*out) {
        cs_buf_free(&key);
        return CS_OK;
    }
    tpl_t *t;
    if ((rc = compile(name, text, len, d, &t, err))) {
        cs_buf_free(&key);
        return rc;
    }
    pthread_mutex_lock(&set->mu);
    tpl_t *other = cs_map_get(&set->cache, key.data);
    if (other) {
        tpl_free(t);
        t = other;
    } else if ((rc = cs_map_put(&set->cache, key.data, t))) {
        tpl_free(t);
        t = NULL;
    }
    pthread_mutex_unlock(&set->mu);
    cs_buf_free(&key);
    if (!t)
        return cs_errf(err, rc, "out of memory compiling template '%s'", name);
    *out = t;
    return CS_OK;
}

/* ---- rendering ---- */

typedef struct arg {
    const char *name;
    size_t name_len;
    const char *text; /* template text of the argument (owned by the render) */
    size_t len;
    delims_t d;
} arg_t;

typedef struct scope {
    arg_t *v;
    size_t n;
} scope_t;

typedef struct render {
    cs_tplset_t *set;
    cs_tpl_opts_t opts;
    cs_buf_t *out;
    cs_err_t *err;
    json_t *stack[CS_TPL_DEPTH_MAX];
    size_t depth;
    int nest;
    char **owned; /* texts made during the render, freed at its end */
    size_t nowned;
} render_t;

static cs_rc keep(render_t *r, cs_buf_t *b, const char **text, size_t *len)
{
    char **p = cs_realloc(r->owned, (r->nowned + 1) * sizeof *p);
    if (!p)
        return cs_errf(r->err, CS_ERR_NOMEM, "out of memory rendering");
    r->owned = p;
    *len = b->len;
    *text = r->owned[r->nowned++] = cs_buf_steal(b, NULL);
    return CS_OK;
}

static json_t *lookup(render_t *r, const char *name, size_t len, bool *found)
{
    *found = false;
    if (len == 1 && name[0] == '.') {
        *found = r->depth > 0;
        return r->depth ? r->stack[r->depth - 1] : NULL;
    }
    const char *dot = memchr(name, '.', len);
    size_t first = dot ? (size_t)(dot - name) : len;
    json_t *v = NULL;
    for (size_t i = r->depth; i-- > 0;) {
        if (json_is_object(r->stack[i]) &&
            (v = json_object_getn(r->stack[i], name, first)) != NULL)
            break;
    }
    if (!v)
        return NULL;
    size_t p = first;
    while (p < len) {
        p++; /* the dot */
        const char *seg = name + p;
        const char *nd = memchr(seg, '.', len - p);
        size_t sl = nd ? (size_t)(nd - seg) : len - p;
        if (json_is_object(v)) {
            v = json_object_getn(v, seg, sl);
        } else if (json_is_array(v) && sl > 0 && sl < 10) {
            size_t idx = 0;
            bool digits = true;
            for (size_t k = 0; k < sl; k++) {
                if (seg[k] < '0' || seg[k] > '9')
                    digits = false;
                else
                    idx = idx * 10 + (size_t)(seg[k] - '0');
            }
            v = digits ? json_array_get(v, idx) : NULL;
        } else {
            v = NULL;
        }
        if (!v)
            return NULL;
        p += sl;
    }
    *found = true;
    return v;
}

static bool truthy(json_t *v)
{
    if (!v)
        return false;
    switch (json_typeof(v)) {
    case JSON_NULL:
    case JSON_FALSE: return false;
    case JSON_ARRAY: return json_array_size(v) > 0;
    case JSON_STRING: return json_string_length(v) > 0;
    case JSON_INTEGER: return json_integer_value(v) != 0;
    case JSON_REAL: return json_real_value(v) != 0.0 && !isnan(json_real_value(v));
    default: return true;
    }
}

static cs_rc put_escaped(render_t *r, const char *s, size_t n)
{
    size_t run = 0;
    cs_rc rc = CS_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: break;
        }
        if (!rep)
            continue;
        if (i > run)
            rc = cs_buf_append(r->out, s + run, i - run);
        if (!rc)
            rc = cs_buf_puts(r->out, rep);
        run = i + 1;
    }
    if (!rc && n > run)
        rc = cs_buf_append(r->out, s + run, n - run);
    return rc;
}

static cs_rc out_fail(render_t *r, cs_rc rc)
{
    if (rc == CS_ERR_TOOBIG)
        return cs_errf(r->err, rc, "rendered output exceeds %zu bytes", r->out->max);
    return cs_errf(r->err, rc, "out of memory rendering");
}

static cs_rc put_value(render_t *r, json_t *v, bool escape)
{
    char num[40];
    const char *s = NULL;
    size_t n = 0;
    char *owned = NULL;
    cs_rc rc = CS_OK;
    switch (json_typeof(v)) {
    case JSON_STRING:
        s = json_string_value(v);
        n = json_string_length(v);
        break;
    case JSON_INTEGER:
        n = (size_t)snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        s = num;
        break;
    case JSON_REAL: {
        double d = json_real_value(v);
        n = (size_t)snprintf(num, sizeof num, "%.*g", cs_json_real_digits(d), d);
        s = num;
        break;
    }
    case JSON_TRUE: s = "true"; n = 4; break;
    case JSON_FALSE: s = "false"; n = 5; break;
    case JSON_NULL: return CS_OK;
    default:
        owned = cs_json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!owned)
            return cs_errf(r->err, CS_ERR_NOMEM, "out of memory rendering");
        s = owned;
        n = strlen(owned);
        break;
    }
    rc = escape && r->opts.escape == CS_TPL_ESCAPE_HTML ? put_escaped(r, s, n)
                                                         : cs_buf_append(r->out, s, n);
    free(owned);
    return rc ? out_fail(r, rc) : CS_OK;
}

static cs_rc render_tpl(render_t *r, const tpl_t *t, size_t from, size_t to, const scope_t *sc);

static cs_rc enter(render_t *r, const tpl_t *t, const tok_t *k)
{
    if (r->nest >= CS_TPL_NEST_MAX)
        return cs_errf(r->err, CS_ERR_RULE,
                       "template '%s' line %u: partials and blocks nested more than %d deep "
                       "(a partial that includes itself without end?)",
                       t->name, k->line, CS_TPL_NEST_MAX);
    r->nest++;
    return CS_OK;
}

/* Render `text` (a partial's or block's expansion) with delimiters `d`. */
static cs_rc render_text(render_t *r, const tpl_t *t, const tok_t *k, const char *what,
                         const char *text, size_t len, const delims_t *d, const scope_t *sc)
{
    tpl_t *x;
    cs_rc rc = enter(r, t, k);
    if (rc)
        return rc;
    if (!(rc = cached(r->set, what, text, len, d, &x, r->err)))
        rc = render_tpl(r, x, 0, x->n, sc);
    r->nest--;
    return rc;
}

static const delims_t default_delims = { "{{", "}}", 2, 2 };

/* The name of a partial or parent: the tag's, or for {{>*x}} the string at x. */
static cs_rc target_name(render_t *r, const tpl_t *t, const tok_t *k, char *buf, size_t size,
                         bool *ok)
{
    *ok = false;
    if (!k->dynamic) {
        if (k->name_len >= size)
            return CS_OK;
        memcpy(buf, t->src + k->name, k->name_len);
        buf[k->name_len] = '\0';
        *ok = true;
        return CS_OK;
    }
    bool found;
    json_t *v = lookup(r, t->src + k->name, k->name_len, &found);
    if (!json_is_string(v) || json_string_length(v) >= size) {
        if (r->opts.strict)
            return cs_errf(r->err, CS_ERR_RULE,
                           "template '%s' line %u: no partial name in the data at '%.*s'",
                           t->name, k->line, (int)k->name_len, t->src + k->name);
        return CS_OK;
    }
    memcpy(buf, json_string_value(v), json_string_length(v) + 1);
    *ok = true;
    return CS_OK;
}

/* Expand a named template (a partial, or a parent with arguments `sc`). */
static cs_rc expand(render_t *r, const tpl_t *t, const tok_t *k, const scope_t *sc)
{
    char name[256];
    bool ok;
    cs_rc rc = target_name(r, t, k, name, sizeof name, &ok);
    if (rc || !ok)
        return rc;
    const tpl_t *p = cs_map_get(&r->set->named, name);
    if (!p) {
        if (r->opts.strict)
            return cs_errf(r->err, CS_ERR_RULE, "template '%s' line %u: no template named '%s'",
                           t->name, k->line, name);
        return CS_OK;
    }
    if (!k->standalone || k->ind_len == 0) {
        if ((rc = enter(r, t, k)))
            return rc;
        rc = render_tpl(r, p, 0, p->n, sc);
        r->nest--;
        return rc;
    }
    cs_buf_t b;
    const char *text = NULL;
    size_t len = 0;
    cs_buf_init(&b, CS_TPL_SOURCE_MAX);
    if ((rc = indent(p->src, p->len, t->src + k->ind, k->ind_len, &b))) {
        cs_buf_free(&b);
        return cs_errf(r->err, rc, "template '%s': indented partial '%s' too large", t->name,
                       name);
    }
    if ((rc = keep(r, &b, &text, &len)))
        return rc;
    return render_text(r, t, k, name, text, len, &default_delims, sc);
}

/* A block's own content: dedented when it stands alone. */
static cs_rc block_value(render_t *r, const tpl_t *t, const tok_t *k, const char **text,
                         size_t *len, size_t *margin_at, size_t *margin_len)
{
    *margin_at = *margin_len = 0;
    if (!k->standalone) {
        *text = t->src + k->body;
        *len = k->body_len;
        return CS_OK;
    }
    cs_buf_t b;
    cs_buf_init(&b, CS_TPL_SOURCE_MAX);
    cs_rc rc = dedent(t->src + k->body, k->body_len, &b, margin_at, margin_len);
    if (rc) {
        cs_buf_free(&b);
        return out_fail(r, rc);
    }
    *margin_at += k->body;
    return keep(r, &b, text, len);
}

static const arg_t *find_arg(const scope_t *sc, const char *name, size_t len)
{
    for (size_t i = 0; sc && i < sc->n; i++)
        if (sc->v[i].name_len == len && memcmp(sc->v[i].name, name, len) == 0)
            return &sc->v[i];
    return NULL;
}

static cs_rc render_parent(render_t *r, const tpl_t *t, size_t i, const scope_t *outer)
{
    const tok_t *k = &t->toks[i];
    scope_t sc = { NULL, 0 };
    size_t nblocks = 0;
    cs_rc rc = CS_OK;
    for (size_t j = i + 1; j < k->match;) {
        const tok_t *b = &t->toks[j];
        nblocks += b->kind == T_BLOCK;
        j = opens(b->kind) ? b->match + 1 : j + 1;
    }
    size_t cap = (outer ? outer->n : 0) + nblocks;
    if (cap && !(sc.v = cs_calloc(cap, sizeof *sc.v)))
        return cs_errf(r->err, CS_ERR_NOMEM, "out of memory rendering");
    /* arguments from further out win (multi-level inheritance) */
    for (size_t j = 0; outer && j < outer->n; j++)
        sc.v[sc.n++] = outer->v[j];
    for (size_t j = i + 1; j < k->match;) {
        const tok_t *b = &t->toks[j];
        if (b->kind == T_BLOCK && !find_arg(&sc, t->src + b->name, b->name_len)) {
            arg_t *a = &sc.v[sc.n++];
            size_t ma, ml;
            a->name = t->src + b->name;
            a->name_len = b->name_len;
            a->d = t->delims[b->d];
            if ((rc = block_value(r, t, b, &a->text, &a->len, &ma, &ml)))
                goto out;
        }
        j = opens(b->kind) ? b->match + 1 : j + 1;
    }
    rc = expand(r, t, k, &sc);
out:
    cs_free(sc.v);
    return rc;
}

static cs_rc render_block(render_t *r, const tpl_t *t, const tok_t *k, const scope_t *sc)
{
    const char *own;
    size_t own_len, margin_at, margin_len;
    cs_rc rc = block_value(r, t, k, &own, &own_len, &margin_at, &margin_len);
    if (rc)
        return rc;
    const arg_t *a = find_arg(sc, t->src + k->name, k->name_len);
    const char *text = a ? a->text : own;
    size_t len = a ? a->len : own_len;
    const delims_t *d = a ? &a->d : &t->delims[k->d];
    if (k->standalone) {
        /* re-indent to the block's place: its content's margin, else the tag's */
        const char *ind = margin_len ? t->src + margin_at : t->src + k->ind;
        size_t ind_len = margin_len ? margin_len : k->ind_len;
        if (ind_len) {
            cs_buf_t b;
            cs_buf_init(&b, CS_TPL_SOURCE_MAX);
            if ((rc = indent(text, len, ind, ind_len, &b))) {
                cs_buf_free(&b);
                return out_fail(r, rc);
            }
            if ((rc = keep(r, &b, &text, &len)))
                return rc;
        }
    }
    char what[300];
    snprintf(what, sizeof what, "%s (block %.*s)", t->name, (int)k->name_len, t->src + k->name);
    /* the block's own arguments stay in force for blocks nested inside it */
    return render_text(r, t, k, what, text, len, d, sc);
}

static cs_rc push(render_t *r, const tpl_t *t, const tok_t *k, json_t *v)
{
    if (r->depth == CS_TPL_DEPTH_MAX)
        return cs_errf(r->err, CS_ERR_RULE, "template '%s' line %u: sections nested too deeply",
                       t->name, k->line);
    r->stack[r->depth++] = v;
    return CS_OK;
}

static cs_rc render_tpl(render_t *r, const tpl_t *t, size_t from, size_t to, const scope_t *sc)
{
    cs_rc rc = CS_OK;
    size_t i = from;
    while (i < to && !rc) {
        const tok_t *k = &t->toks[i];
        const char *name = t->src + k->name;
        bool found;
        json_t *v;
        switch ((tkind_t)k->kind) {
        case T_TEXT:
            if (k->end > k->start && (rc = cs_buf_append(r->out, t->src + k->start,
                                                         k->end - k->start)))
                rc = out_fail(r, rc);
            i++;
            break;
        case T_VAR:
        case T_RAW:
            v = lookup(r, name, k->name_len, &found);
            if (!found && r->opts.strict)
                rc = cs_errf(r->err, CS_ERR_RULE,
                             "template '%s' line %u, column %u: no value for '%.*s'", t->name,
                             k->line, k->col, (int)k->name_len, name);
            else if (v)
                rc = put_value(r, v, k->kind == T_VAR);
            i++;
            break;
        case T_SECTION:
            v = lookup(r, name, k->name_len, &found);
            if (json_is_array(v)) {
                for (size_t e = 0; e < json_array_size(v) && !rc; e++) {
                    if (!(rc = push(r, t, k, json_array_get(v, e)))) {
                        rc = render_tpl(r, t, i + 1, k->match, sc);
                        r->depth--;
                    }
                }
            } else if (truthy(v)) {
                if (!(rc = push(r, t, k, v))) {
                    rc = render_tpl(r, t, i + 1, k->match, sc);
                    r->depth--;
                }
            }
            i = k->match + 1;
            break;
        case T_INVERTED:
            v = lookup(r, name, k->name_len, &found);
            if (!truthy(v))
                rc = render_tpl(r, t, i + 1, k->match, sc);
            i = k->match + 1;
            break;
        case T_PARTIAL:
            rc = expand(r, t, k, sc);
            i++;
            break;
        case T_PARENT:
            rc = render_parent(r, t, i, sc);
            i = k->match + 1;
            break;
        case T_BLOCK:
            rc = render_block(r, t, k, sc);
            i = k->match + 1;
            break;
        case T_CLOSE:
        case T_COMMENT:
        case T_DELIM:
            i++;
            break;
        }
    }
    return rc;
}

cs_rc cs_tplset_render(cs_tplset_t *set, const char *name, json_t *data,
                       const cs_tpl_opts_t *opts, cs_buf_t *out, cs_err_t *err)
{
    const tpl_t *t = cs_map_get(&set->named, name);
    if (!t)
        return cs_errf(err, CS_ERR_NOTFOUND, "no template named '%s'", name);
    render_t r;
    memset(&r, 0, sizeof r);
    r.set = set;
    if (opts)
        r.opts = *opts;
    r.out = out;
    r.err = err;
    size_t old_max = out->max;
    size_t limit = r.opts.max_output ? r.opts.max_output : CS_TPL_OUTPUT_MAX;
    if (!out->max || out->max > out->len + limit)
        out->max = out->len + limit;
    if (data)
        r.stack[r.depth++] = data;
    cs_rc rc = render_tpl(&r, t, 0, t->n, NULL);
    out->max = old_max;
    for (size_t i = 0; i < r.nowned; i++)
        cs_free(r.owned[i]);
    cs_free(r.owned);
    return rc;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Reads the folder's entry whole into buf; see mustache.h. */
cs_rc cs_tpl_read_file(const char *dir, const char *name, char *buf, size_t *len, bool *regular,
                       cs_err_t *err)
{
    char path[4096];
    struct stat st;
    *len = 0;
    *regular = false;
    int w = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (w < 0 || (size_t)w >= sizeof path)
        return cs_errf(err, CS_ERR_CONFIG, "templates folder %s: the path of %s is over %zu bytes",
                       dir, name, sizeof path - 1);
    /* a file that cannot be looked at (a link to a file since gone) is an
     * error naming it: skipped, its messages would fail to render with a
     * template missing that no one was told of */
    if (stat(path, &st) != 0) {
        int stat_errno = errno;
        struct stat lst;
        bool link = lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode);
        return cs_errf(err, CS_ERR_IO, "%s: cannot read%s: %s", path,
                       link ? " the file this link points to" : "", strerror(stat_errno));
    }
    if (!S_ISREG(st.st_mode))
        return CS_OK;
    *regular = true;
    FILE *f = fopen(path, "rb");
    if (!f)
        return cs_errf(err, CS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    cs_rc rc = CS_OK;
    *len = fread(buf, 1, CS_TPL_SOURCE_MAX + 1, f);
    if (ferror(f))
        rc = cs_errf(err, CS_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    else if (*len > CS_TPL_SOURCE_MAX)
        rc = cs_errf(err, CS_ERR_TOOBIG, "%s: larger than %d bytes", path, CS_TPL_SOURCE_MAX);
    fclose(f);
    return rc;
}

cs_rc cs_tplset_load_dir(cs_tplset_t *set, const char *dir, size_t *count, cs_err_t *err)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, by_name);
    *count = 0;
    if (n < 0)
        return cs_errf(err, CS_ERR_CONFIG, "templates folder %s cannot be read: %s", dir,
                       strerror(errno));
    cs_rc rc = CS_OK;
    char *buf = cs_malloc(CS_TPL_SOURCE_MAX + 1);
    if (!buf)
        rc = cs_errf(err, CS_ERR_NOMEM,
                     "templates folder %s: out of memory for a buffer of %d bytes to read "
                     "templates into",
                     dir, CS_TPL_SOURCE_MAX + 1);
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        size_t len = 0;
        bool regular = false;
        if (!rc && nm[0] != '.' && !(rc = cs_tpl_read_file(dir, nm, buf, &len, &regular, err)) &&
            regular) {
            if (!(rc = cs_tplset_add(set, nm, buf, len, err)))
                (*count)++;
            else if (err) { /* the folder, then the template's own message */
                char msg[CS_ERR_MSG_MAX];
                cs_strlcpy(msg, err->msg, sizeof msg);
                cs_errf(err, rc, "%s: %s", dir, msg);
            }
        }
        free(names[i]);
    }
    free(names);
    cs_free(buf);
    return rc;
}
