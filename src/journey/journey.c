/*
 * journey.c -- YAML (libyaml document API) to a validated journey program.
 *
 * Steps are structured (sequences, if/then/else, wait_for with on_timeout)
 * and compile to a flat instruction list with jump targets. A step may carry
 * an `id` and be the target of a `goto`; jumps go forward only, so journeys
 * are acyclic and always end. Every error names file, line and field path.
 */
#include "journey.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "../lib/cs_json.h"
#include "../model/event.h"

#define NODES_MAX 20000 /* bounds the walk (aliases share nodes) */
#define LABELS_MAX 128

typedef struct label {
    char id[CS_JOURNEY_ID_MAX + 1];
    int pc;
} label_t;

typedef struct jump {
    char id[CS_JOURNEY_ID_MAX + 1];
    int pc;
    int line;
    char field[96];
} jump_t;

typedef struct jc {
    const char *file;
    yaml_document_t *doc;
    cs_err_t *err;
    cs_rc rc;
    cs_journey_t *j;
    int cap;
    long walked;
    label_t labels[LABELS_MAX];
    int nlabels;
    jump_t jumps[LABELS_MAX];
    int njumps;
    bool stored; /* a stored version: only the checks its release made */
    bool ended;  /* the steps compile_steps compiled last never fall through */
} jc_t;

static const char *const class_names[] = { "marketing", "ask", "reassurance", "service",
                                            "transactional" };
static const struct {
    const char *name;
    unsigned bit;
} exit_names[] = {
    { "order_cancelled", CS_EXIT_ORDER_CANCELLED }, { "return_requested", CS_EXIT_RETURN_REQUESTED },
    { "ticket_opened", CS_EXIT_TICKET_OPENED },     { "unsubscribed", CS_EXIT_UNSUBSCRIBED },
    { "ordered_again", CS_EXIT_ORDERED_AGAIN },     { "feedback_given", CS_EXIT_FEEDBACK_GIVEN },
};
/* roots a condition may read: the runtime's context (docs/journeys.md) */
static const char *const context_roots[] = { "order", "customer", "shipment", "event", "risk",
                                             "run" };
/* The fields of the roots with a fixed shape (the store's journey_context,
 * and risk and run as the runtime builds them; test_journeys holds the
 * store's to this): a path naming another is a typo that would read null
 * for good. `event` is the event's own data, any field. */
static const char *const customer_fields[] = {
    "id", "email", "phone", "name", "locale", "timezone", "consents", "first_seen_at",
    "orders_count", "first_order_at", "last_order_at", "last_order_id", "unsubscribed",
    "unsubscribed_channels", "bounced", NULL
};
static const char *const order_fields[] = {
    "id", "customer_id", "currency", "placed_at", "subtotal", "shipping", "tax", "discount",
    "total", "promised_from", "promised_to", "promised_to_ms", "due_to_ms", "status", "at_risk",
    "attributes", "other_orders", "orders_before", "other_orders_average", "price_ratio",
    "items", "items_count", "shipments", "shipments_count", "several_parcels", "ticket_open",
    "refund_pending", NULL
};
static const char *const shipment_fields[] = { "id", "carrier", "service", "tracking_number",
                                               "status", "status_at", "delivered_at",
                                               "cancelled_at", "refused", NULL };
static const char *const risk_fields[] = { "first_purchase", "late", "price_ratio", NULL };
static const char *const run_fields[] = { "journey", "version", "id", NULL };

static const char *const *root_fields(const char *root, size_t n)
{
    static const struct {
        const char *root;
        const char *const *fields;
    } roots[] = { { "customer", customer_fields }, { "order", order_fields },
                  { "shipment", shipment_fields }, { "risk", risk_fields },
                  { "run", run_fields } };
    for (size_t i = 0; i < CS_ARRAY_LEN(roots); i++)
        if (strlen(roots[i].root) == n && strncmp(root, roots[i].root, n) == 0)
            return roots[i].fields;
    return NULL;
}

bool cs_journey_context_field(const char *root, const char *field, size_t n)
{
    const char *const *f = root_fields(root, strlen(root));
    if (!f)
        return true;
    for (; *f; f++)
        if (strlen(*f) == n && strncmp(field, *f, n) == 0)
            return true;
    return false;
}

const char *cs_msg_class_name(cs_msg_class_t c)
{
    return (unsigned)c < CS_ARRAY_LEN(class_names) ? class_names[c] : "?";
}

bool cs_msg_class_parse(const char *s, cs_msg_class_t *out)
{
    for (size_t i = 0; i < CS_ARRAY_LEN(class_names); i++)
        if (strcmp(s, class_names[i]) == 0) {
            *out = (cs_msg_class_t)i;
            return true;
        }
    return false;
}

bool cs_first_purchase(const json_t *customer, const json_t *order)
{
    const json_t *before = json_object_get(order, "orders_before");
    if (json_is_integer(before))
        return json_integer_value(before) == 0;
    return customer && json_integer_value(json_object_get(customer, "orders_count")) <= 1;
}

/* ---- error reporting ---- */

static int line_of(const yaml_node_t *n) { return n ? (int)n->start_mark.line + 1 : 0; }

