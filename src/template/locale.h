/*
 * locale.h -- numbers, money and dates for German and English messages.
 *
 *   de: 1.234,50 €     Donnerstag, 26. November 2026     26.11.2026     14:05
 *   en: €1,234.50      Thursday, 26 November 2026        26 Nov 2026    2:05 pm
 *   en-US:             Thursday, November 26, 2026       Nov 26, 2026
 *
 * Dates follow the locale's region: a locale of the United States
 * ("en-US", "en_us") puts the month first; every other English one
 * ("en", "en-GB", "en-AU") the day.
 * Other currencies use their ISO code where no symbol is known ("1.234,50 CHF",
 * "CHF 1,234.50"). Money is given in hundredths (as amounts are stored) and
 * shown with the currency's ISO 4217 decimals: "1.500 JPY", "12,500 KWD". Unknown locales format as English. All functions write a
 * NUL-terminated string into buf (at least 64 bytes is always enough) and
 * return buf. Thread-safe.
 */
#ifndef CS_LOCALE_H
#define CS_LOCALE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/cs_tz.h"

#define CS_FMT_MAX 96

/* Is this a locale with its own texts? ("de", "de-AT", "en", "en-GB" ...) */
const char *cs_locale_lang(const char *locale); /* "de" or "en" */
/* Is the locale German or English ("de", "en-GB"), not one told in
 * English for want of its own ("fr")? */
bool cs_locale_known(const char *locale);

/* The locale to format for in language lang ("de" or "en"): for English,
 * `locale` (a customer's "en-US", borrowed) when it is English too, so its
 * region decides the order of a date; else lang ("de" for German, whose
 * dates have one order). */
const char *cs_locale_for(const char *lang, const char *locale);

const char *cs_fmt_number(int64_t minor, int decimals, const char *locale, char *buf,
                          size_t size);
const char *cs_fmt_money(int64_t minor, const char *currency, const char *locale, char *buf,
                         size_t size);

/* The name to greet a customer by ("Hallo Anna,"), from their one name
 * field: its first given name, whole. Titles and honorifics are skipped
 * ("Dr. Anna Müller", "Frau Prof. Anna Müller": Anna); "Müller, Anna" is
 * read as surname first (a suffix after the comma, "John Smith, Jr.", is
 * not); nothing ("") for a title and one more word ("Frau Müller",
 * "Dr. Müller": a surname) or for an initial ("A. Müller"). Names in other
 * scripts keep their first word. Writes buf (NUL-terminated, cut between
 * characters) and returns it. */
const char *cs_first_name(const char *name, char *buf, size_t size);

typedef enum cs_date_style {
    CS_DATE_LONG,    /* Donnerstag, 26. November 2026 / Thursday, 26 November 2026
                        (en-US: Thursday, November 26, 2026) */
    CS_DATE_MEDIUM,  /* 26. Nov. 2026 / 26 Nov 2026 (en-US: Nov 26, 2026) */
    CS_DATE_SHORT,   /* 26.11.2026 / 26/11/2026 (en-US: 11/26/2026) */
    CS_DATE_WEEKDAY, /* Donnerstag / Thursday */
    CS_DATE_DAY,     /* Donnerstag, 26. November / Thursday, 26 November
                        (en-US: Thursday, November 26) */
    CS_DATE_TIME     /* 14:05 / 2:05 pm */
} cs_date_style_t;

const char *cs_fmt_date(cs_ms_t t, const cs_tz_t *tz, cs_date_style_t style, const char *locale,
                        char *buf, size_t size);

/* A delivery window in words, relative to now: "heute", "morgen",
 * "heute oder morgen", "Donnerstag oder Freitag", "zwischen morgen und
 * Mittwoch", "am Dienstag, 12. März" (and English); a window that began
 * before today is told from today. from and to name days in day_tz (the
 * shop's: promised days are its days); they are told as those dates to a
 * reader in tz, whose today it is (the 12th is the 12th in New York too);
 * a reader already a day ahead of the shop's today is told a window that
 * ends on it from that day ("heute", not yesterday's weekday). */
const char *cs_fmt_window(const cs_tz_t *day_tz, const cs_tz_t *tz, cs_ms_t now, cs_ms_t from,
                          cs_ms_t to, const char *locale, char *out, size_t size);
/* The same words after a label ("Expected delivery: Tuesday, 12 March"):
 * without the "am "/"on " a single far day starts with. */
const char *cs_window_bare(const char *words);
/* Until when something that ends at `end` holds, as a day in tz
 * (CS_DATE_DAY): "valid until Monday" reads as all of Monday, so the last
 * day it holds all day -- a code that ends at 10:00 on a Tuesday is valid
 * until Monday, one that ends at midnight until the day before it. */
const char *cs_fmt_valid_until(cs_ms_t end, const cs_tz_t *tz, const char *locale, char *buf,
                               size_t size);

#endif /* CS_LOCALE_H */
