/*
 * main.c -- `consonance <command> [options]`: dispatch to the subcommands.
 */
#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <microhttpd.h>
#include <sqlite3.h>

#include "cli.h"

#include "../lib/cs_tz.h"

typedef struct cmd {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} cmd_t;

static const cmd_t commands[] = {
    {"serve", cs_cmd_serve, "run the daemon: HTTP intake and views over the store"},
    {"import", cs_cmd_import, "load canonical NDJSON events or an Olist CSV folder"},
    {"demo", cs_cmd_demo, "generate a realistic German demo shop into the store"},
    {"apikey", cs_cmd_apikey, "create, list and revoke API keys"},
    {"journeys", cs_cmd_journeys, "check, list and switch journeys; a customer's runs and messages"},
    {"messages", cs_cmd_messages, "requeue failed messages after an outage (retry)"},
    {"promise-eval", cs_cmd_promise_eval, "evaluate the delivery promise on Olist-layout CSVs"},
    {"schema", cs_cmd_schema, "print the store's migrations for sqlite or postgresql"},
    {"copy-store", cs_cmd_copy_store, "copy an SQLite store into an empty PostgreSQL database"},
    {"version", cs_cmd_version, "print version information"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: consonance <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < CS_ARRAY_LEN(commands); i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun `consonance <command> --help` for the options of one command.\n");
}

int cs_cmd_version(int argc, char **argv)
{
    /* it takes nothing: a word after it is a mistake, as with every command */
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: consonance version\nPrints the version and those of the libraries.\n");
        return CS_EXIT_OK;
    }
    if (argc > 1) {
        fprintf(stderr, "consonance version: expected no arguments, got %s\n"
                        "usage: consonance version\n",
                argv[1]);
        return CS_EXIT_USAGE;
    }
    printf("consonance %s (event schema %d; sqlite %s, libmicrohttpd %s, jansson %s)\n",
           CS_VERSION, CS_SCHEMA_VERSION, sqlite3_libversion(), MHD_get_version(),
           JANSSON_VERSION);
    return CS_EXIT_OK;
}

bool cs_cli_conf(cs_conf_t *c, const char *config_path)
{
    cs_err_t err;
    cs_err_clear(&err);
    cs_conf_defaults(c);
    /* an empty CONSONANCE_CONFIG is one not set; an empty --config is a
     * mistake (a shell variable that was not set), not "no file" */
    if (config_path && !*config_path) {
        fprintf(stderr, "consonance: --config: expected a config file, got an empty path\n");
        return false;
    }
    if (!config_path)
        config_path = getenv("CONSONANCE_CONFIG");
    if (config_path && *config_path && cs_conf_load(c, config_path, &err) != CS_OK) {
        fprintf(stderr, "consonance: %s\n", err.msg);
        return false;
    }
    if (cs_conf_apply_env(c, &err) != CS_OK || cs_conf_check(c, &err) != CS_OK) {
        fprintf(stderr, "consonance: %s\n", err.msg);
        return false;
    }
    cs_log_set_level((cs_log_level_t)cs_conf_log_level(c));
    return true;
}

/* The carrier tables, loaded once per process and kept to its end. */
static cs_carriers_t *g_carriers;

static void free_carriers(void)
{
    cs_carriers_free(g_carriers);
    g_carriers = NULL;
}

bool cs_cli_engine_opts(const char *cmd, const cs_conf_t *c, cs_engine_opts_t *eo)
{
    cs_engine_opts_default(eo);
    if (!g_carriers) {
        cs_err_t err;
        cs_err_clear(&err);
        cs_rc rc = c->carriers[0] ? cs_carriers_load_dir(c->carriers, &g_carriers, &err)
                                  : cs_carriers_load_builtin(&g_carriers, &err);
        if (rc) {
            cs_cli_fail(cmd, &err);
            return false;
        }
        atexit(free_carriers);
    }
    eo->carriers = g_carriers;
    eo->store = c->store;
    eo->durable = c->durable;
    eo->cache_kib = c->cache_kib;
    eo->max_group_events = (size_t)c->max_group_events;
    eo->max_queue_events = (size_t)c->max_queue_events;
    eo->readers = c->readers;
    eo->node = c->node_id;
    return true;
}

