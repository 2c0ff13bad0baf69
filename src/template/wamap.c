/*
 * wamap.c -- WhatsApp template mappings (see wamap.h): the line format's
 * parser, loading a templates folder's `*.whatsapp` files, and looking a
 * mapping up by template and language.
 */
#include "wamap.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUFFIX ".whatsapp"
#define SUFFIX_LEN (sizeof SUFFIX - 1)

struct cs_wamap {
    cs_wa_tpl_t **v;
    size_t n, cap;
};

void cs_wa_tpl_free(cs_wa_tpl_t **tp)
{
    cs_wa_tpl_t *t = tp ? *tp : NULL;
    if (!t)
        return;
    cs_free(t->file);
    cs_free(t->key);
    cs_free(t->header.src);
    for (int i = 0; i < t->nbody; i++)
        cs_free(t->body[i].src);
    for (int i = 0; i < CS_WA_BUTTONS_MAX; i++)
        cs_free(t->button[i].src);
    cs_free(t);
    *tp = NULL;
}

void cs_wa_param_name(const cs_wa_tpl_t *t, const cs_wa_param_t *p, char *buf, size_t size)
{
    snprintf(buf, size, "%s#%d", t->file, p->line);
}

/* Meta's template names: lowercase letters, digits and underscores. */
static bool name_ok(const char *s, size_t n)
{
    if (n == 0 || n > CS_WA_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

/* Meta's language codes: de, fil, en_US, zh_HK. */
static bool lang_ok(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && s[i] >= 'a' && s[i] <= 'z')
        i++;
    if (i < 2 || i > 3)
        return false;
    if (i == n)
        return true;
    if (s[i] != '_' || n - i - 1 < 2 || n - i - 1 > 3)
        return false;
    for (i++; i < n; i++)
        if (!(s[i] >= 'A' && s[i] <= 'Z'))
            return false;
    return true;
}

/* A parameter's value: its own Mustache template, checked now. */
static cs_rc set_param(const char *file, int line, const char *key, cs_wa_param_t *p,
                       const char *v, size_t n, cs_err_t *err)
{
    char name[CS_WA_NAME_MAX];
    cs_err_t e;
    if (n == 0)
        return cs_errf(err, CS_ERR_CONFIG,
                       "%s:%d: %s: expected a value (a Mustache template such as "
                       "{{order.id}}), got nothing",
                       file, line, key);
    snprintf(name, sizeof name, "%s#%d", file, line);
    if (cs_tpl_check(name, v, n, &e))
        return cs_errf(err, CS_ERR_CONFIG, "%s:%d: %s: %s", file, line, key, e.msg);
    if (!(p->src = cs_strndup(v, n)))
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    p->line = line;
    return CS_OK;
}

cs_rc cs_wa_tpl_parse(const char *file, const char *src, size_t len, cs_wa_tpl_t **out,
                      cs_err_t *err)
{
    *out = NULL;
    size_t fl = strlen(file);
    /* T.L.whatsapp: L is the language, T the template */
    const char *dot = NULL;
    if (fl > SUFFIX_LEN && strcmp(file + fl - SUFFIX_LEN, SUFFIX) == 0)
        for (const char *p = file + fl - SUFFIX_LEN - 1; p > file; p--)
            if (*p == '.') {
                dot = p;
                break;
            }
    size_t ll = dot ? (size_t)(file + fl - SUFFIX_LEN - dot - 1) : 0;
    if (!dot || ll == 0 || ll > CS_WA_LANG_MAX)
        return cs_errf(err, CS_ERR_CONFIG,
                       "%s: expected a file name TEMPLATE.LANG.whatsapp, as "
                       "order_confirmation.de.whatsapp beside order_confirmation.de.txt",
                       file);
    cs_wa_tpl_t *t = cs_calloc(1, sizeof *t);
    if (!t || !(t->file = cs_strdup(file)) ||
        !(t->key = cs_strndup(file, fl - SUFFIX_LEN))) {
        cs_wa_tpl_free(&t);
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    }
    cs_rc rc = CS_OK;
    int name_line = 0, lang_line = 0, line = 0;
    const char *p = src, *end = src + len;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) /* a byte order mark */
        p += 3;
    while (p < end && !rc) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        const char *next = eol ? eol + 1 : end;
        line++;
        while (p < le && (*p == ' ' || *p == '\t'))
            p++;
        while (le > p && (le[-1] == ' ' || le[-1] == '\t' || le[-1] == '\r'))
            le--;
        if (p == le || *p == '#') {
            p = next;
            continue;
        }
        const char *colon = memchr(p, ':', (size_t)(le - p));
        if (!colon) {
            rc = cs_errf(err, CS_ERR_CONFIG,
                         "%s:%d: expected 'key: value' (name, language, header, body or "
                         "button), got \"%.*s\"",
                         file, line, (int)(le - p > 60 ? 60 : le - p), p);
            break;
        }
        const char *ke = colon;
        while (ke > p && (ke[-1] == ' ' || ke[-1] == '\t'))
            ke--;
        size_t kl = (size_t)(ke - p);
        const char *v = colon + 1;
        while (v < le && (*v == ' ' || *v == '\t'))
            v++;
        size_t vl = (size_t)(le - v);
        char key[32];
        snprintf(key, sizeof key, "%.*s", (int)(kl < sizeof key ? kl : sizeof key - 1), p);
        if (kl == 4 && memcmp(p, "name", 4) == 0) {
            if (name_line)
                rc = cs_errf(err, CS_ERR_CONFIG, "%s:%d: name: given twice (first on line %d)",
                             file, line, name_line);
            else if (!name_ok(v, vl))
                rc = cs_errf(err, CS_ERR_CONFIG,
                             "%s:%d: name: expected the approved WhatsApp template's name (1 to "
                             "%d lowercase letters, digits and underscores), got \"%.*s\"",
                             file, line, CS_WA_NAME_MAX, (int)(vl > 60 ? 60 : vl), v);
            else {
                memcpy(t->name, v, vl);
                t->name[vl] = '\0';
                name_line = line;
            }
        } else if (kl == 8 && memcmp(p, "language", 8) == 0) {
            if (lang_line)
                rc = cs_errf(err, CS_ERR_CONFIG,
                             "%s:%d: language: given twice (first on line %d)", file, line,
                             lang_line);
            else if (!lang_ok(v, vl))
                rc = cs_errf(err, CS_ERR_CONFIG,
                             "%s:%d: language: expected a WhatsApp language code such as de, "
                             "en or en_US, got \"%.*s\"",
                             file, line, (int)(vl > 20 ? 20 : vl), v);
            else {
                memcpy(t->language, v, vl);
                t->language[vl] = '\0';
                lang_line = line;
            }
        } else if (kl == 6 && memcmp(p, "header", 6) == 0) {
            if (t->header.line)
                rc = cs_errf(err, CS_ERR_CONFIG,
                             "%s:%d: header: given twice (first on line %d; a WhatsApp "
                             "template's text header has one parameter)",
                             file, line, t->header.line);
            else
                rc = set_param(file, line, "header", &t->header, v, vl, err);
        } else if (kl == 4 && memcmp(p, "body", 4) == 0) {
            if (t->nbody == CS_WA_BODY_MAX)
                rc = cs_errf(err, CS_ERR_CONFIG, "%s:%d: body: at most %d body parameters",
                             file, line, CS_WA_BODY_MAX);
            else if (!(rc = set_param(file, line, "body", &t->body[t->nbody], v, vl, err)))
                t->nbody++;
        } else if (kl >= 6 && memcmp(p, "button", 6) == 0 &&
                   (kl == 6 || p[6] == ' ' || p[6] == '\t')) {
            /* "button" is index 0; "button N" names it */
            const char *ip = p + 6;
            while (ip < ke && (*ip == ' ' || *ip == '\t'))
                ip++;
            int idx = 0;
            if (ip < ke && (ke - ip != 1 || *ip < '0' || *ip > '9'))
                idx = -1;
            else if (ip < ke)
                idx = *ip - '0';
            if (idx < 0)
                rc = cs_errf(err, CS_ERR_CONFIG,
                             "%s:%d: %s: expected 'button:' or 'button N:' with the button's "
                             "index N from 0 to %d",
                             file, line, key, CS_WA_BUTTONS_MAX - 1);
            else if (t->button[idx].line)
                rc = cs_errf(err, CS_ERR_CONFIG,
                             "%s:%d: button %d: given twice (first on line %d)", file, line,
                             idx, t->button[idx].line);
            else
                rc = set_param(file, line, key, &t->button[idx], v, vl, err);
        } else {
            rc = cs_errf(err, CS_ERR_CONFIG,
                         "%s:%d: unknown key \"%s\"; expected name, language, header, body or "
                         "button",
                         file, line, key);
        }
        p = next;
    }
    if (!rc && !name_line)
        rc = cs_errf(err, CS_ERR_CONFIG,
                     "%s: name: missing; expected a line 'name: ...' with the approved "
                     "WhatsApp template's name",
                     file);
    if (!rc && !lang_line) {
        /* the file's own language, when it is a code WhatsApp knows */
        if (!lang_ok(dot + 1, ll))
            rc = cs_errf(err, CS_ERR_CONFIG,
                         "%s: language: missing, and the file's language \"%.*s\" is no "
                         "WhatsApp language code; expected a line 'language: ...'",
                         file, (int)ll, dot + 1);
        else {
            memcpy(t->language, dot + 1, ll);
            t->language[ll] = '\0';
        }
    }
    if (rc)
        cs_wa_tpl_free(&t);
    *out = t;
    return rc;
}

