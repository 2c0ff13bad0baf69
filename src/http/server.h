/*
 * server.h -- the HTTP server: event intake, views, health and metrics over
 * an engine (libmicrohttpd, epoll, a small thread pool).
 *
 * An intake request is acknowledged only after the engine committed its
 * events: the connection is suspended while the writer works (no thread
 * waits), so many connections share one group commit. docs/api.md
 * documents the routes, errors and metrics.
 *
 * Thread-safety: start and stop from one thread. Ownership: the server
 * borrows the engine, which must outlive it.
 */
#ifndef CS_HTTP_SERVER_H
#define CS_HTTP_SERVER_H

#include <stddef.h>

#include "../engine/engine.h"
#include "../engine/journeys.h"
#include "../lib/cs.h"
#include "../lib/cs_tz.h"

typedef struct cs_http_opts {
    const char *host;        /* IPv4 or IPv6 literal, or "localhost"; borrowed */
    int port;                /* 0 = any free port (see cs_http_port) */
    int threads;             /* event loops; 0 = 2 */
    size_t max_body_bytes;   /* 0 = 16 MiB */
    size_t max_batch_events; /* 0 = 10000 */
    int key_cache_ms;        /* how long a verified API key is trusted; 0 = 2000 */
    cs_journeys_t *journeys; /* loaded journeys for /v1/journeys; NULL = none; borrowed */
    const char *link_secret; /* verifies /u/{token} links; NULL = links off; borrowed */
    /* delivery status callbacks (borrowed; NULL or "" = that callback is off) */
    const char *public_url;      /* the URL providers call us at (Twilio signs it) */
    const char *sms_token;       /* verifies X-Twilio-Signature */
    const char *wa_app_secret;   /* verifies X-Hub-Signature-256 */
    const char *wa_verify_token; /* answers Meta's subscription check */
    const char *aftership_secret; /* verifies aggregator tracking webhooks */
    const char *tracking_secret;  /* verifies our own scan webhook form */
    struct cs_tracker *tracker;   /* delivery promises; NULL = off; borrowed */
    struct cs_watch *watch;       /* the order watch, for metrics; NULL = none; borrowed */
    const cs_tz_t *shop_tz;       /* the shop's zone for dates; NULL = UTC */
    /* the tracking page (/t); all borrowed, "" or NULL = not shown */
    const char *shop_name;
    const char *brand_color;      /* "#2d5b3f" */
    const char *brand_logo;       /* a data: URI */
    const char *returns_url;
    const char *support_url;
    const char *support_email;
    const char *reassurance_de;
    const char *reassurance_en;
    int tracking_lookups;         /* failed lookups per address per 15 minutes; 0 = 10 */
    size_t page_cache_bytes;      /* rendered pages kept, in bytes; 0 = 32 MiB */
    const char *default_locale;   /* "de"|"en" for customers without one; NULL = "de" */
} cs_http_opts_t;

typedef struct cs_http cs_http_t;

void cs_http_opts_default(cs_http_opts_t *o);

cs_rc cs_http_start(cs_engine_t *engine, const cs_http_opts_t *opts, cs_http_t **out,
                    cs_err_t *err);

/* The port actually bound. */
int cs_http_port(const cs_http_t *h);

/* Stop accepting, answer every request already received (intake requests
 * wait for their commit), then stop. NULL-safe; NULLs the pointer. */
void cs_http_stop(cs_http_t **h);

#endif /* CS_HTTP_SERVER_H */
