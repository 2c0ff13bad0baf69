/*
 * status_api.c -- GET /v1/orders/{id}/status: where an order is, in one
 * paragraph in the customer's language, for chatbots and support macros
 * ("Ihr Paket ist bei DHL in Leipzig und kommt voraussichtlich Donnerstag
 * oder Freitag."), naming each parcel when there are several. The window
 * comes from the delivery promise: the order watch's current one, else
 * computed now, as the watch would, from the order as the store tracks it
 * (order_track: the parcel the promise follows, the latest one still on
 * its way, else the one delivered last, with its lane and latest scan).
 * A parcel gone back to the shop and replaced by one sent after it went
 * wrong is told in a sentence of its own, not as a delivery in parts.
 */
#include "http_int.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "../template/locale.h"
#include "../tracking/carriers.h"
#include "../tracking/tracker.h"

/* Whether s holds more than blanks (a carrier text of blanks says nothing). */
bool cs__has_word(const char *s)
{
    while (s && isspace((unsigned char)*s))
        s++;
    return s && *s;
}

/* (http_int.h) */
const char *cs__fmt_day(cs_ms_t t, const cs_tz_t *tz, cs_ms_t now, const char *lang,
                        unsigned flags, char *buf, size_t size)
{
    static const char *const words[2][2][3] = {
        { { "gestern", "heute", "morgen" }, { "Gestern", "Heute", "Morgen" } },
        { { "yesterday", "today", "tomorrow" }, { "Yesterday", "Today", "Tomorrow" } },
    };
    bool de = strcmp(lang, "de") == 0, cap = flags & CS__DAY_CAP;
    int64_t rel = cs_tz_day(tz, t) - cs_tz_day(tz, now);
    if (rel >= -1 && rel <= 1) {
        snprintf(buf, size, "%s", words[de ? 0 : 1][cap][rel + 1]);
        return buf;
    }
    char date[CS_FMT_MAX];
    cs_fmt_date(t, tz, CS_DATE_DAY, lang, date, sizeof date);
    if (flags & CS__DAY_ON)
        snprintf(buf, size, "%s%s", de ? (cap ? "Am " : "am ") : (cap ? "On " : "on "), date);
    else
        snprintf(buf, size, "%s", date);
    return buf;
}

static cs_ms_t jtime(json_t *v)
{
    cs_ms_t t = 0;
    return json_is_string(v) && cs_time_parse(json_string_value(v), &t) ? t : 0;
}

int cs__parcel_status(json_t *sh)
{
    if (!sh)
        return -1;
    int st = cs_track_status_from_name(json_string_value(json_object_get(sh, "status")));
    return st < 0 ? CS_TRACK_INFO_RECEIVED : st;
}

/* Whether the watch's current promise stands for a parcel in `status`:
 * its window ends today or later, and the parcel is not delivered or on
 * its way back. An answer that uses it needs no promise computed now. */
static bool watch_window_stands(json_t *o, int status, const cs_tz_t *tz, cs_ms_t now)
{
    cs_ms_t to = jtime(json_object_get(json_object_get(json_object_get(o, "promise"), "current"),
                                       "to"));
    return to && to >= cs_tz_day_start(tz, cs_tz_day(tz, now)) &&
           status != CS_TRACK_DELIVERED && status != CS_TRACK_RETURNED_TO_SENDER;
}

static bool cancelled_order(json_t *o)
{
    const char *st = json_string_value(json_object_get(o, "status"));
    return st && strcmp(st, "cancelled") == 0;
}

/* A parcel the shop cancelled (shipment.cancelled_at set): it will not come. */
static bool parcel_cancelled(json_t *sh)
{
    return json_is_string(json_object_get(sh, "cancelled_at"));
}

/* A parcel the shop cancelled (shipment.cancelled) will not come: the
 * paragraph and the page leave it out, as the watch does. */
static void drop_cancelled(json_t *order)
{
    json_t *ships = json_object_get(order, "shipments");
    for (size_t i = json_array_size(ships); i-- > 0;)
        if (parcel_cancelled(json_array_get(ships, i)))
            json_array_remove(ships, i);
}

/* The track is read only when the answer uses it: to pick the followed
 * parcel among several, or to compute the window now (the page's cached
 * copies and most answers take the watch's). */
