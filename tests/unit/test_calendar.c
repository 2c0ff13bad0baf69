/* test_calendar.c -- working days and ship days less holidays: Easter's
 * holidays fall where they should, the indexes skip closed days and their
 * inverses find them, the tables agree with a day-by-day count and join
 * the plain arithmetic at both ends, and bad settings are named. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "lib/cs_time.h"
#include "tracking/calendar.h"

static int64_t day(int y, unsigned m, unsigned d)
{
    return cs_days_from_civil(y, m, d);
}

static cs_calendar_t *make(const char *country, const char *closed)
{
    cs_calendar_t *c = NULL;
    cs_err_t err;
    cs_rc rc = cs_calendar_new(country, closed, &c, &err);
    if (rc)
        fail_msg("%s", err.msg);
    return c;
}

static void test_german_holidays(void **state)
{
    (void)state;
    cs_calendar_t *c = make("de", NULL);
    assert_non_null(c);
    /* Easter 2026 is 5 April: Good Friday 3 April, Easter Monday 6 April,
     * Ascension 14 May, Whit Monday 25 May */
    assert_false(cs_calendar_open(c, day(2026, 4, 3)));
    assert_false(cs_calendar_open(c, day(2026, 4, 6)));
    assert_false(cs_calendar_open(c, day(2026, 5, 14)));
    assert_false(cs_calendar_open(c, day(2026, 5, 25)));
    assert_true(cs_calendar_open(c, day(2026, 4, 4))); /* Easter Saturday: carriers deliver */
    assert_false(cs_calendar_ship_open(c, day(2026, 4, 4)));
    assert_false(cs_calendar_open(c, day(2026, 12, 25)));
    assert_false(cs_calendar_open(c, day(2026, 12, 26))); /* a Saturday, closed */
    assert_false(cs_calendar_open(c, day(2026, 10, 3)));
    assert_true(cs_calendar_open(c, day(2026, 12, 24)));
    /* 2027: Easter 28 March */
    assert_false(cs_calendar_open(c, day(2027, 3, 26)));
    assert_false(cs_calendar_open(c, day(2027, 3, 29)));
    /* Christmas week 2026: Wed 23 and Thu 24 are working days 1 apart,
     * then Mon 28 (Fri 25, Sat 26 closed, Sun 27) */
    assert_int_equal(cs_calendar_wd(c, day(2026, 12, 24)) - cs_calendar_wd(c, day(2026, 12, 23)),
                     1);
    assert_int_equal(cs_calendar_wd(c, day(2026, 12, 28)) - cs_calendar_wd(c, day(2026, 12, 24)),
                     1);
    assert_int_equal(cs_calendar_wd_day(c, cs_calendar_wd(c, day(2026, 12, 24)) + 1),
                     day(2026, 12, 28));
    /* a closed day shares the index of the open day before it */
    assert_int_equal(cs_calendar_wd(c, day(2026, 12, 25)), cs_calendar_wd(c, day(2026, 12, 24)));
    /* ship days: Thu 24 then Mon 28 */
    assert_int_equal(cs_calendar_sd(c, day(2026, 12, 28)) - cs_calendar_sd(c, day(2026, 12, 24)),
                     1);
    assert_int_equal(cs_calendar_sd(c, day(2026, 12, 25)), cs_calendar_sd(c, day(2026, 12, 28)));
    assert_int_equal(cs_calendar_sd_day(c, cs_calendar_sd(c, day(2026, 12, 24)) + 1),
                     day(2026, 12, 28));
    /* nine a year, less those on a Sunday */
    assert_true(cs_calendar_closed_count(c) > 800 && cs_calendar_closed_count(c) <= 900);
    cs_calendar_free(&c);
    assert_null(c);
}

static void test_other_countries(void **state)
{
    (void)state;
    cs_calendar_t *c = make("AT", NULL);
    assert_false(cs_calendar_open(c, day(2026, 12, 8)));
    assert_false(cs_calendar_open(c, day(2026, 6, 4))); /* Corpus Christi */
    assert_true(cs_calendar_open(c, day(2026, 4, 3)));  /* no Good Friday */
    cs_calendar_free(&c);
    c = make("CH", NULL);
    assert_false(cs_calendar_open(c, day(2026, 8, 1)));
    cs_calendar_free(&c);
    c = make("BR", NULL);
    assert_false(cs_calendar_open(c, day(2018, 2, 12))); /* Carnival Monday */
    assert_false(cs_calendar_open(c, day(2018, 2, 13)));
    assert_false(cs_calendar_open(c, day(2018, 4, 21)));
    assert_true(cs_calendar_open(c, day(2018, 11, 20)));  /* a national holiday from 2024 */
    assert_false(cs_calendar_open(c, day(2024, 11, 20)));
    cs_calendar_free(&c);
    assert_string_equal(cs_calendar_country_of_zone("Europe/Berlin"), "DE");
    assert_string_equal(cs_calendar_country_of_zone("America/Sao_Paulo"), "BR");
    assert_null(cs_calendar_country_of_zone("Europe/London"));
    assert_null(cs_calendar_country_of_zone(NULL));
}

