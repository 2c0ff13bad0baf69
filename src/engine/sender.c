/*
 * sender.c -- the outbox worker (see sender.h): claiming messages,
 * the hand-over's checks (consent, holds, quiet hours, channels to fall
 * back to), sending, recording outcomes, and its thread. Rendering is in
 * render.c, signed links in links.c.
 */
#include "sender_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../journey/journey.h"
#include "../lib/cs_json.h"
#include "../template/locale.h"

#define BATCH_MAX 64

/* ---- life cycle ---- */

static char *dup_or_empty(const char *s) { return cs_strdup(s ? s : ""); }

cs_rc cs_sender_new(cs_engine_t *e, cs_sender_opts_t *opts, cs_sender_t **out, cs_err_t *err)
{
    *out = NULL;
    cs_sender_t *s = cs_calloc(1, sizeof *s);
    if (!s || !(s->shop_name = dup_or_empty(opts->shop_name)) ||
        !(s->public_url = dup_or_empty(opts->public_url)) ||
        !(s->link_secret = dup_or_empty(opts->link_secret)) ||
        !(s->support_email = dup_or_empty(opts->support_email))) {
        if (s) {
            cs_free(s->shop_name);
            cs_free(s->public_url);
            cs_free(s->link_secret);
            cs_free(s->support_email);
            cs_free(s);
        }
        for (int i = 0; i < CS_OUT__CHANNELS; i++)
            cs_transport_close(&opts->transports[i]);
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    }
    s->engine = e;
    s->o = *opts;
    s->o.policy = NULL; /* borrowed by the caller: copied */
    if (opts->policy) {
        s->policy = *opts->policy;
        s->has_policy = true;
    } else {
        cs_policy_conf_default(&s->policy);
    }
    for (int i = 0; i < CS_OUT__CHANNELS; i++)
        opts->transports[i] = NULL; /* moved */
    if (!s->o.max_attempts)
        s->o.max_attempts = 8;
    if (!s->o.webhook_attempts)
        s->o.webhook_attempts = 20;
    if (!s->o.retry_base)
        s->o.retry_base = 60 * 1000;
    if (!s->o.retry_max)
        s->o.retry_max = 6 * 3600 * 1000;
    if (!s->o.lease)
        s->o.lease = 5 * 60 * 1000;
    if (!s->o.batch || s->o.batch > BATCH_MAX)
        s->o.batch = 32;
    cs_strlcpy(s->default_locale, opts->default_locale ? opts->default_locale : "de",
               sizeof s->default_locale);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    *out = s;
    return CS_OK;
}

