/*
 * store.c -- backend dispatch and the API-key helpers that sit on top of any
 * backend. See store.h.
 */
#include "store.h"

#include <stdio.h>
#include <string.h>

const cs_store_ops_t *const cs_store_backends[] = {
    &cs_store_sqlite_ops,
    &cs_store_pg_ops,
    NULL,
};

void cs_store_opts_default(cs_store_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->durable = true;
}

cs_rc cs_store_open(const char *target, const cs_store_opts_t *opts, cs_store_t **out,
                    cs_err_t *err)
{
    cs_store_opts_t def;
    *out = NULL;
    if (!opts) {
        cs_store_opts_default(&def);
        opts = &def;
    }
    if (!target || !*target)
        return cs_err_field(err, CS_ERR_CONFIG, "store", "no store given; expected sqlite:PATH or postgresql://...");
    for (size_t i = 0; cs_store_backends[i]; i++) {
        const cs_store_ops_t *ops = cs_store_backends[i];
        size_t plen = strlen(ops->prefix);
        if (strncmp(target, ops->prefix, plen) == 0)
            return ops->open(target, opts, out, err);
    }
    return cs_err_field(err, CS_ERR_CONFIG, "store",
                        "unknown store '%.100s'; expected sqlite:PATH or postgresql://...", target);
}

void cs_store_close(cs_store_t **s)
{
    if (!s || !*s)
        return;
    (*s)->ops->close(*s);
    *s = NULL;
}

/* ---- API keys ---- */

static const struct {
    const char *name;
    int bit;
} scope_names[] = {
    {"read", CS_SCOPE_READ},
    {"write", CS_SCOPE_WRITE},
    {"admin", CS_SCOPE_ADMIN},
};

int cs_scopes_parse(const char *s)
{
    int bits = 0;
    const char *p = s;
    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        bool found = false;
        for (size_t i = 0; i < CS_ARRAY_LEN(scope_names); i++) {
            if (strlen(scope_names[i].name) == n && strncmp(p, scope_names[i].name, n) == 0) {
                bits |= scope_names[i].bit;
                found = true;
            }
        }
        if (!found)
            return -1;
        p = end ? end + 1 : NULL;
    }
    return bits ? bits : -1;
}

const char *cs_scopes_format(int scopes, char *buf, size_t size)
{
    size_t used = 0;
    if (size)
        buf[0] = '\0';
    for (size_t i = 0; i < CS_ARRAY_LEN(scope_names); i++) {
        if (!(scopes & scope_names[i].bit))
            continue;
        size_t n = strlen(scope_names[i].name) + (used ? 1 : 0);
        if (used + n + 1 > size)
            break;
        if (used)
            buf[used++] = ',';
        memcpy(buf + used, scope_names[i].name, strlen(scope_names[i].name) + 1);
        used += strlen(scope_names[i].name);
    }
    return buf;
}

cs_rc cs_apikey_create(cs_store_t *s, const char *name, int scopes, cs_ms_t now,
                       char *secret_out, cs_apikey_t *key_out, cs_err_t *err)
{
    cs_apikey_t k;
    memset(&k, 0, sizeof k);
    if (!name || !*name || strlen(name) >= sizeof k.name)
        return cs_err_field(err, CS_ERR_INVALID, "name",
                            "expected a key name of 1 to %zu characters", sizeof k.name - 1);
    if (scopes <= 0 || scopes > (CS_SCOPE_READ | CS_SCOPE_WRITE | CS_SCOPE_ADMIN))
        return cs_err_field(err, CS_ERR_INVALID, "scopes", "expected read, write and/or admin");
    cs_rc rc = cs_random_token("cs_live_", 24, secret_out, CS_APIKEY_SECRET_MAX);
    if (rc)
        return cs_errf(err, rc, "cannot draw random bytes for a key");
    /* the public id is derived from the hash so it reveals nothing */
    cs_sha256_hex(secret_out, strlen(secret_out), k.hash_hex);
    memcpy(k.id, "key_", 4);
    memcpy(k.id + 4, k.hash_hex, 12);
    k.id[16] = '\0';
    cs_strlcpy(k.name, name, sizeof k.name);
    k.scopes = scopes;
    k.created_at = now;
    rc = s->ops->apikey_put(s, &k, err);
    if (rc)
        return rc;
    if (key_out)
        *key_out = k;
    return CS_OK;
}

