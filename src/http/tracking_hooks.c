/*
 * tracking_hooks.c -- inbound tracking webhooks: carrier scans pushed to us.
 *
 *   POST /v1/tracking/aftership  an aggregator in the AfterShip format
 *                                ({"msg": {"slug", "tracking_number",
 *                                "checkpoints": [...]}}), signed with
 *                                aftership-hmac-sha256 (base64 HMAC-SHA256
 *                                of the body with aftership_secret)
 *   POST /v1/tracking/scans      our own form ({"carrier", "tracking_number",
 *                                "scans": [{"code", "text", "occurred_at",
 *                                "location"}]}), signed like our outbound
 *                                webhooks: X-Consonance-Signature t=,v1=
 *                                (HMAC-SHA256 of "t.body", tracking_secret)
 *
 * Every checkpoint becomes a tracking.event with its raw code and text (the
 * carrier tables map them) and an event id derived from the carrier, the
 * number, the time and the code: a webhook delivered twice records each
 * scan once. Scans dated more than a day ahead are refused (a carrier's
 * clock gone wrong must not decide the shipment's status); scans for
 * parcels we do not know yet are kept until their shipment arrives.
 */
#include "http_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/cs_crypto.h"

#define SCANS_MAX 500
#define FUTURE_SLACK (24 * 3600 * 1000LL)

/* AfterShip's carrier slugs to our carrier ids. */
static void carrier_of_slug(const char *slug, char *out, size_t size)
{
    static const struct {
        const char *slug, *id;
    } map[] = {
        { "dhl-germany", "dhl" }, { "deutsch-post", "dhl" }, { "dhl", "dhl_express" },
        { "dhl-express", "dhl_express" }, { "dpd-de", "dpd" }, { "dpd", "dpd" },
        { "hermes-de", "hermes" }, { "hermes", "hermes" }, { "gls", "gls" },
        { "gls-de", "gls" }, { "ups", "ups" },
    };
    for (size_t i = 0; i < CS_ARRAY_LEN(map); i++)
        if (strcmp(map[i].slug, slug) == 0) {
            cs_strlcpy(out, map[i].id, size);
            return;
        }
    size_t k = 0;
    for (; slug[k] && k + 1 < size; k++)
        out[k] = slug[k] == '-' ? '_' : slug[k];
    out[k] = '\0';
}

/* ISO 3166 alpha-3 to alpha-2 for the countries parcels here pass through. */
static const char *alpha2(const char *a3)
{
    static const char *const map[][2] = {
        { "DEU", "DE" }, { "AUT", "AT" }, { "CHE", "CH" }, { "NLD", "NL" }, { "BEL", "BE" },
        { "LUX", "LU" }, { "FRA", "FR" }, { "ITA", "IT" }, { "ESP", "ES" }, { "POL", "PL" },
        { "CZE", "CZ" }, { "DNK", "DK" }, { "SWE", "SE" }, { "GBR", "GB" }, { "IRL", "IE" },
        { "USA", "US" }, { "CHN", "CN" }, { "HKG", "HK" }, { "PRT", "PT" }, { "HUN", "HU" },
    };
    for (size_t i = 0; a3 && i < CS_ARRAY_LEN(map); i++)
        if (strcmp(map[i][0], a3) == 0)
            return map[i][1];
    return a3 && strlen(a3) == 2 ? a3 : NULL;
}

typedef struct batch {
    cs_ingest_item_t items[SCANS_MAX];
    size_t n;
    json_t *rejected;
    cs_ms_t now;
    const char *source;
} batch_t;

static void reject(batch_t *b, size_t index, const char *field, const char *msg)
{
    json_array_append_new(b->rejected, json_pack("{s:I,s:{s:s,s:s,s:s}}", "index",
                                                 (json_int_t)index, "error", "code", "invalid",
                                                 "field", field, "message", msg));
}