/* ---- the folder's mappings ---- */

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int is_mapping(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && n > SUFFIX_LEN && strcmp(d->d_name + n - SUFFIX_LEN, SUFFIX) == 0;
}

static int tpl_cmp(const void *a, const void *b)
{
    return strcmp((*(cs_wa_tpl_t *const *)a)->key, (*(cs_wa_tpl_t *const *)b)->key);
}

static cs_rc add_param(cs_tplset_t *set, const cs_wa_tpl_t *t, const cs_wa_param_t *p,
                       cs_err_t *err)
{
    char name[CS_WA_NAME_MAX];
    if (!p->line)
        return CS_OK;
    cs_wa_param_name(t, p, name, sizeof name);
    return cs_tplset_add(set, name, p->src, strlen(p->src), err);
}

cs_rc cs_wamap_load_dir(cs_tplset_t *set, const char *dir, cs_wamap_t **out, size_t *count,
                        cs_err_t *err)
{
    struct dirent **names = NULL;
    *out = NULL;
    *count = 0;
    cs_wamap_t *m = cs_calloc(1, sizeof *m);
    if (!m)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    int n = scandir(dir, &names, is_mapping, by_name);
    if (n < 0) {
        cs_free(m);
        return cs_errf(err, CS_ERR_CONFIG, "templates folder %s cannot be read: %s", dir,
                       strerror(errno));
    }
    cs_rc rc = CS_OK;
    char *buf = cs_malloc(CS_TPL_SOURCE_MAX + 1);
    if (!buf)
        rc = cs_errf(err, CS_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        size_t len = 0;
        bool regular = false;
        if (!rc && !(rc = cs_tpl_read_file(dir, nm, buf, &len, &regular, err)) && regular) {
            cs_wa_tpl_t *t = NULL;
            if (!(rc = cs_wa_tpl_parse(nm, buf, len, &t, err))) {
                rc = add_param(set, t, &t->header, err);
                for (int k = 0; !rc && k < t->nbody; k++)
                    rc = add_param(set, t, &t->body[k], err);
                for (int k = 0; !rc && k < CS_WA_BUTTONS_MAX; k++)
                    rc = add_param(set, t, &t->button[k], err);
                if (!rc && m->n == m->cap) {
                    size_t cap = m->cap ? 2 * m->cap : 16;
                    cs_wa_tpl_t **v = cs_realloc(m->v, cap * sizeof *v);
                    if (!v)
                        rc = cs_errf(err, CS_ERR_NOMEM, "out of memory");
                    else {
                        m->v = v;
                        m->cap = cap;
                    }
                }
                if (!rc) {
                    m->v[m->n++] = t;
                    t = NULL;
                }
            }
            if (rc && err && rc != CS_ERR_NOMEM && strncmp(err->msg, dir, strlen(dir)) != 0) {
                char msg[CS_ERR_MSG_MAX];
                cs_strlcpy(msg, err->msg, sizeof msg);
                cs_errf(err, rc, "%s: %s", dir, msg); /* the folder, then the file's message */
            }
            cs_wa_tpl_free(&t);
        }
        free(names[i]);
    }
    free(names);
    cs_free(buf);
    if (rc) {
        cs_wamap_free(&m);
        return rc;
    }
    if (m->n) /* by key, for cs_wamap_get */
        qsort(m->v, m->n, sizeof *m->v, tpl_cmp);
    *count = m->n;
    *out = m;
    return CS_OK;
}

static int key_cmp(const void *k, const void *e)
{
    return strcmp(k, (*(cs_wa_tpl_t *const *)e)->key);
}

const cs_wa_tpl_t *cs_wamap_get(const cs_wamap_t *map, const char *tmpl, const char *lang)
{
    char key[CS_WA_NAME_MAX];
    if (!map || !map->n)
        return NULL;
    int w = snprintf(key, sizeof key, "%s.%s", tmpl, lang);
    if (w < 0 || (size_t)w >= sizeof key)
        return NULL;
    cs_wa_tpl_t *const *hit = bsearch(key, map->v, map->n, sizeof *map->v, key_cmp);
    return hit ? *hit : NULL;
}

void cs_wamap_free(cs_wamap_t **mp)
{
    cs_wamap_t *m = mp ? *mp : NULL;
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        cs_wa_tpl_free(&m->v[i]);
    cs_free(m->v);
    cs_free(m);
    *mp = NULL;
}
