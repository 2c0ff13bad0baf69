/*
 * calendar.h -- the days parcels move on: working days (Monday to
 * Saturday, when carriers deliver) and ship days (Monday to Friday, when
 * shops hand over), less a country's public holidays and the shop's own
 * closed days. The promise model counts time in both (promise.h).
 *
 * Days are day numbers (days since 1970-01-01, cs_days_from_civil) of the
 * shop's local dates. Indexes count open days: wd(z), the working days up
 * to and including z (a closed day shares the index of the open day before
 * it, the next open day is one more); sd(z), the ship days before z (a
 * closed day has the index of the next open one). Holidays are applied
 * from 2000 to 2099; outside, weekdays alone count.
 *
 * A NULL calendar is weekdays alone (no holidays): every function accepts
 * it, and then costs a few arithmetic operations. A calendar is immutable
 * once made: any number of threads may read it.
 *
 * Public holidays known (national ones; regional ones, a German state's
 * Epiphany, go in closed_days):
 *   DE  New Year, Good Friday, Easter Monday, 1 May, Ascension, Whit
 *       Monday, German Unity Day (3 Oct), Christmas Day, Boxing Day
 *   AT  New Year, Epiphany, Easter Monday, 1 May, Ascension, Whit Monday,
 *       Corpus Christi, Assumption, National Day (26 Oct), All Saints,
 *       Immaculate Conception, Christmas Day, St Stephen's Day
 *   CH  New Year, Good Friday, Easter Monday, Ascension, Whit Monday,
 *       National Day (1 Aug), Christmas Day, St Stephen's Day
 *   BR  New Year, Carnival (Monday, Tuesday), Good Friday, Tiradentes
 *       (21 Apr), Labour Day, Corpus Christi, Independence (7 Sep), Our
 *       Lady Aparecida (12 Oct), All Souls, Republic (15 Nov), Black
 *       Consciousness (20 Nov, from 2024), Christmas Day
 */
#ifndef CS_CALENDAR_H
#define CS_CALENDAR_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/cs.h"

typedef struct cs_calendar cs_calendar_t;

/* The countries whose holidays are known, for messages: "DE, AT, CH, BR". */
#define CS_CALENDAR_COUNTRIES "DE, AT, CH, BR"

/* A calendar closed on the public holidays of `country` (an ISO 3166-1
 * alpha-2 code of CS_CALENDAR_COUNTRIES in any case; NULL, "" or "none":
 * no public holidays) and on `closed_days`: dates separated by commas or
 * spaces, "MM-DD" for every year or "YYYY-MM-DD" for one (NULL or "":
 * none). *out is NULL when there is nothing to close (weekdays alone) --
 * a valid calendar. Errors name the value and what was expected
 * (CS_ERR_INVALID, field "holidays" or "closed_days"). */
cs_rc cs_calendar_new(const char *country, const char *closed_days, cs_calendar_t **out,
                      cs_err_t *err);
void cs_calendar_free(cs_calendar_t **c);

/* The country whose holidays apply in an IANA time zone, when it is one
 * country's and known ("Europe/Berlin" -> "DE"); NULL otherwise. */
const char *cs_calendar_country_of_zone(const char *zone);

/* Whether day z is a working day (not a Sunday, not closed), a ship day
 * (Monday..Friday, not closed). */
bool cs_calendar_open(const cs_calendar_t *c, int64_t z);
bool cs_calendar_ship_open(const cs_calendar_t *c, int64_t z);

/* Working days up to and including z; the working day with index k. */
int64_t cs_calendar_wd(const cs_calendar_t *c, int64_t z);
int64_t cs_calendar_wd_day(const cs_calendar_t *c, int64_t k);

/* Ship days before z (z = -3, Monday 1969-12-29, is 0); the ship day with
 * index k. */
int64_t cs_calendar_sd(const cs_calendar_t *c, int64_t z);
int64_t cs_calendar_sd_day(const cs_calendar_t *c, int64_t k);

/* How many days the calendar closes besides Sundays (tests, metrics). */
size_t cs_calendar_closed_count(const cs_calendar_t *c);

#endif
