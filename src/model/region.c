/*
 * region.c -- see region.h.
 */
#include "region.h"

#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "../lib/cs.h"
#include "../lib/cs_json.h"

/* Appends at most max bytes of src upper-cased to out[*n], within size
 * (one byte kept for the terminator), never cutting a character in two:
 * keys are shown in answers, which must stay UTF-8. Accented Latin letters
 * are upper-cased too, so "île-de-france" meets "Île-de-France"; the case
 * is changed before the cut, so both spellings keep as much. */
static void put_upper(char *out, size_t size, size_t *n, const char *src, size_t max)
{
    if (*n + 1 >= size)
        return;
    if (max > size - 1 - *n)
        max = size - 1 - *n;
    /* a letter of two bytes or more shrinks by one at most (dotless i to
     * I): twice max bytes of src are enough to fill max */
    *n += cs_utf8_case(out + *n, max, src, strnlen(src, 2 * max + 1), true);
}

/* ---- canonical regions for DE, AT and CH ----
 *
 * Checkout pages send ISO 3166-2 codes ("SN", "DE-SN") or only a postal
 * code; shops' shipments send state names ("Sachsen", "Saxony") and postal
 * codes. A lane learned from one must be found by the other, so for these
 * three countries every spelling becomes the ISO 3166-2 subdivision code.
 * Names compare folded: ASCII letters and digits lower-cased, everything
 * else dropped, umlauts and accents to their base letter, and "ae", "oe",
 * "ue" to "a", "o", "u" (so "Thüringen", "Thueringen" and "Thuringen"
 * meet). */
typedef struct subdiv {
    char cc[3];
    const char *code;
    const char *names; /* '|'-separated, as people write them */
} subdiv_t;

static const subdiv_t SUBDIVS[] = {
    { "DE", "BW", "Baden-Württemberg|Baden-Wurttemberg" },
    { "DE", "BY", "Bayern|Bavaria|Freistaat Bayern" },
    { "DE", "BE", "Berlin" },
    { "DE", "BB", "Brandenburg" },
    { "DE", "HB", "Bremen|Freie Hansestadt Bremen" },
    { "DE", "HH", "Hamburg|Freie und Hansestadt Hamburg" },
    { "DE", "HE", "Hessen|Hesse" },
    { "DE", "MV", "Mecklenburg-Vorpommern|Mecklenburg-Western Pomerania|"
                  "Mecklenburg-West Pomerania" },
    { "DE", "NI", "Niedersachsen|Lower Saxony" },
    { "DE", "NW", "Nordrhein-Westfalen|North Rhine-Westphalia|NRW" },
    { "DE", "RP", "Rheinland-Pfalz|Rhineland-Palatinate" },
    { "DE", "SL", "Saarland" },
    { "DE", "SN", "Sachsen|Saxony|Freistaat Sachsen" },
    { "DE", "ST", "Sachsen-Anhalt|Saxony-Anhalt" },
    { "DE", "SH", "Schleswig-Holstein" },
    { "DE", "TH", "Thüringen|Thuringia|Freistaat Thüringen" },
    { "AT", "1", "Burgenland" },
    { "AT", "2", "Kärnten|Carinthia" },
    { "AT", "3", "Niederösterreich|Lower Austria" },
    { "AT", "4", "Oberösterreich|Upper Austria" },
    { "AT", "5", "Salzburg" },
    { "AT", "6", "Steiermark|Styria" },
    { "AT", "7", "Tirol|Tyrol" },
    { "AT", "8", "Vorarlberg" },
    { "AT", "9", "Wien|Vienna" },
    { "CH", "AG", "Aargau|Argovie" },
    { "CH", "AI", "Appenzell Innerrhoden|Appenzell Rhodes-Intérieures" },
    { "CH", "AR", "Appenzell Ausserrhoden|Appenzell Rhodes-Extérieures" },
    { "CH", "BE", "Bern|Berne" },
    { "CH", "BL", "Basel-Landschaft|Basel-Land|Basel-Country|Bâle-Campagne" },
    { "CH", "BS", "Basel-Stadt|Basel-City|Bâle-Ville" },
    { "CH", "FR", "Freiburg|Fribourg" },
    { "CH", "GE", "Genf|Geneva|Genève" },
    { "CH", "GL", "Glarus|Glaris" },
    { "CH", "GR", "Graubünden|Grisons" },
    { "CH", "JU", "Jura" },
    { "CH", "LU", "Luzern|Lucerne" },
    { "CH", "NE", "Neuenburg|Neuchâtel" },
    { "CH", "NW", "Nidwalden|Nidwald" },
    { "CH", "OW", "Obwalden|Obwald" },
    { "CH", "SG", "St. Gallen|Sankt Gallen|St. Gall|Saint-Gall" },
    { "CH", "SH", "Schaffhausen|Schaffhouse" },
    { "CH", "SO", "Solothurn|Soleure" },
    { "CH", "SZ", "Schwyz" },
    { "CH", "TG", "Thurgau|Thurgovie" },
    { "CH", "TI", "Tessin|Ticino" },
    { "CH", "UR", "Uri" },
    { "CH", "VD", "Waadt|Vaud" },
    { "CH", "VS", "Wallis|Valais" },
    { "CH", "ZG", "Zug|Zoug" },
    { "CH", "ZH", "Zürich|Zurich" },
};
#define N_SUBDIVS (sizeof SUBDIVS / sizeof SUBDIVS[0])

