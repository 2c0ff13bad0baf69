/*
 * journeys.c -- `consonance journeys check|list|enable|disable|runs|messages`.
 *
 *   check [DIR]        validate journey files (DIR or the configured folder)
 *   list               the configured journeys, their versions and switches
 *   enable ID          switch a journey on (stored; the daemon sees it at the
 *   disable ID         next step of each run)
 *   runs CUSTOMER      a customer's journey runs, as JSON
 *   messages CUSTOMER  a customer's messages (queued, sent, skipped + reason)
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "../engine/sender.h"
#include "../lib/cs_json.h"
#include "../store/store.h"
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: consonance journeys [--config FILE] [--store TARGET] check [DIR]\n"
               "       consonance journeys [--config FILE] [--store TARGET] list\n"
               "       consonance journeys [--config FILE] [--store TARGET] enable|disable ID\n"
               "       consonance journeys [--config FILE] [--store TARGET] runs|messages "
               "CUSTOMER_ID\n");
}

/* The templates the journeys send, rendered as serve checks them at
 * start-up (each send step's template on each of its channels, in both
 * languages, with sample data): on a throwaway store, no channel needed. */
static bool check_templates(const cs_conf_t *conf, const char *config, const cs_journeys_t *js)
{
    cs_engine_t *e = NULL;
    cs_tplset_t *tpl = NULL;
    cs_sender_t *sender = NULL;
    cs_err_t err;
    size_t ntpl = 0;
    bool ok = false;
    cs_err_clear(&err);
    if (cs_cli_open_engine("journeys check", config, "sqlite::memory:", &e) != CS_EXIT_OK)
        return false;
    if (cs_tplset_new(&tpl, &err) || cs_tplset_load_dir(tpl, conf->templates, &ntpl, &err))
        goto fail;
    cs_sender_opts_t so;
    memset(&so, 0, sizeof so);
    cs_journeys_opts_t jo;
    cs_cli_journeys_opts(conf, cs_engine_clock(e), &jo);
    so.templates = tpl;
    so.default_locale = conf->default_locale;
    so.shop_name = conf->shop_name;
    so.public_url = conf->public_url;
    so.shop_tz = cs_tz_get_or_utc(conf->shop_timezone);
    so.policy = &jo.policy;
    so.link_secret = conf->link_secret;
    so.support_email = conf->support_email;
    size_t nwa = 0;
    if (cs_sender_new(e, &so, &sender, &err) ||
        cs_sender_load_whatsapp(sender, conf->templates, &nwa, &err) ||
        cs_sender_check_templates(sender, js, &err))
        goto fail;
    printf("%zu templates ok (%s)\n", ntpl, conf->templates);
    ok = true;
    goto out;
fail:
    cs_cli_fail("journeys check", &err);
out:
    cs_sender_free(sender);
    cs_tplset_free(tpl);
    cs_engine_close(&e);
    return ok;
}

/* The checks serve makes of the journey files, without starting: each file,
 * the settings they need (a webhook step's secret), and the templates they
 * send when a templates folder is configured. */
static int check(const cs_conf_t *conf, const char *config, const char *dir)
{
    cs_journeys_t *js = NULL;
    cs_err_t err;
    cs_err_clear(&err);
    if (cs_journeys_new(NULL, &js, &err) || cs_journeys_load_dir(js, dir, &err)) {
        cs_journeys_free(js);
        return cs_cli_fail("journeys check", &err);
    }
    if (cs_journeys_count(js) == 0) { /* a wrong folder, not "0 journeys ok" */
        fprintf(stderr, "consonance journeys check: %s holds no journey files (expected *.yaml "
                        "or *.yml)\n", dir);
        cs_journeys_free(js);
        return CS_EXIT_FAIL;
    }
    if (!cs_cli_webhook_secret_ok("journeys check", conf, js)) {
        cs_journeys_free(js);
        return CS_EXIT_FAIL;
    }
    for (size_t i = 0; i < cs_journeys_count(js); i++) {
        const cs_journey_t *j = cs_journeys_at(js, i);
        printf("%-28s %-22s %3d steps  %s\n", j->id,
               cs_event_type_name((cs_event_type_t)j->trigger_event), j->n, j->file);
    }
    printf("%zu journeys ok\n", cs_journeys_count(js));
    int rc = CS_EXIT_OK;
    if (!conf->templates[0])
        printf("templates not checked: no folder configured (the setting 'templates')\n");
    else if (!check_templates(conf, config, js))
        rc = CS_EXIT_FAIL;
    cs_journeys_free(js);
    return rc;
}

typedef struct task {
    cs_journeys_t *js;
    const char *verb, *arg;
    cs_err_t err;
} task_t;

