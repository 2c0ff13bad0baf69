/*
 * test_event.c -- the event model: every type parses, every rule names the
 * field it breaks, money is exact, bounds hold (a tracking number's as
 * carriers match it, alike for shipments and scans), allocation failures
 * are clean.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/event.h"

static cs_event_t *parse_ok(const char *text)
{
    cs_event_t *ev = NULL;
    cs_err_t err;
    cs_err_clear(&err);
    cs_rc rc = cs_event_parse(text, strlen(text), &ev, &err);
    if (rc)
        fail_msg("expected to parse: %s (field %s)\n%s", err.msg, err.field, text);
    return ev;
}

/* Parse `text`, expect rc and the field path; return the message. */
static void expect_err(const char *text, cs_rc rc, const char *field, const char *needle)
{
    cs_event_t *ev = NULL;
    cs_err_t err;
    cs_err_clear(&err);
    cs_rc got = cs_event_parse(text, strlen(text), &ev, &err);
    if (got != rc || strcmp(err.field, field) != 0 || (needle && !strstr(err.msg, needle)))
        fail_msg("expected rc %d field \"%s\" (\"%s\"), got rc %d field \"%s\": %s\n%s", rc, field,
                 needle ? needle : "", got, err.field, err.msg, text);
    assert_null(ev);
}

#define ENV(type, data) \
    "{\"event_id\":\"e-1\",\"type\":\"" type "\",\"occurred_at\":\"2026-03-01T10:15:00+01:00\",\"data\":" data "}"

static const char *const ORDER =
    ENV("order.placed", "{\"id\":\"1001\",\"customer_id\":\"c-7\",\"currency\":\"EUR\","
                        "\"items\":[{\"sku\":\"KAF\",\"name\":\"Kaffee\",\"category\":\"kaffee\","
                        "\"unit_price\":49.9,\"quantity\":2,\"discount\":\"9.80\"},"
                        "{\"sku\":\"MUG\",\"name\":\"Becher\",\"unit_price\":\"12\",\"quantity\":1}],"
                        "\"totals\":{\"shipping\":\"4.90\",\"tax\":0},"
                        "\"promised_delivery\":{\"earliest\":\"2026-03-03\",\"latest\":\"2026-03-05\"},"
                        "\"customer\":{\"id\":\"c-7\",\"email\":\"anna@example.de\",\"locale\":\"de-DE\"},"
                        "\"attributes\":{\"anything\":[1,{\"goes\":true}]}}");

static void test_every_type_parses(void **state)
{
    (void)state;
    const char *docs[] = {
        ENV("customer.upserted",
            "{\"id\":\"c-7\",\"email\":\"anna@example.de\",\"phone\":\"+4915112345678\",\"name\":\"Anna\","
            "\"locale\":\"de\",\"timezone\":\"Europe/Berlin\",\"consents\":{\"email\":{\"transactional\":true,"
            "\"marketing\":false},\"sms\":{\"marketing\":true}}}"),
        ORDER,
        ENV("order.cancelled", "{\"order_id\":\"1001\",\"reason\":\"customer_request\"}"),
        ENV("shipment.created", "{\"id\":\"s1\",\"order_id\":\"1001\",\"carrier\":\"DHL\",\"service\":\"Paket\","
                                "\"tracking_number\":\"00340434\",\"origin\":{\"postal_code\":\"04109\","
                                "\"country\":\"DE\"},\"destination\":{\"city\":\"Berlin\",\"region\":\"Berlin\"}}"),
        ENV("tracking.event", "{\"carrier\":\"dhl\",\"tracking_number\":\"00340434\",\"status\":\"out_for_delivery\","
                              "\"carrier_code\":\"OUT\",\"carrier_text\":\"In Zustellung\",\"location\":{\"city\":\"Berlin\"}}"),
        ENV("return.requested", "{\"id\":\"r1\",\"order_id\":\"1001\",\"resolution\":\"exchange\","
                                "\"items\":[{\"sku\":\"KAF\",\"quantity\":1,\"reason\":\"zu groß\"}]}"),
        ENV("return.updated", "{\"id\":\"r1\",\"status\":\"refunded\",\"refund_amount\":\"49.90\"}"),
        ENV("ticket.created", "{\"id\":\"t1\",\"customer_id\":\"c-7\",\"order_id\":\"1001\",\"channel\":\"chat\","
                              "\"subject\":\"Wo ist meine Bestellung?\",\"body\":\"Hallo\",\"category\":\"wismo\"}"),
        ENV("ticket.updated", "{\"id\":\"t1\",\"status\":\"solved\"}"),
        ENV("feedback.submitted", "{\"id\":\"f1\",\"kind\":\"nps\",\"score\":0,\"customer_id\":\"c-7\"}"),
        ENV("message.status", "{\"message_id\":\"m1\",\"status\":\"bounced\",\"channel\":\"email\",\"detail\":\"5.1.1\"}"),
    };
    for (size_t i = 0; i < CS_ARRAY_LEN(docs); i++) {
        cs_event_t *ev = parse_ok(docs[i]);
        assert_int_equal(ev->type, (cs_event_type_t)(i + 1));
        assert_string_equal(cs_event_type_name(ev->type), json_string_value(json_object_get(ev->json, "type")));
        assert_int_equal(ev->schema, 1);
        assert_string_equal(ev->event_id, "e-1");
        /* 2026-03-01T09:15:00Z */
        assert_int_equal(ev->occurred_at, 1772356500000LL);
        assert_non_null(ev->body);
        cs_event_free(&ev);
        assert_null(ev);
    }
}

static void test_order_fields_and_totals(void **state)
{
    (void)state;
    cs_event_t *ev = parse_ok(ORDER);
    const cs_order_t *o = &ev->u.order;
    assert_string_equal(o->id, "1001");
    assert_int_equal(o->n_items, 2);
    assert_int_equal(o->items[0].unit_price, 4990); /* 49.9 exactly */
    assert_int_equal(o->items[0].discount, 980);
    assert_int_equal(o->items[1].unit_price, 1200);
    assert_int_equal(o->subtotal, 4990 * 2 - 980 + 1200);
    assert_int_equal(o->shipping, 490);
    assert_int_equal(o->total, o->subtotal + 490);
    assert_int_equal(o->placed_at, ev->occurred_at); /* defaulted */
    assert_true(o->promised_to > o->promised_from);
    assert_true(o->has_customer);
    assert_string_equal(o->customer.email, "anna@example.de");
    assert_string_equal(cs_event_customer_id(ev), "c-7");
    cs_event_free(&ev);

    /* carrier normalized to lower case, and the stored body shows it */
    ev = parse_ok(ENV("shipment.created", "{\"id\":\"s1\",\"order_id\":\"1\",\"carrier\":\"DHL\",\"tracking_number\":\"1\"}"));
    assert_string_equal(ev->u.shipment.carrier, "dhl");
    assert_true(ev->normalized);
    assert_int_equal(cs_event_serialize(ev, NULL), CS_OK);
    assert_non_null(strstr(ev->body, "\"carrier\":\"dhl\""));
    cs_event_free(&ev);
    /* a body written again keeps the shop's decimals as they were sent
     * (not 0.10000000000000001) */
    ev = parse_ok(ENV("shipment.created", "{\"id\":\"s1\",\"order_id\":\"1\",\"carrier\":\"DHL\","
                                          "\"tracking_number\":\"1\",\"attributes\":{\"weight_kg\":0.1,\"volume\":9.90,"
                                          "\"big\":1e300,\"exact\":0.30000000000000004}}"));
    assert_int_equal(cs_event_serialize(ev, NULL), CS_OK);
    assert_non_null(strstr(ev->body, "\"weight_kg\":0.1,\"volume\":9.9,"));
    assert_non_null(strstr(ev->body, "\"big\":1e300,\"exact\":0.30000000000000004"));
    cs_event_free(&ev);

    /* how an order will be sent: its carrier lower-cased as well */
    ev = parse_ok(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\","
                                      "\"items\":[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":1,\"quantity\":1}],"
                                      "\"shipping\":{\"carrier\":\"DPD\",\"service\":\"classic\","
                                      "\"origin\":{\"country\":\"DE\",\"region\":\"BY\"},"
                                      "\"destination\":{\"country\":\"AT\",\"postal_code\":\"1010\"}}}"));
    assert_string_equal(ev->u.order.ship.carrier, "dpd");
    assert_string_equal(ev->u.order.ship.service, "classic");
    assert_string_equal(ev->u.order.ship.origin.region, "BY");
    assert_string_equal(ev->u.order.ship.destination.postal_code, "1010");
    assert_int_equal(cs_event_serialize(ev, NULL), CS_OK);
    assert_non_null(strstr(ev->body, "\"carrier\":\"dpd\""));
    cs_event_free(&ev);
    ev = parse_ok(ORDER);
    assert_null(ev->u.order.ship.carrier);
    assert_null(ev->u.order.ship.destination.country);
    cs_event_free(&ev);

    /* consents are tri-state */
    ev = parse_ok(ENV("customer.upserted", "{\"id\":\"c\",\"consents\":{\"sms\":{\"marketing\":false}}}"));
    assert_int_equal(ev->u.customer.consent[CS_CHANNEL_SMS][1], CS_CONSENT_NO);
    assert_int_equal(ev->u.customer.consent[CS_CHANNEL_SMS][0], CS_CONSENT_UNSET);
    assert_int_equal(ev->u.customer.consent[CS_CHANNEL_EMAIL][1], CS_CONSENT_UNSET);
    cs_event_free(&ev);
}

