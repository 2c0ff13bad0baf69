/* test_journey.c -- conditions, time zones, durations and journey files:
 * what compiles, what each program looks like, and every error naming the
 * file, line and field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "journey/journey.h"
#include "lib/cs_tz.h"

/* ---- conditions ---- */

static bool test_expr_src(const char *src, const char *ctx_json)
{
    cs_expr_t *e;
    cs_err_t err;
    json_t *ctx = json_loads(ctx_json, 0, NULL);
    assert_non_null(ctx);
    if (cs_expr_compile(src, &e, &err) != CS_OK)
        fail_msg("'%s' did not compile: %s", src, err.msg);
    bool r = cs_expr_test(e, ctx);
    cs_expr_free(e);
    json_decref(ctx);
    return r;
}

static void expr_error(const char *src, const char *part)
{
    cs_expr_t *e = NULL;
    cs_err_t err;
    assert_int_not_equal(cs_expr_compile(src, &e, &err), CS_OK);
    assert_null(e);
    if (!strstr(err.msg, part))
        fail_msg("error for '%s' was '%s', expected '%s'", src, err.msg, part);
}

static void journey_error(const char *yaml, const char *part);

static void test_conditions(void **state)
{
    (void)state;
    const char *ctx = "{\"order\":{\"total\":129.9,\"items\":2,\"currency\":\"EUR\"},"
                      "\"customer\":{\"orders_count\":1,\"tags\":[\"vip\",\"b2b\"],"
                      "\"consents\":{\"email\":{\"marketing\":false}}},"
                      "\"shipment\":{\"carrier\":\"dhl\"},\"event\":{\"status\":\"delivered\"}}";
    assert_true(test_expr_src("order.total >= 100", ctx));
    assert_false(test_expr_src("order.total > 129.9", ctx));
    assert_true(test_expr_src("order.total >= 100 and customer.orders_count == 1", ctx));
    assert_true(test_expr_src("shipment.carrier in ['dhl', 'dpd']", ctx));
    assert_false(test_expr_src("shipment.carrier not in [\"dhl\"]", ctx));
    assert_true(test_expr_src("'vip' in customer.tags", ctx));
    assert_true(test_expr_src("not customer.consents.email.marketing", ctx));
    assert_true(test_expr_src("customer.missing == null and not customer.missing", ctx));
    assert_true(test_expr_src("(order.items == 3 or order.items == 2) and event.status == 'delivered'", ctx));
    assert_true(test_expr_src("'deliv' in event.status", ctx));
    /* comparisons across types are false, never an error */
    assert_false(test_expr_src("order.currency > 5", ctx));
    assert_false(test_expr_src("order.total == '129.9'", ctx));
    assert_true(test_expr_src("customer.orders_count == 1.0", ctx));
    assert_true(test_expr_src("order.total", ctx));
    assert_false(test_expr_src("customer.tags.5", ctx));
    assert_true(test_expr_src("customer.tags.0 == 'vip'", ctx));

    expr_error("", "empty condition");
    expr_error("order.total >=", "column 15");
    expr_error("order.total >= 100 100", "unexpected text");
    expr_error("order.total = 100", "unexpected text");
    expr_error("(order.total > 1", "expected ')'");
    expr_error("order..total", "'..'");
    expr_error("x == 'open", "unterminated string");
    expr_error("x in [1, 2", "expected ',' or ']'");
    /* numbers as JSON writes them: no hex (it read as 31), none beyond a
     * double (it compiled to nothing) */
    expr_error("order.total > 0x1F", "expected a decimal number like 12 or 9.90 at column 15");
    expr_error("order.total > 1e999", "expected a decimal number");
    expr_error("order.total > 12abc", "expected a decimal number");
    expr_error("order.total > 1.", "expected a decimal number");
    assert_true(test_expr_src("order.total > 1.2e2 and order.total < 1.3E+2", ctx));
    assert_true(test_expr_src("order.total > -5 and order.items == 2", ctx));
    /* a long condition (a folded YAML block) is quoted in part: what was
     * expected and where is not cut off the end of the message */
    char longer[700];
    size_t n = 0;
    for (int i = 0; i < 25; i++)
        n += (size_t)snprintf(longer + n, sizeof longer - n, "order.total > 1 and ");
    snprintf(longer + n, sizeof longer - n, "order.total >");
    expr_error(longer, "in condition 'order.total > 1 and order.total > 1 and order.tota...': "
                       "expected a value at column 514 (end)");
    char y[1024];
    snprintf(y, sizeof y, "journey: j\ntrigger: {event: order.placed, if: \"%s\"}\n"
                          "steps: [{wait: 1d}]\n", longer);
    journey_error(y, "bad.yaml:2: trigger.if: in condition 'order.total > 1 and order.total > 1 "
                     "and order.tota...': expected a value at column 514 (end)");
}

