/*
 * retry.c -- an operator's retry of failed messages (retry.h): the filter
 * read from JSON or flags, checked, and run through the writer as one
 * statement of the store (outbox_requeue).
 */
#include "retry.h"

#include <stdio.h>
#include <string.h>

void cs_retry_init(cs_retry_req_t *q)
{
    memset(q, 0, sizeof *q);
    q->f.channel = -1;
}

/* value as a bounded text filter into buf; "" and longer ones refused */
static cs_rc set_text(char *buf, size_t size, const char *value, const char *name,
                      const char *what, cs_err_t *err)
{
    size_t n = strlen(value);
    if (n == 0 || n >= size || !cs_utf8_valid(value, n))
        return cs_err_field(err, CS_ERR_RULE, name, "%s: expected %s of 1..%zu bytes", name, what,
                            size - 1);
    memcpy(buf, value, n + 1);
    return CS_OK;
}

cs_rc cs_retry_set(cs_retry_req_t *q, const char *key, const char *value, const char *name,
                   cs_err_t *err)
{
    if (strcmp(key, "failed_since") == 0 || strcmp(key, "failed_until") == 0) {
        cs_ms_t t;
        if (!cs_time_parse(value, &t) || t < 0)
            return cs_err_field(err, CS_ERR_RULE, name,
                                "%s: expected an RFC 3339 time like 2026-12-07T09:00:00Z, "
                                "got \"%.40s\"",
                                name, value);
        if (key[7] == 's') {
            q->f.failed_since = t;
            q->has_since = true;
        } else {
            q->f.failed_until = t;
        }
        return CS_OK;
    }
    if (strcmp(key, "channel") == 0) {
        int ch = strcmp(value, "webhook") == 0 ? CS_OUT_WEBHOOK : cs_channel_from_name(value);
        if (ch < 0 || ch >= CS_OUT__CHANNELS)
            return cs_err_field(err, CS_ERR_RULE, name,
                                "%s: expected email, sms, whatsapp or webhook, got \"%.40s\"",
                                name, value);
        q->f.channel = ch;
        return CS_OK;
    }
    cs_rc rc;
    if (strcmp(key, "journey") == 0) {
        if ((rc = set_text(q->journey, sizeof q->journey, value, name, "a journey id", err)))
            return rc;
        q->f.journey = q->journey;
        return CS_OK;
    }
    if (strcmp(key, "customer_id") == 0) {
        if ((rc = set_text(q->customer_id, sizeof q->customer_id, value, name, "a customer id",
                           err)))
            return rc;
        q->f.customer_id = q->customer_id;
        return CS_OK;
    }
    if (strcmp(key, "reason_prefix") == 0) {
        if ((rc = set_text(q->reason_prefix, sizeof q->reason_prefix, value, name,
                           "the start of a reason, like \"gave up\",", err)))
            return rc;
        q->f.reason_prefix = q->reason_prefix;
        return CS_OK;
    }
    return cs_err_field(err, CS_ERR_RULE, name,
                        "%s: not a filter: expected failed_since, failed_until, channel, "
                        "journey, customer_id, reason_prefix or dry_run",
                        name);
}

static bool known(const char *key)
{
    static const char *const keys[] = { "failed_since", "failed_until", "channel", "journey",
                                        "customer_id",  "reason_prefix" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(key, keys[i]) == 0)
            return true;
    return false;
}

cs_rc cs_retry_from_json(cs_retry_req_t *q, const json_t *body, cs_err_t *err)
{
    if (!json_is_object(body))
        return cs_err_field(err, CS_ERR_INVALID, "body",
                            "body: expected a JSON object of filters, like "
                            "{\"failed_since\":\"2026-12-07T09:00:00Z\"}");
    const char *key;
    json_t *v;
    cs_rc rc;
    json_object_foreach((json_t *)body, key, v) {
        /* null states nothing, as in an event: the answer's own filter
         * (its nulls for the filters not given) may be sent back */
        if (json_is_null(v) && (known(key) || strcmp(key, "dry_run") == 0))
            continue;
        if (strcmp(key, "dry_run") == 0) {
            if (!json_is_boolean(v))
                return cs_err_field(err, CS_ERR_RULE, "dry_run",
                                    "dry_run: expected true or false");
            q->dry_run = json_is_true(v);
            continue;
        }
        if (!json_is_string(v)) {
            if (!known(key)) /* told as unknown, whatever its type */
                return cs_retry_set(q, key, "", key, err);
            return cs_err_field(err, CS_ERR_RULE, key, "%.64s: expected a string", key);
        }
        if ((rc = cs_retry_set(q, key, json_string_value(v), key, err)))
            return rc;
    }
    return cs_retry_check(q, "failed_since", "failed_until", err);
}

