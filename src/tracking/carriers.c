/*
 * carriers.c -- see carriers.h.
 */
#include "carriers.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define AGGREGATOR "aggregator"
#define MATCH_MAX 128
#define SLUG_MAX 64

/* A rule matches a code (exact or prefix), words of the text, or both. */
typedef struct rule {
    char code[MATCH_MAX]; /* lower case; "" = a text rule */
    bool prefix;          /* code is a prefix (the table's "CODE*") */
    char text[MATCH_MAX]; /* lower case; "" = any text */
    cs_track_status_t status;
    cs_incident_t reason;
    bool no_reason;       /* the table's "none": the text says there is no
                             incident ("cleared customs"); nothing is borrowed */
    int line;             /* in its file, for the loader's messages */
} rule_t;

typedef struct table {
    char carrier[CS_ID_MAX + 1];
    char name[CS_CARRIER_NAME_MAX]; /* "@name"; "" = none */
    char slugs[CS_CARRIER_SLUGS_MAX][SLUG_MAX]; /* "@slug", lower case */
    size_t n_slugs;
    rule_t *rules;
    size_t n, cap;
    _Atomic uint64_t unmapped;
} table_t;

struct cs_carriers {
    table_t tables[CS_CARRIERS_MAX];
    size_t n;
    _Atomic uint64_t unmapped_other; /* carriers without a table */
};

cs_carriers_t *cs_carriers_new(void)
{
    return cs_calloc(1, sizeof(cs_carriers_t));
}

void cs_carriers_free(cs_carriers_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        cs_free(c->tables[i].rules);
    cs_free(c);
}

size_t cs_carriers_count(const cs_carriers_t *c)
{
    return c ? c->n : 0;
}

/* One code point's lower case, for the scripts carriers write in: Latin
 * (Ä, Ł, Š: cs_latin_case), Greek and Cyrillic capitals; every other one
 * is its own. lower() keeps only those of the same UTF-8 length, so a
 * string folds in place. */
static uint32_t lower_cp(uint32_t c)
{
    if (c < 0x370) /* Latin: the lane keys' table (lib/cs.c) */
        return cs_latin_case(c, false);
    if (c >= 0x391 && c <= 0x3AB && c != 0x3A2)
        return c + 32;
    if (c == 0x386)
        return 0x3AC; /* Ά */
    if (c >= 0x388 && c <= 0x38A)
        return c + 37; /* Έ Ή Ί */
    if (c == 0x38C)
        return 0x3CC; /* Ό */
    if (c == 0x38E || c == 0x38F)
        return c + 63; /* Ύ Ώ */
    if (c >= 0x410 && c <= 0x42F)
        return c + 32;
    if (c >= 0x400 && c <= 0x40F)
        return c + 80;
    return c;
}

/* Lower case in place: ASCII bytes, and the two-byte UTF-8 sequences
 * lower_cp knows; anything else (other lengths, bytes that are not
 * well-formed UTF-8) is left as it is. */
