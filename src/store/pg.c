/*
 * pg.c -- the PostgreSQL backend's driver (libpq): connecting, migrations,
 * transactions, and the PostgreSQL side of the statement abstraction
 * (sql_int.h). Everything else runs the SQL shared with SQLite.
 *
 * Targets: "postgresql://..." or "postgres://..." (a libpq connection URI;
 * options such as sslmode pass through to libpq).
 *
 * Several nodes share one database. Every writer transaction takes one
 * transaction-scoped advisory lock first, so writes are serialized across
 * nodes exactly as SQLite serializes them on one machine: event sequence
 * numbers become visible in commit order (a cursor over the log never skips
 * one), per-customer order is the log's order, and a timer or an outbox
 * message claimed in one node's transaction is gone or leased before the
 * next node looks. Intake (HTTP, parsing, validation), rendering and sending
 * run in parallel on every node; only the short database transactions take
 * turns. Claims carry leases (outbox lease_until), so a node that dies
 * mid-send has its messages picked up by the others when the lease ends.
 *
 * Statements: each cached statement is prepared on the server on its first
 * run, with parameter types taken from that run's bindings (64-bit
 * integers as bigint, doubles as double precision, text and NULL left for
 * the server to infer). Values travel as text. Inside a writer transaction
 * statements are pipelined (see "pipeline mode" below). A lost connection
 * is re-established at the next transaction (outside one, at the next
 * statement); statements are then prepared again on the new connection.
 *
 * Wake-ups: a writer transaction that made work other nodes may take
 * (events, timers, messages) notifies channel "consonance" at commit, with
 * the node's name; pg_wakeup_wait listens on a handle of its own.
 *
 * Ownership: the handle owns its connection and statements; results are
 * freed at the statement's reset.
 */
#include "sql_int.h"
#include "schema.h"

#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_MAX_PARAMS 32

/* type oids (catalog/pg_type_d.h, stable since forever) */
#define PG_OID_INT8 20
#define PG_OID_TEXT 25
#define PG_OID_FLOAT8 701


struct pg_exec {
    cs_sql_t *s;
    char *sql;                  /* the text with $N parameters */
    bool persistent;            /* prepared on the server under name */
    int prepared_gen;           /* the connection generation it was prepared on; 0 = never */
    char name[32];
    int nparams;
    bool used[PG_MAX_PARAMS];   /* parameters the text refers to */
    Oid types[PG_MAX_PARAMS];
    const char *vals[PG_MAX_PARAMS];
    char *owned[PG_MAX_PARAMS]; /* copies this exec frees */
    char num[PG_MAX_PARAMS][32];/* numbers as text */
    PGresult *res;
    int row, nrows;
    bool bind_failed;           /* a value could not be bound: the next step fails */
};

/* Pipelined statements between two reads, at most: the server's answers to
 * them must fit its send buffer while nobody reads them. */
#define PG_PIPE_MAX 256

static PGconn *conn(cs_sql_t *s)
{
    return (PGconn *)s->pg;
}

/* Keep an error message on one line: libpq's span several. */
static void set_error(cs_sql_t *s, const char *msg, const char *state)
{
    char *o = s->pg_error, *end = s->pg_error + sizeof s->pg_error - 1;
    bool space = false;
    for (const char *c = msg && *msg ? msg : "unknown error"; *c && o < end; c++) {
        if (*c == '\n' || *c == '\t' || *c == ' ') {
            space = o > s->pg_error;
            continue;
        }
        if (space && o < end)
            *o++ = ' ';
        space = false;
        if (o < end)
            *o++ = *c;
    }
    *o = '\0';
    cs_strlcpy(s->pg_state, state ? state : "", sizeof s->pg_state);
}

static void note_error(cs_sql_t *s, const PGresult *r)
{
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    set_error(s, msg ? msg : PQerrorMessage(conn(s)),
              r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL);
}

/* ---- statements ---- */