void cs_sender_poke(cs_sender_t *s)
{
    pthread_mutex_lock(&s->mu);
    s->poked = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void cs_sender_stats(cs_sender_t *s, cs_sender_stats_t *out)
{
    out->sent = atomic_load(&s->st_sent);
    out->retried = atomic_load(&s->st_retried);
    out->failed = atomic_load(&s->st_failed);
    out->suppressed = atomic_load(&s->st_suppressed);
    out->render_errors = atomic_load(&s->st_render);
}

/* ---- claiming and recording (writer tasks) ---- */

/* Where a message the sender moves to another channel goes, or the
 * address a hand-over went to (the result's recipient and fallback point
 * here). */
typedef struct move_buf {
    char to[256];
    char rest[32];
} move_buf_t;

typedef struct claim_task {
    cs_sender_t *s;
    cs_outmsg_t msgs[BATCH_MAX];
    size_t n;
    cs_out_result_t res[BATCH_MAX];
    char reasons[BATCH_MAX][256];
    char refs[BATCH_MAX][128];
    move_buf_t moves[BATCH_MAX];
    cs_ms_t answered[BATCH_MAX]; /* when the provider answered its hand-over (0 = none) */
    size_t rec_from, rec_to; /* the results record_fn writes */
    size_t applied;          /* early statuses record_fn turned into events */
    cs_err_t err;
} claim_task_t;

static cs_rc claim_fn(cs_store_t *st, void *arg)
{
    claim_task_t *t = arg;
    cs_ms_t now = cs_clock_now(cs_engine_clock(t->s->engine));
    cs_rc rc = cs_store_begin(st, &t->err);
    if (rc)
        return rc;
    if ((rc = cs_store_call(st, outbox_claim, now, now + t->s->o.lease, t->msgs, t->s->o.batch,
                            &t->n, &t->err)) ||
        (rc = cs_store_commit(st, &t->err))) {
        cs_store_rollback(st);
        t->n = 0;
    }
    return rc;
}

/* m's status as a message.status event "cb-CHANNEL-MESSAGE-STATUS" from
 * "FROM-CHANNEL" (*out owned by the caller). */
static cs_rc status_event(const cs_outmsg_t *m, const char *from, int status, const char *detail,
                          cs_ms_t at, cs_event_t **out, cs_err_t *err)
{
    const char *ch = cs_out_channel_name(m->channel);
    char eid[CS_ID_MAX + 1], mid[32], ts[40], src[48];
    *out = NULL;
    snprintf(eid, sizeof eid, "cb-%s-%lld-%s", ch, (long long)m->id,
             cs_msg_status_name((cs_msg_status_t)status));
    snprintf(mid, sizeof mid, "%lld", (long long)m->id);
    snprintf(src, sizeof src, "%s-%s", from, ch);
    cs_time_format(at, ts, sizeof ts);
    json_t *ev = json_pack("{s:s,s:s,s:s,s:s,s:{s:s,s:s,s:s,s:s}}", "event_id", eid, "type",
                           "message.status", "occurred_at", ts, "source", src, "data",
                           "message_id", mid, "status",
                           cs_msg_status_name((cs_msg_status_t)status), "channel", ch,
                           "customer_id", m->customer_id);
    if (ev && detail && *detail &&
        json_object_set_new(json_object_get(ev, "data"), "detail", json_string(detail))) {
        json_decref(ev);
        ev = NULL;
    }
    return cs_event_compose(ev, out, err);
}

cs_rc cs_sender_status_event(const cs_outmsg_t *m, int status, const char *detail, cs_ms_t at,
                             cs_event_t **out, cs_err_t *err)
{
    return status_event(m, "callback", status, detail, at, out, err);
}

/* Statuses the provider reported for a reference before it was recorded
 * here (its callback was faster than this write) become message.status
 * events now, in the transaction that records the reference. *applied
 * counts them. */
static cs_rc apply_early(cs_sender_t *s, cs_store_t *st, const cs_outmsg_t *m, const char *ref,
                         size_t *applied, cs_err_t *err)
{
    cs_early_status_t early[CS_MSG__COUNT];
    size_t n = 0;
    cs_ms_t now = cs_clock_now(cs_engine_clock(s->engine));
    cs_rc rc = cs_store_call(st, early_status_take, m->channel, ref, early, CS_ARRAY_LEN(early),
                             &n, err);
    for (size_t i = 0; i < n && !rc; i++) {
        cs_event_t *ev = NULL;
        cs_ingest_outcome_t outcome;
        int64_t seq;
        if (!(rc = cs_sender_status_event(m, early[i].status, early[i].detail,
                                          early[i].occurred_at, &ev, err)))
            rc = cs_store_ingest(st, ev, now, &outcome, &seq, err);
        cs_event_free(&ev);
        if (!rc && outcome != CS_INGEST_DUPLICATE)
            (*applied)++;
    }
    return rc;
}

/* A WhatsApp hand-over the Cloud API refused with 131050 (the customer
 * stopped the shop's marketing in WhatsApp; http_provider.c gives it the
 * status callback's detail) is the customer's refusal of WhatsApp
 * marketing, as that status is: a `failed` message.status event at the
 * answer's time, which the store folds as the callback's (the event id is
 * the one a callback's failure of the message would have). Recorded in
 * the transaction that records the outcome, so the two are kept or lost
 * together -- and a message whose outcome is lost is handed over again,
 * to be refused again. *applied counts it. */
static cs_rc apply_refusal(cs_store_t *st, const cs_outmsg_t *m, const cs_out_result_t *res,
                           cs_ms_t answered, cs_ms_t now, size_t *applied, cs_err_t *err)
{
    if (m->channel != CS_CHANNEL_WHATSAPP || !res->handed || res->status != CS_OUT_FAILED ||
        !answered || !cs_msg_stops_wa_marketing(CS_MSG_FAILED, "whatsapp", res->reason))
        return CS_OK;
    cs_event_t *ev = NULL;
    cs_ingest_outcome_t outcome;
    int64_t seq;
    cs_rc rc = status_event(m, "send", CS_MSG_FAILED, res->reason, answered, &ev, err);
    if (!rc)
        rc = cs_store_ingest(st, ev, now, &outcome, &seq, err);
    cs_event_free(&ev);
    if (!rc && outcome != CS_INGEST_DUPLICATE)
        (*applied)++;
    return rc;
}

/* Outcomes are recorded relaxed: on the embedded store a killed daemon
 * loses none of them, and a power failure at worst the last few -- whose
 * messages are then handed over again with the same idempotency key
 * (Message-ID, provider idempotency header), never lost. The statuses
 * kept for a reference go with the transaction that records it: lost
 * with it, they are still kept. */
static cs_rc record_fn(cs_store_t *st, void *arg)
{
    claim_task_t *t = arg;
    cs_rc rc = cs_store_begin_relaxed(st, &t->err);
    t->applied = 0;
    if (rc)
        return rc;
    for (size_t i = t->rec_from; i < t->rec_to && !rc; i++) {
        rc = cs_store_call(st, outbox_result, &t->res[i], &t->err);
        /* only SMS and WhatsApp statuses are kept early (callbacks.c): an
         * email's reference is not looked for */
        if (!rc && t->res[i].provider_ref &&
            (t->msgs[i].channel == CS_CHANNEL_SMS || t->msgs[i].channel == CS_CHANNEL_WHATSAPP))
            rc = apply_early(t->s, st, &t->msgs[i], t->res[i].provider_ref, &t->applied,
                             &t->err);
        if (!rc)
            rc = apply_refusal(st, &t->msgs[i], &t->res[i], t->answered[i],
                               cs_clock_now(cs_engine_clock(t->s->engine)), &t->applied,
                               &t->err);
    }
    if (rc || (rc = cs_store_commit(st, &t->err))) {
        cs_store_rollback(st);
        t->applied = 0;
    }
    return rc;
}

/* Quiet hours in the customer's zone (else the shop's) at the hand-over:
 * a message queued before them and sent later (a retry, a rate-limited
 * backlog) waits for their end like one the journeys defer. */
static bool quiet_now(const cs_sender_t *s, const cs_outmsg_t *m, json_t *cu, cs_ms_t now,
                      cs_ms_t *end)
{
    if (!s->has_policy)
        return false;
    const cs_tz_t *stz = s->o.shop_tz ? s->o.shop_tz : cs_tz_get_or_utc(NULL);
    const cs_tz_t *tz = cs_tz_get_or(json_string_value(json_object_get(cu, "timezone")), stz);
    return cs_policy_quiet(&s->policy, (cs_msg_class_t)m->cls, tz, now, end);
}

/* The policy's holds again at the hand-over (cs_policy_hold): an ask or
 * marketing message waiting in the outbox (a retry, a backlog, quiet
 * hours) does not go out into a ticket opened, or a delivery gone late,
 * since it was queued. The hold counts from when the message was queued,
 * or requeued by an operator: hold_max after that it is dropped, as it is
 * at most that late. */
static cs_policy_result_t held(const cs_sender_t *s, const cs_outmsg_t *m, const ctx_task_t *c,
                               cs_ms_t now)
{
    cs_policy_result_t none = { CS_VERDICT_SEND, 0, NULL };
    if (!s->has_policy)
        return none;
    const cs_tz_t *stz = s->o.shop_tz ? s->o.shop_tz : cs_tz_get_or_utc(NULL);
    cs_policy_input_t in = {
        .cls = (cs_msg_class_t)m->cls,
        .channel = (cs_channel_t)m->channel,
        .now = now,
        .delivery_late = cs_journeys_delivery_late(stz, c->order, c->shipment, now) ||
                         c->other_late,
        .ticket_open = c->ticket_open,
        .ticket_at = c->ticket_at,
        .refund_pending = json_is_true(json_object_get(c->order, "refund_pending")),
        .held_since = m->requeued_at > m->created_at ? m->requeued_at : m->created_at,
    };
    return cs_policy_hold(&s->policy, &in);
}

/* Consent, an unsubscribe and the address may have changed since the
 * message was queued: the contact policy's own rules of the channel
 * (cs_policy_channel, rules 0 to 3) read again from the customer's
 * contact row, as the journeys read it when they queued the message --
 * not a copy of them here. Its channel is configured (the caller checked).
 *
 * *to gets where the message goes: on a first hand-over, the customer's
 * address on its channel now (a customer who changed their email since
 * gets it at the new one); on a retry (handed_at: an earlier hand-over,
 * whose outcome was recorded, may have reached the customer), the address
 * that hand-over went to, as recorded: the repeat is the same request
 * under the same idempotency key,
 * which the provider can then recognise, and is not sent to a second
 * address. An address removed since stops a retry too (as a consent
 * withdrawn does): the repeat goes where it went, or nowhere. The bounces
 * that stop a message are those of the address it goes to: the
 * customer's (since the channel last started over) when that is the one
 * they have, else those of the messages that went to the old one since
 * this one was queued (ctx_fn), not the new address's. */
static const char *suppressed(const cs_outmsg_t *m, const ctx_task_t *c, cs_ms_t now,
                              const char **to)
{
    *to = m->recipient;
    if (!c->customer || !c->has_contact)
        return "unknown_customer";
    cs_policy_input_t pi = { .cls = (cs_msg_class_t)m->cls, .now = now };
    const char *addr = cs_journeys_contact_input(&c->who, (cs_channel_t)m->channel, 0, &pi);
    if (c->to_old)
        pi.bounced = c->old_bounced; /* a retry: the old address's */
    const char *refused = cs_policy_channel(&pi);
    if (!refused) {
        if (!m->handed_at)
            *to = addr;
        return NULL;
    }
    return strcmp(refused, "bounced") == 0        ? "bounced_before_send"
           : strcmp(refused, "no_address") == 0   ? "no_address_before_send"
           : strcmp(refused, "unsubscribed") == 0 ? "unsubscribed_before_send"
                                                  : "consent_withdrawn_before_send";
}

/* A message whose channel is refused at the hand-over for the channel's
 * own sake (`why`: its consent withdrawn, its address bounced or removed,
 * an unsubscribe that holds on it since it was queued, the channel
 * switched off since) goes by the next channel its send listed that the
 * contact policy lets carry it now (cs_policy_channel, as the journeys
 * chose: configured, not bounced, an address, the consent, no unsubscribe
 * holding on it), to the customer's address there. It is not handed over
 * in this claim: the move is recorded first -- the same row, so the same
 * idempotency key -- and the next claim takes it on the new channel,
 * through this hand-over's checks again (consent, holds, quiet hours). A
 * message already handed over on its channel (a retry) is not moved: that
 * hand-over may have reached the customer; a claim whose outcome never came
 * (its sender died) is not one. Returns false when there is
 * nothing to move to (the message is skipped with `why`). */
static bool fall_back(const cs_sender_t *s, const cs_outmsg_t *m, const ctx_task_t *c,
                      const char *why, cs_ms_t now, cs_out_result_t *res, char *reason,
                      size_t rsize, move_buf_t *mv)
{
    if (!c->has_contact || m->handed_at || m->channel >= CS_CHANNEL__COUNT ||
        (strcmp(why, "consent_withdrawn_before_send") != 0 &&
         strcmp(why, "bounced_before_send") != 0 &&
         strcmp(why, "no_address_before_send") != 0 &&
         strcmp(why, "unsubscribed_before_send") != 0 && strcmp(why, "channel_off") != 0))
        return false;
    unsigned off = 0;
    for (int ch = 0; ch < CS_CHANNEL__COUNT; ch++)
        if (!s->o.transports[ch])
            off |= 1u << ch;
    const char *p = m->fallback;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char name[16];
        cs_strlcpy(name, p, n < sizeof name ? n + 1 : sizeof name);
        p += n + (comma ? 1 : 0);
        int ch = cs_channel_from_name(name);
        if (ch < 0)
            continue;
        cs_policy_input_t pi = { .cls = (cs_msg_class_t)m->cls, .now = now };
        const char *addr = cs_journeys_contact_input(&c->who, (cs_channel_t)ch, off, &pi);
        if (cs_policy_channel(&pi))
            continue;
        cs_strlcpy(mv->to, addr, sizeof mv->to);
        cs_strlcpy(mv->rest, p, sizeof mv->rest);
        res->move = true;
        res->status = CS_OUT_QUEUED;
        res->untried = true;
        res->next_at = now;
        res->channel = ch;
        res->recipient = mv->to;
        res->fallback = mv->rest[0] ? mv->rest : NULL;
        res->lease_until = m->lease_until; /* only while the claim is still this one */
        snprintf(reason, rsize, "%s on %s", why, cs_channel_name((cs_channel_t)m->channel));
        res->reason = reason;
        return true;
    }
    return false;
}

