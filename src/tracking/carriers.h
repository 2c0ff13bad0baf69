/*
 * carriers.h -- carrier scans to canonical statuses, by data: one
 * tab-separated table per carrier in a folder (etc/carriers, format in its
 * README.md and docs/tracking.md). A line maps a raw code (exact, or a
 * prefix ending in '*') or words of the carrier's text ("text:...") to a
 * status and an optional incident reason.
 *
 * Lookup for (carrier, code, text): the carrier's codes, then its texts,
 * then the aggregator table's codes (AfterShip-style tags and subtags),
 * each in file order; the first match wins. Nothing matching: in transit,
 * unmapped (kept, shown with the carrier's own text, counted).
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

typedef struct cs_carriers cs_carriers_t;

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

/* Map a raw code and/or text (either may be NULL). Counts unmapped scans
 * per carrier. */
void cs_carriers_map(cs_carriers_t *c, const char *carrier, const char *code, const char *text,
                     cs_scan_mapping_t *out);

/* Fill in status, reason and unmapped of a tracking.event that came with a
 * raw code or text and no status: the event's JSON and its parsed scan are
 * updated and its stored text is rebuilt. Other events are left alone. */
cs_rc cs_carriers_normalize(cs_carriers_t *c, cs_event_t *ev, cs_err_t *err);

/* Unmapped scans so far: calls fn(carrier, count) for each carrier seen. */
void cs_carriers_unmapped(cs_carriers_t *c, void (*fn)(const char *carrier, uint64_t n, void *ud),
                          void *ud);
size_t cs_carriers_count(const cs_carriers_t *c);

/* "DHL", "DPD", "Hermes" ... for a carrier id; the id itself when unknown,
 * "the carrier" for NULL. */
const char *cs_carrier_display_name(const char *carrier);

#endif /* CS_TRACKING_CARRIERS_H */