static void test_errors_name_the_field(void **state)
{
    (void)state;
    expect_err("{\"event_id\":\"x\",", CS_ERR_INVALID, "", "malformed JSON");
    expect_err("[1,2]", CS_ERR_INVALID, "", "expected an event object");
    expect_err("{\"event_id\":\"x\",\"event_id\":\"y\"}", CS_ERR_INVALID, "", "duplicate");
    expect_err("{\"event_id\":\"a\xff\"}", CS_ERR_INVALID, "", "malformed JSON");
    /* jansson's flag names stay out of the message */
    expect_err("{\"event_id\":\"a\\u0000b\"}", CS_ERR_INVALID, "", "holds \\u0000 (NUL)");
    expect_err(ENV("order.placd", "{}"), CS_ERR_RULE, "type", "unknown event type");
    expect_err("{\"type\":\"order.placed\",\"occurred_at\":\"2026-03-01T10:00:00Z\",\"data\":{}}",
               CS_ERR_INVALID, "event_id", "required");
    expect_err("{\"event_id\":\"\",\"type\":\"order.placed\",\"occurred_at\":\"2026-03-01T10:00:00Z\",\"data\":{}}",
               CS_ERR_INVALID, "event_id", "non-empty");
    expect_err("{\"event_id\":\"a\\u0001b\",\"type\":\"order.placed\",\"occurred_at\":\"2026-03-01T10:00:00Z\",\"data\":{}}",
               CS_ERR_INVALID, "event_id", "control");
    /* C1 controls (U+0080..U+009F, a Latin-1 file read as UTF-8) like C0 ones */
    expect_err("{\"event_id\":\"a\\u0085b\",\"type\":\"order.placed\",\"occurred_at\":\"2026-03-01T10:00:00Z\",\"data\":{}}",
               CS_ERR_INVALID, "event_id", "control");
    expect_err(ENV("order.placed", "{\"id\":\"1\\u0080\",\"customer_id\":\"c\",\"currency\":\"EUR\",\"items\":[]}"),
               CS_ERR_INVALID, "data.id", "control");
    expect_err(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\xc2\x9f\",\"currency\":\"EUR\",\"items\":[]}"),
               CS_ERR_INVALID, "data.customer_id", "control");
    expect_err(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\",\"items\":"
                                   "[{\"sku\":\"KAF\\u0085\",\"name\":\"A\",\"unit_price\":1,\"quantity\":1}]}"),
               CS_ERR_INVALID, "data.items[0].sku", "control");
    expect_err(ENV("shipment.created", "{\"id\":\"s\xc2\x90\",\"order_id\":\"o\",\"carrier\":\"dhl\",\"tracking_number\":\"1\"}"),
               CS_ERR_INVALID, "data.id", "control");
    expect_err("{\"event_id\":\"x\",\"type\":\"order.placed\",\"occurred_at\":\"yesterday\",\"data\":{}}",
               CS_ERR_INVALID, "occurred_at", "RFC 3339");
    expect_err("{\"event_id\":\"x\",\"type\":\"order.placed\",\"occurred_at\":\"2026-02-30T10:00:00Z\",\"data\":{}}",
               CS_ERR_INVALID, "occurred_at", NULL);
    expect_err("{\"schema\":2,\"event_id\":\"x\",\"type\":\"order.placed\",\"occurred_at\":\"2026-03-01T10:00:00Z\",\"data\":{}}",
               CS_ERR_RULE, "schema", "not supported");
    expect_err("{\"event_id\":\"x\",\"typ\":\"order.placed\"}", CS_ERR_INVALID, "typ", "unknown field");
    expect_err(ENV("order.placed", "[]"), CS_ERR_INVALID, "data", "expected an object");
    expect_err(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\",\"itmes\":[]}"),
               CS_ERR_INVALID, "data.itmes", "unknown field");
    expect_err(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"euro\",\"items\":[]}"),
               CS_ERR_INVALID, "data.currency", "ISO 4217");
    expect_err(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\",\"items\":[]}"),
               CS_ERR_INVALID, "data.items", "1..500");
    /* ISO 4217's codes that are no money; its X-codes that are money pass */
    expect_err(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"XXX\",\"items\":"
                                   "[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":1,\"quantity\":1}]}"),
               CS_ERR_RULE, "data.currency",
               "data.currency: expected the ISO 4217 code of a currency like EUR, got \"XXX\", which is "
               "no currency");
    const char *const not_money[] = { "XTS", "XAU", "XAG", "XPT", "XPD", "XDR", "XSU", "XUA", "XBA",
                                      "XBD" };
    for (size_t i = 0; i < sizeof not_money / sizeof *not_money; i++) {
        char ev[512];
        snprintf(ev, sizeof ev,
                 ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"%s\",\"items\":"
                                     "[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":1,\"quantity\":1}]}"),
                 not_money[i]);
        expect_err(ev, CS_ERR_RULE, "data.currency", not_money[i]);
    }
    const char *const money[] = { "XOF", "XAF", "XPF", "XCD", "CHF" };
    for (size_t i = 0; i < sizeof money / sizeof *money; i++) {
        char ev[512];
        snprintf(ev, sizeof ev,
                 ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"%s\",\"items\":"
                                     "[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":1,\"quantity\":1}]}"),
                 money[i]);
        cs_event_t *ok = parse_ok(ev);
        cs_event_free(&ok);
    }
    /* a line item's name says what was bought: empty or blank is none */
    const char *const blank[] = { "", " ", "\\t \\n", "\u00a0", "\u3000\u200b", "\\u2003" };
    for (size_t i = 0; i < sizeof blank / sizeof *blank; i++) {
        char ev[512];
        snprintf(ev, sizeof ev,
                 ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\",\"items\":"
                                     "[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":1,\"quantity\":1},"
                                     "{\"sku\":\"b\",\"name\":\"%s\",\"unit_price\":1,\"quantity\":1}]}"),
                 blank[i]);
        expect_err(ev, CS_ERR_INVALID, "data.items[1].name",
                   i ? "data.items[1].name: expected the item's name (what the customer bought), got "
                       "only white space"
                     : "got an empty string");
    }
    cs_event_t *named = parse_ok(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\","
                                     "\"items\":[{\"sku\":\"a\",\"name\":\" T\\u00e4sse \",\"unit_price\":1,\"quantity\":1}]}"));
    cs_event_free(&named);
    expect_err(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\",\"items\":"
                                   "[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":1,\"quantity\":1},"
                                   "{\"sku\":\"b\",\"name\":\"B\",\"unit_price\":1,\"quantity\":0}]}"),
               CS_ERR_RULE, "data.items[1].quantity", "got 0");
    expect_err(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\",\"items\":"
                                   "[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":\"1.234\",\"quantity\":1}]}"),
               CS_ERR_INVALID, "data.items[0].unit_price", "at most 2 decimals");
    /* an amount is echoed as it was sent (the shortest text of its double),
     * not in 17 digits (1.0049999999999999) */
    expect_err(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\",\"items\":"
                                   "[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":1.005,\"quantity\":1}]}"),
               CS_ERR_INVALID, "data.items[0].unit_price",
               "data.items[0].unit_price: expected an amount >= 0 with at most 2 decimals like 49.90, got 1.005");
    expect_err(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\",\"items\":"
                                   "[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":0.1,\"quantity\":1}],"
                                   "\"totals\":{\"tax\":-0.3}}"),
               CS_ERR_INVALID, "data.totals.tax", "got -0.3");
    expect_err(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\",\"items\":"
                                   "[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":1234567890123456789,\"quantity\":1}]}"),
               CS_ERR_INVALID, "data.items[0].unit_price", "at most 1000000000000.00, got 1234567890123456789");
    expect_err(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\",\"items\":"
                                   "[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":-1,\"quantity\":1}]}"),
               CS_ERR_INVALID, "data.items[0].unit_price", ">= 0");
    /* a line total (unit_price x quantity, in cents) past what an int64
     * holds is refused naming the line, not wrapped into a wrong total;
     * so are lines adding up past it */
    expect_err(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\",\"items\":"
                                   "[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":\"1000000000000.00\",\"quantity\":1000000}]}"),
               CS_ERR_RULE, "data.items[0].quantity",
               "data.items[0].quantity: unit_price x quantity is more than 92233720368547758.07");
    expect_err(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\",\"items\":"
                                   "[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":\"922337203685.47\",\"quantity\":60000},"
                                   "{\"sku\":\"b\",\"name\":\"B\",\"unit_price\":\"922337203685.47\",\"quantity\":60000}]}"),
               CS_ERR_RULE, "data.items[1]", "the lines add up to more than 92233720368547758.07");
    expect_err(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\",\"items\":"
                                   "[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":\"922337203685.47\",\"quantity\":100000}],"
                                   "\"totals\":{\"shipping\":\"1000000000000\"}}"),
               CS_ERR_RULE, "data.totals", "subtotal + shipping + tax is more than 92233720368547758.07");
    /* the largest line that fits is fine */
    cs_event_t *big = parse_ok(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\",\"items\":"
                                   "[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":\"922337203685.47\",\"quantity\":100000}]}"));
    assert_true(big->u.order.total == INT64_C(9223372036854700000));
    cs_event_free(&big);
    /* well-formed but above the limit: the message says the limit */
    expect_err(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\",\"items\":"
                                   "[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":\"9999999999999.00\",\"quantity\":1}]}"),
               CS_ERR_INVALID, "data.items[0].unit_price",
               "data.items[0].unit_price: expected an amount of at most 1000000000000.00, got \"9999999999999.00\"");
    expect_err(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\",\"items\":"
                                   "[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":1,\"quantity\":1}],"
                                   "\"totals\":{\"shipping\":10000000000000}}"),
               CS_ERR_INVALID, "data.totals.shipping", "at most 1000000000000.00, got 10000000000000");
    expect_err(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\",\"items\":"
                                   "[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":1,\"quantity\":1,\"discount\":2}]}"),
               CS_ERR_RULE, "data.items[0].discount", "exceeds");
    expect_err(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\",\"items\":"
                                   "[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":1,\"quantity\":1}],"
                                   "\"promised_delivery\":{\"earliest\":\"2026-03-05\",\"latest\":\"2026-03-03\"}}"),
               CS_ERR_RULE, "data.promised_delivery.latest", "before earliest");
    expect_err(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\",\"items\":"
                                   "[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":1,\"quantity\":1}],"
                                   "\"customer\":{\"id\":\"other\"}}"),
               CS_ERR_RULE, "data.customer.id", "must equal");
    expect_err(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\",\"items\":"
                                   "[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":1,\"quantity\":1}],"
                                   "\"shipping\":{\"carrier\":\"dhl\",\"destination\":{\"country\":\"Germany\"}}}"),
               CS_ERR_INVALID, "data.shipping.destination.country", "two-letter");
    expect_err(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\",\"items\":"
                                   "[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":1,\"quantity\":1}],"
                                   "\"shipping\":{\"carier\":\"dhl\"}}"),
               CS_ERR_INVALID, "data.shipping.carier", "unknown field");
    expect_err(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\",\"items\":"
                                   "[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":1,\"quantity\":1}],"
                                   "\"shipping\":\"dhl\"}"),
               CS_ERR_INVALID, "data.shipping", "object");
    expect_err(ENV("customer.upserted", "{\"id\":\"c\",\"email\":\"not-an-email\"}"), CS_ERR_INVALID,
               "data.email", "email address");
    expect_err(ENV("customer.upserted", "{\"id\":\"c\",\"phone\":\"0151 123\"}"), CS_ERR_INVALID,
               "data.phone", "E.164");
    expect_err(ENV("customer.upserted", "{\"id\":\"c\",\"locale\":\"german\"}"), CS_ERR_INVALID,
               "data.locale", "locale");
    expect_err(ENV("customer.upserted", "{\"id\":\"c\",\"timezone\":\"CET+1 \"}"), CS_ERR_INVALID,
               "data.timezone", "IANA");
    expect_err(ENV("customer.upserted", "{\"id\":\"c\",\"consents\":{\"fax\":{}}}"), CS_ERR_INVALID,
               "data.consents.fax", "unknown field");
    expect_err(ENV("customer.upserted", "{\"id\":\"c\",\"consents\":{\"sms\":{\"marketing\":\"yes\"}}}"),
               CS_ERR_INVALID, "data.consents.sms.marketing", "true or false");
    expect_err(ENV("tracking.event", "{\"carrier\":\"dhl\",\"tracking_number\":\"1\",\"status\":\"lost\"}"),
               CS_ERR_INVALID, "data.status", "info_received");
    /* a missing status says what would do, the raw code or text included */
    expect_err(ENV("tracking.event", "{\"carrier\":\"dhl\",\"tracking_number\":\"1\"}"),
               CS_ERR_INVALID, "data.status", "carrier_code / carrier_text");
    expect_err(ENV("shipment.created", "{\"id\":\"s\",\"order_id\":\"o\",\"carrier\":\"dhl\",\"tracking_number\":\"1\","
                                       "\"destination\":{\"country\":\"Germany\"}}"),
               CS_ERR_INVALID, "data.destination.country", "two-letter");
    expect_err(ENV("feedback.submitted", "{\"id\":\"f\",\"kind\":\"review\",\"score\":6}"), CS_ERR_RULE,
               "data.score", "1..5");
    expect_err(ENV("feedback.submitted", "{\"id\":\"f\",\"kind\":\"nps\",\"score\":11}"), CS_ERR_RULE,
               "data.score", "0..10");
    expect_err(ENV("return.requested", "{\"id\":\"r\",\"order_id\":\"o\",\"resolution\":\"money\",\"items\":[]}"),
               CS_ERR_INVALID, "data.resolution", "refund");
    expect_err(ENV("ticket.updated", "{\"id\":\"t\",\"status\":\"done\"}"), CS_ERR_INVALID,
               "data.status", "open");
    expect_err(ENV("message.status", "{\"message_id\":\"m\",\"status\":\"read\"}"), CS_ERR_INVALID,
               "data.status", "sent");
}