/* ---- time zones ---- */

static void test_time_zones(void **state)
{
    (void)state;
    const cs_tz_t *berlin, *sp;
    cs_err_t err;
    assert_int_equal(cs_tz_get("Europe/Berlin", &berlin, &err), CS_OK);
    assert_int_equal(cs_tz_get("America/Sao_Paulo", &sp, &err), CS_OK);
    cs_ms_t winter, summer;
    assert_true(cs_time_parse("2026-01-15T12:00:00Z", &winter));
    assert_true(cs_time_parse("2026-07-15T12:00:00Z", &summer));
    assert_int_equal(cs_tz_offset(berlin, winter), 3600);
    assert_int_equal(cs_tz_offset(berlin, summer), 7200);
    assert_int_equal(cs_tz_offset(sp, summer), -3 * 3600);
    cs_local_t l;
    cs_tz_to_local(berlin, summer, &l);
    assert_int_equal(l.hour, 14);
    assert_int_equal(l.wday, 3); /* a Wednesday */
    /* round trip, a gap and an ambiguous hour (2026-03-29 and 2026-10-25) */
    assert_int_equal(cs_tz_from_local(berlin, &l), summer);
    cs_local_t gap = { 2026, 3, 29, 2, 30, 0, 0 };
    cs_ms_t g = cs_tz_from_local(berlin, &gap), want;
    assert_true(cs_time_parse("2026-03-29T01:30:00Z", &want)); /* 03:30 CEST */
    assert_int_equal(g, want);
    cs_local_t amb = { 2026, 10, 25, 2, 30, 0, 0 };
    assert_true(cs_time_parse("2026-10-25T00:30:00Z", &want)); /* the first 02:30 (CEST) */
    assert_int_equal(cs_tz_from_local(berlin, &amb), want);
    /* month and day overflow normalise */
    cs_local_t over = { 2026, 13, 32, 0, 0, 0, 0 };
    assert_true(cs_time_parse("2027-02-01T00:00:00+01:00", &want));
    assert_int_equal(cs_tz_from_local(berlin, &over), want);
    /* unknown and hostile names */
    assert_int_equal(cs_tz_get("Mars/Olympus", &berlin, &err), CS_ERR_NOTFOUND);
    assert_int_equal(cs_tz_get("../../etc/passwd", &berlin, &err), CS_ERR_NOTFOUND);
    assert_string_equal(cs_tz_name(cs_tz_get_or_utc("nope")), "UTC");
    assert_int_equal(cs_tz_offset(cs_tz_get_or_utc(NULL), summer), 0);
}

static void test_durations(void **state)
{
    (void)state;
    cs_ms_t ms;
    assert_true(cs_duration_parse("30s", &ms));
    assert_int_equal(ms, 30000);
    assert_true(cs_duration_parse("1d12h", &ms));
    assert_int_equal(ms, 36 * 3600 * 1000LL);
    assert_true(cs_duration_parse("2w", &ms));
    assert_int_equal(ms, 14 * CS_MS_PER_DAY);
    assert_false(cs_duration_parse("", &ms));
    assert_false(cs_duration_parse("3", &ms));
    assert_false(cs_duration_parse("3 days", &ms));
    assert_false(cs_duration_parse("d", &ms));
    assert_false(cs_duration_parse("99999w", &ms));
}

