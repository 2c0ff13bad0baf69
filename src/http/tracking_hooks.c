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
 *                                (HMAC-SHA256 of "t.body", tracking_secret;
 *                                t as sent, any v1 of several may match)
 *
 * Every checkpoint becomes a tracking.event with its raw code and text (the
 * carrier tables map them; AfterShip's scans carry the source
 * CS_SCAN_SOURCE_AFTERSHIP, so their subtag is read as AfterShip's code)
 * and an event id derived from the carrier, the number, the time and the
 * code: a webhook delivered twice records each scan once. Scans dated more
 * than a day ahead are refused (a carrier's clock gone wrong must not
 * decide the shipment's status); scans for parcels we do not know yet are
 * kept until their shipment arrives.
 *
 * Errors name the request's own fields ("scans[2].code",
 * "msg.checkpoints[0].checkpoint_time"): a malformed request is refused
 * whole (400), a malformed scan is listed in "rejected" by its index.
 */
#include "http_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/cs_crypto.h"
#include "../lib/cs_json.h"
#include "../lib/cs_tz.h"
#include "../tracking/carriers.h"

#define SCANS_MAX 500
#define SIG_SKEW_MS (300 * 1000LL)
#define SIG_TS_DIGITS 12 /* a Unix time in seconds, bounded before it is scaled */
#define SIG_T_MAX 20     /* characters of t, leading zeros included */
#define SIG_V1_MAX 8     /* v1 signatures in one header */
#define SIG_HEADER "X-Consonance-Signature"
#define AS_SIG_HEADER "aftership-hmac-sha256"
#define PATH_MAX_ 96

/* ISO 3166-1: each country's alpha-3 and alpha-2 codes, five letters,
 * sorted by alpha-3 (from Debian's iso-codes), then Kosovo's
 * user-assigned XKX/XK, which carriers use. */
static const char countries[] =
        "ABWAWAFGAFAGOAOAIAAIALAAXALBALANDADAREAEARGARARMAMASMASATAAQATFTFATGAG"
        "AUSAUAUTATAZEAZBDIBIBELBEBENBJBESBQBFABFBGDBDBGRBGBHRBHBHSBSBIHBABLMBL"
        "BLRBYBLZBZBMUBMBOLBOBRABRBRBBBBRNBNBTNBTBVTBVBWABWCAFCFCANCACCKCCCHECH"
        "CHLCLCHNCNCIVCICMRCMCODCDCOGCGCOKCKCOLCOCOMKMCPVCVCRICRCUBCUCUWCWCXRCX"
        "CYMKYCYPCYCZECZDEUDEDJIDJDMADMDNKDKDOMDODZADZECUECEGYEGERIERESHEHESPES"
        "ESTEEETHETFINFIFJIFJFLKFKFRAFRFROFOFSMFMGABGAGBRGBGEOGEGGYGGGHAGHGIBGI"
        "GINGNGLPGPGMBGMGNBGWGNQGQGRCGRGRDGDGRLGLGTMGTGUFGFGUMGUGUYGYHKGHKHMDHM"
        "HNDHNHRVHRHTIHTHUNHUIDNIDIMNIMINDINIOTIOIRLIEIRNIRIRQIQISLISISRILITAIT"
        "JAMJMJEYJEJORJOJPNJPKAZKZKENKEKGZKGKHMKHKIRKIKNAKNKORKRKWTKWLAOLALBNLB"
        "LBRLRLBYLYLCALCLIELILKALKLSOLSLTULTLUXLULVALVMACMOMAFMFMARMAMCOMCMDAMD"
        "MDGMGMDVMVMEXMXMHLMHMKDMKMLIMLMLTMTMMRMMMNEMEMNGMNMNPMPMOZMZMRTMRMSRMS"
        "MTQMQMUSMUMWIMWMYSMYMYTYTNAMNANCLNCNERNENFKNFNGANGNICNINIUNUNLDNLNORNO"
        "NPLNPNRUNRNZLNZOMNOMPAKPKPANPAPCNPNPERPEPHLPHPLWPWPNGPGPOLPLPRIPRPRKKP"
        "PRTPTPRYPYPSEPSPYFPFQATQAREUREROURORUSRURWARWSAUSASDNSDSENSNSGPSGSGSGS"
        "SHNSHSJMSJSLBSBSLESLSLVSVSMRSMSOMSOSPMPMSRBRSSSDSSSTPSTSURSRSVKSKSVNSI"
        "SWESESWZSZSXMSXSYCSCSYRSYTCATCTCDTDTGOTGTHATHTJKTJTKLTKTKMTMTLSTLTONTO"
        "TTOTTTUNTNTURTRTUVTVTWNTWTZATZUGAUGUKRUAUMIUMURYUYUSAUSUZBUZVATVAVCTVC"
        "VENVEVGBVGVIRVIVNMVNVUTVUWLFWFWSMWSYEMYEZAFZAZMBZMZWEZW"
        "XKXXK";

/* The alpha-2 code (upper case) of an ISO 3166-1 country code of either
 * length, in any case; false when it names no country. */
static bool alpha2(const char *code, char out[3])
{
    size_t n = strlen(code);
    char up[4];
    if (n != 2 && n != 3)
        return false;
    for (size_t i = 0; i < n; i++)
        up[i] = (char)toupper((unsigned char)code[i]);
    for (const char *p = countries; *p; p += 5)
        if (n == 3 ? memcmp(p, up, 3) == 0 : memcmp(p + 3, up, 2) == 0) {
            memcpy(out, p + 3, 2);
            out[2] = '\0';
            return true;
        }
    return false;
}

typedef struct batch {
    cs_ingest_item_t items[SCANS_MAX];
    size_t n;
    json_t *rejected;
    bool nomem; /* a rejection could not be listed: the answer is an error */
    cs_ms_t now;
    const char *source;
} batch_t;

/* Where one scan sits in the request, for its errors. */
typedef struct scan_src {
    size_t index;
    char base[PATH_MAX_];     /* "scans[3]", "msg.checkpoints[3]" */
    const char *code_key;     /* "code", "subtag" or "tag" */
    const char *text_key;     /* "text", "message" */
    const char *at_key;       /* "occurred_at", "checkpoint_time" */
    const char *number_path;  /* "tracking_number", "msg.tracking_number" */
    const char *carrier_path; /* "carrier", "msg.slug" */
    bool aftership;           /* location fields city, zip, state, country_iso3 */
} scan_src_t;

/* How much of a sender's value to quote: at most max bytes, not ending
 * inside a character (the value is UTF-8, jansson checked it), for "%.*s".
 * A cut character would make the message invalid UTF-8, which json_pack
 * refuses. */
static int quote_len(const char *s, size_t max)
{
    return (int)cs_utf8_clip(s, strnlen(s, max + 1), max);
}

/* Add {"index", "error": {"code": "invalid", "field", "message": "field:
 * why"}} to the rejected list. Both texts are cut at character boundaries
 * and made valid UTF-8 whatever was formatted into them; when even so the
 * entry cannot be added (out of memory) the batch is marked, and its
 * answer is an error rather than one without the rejection. */
static void list_rejected(batch_t *b, size_t index, char *field, const char *why)
{
    char msg[CS_ERR_MSG_MAX];
    snprintf(msg, sizeof msg, "%.*s: %.*s", quote_len(field, 150), field, quote_len(why, 350),
             why);
    cs_utf8_repair(field);
    cs_utf8_repair(msg);
    json_t *e = json_pack("{s:I,s:{s:s,s:s,s:s}}", "index", (json_int_t)index, "error", "code",
                          "invalid", "field", field, "message", msg);
    if (!e || json_array_append_new(b->rejected, e))
        b->nomem = true;
}

/* List scan src as rejected: field base[.key], message "field: ...". */
static void reject(batch_t *b, const scan_src_t *src, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void reject(batch_t *b, const scan_src_t *src, const char *key, const char *fmt, ...)
{
    char field[PATH_MAX_ + 64], what[CS_ERR_MSG_MAX - 64];
    va_list ap;
    if (key)
        snprintf(field, sizeof field, "%s.%s", src->base, key);
    else
        cs_strlcpy(field, src->base, sizeof field);
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    cs_utf8_trim(what); /* a character vsnprintf cut at the end */
    list_rejected(b, src->index, field, what);
}

/* The event model names its own fields (data.carrier_text, occurred_at);
 * the sender knows the request's. */
static void request_path(const scan_src_t *src, const char *field, char *out, size_t size)
{
    static const char *const as_loc[][2] = {
        { "city", "city" }, { "postal_code", "zip" }, { "region", "state" },
        { "country", "country_iso3" }
    };
    if (strcmp(field, "data.carrier_code") == 0) {
        snprintf(out, size, "%s.%s", src->base, src->code_key);
    } else if (strcmp(field, "data.carrier_text") == 0) {
        snprintf(out, size, "%s.%s", src->base, src->text_key);
    } else if (strcmp(field, "occurred_at") == 0) {
        snprintf(out, size, "%s.%s", src->base, src->at_key);
    } else if (strcmp(field, "data.tracking_number") == 0) {
        cs_strlcpy(out, src->number_path, size);
    } else if (strcmp(field, "data.carrier") == 0) {
        cs_strlcpy(out, src->carrier_path, size);
    } else if (strncmp(field, "data.location", 13) == 0) {
        const char *rest = field + 13;
        if (src->aftership && *rest == '.')
            for (size_t i = 0; i < CS_ARRAY_LEN(as_loc); i++)
                if (strcmp(rest + 1, as_loc[i][0]) == 0) {
                    snprintf(out, size, "%s.%s", src->base, as_loc[i][1]);
                    return;
                }
        snprintf(out, size, "%s.location%.24s", src->base, rest);
    } else {
        cs_strlcpy(out, src->base, size);
    }
}

/* The text a scan's event id is the hash of, into key[SCAN_KEY_MAX].
 *
 * Ids must not change across upgrades: a carrier retrying a webhook it
 * sent to an older version must meet its scans as duplicates. So a scan
 * whose number, code and text hold no '|' keeps the original key,
 * "carrier|number|ms|CODE|text" (cut at 1023 bytes, as it always was),
 * which such fields determine without ambiguity. When one of them holds a
 * '|', that form is ambiguous ("A|B" + "C" and "A" + "B|C" meet), and the
 * key is "|2|" then each field with its length: "|2|3:dpd|2:N1|17...|3:A|B|1:C".
 * It starts with '|', which the original form never does (a carrier id is
 * never empty and has no '|'), so the two forms never meet either. A text
 * too long for the buffer is cut, but its length still counts; such texts
 * are refused by the event model anyway. */
#define SCAN_KEY_MAX 2048
static void scan_key(const char *carrier, const char *num, cs_ms_t t, const char *ucode,
                     const char *text, char key[SCAN_KEY_MAX])
{
    if (!strchr(num, '|') && !strchr(ucode, '|') && !strchr(text, '|')) {
        snprintf(key, 1024, "%s|%s|%lld|%s|%s", carrier, num, (long long)t, ucode, text);
        return;
    }
    snprintf(key, SCAN_KEY_MAX, "|2|%zu:%s|%zu:%s|%lld|%zu:%s|%zu:%s", strlen(carrier), carrier,
             strlen(num), num, (long long)t, strlen(ucode), ucode, strlen(text), text);
}

/* One scan as a tracking.event; rejects are listed, not fatal. t is the
 * scan's time, at its text as the event keeps it. */
static cs_rc add_scan(batch_t *b, const scan_src_t *src, const char *carrier, const char *number,
                      const char *code, const char *text, cs_ms_t t, const char *at,
                      json_t *location, cs_err_t *err)
{
    if (t < CS_EVENT_TIME_MIN) { /* the event API's rule: a zero, or a unit gone wrong */
        reject(b, src, src->at_key,
               "expected a time from 2000-01-01 on; check how the sender writes its times");
        return CS_OK;
    }
    if (t > b->now + CS_EVENT_AHEAD_MAX_MS) { /* the event API's rule */
        char now[32];
        cs_time_format(b->now, now, sizeof now);
        reject(b, src, src->at_key,
               "more than a day in the future (received at %s); check the carrier's clock and "
               "time zone",
               now);
        return CS_OK;
    }
    /* blanks say nothing: such a scan would be kept as unmapped, shown in
     * transit with nothing to tell */
    if (!cs__has_word(code) && !cs__has_word(text)) {
        reject(b, src, src->code_key, "%sa scan needs its carrier code or its text (%s)",
               (code && *code) || (text && *text) ? "only blanks: " : "", src->text_key);
        return CS_OK;
    }
    if (b->n == SCANS_MAX) {
        reject(b, src, NULL, "too many scans in one request: at most %d are taken", SCANS_MAX);
        return CS_OK;
    }
    /* the id from the number as carriers match it and the code as the
     * tables read it, without the blanks around it (a fixed-width field,
     * " FS") and in upper case (codes compare without regard to case): a
     * retry that writes either differently is the same scan. (A code with
     * blanks around it had them in its id before: such a scan sent to an
     * older version and retried now is recorded once more.) */
    char key[SCAN_KEY_MAX], hex[CS_SHA256_HEX_LEN], eid[64], num[CS_ID_MAX + 1];
    char ucode[CS_ID_MAX + 1];
    cs_tracking_number_canon(number, num, sizeof num);
    size_t cl;
    const char *cp = cs_span_trim(code ? code : "", &cl);
    if (cl >= sizeof ucode)
        cl = sizeof ucode - 1;
    for (size_t i = 0; i < cl; i++)
        ucode[i] = (char)toupper((unsigned char)cp[i]);
    ucode[cl] = '\0';
    scan_key(carrier, num, t, ucode, text ? text : "", key);
    cs_sha256_hex(key, strlen(key), hex);
    snprintf(eid, sizeof eid, "trk-%.40s", hex);
    json_t *data = json_pack("{s:s,s:s}", "carrier", carrier, "tracking_number", number);
    /* a member that cannot be added is out of memory, not a scan without it */
    if (data && ((code && *code && json_object_set_new(data, "carrier_code", json_string(code))) ||
                 (text && *text && json_object_set_new(data, "carrier_text", json_string(text))) ||
                 (json_is_object(location) && json_object_size(location) &&
                  json_object_set(data, "location", location)))) {
        json_decref(data);
        data = NULL;
    }
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
        /* the model's message starts with its own field name: say ours */
        char field[PATH_MAX_ + 64];
        size_t fl = strlen(perr.field);
        const char *why = perr.msg;
        request_path(src, perr.field, field, sizeof field);
        if (fl && strncmp(why, perr.field, fl) == 0 && why[fl] == ':')
            why += fl + 1 + (why[fl + 1] == ' ');
        list_rejected(b, src->index, field, why);
        return CS_OK;
    }
    b->items[b->n++].ev = ev;
    return CS_OK;
}

/* Ingest the batch; the answer counts new scans (and of them, those kept
 * for a parcel not known yet) and repeats, and lists the rejected ones.
 * The engine frees (and NULLs) the events it took. */
static enum MHD_Result submit(hreq_t *r, batch_t *b)
{
    size_t dups = 0, fresh = 0, waiting = 0;
    /* counted, as a request with some scans taken answers 200: an
     * aggregator does not show our answer to anyone */
    atomic_fetch_add(&r->h->scans_rejected[r->route == R_TRACK_AFTERSHIP ? 0 : 1],
                     json_array_size(b->rejected));
    if (b->nomem) { /* nothing taken: a retry is answered in full */
        cs_err_t err;
        cs_errf(&err, CS_ERR_NOMEM, "out of memory listing the rejected scans; retry later");
        return cs__http_reply_err(r, &err);
    }
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
            waiting += b->items[i].outcome == CS_INGEST_PENDING;
        }
    }
    int status = !b->n && json_array_size(b->rejected) ? 422 : 200;
    return cs__http_reply(r, status,
                          json_pack("{s:I,s:I,s:I,s:O}", "accepted", (json_int_t)fresh,
                                    "waiting_for_shipment", (json_int_t)waiting, "duplicates",
                                    (json_int_t)dups, "rejected", b->rejected));
}