cs_rc cs_apikey_verify(cs_store_t *s, const char *secret, cs_apikey_t *out, cs_err_t *err)
{
    char hash[CS_SHA256_HEX_LEN];
    if (!secret || !*secret || strlen(secret) >= CS_APIKEY_SECRET_MAX)
        return cs_errf(err, CS_ERR_AUTH, "missing or malformed API key");
    cs_sha256_hex(secret, strlen(secret), hash);
    cs_rc rc = s->ops->apikey_find(s, hash, out, err);
    if (rc == CS_ERR_NOTFOUND)
        return cs_errf(err, CS_ERR_AUTH, "unknown API key");
    if (rc)
        return rc;
    if (out->revoked_at)
        return cs_errf(err, CS_ERR_AUTH, "API key %s was revoked", out->id);
    return CS_OK;
}

const char *cs_run_status_name(int status)
{
    switch (status) {
    case CS_RUN_ACTIVE: return "active";
    case CS_RUN_DONE: return "done";
    case CS_RUN_EXITED: return "exited";
    default: return "unknown";
    }
}

json_t *cs_discount_json(const cs_discount_t *d)
{
    static const char *const kinds[] = { "percent", "amount", "free_shipping" };
    char c[40], e[40];
    json_t *o = json_pack("{s:s,s:s,s:s?,s:s?,s:s,s:s}", "code", d->code, "kind",
                          (unsigned)d->kind < 3 ? kinds[d->kind] : "unknown", "journey",
                          d->journey[0] ? d->journey : NULL, "order_id",
                          d->order_id[0] ? d->order_id : NULL, "created_at",
                          cs_time_format(d->created_at, c, sizeof c), "expires_at",
                          cs_time_format(d->expires_at, e, sizeof e));
    if (o && d->kind != 2)
        json_object_set_new(o, "value", json_real(d->value));
    if (o && d->currency[0])
        json_object_set_new(o, "currency", json_string(d->currency));
    return o;
}

/* A list of channel names as a set (1 << cs_channel_t); others are left out. */
static unsigned channel_set(json_t *list)
{
    unsigned set = 0;
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        int ch = cs_channel_from_name(json_string_value(v));
        if (ch >= 0)
            set |= 1u << ch;
    }
    return set;
}

/* The inverse of the customer JSON's fields (sql_journey.c, ctx_customer
 * and consent_json): the conformance suite holds the two to one another. */
void cs_contact_from_json(json_t *customer, cs_contact_t *out)
{
    static const char *const purposes[] = { "transactional", "marketing" };
    const char *v;
    memset(out, 0, sizeof *out);
    if ((v = json_string_value(json_object_get(customer, "email"))))
        cs_strlcpy(out->email, v, sizeof out->email);
    if ((v = json_string_value(json_object_get(customer, "phone"))))
        cs_strlcpy(out->phone, v, sizeof out->phone);
    if ((v = json_string_value(json_object_get(customer, "locale"))))
        cs_strlcpy(out->locale, v, sizeof out->locale);
    if ((v = json_string_value(json_object_get(customer, "timezone"))))
        cs_strlcpy(out->timezone, v, sizeof out->timezone);
    json_t *consents = json_object_get(customer, "consents");
    for (int ch = 0; ch < CS_CHANNEL__COUNT; ch++) {
        json_t *c = json_object_get(consents, cs_channel_name((cs_channel_t)ch));
        for (int k = 0; k < 2; k++) {
            json_t *p = json_object_get(c, purposes[k]);
            out->consent[ch * 2 + k] = json_is_true(p) ? 'y' : json_is_false(p) ? 'n' : '-';
        }
    }
    out->unsubscribed = channel_set(json_object_get(customer, "unsubscribed_channels"));
    out->bounced = channel_set(json_object_get(customer, "bounced"));
}

