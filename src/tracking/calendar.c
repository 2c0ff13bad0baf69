/*
 * calendar.c -- working days and ship days less holidays (calendar.h).
 *
 * Weekdays alone are arithmetic. With closed days, each day of 2000..2099
 * has its two indexes in a table, and each index its day, so that an
 * estimate replaying thousands of deliveries looks each up at the cost of
 * an array read; outside those years the arithmetic holds, shifted by the
 * days closed within them.
 */
#include "tracking/calendar.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/cs_time.h"

#define YEAR_FIRST 2000
#define YEAR_LAST 2099

struct cs_calendar {
    int64_t z0, z1;    /* the table's days, [z0, z1) */
    uint8_t *closed;   /* per day: closed besides being a Sunday */
    int32_t *wd, *sd;  /* per day: its indexes */
    int64_t wd_off, sd_off; /* the days the table closed: the shift after it */
    int32_t *wd_inv, *sd_inv; /* per index from k0: its day */
    int64_t wk0, sk0;
    int64_t nw, ns;
    size_t nclosed;
};

/* ---- weekdays alone ---- */

/* 0 Monday .. 6 Sunday (z = -3 is a Monday) */
static int weekday(int64_t z)
{
    return (int)(z + 3 - 7 * cs_floordiv(z + 3, 7));
}

static int64_t plain_wd(int64_t z)
{
    return z - cs_floordiv(z + 4, 7); /* less the Sundays up to z */
}

static int64_t plain_wd_day(int64_t k)
{
    int64_t z = k + cs_floordiv(k, 6) - 3;
    while (plain_wd(z) < k || weekday(z) == 6)
        z++;
    return z;
}

static int64_t plain_sd(int64_t z)
{
    int64_t w = cs_floordiv(z + 3, 7);
    int d = weekday(z);
    return 5 * w + (d < 5 ? d : 5);
}

static int64_t plain_sd_day(int64_t k)
{
    int64_t w = cs_floordiv(k, 5);
    return 7 * w + (k - 5 * w) - 3;
}

/* ---- holidays ---- */

/* Easter Sunday of year y (Gregorian; Meeus/Jones/Butcher). */
static int64_t easter(int y)
{
    int a = y % 19, b = y / 100, c = y % 100, d = b / 4, e = b % 4, f = (b + 8) / 25;
    int g = (b - f + 1) / 3, h = (19 * a + b - d - g + 15) % 30, i = c / 4, k = c % 4;
    int l = (32 + 2 * e + 2 * i - h - k) % 7, m = (a + 11 * h + 22 * l) / 451;
    int month = (h + l - 7 * m + 114) / 31, day = (h + l - 7 * m + 114) % 31 + 1;
    return cs_days_from_civil(y, (unsigned)month, (unsigned)day);
}

typedef struct holidays {
    const char *country;
    const char *fixed;     /* "MM-DD" each, separated by spaces */
    const int8_t *easter;  /* days from Easter Sunday, ended by 0 */
} holidays_t;

static const int8_t de_easter[] = { -2, 1, 39, 50, 0 };
static const int8_t at_easter[] = { 1, 39, 50, 60, 0 };
static const int8_t ch_easter[] = { -2, 1, 39, 50, 0 };
static const int8_t br_easter[] = { -48, -47, -2, 60, 0 };

static const holidays_t known[] = {
    { "DE", "01-01 05-01 10-03 12-25 12-26", de_easter },
    { "AT", "01-01 01-06 05-01 08-15 10-26 11-01 12-08 12-25 12-26", at_easter },
    { "CH", "01-01 08-01 12-25 12-26", ch_easter },
    { "BR", "01-01 04-21 05-01 09-07 10-12 11-02 11-15 12-25", br_easter },
};

static const struct {
    const char *zone, *country;
} zones[] = {
    { "Europe/Berlin", "DE" },        { "Europe/Busingen", "DE" },
    { "Europe/Vienna", "AT" },        { "Europe/Zurich", "CH" },
    { "America/Sao_Paulo", "BR" },    { "America/Fortaleza", "BR" },
    { "America/Recife", "BR" },       { "America/Bahia", "BR" },
    { "America/Belem", "BR" },        { "America/Maceio", "BR" },
    { "America/Araguaina", "BR" },    { "America/Manaus", "BR" },
    { "America/Cuiaba", "BR" },       { "America/Campo_Grande", "BR" },
    { "America/Porto_Velho", "BR" },  { "America/Boa_Vista", "BR" },
    { "America/Rio_Branco", "BR" },   { "America/Eirunepe", "BR" },
    { "America/Santarem", "BR" },     { "America/Noronha", "BR" },
};