static void lower(char *str)
{
    unsigned char *p = (unsigned char *)str;
    while (*p) {
        if (*p < 0x80) {
            *p = (unsigned char)tolower(*p);
            p++;
            continue;
        }
        if ((p[0] & 0xE0) == 0xC0 && (p[1] & 0xC0) == 0x80) {
            uint32_t c = lower_cp(((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F));
            if (c >= 0x80 && c < 0x800) {
                p[0] = (unsigned char)(0xC0 | (c >> 6));
                p[1] = (unsigned char)(0x80 | (c & 0x3F));
            }
            p += 2;
            continue;
        }
        p++;
    }
}

static table_t *find(const cs_carriers_t *c, const char *carrier)
{
    for (size_t i = 0; c && carrier && i < c->n; i++)
        if (strcmp(c->tables[i].carrier, carrier) == 0)
            return (table_t *)&c->tables[i];
    return NULL;
}

/* The shipped tables, loaded once for the lookups that have no loaded set
 * (display names, slugs); kept for the life of the process. */
static cs_carriers_t *shipped_tables;
static pthread_once_t shipped_once = PTHREAD_ONCE_INIT;

static void load_shipped(void)
{
    cs_err_t err;
    if (cs_carriers_load_builtin(&shipped_tables, &err) != CS_OK)
        shipped_tables = NULL; /* a bad shipped table fails the unit tests */
}

static const cs_carriers_t *shipped(void)
{
    pthread_once(&shipped_once, load_shipped);
    return shipped_tables;
}

const char *cs_carriers_display_name(const cs_carriers_t *c, const char *carrier)
{
    if (!carrier)
        return "the carrier";
    const table_t *t = find(c, carrier);
    if (!t || !t->name[0])
        t = find(shipped(), carrier);
    return t && t->name[0] ? t->name : carrier;
}

static const table_t *find_slug(const cs_carriers_t *c, const char *slug)
{
    for (size_t i = 0; c && i < c->n; i++)
        for (size_t k = 0; k < c->tables[i].n_slugs; k++)
            if (strcasecmp(c->tables[i].slugs[k], slug) == 0)
                return &c->tables[i];
    return NULL;
}

void cs_carriers_of_slug(const cs_carriers_t *c, const char *slug, char *out, size_t size)
{
    const table_t *t = find_slug(c, slug);
    if (!t)
        t = find_slug(shipped(), slug);
    if (t) {
        cs_strlcpy(out, t->carrier, size);
        return;
    }
    size_t k = 0;
    for (; slug[k] && k + 1 < size; k++)
        out[k] = slug[k] == '-' ? '_' : (char)tolower((unsigned char)slug[k]);
    if (size)
        out[k] = '\0';
}

bool cs_carrier_id_char(char ch)
{
    return islower((unsigned char)ch) || isdigit((unsigned char)ch) || ch == '_' || ch == '-';
}

/* A header line: "@name<TAB>Display Name" or "@slug<TAB>slug[<TAB>slug...]". */
static cs_rc add_header(cs_carriers_t *c, table_t *t, char *buf, const char *file, int line,
                        cs_err_t *err)
{
    char *tab = strchr(buf, '\t');
    if (tab)
        *tab = '\0';
    char *v = tab ? tab + 1 : NULL;
    if (strcmp(buf, "@name") == 0) {
        size_t n = v ? strlen(v) : 0;
        bool ok = n > 0 && n < sizeof t->name && !strchr(v, '\t');
        for (size_t i = 0; ok && i < n; i++)
            ok = !iscntrl((unsigned char)v[i]);
        if (!ok)
            return cs_errf(err, CS_ERR_CONFIG,
                           "%s:%d: @name: expected a tab and the carrier's display name (1 to "
                           "%d characters, no tabs)",
                           file, line, CS_CARRIER_NAME_MAX - 1);
        cs_strlcpy(t->name, v, sizeof t->name);
        return CS_OK;
    }
    if (strcmp(buf, "@slug") != 0)
        return cs_errf(err, CS_ERR_CONFIG,
                       "%s:%d: '%.40s': expected a header @name or @slug (or a match not "
                       "starting with '@')",
                       file, line, buf);
    if (!v || !*v)
        return cs_errf(err, CS_ERR_CONFIG, "%s:%d: @slug: expected a tab and one or more "
                                           "AfterShip slugs, separated by tabs",
                       file, line);
    while (v) {
        char *next = strchr(v, '\t');
        if (next)
            *next++ = '\0';
        size_t n = strlen(v);
        bool ok = n > 0 && n < SLUG_MAX;
        for (size_t i = 0; ok && i < n; i++)
            ok = cs_carrier_id_char(v[i]);
        if (!ok)
            return cs_errf(err, CS_ERR_CONFIG,
                           "%s:%d: @slug: '%.40s' is not a slug (1 to %d of a-z, 0-9, _ and -)",
                           file, line, v, SLUG_MAX - 1);
        const table_t *other = find_slug(c, v);
        if (other && other != t)
            return cs_errf(err, CS_ERR_CONFIG, "%s:%d: @slug: '%s' is already declared by %s.tsv",
                           file, line, v, other->carrier);
        if (!other) {
            if (t->n_slugs == CS_CARRIER_SLUGS_MAX)
                return cs_errf(err, CS_ERR_CONFIG, "%s:%d: @slug: more than %d slugs", file,
                               line, CS_CARRIER_SLUGS_MAX);
            cs_strlcpy(t->slugs[t->n_slugs++], v, SLUG_MAX);
        }
        v = next;
    }
    return CS_OK;
}

/* The match field: "CODE", "PREFIX*", "text:WORDS" or "CODE text:WORDS". */
static cs_rc parse_match(const char *m, rule_t *r, const char *file, int line, cs_err_t *err)
{
    const char *words = NULL;
    size_t code_len;
    if (strncmp(m, "text:", 5) == 0) {
        words = m + 5;
        code_len = 0;
    } else {
        const char *tp = strstr(m, " text:");
        words = tp ? tp + 6 : NULL;
        code_len = tp ? (size_t)(tp - m) : strlen(m);
        /* blanks around a code (an editor's alignment, " FS") are not
         * part of it: kept, the rule would match no scan */
        while (code_len && *m == ' ')
            m++, code_len--;
        while (code_len && m[code_len - 1] == ' ')
            code_len--;
        if (!code_len)
            return cs_errf(err, CS_ERR_CONFIG, "%s:%d: match: expected a code%s", file, line,
                           tp ? " before ' text:'" : ", got only blanks");
    }
    if (code_len >= MATCH_MAX || (words && (!*words || strlen(words) >= MATCH_MAX)))
        return cs_errf(err, CS_ERR_CONFIG,
                       "%s:%d: match: expected a code and text words of 1 to %d characters each",
                       file, line, MATCH_MAX - 1);
    memcpy(r->code, m, code_len);
    r->code[code_len] = '\0';
    if (code_len && r->code[code_len - 1] == '*') {
        r->prefix = true;
        r->code[--code_len] = '\0';
        if (!code_len)
            return cs_errf(err, CS_ERR_CONFIG, "%s:%d: match: a prefix needs a character "
                                               "before the '*'",
                           file, line);
    }
    if (words)
        cs_strlcpy(r->text, words, sizeof r->text);
    lower(r->code);
    lower(r->text);
    return CS_OK;
}

static bool digits(const char *s, size_t n);
static bool same_number(const char *a, size_t an, const char *b, size_t bn);

/* An earlier rule of t that takes every scan r would match (so r is a
 * dead line: a code listed twice, as "02" and "2" too, or a code with
 * words after the plain code), else NULL. Text rules are left alone:
 * their order is the table's meaning (negations first). */
static const rule_t *shadowed_by(const table_t *t, const rule_t *r)
{
    size_t rl = strlen(r->code);
    if (!rl)
        return NULL;
    for (size_t i = 0; i < t->n; i++) {
        const rule_t *e = &t->rules[i];
        size_t el = strlen(e->code);
        if (!el || e->prefix != r->prefix || (e->text[0] && strcmp(e->text, r->text) != 0))
            continue;
        bool same = !r->prefix && digits(e->code, el) && digits(r->code, rl)
                        ? same_number(e->code, el, r->code, rl)
                        : strcmp(e->code, r->code) == 0;
        if (same)
            return e;
    }
    return NULL;
}

cs_rc cs_carriers_add(cs_carriers_t *c, const char *carrier, const char *text, size_t len,
                      const char *file, cs_err_t *err)
{
    size_t cl = strlen(carrier);
    bool id_ok = cl > 0 && cl <= CS_ID_MAX;
    for (size_t i = 0; id_ok && i < cl; i++)
        id_ok = cs_carrier_id_char(carrier[i]);
    if (!id_ok)
        return cs_errf(err, CS_ERR_CONFIG,
                       "%s: the file name must be a carrier id (a-z, 0-9, _ and -)", file);
    table_t *t = find(c, carrier);
    if (!t) {
        if (c->n == CS_CARRIERS_MAX)
            return cs_errf(err, CS_ERR_CONFIG, "%s: more than %d carrier tables", file,
                           CS_CARRIERS_MAX);
        t = &c->tables[c->n++];
        memset(t, 0, sizeof *t);
        cs_strlcpy(t->carrier, carrier, sizeof t->carrier);
    }
    int line = 0;
    size_t pos = 0;
    /* a byte-order mark (an editor's "UTF-8 with BOM"): not part of line 1 */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - (text + pos)) : len - pos;
        char buf[512];
        line++;
        if (ll >= sizeof buf)
            return cs_errf(err, CS_ERR_CONFIG, "%s:%d: line longer than %zu bytes", file, line,
                           sizeof buf - 1);
        memcpy(buf, text + pos, ll);
        buf[ll] = '\0';
        pos += ll + (nl ? 1 : 0);
        if (ll && buf[ll - 1] == '\r')
            buf[--ll] = '\0';
        if (!buf[0] || buf[0] == '#')
            continue;
        if (buf[0] == '@') {
            cs_rc hrc = add_header(c, t, buf, file, line, err);
            if (hrc)
                return hrc;
            continue;
        }
        char *f[4] = { buf, NULL, NULL, NULL };
        int nf = 1;
        for (char *p = buf; *p && nf < 4; p++)
            if (*p == '\t') {
                *p = '\0';
                f[nf++] = p + 1;
            }
        if (nf < 2 || !*f[0] || !*f[1])
            return cs_errf(err, CS_ERR_CONFIG,
                           "%s:%d: expected a match, a status and an optional reason, "
                           "separated by tabs",
                           file, line);
        rule_t r;
        memset(&r, 0, sizeof r);
        cs_rc mrc = parse_match(f[0], &r, file, line, err);
        if (mrc)
            return mrc;
        int st = cs_track_status_from_name(f[1]);
        if (st < 0)
            return cs_errf(err, CS_ERR_CONFIG,
                           "%s:%d: status: '%s' is not one of info_received, in_transit, "
                           "out_for_delivery, failed_attempt, available_for_pickup, delivered, "
                           "exception, returned_to_sender",
                           file, line, f[1]);
        r.status = (cs_track_status_t)st;
        if (nf >= 3 && strcmp(f[2], "none") == 0) {
            r.no_reason = true;
        } else if (nf >= 3 && *f[2]) {
            int rs = cs_incident_from_name(f[2]);
            if (rs < 0)
                return cs_errf(err, CS_ERR_CONFIG,
                               "%s:%d: reason: '%s' is not one of address_problem, customs, "
                               "weather, damaged, refused, held_at_depot, recipient_absent, "
                               "lost, delayed, other, none",
                               file, line, f[2]);
            r.reason = (cs_incident_t)rs;
        }
        r.line = line;
        const rule_t *first = shadowed_by(t, &r);
        if (first)
            return cs_errf(err, CS_ERR_CONFIG,
                           "%s:%d: match: '%s' never matches: line %d, '%s%s%s%s', matches "
                           "every such scan first (remove one, or list the one with words "
                           "first)",
                           file, line, f[0], first->line, first->code,
                           first->prefix ? "*" : "", first->text[0] ? " text:" : "", first->text);
        if (t->n == t->cap) {
            size_t cap = t->cap ? t->cap * 2 : 32;
            rule_t *p = cs_realloc(t->rules, cap * sizeof *p);
            if (!p)
                return cs_errf(err, CS_ERR_NOMEM, "out of memory");
            t->rules = p;
            t->cap = cap;
        }
        t->rules[t->n++] = r;
    }
    return CS_OK;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

