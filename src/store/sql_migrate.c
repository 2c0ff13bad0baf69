/*
 * sql_migrate.c -- the steps of a migration that SQL alone cannot do, run
 * by both drivers right after the migration's SQL, inside its transaction
 * (schema.h): a failed step rolls the whole upgrade back.
 */
#include "sql_int.h"

#include "../model/region.h"
#include "schema.h"

#include <stdio.h>
#include <string.h>

/* Every address the store keeps a region key of, each once. */
static const char ADDRESSES_SQL[] =
    "SELECT location FROM scans WHERE location IS NOT NULL "
    "UNION SELECT destination FROM shipments WHERE destination IS NOT NULL "
    "UNION SELECT ship_destination FROM orders WHERE ship_destination IS NOT NULL";

/* Each table's key from region_backfill: set where it differs, cleared
 * where the address has no specific key (any more). */
static const char *const REGION_UPDATES[] = {
    "UPDATE scans SET region=b.region FROM region_backfill b "
    "WHERE b.address=scans.location AND scans.region IS DISTINCT FROM b.region",
    "UPDATE scans SET region=NULL WHERE region IS NOT NULL AND NOT EXISTS "
    "(SELECT 1 FROM region_backfill b WHERE b.address=scans.location)",
    "UPDATE shipments SET dest_region=b.region FROM region_backfill b "
    "WHERE b.address=shipments.destination AND shipments.dest_region IS DISTINCT FROM b.region",
    "UPDATE shipments SET dest_region=NULL WHERE dest_region IS NOT NULL AND NOT EXISTS "
    "(SELECT 1 FROM region_backfill b WHERE b.address=shipments.destination)",
    "UPDATE orders SET ship_dest_region=b.region FROM region_backfill b "
    "WHERE b.address=orders.ship_destination "
    "AND orders.ship_dest_region IS DISTINCT FROM b.region",
    "UPDATE orders SET ship_dest_region=NULL WHERE ship_dest_region IS NOT NULL AND NOT EXISTS "
    "(SELECT 1 FROM region_backfill b WHERE b.address=orders.ship_destination)",
    "DROP TABLE region_backfill",
};

/* One statement run once; its changed rows added to *changed. */
static cs_rc run_once(cs_sql_t *s, const char *sql, const char *what, int64_t *changed,
                      cs_err_t *err)
{
    sql_stmt *st = NULL;
    int64_t n = 0;
    cs_rc rc = cs__sql_prepare(s, sql, &st, err);
    if (!rc)
        rc = cs__sql_exec_count(s, st, err, what, &n);
    sql_finalize(st);
    if (!rc)
        *changed += n;
    return rc;
}

/* Version 16: the region key (model/region.h) of every stored scan place
 * and destination, computed by this program's rules. The keys go through
 * a table so that each table is updated in one statement, not once per
 * address (scans.location has no index). */
static cs_rc backfill_regions(cs_sql_t *s, cs_err_t *err)
{
    sql_stmt *all = NULL, *put = NULL;
    int64_t addresses = 0, keyed = 0, changed = 0;
    cs_rc rc;
    if ((rc = cs__sql_prepare(s, ADDRESSES_SQL, &all, err)) ||
        (rc = cs__sql_prepare(s, "INSERT INTO region_backfill(address,region) VALUES(?1,?2)",
                              &put, err)))
        goto out;
    for (;;) {
        int r = sql_step(all);
        if (r == SQL_DONE)
            break;
        if (r != SQL_ROW) {
            rc = cs__sql_fail(s, err, "read the stored addresses");
            goto out;
        }
        char key[CS_REGION_KEY_MAX];
        const char *address = cs__col_text(all, 0);
        addresses++;
        cs_region_key_json(address, key, sizeof key);
        if (!cs_region_key_specific(key))
            continue;
        int64_t n;
        cs__bind_text(put, 1, address);
        cs__bind_text(put, 2, key);
        if ((rc = cs__sql_exec_count(s, put, err, "note an address's region", &n)))
            goto out;
        keyed++;
    }
    for (size_t i = 0; i < CS_ARRAY_LEN(REGION_UPDATES); i++)
        if ((rc = run_once(s, REGION_UPDATES[i], "write the region keys", &changed, err)))
            goto out;
    cs_log(addresses ? CS_LOG_INFO : CS_LOG_DEBUG,
           "store: region keys of %lld stored addresses (%lld name a region); %lld rows changed",
           (long long)addresses, (long long)keyed, (long long)changed);
out:
    sql_finalize(all);
    sql_finalize(put);
    return rc;
}