static void rate_wait(cs_sender_t *s, int ch)
{
    double rate = s->o.rate[ch];
    if (rate <= 0)
        return;
    uint64_t now = cs_mono_ns();
    if (s->next_ns[ch] > now) {
        uint64_t d = s->next_ns[ch] - now;
        struct timespec ts = { (time_t)(d / 1000000000ULL), (long)(d % 1000000000ULL) };
        nanosleep(&ts, NULL);
        now = s->next_ns[ch];
    }
    s->next_ns[ch] = now + (uint64_t)(1e9 / rate);
}

static cs_ms_t backoff(cs_sender_t *s, int attempts, cs_ms_t now)
{
    double d = (double)s->o.retry_base * pow(2.0, attempts > 1 ? attempts - 1 : 0);
    if (d > (double)s->o.retry_max)
        d = (double)s->o.retry_max;
    uint32_t r = 0;
    cs_random_bytes(&r, sizeof r);
    double jitter = 0.8 + 0.4 * ((double)r / 4294967295.0); /* +-20% */
    return now + (cs_ms_t)(d * jitter);
}

/* Hand-overs a temporarily failing message gets: a webhook goes to the
 * shop's own system, whose outage may last a day or two, so it has its own
 * (longer) count. */
static int attempts_for(const cs_sender_t *s, const cs_outmsg_t *m)
{
    return m->channel == CS_OUT_WEBHOOK ? s->o.webhook_attempts : s->o.max_attempts;
}