static bool jerr(jc_t *c, const yaml_node_t *n, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool jerr(jc_t *c, const yaml_node_t *n, const char *field, const char *fmt, ...)
{
    if (c->rc)
        return false;
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* (no node: the file as a whole, which has no line to name) */
    if (n)
        c->rc = cs_err_field(c->err, CS_ERR_INVALID, field, "%s:%d: %s: %s", c->file,
                             line_of(n), field, msg);
    else
        c->rc = cs_err_field(c->err, CS_ERR_INVALID, field, "%s: %s: %s", c->file, field, msg);
    return false;
}

static bool oom(jc_t *c)
{
    if (!c->rc)
        c->rc = cs_errf(c->err, CS_ERR_NOMEM, "%s: out of memory", c->file);
    return false;
}

/* ---- YAML access ---- */

static yaml_node_t *node(jc_t *c, int id)
{
    if (++c->walked > NODES_MAX) {
        jerr(c, NULL, "(file)", "too many YAML nodes (aliases?)");
        return NULL;
    }
    return yaml_document_get_node(c->doc, id);
}

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static bool is_map(const yaml_node_t *n) { return n && n->type == YAML_MAPPING_NODE; }
static bool is_seq(const yaml_node_t *n) { return n && n->type == YAML_SEQUENCE_NODE; }

/* Check a mapping's keys against `allowed` (NULL-terminated); no duplicates. */
static bool check_keys(jc_t *c, yaml_node_t *m, const char *field, const char *const *allowed)
{
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(c, p->key);
        const char *key = scalar(k);
        if (!key)
            return c->rc ? false : jerr(c, k, field, "keys must be plain words");
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            ok = ok || strcmp(*a, key) == 0;
        if (!ok) {
            char list[256] = "";
            for (const char *const *a = allowed; *a; a++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                         a == allowed ? "" : ", ", *a);
            return jerr(c, k, field, "unknown field '%s' (expected one of: %s)", key, list);
        }
        for (yaml_node_pair_t *q = m->data.mapping.pairs.start; q < p; q++) {
            const char *other = scalar(yaml_document_get_node(c->doc, q->key));
            if (other && strcmp(other, key) == 0)
                return jerr(c, k, field, "field '%s' appears twice", key);
        }
    }
    return true;
}

static yaml_node_t *get(jc_t *c, yaml_node_t *m, const char *key)
{
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        const char *k = scalar(yaml_document_get_node(c->doc, p->key));
        if (k && strcmp(k, key) == 0)
            return node(c, p->value);
    }
    return NULL;
}

/* A field that must be there: when it is missing the error names the line
 * of the mapping that lacks it (a missing node has no line of its own). */
static yaml_node_t *need(jc_t *c, yaml_node_t *m, const char *key, const char *field,
                         const char *what)
{
    yaml_node_t *n = get(c, m, key);
    if (!n)
        jerr(c, m, field, "missing: %s", what);
    return n;
}

/* dst = base + "." + key, truncated to size */
static void sub(char *dst, size_t size, const char *base, const char *key)
{
    size_t n = cs_strlcpy(dst, base, size);
    if (*base && n + 1 < size) {
        dst[n++] = '.';
        dst[n] = '\0';
    }
    if (n < size)
        cs_strlcpy(dst + n, key, size - n);
}

static const char *want_scalar(jc_t *c, yaml_node_t *n, const char *field, const char *what)
{
    const char *s = scalar(n);
    if (!s || !*s) {
        jerr(c, n, field, "expected %s", what);
        return NULL;
    }
    return s;
}

static bool want_bool(jc_t *c, yaml_node_t *n, const char *field, bool *out)
{
    const char *s = scalar(n);
    if (s && strcmp(s, "true") == 0)
        *out = true;
    else if (s && strcmp(s, "false") == 0)
        *out = false;
    else
        return jerr(c, n, field, "expected true or false");
    return true;
}

static bool want_duration(jc_t *c, yaml_node_t *n, const char *field, cs_ms_t *out)
{
    const char *s = scalar(n);
    if (!s || !cs_duration_parse(s, out) || *out <= 0)
        return jerr(c, n, field,
                    "expected a duration like 30m, 2h, 3d or 1w (at most ten years), got '%s'",
                    s ? s : "(not a text)");
    return true;
}

static bool want_id(jc_t *c, yaml_node_t *n, const char *field, char *out)
{
    const char *s = want_scalar(c, n, field, "an id");
    if (!s)
        return false;
    size_t len = strlen(s);
    bool ok = len <= CS_JOURNEY_ID_MAX;
    for (size_t i = 0; ok && i < len; i++)
        ok = islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_' ||
             s[i] == '-';
    if (!ok)
        return jerr(c, n, field, "'%s' is not an id (a-z, 0-9, _ and -, at most %d)", s,
                    CS_JOURNEY_ID_MAX);
    memcpy(out, s, len + 1);
    return true;
}

typedef struct root_check {
    jc_t *c;
    yaml_node_t *n;
    const char *field;
} root_check_t;

static bool check_root(const char *path, void *ud)
{
    root_check_t *rc = ud;
    const char *dot = strchr(path, '.');
    size_t n = dot ? (size_t)(dot - path) : strlen(path);
    for (size_t i = 0; i < CS_ARRAY_LEN(context_roots); i++) {
        if (strlen(context_roots[i]) != n || strncmp(path, context_roots[i], n) != 0)
            continue;
        if (!dot || rc->c->stored)
            return true;
        char root[16];
        snprintf(root, sizeof root, "%.*s", (int)n, path);
        const char *field = dot + 1, *end = strchr(field, '.');
        size_t fn = end ? (size_t)(end - field) : strlen(field);
        if (cs_journey_context_field(root, field, fn))
            return true;
        jerr(rc->c, rc->n, rc->field,
             "'%s': %s has no field '%.*s' (docs/journeys.md lists the context's fields)", path,
             root, (int)fn, field);
        return false;
    }
    jerr(rc->c, rc->n, rc->field,
         "'%s' is not in the journey context (paths start with order, customer, shipment, event, "
         "risk or run)",
         path);
    return false;
}

