/*
 * cli.h -- the `consonance` command line: one function per subcommand. Each
 * gets argv[0] = the subcommand name and returns the process exit code:
 * 0 success, 1 failure while running (message on stderr), 2 usage or
 * configuration error: a bad flag or flag value, a bad setting in the file
 * or the environment (message on stderr).
 *
 * Shared helpers for the subcommands live in cli_common.c.
 */
#ifndef CS_CLI_H
#define CS_CLI_H

#include "../conf/conf.h"
#include "../engine/engine.h"
#include "../engine/journeys.h"
#include "../engine/sender.h"
#include "../lib/cs.h"
#include "../tracking/carriers.h"

#define CS_EXIT_OK 0
#define CS_EXIT_FAIL 1
#define CS_EXIT_USAGE 2

int cs_cmd_serve(int argc, char **argv);   /* serve.c */
int cs_cmd_apikey(int argc, char **argv);  /* apikey.c */
int cs_cmd_import(int argc, char **argv);  /* import.c */
int cs_cmd_demo(int argc, char **argv);    /* demo.c */
int cs_cmd_version(int argc, char **argv); /* main.c */
int cs_cmd_journeys(int argc, char **argv); /* journeys.c */
int cs_cmd_messages(int argc, char **argv); /* messages.c */
int cs_cmd_promise_eval(int argc, char **argv); /* promise_eval.c */
int cs_cmd_schema(int argc, char **argv);  /* schema.c */
int cs_cmd_copy_store(int argc, char **argv); /* copy_store.c */

/* Resolve the configuration the way every subcommand does: defaults, then the
 * file named by --config (or $CONSONANCE_CONFIG when set), then CONSONANCE_*
 * environment overrides. config_path may be NULL. Prints the error and
 * returns false on failure: the command then exits CS_EXIT_USAGE. */
bool cs_cli_conf(cs_conf_t *c, const char *config_path);

/* Engine options from a configuration. */
/* Engine options from the configuration, with the carrier tables loaded
 * (once per process). False (reported) when a table does not load. */
bool cs_cli_engine_opts(const char *cmd, const cs_conf_t *c, cs_engine_opts_t *eo);

/* Contact policy and journey runtime options from a configuration. */
void cs_cli_journeys_opts(const cs_conf_t *c, const cs_clock_t *clock, cs_journeys_opts_t *jo);

/* Load the configured journeys (NULL in *out when none are configured) and
 * record their versions through the engine's writer. calendar: the shop's
 * closed days, no business day for their waits (borrowed: it outlives
 * *out); NULL = Monday to Friday, for a command that runs no journey. */
bool cs_cli_load_journeys(const char *cmd, const cs_conf_t *c, cs_engine_t *engine,
                          const cs_calendar_t *calendar, cs_journeys_t **out);

/* A journey with a webhook step needs webhook_secret to sign its requests:
 * false (reported, naming the file) when it is not set. */
bool cs_cli_webhook_secret_ok(const char *cmd, const cs_conf_t *c, const cs_journeys_t *js);

/* The message sender for a configuration: templates loaded and checked
 * against the journeys, a transport per configured channel. *out is NULL
 * when no channel is configured. *templates gets the set (free after the
 * sender). */
bool cs_cli_open_sender(const char *cmd, const cs_conf_t *c, cs_engine_t *engine,
                        const cs_journeys_t *js, cs_tplset_t **templates, cs_sender_t **out);

/* For import, demo and journeys: resolve the configuration (as
 * cs_cli_conf, then --store when not NULL) and open the engine. Returns
 * CS_EXIT_OK, or prints the error and returns CS_EXIT_USAGE (a bad setting
 * or --store) or CS_EXIT_FAIL (the store did not open). */
int cs_cli_open_engine(const char *cmd, const char *config, const char *store,
                       cs_engine_t **out);

/* Print "consonance <cmd>: <message>" for err on stderr; returns CS_EXIT_FAIL. */
int cs_cli_fail(const char *cmd, const cs_err_t *err);

/* A command line that is not the command's: "consonance <cmd>: <what was
 * wrong and what was expected>" on stderr, then the command's usage (when
 * usage_fn is not NULL). Returns CS_EXIT_USAGE. */
int cs_cli_usage(const char *cmd, void (*usage_fn)(FILE *f), const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* CS_CLI_H */