const char *cs_calendar_country_of_zone(const char *zone)
{
    for (size_t i = 0; zone && i < sizeof zones / sizeof zones[0]; i++)
        if (strcmp(zones[i].zone, zone) == 0)
            return zones[i].country;
    return NULL;
}

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned month_days(int y, unsigned m)
{
    static const unsigned d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return m == 2 && leap(y) ? 29 : d[m - 1];
}

static void close_day(cs_calendar_t *c, int64_t z)
{
    if (z >= c->z0 && z < c->z1)
        c->closed[z - c->z0] = 1;
}

/* One closed_days item: "MM-DD" (every year) or "YYYY-MM-DD" (that year);
 * with c NULL only checked. */
static cs_rc close_item(cs_calendar_t *c, const char *item, size_t len, cs_err_t *err)
{
    int y = -1;
    unsigned mo = 0, d = 0;
    /* digits where the form has them, '-' where it has it */
    const char *form = len == 10 ? "dddd-dd-dd" : len == 5 ? "dd-dd" : "";
    bool ok = *form != '\0';
    for (size_t i = 0; ok && i < len; i++)
        ok = form[i] == 'd' ? isdigit((unsigned char)item[i]) != 0 : item[i] == '-';
    if (ok) {
        const char *md = item + (len == 10 ? 5 : 0);
        if (len == 10)
            y = ((item[0] - '0') * 10 + item[1] - '0') * 100 + (item[2] - '0') * 10 + item[3] -
                '0';
        mo = (unsigned)((md[0] - '0') * 10 + md[1] - '0');
        d = (unsigned)((md[3] - '0') * 10 + md[4] - '0');
    }
    if (mo < 1 || mo > 12 || d < 1 || d > month_days(y < 0 ? 2000 : y, mo))
        return cs_err_field(err, CS_ERR_INVALID, "closed_days",
                            "closed_days: \"%.*s\": expected a real date as MM-DD (every year) "
                            "or YYYY-MM-DD, separated by commas",
                            (int)(len > 40 ? 40 : len), item);
    if (y >= 0 && (y < YEAR_FIRST || y > YEAR_LAST))
        return cs_err_field(err, CS_ERR_INVALID, "closed_days",
                            "closed_days: \"%.*s\": expected a year from %d to %d", (int)len,
                            item, YEAR_FIRST, YEAR_LAST);
    if (!c)
        return CS_OK;
    for (int yy = YEAR_FIRST; yy <= YEAR_LAST; yy++)
        if ((y < 0 || y == yy) && d <= month_days(yy, mo))
            close_day(c, cs_days_from_civil(yy, mo, d));
    return CS_OK;
}

static cs_rc close_list(cs_calendar_t *c, const char *list, cs_err_t *err)
{
    for (const char *p = list ? list : ""; *p;) {
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        size_t n = 0;
        while (p[n] && p[n] != ',' && !isspace((unsigned char)p[n]))
            n++;
        if (n) {
            cs_rc rc = close_item(c, p, n, err);
            if (rc)
                return rc;
        }
        p += n;
    }
    return CS_OK;
}

static const holidays_t *find_country(const char *country, bool *none)
{
    *none = !country || !*country || strcasecmp(country, "none") == 0;
    for (size_t i = 0; !*none && i < sizeof known / sizeof known[0]; i++)
        if (strcasecmp(known[i].country, country) == 0)
            return &known[i];
    return NULL;
}

static void close_holidays(cs_calendar_t *c, const holidays_t *h)
{
    for (int y = YEAR_FIRST; y <= YEAR_LAST; y++) {
        for (const char *p = h->fixed; *p; p += p[5] ? 6 : 5)
            close_day(c, cs_days_from_civil(y, (unsigned)((p[0] - '0') * 10 + p[1] - '0'),
                                            (unsigned)((p[3] - '0') * 10 + p[4] - '0')));
        int64_t e = easter(y);
        for (const int8_t *o = h->easter; *o; o++)
            close_day(c, e + *o);
        if (strcmp(h->country, "BR") == 0 && y >= 2024) /* Law 14,759 of 2023 */
            close_day(c, cs_days_from_civil(y, 11, 20));
    }
}

/* ---- the tables ---- */

void cs_calendar_free(cs_calendar_t **cp)
{
    cs_calendar_t *c = *cp;
    if (!c)
        return;
    cs_free(c->closed);
    cs_free(c->wd);
    cs_free(c->sd);
    cs_free(c->wd_inv);
    cs_free(c->sd_inv);
    cs_free(c);
    *cp = NULL;
}

