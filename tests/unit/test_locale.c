/* test_locale.c -- numbers, money and dates in German and English. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "template/locale.h"

static void test_numbers_and_money(void **state)
{
    (void)state;
    char b[CS_FMT_MAX];
    assert_string_equal(cs_fmt_number(123450, 2, "de", b, sizeof b), "1.234,50");
    assert_string_equal(cs_fmt_number(123450, 2, "en", b, sizeof b), "1,234.50");
    assert_string_equal(cs_fmt_number(-5, 2, "de", b, sizeof b), "-0,05");
    assert_string_equal(cs_fmt_number(1234567, 0, "en-GB", b, sizeof b), "1,234,567");
    assert_string_equal(cs_fmt_number(999, 0, "de", b, sizeof b), "999");
    assert_string_equal(cs_fmt_money(123450, "EUR", "de", b, sizeof b), "1.234,50\u00a0€");
    assert_string_equal(cs_fmt_money(123450, "EUR", "en", b, sizeof b), "€1,234.50");
    assert_string_equal(cs_fmt_money(-990, "EUR", "en", b, sizeof b), "-€9.90");
    assert_string_equal(cs_fmt_money(123450, "CHF", "de-CH", b, sizeof b), "1.234,50\u00a0CHF");
    assert_string_equal(cs_fmt_money(123450, "CHF", "en", b, sizeof b), "CHF\u00a01,234.50");
    /* currencies without minor units show none; KWD has three decimals */
    assert_string_equal(cs_fmt_money(150000, "JPY", "de", b, sizeof b), "1.500\u00a0JPY");
    assert_string_equal(cs_fmt_money(150000, "JPY", "en", b, sizeof b), "JPY\u00a01,500");
    assert_string_equal(cs_fmt_money(129900000, "KRW", "en", b, sizeof b), "KRW\u00a01,299,000");
    assert_string_equal(cs_fmt_money(1250, "KWD", "de", b, sizeof b), "12,500\u00a0KWD");
    assert_string_equal(cs_fmt_money(1250, "KWD", "en", b, sizeof b), "KWD\u00a012.500");
    /* a yen amount sent with hundredths is shown as it came */
    assert_string_equal(cs_fmt_money(150050, "JPY", "en", b, sizeof b), "JPY\u00a01,500.50");
    assert_string_equal(cs_locale_lang("de-AT"), "de");
    assert_string_equal(cs_locale_lang("fr"), "en");
    assert_string_equal(cs_locale_lang(NULL), "en");
    assert_true(cs_locale_known("de_DE") && cs_locale_known("EN") && cs_locale_known("en-GB"));
    assert_false(cs_locale_known("fr") || cs_locale_known("eng") || cs_locale_known("") ||
                 cs_locale_known(NULL));
}

static void test_dates(void **state)
{
    (void)state;
    char b[CS_FMT_MAX];
    cs_ms_t t;
    assert_true(cs_time_parse("2026-11-26T13:05:00Z", &t));
    const cs_tz_t *berlin = cs_tz_get_or_utc("Europe/Berlin");
    assert_string_equal(cs_fmt_date(t, berlin, CS_DATE_LONG, "de", b, sizeof b),
                        "Donnerstag, 26. November 2026");
    assert_string_equal(cs_fmt_date(t, berlin, CS_DATE_LONG, "en", b, sizeof b),
                        "Thursday, 26 November 2026");
    assert_string_equal(cs_fmt_date(t, berlin, CS_DATE_MEDIUM, "de", b, sizeof b),
                        "26. Nov. 2026");
    assert_string_equal(cs_fmt_date(t, berlin, CS_DATE_SHORT, "de", b, sizeof b), "26.11.2026");
    assert_string_equal(cs_fmt_date(t, berlin, CS_DATE_DAY, "en", b, sizeof b),
                        "Thursday, 26 November");
    assert_string_equal(cs_fmt_date(t, berlin, CS_DATE_TIME, "de", b, sizeof b), "14:05");
    assert_string_equal(cs_fmt_date(t, berlin, CS_DATE_TIME, "en", b, sizeof b), "2:05 pm");
    /* late evening in Berlin is already the next day in Tokyo */
    assert_true(cs_time_parse("2026-03-01T22:30:00+01:00", &t));
    assert_string_equal(cs_fmt_date(t, cs_tz_get_or_utc("Asia/Tokyo"), CS_DATE_WEEKDAY, "de", b,
                                    sizeof b),
                        "Montag");
    assert_string_equal(cs_fmt_date(t, NULL, CS_DATE_TIME, "en", b, sizeof b), "9:30 pm");
}

/* A date reads in the order of the locale's region: month first in the
 * United States ("Thursday, November 26, 2026"), day first elsewhere in
 * English; US customers got the British "Thursday, 26 November 2026". */
