/*
 * expr.h -- the condition language of journeys and policies.
 *
 *   order.total >= 100 and customer.orders_count == 1
 *   shipment.carrier in ['dhl', 'dpd'] or not customer.consents.email.marketing
 *   event.status == 'delivered'
 *
 * Values are JSON: numbers compare numerically, strings by bytes, equality
 * across types is false, ordering across types is false. A dotted path reads
 * the context object (missing -> null). `x in [..]` tests membership, `s in t`
 * a substring. A bare value in a boolean place is tested for truth (false,
 * null, 0, "" and [] are false). Operators: or, and, not, ==, !=, <, <=, >,
 * >=, in, not in, parentheses; literals: numbers, 'strings' or "strings",
 * true, false, null, [lists].
 *
 * Thread-safety: a compiled expression is immutable and may be evaluated on
 * any number of threads.
 */
#ifndef CS_EXPR_H
#define CS_EXPR_H

#include <jansson.h>
#include <stdbool.h>

#include "../lib/cs.h"

#define CS_EXPR_MAX 2048 /* bytes of source */

typedef struct cs_expr cs_expr_t;

/* Compile; on error err->msg says what was expected at which column. */
cs_rc cs_expr_compile(const char *src, cs_expr_t **out, cs_err_t *err);
void cs_expr_free(cs_expr_t *e);
const char *cs_expr_source(const cs_expr_t *e);

/* Evaluate for truth against `ctx` (an object; borrowed). */
bool cs_expr_test(const cs_expr_t *e, json_t *ctx);
/* Evaluate to a value (new reference; never NULL except on allocation failure). */
json_t *cs_expr_eval(const cs_expr_t *e, json_t *ctx);

/* The paths the expression reads ("order.total"), for validation against
 * the documented context. Calls fn for each; stops when it returns false. */
void cs_expr_paths(const cs_expr_t *e, bool (*fn)(const char *path, void *ud), void *ud);

/* JavaScript truthiness of a JSON value (NULL is false). */
bool cs_json_truthy(json_t *v);
/* Resolve a dotted path ("a.b.0.c") in v; NULL when missing. Borrowed. */
json_t *cs_json_path(json_t *v, const char *path);

#endif /* CS_EXPR_H */
