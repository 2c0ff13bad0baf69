/*
 * journeys.c -- the journey runtime (see journeys.h).
 *
 * A pass over one log event, in this order:
 *   1. exits: active runs of the event's order/customer whose exit_when
 *      matches (cancelled, return requested, ticket opened, unsubscribed,
 *      ordered again) end with that reason;
 *   2. waits: runs in a wait_for on this event type whose condition holds
 *      move on;
 *   3. triggers: each enabled journey triggered by this type whose condition
 *      holds starts a run, unless its run key (order, customer or event) has
 *      one already (an order's: of this customer, when an edit gave the
 *      order to them; order_key_of_customer).
 * A run steps until it waits (a durable timer is armed with the run's
 * generation; a timer whose generation is old is stale and only deleted),
 * ends, or exits.
 */
#include "journeys.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/cs_map.h"

#define CURSOR "journeys"
#define TIMER_BATCH 256
#define REPLAY_MAX 500 /* events an order or parcel brings in, at most */

struct cs_journeys {
    cs_journey_t **defs;   /* loaded definitions, owned */
    int *versions;         /* their version numbers in the store (after sync) */
    size_t n, cap;
    cs_map_t old;          /* "id@version" -> cs_journey_t* of older versions, owned */
    const cs_clock_t *clock;
    cs_policy_conf_t policy;
    const cs_tz_t *shop_tz; /* customers without a (known) zone */
    const cs_calendar_t *calendar; /* closed days of business_day waits (borrowed) */
    char default_locale[16];
    unsigned channels_off;
    cs_ms_t trigger_max_age;
    /* event types (bits) that can end or advance an active run of any
     * stored version: the only ones for which active runs are read */
    uint32_t interest;
    /* the same per journey id: of a customer's runs about other orders, an
     * event reads only those of the journeys listening to its type */
    struct listener {
        char id[CS_JID_MAX + 1];
        uint32_t types;
    } *listeners;
    size_t nlisteners, caplisteners;
    /* their ids by type, worked out once they are all known: those of
     * type t are typed[typed_at[t] .. typed_at[t + 1]) (into listeners) */
    const char **typed;
    size_t typed_at[CS_EV__COUNT + 1];
    uint32_t triggers;     /* event types (bits) some loaded journey starts on */
    bool synced;
    _Static_assert(CS_EV__COUNT <= 32, "interest is a 32-bit mask of event types");
    pthread_mutex_t mu;        /* guards totals */
    cs_journeys_stats_t totals;
};

cs_rc cs_journeys_new(const cs_journeys_opts_t *opts, cs_journeys_t **out, cs_err_t *err)
{
    cs_journeys_t *js = cs_calloc(1, sizeof *js);
    *out = NULL;
    if (!js)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    cs_map_init(&js->old);
    pthread_mutex_init(&js->mu, NULL);
    js->clock = opts && opts->clock ? opts->clock : cs_clock_system();
    if (opts && opts->policy_set)
        js->policy = opts->policy;
    else
        cs_policy_conf_default(&js->policy);
    cs_strlcpy(js->default_locale, opts && opts->default_locale ? opts->default_locale : "de",
               sizeof js->default_locale);
    js->channels_off = opts ? opts->channels_off : 0;
    js->shop_tz = opts && opts->shop_tz ? opts->shop_tz : cs_tz_get_or_utc(NULL);
    js->calendar = opts ? opts->calendar : NULL;
    js->trigger_max_age = opts && opts->trigger_max_age ? opts->trigger_max_age
                                                        : 3 * CS_MS_PER_DAY;
    *out = js;
    return CS_OK;
}

void cs_journeys_free(cs_journeys_t *js)
{
    if (!js)
        return;
    for (size_t i = 0; i < js->n; i++)
        cs_journey_free(js->defs[i]);
    for (size_t i = 0; i < js->old.cap; i++)
        if (cs_map_key_at(&js->old, i))
            cs_journey_free(js->old.vals[i]);
    cs_map_free(&js->old);
    pthread_mutex_destroy(&js->mu);
    cs_free(js->defs);
    cs_free(js->versions);
    cs_free(js->listeners);
    cs_free(js->typed);
    cs_free(js);
}