static void test_closed_days(void **state)
{
    (void)state;
    cs_calendar_t *c = make("none", "12-24, 12-31 2026-12-28,");
    assert_non_null(c);
    assert_false(cs_calendar_open(c, day(2030, 12, 24)));
    assert_false(cs_calendar_open(c, day(2026, 12, 28)));
    assert_true(cs_calendar_open(c, day(2027, 12, 28)));
    assert_true(cs_calendar_open(c, day(2026, 12, 25))); /* no country: no Christmas */
    cs_calendar_free(&c);
    /* nothing to close: weekdays alone, no tables */
    assert_null(make("none", " , "));
    assert_null(make(NULL, NULL));
    assert_null(make("", ""));
    /* 29 February every year closes it in leap years */
    c = make(NULL, "02-29");
    assert_false(cs_calendar_open(c, day(2028, 2, 29)));
    assert_true(cs_calendar_open(c, day(2027, 3, 1)));
    cs_calendar_free(&c);
}

static void test_bad_settings(void **state)
{
    (void)state;
    cs_calendar_t *c = NULL;
    cs_err_t err;
    const char *bad[] = { "13-01", "02-30", "2026-02-29", "1999-12-24", "24.12", "12-1",
                          "2026-1-01", "12-+1", "tomorrow" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(cs_calendar_new("DE", bad[i], &c, &err), CS_ERR_INVALID);
        assert_null(c);
        assert_string_equal(err.field, "closed_days");
        assert_non_null(strstr(err.msg, bad[i]));
    }
    assert_int_equal(cs_calendar_new("FR", NULL, &c, &err), CS_ERR_INVALID);
    assert_string_equal(err.field, "holidays");
    assert_non_null(strstr(err.msg, "\"FR\""));
    assert_non_null(strstr(err.msg, "DE, AT, CH, BR"));
}

/* The tables against a count day by day, across both of their ends: each
 * index one more at each open day, each inverse the open day itself. */
static void test_tables_agree(void **state)
{
    (void)state;
    cs_calendar_t *cals[2] = { make("DE", "2000-01-03, 2099-12-31, 12-24"), NULL };
    for (int k = 0; k < 2; k++) {
        cs_calendar_t *c = cals[k];
        int64_t ranges[][2] = { { day(1999, 10, 1), day(2000, 3, 1) },
                                { day(2026, 1, 1), day(2027, 1, 1) },
                                { day(2099, 10, 1), day(2100, 3, 1) } };
        for (int r = 0; r < 3; r++) {
            for (int64_t z = ranges[r][0]; z < ranges[r][1]; z++) {
                bool open = cs_calendar_open(c, z), ship = cs_calendar_ship_open(c, z);
                assert_int_equal(cs_calendar_wd(c, z) - cs_calendar_wd(c, z - 1), open);
                assert_int_equal(cs_calendar_sd(c, z + 1) - cs_calendar_sd(c, z), ship);
                if (open)
                    assert_int_equal(cs_calendar_wd_day(c, cs_calendar_wd(c, z)), z);
                if (ship)
                    assert_int_equal(cs_calendar_sd_day(c, cs_calendar_sd(c, z)), z);
                if (!ship) /* a closed day's ship index is the next open day's */
                    assert_true(cs_calendar_ship_open(
                        c, cs_calendar_sd_day(c, cs_calendar_sd(c, z))));
            }
        }
        cs_calendar_free(&c);
    }
    /* the days the table closes in 2000 and 2099 */
    cs_calendar_t *c = make(NULL, "2000-01-03, 2099-12-31");
    assert_false(cs_calendar_open(c, day(2000, 1, 3)));
    assert_false(cs_calendar_open(c, day(2099, 12, 31)));
    assert_int_equal(cs_calendar_wd(c, day(2100, 1, 4)) - cs_calendar_wd(NULL, day(2100, 1, 4)),
                     -2);
    cs_calendar_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_german_holidays), cmocka_unit_test(test_other_countries),
        cmocka_unit_test(test_closed_days),     cmocka_unit_test(test_bad_settings),
        cmocka_unit_test(test_tables_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