cs_rc cs_carriers_load_dir(const char *dir, cs_carriers_t **out, cs_err_t *err)
{
    *out = NULL;
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, by_name);
    if (n < 0)
        return cs_errf(err, CS_ERR_CONFIG, "carriers folder %s cannot be read: %s", dir,
                       strerror(errno));
    cs_carriers_t *c = cs_carriers_new();
    cs_rc rc = c ? CS_OK : cs_errf(err, CS_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        size_t l = strlen(nm);
        if (!rc && nm[0] != '.' && l > 4 && strcmp(nm + l - 4, ".tsv") == 0) {
            char path[4096], carrier[CS_ID_MAX + 8];
            snprintf(path, sizeof path, "%s/%s", dir, nm);
            snprintf(carrier, sizeof carrier, "%.*s", (int)(l - 4 < CS_ID_MAX + 4 ? l - 4 : 0),
                     nm);
            FILE *f = fopen(path, "rb");
            cs_buf_t b;
            cs_buf_init(&b, 1 << 20);
            char chunk[4096];
            size_t k;
            if (!f)
                rc = cs_errf(err, CS_ERR_CONFIG, "%s cannot be read: %s", path,
                             strerror(errno));
            while (!rc && (k = fread(chunk, 1, sizeof chunk, f)) > 0)
                if (cs_buf_append(&b, chunk, k))
                    rc = cs_errf(err, CS_ERR_CONFIG, "%s: larger than 1 MiB", path);
            if (f)
                fclose(f);
            if (!rc)
                rc = cs_carriers_add(c, carrier, b.data ? b.data : "", b.len, path, err);
            cs_buf_free(&b);
        }
        free(names[i]);
    }
    free(names);
    if (rc) {
        cs_carriers_free(c);
        return rc;
    }
    *out = c;
    return CS_OK;
}

