/* test_carriers.c -- the carrier tables: the shipped ones map each
 * carrier's codes and texts, the aggregator's tags and subtags; unknown
 * codes stay unmapped and are counted; bad tables are refused with file and
 * line; raw scans are normalized into their event. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "tracking/carriers.h"

static cs_carriers_t *tables;

static int setup(void **state)
{
    (void)state;
    cs_err_t err;
    if (cs_carriers_load_builtin(&tables, &err) != CS_OK) {
        fprintf(stderr, "builtin tables: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cs_carriers_free(tables);
    return 0;
}

static void expect(const char *carrier, const char *code, const char *text, const char *status,
                   const char *reason)
{
    cs_scan_mapping_t m;
    cs_carriers_map(tables, carrier, code, text, &m);
    if (strcmp(cs_track_status_name(m.status), status) != 0 ||
        strcmp(cs_incident_name(m.reason) ? cs_incident_name(m.reason) : "-", reason) != 0 ||
        m.unmapped)
        fail_msg("%s %s / %s: got %s/%s%s, want %s/%s", carrier, code ? code : "-",
                 text ? text : "-", cs_track_status_name(m.status),
                 cs_incident_name(m.reason) ? cs_incident_name(m.reason) : "-",
                 m.unmapped ? " (unmapped)" : "", status, reason);
}

static void test_shipped_tables(void **state)
{
    (void)state;
    assert_true(cs_carriers_count(tables) >= 7);
    expect("dhl", "pre-transit", NULL, "info_received", "-");
    expect("dhl", NULL, "Die Sendung wurde in das Zustellfahrzeug geladen.", "out_for_delivery",
           "-");
    expect("dhl", NULL, "Der Empfänger wurde nicht angetroffen. Die Sendung wird in eine Filiale "
                        "gebracht.",
           "failed_attempt", "recipient_absent");
    expect("dhl", NULL, "Die Annahme der Sendung wurde verweigert.", "exception", "refused");
    expect("dhl_express", "WC", NULL, "out_for_delivery", "-");
    expect("dhl_express", "ch", NULL, "exception", "customs"); /* case does not matter */
    expect("dpd", "DELIVERY_FAILED", "Empfänger nicht angetroffen", "failed_attempt",
           "recipient_absent");
    expect("dpd", "AT_DELIVERY_DEPOT", NULL, "in_transit", "-");
    expect("hermes", NULL, "Die Sendung liegt im Hermes PaketShop zur Abholung bereit.",
           "available_for_pickup", "-");
    expect("gls", "DELIVEREDPS", NULL, "available_for_pickup", "-");
    expect("ups", "X", "The address could not be found", "exception", "other");
    expect("ups", "KB", NULL, "available_for_pickup", "-");
    /* an aggregator's subtag, for a carrier whose own table does not know it */
    expect("dhl", "Exception_007", NULL, "exception", "address_problem");
    expect("colissimo", "AttemptFail_002", NULL, "failed_attempt", "recipient_absent");
    expect("colissimo", "InTransit", NULL, "in_transit", "-");
}

static void count_fn(const char *carrier, uint64_t n, void *ud)
{
    struct {
        const char *c;
        uint64_t n;
    } *q = ud;
    if (strcmp(carrier, q->c) == 0)
        q->n = n;
}

static uint64_t unmapped(const char *carrier)
{
    struct {
        const char *c;
        uint64_t n;
    } q = { carrier, 0 };
    cs_carriers_unmapped(tables, count_fn, &q);
    return q.n;
}

static void test_unknown_codes(void **state)
{
    (void)state;
    uint64_t before = unmapped("dpd"), other = unmapped("other");
    cs_scan_mapping_t m;
    cs_carriers_map(tables, "dpd", "ZZ_NEW_CODE", "Paket ist im Weltall", &m);
    assert_true(m.unmapped);
    assert_int_equal(m.status, CS_TRACK_IN_TRANSIT);
    assert_int_equal(unmapped("dpd"), before + 1);
    cs_carriers_map(tables, "brieftaube", "42", NULL, &m);
    assert_true(m.unmapped);
    assert_int_equal(unmapped("other"), other + 1);
}