/* The outcome of a hand-over: sent, retried later, or failed for good.
 * *answered gets the time of the provider's answer. */
static void record_send(cs_sender_t *s, const cs_outmsg_t *m, const cs_send_result_t *sr_,
                        cs_out_result_t *res, char *reason, size_t rsize, char *ref,
                        size_t refsize, cs_ms_t *answered)
{
    const cs_send_result_t sr = *sr_;
    cs_ms_t now = cs_clock_now(cs_engine_clock(s->engine));
    *answered = now;
    res->handed = true;
    cs_strlcpy(ref, sr.provider_ref, refsize);
    res->provider_ref = ref[0] ? ref : NULL;
    if (sr.status == CS_SEND_OK) {
        res->status = CS_OUT_SENT;
        res->sent_at = now;
        atomic_fetch_add(&s->st_sent, 1);
    } else if (sr.status == CS_SEND_RETRY && m->attempts < attempts_for(s, m)) {
        res->status = CS_OUT_QUEUED;
        res->next_at = backoff(s, m->attempts, now);
        snprintf(reason, rsize, "retry %d: %.200s", m->attempts, sr.detail);
        res->reason = reason;
        atomic_fetch_add(&s->st_retried, 1);
    } else {
        res->status = CS_OUT_FAILED;
        snprintf(reason, rsize, "%s%.230s", sr.status == CS_SEND_RETRY ? "gave up: " : "",
                 sr.detail);
        res->reason = reason;
        atomic_fetch_add(&s->st_failed, 1);
    }
}