/* A promise's latest day given as a plain date is that whole day: a
 * promise for the day of the purchase is not "before" it, wherever the
 * purchase was written (18:10 in São Paulo is 21:10 UTC, after the date's
 * midnight UTC). Without the shop's zone the purchase's day is the one in
 * its own offset as written; a day genuinely before it is still refused. */
#define SAMEDAY(at, placed, promise)                                                           \
    "{\"event_id\":\"e-1\",\"type\":\"order.placed\",\"occurred_at\":\"" at "\",\"data\":"       \
    "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\",\"items\":[{\"sku\":\"a\","      \
    "\"name\":\"A\",\"unit_price\":1,\"quantity\":1}]" placed ",\"promised_delivery\":" promise "}}"

static void test_promise_plain_date_is_a_day(void **state)
{
    (void)state;
    static const char *const ok[] = {
        SAMEDAY("2026-12-05T21:10:41Z", ",\"placed_at\":\"2026-12-05T18:10:41-03:00\"",
                "{\"latest\":\"2026-12-05\"}"),
        /* placed_at from occurred_at, as written */
        SAMEDAY("2026-12-05T18:10:41-03:00", "", "{\"latest\":\"2026-12-05\"}"),
        SAMEDAY("2026-12-05T23:59:59Z", "", "{\"latest\":\"2026-12-05\"}"),
        /* an earliest time that day, or a latest time that day after a date */
        SAMEDAY("2026-12-01T10:00:00Z", "",
                "{\"earliest\":\"2026-12-05T20:00:00-03:00\",\"latest\":\"2026-12-05\"}"),
        SAMEDAY("2026-12-01T10:00:00Z", "",
                "{\"earliest\":\"2026-12-05\",\"latest\":\"2026-12-05T01:00:00+03:00\"}"),
        SAMEDAY("2026-12-05T21:10:41Z", ",\"placed_at\":\"2026-12-05T18:10:41-03:00\"",
                "{\"latest\":\"2026-12-08\"}"),
    };
    for (size_t i = 0; i < CS_ARRAY_LEN(ok); i++) {
        cs_event_t *ev = parse_ok(ok[i]);
        assert_true(ev->u.order.promised_to > 0);
        cs_event_free(&ev);
    }
    /* the day before the purchase's, as written: refused (01:00 in Moscow
     * on the 5th is the 4th in UTC, but the producer meant the 5th) */
    expect_err(SAMEDAY("2026-12-05T21:10:41Z", ",\"placed_at\":\"2026-12-05T18:10:41-03:00\"",
                       "{\"latest\":\"2026-12-04\"}"),
               CS_ERR_RULE, "data.promised_delivery.latest", "before earliest");
    expect_err(SAMEDAY("2026-12-04T22:00:00Z", ",\"placed_at\":\"2026-12-05T01:00:00+03:00\"",
                       "{\"latest\":\"2026-12-04\"}"),
               CS_ERR_RULE, "data.promised_delivery.latest", "before earliest");
    expect_err(SAMEDAY("2026-12-01T10:00:00Z", "",
                       "{\"earliest\":\"2026-12-05T20:00:00-03:00\",\"latest\":\"2026-12-04\"}"),
               CS_ERR_RULE, "data.promised_delivery.latest", "before earliest");
    /* two times still compare as times */
    expect_err(SAMEDAY("2026-12-01T10:00:00Z", "",
                       "{\"earliest\":\"2026-12-05T20:00:00Z\",\"latest\":\"2026-12-05T19:00:00Z\"}"),
               CS_ERR_RULE, "data.promised_delivery.latest", "before earliest");
}