/* Every row of `sql` read into *out before anything is written (the rows
 * are written while they are read): each of its `cols` columns as a
 * NUL-terminated string, NULL as "". */
static cs_rc read_rows(cs_sql_t *s, const char *sql, int cols, const char *what, cs_buf_t *out,
                       cs_err_t *err)
{
    sql_stmt *all = NULL;
    cs_rc rc = cs__sql_prepare(s, sql, &all, err);
    while (!rc) {
        int r = sql_step(all);
        if (r == SQL_DONE)
            break;
        if (r != SQL_ROW) {
            rc = cs__sql_fail(s, err, what);
            break;
        }
        for (int c = 0; c < cols && !rc; c++) {
            const char *v = cs__col_text(all, c);
            rc = cs_buf_append(out, v ? v : "", strlen(v ? v : "") + 1);
        }
        if (rc)
            rc = cs_errf(err, rc, "store: %s: the rows do not fit in memory", what);
    }
    sql_finalize(all);
    return rc;
}

/* The next string of a buffer read_rows filled; *at moves past it. */
static const char *next_text(const cs_buf_t *b, size_t *at)
{
    const char *v = b->data + *at;
    *at += strlen(v) + 1;
    return v;
}

/* Version 18: each shipment with scans folded again by SQL_SCAN_COUNTS,
 * and the closed watches' parcel (promises.closed_shipment, new in 17)
 * filled in as the followed parcel. */
static cs_rc refold_shipments(cs_sql_t *s, cs_err_t *err)
{
    cs_buf_t ids;
    int64_t n = 0, closed = 0;
    cs_buf_init(&ids, (size_t)1 << 30);
    cs_rc rc = read_rows(s, "SELECT DISTINCT shipment_id FROM scans WHERE shipment_id IS NOT NULL",
                         1, "read the shipments with scans", &ids, err);
    for (size_t at = 0; !rc && at < ids.len; n++)
        rc = cs__sql_refresh_shipment(s, next_text(&ids, &at), err);
    if (rc ||
        (rc = run_once(s,
                       "UPDATE promises SET closed_shipment=(SELECT id FROM shipments WHERE "
                       "order_id=promises.order_id ORDER BY " SQL_FOLLOWED_PARCEL_ORDER
                       " LIMIT 1) WHERE closed<>0 AND closed_shipment IS NULL AND reason IN "
                       "('delivered','returned')",
                       "name the parcels closed watches closed on", &closed, err)) ||
        (rc = run_once(s, "DROP TABLE refold_18", "drop the step's table", &closed, err)))
        goto out;
    cs_log(n ? CS_LOG_INFO : CS_LOG_DEBUG,
           "store: %lld shipments read again from their scans; closed watches named", (long long)n);
out:
    cs_buf_free(&ids);
    return rc;
}

/* Version 19: the parcels stored twice before it (an order's shipments of
 * one carrier and number) merged into their first announcement. */
static cs_rc merge_stored_twins(cs_sql_t *s, cs_err_t *err)
{
    cs_buf_t keys;
    int64_t groups = 0, merged = 0, dropped = 0;
    cs_buf_init(&keys, (size_t)1 << 30);
    cs_rc rc = read_rows(s,
                         "SELECT order_id,carrier,tracking_number FROM shipments GROUP BY "
                         "order_id,carrier,tracking_number HAVING count(*)>1",
                         3, "read the parcels stored twice", &keys, err);
    for (size_t at = 0; !rc && at < keys.len; groups++) {
        const char *order = next_text(&keys, &at);
        const char *carrier = next_text(&keys, &at);
        const char *number = next_text(&keys, &at);
        int n;
        if (!(rc = cs__sql_merge_twins(s, order, carrier, number, &n, err)))
            merged += n;
    }
    if (rc || (rc = run_once(s, "DROP TABLE merge_19", "drop the step's table", &dropped, err)))
        goto out;
    cs_log(groups ? CS_LOG_INFO : CS_LOG_DEBUG,
           "store: %lld parcels announced under several shipment ids; %lld ids merged",
           (long long)groups, (long long)merged);
out:
    cs_buf_free(&keys);
    return rc;
}

/* Version 20: the later copies of a scan stored twice (SQL_SAME_SCAN:
 * on one parcel, or waiting for one with one carrier and number) dropped,
 * the first kept; the parcels that held copies, and those whose delivery
 * was dated after it was received, read again from their scans
 * (SQL_DELIVERED_AT). The parcels are read before anything changes. */
