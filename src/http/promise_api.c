/*
 * promise_api.c -- GET /v1/promise: the delivery window to show at checkout,
 * from the store's own delivery history (tracking/tracker.h).
 *
 *   GET /v1/promise?carrier=dhl&service=paket&origin_country=DE&origin_region=SN
 *       &destination_country=DE&destination_postal_code=10115[&placed_at=...][&lang=de]
 *
 * Answers the window's first and last day and the most likely one (dates in
 * the shop's time zone), the calendar days after purchase, a sentence for
 * the checkout page, and what the estimate rests on.
 */
#include "http_int.h"

#include <stdio.h>
#include <string.h>

#include "../template/locale.h"
#include "../tracking/tracker.h"

/* A query parameter; an empty one counts as absent. */
static const char *arg(hreq_t *r, const char *name)
{
    const char *v = cs__http_query(r, name);
    return v && *v ? v : NULL;
}

enum MHD_Result cs__http_promise(hreq_t *r)
{
    cs_http_t *h = r->h;
    cs_err_t err;
    cs_err_clear(&err);
    if (!h->opts.tracker) {
        cs_errf(&err, CS_ERR_UNSUPPORTED, "delivery promises are not enabled on this server");
        return cs__http_reply_err(r, &err);
    }
    const char *carrier = arg(r, "carrier"), *dest_country = arg(r, "destination_country");
    if (!carrier || !dest_country) {
        const char *f = carrier ? "destination_country" : "carrier";
        cs_err_field(&err, CS_ERR_INVALID, f, "%s: required (%s)", f,
                     carrier ? "an ISO country code like DE" : "a carrier id like dhl");
        return cs__http_reply_err(r, &err);
    }
    const char *lang = arg(r, "lang") ? arg(r, "lang") : "de";
    if (strcmp(lang, "de") != 0 && strcmp(lang, "en") != 0) {
        cs_err_field(&err, CS_ERR_INVALID, "lang", "lang: expected de or en");
        return cs__http_reply_err(r, &err);
    }
    cs_ms_t now = cs_clock_now(cs_engine_clock(h->engine)), placed = now;
    if (arg(r, "placed_at") && !cs_time_parse(arg(r, "placed_at"), &placed)) {
        cs_err_field(&err, CS_ERR_INVALID, "placed_at", "placed_at: expected an RFC 3339 time");
        return cs__http_reply_err(r, &err);
    }
    char lc[CS_ID_MAX + 1], origin[32], dest[32];
    cs_strlcpy(lc, carrier, sizeof lc);
    for (char *p = lc; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    cs_region_key(arg(r, "origin_country"), arg(r, "origin_region"), arg(r, "origin_postal_code"),
                  origin, sizeof origin);
    cs_region_key(dest_country, arg(r, "destination_region"), arg(r, "destination_postal_code"),
                  dest, sizeof dest);
    cs_promise_query_t q;
    memset(&q, 0, sizeof q);
    q.lane = (cs_lane_t){ lc, arg(r, "service") ? arg(r, "service") : "", origin, dest };
    q.placed_at = placed;
    q.now = placed > now ? placed : now;
    q.last_status = CS_TRACK__COUNT;
    cs_promise_t p;
    if (cs_tracker_promise(h->opts.tracker, &q, &p, &err) != CS_OK)
        return cs__http_reply_err(r, &err);
    const cs_tz_t *tz = h->opts.shop_tz ? h->opts.shop_tz : cs_tz_get_or_utc(NULL);
    static const char *const levels[] = { "lane", "carrier_destination", "carrier", "all" };
    char from[16], to[16], point[16], f1[CS_FMT_MAX], f2[CS_FMT_MAX], text[2 * CS_FMT_MAX + 64];
    cs_tz_ymd(tz, p.from, from, sizeof from);
    cs_tz_ymd(tz, p.to, to, sizeof to);
    cs_tz_ymd(tz, p.point, point, sizeof point);
    cs_fmt_date(p.from, tz, CS_DATE_DAY, lang, f1, sizeof f1);
    cs_fmt_date(p.to, tz, CS_DATE_DAY, lang, f2, sizeof f2);
    bool de = strcmp(lang, "de") == 0;
    if (p.from == p.to)
        snprintf(text, sizeof text, de ? "Lieferung am %s" : "Delivery on %s", f1);
    else
        snprintf(text, sizeof text, de ? "Lieferung zwischen %s und %s" : "Delivery between %s and %s",
                 f1, f2);
    int64_t d0 = cs_tz_day(tz, placed);
    return cs__http_reply(
        r, 200,
        json_pack("{s:s,s:{s:s,s:s},s:{s:s,s:s},s:s,s:{s:I,s:I},s:s,s:{s:s,s:f}}", "carrier", lc,
                  "lane", "origin", origin, "destination", dest, "window", "from", from, "to", to,
                  "point", point, "days", "from", (json_int_t)(cs_tz_day(tz, p.from) - d0), "to",
                  (json_int_t)(cs_tz_day(tz, p.to) - d0), "text", text, "basis", "level",
                  p.level >= 0 && p.level < 4 ? levels[p.level] : "none", "weight", p.weight));
}
