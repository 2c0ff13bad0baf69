/*
 * serve.c -- `consonance serve`: the daemon. Opens the engine on the
 * configured store, creates the bootstrap API key when asked, serves HTTP
 * until SIGTERM or SIGINT, then shuts down gracefully: stop accepting,
 * answer what was received, commit everything queued, close the store.
 *
 * Signals are blocked in every thread (they are created after the mask is
 * set) and taken synchronously with sigwait on the main thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <strings.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../http/server.h"
#include "../lib/cs_crypto.h"
#include "../tracking/tracker.h"
#include "../tracking/watch.h"
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: consonance serve [--config FILE] [--store TARGET] [--host ADDR] [--port N]\n"
               "\n"
               "Runs the HTTP intake and API. Settings come from the config file, then\n"
               "CONSONANCE_* environment variables, then these flags (docs/configuration.md).\n");
}

typedef struct boot_ctx {
    const char *path;
    cs_err_t err;
} boot_ctx_t;

/* Create an all-scopes key and write its secret to the file (0600), unless
 * the file exists already. Runs on the writer. */
static cs_rc bootstrap_key(cs_store_t *s, void *arg)
{
    boot_ctx_t *b = arg;
    char secret[CS_APIKEY_SECRET_MAX];
    cs_apikey_t key;
    int fd = open(b->path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return CS_OK;
        return cs_errf(&b->err, CS_ERR_IO, "bootstrap_key_file %s: %s", b->path, strerror(errno));
    }
    cs_rc rc = cs_apikey_create(s, "bootstrap", CS_SCOPE_READ | CS_SCOPE_WRITE | CS_SCOPE_ADMIN,
                                cs_clock_now(cs_clock_system()), secret, &key, &b->err);
    if (rc == CS_OK) {
        size_t n = strlen(secret);
        if (write(fd, secret, n) != (ssize_t)n || write(fd, "\n", 1) != 1 || fsync(fd) != 0)
            rc = cs_errf(&b->err, CS_ERR_IO, "bootstrap_key_file %s: %s", b->path,
                         strerror(errno));
        else
            cs_info("created API key %s (all scopes); secret in %s", key.id, b->path);
    }
    close(fd);
    if (rc)
        unlink(b->path);
    return rc;
}

/* The writer's hooks, in order: the promise learns new deliveries, the
 * watch moves each order's promise (and may emit at-risk signals), then
 * journeys move (they read both); the learner is woken once more for what
 * those two appended, so its position reaches the log's end
 * (consonance_promise_seq) though none of it teaches. The soonest time any
 * asks for wins. */
typedef struct hooks {
    cs_tracker_t *tracker;
    cs_watch_t *watch;       /* NULL when order_watch is off */
    cs_journeys_t *journeys; /* may be NULL */
} hooks_t;

static void soonest(cs_ms_t *next, cs_ms_t t)
{
    if (t && (!*next || t < *next))
        *next = t;
}

static cs_rc run_hooks(cs_store_t *s, void *arg, cs_ms_t *next, cs_err_t *err)
{
    hooks_t *h = arg;
    cs_ms_t t = 0;
    *next = 0;
    cs_rc rc = cs_tracker_hook(s, h->tracker, &t, err);
    if (!rc && h->watch && (rc = cs_watch_hook(s, h->watch, &t, err)) == CS_OK)
        soonest(next, t);
    if (!rc && h->journeys && (rc = cs_journeys_hook(s, h->journeys, &t, err)) == CS_OK)
        soonest(next, t);
    if (!rc)
        rc = cs_tracker_hook(s, h->tracker, &t, err);
    return rc;
}

/* The logo as a data: URI, so the tracking page loads nothing from
 * elsewhere (owned; NULL with a message on stderr when unreadable). */
static char *logo_data_uri(const char *path)
{
    const char *dot = strrchr(path, '.');
    const char *type = !dot                                   ? NULL
                       : strcasecmp(dot, ".svg") == 0         ? "image/svg+xml"
                       : strcasecmp(dot, ".png") == 0         ? "image/png"
                       : strcasecmp(dot, ".jpg") == 0 ||
                               strcasecmp(dot, ".jpeg") == 0  ? "image/jpeg"
                       : strcasecmp(dot, ".webp") == 0        ? "image/webp"
                                                              : NULL;
    if (!type) {
        fprintf(stderr, "consonance serve: brand_logo: expected an .svg, .png, .jpg or .webp "
                        "file, got %s\n", path);
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "consonance serve: brand_logo: cannot read %s: %s\n", path,
                strerror(errno));
        return NULL;
    }
    enum { LOGO_MAX = 256 * 1024 };
    uint8_t *raw = cs_malloc(LOGO_MAX + 1);
    size_t n = raw ? fread(raw, 1, LOGO_MAX + 1, f) : 0;
    fclose(f);
    if (!raw || n == 0 || n > LOGO_MAX) {
        fprintf(stderr, "consonance serve: brand_logo: %s is empty or larger than 256 KiB\n",
                path);
        cs_free(raw);
        return NULL;
    }
    size_t pre = strlen("data:;base64,") + strlen(type);
    char *uri = cs_malloc(pre + 4 * ((n + 2) / 3) + 1);
    if (uri) {
        snprintf(uri, pre + 1, "data:%s;base64,", type);
        cs_base64(raw, n, uri + pre);
    }
    cs_free(raw);
    return uri;
}

