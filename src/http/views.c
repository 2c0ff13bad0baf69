/*
 * views.c -- the read routes: GET /v1/customers/{id}, /v1/orders/{id},
 * /v1/events (a page of the log), /healthz and /metrics. Views run on a
 * pooled read-only store handle and never wait for the writer. The order
 * view is the store's, with each shipment's `replaced` added here (the
 * status answer's rule, status_api.c); the customer view is the store's,
 * with its `contact` added here from contact_get, the read the contact
 * policy decides by (cs_contact_json), so it shows what the policy sees.
 */
#include "http_int.h"

#include "../tracking/carriers.h"
#include "../tracking/tracker.h"
#include "../tracking/watch.h"

#include <stdlib.h>
#include <string.h>

typedef struct view_ctx {
    route_t route;
    const char *id;
    cs_event_query_t q;
    json_t *out;
    cs_err_t err;
} view_ctx_t;

/* The customer view with its `contact`: per channel, the unsubscribe,
 * complaint or bounce that holds and the consents, as the contact policy
 * reads them (contact_get), not a second rule here. */
static cs_rc customer_view(cs_store_t *s, view_ctx_t *v)
{
    cs_contact_t who;
    json_t *contact = NULL;
    cs_rc rc = cs_store_customer_view(s, v->id, &v->out, &v->err);
    if (rc)
        goto out;
    if ((rc = cs_store_call(s, contact_get, v->id, &who, &v->err)))
        goto out;
    if (!(contact = cs_contact_json(&who)) ||
        json_object_set_new(v->out, "contact", contact)) {
        rc = cs_errf(&v->err, CS_ERR_NOMEM, "out of memory building a customer's contact");
        goto out;
    }
out:
    if (rc) {
        json_decref(v->out);
        v->out = NULL;
    }
    return rc;
}

static cs_rc view_fn(cs_store_t *s, void *arg)
{
    view_ctx_t *v = arg;
    switch (v->route) {
    case R_CUSTOMER: return customer_view(s, v);
    case R_ORDER: return cs_store_order_view(s, v->id, &v->out, &v->err);
    default: return cs_store_events_query(s, &v->q, &v->out, &v->err);
    }
}

static cs_rc int_arg(hreq_t *r, const char *name, int64_t lo, int64_t hi, int64_t *out,
                     cs_err_t *err)
{
    const char *v = cs__http_query(r, name);
    if (!v)
        return CS_OK;
    int64_t x;
    if (!cs_parse_digits(v, &x) || x < lo || x > hi) /* "+1", " 1", "1x": refused */
        return cs_err_field(err, CS_ERR_INVALID, name,
                            "%s: expected an integer %lld..%lld in decimal digits, got \"%.32s\"",
                            name, (long long)lo, (long long)hi, v);
    *out = x;
    return CS_OK;
}

static cs_rc id_arg(hreq_t *r, const char *name, const char **out, cs_err_t *err)
{
    const char *v = cs__http_query(r, name);
    *out = NULL;
    if (!v)
        return CS_OK;
    if (!*v || strlen(v) > CS_ID_MAX)
        return cs_err_field(err, CS_ERR_INVALID, name, "%s: expected an id of 1..%d bytes", name,
                            CS_ID_MAX);
    *out = v;
    return CS_OK;
}

