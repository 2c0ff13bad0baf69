/*
 * event.c -- parse and validate canonical events (schema v1). See event.h
 * and docs/events.md.
 *
 * Shape: one validator per event type walks the jansson document with a
 * small context that carries the JSON path of the current object, so every
 * error names the offending field ("data.items[2].quantity") and what was
 * expected. Strings in the typed payload borrow from the document.
 *
 * cs_event_from_json may normalize values in place (the carrier is stored
 * lower-cased and trimmed); callers hand over documents they do not share.
 */
#include "event.h"

#include "../lib/cs_json.h"
#include "../lib/cs_tz.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- name tables ---- */

static const char *const type_names[CS_EV__COUNT] = {
    [CS_EV_UNKNOWN] = NULL,
    [CS_EV_CUSTOMER_UPSERTED] = "customer.upserted",
    [CS_EV_ORDER_PLACED] = "order.placed",
    [CS_EV_ORDER_CANCELLED] = "order.cancelled",
    [CS_EV_SHIPMENT_CREATED] = "shipment.created",
    [CS_EV_TRACKING_EVENT] = "tracking.event",
    [CS_EV_RETURN_REQUESTED] = "return.requested",
    [CS_EV_RETURN_UPDATED] = "return.updated",
    [CS_EV_TICKET_CREATED] = "ticket.created",
    [CS_EV_TICKET_UPDATED] = "ticket.updated",
    [CS_EV_FEEDBACK_SUBMITTED] = "feedback.submitted",
    [CS_EV_MESSAGE_STATUS] = "message.status",
    [CS_EV_SIGNAL] = "signal",
    [CS_EV_SHIPMENT_CANCELLED] = "shipment.cancelled",
};

static const char *const track_names[CS_TRACK__COUNT] = {
    "info_received", "in_transit", "out_for_delivery", "failed_attempt",
    "available_for_pickup", "delivered", "exception", "returned_to_sender",
};

static const char *const incident_names[CS_INCIDENT__COUNT] = {
    NULL, "address_problem", "customs", "weather", "damaged", "refused", "held_at_depot",
    "recipient_absent", "lost", "delayed", "other",
};

const char *cs_incident_name(cs_incident_t r)
{
    return ((int)r > 0 && r < CS_INCIDENT__COUNT) ? incident_names[r] : NULL;
}

int cs_incident_from_name(const char *s)
{
    if (!s)
        return -1;
    for (int i = 1; i < CS_INCIDENT__COUNT; i++)
        if (strcmp(incident_names[i], s) == 0)
            return i;
    return -1;
}

static const char *const msg_names[CS_MSG__COUNT] = {
    "sent", "delivered", "opened", "clicked", "bounced", "complained", "unsubscribed", "failed",
};

static const char *const channel_names[CS_CHANNEL__COUNT] = {"email", "sms", "whatsapp"};

static int lookup(const char *const *names, int n, const char *s)
{
    if (!s)
        return -1;
    for (int i = 0; i < n; i++)
        if (names[i] && strcmp(names[i], s) == 0)
            return i;
    return -1;
}

const char *cs_event_type_name(cs_event_type_t t)
{
    return (t > CS_EV_UNKNOWN && t < CS_EV__COUNT) ? type_names[t] : NULL;
}

cs_event_type_t cs_event_type_from_name(const char *s)
{
    int i = lookup(type_names, CS_EV__COUNT, s);
    return i < 0 ? CS_EV_UNKNOWN : (cs_event_type_t)i;
}

const char *cs_track_status_name(cs_track_status_t s)
{
    return ((int)s >= 0 && s < CS_TRACK__COUNT) ? track_names[s] : NULL;
}

int cs_track_status_from_name(const char *s)
{
    return lookup(track_names, CS_TRACK__COUNT, s);
}

const char *cs_msg_status_name(cs_msg_status_t s)
{
    return ((int)s >= 0 && s < CS_MSG__COUNT) ? msg_names[s] : NULL;
}

int cs_msg_status_from_name(const char *s)
{
    return lookup(msg_names, CS_MSG__COUNT, s);
}

bool cs_msg_stops_wa_marketing(cs_msg_status_t status, const char *channel, const char *detail)
{
    char code[16];
    int n = snprintf(code, sizeof code, "%d", CS_WA_MARKETING_STOPPED);
    return status == CS_MSG_FAILED && channel && strcmp(channel, "whatsapp") == 0 && detail &&
           strncmp(detail, code, (size_t)n) == 0 && (detail[n] == ' ' || detail[n] == '\0');
}

const char *cs_channel_name(cs_channel_t c)
{
    return ((int)c >= 0 && c < CS_CHANNEL__COUNT) ? channel_names[c] : NULL;
}

int cs_channel_from_name(const char *s)
{
    return lookup(channel_names, CS_CHANNEL__COUNT, s);
}

/* ---- money ---- */

#define MONEY_MAX_MINOR (INT64_C(100000000000000)) /* 10^12 major units */
#define MONEY_INT64_MAX_TEXT "92233720368547758.07"     /* INT64_MAX cents */

/* Syntax first (digits, at most 2 significant decimals), then size: a
 * well-formed amount above the limit is said to be too large, not
 * malformed. */
static cs_money_check_t money_from_text(const char *s, size_t len, int64_t *minor)
{
    int64_t major = 0, frac = 0;
    size_t i = 0, fd = 0;
    bool big = false;
    if (len == 0)
        return CS_MONEY_MALFORMED;
    if (!isdigit((unsigned char)s[0]))
        return CS_MONEY_MALFORMED;
    for (; i < len && isdigit((unsigned char)s[i]); i++) {
        if (!big)
            major = major * 10 + (s[i] - '0');
        if (major > MONEY_MAX_MINOR / 100)
            big = true; /* stop accumulating: the digits still have to be digits */
    }
    if (i < len && s[i] == '.') {
        i++;
        for (; i < len && isdigit((unsigned char)s[i]); i++, fd++) {
            if (fd >= 2) {
                if (s[i] != '0') /* 49.900 is fine, 49.901 is not */
                    return CS_MONEY_MALFORMED;
                continue;
            }
            frac = frac * 10 + (s[i] - '0');
        }
        if (fd == 0)
            return CS_MONEY_MALFORMED;
        if (fd == 1)
            frac *= 10;
    }
    if (i != len)
        return CS_MONEY_MALFORMED;
    if (big || major * 100 + frac > MONEY_MAX_MINOR)
        return CS_MONEY_TOO_LARGE;
    *minor = major * 100 + frac;
    return CS_MONEY_OK;
}

cs_money_check_t cs_money_check(const json_t *v, int64_t *minor)
{
    char buf[64];
    if (json_is_string(v))
        return money_from_text(json_string_value(v), json_string_length(v), minor);
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        if (x < 0)
            return CS_MONEY_MALFORMED;
        if (x > MONEY_MAX_MINOR / 100)
            return CS_MONEY_TOO_LARGE;
        *minor = (int64_t)x * 100;
        return CS_MONEY_OK;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!isfinite(d) || d < 0)
            return CS_MONEY_MALFORMED;
        if (d > (double)(MONEY_MAX_MINOR / 100))
            return CS_MONEY_TOO_LARGE;
        /* the shortest text that round-trips, then the decimal rules: 49.9 -> 4990 */
        int n = snprintf(buf, sizeof buf, "%.15g", d);
        if (n <= 0 || (size_t)n >= sizeof buf || strchr(buf, 'e'))
            return CS_MONEY_MALFORMED;
        return money_from_text(buf, (size_t)n, minor);
    }
    return CS_MONEY_MALFORMED;
}

bool cs_money_from_json(const json_t *v, int64_t *minor)
{
    return cs_money_check(v, minor) == CS_MONEY_OK;
}

const char *cs_money_format(int64_t minor, char *buf, size_t size)
{
    uint64_t a = minor < 0 ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;
    snprintf(buf, size, "%s%llu.%02llu", minor < 0 ? "-" : "", (unsigned long long)(a / 100),
             (unsigned long long)(a % 100));
    return buf;
}

/* ---- the validation context ---- */

typedef struct vctx {
    cs_err_t *err;
    bool normalized;             /* a value was rewritten in place */
    char path[CS_ERR_FIELD_MAX]; /* of the object being read: "data", "data.items[2]" */
    /* the fields that held a number too large for any type, read as the
     * largest double (cs_json_load_wide; borrowed): said as such */
    const char *const *huge;
    size_t nhuge;
} vctx_t;

/* path of key inside the current object */
static const char *fpath(const vctx_t *c, const char *key, char *buf, size_t size)
{
    /* bounded concatenation "path.key" (a truncated path is still useful) */
    size_t n = 0, pl = strlen(c->path), kl = strlen(key);
    if (pl) {
        n = pl < size - 1 ? pl : size - 1;
        memcpy(buf, c->path, n);
        if (n < size - 1)
            buf[n++] = '.';
    }
    if (kl > size - 1 - n)
        kl = size - 1 - n;
    memcpy(buf + n, key, kl);
    buf[n + kl] = '\0';
    return buf;
}

#define FIELD(c, key) fpath((c), (key), fb_, sizeof fb_)

/* A real as an error says what came (field its path): as sent, 1.005 not
 * 1.0049999999999999; a number too large for a double as that. */
