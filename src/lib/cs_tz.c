/*
 * cs_tz.c -- TZif (RFC 8536) reader and local time conversion.
 */
#include "cs_tz.h"

#include "cs_map.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define TZ_DIR "/usr/share/zoneinfo"
#define TZ_FILE_MAX (256 * 1024)

struct cs_tz {
    char name[64];
    size_t n;          /* transitions */
    int64_t *at;       /* transition instants, seconds since the epoch, ascending */
    int32_t *off;      /* offset in force from at[i] on */
    int32_t before;    /* offset before the first transition */
    struct cs_tz *next;
};

/* Every name looked up, known or not, maps to its zone or to g_unknown:
 * a lookup is one hash probe under the lock, also for a name that is no
 * zone (a customer's "Mars/Olympus" checked at every intake reads no
 * file twice). Names that are no zone are remembered up to
 * UNKNOWN_MAX; past that they are looked for again, so a stream of
 * made-up names costs a failed open each, not memory. */
#define UNKNOWN_MAX 1024

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static struct cs_tz *g_zones;
static cs_map_t g_index;
static size_t g_unknown_n;
static struct cs_tz g_unknown;
static struct cs_tz g_utc = { "UTC", 0, NULL, NULL, 0, NULL };

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof g_utc.name || s[0] == '/' || strstr(s, ".."))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '/' || c == '_' || c == '-' || c == '+'))
            return false;
    }
    return true;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* Parse the version 2+ (64-bit) block of a TZif file. */
static cs_rc parse(const unsigned char *b, size_t len, struct cs_tz *z)
{
    if (len < 44 || memcmp(b, "TZif", 4) != 0)
        return CS_ERR_INVALID;
    /* skip the v1 block */
    uint32_t isut = be32(b + 20), isstd = be32(b + 24), leap = be32(b + 28);
    uint32_t timecnt = be32(b + 32), typecnt = be32(b + 36), charcnt = be32(b + 40);
    size_t v1 = (size_t)timecnt * 5 + (size_t)typecnt * 6 + charcnt + (size_t)leap * 8 + isstd +
                isut;
    if (b[4] < '2' || 44 + v1 + 44 > len)
        return CS_ERR_INVALID;
    const unsigned char *h = b + 44 + v1;
    if (memcmp(h, "TZif", 4) != 0)
        return CS_ERR_INVALID;
    isut = be32(h + 20);
    isstd = be32(h + 24);
    leap = be32(h + 28);
    timecnt = be32(h + 32);
    typecnt = be32(h + 36);
    charcnt = be32(h + 40);
    if (typecnt == 0 || typecnt > 256 || timecnt > 10000)
        return CS_ERR_INVALID;
    const unsigned char *p = h + 44;
    size_t need = (size_t)timecnt * 9 + (size_t)typecnt * 6 + charcnt + (size_t)leap * 12 +
                  isstd + isut;
    if ((size_t)(p - b) + need > len)
        return CS_ERR_INVALID;
    const unsigned char *times = p, *idx = p + (size_t)timecnt * 8, *types = idx + timecnt;
    z->n = timecnt;
    z->at = cs_calloc(timecnt ? timecnt : 1, sizeof *z->at);
    z->off = cs_calloc(timecnt ? timecnt : 1, sizeof *z->off);
    if (!z->at || !z->off)
        return CS_ERR_NOMEM;
    for (uint32_t i = 0; i < timecnt; i++) {
        if (idx[i] >= typecnt)
            return CS_ERR_INVALID;
        z->at[i] = be64(times + (size_t)i * 8);
        z->off[i] = (int32_t)be32(types + (size_t)idx[i] * 6);
    }
    /* before the first transition: the first standard-time type (RFC 8536 3.2) */
    z->before = (int32_t)be32(types);
    for (uint32_t t = 0; t < typecnt; t++) {
        if (types[t * 6 + 4] == 0) {
            z->before = (int32_t)be32(types + (size_t)t * 6);
            break;
        }
    }
    return CS_OK;
}

static void free_zone(struct cs_tz *z)
{
    cs_free(z->at);
    cs_free(z->off);
    cs_free(z);
}

static struct cs_tz *load(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", TZ_DIR, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = cs_malloc(TZ_FILE_MAX);
    struct cs_tz *z = cs_calloc(1, sizeof *z);
    size_t len = buf ? fread(buf, 1, TZ_FILE_MAX, f) : 0;
    fclose(f);
    if (!buf || !z || parse(buf, len, z) != CS_OK) {
        cs_free(buf);
        if (z)
            free_zone(z);
        return NULL;
    }
    cs_free(buf);
    cs_strlcpy(z->name, name, sizeof z->name);
    return z;
}

cs_rc cs_tz_get(const char *name, const cs_tz_t **out, cs_err_t *err)
{
    *out = NULL;
    if (name && (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0)) {
        *out = &g_utc;
        return CS_OK;
    }
    if (!name || !valid_name(name))
        return cs_errf(err, CS_ERR_NOTFOUND, "'%s' is not a time zone name (like Europe/Berlin)",
                       name ? name : "");
    pthread_mutex_lock(&g_mu);
    struct cs_tz *z = cs_map_get(&g_index, name);
    if (!z) {
        if ((z = load(name)) != NULL) {
            z->next = g_zones;
            g_zones = z;
            (void)cs_map_put(&g_index, name, z); /* out of memory: loaded again next time */
        } else if (g_unknown_n < UNKNOWN_MAX && cs_map_put(&g_index, name, &g_unknown) == CS_OK) {
            g_unknown_n++;
        }
    } else if (z == &g_unknown) {
        z = NULL;
    }
    pthread_mutex_unlock(&g_mu);
    if (!z)
        return cs_errf(err, CS_ERR_NOTFOUND, "unknown time zone '%s' (not in %s)", name, TZ_DIR);
    *out = z;
    return CS_OK;
}