/* A webhook's body: the journey's event with the raw state it concerns. */
static char *webhook_body(const cs_outmsg_t *m, ctx_task_t *c)
{
    char ts[40];
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:O,s:O,s:O}", "id", m->idem_key, "event",
                          m->template_name, "journey", m->journey, "created_at",
                          cs_time_format(m->created_at, ts, sizeof ts), "customer",
                          c->customer ? c->customer : json_null(), "order",
                          c->order ? c->order : json_null(), "shipment",
                          c->shipment ? c->shipment : json_null());
    if (o && c->has_discount)
        json_object_set_new(o, "discount", cs_discount_json(&c->discount));
    char *text = o ? cs_json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    char *out = text ? cs_strdup(text) : NULL; /* cs_free-able like the rendered parts */
    free(text);
    return out;
}

/* Is the claim still this sender's for a whole hand-over? Its lease was
 * taken for the batch; one that ran out (slow servers, rate limits) may be
 * another node's claim by now, and sending it as well would hand it over
 * twice. A fifth of the lease is kept for the hand-over itself (the
 * transports' timeouts are 15 and 30 s of the default 5 minutes). */
static bool claim_holds(cs_sender_t *s, const cs_outmsg_t *m)
{
    cs_ms_t now = cs_clock_now(cs_engine_clock(s->engine));
    return !m->lease_until || now + s->o.lease / 5 < m->lease_until;
}

/* A message whose store reads fail is queued again with the reason
 * "store since TIME: ...", TIME the first of those failures in a row. */
#define STORE_SINCE "store since "

/* Since when the reads of a message have failed in a row: the time its
 * last reason names, else now (its last outcome was another). */
static cs_ms_t store_failing_since(const char *last_reason, cs_ms_t now)
{
    size_t n = strlen(STORE_SINCE);
    if (strncmp(last_reason, STORE_SINCE, n) != 0)
        return now;
    const char *end = strstr(last_reason + n, ": ");
    char ts[40];
    cs_ms_t t;
    if (!end || (size_t)(end - last_reason) - n >= sizeof ts)
        return now;
    memcpy(ts, last_reason + n, (size_t)(end - last_reason) - n);
    ts[(size_t)(end - last_reason) - n] = '\0';
    return cs_time_parse(ts, &t) && t <= now ? t : now;
}

/* How long a message's store reads may fail in a row before it fails: as
 * long as the retry schedule gives a message whose channel keeps failing
 * (send_attempts hand-overs, retry_base doubling up to retry_max, without
 * the jitter; about 2 hours by default). A shorter outage costs nothing. */
static cs_ms_t store_patience(const cs_sender_t *s)
{
    cs_ms_t total = 0, d = s->o.retry_base;
    for (int a = 1; a < s->o.max_attempts; a++) {
        if (d > s->o.retry_max)
            d = s->o.retry_max;
        total += d;
        d *= 2;
    }
    return total;
}

/* Returns false when the message was left alone (its claim ran out): not
 * sent, no outcome; it goes back to the queue if the claim is still ours.
 * *answered gets the time the provider answered a hand-over (0 = none). */
