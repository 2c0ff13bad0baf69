/*
 * apikey.c -- `consonance apikey create|list|revoke`: API keys are stored
 * hashed (SHA-256); the secret is shown once, at creation. Works while the
 * daemon runs (SQLite WAL); the daemon notices a revocation within its key
 * cache time (2 s).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "../store/store.h"
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: consonance apikey [--config FILE] [--store TARGET] create --name NAME "
               "[--scopes read,write,admin]\n"
               "       consonance apikey [--config FILE] [--store TARGET] list\n"
               "       consonance apikey [--config FILE] [--store TARGET] revoke KEY_ID\n"
               "\n"
               "Scopes: read (views of customers, orders, events), write (event intake),\n"
               "admin (operator actions). The default is read,write.\n");
}

typedef struct apikey_args {
    const char *config, *store, *name, *scopes;
} apikey_args_t;

/* Options may stand before or after the action; returns -1 to go on, or an
 * exit code. */
static int parse_opts(int argc, char **argv, const char *spec, apikey_args_t *a)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"store", required_argument, NULL, 's'},
        {"name", required_argument, NULL, 'n'},   {"scopes", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, spec, longopts, NULL)) != -1) {
        switch (c) {
        case 'c': a->config = optarg; break;
        case 's': a->store = optarg; break;
        case 'n': a->name = optarg; break;
        case 'S': a->scopes = optarg; break;
        case 'h': usage(stdout); return CS_EXIT_OK;
        default: usage(stderr); return CS_EXIT_USAGE;
        }
    }
    return -1;
}

int cs_cmd_apikey(int argc, char **argv)
{
    apikey_args_t a = {.scopes = "read,write"};
    int ec;
    optind = 1;
    if ((ec = parse_opts(argc, argv, "+c:s:n:S:h", &a)) >= 0)
        return ec;
    if (optind >= argc)
        return cs_cli_usage("apikey", usage, "expected an action: create, list or revoke");
    const char *verb = argv[optind++];
    if ((ec = parse_opts(argc, argv, "c:s:n:S:h", &a)) >= 0)
        return ec;
    const char *config = a.config, *store = a.store, *name = a.name, *scopes_s = a.scopes;
    cs_conf_t conf;
    cs_err_t err;
    cs_err_clear(&err);
    if (!cs_cli_conf(&conf, config))
        return CS_EXIT_USAGE;
    if (store && cs_conf_set(&conf, "store", store, "--store", &err)) {
        cs_cli_fail("apikey", &err);
        return CS_EXIT_USAGE;
    }

    int status = CS_EXIT_FAIL;
    cs_store_t *s = NULL;
    cs_store_opts_t so;
    cs_store_opts_default(&so);
    so.durable = conf.durable;
    if (strcmp(verb, "create") == 0) {
        int scopes = cs_scopes_parse(scopes_s);
        char secret[CS_APIKEY_SECRET_MAX], sb[32];
        cs_apikey_t key;
        if (optind != argc)
            return cs_cli_usage("apikey", usage, "create: unexpected argument \"%s\"",
                                argv[optind]);
        if (!name)
            return cs_cli_usage("apikey", usage,
                                "create: --name: expected a name for the key (who uses it, "
                                "like \"shop-backend\"); it is required");
        if (scopes < 0) {
            fprintf(stderr, "consonance apikey: --scopes: expected a list of read, write, admin; "
                            "got \"%s\"\n", scopes_s);
            return CS_EXIT_USAGE;
        }
        if (!*name || strlen(name) >= sizeof key.name) {
            fprintf(stderr, "consonance apikey: --name: expected a key name of 1 to %zu "
                            "characters, got %zu\n",
                    sizeof key.name - 1, strlen(name));
            return CS_EXIT_USAGE;
        }
        if (cs_store_open(conf.store, &so, &s, &err) ||
            cs_apikey_create(s, name, scopes, cs_clock_now(cs_clock_system()), secret, &key,
                             &err)) {
            cs_cli_fail("apikey", &err);
            goto out;
        }
        printf("%s\n", secret);
        fprintf(stderr, "created API key %s \"%s\" with scopes %s; the secret above is shown "
                        "only once\n",
                key.id, key.name, cs_scopes_format(key.scopes, sb, sizeof sb));
        status = CS_EXIT_OK;
    } else if (strcmp(verb, "list") == 0) {
        json_t *list = NULL;
        if (optind != argc)
            return cs_cli_usage("apikey", usage, "list: unexpected argument \"%s\"",
                                argv[optind]);
        if (cs_store_open(conf.store, &so, &s, &err) || s->ops->apikey_list(s, &list, &err)) {
            cs_cli_fail("apikey", &err);
            goto out;
        }
        json_dumpf(list, stdout, JSON_INDENT(2));
        printf("\n");
        json_decref(list);
        status = CS_EXIT_OK;
    } else if (strcmp(verb, "revoke") == 0) {
        if (optind == argc)
            return cs_cli_usage("apikey", usage,
                                "revoke: expected the id of the key to revoke, like "
                                "key_0123456789ab (`consonance apikey list` shows them)");
        if (optind + 1 != argc)
            return cs_cli_usage("apikey", usage, "revoke: unexpected argument \"%s\"",
                                argv[optind + 1]);
        const char *id = argv[optind];
        if (cs_store_open(conf.store, &so, &s, &err) ||
            s->ops->apikey_revoke(s, id, cs_clock_now(cs_clock_system()), &err)) {
            cs_cli_fail("apikey", &err);
            goto out;
        }
        fprintf(stderr, "revoked API key %s\n", id);
        status = CS_EXIT_OK;
    } else {
        return cs_cli_usage("apikey", usage,
                            "unknown action \"%s\"; expected create, list or revoke", verb);
    }
out:
    cs_store_close(&s);
    return status;
}