cs_rc cs_retry_check(const cs_retry_req_t *q, const char *since_name, const char *until_name,
                     cs_err_t *err)
{
    if (!q->has_since)
        return cs_err_field(err, CS_ERR_RULE, since_name,
                            "%s: expected the time from which failed messages are requeued "
                            "(RFC 3339, like 2026-12-07T09:00:00Z): it is required, so that "
                            "no retry takes the whole history",
                            since_name);
    if (q->f.failed_until && q->f.failed_until <= q->f.failed_since)
        return cs_err_field(err, CS_ERR_RULE, until_name, "%s: expected a time after %s",
                            until_name, since_name);
    return CS_OK;
}

typedef struct retry_task {
    const cs_retry_req_t *q;
    cs_retry_result_t *out;
    cs_ms_t now;
    cs_err_t err;
} retry_task_t;

static cs_rc retry_fn(cs_store_t *s, void *arg)
{
    retry_task_t *t = arg;
    cs_rc rc = cs_store_begin(s, &t->err);
    if (rc)
        return rc;
    rc = cs_store_call(s, outbox_requeue, &t->q->f, t->now, t->q->dry_run, t->out->ids,
                       CS_RETRY_IDS_MAX, &t->out->n_ids, &t->out->matched, &t->err);
    if (!rc)
        rc = cs_store_commit(s, &t->err);
    if (rc) {
        cs_store_rollback(s);
        t->out->matched = 0;
        t->out->n_ids = 0;
    }
    return rc;
}

/* The filter in words, for the log line. */
static void filter_words(const cs_retry_req_t *q, char *buf, size_t size)
{
    char since[40], until[40] = "";
    cs_time_format(q->f.failed_since, since, sizeof since);
    if (q->f.failed_until)
        cs_time_format(q->f.failed_until, until, sizeof until);
    snprintf(buf, size, "failed_since=%s%s%s%s%s%s%s%s%s%s%s", since,
             until[0] ? " failed_until=" : "", until, q->f.channel >= 0 ? " channel=" : "",
             q->f.channel >= 0 ? cs_out_channel_name(q->f.channel) : "",
             q->journey[0] ? " journey=" : "", q->journey,
             q->customer_id[0] ? " customer_id=" : "", q->customer_id,
             q->reason_prefix[0] ? " reason_prefix=" : "", q->reason_prefix);
}

cs_rc cs_retry_run(cs_engine_t *e, const cs_retry_req_t *q, cs_retry_result_t *out,
                   cs_err_t *err)
{
    retry_task_t t = { q, out, cs_clock_now(cs_engine_clock(e)), { 0 } };
    cs_err_clear(&t.err);
    memset(out, 0, sizeof *out);
    cs_rc rc = cs_retry_check(q, "failed_since", "failed_until", err);
    if (rc)
        return rc;
    rc = cs_engine_with_writer(e, retry_fn, &t);
    char words[512];
    filter_words(q, words, sizeof words);
    if (rc) {
        if (t.err.rc == CS_OK)
            cs_errf(&t.err, rc, "store: requeue failed messages: %s", cs_strerror(rc));
        *err = t.err;
        cs_warn("messages retry (%s) failed: %s", words, err->msg);
        return rc;
    }
    cs_info("messages retry%s: %lld failed message%s %s (%s)", q->dry_run ? " (dry run)" : "",
            (long long)out->matched, out->matched == 1 ? "" : "s",
            q->dry_run ? "would be requeued" : "requeued", words);
    return CS_OK;
}

json_t *cs_retry_json(const cs_retry_req_t *q, const cs_retry_result_t *r)
{
    json_t *ids = json_array();
    for (size_t i = 0; ids && i < r->n_ids; i++)
        json_array_append_new(ids, json_integer(r->ids[i]));
    char since[40], until[40];
    json_t *filter = json_pack(
        "{s:s,s:s?,s:s?,s:s?,s:s?,s:s?}", "failed_since",
        cs_time_format(q->f.failed_since, since, sizeof since), "failed_until",
        q->f.failed_until ? cs_time_format(q->f.failed_until, until, sizeof until) : NULL,
        "channel", q->f.channel >= 0 ? cs_out_channel_name(q->f.channel) : NULL, "journey",
        q->journey[0] ? q->journey : NULL, "customer_id",
        q->customer_id[0] ? q->customer_id : NULL, "reason_prefix",
        q->reason_prefix[0] ? q->reason_prefix : NULL);
    return json_pack("{s:b,s:I,s:I,s:o*,s:b,s:o*}", "dry_run", q->dry_run, "matched",
                     (json_int_t)r->matched, "requeued",
                     (json_int_t)(q->dry_run ? 0 : r->matched), "ids", ids, "ids_truncated",
                     r->matched > (int64_t)r->n_ids, "filter", filter);
}
