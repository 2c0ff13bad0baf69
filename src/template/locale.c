/*
 * locale.c -- de/en formatting (see locale.h).
 */
#include "locale.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../lib/cs.h"

static const char *const weekdays_de[] = { "Sonntag",  "Montag",  "Dienstag", "Mittwoch",
                                           "Donnerstag", "Freitag", "Samstag" };
static const char *const weekdays_en[] = { "Sunday",   "Monday", "Tuesday", "Wednesday",
                                           "Thursday", "Friday", "Saturday" };
static const char *const months_de[] = { "Januar", "Februar", "März",     "April",
                                         "Mai",    "Juni",    "Juli",     "August",
                                         "September", "Oktober", "November", "Dezember" };
static const char *const months_en[] = { "January", "February", "March",     "April",
                                         "May",     "June",     "July",      "August",
                                         "September", "October", "November", "December" };
static const char *const mon_de[] = { "Jan.", "Feb.", "März", "Apr.", "Mai",  "Juni",
                                      "Juli", "Aug.", "Sept.", "Okt.", "Nov.", "Dez." };
static const char *const mon_en[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

const char *cs_locale_lang(const char *locale)
{
    if (locale && (locale[0] == 'd' || locale[0] == 'D') && (locale[1] == 'e' || locale[1] == 'E') &&
        (locale[2] == '\0' || locale[2] == '-' || locale[2] == '_'))
        return "de";
    return "en";
}

bool cs_locale_known(const char *locale)
{
    return locale && (strcmp(cs_locale_lang(locale), "de") == 0 ||
                      ((locale[0] == 'e' || locale[0] == 'E') && (locale[1] == 'n' || locale[1] == 'N') &&
                       (locale[2] == '\0' || locale[2] == '-' || locale[2] == '_')));
}

static bool is_de(const char *locale) { return strcmp(cs_locale_lang(locale), "de") == 0; }

/* Does the locale's region put the month first ("en-US": November 26)? */
static bool month_first(const char *locale)
{
    if (!locale || is_de(locale))
        return false;
    const char *sep = strpbrk(locale, "-_");
    return sep && strncasecmp(sep + 1, "us", 2) == 0 &&
           (sep[3] == '\0' || sep[3] == '-' || sep[3] == '_' || sep[3] == '.' || sep[3] == '@');
}

const char *cs_locale_for(const char *lang, const char *locale)
{
    /* (German dates have one order: "de" stays "de", which callers
     * compare against) */
    return locale && *locale && lang && strcmp(lang, "de") != 0 &&
                   strcmp(cs_locale_lang(locale), lang) == 0
               ? locale
               : lang;
}

const char *cs_fmt_number(int64_t minor, int decimals, const char *locale, char *buf,
                          size_t size)
{
    bool de = is_de(locale);
    char group = de ? '.' : ',', point = de ? ',' : '.';
    uint64_t v = minor < 0 ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;
    uint64_t scale = 1;
    for (int i = 0; i < decimals; i++)
        scale *= 10;
    uint64_t whole = v / scale, frac = v % scale;
    char digits[32], out[64];
    int nd = snprintf(digits, sizeof digits, "%llu", (unsigned long long)whole);
    size_t o = 0;
    if (minor < 0)
        out[o++] = '-';
    for (int i = 0; i < nd; i++) {
        if (i > 0 && (nd - i) % 3 == 0)
            out[o++] = group;
        out[o++] = digits[i];
    }
    if (decimals > 0) {
        out[o++] = point;
        snprintf(out + o, sizeof out - o, "%0*llu", decimals, (unsigned long long)frac);
    } else {
        out[o] = '\0';
    }
    snprintf(buf, size, "%s", out);
    return buf;
}

static const char *symbol(const char *currency)
{
    if (!currency)
        return "";
    if (strcmp(currency, "EUR") == 0)
        return "€";
    if (strcmp(currency, "USD") == 0)
        return "$";
    if (strcmp(currency, "GBP") == 0)
        return "£";
    if (strcmp(currency, "BRL") == 0)
        return "R$";
    return NULL;
}

/* ISO 4217's exponent: the decimals a currency is shown with. */
static int exponent(const char *currency)
{
    static const char *const none[] = { "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF",
                                        "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV",
                                        "XAF", "XOF", "XPF", NULL };
    static const char *const three[] = { "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND", NULL };
    if (!currency)
        return 2;
    for (const char *const *c = none; *c; c++)
        if (strcmp(currency, *c) == 0)
            return 0;
    for (const char *const *c = three; *c; c++)
        if (strcmp(currency, *c) == 0)
            return 3;
    if (strcmp(currency, "CLF") == 0 || strcmp(currency, "UYW") == 0)
        return 4;
    return 2;
}

const char *cs_fmt_money(int64_t minor, const char *currency, const char *locale, char *buf,
                         size_t size)
{
    char num[64];
    const char *sym = symbol(currency);
    /* minor is in hundredths, as amounts are stored; shown with the
     * currency's own decimals: 1.500 JPY, not 1.500,00 JPY. An amount
     * with hundredths its currency does not have is shown as it came. */
    int exp = exponent(currency);
    if (exp == 0 && minor % 100 == 0)
        cs_fmt_number(minor / 100, 0, locale, num, sizeof num);
    else if (exp > 2 && minor < INT64_MAX / 100 && minor > -(INT64_MAX / 100))
        cs_fmt_number(minor * (exp == 3 ? 10 : 100), exp, locale, num, sizeof num);
    else
        cs_fmt_number(minor, 2, locale, num, sizeof num);
    if (is_de(locale)) /* German: amount, non-breaking space, symbol or code */
        snprintf(buf, size, "%s\u00a0%s", num, sym ? sym : currency);
    else if (sym) /* English: symbol first, no space; a sign goes before it */
        snprintf(buf, size, "%s%s%s", minor < 0 ? "-" : "", sym, minor < 0 ? num + 1 : num);
    else
        snprintf(buf, size, "%s\u00a0%s", currency, num);
    return buf;
}

/* ---- the name to greet by ---- */

typedef struct word {
    const char *p;
    size_t n;
} word_t;

/* The words of s[0..n) (split at spaces and tabs), at most max. */
static size_t words_of(const char *s, size_t n, word_t *w, size_t max)
{
    size_t k = 0, i = 0;
    while (i < n && k < max) {
        while (i < n && (s[i] == ' ' || s[i] == '\t'))
            i++;
        size_t start = i;
        while (i < n && s[i] != ' ' && s[i] != '\t')
            i++;
        if (i > start)
            w[k++] = (word_t){ s + start, i - start };
    }
    return k;
}

/* Is the word one of list (ASCII, any case, a final "." ignored)? */
static bool word_in(word_t w, const char *const *list)
{
    size_t n = w.n > 0 && w.p[w.n - 1] == '.' ? w.n - 1 : w.n;
    for (; *list; list++)
        if (n > 0 && strlen(*list) == n && strncasecmp(w.p, *list, n) == 0)
            return true;
    return false;
}

/* Titles and honorifics before a name, German and English (with or
 * without their dot: "Dr", "Dr.", "Dr.-Ing.", "Dr. rer. nat."). */
static const char *const titles[] = {
    "dr", "prof", "professor", "doktor", "herr", "herrn", "frau", "hr", "fr", "familie",
    "mr", "mrs", "ms", "miss", "mx", "sir", "dame", "rev", "family", "dipl.-ing", "dipl.-kfm",
    "dipl.-kff", "dipl.-psych", "dr.-ing", "ing", "mag", "med", "dent", "vet", "rer", "nat",
    "pol", "phil", "jur", "oec", "habil", "h.c", "mult", "univ.-prof", "priv.-doz", "dres",
    NULL
};
/* What may follow a name after a comma ("John Smith, Jr."). */
static const char *const suffixes[] = { "jr", "sr", "ii", "iii", "iv", "phd", "ph.d", "md",
                                        "m.d", "mba", "esq", "bsc", "msc", "ba", "ma", "llm",
                                        NULL };

/* "A", "A.", "Ä.": an initial, not a name to greet by. */
static bool initial(word_t w)
{
    if (w.n == 1)
        return (w.p[0] >= 'A' && w.p[0] <= 'Z') || (w.p[0] >= 'a' && w.p[0] <= 'z');
    unsigned char c = (unsigned char)w.p[0];
    size_t len = c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; /* its first character */
    return w.p[w.n - 1] == '.' && w.n - 1 == len;
}

/* The given name in words: the first after the titles; none when a title
 * is followed by a single word (the surname) and titles_need_two. */
static const word_t *given(const word_t *w, size_t n, bool titles_need_two)
{
    size_t i = 0;
    while (i < n && word_in(w[i], titles))
        i++;
    if (i == n || (i > 0 && titles_need_two && n - i < 2))
        return NULL;
    return &w[i];
}

const char *cs_first_name(const char *name, char *buf, size_t size)
{
    word_t before[16], after[16];
    const word_t *g = NULL;
    if (size == 0)
        return buf;
    buf[0] = '\0';
    if (!name)
        return buf;
    const char *comma = strchr(name, ',');
    size_t nb = words_of(name, comma ? (size_t)(comma - name) : strlen(name), before, 16);
    if (comma) { /* "Müller, Anna", "Müller, Dr. Anna"; not "Smith, Jr." */
        size_t na = words_of(comma + 1, strlen(comma + 1), after, 16);
        g = na ? given(after, na, false) : NULL;
        if (na == 0 || (g && word_in(*g, suffixes)))
            g = given(before, nb, true);
    } else {
        g = given(before, nb, true);
    }
    if (!g || initial(*g))
        return buf;
    size_t k = cs_utf8_clip(g->p, g->n, size - 1); /* whole characters */
    memcpy(buf, g->p, k);
    buf[k] = '\0';
    return buf;
}

const char *cs_fmt_date(cs_ms_t t, const cs_tz_t *tz, cs_date_style_t style, const char *locale,
                        char *buf, size_t size)
{
    cs_local_t l;
    cs_tz_to_local(tz ? tz : cs_tz_get_or_utc(NULL), t, &l);
    bool de = is_de(locale);
    const char *wd = de ? weekdays_de[l.wday] : weekdays_en[l.wday];
    const char *mo = de ? months_de[l.month - 1] : months_en[l.month - 1];
    if (month_first(locale)) { /* the United States: the month first */
        switch (style) {
        case CS_DATE_LONG: snprintf(buf, size, "%s, %s %d, %d", wd, mo, l.day, l.year); return buf;
        case CS_DATE_MEDIUM:
            snprintf(buf, size, "%s %d, %d", mon_en[l.month - 1], l.day, l.year);
            return buf;
        case CS_DATE_SHORT: snprintf(buf, size, "%02d/%02d/%d", l.month, l.day, l.year); return buf;
        case CS_DATE_DAY: snprintf(buf, size, "%s, %s %d", wd, mo, l.day); return buf;
        default: break; /* a weekday, a time: as in English anywhere */
        }
    }
    switch (style) {
    case CS_DATE_LONG:
        if (de)
            snprintf(buf, size, "%s, %d. %s %d", wd, l.day, mo, l.year);
        else
            snprintf(buf, size, "%s, %d %s %d", wd, l.day, mo, l.year);
        break;
    case CS_DATE_MEDIUM:
        if (de)
            snprintf(buf, size, "%d. %s %d", l.day, mon_de[l.month - 1], l.year);
        else
            snprintf(buf, size, "%d %s %d", l.day, mon_en[l.month - 1], l.year);
        break;
    case CS_DATE_SHORT:
        if (de)
            snprintf(buf, size, "%02d.%02d.%d", l.day, l.month, l.year);
        else
            snprintf(buf, size, "%02d/%02d/%d", l.day, l.month, l.year);
        break;
    case CS_DATE_WEEKDAY: snprintf(buf, size, "%s", wd); break;
    case CS_DATE_DAY:
        if (de)
            snprintf(buf, size, "%s, %d. %s", wd, l.day, mo);
        else
            snprintf(buf, size, "%s, %d %s", wd, l.day, mo);
        break;
    case CS_DATE_TIME:
        if (de)
            snprintf(buf, size, "%02d:%02d", l.hour, l.min);
        else
            snprintf(buf, size, "%d:%02d %s", l.hour % 12 ? l.hour % 12 : 12, l.min,
                     l.hour < 12 ? "am" : "pm");
        break;
    }
    return buf;
}

const char *cs_fmt_valid_until(cs_ms_t end, const cs_tz_t *tz, const char *locale, char *buf,
                               size_t size)
{
    if (!tz)
        tz = cs_tz_get_or_utc(NULL);
    return cs_fmt_date(cs_tz_day_start(tz, cs_tz_day(tz, end) - 1), tz, CS_DATE_DAY, locale, buf,
                       size);
}

/* "Donnerstag oder Freitag", "heute", "am 12. März" ... */
const char *cs_window_bare(const char *words)
{
    if (strncmp(words, "am ", 3) == 0 || strncmp(words, "on ", 3) == 0)
        return words + 3;
    return words;
}

const char *cs_fmt_window(const cs_tz_t *day_tz, const cs_tz_t *tz, cs_ms_t now, cs_ms_t from,
                          cs_ms_t to, const char *locale, char *out, size_t size)
{
    bool de = strcmp(cs_locale_lang(locale), "de") == 0;
    char a[CS_FMT_MAX], b[CS_FMT_MAX];
    const char *loc = de ? "de" : cs_locale_for("en", locale); /* its region: date order */
    int64_t d0 = cs_tz_day(tz, now), df = cs_tz_day(day_tz, from), dt = cs_tz_day(day_tz, to);
    /* a reader a day ahead of the shop (Tokyo on Sunday, Berlin still on
     * Saturday) whose window ends on the shop's today: that day is still
     * today for the parcel, not a weekday gone by */
    if (dt < d0 && dt >= cs_tz_day(day_tz, now))
        d0 = dt;
    if (df < d0 && dt >= d0) /* begun already: what is left of it */
        df = d0;
    /* the same dates as the reader's days */
    from = cs_tz_day_start(tz, df);
    to = cs_tz_day_start(tz, dt);
    bool near = dt - d0 <= 6;
    if (df == dt && df == d0) {
        snprintf(out, size, de ? "heute" : "today");
        return out;
    }
    if (df == dt && df == d0 + 1) {
        snprintf(out, size, de ? "morgen" : "tomorrow");
        return out;
    }
    cs_fmt_date(from, tz, near ? CS_DATE_WEEKDAY : CS_DATE_DAY, loc, a, sizeof a);
    cs_fmt_date(to, tz, near ? CS_DATE_WEEKDAY : CS_DATE_DAY, loc, b, sizeof b);
    /* today and tomorrow by name at either end ("heute oder morgen",
     * "between tomorrow and Friday") */
    if (df == d0 || df == d0 + 1)
        cs_strlcpy(a, df == d0 ? (de ? "heute" : "today") : (de ? "morgen" : "tomorrow"),
                   sizeof a);
    if (dt == d0 + 1)
        cs_strlcpy(b, de ? "morgen" : "tomorrow", sizeof b);
    if (df == dt)
        snprintf(out, size, "%s%s", near ? "" : (de ? "am " : "on "), a);
    else if (dt == df + 1)
        snprintf(out, size, de ? "%s oder %s" : "%s or %s", a, b);
    else
        snprintf(out, size, de ? "zwischen %s und %s" : "between %s and %s", a, b);
    return out;
}
