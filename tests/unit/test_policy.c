/* test_policy.c -- the contact policy, rule by rule, and local times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "policy/policy.h"

static cs_ms_t at(const char *rfc3339)
{
    cs_ms_t t;
    assert_true(cs_time_parse(rfc3339, &t));
    return t;
}

/* A customer reachable by email with every consent, on a Wednesday noon in Berlin. */
static cs_policy_input_t base(cs_msg_class_t cls)
{
    cs_policy_input_t in;
    memset(&in, 0, sizeof in);
    in.cls = cls;
    in.channel = CS_CHANNEL_EMAIL;
    in.has_address = true;
    in.transactional = CS_CONSENT_YES;
    in.marketing = CS_CONSENT_YES;
    in.tz = cs_tz_get_or_utc("Europe/Berlin");
    in.now = at("2026-07-15T10:00:00Z"); /* 12:00 in Berlin */
    return in;
}

static void expect(const cs_policy_input_t *in, cs_verdict_t v, const char *reason)
{
    cs_policy_conf_t c;
    cs_policy_conf_default(&c);
    cs_policy_result_t r = cs_policy_decide(&c, in);
    assert_int_equal(r.verdict, v);
    if (reason)
        assert_string_equal(r.reason, reason);
    else
        assert_null(r.reason);
}

static void test_consent_and_address(void **state)
{
    (void)state;
    cs_policy_input_t in = base(CS_CLASS_TRANSACTIONAL);
    expect(&in, CS_VERDICT_SEND, NULL);
    in.has_address = false;
    expect(&in, CS_VERDICT_SKIP, "no_address");
    /* email transactional goes unless refused */
    in = base(CS_CLASS_TRANSACTIONAL);
    in.transactional = CS_CONSENT_UNSET;
    expect(&in, CS_VERDICT_SEND, NULL);
    in.transactional = CS_CONSENT_NO;
    expect(&in, CS_VERDICT_SKIP, "no_consent");
    /* SMS and WhatsApp need a recorded yes */
    in = base(CS_CLASS_TRANSACTIONAL);
    in.channel = CS_CHANNEL_SMS;
    in.transactional = CS_CONSENT_UNSET;
    expect(&in, CS_VERDICT_SKIP, "no_consent");
    in.transactional = CS_CONSENT_YES;
    expect(&in, CS_VERDICT_SEND, NULL);
    /* marketing and asks need marketing consent */
    in = base(CS_CLASS_MARKETING);
    in.marketing = CS_CONSENT_UNSET;
    expect(&in, CS_VERDICT_SKIP, "no_consent");
    in = base(CS_CLASS_ASK);
    in.marketing = CS_CONSENT_NO;
    expect(&in, CS_VERDICT_SKIP, "no_consent");
    /* reassurance is a service to the buyer: transactional consent */
    in = base(CS_CLASS_REASSURANCE);
    in.marketing = CS_CONSENT_NO;
    expect(&in, CS_VERDICT_SEND, NULL);
}

/* The channel's own rules, first the channel off, then a bounce, then
 * address, consent and an unsubscribe (it holds on each channel until
 * that channel starts over): what moves a send on to the next channel of
 * its list (the journeys at the step, the sender at the hand-over);
 * nothing else does. */
static void test_channel_rules(void **state)
{
    (void)state;
    cs_policy_input_t in = base(CS_CLASS_TRANSACTIONAL);
    assert_null(cs_policy_channel(&in));
    in.has_address = false;
    in.transactional = CS_CONSENT_NO;
    assert_string_equal(cs_policy_channel(&in), "no_address");
    in.bounced = true;
    assert_string_equal(cs_policy_channel(&in), "bounced");
    expect(&in, CS_VERDICT_SKIP, "bounced");
    in.channel_off = true;
    assert_string_equal(cs_policy_channel(&in), "channel_off");
    expect(&in, CS_VERDICT_SKIP, "channel_off");
    in = base(CS_CLASS_MARKETING);
    in.marketing = CS_CONSENT_UNSET;
    assert_string_equal(cs_policy_channel(&in), "no_consent");
    in = base(CS_CLASS_MARKETING);
    in.unsubscribed = true;
    assert_string_equal(cs_policy_channel(&in), "unsubscribed");
    expect(&in, CS_VERDICT_SKIP, "unsubscribed");
    in.marketing = CS_CONSENT_NO;
    assert_string_equal(cs_policy_channel(&in), "no_consent");
    in = base(CS_CLASS_SERVICE);
    in.unsubscribed = true;
    assert_null(cs_policy_channel(&in));
}