/* German postcode zones (the first two digits) by the state most of the
 * zone lies in. A few zones cross a border (Neu-Ulm, 89231, is keyed BW;
 * Altenburg, 04600, SN): the lane key only has to be the same for the
 * same address, and a neighbouring state's delivery times are close. */
static const char DE_ZONES[100][3] = {
    [1] = "SN",  [2] = "SN",  [3] = "BB",  [4] = "SN",  [6] = "ST",  [7] = "TH",  [8] = "SN",
    [9] = "SN",  [10] = "BE", [12] = "BE", [13] = "BE", [14] = "BB", [15] = "BB", [16] = "BB",
    [17] = "MV", [18] = "MV", [19] = "MV", [20] = "HH", [21] = "NI", [22] = "HH", [23] = "SH",
    [24] = "SH", [25] = "SH", [26] = "NI", [27] = "NI", [28] = "HB", [29] = "NI", [30] = "NI",
    [31] = "NI", [32] = "NW", [33] = "NW", [34] = "HE", [35] = "HE", [36] = "HE", [37] = "NI",
    [38] = "NI", [39] = "ST", [40] = "NW", [41] = "NW", [42] = "NW", [44] = "NW", [45] = "NW",
    [46] = "NW", [47] = "NW", [48] = "NW", [49] = "NI", [50] = "NW", [51] = "NW", [52] = "NW",
    [53] = "NW", [54] = "RP", [55] = "RP", [56] = "RP", [57] = "NW", [58] = "NW", [59] = "NW",
    [60] = "HE", [61] = "HE", [63] = "HE", [64] = "HE", [65] = "HE", [66] = "SL", [67] = "RP",
    [68] = "BW", [69] = "BW", [70] = "BW", [71] = "BW", [72] = "BW", [73] = "BW", [74] = "BW",
    [75] = "BW", [76] = "BW", [77] = "BW", [78] = "BW", [79] = "BW", [80] = "BY", [81] = "BY",
    [82] = "BY", [83] = "BY", [84] = "BY", [85] = "BY", [86] = "BY", [87] = "BY", [88] = "BW",
    [89] = "BW", [90] = "BY", [91] = "BY", [92] = "BY", [93] = "BY", [94] = "BY", [95] = "BY",
    [96] = "BY", [97] = "BY", [98] = "TH", [99] = "TH",
};

/* Austrian postal zones (the first two digits) by the state most of the
 * zone lies in (ISO 3166-2:AT numbers): 1 Vienna, 2-3 Lower Austria, 4
 * Upper Austria (and the Innviertel's 52), 5 Salzburg, 60-66 Tyrol, 67-69
 * Vorarlberg, 7 Burgenland, 8 Styria, 90-98 Carinthia, 99 East Tyrol. */