cs_rc cs_carriers_load_builtin(cs_carriers_t **out, cs_err_t *err)
{
    cs_carriers_t *c = cs_carriers_new();
    *out = NULL;
    if (!c)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    for (const cs_carrier_builtin_t *b = cs_carriers_builtin; b->carrier; b++) {
        char file[CS_ID_MAX + 32];
        snprintf(file, sizeof file, "(built in) %s.tsv", b->carrier);
        cs_rc rc = cs_carriers_add(c, b->carrier, b->text, b->len, file, err);
        if (rc) {
            cs_carriers_free(c);
            return rc;
        }
    }
    *out = c;
    return CS_OK;
}

/* Substring: both sides are in lower case (lower()). */
static bool contains(const char *hay, const char *needle)
{
    return strstr(hay, needle) != NULL;
}

/* Whether a rule's reason says why; `other` does not. */
static bool says_why(cs_incident_t reason)
{
    return reason != CS_INCIDENT_NONE && reason != CS_INCIDENT_OTHER;
}

/* Whether the n bytes at s are all digits (n > 0). */
static bool digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return n > 0;
}

/* Two numeric codes as numbers: "02" is 2, which a producer's JSON
 * sends as the number 2 (kept as "2"). */
static bool same_number(const char *a, size_t an, const char *b, size_t bn)
{
    while (an > 1 && *a == '0')
        a++, an--;
    while (bn > 1 && *b == '0')
        b++, bn--;
    return an == bn && memcmp(a, b, an) == 0;
}