static void test_unsubscribed(void **state)
{
    (void)state;
    cs_msg_class_t goes[] = { CS_CLASS_TRANSACTIONAL, CS_CLASS_SERVICE };
    cs_msg_class_t stops[] = { CS_CLASS_REASSURANCE, CS_CLASS_ASK, CS_CLASS_MARKETING };
    for (size_t i = 0; i < 2; i++) {
        cs_policy_input_t in = base(goes[i]);
        in.unsubscribed = true;
        expect(&in, CS_VERDICT_SEND, NULL);
    }
    for (size_t i = 0; i < 3; i++) {
        cs_policy_input_t in = base(stops[i]);
        in.unsubscribed = true;
        expect(&in, CS_VERDICT_SKIP, "unsubscribed");
    }
}

static void test_holds(void **state)
{
    (void)state;
    cs_policy_conf_t c;
    cs_policy_conf_default(&c);
    cs_policy_input_t in = base(CS_CLASS_MARKETING);
    in.delivery_late = true;
    cs_policy_result_t r = cs_policy_decide(&c, &in);
    assert_int_equal(r.verdict, CS_VERDICT_DEFER);
    assert_string_equal(r.reason, "held_delivery_late");
    assert_int_equal(r.until, in.now + CS_MS_PER_DAY);
    /* still late after a week: dropped */
    in.held_since = in.now - 7 * CS_MS_PER_DAY;
    expect(&in, CS_VERDICT_SKIP, "held_delivery_late");
    /* a delay notice (service) is never held, nor is a reassurance */
    in = base(CS_CLASS_SERVICE);
    in.delivery_late = true;
    in.ticket_open = true;
    expect(&in, CS_VERDICT_SEND, NULL);
    in = base(CS_CLASS_ASK);
    in.ticket_open = true;
    expect(&in, CS_VERDICT_DEFER, "held_ticket_open");
    in = base(CS_CLASS_ASK);
    in.refund_pending = true;
    expect(&in, CS_VERDICT_DEFER, "held_refund_pending");
    /* an open ticket not updated for ticket_stale_after (30 days) holds
     * nothing; one updated since does, and so does any with the setting off */
    in = base(CS_CLASS_ASK);
    in.ticket_open = true;
    in.ticket_at = in.now - 30 * CS_MS_PER_DAY;
    expect(&in, CS_VERDICT_SEND, NULL);
    in.ticket_at = in.now - 30 * CS_MS_PER_DAY + 1;
    expect(&in, CS_VERDICT_DEFER, "held_ticket_open");
    in.ticket_at = in.now - 400 * CS_MS_PER_DAY;
    c.ticket_stale_after = 0;
    r = cs_policy_decide(&c, &in);
    assert_int_equal(r.verdict, CS_VERDICT_DEFER);
    assert_string_equal(r.reason, "held_ticket_open");
    in = base(CS_CLASS_MARKETING);
    in.refund_pending = true; /* refunds hold asks only */
    expect(&in, CS_VERDICT_SEND, NULL);
}