static void test_bad_tables(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } cases[] = {
        { "X\tdelivered\n\nY\tlost_in_space\n", "t.tsv:3: status" },
        { "X\tdelivered\tbad_luck\n", "t.tsv:1: reason" },
        { "# comment\nonly-a-code\n", "t.tsv:2: expected a match" },
        { "text:\tdelivered\n", "t.tsv:1: match" },
        { "*\tdelivered\n", "t.tsv:1: match" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cs_carriers_t *c = cs_carriers_new();
        cs_err_t err;
        assert_int_not_equal(
            cs_carriers_add(c, "x", cases[i].text, strlen(cases[i].text), "t.tsv", &err), CS_OK);
        if (!strstr(err.msg, cases[i].want))
            fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, cases[i].want);
        cs_carriers_free(c);
    }
    cs_carriers_t *c = cs_carriers_new();
    cs_err_t err;
    assert_int_not_equal(cs_carriers_add(c, "Bad Name", "", 0, "Bad Name.tsv", &err), CS_OK);
    /* prefixes match the start of a code */
    const char *t = "ZU*\tdelivered\n";
    assert_int_equal(cs_carriers_add(c, "mine", t, strlen(t), "mine.tsv", &err), CS_OK);
    cs_scan_mapping_t m;
    cs_carriers_map(c, "mine", "zu-17", NULL, &m);
    assert_false(m.unmapped);
    assert_int_equal(m.status, CS_TRACK_DELIVERED);
    cs_carriers_free(c);
}

static void test_normalize_event(void **state)
{
    (void)state;
    const char *text =
        "{\"event_id\":\"s1\",\"type\":\"tracking.event\",\"occurred_at\":"
        "\"2026-03-04T11:02:00+01:00\",\"data\":{\"carrier\":\"DPD\",\"tracking_number\":\"0190\","
        "\"carrier_code\":\"DELIVERY_FAILED\",\"carrier_text\":\"nicht angetroffen\"}}";
    cs_event_t *ev;
    cs_err_t err;
    assert_int_equal(cs_event_parse(text, strlen(text), &ev, &err), CS_OK);
    assert_false(ev->u.scan.status_given);
    assert_int_equal(cs_carriers_normalize(tables, ev, &err), CS_OK);
    assert_int_equal(ev->u.scan.status, CS_TRACK_FAILED_ATTEMPT);
    assert_int_equal(ev->u.scan.reason, CS_INCIDENT_RECIPIENT_ABSENT);
    assert_non_null(strstr(ev->body, "\"status\":\"failed_attempt\""));
    assert_non_null(strstr(ev->body, "\"reason\":\"recipient_absent\""));
    /* the stored text parses back to the same scan */
    cs_event_t *again;
    assert_int_equal(cs_event_parse(ev->body, ev->body_len, &again, &err), CS_OK);
    assert_true(again->u.scan.status_given);
    assert_int_equal(again->u.scan.reason, CS_INCIDENT_RECIPIENT_ABSENT);
    cs_event_free(&again);
    cs_event_free(&ev);
    /* neither a status nor a raw code: refused, naming the field */
    const char *bare = "{\"event_id\":\"s2\",\"type\":\"tracking.event\",\"occurred_at\":"
                       "\"2026-03-04T11:02:00Z\",\"data\":{\"carrier\":\"dpd\","
                       "\"tracking_number\":\"0190\"}}";
    assert_int_not_equal(cs_event_parse(bare, strlen(bare), &ev, &err), CS_OK);
    assert_string_equal(err.field, "data.status");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped_tables),
        cmocka_unit_test(test_unknown_codes),
        cmocka_unit_test(test_bad_tables),
        cmocka_unit_test(test_normalize_event),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