enum MHD_Result cs__http_view(hreq_t *r)
{
    view_ctx_t v;
    char id[CS_ID_MAX + 1];
    memset(&v, 0, sizeof v);
    cs_err_clear(&v.err);
    v.route = r->route;
    if (r->route == R_CUSTOMER || r->route == R_ORDER) {
        if (cs__http_path_id(r, id, &v.err))
            return cs__http_reply_err(r, &v.err);
        v.id = id;
    } else {
        int64_t after = 0, before = 0, limit = 100;
        const char *order = cs__http_query(r, "order");
        if (int_arg(r, "after_seq", 0, INT64_MAX, &after, &v.err) ||
            /* (0 would read as no bound: events number from 1) */
            int_arg(r, "before_seq", 1, INT64_MAX, &before, &v.err) ||
            int_arg(r, "limit", 1, 1000, &limit, &v.err) ||
            id_arg(r, "customer_id", &v.q.customer_id, &v.err) ||
            id_arg(r, "order_id", &v.q.order_id, &v.err) ||
            id_arg(r, "type", &v.q.type, &v.err))
            return cs__http_reply_err(r, &v.err);
        if (order && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0) {
            cs_err_field(&v.err, CS_ERR_INVALID, "order", "order: expected asc or desc, got \"%.16s\"",
                         order);
            return cs__http_reply_err(r, &v.err);
        }
        if (v.q.customer_id && v.q.order_id) {
            cs_err_field(&v.err, CS_ERR_INVALID, "order_id",
                         "order_id: filter by customer_id or by order_id, not both");
            return cs__http_reply_err(r, &v.err);
        }
        if (v.q.type && cs_event_type_from_name(v.q.type) == CS_EV_UNKNOWN) {
            cs_err_field(&v.err, CS_ERR_INVALID, "type", "type: unknown event type \"%.64s\"",
                         v.q.type);
            return cs__http_reply_err(r, &v.err);
        }
        v.q.after_seq = after;
        v.q.before_seq = before;
        v.q.limit = (int)limit;
        v.q.newest_first = order && strcmp(order, "desc") == 0;
    }
    cs_err_t err;
    cs_err_clear(&err);
    cs_rc rc = cs__http_with_reader(r->h, view_fn, &v, &err);
    if (rc) {
        if (v.err.rc == CS_OK)
            v.err = err;
        if (v.err.rc == CS_OK)
            v.err.rc = rc;
        return cs__http_reply_err(r, &v.err);
    }
    if (r->route == R_ORDER) {
        /* replaced: a parcel gone back and sent again, by the rule the
         * status answer and the tracking page tell it by */
        json_t *ships = json_object_get(v.out, "shipments");
        size_t i;
        json_t *sh;
        json_array_foreach(ships, i, sh) {
            json_object_set_new(sh, "replaced", json_boolean(cs__parcel_replaced(ships, i)));
        }
    }
    return cs__http_reply(r, 200, v.out);
}

/* ---- health ---- */

static cs_rc ping_fn(cs_store_t *s, void *arg)
{
    cs_event_query_t q = {.limit = 1, .newest_first = true};
    json_t *out = NULL;
    cs_rc rc = cs_store_events_query(s, &q, &out, arg);
    if (!rc)
        json_decref(out);
    /* a database that reads but takes no writes is no place for intake */
    if (!rc && s->ops->writable)
        rc = s->ops->writable(s, arg);
    return rc;
}

enum MHD_Result cs__http_health(hreq_t *r)
{
    cs_err_t err;
    cs_err_clear(&err);
    cs_rc rc = cs__http_with_reader(r->h, ping_fn, &err, &err);
    cs_engine_stats_t st;
    cs_engine_stats(r->h->engine, &st);
    /* a store that still reads but refuses every write (a failed fsync)
     * must not get intake from a load balancer: every event would be a 503 */
    if (!rc && cs_engine_refusing(r->h->engine, &err))
        rc = err.rc;
    if (rc)
        return cs__http_reply(r, 503,
                              json_pack("{s:s, s:s, s:s}", "status", "unhealthy", "store", "error",
                                        "message", err.msg));
    return cs__http_reply(r, 200,
                          json_pack("{s:s, s:s, s:I}", "status", "ok", "store", "ok",
                                    "queue_events", (json_int_t)st.queue_events));
}

/* ---- metrics (Prometheus text format 0.0.4) ---- */

static const char *const route_names[R__COUNT] = {
    "events_post", "events_get",    "customer",      "order",
    "healthz",     "metrics",       "journeys",      "journey_switch",
    "customer_journeys", "customer_messages", "customer_discounts", "unsubscribe", "callback_sms",
    "callback_whatsapp", "callback_email", "tracking_aftership", "tracking_scans", "promise", "order_status", "tracking_page",
    "tracking_lookup", "messages_retry", "too_large", "other"};

static void unmapped_line(const char *carrier, uint64_t n, void *ud)
{
    cs_buf_printf(ud, "consonance_scans_unmapped_total{carrier=\"%s\"} %llu\n", carrier,
                  (unsigned long long)n);
}

typedef struct log_end_arg {
    int64_t seq;
    cs_err_t err;
} log_end_arg_t;

static cs_rc log_end_fn(cs_store_t *s, void *arg)
{
    log_end_arg_t *a = arg;
    return cs_store_call(s, log_end, &a->seq, &a->err);
}