static bool want_cond(jc_t *c, yaml_node_t *n, const char *field, cs_expr_t **out)
{
    const char *s = want_scalar(c, n, field, "a condition like \"order.total >= 100\"");
    if (!s)
        return false;
    cs_err_t e;
    if (cs_expr_compile(s, out, &e) != CS_OK)
        return jerr(c, n, field, "%s", e.msg);
    root_check_t rc = { c, n, field };
    cs_expr_paths(*out, check_root, &rc);
    return c->rc == CS_OK;
}

static bool want_event(jc_t *c, yaml_node_t *n, const char *field, int *out)
{
    const char *s = want_scalar(c, n, field, "an event type like order.placed");
    if (!s)
        return false;
    cs_event_type_t t = cs_event_type_from_name(s);
    if (t == CS_EV_UNKNOWN)
        return jerr(c, n, field, "unknown event type '%s' (see docs/events.md)", s);
    *out = (int)t;
    return true;
}

/* ---- the program ---- */

static cs_instr_t *emit(jc_t *c, cs_op_t op, const yaml_node_t *at)
{
    if (c->rc)
        return NULL;
    if (c->j->n >= CS_JOURNEY_STEPS_MAX * 3) {
        jerr(c, at, "steps", "too many steps (at most %d)", CS_JOURNEY_STEPS_MAX);
        return NULL;
    }
    if (c->j->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 16;
        cs_instr_t *p = cs_realloc(c->j->prog, (size_t)cap * sizeof *p);
        if (!p) {
            oom(c);
            return NULL;
        }
        c->j->prog = p;
        c->cap = cap;
    }
    cs_instr_t *k = &c->j->prog[c->j->n++];
    memset(k, 0, sizeof *k);
    k->op = op;
    k->line = line_of(at);
    k->target = -1;
    return k;
}

static bool compile_steps(jc_t *c, yaml_node_t *seq, const char *field);

static bool step_send(jc_t *c, yaml_node_t *v, const char *f)
{
    static const char *const keys[] = { "channel", "template", "class", NULL };
    char sf[128];
    if (!is_map(v))
        return jerr(c, v, f, "expected {channel, template, class}");
    if (!check_keys(c, v, f, keys))
        return false;
    cs_instr_t *k = emit(c, CS_OP_SEND, v);
    if (!k)
        return false;
    sub(sf, sizeof sf, f, "channel");
    yaml_node_t *ch = get(c, v, "channel");
    if (!ch)
        return jerr(c, v, sf, "missing: email, sms, whatsapp, or a list in order of preference");
    yaml_node_item_t one = 0, *items = &one, *end = &one + 1;
    if (is_seq(ch)) {
        items = ch->data.sequence.items.start;
        end = ch->data.sequence.items.top;
        if (items == end)
            return jerr(c, ch, sf, "the list of channels is empty");
    }
    for (yaml_node_item_t *it = items; it < end; it++) {
        yaml_node_t *cn = is_seq(ch) ? node(c, *it) : ch;
        const char *s = scalar(cn);
        int chan = s ? cs_channel_from_name(s) : -1;
        if (chan < 0)
            return jerr(c, cn, sf, "'%s' is not a channel (email, sms or whatsapp)",
                        s ? s : "(not a text)");
        if (k->nchannels == CS_CHANNELS_MAX)
            return jerr(c, cn, sf, "at most %d channels", CS_CHANNELS_MAX);
        for (int i = 0; i < k->nchannels; i++)
            if ((int)k->channels[i] == chan)
                return jerr(c, cn, sf, "'%s' is listed twice", s);
        k->channels[k->nchannels++] = (cs_channel_t)chan;
    }
    sub(sf, sizeof sf, f, "template");
    const char *t = want_scalar(c, need(c, v, "template", sf, "a template name"), sf,
                                "a template name");
    if (!t)
        return false;
    if (!(k->text = cs_strdup(t)))
        return oom(c);
    sub(sf, sizeof sf, f, "class");
    const char *cls = want_scalar(c,
                                  need(c, v, "class", sf,
                                       "a message class: transactional, service, reassurance, "
                                       "ask or marketing"),
                                  sf,
                                  "a message class: transactional, service, reassurance, ask or "
                                  "marketing");
    if (!cls)
        return false;
    if (!cs_msg_class_parse(cls, &k->cls))
        return jerr(c, get(c, v, "class"), sf,
                    "'%s' is not a class (transactional, service, reassurance, ask, marketing)",
                    cls);
    return true;
}

static bool any_path(const char *path, void *ud)
{
    (void)path;
    *(bool *)ud = true;
    return false;
}

/* wait: 3d, or wait: {days: order.attributes.replenish_days} */
static bool step_wait(jc_t *c, yaml_node_t *v, const char *f)
{
    cs_instr_t *k = emit(c, CS_OP_WAIT, v);
    if (!k)
        return false;
    if (!is_map(v))
        return want_duration(c, v, f, &k->ms);
    static const char *const keys[] = { "days", NULL };
    char sf[128];
    if (!check_keys(c, v, f, keys))
        return false;
    sub(sf, sizeof sf, f, "days");
    yaml_node_t *d = need(c, v, "days", sf, "a context path holding a number of days");
    const char *path = want_scalar(c, d, sf, "a context path holding a number of days, like "
                                             "order.attributes.replenish_days");
    if (!path)
        return false;
    cs_expr_t *e;
    cs_err_t perr;
    if (cs_expr_compile(path, &e, &perr) != CS_OK)
        return jerr(c, d, sf, "%s", perr.msg);
    bool plain = true;
    for (const char *p = path; *p; p++)
        plain = plain && (isalnum((unsigned char)*p) || *p == '_' || *p == '.');
    root_check_t rc = { c, d, sf };
    cs_expr_paths(e, check_root, &rc);
    bool is_path = false; /* not a number or true/false/null, which no run could read */
    cs_expr_paths(e, any_path, &is_path);
    cs_expr_free(e);
    if (c->rc)
        return false;
    if (!plain || (!is_path && !c->stored))
        return jerr(c, d, sf,
                    "expected a plain path like order.attributes.replenish_days, got '%s' (a "
                    "fixed wait is written wait: 30d)",
                    path);
    if (!(k->text = cs_strdup(path)))
        return oom(c);
    return true;
}

