/*
 * sender_int.h -- the outbox worker's parts shared between its files:
 * sender.c (claiming, the hand-over's checks, sending, recording, the
 * thread) and render.c (a message's context read from the store, its
 * rendered parts, the start-up check of the templates). Not for other
 * modules: they use sender.h.
 */
#ifndef CS_SENDER_INT_H
#define CS_SENDER_INT_H

#include "sender.h"

#include <pthread.h>
#include <stdatomic.h>

#include "../policy/policy.h"
#include "../template/wamap.h"

struct cs_sender {
    cs_engine_t *engine;
    cs_sender_opts_t o;
    cs_policy_conf_t policy; /* quiet hours and holds at the hand-over, when has_policy;
                                else the default (order.ticket_open for templates) */
    bool has_policy;
    cs_wamap_t *wamap;       /* the WhatsApp template mappings (owned); NULL = none */
    char default_locale[16];
    char *shop_name, *public_url, *link_secret, *support_email;
    uint64_t next_ns[CS_OUT__CHANNELS]; /* rate limits: earliest next send */

    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, poked;

    _Atomic uint64_t st_sent, st_retried, st_failed, st_suppressed, st_render;
};

typedef struct ctx_task {
    const cs_outmsg_t *m;
    const cs_policy_conf_t *policy; /* the sender's: order.ticket_open as the journeys judge it */
    cs_ms_t now;              /* the hand-over's */
    json_t *customer, *order, *shipment;
    bool has_discount;        /* the run issued a code (the latest one), or the order's
                                 compensation code when the run has none */
    cs_discount_t discount;
    bool has_promise;         /* the order watch's record of the order */
    cs_promise_rec_t promise;
    bool other_late;          /* asks and marketing: another order of the customer is at
                                 risk (the order watch's), which holds them as this
                                 order's own delay does */
    bool withdrawn;           /* the run's trigger is the watch's delay signal, and the
                                 order is no longer at risk */
    bool superseded;          /* the run's trigger is the watch's delay signal, not its
                                 latest for the order (whose notice tells the same) */
    bool delivery_over;       /* the run's trigger is the scan that took its parcel out
                                 for delivery, and the parcel has moved on since
                                 (delivered, a failed attempt, at a pickup point, ...) */
    bool not_on_its_way;      /* a transactional message (the shipping notice) of a run
                                 started by a parcel's announcement, and no parcel of the
                                 order is on its way any more (delivered, back at the
                                 shop, or cancelled) */
    bool ticket_open;         /* a message about a known order, asks and marketing: a ticket
                                 of the customer, or about the order, is open (the
                                 policy's hold reads it for asks and marketing) */
    cs_ms_t ticket_at;        /* ... and the last update of the open one updated last */
    bool has_contact;         /* a message to the customer (not a webhook) of a known
                                 customer: their contact data, as the journeys read it
                                 (contact_get), from the customer read for the context */
    cs_contact_t who;
    bool to_old;              /* a retry (handed_at), whose address is the one its
                                 hand-over went to, to an address the customer no
                                 longer has on its channel */
    bool old_bounced;         /* to_old: that address bounced since the message was
                                 queued (who.bounced is the new one's) */
    cs_err_t err;
} ctx_task_t;

/* The message's context, read on a reader handle (the writer's for an
 * in-memory store): the customer, order and parcel, the run's discount,
 * the watch's promise, whether a ticket is open, the contact data. */
cs_rc cs__sender_read_ctx(cs_sender_t *s, ctx_task_t *c);
/* The template context of message m in lang (new reference; NULL when out
 * of memory). */
json_t *cs__sender_message_ctx(cs_sender_t *s, const cs_outmsg_t *m, ctx_task_t *c,
                               const char *lang);
/* The language template tmpl is written in for a customer speaking lang. */
const char *cs__sender_template_lang(const cs_sender_t *s, const char *tmpl, const char *lang,
                                     bool email);
/* Render `<tmpl>.<lang>.<part>` into *out (malloc'd, the caller frees);
 * CS_ERR_NOTFOUND when there is no such template. */
cs_rc cs__sender_render_part(cs_sender_t *s, const char *tmpl, const char *lang,
                             const char *part, bool html, json_t *ctx, char **out,
                             cs_err_t *err);
/* Write the no-break spaces of an SMS text (U+00A0, U+202F) as plain
 * ones, in place, so that it stays in the GSM-7 alphabet. */
void cs__sender_sms_spaces(char *text);
/* Append the shop's text footer in lang to *text (replaced). */
cs_rc cs__sender_add_footer(cs_sender_t *s, const char *lang, json_t *ctx, char **text,
                            cs_err_t *err);

/* A WhatsApp template message rendered: msg points into own (owned). */
typedef struct cs_wa_rendered {
    cs_wa_template_msg_t msg;
    char *own[1 + CS_WA_BODY_MAX + CS_WA_BUTTONS_MAX];
    int nown;
} cs_wa_rendered_t;
/* Render the parameters of mapping t with ctx into *out (free with
 * cs__sender_wa_free; nothing to free on failure). An error names the
 * mapping's file, line and parameter. */
cs_rc cs__sender_render_wa(cs_sender_t *s, const cs_wa_tpl_t *t, json_t *ctx,
                           cs_wa_rendered_t *out, cs_err_t *err);
void cs__sender_wa_free(cs_wa_rendered_t *w);

#endif