/* One scan as a tracking.event; rejects are listed, not fatal. */
static cs_rc add_scan(batch_t *b, size_t index, const char *carrier, const char *number,
                      const char *code, const char *text, const char *at, json_t *location,
                      cs_err_t *err)
{
    cs_ms_t t;
    if (!at || !cs_time_parse(at, &t)) {
        reject(b, index, "occurred_at", "expected an RFC 3339 time with a zone offset");
        return CS_OK;
    }
    if (t > b->now + FUTURE_SLACK) {
        reject(b, index, "occurred_at", "more than a day in the future");
        return CS_OK;
    }
    if ((!code || !*code) && (!text || !*text)) {
        reject(b, index, "code", "a scan needs its carrier code or text");
        return CS_OK;
    }
    if (b->n == SCANS_MAX) {
        reject(b, index, "", "too many scans in one request");
        return CS_OK;
    }
    char key[1024], hex[CS_SHA256_HEX_LEN], eid[64];
    snprintf(key, sizeof key, "%s|%s|%lld|%s|%s", carrier, number, (long long)t,
             code ? code : "", text ? text : "");
    cs_sha256_hex(key, strlen(key), hex);
    snprintf(eid, sizeof eid, "trk-%.40s", hex);
    json_t *data = json_pack("{s:s,s:s}", "carrier", carrier, "tracking_number", number);
    if (data && code && *code)
        json_object_set_new(data, "carrier_code", json_string(code));
    if (data && text && *text)
        json_object_set_new(data, "carrier_text", json_string(text));
    if (data && json_is_object(location) && json_object_size(location))
        json_object_set(data, "location", location);
    json_t *doc = data ? json_pack("{s:s,s:s,s:s,s:s,s:o}", "event_id", eid, "type",
                                   "tracking.event", "occurred_at", at, "source", b->source,
                                   "data", data)
                       : NULL;
    if (!doc)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    cs_err_t perr;
    cs_event_t *ev;
    cs_rc rc = cs_event_from_json(doc, &ev, &perr);
    json_decref(doc);
    if (rc == CS_OK)
        rc = cs_event_serialize(ev, &perr);
    if (rc) {
        if (rc == CS_ERR_NOMEM)
            return cs_errf(err, rc, "out of memory");
        json_array_append_new(b->rejected,
                              json_pack("{s:I,s:{s:s,s:s,s:s}}", "index", (json_int_t)index,
                                        "error", "code", "invalid", "field", perr.field, "message",
                                        perr.msg));
        return CS_OK;
    }
    b->items[b->n++].ev = ev;
    return CS_OK;
}

/* Ingest the batch; the answer counts new scans and repeats and lists the
 * rejected ones. The engine frees (and NULLs) the events it took. */
static enum MHD_Result submit(hreq_t *r, batch_t *b)
{
    size_t dups = 0, fresh = 0;
    if (b->n) {
        cs_ingest_req_t req;
        memset(&req, 0, sizeof req);
        req.items = b->items;
        req.n = b->n;
        if (cs_engine_ingest(r->h->engine, &req))
            return cs__http_reply_err(r, &req.err);
        for (size_t i = 0; i < b->n; i++) {
            if (b->items[i].rc)
                return cs__http_reply_err(r, &b->items[i].err);
            if (b->items[i].outcome == CS_INGEST_DUPLICATE)
                dups++;
            else
                fresh++;
        }
    }
    int status = !b->n && json_array_size(b->rejected) ? 422 : 200;
    return cs__http_reply(r, status, json_pack("{s:I,s:I,s:O}", "accepted", (json_int_t)fresh,
                                               "duplicates", (json_int_t)dups, "rejected",
                                               b->rejected));
}

static json_t *load_body(hreq_t *r, cs_err_t *err)
{
    json_error_t je;
    json_t *doc = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, &je);
    if (!json_is_object(doc)) {
        json_decref(doc);
        cs_err_field(err, CS_ERR_INVALID, "body", "body: expected a JSON object%s%s",
                     doc ? "" : ": ", doc ? "" : je.text);
        return NULL;
    }
    return doc;
}

static enum MHD_Result aftership(hreq_t *r, batch_t *b)
{
    const char *secret = r->h->opts.aftership_secret;
    if (!secret || !*secret)
        return cs__http_reply_code(r, 404, "not_found", "aggregator webhooks are off (aftership_secret)");
    uint8_t mac[CS_SHA256_LEN];
    char want[64];
    cs_hmac_sha256(secret, strlen(secret), r->body.data ? r->body.data : "", r->body.len, mac);
    size_t wl = cs_base64(mac, sizeof mac, want);
    const char *got = cs__http_header(r, "aftership-hmac-sha256");
    if (!got || strlen(got) != wl || !cs_ct_equal(got, want, wl))
        return cs__http_reply_code(r, 403, "forbidden", "aftership-hmac-sha256 does not match");
    cs_err_t err;
    cs_err_clear(&err);
    json_t *doc = load_body(r, &err);
    if (!doc)
        return cs__http_reply_err(r, &err);
    json_t *msg = json_object_get(doc, "msg");
    const char *slug = json_string_value(json_object_get(msg, "slug"));
    const char *number = json_string_value(json_object_get(msg, "tracking_number"));
    if (!slug || !*slug || !number || !*number) {
        json_decref(doc);
        cs_err_field(&err, CS_ERR_INVALID, slug ? "msg.tracking_number" : "msg.slug",
                     "%s: required", slug ? "msg.tracking_number" : "msg.slug");
        return cs__http_reply_err(r, &err);
    }
    char carrier[CS_ID_MAX + 1];
    carrier_of_slug(slug, carrier, sizeof carrier);
    size_t i;
    json_t *cp;
    cs_rc rc = CS_OK;
    json_array_foreach (json_object_get(msg, "checkpoints"), i, cp) {
        const char *sub = json_string_value(json_object_get(cp, "subtag"));
        const char *tag = json_string_value(json_object_get(cp, "tag"));
        json_t *loc = json_object();
        const char *city = json_string_value(json_object_get(cp, "city"));
        const char *zip = json_string_value(json_object_get(cp, "zip"));
        const char *cc = alpha2(json_string_value(json_object_get(cp, "country_iso3")));
        if (city)
            json_object_set_new(loc, "city", json_string(city));
        if (zip)
            json_object_set_new(loc, "postal_code", json_string(zip));
        if (cc)
            json_object_set_new(loc, "country", json_string(cc));
        rc = add_scan(b, i, carrier, number, sub && *sub ? sub : tag,
                      json_string_value(json_object_get(cp, "message")),
                      json_string_value(json_object_get(cp, "checkpoint_time")), loc, &err);
        json_decref(loc);
        if (rc)
            break;
    }
    json_decref(doc);
    if (rc)
        return cs__http_reply_err(r, &err);
    return submit(r, b);
}