static bool handle(cs_sender_t *s, const cs_outmsg_t *m, cs_out_result_t *res, char *reason,
                   size_t rsize, char *ref, size_t refsize, move_buf_t *mv, cs_ms_t *answered)
{
    bool handed = true;
    cs_ms_t now = cs_clock_now(cs_engine_clock(s->engine));
    ctx_task_t c;
    memset(&c, 0, sizeof c);
    c.m = m;
    c.policy = &s->policy;
    c.now = now;
    char *subject = NULL, *html = NULL, *text = NULL;
    cs_wa_rendered_t wa; /* a WhatsApp template's parameters, when it goes as one */
    const cs_wa_template_msg_t *wa_msg = NULL;
    memset(&wa, 0, sizeof wa);
    cs_err_t err;
    cs_err_clear(&err);
    res->id = m->id;
    res->at = now;
    res->reason = NULL;
    res->provider_ref = NULL;
    res->untried = false;
    res->lease_until = 0;
    res->move = false;
    res->handed = false;
    res->recipient = NULL;
    *answered = 0;
    reason[0] = ref[0] = '\0';
    cs_transport_t *t = (unsigned)m->channel < CS_OUT__CHANNELS ? s->o.transports[m->channel]
                                                                : NULL;
    if (!t && !m->fallback[0]) {
        res->status = CS_OUT_FAILED;
        snprintf(reason, rsize, "channel_off");
        res->reason = reason;
        atomic_fetch_add(&s->st_failed, 1);
        return handed;
    }
    /* (a store or memory failure before the hand-over is untried: only a
     * hand-over counts against send_attempts) */
    if (cs__sender_read_ctx(s, &c)) {
        /* the store will be back; but a read that keeps failing (a row
         * that cannot be decoded) fails the message once it has failed
         * for store_patience, as one whose channel keeps failing does */
        cs_ms_t since = store_failing_since(m->reason, now);
        const char *why = c.err.msg; /* (the store's own errors say "store: ") */
        if (strncmp(why, "store: ", 7) == 0)
            why += 7;
        if (now - since >= store_patience(s)) {
            res->status = CS_OUT_FAILED;
            snprintf(reason, rsize, "store: %.200s", why);
            atomic_fetch_add(&s->st_failed, 1);
        } else {
            char ts[40];
            res->status = CS_OUT_QUEUED;
            res->next_at = backoff(s, 1, now);
            res->untried = true;
            snprintf(reason, rsize, "%s%s: %.200s", STORE_SINCE,
                     cs_time_format(since, ts, sizeof ts), why);
        }
        res->reason = reason;
        goto out; /* (what was read before the failure is released there) */
    }
    /* a message to the customer about an order that an edit gave to
     * another customer since (docs/events.md) would show them that
     * customer's order: not handed over, on no channel, and no attempt.
     * (A webhook goes to the shop's own system, whose body names the
     * order's customer: it goes.) */
    if (m->channel < CS_CHANNEL__COUNT && m->order_id[0] &&
        cs_journeys_order_given_away(c.order, m->customer_id)) {
        res->status = CS_OUT_SKIPPED;
        res->untried = true;
        snprintf(reason, rsize, "%s", CS_ORDER_GIVEN_AWAY);
        res->reason = reason;
        atomic_fetch_add(&s->st_suppressed, 1);
        goto out;
    }
    if (!t) {
        /* its channel was switched off since it was queued (a restart
         * without that channel's settings): the next one its send listed,
         * as for a consent withdrawn, else it fails */
        if (fall_back(s, m, &c, "channel_off", now, res, reason, rsize, mv))
            goto out;
        res->status = CS_OUT_FAILED;
        snprintf(reason, rsize, "channel_off");
        res->reason = reason;
        atomic_fetch_add(&s->st_failed, 1);
        goto out;
    }
    if (m->channel == CS_OUT_WEBHOOK) {
        if (!(text = webhook_body(m, &c))) {
            res->status = CS_OUT_QUEUED;
            res->next_at = backoff(s, 1, now);
            res->untried = true;
            snprintf(reason, rsize, "out of memory");
            res->reason = reason;
            goto out;
        }
        cs_mail_t hook = { .channel = CS_CHANNEL_EMAIL, .to = m->recipient,
                           .subject = m->template_name, .text = text,
                           .idem_key = m->idem_key, .date = now };
        cs_send_result_t sr;
        if (!(handed = claim_holds(s, m)))
            goto out;
        cs_transport_send(t, &hook, &sr);
        record_send(s, m, &sr, res, reason, rsize, ref, refsize, answered);
        goto out;
    }
    const char *to = m->recipient;
    const char *why = c.withdrawn       ? "no_longer_at_risk"
                      : c.superseded    ? "superseded"
                      : c.delivery_over ? "no_longer_out_for_delivery"
                      : c.not_on_its_way ? "no_longer_on_its_way"
                                        : suppressed(m, &c, now, &to);
    if (why && fall_back(s, m, &c, why, now, res, reason, rsize, mv))
        goto out;
    if (why) {
        res->status = CS_OUT_SKIPPED;
        snprintf(reason, rsize, "%s", why);
        res->reason = reason;
        atomic_fetch_add(&s->st_suppressed, 1);
        goto out;
    }
    cs_policy_result_t hold = held(s, m, &c, now);
    if (hold.verdict == CS_VERDICT_SKIP) {
        res->status = CS_OUT_SKIPPED;
        snprintf(reason, rsize, "%s_before_send", hold.reason);
        res->reason = reason;
        atomic_fetch_add(&s->st_suppressed, 1);
        goto out;
    }
    if (hold.verdict == CS_VERDICT_DEFER) { /* looked at again; no attempt */
        res->status = CS_OUT_QUEUED;
        res->next_at = hold.until;
        res->untried = true;
        snprintf(reason, rsize, "%s", hold.reason);
        res->reason = reason;
        goto out;
    }
    cs_ms_t end;
    if (quiet_now(s, m, c.customer, now, &end)) {
        res->status = CS_OUT_QUEUED;
        res->next_at = end;
        res->untried = true;
        snprintf(reason, rsize, "quiet_hours");
        res->reason = reason;
        goto out;
    }
    const char *lang = cs_locale_lang(m->locale[0] ? m->locale : s->default_locale);
    json_t *ctx = cs__sender_message_ctx(s, m, &c, lang);
    cs_rc rc = ctx ? CS_OK : cs_errf(&err, CS_ERR_NOMEM, "out of memory building the context");
    const char *tmpl = m->template_name;
    const cs_wa_tpl_t *wt = NULL;
    const char *tlang =
        cs__sender_template_lang(s, tmpl, lang, m->channel == CS_CHANNEL_EMAIL);
    if (!rc && m->channel == CS_CHANNEL_EMAIL) {
        if (!(rc = cs__sender_render_part(s, tmpl, tlang, "subject", false, ctx, &subject,
                                          &err)) &&
            !(rc = cs__sender_render_part(s, tmpl, tlang, "txt", false, ctx, &text, &err)) &&
            !(rc = cs__sender_add_footer(s, tlang, ctx, &text, &err))) {
            rc = cs__sender_render_part(s, tmpl, tlang, "html", true, ctx, &html, &err);
            if (rc == CS_ERR_NOTFOUND) /* a text-only email is fine */
                rc = CS_OK;
        }
    } else if (!rc && (wt = m->channel == CS_CHANNEL_WHATSAPP
                                ? cs_wamap_get(s->wamap, tmpl, tlang)
                                : NULL)) {
        /* the approved template it is mapped to: a text would reach the
         * customer only inside WhatsApp's 24-hour window */
        if (!(rc = cs__sender_render_wa(s, wt, ctx, &wa, &err)))
            wa_msg = &wa.msg;
    } else if (!rc) {
        rc = cs__sender_render_part(s, tmpl, tlang, "sms", false, ctx, &text, &err);
        if (rc == CS_ERR_NOTFOUND)
            rc = cs__sender_render_part(s, tmpl, tlang, "txt", false, ctx, &text, &err);
        if (!rc && m->channel == CS_CHANNEL_SMS)
            cs__sender_sms_spaces(text);
    }
    char tref[CS_JID_MAX + 32];
    snprintf(tref, sizeof tref, "%s.%s", tmpl, tlang);
    char unsub[1200] = "";
    json_t *u = json_object_get(json_object_get(ctx, "links"), "unsubscribe");
    if (json_is_string(u))
        cs_strlcpy(unsub, json_string_value(u), sizeof unsub);
    json_decref(ctx);
    if (rc) {
        res->status = CS_OUT_FAILED;
        snprintf(reason, rsize, "render: %.230s", err.msg);
        res->reason = reason;
        atomic_fetch_add(&s->st_render, 1);
        atomic_fetch_add(&s->st_failed, 1);
        goto out;
    }
    cs_mail_t mail = {
        .channel = (cs_channel_t)m->channel,
        .to = to,
        .to_name = json_string_value(json_object_get(c.customer, "name")),
        .subject = subject,
        .html = html,
        .text = text,
        .idem_key = m->idem_key,
        .unsubscribe_url =
            unsub[0] && cs_policy_unsubscribable((cs_msg_class_t)m->cls) ? unsub : NULL,
        .date = now,
        .wa_template = wa_msg,
        .template_ref = tref,
    };
    cs_send_result_t sr;
    rate_wait(s, m->channel);
    if (!(handed = claim_holds(s, m)))
        goto out;
    cs_transport_send(t, &mail, &sr);
    record_send(s, m, &sr, res, reason, rsize, ref, refsize, answered);
    /* the address it went to, for the messages view and a retry */
    cs_strlcpy(mv->to, to, sizeof mv->to);
    res->recipient = mv->to;
out:
    cs_free(subject);
    cs_free(html);
    cs_free(text);
    cs__sender_wa_free(&wa);
    json_decref(c.customer);
    json_decref(c.order);
    json_decref(c.shipment);
    return handed;
}