/* The code rules (plain, and with text words) in file order; code_len
 * limits the code compared (an aggregator subtag's tag), SIZE_MAX = all.
 * A rule's code of digits alone matches the same number written with
 * more or fewer leading zeros. */
static const rule_t *match_code(const table_t *t, const char *code, size_t code_len,
                                const char *text)
{
    size_t n = code ? strlen(code) : 0;
    if (code_len < n)
        n = code_len;
    bool numeric = digits(code, n);
    for (size_t i = 0; t && n && i < t->n; i++) {
        const rule_t *r = &t->rules[i];
        size_t rl = strlen(r->code);
        if (!rl)
            continue;
        if (numeric && !r->prefix && digits(r->code, rl)) {
            if (!same_number(r->code, rl, code, n))
                continue;
        } else if ((r->prefix ? rl > n : rl != n) || strncasecmp(r->code, code, rl) != 0) {
            continue;
        }
        if (!r->text[0] || (text && contains(text, r->text)))
            return r;
    }
    return NULL;
}

/* The first text rule the text matches; with_reason: the first that says
 * why, unless one that says "none" matches before it (then NULL). */
static const rule_t *match_text(const table_t *t, const char *text, bool with_reason)
{
    for (size_t i = 0; t && text && i < t->n; i++) {
        const rule_t *r = &t->rules[i];
        if (r->code[0] || (with_reason && !says_why(r->reason) && !r->no_reason) ||
            !contains(text, r->text))
            continue;
        return with_reason && r->no_reason ? NULL : r;
    }
    return NULL;
}