static bool step_wait_until(jc_t *c, yaml_node_t *v, const char *f)
{
    static const char *const keys[] = { "time", "business_day", NULL };
    char sf[128];
    if (!is_map(v))
        return jerr(c, v, f, "expected {time: \"HH:MM\", business_day: true|false}");
    if (!check_keys(c, v, f, keys))
        return false;
    cs_instr_t *k = emit(c, CS_OP_WAIT_UNTIL, v);
    if (!k)
        return false;
    sub(sf, sizeof sf, f, "time");
    yaml_node_t *tn = need(c, v, "time", sf, "a local time of day \"HH:MM\"");
    const char *t = want_scalar(c, tn, sf, "a local time of day \"HH:MM\"");
    if (!t)
        return false;
    int h, m;
    char extra;
    if (sscanf(t, "%2d:%2d%c", &h, &m, &extra) != 2 || h < 0 || h > 23 || m < 0 || m > 59 ||
        strlen(t) != 5)
        return jerr(c, tn, sf, "expected a local time of day \"HH:MM\" (00:00-23:59), got '%s'",
                    t);
    k->hour = h;
    k->minute = m;
    yaml_node_t *bd = get(c, v, "business_day");
    sub(sf, sizeof sf, f, "business_day");
    return !bd || want_bool(c, bd, sf, &k->business_day);
}

static bool step_wait_for(jc_t *c, yaml_node_t *v, const char *f)
{
    static const char *const keys[] = { "event", "if", "timeout", "on_timeout", NULL };
    char sf[128];
    if (!is_map(v))
        return jerr(c, v, f, "expected {event, if, timeout, on_timeout}");
    if (!check_keys(c, v, f, keys))
        return false;
    cs_instr_t *k = emit(c, CS_OP_WAIT_FOR, v);
    if (!k)
        return false;
    int at = c->j->n - 1;
    sub(sf, sizeof sf, f, "event");
    if (!want_event(c, need(c, v, "event", sf, "the event to wait for, like tracking.event"), sf,
                    &k->event_type))
        return false;
    yaml_node_t *cond = get(c, v, "if");
    sub(sf, sizeof sf, f, "if");
    if (cond && !want_cond(c, cond, sf, &k->cond))
        return false;
    sub(sf, sizeof sf, f, "timeout");
    yaml_node_t *to = get(c, v, "timeout");
    if (!to)
        return jerr(c, v, sf, "missing: how long to wait at most, like 14d");
    if (!want_duration(c, to, sf, &k->ms))
        return false;
    /* on_timeout: exit (default), continue, or steps */
    yaml_node_t *ot = get(c, v, "on_timeout");
    sub(sf, sizeof sf, f, "on_timeout");
    const char *ots = scalar(ot);
    if (!ot || (ots && strcmp(ots, "exit") == 0)) {
        cs_instr_t *jmp = emit(c, CS_OP_GOTO, v); /* satisfied: skip the exit */
        cs_instr_t *ex = jmp ? emit(c, CS_OP_EXIT, v) : NULL;
        if (!ex || !(ex->text = cs_strdup("timeout")))
            return c->rc ? false : oom(c);
        c->j->prog[at].target = c->j->n - 1;
        c->j->prog[at + 1].target = c->j->n;
        return true;
    }
    if (ots && strcmp(ots, "continue") == 0) {
        c->j->prog[at].target = at + 1;
        return true;
    }
    if (!is_seq(ot))
        return jerr(c, ot, sf, "expected exit, continue, or a list of steps");
    cs_instr_t *jmp = emit(c, CS_OP_GOTO, v);
    if (!jmp)
        return false;
    int jmp_at = c->j->n - 1;
    c->j->prog[at].target = c->j->n;
    if (!compile_steps(c, ot, sf))
        return false;
    c->j->prog[jmp_at].target = c->j->n;
    return true;
}

static bool step_if(jc_t *c, yaml_node_t *step, yaml_node_t *v, const char *f)
{
    char sf[128];
    sub(sf, sizeof sf, f, "if");
    cs_instr_t *k = emit(c, CS_OP_BRANCH, v);
    if (!k)
        return false;
    int at = c->j->n - 1;
    if (!want_cond(c, v, sf, &c->j->prog[at].cond))
        return false;
    yaml_node_t *then = get(c, step, "then"), *els = get(c, step, "else");
    sub(sf, sizeof sf, f, "then");
    if (!then || !is_seq(then))
        return jerr(c, then ? then : step, sf, "expected a list of steps");
    if (!compile_steps(c, then, sf))
        return false;
    bool then_ends = c->ended;
    c->ended = false;
    if (!els) {
        c->j->prog[at].target = c->j->n;
        return true;
    }
    sub(sf, sizeof sf, f, "else");
    if (!is_seq(els))
        return jerr(c, els, sf, "expected a list of steps");
    if (!emit(c, CS_OP_GOTO, els))
        return false;
    int jmp = c->j->n - 1;
    c->j->prog[at].target = c->j->n;
    if (!compile_steps(c, els, sf))
        return false;
    c->j->prog[jmp].target = c->j->n;
    c->ended = c->ended && then_ends; /* both branches jump away or end the journey */
    return true;
}