/* A purchase dated more than a day after its receipt is refused like an
 * event dated so, naming data.placed_at; up to a day ahead is a zone slip. */
static void test_placed_at_ahead(void **state)
{
    (void)state;
    cs_ms_t now;
    assert_true(cs_time_parse("2026-12-05T21:00:00Z", &now));
    cs_err_t err;
    cs_err_clear(&err);
    cs_event_t *ev = parse_ok(SAMEDAY("2026-12-05T21:00:00Z", ",\"placed_at\":\"2028-01-09T10:00:00Z\"",
                                      "{\"latest\":\"2028-01-12\"}"));
    assert_int_equal(cs_event_check_received(ev, now, &err), CS_ERR_INVALID);
    assert_string_equal(err.field, "data.placed_at");
    assert_non_null(strstr(err.msg, "data.placed_at: more than a day in the future, got "
                                    "\"2028-01-09T10:00:00Z\" (received at "));
    cs_event_free(&ev);
    ev = parse_ok(SAMEDAY("2026-12-05T21:00:00Z", ",\"placed_at\":\"2026-12-06T20:00:00Z\"",
                          "{\"latest\":\"2026-12-08\"}"));
    assert_int_equal(cs_event_check_received(ev, now, &err), CS_OK);
    cs_event_free(&ev);
    /* occurred_at ahead is still named first */
    ev = parse_ok(SAMEDAY("2026-12-07T21:00:00Z", ",\"placed_at\":\"2028-01-09T10:00:00Z\"",
                          "{\"latest\":\"2028-01-12\"}"));
    assert_int_equal(cs_event_check_received(ev, now, &err), CS_ERR_INVALID);
    assert_string_equal(err.field, "occurred_at");
    cs_event_free(&ev);
}

/* An integer beyond 64 bits (which jansson refuses as it reads it) is
 * refused at its field, saying what the field expects; one in a free-form
 * place names its path; integers up to 64 bits stay exact. */
static void test_integer_too_big(void **state)
{
    (void)state;
#define ITEM(q) ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\",\"items\":" \
                                    "[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":1,\"quantity\":1}," \
                                    "{\"sku\":\"b\",\"name\":\"B\",\"unit_price\":1,\"quantity\":" q "}]}")
    expect_err(ITEM("100000000000000000000"), CS_ERR_INVALID, "data.items[1].quantity",
               "data.items[1].quantity: expected an integer 1..1000000, got 1e+20");
    expect_err(ITEM("-100000000000000000000"), CS_ERR_INVALID, "data.items[1].quantity",
               "expected an integer 1..1000000, got -1e+20");
    expect_err(ITEM("1e20"), CS_ERR_INVALID, "data.items[1].quantity", "got 1e+20");
    expect_err(ITEM("1.5"), CS_ERR_INVALID, "data.items[1].quantity", "got 1.5");
    /* a whole number written as a real is told as one, not as the integer
     * the field asked for ("expected an integer 1..1000000, got 2") */
    expect_err(ITEM("2.0"), CS_ERR_INVALID, "data.items[1].quantity",
               "data.items[1].quantity: expected an integer 1..1000000, got 2.0 (a number with a "
               "decimal point or an exponent; send 2)");
    expect_err(ENV("feedback.submitted", "{\"id\":\"f\",\"kind\":\"nps\",\"score\":9E0}"),
               CS_ERR_INVALID, "data.score", "data.score: expected an integer 0..10, got 9.0 (");
    expect_err(ITEM("9223372036854775807"), CS_ERR_RULE, "data.items[1].quantity",
               "got 9223372036854775807");
    expect_err(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\",\"items\":"
                                   "[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":123456789012345678901,\"quantity\":1}]}"),
               CS_ERR_INVALID, "data.items[0].unit_price", "expected an amount of at most");
    expect_err(ENV("feedback.submitted", "{\"id\":\"f\",\"kind\":\"nps\",\"score\":99999999999999999999}"),
               CS_ERR_INVALID, "data.score", "data.score: expected an integer 0..10, got 1e+20");
    expect_err(ENV("return.requested", "{\"id\":\"r\",\"order_id\":\"1\",\"resolution\":\"refund\","
                                       "\"items\":[{\"sku\":\"a\",\"quantity\":18446744073709551616}]}"),
               CS_ERR_INVALID, "data.items[0].quantity", "got 1.8446744073709552e+19");
    expect_err("{\"schema\":100000000000000000000,\"event_id\":\"x\"}", CS_ERR_INVALID, "schema",
               "schema: expected the integer 1, got 1e+20");
    expect_err(ENV("customer.upserted", "{\"id\":\"c\",\"attributes\":{\"n\":[1,{\"big\":100000000000000000000}]}}"),
               CS_ERR_INVALID, "data.attributes.n[1].big",
               "data.attributes.n[1].big: expected a number within 64-bit integers");
    /* one line of NDJSON likewise */
    const char *line = ITEM("100000000000000000000");
    cs_event_t *ev = NULL;
    cs_err_t err;
    assert_int_equal(cs_event_parse_line(line, strlen(line), 7, 2, &ev, &err), CS_ERR_INVALID);
    assert_string_equal(err.field, "data.items[1].quantity");
    /* beyond a double's range too (1e400, an integer of more than 308
     * digits): at its field, saying what it expects and what came */
    expect_err(ITEM("1e400"), CS_ERR_INVALID, "data.items[1].quantity",
               "data.items[1].quantity: expected an integer 1..1000000, got a number too large "
               "for any number type");
    expect_err(ITEM("-1.5E+999"), CS_ERR_INVALID, "data.items[1].quantity",
               "data.items[1].quantity: expected an integer 1..1000000, got a number too large "
               "for any number type");
    expect_err(ENV("feedback.submitted", "{\"id\":\"f\",\"kind\":\"nps\",\"score\":1e400}"),
               CS_ERR_INVALID, "data.score",
               "data.score: expected an integer 0..10, got a number too large for any number type");
    expect_err(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\",\"items\":"
                                   "[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":1e400,\"quantity\":1}]}"),
               CS_ERR_INVALID, "data.items[0].unit_price",
               "data.items[0].unit_price: expected an amount of at most 1000000000000.00, got a "
               "number too large for any number type");
    /* two such numbers: the field that fails first is said rightly,
     * whichever came first in the text (the largest double was shown) */
    expect_err(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\",\"items\":"
                                   "[{\"sku\":\"a\",\"name\":\"A\",\"quantity\":100000000000000000000,\"unit_price\":1e400}]}"),
               CS_ERR_INVALID, "data.items[0].unit_price",
               "data.items[0].unit_price: expected an amount of at most 1000000000000.00, got a "
               "number too large for any number type");
    expect_err(ENV("customer.upserted", "{\"id\":\"c\",\"attributes\":{\"n\":[1,{\"big\":-1e400}]}}"),
               CS_ERR_INVALID, "data.attributes.n[1].big",
               "data.attributes.n[1].big: expected a number within the range of a double");
    expect_err(ENV("customer.upserted", "{\"id\":1e400}"), CS_ERR_INVALID, "data.id",
               "data.id: expected a string, got a number");
    char digits[600];
    int k = snprintf(digits, sizeof digits, "%s",
                     ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\","
                                         "\"items\":[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":1,"
                                         "\"quantity\":"));
    k--; /* (ENV's closing brace: the number goes before it) */
    for (int d = 0; d < 400; d++)
        digits[k++] = '9';
    snprintf(digits + k, sizeof digits - (size_t)k, "}]}}");
    expect_err(digits, CS_ERR_INVALID, "data.items[0].quantity",
               "data.items[0].quantity: expected an integer 1..1000000, got a number too large "
               "for any number type");
    /* one line of NDJSON likewise */
    line = ITEM("1e400");
    cs_err_clear(&err);
    assert_int_equal(cs_event_parse_line(line, strlen(line), 7, 2, &ev, &err), CS_ERR_INVALID);
    assert_string_equal(err.field, "data.items[1].quantity");
    assert_non_null(strstr(err.msg, "got a number too large for any number type"));
    /* exact below 2^63 */
    ev = parse_ok(ENV("customer.upserted", "{\"id\":\"c\",\"attributes\":{\"n\":9223372036854775807}}"));
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(ev->json, "data"), "attributes"), "n")),
                     INT64_MAX);
    cs_event_free(&ev);