/* ?N -> $N outside quotes; records which parameters are used. */
static char *translate(const char *sql, pg_exec_t *p)
{
    size_t len = strlen(sql);
    char *out = cs_malloc(len + 1);
    if (!out)
        return NULL;
    char *o = out;
    char quote = 0;
    for (const char *c = sql; *c; c++) {
        if (quote) {
            if (*c == quote)
                quote = 0;
            *o++ = *c;
            continue;
        }
        if (*c == '\'' || *c == '"') {
            quote = *c;
            *o++ = *c;
            continue;
        }
        if (*c == '?' && c[1] >= '0' && c[1] <= '9') {
            int n = 0;
            *o++ = '$';
            while (c[1] >= '0' && c[1] <= '9') {
                n = n * 10 + (c[1] - '0');
                *o++ = *++c;
            }
            if (n >= 1 && n <= PG_MAX_PARAMS) {
                p->used[n - 1] = true;
                if (n > p->nparams)
                    p->nparams = n;
            }
            continue;
        }
        *o++ = *c;
    }
    *o = '\0';
    return out;
}

cs_rc cs__pg_prepare(cs_sql_t *s, const char *sql, bool persistent, pg_exec_t **out,
                     cs_err_t *err)
{
    pg_exec_t *p = cs_calloc(1, sizeof *p);
    *out = NULL;
    if (!p || !(p->sql = translate(sql, p))) {
        cs_free(p);
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    }
    p->s = s;
    p->persistent = persistent;
    *out = p;
    return CS_OK;
}

static void drop_value(pg_exec_t *p, int i)
{
    cs_free(p->owned[i]);
    p->owned[i] = NULL;
    p->vals[i] = NULL;
}

void cs__pg_reset(pg_exec_t *p)
{
    PQclear(p->res);
    p->res = NULL;
    p->row = p->nrows = 0;
}

void cs__pg_clear_bindings(pg_exec_t *p)
{
    for (int i = 0; i < p->nparams; i++)
        drop_value(p, i);
    p->bind_failed = false;
}

void cs__pg_finalize(pg_exec_t *p)
{
    if (!p)
        return;
    cs__pg_reset(p);
    cs__pg_clear_bindings(p);
    cs_free(p->sql);
    cs_free(p);
}

static bool slot(pg_exec_t *p, int i)
{
    if (i < 1 || i > p->nparams) {
        p->bind_failed = true;
        return false;
    }
    drop_value(p, i - 1);
    return true;
}

static void set_type(pg_exec_t *p, int i, Oid t)
{
    if (p->prepared_gen == 0 || !p->persistent)
        p->types[i - 1] = t;
}

int cs__pg_bind_int64(pg_exec_t *p, int i, int64_t v)
{
    if (!slot(p, i))
        return SQL_ERROR;
    snprintf(p->num[i - 1], sizeof p->num[i - 1], "%lld", (long long)v);
    p->vals[i - 1] = p->num[i - 1];
    set_type(p, i, PG_OID_INT8);
    return SQL_OK;
}

int cs__pg_bind_double(pg_exec_t *p, int i, double v)
{
    if (!slot(p, i))
        return SQL_ERROR;
    snprintf(p->num[i - 1], sizeof p->num[i - 1], "%.17g", v);
    p->vals[i - 1] = p->num[i - 1];
    set_type(p, i, PG_OID_FLOAT8);
    return SQL_OK;
}

int cs__pg_bind_text(pg_exec_t *p, int i, const char *v, int n, bool copy)
{
    if (!slot(p, i))
        return SQL_ERROR;
    if (!v)
        return SQL_OK;
    if (n >= 0 || copy) {
        /* libpq wants NUL-terminated text */
        size_t len = n >= 0 ? (size_t)n : strlen(v);
        char *c = cs_malloc(len + 1);
        if (!c) {
            p->bind_failed = true; /* not NULL instead of the value */
            return SQL_ERROR;
        }
        memcpy(c, v, len);
        c[len] = '\0';
        p->owned[i - 1] = c;
        v = c;
    }
    p->vals[i - 1] = v;
    return SQL_OK;
}

int cs__pg_bind_null(pg_exec_t *p, int i)
{
    return slot(p, i) ? SQL_OK : SQL_ERROR;
}

static cs_rc ensure_connected(cs_sql_t *s, cs_err_t *err);

/* ---- pipeline mode ----
 *
 * Inside a writer transaction the connection is in libpq's pipeline mode.
 * Statements whose answer nobody reads (cs__sql_exec_stmt: inserts and
 * updates that report nothing back) are only sent; a statement whose rows
 * or row count are needed sends itself, asks the server to flush, reads the
 * answers of everything sent before it, then its own. So a group of events
 * costs about one round trip per read instead of one per statement. An
 * error in a pipelined statement fails the transaction: the next read or
 * the commit reports it (with the failed statement's message), and the
 * caller rolls back, as after any failed statement. */