static const char AT_ZONES[100][2] = {
    [10] = "9", [11] = "9", [12] = "9", [13] = "3", [14] = "9", [15] = "9", [16] = "9",
    [17] = "9", [18] = "9", [19] = "9", [20] = "3", [21] = "3", [22] = "3", [23] = "3",
    [24] = "3", [25] = "3", [26] = "3", [27] = "3", [28] = "3", [29] = "3", [30] = "3",
    [31] = "3", [32] = "3", [33] = "3", [34] = "3", [35] = "3", [36] = "3", [37] = "3",
    [38] = "3", [39] = "3", [40] = "4", [41] = "4", [42] = "4", [43] = "4", [44] = "4",
    [45] = "4", [46] = "4", [47] = "4", [48] = "4", [49] = "4", [50] = "5", [51] = "5",
    [52] = "4", [53] = "5", [54] = "5", [55] = "5", [56] = "5", [57] = "5", [60] = "7",
    [61] = "7", [62] = "7", [63] = "7", [64] = "7", [65] = "7", [66] = "7", [67] = "8",
    [68] = "8", [69] = "8", [70] = "1", [71] = "1", [72] = "1", [73] = "1", [74] = "1",
    [75] = "1", [76] = "1", [80] = "6", [81] = "6", [82] = "6", [83] = "6", [84] = "6",
    [85] = "6", [86] = "6", [87] = "6", [88] = "6", [89] = "6", [90] = "2", [91] = "2",
    [92] = "2", [93] = "2", [94] = "2", [95] = "2", [96] = "2", [97] = "2", [98] = "2",
    [99] = "7",
};

/* Swiss postal zones by the canton most of the zone lies in. Swiss codes
 * follow the post's routes rather than cantonal borders, so more places
 * near a border take a neighbour's key than in Germany (Einsiedeln, 8840,
 * is keyed ZH): the same address always gets the same key. */
static const char CH_ZONES[100][3] = {
    [10] = "VD", [11] = "VD", [12] = "GE", [13] = "VD", [14] = "VD", [15] = "VD", [16] = "FR",
    [17] = "FR", [18] = "VD", [19] = "VS", [20] = "NE", [21] = "NE", [22] = "NE", [23] = "NE",
    [24] = "NE", [25] = "BE", [26] = "BE", [27] = "BE", [28] = "JU", [29] = "JU", [30] = "BE",
    [31] = "BE", [32] = "BE", [33] = "BE", [34] = "BE", [35] = "BE", [36] = "BE", [37] = "BE",
    [38] = "BE", [39] = "VS", [40] = "BS", [41] = "BL", [42] = "BL", [43] = "AG", [44] = "BL",
    [45] = "SO", [46] = "SO", [47] = "SO", [48] = "AG", [49] = "BE", [50] = "AG", [51] = "AG",
    [52] = "AG", [53] = "AG", [54] = "AG", [55] = "AG", [56] = "AG", [57] = "AG", [60] = "LU",
    [61] = "LU", [62] = "LU", [63] = "ZG", [64] = "SZ", [65] = "TI", [66] = "TI", [67] = "TI",
    [68] = "TI", [69] = "TI", [70] = "GR", [71] = "GR", [72] = "GR", [73] = "GR", [74] = "GR",
    [75] = "GR", [76] = "GR", [77] = "GR", [80] = "ZH", [81] = "ZH", [82] = "SH", [83] = "ZH",
    [84] = "ZH", [85] = "TG", [86] = "ZH", [87] = "SG", [88] = "ZH", [89] = "ZH", [90] = "SG",
    [91] = "AR", [92] = "SG", [93] = "SG", [94] = "SG", [95] = "SG", [96] = "SG",
};

#define FOLD_MAX 48

/* The folded form of s[0..n) into out (FOLD_MAX bytes); false when it is
 * longer or holds a character no name in the table has. */
