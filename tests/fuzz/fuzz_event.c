/*
 * fuzz_event.c -- libFuzzer target for the event parser: arbitrary bytes
 * into cs_event_parse; on success, the invariants every consumer relies on.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cs_event_t *ev = NULL;
    cs_err_t err;
    cs_err_clear(&err);
    cs_rc rc = cs_event_parse((const char *)data, size, &ev, &err);
    if (rc != CS_OK) {
        if (ev)
            abort(); /* a failure leaves nothing behind */
        if (rc != CS_ERR_INVALID && rc != CS_ERR_RULE && rc != CS_ERR_TOOBIG && rc != CS_ERR_NOMEM)
            abort();
        if (!memchr(err.msg, '\0', sizeof err.msg) || !memchr(err.field, '\0', sizeof err.field))
            abort();
        return 0;
    }
    const char *name = cs_event_type_name(ev->type);
    if (!name || cs_event_type_from_name(name) != ev->type || !ev->event_id || !*ev->event_id ||
        strlen(ev->event_id) > CS_ID_MAX || !ev->body)
        abort();
    /* the stored form parses again to the same event */
    cs_event_t *again = NULL;
    if (cs_event_parse(ev->body, ev->body_len, &again, &err) != CS_OK ||
        again->type != ev->type || strcmp(again->event_id, ev->event_id) != 0 ||
        again->occurred_at != ev->occurred_at)
        abort();
    if (ev->type == CS_EV_ORDER_PLACED &&
        (again->u.order.total != ev->u.order.total || ev->u.order.n_items < 1))
        abort();
    cs_event_free(&again);
    cs_event_free(&ev);
    return 0;
}