#undef ITEM
}

/* An event or a purchase dated before 2000 (a zero, seconds read as
 * milliseconds) is refused naming its field; 2000-01-01 itself is taken. */
static void test_time_before_2000(void **state)
{
    (void)state;
    cs_ms_t now;
    assert_true(cs_time_parse("2026-12-05T21:00:00Z", &now));
    cs_err_t err;
    cs_err_clear(&err);
    cs_event_t *ev = parse_ok(SAMEDAY("1970-01-01T00:00:01Z", "", "{\"latest\":\"2026-12-08\"}"));
    assert_int_equal(cs_event_check_received(ev, now, &err), CS_ERR_INVALID);
    assert_string_equal(err.field, "occurred_at");
    assert_string_equal(err.msg, "occurred_at: expected a time from 2000-01-01 on, got "
                                 "\"1970-01-01T00:00:01Z\"; check how the sender writes its times");
    cs_event_free(&ev);
    ev = parse_ok(SAMEDAY("2026-12-05T21:00:00Z", ",\"placed_at\":\"1970-01-01T00:00:00Z\"",
                          "{\"latest\":\"2026-12-08\"}"));
    assert_int_equal(cs_event_check_received(ev, now, &err), CS_ERR_INVALID);
    assert_string_equal(err.field, "data.placed_at");
    cs_event_free(&ev);
    ev = parse_ok(SAMEDAY("2000-01-01T00:00:00Z", "", "{\"latest\":\"2000-01-03\"}"));
    assert_int_equal(cs_event_check_received(ev, now, &err), CS_OK);
    cs_event_free(&ev);
    /* before 1970 it is still a time, only too early: told so, as later
     * times before 2000 are, not as one that is no RFC 3339 time */
    expect_err(SAMEDAY("1969-12-31T23:59:59Z", "", "{\"latest\":\"2026-12-08\"}"), CS_ERR_INVALID,
               "occurred_at",
               "occurred_at: expected a time from 2000-01-01 on, got \"1969-12-31T23:59:59Z\"; check "
               "how the sender writes its times");
    expect_err(SAMEDAY("2026-12-05T21:00:00Z", ",\"placed_at\":\"0001-01-01T00:00:00.5+01:00\"",
                       "{\"latest\":\"2026-12-08\"}"),
               CS_ERR_INVALID, "data.placed_at", "data.placed_at: expected a time from 2000-01-01 on");
    expect_err(SAMEDAY("2026-12-05T21:00:00Z", "", "{\"latest\":\"1900-02-28\"}"), CS_ERR_INVALID,
               "data.promised_delivery.latest", "expected a date from 2000-01-01 on");
    /* what is malformed before 1970 stays so */
    expect_err(SAMEDAY("1969-02-29T10:00:00Z", "", "{\"latest\":\"2026-12-08\"}"), CS_ERR_INVALID,
               "occurred_at", "expected an RFC 3339 time");
    expect_err(SAMEDAY("1969-12-31T25:00:00Z", "", "{\"latest\":\"2026-12-08\"}"), CS_ERR_INVALID,
               "occurred_at", "expected an RFC 3339 time");
    expect_err(SAMEDAY("2026-12-05T21:00:00Z", ",\"placed_at\":\"1969-12-31\"",
                       "{\"latest\":\"2026-12-08\"}"),
               CS_ERR_INVALID, "data.placed_at", "expected an RFC 3339 time");
    /* a time without its zone, and a date where a time is wanted, are
     * named as what they are */
    expect_err(SAMEDAY("2026-12-05T21:00:00", "", "{\"latest\":\"2026-12-08\"}"), CS_ERR_INVALID,
               "occurred_at",
               "occurred_at: expected an RFC 3339 time like 2026-03-01T10:15:00Z, got "
               "\"2026-12-05T21:00:00\" (it has no zone: add Z for UTC or an offset like +01:00)");
    expect_err(SAMEDAY("2026-12-05T21:00:00Z", ",\"placed_at\":\"2026-12-05T20:59:59.250\"",
                       "{\"latest\":\"2026-12-08\"}"),
               CS_ERR_INVALID, "data.placed_at", "(it has no zone: add Z");
    expect_err(SAMEDAY("2026-12-05", "", "{\"latest\":\"2026-12-08\"}"), CS_ERR_INVALID,
               "occurred_at", "got \"2026-12-05\" (a date alone: the time of day and its zone "
               "are needed)");
    expect_err(SAMEDAY("2026-12-05T25:00:00", "", "{\"latest\":\"2026-12-08\"}"), CS_ERR_INVALID,
               "occurred_at", "got \"2026-12-05T25:00:00\"");
}

/* A customer's time zone is one the system's database has, checked when
 * the event is received: "Europe/Berlinn" passes the syntax, not this.
 * An order whose embedded customer names such a zone is kept without it,
 * saying so; an event read back (parsed again) is never refused for it. */