void cs_cli_journeys_opts(const cs_conf_t *c, const cs_clock_t *clock, cs_journeys_opts_t *jo)
{
    memset(jo, 0, sizeof *jo);
    jo->clock = clock;
    cs_policy_conf_default(&jo->policy);
    jo->policy_set = true;
    jo->policy.budget = c->contact_budget;
    jo->policy.budget_window = c->contact_window_ms;
    cs_conf_quiet_hours(c->quiet_hours, &jo->policy.quiet_start, &jo->policy.quiet_end);
    jo->policy.quiet_exempt = 0;
    char buf[sizeof c->quiet_hours_exempt];
    cs_strlcpy(buf, c->quiet_hours_exempt, sizeof buf);
    char *save = NULL;
    for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        cs_msg_class_t cls;
        if (cs_msg_class_parse(t, &cls))
            jo->policy.quiet_exempt |= 1u << cls;
    }
    jo->policy.ask_cooldown = c->ask_cooldown_ms;
    jo->policy.hold_max = c->hold_max_ms;
    jo->policy.ticket_stale_after = c->ticket_stale_after_ms;
    jo->policy.address_wait = c->address_wait_ms;
    jo->default_locale = c->default_locale;
    jo->shop_tz = cs_tz_get_or_utc(c->shop_timezone);
    jo->channels_off = (c->smtp_url[0] ? 0u : 1u << CS_CHANNEL_EMAIL) |
                       (c->sms_url[0] ? 0u : 1u << CS_CHANNEL_SMS) |
                       (c->whatsapp_url[0] ? 0u : 1u << CS_CHANNEL_WHATSAPP);
}

static cs_rc sync_task(cs_store_t *s, void *arg)
{
    void **a = arg;
    cs_err_t *err = a[1];
    cs_rc rc = cs_store_begin(s, err);
    if (rc)
        return rc;
    if ((rc = cs_journeys_sync(a[0], s, err)) || (rc = cs_store_commit(s, err)))
        cs_store_rollback(s);
    return rc;
}

bool cs_cli_load_journeys(const char *cmd, const cs_conf_t *c, cs_engine_t *engine,
                          const cs_calendar_t *calendar, cs_journeys_t **out)
{
    cs_err_t err;
    cs_journeys_opts_t jo;
    *out = NULL;
    if (!c->journeys[0])
        return true;
    cs_cli_journeys_opts(c, cs_engine_clock(engine), &jo);
    jo.calendar = calendar;
    cs_journeys_t *js;
    cs_err_clear(&err);
    if (cs_journeys_new(&jo, &js, &err) || cs_journeys_load_dir(js, c->journeys, &err)) {
        cs_cli_fail(cmd, &err);
        return false;
    }
    void *args[2] = { js, &err };
    if (cs_engine_with_writer(engine, sync_task, args) != CS_OK) {
        cs_cli_fail(cmd, &err);
        cs_journeys_free(js);
        return false;
    }
    cs_info("journeys: %zu loaded from %s", cs_journeys_count(js), c->journeys);
    *out = js;
    return true;
}

bool cs_cli_webhook_secret_ok(const char *cmd, const cs_conf_t *c, const cs_journeys_t *js)
{
    for (size_t i = 0; js && i < cs_journeys_count(js); i++) {
        const cs_journey_t *j = cs_journeys_at(js, i);
        if (j->has_webhook && !c->webhook_secret[0]) {
            fprintf(stderr, "consonance %s: %s: a webhook step signs its requests: set "
                            "webhook_secret\n",
                    cmd, j->file);
            return false;
        }
    }
    return true;
}

