/*
 * test_importer.c -- the CSV reader's edge cases, the Olist mapping on a
 * small fixture (blank lines, a cancelled order, a multi-line quoted review, a missing
 * delivery date, a delivery dated decades ahead), NDJSON with a bad line,
 * and the demo generator's
 * determinism and validity. Imports run through a real engine on a
 * temporary SQLite store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "importer/importer.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/cs-importer-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_csv(void **state)
{
    (void)state;
    write_file("t.csv", "\xEF\xBB\xBF" "a,b,c\r\n"
                        "1,\"two, with comma\",3\r\n"
                        "\"multi\nline\",\"say \"\"hi\"\"\",\r\n"
                        "x,y,z");
    char path[512];
    snprintf(path, sizeof path, "%s/t.csv", dir);
    cs_csv_t *c = NULL;
    cs_err_t err;
    char **f;
    size_t n;
    int ix[3];
    const char *const cols[] = {"a", "b", "c"};
    assert_int_equal(cs_csv_open(path, &c, &err), CS_OK);
    assert_int_equal(cs_csv_header(c, cols, ix, 3, &err), CS_OK);
    assert_int_equal(ix[0], 0); /* the byte order mark is not part of the name */
    assert_int_equal(cs_csv_next(c, &f, &n, &err), CS_OK);
    assert_int_equal(n, 3);
    assert_string_equal(f[1], "two, with comma");
    assert_string_equal(f[2], "3");
    assert_int_equal(cs_csv_next(c, &f, &n, &err), CS_OK);
    assert_string_equal(f[0], "multi\nline");
    assert_string_equal(f[1], "say \"hi\"");
    assert_string_equal(f[2], "");
    assert_int_equal(cs_csv_line(c), 3);
    assert_int_equal(cs_csv_next(c, &f, &n, &err), CS_OK);
    assert_string_equal(f[2], "z");
    assert_int_equal(cs_csv_line(c), 5);
    assert_int_equal(cs_csv_next(c, &f, &n, &err), CS_ERR_NOTFOUND);
    cs_csv_close(&c);

    /* a byte order mark before a quoted header (a spreadsheet's export) */
    write_file("bomq.csv", "\xEF\xBB\xBF\"a\",\"b\",\"c\"\n1,2,3\n");
    snprintf(path, sizeof path, "%s/bomq.csv", dir);
    assert_int_equal(cs_csv_open(path, &c, &err), CS_OK);
    assert_int_equal(cs_csv_header(c, cols, ix, 3, &err), CS_OK);
    assert_int_equal(ix[0], 0);
    assert_int_equal(cs_csv_next(c, &f, &n, &err), CS_OK);
    assert_string_equal(f[0], "1");
    cs_csv_close(&c);
    /* files shorter than a byte order mark, or starting like one */
    write_file("short.csv", "a");
    snprintf(path, sizeof path, "%s/short.csv", dir);
    assert_int_equal(cs_csv_open(path, &c, &err), CS_OK);
    assert_int_equal(cs_csv_next(c, &f, &n, &err), CS_OK);
    assert_string_equal(f[0], "a");
    assert_int_equal(cs_csv_next(c, &f, &n, &err), CS_ERR_NOTFOUND);
    cs_csv_close(&c);
    write_file("nearbom.csv", "\xEF\xBBx,b\n");
    snprintf(path, sizeof path, "%s/nearbom.csv", dir);
    assert_int_equal(cs_csv_open(path, &c, &err), CS_OK);
    assert_int_equal(cs_csv_next(c, &f, &n, &err), CS_OK);
    assert_string_equal(f[0], "\xEF\xBBx");
    assert_string_equal(f[1], "b");
    cs_csv_close(&c);

    /* blank lines (LF, CRLF, at the end, without a final newline) are no
     * records; a quoted empty field is one */
    write_file("blank.csv", "a,b\n\n1,2\r\n\r\n\n\"\"\n3,4\n\n\r");
    snprintf(path, sizeof path, "%s/blank.csv", dir);
    assert_int_equal(cs_csv_open(path, &c, &err), CS_OK);
    assert_int_equal(cs_csv_next(c, &f, &n, &err), CS_OK); /* the header */
    assert_int_equal(cs_csv_next(c, &f, &n, &err), CS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(f[0], "1");
    assert_int_equal(cs_csv_line(c), 3);
    assert_int_equal(cs_csv_next(c, &f, &n, &err), CS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(f[0], "");
    assert_int_equal(cs_csv_line(c), 6);
    assert_int_equal(cs_csv_next(c, &f, &n, &err), CS_OK);
    assert_string_equal(f[1], "4");
    assert_int_equal(cs_csv_line(c), 7);
    assert_int_equal(cs_csv_next(c, &f, &n, &err), CS_ERR_NOTFOUND);
    cs_csv_close(&c);

    /* a field over CS_CSV_FIELD_MAX bytes is refused, quoted or not */
    for (int quoted = 0; quoted < 2; quoted++) {
        char big[512];
        snprintf(big, sizeof big, "%s/big%d.csv", dir, quoted);
        FILE *bf = fopen(big, "wb");
        assert_non_null(bf);
        fputs("a,b\n1,", bf);
        if (quoted)
            fputc('"', bf);
        for (int i = 0; i < CS_CSV_FIELD_MAX + 1; i++)
            fputc(quoted && i % 100 == 99 ? ',' : 'x', bf);
        fputs(quoted ? "\"\n" : "\n", bf);
        fclose(bf);
        assert_int_equal(cs_csv_open(big, &c, &err), CS_OK);
        assert_int_equal(cs_csv_next(c, &f, &n, &err), CS_OK);
        assert_int_equal(cs_csv_next(c, &f, &n, &err), CS_ERR_TOOBIG);
        assert_non_null(strstr(err.msg, ":2: field longer than 65536 bytes"));
        cs_csv_close(&c);
    }

    write_file("bad.csv", "a,b\n\"open,2\n");
    snprintf(path, sizeof path, "%s/bad.csv", dir);
    assert_int_equal(cs_csv_open(path, &c, &err), CS_OK);
    const char *const cols2[] = {"a", "zz"};
    int ix2[2];
    assert_int_equal(cs_csv_header(c, cols2, ix2, 2, &err), CS_ERR_INVALID);
    assert_non_null(strstr(err.msg, "missing column \"zz\""));
    assert_int_equal(cs_csv_next(c, &f, &n, &err), CS_ERR_INVALID);
    assert_non_null(strstr(err.msg, "bad.csv:2"));
    cs_csv_close(&c);
}

static cs_engine_t *engine(const char *name)
{
    char target[512];
    snprintf(target, sizeof target, "sqlite:%s/%s", dir, name);
    cs_engine_opts_t o;
    cs_engine_opts_default(&o);
    o.store = target;
    o.durable = false;
    cs_engine_t *e = NULL;
    cs_err_t err;
    if (cs_engine_open(&o, &e, &err) != CS_OK)
        fail_msg("engine: %s", err.msg);
    return e;
}

static void olist_fixture(void)
{
    write_file("olist_customers_dataset.csv",
               "customer_id,customer_unique_id,customer_zip_code_prefix,customer_city,customer_state\n"
               "c1,u1,01310,sao paulo,SP\nc2,u2,20040,rio de janeiro,RJ\n\nc3,u1,01310,sao paulo,SP\n\n");
    write_file("olist_orders_dataset.csv",
               "order_id,customer_id,order_status,order_purchase_timestamp,order_approved_at,"
               "order_delivered_carrier_date,order_delivered_customer_date,order_estimated_delivery_date\n"
               "o1,c1,delivered,2017-10-02 10:56:33,2017-10-02 11:07:15,2017-10-04 19:55:00,2017-10-10 21:25:13,2017-10-18 00:00:00\n"
               "o2,c2,canceled,2017-11-01 09:00:00,2017-11-01 10:00:00,,,2017-11-20 00:00:00\n"
               "o3,c3,shipped,2018-01-05 12:00:00,2018-01-05 12:30:00,2018-01-08 10:00:00,,2018-01-25 00:00:00\n"
               "o4,c9,delivered,2018-01-05 12:00:00,,,,\n");
    write_file("olist_order_items_dataset.csv",
               "order_id,order_item_id,product_id,seller_id,shipping_limit_date,price,freight_value\n"
               "o1,1,p1,s1,2017-10-06 11:07:15,29.99,8.72\no1,2,p1,s1,2017-10-06 11:07:15,29.99,8.72\n"
               "o2,1,p2,s1,2017-11-05 10:00:00,118.70,22.76\no3,1,p2,s1,2018-01-10 00:00:00,10.00,5.00\n");
    write_file("olist_products_dataset.csv", "product_id,product_category_name\np1,utilidades_domesticas\np2,perfumaria\n");
    write_file("product_category_name_translation.csv",
               "product_category_name,product_category_name_english\nutilidades_domesticas,housewares\n");
    write_file("olist_sellers_dataset.csv", "seller_id,seller_zip_code_prefix,seller_city,seller_state\ns1,13023,campinas,SP\n");
    write_file("olist_order_reviews_dataset.csv",
               "review_id,order_id,review_score,review_comment_title,review_comment_message,"
               "review_creation_date,review_answer_timestamp\n"
               "r1,o1,4,,\"Produto bom,\nentrega rápida \"\"recomendo\"\"\",2017-10-11 00:00:00,2017-10-12 03:43:48\n"
               "r2,o2,1,Ruim,,2017-11-25 00:00:00,2017-11-26 00:00:00\n");
}

static void test_olist(void **state)
{
    (void)state;
    olist_fixture();
    cs_engine_t *e = engine("olist.db");
    for (int round = 0; round < 2; round++) {
        cs_import_stats_t st;
        memset(&st, 0, sizeof st);
        cs_sink_t *sink = NULL;
        cs_err_t err;
        cs_report_t rep = {.f = NULL};
        assert_int_equal(cs_sink_open(e, &st, NULL, &sink, &err), CS_OK);
        assert_int_equal(cs_import_olist(dir, cs_sink_emit, sink, &rep, &st, &err), CS_OK);
        assert_int_equal(cs_sink_close(&sink, &err), CS_OK);
        assert_int_equal(st.by_type[CS_EV_CUSTOMER_UPSERTED], 2); /* u1 once */
        assert_int_equal(st.by_type[CS_EV_ORDER_PLACED], 3);
        assert_int_equal(st.by_type[CS_EV_ORDER_CANCELLED], 1);
        assert_int_equal(st.by_type[CS_EV_SHIPMENT_CREATED], 2);
        assert_int_equal(st.by_type[CS_EV_TRACKING_EVENT], 3);
        assert_int_equal(st.by_type[CS_EV_FEEDBACK_SUBMITTED], 2);
        assert_int_equal(st.skipped, 1); /* o4: unknown customer */
        assert_int_equal(st.rejected, 0);
        if (round == 0)
            assert_int_equal(st.accepted, st.read);
        else
            assert_int_equal(st.duplicates, st.read); /* re-import changes nothing */
    }
    cs_store_t *r = NULL;
    cs_err_t err;
    json_t *v = NULL;
    assert_int_equal(cs_engine_reader_acquire(e, &r, &err), CS_OK);
    assert_int_equal(cs_store_order_view(r, "o1", &v, &err), CS_OK);
    json_t *items = json_object_get(v, "items");
    assert_int_equal(json_array_size(items), 1); /* two rows of p1 merged */
    assert_int_equal(json_integer_value(json_object_get(json_array_get(items, 0), "quantity")), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "category")), "housewares");
    assert_string_equal(json_string_value(json_object_get(json_object_get(v, "totals"), "shipping")), "17.44");
    assert_string_equal(json_string_value(json_object_get(v, "placed_at")), "2017-10-02T13:56:33.000Z");
    json_t *sh = json_array_get(json_object_get(v, "shipments"), 0);
    assert_string_equal(json_string_value(json_object_get(sh, "status")), "delivered");
    json_t *fb = json_array_get(json_object_get(v, "feedback"), 0);
    assert_string_equal(json_string_value(json_object_get(fb, "text")), "Produto bom,\nentrega rápida \"recomendo\"");
    json_decref(v);
    assert_int_equal(cs_store_order_view(r, "o2", &v, &err), CS_OK);
    assert_string_equal(json_string_value(json_object_get(v, "status")), "cancelled");
    json_decref(v);
    assert_int_equal(cs_store_order_view(r, "o3", &v, &err), CS_OK);
    sh = json_array_get(json_object_get(v, "shipments"), 0);
    assert_string_equal(json_string_value(json_object_get(sh, "status")), "in_transit");
    json_decref(v);
    cs_engine_reader_release(e, r);
    cs_engine_close(&e);
}

