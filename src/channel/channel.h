/*
 * channel.h -- transports that hand a rendered message to the outside:
 * email over SMTP (libcurl: STARTTLS when offered or required, AUTH,
 * connection reuse), SMS through a Twilio-style HTTP API and WhatsApp
 * through the WhatsApp Cloud API. Backends are const vtables.
 *
 * Every send carries the message's idempotency key: SMTP derives the
 * Message-ID from it, the HTTP providers get it as an idempotency header,
 * so a message re-sent after a crash in the hand-over is recognisably the
 * same message.
 *
 * Thread-safety: a transport is used by one thread at a time.
 */
#ifndef CS_CHANNEL_H
#define CS_CHANNEL_H

#include <stdbool.h>

#include "../lib/cs.h"
#include "../lib/cs_time.h"
#include "../model/event.h"

/* A WhatsApp template message: the approved template and its parameters,
 * rendered (every string borrowed). */
#define CS_WA_MSG_BODY_MAX 32
#define CS_WA_MSG_BUTTONS_MAX 10
typedef struct cs_wa_template_msg {
    const char *name;                          /* the approved template's name */
    const char *language;                      /* its language code: de, en_US */
    const char *header;                        /* a text header's parameter; NULL = none */
    const char *body[CS_WA_MSG_BODY_MAX];      /* body parameters {{1}}, {{2}}, ... */
    int nbody;
    const char *button[CS_WA_MSG_BUTTONS_MAX]; /* URL buttons' suffix by index; NULL = none */
    const char *file;                          /* the mapping file, named in reasons */
} cs_wa_template_msg_t;

typedef struct cs_mail {
    cs_channel_t channel;
    const char *to;              /* email address, or phone in E.164 (+4915...) */
    const char *to_name;         /* may be NULL */
    const char *subject;         /* email */
    const char *html;            /* email HTML part; may be NULL */
    const char *text;            /* email text part; SMS / WhatsApp body */
    const char *idem_key;        /* unique per message */
    const char *unsubscribe_url; /* RFC 8058 one-click link; NULL = none */
    cs_ms_t date;
    /* WhatsApp: the approved template to send instead of text (NULL = the
     * text); and our template (T.L), named in reasons */
    const cs_wa_template_msg_t *wa_template;
    const char *template_ref;
} cs_mail_t;

typedef enum cs_send_status {
    CS_SEND_OK = 0,        /* accepted by the provider */
    CS_SEND_RETRY = 1,     /* temporary: try again later */
    CS_SEND_PERMANENT = 2  /* will never work: bad address, rejected recipient */
} cs_send_status_t;

typedef struct cs_send_result {
    cs_send_status_t status;
    char provider_ref[128];  /* Message-ID, SMS sid, WhatsApp message id */
    char detail[256];        /* why, for the outbox's reason */
} cs_send_result_t;

typedef struct cs_transport cs_transport_t;
typedef struct cs_transport_ops {
    const char *name;
    void (*send)(cs_transport_t *t, const cs_mail_t *m, cs_send_result_t *r);
    void (*close)(cs_transport_t *t);
} cs_transport_ops_t;
struct cs_transport {
    const cs_transport_ops_t *ops;
};

static inline void cs_transport_send(cs_transport_t *t, const cs_mail_t *m, cs_send_result_t *r)
{
    t->ops->send(t, m, r);
}
void cs_transport_close(cs_transport_t **t);

typedef struct cs_smtp_conf {
    const char *url;        /* smtp://host:port (STARTTLS per tls) or smtps://host:port */
    const char *user;       /* NULL/"" = no AUTH */
    const char *password;
    const char *from;       /* "Shop Name <service@shop.example>" or an address */
    const char *tls;        /* "try" (STARTTLS when offered), "require", "off" */
    bool tls_verify;        /* verify the server's certificate */
    int timeout_ms;         /* per message; 0 = 30000 */
} cs_smtp_conf_t;
cs_rc cs_smtp_open(const cs_smtp_conf_t *c, cs_transport_t **out, cs_err_t *err);

typedef struct cs_http_provider_conf {
    const char *url;        /* the full endpoint */
    const char *user;       /* SMS: account id (Basic auth); WhatsApp: unused */
    const char *token;      /* SMS: auth token; WhatsApp: bearer token */
    const char *from;       /* SMS: sender number or name */
    bool tls_verify;
    int timeout_ms;         /* 0 = 15000 */
} cs_http_provider_conf_t;
cs_rc cs_sms_twilio_open(const cs_http_provider_conf_t *c, cs_transport_t **out, cs_err_t *err);
cs_rc cs_whatsapp_cloud_open(const cs_http_provider_conf_t *c, cs_transport_t **out,
                             cs_err_t *err);

/* Outbound journey webhooks: the message's `to` is the URL, `text` the JSON
 * body, `subject` the event name; token is webhook_secret (url unused). */
cs_rc cs_webhook_open(const cs_http_provider_conf_t *c, cs_transport_t **out, cs_err_t *err);

/* ---- pieces, exposed for tests ---- */

/* A syntactically usable email address (one @, no spaces, no <>, <= 254). */
bool cs_email_valid(const char *s);
/* E.164: + and 8..15 digits. */
bool cs_phone_valid(const char *s);
/* Build the RFC 5322 / MIME message (CRLF lines) into out. `from` as in
 * cs_smtp_conf_t; the Message-ID is <hash of idem_key@from's domain>. */
cs_rc cs_mime_build(const cs_mail_t *m, const char *from, cs_buf_t *out, char *message_id,
                    size_t message_id_size, cs_err_t *err);

#endif /* CS_CHANNEL_H */