static void test_asks_and_budget(void **state)
{
    (void)state;
    cs_policy_input_t in = base(CS_CLASS_ASK);
    in.order_asked = true;
    expect(&in, CS_VERDICT_SKIP, "ask_already_made_for_order");
    in = base(CS_CLASS_ASK);
    in.last_ask_at = in.now - 10 * CS_MS_PER_DAY;
    expect(&in, CS_VERDICT_SKIP, "ask_cooldown");
    in.last_ask_at = in.now - 31 * CS_MS_PER_DAY;
    expect(&in, CS_VERDICT_SEND, NULL);
    /* budget 3, marketing keeps one slot free */
    in = base(CS_CLASS_MARKETING);
    in.budget_used = 1;
    expect(&in, CS_VERDICT_SEND, NULL);
    in.budget_used = 2;
    expect(&in, CS_VERDICT_SKIP, "budget");
    in.cls = CS_CLASS_REASSURANCE;
    expect(&in, CS_VERDICT_SEND, NULL);
    in.budget_used = 3;
    expect(&in, CS_VERDICT_SKIP, "budget");
    /* transactional and service are never counted against it */
    in.cls = CS_CLASS_SERVICE;
    in.budget_used = 99;
    expect(&in, CS_VERDICT_SEND, NULL);
}

static void test_quiet_hours(void **state)
{
    (void)state;
    cs_policy_conf_t c;
    cs_policy_conf_default(&c);
    cs_policy_input_t in = base(CS_CLASS_REASSURANCE);
    in.now = at("2026-07-15T20:30:00Z"); /* 22:30 in Berlin */
    cs_policy_result_t r = cs_policy_decide(&c, &in);
    assert_int_equal(r.verdict, CS_VERDICT_DEFER);
    assert_string_equal(r.reason, "quiet_hours");
    assert_int_equal(r.until, at("2026-07-16T06:00:00Z")); /* 08:00 in Berlin */
    /* the same instant is 17:30 in Sao Paulo: no quiet hours there */
    in.tz = cs_tz_get_or_utc("America/Sao_Paulo");
    expect(&in, CS_VERDICT_SEND, NULL);
    /* after midnight, before 08:00 */
    in.tz = cs_tz_get_or_utc("Europe/Berlin");
    in.now = at("2026-07-16T03:00:00Z");
    r = cs_policy_decide(&c, &in);
    assert_int_equal(r.until, at("2026-07-16T06:00:00Z"));
    /* a delay notice (service) waits for the morning too: the order watch
     * finds a promise broken just after midnight */
    in.cls = CS_CLASS_SERVICE;
    r = cs_policy_decide(&c, &in);
    assert_int_equal(r.verdict, CS_VERDICT_DEFER);
    assert_string_equal(r.reason, "quiet_hours");
    assert_int_equal(r.until, at("2026-07-16T06:00:00Z"));
    /* transactional is exempt by default, and the exemption is configurable */
    in.cls = CS_CLASS_TRANSACTIONAL;
    expect(&in, CS_VERDICT_SEND, NULL);
    c.quiet_exempt = 0;
    r = cs_policy_decide(&c, &in);
    assert_int_equal(r.verdict, CS_VERDICT_DEFER);
    /* a daytime window (start < end) works too */
    c.quiet_start = 12 * 60;
    c.quiet_end = 14 * 60;
    in.now = at("2026-07-15T10:30:00Z"); /* 12:30 */
    r = cs_policy_decide(&c, &in);
    assert_int_equal(r.until, at("2026-07-15T12:00:00Z"));
}

static void test_next_local_time(void **state)
{
    (void)state;
    const cs_tz_t *b = cs_tz_get_or_utc("Europe/Berlin");
    /* Friday 2026-07-17 11:00 Berlin: next 10:00 on a business day is Monday */
    cs_ms_t fri = at("2026-07-17T09:00:00Z");
    assert_int_equal(cs_next_local_time(b, fri, 10, 0, true), at("2026-07-20T08:00:00Z"));
    assert_int_equal(cs_next_local_time(b, fri, 10, 0, false), at("2026-07-18T08:00:00Z"));
    assert_int_equal(cs_next_local_time(b, fri, 12, 0, true), at("2026-07-17T10:00:00Z"));
    /* across the autumn change (2026-10-25): 09:00 local is 08:00Z after it */
    assert_int_equal(cs_next_local_time(b, at("2026-10-24T12:00:00Z"), 9, 0, false),
                     at("2026-10-25T08:00:00Z"));
    /* 02:30 comes twice that night (00:30Z in summer time, 01:30Z in
     * winter time): between the two, the next 02:30 is the second, not
     * the one a day later */
    assert_int_equal(cs_next_local_time(b, at("2026-10-25T00:00:00Z"), 2, 30, false),
                     at("2026-10-25T00:30:00Z"));
    assert_int_equal(cs_next_local_time(b, at("2026-10-25T01:10:00Z"), 2, 30, false),
                     at("2026-10-25T01:30:00Z"));
    assert_int_equal(cs_next_local_time(b, at("2026-10-25T01:30:00Z"), 2, 30, false),
                     at("2026-10-26T01:30:00Z"));
}

