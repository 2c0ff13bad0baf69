/*
 * copy.h -- copy an embedded SQLite store into PostgreSQL, for a shop that
 * outgrows one machine (`consonance copy-store`). The copy is whole or
 * nothing: every table in one PostgreSQL transaction, row counts checked
 * before the commit. The target must be an empty database (or one whose
 * store's tables hold no rows yet: a node started on it has made an API key
 * and journey versions there); stop the daemon on the source first.
 */
#ifndef CS_STORE_COPY_H
#define CS_STORE_COPY_H

#include <stdint.h>

#include "../lib/cs.h"

/* Called after each table with the rows copied. */
typedef void (*cs_copy_progress_fn)(const char *table, int64_t rows, void *ud);

/* from: "sqlite:PATH"; to: a PostgreSQL target. Both are brought to the
 * newest schema first. */
cs_rc cs_store_copy(const char *from, const char *to, cs_copy_progress_fn progress, void *ud,
                    cs_err_t *err);

#endif /* CS_STORE_COPY_H */