const char *cs_discount_kind_name(cs_discount_kind_t k)
{
    static const char *const names[] = { "percent", "amount", "free_shipping" };
    return (unsigned)k < CS_ARRAY_LEN(names) ? names[k] : NULL;
}

static bool want_number(jc_t *c, yaml_node_t *n, const char *field, double lo, double hi,
                        double *out)
{
    const char *s = scalar(n);
    double v = 0;
    size_t len = s ? cs_parse_number(s, &v) : 0; /* no hex, no "inf" */
    if (!s || !len || s[len] || !(v >= lo && v <= hi))
        return jerr(c, n, field, "expected a number from %g to %g, got '%s'", lo, hi,
                    s ? s : "(not a number)");
    *out = v;
    return true;
}

/* discount: {percent: 10 | amount: 5 | free_shipping: true, valid: 30d, prefix: DANKE} */
static bool step_discount(jc_t *c, yaml_node_t *v, const char *f)
{
    static const char *const keys[] = { "percent", "amount", "free_shipping", "valid", "prefix",
                                        NULL };
    char sf[128];
    if (!is_map(v))
        return jerr(c, v, f, "expected {percent: 10} or {amount: 5} or {free_shipping: true}, "
                             "with valid and prefix");
    if (!check_keys(c, v, f, keys))
        return false;
    cs_instr_t *k = emit(c, CS_OP_DISCOUNT, v);
    if (!k)
        return false;
    yaml_node_t *pc = get(c, v, "percent"), *am = get(c, v, "amount"),
                *fs = get(c, v, "free_shipping");
    if ((pc != NULL) + (am != NULL) + (fs != NULL) != 1)
        return jerr(c, v, f, "give exactly one of percent, amount or free_shipping");
    if (pc) {
        sub(sf, sizeof sf, f, "percent");
        k->kind = CS_DISCOUNT_PERCENT;
        if (!want_number(c, pc, sf, 1, 100, &k->value))
            return false;
    } else if (am) {
        sub(sf, sizeof sf, f, "amount");
        k->kind = CS_DISCOUNT_AMOUNT;
        if (!want_number(c, am, sf, 0.01, 100000, &k->value))
            return false;
    } else {
        bool yes;
        sub(sf, sizeof sf, f, "free_shipping");
        k->kind = CS_DISCOUNT_FREE_SHIPPING;
        if (!want_bool(c, fs, sf, &yes))
            return false;
        if (!yes)
            return jerr(c, fs, sf, "free_shipping: false gives nothing; leave the step out");
    }
    k->ms = 30 * CS_MS_PER_DAY;
    yaml_node_t *valid = get(c, v, "valid");
    sub(sf, sizeof sf, f, "valid");
    if (valid && !want_duration(c, valid, sf, &k->ms))
        return false;
    const char *prefix = "CODE";
    yaml_node_t *pn = get(c, v, "prefix");
    sub(sf, sizeof sf, f, "prefix");
    if (pn) {
        prefix = want_scalar(c, pn, sf, "a code prefix of A-Z and 0-9");
        if (!prefix)
            return false;
        size_t len = strlen(prefix);
        bool ok = len >= 1 && len <= 16;
        for (size_t i = 0; ok && i < len; i++)
            ok = isupper((unsigned char)prefix[i]) || isdigit((unsigned char)prefix[i]);
        if (!ok)
            return jerr(c, pn, sf, "expected 1 to 16 of A-Z and 0-9, got '%s'", prefix);
    }
    if (!(k->text = cs_strdup(prefix)))
        return oom(c);
    return true;
}

/* emit: {signal: name, data: {...}} -- a signal event into the log */
static bool step_emit(jc_t *c, yaml_node_t *v, const char *f)
{
    static const char *const keys[] = { "signal", "data", NULL };
    char sf[128];
    if (!is_map(v))
        return jerr(c, v, f, "expected {signal: name, data: {key: value}}");
    if (!check_keys(c, v, f, keys))
        return false;
    cs_instr_t *k = emit(c, CS_OP_EMIT, v);
    if (!k)
        return false;
    char name[CS_JOURNEY_ID_MAX + 1];
    sub(sf, sizeof sf, f, "signal");
    if (!want_id(c, need(c, v, "signal", sf, "the signal's name, like vip_welcomed"), sf, name))
        return false;
    if (!(k->text = cs_strdup(name)))
        return oom(c);
    yaml_node_t *d = get(c, v, "data");
    if (!d)
        return true;
    sub(sf, sizeof sf, f, "data");
    if (!is_map(d))
        return jerr(c, d, sf, "expected a map of names to plain values");
    json_t *o = json_object();
    for (yaml_node_pair_t *pr = d->data.mapping.pairs.start; o && pr < d->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *kn = node(c, pr->key), *vn = node(c, pr->value);
        const char *key = scalar(kn), *val = scalar(vn);
        if (!key || !val) {
            json_decref(o);
            return jerr(c, vn, sf, "expected plain values (text or numbers)");
        }
        /* the signal's properties keep one value per name (a stored
         * version loads as its release read it: the last one) */
        bool twice = json_object_get(o, key) != NULL;
        if (!c->stored && (twice || strcmp(key, "journey") == 0)) {
            json_decref(o);
            return twice ? jerr(c, kn, sf, "'%s' appears twice", key)
                         : jerr(c, kn, sf, "'journey' is set by Consonance (the emitting "
                                           "journey's id); use another name");
        }
        /* an unquoted number, true, false or null keeps its type, so that
         * `event.properties.tier >= 2` and a bare `event.properties.vip` test
         * what was written; quoted values stay text */
        json_t *x = NULL;
        if (vn->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
            x = json_loads(val, JSON_DECODE_ANY, NULL);
            if (x && (json_is_object(x) || json_is_array(x) || json_is_string(x))) {
                json_decref(x);
                x = NULL;
            }
        }
        json_object_set_new(o, key, x ? x : json_string(val));
    }
    k->data = o ? cs_json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    return k->data ? true : oom(c);
}

