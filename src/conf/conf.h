/*
 * conf.h -- the daemon's configuration: one flat file of `key = value` lines
 * (Postfix main.cf style, `#` starts a comment), then environment overrides
 * CONSONANCE_<KEY> (upper case), then command-line flags (the CLI's job).
 *
 * Every key is documented in docs/configuration.md and has a default, so an
 * empty file is a valid configuration. Unknown keys and bad values are errors
 * that name the file, the line and the key.
 *
 * Ownership: a cs_conf_t holds its strings in fixed buffers; it can be copied
 * by value and needs no cleanup. Thread-safety: none needed (start-up only).
 */
#ifndef CS_CONF_H
#define CS_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/cs.h"

#define CS_CONF_STR_MAX 1024

typedef struct cs_conf {
    char store[CS_CONF_STR_MAX];        /* store target; "sqlite:consonance.db" */
    char node_id[64];                   /* this node's name in outbox claims; "" = host:port */
    char host[256];                     /* listen address; "127.0.0.1" */
    int port;                           /* 0 = ephemeral; default 8080 */
    int http_threads;                   /* HTTP worker threads; default 2 */
    int64_t max_body_bytes;             /* largest request body; default 16 MiB */
    int64_t max_batch_events;           /* most events in one POST; default 10000 */
    bool durable;                       /* fsync each commit; default true */
    int64_t cache_kib;                  /* store page cache per handle; default 16384 */
    int64_t max_group_events;           /* events per group commit; default 20000 */
    int64_t max_queue_events;           /* queued events before 503; default 200000 */
    int readers;                        /* pooled read handles; default 4 */
    char bootstrap_key_file[CS_CONF_STR_MAX]; /* "" = none; see docs/configuration.md */
    char log_level[16];                 /* debug|info|warn|error; default info */
    /* journeys and the contact policy */
    char journeys[CS_CONF_STR_MAX];     /* folder of journey files; "" = none */
    char templates[CS_CONF_STR_MAX];    /* folder of message templates; "" = none */
    char carriers[CS_CONF_STR_MAX];     /* folder of carrier tables; "" = the built-in ones */
    char default_locale[8];             /* de|en for customers without one; default de */
    int contact_budget;                 /* budgeted messages per window; default 3 */
    int64_t contact_window_ms;          /* default 7d */
    char quiet_hours[16];               /* "21:00-08:00" (default) or "off" */
    char quiet_hours_exempt[128];       /* classes; default "transactional" */
    int64_t ask_cooldown_ms;            /* default 30d */
    int64_t hold_max_ms;                /* default 7d */
    int64_t ticket_stale_after_ms;      /* default 30d; 0 = off (open tickets hold for good) */
    int64_t address_wait_ms;            /* default 30m */
    /* sending */
    char shop_timezone[64];             /* delivery dates are days in this zone */
    char holidays[16];                  /* public holidays: "auto" (shop_timezone's
                                           country), a country code, or "none" */
    char closed_days[1024];             /* "12-24, 12-31, 2026-12-28"; "" = none */
    char shop_name[256];                /* in messages; default "Consonance Shop" */
    char support_email[256];
    char public_url[512];               /* base of links in messages; "" = no links */
    char link_secret[256];              /* signs unsubscribe links; needed with public_url */
    char smtp_url[512];                 /* "" = email off */
    char smtp_user[256];
    char smtp_password[256];
    char smtp_from[512];
    char smtp_tls[16];                  /* try|require|off */
    bool smtp_tls_verify;
    int email_rate;                     /* per second; 0 = unlimited */
    char sms_url[512];                  /* "" = SMS off */
    char sms_account[256];
    char sms_token[256];
    char sms_from[64];
    int sms_rate;
    char whatsapp_url[512];             /* "" = WhatsApp off */
    char whatsapp_token[512];
    char whatsapp_app_secret[256];      /* verifies status callbacks; "" = callbacks off */
    char whatsapp_verify_token[256];    /* answers Meta's subscription check */
    char webhook_secret[256];           /* signs outbound journey webhooks */
    char aftership_secret[256];         /* verifies aggregator tracking webhooks */
    char tracking_secret[256];          /* verifies the scan webhook form */
    int whatsapp_rate;
    bool provider_tls_verify;           /* SMS and WhatsApp: verify certificates */
    int send_attempts;                  /* default 8 */
    int webhook_attempts;               /* default 20: journey webhooks */
    int64_t retry_base_ms;              /* default 1m */
    int64_t send_lease_ms;              /* a claimed message's lease; default 5m */
    /* the order watch and compensation (money in minor units) */
    bool order_watch;                   /* keep each order's promise; default yes */
    int64_t promise_horizon_ms;         /* orders older are not watched; default 60d */
    char shop_currency[4];              /* ISO 4217: what the amounts below are in; EUR */
    int64_t comp_budget;                /* per local day; default 0 = off */
    int comp_percent_per_day;           /* default 5 */
    int comp_percent_max;               /* default 20 */
    int comp_free_shipping_days;        /* default 1 */
    int comp_wait_days;                 /* default 2 */
    int64_t comp_min, comp_max;         /* default 5.00, 50.00 */
    int64_t comp_valid_ms;              /* default 90d */
    char comp_prefix[12];               /* default SORRY */
    int64_t vip_spent;                  /* default 500.00; 0 = by vip_orders alone */
    int vip_orders;                     /* default 5 */
    /* the tracking page */
    char brand_color[8];                /* default #2d5b3f */
    char brand_logo[CS_CONF_STR_MAX];   /* a logo file; "" = the shop's name */
    char returns_url[512];
    char support_url[512];
    char reassurance_de[512];
    char reassurance_en[512];
    int tracking_lookups;               /* failed lookups per address per 15 min; default 10 */
    int64_t tracking_page_cache;        /* bytes of rendered pages kept; default 32 MiB */
} cs_conf_t;