/* The aggregator table: the code, then, for a subtag (Tag_NNN: letters, an
 * underscore, digits), its tag. */
static const rule_t *match_aggregator(const table_t *agg, const char *code, const char *text)
{
    const rule_t *r = match_code(agg, code, SIZE_MAX, text);
    const char *us = code ? strchr(code, '_') : NULL;
    if (r || !us || us == code || !us[1])
        return r;
    for (const char *p = code; p < us; p++)
        if (!isalpha((unsigned char)*p))
            return NULL;
    for (const char *p = us + 1; *p; p++)
        if (!isdigit((unsigned char)*p))
            return NULL;
    return match_code(agg, code, (size_t)(us - code), text);
}

void cs_carriers_map_code(cs_carriers_t *c, const char *carrier, const char *code,
                          cs_code_kind_t kind, const char *text, cs_scan_mapping_t *out)
{
    table_t *t = find(c, carrier);
    table_t *agg = find(c, AGGREGATOR);
    if (agg == t)
        agg = NULL;
    /* the rules' words are in lower case; so is this copy of the text
     * (carrier texts are at most CS_SHORT_MAX bytes; a longer one is
     * matched on its start) */
    char low[CS_SHORT_MAX + 1];
    if (text) {
        cs_strlcpy(low, text, sizeof low);
        lower(low);
        text = low;
    }
    /* the code without the blanks around it: a carrier's fixed-width
     * field (" FS", "13  ") is the code its table lists */
    char trimmed[CS_ID_MAX + 1];
    if (code) {
        size_t n;
        const char *p = cs_span_trim(code, &n);
        if (n < sizeof trimmed) { /* an event's codes fit; a longer one is left as it is */
            memcpy(trimmed, p, n);
            trimmed[n] = '\0';
            code = trimmed;
        }
    }
    const rule_t *r = kind == CS_CODE_AGGREGATOR ? match_aggregator(agg, code, text) : NULL;
    if (!r)
        r = match_code(t, code, SIZE_MAX, text);
    if (!r)
        r = match_text(t, text, false);
    if (!r && kind != CS_CODE_AGGREGATOR)
        r = match_aggregator(agg, code, text);
    memset(out, 0, sizeof *out);
    if (r) {
        out->status = r->status;
        out->reason = r->reason;
        /* a plain code rule that does not say why (a generic code: DHL's
         * "transit", "failure") takes the reason of the first of the
         * carrier's text rules with one that the text matches ("beim
         * Zoll"); the status stays the code's. Text rules, and code rules
         * with words, say all the table's author meant. */
        bool plain = r->code[0] && !r->text[0] && !r->no_reason;
        const rule_t *why = plain && !says_why(r->reason) ? match_text(t, text, true) : NULL;
        if (why)
            out->reason = why->reason;
        return;
    }
    out->status = CS_TRACK_IN_TRANSIT;
    out->unmapped = true;
}