/* A delivery dated decades ahead (a broken export) is refused, as the API
 * refuses it: it would be the parcel's latest scan and hide the real
 * ones. The rest of the order comes in. */
static void test_olist_future_scan(void **state)
{
    (void)state;
    olist_fixture();
    write_file("olist_orders_dataset.csv",
               "order_id,customer_id,order_status,order_purchase_timestamp,order_approved_at,"
               "order_delivered_carrier_date,order_delivered_customer_date,order_estimated_delivery_date\n"
               "o1,c1,delivered,2017-10-02 10:56:33,2017-10-02 11:07:15,2017-10-04 19:55:00,2097-10-10 21:25:13,2017-10-18 00:00:00\n");
    char report[4096] = "";
    FILE *f = fmemopen(report, sizeof report, "w");
    cs_engine_t *e = engine("olist-future.db");
    cs_import_stats_t st;
    memset(&st, 0, sizeof st);
    cs_sink_t *sink = NULL;
    cs_err_t err;
    cs_report_t rep = {.f = f};
    assert_int_equal(cs_sink_open(e, &st, NULL, &sink, &err), CS_OK);
    assert_int_equal(cs_import_olist(dir, cs_sink_emit, sink, &rep, &st, &err), CS_OK);
    assert_int_equal(cs_sink_close(&sink, &err), CS_OK);
    fclose(f);
    assert_int_equal(st.rejected, 1);
    assert_int_equal(st.by_type[CS_EV_TRACKING_EVENT], 1); /* the hand-over */
    assert_non_null(strstr(report, "occurred_at: more than a day in the future"));
    cs_store_t *r = NULL;
    json_t *v = NULL;
    assert_int_equal(cs_engine_reader_acquire(e, &r, &err), CS_OK);
    assert_int_equal(cs_store_order_view(r, "o1", &v, &err), CS_OK);
    json_t *sh = json_array_get(json_object_get(v, "shipments"), 0);
    assert_string_equal(json_string_value(json_object_get(sh, "status")), "in_transit");
    json_decref(v);
    cs_engine_reader_release(e, r);
    cs_engine_close(&e);
}

/* Run the Olist import of dir into a new store; the report goes to report. */
static void olist_run(const char *db, cs_import_stats_t *st, char *report, size_t size,
                      cs_engine_t **ep)
{
    FILE *f = fmemopen(report, size, "w");
    cs_engine_t *e = engine(db);
    cs_sink_t *sink = NULL;
    cs_err_t err;
    cs_report_t rep = {.f = f};
    memset(st, 0, sizeof *st);
    assert_int_equal(cs_sink_open(e, st, NULL, &sink, &err), CS_OK);
    assert_int_equal(cs_import_olist(dir, cs_sink_emit, sink, &rep, st, &err), CS_OK);
    assert_int_equal(cs_sink_close(&sink, &err), CS_OK);
    fclose(f);
    *ep = e;
}

