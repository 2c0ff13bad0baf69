/*
 * carriers.h -- carrier scans to canonical statuses, by data: one
 * tab-separated table per carrier in a folder (etc/carriers, format in its
 * README.md and docs/tracking.md). A line maps a raw code (exact, or a
 * prefix ending in '*'), words of the carrier's text ("text:..."), or both
 * ("CODE text:...") to a status and an optional incident reason. Header
 * lines declare the carrier's display name ("@name") and the AfterShip
 * slugs that mean it ("@slug").
 *
 * Lookup for (carrier, code, text): the carrier's code rules (plain and
 * with text), then its text rules, then the aggregator table's codes
 * (AfterShip-style subtags, then the subtag's tag: Pending_001 -> Pending),
 * each in file order; the first match wins. A code that is already an
 * aggregator's (CS_CODE_AGGREGATOR) is looked up in the aggregator table
 * first. Nothing matching: in transit, unmapped (kept, shown with the
 * carrier's own text, counted).
 *
 * Ownership: a loaded table set is immutable and may be shared by threads;
 * the counters are atomic.
 */
#ifndef CS_TRACKING_CARRIERS_H
#define CS_TRACKING_CARRIERS_H

#include <stdbool.h>
#include <stdint.h>

#include "../lib/cs.h"
#include "../model/event.h"

#define CS_CARRIERS_MAX 64
#define CS_CARRIER_NAME_MAX 64  /* "@name" values, bytes with the NUL */
#define CS_CARRIER_SLUGS_MAX 16 /* "@slug" values per table */

/* The event source of scans that came through the AfterShip webhook: their
 * carrier_code is an AfterShip subtag or tag, not the carrier's code. */
#define CS_SCAN_SOURCE_AFTERSHIP "aftership-webhook"

typedef struct cs_carriers cs_carriers_t;

/* A character a carrier id may hold: a-z, 0-9, '_' and '-' (ids name
 * table files; producers' upper case is lowered before this). */
bool cs_carrier_id_char(char ch);

/* The shipped tables (etc/carriers), built into the program. */
typedef struct cs_carrier_builtin {
    const char *carrier;
    const char *text;
    size_t len;
} cs_carrier_builtin_t;
extern const cs_carrier_builtin_t cs_carriers_builtin[];
/* The built-in tables. */
cs_rc cs_carriers_load_builtin(cs_carriers_t **out, cs_err_t *err);

/* Load every *.tsv in dir; errors name the file and line. */
cs_rc cs_carriers_load_dir(const char *dir, cs_carriers_t **out, cs_err_t *err);
/* Parse one table's text (for tests and the loader). */
cs_rc cs_carriers_add(cs_carriers_t *c, const char *carrier, const char *text, size_t len,
                      const char *file, cs_err_t *err);
cs_carriers_t *cs_carriers_new(void);
void cs_carriers_free(cs_carriers_t *c);

typedef struct cs_scan_mapping {
    cs_track_status_t status;
    cs_incident_t reason;
    bool unmapped;
} cs_scan_mapping_t;

/* Whose vocabulary a scan's code is in. */
typedef enum cs_code_kind {
    CS_CODE_CARRIER = 0,   /* the carrier's own code */
    CS_CODE_AGGREGATOR = 1 /* an aggregator's normalized subtag or tag */
} cs_code_kind_t;

/* Map a raw code and/or text (either may be NULL; all borrowed). */
void cs_carriers_map_code(cs_carriers_t *c, const char *carrier, const char *code,
                          cs_code_kind_t kind, const char *text, cs_scan_mapping_t *out);
/* The same for a carrier's own code. */
void cs_carriers_map(cs_carriers_t *c, const char *carrier, const char *code, const char *text,
                     cs_scan_mapping_t *out);

/* Fill in status, reason and unmapped of a tracking.event that came with a
 * raw code or text and no status: the event's JSON and its parsed scan are
 * updated (an `unmapped` the producer sent is replaced by the tables'
 * answer) and its stored text is rebuilt. The new JSON members come from
 * jansson's allocator on the calling thread (a request arena, when one is
 * in use). A scan whose event source is
 * CS_SCAN_SOURCE_AFTERSHIP is mapped as an aggregator code. A scan with
 * its status given keeps it; its `unmapped: true` is kept only when it
 * has a raw code or text the tables do not know, and is dropped (the text
 * rebuilt) otherwise. Other events are left alone. */
cs_rc cs_carriers_normalize(cs_carriers_t *c, cs_event_t *ev, cs_err_t *err);

/* Count one unmapped scan of carrier (carriers without a table as
 * "other"). The engine counts a scan once it is stored as new, so a webhook
 * delivered again does not count its scans again. */
void cs_carriers_count_unmapped(cs_carriers_t *c, const char *carrier);

/* Unmapped scans so far: calls fn(carrier, count) for each carrier with a
 * table (except the aggregator's, whose codes are counted under the scan's
 * carrier) and once for "other" (carriers without a table). */
void cs_carriers_unmapped(cs_carriers_t *c, void (*fn)(const char *carrier, uint64_t n, void *ud),
                          void *ud);
size_t cs_carriers_count(const cs_carriers_t *c);

/* The carrier id an AfterShip slug stands for, into out (size bytes): the
 * table that declares the slug ("@slug") in c, else in the shipped tables,
 * else the slug with '-' turned into '_'. c may be NULL. */
void cs_carriers_of_slug(const cs_carriers_t *c, const char *slug, char *out, size_t size);

/* A carrier's display name ("DHL", "DPD"): its table's "@name" in c, else
 * the shipped table's, else the id itself; "the carrier" for NULL. The
 * string is borrowed from c, the shipped tables or the argument. */
const char *cs_carriers_display_name(const cs_carriers_t *c, const char *carrier);

#endif /* CS_TRACKING_CARRIERS_H */