cs_rc cs__order_read(cs_http_t *h, cs_store_t *s, const char *id, cs_ms_t now,
                     cs_order_read_t *out, cs_err_t *err)
{
    out->has_who = out->has_track = false;
    out->tz = out->shop_tz = h->opts.shop_tz ? h->opts.shop_tz : cs_tz_get_or_utc(NULL);
    cs_rc rc = cs_store_order_view(s, id, &out->order, err);
    if (rc)
        return rc;
    drop_cancelled(out->order);
    const char *cust = json_string_value(json_object_get(out->order, "customer_id"));
    if (cust) {
        rc = cs_store_call(s, contact_get, cust, &out->who, err);
        out->has_who = rc == CS_OK;
        if (rc && rc != CS_ERR_NOTFOUND)
            return rc;
        /* (a zone not known here is none: the shop's, as in messages) */
        if (out->has_who)
            out->tz = cs_tz_get_or(out->who.timezone, out->shop_tz);
    }
    json_t *ships = json_object_get(out->order, "shipments");
    size_t n = json_array_size(ships);
    int status = n ? cs__parcel_status(json_array_get(ships, 0)) : -1;
    bool need = n > 1 || (!cancelled_order(out->order) && h->opts.tracker &&
                          !watch_window_stands(out->order, status, out->shop_tz, now));
    if (!need)
        return CS_OK;
    if ((rc = cs_store_call(s, order_track, id, 0, &out->track, err)))
        return rc;
    out->has_track = true;
    return CS_OK;
}

/* The followed parcel's place in the view's list: the one order_track
 * names (the view lists them by creation); the latest when the two reads
 * saw different parcels (one created between them) or, with one parcel,
 * the track was not read. */
static size_t followed_parcel(json_t *ships, const cs_order_track_t *t)
{
    size_t n = json_array_size(ships);
    for (size_t i = 0; t && i < n; i++) {
        const char *sid = json_string_value(json_object_get(json_array_get(ships, i), "id"));
        if (sid && strcmp(sid, t->shipment_id) == 0)
            return i;
    }
    return n ? n - 1 : 0;
}

/* Whether a parcel's delivery round (its status since status_at) is
 * today's; a round of unknown time is taken as today's. */
static bool round_today(json_t *sh, const cs_tz_t *tz, cs_ms_t now)
{
    cs_ms_t at = jtime(json_object_get(sh, "status_at"));
    return !at || cs_tz_day(tz, at) == cs_tz_day(tz, now);
}

/* One parcel's clause of a paragraph about several: "eines wurde am
 * Dienstag, 10. März zugestellt", "the other is with DHL in Leipzig". */