static const char *real_shown(const vctx_t *c, const char *field, double d, char *buf,
                              size_t size)
{
    for (size_t i = 0; i < c->nhuge; i++)
        if (strcmp(c->huge[i], field) == 0)
            return "a number too large for any number type";
    snprintf(buf, size, "%.*g", cs_json_real_digits(d), d);
    return buf;
}

/* A real where an integer is expected, as the error shows it: one that
 * holds a whole number ("quantity": 2.0, 9E0) says so, not "got 2", which
 * reads as the very integer the field asks for. buf: at least 128 bytes. */
static const char *real_int_shown(const vctx_t *c, const char *field, double d, char *buf,
                                  size_t size)
{
    const char *s = real_shown(c, field, d, buf, size);
    if (s != buf || strpbrk(buf, ".eEni")) /* (a fraction, an exponent, nan, inf) */
        return s;
    char whole[24]; /* at most 17 digits and a sign, as %g wrote them without an exponent */
    cs_strlcpy(whole, buf, sizeof whole);
    snprintf(buf, size, "%s.0 (a number with a decimal point or an exponent; send %s)", whole,
             whole);
    return buf;
}

/* Enter a child object: returns the previous path length to restore. */
static size_t enter(vctx_t *c, const char *key, int index)
{
    size_t old = strlen(c->path);
    size_t room = sizeof c->path - old;
    if (key)
        snprintf(c->path + old, room, "%s%s", old ? "." : "", key);
    else
        snprintf(c->path + old, room, "[%d]", index);
    return old;
}

static void leave(vctx_t *c, size_t old)
{
    c->path[old] = '\0';
}

/* Reject keys not in `allowed` (NULL-terminated). */
static cs_rc check_keys(vctx_t *c, json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *v;
    char fb_[CS_ERR_FIELD_MAX];
    json_object_foreach(obj, key, v) {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, key) == 0) { ok = true; break; }
        if (!ok) {
            char shown[40];
            snprintf(shown, sizeof shown, "%s", key);
            return cs_err_field(c->err, CS_ERR_INVALID, FIELD(c, shown),
                                "%s: unknown field (allowed: see docs/events.md)",
                                FIELD(c, shown));
        }
    }
    return CS_OK;
}

/* C0 controls, DEL, and C1 controls (U+0080..U+009F, in UTF-8 0xC2 0x80..
 * 0xC2 0x9F: what a Latin-1 or Windows-1252 export read as UTF-8 leaves
 * behind). s is valid UTF-8, so 0xC2 always starts a character. */
static bool has_control(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f)
            return true;
        if (ch == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
            (unsigned char)s[i + 1] <= 0x9F)
            return true;
    }
    return false;
}

enum { STR_ID, STR_SHORT, STR_TEXT };

/* A string field. Absent or null -> *out NULL (error when required). */
static cs_rc get_str(vctx_t *c, json_t *obj, const char *key, bool required, int kind,
                     const char **out)
{
    char fb_[CS_ERR_FIELD_MAX];
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (required)
            return cs_err_field(c->err, CS_ERR_INVALID, FIELD(c, key),
                                "%s: required field is missing", FIELD(c, key));
        return CS_OK;
    }
    if (!json_is_string(v))
        return cs_err_field(c->err, CS_ERR_INVALID, FIELD(c, key), "%s: expected a string, got %s",
                            FIELD(c, key), cs_json_type_word(v));
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    size_t max = kind == STR_ID ? CS_ID_MAX : kind == STR_SHORT ? CS_SHORT_MAX : CS_TEXT_MAX;
    if (n == 0 && kind == STR_ID)
        return cs_err_field(c->err, CS_ERR_INVALID, FIELD(c, key),
                            "%s: expected a non-empty id of at most %zu bytes", FIELD(c, key), max);
    if (n > max)
        return cs_err_field(c->err, CS_ERR_INVALID, FIELD(c, key),
                            "%s: too long: %zu bytes, at most %zu allowed", FIELD(c, key), n, max);
    if (strlen(s) != n)
        return cs_err_field(c->err, CS_ERR_INVALID, FIELD(c, key),
                            "%s: must not contain NUL characters", FIELD(c, key));
    if (kind == STR_ID && has_control(s, n))
        return cs_err_field(c->err, CS_ERR_INVALID, FIELD(c, key),
                            "%s: ids must not contain control characters", FIELD(c, key));
    *out = s;
    return CS_OK;
}

/* One of a fixed set of words. */
static cs_rc get_enum(vctx_t *c, json_t *obj, const char *key, bool required,
                      const char *const *names, int n, const char *expect, int *idx,
                      const char **str)
{
    char fb_[CS_ERR_FIELD_MAX];
    const char *s;
    json_t *v = json_object_get(obj, key);
    if (idx)
        *idx = -1;
    if (str)
        *str = NULL;
    if (required && (!v || json_is_null(v)))
        return cs_err_field(c->err, CS_ERR_INVALID, FIELD(c, key),
                            "%s: required field is missing: expected one of %s", FIELD(c, key),
                            expect);
    cs_rc rc = get_str(c, obj, key, required, STR_SHORT, &s);
    if (str)
        *str = s;
    if (rc || !s)
        return rc;
    int i = lookup(names, n, s);
    if (i < 0)
        return cs_err_field(c->err, CS_ERR_INVALID, FIELD(c, key), "%s: expected one of %s, got \"%.40s\"",
                            FIELD(c, key), expect, s);
    if (idx)
        *idx = i;
    if (str)
        *str = names[i];
    return CS_OK;
}

static cs_rc get_int(vctx_t *c, json_t *obj, const char *key, bool required, int64_t lo,
                     int64_t hi, cs_rc range_rc, int64_t *out, bool *present)
{
    char fb_[CS_ERR_FIELD_MAX];
    json_t *v = json_object_get(obj, key);
    if (present)
        *present = false;
    if (!v || json_is_null(v)) {
        if (required)
            return cs_err_field(c->err, CS_ERR_INVALID, FIELD(c, key),
                                "%s: required field is missing", FIELD(c, key));
        return CS_OK;
    }
    if (json_is_real(v)) { /* 1.5, 2.0, 1e20, or an integer beyond 64 bits: say which */
        char d[128];
        return cs_err_field(c->err, CS_ERR_INVALID, FIELD(c, key),
                            "%s: expected an integer %lld..%lld, got %s", FIELD(c, key),
                            (long long)lo, (long long)hi,
                            real_int_shown(c, FIELD(c, key), json_real_value(v), d, sizeof d));
    }
    if (!json_is_integer(v))
        return cs_err_field(c->err, CS_ERR_INVALID, FIELD(c, key),
                            "%s: expected an integer %lld..%lld, got %s", FIELD(c, key),
                            (long long)lo, (long long)hi, cs_json_type_word(v));
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return cs_err_field(c->err, range_rc, FIELD(c, key),
                            "%s: expected an integer %lld..%lld, got %lld", FIELD(c, key),
                            (long long)lo, (long long)hi, (long long)x);
    *out = (int64_t)x;
    if (present)
        *present = true;
    return CS_OK;
}

static cs_rc get_money(vctx_t *c, json_t *obj, const char *key, bool required, int64_t *out,
                       bool *present)
{
    char fb_[CS_ERR_FIELD_MAX];
    json_t *v = json_object_get(obj, key);
    if (present)
        *present = false;
    if (!v || json_is_null(v)) {
        if (required)
            return cs_err_field(c->err, CS_ERR_INVALID, FIELD(c, key),
                                "%s: required field is missing", FIELD(c, key));
        return CS_OK;
    }
    cs_money_check_t mc = cs_money_check(v, out);
    if (mc != CS_MONEY_OK) {
        char shown[48] = "";
        if (json_is_string(v))
            snprintf(shown, sizeof shown, ", got \"%.32s\"", json_string_value(v));
        else if (json_is_integer(v))
            snprintf(shown, sizeof shown, ", got %lld", (long long)json_integer_value(v));
        else if (json_is_real(v)) {
            char d[40];
            snprintf(shown, sizeof shown, ", got %s",
                     real_shown(c, FIELD(c, key), json_real_value(v), d, sizeof d));
        }
        else
            snprintf(shown, sizeof shown, ", got %s", cs_json_type_word(v));
        if (mc == CS_MONEY_TOO_LARGE)
            return cs_err_field(c->err, CS_ERR_INVALID, FIELD(c, key),
                                "%s: expected an amount of at most %s%s", FIELD(c, key),
                                CS_MONEY_MAX_TEXT, shown);
        return cs_err_field(c->err, CS_ERR_INVALID, FIELD(c, key),
                            "%s: expected an amount >= 0 with at most 2 decimals like 49.90%s",
                            FIELD(c, key), shown);
    }
    if (present)
        *present = true;
    return CS_OK;
}

