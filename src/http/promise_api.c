/*
 * promise_api.c -- GET /v1/promise: the delivery window to show at checkout,
 * from the store's own delivery history (tracking/tracker.h).
 *
 *   GET /v1/promise?carrier=dhl&service=paket&origin_country=DE&origin_region=SN
 *       &destination_country=DE&destination_postal_code=10115[&placed_at=...][&lang=de]
 *
 * Every parameter is checked before anything is looked up: countries are
 * two-letter codes, text values have a bound, postal codes are letters,
 * digits, spaces and hyphens, placed_at lies from 30 days ago to a year
 * ahead; a parameter not listed above (a typo), a NUL byte ("%00") or one
 * parameter twice with different values is refused too. An error names
 * the parameter, what was expected and (quoted, bounded) what came.
 * Region keys are the tracker's, so a checkout sending "SN" or a postal
 * code meets shipments that said "Sachsen".
 *
 * Answers the window's first and last day and the most likely one (dates in
 * the shop's time zone), the calendar days after purchase, a sentence for
 * the checkout page, and what the estimate rests on.
 */
#include "http_int.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../template/locale.h"
#include "../tracking/tracker.h"

/* Bounds on what a checkout sends. Values past them were cut silently
 * once, and a cut value names a lane nobody ships on; they are refused. */
#define CARRIER_MAX CS_ID_MAX /* as a shipment's carrier id */
#define SERVICE_MAX CS_ID_MAX /* as the store keeps a shipment's service */
#define REGION_MAX 64
#define POSTAL_MAX 16
#define PAST_DAYS 30   /* placed_at: at most this long ago ... */
#define AHEAD_DAYS 365 /* ... and at most this far ahead */

/* A query parameter; an empty one counts as absent. */
static const char *arg(hreq_t *r, const char *name)
{
    const char *v = cs__http_query(r, name);
    return v && *v ? v : NULL;
}

/* name's value when it is at most max bytes (*out NULL when absent); a
 * text value (blank_ok false) must not be white space alone, a lane key
 * no shipment has (postal codes have their own check, postal_code). */
static cs_rc bounded(hreq_t *r, const char *name, size_t max, bool blank_ok, const char **out,
                     cs_err_t *err)
{
    char e[CS_HTTP_ECHO_MAX];
    *out = arg(r, name);
    if (*out && strlen(*out) > max)
        return cs_err_field(err, CS_ERR_INVALID, name,
                            "%s: at most %zu bytes allowed, got %zu starting %s", name, max,
                            strlen(*out), cs__http_echo(*out, e, sizeof e));
    if (*out && !blank_ok && cs_utf8_blank(*out, strlen(*out))) /* a no-break space too */
        return cs_err_field(err, CS_ERR_INVALID, name,
                            "%s: expected a value or nothing, got only white space %s", name,
                            cs__http_echo(*out, e, sizeof e));
    return CS_OK;
}

/* A two-letter ISO 3166 country code, in any case, into cc upper case. */
static cs_rc country(const char *name, const char *v, char cc[3], cs_err_t *err)
{
    char e[CS_HTTP_ECHO_MAX];
    cc[0] = '\0';
    if (!v)
        return CS_OK;
    if (!isalpha((unsigned char)v[0]) || !isalpha((unsigned char)v[1]) || v[2] ||
        (unsigned char)v[0] >= 0x80 || (unsigned char)v[1] >= 0x80)
        return cs_err_field(err, CS_ERR_INVALID, name,
                            "%s: expected a two-letter ISO 3166 country code like DE, got %s",
                            name, cs__http_echo(v, e, sizeof e));
    cc[0] = (char)toupper((unsigned char)v[0]);
    cc[1] = (char)toupper((unsigned char)v[1]);
    cc[2] = '\0';
    return CS_OK;
}

/* A postal code: letters, digits, spaces and hyphens, at least one letter
 * or digit ("10115", "SW1A 1AA", "00-950"). Spaces alone made a lane key
 * "DE-  " that no shipment has. */