static void parcel_clause(const cs_carriers_t *cc, json_t *sh, const char *subj, bool de,
                          const char *lang, const cs_tz_t *tz, cs_ms_t now, const char *win,
                          char *out, size_t size)
{
    int st = cs__parcel_status(sh);
    json_t *scans = json_object_get(sh, "scans");
    json_t *last = json_array_get(scans, json_array_size(scans) ? json_array_size(scans) - 1 : 0);
    const char *carrier =
        cs_carriers_display_name(cc, json_string_value(json_object_get(sh, "carrier")));
    const char *city = json_string_value(json_object_get(json_object_get(last, "location"), "city"));
    char day[CS_FMT_MAX], where[160] = "";
    if (city) {
        snprintf(where, sizeof where, " in %s", city);
        cs_utf8_trim(where); /* a long city cut inside a character */
    }
    bool going = win && *win && st != CS_TRACK_DELIVERED && st != CS_TRACK_RETURNED_TO_SENDER;
    const char *arrive = going ? (de ? " und kommt voraussichtlich " : " and should arrive ") : "";
    switch (st) {
    case CS_TRACK_DELIVERED:
        cs__fmt_day(jtime(json_object_get(sh, "delivered_at")), tz, now, lang, CS__DAY_ON, day,
                    sizeof day);
        snprintf(out, size, de ? "%s wurde %s zugestellt" : "%s was delivered %s", subj, day);
        break;
    case CS_TRACK_OUT_FOR_DELIVERY:
        if (round_today(sh, tz, now)) {
            snprintf(out, size, de ? "%s ist heute mit %s in der Zustellung"
                                   : "%s is out for delivery with %s today",
                     subj, carrier);
            break;
        }
        /* out for delivery on an earlier day and no word since */
        cs__fmt_day(jtime(json_object_get(sh, "status_at")), tz, now, lang, CS__DAY_ON, day,
                    sizeof day);
        snprintf(out, size, de ? "%s war %s mit %s in der Zustellung%s%s"
                               : "%s went out for delivery with %s %s%s%s",
                 subj, de ? day : carrier, de ? carrier : day, arrive, going ? win : "");
        break;
    case CS_TRACK_AVAILABLE_FOR_PICKUP:
        snprintf(out, size, de ? "%s liegt%s zur Abholung bereit" : "%s is ready for pickup%s",
                 subj, where);
        break;
    case CS_TRACK_RETURNED_TO_SENDER:
        snprintf(out, size, de ? "%s ist auf dem Rückweg zu uns" : "%s is on its way back to us",
                 subj);
        break;
    case CS_TRACK_INFO_RECEIVED:
        snprintf(out, size, de ? "%s ist bei %s angemeldet%s%s" : "%s has been announced to %s%s%s",
                 subj, carrier, arrive, going ? win : "");
        break;
    case CS_TRACK_FAILED_ATTEMPT:
        /* another parcel's trouble is news too, not only the followed one's */
        /* "... und versucht es voraussichtlich morgen erneut" */
        snprintf(out, size,
                 de ? "%s konnte %s nicht zustellen%s%s%s" : "%s could not deliver %s%s%s%s",
                 carrier, subj,
                 going ? (de ? " und versucht es voraussichtlich " : " and should try again ")
                       : "",
                 going ? win : "", going && de ? " erneut" : "");
        break;
    case CS_TRACK_EXCEPTION:
        snprintf(out, size, de ? "%s wird bei %s%s aufgehalten%s%s" : "%s is held up with %s%s%s%s",
                 subj, carrier, where, arrive, going ? win : "");
        break;
    default:
        snprintf(out, size, de ? "%s ist bei %s%s%s%s" : "%s is with %s%s%s%s", subj, carrier,
                 where, arrive, going ? win : "");
        break;
    }
}

/* "3 wurden zugestellt" / "one is on its way": a count of parcels and
 * what they did (de1/en1 for one, den/enn after a number), for the
 * summary of many. */
static void count_clause(char *out, size_t size, int k, bool de, const char *de1,
                         const char *den, const char *en1, const char *enn)
{
    if (k == 1)
        snprintf(out, size, "%s", de ? de1 : en1);
    else
        snprintf(out, size, "%d %s", k, de ? den : enn);
}

/* "Your order comes in 3 parcels: " ("came" once all are delivered);
 * its length. */
static size_t parcels_head(char *text, size_t tsize, int n, bool all, bool de)
{
    return (size_t)snprintf(text, tsize,
                            de ? (all ? "Ihre Bestellung kam in %d Paketen: "
                                      : "Ihre Bestellung kommt in %d Paketen: ")
                               : (all ? "Your order came in %d parcels: "
                                      : "Your order comes in %d parcels: "),
                            n);
}

/* Many parcels, or clauses too long for one paragraph: how many arrived,
 * are on their way, are held up or on their way back, and the followed
 * parcel's window. */