static cs_rc get_time(vctx_t *c, json_t *obj, const char *key, bool required, bool date_ok,
                      cs_ms_t *out, bool *present)
{
    char fb_[CS_ERR_FIELD_MAX];
    const char *s;
    cs_rc rc = get_str(c, obj, key, required, STR_SHORT, &s);
    if (present)
        *present = false;
    if (rc || !s)
        return rc;
    bool ok = cs_time_parse(s, out);
    size_t n = strlen(s);
    if (ok && !date_ok && n == 10)
        ok = false;
    /* a date is kept as its midnight UTC, and read as that day wherever
     * (cs_tz_date_day); a time with an offset that falls on a midnight
     * UTC ("21:00:00-03:00") is a time, kept a millisecond later so that
     * it reads as one: its local day */
    if (ok && date_ok && n > 10 && *out % CS_MS_PER_DAY == 0 && s[n - 1] != 'Z' &&
        s[n - 1] != 'z' && !(n > 6 && strcmp(s + n - 6, "+00:00") == 0) &&
        !(n > 6 && strcmp(s + n - 6, "-00:00") == 0))
        *out += 1;
    if (!ok && (date_ok || n != 10) && cs_time_before_1970(s)) /* as one before 2000 is told */
        return cs_err_field(c->err, CS_ERR_INVALID, FIELD(c, key),
                            "%s: expected a %s from 2000-01-01 on, got \"%.40s\"; check how the "
                            "sender writes its times",
                            FIELD(c, key), n == 10 ? "date" : "time", s);
    if (!ok) {
        /* the two slips a sender makes most, named: a local time written
         * without its zone (an ISO time from a library that leaves it
         * out), and a date where a time is wanted */
        const char *slip = date_ok && n == 10 ? "" : cs_time_slip(s);
        return cs_err_field(c->err, CS_ERR_INVALID, FIELD(c, key),
                            "%s: expected %s, got \"%.40s\"%s", FIELD(c, key),
                            date_ok ? "a date (2026-03-01) or an RFC 3339 time"
                                    : "an RFC 3339 time like 2026-03-01T10:15:00Z",
                            s, slip);
    }
    if (present)
        *present = true;
    return CS_OK;
}

static cs_rc get_bool(vctx_t *c, json_t *obj, const char *key, cs_consent_t *out)
{
    char fb_[CS_ERR_FIELD_MAX];
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return CS_OK;
    if (!json_is_boolean(v))
        return cs_err_field(c->err, CS_ERR_INVALID, FIELD(c, key),
                            "%s: expected true or false, got %s", FIELD(c, key), cs_json_type_word(v));
    *out = json_is_true(v) ? CS_CONSENT_YES : CS_CONSENT_NO;
    return CS_OK;
}

/* Optional object member; *out NULL when absent. */
static cs_rc get_obj(vctx_t *c, json_t *obj, const char *key, bool required, json_t **out)
{
    char fb_[CS_ERR_FIELD_MAX];
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (required)
            return cs_err_field(c->err, CS_ERR_INVALID, FIELD(c, key),
                                "%s: required field is missing", FIELD(c, key));
        return CS_OK;
    }
    if (!json_is_object(v))
        return cs_err_field(c->err, CS_ERR_INVALID, FIELD(c, key), "%s: expected an object, got %s",
                            FIELD(c, key), cs_json_type_word(v));
    *out = v;
    return CS_OK;
}

static cs_rc check_attributes(vctx_t *c, json_t *obj)
{
    json_t *a;
    return get_obj(c, obj, "attributes", false, &a);
}

/* ---- field formats ---- */

static bool valid_email(const char *s)
{
    const char *at = strchr(s, '@');
    if (!at || at == s || strchr(at + 1, '@'))
        return false;
    const char *dot = strrchr(at + 1, '.');
    if (!dot || dot == at + 1 || dot[1] == '\0')
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '<' || *p == '>' || *p == ',' || *p == ';' ||
            *p == '"' || *p == '(' || *p == ')' || *p == '\\')
            return false;
    return true;
}

static bool valid_phone(const char *s)
{
    if (s[0] != '+' || s[1] < '1' || s[1] > '9')
        return false;
    size_t n = 0;
    for (const char *p = s + 1; *p; p++, n++)
        if (!isdigit((unsigned char)*p))
            return false;
    return n >= 7 && n <= 15;
}

static bool valid_locale(const char *s)
{
    size_t n = 0;
    while (isalpha((unsigned char)s[n]) && islower((unsigned char)s[n]))
        n++;
    if (n < 2 || n > 3)
        return false;
    if (s[n] == '\0')
        return true;
    if (s[n] != '-')
        return false;
    const char *r = s + n + 1;
    size_t m = strlen(r);
    if (m == 2)
        return isupper((unsigned char)r[0]) && isupper((unsigned char)r[1]);
    if (m == 3)
        return isdigit((unsigned char)r[0]) && isdigit((unsigned char)r[1]) &&
               isdigit((unsigned char)r[2]);
    return false;
}

static bool valid_timezone(const char *s)
{
    if (strcmp(s, "UTC") == 0)
        return true;
    const char *slash = strchr(s, '/');
    if (!slash || slash == s || slash[1] == '\0' || !isupper((unsigned char)s[0]))
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("_+-/", *p))
            return false;
    return strlen(s) < 64;
}

static bool valid_country(const char *s)
{
    return strlen(s) == 2 && isupper((unsigned char)s[0]) && isupper((unsigned char)s[1]);
}

static bool valid_currency(const char *s)
{
    return strlen(s) == 3 && isupper((unsigned char)s[0]) && isupper((unsigned char)s[1]) &&
           isupper((unsigned char)s[2]);
}

/* ISO 4217's codes that are no money an order is paid in: XXX "no
 * currency", XTS for testing, the metals, and the units of account and of
 * the bond markets. The other X-codes are money (XAF, XOF, XPF, XCD,
 * XCG); a code ISO 4217 does not list is not refused (the list grows). */
