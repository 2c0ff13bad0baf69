/*
 * fuzz_mustache.c -- libFuzzer target for the template engine: the input is
 * split at the first NUL into a template and a partial named "p"; both are
 * compiled and, when valid, rendered with fixed data in both escaping modes
 * and strict mode. Errors must be one of the documented codes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "template/mustache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *g_data;

static void check_rc(cs_rc rc)
{
    if (rc != CS_OK && rc != CS_ERR_INVALID && rc != CS_ERR_RULE && rc != CS_ERR_TOOBIG &&
        rc != CS_ERR_NOMEM)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_data)
        g_data = json_loads("{\"a\":\"<x>\",\"b\":{\"c\":[1,2.5,\"d\",{\"e\":true}]},\"l\":[{},{}],"
                            "\"n\":null,\"z\":0,\"p\":\"p\",\"s\":\"t\"}",
                            0, NULL);
    const char *text = (const char *)data;
    const char *nul = memchr(text, '\0', size);
    size_t tlen = nul ? (size_t)(nul - text) : size;
    const char *ptext = nul ? nul + 1 : "";
    size_t plen = nul ? size - tlen - 1 : 0;
    if (memchr(ptext, '\0', plen))
        plen = (size_t)((const char *)memchr(ptext, '\0', plen) - ptext);

    cs_tplset_t *set;
    cs_err_t err;
    if (cs_tplset_new(&set, NULL))
        return 0;
    cs_rc rc = cs_tplset_add(set, "t", text, tlen, &err);
    check_rc(rc);
    check_rc(cs_tplset_add(set, "p", ptext, plen, &err));
    if (rc == CS_OK) {
        cs_tpl_opts_t modes[3] = { { .escape = CS_TPL_ESCAPE_HTML, .max_output = 1 << 16 },
                                   { .escape = CS_TPL_ESCAPE_NONE, .max_output = 1 << 16 },
                                   { .strict = true, .max_output = 1 << 16 } };
        for (int m = 0; m < 3; m++) {
            cs_buf_t out;
            cs_buf_init(&out, 1 << 17);
            check_rc(cs_tplset_render(set, "t", g_data, &modes[m], &out, &err));
            if (out.len > (1 << 16))
                abort();
            cs_buf_free(&out);
        }
    }
    cs_tplset_free(set);
    return 0;
}