static cs_rc postal_code(const char *name, const char *v, cs_err_t *err)
{
    char e[CS_HTTP_ECHO_MAX];
    bool ok = true, alnum = false;
    for (const char *p = v; p && *p && ok; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x80 && isalnum(c))
            alnum = true;
        else
            ok = c == ' ' || c == '-';
    }
    if (v && (!ok || !alnum))
        return cs_err_field(err, CS_ERR_INVALID, name,
                            "%s: expected a postal code of letters, digits, spaces and hyphens "
                            "(at least one letter or digit) like 10115, got %s",
                            name, cs__http_echo(v, e, sizeof e));
    return CS_OK;
}

enum MHD_Result cs__http_promise(hreq_t *r)
{
    cs_http_t *h = r->h;
    cs_err_t err;
    cs_rc rc = CS_OK;
    char e[CS_HTTP_ECHO_MAX];
    cs_err_clear(&err);
    if (!h->opts.tracker) {
        cs_errf(&err, CS_ERR_UNSUPPORTED, "delivery promises are not enabled on this server");
        return cs__http_reply_err(r, &err);
    }
    const char *carrier = arg(r, "carrier"), *dest_country = arg(r, "destination_country");
    if (!carrier && !dest_country) {
        rc = cs_err_field(&err, CS_ERR_INVALID, "carrier",
                          "carrier and destination_country: both required (a carrier id like "
                          "dhl, an ISO country code like DE)");
        goto out;
    }
    if (!carrier || !dest_country) {
        const char *f = carrier ? "destination_country" : "carrier";
        rc = cs_err_field(&err, CS_ERR_INVALID, f, "%s: required (%s)", f,
                          carrier ? "an ISO country code like DE" : "a carrier id like dhl");
        goto out;
    }
    const char *service, *o_region, *o_postal, *d_region, *d_postal;
    char o_cc[3], d_cc[3];
    if ((rc = bounded(r, "carrier", CARRIER_MAX, false, &carrier, &err)) ||
        (rc = bounded(r, "service", SERVICE_MAX, false, &service, &err)) ||
        (rc = bounded(r, "origin_region", REGION_MAX, false, &o_region, &err)) ||
        (rc = bounded(r, "origin_postal_code", POSTAL_MAX, true, &o_postal, &err)) ||
        (rc = bounded(r, "destination_region", REGION_MAX, false, &d_region, &err)) ||
        (rc = bounded(r, "destination_postal_code", POSTAL_MAX, true, &d_postal, &err)) ||
        (rc = country("origin_country", arg(r, "origin_country"), o_cc, &err)) ||
        (rc = country("destination_country", dest_country, d_cc, &err)) ||
        (rc = postal_code("origin_postal_code", o_postal, &err)) ||
        (rc = postal_code("destination_postal_code", d_postal, &err)))
        goto out;
    if ((o_region || o_postal) && !o_cc[0]) {
        /* lanes are keyed by country and region ("DE-SN"): a region alone
         * would match no shipment and quietly fall back to the carrier */
        rc = cs_err_field(&err, CS_ERR_INVALID, "origin_country",
                          "origin_country: required with %s (an ISO country code like DE)",
                          o_region ? "origin_region" : "origin_postal_code");
        goto out;
    }

    /* lang: its primary subtag, in any case ("EN", "de-DE", "de_AT") */
    char lang[3] = "de";
    const char *l = arg(r, "lang");
    if (l && (rc = cs__http_lang(l, lang, &err)))
        goto out;