static cs_rc drop_scan_copies(cs_sql_t *s, cs_err_t *err)
{
    static const char *const COPIES[] = {
        "DELETE FROM scans WHERE shipment_id IS NOT NULL AND EXISTS(SELECT 1 FROM scans x "
        "WHERE x.shipment_id=scans.shipment_id AND x.seq<scans.seq AND "
        SQL_SAME_SCAN("x", "scans.occurred_at", "scans.status", "scans.reason",
                      "scans.carrier_code", "scans.carrier_text", "scans.location") ")",
        "DELETE FROM scans WHERE shipment_id IS NULL AND EXISTS(SELECT 1 FROM scans x "
        "WHERE x.shipment_id IS NULL AND x.carrier=scans.carrier AND "
        "x.tracking_number=scans.tracking_number AND x.seq<scans.seq AND "
        SQL_SAME_SCAN("x", "scans.occurred_at", "scans.status", "scans.reason",
                      "scans.carrier_code", "scans.carrier_text", "scans.location") ")",
    };
    cs_buf_t ids;
    int64_t n = 0, dropped = 0, done = 0;
    cs_buf_init(&ids, (size_t)1 << 30);
    cs_rc rc = read_rows(
        s,
        "SELECT DISTINCT s.shipment_id FROM scans s WHERE s.shipment_id IS NOT NULL AND "
        "EXISTS(SELECT 1 FROM scans x WHERE x.shipment_id=s.shipment_id AND x.seq<s.seq AND "
        SQL_SAME_SCAN("x", "s.occurred_at", "s.status", "s.reason", "s.carrier_code",
                      "s.carrier_text", "s.location") ") "
        "UNION SELECT DISTINCT s.shipment_id FROM scans s JOIN shipments sh ON "
        "sh.id=s.shipment_id JOIN events e ON e.seq=s.seq WHERE s.status=5 AND "
        "sh.delivered_at IS NOT NULL AND e.received_at<sh.delivered_at",
        1, "read the parcels with a scan stored twice or delivered ahead", &ids, err);
    for (size_t k = 0; !rc && k < CS_ARRAY_LEN(COPIES); k++)
        rc = run_once(s, COPIES[k], "drop the scans stored twice", &dropped, err);
    for (size_t at = 0; !rc && at < ids.len; n++)
        rc = cs__sql_refresh_shipment(s, next_text(&ids, &at), err);
    if (rc || (rc = run_once(s, "DROP TABLE scans_20", "drop the step's table", &done, err)))
        goto out;
    cs_log(dropped || n ? CS_LOG_INFO : CS_LOG_DEBUG,
           "store: %lld scans stored twice dropped; %lld shipments read again from their scans",
           (long long)dropped, (long long)n);
out:
    cs_buf_free(&ids);
    return rc;
}

/* Version 28: each ticket's first ticket.created (tickets.created_seq),
 * read from the log a page at a time: a seq, and the ticket id from the
 * event's text (an event that does not read, a newer schema's, is left
 * out, as the fold never read it either). */