/* Read one command's results; *keep gets the first good one (owned). */
static bool collect_one(cs_sql_t *s, PGresult **keep)
{
    PGresult *r;
    bool ok = true;
    while ((r = PQgetResult(conn(s)))) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_PIPELINE_SYNC) { /* not expected here: no command follows */
            PQclear(r);
            break;
        }
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
            if (!s->pg_pipe_failed && st != PGRES_PIPELINE_ABORTED)
                note_error(s, r);
            s->pg_pipe_failed = true;
            ok = false;
        }
        if (ok && keep && !*keep)
            *keep = r;
        else
            PQclear(r);
    }
    return ok;
}

static void drain_pending(cs_sql_t *s)
{
    for (; s->pg_pending > 0; s->pg_pending--)
        collect_one(s, NULL);
}

/* Send a statement (preparing it first if need be) without reading. */
static bool pipe_send(pg_exec_t *p)
{
    cs_sql_t *s = p->s;
    if (p->persistent && p->prepared_gen != s->pg_gen + 1) {
        snprintf(p->name, sizeof p->name, "g%d_%d", s->pg_gen, ++s->pg_names);
        if (!PQsendPrepare(conn(s), p->name, p->sql, p->nparams, p->types))
            goto fail;
        s->pg_pending++;
        p->prepared_gen = s->pg_gen + 1;
    }
    if (!(p->persistent
              ? PQsendQueryPrepared(conn(s), p->name, p->nparams, p->vals, NULL, NULL, 0)
              : PQsendQueryParams(conn(s), p->sql, p->nparams, p->types, p->vals, NULL, NULL, 0)))
        goto fail;
    s->pg_pending++;
    return true;
fail:
    if (!s->pg_pipe_failed)
        set_error(s, PQerrorMessage(conn(s)), NULL);
    s->pg_pipe_failed = true;
    return false;
}

/* Ask for everything sent so far and read it; true when all went well. */
static bool pipe_flush(cs_sql_t *s)
{
    if (!PQsendFlushRequest(conn(s)) || PQflush(conn(s)) != 0) {
        if (!s->pg_pipe_failed)
            set_error(s, PQerrorMessage(conn(s)), NULL);
        s->pg_pipe_failed = true;
    }
    drain_pending(s);
    return !s->pg_pipe_failed;
}

/* A statement whose answer is not needed: inside a pipelined transaction it
 * is only sent (its failure shows at the next read or the commit). */
cs_rc cs__pg_exec_deferred(pg_exec_t *p, bool *sent)
{
    cs_sql_t *s = p->s;
    *sent = false;
    if (!s->pg_pipe || p->bind_failed)
        return CS_OK; /* run at once (a failed binding fails there) */
    *sent = true;
    if (s->pg_pipe_failed || !pipe_send(p))
        return CS_ERR_STORE;
    if (s->pg_pending >= PG_PIPE_MAX && !pipe_flush(s))
        return CS_ERR_STORE;
    s->pg_changes = -1; /* not known for a deferred statement */
    return CS_OK;
}

/* Leave pipeline mode: sync, read everything, exit. */
static void pipe_end(cs_sql_t *s)
{
    if (!s->pg_pipe)
        return;
    PQpipelineSync(conn(s));
    drain_pending(s);
    PGresult *r;
    for (int nulls = 0; nulls < 4;) { /* up to the sync's result */
        if (!(r = PQgetResult(conn(s)))) {
            nulls++;
            continue;
        }
        ExecStatusType st = PQresultStatus(r);
        PQclear(r);
        if (st == PGRES_PIPELINE_SYNC)
            break;
    }
    PQexitPipelineMode(conn(s));
    s->pg_pipe = false;
    if (s->pg_pipe_failed)
        s->pg_gen++; /* statements prepared in a failed pipeline may not exist */
}

/* Run the statement: prepare it on this connection first if need be. NULL
 * with the error noted on failure. */
