/*
 * journeys_api.c -- GET /v1/journeys, POST /v1/journeys/{id}/enable|disable,
 * GET /v1/customers/{id}/journeys (runs) and /v1/customers/{id}/messages
 * (the outbox: queued, sent, failed and skipped messages with reasons),
 * POST /v1/messages/retry (an operator's requeue of failed messages).
 */
#include "http_int.h"

#include <string.h>

#include "../engine/retry.h"

typedef struct jctx {
    cs_http_t *h;
    route_t route;
    char id[CS_ID_MAX + 1];
    bool on;
    json_t *out;
    cs_err_t err;
} jctx_t;

static const char *const op_names[] = {
    [CS_OP_SEND] = "send",         [CS_OP_WAIT] = "wait",       [CS_OP_WAIT_UNTIL] = "wait_until",
    [CS_OP_WAIT_FOR] = "wait_for", [CS_OP_BRANCH] = "if",       [CS_OP_GOTO] = "goto",
    [CS_OP_EXIT] = "exit",         [CS_OP_END] = "end",         [CS_OP_DISCOUNT] = "discount",
    [CS_OP_EMIT] = "emit",         [CS_OP_WEBHOOK] = "webhook",
};
_Static_assert(sizeof op_names / sizeof op_names[0] == CS_OP_WEBHOOK + 1,
               "every step kind has a name");

static json_t *journey_json(const cs_journey_t *j, bool on)
{
    json_t *steps = json_array();
    for (int i = 0; steps && i < j->n; i++) {
        const cs_instr_t *in = &j->prog[i];
        json_t *s = json_pack("{s:i,s:s,s:i}", "step", i, "op", op_names[in->op], "line",
                              in->line);
        if (!s)
            continue;
        if (in->op == CS_OP_SEND) {
            json_t *ch = json_array();
            for (int k = 0; k < in->nchannels; k++)
                json_array_append_new(ch, json_string(cs_channel_name(in->channels[k])));
            json_object_set_new(s, "channels", ch);
            json_object_set_new(s, "template", json_string(in->text));
            json_object_set_new(s, "class", json_string(cs_msg_class_name(in->cls)));
        }
        if (in->op == CS_OP_DISCOUNT) {
            json_object_set_new(s, "kind",
                                json_string(cs_discount_kind_name((cs_discount_kind_t)in->kind)));
            if (in->kind != CS_DISCOUNT_FREE_SHIPPING)
                json_object_set_new(s, "value", json_real(in->value));
            json_object_set_new(s, "prefix", json_string(in->text));
        }
        if (in->op == CS_OP_EMIT)
            json_object_set_new(s, "signal", json_string(in->text));
        if (in->op == CS_OP_WEBHOOK) {
            json_object_set_new(s, "url", json_string(in->url));
            json_object_set_new(s, "event", json_string(in->text));
        }
        if (in->cond)
            json_object_set_new(s, "if", json_string(cs_expr_source(in->cond)));
        if (in->op == CS_OP_WAIT_FOR)
            json_object_set_new(s, "event",
                                json_string(cs_event_type_name((cs_event_type_t)in->event_type)));
        if (in->ms)
            json_object_set_new(s, "ms", json_integer(in->ms));
        if (in->target >= 0)
            json_object_set_new(s, "then_step", json_integer(in->target));
        json_array_append_new(steps, s);
    }
    return json_pack("{s:s,s:s?,s:s,s:s,s:b,s:b,s:s,s:o}", "id", j->id, "name", j->name, "file",
                     j->file, "hash", j->hash, "enabled", on, "enabled_in_file", j->enabled,
                     "trigger", cs_event_type_name((cs_event_type_t)j->trigger_event), "steps",
                     steps);
}

static cs_rc list_fn(cs_store_t *s, void *arg)
{
    jctx_t *c = arg;
    cs_journeys_t *js = c->h->opts.journeys;
    json_t *arr = json_array();
    for (size_t i = 0; js && i < cs_journeys_count(js); i++) {
        const cs_journey_t *j = cs_journeys_at(js, i);
        bool on;
        cs_rc rc = cs_journeys_enabled(js, s, j->id, &on, &c->err);
        if (rc) {
            json_decref(arr);
            return rc;
        }
        json_array_append_new(arr, journey_json(j, on));
    }
    c->out = json_pack("{s:o}", "journeys", arr);
    return CS_OK;
}

static cs_rc switch_fn(cs_store_t *s, void *arg)
{
    jctx_t *c = arg;
    cs_rc rc = cs_store_begin(s, &c->err);
    if (rc)
        return rc;
    if ((rc = cs_store_call(s, journey_enabled_set, c->id, c->on,
                            cs_clock_now(cs_engine_clock(c->h->engine)), &c->err)) ||
        (rc = cs_store_commit(s, &c->err))) {
        cs_store_rollback(s);
        return rc;
    }
    c->out = json_pack("{s:s,s:b}", "id", c->id, "enabled", c->on);
    return CS_OK;
}

