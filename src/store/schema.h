/*
 * schema.h -- the store's schema, written once for every backend: the
 * migrations in order (a store's version is the number applied), in SQL
 * both SQLite and PostgreSQL understand, with four words that differ
 * spelled as placeholders and expanded per dialect:
 *
 *     @ROWID    an integer key the store assigns    INTEGER PRIMARY KEY | BIGINT identity key
 *     @INT      a 64-bit integer (times in ms, money in minor units)   INTEGER | BIGINT
 *     @REAL     a double                                               REAL | DOUBLE PRECISION
 *     @NOROWID  after a table with its own primary key   WITHOUT ROWID | (nothing)
 *
 * Append only: a released migration never changes (stores that applied
 * it would not see the change). docs/store.md describes the tables. What
 * SQL alone cannot do (a key computed in C for existing rows) is a step
 * the drivers run right after its migration, in the same transaction
 * (cs__sql_after_migration, sql_migrate.c).
 */
#ifndef CS_STORE_SCHEMA_H
#define CS_STORE_SCHEMA_H

#include <stddef.h>

typedef enum cs_dialect {
    CS_DIALECT_SQLITE = 0,
    CS_DIALECT_POSTGRESQL = 1
} cs_dialect_t;

/* How many migrations there are (the newest schema version). */
size_t cs_schema_count(void);

/* Migration i (0-based; version i + 1) in a dialect, owned by the caller
 * (cs_free); NULL when i is out of range or out of memory. */
char *cs_schema_migration(size_t i, cs_dialect_t dialect);

/* What migration i's step in C does (its SQL alone is not the whole
 * migration: only the program runs the step), or NULL when it has none.
 * Static text; defined with the steps in sql_migrate.c. */
const char *cs_schema_step(size_t i);

/* "sqlite" / "postgresql" -> dialect; -1 when unknown. */
int cs_dialect_from_name(const char *name);

#endif /* CS_STORE_SCHEMA_H */