static PGresult *run(pg_exec_t *p)
{
    cs_sql_t *s = p->s;
    PGresult *r = NULL;
    if (s->pg_pipe) {
        if (s->pg_pipe_failed || !pipe_send(p))
            return NULL;
        s->pg_pending--; /* ours: read below, after the others */
        bool others = pipe_flush(s);
        bool mine = collect_one(s, &r);
        if (!others || !mine) {
            PQclear(r);
            return NULL;
        }
        return r;
    }
    if (p->persistent && p->prepared_gen != s->pg_gen + 1) {
        snprintf(p->name, sizeof p->name, "g%d_%d", s->pg_gen, ++s->pg_names);
        r = PQprepare(conn(s), p->name, p->sql, p->nparams, p->types);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            note_error(s, r);
            PQclear(r);
            return NULL;
        }
        PQclear(r);
        p->prepared_gen = s->pg_gen + 1;
    }
    if (p->persistent)
        r = PQexecPrepared(conn(s), p->name, p->nparams, p->vals, NULL, NULL, 0);
    else
        r = PQexecParams(conn(s), p->sql, p->nparams, p->types, p->vals, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        note_error(s, r);
        PQclear(r);
        return NULL;
    }
    return r;
}

int cs__pg_step(pg_exec_t *p)
{
    cs_sql_t *s = p->s;
    if (!p->res && p->bind_failed) {
        set_error(s, "a value could not be bound (out of memory or a bad parameter number)", NULL);
        return SQL_ERROR;
    }
    if (!p->res) {
        PGresult *r;
        for (int i = 0; i < p->nparams; i++)
            if (!p->used[i])
                p->types[i] = PG_OID_TEXT; /* a gap in the numbering: any type will do */
        /* outside a transaction a broken connection is mended on the
         * spot (a reader after a database restart); inside one the
         * transaction is lost anyway and the next begin reconnects */
        if (!s->in_tx && PQstatus(conn(s)) != CONNECTION_OK && ensure_connected(s, NULL))
            return SQL_ERROR;
        r = run(p);
        if (!r && !s->in_tx && PQstatus(conn(s)) != CONNECTION_OK && !ensure_connected(s, NULL))
            r = run(p);
        if (!r)
            return strncmp(s->pg_state, "23", 2) == 0 ? SQL_CONSTRAINT : SQL_ERROR;
        p->res = r;
        p->row = -1;
        p->nrows = PQntuples(r);
        const char *ct = PQcmdTuples(r);
        s->pg_changes = ct && *ct ? strtoll(ct, NULL, 10) : 0;
    }
    if (p->row + 1 < p->nrows) {
        p->row++;
        return SQL_ROW;
    }
    p->row = p->nrows;
    return SQL_DONE;
}

static bool have_cell(pg_exec_t *p, int i)
{
    return p->res && p->row >= 0 && p->row < p->nrows && i >= 0 && i < PQnfields(p->res);
}

bool cs__pg_isnull(pg_exec_t *p, int i)
{
    return !have_cell(p, i) || PQgetisnull(p->res, p->row, i);
}

const char *cs__pg_text(pg_exec_t *p, int i)
{
    return cs__pg_isnull(p, i) ? NULL : PQgetvalue(p->res, p->row, i);
}

int cs__pg_bytes(pg_exec_t *p, int i)
{
    return cs__pg_isnull(p, i) ? 0 : PQgetlength(p->res, p->row, i);
}

int64_t cs__pg_int64(pg_exec_t *p, int i)
{
    const char *v = cs__pg_text(p, i);
    if (!v)
        return 0;
    if (v[0] == 't' && !v[1]) /* booleans, as SQLite gives them */
        return 1;
    if (v[0] == 'f' && !v[1])
        return 0;
    if (strchr(v, '.')) /* numeric results (sum, avg) */
        return (int64_t)strtod(v, NULL);
    return strtoll(v, NULL, 10);
}

double cs__pg_double(pg_exec_t *p, int i)
{
    const char *v = cs__pg_text(p, i);
    return v ? strtod(v, NULL) : 0.0;
}

/* ---- connection ---- */

static void quiet_notices(void *arg, const char *message)
{
    (void)arg;
    cs_log(CS_LOG_DEBUG, "store: postgresql: %s", message);
}

/* A statement without parameters or rows (several allowed). */
static cs_rc exec(cs_sql_t *s, const char *sql, cs_err_t *err)
{
    PGresult *r = PQexec(conn(s), sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        note_error(s, r);
        PQclear(r);
        return cs__sql_fail(s, err, sql);
    }
    PQclear(r);
    return CS_OK;
}