/* webhook: {url: https://..., event: name} -- a signed POST, through the outbox */
static bool step_webhook(jc_t *c, yaml_node_t *v, const char *f)
{
    static const char *const keys[] = { "url", "event", NULL };
    char sf[128];
    if (!is_map(v))
        return jerr(c, v, f, "expected {url: https://..., event: name}");
    if (!check_keys(c, v, f, keys))
        return false;
    cs_instr_t *k = emit(c, CS_OP_WEBHOOK, v);
    if (!k)
        return false;
    sub(sf, sizeof sf, f, "url");
    const char *url = want_scalar(c, need(c, v, "url", sf, "an http(s) URL"), sf,
                                  "an http(s) URL");
    if (!url)
        return false;
    if ((strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) ||
        strlen(url) > 250 || strpbrk(url, " \t\r\n"))
        return jerr(c, get(c, v, "url"), sf, "expected an http(s) URL of at most 250 characters, "
                                             "got '%s'", url);
    char name[CS_JOURNEY_ID_MAX + 1];
    sub(sf, sizeof sf, f, "event");
    if (!want_id(c, need(c, v, "event", sf, "the event's name, like order_shipped"), sf, name))
        return false;
    if (!(k->url = cs_strdup(url)) || !(k->text = cs_strdup(name)))
        return oom(c);
    c->j->has_webhook = true;
    return true;
}

static bool targeted(const jc_t *c, const char *id)
{
    for (int i = 0; i < c->njumps; i++)
        if (strcmp(c->jumps[i].id, id) == 0)
            return true;
    return false;
}

static bool compile_steps(jc_t *c, yaml_node_t *seq, const char *field)
{
    static const char *const kinds[] = { "send", "wait", "wait_until", "wait_for", "if",
                                         "goto", "exit", "discount", "emit", "webhook", NULL };
    static const char *const step_keys[] = { "id", "send", "wait", "wait_until", "wait_for",
                                             "if", "then", "else", "goto", "exit", "discount",
                                             "emit", "webhook", NULL };
    bool ends = false; /* the previous step never falls through */
    int idx = 0;
    for (yaml_node_item_t *it = seq->data.sequence.items.start;
         it < seq->data.sequence.items.top && !c->rc; it++, idx++) {
        char f[128], sf[128];
        snprintf(f, sizeof f, "%s[%d]", field, idx);
        yaml_node_t *step = node(c, *it);
        if (!is_map(step))
            return jerr(c, step, f, "expected a step like {wait: 3d} or {send: {...}}");
        if (!check_keys(c, step, f, step_keys))
            return false;
        const char *kind = NULL;
        yaml_node_t *v = NULL;
        for (const char *const *k = kinds; *k; k++) {
            yaml_node_t *x = get(c, step, *k);
            if (!x)
                continue;
            if (kind)
                return jerr(c, step, f, "a step does one thing: both '%s' and '%s'", kind, *k);
            kind = *k;
            v = x;
        }
        if (!kind)
            return jerr(c, step, f,
                        "a step needs one of send, wait, wait_until, wait_for, if, goto, exit, "
                        "discount, emit, webhook");
        if ((get(c, step, "then") || get(c, step, "else")) && strcmp(kind, "if") != 0)
            return jerr(c, step, f, "then/else belong to an 'if' step");
        yaml_node_t *idn = get(c, step, "id");
        char id[CS_JOURNEY_ID_MAX + 1] = "";
        sub(sf, sizeof sf, f, "id");
        if (idn && !want_id(c, idn, sf, id))
            return false;
        if (ends && !(id[0] && targeted(c, id)))
            return jerr(c, step, f, "this step can never run: the step before it always "
                                    "jumps away or ends the journey");
        if (id[0]) {
            for (int i = 0; i < c->nlabels; i++)
                if (strcmp(c->labels[i].id, id) == 0)
                    return jerr(c, idn, sf, "id '%s' is used twice", id);
            if (c->nlabels == LABELS_MAX)
                return jerr(c, idn, sf, "at most %d step ids", LABELS_MAX);
            cs_strlcpy(c->labels[c->nlabels].id, id, sizeof c->labels[0].id);
            c->labels[c->nlabels++].pc = c->j->n;
        }
        sub(sf, sizeof sf, f, kind);
        ends = false;
        if (strcmp(kind, "send") == 0) {
            step_send(c, v, sf);
        } else if (strcmp(kind, "wait") == 0) {
            step_wait(c, v, sf);
        } else if (strcmp(kind, "wait_until") == 0) {
            step_wait_until(c, v, sf);
        } else if (strcmp(kind, "wait_for") == 0) {
            step_wait_for(c, v, sf);
        } else if (strcmp(kind, "discount") == 0) {
            step_discount(c, v, sf);
        } else if (strcmp(kind, "emit") == 0) {
            step_emit(c, v, sf);
        } else if (strcmp(kind, "webhook") == 0) {
            step_webhook(c, v, sf);
        } else if (strcmp(kind, "if") == 0) {
            step_if(c, step, v, f);
            ends = c->ended && !c->stored; /* (a check added since: stored versions load) */
        } else if (strcmp(kind, "goto") == 0) {
            jump_t *jp = c->njumps < LABELS_MAX ? &c->jumps[c->njumps] : NULL;
            if (!jp)
                return jerr(c, v, sf, "at most %d gotos", LABELS_MAX);
            if (!want_id(c, v, sf, jp->id) || !emit(c, CS_OP_GOTO, v))
                return false;
            jp->pc = c->j->n - 1;
            jp->line = line_of(v);
            cs_strlcpy(jp->field, sf, sizeof jp->field);
            c->njumps++;
            ends = true;
        } else { /* exit */
            const char *why = want_scalar(c, v, sf, "a reason, like exit: not_first_order");
            cs_instr_t *k = why ? emit(c, CS_OP_EXIT, v) : NULL;
            if (k && !(k->text = cs_strdup(why)))
                return oom(c);
            ends = true;
        }
    }
    c->ended = ends;
    return c->rc == CS_OK;
}