static void parcels_summary(json_t *ships, bool de, const char *win, const char *lead,
                            char *text, size_t tsize)
{
    int n = (int)json_array_size(ships), done = 0, back = 0, held = 0, going = 0;
    for (int i = 0; i < n; i++) {
        int st = cs__parcel_status(json_array_get(ships, (size_t)i));
        if (st == CS_TRACK_DELIVERED)
            done++;
        else if (st == CS_TRACK_RETURNED_TO_SENDER)
            back++;
        else if (st == CS_TRACK_FAILED_ATTEMPT || st == CS_TRACK_EXCEPTION)
            held++;
        else
            going++;
    }
    char part[4][80];
    int parts = 0;
    if (done)
        count_clause(part[parts++], sizeof part[0], done, de, "eines wurde zugestellt",
                     "wurden zugestellt", "one has been delivered", "have been delivered");
    if (going)
        count_clause(part[parts++], sizeof part[0], going, de, "eines ist unterwegs",
                     "sind unterwegs", "one is on its way", "are on their way");
    if (held)
        count_clause(part[parts++], sizeof part[0], held, de, "eines wird aufgehalten",
                     "werden aufgehalten", "one is held up", "are held up");
    if (back)
        count_clause(part[parts++], sizeof part[0], back, de, "eines ist auf dem Rückweg zu uns",
                     "sind auf dem Rückweg zu uns", "one is on its way back to us",
                     "are on their way back to us");
    size_t m = parcels_head(text, tsize, n, done == n, de);
    for (int i = 0; i < parts && m < tsize; i++)
        m += (size_t)snprintf(text + m, tsize - m, "%s%s",
                              i == 0 ? "" : i == parts - 1 ? (de ? " und " : " and ") : ", ",
                              part[i]);
    if (m < tsize && win && *win && done + back < n)
        m += (size_t)snprintf(text + m, tsize - m,
                              de ? ". Das nächste kommt voraussichtlich %s" : ". The next should "
                                                                             "arrive %s",
                              win);
    if (m < tsize)
        snprintf(text + m, tsize - m, ".%s%s", lead ? " " : "", lead ? lead : "");
}

/* When a parcel first went wrong: its first failed attempt, hold-up or
 * scan on its way back; 0 = never. */
static cs_ms_t trouble_at(json_t *sh)
{
    size_t i;
    json_t *sc;
    json_array_foreach(json_object_get(sh, "scans"), i, sc) {
        int st = cs_track_status_from_name(json_string_value(json_object_get(sc, "status")));
        if (st == CS_TRACK_FAILED_ATTEMPT || st == CS_TRACK_EXCEPTION ||
            st == CS_TRACK_RETURNED_TO_SENDER)
            return jtime(json_object_get(sc, "occurred_at"));
    }
    return 0;
}

/* (http_int.h) */
bool cs__parcel_replaced(json_t *ships, size_t i)
{
    json_t *a = json_array_get(ships, i);
    cs_ms_t wrong = !parcel_cancelled(a) && cs__parcel_status(a) == CS_TRACK_RETURNED_TO_SENDER
                        ? trouble_at(a)
                        : 0;
    for (size_t k = 0; wrong && k < json_array_size(ships); k++) {
        json_t *b = json_array_get(ships, k);
        cs_ms_t made = jtime(json_object_get(b, "created_at"));
        if (k != i && !parcel_cancelled(b) &&
            cs__parcel_status(b) != CS_TRACK_RETURNED_TO_SENDER && made > wrong)
            return true;
    }
    return false;
}

/* The order's parcels less those the shop replaced (cs__parcel_replaced;
 * returns owned), which the paragraph and the page would otherwise count
 * as a delivery in parts. *replaced: how many were left out; *first:
 * whether the one left out is the order's first. */
static json_t *without_replaced(json_t *ships, int *replaced, bool *first)
{
    json_t *kept = json_array();
    size_t n = json_array_size(ships);
    *replaced = 0;
    *first = false;
    for (size_t i = 0; kept && i < n; i++) {
        if (cs__parcel_replaced(ships, i)) {
            *first = *first || (i == 0 && *replaced == 0);
            ++*replaced;
        } else {
            json_array_append(kept, json_array_get(ships, i));
        }
    }
    if (*replaced > 1)
        *first = false;
    return kept;
}

/* Parcels named one by one up to this many; more are counted. */
#define CLAUSES_MAX 4