static void test_dates_by_region(void **state)
{
    (void)state;
    char b[2 * CS_FMT_MAX + 40];
    cs_ms_t t;
    assert_true(cs_time_parse("2026-11-26T13:05:00Z", &t));
    const cs_tz_t *berlin = cs_tz_get_or_utc("Europe/Berlin");
    assert_string_equal(cs_fmt_date(t, berlin, CS_DATE_LONG, "en-US", b, sizeof b),
                        "Thursday, November 26, 2026");
    assert_string_equal(cs_fmt_date(t, berlin, CS_DATE_LONG, "en_us", b, sizeof b),
                        "Thursday, November 26, 2026");
    assert_string_equal(cs_fmt_date(t, berlin, CS_DATE_MEDIUM, "en-US", b, sizeof b),
                        "Nov 26, 2026");
    assert_string_equal(cs_fmt_date(t, berlin, CS_DATE_SHORT, "en-US", b, sizeof b),
                        "11/26/2026");
    assert_string_equal(cs_fmt_date(t, berlin, CS_DATE_DAY, "en-US", b, sizeof b),
                        "Thursday, November 26");
    assert_string_equal(cs_fmt_date(t, berlin, CS_DATE_WEEKDAY, "en-US", b, sizeof b),
                        "Thursday");
    assert_string_equal(cs_fmt_date(t, berlin, CS_DATE_TIME, "en-US", b, sizeof b), "2:05 pm");
    /* the rest of the English-speaking world, and German, day first */
    assert_string_equal(cs_fmt_date(t, berlin, CS_DATE_LONG, "en-GB", b, sizeof b),
                        "Thursday, 26 November 2026");
    assert_string_equal(cs_fmt_date(t, berlin, CS_DATE_DAY, "en-AU", b, sizeof b),
                        "Thursday, 26 November");
    assert_string_equal(cs_fmt_date(t, berlin, CS_DATE_SHORT, "en-USX", b, sizeof b),
                        "26/11/2026");
    assert_string_equal(cs_fmt_date(t, berlin, CS_DATE_DAY, "de-DE", b, sizeof b),
                        "Donnerstag, 26. November");
    /* a far window too */
    int64_t d = cs_tz_day(berlin, t);
    assert_string_equal(cs_fmt_window(berlin, berlin, t, cs_tz_day_start(berlin, d + 10),
                                      cs_tz_day_start(berlin, d + 10), "en-US", b, sizeof b),
                        "on Sunday, December 6");
    assert_string_equal(cs_fmt_window(berlin, berlin, t, cs_tz_day_start(berlin, d + 10),
                                      cs_tz_day_start(berlin, d + 10), "en-GB", b, sizeof b),
                        "on Sunday, 6 December");
    /* the locale to format for in a language: the customer's, when theirs */
    assert_string_equal(cs_locale_for("en", "en-US"), "en-US");
    assert_string_equal(cs_locale_for("de", "en-US"), "de");
    assert_string_equal(cs_locale_for("de", "de-AT"), "de");
    assert_string_equal(cs_locale_for("en", "de-DE"), "en");
    assert_string_equal(cs_locale_for("en", NULL), "en");
}