/* One integer from a one-row query; *found false when it gave no row or NULL. */
static cs_rc query_int(cs_sql_t *s, const char *sql, int64_t *v, bool *found, cs_err_t *err)
{
    PGresult *r = PQexec(conn(s), sql);
    *found = false;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        note_error(s, r);
        PQclear(r);
        return cs__sql_fail(s, err, sql);
    }
    if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
        *v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        *found = true;
    }
    PQclear(r);
    return CS_OK;
}

static cs_rc session_setup(cs_sql_t *s, int lock_ms, cs_err_t *err)
{
    char sql[224];
    PQsetNoticeProcessor(conn(s), quiet_notices, NULL);
    /* text goes over the wire as the database stores it, whatever client
     * encoding the node's environment names (PGCLIENTENCODING): UTF-8, the
     * engine's, on a UTF8 database; byte for byte on another (docs/store.md) */
    const char *enc = PQparameterStatus(conn(s), "server_encoding");
    if (enc && PQsetClientEncoding(conn(s), enc) != 0) {
        set_error(s, PQerrorMessage(conn(s)), NULL);
        return cs__sql_fail(s, err, "set the client encoding");
    }
    /* READ COMMITTED whatever the database's default: a writer transaction
     * reads after it holds the write lock, and must see what the node
     * before it committed (a snapshot from before the lock, as REPEATABLE
     * READ takes it, gave the next seq twice and serialization failures) */
    snprintf(sql, sizeof sql,
             "SET synchronous_commit=%s; SET lock_timeout=%d; SET client_min_messages=warning; "
             "SET default_transaction_isolation='read committed'",
             s->durable ? "on" : "off", lock_ms);
    cs_rc rc = exec(s, sql, err);
    if (!rc && s->read_only)
        rc = exec(s, "SET default_transaction_read_only=on", err);
    /* a node that stalls inside a transaction (stopped, swapped out, cut
     * off) must not hold the write lock for everyone: the server ends its
     * session after 30 s of silence, and the node reconnects */
    if (!rc && !s->read_only)
        rc = exec(s, "SET idle_in_transaction_session_timeout=30000", err);
    return rc;
}

/* Before a transaction: a connection that broke is re-established (the
 * database restarted, a network blip); prepared statements follow. */
static cs_rc ensure_connected(cs_sql_t *s, cs_err_t *err)
{
    if (PQstatus(conn(s)) == CONNECTION_OK)
        return CS_OK;
    PQreset(conn(s));
    if (PQstatus(conn(s)) != CONNECTION_OK) {
        set_error(s, PQerrorMessage(conn(s)), NULL);
        return cs__sql_fail(s, err, "reconnect");
    }
    s->pg_gen++; /* the statements are gone with the old connection: prepare again */
    cs_log(CS_LOG_INFO, "store: reconnected to PostgreSQL");
    return session_setup(s, s->pg_lock_ms, err);
}

/* ---- migrations: schema.c, consonance_schema holds the version applied ---- */

static cs_rc migrate(cs_sql_t *s, cs_err_t *err)
{
    char sql[192];
    int64_t version = 0;
    bool found;
    cs_rc rc;
    const int64_t latest = (int64_t)cs_schema_count();
    /* a node that starts while another migrates waits for it however long
     * the migration takes (the lock is the other's transaction's, gone when
     * it ends or dies); the migration's own statements keep the lock
     * timeout */
    snprintf(sql, sizeof sql,
             "BEGIN; SET LOCAL lock_timeout=0; SELECT pg_advisory_xact_lock(%lld); "
             "SET LOCAL lock_timeout=%d",
             (long long)CS_PG_LOCK_MIGRATE, s->pg_lock_ms);
    if ((rc = exec(s, sql, err)))
        return rc;
    if ((rc = exec(s, "CREATE TABLE IF NOT EXISTS consonance_schema(version BIGINT NOT NULL)",
                   err)) ||
        (rc = query_int(s, "SELECT max(version) FROM consonance_schema", &version, &found, err)))
        goto out;
    if (version > latest) {
        rc = cs_errf(err, CS_ERR_CONFIG,
                     "store: schema version %lld is newer than this program understands "
                     "(%lld); upgrade consonance",
                     (long long)version, (long long)latest);
        goto out;
    }
    for (int64_t v = version; v < latest; v++) {
        char *m = cs_schema_migration((size_t)v, CS_DIALECT_POSTGRESQL);
        if (!m) {
            rc = cs_errf(err, CS_ERR_NOMEM, "out of memory");
            goto out;
        }
        rc = exec(s, m, err);
        cs_free(m);
        if (rc || (rc = cs__sql_after_migration(s, (int)v + 1, err)))
            goto out;
    }
    if (version < latest) {
        snprintf(sql, sizeof sql,
                 "DELETE FROM consonance_schema; INSERT INTO consonance_schema VALUES(%lld)",
                 (long long)latest);
        if ((rc = exec(s, sql, err)))
            goto out;
        cs_log(CS_LOG_DEBUG, "store: schema migrated to version %lld", (long long)latest);
    }
    rc = cs__sql_resume_steps(s, err);
out:
    if (rc) {
        exec(s, "ROLLBACK", NULL);
        return rc;
    }
    return exec(s, "COMMIT", err);
}