void cs__order_status(cs_http_t *h, const cs_order_read_t *rd, const char *lang, cs_ms_t now,
                      cs_order_status_t *out)
{
    memset(out, 0, sizeof *out);
    json_t *o = rd->order;
    const cs_tz_t *tz = rd->tz, *stz = rd->shop_tz ? rd->shop_tz : rd->tz;
    const cs_order_track_t *t = rd->has_track ? &rd->track : NULL;
    const cs_carriers_t *cc = cs_engine_carriers(h->engine);
    bool de = strcmp(lang, "de") == 0;
    const char *id = json_string_value(json_object_get(o, "id"));
    if (!id)
        id = "";
    /* a parcel the shop replaced is told in a sentence of its own: the
     * rest reads as if the replacement were the order's only parcel */
    bool first_replaced;
    json_t *all = json_object_get(o, "shipments");
    json_t *ships = without_replaced(all, &out->replaced, &first_replaced);
    if (!ships) { /* out of memory: every parcel, as before */
        out->replaced = 0;
        ships = json_incref(all);
    }
    size_t followed = followed_parcel(ships, t);
    json_t *sh = json_array_get(ships, followed);
    json_t *scans = json_object_get(sh, "scans");
    json_t *last = json_array_size(scans) ? json_array_get(scans, json_array_size(scans) - 1)
                                          : NULL;
    const char *carrier =
        cs_carriers_display_name(cc, json_string_value(json_object_get(sh, "carrier")));
    const char *city = json_string_value(json_object_get(json_object_get(last, "location"), "city"));
    int status = cs__parcel_status(sh);
    bool cancelled = cancelled_order(o);
    out->status = status;
    out->shipped = sh != NULL;
    out->cancelled = cancelled;
    out->parcels = (int)json_array_size(ships);
    for (size_t i = 0; i < json_array_size(ships); i++)
        if (cs__parcel_status(json_array_get(ships, i)) == CS_TRACK_DELIVERED)
            out->delivered++;
    for (size_t i = 0; i < json_array_size(all); i++) /* a replaced one was handed over too */
        if (cs__parcel_status(json_array_get(all, i)) != CS_TRACK_INFO_RECEIVED)
            out->handed_over = true;

    /* a scan no table knew reads as in transit: its own words say more */
    out->carrier_says[0] = '\0';
    const char *raw = json_string_value(json_object_get(last, "carrier_text"));
    if (!cs__has_word(raw))
        raw = json_string_value(json_object_get(last, "carrier_code"));
    if (cs__has_word(raw) && json_is_true(json_object_get(last, "unmapped")) && out->parcels == 1 &&
        status == CS_TRACK_IN_TRANSIT && !cancelled) {
        char quoted[200];
        cs_strlcpy(quoted, raw, sizeof quoted);
        cs_utf8_trim(quoted); /* cut between characters */
        snprintf(out->carrier_says, sizeof out->carrier_says,
                 de ? "Letzte Meldung von %s: „%s“." : "The latest scan from %s: “%s”.",
                 carrier, quoted);
        cs_utf8_trim(out->carrier_says);
    }

    cs_promise_t p;
    memset(&p, 0, sizeof p);
    p.level = -1;
    bool have_window = false;
    /* the watch's current promise, while it is not stale (it re-checks
     * every few hours and at midnight); else computed now */
    json_t *cur = json_object_get(json_object_get(o, "promise"), "current");
    if (cancelled) {
        /* a cancelled order gets no delivery window */
    } else if (watch_window_stands(o, status, stz, now)) {
        int why = cs_promise_reason_from_name(json_string_value(json_object_get(cur, "reason")));
        p.from = jtime(json_object_get(cur, "from"));
        p.to = jtime(json_object_get(cur, "to"));
        p.reason = why > 0 ? (cs_promise_reason_t)why : CS_PR_NONE;
        p.quiet_days = 0;
        have_window = p.from != 0;
    } else if (h->opts.tracker && t && t->placed_at) {
        char from[CS_REGION_KEY_MAX], to[CS_REGION_KEY_MAX];
        cs_promise_query_t q;
        cs_tracker_query(t, now, from, to, &q);
        cs_err_t perr;
        have_window = cs_tracker_promise(h->opts.tracker, &q, &p, &perr) == CS_OK && p.to;
        out->computed = true;
    }
    /* the watch's at-risk reason says more than the scan alone (silence,
     * a depot, a day past the promise) */
    json_t *watch = json_object_get(o, "promise");
    const char *risk = json_string_value(json_object_get(watch, "risk_reason"));
    if (p.reason == CS_PR_NO_SCAN && !p.quiet_days)
        p.quiet_days = (int)json_integer_value(json_object_get(watch, "quiet_days"));
    if (risk && cs_promise_reason_from_name(risk) == CS_PR_STUCK) /* the watch's days */
        p.quiet_days = (int)json_integer_value(json_object_get(watch, "quiet_days"));
    if (json_is_true(json_object_get(watch, "at_risk")) && risk &&
        cs_promise_reason_from_name(risk) > 0 && status != CS_TRACK_DELIVERED) {
        p.reason = (cs_promise_reason_t)cs_promise_reason_from_name(risk);
        p.at_risk = true;
    }
    out->have_window = have_window;
    out->from = p.from;
    out->to = p.to;
    out->reason = p.reason;
    out->at_risk = p.at_risk;
    out->quiet_days = p.quiet_days;
    cs_promise_reason_text(p.reason, lang, p.quiet_days, out->reason_text,
                           sizeof out->reason_text);
    char *win = out->window_words, day[CS_FMT_MAX];
    /* the replaced parcels first, then the rest: "Your first parcel went
     * back to us, so we sent your order again. The new parcel is ..." */
    char *text = out->text;
    size_t tsize = sizeof out->text, told = 0;
    if (out->replaced && !cancelled) {
        if (out->replaced > 1)
            snprintf(text, tsize, de ? "%d Pakete gingen an uns zurück, darum haben wir sie "
                                       "noch einmal verschickt. "
                                     : "%d parcels went back to us, so we sent them again. ",
                     out->replaced);
        else if (first_replaced)
            snprintf(text, tsize, "%s", de ? "Ihr erstes Paket ging an uns zurück, darum haben "
                                             "wir Ihre Bestellung noch einmal verschickt. "
                                           : "Your first parcel went back to us, so we sent "
                                             "your order again. ");
        else
            snprintf(text, tsize, "%s", de ? "Ein Paket ging an uns zurück, darum haben wir es "
                                             "noch einmal verschickt. "
                                           : "One parcel went back to us, so we sent it again. ");
        told = strlen(text);
        text += told;
        tsize -= told;
    }
    if (have_window) /* the shop's days, named from the customer's today */
        cs_fmt_window(stz, tz, now, p.from, p.to, lang, win, sizeof out->window_words);
    /* why, when it is news: a hold-up, or customs clearance (which
     * explains a parcel waiting at a border before anyone asks) */
    const char *lead = status == CS_TRACK_FAILED_ATTEMPT || status == CS_TRACK_EXCEPTION ||
                               p.at_risk || p.reason == CS_PR_IN_CUSTOMS
                           ? out->reason_text
                           : NULL;
    if (cancelled) {
        snprintf(text, tsize, de ? "Ihre Bestellung %s wurde storniert."
                                 : "Your order %s has been cancelled.",
                 id);
    } else if (out->parcels > 1) {
        /* several parcels: a clause each, the window on the followed one;
         * counted when there are many or the clauses do not fit */
        size_t n = out->parcels > CLAUSES_MAX
                       ? tsize
                       : parcels_head(text, tsize, out->parcels,
                                      out->delivered == out->parcels, de);
        for (int i = 0; i < out->parcels && n < tsize; i++) {
            char subj[32], clause[512];
            if (out->parcels == 2)
                cs_strlcpy(subj, i == 0 ? (de ? "eines" : "one") : (de ? "das andere" : "the other"),
                           sizeof subj);
            else
                snprintf(subj, sizeof subj, de ? "Paket %d" : "parcel %d", i + 1);
            bool mine = (size_t)i == followed;
            parcel_clause(cc, json_array_get(ships, (size_t)i), subj, de, lang, tz, now,
                          mine && have_window ? win : NULL, clause, sizeof clause);
            n += (size_t)snprintf(text + n, tsize - n, "%s%s", i ? "; " : "", clause);
        }
        if (n < tsize)
            n += (size_t)snprintf(text + n, tsize - n, ".%s%s", lead ? " " : "",
                                  lead ? lead : "");
        if (n >= tsize)
            parcels_summary(ships, de, have_window ? win : NULL, lead, text, tsize);
    } else if (!sh) {
        /* not handed over yet; late (or not handed over when parcels
         * usually are) says why */
        snprintf(text, tsize,
                 de ? "Ihre Bestellung %s ist bei uns eingegangen und wird gerade vorbereitet.%s%s%s%s%s"
                    : "Your order %s has been received and is being prepared.%s%s%s%s%s",
                 id, have_window ? (de ? " Sie kommt voraussichtlich " : " It should arrive ") : "",
                 win, have_window ? "." : "", lead ? " " : "", lead ? lead : "");
    } else if (status == CS_TRACK_DELIVERED) {
        cs__fmt_day(jtime(json_object_get(sh, "delivered_at")), tz, now, lang, CS__DAY_ON, day,
                    sizeof day);
        snprintf(text, tsize, de ? "Ihr Paket wurde %s von %s zugestellt."
                                 : "Your parcel was delivered by %s %s.",
                 de ? day : carrier, de ? carrier : day);
    } else if (status == CS_TRACK_OUT_FOR_DELIVERY && round_today(sh, tz, now)) {
        snprintf(text, tsize, de ? "Ihr Paket ist heute mit %s in der Zustellung."
                                 : "Your parcel is out for delivery with %s today.",
                 carrier);
    } else if (status == CS_TRACK_OUT_FOR_DELIVERY) {
        /* out for delivery on an earlier day and no word since: not "today" */
        cs__fmt_day(jtime(json_object_get(sh, "status_at")), tz, now, lang, CS__DAY_ON, day,
                    sizeof day);
        snprintf(text, tsize,
                 de ? "Ihr Paket war %s mit %s in der Zustellung, ist aber noch nicht "
                      "angekommen.%s%s%s%s%s"
                    : "Your parcel went out for delivery with %s %s but has not arrived "
                      "yet.%s%s%s%s%s",
                 de ? day : carrier, de ? carrier : day,
                 have_window ? (de ? " Es kommt voraussichtlich " : " It should arrive ") : "",
                 win, have_window ? "." : "", lead ? " " : "", lead ? lead : "");
    } else if (status == CS_TRACK_AVAILABLE_FOR_PICKUP) {
        snprintf(text, tsize, de ? "Ihr Paket liegt%s%s zur Abholung bereit."
                                 : "Your parcel is ready for pickup%s%s.",
                 city ? " in " : "", city ? city : "");
    } else if (status == CS_TRACK_RETURNED_TO_SENDER) {
        snprintf(text, tsize, de ? "Ihr Paket ist auf dem Rückweg zu uns. Wir melden uns."
                                 : "Your parcel is on its way back to us. We will be in touch.");
    } else if (status == CS_TRACK_INFO_RECEIVED) {
        /* the label is made, the carrier does not have the parcel yet */
        snprintf(text, tsize,
                 de ? "Wir haben Ihr Paket bei %s angemeldet; es wird in Kürze übergeben.%s%s%s%s%s"
                    : "We have announced your parcel to %s; it will be handed over shortly.%s%s%s%s%s",
                 carrier, have_window ? (de ? " Es kommt voraussichtlich " : " It should arrive ") : "",
                 win, have_window ? "." : "", lead ? " " : "", lead ? lead : "");
    } else {
        char where[160] = "";
        if (city) {
            snprintf(where, sizeof where, " in %s", city);
            cs_utf8_trim(where);
        }
        snprintf(text, tsize,
                 de ? "Ihr Paket ist bei %s%s%s%s.%s%s"
                    : "Your parcel is with %s%s%s%s.%s%s",
                 carrier, where,
                 have_window ? (de ? " und kommt voraussichtlich " : " and should arrive ") : "",
                 win, lead ? " " : "", lead ? lead : "");
    }
    /* the one parcel left is the new one: "The new parcel is with DHL" */
    static const char *const yours[][2] = { { "Ihr Paket ", "Das neue Paket " },
                                            { "Your parcel ", "The new parcel " } };
    const char *const *y = yours[de ? 0 : 1];
    size_t yn = strlen(y[0]), nn = strlen(y[1]), rest = strlen(text);
    if (told && out->parcels == 1 && strncmp(text, y[0], yn) == 0 &&
        rest - yn + nn < tsize) {
        memmove(text + nn, text + yn, rest - yn + 1);
        memcpy(text, y[1], nn);
    }
    cs_utf8_trim(out->text); /* a paragraph cut to its bound stays UTF-8 */
    json_decref(ships);
}