json_t *cs_contact_json(const cs_contact_t *c)
{
    json_t *all = json_object();
    for (int ch = 0; all && ch < CS_CHANNEL__COUNT; ch++) {
        unsigned bit = 1u << ch;
        char ub[40], bb[40], sb[40];
        json_t *consents = json_object();
        for (int k = 0; consents && k < 2; k++) {
            char v = c->consent[ch * 2 + k];
            if (json_object_set_new(consents, k ? "marketing" : "transactional",
                                    v == 'y' ? json_true() : v == 'n' ? json_false()
                                                                      : json_null())) {
                json_decref(consents);
                consents = NULL;
            }
        }
        bool unsub = (c->unsubscribed & bit) != 0, bounced = (c->bounced & bit) != 0;
        json_t *o = consents
                        ? json_pack("{s:b, s:s?, s:b, s:s?, s:s?, s:o}", "unsubscribed", unsub,
                                    "unsubscribed_at",
                                    unsub ? cs_time_format(c->unsubscribed_at[ch], ub, sizeof ub)
                                          : NULL,
                                    "bounced", bounced, "bounced_at",
                                    bounced ? cs_time_format(c->bounced_at[ch], bb, sizeof bb)
                                            : NULL,
                                    "started_over_at",
                                    c->started_at[ch]
                                        ? cs_time_format(c->started_at[ch], sb, sizeof sb)
                                        : NULL,
                                    "consents", consents)
                        : NULL;
        if (!o || json_object_set_new(all, cs_channel_name((cs_channel_t)ch), o)) {
            json_decref(all);
            all = NULL;
        }
    }
    return all;
}

const char *cs_out_channel_name(int channel)
{
    return channel == CS_OUT_WEBHOOK ? "webhook" : cs_channel_name((cs_channel_t)channel);
}

const char *cs_out_status_name(int status)
{
    switch (status) {
    case CS_OUT_QUEUED: return "queued";
    case CS_OUT_SENDING: return "sending";
    case CS_OUT_SENT: return "sent";
    case CS_OUT_FAILED: return "failed";
    case CS_OUT_SKIPPED: return "skipped";
    default: return "unknown";
    }
}

cs_rc cs_discount_issue(cs_store_t *s, cs_discount_t *d, const char *prefix, bool *existed,
                        cs_err_t *err)
{
    static const char alphabet[] = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";
    cs_rc rc = CS_ERR_DUPLICATE;
    *existed = false;
    for (int attempt = 0; attempt < 8 && rc == CS_ERR_DUPLICATE; attempt++) {
        uint8_t r[8];
        if ((rc = cs_random_bytes(r, sizeof r)))
            return cs_errf(err, rc, "no randomness for a discount code");
        char tail[9];
        for (int i = 0; i < 8; i++)
            tail[i] = alphabet[r[i] % (sizeof alphabet - 1)];
        tail[8] = '\0';
        snprintf(d->code, sizeof d->code, "%s-%s", prefix, tail);
        rc = cs_store_call(s, discount_put, d, existed, err);
    }
    return rc;
}

cs_rc cs_store_signal(cs_store_t *s, cs_ms_t now, const char *event_id, const char *source,
                      const char *name, const char *customer_id, const char *order_id,
                      json_t *props, bool *is_new, cs_err_t *err)
{
    char ts[40];
    *is_new = false;
    cs_time_format(now, ts, sizeof ts);
    json_t *doc = json_pack("{s:s,s:s,s:s,s:s,s:{s:s,s:s,s:o}}", "event_id", event_id, "type",
                            "signal", "occurred_at", ts, "source", source, "data", "name", name,
                            "customer_id", customer_id, "properties",
                            props ? props : json_object());
    if (doc && order_id && *order_id)
        json_object_set_new(json_object_get(doc, "data"), "order_id", json_string(order_id));
    if (!doc)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    cs_event_t *ev;
    cs_rc rc = cs_event_from_json(doc, &ev, err);
    json_decref(doc);
    if (rc)
        return rc;
    cs_ingest_outcome_t oc;
    int64_t seq;
    rc = cs_store_ingest(s, ev, now, &oc, &seq, err);
    cs_event_free(&ev);
    *is_new = !rc && oc == CS_INGEST_NEW;
    return rc;
}