static void gauge(cs_buf_t *b, const char *name, const char *help, int64_t v)
{
    cs_buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", name, help, name, name,
                  (long long)v);
}

/* Where the log ends and where this node's promise model, order watch and
 * journeys have read it to: the difference is how far behind each is. The
 * log's end is read from the store (every node's events); a store that
 * does not answer leaves it out, and the rest of the page is still given. */
static void log_positions(cs_http_t *h, cs_buf_t *b)
{
    log_end_arg_t a = { 0 };
    cs_err_clear(&a.err);
    if (cs__http_with_reader(h, log_end_fn, &a, &a.err) == CS_OK)
        gauge(b, "consonance_log_seq", "The event log's end: its highest sequence number.",
              a.seq);
    else
        cs_warn("metrics: consonance_log_seq left out: %s", a.err.msg);
    if (h->opts.tracker)
        gauge(b, "consonance_promise_seq",
              "The log position this node's promise model has learned to.",
              cs_tracker_seq(h->opts.tracker));
    if (h->opts.journeys) {
        cs_journeys_stats_t js;
        cs_journeys_totals(h->opts.journeys, &js);
        gauge(b, "consonance_journeys_seq", "The log position this node's journeys have read to.",
              js.seq);
    }
    if (h->opts.watch) {
        cs_watch_stats_t ws;
        cs_watch_stats(h->opts.watch, &ws);
        gauge(b, "consonance_watch_seq",
              "The log position this node's order watch has read to.", ws.seq);
    }
}

