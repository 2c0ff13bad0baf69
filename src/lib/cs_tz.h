/*
 * cs_tz.h -- IANA time zones from the system's compiled tzdata (TZif files
 * under /usr/share/zoneinfo, Debian's tzdata package): UTC offsets at an
 * instant and conversion between instants and local wall-clock time, without
 * touching the process's TZ or localtime (thread-safe).
 *
 * Zones are loaded once and cached for the life of the process; the pointers
 * returned stay valid until cs_tz_cache_clear (tests and shutdown only).
 * A lookup is one hash probe under a lock, also for a name that is no zone
 * (up to 1,024 of them are remembered as such), so the intake can check
 * every customer's zone (cs_event_check_received).
 * Beyond the last transition in the file (2037 in Debian's "fat" files) the
 * last offset continues.
 */
#ifndef CS_TZ_H
#define CS_TZ_H

#include "cs.h"
#include "cs_time.h"

typedef struct cs_tz cs_tz_t;

typedef struct cs_local {
    int year, month, day;    /* 1-based month and day */
    int hour, min, sec;
    int wday;                /* 0 = Sunday .. 6 = Saturday */
} cs_local_t;

/* Find a zone by IANA name ("Europe/Berlin"; "UTC" always works).
 * CS_ERR_NOTFOUND for an unknown or malformed name. */
cs_rc cs_tz_get(const char *name, const cs_tz_t **out, cs_err_t *err);
/* The zone, or UTC when name is NULL, empty or unknown. */
const cs_tz_t *cs_tz_get_or_utc(const char *name);
/* The zone, or `fallback` when name is NULL, empty or not one known here
 * (a customer's "Europe/Berln" reads the shop's zone, not UTC). */
const cs_tz_t *cs_tz_get_or(const char *name, const cs_tz_t *fallback);
const char *cs_tz_name(const cs_tz_t *tz);

/* Seconds east of UTC in force at instant t. */
int32_t cs_tz_offset(const cs_tz_t *tz, cs_ms_t t);
void cs_tz_to_local(const cs_tz_t *tz, cs_ms_t t, cs_local_t *out);
/* The instant of a local wall-clock time. In a gap (spring forward) the
 * time is moved forward by the gap; when ambiguous (fall back) the earlier
 * instant is taken. wday is ignored. */
cs_ms_t cs_tz_from_local(const cs_tz_t *tz, const cs_local_t *l);
/* The same, but a wall time in a gap is the instant the gap ends (02:30 on
 * the night clocks jump from 02:00 to 03:00 is 03:00): the first instant
 * the clock reads l or later, for a time something waits for. */
cs_ms_t cs_tz_from_local_on(const cs_tz_t *tz, const cs_local_t *l);

/* The local date of t as days since 1970-01-01, and as "YYYY-MM-DD"
 * (out holds at least 11 bytes). */
int64_t cs_tz_day(const cs_tz_t *tz, cs_ms_t t);
void cs_tz_ymd(const cs_tz_t *tz, cs_ms_t t, char *out, size_t size);
/* The instant local day `day` (days since 1970-01-01) begins. */
cs_ms_t cs_tz_day_start(const cs_tz_t *tz, int64_t day);
/* The day a date-or-time names, as cs_tz_day: a time at exactly midnight
 * UTC is a date (a plain "2026-12-04" is kept as that instant) and names
 * that calendar day wherever tz is; any other time names its local day in
 * tz. Promised delivery days are read so: "2026-12-04" is the 4th in
 * São Paulo and in Berlin alike. */
int64_t cs_tz_date_day(const cs_tz_t *tz, cs_ms_t t);

/* Free every cached zone (tests, shutdown). */
void cs_tz_cache_clear(void);

#endif /* CS_TZ_H */