static enum MHD_Result own_scans(hreq_t *r, batch_t *b)
{
    const char *secret = r->h->opts.tracking_secret;
    if (!secret || !*secret)
        return cs__http_reply_code(r, 404, "not_found", "scan webhooks are off (tracking_secret)");
    /* X-Consonance-Signature: t=UNIX,v1=HEX of HMAC(secret, "t.body") */
    const char *sig = cs__http_header(r, "X-Consonance-Signature");
    long long ts = 0;
    char v1[2 * CS_SHA256_LEN + 1] = "";
    if (!sig || sscanf(sig, "t=%lld,v1=%64[0-9a-f]", &ts, v1) != 2 || strlen(v1) != 64)
        return cs__http_reply_code(r, 403, "forbidden", "X-Consonance-Signature missing or malformed");
    cs_ms_t now = cs_clock_now(cs_engine_clock(r->h->engine));
    if (ts * 1000 < now - 300000 || ts * 1000 > now + 300000)
        return cs__http_reply_code(r, 403, "forbidden", "X-Consonance-Signature is older than 5 minutes");
    char want[CS_SHA256_HEX_LEN];
    if (cs_webhook_signature(secret, ts, r->body.data ? r->body.data : "", r->body.len, want) ||
        !cs_ct_equal(want, v1, 64))
        return cs__http_reply_code(r, 403, "forbidden", "X-Consonance-Signature does not match");
    cs_err_t err;
    cs_err_clear(&err);
    json_t *doc = load_body(r, &err);
    if (!doc)
        return cs__http_reply_err(r, &err);
    const char *carrier = json_string_value(json_object_get(doc, "carrier"));
    const char *number = json_string_value(json_object_get(doc, "tracking_number"));
    json_t *scans = json_object_get(doc, "scans");
    const char *bad = !carrier || !*carrier   ? "carrier"
                      : !number || !*number   ? "tracking_number"
                      : !json_is_array(scans) ? "scans"
                                              : NULL;
    if (bad) {
        json_decref(doc);
        cs_err_field(&err, CS_ERR_INVALID, bad, "%s: required (%s)", bad,
                     strcmp(bad, "scans") == 0 ? "an array" : "a string");
        return cs__http_reply_err(r, &err);
    }
    char lc[CS_ID_MAX + 1];
    cs_strlcpy(lc, carrier, sizeof lc);
    for (char *p = lc; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    size_t i;
    json_t *s;
    cs_rc rc = CS_OK;
    json_array_foreach (scans, i, s) {
        rc = add_scan(b, i, lc, number, json_string_value(json_object_get(s, "code")),
                      json_string_value(json_object_get(s, "text")),
                      json_string_value(json_object_get(s, "occurred_at")),
                      json_object_get(s, "location"), &err);
        if (rc)
            break;
    }
    json_decref(doc);
    if (rc)
        return cs__http_reply_err(r, &err);
    return submit(r, b);
}

enum MHD_Result cs__http_tracking_hook(hreq_t *r)
{
    if (r->too_big) {
        cs_err_t err;
        cs_errf(&err, CS_ERR_TOOBIG, "request body exceeds the limit");
        return cs__http_reply_err(r, &err);
    }
    batch_t *b = calloc(1, sizeof *b);
    if (!b || !(b->rejected = json_array())) {
        free(b);
        return MHD_NO;
    }
    b->now = cs_clock_now(cs_engine_clock(r->h->engine));
    b->source = r->route == R_TRACK_AFTERSHIP ? "aftership-webhook" : "scan-webhook";
    enum MHD_Result ret = r->route == R_TRACK_AFTERSHIP ? aftership(r, b) : own_scans(r, b);
    /* events the engine did not take (refused before or at submit) are ours */
    for (size_t i = 0; i < b->n; i++)
        cs_event_free(&b->items[i].ev);
    json_decref(b->rejected);
    free(b);
    return ret;
}
