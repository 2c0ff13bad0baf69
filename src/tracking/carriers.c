/*
 * carriers.c -- see carriers.h.
 */
#include "carriers.h"

#include <ctype.h>
#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define AGGREGATOR "aggregator"
#define MATCH_MAX 128

typedef enum { M_CODE, M_PREFIX, M_TEXT } match_kind_t;

typedef struct rule {
    match_kind_t kind;
    char match[MATCH_MAX]; /* lower case */
    cs_track_status_t status;
    cs_incident_t reason;
} rule_t;

typedef struct table {
    char carrier[CS_ID_MAX + 1];
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

const char *cs_carrier_display_name(const char *c)
{
    static const struct {
        const char *id, *name;
    } names[] = {
        { "dhl", "DHL" }, { "dhl_express", "DHL Express" }, { "dpd", "DPD" },
        { "hermes", "Hermes" }, { "gls", "GLS" }, { "ups", "UPS" }, { "fedex", "FedEx" },
    };
    if (!c)
        return "the carrier";
    for (size_t i = 0; i < CS_ARRAY_LEN(names); i++)
        if (strcmp(names[i].id, c) == 0)
            return names[i].name;
    return c;
}

size_t cs_carriers_count(const cs_carriers_t *c)
{
    return c ? c->n : 0;
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

static table_t *find(cs_carriers_t *c, const char *carrier)
{
    for (size_t i = 0; carrier && i < c->n; i++)
        if (strcmp(c->tables[i].carrier, carrier) == 0)
            return &c->tables[i];
    return NULL;
}

cs_rc cs_carriers_add(cs_carriers_t *c, const char *carrier, const char *text, size_t len,
                      const char *file, cs_err_t *err)
{
    size_t cl = strlen(carrier);
    bool id_ok = cl > 0 && cl <= CS_ID_MAX;
    for (size_t i = 0; id_ok && i < cl; i++)
        id_ok = islower((unsigned char)carrier[i]) || isdigit((unsigned char)carrier[i]) ||
                carrier[i] == '_' || carrier[i] == '-';
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
    for (size_t pos = 0; pos < len;) {
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
        const char *m = f[0];
        if (strncmp(m, "text:", 5) == 0) {
            r.kind = M_TEXT;
            m += 5;
        } else if (m[strlen(m) - 1] == '*') {
            r.kind = M_PREFIX;
        }
        if (!*m || strlen(m) >= MATCH_MAX)
            return cs_errf(err, CS_ERR_CONFIG, "%s:%d: match: expected 1 to %d characters",
                           file, line, MATCH_MAX - 1);
        cs_strlcpy(r.match, m, sizeof r.match);
        if (r.kind == M_PREFIX)
            r.match[strlen(r.match) - 1] = '\0';
        if (!r.match[0])
            return cs_errf(err, CS_ERR_CONFIG, "%s:%d: match: a prefix needs a character "
                                               "before the '*'",
                           file, line);
        lower(r.match);
        int st = cs_track_status_from_name(f[1]);
        if (st < 0)
            return cs_errf(err, CS_ERR_CONFIG,
                           "%s:%d: status: '%s' is not one of info_received, in_transit, "
                           "out_for_delivery, failed_attempt, available_for_pickup, delivered, "
                           "exception, returned_to_sender",
                           file, line, f[1]);
        r.status = (cs_track_status_t)st;
        if (nf >= 3 && *f[2]) {
            int rs = cs_incident_from_name(f[2]);
            if (rs < 0)
                return cs_errf(err, CS_ERR_CONFIG,
                               "%s:%d: reason: '%s' is not one of address_problem, customs, "
                               "weather, damaged, refused, held_at_depot, recipient_absent, "
                               "lost, delayed, other",
                               file, line, f[2]);
            r.reason = (cs_incident_t)rs;
        }
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
        return cs_errf(err, CS_ERR_CONFIG, "carriers folder %s cannot be read", dir);
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
                rc = cs_errf(err, CS_ERR_CONFIG, "%s cannot be read", path);
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

/* Case-insensitive substring. */
static bool contains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return true;
    return false;
}

static const rule_t *match_code(const table_t *t, const char *code)
{
    for (size_t i = 0; t && code && i < t->n; i++) {
        const rule_t *r = &t->rules[i];
        if ((r->kind == M_CODE && strcasecmp(r->match, code) == 0) ||
            (r->kind == M_PREFIX && strncasecmp(r->match, code, strlen(r->match)) == 0))
            return r;
    }
    return NULL;
}

static const rule_t *match_text(const table_t *t, const char *text)
{
    for (size_t i = 0; t && text && i < t->n; i++)
        if (t->rules[i].kind == M_TEXT && contains(text, t->rules[i].match))
            return &t->rules[i];
    return NULL;
}

void cs_carriers_map(cs_carriers_t *c, const char *carrier, const char *code, const char *text,
                     cs_scan_mapping_t *out)
{
    table_t *t = c ? find(c, carrier) : NULL;
    table_t *agg = c ? find(c, AGGREGATOR) : NULL;
    const rule_t *r = match_code(t, code);
    if (!r)
        r = match_text(t, text);
    if (!r && agg != t)
        r = match_code(agg, code);
    memset(out, 0, sizeof *out);
    if (r) {
        out->status = r->status;
        out->reason = r->reason;
        return;
    }
    out->status = CS_TRACK_IN_TRANSIT;
    out->unmapped = true;
    if (t)
        atomic_fetch_add(&t->unmapped, 1);
    else if (c)
        atomic_fetch_add(&c->unmapped_other, 1);
}

cs_rc cs_carriers_normalize(cs_carriers_t *c, cs_event_t *ev, cs_err_t *err)
{
    if (ev->type != CS_EV_TRACKING_EVENT || ev->u.scan.status_given)
        return CS_OK;
    cs_scan_t *s = &ev->u.scan;
    cs_scan_mapping_t m;
    cs_carriers_map(c, s->carrier, s->carrier_code, s->carrier_text, &m);
    json_t *d = json_object_get(ev->json, "data");
    if (json_object_set_new(d, "status", json_string(cs_track_status_name(m.status))))
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    /* a reason given by the producer stands; else the table's */
    if (s->reason == CS_INCIDENT_NONE && m.reason != CS_INCIDENT_NONE) {
        if (json_object_set_new(d, "reason", json_string(cs_incident_name(m.reason))))
            return cs_errf(err, CS_ERR_NOMEM, "out of memory");
        s->reason = m.reason;
    }
    if (m.unmapped && json_object_set_new(d, "unmapped", json_true()))
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    s->status = m.status;
    s->status_given = true;
    s->unmapped = m.unmapped;
    cs_free(ev->body);
    ev->body = NULL;
    ev->body_len = 0;
    ev->normalized = true;
    return cs_event_serialize(ev, err);
}

void cs_carriers_unmapped(cs_carriers_t *c, void (*fn)(const char *carrier, uint64_t n, void *ud),
                          void *ud)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        fn(c->tables[i].carrier, atomic_load(&c->tables[i].unmapped), ud);
    fn("other", atomic_load(&c->unmapped_other), ud);
}