void cs_conf_defaults(cs_conf_t *c);

/* Read `path` over the values already in c. CS_ERR_IO when the file cannot be
 * read; CS_ERR_CONFIG with "FILE:LINE: key: message" otherwise. */
cs_rc cs_conf_load(cs_conf_t *c, const char *path, cs_err_t *err);

/* Apply CONSONANCE_<KEY> environment variables over c. A CONSONANCE_*
 * variable that names no setting (CONSONANCE_CONFIG aside) is CS_ERR_CONFIG,
 * as an unknown key in the file is. */
cs_rc cs_conf_apply_env(cs_conf_t *c, cs_err_t *err);

/* Set one key from text; `origin` ("consonance.conf:12", "CONSONANCE_PORT",
 * "--port") is used in error messages. */
cs_rc cs_conf_set(cs_conf_t *c, const char *key, const char *value, const char *origin,
                  cs_err_t *err);

/* The delivery calendar of holidays and closed_days ("auto": the public
 * holidays of shop_timezone's country, when known); *out NULL is weekdays
 * alone. Owned by the caller (cs_calendar_free). */
typedef struct cs_calendar cs_calendar_t;
cs_rc cs_conf_calendar(const cs_conf_t *c, cs_calendar_t **out, cs_err_t *err);

/* quiet_hours text -> minutes of the day; false on bad text. "off" gives 0, 0. */
bool cs_conf_quiet_hours(const char *s, int *start, int *end);

/* What no single key can say wrong: settings that contradict each other
 * (compensation_min above compensation_max, a daily budget below the
 * smallest code, public_url without link_secret, a channel's URL without
 * the settings it needs). CS_ERR_CONFIG naming both keys. */
cs_rc cs_conf_check(const cs_conf_t *c, cs_err_t *err);

/* Whether key's value is a secret (a password, a token, a key that signs
 * or verifies): no message, log line or listing shows it. */
bool cs_conf_secret(const char *key);

/* value of key as a message or log line may show it, into buf (size
 * bytes, NUL-terminated, cut to fit): a secret's as its length alone, any
 * other with the password of a URL's user:password@ (a PostgreSQL store,
 * say) as "***". Returns the length written. key may name no setting. */
size_t cs_conf_shown(const char *key, const char *value, char *buf, size_t size);

/* The name of the i-th setting the parser knows (borrowed, static), NULL
 * past the last: for tests that keep the example file and the docs in step. */
const char *cs_conf_key(size_t i);

/* Map log_level text to the cs_log level; -1 when unknown. */
int cs_conf_log_level(const cs_conf_t *c);

#endif /* CS_CONF_H */
