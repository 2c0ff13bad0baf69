/*
 * cs_time.c -- RFC 3339 parsing/formatting and clocks. See cs_time.h.
 * Dates are converted with days_from_civil (Howard Hinnant's algorithm), so
 * no timezone database or TZ variable is consulted.
 */
#include "cs_time.h"

#include <ctype.h>

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t cs_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void cs_civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t yy = (int64_t)yoe + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yy + (*m <= 2));
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static bool parse_date_part(const char *s, int *y, int *mo, int *d)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (!digits(s, 4, y) || s[4] != '-' || !digits(s + 5, 2, mo) || s[7] != '-' ||
        !digits(s + 8, 2, d))
        return false;
    if (*y < 1970 || *y > 9999 || *mo < 1 || *mo > 12 || *d < 1)
        return false;
    int md = mdays[*mo - 1] + (*mo == 2 && is_leap(*y));
    return *d <= md;
}

bool cs_date_parse(const char *s, cs_ms_t *out)
{
    int y, mo, d;
    if (!s || strlen(s) != 10 || !parse_date_part(s, &y, &mo, &d))
        return false;
    *out = cs_days_from_civil(y, (unsigned)mo, (unsigned)d) * CS_MS_PER_DAY;
    return true;
}

bool cs_time_parse(const char *s, cs_ms_t *out)
{
    int y, mo, d, h, mi, se;
    if (!s)
        return false;
    size_t len = strlen(s);
    if (len == 10)
        return cs_date_parse(s, out);
    if (len < 20 || !parse_date_part(s, &y, &mo, &d))
        return false;
    if ((s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s + 11, 2, &h) ||
        s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &se))
        return false;
    if (h > 23 || mi > 59 || se > 60)
        return false;
    const char *p = s + 19;
    int ms = 0;
    if (*p == '.') {
        p++;
        int nd = 0;
        while (*p >= '0' && *p <= '9') {
            if (nd < 3)
                ms = ms * 10 + (*p - '0');
            nd++;
            p++;
        }
        if (nd == 0 || nd > 9)
            return false;
        for (int i = nd; i < 3; i++)
            ms *= 10;
    }
    int off_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 ||
            om > 59)
            return false;
        off_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return false;
    }
    if (*p)
        return false;
    if (se == 60)
        se = 59; /* leap second: clamp */
    int64_t days = cs_days_from_civil(y, (unsigned)mo, (unsigned)d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + se - (int64_t)off_min * 60;
    *out = secs * 1000 + ms;
    return true;
}

bool cs_time_before_1970(const char *s)
{
    char buf[64];
    int y, mo, d;
    cs_ms_t t;
    size_t n = s ? strlen(s) : 0;
    if (n < 10 || n >= sizeof buf || !digits(s, 4, &y) || y >= 1970)
        return false;
    memcpy(buf, s, n + 1);
    memcpy(buf, "2000", 4); /* a leap year: the rest reads as it would in y ... */
    if (!cs_time_parse(buf, &t) || !parse_date_part(buf, &y, &mo, &d))
        return false;
    digits(s, 4, &y);
    return !(mo == 2 && d == 29 && !is_leap(y)); /* ... but for a 29th of February */
}

const char *cs_time_slip(const char *s)
{
    char zoned[48];
    cs_ms_t t;
    size_t n = s ? strlen(s) : 0;
    if (n == 10 && cs_time_parse(s, &t))
        return " (a date alone: the time of day and its zone are needed)";
    if (n > 10 && n + 2 <= sizeof zoned) {
        memcpy(zoned, s, n);
        memcpy(zoned + n, "Z", 2);
        if (cs_time_parse(zoned, &t))
            return " (it has no zone: add Z for UTC or an offset like +01:00)";
    }
    return "";
}

const char *cs_time_format(cs_ms_t t, char *buf, size_t size)
{
    int64_t secs = t >= 0 ? t / 1000 : (t - 999) / 1000;
    int ms = (int)(t - secs * 1000);
    int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    int64_t rem = secs - days * 86400;
    int y;
    unsigned m, d;
    cs_civil_from_days(days, &y, &m, &d);
    snprintf(buf, size, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", y, m, d, (int)(rem / 3600),
             (int)(rem / 60 % 60), (int)(rem % 60), ms);
    return buf;
}

static cs_ms_t system_now(const cs_clock_t *self)
{
    (void)self;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (cs_ms_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const cs_clock_t system_clock = {system_now, NULL};

const cs_clock_t *cs_clock_system(void)
{
    return &system_clock;
}

cs_ms_t cs_clock_now(const cs_clock_t *c)
{
    return c->now(c);
}

static cs_ms_t manual_now(const cs_clock_t *self)
{
    const cs_clock_manual_t *m = (const cs_clock_manual_t *)self;
    return atomic_load(&((cs_clock_manual_t *)m)->now_ms);
}

void cs_clock_manual_init(cs_clock_manual_t *m, cs_ms_t start)
{
    m->clock.now = manual_now;
    m->clock.state = m;
    atomic_store(&m->now_ms, start);
}

void cs_clock_manual_set(cs_clock_manual_t *m, cs_ms_t t)
{
    atomic_store(&m->now_ms, t);
}

void cs_clock_manual_advance(cs_clock_manual_t *m, cs_ms_t delta)
{
    atomic_fetch_add(&m->now_ms, delta);
}

uint64_t cs_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void cs_deadline_in(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

bool cs_duration_parse(const char *s, cs_ms_t *out)
{
    cs_ms_t total = 0;
    bool any = false;
    while (*s) {
        if (!isdigit((unsigned char)*s))
            return false;
        int64_t n = 0;
        while (isdigit((unsigned char)*s)) {
            n = n * 10 + (*s++ - '0');
            if (n > 100000000)
                return false;
        }
        cs_ms_t unit;
        switch (*s++) {
        case 's': unit = 1000; break;
        case 'm': unit = 60 * 1000; break;
        case 'h': unit = 3600 * 1000; break;
        case 'd': unit = CS_MS_PER_DAY; break;
        case 'w': unit = 7 * CS_MS_PER_DAY; break;
        default: return false;
        }
        total += n * unit;
        any = true;
        if (total > 3660 * CS_MS_PER_DAY)
            return false; /* ten years is enough for any wait */
    }
    if (!any)
        return false;
    *out = total;
    return true;
}