int cs_cmd_serve(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"store", required_argument, NULL, 's'},
        {"host", required_argument, NULL, 'H'},   {"port", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *store = NULL, *host = NULL, *port = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:s:H:p:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 's': store = optarg; break;
        case 'H': host = optarg; break;
        case 'p': port = optarg; break;
        case 'h': usage(stdout); return CS_EXIT_OK;
        default: usage(stderr); return CS_EXIT_USAGE;
        }
    }
    if (optind != argc)
        return cs_cli_usage("serve", usage, "unexpected argument \"%s\"", argv[optind]);
    cs_conf_t conf;
    cs_err_t err;
    cs_err_clear(&err);
    if (!cs_cli_conf(&conf, config))
        return CS_EXIT_USAGE;
    if ((store && cs_conf_set(&conf, "store", store, "--store", &err)) ||
        (host && cs_conf_set(&conf, "host", host, "--host", &err)) ||
        (port && cs_conf_set(&conf, "port", port, "--port", &err))) {
        cs_cli_fail("serve", &err);
        return CS_EXIT_USAGE;
    }

    /* keep freed memory for reuse instead of returning it to the kernel on
     * every batch: intake allocates and frees in waves */
    mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
    mallopt(M_TOP_PAD, 16 * 1024 * 1024);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    cs_engine_opts_t eo;
    if (!cs_cli_engine_opts("serve", &conf, &eo))
        return CS_EXIT_FAIL;
    /* nodes sharing a store need distinct names: host:port unless told */
    char node[sizeof conf.node_id];
    if (!conf.node_id[0]) {
        char hn[48];
        cs_hostname(hn, sizeof hn);
        if (conf.port)
            snprintf(node, sizeof node, "%s:%d", hn, conf.port);
        else
            snprintf(node, sizeof node, "%s:pid%ld", hn, (long)getpid());
        eo.node = node;
    }
    cs_engine_t *engine = NULL;
    cs_http_t *http = NULL;
    cs_journeys_t *journeys = NULL;
    cs_tplset_t *templates = NULL;
    cs_sender_t *sender = NULL;
    cs_tracker_t *tracker = NULL;
    cs_calendar_t *calendar = NULL; /* the model's, the watch's and the journeys' */
    cs_watch_t *watch = NULL;
    char *logo = NULL;
    int status = CS_EXIT_FAIL;
    if (cs_engine_open(&eo, &engine, &err) != CS_OK) {
        cs_cli_fail("serve", &err);
        goto out;
    }
    if (cs_conf_calendar(&conf, &calendar, &err) != CS_OK) {
        cs_cli_fail("serve", &err);
        goto out;
    }
    if (!cs_cli_load_journeys("serve", &conf, engine, calendar, &journeys))
        goto out;
    if (!cs_cli_open_sender("serve", &conf, engine, journeys, &templates, &sender))
        goto out;
    cs_promise_opts_t po = { .tz = cs_tz_get_or_utc(conf.shop_timezone), .calendar = calendar };
    if (cs_tracker_new(&po, &tracker, &err) != CS_OK ||
        cs_tracker_start(tracker, engine, &err) != CS_OK) {
        cs_cli_fail("serve", &err);
        goto out;
    }
    cs_watch_opts_t wo;
    cs_watch_opts_default(&wo);
    wo.tracker = tracker;
    wo.clock = cs_engine_clock(engine);
    wo.tz = po.tz;
    wo.calendar = calendar;
    wo.horizon = conf.promise_horizon_ms;
    wo.comp_daily_budget = conf.comp_budget;
    wo.comp_percent_per_day = conf.comp_percent_per_day;
    wo.comp_percent_max = conf.comp_percent_max;
    wo.comp_free_shipping_days = conf.comp_free_shipping_days;
    wo.comp_wait_days = conf.comp_wait_days;
    wo.comp_amount_min = conf.comp_min;
    wo.comp_amount_max = conf.comp_max;
    wo.comp_valid = conf.comp_valid_ms;
    wo.comp_prefix = conf.comp_prefix;
    wo.currency = conf.shop_currency;
    wo.vip_spent = conf.vip_spent;
    wo.vip_orders = conf.vip_orders;
    if (conf.order_watch && cs_watch_new(&wo, &watch, &err) != CS_OK) {
        cs_cli_fail("serve", &err);
        goto out;
    }
    /* after each group: learn deliveries, watch orders, move journeys */
    hooks_t hooks = { tracker, watch, journeys };
    cs_engine_hook_t hook = { run_hooks, &hooks };
    cs_engine_set_hook(engine, &hook);
    if (sender && cs_sender_start(sender, &err) != CS_OK) {
        cs_cli_fail("serve", &err);
        goto out;
    }
    if (conf.bootstrap_key_file[0]) {
        boot_ctx_t b = {.path = conf.bootstrap_key_file};
        cs_err_clear(&b.err);
        if (cs_engine_with_writer(engine, bootstrap_key, &b) != CS_OK) {
            cs_cli_fail("serve", &b.err);
            goto out;
        }
    }
    cs_http_opts_t ho;
    cs_http_opts_default(&ho);
    ho.host = conf.host;
    ho.port = conf.port;
    ho.threads = conf.http_threads;
    ho.max_body_bytes = (size_t)conf.max_body_bytes;
    ho.max_batch_events = (size_t)conf.max_batch_events;
    ho.journeys = journeys;
    ho.link_secret = conf.link_secret;
    ho.public_url = conf.public_url;
    ho.sms_token = conf.sms_token;
    ho.wa_app_secret = conf.whatsapp_app_secret;
    ho.wa_verify_token = conf.whatsapp_verify_token;
    ho.aftership_secret = conf.aftership_secret;
    ho.tracking_secret = conf.tracking_secret;
    ho.tracker = tracker;
    ho.watch = watch;
    if (conf.brand_logo[0] && !(logo = logo_data_uri(conf.brand_logo)))
        goto out;
    ho.shop_name = conf.shop_name;
    ho.brand_color = conf.brand_color;
    ho.brand_logo = logo;
    ho.returns_url = conf.returns_url;
    ho.support_url = conf.support_url;
    ho.support_email = conf.support_email;
    ho.reassurance_de = conf.reassurance_de;
    ho.reassurance_en = conf.reassurance_en;
    ho.tracking_lookups = conf.tracking_lookups;
    ho.page_cache_bytes = (size_t)conf.tracking_page_cache;
    ho.default_locale = conf.default_locale;
    ho.shop_tz = po.tz;
    if (cs_http_start(engine, &ho, &http, &err) != CS_OK) {
        cs_cli_fail("serve", &err);
        goto out;
    }
    char store_shown[CS_CONF_STR_MAX]; /* a PostgreSQL URI's password left out */
    cs_conf_shown("store", conf.store, store_shown, sizeof store_shown);
    cs_info("consonance %s: store %s", CS_VERSION, store_shown);
    if (!conf.link_secret[0])
        cs_info("tracking page off (GET /t answers 404): link_secret is not set: expected a "
                "random string of at least 16 characters");
    bool v6 = strchr(conf.host, ':') != NULL;
    fprintf(stderr, "listening on http://%s%s%s:%d\n", v6 ? "[" : "", conf.host, v6 ? "]" : "",
            cs_http_port(http));
    fflush(stderr);

    int sig = 0;
    for (;;) {
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            cs_info("SIGHUP: nothing to reload yet (restart to apply configuration changes)");
            continue;
        }
        break;
    }
    cs_info("%s: shutting down: answering requests in flight, committing the queue",
            sig == SIGINT ? "SIGINT" : "SIGTERM");
    status = CS_EXIT_OK;
out:
    cs_http_stop(&http);
    cs_sender_free(sender); /* finishes the message in hand; uses the engine */
    cs_tracker_stop(tracker); /* its thread reads through the engine */
    cs_engine_close(&engine);
    cs_journeys_free(journeys); /* after the engine: its writer ran the passes */
    cs_tracker_free(tracker);
    cs_watch_free(watch);
    cs_calendar_free(&calendar); /* after the model, the watch and the journeys that borrow it */
    cs_free(logo);
    cs_tplset_free(templates);
    if (status == CS_EXIT_OK)
        cs_info("stopped cleanly");
    return status;
}