bool cs_cli_open_sender(const char *cmd, const cs_conf_t *c, cs_engine_t *engine,
                        const cs_journeys_t *js, cs_tplset_t **templates, cs_sender_t **out)
{
    cs_err_t err;
    cs_err_clear(&err);
    *out = NULL;
    *templates = NULL;
    if (!cs_cli_webhook_secret_ok(cmd, c, js))
        return false;
    if (!c->smtp_url[0] && !c->sms_url[0] && !c->whatsapp_url[0] && !c->webhook_secret[0])
        return true;
    /* a channel that renders messages has its templates folder (cs_conf_check
     * says so); webhooks alone send JSON and may have none */
    size_t ntpl = 0;
    if (cs_tplset_new(templates, &err) ||
        (c->templates[0] && cs_tplset_load_dir(*templates, c->templates, &ntpl, &err)))
        goto fail;
    cs_sender_opts_t so;
    memset(&so, 0, sizeof so);
    if (c->smtp_url[0]) {
        cs_smtp_conf_t sc = { c->smtp_url, c->smtp_user, c->smtp_password, c->smtp_from,
                              c->smtp_tls, c->smtp_tls_verify, 0 };
        if (cs_smtp_open(&sc, &so.transports[CS_CHANNEL_EMAIL], &err))
            goto fail_t;
        so.rate[CS_CHANNEL_EMAIL] = c->email_rate;
    }
    if (c->sms_url[0]) {
        cs_http_provider_conf_t hc = { c->sms_url, c->sms_account, c->sms_token, c->sms_from,
                                       c->provider_tls_verify, 0 };
        if (cs_sms_twilio_open(&hc, &so.transports[CS_CHANNEL_SMS], &err))
            goto fail_t;
        so.rate[CS_CHANNEL_SMS] = c->sms_rate;
    }
    if (c->whatsapp_url[0]) {
        cs_http_provider_conf_t hc = { c->whatsapp_url, NULL, c->whatsapp_token, NULL,
                                       c->provider_tls_verify, 0 };
        if (cs_whatsapp_cloud_open(&hc, &so.transports[CS_CHANNEL_WHATSAPP], &err))
            goto fail_t;
        so.rate[CS_CHANNEL_WHATSAPP] = c->whatsapp_rate;
    }
    if (c->webhook_secret[0]) {
        cs_http_provider_conf_t hc = { NULL, NULL, c->webhook_secret, NULL,
                                       c->provider_tls_verify, 0 };
        if (cs_webhook_open(&hc, &so.transports[CS_OUT_WEBHOOK], &err))
            goto fail_t;
    }
    so.templates = *templates;
    so.max_attempts = c->send_attempts;
    so.webhook_attempts = c->webhook_attempts;
    so.retry_base = c->retry_base_ms;
    so.lease = c->send_lease_ms;
    so.default_locale = c->default_locale;
    so.shop_name = c->shop_name;
    so.public_url = c->public_url;
    so.shop_tz = cs_tz_get_or_utc(c->shop_timezone);
    cs_journeys_opts_t jo; /* the journeys' policy: its quiet hours hold at the hand-over too */
    cs_cli_journeys_opts(c, cs_engine_clock(engine), &jo);
    so.policy = &jo.policy;
    so.link_secret = c->link_secret;
    so.support_email = c->support_email;
    if (cs_sender_new(engine, &so, out, &err))
        goto fail;
    size_t nwa = 0;
    if ((c->templates[0] && cs_sender_load_whatsapp(*out, c->templates, &nwa, &err)) ||
        (js && c->templates[0] && cs_sender_check_templates(*out, js, &err))) {
        cs_sender_free(*out);
        *out = NULL;
        goto fail;
    }
    cs_info("sending: %zu templates from %s (%zu mapped to WhatsApp templates); email %s, "
            "sms %s, whatsapp %s, webhooks %s",
            ntpl, c->templates[0] ? c->templates : "(no folder)", nwa,
            c->smtp_url[0] ? "on" : "off", c->sms_url[0] ? "on" : "off",
            c->whatsapp_url[0] ? "on" : "off", c->webhook_secret[0] ? "on" : "off");
    return true;
fail_t:
    for (int i = 0; i < CS_OUT__CHANNELS; i++)
        cs_transport_close(&so.transports[i]);
fail:
    cs_cli_fail(cmd, &err);
    cs_tplset_free(*templates);
    *templates = NULL;
    return false;
}

int cs_cli_open_engine(const char *cmd, const char *config, const char *store,
                       cs_engine_t **out)
{
    cs_conf_t conf; /* the engine copies what it keeps */
    cs_err_t err;
    cs_engine_opts_t eo;
    cs_err_clear(&err);
    *out = NULL;
    if (!cs_cli_conf(&conf, config))
        return CS_EXIT_USAGE;
    if (store && cs_conf_set(&conf, "store", store, "--store", &err)) {
        cs_cli_fail(cmd, &err);
        return CS_EXIT_USAGE;
    }
    if (!cs_cli_engine_opts(cmd, &conf, &eo))
        return CS_EXIT_FAIL;
    eo.readers = 1;
    if (cs_engine_open(&eo, out, &err) != CS_OK)
        return cs_cli_fail(cmd, &err);
    return CS_EXIT_OK;
}

int cs_cli_usage(const char *cmd, void (*usage_fn)(FILE *f), const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "consonance %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(usage_fn ? "\n\n" : "\n", stderr);
    if (usage_fn)
        usage_fn(stderr);
    return CS_EXIT_USAGE;
}

int cs_cli_fail(const char *cmd, const cs_err_t *err)
{
    if (err->field[0] && !strstr(err->msg, err->field))
        fprintf(stderr, "consonance %s: %s: %s\n", cmd, err->field, err->msg);
    else
        fprintf(stderr, "consonance %s: %s\n", cmd, err->msg[0] ? err->msg : cs_strerror(err->rc));
    return CS_EXIT_FAIL;
}

int main(int argc, char **argv)
{
    curl_global_init(CURL_GLOBAL_DEFAULT); /* before any thread: channels use libcurl */
    if (argc < 2) {
        fprintf(stderr, "consonance: expected a command\n\n");
        usage(stderr);
        return CS_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        usage(stdout);
        return CS_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0)
        name = "version";
    for (size_t i = 0; i < CS_ARRAY_LEN(commands); i++)
        if (strcmp(commands[i].name, name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "consonance: unknown command \"%s\"\n\n", name);
    usage(stderr);
    return CS_EXIT_USAGE;
}