static bool fold(const char *s, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *add = NULL;
        char one[2] = { 0, 0 };
        if (isalnum(c) && c < 0x80) {
            one[0] = (char)tolower(c);
            add = one;
        } else if (c < 0x80) {
            continue; /* spaces, '-', '.', '\'' */
        } else if (c == 0xC3 && i + 1 < n) {
            unsigned char d = (unsigned char)s[++i] | 0x20; /* Latin-1 capitals to small */
            switch (d) {
            case 0xA0: case 0xA1: case 0xA2: case 0xA4: add = "a"; break;
            case 0xA7: add = "c"; break;
            case 0xA8: case 0xA9: case 0xAA: case 0xAB: add = "e"; break;
            case 0xAE: case 0xAF: add = "i"; break;
            case 0xB4: case 0xB6: add = "o"; break;
            case 0xBB: case 0xBC: add = "u"; break;
            default:
                if ((unsigned char)s[i] == 0x9F) { /* ß */
                    add = "ss";
                    break;
                }
                return false;
            }
        } else {
            return false;
        }
        for (; *add; add++) {
            if (*add == 'e' && k && (out[k - 1] == 'a' || out[k - 1] == 'o' || out[k - 1] == 'u'))
                continue; /* "ae" is "ä" is "a" */
            if (k + 1 >= FOLD_MAX)
                return false;
            out[k++] = *add;
        }
    }
    out[k] = '\0';
    return k > 0;
}

static char folded[N_SUBDIVS][8][FOLD_MAX]; /* the names, folded once */
static pthread_once_t folded_once = PTHREAD_ONCE_INIT;

static void fold_names(void)
{
    for (size_t i = 0; i < N_SUBDIVS; i++) {
        const char *p = SUBDIVS[i].names;
        for (size_t j = 0; j < 8 && *p; j++) {
            const char *bar = strchr(p, '|');
            size_t n = bar ? (size_t)(bar - p) : strlen(p);
            if (!fold(p, n, folded[i][j]))
                folded[i][j][0] = '\0';
            p += n + (bar ? 1 : 0);
        }
    }
}

/* The subdivision code of a DE, AT or CH region as written ("SN", "DE-SN",
 * "sachsen", "Saxony"); NULL when it is none of them. */
static const char *subdiv_code(const char *cc, const char *region)
{
    size_t n = strlen(region);
    if (n > 3 && strncasecmp(region, cc, 2) == 0 && region[2] == '-') {
        region += 3; /* "DE-SN" */
        n -= 3;
    }
    for (size_t i = 0; i < N_SUBDIVS; i++)
        if (strcmp(SUBDIVS[i].cc, cc) == 0 && strlen(SUBDIVS[i].code) == n &&
            strncasecmp(SUBDIVS[i].code, region, n) == 0)
            return SUBDIVS[i].code;
    char f[FOLD_MAX];
    if (!fold(region, n, f))
        return NULL;
    pthread_once(&folded_once, fold_names);
    for (size_t i = 0; i < N_SUBDIVS; i++)
        if (strcmp(SUBDIVS[i].cc, cc) == 0)
            for (size_t j = 0; j < 8 && folded[i][j][0]; j++)
                if (strcmp(folded[i][j], f) == 0)
                    return SUBDIVS[i].code;
    return NULL;
}

/* The state (canton) of a DE, AT or CH postal code by its zone, the
 * first two of its five (four) digits (postal as cs_postal_norm leaves it:
 * "D-04109" is "04109"); NULL for another form or an unused zone. */
static const char *postal_state(const char *cc, const char *postal)
{
    size_t n = 0;
    while (isdigit((unsigned char)postal[n]))
        n++;
    bool de = strcmp(cc, "DE") == 0;
    if (postal[n] || n != (de ? 5u : 4u))
        return NULL;
    int zone = (postal[0] - '0') * 10 + (postal[1] - '0');
    const char *st = de ? DE_ZONES[zone] : strcmp(cc, "AT") == 0 ? AT_ZONES[zone] : CH_ZONES[zone];
    return st[0] ? st : NULL;
}

/* Shops and customers write one code both ways (" 10115 " from a form,
 * "LT-01103" or "D 01067" stored, "01103" typed); keys and the tracking
 * page's lookup read it as this. A prefix of one or two letters counts as
 * a country's when a hyphen or white space follows it and digits alone
 * come after: "SW1A 1AA" and "1012 AB" have none. */