static void test_unknown_time_zone(void **state)
{
    (void)state;
    cs_ms_t now;
    assert_true(cs_time_parse("2026-03-01T12:00:00Z", &now));
    cs_err_t err;
    static const char *const bad[] = { "Mars/Olympus", "Europe/Berlinn", "Europe/Berlin/X",
                                       "America/Argentina" /* a folder */ };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[256];
        snprintf(text, sizeof text,
                 ENV("customer.upserted", "{\"id\":\"c\",\"timezone\":\"%s\"}"), bad[i]);
        cs_event_t *ev = parse_ok(text); /* its form is right: read back, it parses */
        cs_err_clear(&err);
        assert_int_equal(cs_event_check_received(ev, now, &err), CS_ERR_RULE);
        assert_string_equal(err.field, "data.timezone");
        assert_non_null(strstr(err.msg, "data.timezone: expected an IANA time zone like "
                                        "Europe/Berlin, got \""));
        assert_non_null(strstr(err.msg, bad[i]));
        cs_event_free(&ev);
        /* asked again (the name is cached as none): the same answer */
        ev = parse_ok(text);
        assert_int_equal(cs_event_check_received(ev, now, &err), CS_ERR_RULE);
        cs_event_free(&ev);
    }
    static const char *const good[] = { "Europe/Berlin", "UTC", "America/Sao_Paulo",
                                        "America/Argentina/Buenos_Aires", "Etc/GMT-2" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char text[256];
        snprintf(text, sizeof text,
                 ENV("customer.upserted", "{\"id\":\"c\",\"timezone\":\"%s\"}"), good[i]);
        for (int twice = 0; twice < 2; twice++) {
            cs_event_t *ev = parse_ok(text);
            if (cs_event_check_received(ev, now, &err) != CS_OK)
                fail_msg("%s: %s", good[i], err.msg);
            cs_event_free(&ev);
        }
    }

    /* an order is kept, without its customer's unknown zone */
    const char *order =
        ENV("order.placed", "{\"id\":\"1001\",\"customer_id\":\"c-7\",\"currency\":\"EUR\","
                            "\"items\":[{\"sku\":\"KAF\",\"name\":\"Kaffee\","
                            "\"unit_price\":\"9.90\",\"quantity\":1}],"
                            "\"customer\":{\"id\":\"c-7\",\"email\":\"anna@example.de\","
                            "\"timezone\":\"Mars/Olympus\",\"locale\":\"de\"}}");
    cs_event_t *ev = parse_ok(order);
    cs_err_clear(&err);
    assert_int_equal(cs_event_check_received(ev, now, &err), CS_OK);
    assert_null(ev->u.order.customer.timezone);
    assert_string_equal(ev->u.order.customer.email, "anna@example.de");
    assert_string_equal(ev->warning_field, "data.customer.timezone");
    assert_non_null(strstr(ev->warning, "data.customer.timezone: expected an IANA time zone like "
                                        "Europe/Berlin, got \"Mars/Olympus\""));
    assert_non_null(strstr(ev->warning, "the order is kept"));
    /* what is stored has no zone, and the rest of the customer */
    assert_non_null(ev->body);
    assert_null(strstr(ev->body, "Mars"));
    assert_non_null(strstr(ev->body, "\"email\":\"anna@example.de\""));
    cs_event_t *back = parse_ok(ev->body);
    assert_true(back->u.order.has_customer);
    assert_null(back->u.order.customer.timezone);
    assert_string_equal(back->u.order.customer.locale, "de");
    cs_event_free(&back);
    cs_event_free(&ev);
    /* a known zone is kept as sent, with no warning */
    char text[1024];
    const char *at = strstr(order, "Mars/Olympus");
    snprintf(text, sizeof text, "%.*sEurope/Berlin%s", (int)(at - order), order,
             at + strlen("Mars/Olympus"));
    ev = parse_ok(text);
    assert_int_equal(cs_event_check_received(ev, now, &err), CS_OK);
    assert_string_equal(ev->u.order.customer.timezone, "Europe/Berlin");
    assert_null(ev->warning);
    assert_non_null(strstr(ev->body, "Europe/Berlin"));
    cs_event_free(&ev);
}

/* An email address whose local part is not ASCII is refused when received
 * (it reaches its mailbox only where every server takes SMTPUTF8); one with
 * an international domain is taken (sent in its ASCII form). An order is
 * kept without such an address of its customer, and a second thing left
 * out joins the first warning. */
static void test_email_local_part_ascii(void **state)
{
    (void)state;
    cs_ms_t now;
    assert_true(cs_time_parse("2026-03-01T12:00:00Z", &now));
    cs_err_t err;
    cs_event_t *ev = parse_ok(ENV("customer.upserted",
                                  "{\"id\":\"c\",\"email\":\"j\u00fcrgen@example.de\"}"));
    assert_int_equal(cs_event_check_received(ev, now, &err), CS_ERR_RULE);
    assert_string_equal(err.field, "data.email");
    assert_non_null(strstr(err.msg, "data.email: expected an email address whose part before the "
                                    "@ is ASCII"));
    assert_non_null(strstr(err.msg, "got \"j\xC3\xBCrgen@example.de\""));
    cs_event_free(&ev);
    ev = parse_ok(ENV("customer.upserted",
                      "{\"id\":\"c\",\"email\":\"kunde@b\u00e4ckerei.de\"}"));
    assert_int_equal(cs_event_check_received(ev, now, &err), CS_OK);
    cs_event_free(&ev);

    ev = parse_ok(ENV("order.placed",
                      "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\","
                      "\"items\":[{\"sku\":\"K\",\"name\":\"K\",\"unit_price\":1,\"quantity\":1}],"
                      "\"customer\":{\"id\":\"c\",\"name\":\"J\",\"email\":\"j\u00fcrgen@example.de\","
                      "\"timezone\":\"Mars/Olympus\"}}"));
    assert_int_equal(cs_event_check_received(ev, now, &err), CS_OK);
    assert_null(ev->u.order.customer.email);
    assert_null(ev->u.order.customer.timezone);
    assert_string_equal(ev->u.order.customer.name, "J");
    assert_string_equal(ev->warning_field, "data.customer");
    assert_non_null(strstr(ev->warning, "data.customer.timezone: expected"));
    assert_non_null(strstr(ev->warning, "; data.customer.email: expected"));
    assert_non_null(strstr(ev->warning, "; left out: the order is kept"));
    assert_null(strstr(ev->body, "example.de"));
    assert_null(strstr(ev->body, "Mars"));
    cs_event_free(&ev);
}

/* An email address longer than SMTP carries (64 characters before the @,
 * 254 in all) is refused when received, naming data.email and the limits;
 * an order is kept without it, with a warning. The limits themselves pass. */
static void test_email_length(void **state)
{
    (void)state;
    cs_ms_t now;
    assert_true(cs_time_parse("2026-03-01T12:00:00Z", &now));
    char local64[65], local65[66], dom[200], body[512];
    memset(local64, 'a', 64);
    local64[64] = '\0';
    memset(local65, 'a', 65);
    local65[65] = '\0';
    memset(dom, 'd', 185);
    memcpy(dom + 185, ".de", 4); /* 64 + 1 + 188 = 253 characters */
    struct {
        const char *local, *domain;
        cs_rc rc;
    } cases[] = {
        { local64, "example.de", CS_OK },
        { local65, "example.de", CS_ERR_RULE },
        { local64, dom, CS_OK },
        { "ab", dom, CS_OK },
    };
    cs_err_t err;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(body, sizeof body, "{\"id\":\"c\",\"email\":\"%s@%s\"}", cases[i].local,
                 cases[i].domain);
        size_t tn = strlen(body) + 256;
        char *text = cs_malloc(tn);
        assert_non_null(text);
        snprintf(text, tn, ENV("customer.upserted", "%s"), body);
        cs_event_t *ev = parse_ok(text);
        cs_free(text);
        assert_int_equal(cs_event_check_received(ev, now, &err), cases[i].rc);
        if (cases[i].rc) {
            assert_string_equal(err.field, "data.email");
            assert_non_null(strstr(err.msg, "at most 254 characters, 64 of them before the @"));
        }
        cs_event_free(&ev);
    }
    /* 255 in all, in an order's customer: the order is kept without it */
    char dom2[200];
    memset(dom2, 'd', 187);
    memcpy(dom2 + 187, ".de", 4); /* 64 + 1 + 190 = 255 */
    snprintf(body, sizeof body,
             "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\",\"items\":[{\"sku\":"
             "\"K\",\"name\":\"K\",\"unit_price\":1,\"quantity\":1}],\"customer\":{\"id\":"
             "\"c\",\"email\":\"%s@%s\"}}",
             local64, dom2);
    size_t tn = strlen(body) + 256;
    char *text = cs_malloc(tn);
    assert_non_null(text);
    snprintf(text, tn, ENV("order.placed", "%s"), body);
    cs_event_t *ev = parse_ok(text);
    cs_free(text);
    assert_int_equal(cs_event_check_received(ev, now, &err), CS_OK);
    assert_null(ev->u.order.customer.email);
    assert_string_equal(ev->warning_field, "data.customer.email");
    assert_non_null(strstr(ev->warning, "got 255 characters, 64 before the @"));
    cs_event_free(&ev);
}