/* ---- journey files ---- */

static const char *review_yaml =
    "journey: review_request\n"
    "name: Review request after delivery\n"
    "trigger:\n"
    "  event: order.placed\n"
    "  if: \"order.total > 0\"\n"
    "exit_when: [order_cancelled, return_requested, ticket_opened, unsubscribed]\n"
    "steps:\n"
    "  - wait_for:\n"
    "      event: tracking.event\n"
    "      if: \"event.status == 'delivered'\"\n"
    "      timeout: 14d\n"
    "  - wait: 5d\n"
    "  - wait_until: {time: \"10:00\", business_day: true}\n"
    "  - if: \"customer.orders_count == 1\"\n"
    "    then:\n"
    "      - send: {channel: [email], template: review_first, class: ask}\n"
    "    else:\n"
    "      - send: {channel: [whatsapp, email], template: review, class: ask}\n";

static void test_journey_program(void **state)
{
    (void)state;
    cs_journey_t *j;
    cs_err_t err;
    cs_rc rc = cs_journey_parse("review.yaml", review_yaml, strlen(review_yaml), &j, &err);
    if (rc)
        fail_msg("%s", err.msg);
    assert_string_equal(j->id, "review_request");
    assert_string_equal(j->name, "Review request after delivery");
    assert_true(j->enabled);
    assert_int_equal(j->trigger_event, CS_EV_ORDER_PLACED);
    assert_non_null(j->trigger_cond);
    assert_int_equal(j->once_per, CS_ONCE_PER_ORDER);
    assert_int_equal(j->exit_mask, CS_EXIT_ORDER_CANCELLED | CS_EXIT_RETURN_REQUESTED |
                                       CS_EXIT_TICKET_OPENED | CS_EXIT_UNSUBSCRIBED);
    /* 0 WAIT_FOR(timeout->2) 1 GOTO 3 2 EXIT 3 WAIT 4 WAIT_UNTIL 5 BRANCH(->8)
     * 6 SEND 7 GOTO 9 8 SEND 9 END */
    static const cs_op_t ops[] = { CS_OP_WAIT_FOR, CS_OP_GOTO, CS_OP_EXIT, CS_OP_WAIT,
                                   CS_OP_WAIT_UNTIL, CS_OP_BRANCH, CS_OP_SEND, CS_OP_GOTO,
                                   CS_OP_SEND, CS_OP_END };
    assert_int_equal(j->n, 10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(j->prog[i].op, ops[i]);
    assert_int_equal(j->prog[0].target, 2);
    assert_int_equal(j->prog[0].ms, 14 * CS_MS_PER_DAY);
    assert_int_equal(j->prog[0].event_type, CS_EV_TRACKING_EVENT);
    assert_int_equal(j->prog[1].target, 3);
    assert_string_equal(j->prog[2].text, "timeout");
    assert_int_equal(j->prog[3].ms, 5 * CS_MS_PER_DAY);
    assert_int_equal(j->prog[4].hour, 10);
    assert_true(j->prog[4].business_day);
    assert_int_equal(j->prog[5].target, 8);
    assert_int_equal(j->prog[5].line, 14);
    assert_int_equal(j->prog[6].cls, CS_CLASS_ASK);
    assert_int_equal(j->prog[7].target, 9);
    assert_int_equal(j->prog[8].nchannels, 2);
    assert_int_equal(j->prog[8].channels[0], CS_CHANNEL_WHATSAPP);
    assert_string_equal(j->prog[8].text, "review");
    assert_int_equal(strlen(j->hash), 64);
    cs_journey_free(j);
}

static void test_journey_goto_and_timeout_steps(void **state)
{
    (void)state;
    const char *y = "journey: delivered\n"
                    "trigger: {event: shipment.created}\n"
                    "steps:\n"
                    "  - wait_for: {event: tracking.event, timeout: 3d, on_timeout: [{goto: late}]}\n"
                    "  - send: {channel: email, template: delivered, class: transactional}\n"
                    "  - exit: done\n"
                    "  - id: late\n"
                    "    send: {channel: sms, template: sorry, class: service}\n";
    cs_journey_t *j;
    cs_err_t err;
    if (cs_journey_parse("d.yaml", y, strlen(y), &j, &err))
        fail_msg("%s", err.msg);
    /* 0 WAIT_FOR(->2) 1 GOTO 3 2 GOTO late(5) 3 SEND 4 EXIT 5 SEND 6 END */
    assert_int_equal(j->n, 7);
    assert_int_equal(j->prog[0].target, 2);
    assert_int_equal(j->prog[1].target, 3);
    assert_int_equal(j->prog[2].op, CS_OP_GOTO);
    assert_int_equal(j->prog[2].target, 5);
    assert_int_equal(j->prog[4].op, CS_OP_EXIT);
    assert_int_equal(j->prog[5].cls, CS_CLASS_SERVICE);
    cs_journey_free(j);
}

static void journey_error(const char *yaml, const char *part)
{
    cs_journey_t *j = NULL;
    cs_err_t err;
    cs_err_clear(&err);
    assert_int_not_equal(cs_journey_parse("bad.yaml", yaml, strlen(yaml), &j, &err), CS_OK);
    assert_null(j);
    if (!strstr(err.msg, part))
        fail_msg("error was '%s', expected it to contain '%s'", err.msg, part);
}

#define HEAD "journey: j\ntrigger: {event: order.placed}\n"

static void test_journey_errors(void **state)
{
    (void)state;
    journey_error("journey: [\n", "bad.yaml:2: not valid YAML");
    /* an empty file (or one of comments) has no line to name: it said line 0 */
    journey_error("", "bad.yaml: (file): the file is empty: expected a journey: a mapping with "
                      "journey, trigger, steps");
    journey_error("# to do\n\n", "bad.yaml: (file): the file is empty");
    journey_error("- a\n", "bad.yaml:1: (file): expected a journey");
    journey_error("trigger: {event: order.placed}\nsteps: [{wait: 1d}]\n",
                  "journey: missing");
    journey_error("journey: Review!\n", "bad.yaml:1: journey: 'Review!' is not an id");
    journey_error(HEAD "steps: [{wait: 1d}]\ncolour: red\n",
                  "bad.yaml:4: (file): unknown field 'colour' (expected one of: journey, name");
    journey_error("journey: j\ntrigger: {event: order.shipped}\nsteps: [{wait: 1d}]\n",
                  "bad.yaml:2: trigger.event: unknown event type 'order.shipped'");
    journey_error("journey: j\ntrigger: {event: order.placed, if: \"order.total >\"}\nsteps: [{wait: 1d}]\n",
                  "trigger.if: in condition");
    journey_error("journey: j\ntrigger: {event: order.placed, if: \"basket.total > 1\"}\n"
                  "steps: [{wait: 1d}]\n",
                  "trigger.if: 'basket.total' is not in the journey context");
    /* a field the root does not have: a typo that would read null for good */
    journey_error("journey: j\ntrigger: {event: order.placed, if: \"order.totl > 100\"}\n"
                  "steps: [{wait: 1d}]\n",
                  "bad.yaml:2: trigger.if: 'order.totl': order has no field 'totl'");
    journey_error(HEAD "steps:\n  - if: \"customer.tags.0 == 'vip'\"\n    then: [{wait: 1d}]\n",
                  "'customer.tags.0': customer has no field 'tags'");
    journey_error(HEAD "steps:\n  - wait: {days: order.replenish_days}\n",
                  "order has no field 'replenish_days'");
    /* deeper paths and the event's own data are not checked */
    const char *deep = HEAD "steps:\n  - if: \"order.attributes.tier == 'gold' and "
                            "order.items.0.sku == 'A' and customer.consents.email.marketing and "
                            "event.anything == 1 and shipment.delivered_at and risk.late and "
                            "run.version > 1\"\n    then: [{wait: 1d}]\n";
    cs_journey_t *dj;
    cs_err_t derr;
    if (cs_journey_parse("deep.yaml", deep, strlen(deep), &dj, &derr))
        fail_msg("%s", derr.msg);
    cs_journey_free(dj);
    /* a version kept in the store loads as its release read it */
    const char *typo = HEAD "steps:\n  - if: \"order.totl > 1\"\n    then: [{wait: 1d}]\n";
    assert_int_equal(cs_journey_parse_stored("old.yaml", typo, strlen(typo), &dj, &derr), CS_OK);
    cs_journey_free(dj);
    journey_error(HEAD "steps: []\n", "bad.yaml:3: steps: expected a non-empty list");
    journey_error(HEAD "steps:\n  - wait: soon\n",
                  "bad.yaml:4: steps[0].wait: expected a duration like 30m");
    journey_error(HEAD "steps:\n  - wait: 1d\n  - send: {channel: fax, template: t, class: ask}\n",
                  "bad.yaml:5: steps[1].send.channel: 'fax' is not a channel");
    journey_error(HEAD "steps:\n  - send: {channel: email, template: t}\n",
                  "bad.yaml:4: steps[0].send.class: missing: a message class");
    journey_error(HEAD "steps:\n  - send: {channel: email, template: t, class: urgent}\n",
                  "'urgent' is not a class");
    journey_error(HEAD "steps:\n  - send: {channel: email, template: t, class: ask, cc: x}\n",
                  "steps[0].send: unknown field 'cc'");
    journey_error(HEAD "steps:\n  - wait: 1d\n    send: {channel: email, template: t, class: ask}\n",
                  "bad.yaml:4: steps[0]: a step does one thing");
    journey_error(HEAD "steps:\n  - wait_until: {time: \"25:00\"}\n",
                  "steps[0].wait_until.time: expected a local time of day");
    journey_error(HEAD "steps:\n  - wait_for: {event: tracking.event}\n",
                  "steps[0].wait_for.timeout: missing");
    journey_error(HEAD "steps:\n  - exit: early\n  - wait: 1d\n",
                  "bad.yaml:5: steps[1]: this step can never run");
    /* nor after an if whose branches both end the journey or jump away */
    journey_error(HEAD "steps:\n  - if: \"order.total > 1\"\n    then: [{exit: big}]\n"
                       "    else: [{goto: z}]\n  - wait: 1d\n  - id: z\n    exit: done\n",
                  "bad.yaml:7: steps[1]: this step can never run");
    journey_error(HEAD "steps:\n  - if: \"order.total > 1\"\n    then:\n"
                       "      - if: \"order.total > 2\"\n        then: [{exit: a}]\n"
                       "        else: [{exit: b}]\n    else: [{exit: c}]\n  - wait: 1d\n",
                  "bad.yaml:10: steps[1]: this step can never run");
    static const char *const reachable[] = {
        HEAD "steps:\n  - if: \"order.total > 1\"\n    then: [{exit: big}]\n  - wait: 1d\n",
        HEAD "steps:\n  - if: \"order.total > 1\"\n    then: [{exit: big}]\n"
             "    else: [{wait: 1d}]\n  - wait: 1d\n",
        HEAD "steps:\n  - if: \"order.total > 1\"\n    then: [{goto: z}]\n"
             "    else: [{exit: small}]\n  - id: z\n    wait: 1d\n",
    };
    /* a version kept in the store loads as its release read it */
    const char *dead = HEAD "steps:\n  - if: \"order.total > 1\"\n    then: [{exit: a}]\n"
                            "    else: [{exit: b}]\n  - wait: 1d\n";
    cs_journey_t *sj;
    cs_err_t serr;
    assert_int_equal(cs_journey_parse_stored("old.yaml", dead, strlen(dead), &sj, &serr), CS_OK);
    cs_journey_free(sj);
    for (size_t i = 0; i < CS_ARRAY_LEN(reachable); i++) {
        cs_journey_t *rj;
        cs_err_t rerr;
        if (cs_journey_parse("ok.yaml", reachable[i], strlen(reachable[i]), &rj, &rerr))
            fail_msg("case %zu: %s", i, rerr.msg);
        cs_journey_free(rj);
    }
    journey_error(HEAD "steps:\n  - id: a\n    wait: 1d\n  - goto: a\n",
                  "bad.yaml:6: steps[1].goto: goto 'a' jumps back to an earlier step; journeys "
                  "cannot loop");
    journey_error(HEAD "steps:\n  - goto: nowhere\n", "steps[0].goto: no step has id 'nowhere'");
    journey_error(HEAD "steps:\n  - id: a\n    wait: 1d\n  - id: a\n    wait: 2d\n",
                  "id 'a' is used twice");
    journey_error(HEAD "steps:\n  - if: \"order.total > 1\"\n",
                  "steps[0].then: expected a list of steps");
    journey_error(HEAD "steps:\n  - wait: 1d\n    then: []\n", "then/else belong to an 'if' step");
    journey_error(HEAD "exit_when: [refunded]\nsteps: [{wait: 1d}]\n",
                  "exit_when[0]: 'refunded' is not an exit condition");
    journey_error(HEAD "once_per: week\nsteps: [{wait: 1d}]\n",
                  "once_per: expected order, customer or event");
    /* events that never concern an order: one run per order would never start */
    journey_error("journey: j\ntrigger: {event: message.status}\nsteps: [{wait: 1d}]\n",
                  "bad.yaml:2: once_per: a message.status concerns no order; once_per: "
                  "customer or event");
    journey_error("journey: j\ntrigger: {event: customer.upserted}\nonce_per: order\n"
                  "steps: [{wait: 1d}]\n",
                  "bad.yaml:3: once_per: a customer.upserted concerns no order");
    journey_error(HEAD "enabled: maybe\nsteps: [{wait: 1d}]\n", "enabled: expected true or false");
    journey_error(HEAD "steps: [{wait: 1d}]\nsteps: [{wait: 2d}]\n", "'steps' appears twice");
    /* goto forward over an exit makes the target reachable */
    cs_journey_t *j;
    cs_err_t err;
    const char *ok = HEAD "steps:\n  - goto: b\n  - id: b\n    wait: 1d\n";
    assert_int_equal(cs_journey_parse("ok.yaml", ok, strlen(ok), &j, &err), CS_OK);
    cs_journey_free(j);
}

/* A required field that is left out is reported at the line of the step
 * (or block) that lacks it: a missing node has no line, and "line 0" sends
 * the operator looking at the top of the file. */
static void test_journey_missing_fields_name_their_line(void **state)
{
    (void)state;
    journey_error("journey: j\ntrigger:\n  if: \"order.total > 1\"\nsteps: [{wait: 1d}]\n",
                  "bad.yaml:3: trigger.event: missing: an event type");
    journey_error(HEAD "steps:\n  - wait: 1d\n  - send: {channel: email, class: ask}\n",
                  "bad.yaml:5: steps[1].send.template: missing: a template name");
    journey_error(HEAD "steps:\n  - wait_for: {timeout: 3d}\n",
                  "bad.yaml:4: steps[0].wait_for.event: missing: the event to wait for");
    journey_error(HEAD "steps:\n  - wait_until: {business_day: true}\n",
                  "bad.yaml:4: steps[0].wait_until.time: missing: a local time of day");
    journey_error(HEAD "steps:\n  - wait: {}\n",
                  "bad.yaml:4: steps[0].wait.days: missing: a context path");
    journey_error(HEAD "steps:\n  - emit: {data: {tier: gold}}\n",
                  "bad.yaml:4: steps[0].emit.signal: missing: the signal's name");
    journey_error(HEAD "steps:\n  - webhook: {event: vip}\n",
                  "bad.yaml:4: steps[0].webhook.url: missing: an http(s) URL");
    journey_error(HEAD "steps:\n  - webhook: {url: \"https://crm.example/h\"}\n",
                  "bad.yaml:4: steps[0].webhook.event: missing: the event's name");
}

/* wait: {days: PATH} reads the days from the context; a number there is
 * no path, and every run would end at the step with no_days_at:30. */
static void test_journey_wait_days_needs_a_path(void **state)
{
    (void)state;
    journey_error(HEAD "steps:\n  - wait: {days: 30}\n",
                  "bad.yaml:4: steps[0].wait.days: expected a plain path like "
                  "order.attributes.replenish_days, got '30' (a fixed wait is written wait: 30d)");
    journey_error(HEAD "steps:\n  - wait: {days: \"true\"}\n", "got 'true'");
    journey_error(HEAD "steps:\n  - wait: {days: order.total + 1}\n", "steps[0].wait.days");
    const char *ok = HEAD "steps:\n  - wait: {days: order.attributes.replenish_days}\n";
    cs_journey_t *j;
    cs_err_t err;
    if (cs_journey_parse("ok.yaml", ok, strlen(ok), &j, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(j->prog[0].op, CS_OP_WAIT);
    assert_string_equal(j->prog[0].text, "order.attributes.replenish_days");
    cs_journey_free(j);
}

/* emit data: what is written unquoted as a number, true, false or null
 * reaches the signal's properties with that type, so another journey's
 * `event.properties.tier >= 2` or bare `event.properties.vip` means what it
 * says; quoted values stay text. A decimal reads as written (9.9, not
 * 9.9000000000000004). */
static void test_journey_emit_data_types(void **state)
{
    (void)state;
    const char *y = HEAD "steps:\n"
                         "  - emit:\n"
                         "      signal: vip_welcomed\n"
                         "      data: {tier: 2, ratio: 9.90, vip: false, note: null, name: gold,\n"
                         "             zip: \"01234\", code: 007, quoted: \"2\", off: 'true'}\n";
    cs_journey_t *j;
    cs_err_t err;
    if (cs_journey_parse("emit.yaml", y, strlen(y), &j, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(j->prog[0].op, CS_OP_EMIT);
    assert_string_equal(j->prog[0].data,
                        "{\"code\":\"007\",\"name\":\"gold\",\"note\":null,\"off\":\"true\","
                        "\"quoted\":\"2\",\"ratio\":9.9,\"tier\":2,\"vip\":false,\"zip\":\"01234\"}");
    cs_journey_free(j);
    /* a name given twice, or `journey` (the runtime writes the journey's
     * id there), would lose a value without a word */
    journey_error(HEAD "steps:\n  - emit:\n      signal: s\n      data: {tier: 1,\n"
                       "             tier: 2}\n",
                  "bad.yaml:7: steps[0].emit.data: 'tier' appears twice");
    journey_error(HEAD "steps:\n  - emit: {signal: s, data: {journey: vip}}\n",
                  "bad.yaml:4: steps[0].emit.data: 'journey' is set by Consonance");
}

/* Two journeys in one file (a second YAML document after ---): the second
 * was dropped unread, even with a syntax error in it, and never ran. */
static void test_journey_one_document_per_file(void **state)
{
    (void)state;
    journey_error(HEAD "steps: [{wait: 1d}]\n---\njourney: k\n"
                       "trigger: {event: order.placed}\nsteps: [{wait: 2d}]\n",
                  "bad.yaml:4: (file): a second YAML document starts here; one journey per file");
    journey_error(HEAD "steps: [{wait: 1d}]\n---\nsteps: [\n", "not valid YAML");
    /* a document marker before, an end marker or a lone --- after are fine */
    const char *ok = "---\n" HEAD "steps: [{wait: 1d}]\n...\n---\n";
    cs_journey_t *j;
    cs_err_t err;
    if (cs_journey_parse("ok.yaml", ok, strlen(ok), &j, &err))
        fail_msg("%s", err.msg);
    cs_journey_free(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conditions),
        cmocka_unit_test(test_time_zones),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_journey_program),
        cmocka_unit_test(test_journey_goto_and_timeout_steps),
        cmocka_unit_test(test_journey_errors),
        cmocka_unit_test(test_journey_missing_fields_name_their_line),
        cmocka_unit_test(test_journey_wait_days_needs_a_path),
        cmocka_unit_test(test_journey_emit_data_types),
        cmocka_unit_test(test_journey_one_document_per_file),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    cs_tz_cache_clear();
    return rc;
}
