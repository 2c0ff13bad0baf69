/*
 * messages.c -- `consonance messages retry`: an operator's requeue of the
 * messages that failed in an outage (src/engine/retry.h), as
 * POST /v1/messages/retry does it, from the command line.
 *
 *   retry --since TIME [--until TIME] [--channel C] [--journey ID]
 *         [--customer ID] [--reason-prefix TEXT] [--dry-run]
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "../engine/retry.h"
#include "../lib/cs_json.h"
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: consonance messages [--config FILE] [--store TARGET] retry --since TIME\n"
            "           [--until TIME] [--channel email|sms|whatsapp|webhook] [--journey ID]\n"
            "           [--customer ID] [--reason-prefix TEXT] [--dry-run]\n"
            "  requeue the FAILED messages that failed from --since (RFC 3339, required) to\n"
            "  --until; each is handed over again through every check of the contact\n"
            "  policy. --dry-run counts them only. Prints what matched as JSON.\n");
}

int cs_cmd_messages(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"store", required_argument, NULL, 's'},
        {"since", required_argument, NULL, 'S'},
        {"until", required_argument, NULL, 'U'},
        {"channel", required_argument, NULL, 'C'},
        {"journey", required_argument, NULL, 'J'},
        {"customer", required_argument, NULL, 'K'},
        {"reason-prefix", required_argument, NULL, 'R'},
        {"dry-run", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *store = NULL;
    cs_retry_req_t q;
    cs_retry_result_t res;
    cs_err_t err;
    cs_engine_t *engine = NULL;
    char *text = NULL;
    json_t *out = NULL;
    int status = CS_EXIT_USAGE;
    int c;
    cs_retry_init(&q);
    cs_err_clear(&err);
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:s:h", longopts, NULL)) != -1) {
        const char *key = NULL, *flag = NULL;
        switch (c) {
        case 'c': config = optarg; continue;
        case 's': store = optarg; continue;
        case 'n': q.dry_run = true; continue;
        case 'h': usage(stdout); return CS_EXIT_OK;
        case 'S': key = "failed_since"; flag = "--since"; break;
        case 'U': key = "failed_until"; flag = "--until"; break;
        case 'C': key = "channel"; flag = "--channel"; break;
        case 'J': key = "journey"; flag = "--journey"; break;
        case 'K': key = "customer_id"; flag = "--customer"; break;
        case 'R': key = "reason_prefix"; flag = "--reason-prefix"; break;
        default: usage(stderr); return CS_EXIT_USAGE;
        }
        if (cs_retry_set(&q, key, optarg, flag, &err)) {
            cs_cli_fail("messages retry", &err);
            return CS_EXIT_USAGE;
        }
    }
    /* (getopt puts the verb after the flags, wherever it came) */
    if (optind == argc)
        return cs_cli_usage("messages", usage, "expected the action retry");
    if (strcmp(argv[optind], "retry") != 0)
        return cs_cli_usage("messages", usage, "unknown action \"%s\"; expected retry",
                            argv[optind]);
    if (optind != argc - 1)
        return cs_cli_usage("messages", usage, "retry: unexpected argument \"%s\"",
                            argv[optind + 1]);
    if (cs_retry_check(&q, "--since", "--until", &err)) {
        cs_cli_fail("messages retry", &err);
        return CS_EXIT_USAGE;
    }
    status = cs_cli_open_engine("messages retry", config, store, &engine);
    if (status != CS_EXIT_OK)
        goto out;
    status = CS_EXIT_FAIL;
    if (cs_retry_run(engine, &q, &res, &err)) {
        cs_cli_fail("messages retry", &err);
        goto out;
    }
    if (!(out = cs_retry_json(&q, &res)) || !(text = cs_json_dumps(out, JSON_INDENT(2)))) {
        fprintf(stderr, "consonance messages retry: out of memory\n");
        goto out;
    }
    printf("%s\n", text);
    status = CS_EXIT_OK;
out:
    free(text);
    json_decref(out);
    cs_engine_close(&engine);
    return status;
}