static void test_money(void **state)
{
    (void)state;
    struct {
        const char *json;
        bool ok;
        int64_t minor;
    } cases[] = {
        {"49.9", true, 4990},     {"\"49.90\"", true, 4990}, {"5", true, 500},
        {"0.1", true, 10},        {"\"0.07\"", true, 7},     {"0", true, 0},
        {"19.99", true, 1999},    {"\"1.230\"", true, 123},  {"\"1.234\"", false, 0},
        {"-1", false, 0},         {"\"-1.00\"", false, 0},   {"1e2", true, 10000},
        {"\"1e2\"", false, 0},    {"\"\"", false, 0},        {"\".5\"", false, 0},
        {"\"5.\"", false, 0},     {"true", false, 0},        {"null", false, 0},
        {"1e300", false, 0},      {"\"99999999999999999999\"", false, 0},
        {"\"1000000000000.00\"", true, INT64_C(100000000000000)},
        {"1000000000000", true, INT64_C(100000000000000)},
        {"\"1000000000000.01\"", false, 0},
    };
    for (size_t i = 0; i < CS_ARRAY_LEN(cases); i++) {
        json_t *v = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
        int64_t m = -1;
        assert_non_null(v);
        bool ok = cs_money_from_json(v, &m);
        if (ok != cases[i].ok || (ok && m != cases[i].minor))
            fail_msg("money %s: ok %d minor %lld", cases[i].json, ok, (long long)m);
        json_decref(v);
    }
    /* why an amount is refused: too large (and well-formed) or malformed */
    struct {
        const char *json;
        cs_money_check_t want;
    } why[] = {
        {"\"9999999999999.00\"", CS_MONEY_TOO_LARGE}, {"\"99999999999999999999\"", CS_MONEY_TOO_LARGE},
        {"1000000000001", CS_MONEY_TOO_LARGE},         {"1e300", CS_MONEY_TOO_LARGE},
        {"\"1000000000000.01\"", CS_MONEY_TOO_LARGE},  {"\"99999999999999999999x\"", CS_MONEY_MALFORMED},
        {"\"9999999999999.001\"", CS_MONEY_MALFORMED}, {"-1e300", CS_MONEY_MALFORMED},
        {"\"29,99\"", CS_MONEY_MALFORMED},            {"\"29.99\"", CS_MONEY_OK},
    };
    for (size_t i = 0; i < CS_ARRAY_LEN(why); i++) {
        json_t *v = json_loads(why[i].json, JSON_DECODE_ANY, NULL);
        int64_t m = -1;
        assert_non_null(v);
        if (cs_money_check(v, &m) != why[i].want)
            fail_msg("money %s: expected check %d", why[i].json, (int)why[i].want);
        json_decref(v);
    }
    char buf[32];
    assert_string_equal(cs_money_format(4990, buf, sizeof buf), "49.90");
    assert_string_equal(cs_money_format(7, buf, sizeof buf), "0.07");
    assert_string_equal(cs_money_format(-150, buf, sizeof buf), "-1.50");
}

static void test_bounds(void **state)
{
    (void)state;
    char id[CS_ID_MAX + 2];
    memset(id, 'x', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    char *doc = malloc(CS_TEXT_MAX + 1024);
    snprintf(doc, CS_TEXT_MAX + 1024,
             "{\"event_id\":\"%s\",\"type\":\"order.cancelled\",\"occurred_at\":\"2026-03-01T10:00:00Z\","
             "\"data\":{\"order_id\":\"1\"}}",
             id);
    expect_err(doc, CS_ERR_INVALID, "event_id", "too long");
    /* a review text at the limit passes, one byte more does not */
    char *text = malloc(CS_TEXT_MAX + 2);
    memset(text, 'a', CS_TEXT_MAX + 1);
    text[CS_TEXT_MAX] = '\0';
    snprintf(doc, CS_TEXT_MAX + 1024,
             ENV("feedback.submitted", "{\"id\":\"f\",\"kind\":\"review\",\"score\":5,\"text\":\"%s\"}"), text);
    cs_event_t *ev = parse_ok(doc);
    assert_int_equal(strlen(ev->u.feedback.text), CS_TEXT_MAX);
    cs_event_free(&ev);
    text[CS_TEXT_MAX] = 'a';
    text[CS_TEXT_MAX + 1] = '\0';
    snprintf(doc, CS_TEXT_MAX + 1024,
             ENV("feedback.submitted", "{\"id\":\"f\",\"kind\":\"review\",\"score\":5,\"text\":\"%s\"}"), text);
    expect_err(doc, CS_ERR_INVALID, "data.text", "too long");
    free(text);
    free(doc);
    /* an absurd body is refused before parsing */
    size_t big = CS_EVENT_BYTES_MAX + 10;
    char *huge = malloc(big);
    memset(huge, ' ', big);
    cs_event_t *none = NULL;
    cs_err_t err;
    assert_int_equal(cs_event_parse(huge, big, &none, &err), CS_ERR_TOOBIG);
    free(huge);
    /* too many line items */
    cs_buf_t b;
    cs_buf_init(&b, 1 << 20);
    cs_buf_puts(&b, "{\"event_id\":\"x\",\"type\":\"order.placed\",\"occurred_at\":\"2026-03-01T10:00:00Z\","
                    "\"data\":{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\",\"items\":[");
    for (int i = 0; i <= CS_ITEMS_MAX; i++)
        cs_buf_printf(&b, "%s{\"sku\":\"s%d\",\"name\":\"n\",\"unit_price\":1,\"quantity\":1}", i ? "," : "", i);
    cs_buf_puts(&b, "]}}");
    expect_err(b.data, CS_ERR_INVALID, "data.items", "1..500");
    cs_buf_free(&b);
}

/* A tracking number is bounded as carriers match it (no spaces), the same
 * for a shipment and a scan: spaces do not count against a shipment's,
 * and a scan cannot name a number no shipment could have (it would wait
 * for its shipment forever). */
static void test_tracking_number_bound(void **state)
{
    (void)state;
    char num[CS_ID_MAX + 1], doc[1024];
    size_t n = 0;
    /* 64 characters and 15 spaces: "1Z99 1Z99 ..." */
    for (int i = 0; i < 16; i++)
        n += (size_t)snprintf(num + n, sizeof num - n, "%s1z99", i ? " " : "");
    snprintf(doc, sizeof doc,
             ENV("shipment.created", "{\"id\":\"s\",\"order_id\":\"o\",\"carrier\":\"ups\","
                                     "\"tracking_number\":\"%s\"}"),
             num);
    cs_event_t *ev = parse_ok(doc);
    assert_int_equal(strlen(ev->u.shipment.tracking_number), CS_TRACKING_NUMBER_MAX);
    cs_event_free(&ev);
    snprintf(doc, sizeof doc,
             ENV("tracking.event", "{\"carrier\":\"ups\",\"tracking_number\":\"%s\","
                                   "\"status\":\"in_transit\"}"),
             num);
    ev = parse_ok(doc);
    assert_string_equal(ev->u.scan.tracking_number, "1Z991Z991Z991Z991Z991Z991Z991Z991Z991Z991Z991Z99"
                                                    "1Z991Z991Z991Z99");
    cs_event_free(&ev);
    /* one character more: refused for both, naming the field and the bound */
    memset(num, '7', 65);
    num[65] = '\0';
    snprintf(doc, sizeof doc,
             ENV("shipment.created", "{\"id\":\"s\",\"order_id\":\"o\",\"carrier\":\"ups\","
                                     "\"tracking_number\":\"%s\"}"),
             num);
    expect_err(doc, CS_ERR_INVALID, "data.tracking_number", "at most 64");
    snprintf(doc, sizeof doc,
             ENV("tracking.event", "{\"carrier\":\"ups\",\"tracking_number\":\"%s\","
                                   "\"status\":\"in_transit\"}"),
             num);
    expect_err(doc, CS_ERR_INVALID, "data.tracking_number", "65 characters without spaces, at most 64");
    snprintf(doc, sizeof doc,
             ENV("tracking.event", "{\"shipment_id\":\"s\",\"carrier\":\"ups\","
                                   "\"tracking_number\":\"%s\",\"carrier_code\":\"D\"}"),
             num);
    expect_err(doc, CS_ERR_INVALID, "data.tracking_number", "at most 64");
}

/* A carrier is kept as scans and lanes match it: lower case and without
 * the blanks around it, in a shipment, a scan and an order's shipping; one
 * of blanks alone is refused. " DHL " was kept as " dhl ", so the scans of
 * "dhl" never found the parcel, and " " was a carrier. */
static void test_carrier_trimmed(void **state)
{
    (void)state;
    cs_event_t *ev = parse_ok(ENV("shipment.created", "{\"id\":\"s1\",\"order_id\":\"1\","
                                                      "\"carrier\":\" DHL \",\"tracking_number\":\"1\"}"));
    assert_string_equal(ev->u.shipment.carrier, "dhl");
    assert_true(ev->normalized);
    assert_int_equal(cs_event_serialize(ev, NULL), CS_OK);
    assert_non_null(strstr(ev->body, "\"carrier\":\"dhl\""));
    cs_event_free(&ev);
    ev = parse_ok(ENV("shipment.created", "{\"id\":\"s1\",\"order_id\":\"1\","
                                          "\"carrier\":\"dhl  \",\"tracking_number\":\"1\"}"));
    assert_string_equal(ev->u.shipment.carrier, "dhl");
    cs_event_free(&ev);
    ev = parse_ok(ENV("tracking.event", "{\"carrier\":\" dhl\",\"tracking_number\":\"1\","
                                        "\"status\":\"in_transit\"}"));
    assert_string_equal(ev->u.scan.carrier, "dhl");
    cs_event_free(&ev);
    ev = parse_ok(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\","
                                      "\"items\":[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":1,"
                                      "\"quantity\":1}],\"shipping\":{\"carrier\":\" Dpd \"}}"));
    assert_string_equal(ev->u.order.ship.carrier, "dpd");
    cs_event_free(&ev);
    /* Unicode's spaces as ASCII's (a no-break space pasted from a
     * spreadsheet was kept, so its scans never found the parcel, while
     * GET /v1/promise refused a carrier of it alone) */
    ev = parse_ok(ENV("shipment.created", "{\"id\":\"s1\",\"order_id\":\"1\","
                                          "\"carrier\":\"\\u00a0DHL\\u3000\",\"tracking_number\":\"1\"}"));
    assert_string_equal(ev->u.shipment.carrier, "dhl");
    assert_true(ev->normalized);
    cs_event_free(&ev);
    ev = parse_ok(ENV("tracking.event", "{\"carrier\":\"dhl\\u202f\",\"tracking_number\":\"1\","
                                        "\"status\":\"in_transit\"}"));
    assert_string_equal(ev->u.scan.carrier, "dhl");
    cs_event_free(&ev);
    /* a carrier as it should be is kept as it came */
    ev = parse_ok(ENV("shipment.created", "{\"id\":\"s1\",\"order_id\":\"1\","
                                          "\"carrier\":\"dhl express\",\"tracking_number\":\"1\"}"));
    assert_string_equal(ev->u.shipment.carrier, "dhl express");
    assert_false(ev->normalized);
    cs_event_free(&ev);
    expect_err(ENV("shipment.created", "{\"id\":\"s1\",\"order_id\":\"1\",\"carrier\":\"  \","
                                       "\"tracking_number\":\"1\"}"),
               CS_ERR_INVALID, "data.carrier", "expected a carrier id like dhl, got only white space");
    expect_err(ENV("tracking.event", "{\"carrier\":\" \",\"tracking_number\":\"1\","
                                     "\"status\":\"in_transit\"}"),
               CS_ERR_INVALID, "data.carrier", "got only white space");
    expect_err(ENV("order.placed", "{\"id\":\"1\",\"customer_id\":\"c\",\"currency\":\"EUR\","
                                   "\"items\":[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":1,"
                                   "\"quantity\":1}],\"shipping\":{\"carrier\":\" \"}}"),
               CS_ERR_INVALID, "data.shipping.carrier", "got only white space");
    expect_err(ENV("shipment.created", "{\"id\":\"s1\",\"order_id\":\"1\",\"carrier\":\"\\u00a0\","
                                       "\"tracking_number\":\"1\"}"),
               CS_ERR_INVALID, "data.carrier", "got only white space");
}