cs_rc cs_calendar_new(const char *country, const char *closed_days, cs_calendar_t **out,
                      cs_err_t *err)
{
    *out = NULL;
    bool none;
    const holidays_t *h = find_country(country, &none);
    if (!h && !none)
        return cs_err_field(err, CS_ERR_INVALID, "holidays",
                            "holidays: \"%.16s\": expected a country whose public holidays are "
                            "known (%s) or none",
                            country, CS_CALENDAR_COUNTRIES);
    cs_rc rc = close_list(NULL, closed_days, err); /* checked before anything is made */
    if (rc)
        return rc;
    bool any = false;
    for (const char *p = closed_days ? closed_days : ""; *p && !any; p++)
        any = *p != ',' && !isspace((unsigned char)*p);
    if (!h && !any)
        return CS_OK; /* weekdays alone */

    cs_calendar_t *c = cs_calloc(1, sizeof *c);
    if (!c)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    c->z0 = cs_days_from_civil(YEAR_FIRST, 1, 1);
    c->z1 = cs_days_from_civil(YEAR_LAST + 1, 1, 1);
    size_t n = (size_t)(c->z1 - c->z0);
    c->closed = cs_calloc(n, 1);
    c->wd = cs_calloc(n, sizeof *c->wd);
    c->sd = cs_calloc(n, sizeof *c->sd);
    c->wd_inv = cs_calloc(n, sizeof *c->wd_inv);
    c->sd_inv = cs_calloc(n, sizeof *c->sd_inv);
    if (!c->closed || !c->wd || !c->sd || !c->wd_inv || !c->sd_inv) {
        rc = cs_errf(err, CS_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (h)
        close_holidays(c, h);
    if ((rc = close_list(c, closed_days, err)))
        goto out;
    int64_t wclosed = 0, sclosed = 0;
    for (int64_t z = c->z0; z < c->z1; z++) {
        size_t i = (size_t)(z - c->z0);
        int d = weekday(z);
        if (d == 6)
            c->closed[i] = 0; /* a Sunday is closed anyway */
        c->sd[i] = (int32_t)(plain_sd(z) - sclosed); /* ship days before z */
        if (c->closed[i]) {
            c->nclosed++;
            wclosed++;
            sclosed += d < 5;
        }
        c->wd[i] = (int32_t)(plain_wd(z) - wclosed); /* working days up to z */
        if (d != 6 && !c->closed[i]) {
            if (!c->nw)
                c->wk0 = c->wd[i];
            c->wd_inv[c->nw++] = (int32_t)z;
        }
        if (d < 5 && !c->closed[i]) {
            if (!c->ns)
                c->sk0 = c->sd[i];
            c->sd_inv[c->ns++] = (int32_t)z;
        }
    }
    c->wd_off = wclosed;
    c->sd_off = sclosed;
    *out = c;
    c = NULL;
out:
    cs_calendar_free(&c);
    return rc;
}

size_t cs_calendar_closed_count(const cs_calendar_t *c)
{
    return c ? c->nclosed : 0;
}

static bool closed(const cs_calendar_t *c, int64_t z)
{
    return c && z >= c->z0 && z < c->z1 && c->closed[z - c->z0];
}

bool cs_calendar_open(const cs_calendar_t *c, int64_t z)
{
    return weekday(z) != 6 && !closed(c, z);
}

bool cs_calendar_ship_open(const cs_calendar_t *c, int64_t z)
{
    return weekday(z) < 5 && !closed(c, z);
}

int64_t cs_calendar_wd(const cs_calendar_t *c, int64_t z)
{
    if (!c || z < c->z0)
        return plain_wd(z);
    if (z >= c->z1)
        return plain_wd(z) - c->wd_off;
    return c->wd[z - c->z0];
}

int64_t cs_calendar_wd_day(const cs_calendar_t *c, int64_t k)
{
    if (!c || k < c->wk0)
        return plain_wd_day(k); /* before the table's first open day */
    if (k - c->wk0 < c->nw)
        return c->wd_inv[k - c->wk0];
    return plain_wd_day(k + c->wd_off);
}

int64_t cs_calendar_sd(const cs_calendar_t *c, int64_t z)
{
    if (!c || z < c->z0)
        return plain_sd(z);
    if (z >= c->z1)
        return plain_sd(z) - c->sd_off;
    return c->sd[z - c->z0];
}

int64_t cs_calendar_sd_day(const cs_calendar_t *c, int64_t k)
{
    if (!c || k < c->sk0)
        return plain_sd_day(k);
    if (k - c->sk0 < c->ns)
        return c->sd_inv[k - c->sk0];
    return plain_sd_day(k + c->sd_off);
}