cs_rc cs_journeys_add(cs_journeys_t *js, cs_journey_t *j, cs_err_t *err)
{
    for (size_t i = 0; i < js->n; i++) {
        if (strcmp(js->defs[i]->id, j->id) == 0) {
            cs_rc rc = cs_errf(err, CS_ERR_DUPLICATE, "%s: journey '%s' is already defined in %s",
                               j->file, j->id, js->defs[i]->file);
            cs_journey_free(j);
            return rc;
        }
    }
    if (js->n == js->cap) {
        size_t cap = js->cap ? js->cap * 2 : 8;
        cs_journey_t **d = cs_realloc(js->defs, cap * sizeof *d);
        int *v = d ? cs_realloc(js->versions, cap * sizeof *v) : NULL;
        if (d)
            js->defs = d;
        if (!d || !v) {
            cs_journey_free(j);
            return cs_errf(err, CS_ERR_NOMEM, "out of memory");
        }
        js->versions = v;
        js->cap = cap;
    }
    js->versions[js->n] = 0;
    js->defs[js->n++] = j;
    js->synced = false;
    return CS_OK;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static bool yaml_name(const char *n)
{
    size_t l = strlen(n);
    return n[0] != '.' && ((l > 5 && strcmp(n + l - 5, ".yaml") == 0) ||
                           (l > 4 && strcmp(n + l - 4, ".yml") == 0));
}

cs_rc cs_journeys_load_dir(cs_journeys_t *js, const char *dir, cs_err_t *err)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, by_name);
    if (n < 0)
        return cs_errf(err, CS_ERR_CONFIG, "journeys folder %s cannot be read: %s", dir,
                       strerror(errno));
    cs_rc rc = CS_OK;
    for (int i = 0; i < n; i++) {
        if (!rc && yaml_name(names[i]->d_name)) {
            char path[4096];
            cs_journey_t *j;
            snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
            if (!(rc = cs_journey_load_file(path, &j, err)))
                rc = cs_journeys_add(js, j, err);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

size_t cs_journeys_count(const cs_journeys_t *js) { return js->n; }
const cs_journey_t *cs_journeys_at(const cs_journeys_t *js, size_t i)
{
    return i < js->n ? js->defs[i] : NULL;
}

static cs_rc program(cs_journeys_t *js, cs_store_t *s, const char *id, int version,
                     const cs_journey_t **out, cs_err_t *err);

/* The event types that can end (exit_when) or advance (wait_for) a run of j. */
static uint32_t interest_of(const cs_journey_t *j)
{
    static const struct {
        unsigned bit;
        cs_event_type_t type;
    } exits[] = {
        { CS_EXIT_ORDER_CANCELLED, CS_EV_ORDER_CANCELLED },
        { CS_EXIT_RETURN_REQUESTED, CS_EV_RETURN_REQUESTED },
        { CS_EXIT_TICKET_OPENED, CS_EV_TICKET_CREATED },
        { CS_EXIT_UNSUBSCRIBED, CS_EV_MESSAGE_STATUS },
        { CS_EXIT_ORDERED_AGAIN, CS_EV_ORDER_PLACED },
        { CS_EXIT_FEEDBACK_GIVEN, CS_EV_FEEDBACK_SUBMITTED },
    };
    uint32_t m = 0;
    for (size_t i = 0; i < CS_ARRAY_LEN(exits); i++)
        if (j->exit_mask & exits[i].bit)
            m |= 1u << exits[i].type;
    for (int pc = 0; pc < j->n; pc++)
        if (j->prog[pc].op == CS_OP_WAIT_FOR)
            m |= 1u << j->prog[pc].event_type;
    return m;
}

/* Journey id listens to the event types `types` too (over all its versions). */
static cs_rc listen_add(cs_journeys_t *js, const char *id, uint32_t types, cs_err_t *err)
{
    js->interest |= types;
    for (size_t i = 0; i < js->nlisteners; i++)
        if (strcmp(js->listeners[i].id, id) == 0) {
            js->listeners[i].types |= types;
            return CS_OK;
        }
    if (js->nlisteners == js->caplisteners) {
        size_t cap = js->caplisteners ? js->caplisteners * 2 : 16;
        struct listener *l = cs_realloc(js->listeners, cap * sizeof *l);
        if (!l) {
            js->interest = UINT32_MAX; /* (every run is read: nothing is missed) */
            return cs_errf(err, CS_ERR_NOMEM, "out of memory");
        }
        js->listeners = l;
        js->caplisteners = cap;
    }
    cs_strlcpy(js->listeners[js->nlisteners].id, id, sizeof js->listeners[0].id);
    js->listeners[js->nlisteners++].types = types;
    return CS_OK;
}

/* The listeners' ids by event type (js->typed), once listen_add is done. */
static cs_rc listen_index(cs_journeys_t *js, cs_err_t *err)
{
    size_t total = 0;
    for (int t = 0; t < CS_EV__COUNT; t++)
        for (size_t i = 0; i < js->nlisteners; i++)
            if (js->listeners[i].types & (1u << t))
                total++;
    if (total && !(js->typed = cs_malloc(total * sizeof *js->typed)))
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    size_t k = 0;
    for (int t = 0; t < CS_EV__COUNT; t++) {
        js->typed_at[t] = k;
        for (size_t i = 0; i < js->nlisteners; i++)
            if (js->listeners[i].types & (1u << t))
                js->typed[k++] = js->listeners[i].id;
    }
    js->typed_at[CS_EV__COUNT] = k;
    return CS_OK;
}

typedef struct sync_ud {
    cs_journeys_t *js;
    cs_store_t *s;
    cs_err_t *err;
} sync_ud_t;

static cs_rc interest_of_version(const char *id, int version, void *arg)
{
    sync_ud_t *ud = arg;
    const cs_journey_t *j;
    cs_err_t perr;
    if (program(ud->js, ud->s, id, version, &j, &perr) != CS_OK) {
        /* a stored version that no longer loads: listen to everything */
        cs_warn("journeys: %s version %d: %s", id, version, perr.msg);
        return listen_add(ud->js, id, UINT32_MAX, ud->err);
    }
    return listen_add(ud->js, id, interest_of(j), ud->err);
}

cs_rc cs_journeys_sync(cs_journeys_t *js, cs_store_t *s, cs_err_t *err)
{
    cs_ms_t now = cs_clock_now(js->clock);
    /* The first time journeys run on a store they start at the end of its
     * log: history (an import, a migration) must not message customers
     * about old orders. */
    int64_t cursor;
    cs_rc crc = cs_store_call(s, cursor_get, CURSOR, &cursor, err);
    if (crc == CS_ERR_NOTFOUND) {
        cs_store_counts_t counts;
        if ((crc = cs_store_counts(s, &counts, err)) ||
            (crc = cs_store_call(s, cursor_set, CURSOR, counts.last_seq, err)))
            return crc;
        if (counts.last_seq > 0)
            cs_info("journeys: first start on this store; they begin after event %lld",
                    (long long)counts.last_seq);
    } else if (crc) {
        return crc;
    }
    for (size_t i = 0; i < js->n; i++) {
        const cs_journey_t *j = js->defs[i];
        cs_rc rc = cs_store_call(s, journey_version, j->id, j->hash, j->source, now,
                                 &js->versions[i], err);
        if (rc)
            return rc;
    }
    /* what starts runs, and what active runs listen to over every version
     * a run can be on */
    js->triggers = 0;
    for (size_t i = 0; i < js->n; i++)
        js->triggers |= 1u << js->defs[i]->trigger_event;
    js->interest = 0;
    js->nlisteners = 0;
    cs_free(js->typed); /* (it points into listeners, which listen_add may move) */
    js->typed = NULL;
    memset(js->typed_at, 0, sizeof js->typed_at);
    sync_ud_t ud = { js, s, err };
    cs_rc rc = cs_store_call(s, journey_versions_each, interest_of_version, &ud, err);
    if (rc || (rc = listen_index(js, err)))
        return rc;
    js->synced = true;
    return CS_OK;
}

/* The program a run follows: the loaded one when versions match, else the
 * stored source of its version (parsed once and kept). */
static cs_rc program(cs_journeys_t *js, cs_store_t *s, const char *id, int version,
                     const cs_journey_t **out, cs_err_t *err)
{
    *out = NULL;
    for (size_t i = 0; i < js->n; i++)
        if (strcmp(js->defs[i]->id, id) == 0 && js->versions[i] == version) {
            *out = js->defs[i];
            return CS_OK;
        }
    char key[CS_JID_MAX + 16];
    snprintf(key, sizeof key, "%s@%d", id, version);
    if ((*out = cs_map_get(&js->old, key)) != NULL)
        return CS_OK;
    char *src;
    cs_rc rc = cs_store_call(s, journey_source, id, version, &src, err);
    if (rc)
        return rc;
    cs_journey_t *j;
    char file[CS_JID_MAX + 32];
    snprintf(file, sizeof file, "%s (version %d)", id, version);
    rc = cs_journey_parse_stored(file, src, strlen(src), &j, err);
    cs_free(src);
    if (rc)
        return rc;
    if ((rc = cs_map_put(&js->old, key, j))) {
        cs_journey_free(j);
        return cs_errf(err, rc, "out of memory");
    }
    if ((rc = listen_add(js, id, interest_of(j), err)))
        return rc;
    *out = j;
    return CS_OK;
}

cs_rc cs_journeys_enabled(cs_journeys_t *js, cs_store_t *s, const char *id, bool *on,
                          cs_err_t *err)
{
    int sw;
    cs_rc rc = cs_store_call(s, journey_enabled_get, id, &sw, err);
    if (rc)
        return rc;
    if (sw >= 0) {
        *on = sw == 1;
        return CS_OK;
    }
    *on = false;
    for (size_t i = 0; i < js->n; i++)
        if (strcmp(js->defs[i]->id, id) == 0)
            *on = js->defs[i]->enabled;
    return CS_OK;
}

/* ---- the context conditions read ---- */

typedef struct ctx {
    json_t *root;      /* {customer, order, shipment, event, risk, run} */
    json_t *customer;  /* borrowed from root; may be NULL */
    json_t *order;
    json_t *shipment;
} ctx_t;

static void ctx_free(ctx_t *c)
{
    json_decref(c->root);
    memset(c, 0, sizeof *c);
}

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

bool cs_journeys_delivery_late(const cs_tz_t *shop_tz, json_t *order, json_t *shipment,
                               cs_ms_t now)
{
    const char *os = jstr(order, "status");
    if (os && strcmp(os, "cancelled") == 0)
        return false; /* no delivery to be late (the watch drops it too) */
    const char *st = jstr(shipment, "status");
    if (st && (strcmp(st, "exception") == 0 || strcmp(st, "returned_to_sender") == 0))
        return true;
    /* the promised day, or a parcel sent again's own window's when the
     * order watch found it ends later: the day the watch judges by */
    json_int_t promised = json_integer_value(json_object_get(order, "due_to_ms"));
    /* delivered: the run's parcel, and every other of the order still to
     * come (a run about the first of two parcels is late while the
     * second, which the watch and the promise follow, is in trouble); a
     * parcel gone back to the shop is none to wait for, the shop sends
     * another */
    bool delivered = st && strcmp(st, "delivered") == 0;
    size_t i;
    json_t *p;
    json_array_foreach (json_object_get(order, "shipments"), i, p) {
        const char *ps = jstr(p, "status");
        if (!ps || (strcmp(ps, "delivered") != 0 && strcmp(ps, "returned_to_sender") != 0))
            delivered = false;
    }
    if (!delivered && json_is_true(json_object_get(order, "at_risk")))
        return true; /* the order watch's flag */
    /* the promise is a date, the shop's (shop_timezone, as the watch and
     * the messages read it): late once the whole promised day has passed */
    return promised > 0 && !delivered &&
           cs_tz_day(shop_tz, now) > cs_tz_date_day(shop_tz, (cs_ms_t)promised);
}

cs_rc cs_journeys_ticket_open(const cs_policy_conf_t *c, cs_store_t *s, const char *customer_id,
                              json_t *order, cs_ms_t now, bool *open, cs_ms_t *at,
                              cs_err_t *err)
{
    const char *order_id = jstr(order, "id");
    cs_policy_input_t in = { .now = now };
    if (open)
        *open = false;
    if (at)
        *at = 0;
    if (!order_id)
        return CS_OK;
    cs_rc rc = cs_store_call(s, ticket_open, customer_id, order_id, &in.ticket_open,
                             &in.ticket_at, err);
    if (rc)
        return rc;
    if (open)
        *open = in.ticket_open;
    if (at)
        *at = in.ticket_at;
    if (json_object_set_new(order, "ticket_open", json_boolean(cs_policy_ticket_holds(c, &in))))
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    return CS_OK;
}

bool cs_journeys_order_given_away(json_t *order, const char *customer_id)
{
    const char *owner = jstr(order, "customer_id");
    return owner && *owner && customer_id && strcmp(owner, customer_id) != 0;
}

/* The context of a run (its trigger's parcel is `shipment`), or with run
 * NULL of the event seq that may start one. */
static cs_rc ctx_build(cs_journeys_t *js, cs_store_t *s, const char *customer_id,
                       const char *order_id, json_t *event, const cs_run_t *run, int64_t seq,
                       unsigned flags, ctx_t *c, cs_err_t *err)
{
    memset(c, 0, sizeof *c);
    json_t *cu, *o, *sh;
    cs_rc rc = cs_store_call(s, journey_context, customer_id, order_id,
                             run ? run->trigger_seq : seq, flags, &cu, &o, &sh, err);
    if (rc)
        return rc;
    if (!cu && o && jstr(o, "customer_id")) {
        json_t *o2, *sh2;
        rc = cs_store_call(s, journey_context, jstr(o, "customer_id"), NULL, 0, flags, &cu, &o2,
                           &sh2, err);
        json_decref(o2);
        json_decref(sh2);
        if (rc) {
            json_decref(o);
            json_decref(sh);
            return rc;
        }
    }
    cs_ms_t now = cs_clock_now(js->clock);
    if (!(flags & CS_CTX_LITE) &&
        (rc = cs_journeys_ticket_open(&js->policy, s, customer_id, o, now, NULL, NULL, err))) {
        json_decref(cu);
        json_decref(o);
        json_decref(sh);
        return rc;
    }
    json_t *ratio = json_object_get(o, "price_ratio");
    json_t *risk = json_pack("{s:b,s:b,s:O}", "first_purchase", cs_first_purchase(cu, o), "late",
                             cs_journeys_delivery_late(js->shop_tz, o, sh, now), "price_ratio",
                             ratio ? ratio : json_null());
    json_t *runj = run ? json_pack("{s:s,s:i,s:I}", "journey", run->journey, "version",
                                   run->version, "id", (json_int_t)run->id)
                       : json_object();
    c->root = json_pack("{s:o,s:o,s:o,s:O,s:o,s:o}", "customer", cu ? cu : json_null(), "order",
                        o ? o : json_null(), "shipment", sh ? sh : json_null(), "event",
                        event ? event : json_null(), "risk", risk, "run", runj);
    if (!c->root)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    c->customer = cu;
    c->order = o;
    c->shipment = sh;
    return CS_OK;
}

/* ---- stepping a run ---- */

typedef struct pass {
    cs_journeys_t *js;
    cs_store_t *s;
    cs_journeys_stats_t *st;
    cs_err_t *err;
    cs_ms_t now;
    signed char on[64]; /* switch state of loaded journey i in this pass; -1 = not read */
    bool replaying;     /* handling the events an order or parcel brought in (no nesting) */
} pass_t;

static void pass_init(pass_t *p, cs_journeys_t *js, cs_store_t *s, cs_journeys_stats_t *st,
                      cs_err_t *err)
{
    memset(p, 0, sizeof *p);
    p->js = js;
    p->s = s;
    p->st = st;
    p->err = err;
    p->now = cs_clock_now(js->clock);
    memset(p->on, -1, sizeof p->on);
}

/* A journey's switch, read once per pass (a pass is one transaction). */
static cs_rc pass_enabled(pass_t *p, const char *id, bool *on)
{
    size_t i = 0;
    while (i < p->js->n && strcmp(p->js->defs[i]->id, id) != 0)
        i++;
    if (i < CS_ARRAY_LEN(p->on) && i < p->js->n && p->on[i] >= 0) {
        *on = p->on[i] == 1;
        return CS_OK;
    }
    cs_rc rc = cs_journeys_enabled(p->js, p->s, id, on, p->err);
    if (!rc && i < CS_ARRAY_LEN(p->on) && i < p->js->n)
        p->on[i] = *on ? 1 : 0;
    return rc;
}

static cs_rc arm(pass_t *p, cs_run_t *run, cs_ms_t due)
{
    cs_timer_t t = { 0, due, run->id, run->gen };
    return cs_store_call(p->s, timer_add, &t, NULL, p->err);
}

static void end_run(pass_t *p, cs_run_t *run, int status, const char *why)
{
    run->status = status;
    run->wait_event = 0;
    run->gen++;
    cs_strlcpy(run->exit_reason, why ? why : "", sizeof run->exit_reason);
    if (status == CS_RUN_EXITED)
        p->st->exited++;
    else
        p->st->finished++;
}

/* The consent of a customer for a channel and purpose. */
static cs_consent_t consent(const cs_contact_t *who, cs_channel_t ch, bool marketing)
{
    char v = who->consent[(int)ch * 2 + (marketing ? 1 : 0)];
    return v == 'y' ? CS_CONSENT_YES : v == 'n' ? CS_CONSENT_NO : CS_CONSENT_UNSET;
}

const char *cs_journeys_contact_input(const cs_contact_t *who, cs_channel_t ch,
                                      unsigned channels_off, cs_policy_input_t *pi)
{
    const char *addr = ch == CS_CHANNEL_EMAIL ? who->email : who->phone;
    pi->channel = ch;
    pi->channel_off = (channels_off & (1u << ch)) != 0;
    pi->bounced = (who->bounced & (1u << ch)) != 0;
    pi->has_address = *addr != '\0';
    pi->transactional = consent(who, ch, false);
    pi->marketing = consent(who, ch, true);
    pi->unsubscribed = (who->unsubscribed & (1u << ch)) != 0;
    return addr;
}

/* The channels of a send after its i-th, by name ("sms,email"): where the
 * sender may fall back to when the i-th is refused at the hand-over. */
static void fallback_after(const cs_instr_t *in, int i, char *out, size_t size)
{
    size_t o = 0;
    out[0] = '\0';
    for (int k = i + 1; k < in->nchannels && o < size; k++)
        o += (size_t)snprintf(out + o, size - o, "%s%s", o ? "," : "",
                              cs_channel_name(in->channels[k]));
}

/* The customer's zone for quiet hours and local-time waits; without one
 * (as the dates in their messages, sender.c), or with one not known here,
 * the shop's: not UTC, hours away from most of a shop's customers. */
static const cs_tz_t *contact_tz(const cs_journeys_t *js, const cs_contact_t *who)
{
    return cs_tz_get_or(who->timezone, js->shop_tz);
}

/* When a wait_until ends: the next hour:minute in the customer's zone, on
 * a business day that is one of the shop's too -- not a public holiday
 * or a day it closes (a review request at 10:00 on Christmas Day or
 * Easter Monday is no "working day"). Days are the customer's dates. */
static cs_ms_t next_local_time(const cs_journeys_t *js, const cs_tz_t *tz, cs_ms_t now,
                               const cs_instr_t *in)
{
    cs_ms_t t = cs_next_local_time(tz, now, in->hour, in->minute, in->business_day);
    /* a closed stretch is at most a few weeks (closed_days); past that,
     * the Monday-to-Friday day found is taken */
    for (int i = 0; i < 60 && in->business_day && js->calendar &&
                    !cs_calendar_ship_open(js->calendar, cs_tz_day(tz, t));
         i++)
        t = cs_next_local_time(tz, t, in->hour, in->minute, true);
    return t;
}

/* The idempotency key of a run's step: journey, run key and step. */
static void step_key(const cs_run_t *run, char *out, size_t size)
{
    snprintf(out, size, "%s:%s:%d", run->journey, run->run_key, run->pc);
}

/* An outbox row for the run's current step (a send or a webhook). */
static void out_from_run(const pass_t *p, const cs_run_t *run, const cs_instr_t *in,
                         cs_outmsg_t *m)
{
    memset(m, 0, sizeof *m);
    step_key(run, m->idem_key, sizeof m->idem_key);
    m->run_id = run->id;
    cs_strlcpy(m->journey, run->journey, sizeof m->journey);
    cs_strlcpy(m->customer_id, run->customer_id, sizeof m->customer_id);
    cs_strlcpy(m->order_id, run->order_id, sizeof m->order_id);
    cs_strlcpy(m->template_name, in->text, sizeof m->template_name);
    m->created_at = p->now;
}

/* SEND: decide by the policy, record the outcome. Returns true when the run
 * has to wait (a deferral), with the timer armed. c holds the order and
 * shipment only for the classes the policy holds back (not transactional
 * or service); the customer's contact data is read here. */
static cs_rc do_send(pass_t *p, cs_run_t *run, const cs_instr_t *in, ctx_t *c, bool *waits)
{
    cs_journeys_t *js = p->js;
    *waits = false;
    cs_outmsg_t m;
    out_from_run(p, run, in, &m);
    m.cls = (int)in->cls;
    m.channel = (int)in->channels[0];
    cs_contact_t who;
    cs_rc crc = cs_store_call(p->s, contact_get, run->customer_id, &who, p->err);
    if (crc && crc != CS_ERR_NOTFOUND)
        return crc;
    cs_strlcpy(m.locale, !crc && who.locale[0] ? who.locale : js->default_locale,
               sizeof m.locale);

    cs_policy_result_t verdict = { CS_VERDICT_SKIP, 0, "unknown_customer" };
    /* no customer yet, or a channel skipped only for want of its address */
    bool no_address = crc == CS_ERR_NOTFOUND;
    if (crc == CS_OK) {
        cs_contact_stats_t stats = { 0, 0, false, false, 0, false };
        if (cs_policy_budgeted(in->cls) || in->cls == CS_CLASS_ASK) {
            cs_rc rc = cs_store_call(p->s, contact_stats, run->customer_id, run->order_id,
                                     p->now - js->policy.budget_window, &stats, p->err);
            if (rc)
                return rc;
        }
        const char *first_skip = NULL;
        for (int i = 0; i < in->nchannels; i++) {
            cs_channel_t ch = in->channels[i];
            cs_policy_input_t pi = {
                .cls = in->cls,
                .tz = contact_tz(js, &who),
                .now = p->now,
                .budget_used = stats.budget_used,
                .order_asked = stats.order_asked,
                .last_ask_at = stats.last_ask_at,
                /* this order's delivery, or another of the customer's */
                .delivery_late = cs_journeys_delivery_late(js->shop_tz, c->order, c->shipment,
                                                           p->now) ||
                                 stats.other_late,
                .ticket_open = stats.ticket_open, /* also in a run about no order */
                .ticket_at = stats.ticket_at,
                .refund_pending = json_is_true(json_object_get(c->order, "refund_pending")),
                .held_since = run->held_since,
            };
            const char *addr = cs_journeys_contact_input(&who, ch, js->channels_off, &pi);
            verdict = cs_policy_decide(&js->policy, &pi);
            m.channel = (int)ch;
            if (verdict.verdict == CS_VERDICT_SEND) {
                cs_strlcpy(m.recipient, addr, sizeof m.recipient);
                fallback_after(in, i, m.fallback, sizeof m.fallback);
                break;
            }
            /* the channel's own rules (rules 0 to 3: an unsubscribe holds
             * on each channel until it starts over) move on to the next */
            if (!cs_policy_channel(&pi))
                break;
            if (!first_skip)
                first_skip = verdict.reason;
            if (strcmp(verdict.reason, "no_address") == 0)
                no_address = true;
            if (i + 1 == in->nchannels) {
                verdict.reason = first_skip;
                m.channel = (int)in->channels[0];
            }
        }
    }
    /* An order's own messages wait a while for an address, or a customer,
     * still to come: a shop that sends customer.upserted just after the
     * order. Looked at again after 1, 2, 4, ... minutes, within
     * address_wait; then skipped as before. */
    if (verdict.verdict == CS_VERDICT_SKIP && no_address &&
        (in->cls == CS_CLASS_TRANSACTIONAL || in->cls == CS_CLASS_SERVICE)) {
        cs_ms_t since = run->held_since ? run->held_since : p->now;
        cs_ms_t end = since + js->policy.address_wait;
        if (p->now < end) {
            cs_ms_t next = p->now + (p->now - since > 60000 ? p->now - since : 60000);
            verdict.verdict = CS_VERDICT_DEFER;
            verdict.until = next < end ? next : end;
            verdict.reason = "held_no_address";
        }
    }
    if (verdict.verdict == CS_VERDICT_DEFER) {
        /* held_since is when the hold now in force began: a wait for quiet
         * hours to end means the last one is over, so a hold after it
         * counts hold_max (address_wait) anew */
        bool hold = strncmp(verdict.reason, "held_", 5) == 0;
        if (!hold)
            run->held_since = 0;
        else if (!run->held_since)
            run->held_since = p->now;
        /* (the view's held_for: "quiet_hours", or the hold's cause) */
        cs_strlcpy(run->held_for, verdict.reason + (hold ? 5 : 0), sizeof run->held_for);
        run->gen++;
        p->st->deferred++;
        *waits = true;
        return arm(p, run, verdict.until);
    }
    run->held_since = 0;
    run->held_for[0] = '\0';
    bool existed;
    if (verdict.verdict == CS_VERDICT_SEND) {
        m.status = CS_OUT_QUEUED;
        m.next_at = p->now;
        p->st->queued++;
    } else {
        m.status = CS_OUT_SKIPPED;
        cs_strlcpy(m.reason, verdict.reason, sizeof m.reason);
        p->st->skipped++;
    }
    return cs_store_call(p->s, outbox_put, &m, &existed, p->err);
}

/* DISCOUNT: a unique code, once per run step. 8 characters from an
 * alphabet without 0/O and 1/I/L: 40 random bits. */
static cs_rc do_discount(pass_t *p, const cs_run_t *run, const cs_instr_t *in, ctx_t *c)
{
    cs_discount_t d;
    memset(&d, 0, sizeof d);
    step_key(run, d.idem_key, sizeof d.idem_key);
    d.run_id = run->id;
    cs_strlcpy(d.journey, run->journey, sizeof d.journey);
    cs_strlcpy(d.customer_id, run->customer_id, sizeof d.customer_id);
    cs_strlcpy(d.order_id, run->order_id, sizeof d.order_id);
    d.kind = in->kind;
    d.value = in->kind == CS_DISCOUNT_FREE_SHIPPING ? 0 : in->value;
    const char *cur = jstr(c->order, "currency");
    if (in->kind == CS_DISCOUNT_AMOUNT)
        cs_strlcpy(d.currency, cur ? cur : "EUR", sizeof d.currency);
    d.created_at = p->now;
    d.expires_at = p->now + in->ms;
    bool existed;
    cs_rc rc = cs_discount_issue(p->s, &d, in->text, &existed, p->err);
    if (!rc && !existed)
        p->st->codes++;
    return rc;
}

/* EMIT: a signal event into the log, once per run step (its event id is
 * derived from the step); later passes read it like any other event. */
static cs_rc do_emit(pass_t *p, const cs_run_t *run, const cs_instr_t *in)
{
    char key[CS_JID_MAX + CS_ID_MAX + 40], hex[CS_SHA256_HEX_LEN], eid[48], src[80];
    step_key(run, key, sizeof key);
    cs_sha256_hex(key, strlen(key), hex);
    snprintf(eid, sizeof eid, "sig-%.32s", hex);
    snprintf(src, sizeof src, "journey:%s", run->journey);
    json_t *props = in->data ? json_loads(in->data, 0, NULL) : json_object();
    if (!props)
        return cs_errf(p->err, CS_ERR_NOMEM, "out of memory");
    json_object_set_new(props, "journey", json_string(run->journey));
    bool is_new;
    cs_rc rc = cs_store_signal(p->s, p->now, eid, src, in->text, run->customer_id, run->order_id,
                               json_incref(props), &is_new, p->err);
    /* the run's order is another customer's now (an edit gave it to
     * them), and a signal naming another customer's order is refused
     * (nothing was logged): the run's customer's, without the order. (A
     * run ends before this step when it finds its order given away,
     * step(); this is only the safety net that keeps the pass going.) */
    if (rc == CS_ERR_RULE && run->order_id[0]) {
        cs_log(CS_LOG_INFO, "journeys: %s run %lld: order %s is another customer's now; its "
               "signal %s goes without it", run->journey, (long long)run->id, run->order_id,
               in->text);
        rc = cs_store_signal(p->s, p->now, eid, src, in->text, run->customer_id, NULL,
                             json_incref(props), &is_new, p->err);
    }
    json_decref(props);
    if (!rc && is_new)
        p->st->signals++;
    return rc;
}

/* WEBHOOK: through the outbox like a message (no contact policy: it is
 * not a message to the customer); the sender signs and posts it. */
static cs_rc do_webhook(pass_t *p, const cs_run_t *run, const cs_instr_t *in)
{
    cs_outmsg_t m;
    out_from_run(p, run, in, &m);
    cs_strlcpy(m.recipient, in->url, sizeof m.recipient);
    m.channel = CS_OUT_WEBHOOK;
    m.cls = CS_CLASS_SERVICE;
    m.status = CS_OUT_QUEUED;
    m.next_at = p->now;
    bool existed;
    cs_rc rc = cs_store_call(p->s, outbox_put, &m, &existed, p->err);
    if (!rc && !existed)
        p->st->webhooks++;
    return rc;
}

/* The order's row alone (journey_context's light read, its customer and
 * parcel left out): *o is the caller's (json_decref), NULL when the store
 * does not know the order. */
static cs_rc order_row(pass_t *p, const char *order_id, json_t **o)
{
    json_t *cu, *sh;
    cs_rc rc = cs_store_call(p->s, journey_context, NULL, order_id, 0, CS_CTX_LITE, &cu, o, &sh,
                             p->err);
    json_decref(cu);
    json_decref(sh);
    return rc;
}

/* Is the run's order another customer's now (an order.placed edit gave
 * it to them, docs/events.md)? Asked once per stepping (*known: -1 not
 * yet, else 0 or 1): from the context when the step read it (its order
 * names its customer), else from the order's row alone. */
static cs_rc given_away(pass_t *p, const cs_run_t *run, const ctx_t *c, int *known)
{
    if (*known >= 0)
        return CS_OK;
    if (!run->order_id[0]) {
        *known = 0;
        return CS_OK;
    }
    if (c->root) {
        *known = cs_journeys_order_given_away(c->order, run->customer_id);
        return CS_OK;
    }
    json_t *o;
    cs_rc rc = order_row(p, run->order_id, &o);
    if (rc)
        return rc;
    *known = cs_journeys_order_given_away(o, run->customer_id);
    json_decref(o);
    return CS_OK;
}

/* Execute from run->pc until the run waits or ends; then store it. */
static cs_rc step(pass_t *p, cs_run_t *run, json_t *event)
{
    const cs_journey_t *j;
    cs_rc rc = program(p->js, p->s, run->journey, run->version, &j, p->err);
    if (rc)
        return rc;
    bool on;
    if ((rc = pass_enabled(p, run->journey, &on)))
        return rc;
    ctx_t c = { 0 };
    int away = -1; /* the run's order is another customer's now: -1 = not asked yet */
    if (!on)
        end_run(p, run, CS_RUN_EXITED, "journey_disabled");
    for (int guard = 0; run->status == CS_RUN_ACTIVE && !rc; guard++) {
        if (run->pc < 0 || run->pc >= j->n || guard > j->n) {
            rc = cs_errf(p->err, CS_ERR_INTERNAL, "journey %s run %lld: bad step %d",
                         run->journey, (long long)run->id, run->pc);
            break;
        }
        const cs_instr_t *in = &j->prog[run->pc];
        /* conditions, day counts and the policy's holds read the context;
         * a transactional send and a local-time wait read only the
         * customer's contact row */
        bool needs_ctx = in->op == CS_OP_BRANCH || (in->op == CS_OP_WAIT && in->text) ||
                         in->op == CS_OP_DISCOUNT ||
                         (in->op == CS_OP_SEND && in->cls != CS_CLASS_TRANSACTIONAL &&
                          in->cls != CS_CLASS_SERVICE);
        if (needs_ctx && !c.root &&
            (rc = ctx_build(p->js, p->s, run->customer_id, run->order_id, event, run, 0,
                            CS_CTX_FULL, &c, p->err)))
            break;
        /* a run about an order an edit gave to another customer since
         * ends before it acts or reads the order: its messages would show
         * the old customer someone else's order; a wait acts on nothing */
        bool acts = needs_ctx || in->op == CS_OP_SEND || in->op == CS_OP_EMIT ||
                    in->op == CS_OP_WEBHOOK;
        if (acts && (rc = given_away(p, run, &c, &away)))
            break;
        if (acts && away) {
            cs_log(CS_LOG_INFO, "journeys: %s run %lld: order %s is another customer's now; "
                   "the run ends", run->journey, (long long)run->id, run->order_id);
            end_run(p, run, CS_RUN_EXITED, CS_ORDER_GIVEN_AWAY);
            break;
        }
        bool waits = false;
        switch (in->op) {
        case CS_OP_SEND:
            if (!(rc = do_send(p, run, in, &c, &waits)) && !waits)
                run->pc++;
            break;
        case CS_OP_WAIT: {
            cs_ms_t ms = in->ms;
            if (in->text) {
                json_t *d = cs_json_path(c.root, in->text);
                double days = json_is_integer(d) ? (double)json_integer_value(d)
                              : json_is_real(d)  ? json_real_value(d)
                                                 : -1;
                if (!(days > 0 && days <= 3660)) {
                    char why[64];
                    snprintf(why, sizeof why, "no_days_at:%s", in->text);
                    end_run(p, run, CS_RUN_EXITED, why);
                    break;
                }
                ms = (cs_ms_t)(days * (double)CS_MS_PER_DAY);
            }
            run->pc++;
            run->gen++;
            rc = arm(p, run, p->now + ms);
            waits = true;
            break;
        }
        case CS_OP_WAIT_UNTIL: {
            cs_contact_t who;
            rc = cs_store_call(p->s, contact_get, run->customer_id, &who, p->err);
            if (rc && rc != CS_ERR_NOTFOUND)
                break;
            rc = CS_OK;
            const cs_tz_t *tz = contact_tz(p->js, &who);
            run->pc++;
            run->gen++;
            rc = arm(p, run, next_local_time(p->js, tz, p->now, in));
            waits = true;
            break;
        }
        case CS_OP_WAIT_FOR:
            run->wait_event = in->event_type;
            run->gen++;
            rc = arm(p, run, p->now + in->ms);
            waits = true;
            break;
        case CS_OP_BRANCH:
            run->pc = cs_expr_test(in->cond, c.root) ? run->pc + 1 : in->target;
            break;
        case CS_OP_GOTO: run->pc = in->target; break;
        case CS_OP_DISCOUNT:
            if (!(rc = do_discount(p, run, in, &c)))
                run->pc++;
            break;
        case CS_OP_EMIT:
            if (!(rc = do_emit(p, run, in)))
                run->pc++;
            break;
        case CS_OP_WEBHOOK:
            if (!(rc = do_webhook(p, run, in)))
                run->pc++;
            break;
        case CS_OP_EXIT: end_run(p, run, CS_RUN_EXITED, in->text); break;
        case CS_OP_END: end_run(p, run, CS_RUN_DONE, NULL); break;
        }
        if (waits)
            break;
    }
    ctx_free(&c);
    if (rc)
        return rc;
    run->updated_at = p->now;
    return cs_store_call(p->s, run_update, run, p->err);
}

/* ---- events ---- */

static unsigned exit_bit(const cs_event_t *ev, const cs_run_t *run, const char *order_id)
{
    switch (ev->type) {
    case CS_EV_ORDER_CANCELLED:
        return strcmp(run->order_id, ev->u.cancel.order_id) == 0 ? CS_EXIT_ORDER_CANCELLED : 0;
    case CS_EV_RETURN_REQUESTED:
        return order_id && strcmp(run->order_id, order_id) == 0 ? CS_EXIT_RETURN_REQUESTED : 0;
    case CS_EV_TICKET_CREATED:
        return (!ev->u.ticket.order_id || strcmp(run->order_id, ev->u.ticket.order_id) == 0)
                   ? CS_EXIT_TICKET_OPENED
                   : 0;
    case CS_EV_MESSAGE_STATUS:
        return ev->u.msg.status == CS_MSG_UNSUBSCRIBED ? CS_EXIT_UNSUBSCRIBED : 0;
    case CS_EV_ORDER_PLACED:
        return strcmp(run->order_id, ev->u.order.id) != 0 ? CS_EXIT_ORDERED_AGAIN : 0;
    case CS_EV_FEEDBACK_SUBMITTED: /* the customer told us already: no ask about it */
        return order_id && strcmp(run->order_id, order_id) == 0 ? CS_EXIT_FEEDBACK_GIVEN : 0;
    default: return 0;
    }
}

static const char *exit_name(unsigned bit)
{
    switch (bit) {
    case CS_EXIT_ORDER_CANCELLED: return "order_cancelled";
    case CS_EXIT_RETURN_REQUESTED: return "return_requested";
    case CS_EXIT_TICKET_OPENED: return "ticket_opened";
    case CS_EXIT_UNSUBSCRIBED: return "unsubscribed";
    case CS_EXIT_FEEDBACK_GIVEN: return "feedback_given";
    default: return "ordered_again";
    }
}

static json_t *event_json(const cs_event_t *ev)
{
    json_t *d = json_deep_copy(json_object_get(ev->json, "data"));
    if (!d)
        return NULL;
    char buf[40];
    json_object_set_new(d, "type", json_string(cs_event_type_name(ev->type)));
    json_object_set_new(d, "occurred_at", json_string(cs_time_format(ev->occurred_at, buf,
                                                                     sizeof buf)));
    return d;
}

/* A message.status that names only one of our messages (its number) is
 * the message's customer's and of the message's channel, as the store
 * resolved it when it logged the status (customer_id, message_channel):
 * conditions read them as the event's own. */
static cs_rc message_named(pass_t *p, int64_t seq, const cs_event_t *ev, const char *customer_id,
                           json_t *evj)
{
    const cs_message_status_t *m = &ev->u.msg;
    char ch[16];
    if (!m->customer_id &&
        json_object_set_new(evj, "customer_id", json_string(customer_id)))
        return cs_errf(p->err, CS_ERR_NOMEM, "out of memory");
    if (m->channel)
        return CS_OK;
    cs_rc rc = cs_store_call(p->s, message_channel, seq, ch, p->err);
    if (rc)
        return rc;
    if (ch[0] && json_object_set_new(evj, "channel", json_string(ch)))
        return cs_errf(p->err, CS_ERR_NOMEM, "out of memory");
    return CS_OK;
}

/* Was ticket.created `ev` (log seq) sent before, for the same ticket (a
 * helpdesk's retry under a new event id)? Then it opened no ticket: it
 * ends no run, as an order.placed that edits its order is no new order.
 * *known caches the answer for the event's other runs (-1: not read). */
static cs_rc ticket_created_before(pass_t *p, int64_t seq, const cs_event_t *ev, int *known)
{
    int64_t first;
    if (*known >= 0)
        return CS_OK;
    cs_rc rc = cs_store_call(p->s, ticket_created_seq, ev->u.ticket.id, &first, p->err);
    if (rc)
        return rc;
    *known = first > 0 && first < seq;
    return CS_OK;
}

/* Has the customer placed an order after order_id (`order` its context)?
 * The customer's latest order (customer.last_order_id) is another one.
 * Cancelled orders count for neither: one placed since is not ordering
 * again, and a cancelled order_id, not last itself, was only ordered again
 * if the latest came after it (in the order of orders_before). */
static bool ordered_since(json_t *customer, json_t *order, const char *order_id)
{
    const char *last = jstr(customer, "last_order_id");
    if (!last || strcmp(last, order_id) == 0)
        return false;
    const char *st = jstr(order, "status");
    if (!st || strcmp(st, "cancelled") != 0)
        return true;
    cs_ms_t last_at, placed;
    const char *a = jstr(customer, "last_order_at"), *b = jstr(order, "placed_at");
    if (!a || !b || !cs_time_parse(a, &last_at) || !cs_time_parse(b, &placed))
        return true;
    return last_at > placed || (last_at == placed && strcmp(last, order_id) > 0);
}

/* Is the order cancelled, as the store knows it now? */
static cs_rc order_cancelled(pass_t *p, const char *order_id, bool *out)
{
    json_t *o;
    cs_rc rc = order_row(p, order_id, &o);
    if (rc)
        return rc;
    const char *st = jstr(o, "status");
    *out = st && strcmp(st, "cancelled") == 0;
    json_decref(o);
    return CS_OK;
}

static cs_rc on_event(pass_t *p, int64_t seq, const cs_event_t *ev, const char *order_id,
                      const char *customer_id);

/* The order's run key ("o:ORDER", *existed: taken) may be another
 * customer's run: the order was theirs until an edit gave it to this one
 * (docs/events.md). Then the order's runs of this customer have a key of
 * their own, "oc:" and the SHA-256 of customer and order (ids hold no
 * control character: the 0x1f between them is no id's; and it is bounded,
 * as two ids are not): once per journey, order and customer. run is
 * inserted under it (*existed: taken too). Messages, codes and signals
 * are keyed by the run key, so nothing of the old customer's runs is the
 * new one's. */
static cs_rc order_key_of_customer(pass_t *p, cs_run_t *run, bool *existed)
{
    cs_run_t had;
    cs_rc rc = cs_store_call(p->s, run_find, run->journey, run->run_key, &had, p->err);
    if (rc || strcmp(had.customer_id, run->customer_id) == 0)
        return rc; /* (the customer's own: *existed stays) */
    char both[2 * CS_ID_MAX + 2], hex[CS_SHA256_HEX_LEN];
    int len = snprintf(both, sizeof both, "%s\x1f%s", run->customer_id, run->order_id);
    cs_sha256_hex(both, len > 0 && (size_t)len < sizeof both ? (size_t)len : strlen(both), hex);
    snprintf(run->run_key, sizeof run->run_key, "oc:%s", hex);
    return cs_store_call(p->s, run_insert, run, existed, p->err);
}

/* Was the order (parcel: the parcel) announced before? Then this is an
 * edit, and what came before was heard when it was: handled again, an
 * old scan could end a wait that began after it. */
typedef struct announced {
    const char *parcel;   /* NULL: the order */
    const char *customer; /* the order's: announced to this customer before */
    bool before;
} announced_t;

static cs_rc announced_one(int64_t seq, const char *order_id, const char *customer_id,
                           const char *body, size_t len, void *ud);

/* Did order.placed `ev` (log seq) place an order after the run's? Not when
 * it edits an order announced before (a shop sends order.placed again for
 * an edit), nor for an order placed before the run's (one that arrives
 * late, an import of history): the run's customer has not ordered again.
 * *edit caches the first answer for the event's other runs (-1: not read). */
static cs_rc ordered_again(pass_t *p, int64_t seq, const cs_event_t *ev, const cs_run_t *run,
                           int *edit, bool *again)
{
    *again = false;
    if (*edit < 0) {
        announced_t a = { NULL, NULL, false };
        cs_rc rc = cs_store_call(p->s, events_of_order, ev->u.order.id, NULL, seq,
                                 1u << CS_EV_ORDER_PLACED, 1, announced_one, &a, p->err);
        if (rc)
            return rc;
        *edit = a.before;
    }
    if (*edit)
        return CS_OK;
    *again = true;
    if (!run->order_id[0])
        return CS_OK;
    json_t *o;
    cs_rc rc = order_row(p, run->order_id, &o);
    if (rc)
        return rc;
    cs_ms_t placed;
    const char *at = jstr(o, "placed_at");
    /* (the same order of orders as customer.last_order_id and orders_before) */
    if (at && cs_time_parse(at, &placed))
        *again = ev->u.order.placed_at > placed ||
                 (ev->u.order.placed_at == placed && strcmp(ev->u.order.id, run->order_id) > 0);
    json_decref(o);
    return CS_OK;
}

/* An order (or a parcel) that came after some of its own events -- a
 * shop whose webhooks arrive out of order, scans before the parcel's
 * announcement -- brings them in now: they reached no journey then (no
 * order, no customer). They are handled now, after the event that brought
 * them: they start what they would have started (the run keys keep
 * starting idempotent; conditions see the parcel as it is now) and end the
 * waits of the runs this order has, such as a review request waiting for
 * the delivery. */
typedef struct replay {
    pass_t *p;
    const char *order_id, *customer_id;
} replay_t;

static cs_rc replay_one(int64_t seq, const char *order_id, const char *customer_id,
                        const char *body, size_t len, void *ud)
{
    replay_t *r = ud;
    cs_event_t *ev;
    cs_err_t perr;
    (void)order_id;
    (void)customer_id;
    if (cs_event_parse(body, len, &ev, &perr) != CS_OK)
        return CS_OK; /* (as each_event: a newer schema is skipped) */
    cs_rc rc = on_event(r->p, seq, ev, r->order_id, r->customer_id);
    cs_event_free(&ev);
    return rc;
}

static cs_rc announced_one(int64_t seq, const char *order_id, const char *customer_id,
                           const char *body, size_t len, void *ud)
{
    announced_t *a = ud;
    cs_event_t *ev;
    cs_err_t perr;
    (void)seq;
    (void)order_id;
    (void)customer_id;
    if (!a->parcel && !a->customer) {
        a->before = true;
        return CS_OK;
    }
    if (cs_event_parse(body, len, &ev, &perr) != CS_OK)
        return CS_OK;
    if (a->parcel && ev->type == CS_EV_SHIPMENT_CREATED && strcmp(ev->u.shipment.id, a->parcel) == 0)
        a->before = true;
    if (!a->parcel && ev->type == CS_EV_ORDER_PLACED && ev->u.order.customer_id &&
        strcmp(ev->u.order.customer_id, a->customer) == 0)
        a->before = true;
    cs_event_free(&ev);
    return CS_OK;
}

static cs_rc replay_earlier(pass_t *p, int64_t seq, const cs_event_t *ev, const char *order_id,
                            const char *customer_id)
{
    /* an order.placed brings its parcels and their scans; a
     * shipment.created the scans of its parcel that came before it; only
     * the first announcement (an order edited, a parcel corrected, bring
     * nothing) -- of the order to its customer: an edit that gives the
     * order to another customer brings them in for that one, whose runs
     * of the order begin now (the shipping notice of a parcel on its way,
     * a review request that hears of the delivery) */
    const char *parcel = ev->type == CS_EV_SHIPMENT_CREATED ? ev->u.shipment.id : NULL;
    const char *owner = ev->type == CS_EV_ORDER_PLACED ? ev->u.order.customer_id : NULL;
    announced_t a = { parcel, owner, false };
    cs_rc rc = cs_store_call(p->s, events_of_order, order_id, NULL, seq, 1u << ev->type,
                             parcel || owner ? REPLAY_MAX : 1, announced_one, &a, p->err);
    if (rc || a.before)
        return rc;
    const uint32_t types = 1u << CS_EV_SHIPMENT_CREATED | 1u << CS_EV_SHIPMENT_CANCELLED |
                           1u << CS_EV_TRACKING_EVENT;
    replay_t r = { p, order_id, customer_id };
    p->replaying = true;
    rc = cs_store_call(p->s, events_of_order, order_id, parcel, seq,
                       parcel ? 1u << CS_EV_TRACKING_EVENT : types, REPLAY_MAX, replay_one, &r,
                       p->err);
    p->replaying = false;
    return rc;
}

/* The event types that bring earlier events of their order or parcel
 * (replay_earlier) to journeys that hear those (`heard`: a mask of types
 * that start or concern runs), whether or not a journey hears them. */
static uint32_t bringers(uint32_t heard)
{
    uint32_t m = 0;
    if (heard & (1u << CS_EV_SHIPMENT_CREATED | 1u << CS_EV_SHIPMENT_CANCELLED |
                 1u << CS_EV_TRACKING_EVENT))
        m |= 1u << CS_EV_ORDER_PLACED;
    if (heard & (1u << CS_EV_TRACKING_EVENT))
        m |= 1u << CS_EV_SHIPMENT_CREATED;
    return m;
}

/* The active runs event ev may end or advance: the order's, the
 * customer's about no order and, with customer_all, the customer's runs
 * of the journeys that listen to ev's type (*runs the caller's). */
static cs_rc runs_concerned(pass_t *p, const cs_event_t *ev, const char *order_id,
                            const char *customer_id, bool customer_all, cs_run_t **runs,
                            size_t *n)
{
    const cs_journeys_t *js = p->js;
    const char **ids = NULL;
    size_t k = 0;
    if (customer_all && customer_id && js->typed) {
        ids = js->typed + js->typed_at[ev->type];
        k = js->typed_at[ev->type + 1] - js->typed_at[ev->type];
    }
    return cs_store_call(p->s, runs_active_in, order_id, customer_id, ids, k, runs, n, p->err);
}

/* The context the trigger conditions of event seq read (*tc, the
 * caller's to free): built for the first journey that asks, and read by
 * every other, as the cached answers beside it are (an order's customer
 * with thousands of orders costs a scan of them per build); built again
 * only when a run started since appended a signal (*signals: the count it
 * was built at), the one step that changes the state it shows. */
static cs_rc trigger_ctx(pass_t *p, const char *customer_id, const char *order_id, json_t *evj,
                         int64_t seq, ctx_t *tc, size_t *signals)
{
    if (tc->root && *signals == p->st->signals)
        return CS_OK;
    ctx_free(tc);
    *signals = p->st->signals;
    return ctx_build(p->js, p->s, customer_id, order_id, evj, NULL, seq, CS_CTX_FULL, tc, p->err);
}

static cs_rc on_event(pass_t *p, int64_t seq, const cs_event_t *ev, const char *order_id,
                      const char *customer_id)
{
    cs_rc rc = CS_OK;
    cs_run_t *runs = NULL;
    size_t n = 0;
    char cust_buf[CS_ID_MAX + 1] = "";
    /* most events concern no run and start none */
    bool listened = p->js->interest & (1u << ev->type);
    bool brings = !p->replaying && order_id &&
                  (bringers(p->js->interest | p->js->triggers) & (1u << ev->type));
    if (!listened && !(p->js->triggers & (1u << ev->type)) && !brings)
        return CS_OK;
    json_t *evj = event_json(ev);
    if (!evj)
        return cs_errf(p->err, CS_ERR_NOMEM, "out of memory");
    if (ev->type == CS_EV_MESSAGE_STATUS && customer_id &&
        (rc = message_named(p, seq, ev, customer_id, evj)))
        goto out;
    /* an event that names its order but no customer is logged as the
     * order's customer's; one logged before its order came knows only
     * its order: its customer is the order's */
    if (!customer_id && order_id) {
        json_t *o;
        if ((rc = order_row(p, order_id, &o)))
            goto out;
        if (jstr(o, "customer_id"))
            cs_strlcpy(cust_buf, jstr(o, "customer_id"), sizeof cust_buf);
        json_decref(o);
        customer_id = cust_buf[0] ? cust_buf : NULL;
    }
    /* 1 and 2: exits and waits among the runs concerned, when any run can
     * listen to this type. An event about an order concerns the runs of
     * that order and the customer's about no order (exit_bit, and a wait
     * listens to its own order's events), except for the exits that end
     * the customer's runs whatever their order: ordered_again, an
     * unsubscribe, a ticket (about no order: then order_id is none). Not
     * reading the customer's other runs for each scan keeps a customer
     * with thousands of orders under way (a shop's "guest") from costing
     * every event of theirs all of those runs. */
    bool customer_all = !order_id || ev->type == CS_EV_ORDER_PLACED ||
                        ev->type == CS_EV_MESSAGE_STATUS || ev->type == CS_EV_TICKET_CREATED;
    /* and of those, only the runs of the journeys that have an exit or a
     * wait on this type (in some version): an order placed reads the
     * customer's win-backs, not their thousands of review requests
     * waiting for a delivery */
    if (listened && (rc = runs_concerned(p, ev, order_id, customer_id, customer_all, &runs, &n)))
        goto out;
    int edit = -1; /* an order.placed that edits its order: read once, when a run asks */
    int ticket_again = -1; /* a ticket.created sent before: likewise */
    for (size_t i = 0; i < n && !rc; i++) {
        cs_run_t *run = &runs[i];
        const cs_journey_t *j;
        if ((rc = program(p->js, p->s, run->journey, run->version, &j, p->err)))
            break;
        unsigned bit = exit_bit(ev, run, order_id) & j->exit_mask;
        bool again;
        if (bit == CS_EXIT_ORDERED_AGAIN &&
            (rc = ordered_again(p, seq, ev, run, &edit, &again)))
            break;
        if (bit == CS_EXIT_ORDERED_AGAIN && !again)
            bit = 0;
        if (bit == CS_EXIT_TICKET_OPENED &&
            (rc = ticket_created_before(p, seq, ev, &ticket_again)))
            break;
        if (bit == CS_EXIT_TICKET_OPENED && ticket_again)
            bit = 0;
        /* a ticket about no order or an unsubscribe from well before the
         * run began (older than a trigger may be: history a shop imports,
         * a ticket about an earlier order) ends no run; the policy holds
         * asks while a ticket is open, and honours an unsubscribe, either
         * way. One only a little older may be one a lagging pass reads
         * after the run's trigger: it ends the run. */
        if ((bit == CS_EXIT_UNSUBSCRIBED ||
             (bit == CS_EXIT_TICKET_OPENED && !ev->u.ticket.order_id)) &&
            run->started_at - ev->occurred_at > p->js->trigger_max_age)
            bit = 0;
        /* ordered_again and unsubscribed concern the customer; the rest the run's order */
        if (bit && bit != CS_EXIT_ORDERED_AGAIN && bit != CS_EXIT_UNSUBSCRIBED &&
            bit != CS_EXIT_TICKET_OPENED && (!order_id || strcmp(run->order_id, order_id) != 0))
            bit = 0;
        if (bit) {
            end_run(p, run, CS_RUN_EXITED, exit_name(bit));
            run->updated_at = p->now;
            rc = cs_store_call(p->s, run_update, run, p->err);
            continue;
        }
        if (run->wait_event != (int)ev->type)
            continue;
        /* a wait on an order's events listens to that order only; an
         * event about no order (a message's status, a shop's signal for
         * the customer) concerns the customer's runs, as a ticket without
         * an order ends them */
        if (run->order_id[0] && order_id && strcmp(run->order_id, order_id) != 0)
            continue;
        const cs_instr_t *in = &j->prog[run->pc];
        bool ok = true;
        if (in->cond) {
            ctx_t c;
            if ((rc = ctx_build(p->js, p->s, run->customer_id, run->order_id, evj, run, 0,
                                CS_CTX_FULL, &c, p->err)))
                break;
            ok = cs_expr_test(in->cond, c.root);
            ctx_free(&c);
        }
        if (!ok)
            continue;
        run->wait_event = 0;
        run->pc++;
        run->gen++; /* the timeout timer is stale now */
        rc = step(p, run, evj);
    }
    cs_free(runs);
    if (rc || !customer_id)
        goto out;
    /* 3: triggers -- not for events from the distant past (a late import);
     * what such an event brings in (4) is judged by its own age */
    bool too_old = p->now - ev->occurred_at > p->js->trigger_max_age;
    /* nor from a ticket.created sent again: the same ticket, which started
     * what it starts when it was created (and ends no run, above); under
     * once_per: event its new event id would start everything again */
    if (!too_old && ev->type == CS_EV_TICKET_CREATED && (p->js->triggers & (1u << ev->type)) &&
        (rc = ticket_created_before(p, seq, ev, &ticket_again)))
        goto out;
    bool resent = ev->type == CS_EV_TICKET_CREATED && ticket_again > 0;
    int cancelled = -1; /* the order's, read once when a journey asks: -1 = not yet */
    int returned = -1;  /* a return requested for the order, likewise */
    int later = -1;     /* the customer placed an order after this one, likewise */
    ctx_t tc = { 0 };   /* what the conditions read, built when one asks */
    size_t tc_signals = 0;
    for (size_t i = 0; i < p->js->n && !rc && !too_old && !resent; i++) {
        const cs_journey_t *j = p->js->defs[i];
        if (j->trigger_event != (int)ev->type)
            continue;
        bool on;
        if ((rc = pass_enabled(p, j->id, &on)) || !on)
            continue;
        if (j->once_per == CS_ONCE_PER_ORDER && !order_id)
            continue;
        bool cancel_exits = order_id && (j->exit_mask & CS_EXIT_ORDER_CANCELLED);
        bool again_exits = order_id && (j->exit_mask & CS_EXIT_ORDERED_AGAIN);
        if (j->trigger_cond) {
            if ((rc = trigger_ctx(p, customer_id, order_id, evj, seq, &tc, &tc_signals)))
                break;
            bool ok = cs_expr_test(j->trigger_cond, tc.root);
            const char *st = jstr(tc.order, "status");
            if (ok && cancel_exits && cancelled < 0)
                cancelled = st && strcmp(st, "cancelled") == 0;
            if (ok && again_exits && later < 0)
                later = ordered_since(tc.customer, tc.order, order_id);
            if (!ok)
                continue;
        }
        /* a journey that ends when its order is cancelled does not begin
         * for an order cancelled already: a scan after the cancellation,
         * an order.placed that came after its own cancellation, an event
         * read late (asked after the condition: most events meet none) */
        if (cancel_exits) {
            bool c = cancelled > 0;
            if (cancelled < 0 && !(rc = order_cancelled(p, order_id, &c)))
                cancelled = c;
            if (rc || c)
                continue;
        }
        /* nor does one that ends on a return request for an order with a
         * return requested already: a delivery scan that comes after it */
        if (order_id && (j->exit_mask & CS_EXIT_RETURN_REQUESTED)) {
            if (returned < 0) {
                announced_t a = { NULL, NULL, false };
                if ((rc = cs_store_call(p->s, events_of_order, order_id, NULL, INT64_MAX,
                                        1u << CS_EV_RETURN_REQUESTED, 1, announced_one, &a,
                                        p->err)))
                    continue;
                returned = a.before;
            }
            if (returned)
                continue;
        }
        /* nor does one that ends when the customer orders again, for an
         * order older than the customer's latest: one that reaches us
         * late (a webhook held up, an import), a parcel of it delivered
         * after the next order was placed */
        if (again_exits) {
            if (later < 0) {
                if ((rc = trigger_ctx(p, customer_id, order_id, evj, seq, &tc, &tc_signals)))
                    break;
                later = ordered_since(tc.customer, tc.order, order_id);
            }
            if (later)
                continue;
        }
        cs_run_t run;
        memset(&run, 0, sizeof run);
        cs_strlcpy(run.journey, j->id, sizeof run.journey);
        run.version = p->js->versions[i];
        if (j->once_per == CS_ONCE_PER_ORDER)
            snprintf(run.run_key, sizeof run.run_key, "o:%s", order_id);
        else if (j->once_per == CS_ONCE_PER_CUSTOMER)
            snprintf(run.run_key, sizeof run.run_key, "c:%s", customer_id);
        else
            snprintf(run.run_key, sizeof run.run_key, "e:%lld", (long long)seq);
        cs_strlcpy(run.customer_id, customer_id, sizeof run.customer_id);
        cs_strlcpy(run.order_id, order_id ? order_id : "", sizeof run.order_id);
        run.status = CS_RUN_ACTIVE;
        run.trigger_seq = seq;
        run.started_at = run.updated_at = p->now;
        bool existed;
        if ((rc = cs_store_call(p->s, run_insert, &run, &existed, p->err)))
            continue;
        if (existed && j->once_per == CS_ONCE_PER_ORDER &&
            (rc = order_key_of_customer(p, &run, &existed)))
            continue;
        if (existed)
            continue;
        p->st->started++;
        rc = step(p, &run, evj);
    }
    ctx_free(&tc);
    /* 4: what this order or parcel brings in */
    if (!rc && brings)
        rc = replay_earlier(p, seq, ev, order_id, customer_id);
out:
    json_decref(evj);
    return rc;
}

typedef struct ev_pass {
    pass_t *p;
    int64_t last;
} ev_pass_t;

static cs_rc each_event(int64_t seq, const char *order_id, const char *customer_id,
                        const char *body, size_t len, void *ud)
{
    ev_pass_t *e = ud;
    cs_event_t *ev;
    cs_err_t perr;
    e->last = seq;
    e->p->st->events++;
    if (cs_event_parse(body, len, &ev, &perr) != CS_OK) {
        /* stored events were valid when accepted; a newer schema is skipped */
        cs_warn("journeys: event %lld skipped: %s", (long long)seq, perr.msg);
        return CS_OK;
    }
    cs_rc rc = on_event(e->p, seq, ev, order_id, customer_id);
    cs_event_free(&ev);
    return rc;
}

static cs_rc need_sync(cs_journeys_t *js, cs_err_t *err)
{
    return js->synced ? CS_OK
                      : cs_errf(err, CS_ERR_INTERNAL, "journeys: cs_journeys_sync first");
}

cs_rc cs_journeys_process_events(cs_journeys_t *js, cs_store_t *s, size_t max,
                                 cs_journeys_stats_t *st, cs_err_t *err)
{
    cs_rc rc = need_sync(js, err);
    if (rc)
        return rc;
    pass_t p;
    pass_init(&p, js, s, st, err);
    int64_t cursor;
    if ((rc = cs_store_call(s, cursor_get, CURSOR, &cursor, err)) && rc != CS_ERR_NOTFOUND)
        return rc;
    /* only the types that start a run or concern one, or bring such */
    uint32_t types = js->interest | js->triggers;
    types |= bringers(types);
    ev_pass_t e = { &p, cursor };
    int64_t examined;
    if ((rc = cs_store_call(s, events_after, cursor, max, types ? types : 1u, each_event, &e,
                            &examined, err)))
        return rc;
    if (examined != cursor)
        rc = cs_store_call(s, cursor_set, CURSOR, examined, err);
    st->seq = examined;
    return rc;
}

cs_rc cs_journeys_fire_due(cs_journeys_t *js, cs_store_t *s, size_t max, cs_journeys_stats_t *st,
                           cs_err_t *err)
{
    cs_rc rc = need_sync(js, err);
    if (rc)
        return rc;
    pass_t p;
    pass_init(&p, js, s, st, err);
    cs_timer_t batch[TIMER_BATCH];
    size_t left = max;
    while (left > 0 && !rc) {
        size_t n;
        size_t want = left < TIMER_BATCH ? left : TIMER_BATCH;
        if ((rc = cs_store_call(s, timers_due, p.now + 1, batch, want, &n, err)) || n == 0)
            break;
        /* the batch is deleted first: the steps below may arm new timers */
        if ((rc = cs_store_call(s, timers_delete_due, p.now + 1, n, err)))
            break;
        for (size_t i = 0; i < n && !rc; i++) {
            const cs_timer_t *t = &batch[i];
            st->timers++;
            cs_run_t run;
            rc = cs_store_call(s, run_get, t->run_id, &run, err);
            if (rc == CS_ERR_NOTFOUND) {
                rc = CS_OK;
                continue;
            }
            if (rc || run.status != CS_RUN_ACTIVE || run.gen != t->gen)
                continue; /* stale: the run moved on */
            if (run.wait_event) {
                /* a wait_for timed out */
                const cs_journey_t *j;
                if ((rc = program(js, s, run.journey, run.version, &j, err)))
                    break;
                run.wait_event = 0;
                run.pc = j->prog[run.pc].target;
            }
            rc = step(&p, &run, NULL);
        }
        left -= n;
    }
    return rc;
}

static void add_totals(cs_journeys_t *js, const cs_journeys_stats_t *d)
{
    pthread_mutex_lock(&js->mu);
    js->totals.events += d->events;
    js->totals.started += d->started;
    js->totals.timers += d->timers;
    js->totals.queued += d->queued;
    js->totals.skipped += d->skipped;
    js->totals.deferred += d->deferred;
    js->totals.exited += d->exited;
    js->totals.finished += d->finished;
    js->totals.codes += d->codes;
    js->totals.signals += d->signals;
    js->totals.webhooks += d->webhooks;
    if (d->seq)
        js->totals.seq = d->seq;
    pthread_mutex_unlock(&js->mu);
}

void cs_journeys_totals(cs_journeys_t *js, cs_journeys_stats_t *out)
{
    pthread_mutex_lock(&js->mu);
    *out = js->totals;
    pthread_mutex_unlock(&js->mu);
}

cs_rc cs_journeys_pass(cs_journeys_t *js, cs_store_t *s, size_t batch, cs_ms_t *next,
                       cs_err_t *err)
{
    cs_journeys_stats_t st;
    memset(&st, 0, sizeof st);
    *next = 0;
    cs_rc rc = cs_store_begin(s, err);
    if (rc)
        return rc;
    if (!(rc = cs_journeys_process_events(js, s, batch, &st, err)))
        rc = cs_journeys_fire_due(js, s, batch, &st, err);
    if (!rc)
        rc = cs_store_commit(s, err);
    if (rc) {
        cs_store_rollback(s);
        return rc;
    }
    add_totals(js, &st);
    if (st.events >= batch || st.timers >= batch || st.signals) {
        *next = cs_clock_now(js->clock);
        return CS_OK;
    }
    return cs_store_call(s, timer_next, next, err);
}

cs_rc cs_journeys_hook(cs_store_t *s, void *arg, cs_ms_t *next, cs_err_t *err)
{
    return cs_journeys_pass(arg, s, 1000, next, err);
}