const cs_tz_t *cs_tz_get_or(const char *name, const cs_tz_t *fallback)
{
    const cs_tz_t *z;
    if (!name || !*name || cs_tz_get(name, &z, NULL) != CS_OK)
        return fallback;
    return z;
}

const cs_tz_t *cs_tz_get_or_utc(const char *name) { return cs_tz_get_or(name, &g_utc); }

const char *cs_tz_name(const cs_tz_t *tz) { return tz->name; }

int32_t cs_tz_offset(const cs_tz_t *tz, cs_ms_t t)
{
    int64_t s = t >= 0 ? t / 1000 : -((-t + 999) / 1000);
    if (tz->n == 0 || s < tz->at[0])
        return tz->before;
    size_t lo = 0, hi = tz->n; /* last i with at[i] <= s */
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (tz->at[mid] <= s)
            lo = mid;
        else
            hi = mid;
    }
    return tz->off[lo];
}

void cs_tz_to_local(const cs_tz_t *tz, cs_ms_t t, cs_local_t *out)
{
    int64_t s = t / 1000 - (t % 1000 < 0 ? 1 : 0) + cs_tz_offset(tz, t);
    int64_t days = s / 86400, rem = s % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    unsigned m, d;
    cs_civil_from_days(days, &out->year, &m, &d);
    out->month = (int)m;
    out->day = (int)d;
    out->hour = (int)(rem / 3600);
    out->min = (int)(rem % 3600 / 60);
    out->sec = (int)(rem % 60);
    out->wday = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday */
}

static int64_t from_local(const cs_tz_t *tz, const cs_local_t *l, bool gap_end);

cs_ms_t cs_tz_from_local(const cs_tz_t *tz, const cs_local_t *l)
{
    return from_local(tz, l, false) * 1000;
}

cs_ms_t cs_tz_from_local_on(const cs_tz_t *tz, const cs_local_t *l)
{
    return from_local(tz, l, true) * 1000;
}

/* The second of wall time l in tz (see cs_tz.h); in a gap, moved forward
 * by the gap, or (gap_end) the instant the gap ends. */
static int64_t from_local(const cs_tz_t *tz, const cs_local_t *l, bool gap_end)
{
    /* normalise month overflow, then days may overflow freely */
    int64_t y = l->year, mo = l->month - 1;
    y += mo >= 0 ? mo / 12 : -((11 - mo) / 12);
    mo = ((mo % 12) + 12) % 12;
    int64_t days = cs_days_from_civil(y, (unsigned)mo + 1, 1) + (l->day - 1);
    int64_t wall = (days * 86400 + (int64_t)l->hour * 3600 + (int64_t)l->min * 60 + l->sec);
    /* try the offsets in force around that wall time: earlier instant first */
    int32_t o1 = cs_tz_offset(tz, (wall - 86400) * 1000), o2 = cs_tz_offset(tz, (wall + 86400) * 1000);
    int64_t c1 = wall - o1, c2 = wall - o2;
    bool ok1 = cs_tz_offset(tz, c1 * 1000) == o1, ok2 = cs_tz_offset(tz, c2 * 1000) == o2;
    int64_t s;
    if (ok1 && ok2)
        s = c1 < c2 ? c1 : c2;
    else if (ok1)
        s = c1;
    else if (ok2)
        s = c2;
    else if (!gap_end)
        s = wall - o1; /* in a gap: the old offset moves the time forward by the gap */
    else {
        /* in a gap: the change of offset lies in (c2, c1], c2 still under
         * the old offset o1 and c1 under the new; find its second */
        int64_t lo = c2 < c1 ? c2 : c1, hi = c2 < c1 ? c1 : c2;
        int32_t before = cs_tz_offset(tz, lo * 1000);
        while (hi - lo > 1) {
            int64_t mid = lo + (hi - lo) / 2;
            if (cs_tz_offset(tz, mid * 1000) == before)
                lo = mid;
            else
                hi = mid;
        }
        s = hi;
    }
    return s;
}

void cs_tz_cache_clear(void)
{
    pthread_mutex_lock(&g_mu);
    cs_map_free(&g_index);
    g_unknown_n = 0;
    while (g_zones) {
        struct cs_tz *z = g_zones;
        g_zones = z->next;
        free_zone(z);
    }
    pthread_mutex_unlock(&g_mu);
}

int64_t cs_tz_day(const cs_tz_t *tz, cs_ms_t t)
{
    cs_local_t l;
    cs_tz_to_local(tz, t, &l);
    return cs_days_from_civil(l.year, (unsigned)l.month, (unsigned)l.day);
}

int64_t cs_tz_date_day(const cs_tz_t *tz, cs_ms_t t)
{
    const cs_ms_t day_ms = 86400000;
    if (t % day_ms == 0)
        return t / day_ms;
    return cs_tz_day(tz, t);
}

cs_ms_t cs_tz_day_start(const cs_tz_t *tz, int64_t day)
{
    int y;
    unsigned mo, d;
    cs_civil_from_days(day, &y, &mo, &d);
    cs_local_t l = { y, (int)mo, (int)d, 0, 0, 0, 0 };
    return cs_tz_from_local(tz, &l);
}

void cs_tz_ymd(const cs_tz_t *tz, cs_ms_t t, char *out, size_t size)
{
    cs_local_t l;
    cs_tz_to_local(tz, t, &l);
    snprintf(out, size, "%04d-%02d-%02d", l.year, l.month, l.day);
}