typedef struct st_ctx {
    cs_http_t *h;
    const char *id;
    cs_ms_t now;
    cs_order_read_t rd;
    cs_err_t err;
} st_ctx_t;

static cs_rc read_fn(cs_store_t *s, void *arg)
{
    st_ctx_t *c = arg;
    return cs__order_read(c->h, s, c->id, c->now, &c->rd, &c->err);
}

enum MHD_Result cs__http_order_status(hreq_t *r)
{
    cs_http_t *h = r->h;
    st_ctx_t c;
    memset(&c, 0, sizeof c);
    c.h = h;
    cs_err_clear(&c.err);
    /* /v1/orders/{id}/status */
    char id[CS_ID_MAX + 1];
    if (cs__http_path_id(r, id, &c.err))
        return cs__http_reply_err(r, &c.err);
    c.id = id;
    /* ?lang= is de or en (in any case, or a tag like de-DE, as /v1/promise
     * takes it); without it the customer's locale, else the shop's
     * default_locale */
    char lang_q[3];
    const char *lang = cs__http_query(r, "lang");
    if (lang && cs__http_lang(lang, lang_q, &c.err))
        return cs__http_reply_err(r, &c.err);
    if (lang)
        lang = lang_q;
    cs_err_t err;
    cs_err_clear(&err);
    c.now = cs_clock_now(cs_engine_clock(h->engine));
    cs_rc rc = cs__http_with_reader(h, read_fn, &c, &err);
    cs_order_read_t *rd = &c.rd;
    if (rc) {
        json_decref(rd->order);
        return cs__http_reply_err(r, c.err.rc ? &c.err : &err);
    }
    if (!lang)
        lang = cs_locale_lang(rd->has_who && rd->who.locale[0] ? rd->who.locale
                              : h->opts.default_locale         ? h->opts.default_locale
                                                               : "de");
    cs_order_status_t st;
    /* dates in the order of the customer's region (en-US: the month first) */
    cs__order_status(h, rd, cs_locale_for(lang, rd->has_who ? rd->who.locale : NULL), c.now,
                     &st);
    if (st.carrier_says[0]) { /* after the paragraph, as far as it fits */
        size_t n = strlen(st.text);
        snprintf(st.text + n, sizeof st.text - n, " %s", st.carrier_says);
        cs_utf8_trim(st.text);
    }
    json_t *out = json_pack("{s:s,s:s,s:s}", "order_id", id, "locale", lang, "text", st.text);
    /* status: the followed parcel's (info_received before its first scan),
     * null before anything shipped; parcels: each one's */
    json_object_set_new(out, "status", st.status >= 0
                                           ? json_string(cs_track_status_name(st.status))
                                           : json_null());
    /* replaced: gone back and sent again (cs__parcel_replaced), as the text
     * and the tracking page tell it */
    json_t *parcels = json_array();
    json_t *ships = json_object_get(rd->order, "shipments");
    size_t i;
    json_t *sh;
    json_array_foreach(ships, i, sh) {
        json_array_append_new(
            parcels, json_pack("{s:O?,s:O?,s:s,s:b}", "carrier", json_object_get(sh, "carrier"),
                               "tracking_number", json_object_get(sh, "tracking_number"),
                               "status", cs_track_status_name(cs__parcel_status(sh)),
                               "replaced", cs__parcel_replaced(ships, i)));
    }
    json_object_set_new(out, "parcels", parcels);
    if (st.have_window) {
        char f[16], t2[16];
        cs_tz_ymd(rd->shop_tz, st.from, f, sizeof f); /* the shop's days */
        cs_tz_ymd(rd->shop_tz, st.to, t2, sizeof t2);
        json_object_set_new(out, "window", json_pack("{s:s,s:s}", "from", f, "to", t2));
    }
    /* at_risk always, and why when there is a window or a reason: a parcel
     * whose exception was followed by silence has no window left, and a
     * reader must not take the missing flag for "on time" */
    if (st.have_window || st.reason != CS_PR_NONE)
        json_object_set_new(out, "reason", json_string(cs_promise_reason_name(st.reason)));
    json_object_set_new(out, "at_risk", json_boolean(st.at_risk));
    json_decref(rd->order);
    return cs__http_reply(r, 200, out);
}