static cs_rc run_task(cs_store_t *s, void *arg)
{
    task_t *t = arg;
    json_t *out = NULL;
    cs_rc rc = CS_OK;
    if (strcmp(t->verb, "list") == 0) {
        for (size_t i = 0; i < cs_journeys_count(t->js) && !rc; i++) {
            const cs_journey_t *j = cs_journeys_at(t->js, i);
            bool on;
            if (!(rc = cs_journeys_enabled(t->js, s, j->id, &on, &t->err)))
                printf("%-28s %-4s %.12s  %s\n", j->id, on ? "on" : "off", j->hash, j->file);
        }
        return rc;
    }
    if (strcmp(t->verb, "enable") == 0 || strcmp(t->verb, "disable") == 0) {
        if ((rc = cs_store_begin(s, &t->err)))
            return rc;
        if ((rc = cs_store_call(s, journey_enabled_set, t->arg, t->verb[0] == 'e',
                                cs_clock_now(cs_clock_system()), &t->err)) ||
            (rc = cs_store_commit(s, &t->err))) {
            cs_store_rollback(s);
            return rc;
        }
        printf("%s: %s\n", t->arg, t->verb[0] == 'e' ? "on" : "off");
        return CS_OK;
    }
    rc = strcmp(t->verb, "runs") == 0 ? cs_store_call(s, runs_view, t->arg, &out, &t->err)
                                      : cs_store_call(s, outbox_view, t->arg, &out, &t->err);
    if (rc)
        return rc;
    char *text = cs_json_dumps(out, JSON_INDENT(2));
    json_decref(out);
    if (!text)
        return cs_errf(&t->err, CS_ERR_NOMEM, "out of memory");
    printf("%s\n", text);
    free(text);
    return CS_OK;
}

int cs_cmd_journeys(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"store", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *store = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+c:s:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 's': store = optarg; break;
        case 'h': usage(stdout); return CS_EXIT_OK;
        default: usage(stderr); return CS_EXIT_USAGE;
        }
    }
    if (optind >= argc)
        return cs_cli_usage("journeys", usage, "expected an action: check, list, enable, "
                                               "disable, runs or messages");
    const char *verb = argv[optind++];
    const char *arg = optind < argc ? argv[optind++] : NULL;
    static const char *const verbs[] = { "check", "list", "enable", "disable", "runs",
                                         "messages" };
    size_t v = 0;
    while (v < CS_ARRAY_LEN(verbs) && strcmp(verb, verbs[v]) != 0)
        v++;
    if (v == CS_ARRAY_LEN(verbs))
        return cs_cli_usage("journeys", usage, "unknown action \"%s\"; expected check, list, "
                                               "enable, disable, runs or messages", verb);
    if (optind != argc || (v == 1 && arg))
        return cs_cli_usage("journeys", usage, "%s: unexpected argument \"%s\"", verb,
                            optind != argc ? argv[optind] : arg);
    if (v >= 2 && !arg)
        return cs_cli_usage("journeys", usage, "%s: expected %s", verb,
                            v < 4 ? "the id of the journey (`consonance journeys list` shows "
                                    "them)"
                                  : "the id of the customer");
    cs_conf_t conf;
    cs_err_t err;
    cs_err_clear(&err);
    if (!cs_cli_conf(&conf, config))
        return CS_EXIT_USAGE;
    if (store && cs_conf_set(&conf, "store", store, "--store", &err)) {
        cs_cli_fail("journeys", &err);
        return CS_EXIT_USAGE;
    }
    if (strcmp(verb, "check") == 0) {
        const char *dir = arg ? arg : conf.journeys;
        if (!dir[0]) {
            fprintf(stderr, "consonance journeys check: no folder given and none configured "
                            "(the setting 'journeys')\n");
            return CS_EXIT_USAGE;
        }
        return check(&conf, config, dir);
    }
    if (arg && strlen(arg) > CS_ID_MAX) {
        fprintf(stderr, "consonance journeys: '%s' is longer than %d bytes\n", arg, CS_ID_MAX);
        return CS_EXIT_USAGE;
    }
    cs_engine_t *engine;
    int ec = cs_cli_open_engine("journeys", config, store, &engine);
    if (ec != CS_EXIT_OK)
        return ec;
    task_t t = { NULL, verb, arg, { 0 } };
    int status = CS_EXIT_FAIL;
    if ((strcmp(verb, "list") == 0 || strcmp(verb, "enable") == 0 ||
         strcmp(verb, "disable") == 0)) {
        if (!conf.journeys[0]) {
            fprintf(stderr, "consonance journeys %s: no journeys configured (the setting "
                            "'journeys')\n",
                    verb);
            goto out;
        }
        if (!cs_cli_load_journeys("journeys", &conf, engine, NULL, &t.js))
            goto out;
        bool known = strcmp(verb, "list") == 0;
        for (size_t i = 0; !known && i < cs_journeys_count(t.js); i++)
            known = strcmp(cs_journeys_at(t.js, i)->id, arg) == 0;
        if (!known) {
            fprintf(stderr, "consonance journeys %s: no journey '%s' in %s\n", verb, arg,
                    conf.journeys);
            goto out;
        }
    }
    cs_err_clear(&t.err);
    if (cs_engine_with_writer(engine, run_task, &t) != CS_OK)
        cs_cli_fail("journeys", &t.err);
    else
        status = CS_EXIT_OK;
out:
    cs_engine_close(&engine);
    cs_journeys_free(t.js);
    return status;
}