/* Values that are not what their column holds are reported with file,
 * line and column and counted as rejected; what they belong to is not
 * imported in part: an order missing an item whose price reads "29,99",
 * a parcel never delivered because its date was garbled, a review with a
 * score "4x" reported at the orders file's line. */
static void test_olist_bad_values(void **state)
{
    (void)state;
    olist_fixture();
    write_file("olist_order_items_dataset.csv",
               "order_id,order_item_id,product_id,seller_id,shipping_limit_date,price,freight_value\n"
               "o1,1,p1,s1,2017-10-06 11:07:15,29.99,8.72\no1,2,p2,s1,2017-10-06 11:07:15,\"29,99\",8.72\n"
               "o2,1,p2,s1,2017-11-05 10:00:00,118.70,22.76\no3,1,p2,s1,2018-01-10 00:00:00,10.00,5.00\n");
    write_file("olist_orders_dataset.csv",
               "order_id,customer_id,order_status,order_purchase_timestamp,order_approved_at,"
               "order_delivered_carrier_date,order_delivered_customer_date,order_estimated_delivery_date\n"
               "o1,c1,delivered,2017-10-02 10:56:33,2017-10-02 11:07:15,2017-10-04 19:55:00,2017-10-10 21:25:13,2017-10-18 00:00:00\n"
               "o2,c2,canceled,2017-11-01 09:00:00,2017-11-01 10:00:00,,,2017-11-20 00:00:00\n"
               "o3,c3,delivered,2018-01-05 12:00:00,2018-01-05 12:30:00,2018-01-08 10:00:00,2018/01/20 10:00:00,2018-01-25 00:00:00\n");
    write_file("olist_order_reviews_dataset.csv",
               "review_id,order_id,review_score,review_comment_title,review_comment_message,"
               "review_creation_date,review_answer_timestamp\n"
               "r1,o1,4x,,\"Produto bom,\nentrega rápida\",2017-10-11 00:00:00,2017-10-12 03:43:48\n"
               "r2,o2,1,Ruim,,2017-11-25 00:00:00,2017-11-26 00:00:00\n");
    char report[4096] = "";
    cs_import_stats_t st;
    cs_engine_t *e = NULL;
    olist_run("olist-bad.db", &st, report, sizeof report, &e);
    assert_non_null(strstr(report, "olist_order_items_dataset.csv:3: price: expected an amount"));
    assert_non_null(strstr(report, "got \"29,99\"; order o1: order.placed not imported"));
    assert_non_null(strstr(report, "olist_orders_dataset.csv:4: order_delivered_customer_date: "
                                   "expected a time like 2017-10-02 10:56:33, got \"2018/01/20 10:00:00\""));
    assert_non_null(strstr(report, "olist_order_reviews_dataset.csv:2: review_score: expected an "
                                   "integer 1..5, got \"4x\""));
    assert_int_equal(st.rejected, 3);
    assert_int_equal(st.skipped, 0);
    assert_int_equal(st.by_type[CS_EV_ORDER_PLACED], 1); /* o2 only */
    assert_int_equal(st.by_type[CS_EV_FEEDBACK_SUBMITTED], 1);
    cs_store_t *r = NULL;
    cs_err_t err;
    json_t *v = NULL;
    assert_int_equal(cs_engine_reader_acquire(e, &r, &err), CS_OK);
    assert_int_equal(cs_store_order_view(r, "o1", &v, &err), CS_ERR_NOTFOUND);
    assert_int_equal(cs_store_order_view(r, "o3", &v, &err), CS_ERR_NOTFOUND);
    cs_engine_reader_release(e, r);
    cs_engine_close(&e);

    /* the orders' columns in another order, one more of them: a short row
     * is reported, not read past its end */
    olist_fixture();
    write_file("olist_orders_dataset.csv",
               "order_id,customer_id,order_status,order_purchase_timestamp,order_approved_at,"
               "order_delivered_carrier_date,order_delivered_customer_date,channel,order_estimated_delivery_date\n"
               "o1,c1,delivered,2017-10-02 10:56:33,2017-10-02 11:07:15,2017-10-04 19:55:00,2017-10-10 21:25:13,web,2017-10-18 00:00:00\n"
               "o2,c2,canceled,2017-11-01 09:00:00,2017-11-01 10:00:00,,,2017-11-20 00:00:00\n");
    memset(report, 0, sizeof report);
    olist_run("olist-cols.db", &st, report, sizeof report, &e);
    assert_non_null(strstr(report, "olist_orders_dataset.csv:3: expected 9 fields, got 8; "
                                   "row not imported"));
    assert_int_equal(st.by_type[CS_EV_ORDER_PLACED], 1);
    assert_int_equal(st.rejected, 1); /* malformed input: the import exits 1 */
    assert_int_equal(st.skipped, 1);  /* o3's item: o3 has no row here */
    cs_engine_close(&e);

    /* an item row cut short (o1's second line): o1 is not imported with
     * one line and half its total; a short row naming no order is
     * reported alone */
    olist_fixture();
    write_file("olist_order_items_dataset.csv",
               "order_id,order_item_id,product_id,seller_id,shipping_limit_date,price,freight_value\n"
               "o1,1,p1,s1,2017-10-06 11:07:15,29.99,8.72\no1,2,p1,s1\n"
               "o2,1,p2,s1,2017-11-05 10:00:00,118.70,22.76\no3,1,p2,s1,2018-01-10 00:00:00,10.00,5.00\n"
               ",,\n");
    memset(report, 0, sizeof report);
    olist_run("olist-short.db", &st, report, sizeof report, &e);
    assert_non_null(strstr(report, "olist_order_items_dataset.csv:3: expected 7 fields, got 4; "
                                   "order o1: order.placed not imported"));
    assert_non_null(strstr(report, "olist_order_items_dataset.csv:6: expected 7 fields, got 3; "
                                   "row not imported"));
    assert_int_equal(st.rejected, 2);
    assert_int_equal(st.by_type[CS_EV_ORDER_PLACED], 2); /* o2 and o3 */
    cs_store_t *r2 = NULL;
    assert_int_equal(cs_engine_reader_acquire(e, &r2, &err), CS_OK);
    assert_int_equal(cs_store_order_view(r2, "o1", &v, &err), CS_ERR_NOTFOUND);
    assert_int_equal(cs_store_order_view(r2, "o2", &v, &err), CS_OK);
    json_decref(v);
    cs_engine_reader_release(e, r2);
    cs_engine_close(&e);

    /* a price or freight above the limit of an amount: the message says
     * the limit, not that the value is malformed */
    olist_fixture();
    write_file("olist_order_items_dataset.csv",
               "order_id,order_item_id,product_id,seller_id,shipping_limit_date,price,freight_value\n"
               "o1,1,p1,s1,2017-10-06 11:07:15,9999999999999.00,8.72\n"
               "o2,1,p2,s1,2017-11-05 10:00:00,118.70,22.76\n"
               "o3,1,p2,s1,2018-01-10 00:00:00,10.00,1000000000000.01\n");
    memset(report, 0, sizeof report);
    olist_run("olist-big.db", &st, report, sizeof report, &e);
    assert_non_null(strstr(report, "olist_order_items_dataset.csv:2: price: expected an amount of "
                                   "at most 1000000000000.00, got \"9999999999999.00\"; order o1"));
    assert_non_null(strstr(report, "olist_order_items_dataset.csv:4: freight_value: expected an "
                                   "amount of at most 1000000000000.00, got \"1000000000000.01\""));
    assert_int_equal(st.rejected, 2);
    assert_int_equal(st.by_type[CS_EV_ORDER_PLACED], 1); /* o2 */
    cs_engine_close(&e);

    /* freight summed past what 64-bit cents hold (92234 rows of the
     * largest amount): refused as too large a shipping, not wrapped into
     * a negative one */
    olist_fixture();
    char ipath[512];
    snprintf(ipath, sizeof ipath, "%s/olist_order_items_dataset.csv", dir);
    FILE *fi = fopen(ipath, "w");
    assert_non_null(fi);
    fputs("order_id,order_item_id,product_id,seller_id,shipping_limit_date,price,freight_value\n", fi);
    for (int i = 1; i <= 92234; i++)
        fprintf(fi, "o1,%d,p1,s1,2017-10-06 11:07:15,1.00,1000000000000.00\n", i);
    fputs("o2,1,p2,s1,2017-11-05 10:00:00,118.70,22.76\n", fi);
    fclose(fi);
    memset(report, 0, sizeof report);
    olist_run("olist-freight.db", &st, report, sizeof report, &e);
    assert_non_null(strstr(report, "olist_orders_dataset.csv:2: data.totals.shipping: expected an "
                                   "amount of at most 1000000000000.00, got \"92233720368547758.07\""));
    assert_int_equal(st.by_type[CS_EV_ORDER_PLACED], 1); /* o2 */
    cs_engine_close(&e);
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* Skipped rows are reported with a budget of their own, per kind: the
 * hundreds of orders without items of a real export neither hide a bad
 * value reported after them nor the orders of an unknown customer; how
 * many were not printed is said at the end. */
static void test_olist_skip_budget(void **state)
{
    (void)state;
    olist_fixture();
    char orders[8192];
    size_t k = (size_t)snprintf(orders, sizeof orders,
                                "order_id,customer_id,order_status,order_purchase_timestamp,"
                                "order_approved_at,order_delivered_carrier_date,"
                                "order_delivered_customer_date,order_estimated_delivery_date\n");
    for (int i = 0; i < 15; i++)
        k += (size_t)snprintf(orders + k, sizeof orders - k,
                              "n%d,c1,unavailable,2017-10-02 10:56:33,,,,2017-10-18 00:00:00\n", i);
    for (int i = 0; i < 3; i++)
        k += (size_t)snprintf(orders + k, sizeof orders - k,
                              "x%d,c9,delivered,2017-10-02 10:56:33,,,,\n", i);
    snprintf(orders + k, sizeof orders - k,
             "o1,c1,delivered,2017-10-02 10:56:33,2017-10-02 11:07:15,2017-10-04 19:55:00,"
             "2017/10/10 21:25:13,2017-10-18 00:00:00\n");
    write_file("olist_orders_dataset.csv", orders);
    char report[8192] = "";
    FILE *f = fmemopen(report, sizeof report, "w");
    cs_engine_t *e = engine("olist-skips.db");
    cs_import_stats_t st;
    memset(&st, 0, sizeof st);
    cs_sink_t *sink = NULL;
    cs_err_t err;
    cs_report_t rep = {.f = f, .max_lines = 5};
    assert_int_equal(cs_sink_open(e, &st, NULL, &sink, &err), CS_OK);
    assert_int_equal(cs_import_olist(dir, cs_sink_emit, sink, &rep, &st, &err), CS_OK);
    assert_int_equal(cs_sink_close(&sink, &err), CS_OK);
    fclose(f);
    assert_int_equal(st.skipped, 18 + 3); /* and o2's and o3's items, o2's review: no rows here */
    assert_int_equal(st.rejected, 1);
    /* the bad time after 18 skipped rows is printed */
    assert_non_null(strstr(report, "olist_orders_dataset.csv:20: order_delivered_customer_date: "
                                   "expected a time like 2017-10-02 10:56:33"));
    assert_int_equal(count(report, "has no items"), 10);
    assert_non_null(strstr(report, "olist_orders_dataset.csv:2: skipped: order n0 (unavailable) has no items"));
    assert_int_equal(count(report, "unknown customer_id c9"), 3);
    assert_non_null(strstr(report, "olist_orders_dataset.csv:19: skipped: order x2: unknown customer_id c9"));
    assert_non_null(strstr(report, "olist_orders_dataset.csv: 5 more skipped (orders without "
                                   "items), counted, not printed"));
    assert_null(strstr(report, "(orders of an unknown customer)"));
    assert_null(strstr(report, "more problem"));
    cs_engine_close(&e);
}

/* Item and review rows of an order the orders file lacks (an export cut
 * at another date than its orders) cannot be imported: they are counted
 * as skipped and reported with their file and line, in file order, not
 * dropped without a word. */
static void test_olist_orphans(void **state)
{
    (void)state;
    olist_fixture();
    write_file("olist_order_items_dataset.csv",
               "order_id,order_item_id,product_id,seller_id,shipping_limit_date,price,freight_value\n"
               "o1,1,p1,s1,2017-10-06 11:07:15,29.99,8.72\no1,2,p1,s1,2017-10-06 11:07:15,29.99,8.72\n"
               "o9,1,p2,s1,2017-11-05 10:00:00,118.70,22.76\n"
               "o2,1,p2,s1,2017-11-05 10:00:00,118.70,22.76\no3,1,p2,s1,2018-01-10 00:00:00,10.00,5.00\n"
               "o9,2,p1,s1,2017-11-05 10:00:00,1.00,0.00\n");
    write_file("olist_order_reviews_dataset.csv",
               "review_id,order_id,review_score,review_comment_title,review_comment_message,"
               "review_creation_date,review_answer_timestamp\n"
               "r1,o1,4,,,2017-10-11 00:00:00,2017-10-12 03:43:48\n"
               "r9,o9,5,,,2017-11-25 00:00:00,2017-11-26 00:00:00\n"
               "r4,o4,1,,,2017-11-25 00:00:00,2017-11-26 00:00:00\n");
    char report[4096] = "";
    cs_import_stats_t st;
    cs_engine_t *e = NULL;
    olist_run("olist-orphans.db", &st, report, sizeof report, &e);
    assert_int_equal(st.by_type[CS_EV_ORDER_PLACED], 3);
    assert_int_equal(st.by_type[CS_EV_FEEDBACK_SUBMITTED], 1);
    assert_int_equal(st.rejected, 0);
    /* o4 (unknown customer, its review with it) as before; o9's two item
     * rows and its review */
    assert_int_equal(st.skipped, 4);
    const char *a = strstr(report, "olist_order_items_dataset.csv:4: skipped: order o9 is not in "
                                   "olist_orders_dataset.csv: item not imported");
    const char *b = strstr(report, "olist_order_items_dataset.csv:7: skipped: order o9 is not in "
                                   "olist_orders_dataset.csv: item not imported");
    assert_non_null(a);
    assert_non_null(b);
    assert_true(a < b);
    assert_non_null(strstr(report, "olist_order_reviews_dataset.csv:3: skipped: order o9 is not in "
                                   "olist_orders_dataset.csv: review r9 not imported"));
    assert_null(strstr(report, "review r4"));
    cs_engine_close(&e);
}

/* A review score out of 1..5 is reported naming the review_score column,
 * like one that is not a number; an order's reviews come in file order. */
static void test_olist_review_scores(void **state)
{
    (void)state;
    olist_fixture();
    write_file("olist_order_reviews_dataset.csv",
               "review_id,order_id,review_score,review_comment_title,review_comment_message,"
               "review_creation_date,review_answer_timestamp\n"
               "r1,o1,7,,,2017-10-11 00:00:00,2017-10-12 03:43:48\n"
               "r2,o1,5,,,2017-10-12 00:00:00,2017-10-12 03:43:48\n"
               "r3,o1,0,,,2017-10-13 00:00:00,2017-10-13 03:43:48\n");
    char report[4096] = "";
    cs_import_stats_t st;
    cs_engine_t *e = NULL;
    olist_run("olist-scores.db", &st, report, sizeof report, &e);
    assert_int_equal(st.by_type[CS_EV_FEEDBACK_SUBMITTED], 1);
    assert_int_equal(st.rejected, 2);
    assert_non_null(strstr(report, "olist_order_reviews_dataset.csv:2: review_score: expected an "
                                   "integer 1..5, got \"7\"; review r1 not imported"));
    assert_non_null(strstr(report, "olist_order_reviews_dataset.csv:4: review_score: expected an "
                                   "integer 1..5, got \"0\"; review r3 not imported"));
    /* an order's reviews are taken in file order */
    assert_true(strstr(report, "csv:2: review_score") < strstr(report, "csv:4: review_score"));
    cs_engine_close(&e);
}

static void test_ndjson_bad_line(void **state)
{
    (void)state;
    write_file("in.ndjson",
               "{\"event_id\":\"a\",\"type\":\"order.cancelled\",\"occurred_at\":\"2026-03-01T10:00:00Z\",\"data\":{\"order_id\":\"1\"}}\n"
               "\n"
               "{\"event_id\":\"b\",\"type\":\"order.cancelled\",\"occurred_at\":\"2026-03-01T10:00:00Z\",\"data\":{\"order\":\"1\"}}\n"
               "{\"event_id\":\"c\",\"type\":\"order.cancelled\",\"occurred_at\":\"2026-03-01T10:00:00Z\",\"data\":{\"order_id\":\"2\"}}\n"
               " \t{\"event_id\" \"x\"}");
    char path[512], report[4096] = "";
    snprintf(path, sizeof path, "%s/in.ndjson", dir);
    FILE *in = fopen(path, "r");
    FILE *rep = fmemopen(report, sizeof report, "w");
    cs_engine_t *e = engine("nd.db");
    cs_import_stats_t st;
    memset(&st, 0, sizeof st);
    cs_sink_t *sink = NULL;
    cs_err_t err;
    cs_report_t r = {.f = rep};
    assert_int_equal(cs_sink_open(e, &st, NULL, &sink, &err), CS_OK);
    assert_int_equal(cs_import_ndjson(in, "in.ndjson", cs_sink_emit, sink, &r, &st, &err), CS_OK);
    assert_int_equal(cs_sink_close(&sink, &err), CS_OK);
    fclose(in);
    fclose(rep);
    assert_int_equal(st.read, 4);
    assert_int_equal(st.accepted, 2);
    assert_int_equal(st.rejected, 2);
    assert_non_null(strstr(report, "in.ndjson:3: data.order: unknown field"));
    /* malformed JSON: at the file's line, and the column in it (after its
     * two blanks), not the place within the event alone (line 1, column 15) */
    assert_non_null(strstr(report, "in.ndjson:5: malformed JSON at line 5, column 17: "));
    assert_null(strstr(report, "more problem"));

    /* saved as "UTF-8 with BOM", with CRLF line ends: the first event too */
    write_file("bom.ndjson",
               "\xEF\xBB\xBF{\"event_id\":\"d\",\"type\":\"order.cancelled\",\"occurred_at\":\"2026-03-01T10:00:00Z\",\"data\":{\"order_id\":\"3\"}}\r\n"
               "{\"event_id\":\"e\",\"type\":\"order.cancelled\",\"occurred_at\":\"2026-03-01T10:00:00Z\",\"data\":{\"order_id\":\"4\"}}\r\n");
    snprintf(path, sizeof path, "%s/bom.ndjson", dir);
    in = fopen(path, "r");
    memset(&st, 0, sizeof st);
    r.f = NULL;
    assert_int_equal(cs_sink_open(e, &st, NULL, &sink, &err), CS_OK);
    assert_int_equal(cs_import_ndjson(in, "bom.ndjson", cs_sink_emit, sink, &r, &st, &err), CS_OK);
    assert_int_equal(cs_sink_close(&sink, &err), CS_OK);
    fclose(in);
    assert_int_equal(st.read, 2);
    assert_int_equal(st.accepted, 2);
    assert_int_equal(st.rejected, 0);

    /* a customer's unknown time zone: the customer is rejected naming it,
     * an order whose embedded customer names one is kept without it and
     * the line says so (not counted as rejected) */
    write_file("tz.ndjson",
               "{\"event_id\":\"tz-c\",\"type\":\"customer.upserted\",\"occurred_at\":"
               "\"2026-03-01T10:00:00Z\",\"data\":{\"id\":\"c-9\",\"timezone\":\"Europe/Berlinn\"}}\n"
               "{\"event_id\":\"tz-o\",\"type\":\"order.placed\",\"occurred_at\":\"2026-03-01T10:00:00Z\","
               "\"data\":{\"id\":\"9\",\"customer_id\":\"c-9\",\"currency\":\"EUR\",\"items\":[{\"sku\":"
               "\"K\",\"name\":\"Kaffee\",\"unit_price\":\"8.90\",\"quantity\":1}],\"customer\":"
               "{\"id\":\"c-9\",\"timezone\":\"Mars/Olympus\"}}}\n");
    snprintf(path, sizeof path, "%s/tz.ndjson", dir);
    in = fopen(path, "r");
    memset(report, 0, sizeof report);
    rep = fmemopen(report, sizeof report, "w");
    r.f = rep;
    memset(&st, 0, sizeof st);
    assert_int_equal(cs_sink_open(e, &st, NULL, &sink, &err), CS_OK);
    assert_int_equal(cs_import_ndjson(in, "tz.ndjson", cs_sink_emit, sink, &r, &st, &err), CS_OK);
    assert_int_equal(cs_sink_close(&sink, &err), CS_OK);
    fclose(in);
    fclose(rep);
    assert_int_equal(st.read, 2);
    assert_int_equal(st.accepted, 1);
    assert_int_equal(st.rejected, 1);
    assert_non_null(strstr(report, "tz.ndjson:1: data.timezone: expected an IANA time zone like "
                                   "Europe/Berlin, got \"Europe/Berlinn\""));
    assert_non_null(strstr(report, "tz.ndjson:2: data.customer.timezone: expected an IANA time "
                                   "zone like Europe/Berlin, got \"Mars/Olympus\""));
    assert_non_null(strstr(report, "left out: the order is kept"));

    /* past the budget of printed problems: how many more is said at the end */
    write_file("bad3.ndjson", "{}\n{}\n{}\n");
    snprintf(path, sizeof path, "%s/bad3.ndjson", dir);
    in = fopen(path, "r");
    memset(report, 0, sizeof report);
    rep = fmemopen(report, sizeof report, "w");
    cs_report_t r3 = {.f = rep, .max_lines = 1};
    memset(&st, 0, sizeof st);
    assert_int_equal(cs_sink_open(e, &st, NULL, &sink, &err), CS_OK);
    assert_int_equal(cs_import_ndjson(in, "bad3.ndjson", cs_sink_emit, sink, &r3, &st, &err), CS_OK);
    assert_int_equal(cs_sink_close(&sink, &err), CS_OK);
    fclose(in);
    fclose(rep);
    assert_int_equal(st.rejected, 3);
    assert_non_null(strstr(report, "bad3.ndjson:1: "));
    assert_null(strstr(report, "bad3.ndjson:2: "));
    assert_non_null(strstr(report, "(2 more problems counted, not printed)"));
    cs_engine_close(&e);
}

/* An event the store's rules refuse (here a ticket naming another
 * customer's order) is reported by its file and line, as a line that does
 * not parse is, not by its event id alone. */
static void test_ndjson_refused_by_rule(void **state)
{
    (void)state;
    write_file("refused.ndjson",
               "{\"event_id\":\"o-1\",\"type\":\"order.placed\",\"occurred_at\":\"2026-03-01T10:00:00Z\","
               "\"data\":{\"id\":\"1\",\"customer_id\":\"c-1\",\"currency\":\"EUR\",\"items\":[{\"sku\":"
               "\"K\",\"name\":\"Kaffee\",\"unit_price\":\"8.90\",\"quantity\":1}]}}\n"
               "\n"
               "{\"event_id\":\"t-1\",\"type\":\"ticket.created\",\"occurred_at\":\"2026-03-02T10:00:00Z\","
               "\"data\":{\"id\":\"4711\",\"customer_id\":\"c-2\",\"order_id\":\"1\"}}\n"
               "{\"event_id\":\"t-2\",\"type\":\"ticket.created\",\"occurred_at\":\"2026-03-02T10:00:00Z\","
               "\"data\":{\"id\":\"4712\",\"customer_id\":\"c-1\",\"order_id\":\"1\"}}\n");
    char path[512], report[4096] = "";
    snprintf(path, sizeof path, "%s/refused.ndjson", dir);
    FILE *in = fopen(path, "r");
    FILE *rep = fmemopen(report, sizeof report, "w");
    cs_engine_t *e = engine("refused.db");
    cs_import_stats_t st;
    memset(&st, 0, sizeof st);
    cs_sink_t *sink = NULL;
    cs_err_t err;
    cs_report_t r = {.f = rep};
    assert_int_equal(cs_sink_open(e, &st, &r, &sink, &err), CS_OK);
    assert_int_equal(cs_import_ndjson(in, "refused.ndjson", cs_sink_emit, sink, &r, &st, &err),
                     CS_OK);
    assert_int_equal(cs_sink_close(&sink, &err), CS_OK);
    fclose(in);
    fclose(rep);
    assert_int_equal(st.read, 3);
    assert_int_equal(st.accepted, 2);
    assert_int_equal(st.rejected, 1);
    assert_non_null(strstr(report, "refused.ndjson:3: event t-1 refused: data.order_id: order "
                                   "\"1\" is another customer's"));
    assert_null(strstr(report, ":4:"));
    cs_engine_close(&e);
}

typedef struct collect {
    cs_buf_t out;
    int n;
} collect_t;

static cs_rc collect_emit(void *arg, cs_event_t *ev, const char *where, uint64_t line,
                          cs_err_t *err)
{
    (void)where;
    (void)line;
    collect_t *c = arg;
    cs_rc rc = cs_event_serialize(ev, err);
    if (!rc)
        rc = cs_buf_append(&c->out, ev->body, ev->body_len);
    c->n++;
    cs_event_free(&ev);
    return rc;
}

static void test_demo_deterministic(void **state)
{
    (void)state;
    collect_t a, b;
    cs_demo_opts_t o;
    cs_import_stats_t st;
    cs_err_t err;
    cs_demo_opts_default(&o);
    o.customers = 60;
    assert_true(cs_time_parse("2026-11-01T00:00:00Z", &o.now)); /* the same now for both runs */
    memset(&st, 0, sizeof st);
    cs_buf_init(&a.out, 64 << 20);
    cs_buf_init(&b.out, 64 << 20);
    a.n = b.n = 0;
    assert_int_equal(cs_demo_generate(&o, collect_emit, &a, &st, &err), CS_OK);
    assert_int_equal(cs_demo_generate(&o, collect_emit, &b, &st, &err), CS_OK);
    assert_true(a.n > 300);
    assert_int_equal(a.n, b.n);
    assert_int_equal(a.out.len, b.out.len);
    assert_memory_equal(a.out.data, b.out.data, a.out.len);
    o.seed = 7;
    cs_buf_reset(&b.out);
    assert_int_equal(cs_demo_generate(&o, collect_emit, &b, &st, &err), CS_OK);
    assert_true(b.out.len != a.out.len || memcmp(a.out.data, b.out.data, a.out.len) != 0);
    cs_buf_free(&a.out);
    cs_buf_free(&b.out);
    o.customers = 0;
    assert_int_equal(cs_demo_generate(&o, collect_emit, &a, &st, &err), CS_ERR_INVALID);
    /* a period starting before 2000 is refused naming end */
    o.customers = 5;
    assert_true(cs_date_parse("2000-02-01", &o.end));
    a.n = 0;
    assert_int_equal(cs_demo_generate(&o, collect_emit, &a, &st, &err), CS_ERR_INVALID);
    assert_string_equal(err.field, "end");
    assert_int_equal(a.n, 0);
}

typedef struct buyers {
    cs_map_t customers, buyers;
} buyers_t;

static cs_rc buyers_emit(void *arg, cs_event_t *ev, const char *where, uint64_t line,
                         cs_err_t *err)
{
    (void)where;
    (void)line;
    buyers_t *b = arg;
    (void)err;
    if (ev->type == CS_EV_CUSTOMER_UPSERTED)
        cs_map_put(&b->customers, ev->u.customer.id, b);
    else if (ev->type == CS_EV_ORDER_PLACED)
        cs_map_put(&b->buyers, ev->u.order.customer_id, b);
    cs_event_free(&ev);
    return CS_OK;
}

/* Every customer the demo generates buys at least once, within the
 * period (none is drawn a first order after its end and left out). */
static void test_demo_every_customer_buys(void **state)
{
    (void)state;
    static const struct {
        int customers, months;
        uint64_t seed;
    } runs[] = {{500, 6, 42}, {400, 1, 7}, {300, 2, 1}};
    for (size_t i = 0; i < CS_ARRAY_LEN(runs); i++) {
        cs_demo_opts_t o;
        cs_import_stats_t st;
        cs_err_t err;
        buyers_t b;
        cs_demo_opts_default(&o);
        o.customers = runs[i].customers;
        o.months = runs[i].months;
        o.seed = runs[i].seed;
        memset(&st, 0, sizeof st);
        cs_map_init(&b.customers);
        cs_map_init(&b.buyers);
        assert_int_equal(cs_demo_generate(&o, buyers_emit, &b, &st, &err), CS_OK);
        if (b.customers.n != (size_t)o.customers || b.buyers.n != (size_t)o.customers)
            fail_msg("seed %llu, %d months: %zu of %d customers, %zu buyers",
                     (unsigned long long)o.seed, o.months, b.customers.n, o.customers,
                     b.buyers.n);
        cs_map_free(&b.customers);
        cs_map_free(&b.buyers);
    }
}

typedef struct refunds {
    cs_map_t paid; /* order id -> its first line's price paid for one unit (malloc'd) */
    int n, over;
} refunds_t;

static cs_rc refunds_emit(void *arg, cs_event_t *ev, const char *where, uint64_t line,
                          cs_err_t *err)
{
    (void)where;
    (void)line;
    refunds_t *rf = arg;
    (void)err;
    if (ev->type == CS_EV_ORDER_PLACED) {
        const cs_line_item_t *li = &ev->u.order.items[0];
        int64_t *p = malloc(sizeof *p);
        assert_non_null(p);
        *p = (li->unit_price * li->quantity - li->discount) / li->quantity;
        assert_int_equal(cs_map_put(&rf->paid, ev->u.order.id, p), CS_OK);
    } else if (ev->type == CS_EV_RETURN_UPDATED && ev->u.ret.refund_amount >= 0) {
        /* R-<order id>: one unit of the order's first line comes back */
        const int64_t *p = cs_map_get(&rf->paid, ev->u.ret.id + 2);
        assert_non_null(p);
        rf->n++;
        if (ev->u.ret.refund_amount > *p)
            rf->over++;
    }
    cs_event_free(&ev);
    return CS_OK;
}

/* The demo refunds what was paid for the returned item (after the
 * welcome discount), never more. */
static void test_demo_refunds(void **state)
{
    (void)state;
    cs_demo_opts_t o;
    cs_import_stats_t st;
    cs_err_t err;
    refunds_t rf = {.n = 0, .over = 0};
    cs_demo_opts_default(&o);
    o.customers = 1000;
    memset(&st, 0, sizeof st);
    cs_map_init(&rf.paid);
    assert_int_equal(cs_demo_generate(&o, refunds_emit, &rf, &st, &err), CS_OK);
    assert_true(rf.n > 20);
    if (rf.over)
        fail_msg("%d of %d refunds exceed what was paid", rf.over, rf.n);
    for (size_t i = 0; i < rf.paid.cap; i++)
        if (cs_map_key_at(&rf.paid, i))
            free(rf.paid.vals[i]);
    cs_map_free(&rf.paid);
}

typedef struct flight {
    cs_ms_t now;
    int ahead;           /* events dated after now */
    cs_map_t promised;   /* order id -> its promised latest delivery (malloc'd) */
    cs_map_t open;       /* shipment id -> &open_mark while no final scan came */
    int shipped, delivered;
} flight_t;

static int open_mark;

static cs_rc flight_emit(void *arg, cs_event_t *ev, const char *where, uint64_t line,
                         cs_err_t *err)
{
    (void)where;
    (void)line;
    (void)err;
    flight_t *f = arg;
    if (ev->occurred_at > f->now)
        f->ahead++;
    if (ev->type == CS_EV_ORDER_PLACED) {
        cs_ms_t *p = malloc(sizeof *p);
        assert_non_null(p);
        *p = ev->u.order.promised_to;
        assert_int_equal(cs_map_put(&f->promised, ev->u.order.id, p), CS_OK);
    } else if (ev->type == CS_EV_SHIPMENT_CREATED) {
        f->shipped++;
        assert_int_equal(cs_map_put(&f->open, ev->u.shipment.id, &open_mark), CS_OK);
    } else if (ev->type == CS_EV_TRACKING_EVENT && (ev->u.scan.status == CS_TRACK_DELIVERED ||
                                                    ev->u.scan.status == CS_TRACK_EXCEPTION)) {
        f->delivered += ev->u.scan.status == CS_TRACK_DELIVERED;
        cs_map_del(&f->open, ev->u.scan.shipment_id);
    }
    cs_event_free(&ev);
    return CS_OK;
}

/* Without --end the demo ends now: nothing is dated after it (intake
 * would refuse such an event), and the last days' parcels are still on
 * their way, some of them past their promised date, next to the many
 * delivered. An end after now is refused naming it. */
static void test_demo_ends_now(void **state)
{
    (void)state;
    cs_demo_opts_t o;
    cs_import_stats_t st;
    cs_err_t err;
    flight_t f;
    cs_demo_opts_default(&o);
    o.customers = 500;
    assert_true(cs_time_parse("2025-03-12T14:30:00Z", &o.now));
    memset(&st, 0, sizeof st);
    memset(&f, 0, sizeof f);
    f.now = o.now;
    cs_map_init(&f.promised);
    cs_map_init(&f.open);
    assert_int_equal(cs_demo_generate(&o, flight_emit, &f, &st, &err), CS_OK);
    if (f.ahead)
        fail_msg("%d events dated after now", f.ahead);
    int late = 0;
    for (size_t i = 0; i < f.open.cap; i++) {
        const char *sid = cs_map_key_at(&f.open, i);
        if (!sid)
            continue;
        const cs_ms_t *p = cs_map_get(&f.promised, sid + 4); /* SHP-<order id> */
        assert_non_null(p);
        late += *p < o.now;
    }
    if (f.open.n < 3 || late < 1 || f.delivered < f.shipped / 2)
        fail_msg("%d shipped, %d delivered, %zu on the way, %d of them late", f.shipped,
                 f.delivered, f.open.n, late);
    for (size_t i = 0; i < f.promised.cap; i++)
        if (cs_map_key_at(&f.promised, i))
            free(f.promised.vals[i]);
    cs_map_free(&f.promised);
    cs_map_free(&f.open);
    /* an end after now is refused, nothing written */
    o.end = o.now + CS_MS_PER_DAY;
    f.ahead = 0;
    f.shipped = 0;
    assert_int_equal(cs_demo_generate(&o, flight_emit, &f, &st, &err), CS_ERR_INVALID);
    assert_string_equal(err.field, "end");
    assert_int_equal(f.shipped, 0);
}

static cs_rc emails_emit(void *arg, cs_event_t *ev, const char *where, uint64_t line,
                         cs_err_t *err)
{
    (void)where;
    (void)line;
    (void)err;
    cs_map_t *emails = arg;
    if (ev->type == CS_EV_CUSTOMER_UPSERTED) {
        const char *other = cs_map_get(emails, ev->u.customer.email);
        if (other)
            fail_msg("%s and %s share %s", other, ev->u.customer.id, ev->u.customer.email);
        assert_int_equal(cs_map_put(emails, ev->u.customer.email, strdup(ev->u.customer.id)),
                         CS_OK);
    }
    cs_event_free(&ev);
    return CS_OK;
}

/* No two customers of a demo shop share an email address (two of the same
 * name among a few thousand are common). */
static void test_demo_unique_emails(void **state)
{
    (void)state;
    static const uint64_t seeds[] = {42, 7, 1};
    for (size_t i = 0; i < CS_ARRAY_LEN(seeds); i++) {
        cs_demo_opts_t o;
        cs_import_stats_t st;
        cs_err_t err;
        cs_map_t emails;
        cs_demo_opts_default(&o);
        o.customers = 3000;
        o.months = 1;
        o.seed = seeds[i];
        memset(&st, 0, sizeof st);
        cs_map_init(&emails);
        assert_int_equal(cs_demo_generate(&o, emails_emit, &emails, &st, &err), CS_OK);
        assert_int_equal(emails.n, (size_t)o.customers);
        for (size_t k = 0; k < emails.cap; k++)
            if (cs_map_key_at(&emails, k))
                free(emails.vals[k]);
        cs_map_free(&emails);
    }
}

typedef struct return_steps {
    cs_map_t last;     /* return id -> its last step so far (static string) */
    int n, backwards;
} return_steps_t;

static cs_rc return_steps_emit(void *arg, cs_event_t *ev, const char *where, uint64_t line,
                               cs_err_t *err)
{
    (void)where;
    (void)line;
    (void)err;
    static const char *const order[] = {"requested", "approved", "label_created", "in_transit",
                                        "received", "refunded"};
    return_steps_t *rs = arg;
    if (ev->type == CS_EV_RETURN_REQUESTED || ev->type == CS_EV_RETURN_UPDATED) {
        const char *st = ev->type == CS_EV_RETURN_REQUESTED ? "requested" : ev->u.ret.status;
        size_t k = 0;
        while (k < CS_ARRAY_LEN(order) && strcmp(order[k], st) != 0)
            k++;
        assert_true(k < CS_ARRAY_LEN(order));
        const cs_ms_t *prev = cs_map_get(&rs->last, ev->u.ret.id);
        cs_ms_t *at = malloc(sizeof *at);
        assert_non_null(at);
        *at = ev->occurred_at;
        if (prev && *prev > ev->occurred_at)
            rs->backwards++;
        if (prev)
            free(cs_map_del(&rs->last, ev->u.ret.id));
        assert_int_equal(cs_map_put(&rs->last, ev->u.ret.id, at), CS_OK);
        rs->n += k == 5;
    }
    cs_event_free(&ev);
    return CS_OK;
}

/* A demo return goes through its steps in order (approved, label, on its
 * way back, received, refunded), each later than the one before, so the
 * store's view ends at the last one. */
static void test_demo_return_steps(void **state)
{
    (void)state;
    cs_demo_opts_t o;
    cs_import_stats_t st;
    cs_err_t err;
    return_steps_t rs = {.n = 0, .backwards = 0};
    cs_demo_opts_default(&o);
    o.customers = 1000;
    assert_true(cs_time_parse("2026-11-01T00:00:00Z", &o.now));
    memset(&st, 0, sizeof st);
    cs_map_init(&rs.last);
    assert_int_equal(cs_demo_generate(&o, return_steps_emit, &rs, &st, &err), CS_OK);
    assert_true(rs.n > 20);
    if (rs.backwards)
        fail_msg("%d return steps dated before the step they follow", rs.backwards);
    for (size_t i = 0; i < rs.last.cap; i++)
        if (cs_map_key_at(&rs.last, i))
            free(rs.last.vals[i]);
    cs_map_free(&rs.last);
}

typedef struct damaged {
    cs_map_t order_of;  /* shipment id -> its order id (malloc'd) */
    cs_map_t damaged;   /* order id -> when its parcel was damaged (malloc'd) */
    int n, returned, resent;
    cs_ms_t before;     /* damaged before this: the second parcel has come */
} damaged_t;

static cs_rc damaged_emit(void *arg, cs_event_t *ev, const char *where, uint64_t line,
                          cs_err_t *err)
{
    (void)where;
    (void)line;
    (void)err;
    damaged_t *d = arg;
    if (ev->type == CS_EV_SHIPMENT_CREATED) {
        assert_int_equal(cs_map_put(&d->order_of, ev->u.shipment.id,
                                    strdup(ev->u.shipment.order_id)),
                         CS_OK);
    } else if (ev->type == CS_EV_TRACKING_EVENT) {
        const char *oid = cs_map_get(&d->order_of, ev->u.scan.shipment_id);
        assert_non_null(oid);
        const cs_ms_t *at = cs_map_get(&d->damaged, oid);
        if (ev->u.scan.status == CS_TRACK_EXCEPTION && ev->occurred_at < d->before) {
            cs_ms_t *p = malloc(sizeof *p);
            assert_non_null(p);
            *p = ev->occurred_at;
            assert_null(at);
            assert_int_equal(cs_map_put(&d->damaged, oid, p), CS_OK);
            d->n++;
        } else if (ev->u.scan.status == CS_TRACK_RETURNED_TO_SENDER && at && ev->occurred_at > *at) {
            d->returned++;
        } else if (ev->u.scan.status == CS_TRACK_DELIVERED && at && ev->occurred_at > *at) {
            d->resent++;
        }
    }
    cs_event_free(&ev);
    return CS_OK;
}

/* A parcel damaged on its way (an exception scan) goes back to the shop
 * (returned_to_sender) and a second parcel for the order arrives: the
 * order is not left showing the damaged one as still to come. */
static void test_demo_damaged_resent(void **state)
{
    (void)state;
    cs_demo_opts_t o;
    cs_import_stats_t st;
    cs_err_t err;
    damaged_t d;
    memset(&d, 0, sizeof d);
    cs_demo_opts_default(&o);
    o.customers = 2000;
    assert_true(cs_time_parse("2026-11-01T00:00:00Z", &o.now));
    d.before = o.now - 7 * CS_MS_PER_DAY;
    memset(&st, 0, sizeof st);
    cs_map_init(&d.order_of);
    cs_map_init(&d.damaged);
    assert_int_equal(cs_demo_generate(&o, damaged_emit, &d, &st, &err), CS_OK);
    assert_true(d.n > 5);
    if (d.returned != d.n || d.resent != d.n)
        fail_msg("of %d damaged parcels %d went back to the shop, %d were sent again", d.n,
                 d.returned, d.resent);
    cs_map_t *maps[] = {&d.order_of, &d.damaged};
    for (size_t m = 0; m < 2; m++) {
        for (size_t i = 0; i < maps[m]->cap; i++)
            if (cs_map_key_at(maps[m], i))
                free(maps[m]->vals[i]);
        cs_map_free(maps[m]);
    }
}

typedef struct pickups {
    cs_map_t placed;   /* order id -> when it was placed (malloc'd) */
    int n, sunday, early;
} pickups_t;

static cs_rc pickups_emit(void *arg, cs_event_t *ev, const char *where, uint64_t line,
                          cs_err_t *err)
{
    (void)where;
    (void)line;
    (void)err;
    pickups_t *pk = arg;
    if (ev->type == CS_EV_ORDER_PLACED) {
        cs_ms_t *p = malloc(sizeof *p);
        assert_non_null(p);
        *p = ev->occurred_at;
        assert_int_equal(cs_map_put(&pk->placed, ev->u.order.id, p), CS_OK);
    } else if (ev->type == CS_EV_SHIPMENT_CREATED) {
        const cs_ms_t *p = cs_map_get(&pk->placed, ev->u.shipment.order_id);
        assert_non_null(p);
        pk->n++;
        pk->sunday += (ev->occurred_at / CS_MS_PER_DAY + 4) % 7 == 0; /* 1970-01-01: Thursday */
        pk->early += ev->occurred_at < *p;
    }
    cs_event_free(&ev);
    return CS_OK;
}

/* The demo shop hands its parcels over on business days, never on a
 * Sunday and never before the order came in. */
static void test_demo_no_sunday_pickup(void **state)
{
    (void)state;
    cs_demo_opts_t o;
    cs_import_stats_t st;
    cs_err_t err;
    pickups_t pk;
    memset(&pk, 0, sizeof pk);
    cs_demo_opts_default(&o);
    o.customers = 1000;
    assert_true(cs_time_parse("2026-11-01T00:00:00Z", &o.now));
    memset(&st, 0, sizeof st);
    cs_map_init(&pk.placed);
    assert_int_equal(cs_demo_generate(&o, pickups_emit, &pk, &st, &err), CS_OK);
    assert_true(pk.n > 1000);
    if (pk.sunday || pk.early)
        fail_msg("of %d parcels %d handed over on a Sunday, %d before the order", pk.n,
                 pk.sunday, pk.early);
    for (size_t i = 0; i < pk.placed.cap; i++)
        if (cs_map_key_at(&pk.placed, i))
            free(pk.placed.vals[i]);
    cs_map_free(&pk.placed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_csv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_olist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_olist_future_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_olist_bad_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_olist_skip_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_olist_orphans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_olist_review_scores, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ndjson_refused_by_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ndjson_bad_line, setup, teardown),
        cmocka_unit_test(test_demo_deterministic),
        cmocka_unit_test(test_demo_every_customer_buys),
        cmocka_unit_test(test_demo_refunds),
        cmocka_unit_test(test_demo_ends_now),
        cmocka_unit_test(test_demo_unique_emails),
        cmocka_unit_test(test_demo_return_steps),
        cmocka_unit_test(test_demo_damaged_resent),
        cmocka_unit_test(test_demo_no_sunday_pickup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