static void test_window_words(void **state)
{
    (void)state;
    char b[2 * CS_FMT_MAX + 40];
    const cs_tz_t *berlin = cs_tz_get_or_utc("Europe/Berlin");
    cs_ms_t now; /* Thursday, 26 November 2026, afternoon in Berlin */
    assert_true(cs_time_parse("2026-11-26T13:05:00Z", &now));
    int64_t d = cs_tz_day(berlin, now);
#define DAY(k) cs_tz_day_start(berlin, d + (k))
    assert_string_equal(cs_fmt_window(berlin, berlin, now, DAY(0), DAY(0), "de", b, sizeof b), "heute");
    assert_string_equal(cs_fmt_window(berlin, berlin, now, DAY(1), DAY(1), "en", b, sizeof b),
                        "tomorrow");
    assert_string_equal(cs_fmt_window(berlin, berlin, now, DAY(0), DAY(1), "de", b, sizeof b),
                        "heute oder morgen");
    assert_string_equal(cs_fmt_window(berlin, berlin, now, DAY(0), DAY(2), "en", b, sizeof b),
                        "between today and Saturday");
    assert_string_equal(cs_fmt_window(berlin, berlin, now, DAY(1), DAY(4), "de", b, sizeof b),
                        "zwischen morgen und Montag");
    assert_string_equal(cs_fmt_window(berlin, berlin, now, DAY(2), DAY(3), "en", b, sizeof b),
                        "Saturday or Sunday");
    assert_string_equal(cs_fmt_window(berlin, berlin, now, DAY(2), DAY(2), "de", b, sizeof b), "Samstag");
    /* begun before today: what is left of it */
    assert_string_equal(cs_fmt_window(berlin, berlin, now, DAY(-2), DAY(1), "en", b, sizeof b),
                        "today or tomorrow");
    assert_string_equal(cs_fmt_window(berlin, berlin, now, DAY(-2), DAY(0), "de", b, sizeof b), "heute");
    /* far off: dates, not weekdays */
    assert_string_equal(cs_fmt_window(berlin, berlin, now, DAY(10), DAY(10), "de", b, sizeof b),
                        "am Sonntag, 6. Dezember");
    assert_string_equal(cs_window_bare(b), "Sonntag, 6. Dezember"); /* after a label */
    assert_string_equal(cs_window_bare(cs_fmt_window(berlin, berlin, now, DAY(10), DAY(10), "en", b,
                                                     sizeof b)),
                        "Sunday, 6 December");
    assert_string_equal(cs_window_bare("Saturday or Sunday"), "Saturday or Sunday");
    /* the shop's days read in New York: the same dates (a Berlin midnight
     * is the evening before there) */
    const cs_tz_t *ny = cs_tz_get_or_utc("America/New_York");
    assert_string_equal(cs_fmt_window(berlin, ny, now, DAY(10), DAY(10), "de", b, sizeof b),
                        "am Sonntag, 6. Dezember");
    /* a reader in Tokyo, already on Friday while Berlin is on Thursday
     * evening: a window ending on Berlin's today is today, not "Thursday" */
    const cs_tz_t *tokyo = cs_tz_get_or_utc("Asia/Tokyo");
    cs_ms_t late; /* Thursday 22:00 in Berlin, Friday 06:00 in Tokyo */
    assert_true(cs_time_parse("2026-11-26T21:00:00Z", &late));
    assert_string_equal(cs_fmt_window(berlin, tokyo, late, DAY(0), DAY(0), "de", b, sizeof b),
                        "heute");
    assert_string_equal(cs_fmt_window(berlin, tokyo, late, DAY(-1), DAY(0), "en", b, sizeof b),
                        "today");
    /* (a window on into the reader's today is told from it, as ever) */
    assert_string_equal(cs_fmt_window(berlin, tokyo, late, DAY(0), DAY(1), "en", b, sizeof b),
                        "today");
    assert_string_equal(cs_fmt_window(berlin, tokyo, late, DAY(1), DAY(2), "de", b, sizeof b),
                        "heute oder morgen");
#undef DAY
}

/* The name a greeting uses ("Hallo Anna,"): the given name, not a title
 * ("Hallo Dr.,") nor the surname of "Müller, Anna" ("Hallo Müller,,"). */
static void test_first_name(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        { "Anna Müller", "Anna" },
        { "Anna", "Anna" },
        { "Dr. Anna Müller", "Anna" },
        { "Prof. Dr. Anna Müller", "Anna" },
        { "Frau Dr. med. Anna Müller", "Anna" },
        { "Dr.-Ing. Jörg Weber", "Jörg" },
        { "Mr John Smith", "John" },
        { "mrs. jane doe", "jane" },
        { "Müller, Anna", "Anna" },
        { "Müller,Anna", "Anna" },
        { "Müller, Dr. Anna Lena", "Anna" },
        { "van der Berg, Anna", "Anna" },
        { "John Smith, Jr.", "John" },
        { "Anna Müller, MBA", "Anna" },
        { "Anna Müller,", "Anna" },
        { "Frau Müller", "" },
        { "Dr. Müller", "" },
        { "Herr Dr. Schmidt", "" },
        { "Familie Müller", "" },
        { "Müller, Dr.", "" },
        { "A. Müller", "" },
        { "Ä. Müller", "" },
        { "J Smith", "" },
        { "  Anna   Müller ", "Anna" },
        { "Anna-Lena Schmidt", "Anna-Lena" },
        { "Drago Petrović", "Drago" },     /* a name that starts like a title */
        { "Mariana Ferreira", "Mariana" }, /* and one that starts like "ma" */
        { "Иван Петров", "Иван" },
        { "山田 太郎", "山田" },
        { "王小明", "王小明" },
        { "", "" },
    };
    char b[64];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cs_first_name(cases[i][0], b, sizeof b);
        if (strcmp(b, cases[i][1]) != 0)
            fail_msg("'%s': expected '%s', got '%s'", cases[i][0], cases[i][1], b);
    }
    assert_string_equal(cs_first_name(NULL, b, sizeof b), "");
    /* cut between characters when it does not fit */
    assert_string_equal(cs_first_name("Jürgen Müller", b, 3), "J");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers_and_money),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_dates_by_region),
        cmocka_unit_test(test_window_words),
        cmocka_unit_test(test_first_name),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    cs_tz_cache_clear();
    return rc;
}