void cs_postal_norm(const char *in, char *out, size_t size)
{
    size_t o = 0;
    if (!size)
        return;
    while (in && isspace((unsigned char)*in))
        in++;
    /* the letters before the first blank, when they are one or two */
    size_t lead = 0;
    while (in && lead < 3 && isalpha((unsigned char)in[lead]))
        lead++;
    bool spaced = lead && lead < 3 && isspace((unsigned char)in[lead]);
    for (; in && *in && o + 1 < size; in++)
        if (!isspace((unsigned char)*in))
            out[o++] = *in;
    out[o] = '\0';
    size_t letters = 0;
    while (letters < 2 && isalpha((unsigned char)out[letters]))
        letters++;
    size_t skip = letters + 1; /* the letters and their hyphen */
    if (spaced && letters == lead && out[letters] != '-')
        skip = letters;        /* "D 01067": the blank was the separator */
    else if (!letters || out[letters] != '-')
        return;
    if (!out[skip])
        return;
    for (size_t i = skip; out[i]; i++)
        if (!isdigit((unsigned char)out[i]))
            return;
    memmove(out, out + skip, o - skip + 1); /* with its NUL */
}

/* no postal code is longer (a key reads its first characters) */
#define POSTAL_NORM_MAX 24

#define REGION_TRIM_MAX 128 /* more than a key or a folded name uses */

/* A region without the white space around it (" Île-de-France " from a
 * form), into out; "" for NULL or white space alone, which name no
 * region. */
static void region_trim(const char *in, char out[REGION_TRIM_MAX])
{
    size_t n = 0;
    while (in && isspace((unsigned char)*in))
        in++;
    if (in) {
        n = strlen(in);
        while (n && isspace((unsigned char)in[n - 1]))
            n--;
        n = cs_utf8_clip(in, n, REGION_TRIM_MAX - 1);
        memcpy(out, in, n);
    }
    out[n] = '\0';
}

/* Every delivery learned and every order watched asks for two of these:
 * written directly, not through snprintf. For DE, AT and CH a postal code
 * in a known zone decides (whatever region is given with it), else the
 * region. A region these countries know by name or code
 * becomes its ISO 3166-2 code; anything else is kept as written, and other
 * countries' keys are as they always were. */
void cs_region_key(const char *country, const char *region, const char *postal, char *out,
                   size_t size)
{
    size_t n = 0;
    const char *r = "";
    size_t r_max = 23;
    if (!size)
        return;
    char cc[3] = "";
    if (country && country[0] && country[1] && !country[2]) {
        cc[0] = (char)toupper((unsigned char)country[0]);
        cc[1] = (char)toupper((unsigned char)country[1]);
    }
    char pc[POSTAL_NORM_MAX];
    cs_postal_norm(postal, pc, sizeof pc);
    postal = pc;
    char rg[REGION_TRIM_MAX];
    region_trim(region, rg);
    region = rg;
    const char *code = NULL;
    bool known = strcmp(cc, "DE") == 0 || strcmp(cc, "AT") == 0 || strcmp(cc, "CH") == 0;
    if (known)
        code = postal_state(cc, postal);
    if (!code && region && *region && known)
        code = subdiv_code(cc, region);
    if (code) {
        r = code;
    } else if (region && *region) {
        r = region;
    } else if (postal && postal[0] && postal[1]) {
        r = postal;
        r_max = 2;
    }
    if (country)
        put_upper(out, size, &n, country, 7);
    if (n && *r)
        put_upper(out, size, &n, "-", 1);
    put_upper(out, size, &n, r, r_max);
    out[n] = '\0';
}

void cs_region_key_json(const char *address_json, char *out, size_t size)
{
    out[0] = '\0';
    if (!address_json || !*address_json)
        return;
    json_t *a = cs_json_loadb(address_json, strlen(address_json), NULL);
    if (!a)
        return;
    cs_region_key(json_string_value(json_object_get(a, "country")),
                  json_string_value(json_object_get(a, "region")),
                  json_string_value(json_object_get(a, "postal_code")), out, size);
    json_decref(a);
}

bool cs_region_key_specific(const char *key)
{
    return key && strchr(key, '-') && strchr(key, '-')[1];
}