static bool resolve_jumps(jc_t *c)
{
    for (int i = 0; i < c->njumps; i++) {
        jump_t *jp = &c->jumps[i];
        int target = -1;
        for (int l = 0; l < c->nlabels; l++)
            if (strcmp(c->labels[l].id, jp->id) == 0)
                target = c->labels[l].pc;
        if (target < 0) {
            c->rc = cs_err_field(c->err, CS_ERR_INVALID, jp->field,
                                 "%s:%d: %s: no step has id '%s'", c->file, jp->line, jp->field,
                                 jp->id);
            return false;
        }
        if (target <= jp->pc) {
            c->rc = cs_err_field(c->err, CS_ERR_INVALID, jp->field,
                                 "%s:%d: %s: goto '%s' jumps back to an earlier step; journeys "
                                 "cannot loop (that would be a cycle)",
                                 c->file, jp->line, jp->field, jp->id);
            return false;
        }
        c->j->prog[jp->pc].target = target;
    }
    return true;
}

static bool compile_journey(jc_t *c, yaml_node_t *root)
{
    static const char *const keys[] = { "journey", "name", "description", "enabled", "trigger",
                                        "once_per", "exit_when", "steps", NULL };
    cs_journey_t *j = c->j;
    if (!is_map(root))
        return jerr(c, root, "(file)", "expected a journey: a mapping with journey, trigger, "
                                       "steps");
    if (!check_keys(c, root, "(file)", keys))
        return false;
    yaml_node_t *id = get(c, root, "journey");
    if (!id)
        return jerr(c, root, "journey", "missing: the journey's id, like review_request");
    if (!want_id(c, id, "journey", j->id))
        return false;
    yaml_node_t *n = get(c, root, "name");
    if (n) {
        const char *s = want_scalar(c, n, "name", "a text");
        if (!s || !(j->name = cs_strdup(s)))
            return c->rc ? false : oom(c);
    }
    yaml_node_t *d = get(c, root, "description");
    if (d && !scalar(d))
        return jerr(c, d, "description", "expected a text");
    j->enabled = true;
    n = get(c, root, "enabled");
    if (n && !want_bool(c, n, "enabled", &j->enabled))
        return false;

    yaml_node_t *tr = get(c, root, "trigger");
    if (!tr || !is_map(tr))
        return jerr(c, tr ? tr : root, "trigger",
                    "expected {event: order.placed, if: \"condition\"}");
    static const char *const tkeys[] = { "event", "if", NULL };
    if (!check_keys(c, tr, "trigger", tkeys) ||
        !want_event(c, need(c, tr, "event", "trigger.event", "an event type like order.placed"),
                    "trigger.event", &j->trigger_event))
        return false;
    n = get(c, tr, "if");
    if (n && !want_cond(c, n, "trigger.if", &j->trigger_cond))
        return false;

    j->once_per = j->trigger_event == CS_EV_CUSTOMER_UPSERTED ? CS_ONCE_PER_CUSTOMER
                                                              : CS_ONCE_PER_ORDER;
    n = get(c, root, "once_per");
    if (n) {
        const char *s = scalar(n);
        if (s && strcmp(s, "order") == 0)
            j->once_per = CS_ONCE_PER_ORDER;
        else if (s && strcmp(s, "customer") == 0)
            j->once_per = CS_ONCE_PER_CUSTOMER;
        else if (s && strcmp(s, "event") == 0)
            j->once_per = CS_ONCE_PER_EVENT;
        else
            return jerr(c, n, "once_per", "expected order, customer or event");
    }
    /* a run per order of an event that never names one would never start */
    if (j->once_per == CS_ONCE_PER_ORDER && !c->stored &&
        (j->trigger_event == CS_EV_CUSTOMER_UPSERTED || j->trigger_event == CS_EV_MESSAGE_STATUS))
        return jerr(c, n ? n : tr, "once_per",
                    "a %s concerns no order; once_per: customer or event (a run per order "
                    "would never start)",
                    cs_event_type_name((cs_event_type_t)j->trigger_event));
    n = get(c, root, "exit_when");
    if (n) {
        if (!is_seq(n))
            return jerr(c, n, "exit_when", "expected a list like [order_cancelled, unsubscribed]");
        int i = 0;
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
             it++, i++) {
            char f[64];
            snprintf(f, sizeof f, "exit_when[%d]", i);
            yaml_node_t *x = node(c, *it);
            const char *s = scalar(x);
            unsigned bit = 0;
            for (size_t k = 0; s && k < CS_ARRAY_LEN(exit_names); k++)
                if (strcmp(s, exit_names[k].name) == 0)
                    bit = exit_names[k].bit;
            if (!bit)
                return jerr(c, x, f,
                            "'%s' is not an exit condition (order_cancelled, return_requested, "
                            "ticket_opened, unsubscribed, ordered_again, feedback_given)",
                            s ? s : "(not a text)");
            j->exit_mask |= bit;
        }
    }
    yaml_node_t *steps = get(c, root, "steps");
    if (!steps || !is_seq(steps) || steps->data.sequence.items.start == steps->data.sequence.items.top)
        return jerr(c, steps ? steps : root, "steps", "expected a non-empty list of steps");
    if (!compile_steps(c, steps, "steps") || !emit(c, CS_OP_END, steps))
        return false;
    return resolve_jumps(c);
}