enum MHD_Result cs__http_metrics(hreq_t *r)
{
    cs_http_t *h = r->h;
    cs_engine_stats_t st;
    cs_buf_t b;
    cs_engine_stats(h->engine, &st);
    cs_buf_init(&b, 1 << 20);
    cs_buf_puts(&b, "# HELP consonance_events_total Events the writer has handled, by outcome.\n"
                    "# TYPE consonance_events_total counter\n");
    cs_buf_printf(&b, "consonance_events_total{outcome=\"new\"} %llu\n",
                  (unsigned long long)st.events_new);
    cs_buf_printf(&b, "consonance_events_total{outcome=\"duplicate\"} %llu\n",
                  (unsigned long long)st.events_duplicate);
    cs_buf_printf(&b, "consonance_events_total{outcome=\"failed\"} %llu\n",
                  (unsigned long long)st.events_failed);
    cs_buf_printf(&b, "consonance_events_total{outcome=\"rejected\"} %llu\n",
                  (unsigned long long)atomic_load(&h->events_rejected));
    log_positions(h, &b);
    if (h->opts.tracker)
        cs_buf_printf(&b,
                      "# HELP consonance_promise_deliveries_learned Deliveries the promise model "
                      "has learned.\n"
                      "# TYPE consonance_promise_deliveries_learned gauge\n"
                      "consonance_promise_deliveries_learned %zu\n",
                      cs_tracker_learned(h->opts.tracker));
    cs_buf_printf(&b,
                  "# HELP consonance_tracking_lookups_refused_total Tracking page requests "
                  "refused after too many failed lookups.\n"
                  "# TYPE consonance_tracking_lookups_refused_total counter\n"
                  "consonance_tracking_lookups_refused_total %llu\n",
                  (unsigned long long)atomic_load(&h->lookups_refused));
    cs_buf_printf(&b,
                  "# HELP consonance_tracking_pages_total Tracking pages served, by whether the "
                  "page cache had them.\n"
                  "# TYPE consonance_tracking_pages_total counter\n"
                  "consonance_tracking_pages_total{cache=\"hit\"} %llu\n"
                  "consonance_tracking_pages_total{cache=\"miss\"} %llu\n",
                  (unsigned long long)atomic_load(&h->page_hits),
                  (unsigned long long)atomic_load(&h->page_misses));
    pthread_mutex_lock(&h->page_mu);
    size_t page_bytes = h->page_bytes;
    pthread_mutex_unlock(&h->page_mu);
    cs_buf_printf(&b,
                  "# HELP consonance_tracking_page_cache_bytes Bytes of rendered tracking pages "
                  "cached (at most tracking_page_cache).\n"
                  "# TYPE consonance_tracking_page_cache_bytes gauge\n"
                  "consonance_tracking_page_cache_bytes %zu\n"
                  "# HELP consonance_tracking_page_cache_limit_bytes The page cache's bound.\n"
                  "# TYPE consonance_tracking_page_cache_limit_bytes gauge\n"
                  "consonance_tracking_page_cache_limit_bytes %zu\n",
                  page_bytes, h->page_budget);
    if (h->opts.watch) {
        cs_watch_stats_t ws;
        cs_watch_stats(h->opts.watch, &ws);
        cs_buf_printf(&b,
                      "# HELP consonance_promise_updates_total Order promises recomputed.\n"
                      "# TYPE consonance_promise_updates_total counter\n"
                      "consonance_promise_updates_total %llu\n"
                      "# HELP consonance_promise_moves_total Promise windows or reasons that "
                      "changed.\n"
                      "# TYPE consonance_promise_moves_total counter\n"
                      "consonance_promise_moves_total %llu\n"
                      "# HELP consonance_delivery_at_risk_total delivery_at_risk signals.\n"
                      "# TYPE consonance_delivery_at_risk_total counter\n"
                      "consonance_delivery_at_risk_total %llu\n"
                      "# HELP consonance_promise_broken_total promise_broken signals.\n"
                      "# TYPE consonance_promise_broken_total counter\n"
                      "consonance_promise_broken_total %llu\n"
                      "# HELP consonance_compensation_codes_total Compensation codes issued.\n"
                      "# TYPE consonance_compensation_codes_total counter\n"
                      "consonance_compensation_codes_total %llu\n"
                      "# HELP consonance_compensation_cost_total Their cost in minor units.\n"
                      "# TYPE consonance_compensation_cost_total counter\n"
                      "consonance_compensation_cost_total %llu\n"
                      "# HELP consonance_compensation_over_budget_total Compensations the daily "
                      "budget refused or reduced.\n"
                      "# TYPE consonance_compensation_over_budget_total counter\n"
                      "consonance_compensation_over_budget_total %llu\n",
                      (unsigned long long)ws.updates, (unsigned long long)ws.moves,
                      (unsigned long long)ws.at_risk, (unsigned long long)ws.broken,
                      (unsigned long long)ws.codes, (unsigned long long)ws.comp_cost,
                      (unsigned long long)ws.over_budget);
    }
    cs_buf_puts(&b, "# HELP consonance_scans_unmapped_total Carrier scans no table knew "
                    "(kept, shown as in transit), by carrier.\n"
                    "# TYPE consonance_scans_unmapped_total counter\n");
    cs_carriers_unmapped(cs_engine_carriers(h->engine), unmapped_line, &b);
    cs_buf_printf(&b,
                  "# HELP consonance_scans_rejected_total Carrier scans a tracking webhook "
                  "refused (not recorded), by webhook.\n"
                  "# TYPE consonance_scans_rejected_total counter\n"
                  "consonance_scans_rejected_total{webhook=\"aftership\"} %llu\n"
                  "consonance_scans_rejected_total{webhook=\"scans\"} %llu\n",
                  (unsigned long long)atomic_load(&h->scans_rejected[0]),
                  (unsigned long long)atomic_load(&h->scans_rejected[1]));
    cs_buf_printf(&b,
                  "# HELP consonance_callbacks_unknown_total Delivery statuses for messages "
                  "this store does not know, and WhatsApp marketing stops for numbers no "
                  "customer has.\n"
                  "# TYPE consonance_callbacks_unknown_total counter\n"
                  "consonance_callbacks_unknown_total %llu\n",
                  (unsigned long long)atomic_load(&h->callbacks_unknown));
    cs_buf_printf(&b,
                  "# HELP consonance_messages_requeued_total Failed messages an operator put "
                  "back in the queue (POST /v1/messages/retry).\n"
                  "# TYPE consonance_messages_requeued_total counter\n"
                  "consonance_messages_requeued_total %llu\n",
                  (unsigned long long)atomic_load(&h->messages_requeued));
    cs_buf_puts(&b, "# HELP consonance_events_new_total New events stored, by type.\n"
                    "# TYPE consonance_events_new_total counter\n");
    for (int t = 1; t < CS_EV__COUNT; t++)
        cs_buf_printf(&b, "consonance_events_new_total{type=\"%s\"} %llu\n",
                      cs_event_type_name((cs_event_type_t)t), (unsigned long long)st.by_type[t]);
    cs_buf_printf(&b,
                  "# HELP consonance_commits_total Group commits of the writer.\n"
                  "# TYPE consonance_commits_total counter\n"
                  "consonance_commits_total %llu\n"
                  "# HELP consonance_commit_seconds_total Time spent committing (incl. fsync).\n"
                  "# TYPE consonance_commit_seconds_total counter\n"
                  "consonance_commit_seconds_total %.6f\n"
                  "# HELP consonance_syncs_total Deferred fsyncs that made committed groups durable.\n"
                  "# TYPE consonance_syncs_total counter\n"
                  "consonance_syncs_total %llu\n"
                  "# HELP consonance_sync_seconds_total Time spent in them.\n"
                  "# TYPE consonance_sync_seconds_total counter\n"
                  "consonance_sync_seconds_total %.6f\n"
                  "# HELP consonance_group_events_max Largest group commit so far.\n"
                  "# TYPE consonance_group_events_max gauge\n"
                  "consonance_group_events_max %llu\n"
                  "# HELP consonance_group_joined_events_total Events that joined a group being "
                  "written while the syncer was busy with the one before.\n"
                  "# TYPE consonance_group_joined_events_total counter\n"
                  "consonance_group_joined_events_total %llu\n"
                  "# HELP consonance_queue_events Events waiting for the writer.\n"
                  "# TYPE consonance_queue_events gauge\n"
                  "consonance_queue_events %llu\n"
                  "# HELP consonance_store_errors_total Groups that failed and were replayed one by one.\n"
                  "# TYPE consonance_store_errors_total counter\n"
                  "consonance_store_errors_total %llu\n",
                  (unsigned long long)st.commits, (double)st.commit_ns_total / 1e9,
                  (unsigned long long)st.syncs, (double)st.sync_ns_total / 1e9,
                  (unsigned long long)st.group_events_max,
                  (unsigned long long)st.group_events_joined, (unsigned long long)st.queue_events,
                  (unsigned long long)st.store_errors);
    cs_buf_puts(&b, "# HELP consonance_http_requests_total HTTP requests answered, by route and status.\n"
                    "# TYPE consonance_http_requests_total counter\n");
    for (int rt = 0; rt < R__COUNT; rt++)
        for (int c = 0; c < CS_HTTP_CODES; c++) {
            uint64_t n = atomic_load(&h->requests[rt][c]);
            if (!n)
                continue;
            if (cs__http_codes[c])
                cs_buf_printf(&b, "consonance_http_requests_total{route=\"%s\",code=\"%d\"} %llu\n",
                              route_names[rt], cs__http_codes[c], (unsigned long long)n);
            else
                cs_buf_printf(&b, "consonance_http_requests_total{route=\"%s\",code=\"other\"} %llu\n",
                              route_names[rt], (unsigned long long)n);
        }
    cs_buf_puts(&b, "# HELP consonance_http_request_duration_seconds Time from request to answer.\n"
                    "# TYPE consonance_http_request_duration_seconds histogram\n");
    for (int rt = 0; rt < R__COUNT; rt++) {
        uint64_t cum = 0;
        for (int i = 0; i <= CS_HTTP_BUCKETS; i++) {
            cum += atomic_load(&h->dur_bucket[rt][i]);
            if (i < CS_HTTP_BUCKETS)
                cs_buf_printf(&b,
                              "consonance_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                              route_names[rt], cs__http_buckets[i], (unsigned long long)cum);
            else
                cs_buf_printf(&b,
                              "consonance_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
                              "consonance_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                              "consonance_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                              route_names[rt], (unsigned long long)cum, route_names[rt],
                              (double)atomic_load(&h->dur_sum_us[rt]) / 1e6, route_names[rt],
                              (unsigned long long)cum);
        }
    }
    size_t len = 0;
    char *text = cs_buf_steal(&b, &len);
    if (!text)
        return MHD_NO;
    /* the buffer is ours (cs_malloc); MHD frees with free(): copy */
    char *out = malloc(len + 1);
    if (!out) {
        cs_free(text);
        return MHD_NO;
    }
    memcpy(out, text, len + 1);
    cs_free(text);
    return cs__http_reply_text(r, 200, out, len, "text/plain; version=0.0.4");
}
