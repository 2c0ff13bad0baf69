/*
 * policy.c -- the contact policy rules (see policy.h for their order).
 */
#include "policy.h"

void cs_policy_conf_default(cs_policy_conf_t *c)
{
    c->budget = 3;
    c->budget_window = 7 * CS_MS_PER_DAY;
    c->marketing_reserve = 1;
    c->quiet_start = 21 * 60;
    c->quiet_end = 8 * 60;
    c->quiet_exempt = 1u << CS_CLASS_TRANSACTIONAL; /* as conf.c's quiet_hours_exempt */
    c->ask_cooldown = 30 * CS_MS_PER_DAY;
    c->hold_max = 7 * CS_MS_PER_DAY;
    c->ticket_stale_after = 30 * CS_MS_PER_DAY;
    c->hold_retry = CS_MS_PER_DAY;
    c->address_wait = 30 * 60000LL;
}

bool cs_policy_budgeted(cs_msg_class_t cls)
{
    return cls == CS_CLASS_REASSURANCE || cls == CS_CLASS_ASK || cls == CS_CLASS_MARKETING;
}

bool cs_policy_unsubscribable(cs_msg_class_t cls)
{
    return cls != CS_CLASS_TRANSACTIONAL && cls != CS_CLASS_SERVICE;
}

bool cs_policy_is_marketing(cs_msg_class_t cls)
{
    return cls == CS_CLASS_ASK || cls == CS_CLASS_MARKETING;
}

static cs_policy_result_t result(cs_verdict_t v, cs_ms_t until, const char *why)
{
    cs_policy_result_t r = { v, until, why };
    return r;
}

cs_ms_t cs_next_local_time(const cs_tz_t *tz, cs_ms_t now, int hour, int minute,
                           bool business_day)
{
    if (!tz)
        tz = cs_tz_get_or_utc(NULL);
    cs_local_t l;
    cs_tz_to_local(tz, now, &l);
    for (int add = 0; add < 10; add++) {
        cs_local_t c = { l.year, l.month, l.day + add, hour, minute, 0, 0 };
        cs_ms_t t = cs_tz_from_local_on(tz, &c);
        if (t <= now) {
            /* a time that comes twice (clocks set back) is taken at its
             * first instant; past that, the second may be still to come */
            int32_t o1 = cs_tz_offset(tz, t), o2 = cs_tz_offset(tz, t + CS_MS_PER_DAY);
            cs_ms_t again = t + (cs_ms_t)(o1 - o2) * 1000;
            if (o2 >= o1 || again <= now || cs_tz_offset(tz, again) != o2)
                continue;
            t = again;
        }
        if (business_day) {
            cs_local_t chk;
            cs_tz_to_local(tz, t, &chk);
            if (chk.wday == 0 || chk.wday == 6)
                continue;
        }
        return t;
    }
    return now + CS_MS_PER_DAY; /* unreachable for valid input */
}

/* Inside quiet hours? Then *end is when they end. */
static bool quiet(const cs_policy_conf_t *c, const cs_tz_t *tz, cs_ms_t now, cs_ms_t *end)
{
    if (c->quiet_start == c->quiet_end)
        return false;
    cs_local_t l;
    cs_tz_to_local(tz, now, &l);
    int m = l.hour * 60 + l.min;
    bool in = c->quiet_start > c->quiet_end ? (m >= c->quiet_start || m < c->quiet_end)
                                            : (m >= c->quiet_start && m < c->quiet_end);
    if (in)
        *end = cs_next_local_time(tz, now, c->quiet_end / 60, c->quiet_end % 60, false);
    return in;
}

/* Rule 3: does an unsubscribe (or complaint) that holds on the channel
 * stop a message of this class? */
static bool unsubscribed(const cs_policy_input_t *in)
{
    return in->unsubscribed && cs_policy_unsubscribable(in->cls);
}

const char *cs_policy_channel(const cs_policy_input_t *in)
{
    if (in->channel_off)
        return "channel_off";
    if (in->bounced)
        return "bounced";
    if (!in->has_address)
        return "no_address";
    if (cs_policy_is_marketing(in->cls)) {
        if (in->marketing != CS_CONSENT_YES)
            return "no_consent";
    } else if (in->channel == CS_CHANNEL_EMAIL ? in->transactional == CS_CONSENT_NO
                                               : in->transactional != CS_CONSENT_YES) {
        return "no_consent";
    }
    if (unsubscribed(in))
        return "unsubscribed";
    return NULL;
}

cs_policy_result_t cs_policy_decide(const cs_policy_conf_t *c, const cs_policy_input_t *in)
{
    const cs_tz_t *tz = in->tz ? in->tz : cs_tz_get_or_utc(NULL);
    const char *refused = cs_policy_channel(in);

    if (refused)
        return result(CS_VERDICT_SKIP, 0, refused);

    cs_policy_result_t held = cs_policy_hold(c, in);
    if (held.verdict != CS_VERDICT_SEND)
        return held;

    if (in->cls == CS_CLASS_ASK) {
        if (in->order_asked)
            return result(CS_VERDICT_SKIP, 0, "ask_already_made_for_order");
        if (in->last_ask_at && in->now - in->last_ask_at < c->ask_cooldown)
            return result(CS_VERDICT_SKIP, 0, "ask_cooldown");
    }
    if (cs_policy_budgeted(in->cls)) {
        int limit = c->budget - (in->cls == CS_CLASS_MARKETING ? c->marketing_reserve : 0);
        if (in->budget_used >= limit)
            return result(CS_VERDICT_SKIP, 0, "budget");
    }
    cs_ms_t end;
    if (cs_policy_quiet(c, in->cls, tz, in->now, &end))
        return result(CS_VERDICT_DEFER, end, "quiet_hours");
    return result(CS_VERDICT_SEND, 0, NULL);
}

/* Does an open ticket hold messages? Not one left without an update for
 * ticket_stale_after: a helpdesk that never sends the closing update would
 * otherwise hold the customer's asks and marketing for good. */
bool cs_policy_ticket_holds(const cs_policy_conf_t *c, const cs_policy_input_t *in)
{
    if (!in->ticket_open)
        return false;
    return !c->ticket_stale_after || !in->ticket_at ||
           in->now - in->ticket_at < c->ticket_stale_after;
}

cs_policy_result_t cs_policy_hold(const cs_policy_conf_t *c, const cs_policy_input_t *in)
{
    bool marketing = cs_policy_is_marketing(in->cls);
    const char *hold = NULL;
    if (marketing && in->delivery_late)
        hold = "held_delivery_late";
    else if (marketing && cs_policy_ticket_holds(c, in))
        hold = "held_ticket_open";
    else if (in->cls == CS_CLASS_ASK && in->refund_pending)
        hold = "held_refund_pending";
    if (!hold)
        return result(CS_VERDICT_SEND, 0, NULL);
    cs_ms_t since = in->held_since ? in->held_since : in->now;
    if (in->now - since >= c->hold_max)
        return result(CS_VERDICT_SKIP, 0, hold);
    cs_ms_t next = in->now + c->hold_retry;
    if (next > since + c->hold_max)
        next = since + c->hold_max;
    return result(CS_VERDICT_DEFER, next, hold);
}

bool cs_policy_quiet(const cs_policy_conf_t *c, cs_msg_class_t cls, const cs_tz_t *tz,
                     cs_ms_t now, cs_ms_t *end)
{
    if ((unsigned)cls >= 32 || (c->quiet_exempt & (1u << cls)))
        return false;
    return quiet(c, tz ? tz : cs_tz_get_or_utc(NULL), now, end);
}
