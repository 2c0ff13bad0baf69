/*
 * retry.h -- an operator's retry of failed messages: after an SMTP relay or
 * SMS provider outage longer than the retry schedule, the messages that
 * gave up go back to the queue, filtered by when they failed (required, so
 * nobody requeues the whole history by accident), channel, journey,
 * customer and reason. A requeued message keeps its row and idempotency
 * key and is handed over through every check of a first hand-over
 * (consent, unsubscribe, holds, quiet hours, ...): nothing here bypasses
 * the contact policy. Only FAILED messages are taken, never ones the
 * policy SKIPPED. POST /v1/messages/retry and `consonance messages retry`
 * share it.
 *
 * Thread-safety: a request is the caller's; cs_retry_run goes through the
 * engine's writer, from any thread.
 */
#ifndef CS_RETRY_H
#define CS_RETRY_H

#include "../lib/cs_json.h"
#include "engine.h"

/* The most ids a retry's answer lists (the lowest). */
#define CS_RETRY_IDS_MAX 100

typedef struct cs_retry_req {
    cs_out_filter_t f;      /* its strings point into the buffers below */
    bool dry_run;           /* count, change nothing */
    bool has_since;
    char journey[CS_JID_MAX + 1];
    char customer_id[CS_ID_MAX + 1];
    char reason_prefix[64];
} cs_retry_req_t;

typedef struct cs_retry_result {
    int64_t matched;        /* FAILED messages the filter matched (all requeued
                               unless dry_run) */
    int64_t ids[CS_RETRY_IDS_MAX]; /* the lowest of their ids, in order */
    size_t n_ids;
} cs_retry_result_t;

/* An empty request: any channel, no bounds yet. */
void cs_retry_init(cs_retry_req_t *q);
/* Set one filter from text: key is its JSON name (failed_since,
 * failed_until: RFC 3339; channel: email, sms, whatsapp or webhook;
 * journey; customer_id; reason_prefix), `name` what a message calls it
 * (the JSON name, or a command-line flag). CS_ERR_RULE naming `name` with
 * what was expected; an unknown key is CS_ERR_RULE naming it too. */
cs_rc cs_retry_set(cs_retry_req_t *q, const char *key, const char *value, const char *name,
                   cs_err_t *err);
/* The body of POST /v1/messages/retry (borrowed): an object of the keys
 * above as strings and dry_run as a boolean; then cs_retry_check. */
cs_rc cs_retry_from_json(cs_retry_req_t *q, const json_t *body, cs_err_t *err);
/* What holds across the filters: failed_since is given, and before
 * failed_until when that is. since_name, until_name: as cs_retry_set's name. */
cs_rc cs_retry_check(const cs_retry_req_t *q, const char *since_name, const char *until_name,
                     cs_err_t *err);
/* Requeue (or, dry_run, count) the matching messages through the engine's
 * writer, in one statement of the store, and log a line saying what. */
cs_rc cs_retry_run(cs_engine_t *e, const cs_retry_req_t *q, cs_retry_result_t *out,
                   cs_err_t *err);
/* {dry_run, matched, requeued, ids, ids_truncated, filter} (returns owned;
 * NULL when out of memory). */
json_t *cs_retry_json(const cs_retry_req_t *q, const cs_retry_result_t *r);

#endif /* CS_RETRY_H */