#define TICKET_PAGE 1000
static cs_rc fill_ticket_seqs(cs_sql_t *s, cs_err_t *err)
{
    sql_stmt *page = NULL, *set = NULL;
    cs_buf_t ids;
    int64_t after = 0, n = 0, done = 0;
    cs_buf_init(&ids, (size_t)1 << 30);
    cs_rc rc = cs__sql_prepare(s,
                               "SELECT seq,body FROM events WHERE type=?1 AND seq>?2 "
                               "ORDER BY seq LIMIT ?3",
                               &page, err);
    if (!rc)
        rc = cs__sql_prepare(s, "UPDATE tickets SET created_seq=?2 WHERE id=?1 AND "
                                "created_seq IS NULL",
                             &set, err);
    for (bool more = true; !rc && more;) {
        char num[24];
        size_t rows = 0;
        cs_buf_reset(&ids);
        sql_bind_int(page, 1, (int)CS_EV_TICKET_CREATED);
        sql_bind_int64(page, 2, after);
        sql_bind_int(page, 3, TICKET_PAGE);
        int r = SQL_DONE;
        while (!rc && (r = sql_step(page)) == SQL_ROW) {
            rows++;
            after = sql_column_int64(page, 0);
            json_t *ev = json_loadb((const char *)sql_column_text(page, 1),
                                    (size_t)sql_column_bytes(page, 1), 0, NULL);
            const char *id = json_string_value(json_object_get(json_object_get(ev, "data"),
                                                               "id"));
            snprintf(num, sizeof num, "%lld", (long long)after);
            if (id && (cs_buf_append(&ids, num, strlen(num) + 1) ||
                       cs_buf_append(&ids, id, strlen(id) + 1)))
                rc = cs_errf(err, CS_ERR_NOMEM, "store: read the tickets' first creations: "
                                                "out of memory");
            json_decref(ev);
        }
        if (!rc && r != SQL_DONE)
            rc = cs__sql_fail(s, err, "read the tickets' first creations");
        cs__stmt_done(page);
        more = rows == TICKET_PAGE;
        for (size_t at = 0; !rc && at < ids.len;) {
            int64_t seq = 0;
            cs_parse_i64(next_text(&ids, &at), &seq);
            cs__bind_text(set, 1, next_text(&ids, &at));
            sql_bind_int64(set, 2, seq);
            if (!(rc = cs__sql_exec_count(s, set, err, "record a ticket's first creation",
                                          &done)))
                n += done;
        }
    }
    if (!rc)
        rc = run_once(s, "DROP TABLE tickets_28", "drop the step's table", &done, err);
    if (!rc)
        cs_log(n ? CS_LOG_INFO : CS_LOG_DEBUG, "store: %lld tickets' first creations recorded",
               (long long)n);
    sql_finalize(set);
    sql_finalize(page);
    cs_buf_free(&ids);
    return rc;
}

/* The migrations with a step: what it does (for `consonance schema`), the
 * step, and the table its SQL creates and the step drops: while that table
 * is there, the step has not run (the SQL was applied by hand), and the
 * next writer to open the store runs it. */
static const struct {
    int version;
    const char *what;
    cs_rc (*run)(cs_sql_t *s, cs_err_t *err);
    const char *left;
} steps[] = {
    { 16, "the region key of every stored scan place and destination", backfill_regions,
      "region_backfill" },
    { 17, "the region keys made again, cut between characters", backfill_regions,
      "region_backfill" },
    { 18, "every shipment's status read again from its scans", refold_shipments, "refold_18" },
    { 19, "the parcels stored under several shipment ids merged", merge_stored_twins,
      "merge_19" },
    { 20, "the scans stored twice dropped, deliveries dated ahead of their receipt read again",
      drop_scan_copies, "scans_20" },
    { 26, "the region keys made again: postal codes without spaces or a country prefix, regions "
          "trimmed, Greek and Cyrillic names in one case",
      backfill_regions, "region_backfill" },
    { 28, "each ticket's first ticket.created found in the log", fill_ticket_seqs,
      "tickets_28" },
};

static cs_rc table_exists(cs_sql_t *s, const char *name, bool *yes, cs_err_t *err)
{
    sql_stmt *st = NULL;
    cs_rc rc = cs__sql_prepare(s,
                               s->pg ? "SELECT 1 FROM pg_tables WHERE tablename=?1 AND "
                                       "schemaname=current_schema()"
                                     : "SELECT 1 FROM sqlite_master WHERE type='table' AND "
                                       "name=?1",
                               &st, err);
    if (rc)
        return rc;
    cs__bind_text(st, 1, name);
    int r = sql_step(st);
    if (r == SQL_ROW || r == SQL_DONE)
        *yes = r == SQL_ROW;
    else
        rc = cs__sql_fail(s, err, "look for a migration's table");
    sql_finalize(st);
    return rc;
}

cs_rc cs__sql_resume_steps(cs_sql_t *s, cs_err_t *err)
{
    for (size_t k = 0; k < CS_ARRAY_LEN(steps); k++) {
        bool left = false;
        cs_rc rc = table_exists(s, steps[k].left, &left, err);
        if (rc)
            return rc;
        if (!left)
            continue;
        cs_warn("store: migration %d was applied without its step (%s); running it now",
                steps[k].version, steps[k].what);
        if ((rc = steps[k].run(s, err)))
            return rc;
    }
    return CS_OK;
}

cs_rc cs__sql_after_migration(cs_sql_t *s, int version, cs_err_t *err)
{
    for (size_t k = 0; k < CS_ARRAY_LEN(steps); k++)
        if (steps[k].version == version)
            return steps[k].run(s, err);
    return CS_OK;
}

const char *cs_schema_step(size_t i)
{
    for (size_t k = 0; k < CS_ARRAY_LEN(steps); k++)
        if ((size_t)steps[k].version == i + 1)
            return steps[k].what;
    return NULL;
}