/* Quiet hours that end in the hour that comes twice (the autumn change):
 * a message in the second of them waits for the second end, not a day. */
static void test_quiet_hours_end_on_a_25_hour_day(void **state)
{
    (void)state;
    cs_policy_conf_t c;
    cs_policy_conf_default(&c);
    c.quiet_end = 2 * 60 + 30;
    cs_policy_input_t in = base(CS_CLASS_REASSURANCE);
    in.now = at("2026-10-25T01:10:00Z"); /* 02:10 winter time, the second 02:10 */
    cs_policy_result_t r = cs_policy_decide(&c, &in);
    assert_int_equal(r.verdict, CS_VERDICT_DEFER);
    assert_string_equal(r.reason, "quiet_hours");
    assert_int_equal(r.until, at("2026-10-25T01:30:00Z"));
}

/* Quiet hours that end in the hour the clocks skip (the spring change,
 * 2026-03-29 02:00 -> 03:00 in Berlin): they end when the clocks jump, at
 * 03:00 (01:00Z), not at 03:30 (the end moved by the gap). */
static void test_quiet_hours_end_on_a_23_hour_day(void **state)
{
    (void)state;
    cs_policy_conf_t c;
    cs_policy_conf_default(&c);
    c.quiet_end = 2 * 60 + 30;
    cs_policy_input_t in = base(CS_CLASS_REASSURANCE);
    in.now = at("2026-03-29T00:40:00Z"); /* 01:40 winter time */
    cs_policy_result_t r = cs_policy_decide(&c, &in);
    assert_int_equal(r.verdict, CS_VERDICT_DEFER);
    assert_string_equal(r.reason, "quiet_hours");
    assert_int_equal(r.until, at("2026-03-29T01:00:00Z"));
    /* at the jump, 03:00 summer time: past 02:30, so not quiet */
    in.now = r.until;
    assert_int_equal(cs_policy_decide(&c, &in).verdict, CS_VERDICT_SEND);
    /* a wait for 02:15 that night, and in New York (02:00 -> 03:00 at
     * 07:00Z on 2026-03-08) */
    const cs_tz_t *b = cs_tz_get_or_utc("Europe/Berlin");
    assert_int_equal(cs_next_local_time(b, at("2026-03-28T12:00:00Z"), 2, 15, false),
                     at("2026-03-29T01:00:00Z"));
    const cs_tz_t *ny = cs_tz_get_or_utc("America/New_York");
    assert_int_equal(cs_next_local_time(ny, at("2026-03-07T12:00:00Z"), 2, 59, false),
                     at("2026-03-08T07:00:00Z"));
    /* the day after, 02:15 is there again */
    assert_int_equal(cs_next_local_time(b, at("2026-03-29T01:00:00Z"), 2, 15, false),
                     at("2026-03-30T00:15:00Z"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_consent_and_address), cmocka_unit_test(test_unsubscribed),
        cmocka_unit_test(test_channel_rules),
        cmocka_unit_test(test_holds),               cmocka_unit_test(test_asks_and_budget),
        cmocka_unit_test(test_quiet_hours),         cmocka_unit_test(test_next_local_time),
        cmocka_unit_test(test_quiet_hours_end_on_a_25_hour_day),
        cmocka_unit_test(test_quiet_hours_end_on_a_23_hour_day),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    cs_tz_cache_clear();
    return rc;
}