static void pg_close(cs_store_t *store)
{
    cs_sql_t *s = (cs_sql_t *)store;
    if (!s)
        return;
    cs__sql_free_stmts(s->stmts, CS_ARRAY_LEN(s->stmts));
    cs__sql_journey_close(s);
    cs__sql_track_close(s);
    cs_map_free(&s->pg_new_ids);
    if (s->pg)
        PQfinish(conn(s));
    cs_free(s);
}

static cs_rc pg_open(const char *target, const cs_store_opts_t *opts, cs_store_t **out,
                     cs_err_t *err)
{
    cs_sql_t *s = NULL;
    cs_rc rc = CS_OK;
    *out = NULL;
    if (strncmp(target, "postgresql://", 13) != 0 && strncmp(target, "postgres://", 11) != 0)
        return cs_err_field(err, CS_ERR_CONFIG, "store",
                            "store: expected a PostgreSQL URI postgresql://[user@]host[:port]/"
                            "database, got \"%.100s\"",
                            target);
    s = cs_calloc(1, sizeof *s);
    if (!s)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory opening the store");
    s->base.ops = &cs_store_pg_ops;
    cs_map_init(&s->pg_new_ids);
    s->read_only = opts->read_only;
    cs__sql_set_node(s, opts);
    s->durable = opts->durable;
    s->pg_lock_ms = opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 5000;
    /* a database that does not answer must not hang the node: connecting
     * gives up after 5 s unless the target says otherwise */
    char *conninfo = NULL;
    if (!strstr(target, "connect_timeout=")) {
        size_t n = strlen(target) + 32;
        if ((conninfo = cs_malloc(n)))
            snprintf(conninfo, n, "%s%sconnect_timeout=5", target, strchr(target, '?') ? "&" : "?");
    }
    s->pg = PQconnectdb(conninfo ? conninfo : target);
    cs_free(conninfo);
    if (!s->pg) {
        rc = cs_errf(err, CS_ERR_NOMEM, "out of memory opening the store");
        goto out;
    }
    if (PQstatus(conn(s)) != CONNECTION_OK) {
        set_error(s, PQerrorMessage(conn(s)), NULL);
        rc = cs_errf(err, CS_ERR_STORE, "store: cannot connect to PostgreSQL: %s", s->pg_error);
        goto out;
    }
    if ((rc = session_setup(s, s->pg_lock_ms, err)))
        goto out;
    if (opts->read_only) {
        int64_t v = 0;
        bool found = false;
        PGresult *r = PQexec(conn(s), "SELECT to_regclass('consonance_schema') IS NOT NULL");
        bool has = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
                   PQgetvalue(r, 0, 0)[0] == 't';
        PQclear(r);
        if (has && (rc = query_int(s, "SELECT max(version) FROM consonance_schema", &v, &found,
                                   err)))
            goto out;
        if (!found || v == 0) {
            rc = cs_errf(err, CS_ERR_STORE,
                         "store: the database has no schema yet (open a writer first)");
            goto out;
        }
    } else if ((rc = migrate(s, err))) {
        goto out;
    }
out:
    if (rc) {
        pg_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return CS_OK;
}

/* ---- transactions ---- */

static cs_rc begin_locked(cs_sql_t *s, cs_err_t *err)
{
    char sql[96];
    cs_rc rc;
    if (s->read_only)
        return cs_errf(err, CS_ERR_INTERNAL, "store: begin on a read-only handle");
    if ((rc = ensure_connected(s, err)))
        return rc;
    /* the write lock: one writer transaction at a time across all nodes */
    snprintf(sql, sizeof sql, "BEGIN; SELECT pg_advisory_xact_lock(%lld)",
             (long long)CS_PG_LOCK_WRITE);
    rc = exec(s, sql, err);
    /* a connection the server ended while it sat idle (a restart, a
     * failover) shows only now, and nothing was done on it: connect again
     * and begin once more rather than refuse the group */
    if (rc && PQstatus(conn(s)) != CONNECTION_OK && !(rc = ensure_connected(s, err)))
        rc = exec(s, sql, err);
    if (rc) {
        exec(s, "ROLLBACK", NULL);
        return rc;
    }
    s->in_tx = true;
    return CS_OK;
}

static cs_rc enter_pipe(cs_sql_t *s, cs_err_t *err)
{
    if (!PQenterPipelineMode(conn(s))) {
        set_error(s, PQerrorMessage(conn(s)), NULL);
        PQclear(PQexec(conn(s), "ROLLBACK"));
        s->in_tx = false;
        return cs__sql_fail(s, err, "enter pipeline mode");
    }
    s->pg_pipe = true;
    s->pg_pipe_failed = false;
    s->pg_pending = 0;
    return CS_OK;
}

static cs_rc pg_begin(cs_store_t *store, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    cs_rc rc = begin_locked(s, err);
    return rc ? rc : enter_pipe(s, err);
}

/* synchronous_commit=off for this transaction: a crash of the database
 * server may lose it (a repeat, never data), a crash of this node cannot */
static cs_rc pg_begin_relaxed(cs_store_t *store, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    cs_rc rc = begin_locked(s, err);
    if (!rc && s->durable && (rc = exec(s, "SET LOCAL synchronous_commit=off", err))) {
        exec(s, "ROLLBACK", NULL);
        s->in_tx = false;
    }
    return rc ? rc : enter_pipe(s, err);
}

static cs_rc pg_commit(cs_store_t *store, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    if (s->pg_pipe) {
        /* the identity sequence follows the seqs given (for any other
         * writer of the log, copy-store's included) */
        if (s->pg_seq_assigned && !s->pg_pipe_failed) {
            char sql[128];
            snprintf(sql, sizeof sql,
                     "SELECT setval(pg_get_serial_sequence('events','seq'),%lld)",
                     (long long)s->pg_seq_assigned);
            if (PQsendQueryParams(conn(s), sql, 0, NULL, NULL, NULL, NULL, 0))
                s->pg_pending++;
            else
                s->pg_pipe_failed = true;
        }
        cs__sql_ingest_reset(s);
        /* the other nodes hear of new work when it commits (a hint) */
        if (s->pg_notify && !s->pg_pipe_failed) {
            const char *vals[1] = { s->node };
            if (PQsendQueryParams(conn(s), "SELECT pg_notify('consonance', $1)", 1, NULL, vals,
                                  NULL, NULL, 0))
                s->pg_pending++;
            else
                s->pg_pipe_failed = true;
        }
        s->pg_notify = false;
        /* read what was sent: a failure there fails the commit */
        pipe_end(s);
        if (s->pg_pipe_failed) {
            PQclear(PQexec(conn(s), "ROLLBACK"));
            s->in_tx = false;
            return cs__sql_fail(s, err, "commit");
        }
    }
    PGresult *r = PQexec(conn(s), "COMMIT");
    cs_rc rc = CS_OK;
    s->in_tx = false;
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        note_error(s, r);
        rc = cs__sql_fail(s, err, "commit");
    } else if (strcmp(PQcmdStatus(r), "COMMIT") != 0) {
        /* COMMIT of a failed transaction answers ROLLBACK */
        set_error(s, "the transaction had failed and was rolled back", NULL);
        rc = cs__sql_fail(s, err, "commit");
    }
    PQclear(r);
    return rc;
}