/* Claim i goes back to the queue at now, untried: its attempt and its
 * last reason given back, and only while the claim is still this one. */
static void give_back(claim_task_t *t, size_t i, cs_ms_t now)
{
    cs_out_result_t *r = &t->res[i];
    r->id = t->msgs[i].id;
    r->status = CS_OUT_QUEUED;
    r->next_at = now;
    r->sent_at = 0;
    r->reason = t->msgs[i].reason[0] ? t->msgs[i].reason : NULL;
    r->provider_ref = NULL;
    r->untried = true;
    r->lease_until = t->msgs[i].lease_until;
    r->move = false;
    r->handed = false;
    r->recipient = NULL;
}

/* Recording claim i's outcome failed (the store is down): the batch stops
 * there, and the claims after it, not handed over, go back to the queue at
 * once with their attempts (left claimed, they waited for their lease and
 * then counted one more). So does claim i when it was not handed over
 * either; one that was stays claimed, and is handed over again with the
 * same key when its lease runs out. When the store fails this write too,
 * they wait for their lease as before. */
static void give_back_rest(cs_sender_t *s, claim_task_t *t, size_t i)
{
    cs_ms_t now = cs_clock_now(cs_engine_clock(s->engine));
    size_t from = t->res[i].status == CS_OUT_QUEUED && t->res[i].untried ? i : i + 1;
    for (size_t j = i + 1; j < t->n; j++)
        give_back(t, j, now);
    if (from >= t->n)
        return;
    t->rec_from = from;
    t->rec_to = t->n;
    if (cs_engine_with_writer(s->engine, record_fn, t) != CS_OK)
        cs_warn("sender: %zu claimed messages wait for their lease: %s", t->n - from,
                t->err.msg);
}

