/*
 * sender.h -- takes queued messages from the outbox, renders them from
 * their templates and the current state, hands them to their channel's
 * transport, and records what happened:
 *
 *   claim (writer: QUEUED -> SENDING with a lease, one attempt more)
 *   -> render (a reader: customer, order, shipment; locale formatting)
 *   -> send (per-channel rate limit) -> record (writer: SENT with the
 *   provider's reference; QUEUED again with exponential backoff and jitter
 *   on a temporary failure; FAILED on a permanent one or when attempts run
 *   out).
 *
 * A store read that fails before the hand-over costs no attempt; one that
 * keeps failing for the retry schedule's length fails the message.
 *
 * Crash safety: a message is recorded before it is sent; one whose lease
 * runs out while SENDING (its sender died) is claimed again and re-sent
 * with the same idempotency key and Message-ID, which providers and mail
 * systems use to drop the repeat. Such a claim is not taken for a
 * hand-over (handed_at): whether and where it went is not known, so the
 * next one is checked as the hand-over it was (a first one: the address
 * the customer has then), not as a retry. An outcome the store fails to record
 * stops the batch: its claims not handed over yet go back to the queue
 * untried. Consent is checked again just before
 * sending (a customer may have unsubscribed since the message was queued),
 * and so are the policy's holds (a ticket opened, a delivery gone late
 * since) and quiet hours (a retry or a backlog may have come into them):
 * such a message is queued again for hold_retry or their end, its attempt
 * given back; one still held hold_max after it was queued (or requeued by
 * an operator) is skipped.
 *
 * Templates: `<template>.<lang>.subject`, `.html` and `.txt` for email,
 * `.sms` (else `.txt`) for SMS and WhatsApp; lang is the customer's
 * (de/en), or the default locale's when the template has no text in
 * theirs, and every part comes from that one language. Rendered strictly: a
 * missing variable fails the message with the template and line. A
 * WhatsApp message whose template has a `<template>.<lang>.whatsapp` in
 * that language goes as the approved WhatsApp template it names
 * (cs_sender_load_whatsapp), its parameters rendered the same way.
 *
 * Thread-safety: one sender thread; cs_sender_poke from anywhere.
 */
#ifndef CS_SENDER_H
#define CS_SENDER_H

#include "../channel/channel.h"
#include "../template/mustache.h"
#include "engine.h"
#include "journeys.h"

typedef struct cs_sender cs_sender_t;

typedef struct cs_sender_opts {
    cs_tplset_t *templates;                        /* borrowed */
    /* by outbox channel (cs_channel_t, then CS_OUT_WEBHOOK): owned by the
     * sender; NULL = channel off */
    cs_transport_t *transports[CS_OUT__CHANNELS];
    double rate[CS_OUT__CHANNELS];                 /* messages per second; 0 = unlimited */
    int max_attempts;                              /* 0 = 8 */
    int webhook_attempts;                          /* the same for webhooks (to the
                                                    * shop's own system); 0 = 20 */
    cs_ms_t retry_base;                            /* first retry after about this; 0 = 60 s */
    cs_ms_t retry_max;                             /* 0 = 6 h */
    cs_ms_t lease;                                 /* 0 = 5 min */
    const char *default_locale;                    /* NULL = "de" */
    const char *shop_name;                         /* for templates */
    const char *public_url;                        /* base of links; "" = no links */
    const char *link_secret;                       /* signs unsubscribe links */
    const char *support_email;
    const struct cs_tz *shop_tz;                   /* delivery dates' zone; NULL = the customer's;
                                                    * quiet hours' for customers without one */
    const cs_policy_conf_t *policy;                /* its holds and quiet hours, asked
                                                    * again at the hand-over (copied);
                                                    * NULL = none */
    size_t batch;                                  /* claims per round; 0 = 32 */
} cs_sender_opts_t;

/* Load the WhatsApp template mappings of the templates folder dir
 * (`T.L.whatsapp`, docs/channels.md) into the sender, their parameters
 * into its template set: a WhatsApp message of a mapped template and
 * language then goes as that approved template. Call before
 * cs_sender_start (and cs_sender_check_templates, which renders them).
 * *count gets the number of mappings; an error names file and line. */
cs_rc cs_sender_load_whatsapp(cs_sender_t *s, const char *dir, size_t *count, cs_err_t *err);

/* The transports in opts move into the sender (also on failure). */
cs_rc cs_sender_new(cs_engine_t *e, cs_sender_opts_t *opts, cs_sender_t **out, cs_err_t *err);
/* Start the background thread. */
cs_rc cs_sender_start(cs_sender_t *s, cs_err_t *err);
/* Stop the thread (finishing the message in hand) and free everything. */
void cs_sender_free(cs_sender_t *s);
void cs_sender_poke(cs_sender_t *s);

/* One round without the thread: claim due messages, send, record.
 * *handled counts the messages claimed. */
cs_rc cs_sender_run_once(cs_sender_t *s, size_t *handled, cs_err_t *err);

typedef struct cs_sender_stats {
    uint64_t sent, retried, failed, suppressed, render_errors;
} cs_sender_stats_t;
void cs_sender_stats(cs_sender_t *s, cs_sender_stats_t *out);

/* Check that every message the journeys can send has its templates in both
 * languages (de, en) for each of its channels, and that each renders in
 * strict mode against a sample message (so a misspelt variable is found at
 * start-up). Errors name the journey file and line, or the template. */
cs_rc cs_sender_check_templates(cs_sender_t *s, const cs_journeys_t *js, cs_err_t *err);

/* A provider's delivery status of message m (on its channel) as a
 * message.status event with the id "cb-CHANNEL-MESSAGE-STATUS" (a status
 * reported twice is one event), from "callback-CHANNEL", at `at`. (The
 * sender records a send the Cloud API refused with 131050 so, from
 * "send-whatsapp".)
 * *out is owned by the caller. */
cs_rc cs_sender_status_event(const cs_outmsg_t *m, int status, const char *detail, cs_ms_t at,
                             cs_event_t **out, cs_err_t *err);

/* The customer of an unsubscribe token, or false when the token is forged. */
bool cs_unsubscribe_token_check(const char *secret, const char *token, char *customer,
                                size_t size);
/* Make a token for a customer (at least 2 * id length + 64 bytes). */
void cs_unsubscribe_token(const char *secret, const char *customer, char *out, size_t size);

/* Signed links to other pages: the id hex-encoded, a dot, 128 bits of
 * HMAC-SHA256 over "purpose:id" ("t" = the tracking page of an order). */
void cs_link_token(const char *secret, const char *purpose, const char *id, char *out,
                   size_t size);
bool cs_link_token_check(const char *secret, const char *purpose, const char *token, char *id,
                         size_t size);

#endif /* CS_SENDER_H */