/* A reader's use (a request's reads, a message's context) reads all its
 * statements from one snapshot, as a SQLite reader's does: a view of an
 * order read in four statements while another node commits a scan shows
 * the parcel, its status and its scans of one moment. A read-only
 * REPEATABLE READ transaction takes no lock and waits for nobody. A
 * connection the server ended while the handle sat in the pool shows at
 * the BEGIN: it is mended and the BEGIN sent again. When it still fails
 * the use reads statement by statement, as before. */
static void pg_read_enter(cs_store_t *store)
{
    static const char sql[] = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
    cs_sql_t *s = (cs_sql_t *)store;
    if (!s->read_only || s->pg_snap)
        return;
    cs_rc rc = exec(s, sql, NULL);
    if (rc && PQstatus(conn(s)) != CONNECTION_OK && ensure_connected(s, NULL) == CS_OK)
        rc = exec(s, sql, NULL);
    s->pg_snap = rc == CS_OK;
}

static void pg_read_leave(cs_store_t *store)
{
    cs_sql_t *s = (cs_sql_t *)store;
    if (!s->pg_snap)
        return;
    s->pg_snap = false;
    switch (PQtransactionStatus(conn(s))) {
    case PQTRANS_INTRANS: exec(s, "COMMIT", NULL); break;
    case PQTRANS_INERROR: exec(s, "ROLLBACK", NULL); break;
    default: break; /* the connection broke (mended at the next use) */
    }
}