    cs_ms_t now = cs_clock_now(cs_engine_clock(h->engine)), placed = now;
    const char *pa = arg(r, "placed_at");
    /* cs_time_parse takes a plain date as midnight UTC, which west of UTC
     * is the day before the purchase: the checkout must say when */
    cs_ms_t day;
    bool date_only = pa && strlen(pa) == 10 && cs_date_parse(pa, &day);
    if (pa && (date_only || !cs_time_parse(pa, &placed))) {
        rc = cs_err_field(&err, CS_ERR_INVALID, "placed_at",
                          "placed_at: expected an RFC 3339 time like 2026-12-03T10:00:00Z, got %s%s",
                          cs__http_echo(pa, e, sizeof e),
                          date_only         ? " (a date alone: the time and its zone are needed)"
                          : strchr(pa, ' ') ? " (a '+' in a query string must be sent as %2B)"
                                            : "");
        goto out;
    }
    if (pa && (placed < now - PAST_DAYS * CS_MS_PER_DAY || placed > now + AHEAD_DAYS * CS_MS_PER_DAY)) {
        char lo[32], hi[32];
        cs_time_format(now - PAST_DAYS * CS_MS_PER_DAY, lo, sizeof lo);
        cs_time_format(now + AHEAD_DAYS * CS_MS_PER_DAY, hi, sizeof hi);
        rc = cs_err_field(&err, CS_ERR_INVALID, "placed_at",
                          "placed_at: expected a time from %d days ago to %d days ahead (%s to "
                          "%s), got %s",
                          PAST_DAYS, AHEAD_DAYS, lo, hi, cs__http_echo(pa, e, sizeof e));
        goto out;
    }

    /* the carrier as shipments keep it (docs/events.md): lower case, without
     * the blanks around it (" DHL " answered as a carrier of its own) */
    char lc[CARRIER_MAX + 1], origin[32], dest[32];
    cs_carrier_canon(carrier, lc, sizeof lc);
    /* region keys as the shipments' addresses get them (tracker.h); the
     * tracker lower-cases the service */
    cs_region_key(o_cc[0] ? o_cc : NULL, o_region, o_postal, origin, sizeof origin);
    cs_region_key(d_cc, d_region, d_postal, dest, sizeof dest);
    cs_promise_query_t q;
    memset(&q, 0, sizeof q);
    q.lane = (cs_lane_t){ lc, service ? service : "", origin, dest };
    q.placed_at = placed;
    /* a purchase ahead: the samples weigh as they do today. A purchase
     * past is promised as at its moment: asked at now, the model takes it
     * for an order still not handed over and moves the window past a
     * missed hand-over (a Monday order on a three-day lane, asked about a
     * week later, was promised days from now, not Thursday) */
    q.now = placed < now ? placed : now;
    q.last_status = CS_TRACK__COUNT;
    cs_promise_t p;
    if ((rc = cs_tracker_promise(h->opts.tracker, &q, &p, &err)))
        goto out;
    const cs_tz_t *tz = h->opts.shop_tz ? h->opts.shop_tz : cs_tz_get_or_utc(NULL);
    static const char *const levels[] = { "lane", "carrier_destination", "carrier", "all" };
    char from[16], to[16], point[16], f1[CS_FMT_MAX], f2[CS_FMT_MAX], text[2 * CS_FMT_MAX + 64];
    cs_tz_ymd(tz, p.from, from, sizeof from);
    cs_tz_ymd(tz, p.to, to, sizeof to);
    cs_tz_ymd(tz, p.point, point, sizeof point);
    /* (in the order of the tag's region: en-US, month first) */
    cs_fmt_date(p.from, tz, CS_DATE_DAY, cs_locale_for(lang, l), f1, sizeof f1);
    cs_fmt_date(p.to, tz, CS_DATE_DAY, cs_locale_for(lang, l), f2, sizeof f2);
    bool de = strcmp(lang, "de") == 0;
    if (p.from == p.to)
        snprintf(text, sizeof text, de ? "Lieferung am %s" : "Delivery on %s", f1);
    else
        snprintf(text, sizeof text, de ? "Lieferung zwischen %s und %s" : "Delivery between %s and %s",
                 f1, f2);
    int64_t d0 = cs_tz_day(tz, placed);
    return cs__http_reply(
        r, 200,
        json_pack("{s:s,s:{s:s?,s:s},s:{s:s,s:s},s:s,s:{s:I,s:I},s:s,s:{s:s,s:f}}", "carrier", lc,
                  "lane", "origin", origin[0] ? origin : NULL, "destination", dest, "window", "from", from, "to", to,
                  "point", point, "days", "from", (json_int_t)(cs_tz_day(tz, p.from) - d0), "to",
                  (json_int_t)(cs_tz_day(tz, p.to) - d0), "text", text, "basis", "level",
                  p.level >= 0 && p.level < 4 ? levels[p.level] : "none", "weight", p.weight));
out:
    return cs__http_reply_err(r, &err);
}