static cs_rc customer_fn(cs_store_t *s, void *arg)
{
    jctx_t *c = arg;
    json_t *list;
    cs_rc rc = c->route == R_CUSTOMER_RUNS ? cs_store_call(s, runs_view, c->id, &list, &c->err)
               : c->route == R_CUSTOMER_DISCOUNTS
                   ? cs_store_call(s, discounts_view, c->id, &list, &c->err)
                   : cs_store_call(s, outbox_view, c->id, &list, &c->err);
    if (rc)
        return rc;
    if (json_array_size(list) == 0) {
        /* nothing for an id no event named (a typo, an id of another
         * system) is told as the customer view tells it, not as a
         * customer who got nothing */
        cs_contact_t who;
        rc = cs_store_call(s, contact_get, c->id, &who, &c->err);
        if (rc == CS_ERR_NOTFOUND)
            rc = cs_err_field(&c->err, CS_ERR_NOTFOUND, "id", "no customer with id \"%.64s\"",
                              c->id);
        if (rc) {
            json_decref(list);
            return rc;
        }
    }
    c->out = json_pack("{s:s,s:o}", "customer_id", c->id,
                       c->route == R_CUSTOMER_RUNS        ? "journeys"
                       : c->route == R_CUSTOMER_DISCOUNTS ? "discounts"
                                                          : "messages",
                       list);
    return CS_OK;
}

enum MHD_Result cs__http_journeys(hreq_t *r)
{
    jctx_t c;
    memset(&c, 0, sizeof c);
    cs_err_clear(&c.err);
    c.h = r->h;
    c.route = r->route;
    cs_rc rc;
    cs_err_t err;
    cs_err_clear(&err);
    switch (r->route) {
    case R_JOURNEYS:
        rc = cs__http_with_reader(r->h, list_fn, &c, &err);
        break;
    case R_JOURNEY_SWITCH: {
        c.on = strcmp(r->id + r->id_len, "/enable") == 0;
        if (cs__http_path_id(r, c.id, &c.err))
            return cs__http_reply_err(r, &c.err);
        bool known = false;
        cs_journeys_t *js = r->h->opts.journeys;
        for (size_t i = 0; js && i < cs_journeys_count(js); i++)
            known = known || strcmp(cs_journeys_at(js, i)->id, c.id) == 0;
        if (!known) {
            cs_err_field(&c.err, CS_ERR_NOTFOUND, "id",
                         "id: no journey \"%.64s\" is loaded (GET /v1/journeys lists them)",
                         c.id);
            return cs__http_reply_err(r, &c.err);
        }
        rc = cs_engine_with_writer(r->h->engine, switch_fn, &c);
        if (!rc)
            cs_engine_poke(r->h->engine);
        break;
    }
    default:
        if (cs__http_path_id(r, c.id, &c.err))
            return cs__http_reply_err(r, &c.err);
        rc = cs__http_with_reader(r->h, customer_fn, &c, &err);
        break;
    }
    if (rc) {
        if (c.err.rc == CS_OK)
            c.err = err;
        if (c.err.rc == CS_OK)
            c.err.rc = rc;
        json_decref(c.out);
        return cs__http_reply_err(r, &c.err);
    }
    return cs__http_reply(r, 200, c.out);
}

enum MHD_Result cs__http_messages_retry(hreq_t *r)
{
    cs_err_t err;
    cs_err_clear(&err);
    if (r->too_big) {
        cs_errf(&err, CS_ERR_TOOBIG, "request body exceeds the limit of %d bytes for filters",
                CS_HTTP_RETRY_BODY_MAX);
        return cs__http_reply_err(r, &err);
    }
    json_error_t je;
    json_t *doc = json_loadb(r->body.data ? r->body.data : "", r->body.len,
                             JSON_REJECT_DUPLICATES, &je);
    if (!doc) {
        cs_err_field(&err, CS_ERR_INVALID, "body",
                     "body: expected a JSON object of filters; malformed JSON at line %d: %s",
                     je.line, je.text);
        return cs__http_reply_err(r, &err);
    }
    cs_retry_req_t q;
    cs_retry_result_t res;
    cs_retry_init(&q);
    cs_rc rc = cs_retry_from_json(&q, doc, &err);
    json_decref(doc);
    if (!rc)
        rc = cs_retry_run(r->h->engine, &q, &res, &err);
    if (rc)
        return cs__http_reply_err(r, &err);
    if (!q.dry_run)
        atomic_fetch_add(&r->h->messages_requeued, (uint64_t)res.matched);
    json_t *out = cs_retry_json(&q, &res);
    if (!out) {
        cs_errf(&err, CS_ERR_NOMEM, "out of memory");
        return cs__http_reply_err(r, &err);
    }
    return cs__http_reply(r, 200, out);
}
