/*
 * main.c -- `consonance <command> [options]`: dispatch to the subcommands.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <microhttpd.h>
#include <sqlite3.h>

#include "cli.h"

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
    (void)argc;
    (void)argv;
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
    if (!config_path)
        config_path = getenv("CONSONANCE_CONFIG");
    if (config_path && *config_path && cs_conf_load(c, config_path, &err) != CS_OK) {
        fprintf(stderr, "consonance: %s\n", err.msg);
        return false;
    }
    if (cs_conf_apply_env(c, &err) != CS_OK) {
        fprintf(stderr, "consonance: %s\n", err.msg);
        return false;
    }
    cs_log_set_level((cs_log_level_t)cs_conf_log_level(c));
    return true;
}

void cs_cli_engine_opts(const cs_conf_t *c, cs_engine_opts_t *eo)
{
    cs_engine_opts_default(eo);
    eo->store = c->store;
    eo->durable = c->durable;
    eo->cache_kib = c->cache_kib;
    eo->max_group_events = (size_t)c->max_group_events;
    eo->max_queue_events = (size_t)c->max_queue_events;
    eo->readers = c->readers;
}

bool cs_cli_open_engine(const char *cmd, const char *config, const char *store,
                        cs_engine_t **out)
{
    cs_conf_t conf; /* the engine copies what it keeps */
    cs_err_t err;
    cs_engine_opts_t eo;
    cs_err_clear(&err);
    *out = NULL;
    if (!cs_cli_conf(&conf, config))
        return false;
    if (store && cs_conf_set(&conf, "store", store, "--store", &err)) {
        cs_cli_fail(cmd, &err);
        return false;
    }
    cs_cli_engine_opts(&conf, &eo);
    eo.readers = 1;
    if (cs_engine_open(&eo, out, &err) != CS_OK) {
        cs_cli_fail(cmd, &err);
        return false;
    }
    return true;
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
    if (argc < 2) {
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