/* shipment.cancelled: the parcel's id and its order, an optional reason;
 * every mistake named by its field */
static void test_shipment_cancelled(void **state)
{
    (void)state;
    cs_event_t *ev = parse_ok(ENV("shipment.cancelled", "{\"id\":\"SHP-1\",\"order_id\":\"1001\","
                                                        "\"reason\":\"duplicate_label\"}"));
    assert_int_equal(ev->type, CS_EV_SHIPMENT_CANCELLED);
    assert_string_equal(ev->u.shipment_cancel.id, "SHP-1");
    assert_string_equal(ev->u.shipment_cancel.order_id, "1001");
    assert_string_equal(ev->u.shipment_cancel.reason, "duplicate_label");
    assert_null(cs_event_customer_id(ev));
    cs_event_free(&ev);
    ev = parse_ok(ENV("shipment.cancelled", "{\"id\":\"SHP-1\",\"order_id\":\"1001\"}"));
    assert_null(ev->u.shipment_cancel.reason);
    cs_event_free(&ev);
    expect_err(ENV("shipment.cancelled", "{\"order_id\":\"1001\"}"), CS_ERR_INVALID, "data.id",
               "required");
    expect_err(ENV("shipment.cancelled", "{\"id\":\"SHP-1\"}"), CS_ERR_INVALID, "data.order_id",
               "required");
    expect_err(ENV("shipment.cancelled", "{\"id\":7,\"order_id\":\"1001\"}"), CS_ERR_INVALID,
               "data.id", NULL);
    expect_err(ENV("shipment.cancelled", "{\"id\":\"SHP-1\",\"order_id\":\"1001\",\"carrier\":\"dhl\"}"),
               CS_ERR_INVALID, "data.carrier", "unknown field");
    char doc[1024], reason[CS_SHORT_MAX + 2];
    memset(reason, 'x', sizeof reason - 1);
    reason[sizeof reason - 1] = '\0';
    snprintf(doc, sizeof doc,
             ENV("shipment.cancelled", "{\"id\":\"SHP-1\",\"order_id\":\"1001\",\"reason\":\"%s\"}"),
             reason);
    expect_err(doc, CS_ERR_INVALID, "data.reason", NULL);
    /* the type list of an unknown type names it */
    expect_err(ENV("shipment.voided", "{}"), CS_ERR_RULE, "type", "shipment.cancelled");
}

static void test_names_round_trip(void **state)
{
    (void)state;
    for (int t = 1; t < CS_EV__COUNT; t++)
        assert_int_equal(cs_event_type_from_name(cs_event_type_name((cs_event_type_t)t)), t);
    assert_int_equal(cs_event_type_from_name("nope"), CS_EV_UNKNOWN);
    assert_null(cs_event_type_name(CS_EV_UNKNOWN));
    for (int s = 0; s < CS_TRACK__COUNT; s++)
        assert_int_equal(cs_track_status_from_name(cs_track_status_name((cs_track_status_t)s)), s);
    for (int s = 0; s < CS_MSG__COUNT; s++)
        assert_int_equal(cs_msg_status_from_name(cs_msg_status_name((cs_msg_status_t)s)), s);
    for (int c = 0; c < CS_CHANNEL__COUNT; c++)
        assert_int_equal(cs_channel_from_name(cs_channel_name((cs_channel_t)c)), c);
    assert_int_equal(cs_track_status_from_name("lost"), -1);
}

static void test_allocation_failures_are_clean(void **state)
{
    (void)state;
    /* fail each allocation in turn: never a crash or a leak (ASan checks) */
    for (long n = 1; n < 200; n++) {
        cs_event_t *ev = NULL;
        cs_err_t err;
        cs_alloc_fail_after(n);
        cs_rc rc = cs_event_parse(ORDER, strlen(ORDER), &ev, &err);
        cs_alloc_fail_after(0);
        if (rc == CS_OK) {
            cs_event_free(&ev);
            return; /* past the last allocation */
        }
        assert_int_equal(rc, CS_ERR_NOMEM);
        assert_null(ev);
    }
    fail_msg("parsing never succeeded");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_type_parses),
        cmocka_unit_test(test_order_fields_and_totals),
        cmocka_unit_test(test_errors_name_the_field),
        cmocka_unit_test(test_promise_plain_date_is_a_day),
        cmocka_unit_test(test_placed_at_ahead),
        cmocka_unit_test(test_money),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_tracking_number_bound),
        cmocka_unit_test(test_carrier_trimmed),
        cmocka_unit_test(test_shipment_cancelled),
        cmocka_unit_test(test_names_round_trip),
        cmocka_unit_test(test_unknown_time_zone),
        cmocka_unit_test(test_email_local_part_ascii),
        cmocka_unit_test(test_email_length),
        cmocka_unit_test(test_time_before_2000),
        cmocka_unit_test(test_integer_too_big),
        cmocka_unit_test(test_allocation_failures_are_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
