/*
 * cs_time.h -- time as int64 milliseconds since the Unix epoch (UTC), RFC 3339
 * parsing and formatting, and the injectable clock: nothing in the engine
 * calls time() directly, so tests move time instead of sleeping.
 *
 * Thread-safety: all functions are thread-safe. A cs_clock_t is shared
 * read-only; a manual clock's value is atomic.
 */
#ifndef CS_TIME_H
#define CS_TIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef int64_t cs_ms_t; /* milliseconds since 1970-01-01T00:00:00Z */

#define CS_MS_PER_DAY (86400000LL)

/* Parse an RFC 3339 timestamp ("2026-03-01T12:00:00Z", "...+01:00", fraction
 * optional) or a plain date "2026-03-01" (taken as midnight UTC) from the whole
 * string. Returns false on anything else (including impossible dates). */
bool cs_time_parse(const char *s, cs_ms_t *out);
/* Parse a plain calendar date "YYYY-MM-DD" only. */
bool cs_date_parse(const char *s, cs_ms_t *out);
/* Whether s is what cs_time_parse takes but for its year, one before 1970,
 * which it does not take ("1969-12-31T23:00:00Z", "1900-01-01"): a time
 * too early, to be told so, not one malformed. */
bool cs_time_before_1970(const char *s);
/* The slip a sender most likely made when s is not the RFC 3339 time with
 * a zone that was wanted, as text to add to the refusal (a static string,
 * starting with a blank): a date alone (" (a date alone: ...)"), or a
 * local time written without its zone (" (it has no zone: ...)"); ""
 * when it is neither. */
const char *cs_time_slip(const char *s);
/* Format as "2026-03-01T12:00:00.000Z" into buf (at least 32 bytes). */
const char *cs_time_format(cs_ms_t t, char *buf, size_t size);

typedef struct cs_clock cs_clock_t;
struct cs_clock {
    cs_ms_t (*now)(const cs_clock_t *self);
    void *state;
};

/* The real wall clock (a static, never freed). */
const cs_clock_t *cs_clock_system(void);
cs_ms_t cs_clock_now(const cs_clock_t *c);

/* A clock for tests: reads the value set by cs_clock_manual_set. */
typedef struct cs_clock_manual {
    cs_clock_t clock;
    _Atomic int64_t now_ms;
} cs_clock_manual_t;
void cs_clock_manual_init(cs_clock_manual_t *m, cs_ms_t start);
void cs_clock_manual_set(cs_clock_manual_t *m, cs_ms_t t);
void cs_clock_manual_advance(cs_clock_manual_t *m, cs_ms_t delta);

/* a / b rounded towards minus infinity (b > 0): the day of a time before
 * 1970, the week of a day. */
static inline int64_t cs_floordiv(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* Proleptic Gregorian calendar <-> days since 1970-01-01 (Hinnant). */
int64_t cs_days_from_civil(int64_t y, unsigned m, unsigned d);
void cs_civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d);

/* "30s", "15m", "2h", "3d", "1w", or combinations like "1d12h" -> ms
 * (at most ten years). */
bool cs_duration_parse(const char *s, cs_ms_t *out);

/* Monotonic nanoseconds, for measuring durations only. */
uint64_t cs_mono_ns(void);

/* *ts = the real-time clock plus ms: a deadline for pthread_cond_timedwait
 * (whose condition variables use that clock by default). */
struct timespec;
void cs_deadline_in(struct timespec *ts, int64_t ms);

#endif /* CS_TIME_H */