cs_rc cs_sender_run_once(cs_sender_t *s, size_t *handled, cs_err_t *err)
{
    claim_task_t *t = cs_calloc(1, sizeof *t);
    *handled = 0;
    if (!t)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    t->s = s;
    cs_err_clear(&t->err);
    cs_rc rc = cs_engine_with_writer(s->engine, claim_fn, t);
    if (rc) {
        if (err)
            *err = t->err;
        cs_free(t);
        return rc;
    }
    /* each outcome is recorded as soon as it is known: a crash can then
     * repeat at most the one hand-over that was in flight */
    for (size_t i = 0; i < t->n && !rc; i++) {
        if (!handle(s, &t->msgs[i], &t->res[i], t->reasons[i], sizeof t->reasons[i],
                    t->refs[i], sizeof t->refs[i], &t->moves[i], &t->answered[i])) {
            /* its claim ran out: not ours to send; back to the queue with
             * its attempt given back, unless another claim has it now */
            give_back(t, i, cs_clock_now(cs_engine_clock(s->engine)));
        }
        t->rec_from = i;
        t->rec_to = i + 1;
        if ((rc = cs_engine_with_writer(s->engine, record_fn, t)) && err)
            *err = t->err;
        if (!rc && t->applied)
            cs_engine_poke(s->engine); /* the journeys read the new statuses */
        if (rc)
            give_back_rest(s, t, i);
    }
    *handled = t->n;
    cs_free(t);
    return rc;
}

/* ---- the thread ---- */

typedef struct next_task {
    cs_ms_t at;
    cs_err_t err;
} next_task_t;

static cs_rc next_fn(cs_store_t *st, void *arg)
{
    next_task_t *n = arg;
    return cs_store_call(st, outbox_next, &n->at, &n->err);
}

static void *sender_main(void *arg)
{
    cs_sender_t *s = arg;
    cs_thread_name("cs-sender");
    for (;;) {
        pthread_mutex_lock(&s->mu);
        bool stop = s->stop;
        s->poked = false;
        pthread_mutex_unlock(&s->mu);
        if (stop)
            break;
        size_t n = 0;
        cs_err_t err;
        cs_err_clear(&err);
        if (cs_sender_run_once(s, &n, &err) != CS_OK)
            cs_warn("sender: %s", err.msg);
        if (n > 0)
            continue;
        /* nothing due: sleep until the next queued message, a poke, or 1 s */
        next_task_t nt = { 0, { 0 } };
        cs_ms_t wait = 1000;
        if (cs_engine_with_writer(s->engine, next_fn, &nt) == CS_OK && nt.at) {
            cs_ms_t d = nt.at - cs_clock_now(cs_engine_clock(s->engine));
            if (d < wait)
                wait = d < 1 ? 1 : d;
        }
        struct timespec ts;
        cs_deadline_in(&ts, wait);
        pthread_mutex_lock(&s->mu);
        while (!s->stop && !s->poked) {
            if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT)
                break;
        }
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

typedef struct release_task {
    cs_sender_t *s;
    int64_t n;
    cs_err_t err;
} release_task_t;

static cs_rc release_fn(cs_store_t *st, void *arg)
{
    release_task_t *r = arg;
    cs_rc rc = cs_store_begin(st, &r->err);
    if (rc)
        return rc;
    if ((rc = cs_store_call(st, outbox_release, cs_clock_now(cs_engine_clock(r->s->engine)),
                            &r->n, &r->err)) ||
        (rc = cs_store_commit(st, &r->err)))
        cs_store_rollback(st);
    return rc;
}

cs_rc cs_sender_start(cs_sender_t *s, cs_err_t *err)
{
    /* messages in hand when this node last stopped are sent again (same key) */
    release_task_t rel = { s, 0, { 0 } };
    if (cs_engine_with_writer(s->engine, release_fn, &rel) != CS_OK) {
        if (err)
            *err = rel.err;
        return rel.err.rc ? rel.err.rc : CS_ERR_STORE;
    }
    if (rel.n > 0)
        cs_info("sender: %lld messages were being sent when the daemon stopped; sending them "
                "again with the same Message-ID / idempotency key",
                (long long)rel.n);
    if (pthread_create(&s->thread, NULL, sender_main, s) != 0)
        return cs_errf(err, CS_ERR_INTERNAL, "cannot start the sender thread");
    s->started = true;
    return CS_OK;
}

void cs_sender_free(cs_sender_t *s)
{
    if (!s)
        return;
    if (s->started) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    for (int i = 0; i < CS_OUT__CHANNELS; i++)
        cs_transport_close(&s->o.transports[i]);
    cs_wamap_free(&s->wamap);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    cs_free(s->shop_name);
    cs_free(s->public_url);
    cs_free(s->link_secret);
    cs_free(s->support_email);
    cs_free(s);
}