const char *cs_currency_not_money(const char *s)
{
    static const char *const codes[][2] = {
        { "XXX", "no currency" },        { "XTS", "a code for testing" },
        { "XAU", "gold, not money" },    { "XAG", "silver, not money" },
        { "XPT", "platinum, not money" }, { "XPD", "palladium, not money" },
        { "XDR", "a unit of account (the IMF's SDR), not money" },
        { "XSU", "a unit of account (the Sucre), not money" },
        { "XUA", "a unit of account (the ADB's), not money" },
        { "XBA", "a bond market unit, not money" }, { "XBB", "a bond market unit, not money" },
        { "XBC", "a bond market unit, not money" }, { "XBD", "a bond market unit, not money" },
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (strcmp(s, codes[i][0]) == 0)
            return codes[i][1];
    return NULL;
}

#define FORMAT_CHECK(c, key, s, ok, expect)                                                    \
    do {                                                                                       \
        if ((s) && !(ok)) {                                                                    \
            char fbx_[CS_ERR_FIELD_MAX];                                                       \
            const char *f_ = fpath((c), (key), fbx_, sizeof fbx_);                             \
            return cs_err_field((c)->err, CS_ERR_INVALID, f_,                                  \
                                "%s: expected %s, got \"%.64s\"", f_, expect, (s));          \
        }                                                                                      \
    } while (0)

/* ---- shared sub-objects ---- */

static cs_rc parse_address(vctx_t *c, json_t *parent, const char *key, cs_address_t *a)
{
    static const char *const allowed[] = {"postal_code", "city", "region", "country", NULL};
    json_t *o;
    cs_rc rc;
    memset(a, 0, sizeof *a);
    if ((rc = get_obj(c, parent, key, false, &o)) || !o)
        return rc;
    size_t old = enter(c, key, 0);
    if ((rc = check_keys(c, o, allowed)) || (rc = get_str(c, o, "postal_code", false, STR_ID, &a->postal_code)) ||
        (rc = get_str(c, o, "city", false, STR_SHORT, &a->city)) ||
        (rc = get_str(c, o, "region", false, STR_SHORT, &a->region)) ||
        (rc = get_str(c, o, "country", false, STR_ID, &a->country)))
        goto out;
    if (a->country && !valid_country(a->country)) {
        char fb_[CS_ERR_FIELD_MAX];
        rc = cs_err_field(c->err, CS_ERR_INVALID, FIELD(c, "country"),
                          "%s: expected a two-letter upper-case country code like DE, got \"%.16s\"",
                          FIELD(c, "country"), a->country);
    }
out:
    leave(c, old);
    return rc;
}

static cs_rc parse_customer(vctx_t *c, json_t *d, cs_customer_t *cu)
{
    static const char *const allowed[] = {"id", "email", "phone", "name", "locale", "timezone",
                                          "consents", "attributes", NULL};
    static const char *const purposes[] = {"transactional", "marketing", NULL};
    cs_rc rc;
    json_t *consents;
    memset(cu, 0, sizeof *cu);
    if ((rc = check_keys(c, d, allowed)) || (rc = get_str(c, d, "id", true, STR_ID, &cu->id)) ||
        (rc = get_str(c, d, "email", false, STR_SHORT, &cu->email)) ||
        (rc = get_str(c, d, "phone", false, STR_ID, &cu->phone)) ||
        (rc = get_str(c, d, "name", false, STR_SHORT, &cu->name)) ||
        (rc = get_str(c, d, "locale", false, STR_ID, &cu->locale)) ||
        (rc = get_str(c, d, "timezone", false, STR_ID, &cu->timezone)) ||
        (rc = check_attributes(c, d)) || (rc = get_obj(c, d, "consents", false, &consents)))
        return rc;
    FORMAT_CHECK(c, "email", cu->email, valid_email(cu->email), "an email address like name@example.com");
    FORMAT_CHECK(c, "phone", cu->phone, valid_phone(cu->phone), "an E.164 number like +4915112345678");
    FORMAT_CHECK(c, "locale", cu->locale, valid_locale(cu->locale), "a locale like de, en or de-DE");
    FORMAT_CHECK(c, "timezone", cu->timezone, valid_timezone(cu->timezone),
                 "an IANA time zone like Europe/Berlin");
    if (!consents)
        return CS_OK;
    size_t old = enter(c, "consents", 0);
    static const char *const channel_keys[] = {"email", "sms", "whatsapp", NULL};
    if ((rc = check_keys(c, consents, channel_keys)))
        goto out;
    for (int ch = 0; ch < CS_CHANNEL__COUNT; ch++) {
        json_t *p;
        if ((rc = get_obj(c, consents, channel_names[ch], false, &p)) || !p) {
            if (rc)
                goto out;
            continue;
        }
        size_t old2 = enter(c, channel_names[ch], 0);
        if (!(rc = check_keys(c, p, purposes)) &&
            !(rc = get_bool(c, p, "transactional", &cu->consent[ch][0])))
            rc = get_bool(c, p, "marketing", &cu->consent[ch][1]);
        leave(c, old2);
        if (rc)
            goto out;
    }
out:
    leave(c, old);
    return rc;
}

/* ---- one validator per type ---- */

static cs_rc canon_carrier(vctx_t *c, json_t *d, const char **carrier);

/* The calendar day (days since 1970-01-01) a date or RFC 3339 time names
 * as written, in its own offset: "2026-12-05T18:10:00-03:00" is the 5th,
 * though in UTC it is the 6th. A plain date in a promise means that day
 * where the shop is; its zone is not known here, and the day the
 * producer wrote the purchase in is the one it compared with. */
static int64_t written_day(const char *s)
{
    char date[11];
    cs_ms_t t = 0;
    cs_strlcpy(date, s, sizeof date);
    if (!cs_date_parse(date, &t))
        return 0; /* not reached: s was parsed as a time or date */
    return t / CS_MS_PER_DAY;
}

static cs_rc parse_order(vctx_t *c, json_t *d, cs_ms_t occurred_at, const char *occurred_s,
                         cs_order_t *o)
{
    static const char *const allowed[] = {"id", "customer_id", "placed_at", "currency", "items",
                                          "totals", "promised_delivery", "shipping", "customer",
                                          "attributes", NULL};
    static const char *const shipping_keys[] = {"carrier", "service", "origin", "destination",
                                                NULL};
    static const char *const item_keys[] = {"sku", "name", "category", "unit_price", "quantity",
                                            "discount", "attributes", NULL};
    static const char *const total_keys[] = {"subtotal", "shipping", "tax", "discount", "total",
                                             NULL};
    static const char *const promise_keys[] = {"earliest", "latest", NULL};
    char fb_[CS_ERR_FIELD_MAX];
    cs_rc rc;
    bool present;
    json_t *items, *totals, *promise, *cust;
    if ((rc = check_keys(c, d, allowed)) || (rc = get_str(c, d, "id", true, STR_ID, &o->id)) ||
        (rc = get_str(c, d, "customer_id", true, STR_ID, &o->customer_id)) ||
        (rc = get_str(c, d, "currency", true, STR_ID, &o->currency)) ||
        (rc = get_time(c, d, "placed_at", false, false, &o->placed_at, &present)) ||
        (rc = check_attributes(c, d)))
        return rc;
    o->placed_at_given = present;
    if (!present)
        o->placed_at = occurred_at;
    FORMAT_CHECK(c, "currency", o->currency, valid_currency(o->currency),
                 "a three-letter ISO 4217 code like EUR");
    const char *what = cs_currency_not_money(o->currency);
    if (what)
        return cs_err_field(c->err, CS_ERR_RULE, FIELD(c, "currency"),
                            "%s: expected the ISO 4217 code of a currency like EUR, got \"%s\", "
                            "which is %s",
                            FIELD(c, "currency"), o->currency, what);

    items = json_object_get(d, "items");
    if (!items || json_is_null(items))
        return cs_err_field(c->err, CS_ERR_INVALID, FIELD(c, "items"), "%s: required field is missing",
                            FIELD(c, "items"));
    if (!json_is_array(items) || json_array_size(items) == 0 ||
        json_array_size(items) > CS_ITEMS_MAX)
        return cs_err_field(c->err, CS_ERR_INVALID, FIELD(c, "items"),
                            "%s: expected an array of 1..%d line items", FIELD(c, "items"),
                            CS_ITEMS_MAX);
    o->n_items = json_array_size(items);
    o->items = cs_calloc(o->n_items, sizeof *o->items);
    if (!o->items)
        return cs_errf(c->err, CS_ERR_NOMEM, "out of memory");
    int64_t sum = 0;
    size_t old = enter(c, "items", 0);
    for (size_t i = 0; i < o->n_items; i++) {
        json_t *it = json_array_get(items, i);
        cs_line_item_t *li = &o->items[i];
        size_t old2 = enter(c, NULL, (int)i);
        if (!json_is_object(it)) {
            rc = cs_err_field(c->err, CS_ERR_INVALID, c->path, "%s: expected a line item object, got %s",
                              c->path, cs_json_type_word(it));
        } else if (!(rc = check_keys(c, it, item_keys)) &&
                   !(rc = get_str(c, it, "sku", true, STR_ID, &li->sku)) &&
                   !(rc = get_str(c, it, "name", true, STR_SHORT, &li->name)) &&
                   !(rc = cs_utf8_blank(li->name, strlen(li->name))
                              ? cs_err_field(c->err, CS_ERR_INVALID, FIELD(c, "name"),
                                             "%s: expected the item's name (what the customer "
                                             "bought), got %s",
                                             FIELD(c, "name"),
                                             *li->name ? "only white space" : "an empty string")
                              : CS_OK) &&
                   !(rc = get_str(c, it, "category", false, STR_SHORT, &li->category)) &&
                   !(rc = get_money(c, it, "unit_price", true, &li->unit_price, NULL)) &&
                   !(rc = get_int(c, it, "quantity", true, 1, 1000000, CS_ERR_RULE, &li->quantity,
                                  NULL)) &&
                   !(rc = get_money(c, it, "discount", false, &li->discount, NULL)) &&
                   !(rc = check_attributes(c, it))) {
            /* in cents, checked: a line or a sum past int64 is refused, not
             * wrapped into a wrong (even negative) total */
            int64_t line;
            if (__builtin_mul_overflow(li->unit_price, li->quantity, &line))
                rc = cs_err_field(c->err, CS_ERR_RULE, FIELD(c, "quantity"),
                                  "%s: unit_price x quantity is more than %s, the most a line "
                                  "can hold", FIELD(c, "quantity"), MONEY_INT64_MAX_TEXT);
            else if (li->discount > line)
                rc = cs_err_field(c->err, CS_ERR_RULE, FIELD(c, "discount"),
                                  "%s: the discount exceeds the line total (unit_price x quantity)",
                                  FIELD(c, "discount"));
            else if (__builtin_add_overflow(sum, line - li->discount, &sum))
                rc = cs_err_field(c->err, CS_ERR_RULE, c->path,
                                  "%s: the lines add up to more than %s, the most an order can "
                                  "hold", c->path, MONEY_INT64_MAX_TEXT);
        }
        leave(c, old2);
        if (rc) {
            leave(c, old);
            return rc;
        }
    }
    leave(c, old);

    if ((rc = get_obj(c, d, "totals", false, &totals)))
        return rc;
    o->subtotal = sum;
    if (totals) {
        bool has_sub, has_total;
        old = enter(c, "totals", 0);
        if (!(rc = check_keys(c, totals, total_keys)) &&
            !(rc = get_money(c, totals, "subtotal", false, &o->subtotal, &has_sub)) &&
            !(rc = get_money(c, totals, "shipping", false, &o->shipping, NULL)) &&
            !(rc = get_money(c, totals, "tax", false, &o->tax, NULL)) &&
            !(rc = get_money(c, totals, "discount", false, &o->discount, NULL)) &&
            !(rc = get_money(c, totals, "total", false, &o->total, &has_total))) {
            if (!has_sub)
                o->subtotal = sum;
            int64_t gross = 0;
            if (!has_total &&
                (__builtin_add_overflow(o->subtotal, o->shipping, &gross) ||
                 __builtin_add_overflow(gross, o->tax, &gross))) {
                leave(c, old);
                return cs_err_field(c->err, CS_ERR_RULE, FIELD(c, "totals"),
                                    "%s: subtotal + shipping + tax is more than %s, the most an "
                                    "order can hold", FIELD(c, "totals"), MONEY_INT64_MAX_TEXT);
            }
            if (!has_total)
                o->total = gross - o->discount;
            if (o->total < 0)
                rc = cs_err_field(c->err, CS_ERR_RULE, FIELD(c, "discount"),
                                  "%s: the discount exceeds subtotal + shipping + tax",
                                  FIELD(c, "discount"));
        }
        leave(c, old);
        if (rc)
            return rc;
    } else {
        o->total = o->subtotal;
    }

    if ((rc = get_obj(c, d, "promised_delivery", false, &promise)))
        return rc;
    if (promise) {
        bool has_from, has_to;
        old = enter(c, "promised_delivery", 0);
        if (!(rc = check_keys(c, promise, promise_keys)) &&
            !(rc = get_time(c, promise, "earliest", false, true, &o->promised_from, &has_from)) &&
            !(rc = get_time(c, promise, "latest", true, true, &o->promised_to, &has_to))) {
            o->promised_from_given = has_from;
            if (!has_from)
                o->promised_from = o->placed_at;
            /* a plain date (kept as its midnight UTC) is the whole day: a
             * promise for the day of the purchase is not before it, so the
             * two compare by the days they name as written */
            const char *from_s = has_from ? json_string_value(json_object_get(promise, "earliest"))
                                 : present ? json_string_value(json_object_get(d, "placed_at"))
                                           : occurred_s;
            const char *to_s = json_string_value(json_object_get(promise, "latest"));
            bool by_day = from_s && to_s && (strlen(from_s) == 10 || strlen(to_s) == 10);
            if (by_day ? written_day(to_s) < written_day(from_s)
                       : o->promised_to < o->promised_from)
                rc = cs_err_field(c->err, CS_ERR_RULE, FIELD(c, "latest"),
                                  "%s: must not be before %s", FIELD(c, "latest"),
                                  has_from ? "earliest" : "earliest (by default placed_at)");
        }
        leave(c, old);
        if (rc)
            return rc;
    }

    json_t *ship;
    if ((rc = get_obj(c, d, "shipping", false, &ship)))
        return rc;
    if (ship) {
        old = enter(c, "shipping", 0);
        if (!(rc = check_keys(c, ship, shipping_keys)) &&
            !(rc = get_str(c, ship, "carrier", false, STR_ID, &o->ship.carrier)) &&
            !(rc = get_str(c, ship, "service", false, STR_SHORT, &o->ship.service)) &&
            !(rc = parse_address(c, ship, "origin", &o->ship.origin)) &&
            !(rc = parse_address(c, ship, "destination", &o->ship.destination)) &&
            o->ship.carrier)
            rc = canon_carrier(c, ship, &o->ship.carrier);
        leave(c, old);
        if (rc)
            return rc;
    }

    if ((rc = get_obj(c, d, "customer", false, &cust)))
        return rc;
    if (cust) {
        old = enter(c, "customer", 0);
        rc = parse_customer(c, cust, &o->customer);
        if (!rc && strcmp(o->customer.id, o->customer_id) != 0)
            rc = cs_err_field(c->err, CS_ERR_RULE, FIELD(c, "id"),
                              "%s: must equal data.customer_id (\"%.40s\")", FIELD(c, "id"),
                              o->customer_id);
        leave(c, old);
        if (rc)
            return rc;
        o->has_customer = true;
    }
    return CS_OK;
}

static cs_rc parse_cancel(vctx_t *c, json_t *d, cs_order_cancel_t *x)
{
    static const char *const allowed[] = {"order_id", "reason", NULL};
    cs_rc rc;
    if ((rc = check_keys(c, d, allowed)) || (rc = get_str(c, d, "order_id", true, STR_ID, &x->order_id)))
        return rc;
    return get_str(c, d, "reason", false, STR_SHORT, &x->reason);
}

/* The carrier as scans, lanes and the carrier tables match it
 * (cs_carrier_canon: " DHL " is "dhl"; kept as it came, the parcel it
 * announced was never found by the scans of "dhl"). Blanks alone name no
 * carrier. */
static cs_rc canon_carrier(vctx_t *c, json_t *d, const char **carrier)
{
    char fb_[CS_ERR_FIELD_MAX];
    char buf[CS_ID_MAX + 1]; /* *carrier is an id: at most CS_ID_MAX bytes */
    size_t n = cs_carrier_canon(*carrier, buf, sizeof buf);
    if (!n)
        return cs_err_field(c->err, CS_ERR_INVALID, FIELD(c, "carrier"),
                            "%s: expected a carrier id like dhl, got only white space",
                            FIELD(c, "carrier"));
    if (strcmp(buf, *carrier) == 0)
        return CS_OK;
    if (json_object_set_new(d, "carrier", json_string(buf)) != 0)
        return cs_errf(c->err, CS_ERR_NOMEM, "out of memory");
    c->normalized = true;
    *carrier = json_string_value(json_object_get(d, "carrier"));
    return CS_OK;
}

size_t cs_carrier_canon(const char *in, char *out, size_t size)
{
    size_t n;
    const char *s = cs_utf8_strip(in, strlen(in), &n);
    if (!size)
        return 0;
    if (n >= size)
        n = cs_utf8_clip(s, n, size - 1);
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[n] = '\0';
    return n;
}

size_t cs_tracking_number_canon(const char *in, char *out, size_t size)
{
    size_t n = 0;
    for (const char *p = in; *p && n + 1 < size; p++)
        if (*p != ' ' && *p != '\t')
            out[n++] = (char)toupper((unsigned char)*p);
    if (size)
        out[n] = '\0';
    return n;
}

/* A tracking number as carriers match it (cs_tracking_number_canon). The
 * event keeps that form, and CS_TRACKING_NUMBER_MAX bounds it: for a
 * shipment and a scan alike, so that "1Z 999 ..." with its spaces is as
 * long as "1Z999..." and a scan is never kept for a number no shipment
 * could have (it would wait for its shipment forever). */
static cs_rc canon_tracking(vctx_t *c, json_t *d, const char **number)
{
    char fb_[CS_ERR_FIELD_MAX];
    const char *s = *number;
    char buf[CS_ID_MAX + 1]; /* s is at most CS_ID_MAX bytes: n counts all of it */
    size_t n = cs_tracking_number_canon(s, buf, sizeof buf);
    if (n > CS_TRACKING_NUMBER_MAX)
        return cs_err_field(c->err, CS_ERR_INVALID, FIELD(c, "tracking_number"),
                            "%s: too long: %zu characters without spaces, at most %d",
                            FIELD(c, "tracking_number"), n, CS_TRACKING_NUMBER_MAX);
    if (strcmp(buf, s) == 0)
        return CS_OK; /* as carriers match it already */
    if (!n)
        return cs_err_field(c->err, CS_ERR_INVALID, FIELD(c, "tracking_number"),
                            "%s: expected the carrier's tracking number, got only spaces",
                            FIELD(c, "tracking_number"));
    if (json_object_set_new(d, "tracking_number", json_string(buf)) != 0)
        return cs_errf(c->err, CS_ERR_NOMEM, "out of memory");
    c->normalized = true;
    *number = json_string_value(json_object_get(d, "tracking_number"));
    return CS_OK;
}

static cs_rc parse_shipment(vctx_t *c, json_t *d, cs_shipment_t *s)
{
    static const char *const allowed[] = {"id", "order_id", "carrier", "service", "tracking_number",
                                          "origin", "destination", "attributes", NULL};
    cs_rc rc;
    if ((rc = check_keys(c, d, allowed)) || (rc = get_str(c, d, "id", true, STR_ID, &s->id)) ||
        (rc = get_str(c, d, "order_id", true, STR_ID, &s->order_id)) ||
        (rc = get_str(c, d, "carrier", true, STR_ID, &s->carrier)) ||
        (rc = get_str(c, d, "service", false, STR_SHORT, &s->service)) ||
        (rc = get_str(c, d, "tracking_number", true, STR_ID, &s->tracking_number)) ||
        (rc = parse_address(c, d, "origin", &s->origin)) ||
        (rc = parse_address(c, d, "destination", &s->destination)) || (rc = check_attributes(c, d)))
        return rc;
    if ((rc = canon_tracking(c, d, &s->tracking_number)))
        return rc;
    return canon_carrier(c, d, &s->carrier);
}

static cs_rc parse_shipment_cancel(vctx_t *c, json_t *d, cs_shipment_cancel_t *x)
{
    static const char *const allowed[] = {"id", "order_id", "reason", NULL};
    cs_rc rc;
    if ((rc = check_keys(c, d, allowed)) || (rc = get_str(c, d, "id", true, STR_ID, &x->id)) ||
        (rc = get_str(c, d, "order_id", true, STR_ID, &x->order_id)))
        return rc;
    return get_str(c, d, "reason", false, STR_SHORT, &x->reason);
}

static cs_rc parse_scan(vctx_t *c, json_t *d, cs_scan_t *s)
{
    static const char *const allowed[] = {"shipment_id", "carrier", "tracking_number", "status",
                                          "reason", "unmapped", "carrier_code", "carrier_text",
                                          "location", NULL};
    cs_rc rc;
    int st = -1, reason = -1;
    cs_consent_t unmapped = CS_CONSENT_UNSET;
    if ((rc = check_keys(c, d, allowed)) ||
        (rc = get_str(c, d, "shipment_id", false, STR_ID, &s->shipment_id)) ||
        (rc = get_str(c, d, "carrier", true, STR_ID, &s->carrier)) ||
        (rc = get_str(c, d, "tracking_number", true, STR_ID, &s->tracking_number)) ||
        (rc = get_str(c, d, "carrier_code", false, STR_ID, &s->carrier_code)) ||
        (rc = get_str(c, d, "carrier_text", false, STR_SHORT, &s->carrier_text)))
        return rc;
    /* the status may be left to the carrier tables when the raw code or text is given */
    bool raw = s->carrier_code || s->carrier_text;
    if ((rc = get_enum(c, d, "status", !raw, track_names, CS_TRACK__COUNT,
                       "info_received, in_transit, out_for_delivery, failed_attempt, "
                       "available_for_pickup, delivered, exception, returned_to_sender (or "
                       "carrier_code / carrier_text for the carrier tables to map)",
                       &st, NULL)) ||
        (rc = get_enum(c, d, "reason", false, incident_names + 1, CS_INCIDENT__COUNT - 1,
                       "address_problem, customs, weather, damaged, refused, held_at_depot, "
                       "recipient_absent, lost, delayed, other",
                       &reason, NULL)) ||
        (rc = get_bool(c, d, "unmapped", &unmapped)) ||
        (rc = parse_address(c, d, "location", &s->location)))
        return rc;
    s->status_given = st >= 0;
    s->status = st >= 0 ? (cs_track_status_t)st : CS_TRACK_IN_TRANSIT;
    s->reason = reason >= 0 ? (cs_incident_t)(reason + 1) : CS_INCIDENT_NONE;
    s->unmapped = unmapped == CS_CONSENT_YES;
    if ((rc = canon_tracking(c, d, &s->tracking_number)))
        return rc;
    return canon_carrier(c, d, &s->carrier);
}

static const char *const resolutions[] = {"refund", "exchange", "store_credit"};
static const char *const return_statuses[] = {"requested", "approved", "label_created", "in_transit",
                                              "received", "refunded", "rejected", "closed"};

static cs_rc parse_return(vctx_t *c, json_t *d, bool requested, cs_return_t *r)
{
    static const char *const allowed_req[] = {"id", "order_id", "resolution", "items", NULL};
    static const char *const allowed_upd[] = {"id", "status", "refund_amount", NULL};
    static const char *const item_keys[] = {"sku", "quantity", "reason", NULL};
    char fb_[CS_ERR_FIELD_MAX];
    cs_rc rc;
    bool present;
    r->refund_amount = -1;
    if ((rc = check_keys(c, d, requested ? allowed_req : allowed_upd)) ||
        (rc = get_str(c, d, "id", true, STR_ID, &r->id)))
        return rc;
    if (!requested) {
        if ((rc = get_enum(c, d, "status", true, return_statuses, 8,
                           "requested, approved, label_created, in_transit, received, refunded, "
                           "rejected, closed",
                           NULL, &r->status)) ||
            (rc = get_money(c, d, "refund_amount", false, &r->refund_amount, &present)))
            return rc;
        if (!present)
            r->refund_amount = -1;
        return CS_OK;
    }
    r->status = "requested";
    if ((rc = get_str(c, d, "order_id", true, STR_ID, &r->order_id)) ||
        (rc = get_enum(c, d, "resolution", true, resolutions, 3, "refund, exchange, store_credit",
                       NULL, &r->resolution)))
        return rc;
    json_t *items = json_object_get(d, "items");
    if (!items || json_is_null(items))
        return cs_err_field(c->err, CS_ERR_INVALID, FIELD(c, "items"), "%s: required field is missing",
                            FIELD(c, "items"));
    if (!json_is_array(items) || json_array_size(items) == 0 ||
        json_array_size(items) > CS_ITEMS_MAX)
        return cs_err_field(c->err, CS_ERR_INVALID, FIELD(c, "items"),
                            "%s: expected an array of 1..%d items", FIELD(c, "items"), CS_ITEMS_MAX);
    r->n_items = json_array_size(items);
    r->items = cs_calloc(r->n_items, sizeof *r->items);
    if (!r->items)
        return cs_errf(c->err, CS_ERR_NOMEM, "out of memory");
    size_t old = enter(c, "items", 0);
    for (size_t i = 0; i < r->n_items && !rc; i++) {
        json_t *it = json_array_get(items, i);
        size_t old2 = enter(c, NULL, (int)i);
        if (!json_is_object(it))
            rc = cs_err_field(c->err, CS_ERR_INVALID, c->path, "%s: expected an object, got %s",
                              c->path, cs_json_type_word(it));
        else if (!(rc = check_keys(c, it, item_keys)) &&
                 !(rc = get_str(c, it, "sku", true, STR_ID, &r->items[i].sku)) &&
                 !(rc = get_int(c, it, "quantity", true, 1, 1000000, CS_ERR_RULE,
                                &r->items[i].quantity, NULL)))
            rc = get_str(c, it, "reason", false, STR_SHORT, &r->items[i].reason);
        leave(c, old2);
    }
    leave(c, old);
    return rc;
}

static const char *const ticket_statuses[] = {"open", "pending", "solved", "closed"};
static const char *const ticket_channels[] = {"email", "chat", "phone", "form", "social"};

static cs_rc parse_ticket(vctx_t *c, json_t *d, bool created, cs_ticket_t *t)
{
    static const char *const allowed_c[] = {"id", "customer_id", "order_id", "channel", "subject",
                                            "body", "category", NULL};
    static const char *const allowed_u[] = {"id", "status", NULL};
    cs_rc rc;
    if ((rc = check_keys(c, d, created ? allowed_c : allowed_u)) ||
        (rc = get_str(c, d, "id", true, STR_ID, &t->id)))
        return rc;
    if (!created)
        return get_enum(c, d, "status", true, ticket_statuses, 4, "open, pending, solved, closed",
                        NULL, &t->status);
    t->status = "open";
    if ((rc = get_str(c, d, "customer_id", true, STR_ID, &t->customer_id)) ||
        (rc = get_str(c, d, "order_id", false, STR_ID, &t->order_id)) ||
        (rc = get_enum(c, d, "channel", false, ticket_channels, 5,
                       "email, chat, phone, form, social", NULL, &t->channel)) ||
        (rc = get_str(c, d, "subject", false, STR_SHORT, &t->subject)) ||
        (rc = get_str(c, d, "body", false, STR_TEXT, &t->body)))
        return rc;
    return get_str(c, d, "category", false, STR_ID, &t->category);
}

static cs_rc parse_signal(vctx_t *c, json_t *d, cs_signal_t *s)
{
    static const char *const allowed[] = {"name", "customer_id", "order_id", "properties", NULL};
    cs_rc rc;
    if ((rc = check_keys(c, d, allowed)) ||
        (rc = get_str(c, d, "name", true, STR_ID, &s->name)) ||
        (rc = get_str(c, d, "customer_id", true, STR_ID, &s->customer_id)) ||
        (rc = get_str(c, d, "order_id", false, STR_ID, &s->order_id)))
        return rc;
    return get_obj(c, d, "properties", false, &s->properties);
}

static const char *const feedback_kinds[] = {"nps", "csat", "review"};

static cs_rc parse_feedback(vctx_t *c, json_t *d, cs_feedback_t *f)
{
    static const char *const allowed[] = {"id", "kind", "score", "customer_id", "order_id", "sku",
                                          "title", "text", "locale", NULL};
    cs_rc rc;
    int kind;
    if ((rc = check_keys(c, d, allowed)) || (rc = get_str(c, d, "id", true, STR_ID, &f->id)) ||
        (rc = get_enum(c, d, "kind", true, feedback_kinds, 3, "nps, csat, review", &kind,
                       &f->kind)))
        return rc;
    int64_t lo = kind == 0 ? 0 : 1, hi = kind == 0 ? 10 : 5;
    if ((rc = get_int(c, d, "score", true, lo, hi, CS_ERR_RULE, &f->score, NULL)) ||
        (rc = get_str(c, d, "customer_id", false, STR_ID, &f->customer_id)) ||
        (rc = get_str(c, d, "order_id", false, STR_ID, &f->order_id)) ||
        (rc = get_str(c, d, "sku", false, STR_ID, &f->sku)) ||
        (rc = get_str(c, d, "title", false, STR_SHORT, &f->title)) ||
        (rc = get_str(c, d, "text", false, STR_TEXT, &f->text)) ||
        (rc = get_str(c, d, "locale", false, STR_ID, &f->locale)))
        return rc;
    FORMAT_CHECK(c, "locale", f->locale, valid_locale(f->locale), "a locale like de, en or pt-BR");
    return CS_OK;
}

static cs_rc parse_msg(vctx_t *c, json_t *d, cs_message_status_t *m)
{
    static const char *const allowed[] = {"message_id", "status", "channel", "customer_id",
                                          "detail", NULL};
    cs_rc rc;
    int st;
    if ((rc = check_keys(c, d, allowed)) ||
        (rc = get_str(c, d, "message_id", true, STR_ID, &m->message_id)) ||
        (rc = get_enum(c, d, "status", true, msg_names, CS_MSG__COUNT,
                       "sent, delivered, opened, clicked, bounced, complained, unsubscribed, "
                       "failed", &st,
                       NULL)) ||
        (rc = get_enum(c, d, "channel", false, channel_names, CS_CHANNEL__COUNT,
                       "email, sms, whatsapp", NULL, &m->channel)) ||
        (rc = get_str(c, d, "customer_id", false, STR_ID, &m->customer_id)) ||
        (rc = get_str(c, d, "detail", false, STR_SHORT, &m->detail)))
        return rc;
    m->status = (cs_msg_status_t)st;
    return CS_OK;
}

/* ---- the envelope ---- */

void cs_event_free(cs_event_t **evp)
{
    if (!evp || !*evp)
        return;
    cs_event_t *ev = *evp;
    if (ev->type == CS_EV_ORDER_PLACED)
        cs_free(ev->u.order.items);
    else if (ev->type == CS_EV_RETURN_REQUESTED)
        cs_free(ev->u.ret.items);
    json_decref(ev->json);
    cs_free(ev->body);
    cs_free(ev->warning);
    cs_free(ev);
    *evp = NULL;
}

static cs_rc from_json(json_t *doc, const char *const *huge, size_t nhuge, cs_event_t **out,
                       cs_err_t *err);

cs_rc cs_event_from_json(json_t *doc, cs_event_t **out, cs_err_t *err)
{
    return from_json(doc, NULL, 0, out, err);
}

static cs_rc from_json(json_t *doc, const char *const *huge, size_t nhuge, cs_event_t **out,
                       cs_err_t *err)
{
    static const char *const allowed[] = {"schema", "event_id", "type", "occurred_at", "source",
                                          "data", NULL};
    vctx_t c = {.err = err, .path = "", .huge = huge, .nhuge = nhuge};
    cs_event_t *ev = NULL;
    cs_rc rc;
    const char *type;
    json_t *data;
    *out = NULL;
    if (!json_is_object(doc))
        return cs_err_field(err, CS_ERR_INVALID, "", "expected an event object, got %s",
                            doc ? cs_json_type_word(doc) : "nothing");
    ev = cs_calloc(1, sizeof *ev);
    if (!ev)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    ev->json = json_incref(doc);
    ev->schema = CS_SCHEMA_VERSION;

    if ((rc = check_keys(&c, doc, allowed)))
        goto out;
    json_t *schema = json_object_get(doc, "schema");
    if (schema && !json_is_null(schema)) {
        if (json_is_real(schema)) {
            char d[128];
            rc = cs_err_field(err, CS_ERR_INVALID, "schema", "schema: expected the integer 1, got %s",
                              real_int_shown(&c, "schema", json_real_value(schema), d, sizeof d));
            goto out;
        }
        if (!json_is_integer(schema)) {
            rc = cs_err_field(err, CS_ERR_INVALID, "schema", "schema: expected the integer 1, got %s",
                              cs_json_type_word(schema));
            goto out;
        }
        if (json_integer_value(schema) != CS_SCHEMA_VERSION) {
            rc = cs_err_field(err, CS_ERR_RULE, "schema",
                              "schema: version %lld is not supported; this server speaks schema %d",
                              (long long)json_integer_value(schema), CS_SCHEMA_VERSION);
            goto out;
        }
    }
    if ((rc = get_str(&c, doc, "event_id", true, STR_ID, &ev->event_id)) ||
        (rc = get_str(&c, doc, "type", true, STR_ID, &type)) ||
        (rc = get_time(&c, doc, "occurred_at", true, false, &ev->occurred_at, NULL)) ||
        (rc = get_str(&c, doc, "source", false, STR_ID, &ev->source)))
        goto out;
    ev->type = cs_event_type_from_name(type);
    if (ev->type == CS_EV_UNKNOWN) {
        rc = cs_err_field(err, CS_ERR_RULE, "type",
                          "type: unknown event type \"%.64s\" (expected one of customer.upserted, "
                          "order.placed, order.cancelled, shipment.created, shipment.cancelled, "
                          "tracking.event, "
                          "return.requested, return.updated, ticket.created, ticket.updated, "
                          "feedback.submitted, message.status, signal)",
                          type);
        goto out;
    }
    if ((rc = get_obj(&c, doc, "data", true, &data)))
        goto out;
    enter(&c, "data", 0);
    switch (ev->type) {
    case CS_EV_CUSTOMER_UPSERTED: rc = parse_customer(&c, data, &ev->u.customer); break;
    case CS_EV_ORDER_PLACED:
        rc = parse_order(&c, data, ev->occurred_at,
                         json_string_value(json_object_get(doc, "occurred_at")), &ev->u.order);
        break;
    case CS_EV_ORDER_CANCELLED: rc = parse_cancel(&c, data, &ev->u.cancel); break;
    case CS_EV_SHIPMENT_CREATED: rc = parse_shipment(&c, data, &ev->u.shipment); break;
    case CS_EV_SHIPMENT_CANCELLED:
        rc = parse_shipment_cancel(&c, data, &ev->u.shipment_cancel);
        break;
    case CS_EV_TRACKING_EVENT: rc = parse_scan(&c, data, &ev->u.scan); break;
    case CS_EV_RETURN_REQUESTED: rc = parse_return(&c, data, true, &ev->u.ret); break;
    case CS_EV_RETURN_UPDATED: rc = parse_return(&c, data, false, &ev->u.ret); break;
    case CS_EV_TICKET_CREATED: rc = parse_ticket(&c, data, true, &ev->u.ticket); break;
    case CS_EV_TICKET_UPDATED: rc = parse_ticket(&c, data, false, &ev->u.ticket); break;
    case CS_EV_FEEDBACK_SUBMITTED: rc = parse_feedback(&c, data, &ev->u.feedback); break;
    case CS_EV_MESSAGE_STATUS: rc = parse_msg(&c, data, &ev->u.msg); break;
    case CS_EV_SIGNAL: rc = parse_signal(&c, data, &ev->u.signal); break;
    default: rc = cs_errf(err, CS_ERR_INTERNAL, "unhandled event type"); break;
    }
out:
    if (rc)
        cs_event_free(&ev);
    else
        ev->normalized = c.normalized;
    *out = ev;
    return rc;
}

typedef struct dump_ctx {
    cs_buf_t b;
    cs_rc rc; /* of the append that failed: CS_ERR_TOOBIG past the bound */
} dump_ctx_t;

static int dump_to_buf(const char *p, size_t n, void *ud)
{
    dump_ctx_t *d = ud;
    d->rc = cs_buf_append(&d->b, p, n);
    return d->rc == CS_OK ? 0 : -1;
}

/* Straight into a buffer of our own: no text from jansson's allocator
 * (which may be a request arena, see cs_arena.h) and no copy. */
cs_rc cs_event_serialize(cs_event_t *ev, cs_err_t *err)
{
    if (ev->body)
        return CS_OK;
    /* most events fit here, written with each real in its fewest digits
     * (9.9, not jansson's 9.9000000000000004) */
    char small[8192];
    size_t n = cs_json_dumpb(ev->json, small, sizeof small);
    if (n) {
        if (!(ev->body = cs_strndup(small, n)))
            return cs_errf(err, CS_ERR_NOMEM, "out of memory serializing an event");
        ev->body_len = n;
        return CS_OK;
    }
    dump_ctx_t d = { .rc = CS_OK };
    cs_buf_init(&d.b, (size_t)4 * CS_EVENT_BYTES_MAX);
    size_t flags = JSON_COMPACT | cs_json_real_flags(ev->json);
    if (json_dump_callback(ev->json, dump_to_buf, &d, flags) != 0) {
        cs_buf_free(&d.b);
        /* an event far over the bound is the sender's, not a lack of memory */
        if (d.rc == CS_ERR_TOOBIG)
            return cs_err_field(err, CS_ERR_TOOBIG, "",
                                "event too large: more than %d bytes, at most %d allowed",
                                4 * CS_EVENT_BYTES_MAX, CS_EVENT_BYTES_MAX);
        return cs_errf(err, CS_ERR_NOMEM, "out of memory serializing an event");
    }
    ev->body = cs_buf_steal(&d.b, &ev->body_len);
    return ev->body ? CS_OK : cs_errf(err, CS_ERR_NOMEM, "out of memory serializing an event");
}

#define ZONE_EXPECTED "an IANA time zone like Europe/Berlin"
#define EMAIL_EXPECTED                                                                      \
    "an email address whose part before the @ is ASCII (the domain may be "                \
    "international, as in kunde@b\xC3\xA4" "ckerei.de)"

/* What the intake refuses in a customer's data beyond its form (why here,
 * not in parse_customer: cs_event_check_received). Into msg: the problem
 * with field `key` (path prefix + key), NULL when none.
 *
 * - A time zone the system's database does not have (what quiet hours,
 *   waits and dates in messages read the zone with): "Europe/Berlinn"
 *   passes the syntax check, and would be read as shop_timezone without a
 *   word. The lookup is cached, names that are no zone too (cs_tz.c): one
 *   hash probe per event.
 * - An email address with a non-ASCII local part ("jürgen@example.de"):
 *   it reaches its mailbox only through servers that all take SMTPUTF8
 *   (RFC 6531), which nothing here can promise, and fails at sending
 *   otherwise. A non-ASCII domain is fine: the SMTP channel sends it in
 *   its ASCII form (docs/channels.md).
 * - An email address longer than SMTP carries (RFC 5321: 64 octets before
 *   the @, 254 in all): accepted, every message to it would fail at the
 *   server as an invalid address. */
#define EMAIL_LOCAL_MAX 64
#define EMAIL_MAX 254
static const char *customer_problem(const cs_customer_t *cu, const char *prefix, char *msg,
                                    size_t size, const char **key)
{
    const cs_tz_t *tz;
    if (cu->timezone && cs_tz_get(cu->timezone, &tz, NULL) != CS_OK) {
        *key = "timezone";
        snprintf(msg, size,
                 "%stimezone: expected " ZONE_EXPECTED ", got \"%.64s\", a zone this server's "
                 "time zone database does not have",
                 prefix, cu->timezone);
        return msg;
    }
    if (!cu->email)
        return NULL;
    const char *at = strrchr(cu->email, '@');
    size_t local = at ? (size_t)(at - cu->email) : 0, all = strlen(cu->email);
    if (local > EMAIL_LOCAL_MAX || all > EMAIL_MAX) {
        *key = "email";
        snprintf(msg, size,
                 "%semail: expected an email address of at most %d characters, %d of them "
                 "before the @, got %zu characters, %zu before the @",
                 prefix, EMAIL_MAX, EMAIL_LOCAL_MAX, all, local);
        return msg;
    }
    for (const char *p = cu->email; *p && *p != '@'; p++)
        if ((unsigned char)*p >= 0x80) {
            *key = "email";
            snprintf(msg, size, "%semail: expected " EMAIL_EXPECTED ", got \"%.*s\"", prefix,
                     (int)cs_utf8_clip(cu->email, strlen(cu->email), 254), cu->email);
            return msg;
        }
    return NULL;
}

/* A stored customer's zone that is none (accepted before this check, or
 * gone from the database since) still reads as shop_timezone
 * (cs_tz_get_or); an order is not refused for its customer's data: what
 * the intake refuses is left out of it, and the customer keeps what it
 * has. */
static cs_rc check_customer(cs_event_t *ev, cs_err_t *err)
{
    char msg[512];
    const char *key = NULL;
    if (ev->type == CS_EV_CUSTOMER_UPSERTED) {
        if (!customer_problem(&ev->u.customer, "data.", msg, sizeof msg, &key))
            return CS_OK;
        return cs_err_field(err, CS_ERR_RULE, strcmp(key, "email") ? "data.timezone" : "data.email",
                            "%s", msg);
    }
    if (ev->type != CS_EV_ORDER_PLACED || !ev->u.order.has_customer)
        return CS_OK;
    cs_customer_t *cu = &ev->u.order.customer;
    json_t *doc = json_object_get(json_object_get(ev->json, "data"), "customer");
    bool changed = false;
    while (customer_problem(cu, "data.customer.", msg, sizeof msg, &key)) {
        size_t had = ev->warning ? strlen(ev->warning) : 0;
        char *w = cs_malloc(had + strlen(msg) + 64);
        if (!w)
            return cs_errf(err, CS_ERR_NOMEM, "out of memory");
        /* a second one joins the first: the field is then the customer */
        snprintf(w, had + strlen(msg) + 64, "%s%s%s", had ? ev->warning : "", had ? "; " : "",
                 msg);
        cs_free(ev->warning);
        ev->warning = w;
        ev->warning_field = had                   ? "data.customer"
                            : strcmp(key, "email") ? "data.customer.timezone"
                                                   : "data.customer.email";
        if (strcmp(key, "email") == 0)
            cu->email = NULL; /* borrowed from the member deleted next */
        else
            cu->timezone = NULL;
        json_object_del(doc, key);
        changed = true;
    }
    if (!changed)
        return CS_OK;
    char *w = cs_malloc(strlen(ev->warning) + 96);
    if (!w)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    snprintf(w, strlen(ev->warning) + 96,
             "%s; left out: the order is kept, its customer keeps what it has", ev->warning);
    cs_free(ev->warning);
    ev->warning = w;
    ev->normalized = true;
    cs_free(ev->body); /* the producer's text, with what was left out: stored as it is now */
    ev->body = NULL;
    ev->body_len = 0;
    return cs_event_serialize(ev, err);
}

/* The text of ev's occurred_at or data.placed_at as the sender wrote it,
 * for a refusal to quote; "" when not at hand. Borrowed from ev->json. */
static const char *time_as_sent(const cs_event_t *ev, const char *field)
{
    json_t *v = strcmp(field, "occurred_at") == 0
                    ? json_object_get(ev->json, "occurred_at")
                    : json_object_get(json_object_get(ev->json, "data"), "placed_at");
    const char *s = json_string_value(v);
    return s ? s : "";
}

cs_rc cs_event_check_received(cs_event_t *ev, cs_ms_t now, cs_err_t *err)
{
    const char *field;
    /* dated before 2000: a zero or a unit gone wrong (seconds read as
     * milliseconds), not a purchase; time 0 is "none" to the store, so an
     * order placed at 1970-01-01 read back as never placed */
    if (ev->occurred_at < CS_EVENT_TIME_MIN)
        field = "occurred_at";
    else if (ev->type == CS_EV_ORDER_PLACED && ev->u.order.placed_at < CS_EVENT_TIME_MIN)
        field = "data.placed_at";
    else
        field = NULL;
    if (field)
        return cs_err_field(err, CS_ERR_INVALID, field,
                            "%s: expected a time from 2000-01-01 on, got \"%.40s\"; check how "
                            "the sender writes its times",
                            field, time_as_sent(ev, field));
    /* a purchase dated ahead would be promised and watched from then (an
     * order view promising a date years away): the same clock gone wrong */
    if (ev->occurred_at > now + CS_EVENT_AHEAD_MAX_MS)
        field = "occurred_at";
    else if (ev->type == CS_EV_ORDER_PLACED && ev->u.order.placed_at > now + CS_EVENT_AHEAD_MAX_MS)
        field = "data.placed_at";
    else
        return check_customer(ev, err);
    char at[32];
    cs_time_format(now, at, sizeof at);
    return cs_err_field(err, CS_ERR_INVALID, field,
                        "%s: more than a day in the future, got \"%.40s\" (received at %s); "
                        "check the sender's clock and time zone",
                        field, time_as_sent(ev, field), at);
}

cs_rc cs_event_wide_error(json_t *doc, const char *const *path, const bool *huge, size_t n,
                          cs_err_t *err)
{
    const char *big[CS_JSON_WIDE_MAX];
    size_t nbig = 0;
    for (size_t i = 0; i < n && nbig < CS_JSON_WIDE_MAX; i++)
        if (huge[i])
            big[nbig++] = path[i];
    cs_event_t *ev = NULL;
    cs_rc rc = from_json(doc, big, nbig, &ev, err);
    cs_event_free(&ev);
    if (rc)
        return rc;
    /* in a free-form place (attributes): no field wants it, but the store
     * could not read it back */
    if (huge[0])
        return cs_err_field(err, CS_ERR_INVALID, path[0],
                            "%s: expected a number within the range of a double "
                            "(-1.7976931348623157e308..1.7976931348623157e308), got a larger "
                            "number",
                            path[0]);
    return cs_err_field(err, CS_ERR_INVALID, path[0],
                        "%s: expected a number within 64-bit integers (-9223372036854775808.."
                        "9223372036854775807), got a larger integer",
                        path[0]);
}

cs_rc cs_event_parse(const char *text, size_t len, cs_event_t **out, cs_err_t *err)
{
    return cs_event_parse_line(text, len, 0, 0, out, err);
}

cs_rc cs_event_compose(json_t *doc, cs_event_t **out, cs_err_t *err)
{
    *out = NULL;
    char *text = doc ? cs_json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    cs_rc rc = cs_event_parse(text, strlen(text), out, err);
    free(text);
    return rc;
}

cs_rc cs_event_parse_line(const char *text, size_t len, uint64_t line, unsigned col0,
                          cs_event_t **out, cs_err_t *err)
{
    json_error_t je;
    *out = NULL;
    if (len > CS_EVENT_BYTES_MAX)
        return cs_err_field(err, CS_ERR_TOOBIG, "", "event too large: %zu bytes, at most %d allowed",
                            len, CS_EVENT_BYTES_MAX);
    json_t *doc = cs_json_loadb(text, len, &je);
    if (!doc && json_error_code(&je) == json_error_numeric_overflow) {
        /* a number too large for its type (an integer beyond 64 bits, a
         * number beyond a double's range): said at its field, as its
         * validator says what it expects, not as JSON jansson refuses */
        char path[CS_JSON_WIDE_MAX][CS_JSON_PATH_MAX];
        bool huge[CS_JSON_WIDE_MAX];
        size_t np;
        json_t *wide = cs_json_load_wide(text, len, &je, path, huge, &np);
        if (wide) {
            const char *at[CS_JSON_WIDE_MAX];
            for (size_t i = 0; i < np; i++)
                at[i] = path[i];
            cs_rc rc = cs_event_wide_error(wide, at, huge, np, err);
            json_decref(wide);
            return rc;
        }
    }
    if (!doc && line) /* one line of a file or body: jansson counted within it */
        return cs_err_field(err, CS_ERR_INVALID, "", "malformed JSON at line %" PRIu64
                            ", column %u: %s",
                            line, col0 + (unsigned)(je.column > 0 ? je.column : 1),
                            cs_json_error_text(&je));
    if (!doc)
        return cs_err_field(err, CS_ERR_INVALID, "", "malformed JSON at line %d, column %d (byte %d): %s",
                            je.line, je.column, je.position, cs_json_error_text(&je));
    cs_rc rc = cs_event_from_json(doc, out, err);
    json_decref(doc);
    if (rc)
        return rc;
    if ((*out)->normalized) {
        rc = cs_event_serialize(*out, err);
        if (rc)
            cs_event_free(out);
        return rc;
    }
    /* keep the producer's text as the stored form (it needed no normalization) */
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ' ||
                       text[len - 1] == '\t'))
        len--;
    (*out)->body = cs_strndup(text, len);
    if (!(*out)->body) {
        cs_event_free(out);
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    }
    (*out)->body_len = len;
    return CS_OK;
}

const char *cs_event_customer_id(const cs_event_t *ev)
{
    switch (ev->type) {
    case CS_EV_CUSTOMER_UPSERTED: return ev->u.customer.id;
    case CS_EV_ORDER_PLACED: return ev->u.order.customer_id;
    case CS_EV_TICKET_CREATED: return ev->u.ticket.customer_id;
    case CS_EV_FEEDBACK_SUBMITTED: return ev->u.feedback.customer_id;
    case CS_EV_MESSAGE_STATUS: return ev->u.msg.customer_id;
    case CS_EV_SIGNAL: return ev->u.signal.customer_id;
    default: return NULL;
    }
}