/* 403 naming the header that failed. */
static enum MHD_Result forbidden(hreq_t *r, const char *header, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum MHD_Result forbidden(hreq_t *r, const char *header, const char *fmt, ...)
{
    char msg[CS_ERR_MSG_MAX], what[CS_ERR_MSG_MAX - 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(msg, sizeof msg, "%s: %s", header, what);
    return cs__http_reply(r, 403, json_pack("{s:{s:s,s:s,s:s}}", "error", "code", "forbidden",
                                            "field", header, "message", msg));
}

/* The body as JSON. Strings may hold \u0000 here: the fields read check
 * for it, so such a scan is refused by its index, not the whole request. */
static json_t *load_body(hreq_t *r, cs_err_t *err)
{
    json_error_t je;
    json_t *doc = json_loadb(r->body.data ? r->body.data : "", r->body.len, JSON_ALLOW_NUL, &je);
    if (!json_is_object(doc)) {
        json_decref(doc);
        if (doc)
            cs_err_field(err, CS_ERR_INVALID, "body", "body: expected a JSON object");
        else
            cs_err_field(err, CS_ERR_INVALID, "body",
                         "body: expected a JSON object: malformed at line %d, column %d: %s",
                         je.line, je.column, cs_json_error_text(&je));
        return NULL;
    }
    return doc;
}

/* A request-level string: present, a string, 1 to max bytes without
 * control characters. id: only a-z, 0-9, _ and - (after lower-casing, which
 * the caller does). */
static cs_rc get_id(json_t *obj, const char *key, const char *path, size_t max, const char *form,
                    const char **out, cs_err_t *err)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return cs_err_field(err, CS_ERR_INVALID, path, "%s: required (%s)", path, form);
    if (!json_is_string(v))
        return cs_err_field(err, CS_ERR_INVALID, path, "%s: expected a string (%s), got %s",
                            path, form, cs_json_type_word(v));
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    bool ok = n > 0 && n <= max && strlen(s) == n;
    for (size_t i = 0; ok && i < n; i++)
        ok = !iscntrl((unsigned char)s[i]);
    if (!ok)
        return cs_err_field(err, CS_ERR_INVALID, path, "%s: expected %s", path, form);
    *out = s;
    return CS_OK;
}

/* The request's tracking number: as get_id, and at most
 * CS_TRACKING_NUMBER_MAX characters as carriers match it (without spaces),
 * the bound of shipment.created's: a scan for a longer one could never
 * find its shipment and would wait for it forever. */
static cs_rc get_number(json_t *obj, const char *key, const char *path, const char **out,
                        cs_err_t *err)
{
    const char *s;
    char canon[CS_ID_MAX + 1];
    cs_rc rc = get_id(obj, key, path, CS_ID_MAX,
                      "a tracking number of 1 to 64 characters (spaces not counted)", &s, err);
    *out = NULL;
    if (rc)
        return rc;
    size_t n = cs_tracking_number_canon(s, canon, sizeof canon);
    if (n > CS_TRACKING_NUMBER_MAX)
        return cs_err_field(err, CS_ERR_INVALID, path,
                            "%s: \"%.*s...\": too long: %zu characters without spaces, at most %d",
                            path, quote_len(s, 20), s, n, CS_TRACKING_NUMBER_MAX);
    *out = s;
    return CS_OK;
}

/* A carrier id or slug, lower-cased into out; only a-z, 0-9, _ and -. */
static cs_rc get_carrier(json_t *obj, const char *key, const char *path, const char *form,
                         char *out, size_t size, cs_err_t *err)
{
    const char *s;
    cs_rc rc = get_id(obj, key, path, size - 1, form, &s, err);
    if (rc)
        return rc;
    size_t n = cs_strlcpy(out, s, size);
    for (size_t i = 0; i < n; i++) {
        out[i] = (char)tolower((unsigned char)out[i]);
        if (!cs_carrier_id_char(out[i]))
            return cs_err_field(err, CS_ERR_INVALID, path, "%s: \"%.*s\": expected %s", path,
                                quote_len(s, 40), s, form);
    }
    return CS_OK;
}

/* An optional string field of a scan; an integer is taken as its decimal
 * text when int_ok (a carrier's numeric status code). false: rejected. */
static bool scan_str(batch_t *b, const scan_src_t *src, json_t *obj, const char *key, bool int_ok,
                     char *num, size_t num_size, const char **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return true;
    if (json_is_string(v) && strlen(json_string_value(v)) != json_string_length(v)) {
        reject(b, src, key, "must not contain NUL characters (\\u0000)");
        return false;
    }
    if (json_is_string(v)) {
        *out = json_string_value(v);
        return true;
    }
    if (int_ok && json_is_integer(v)) {
        snprintf(num, num_size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        *out = num;
        return true;
    }
    reject(b, src, key, "expected a string%s, got %s", int_ok ? " or an integer" : "",
           cs_json_type_word(v));
    return false;
}

/* AfterShip's checkpoint_time without a zone ("2026-12-03T09:15:00",
 * "2026-12-03"): the carrier's local time, which AfterShip documents; taken
 * in the shop's zone (a date at its midnight). */
static bool aftership_time(const char *s, const cs_tz_t *tz, cs_ms_t *out)
{
    size_t n = strlen(s);
    char buf[48];
    cs_ms_t t;
    if (n == 10) {
        if (!cs_date_parse(s, &t))
            return false;
    } else {
        if (n < 19 || n + 2 > sizeof buf)
            return false;
        memcpy(buf, s, n);
        buf[n] = 'Z';
        buf[n + 1] = '\0';
        if (!cs_time_parse(buf, &t))
            return false;
    }
    /* t read the wall-clock time as UTC: the same wall clock in the shop's zone */
    int64_t ms = t % 1000;
    cs_local_t l;
    cs_tz_to_local(cs_tz_get_or_utc("UTC"), t - ms, &l);
    *out = cs_tz_from_local(tz ? tz : cs_tz_get_or_utc(NULL), &l) + ms;
    return true;
}

/* Whether s is a checkpoint_time but for its year, one before 1970: with
 * a zone, without one, or a date. */
static bool aftership_early(const char *s)
{
    char buf[48];
    size_t n = strlen(s);
    if (cs_time_before_1970(s))
        return true;
    if (n < 19 || n + 2 > sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = 'Z';
    buf[n + 1] = '\0';
    return cs_time_before_1970(buf);
}

/* Whether s has the form of a base64 HMAC-SHA256: 43 characters of the
 * standard alphabet and one '=' (32 bytes). Its form only: whether it
 * matches is the constant-time comparison's to say. */
static bool base64_mac(const char *s)
{
    size_t n = strlen(s);
    if (n != 4 * ((CS_SHA256_LEN + 2) / 3) || s[n - 1] != '=')
        return false;
    for (size_t i = 0; i < n - 1; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '+' && s[i] != '/')
            return false;
    return true;
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
    const char *got = cs__http_header(r, AS_SIG_HEADER);
    if (!got)
        return forbidden(r, AS_SIG_HEADER, "missing");
    if (!base64_mac(got))
        return forbidden(r, AS_SIG_HEADER,
                         "malformed: expected the base64 of an HMAC-SHA256 (%zu characters of "
                         "A-Z, a-z, 0-9, + and /, ending in =), got %zu characters%s",
                         wl, strlen(got), strlen(got) == wl ? " that are not all base64" : "");
    if (strlen(got) != wl || !cs_ct_equal(got, want, wl))
        return forbidden(r, AS_SIG_HEADER, "does not match the body signed with aftership_secret");
    cs_err_t err;
    cs_err_clear(&err);
    const char *number;
    char slug[CS_ID_MAX + 1], carrier[CS_ID_MAX + 1];
    cs_rc rc = CS_OK;
    json_t *doc = load_body(r, &err);
    json_t *msg = doc ? json_object_get(doc, "msg") : NULL;
    json_t *cps = json_object_get(msg, "checkpoints");
    if (!doc)
        rc = err.rc;
    else if (!json_is_object(msg))
        rc = cs_err_field(&err, CS_ERR_INVALID, "msg", "msg: %s (the tracking)",
                          msg ? "expected an object" : "required: an object");
    else if ((rc = get_carrier(msg, "slug", "msg.slug", "an AfterShip slug: a-z, 0-9, _ and -",
                               slug, sizeof slug, &err)) ||
             (rc = get_number(msg, "tracking_number", "msg.tracking_number", &number, &err)))
        ;
    else if (!json_is_array(cps))
        rc = cs_err_field(&err, CS_ERR_INVALID, "msg.checkpoints",
                          "msg.checkpoints: expected an array of checkpoints, got %s",
                          cps ? cs_json_type_word(cps) : "nothing");
    if (rc)
        goto out;
    cs_carriers_of_slug(cs_engine_carriers(r->h->engine), slug, carrier, sizeof carrier);
    size_t i;
    json_t *cp;
    json_array_foreach (cps, i, cp) {
        scan_src_t src = { .index = i, .code_key = "subtag", .text_key = "message",
                           .at_key = "checkpoint_time", .number_path = "msg.tracking_number",
                           .carrier_path = "msg.slug", .aftership = true };
        snprintf(src.base, sizeof src.base, "msg.checkpoints[%zu]", i);
        if (!json_is_object(cp)) {
            reject(b, &src, NULL, "expected an object, got %s", cs_json_type_word(cp));
            continue;
        }
        const char *sub, *tag, *text, *at, *city, *zip, *state, *a3;
        char zipnum[24];
        if (!scan_str(b, &src, cp, "subtag", false, NULL, 0, &sub) ||
            !scan_str(b, &src, cp, "tag", false, NULL, 0, &tag) ||
            !scan_str(b, &src, cp, "message", false, NULL, 0, &text) ||
            !scan_str(b, &src, cp, "checkpoint_time", false, NULL, 0, &at) ||
            !scan_str(b, &src, cp, "city", false, NULL, 0, &city) ||
            !scan_str(b, &src, cp, "zip", true, zipnum, sizeof zipnum, &zip) ||
            !scan_str(b, &src, cp, "state", false, NULL, 0, &state) ||
            !scan_str(b, &src, cp, "country_iso3", false, NULL, 0, &a3))
            continue;
        cs_ms_t t;
        char iso[40];
        bool zoned = at && strlen(at) != 10 && cs_time_parse(at, &t);
        if (at && !zoned && !aftership_time(at, r->h->opts.shop_tz, &t) && aftership_early(at)) {
            reject(b, &src, "checkpoint_time",
                   "expected a time from 2000-01-01 on, got \"%.*s\"; check how the sender "
                   "writes its times",
                   quote_len(at, 40), at);
            continue;
        }
        if (!at || (!zoned && !aftership_time(at, r->h->opts.shop_tz, &t))) {
            reject(b, &src, "checkpoint_time",
                   "expected an ISO 8601 time of a real date (\"2026-12-03T09:15:00+01:00\"; "
                   "without a zone it is taken in the shop's time zone) or a date, got %s%.*s%s",
                   at ? "\"" : "", quote_len(at ? at : "nothing", 40), at ? at : "nothing",
                   at ? "\"" : "");
            continue;
        }
        if (!cs__has_word(sub)) /* (blanks are no subtag) */
            src.code_key = "tag";
        char cc[3] = "";
        if (a3 && *a3 && !alpha2(a3, cc)) {
            reject(b, &src, "country_iso3",
                   "expected an ISO 3166-1 country code such as DEU (or DE), got \"%.*s\"",
                   quote_len(a3, 16), a3);
            continue;
        }
        json_t *loc = json_object();
        if (!loc) {
            rc = cs_errf(&err, CS_ERR_NOMEM, "out of memory");
            goto out;
        }
        /* the region: the one the scan's place is in (model/region.h) */
        if ((city && json_object_set_new(loc, "city", json_string(city))) ||
            (zip && json_object_set_new(loc, "postal_code", json_string(zip))) ||
            (state && *state && json_object_set_new(loc, "region", json_string(state))) ||
            (cc[0] && json_object_set_new(loc, "country", json_string(cc)))) {
            json_decref(loc);
            rc = cs_errf(&err, CS_ERR_NOMEM, "out of memory");
            goto out;
        }
        rc = add_scan(b, &src, carrier, number, cs__has_word(sub) ? sub : tag, text, t,
                      zoned ? at : cs_time_format(t, iso, sizeof iso), loc, &err);
        json_decref(loc);
        if (rc)
            goto out;
    }
out:
    json_decref(doc);
    if (rc)
        return cs__http_reply_err(r, &err);
    return submit(r, b);
}

/* X-Consonance-Signature, parsed. */
typedef struct sig_hdr {
    const char *t; /* the time as sent (tlen bytes, not NUL-terminated): what was signed */
    size_t tlen;
    long long ts;  /* its value, seconds */
    size_t n_v1;
    char v1[SIG_V1_MAX][2 * CS_SHA256_LEN + 1]; /* lower case */
} sig_hdr_t;

static bool blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* X-Consonance-Signature: KEY=VALUE elements separated by commas, in any
 * order, blanks around them ignored (as Stripe's verifiers read theirs):
 * one t, the Unix time in seconds as digits (leading zeros allowed: the
 * text is what was signed; at most SIG_TS_DIGITS of them significant, so
 * ts * 1000 cannot overflow); one or more v1, 64 hex digits in either
 * case (a sender rotating its secret signs with both; any one that
 * matches passes); other keys (v0, a later scheme) are ignored. false:
 * malformed, why[size] says how. */
static bool parse_signature(const char *hdr, sig_hdr_t *sg, char *why, size_t size)
{
    bool have_t = false;
    memset(sg, 0, sizeof *sg);
    for (const char *p = hdr; *p;) {
        const char *k = p, *e = p;
        while (*e && *e != ',')
            e++;
        p = *e ? e + 1 : e;
        while (k < e && blank(*k))
            k++;
        while (e > k && blank(e[-1]))
            e--;
        if (k == e)
            continue; /* ",," or a trailing comma */
        const char *eq = memchr(k, '=', (size_t)(e - k)), *ke = eq, *v = eq ? eq + 1 : NULL;
        if (!eq) {
            snprintf(why, size, "malformed: expected KEY=VALUE elements separated by commas "
                                "(t=UNIX,v1=HEX)");
            return false;
        }
        while (ke > k && blank(ke[-1]))
            ke--;
        while (v < e && blank(*v))
            v++;
        size_t kl = (size_t)(ke - k), vl = (size_t)(e - v);
        if (kl == 1 && k[0] == 't') {
            size_t i = 0, zeros = 0;
            long long ts = 0;
            while (zeros < vl && v[zeros] == '0')
                zeros++;
            for (i = 0; i < vl && v[i] >= '0' && v[i] <= '9'; i++)
                if (i >= zeros && i - zeros < SIG_TS_DIGITS)
                    ts = ts * 10 + (v[i] - '0');
            if (have_t) {
                snprintf(why, size, "malformed: t given twice");
                return false;
            }
            if (!vl || i != vl) {
                snprintf(why, size, "malformed: t must be a Unix time in seconds (digits only)");
                return false;
            }
            if (vl - zeros > SIG_TS_DIGITS || vl > SIG_T_MAX) {
                snprintf(why, size, "malformed: t has %zu digits: a Unix time in seconds has at "
                                    "most %d (and %d with leading zeros)",
                         vl, SIG_TS_DIGITS, SIG_T_MAX);
                return false;
            }
            have_t = true;
            sg->t = v;
            sg->tlen = vl;
            sg->ts = ts;
        } else if (kl == 2 && k[0] == 'v' && k[1] == '1') {
            bool hex = vl == 2 * CS_SHA256_LEN;
            for (size_t i = 0; hex && i < vl; i++)
                hex = isxdigit((unsigned char)v[i]);
            if (!hex) {
                snprintf(why, size, "malformed: v1 must be 64 hex digits (HMAC-SHA256), got %zu "
                                    "characters%s",
                         vl, vl == 2 * CS_SHA256_LEN ? " that are not all hex digits" : "");
                return false;
            }
            if (sg->n_v1 == SIG_V1_MAX) {
                snprintf(why, size, "malformed: more than %d v1 signatures", SIG_V1_MAX);
                return false;
            }
            for (size_t i = 0; i < vl; i++)
                sg->v1[sg->n_v1][i] = (char)tolower((unsigned char)v[i]);
            sg->v1[sg->n_v1++][vl] = '\0';
        }
    }
    if (!have_t || !sg->n_v1) {
        snprintf(why, size, "malformed: %s is missing (expected t=UNIX,v1=HEX: the time in "
                            "seconds and the HMAC-SHA256 of \"t.body\")",
                 !have_t ? "t" : "v1");
        return false;
    }
    return true;
}

/* The first key of obj that names is not (NULL-ended): our own form
 * refuses a field it does not know, as the event API does, so a typo
 * ("ocurred_at", "locaton") is not dropped unseen. */
static const char *unknown_key(json_t *obj, const char *const *names)
{
    const char *key;
    json_t *v;
    json_object_foreach (obj, key, v) {
        size_t i = 0;
        while (names[i] && strcmp(names[i], key) != 0)
            i++;
        if (!names[i])
            return key;
    }
    return NULL;
}

static enum MHD_Result own_scans(hreq_t *r, batch_t *b)
{
    const char *secret = r->h->opts.tracking_secret;
    if (!secret || !*secret)
        return cs__http_reply_code(r, 404, "not_found", "scan webhooks are off (tracking_secret)");
    const char *sig = cs__http_header(r, SIG_HEADER);
    sig_hdr_t sg;
    char why[200];
    cs_err_t err;
    cs_err_clear(&err);
    if (!sig)
        return forbidden(r, SIG_HEADER, "missing (expected t=UNIX,v1=HEX)");
    if (!parse_signature(sig, &sg, why, sizeof why))
        return forbidden(r, SIG_HEADER, "%s", why);
    cs_ms_t now = cs_clock_now(cs_engine_clock(r->h->engine));
    cs_ms_t at = (cs_ms_t)sg.ts * 1000;
    if (at < now - SIG_SKEW_MS)
        return forbidden(r, SIG_HEADER, "t is more than 5 minutes old");
    if (at > now + SIG_SKEW_MS)
        return forbidden(r, SIG_HEADER,
                         "t is more than 5 minutes in the future (check the sender's clock)");
    char want[CS_SHA256_HEX_LEN];
    if (cs_webhook_signature_text(secret, sg.t, sg.tlen, r->body.data ? r->body.data : "",
                                  r->body.len, want)) {
        cs_errf(&err, CS_ERR_INTERNAL, "HMAC-SHA256 is not available from the crypto library");
        return cs__http_reply_err(r, &err);
    }
    /* every v1 is compared, in constant time each: the answer does not
     * tell which one, or how much of one, matched */
    int match = 0;
    for (size_t i = 0; i < sg.n_v1; i++)
        match |= cs_ct_equal(want, sg.v1[i], 2 * CS_SHA256_LEN);
    if (!match)
        return forbidden(r, SIG_HEADER, "does not match the body signed with tracking_secret");
    static const char *const top_keys[] = { "carrier", "tracking_number", "scans", NULL };
    static const char *const scan_keys[] = { "code", "text", "occurred_at", "location", NULL };
    char carrier[CS_ID_MAX + 1];
    const char *number, *key;
    cs_rc rc = CS_OK;
    json_t *doc = load_body(r, &err);
    json_t *scans = doc ? json_object_get(doc, "scans") : NULL;
    if (!doc)
        rc = err.rc;
    else if ((rc = get_carrier(doc, "carrier", "carrier", "a carrier id: a-z, 0-9, _ and -",
                               carrier, sizeof carrier, &err)) ||
             (rc = get_number(doc, "tracking_number", "tracking_number", &number, &err)))
        ;
    else if (!json_is_array(scans))
        rc = cs_err_field(&err, CS_ERR_INVALID, "scans", "scans: %s, got %s",
                          "expected an array of scans", scans ? cs_json_type_word(scans) : "nothing");
    else if ((key = unknown_key(doc, top_keys)))
        rc = cs_err_field(&err, CS_ERR_INVALID, key, "%.*s: unknown field (expected carrier, "
                          "tracking_number and scans)", quote_len(key, 64), key);
    if (rc)
        goto out;
    size_t i;
    json_t *s;
    json_array_foreach (scans, i, s) {
        scan_src_t src = { .index = i, .code_key = "code", .text_key = "text",
                           .at_key = "occurred_at", .number_path = "tracking_number",
                           .carrier_path = "carrier" };
        snprintf(src.base, sizeof src.base, "scans[%zu]", i);
        if (!json_is_object(s)) {
            reject(b, &src, NULL, "expected an object, got %s", cs_json_type_word(s));
            continue;
        }
        if ((key = unknown_key(s, scan_keys))) {
            char field[64];
            snprintf(field, sizeof field, "%.*s", quote_len(key, 40), key);
            reject(b, &src, field, "unknown field (expected code, text, occurred_at and "
                                   "location)");
            continue;
        }
        const char *code, *text, *when;
        char num[24];
        json_t *loc = json_object_get(s, "location");
        cs_ms_t t;
        if (!scan_str(b, &src, s, "code", true, num, sizeof num, &code) ||
            !scan_str(b, &src, s, "text", false, NULL, 0, &text) ||
            !scan_str(b, &src, s, "occurred_at", false, NULL, 0, &when))
            continue;
        if (loc && !json_is_null(loc) && !json_is_object(loc)) {
            reject(b, &src, "location", "expected an object ({\"city\", \"postal_code\", "
                                        "\"country\"}), got %s",
                   cs_json_type_word(loc));
            continue;
        }
        if (when && !cs_time_parse(when, &t) && cs_time_before_1970(when)) {
            reject(b, &src, "occurred_at",
                   "expected a time from 2000-01-01 on, got \"%.*s\"; check how the sender "
                   "writes its times",
                   quote_len(when, 40), when);
            continue;
        }
        if (!when || !cs_time_parse(when, &t)) {
            reject(b, &src, "occurred_at",
                   "expected an RFC 3339 time of a real date with a zone offset, such as "
                   "2026-12-03T09:15:00+01:00, got %s%.*s%s",
                   when ? "\"" : "", quote_len(when ? when : "nothing", 40), when ? when : "nothing",
                   when ? "\"" : "");
            continue;
        }
        rc = add_scan(b, &src, carrier, number, code, text, t, when, loc, &err);
        if (rc)
            goto out;
    }
out:
    json_decref(doc);
    if (rc)
        return cs__http_reply_err(r, &err);
    return submit(r, b);
}

enum MHD_Result cs__http_tracking_hook(hreq_t *r)
{
    if (r->too_big) {
        cs_err_t err;
        cs_errf(&err, CS_ERR_TOOBIG,
                "request body exceeds the tracking webhooks' limit of %d bytes (1 MiB); send "
                "at most %d scans a request",
                CS_HTTP_HOOK_BODY_MAX, SCANS_MAX);
        return cs__http_reply_err(r, &err);
    }
    batch_t *b = calloc(1, sizeof *b);
    if (!b || !(b->rejected = json_array())) {
        free(b);
        return MHD_NO;
    }
    b->now = cs_clock_now(cs_engine_clock(r->h->engine));
    b->source = r->route == R_TRACK_AFTERSHIP ? CS_SCAN_SOURCE_AFTERSHIP : "scan-webhook";
    enum MHD_Result ret = r->route == R_TRACK_AFTERSHIP ? aftership(r, b) : own_scans(r, b);
    /* events the engine did not take (refused before or at submit) are ours */
    for (size_t i = 0; i < b->n; i++)
        cs_event_free(&b->items[i].ev);
    json_decref(b->rejected);
    free(b);
    return ret;
}