void cs_carriers_count_unmapped(cs_carriers_t *c, const char *carrier)
{
    table_t *t = find(c, carrier);
    if (t && strcmp(t->carrier, AGGREGATOR) != 0)
        atomic_fetch_add(&t->unmapped, 1);
    else if (c)
        atomic_fetch_add(&c->unmapped_other, 1);
}

void cs_carriers_map(cs_carriers_t *c, const char *carrier, const char *code, const char *text,
                     cs_scan_mapping_t *out)
{
    cs_carriers_map_code(c, carrier, code, CS_CODE_CARRIER, text, out);
}

/* The event's stored text again, from its JSON. */
static cs_rc rebuild(cs_event_t *ev, cs_err_t *err)
{
    cs_free(ev->body);
    ev->body = NULL;
    ev->body_len = 0;
    ev->normalized = true;
    return cs_event_serialize(ev, err);
}

/* A scan whose producer gave its status: that status stands and the tables
 * are not asked, but `unmapped` says that no table knew the scan's raw
 * code, which is ours to say. The producer's claim is kept only when the
 * scan has a raw code or text that the tables indeed do not know (as on a
 * re-import of scans Consonance stored unmapped); otherwise it is dropped,
 * so that a scan the producer mapped is neither shown with its raw text
 * as one nobody could read nor counted in
 * consonance_scans_unmapped_total, whose counts say what a table lacks. */
static cs_rc check_unmapped_claim(cs_carriers_t *c, cs_event_t *ev, cs_code_kind_t kind,
                                  cs_err_t *err)
{
    cs_scan_t *s = &ev->u.scan;
    cs_scan_mapping_t m;
    if (!s->unmapped)
        return CS_OK;
    if (s->carrier_code || s->carrier_text) {
        cs_carriers_map_code(c, s->carrier, s->carrier_code, kind, s->carrier_text, &m);
        if (m.unmapped)
            return CS_OK;
    }
    (void)json_object_del(json_object_get(ev->json, "data"), "unmapped");
    s->unmapped = false;
    return rebuild(ev, err);
}

cs_rc cs_carriers_normalize(cs_carriers_t *c, cs_event_t *ev, cs_err_t *err)
{
    if (ev->type != CS_EV_TRACKING_EVENT)
        return CS_OK;
    cs_scan_t *s = &ev->u.scan;
    cs_scan_mapping_t m;
    cs_code_kind_t kind = ev->source && strcmp(ev->source, CS_SCAN_SOURCE_AFTERSHIP) == 0
                              ? CS_CODE_AGGREGATOR
                              : CS_CODE_CARRIER;
    if (s->status_given)
        return check_unmapped_claim(c, ev, kind, err);
    cs_carriers_map_code(c, s->carrier, s->carrier_code, kind, s->carrier_text, &m);
    json_t *d = json_object_get(ev->json, "data");
    if (json_object_set_new(d, "status", json_string(cs_track_status_name(m.status))))
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    /* a reason given by the producer stands; else the table's */
    if (s->reason == CS_INCIDENT_NONE && m.reason != CS_INCIDENT_NONE) {
        if (json_object_set_new(d, "reason", json_string(cs_incident_name(m.reason))))
            return cs_errf(err, CS_ERR_NOMEM, "out of memory");
        s->reason = m.reason;
    }
    /* the tables decide: an `unmapped` the producer sent is replaced, so the
     * stored event says what the scans table and the counter say */
    if (!m.unmapped)
        (void)json_object_del(d, "unmapped"); /* -1: there was none */
    else if (json_object_set_new(d, "unmapped", json_true()))
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    s->status = m.status;
    s->status_given = true;
    s->unmapped = m.unmapped;
    return rebuild(ev, err);
}

void cs_carriers_unmapped(cs_carriers_t *c, void (*fn)(const char *carrier, uint64_t n, void *ud),
                          void *ud)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->tables[i].carrier, AGGREGATOR) != 0)
            fn(c->tables[i].carrier, atomic_load(&c->tables[i].unmapped), ud);
    fn("other", atomic_load(&c->unmapped_other), ud);
}