void cs_journey_free(cs_journey_t *j)
{
    if (!j)
        return;
    for (int i = 0; i < j->n; i++) {
        cs_expr_free(j->prog[i].cond);
        cs_free(j->prog[i].text);
        cs_free(j->prog[i].data);
        cs_free(j->prog[i].url);
    }
    cs_free(j->prog);
    cs_expr_free(j->trigger_cond);
    cs_free(j->name);
    cs_free(j->file);
    cs_free(j->source);
    cs_free(j);
}

static cs_rc parse(const char *file, const char *src, size_t len, bool stored,
                   cs_journey_t **out, cs_err_t *err)
{
    *out = NULL;
    if (len > CS_JOURNEY_FILE_MAX)
        return cs_errf(err, CS_ERR_TOOBIG, "%s: larger than %d bytes", file, CS_JOURNEY_FILE_MAX);
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return cs_errf(err, CS_ERR_NOMEM, "%s: out of memory", file);
    yaml_parser_set_input_string(&parser, (const unsigned char *)src, len);
    /* One journey per file: a second document (after `---`) would otherwise
     * be dropped unread, and its journey would never run. The stream ends
     * with an empty document (so does a trailing `---`). A stored version is
     * read as before: its first document only. */
    bool loaded = yaml_parser_load(&parser, &doc), second = false;
    size_t second_line = 0;
    if (loaded && !stored) {
        yaml_document_t more;
        if (yaml_parser_load(&parser, &more)) {
            const yaml_node_t *mr = yaml_document_get_root_node(&more);
            second = mr && !(mr->type == YAML_SCALAR_NODE && mr->data.scalar.length == 0);
            second_line = more.start_mark.line + 1;
            yaml_document_delete(&more);
        } else {
            yaml_document_delete(&doc);
            loaded = false;
        }
    }
    if (!loaded) {
        cs_rc rc = cs_errf(err, CS_ERR_INVALID, "%s:%zu: not valid YAML: %s%s%s", file,
                           parser.problem_mark.line + 1,
                           parser.problem ? parser.problem : "syntax error",
                           parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return rc;
    }
    yaml_parser_delete(&parser);
    if (second) {
        yaml_document_delete(&doc);
        return cs_err_field(err, CS_ERR_INVALID, "(file)",
                            "%s:%zu: (file): a second YAML document starts here; one journey "
                            "per file (put it in a file of its own)",
                            file, second_line);
    }
    jc_t c;
    memset(&c, 0, sizeof c);
    c.file = file;
    c.doc = &doc;
    c.err = err;
    c.stored = stored;
    c.j = cs_calloc(1, sizeof *c.j);
    if (!c.j || !(c.j->file = cs_strdup(file)) || !(c.j->source = cs_strndup(src, len))) {
        oom(&c);
    } else {
        c.j->source_len = len;
        cs_sha256_hex(src, len, c.j->hash);
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root)
            jerr(&c, NULL, "(file)",
                 "the file is empty: expected a journey: a mapping with journey, trigger, steps");
        else
            compile_journey(&c, root);
    }
    yaml_document_delete(&doc);
    if (c.rc) {
        cs_journey_free(c.j);
        return c.rc;
    }
    *out = c.j;
    return CS_OK;
}

cs_rc cs_journey_parse(const char *file, const char *src, size_t len, cs_journey_t **out,
                       cs_err_t *err)
{
    return parse(file, src, len, false, out, err);
}

cs_rc cs_journey_parse_stored(const char *file, const char *src, size_t len, cs_journey_t **out,
                              cs_err_t *err)
{
    return parse(file, src, len, true, out, err);
}

cs_rc cs_journey_load_file(const char *path, cs_journey_t **out, cs_err_t *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return cs_errf(err, CS_ERR_IO, "%s: cannot open", path);
    char *buf = cs_malloc(CS_JOURNEY_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return cs_errf(err, CS_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, CS_JOURNEY_FILE_MAX + 1, f);
    bool bad = ferror(f);
    fclose(f);
    cs_rc rc;
    if (bad)
        rc = cs_errf(err, CS_ERR_IO, "%s: read error", path);
    else
        rc = cs_journey_parse(path, buf, n, out, err);
    cs_free(buf);
    return rc;
}

void cs_journey_templates(const cs_journey_t *j, void (*fn)(const char *tmpl, int line, void *ud),
                          void *ud)
{
    for (int i = 0; i < j->n; i++)
        if (j->prog[i].op == CS_OP_SEND)
            fn(j->prog[i].text, j->prog[i].line, ud);
}