static void pg_rollback(cs_store_t *store)
{
    cs_sql_t *s = (cs_sql_t *)store;
    cs__sql_ingest_reset(s);
    s->pg_notify = false;
    pipe_end(s);
    if (PQtransactionStatus(conn(s)) != PQTRANS_IDLE)
        PQclear(PQexec(conn(s), "ROLLBACK"));
    s->in_tx = false;
}

/* ---- health ---- */

/* Reads work but writes would fail when the server is a standby in
 * recovery, or when its sessions default to read-only transactions (what a
 * managed database is set to on a full disk). A reader's session sets that
 * default on for itself, so its reset_val is read: the value of the server,
 * database, role or connection options, which every session without a
 * setting of its own (the writer's) follows. Writes nothing. */
static cs_rc pg_writable(cs_store_t *store, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    static const char sql[] = "SELECT pg_is_in_recovery(), reset_val FROM pg_settings "
                              "WHERE name='default_transaction_read_only'";
    cs_rc rc = CS_OK;
    PGresult *r = PQexec(conn(s), sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        note_error(s, r);
        rc = cs__sql_fail(s, err, "check that the database takes writes");
    } else if (PQgetvalue(r, 0, 0)[0] == 't') {
        rc = cs_errf(err, CS_ERR_STORE,
                     "store: the database is read-only: a standby in recovery takes no writes");
    } else if (strcmp(PQgetvalue(r, 0, 1), "on") == 0) {
        rc = cs_errf(err, CS_ERR_STORE,
                     "store: the database is read-only: default_transaction_read_only is on, "
                     "so every write fails");
    }
    PQclear(r);
    return rc;
}

/* ---- wake-ups: LISTEN consonance, NOTIFY at commit (payload: the node) ---- */

static cs_rc pg_wakeup_wait(cs_store_t *store, int timeout_ms, bool *woken, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    cs_rc rc;
    *woken = false;
    if ((rc = ensure_connected(s, err)))
        return rc;
    if (s->pg_listen_gen != s->pg_gen + 1) {
        if ((rc = exec(s, "LISTEN consonance", err)))
            return rc;
        s->pg_listen_gen = s->pg_gen + 1;
    }
    struct pollfd p = { .fd = PQsocket(conn(s)), .events = POLLIN };
    if (p.fd < 0 || poll(&p, 1, timeout_ms) < 0)
        return CS_OK; /* a signal, or no socket: the caller polls anyway */
    if (p.revents && !PQconsumeInput(conn(s))) {
        set_error(s, PQerrorMessage(conn(s)), NULL);
        return cs__sql_fail(s, err, "wait for wake-ups");
    }
    PGnotify *n;
    while ((n = PQnotifies(conn(s)))) {
        if (!n->extra || strcmp(n->extra, s->node) != 0) /* our own work we know of */
            *woken = true;
        PQfreemem(n);
    }
    return CS_OK;
}

const cs_store_ops_t cs_store_pg_ops = {
    .name = "postgresql",
    .prefix = "postgres",
    .shared = true,
    .wakeup_wait = pg_wakeup_wait,
    .open = pg_open,
    .close = pg_close,
    .begin = pg_begin,
    .begin_relaxed = pg_begin_relaxed,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .read_enter = pg_read_enter,
    .read_leave = pg_read_leave,
    .writable = pg_writable,
    CS_SQL_SHARED_OPS,
    .ingest_hint = cs__sql_ingest_hint,
};
