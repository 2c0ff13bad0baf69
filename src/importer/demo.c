/*
 * demo.c -- a realistic German demo shop, deterministic for a seed:
 * "Waldkauz Haus & Outdoor", a home, kitchen and outdoor shop with coffee
 * and other consumables that are bought again.
 *
 * For every customer (German and some English-speaking, with real cities,
 * postcodes and Bundesländer, consents at realistic opt-in rates) it draws
 * a number of orders over the period (more on Sundays and Mondays, a
 * November/December peak, loyal repeat buyers next to one-off buyers). Each
 * order gets its confirmation message statuses, a shipment with DHL, DPD,
 * Hermes or GLS and the carrier's scans with German texts: most parcels
 * arrive within the promised window, some are late (with a delay scan and
 * often a "Wo ist meine Bestellung?" ticket), some miss the recipient and
 * wait at a Packstation or Paketshop, a few are damaged on the way and
 * sent again in a second parcel. Some
 * orders are returned within the 14-day Widerruf period; reviews and NPS
 * answers (German or English, by the customer's locale) are kinder when
 * the parcel came on time. Nothing after the period's end (by default now)
 * is emitted: an order whose next scan would come later is left where it
 * is, on its way, late or waiting for pickup, as in a live shop.
 *
 * Every event is built as JSON and validated like any other input.
 */
#include "importer.h"

#include <string.h>

/* ---- a small deterministic generator (splitmix64) ---- */

typedef struct rng {
    uint64_t s;
} rng_t;

static uint64_t next_u64(rng_t *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static int rint_(rng_t *r, int lo, int hi) /* inclusive */
{
    return lo + (int)(next_u64(r) % (uint64_t)(hi - lo + 1));
}

static double runit(rng_t *r)
{
    return (double)(next_u64(r) >> 11) / 9007199254740992.0;
}

static bool chance(rng_t *r, double p)
{
    return runit(r) < p;
}

#define PICK(r, arr) ((arr)[rint_((r), 0, (int)CS_ARRAY_LEN(arr) - 1)])

/* ---- the shop's data ---- */

typedef struct product {
    const char *sku, *name, *category;
    int price_cents;
    int repurchase_days; /* 0 = not a consumable */
} product_t;

static const product_t catalogue[] = {
    {"KAF-ESP-500", "Espressobohnen Bio, 500 g", "kaffee", 1490, 30},
    {"KAF-CRE-1000", "Caffè Crema Bohnen, 1 kg", "kaffee", 2290, 45},
    {"KAF-FIL-250", "Filterkaffee gemahlen, 250 g", "kaffee", 790, 21},
    {"FIL-4-100", "Kaffeefilter Gr. 4, 100 Stück", "kaffee", 349, 60},
    {"TEE-GRN-100", "Grüner Tee Sencha, 100 g", "tee", 890, 40},
    {"ENT-KAL-3", "Entkalker für Kaffeemaschinen, 3 Stück", "kaffee", 1199, 90},
    {"MUH-HND-01", "Handkaffeemühle Keramikmahlwerk", "kaffee", 4990, 0},
    {"BRU-FRZ-08", "French Press 0,8 l Edelstahl", "kaffee", 3490, 0},
    {"PAN-GUS-28", "Gusseisenpfanne 28 cm", "kueche", 5990, 0},
    {"PAN-EDS-24", "Edelstahlpfanne 24 cm", "kueche", 3990, 0},
    {"TOP-SET-4", "Kochtopf-Set 4-teilig", "kueche", 12900, 0},
    {"MES-KOC-20", "Kochmesser 20 cm, geschmiedet", "kueche", 7990, 0},
    {"BRT-AKZ-03", "Schneidebrett Akazie", "kueche", 2990, 0},
    {"BEC-STG-350", "Steingut-Becher 350 ml, 2er-Set", "kueche", 2490, 0},
    {"SPL-BIO-1L", "Bio-Spülmittel Nachfüllpack 1 l", "haushalt", 549, 35},
    {"SCH-KOM-06", "Kompostierbare Spülschwämme, 6 Stück", "haushalt", 699, 45},
    {"KRZ-BIE-4", "Bienenwachskerzen, 4 Stück", "wohnen", 1890, 0},
    {"DEC-WOL-150", "Wolldecke Lodenoptik 150x200", "wohnen", 8990, 0},
    {"KIS-LEI-40", "Kissenbezug Leinen 40x40", "wohnen", 2490, 0},
    {"LAM-TSC-01", "Tischleuchte Messing", "wohnen", 11900, 0},
    {"GRL-KUG-57", "Kugelgrill 57 cm", "garten", 19900, 0},
    {"GRL-BES-3", "Grillbesteck Edelstahl, 3-teilig", "garten", 3490, 0},
    {"GRL-KOH-10", "Buchenholzkohle 10 kg", "garten", 1990, 40},
    {"GAR-SCH-01", "Gartenschere Bypass", "garten", 2990, 0},
    {"GAR-HAN-M", "Gartenhandschuhe, Größe M", "garten", 1290, 0},
    {"SAA-KRA-6", "Kräutersamen-Set, 6 Sorten", "garten", 990, 120},
    {"ERD-BIO-20", "Bio-Blumenerde torffrei, 20 l", "garten", 899, 90},
    {"ZEL-TRK-2", "Trekkingzelt 2 Personen", "outdoor", 18900, 0},
    {"SCH-SAK-3", "Schlafsack 3 Jahreszeiten", "outdoor", 9990, 0},
    {"RUC-WAN-30", "Wanderrucksack 30 l", "outdoor", 8990, 0},
    {"LMP-STI-USB", "Stirnlampe USB-C, 400 lm", "outdoor", 3490, 0},
    {"FLA-ISO-750", "Isolierflasche 750 ml", "outdoor", 2990, 0},
    {"SOC-MER-3", "Wandersocken Merino, 3 Paar", "outdoor", 2790, 180},
    {"KOC-GAS-01", "Gaskocher kompakt", "outdoor", 4490, 0},
    {"GAS-KAR-4", "Gaskartuschen, 4 Stück", "outdoor", 1596, 60},
    {"MAT-ISO-01", "Isomatte selbstaufblasend", "outdoor", 6990, 0},
    {"REG-JAC-M", "Regenjacke wasserdicht, Herren", "bekleidung", 12900, 0},
    {"REG-JAC-W", "Regenjacke wasserdicht, Damen", "bekleidung", 12900, 0},
    {"MUE-FLE-01", "Fleecemütze", "bekleidung", 1990, 0},
    {"HAN-WOL-01", "Wollhandschuhe", "bekleidung", 2290, 0},
};

typedef struct city {
    const char *name, *postcode, *region;
} city_t;

static const city_t cities[] = {
    {"Berlin", "10115", "Berlin"},           {"Berlin", "12043", "Berlin"},
    {"Hamburg", "20095", "Hamburg"},         {"Hamburg", "22767", "Hamburg"},
    {"München", "80331", "Bayern"},          {"München", "81675", "Bayern"},
    {"Köln", "50667", "Nordrhein-Westfalen"}, {"Düsseldorf", "40213", "Nordrhein-Westfalen"},
    {"Dortmund", "44135", "Nordrhein-Westfalen"}, {"Essen", "45127", "Nordrhein-Westfalen"},
    {"Münster", "48143", "Nordrhein-Westfalen"}, {"Frankfurt am Main", "60311", "Hessen"},
    {"Kassel", "34117", "Hessen"},           {"Stuttgart", "70173", "Baden-Württemberg"},
    {"Freiburg im Breisgau", "79098", "Baden-Württemberg"},
    {"Karlsruhe", "76133", "Baden-Württemberg"}, {"Leipzig", "04109", "Sachsen"},
    {"Dresden", "01067", "Sachsen"},         {"Hannover", "30159", "Niedersachsen"},
    {"Braunschweig", "38100", "Niedersachsen"}, {"Bremen", "28195", "Bremen"},
    {"Nürnberg", "90402", "Bayern"},         {"Regensburg", "93047", "Bayern"},
    {"Mainz", "55116", "Rheinland-Pfalz"},   {"Trier", "54290", "Rheinland-Pfalz"},
    {"Saarbrücken", "66111", "Saarland"},    {"Kiel", "24103", "Schleswig-Holstein"},
    {"Lübeck", "23552", "Schleswig-Holstein"}, {"Rostock", "18055", "Mecklenburg-Vorpommern"},
    {"Erfurt", "99084", "Thüringen"},        {"Jena", "07743", "Thüringen"},
    {"Magdeburg", "39104", "Sachsen-Anhalt"}, {"Halle (Saale)", "06108", "Sachsen-Anhalt"},
    {"Potsdam", "14467", "Brandenburg"},     {"Cottbus", "03046", "Brandenburg"},
};

static const char *const first_de[] = {
    "Anna", "Lena", "Marie", "Sophie", "Laura", "Julia", "Katharina", "Sabine", "Petra",
    "Claudia", "Hannah", "Lea", "Johanna", "Charlotte", "Ursula", "Monika", "Lukas", "Jonas",
    "Leon", "Felix", "Maximilian", "Paul", "Tobias", "Stefan", "Thomas", "Michael", "Andreas",
    "Jürgen", "Klaus", "Matthias", "Florian", "Sebastian", "Jan", "Niklas", "Moritz", "Uwe"};
static const char *const last_de[] = {
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
    "Schulz", "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder",
    "Neumann", "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann", "Hartmann", "Lange",
    "Schmitt", "Werner", "Krause", "Meier", "Lehmann", "Köhler", "Herrmann", "Walter", "Kaiser"};
static const char *const first_en[] = {"Emily", "Oliver", "Grace", "James", "Chloe", "Daniel",
                                       "Olivia", "Liam", "Amelia", "Noah", "Sarah", "David"};
static const char *const last_en[] = {"Smith", "Johnson", "Brown", "Taylor", "Wilson", "Evans",
                                      "Walker", "Wright", "Thompson", "Hughes", "Clarke", "Murphy"};
static const char *const mail_domains[] = {"web.de", "gmx.de", "t-online.de", "gmail.com",
                                           "posteo.de", "outlook.de", "mailbox.org"};

typedef struct carrier {
    const char *code, *service;
    const char *hub_out, *hub_in_prefix;
    double late_rate;
} carrier_t;

static const carrier_t carriers[] = {
    {"dhl", "DHL Paket", "Paketzentrum Radefeld", "Paketzentrum", 0.09},
    {"dpd", "DPD Classic", "Depot Leipzig", "Depot", 0.12},
    {"hermes", "Hermes Standard", "Logistik-Center Leipzig", "Verteilzentrum", 0.16},
    {"gls", "GLS BusinessParcel", "Depot Leipzig-Schkeuditz", "Depot", 0.11},
};
static const int carrier_weights[] = {50, 20, 20, 10};

/* German carrier texts by normalized status (raw code, text). */
static const char *const texts_info[][2] = {
    {"ANNOUNCED", "Die Sendung wurde elektronisch angekündigt."},
    {"LABEL", "Der Auftrag zur Sendung ist beim Versender eingegangen."}};
static const char *const texts_transit[][2] = {
    {"PCK_START", "Die Sendung wurde im Start-Paketzentrum bearbeitet."},
    {"PCK_HUB", "Die Sendung wurde im Ziel-Paketzentrum bearbeitet."},
    {"TRANSIT", "Die Sendung ist auf dem Weg zum Zustelldepot."}};
static const char *const text_delay[2] = {"DELAY", "Die Sendung verzögert sich aufgrund hohen Sendungsaufkommens."};
static const char *const text_out[2] = {"OUT_DEL", "Die Sendung wurde in das Zustellfahrzeug geladen."};
static const char *const text_failed[2] = {"NOT_HOME", "Der Empfänger wurde nicht angetroffen."};
static const char *const text_pickup[][2] = {
    {"PACKSTATION", "Die Sendung liegt in der Packstation zur Abholung bereit."},
    {"PAKETSHOP", "Die Sendung liegt im Paketshop zur Abholung bereit."}};
static const char *const text_delivered[][2] = {
    {"DLVRD", "Die Sendung wurde erfolgreich zugestellt."},
    {"DLVRD_NEIGHBOUR", "Die Sendung wurde beim Nachbarn abgegeben."},
    {"DLVRD_PICKUP", "Die Sendung wurde abgeholt."}};
static const char *const text_exception[2] = {"DAMAGED", "Die Sendung wurde beschädigt und wird an den Absender zurückgeschickt."};
static const char *const text_returned[2] = {"RETURN", "Die Sendung wird an den Absender zurückgesendet."};

static const char *const review_de_good[][2] = {
    {"Sehr zufrieden", "Schnelle Lieferung, alles bestens verpackt. Gerne wieder!"},
    {"Top Qualität", "Die Qualität ist hervorragend, genau wie beschrieben."},
    {"Empfehlenswert", "Super Produkt, bin begeistert. Lieferung kam pünktlich."},
    {"Alles prima", "Bestellung lief problemlos, Ware einwandfrei."}};
static const char *const review_de_mid[][2] = {
    {"Ganz okay", "Produkt ist in Ordnung, die Lieferung hat aber gedauert."},
    {"Geht so", "Qualität passt, aber der Versand war langsamer als angekündigt."}};
static const char *const review_de_bad[][2] = {
    {"Enttäuscht", "Lieferung kam viel zu spät, niemand hat sich gemeldet."},
    {"Leider nicht gut", "Das Paket war tagelang unterwegs, und auf meine Nachfrage kam erst spät eine Antwort."}};
static const char *const review_en_good[][2] = {
    {"Very happy", "Fast delivery and great quality. Would order again."},
    {"Great product", "Exactly as described, well packed, arrived on time."}};
static const char *const review_en_mid[][2] = {
    {"It's fine", "The product is fine but delivery took longer than promised."}};
static const char *const review_en_bad[][2] = {
    {"Disappointed", "The parcel arrived very late and nobody told me why."}};

/* ---- generation ---- */

typedef struct gen {
    rng_t r;
    cs_emit_fn emit;
    void *arg;
    cs_import_stats_t *st;
    cs_ms_t start, end;
    uint64_t seed;
    int n_orders;
    int n_tickets, n_returns, n_reviews;
} gen_t;

typedef struct cust {
    char id[32], name[96], email[128], phone[24], locale[8];
    const city_t *city;
    bool consent_mkt, consent_sms, consent_wa;
} cust_t;

static cs_rc emit_doc(gen_t *g, json_t *doc, cs_err_t *err)
{
    cs_event_t *ev = NULL;
    cs_err_t e;
    if (!doc)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    cs_rc rc = cs_event_from_json(doc, &ev, &e);
    json_decref(doc);
    if (rc)
        return cs_errf(err, rc == CS_ERR_NOMEM ? CS_ERR_NOMEM : CS_ERR_INTERNAL,
                       "demo generator built an invalid event: %s", e.msg);
    g->st->read++;
    g->st->by_type[ev->type]++;
    return g->emit(g->arg, ev, NULL, 0, err);
}

/* An event at time t (skipped when after the period's end). */
static cs_rc event(gen_t *g, const char *type, const char *id_fmt_a, const char *id_b,
                   cs_ms_t t, json_t *data, cs_err_t *err)
{
    char eid[160], at[40];
    if (t > g->end) {
        json_decref(data);
        return CS_OK;
    }
    snprintf(eid, sizeof eid, "demo-%llu:%s:%s", (unsigned long long)g->seed, id_fmt_a, id_b);
    cs_time_format(t, at, sizeof at);
    return emit_doc(g,
                    json_pack("{s:s, s:s, s:s, s:s, s:o}", "event_id", eid, "type", type,
                              "occurred_at", at, "source", "waldkauz-shop", "data", data),
                    err);
}

static void make_customer(gen_t *g, int n, cust_t *c)
{
    bool en = chance(&g->r, 0.15);
    const char *first = en ? PICK(&g->r, first_en) : PICK(&g->r, first_de);
    const char *last = en ? PICK(&g->r, last_en) : PICK(&g->r, last_de);
    char user[64];
    size_t k = 0;
    memset(c, 0, sizeof *c);
    snprintf(c->id, sizeof c->id, "K-%05d", 10000 + n);
    snprintf(c->name, sizeof c->name, "%s %s", first, last);
    /* mailbox: ascii-folded first.last + the customer's number */
    const char *parts[2] = {first, last};
    for (int p = 0; p < 2; p++) {
        for (const unsigned char *s = (const unsigned char *)parts[p]; *s && k + 3 < sizeof user; s++) {
            if (*s == 0xC3 && s[1]) {
                s++;
                const char *rep = *s == 0xBC ? "ue" : *s == 0xB6 ? "oe" : *s == 0xA4 ? "ae" : "ss";
                user[k++] = rep[0];
                user[k++] = rep[1];
            } else if (*s >= 'A' && *s <= 'Z') {
                user[k++] = (char)(*s - 'A' + 'a');
            } else if (*s >= 'a' && *s <= 'z') {
                user[k++] = (char)*s;
            }
        }
        if (p == 0)
            user[k++] = '.';
    }
    user[k] = '\0';
    /* the customer's number keeps the address unique within a run: two
     * customers of one name would otherwise share a mailbox */
    snprintf(c->email, sizeof c->email, "%s%d@%s", user, n + 1, PICK(&g->r, mail_domains));
    snprintf(c->phone, sizeof c->phone, "+49151%08d", rint_(&g->r, 10000000, 99999999));
    snprintf(c->locale, sizeof c->locale, "%s", en ? "en" : "de");
    c->city = &PICK(&g->r, cities);
    c->consent_mkt = chance(&g->r, 0.42);
    c->consent_sms = chance(&g->r, 0.28);
    c->consent_wa = chance(&g->r, 0.14);
}

static json_t *customer_json(const cust_t *c)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:{s:b, s:b}, s:{s:b, s:b}, s:{s:b, s:b}}, "
                     "s:{s:s, s:s, s:s}}",
                     "id", c->id, "name", c->name, "email", c->email, "phone", c->phone, "locale",
                     c->locale, "timezone", "Europe/Berlin", "consents", "email", "transactional",
                     1, "marketing", c->consent_mkt, "sms", "transactional", c->consent_sms,
                     "marketing", c->consent_sms && c->consent_mkt, "whatsapp", "transactional",
                     c->consent_wa, "marketing", 0, "attributes", "city", c->city->name,
                     "postal_code", c->city->postcode, "region", c->city->region);
}

/* A purchase time in [lo, hi]: weekdays weighted (Sunday and Monday
 * busiest), evening heavy, November and December twice as likely. Never
 * after hi: a customer whose first order fell after the period's end
 * would be generated and never buy. */
static cs_ms_t draw_time(gen_t *g, cs_ms_t lo, cs_ms_t hi)
{
    static const int day_weight[7] = {10, 13, 9, 8, 8, 7, 6}; /* Thu..Wed from the epoch: fixed below */
    /* the days that hold a time <= hi: hi at midnight ends the day before */
    cs_ms_t first = lo / CS_MS_PER_DAY, last = (hi - 1) / CS_MS_PER_DAY;
    for (int tries = 0; tries < 50; tries++) {
        cs_ms_t day = first + (cs_ms_t)(next_u64(&g->r) % (uint64_t)(last - first + 1));
        int wd = (int)((day + 4) % 7); /* 0 = Sunday (1970-01-01 was a Thursday) */
        int w = day_weight[wd];
        char buf[40];
        cs_time_format(day * CS_MS_PER_DAY, buf, sizeof buf);
        if (buf[5] == '1' && (buf[6] == '1' || buf[6] == '2'))
            w *= 2;
        if (rint_(&g->r, 0, 26) < w) {
            int hour = chance(&g->r, 0.55) ? rint_(&g->r, 17, 22) : rint_(&g->r, 6, 16);
            cs_ms_t t = day * CS_MS_PER_DAY + (cs_ms_t)hour * 3600000 + rint_(&g->r, 0, 3599) * 1000LL;
            if (t >= lo && t <= hi)
                return t;
        }
    }
    return lo;
}

static cs_ms_t add_business_days(cs_ms_t t, int n)
{
    while (n > 0) {
        t += CS_MS_PER_DAY;
        int wd = (int)((t / CS_MS_PER_DAY + 4) % 7);
        if (wd != 0)
            n--; /* Sunday: no delivery */
    }
    return t;
}

static cs_ms_t at_hour(cs_ms_t t, int hour, int minute)
{
    return (t / CS_MS_PER_DAY) * CS_MS_PER_DAY + (cs_ms_t)hour * 3600000 + (cs_ms_t)minute * 60000;
}

static json_t *loc(const char *city, const char *postcode)
{
    json_t *l = json_pack("{s:s, s:s}", "city", city, "country", "DE");
    if (l && postcode)
        json_object_set_new(l, "postal_code", json_string(postcode));
    return l;
}

static cs_rc scan(gen_t *g, const char *oid, const char *tag, const char *sid,
                  const carrier_t *ca, const char *tn, const char *status, const char *const t2[2],
                  json_t *where, cs_ms_t t, cs_err_t *err)
{
    char key[96];
    snprintf(key, sizeof key, "%s:%s", oid, tag);
    return event(g, "tracking.event", "scan", key, t,
                 json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "shipment_id", sid, "carrier",
                           ca->code, "tracking_number", tn, "status", status, "carrier_code",
                           t2[0], "carrier_text", t2[1], "location", where),
                 err);
}

/* A tracking number in the carrier's layout. */
static void tracking_number(gen_t *g, const carrier_t *ca, int n, char *tn, size_t size)
{
    if (strcmp(ca->code, "dhl") == 0)
        snprintf(tn, size, "00340434%06d%06d", n % 1000000, rint_(&g->r, 0, 999999));
    else if (strcmp(ca->code, "dpd") == 0)
        snprintf(tn, size, "0150%06d%04d", n % 1000000, rint_(&g->r, 0, 9999));
    else if (strcmp(ca->code, "hermes") == 0)
        snprintf(tn, size, "H10%06d%08d", n % 1000000, rint_(&g->r, 0, 99999999));
    else
        snprintf(tn, size, "ZK%06d%03d", n % 1000000, rint_(&g->r, 0, 999));
}

static json_t *shipment_json(const char *sid, const char *oid, const carrier_t *ca,
                             const char *tn, const cust_t *c)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s}, s:{s:s, s:s, s:s, s:s}}",
                     "id", sid, "order_id", oid, "carrier", ca->code, "service", ca->service,
                     "tracking_number", tn, "origin", "postal_code", "04109", "city", "Leipzig",
                     "region", "Sachsen", "country", "DE", "destination", "postal_code",
                     c->city->postcode, "city", c->city->name, "region", c->city->region,
                     "country", "DE");
}

/* A parcel damaged on its way goes back to the shop (returned_to_sender);
 * the shop sends the order again the next business day, and that parcel
 * arrives in a day or two. Left at the damage, the order would be shown
 * months later as still to come. */
static cs_rc replacement(gen_t *g, const cust_t *c, const char *oid, int n, const carrier_t *ca,
                         cs_ms_t damaged, cs_err_t *err)
{
    char sid[64], tn[32], key[48], hub[96];
    cs_rc rc;
    tracking_number(g, ca, n, tn, sizeof tn);
    snprintf(key, sizeof key, "%s-2", oid); /* the second parcel's events */
    snprintf(sid, sizeof sid, "SHP-%s", key);
    snprintf(hub, sizeof hub, "%s %s", ca->hub_in_prefix, c->city->name);
    cs_ms_t shipped = at_hour(add_business_days(damaged, 1), 15, rint_(&g->r, 0, 59));
    cs_ms_t arrive = at_hour(add_business_days(shipped, rint_(&g->r, 1, 2)), rint_(&g->r, 8, 11),
                             rint_(&g->r, 0, 59));
    if ((rc = event(g, "shipment.created", "shipment", key, shipped,
                    shipment_json(sid, oid, ca, tn, c), err)) ||
        (rc = scan(g, key, "info", sid, ca, tn, "info_received", texts_info[1],
                   loc("Leipzig", "04109"), shipped + 5 * 60000, err)) ||
        (rc = scan(g, key, "hub1", sid, ca, tn, "in_transit", texts_transit[0],
                   loc(ca->hub_out, NULL), shipped + rint_(&g->r, 4, 9) * 3600000LL, err)) ||
        (rc = scan(g, key, "hub2", sid, ca, tn, "in_transit", texts_transit[1],
                   loc(hub, c->city->postcode), arrive - 5 * 3600000LL, err)) ||
        (rc = scan(g, key, "out", sid, ca, tn, "out_for_delivery", text_out,
                   loc(c->city->name, c->city->postcode), arrive, err)))
        return rc;
    return scan(g, key, "delivered", sid, ca, tn, "delivered", text_delivered[0],
                loc(c->city->name, c->city->postcode), arrive + rint_(&g->r, 1, 6) * 3600000LL,
                err);
}

static cs_rc review(gen_t *g, const cust_t *c, const char *oid, const product_t *p, bool late,
                    cs_ms_t t, cs_err_t *err)
{
    bool en = strcmp(c->locale, "en") == 0;
    int score = late ? rint_(&g->r, 1, 4) : (chance(&g->r, 0.8) ? rint_(&g->r, 4, 5) : 3);
    const char *const *txt;
    if (score >= 4)
        txt = en ? PICK(&g->r, review_en_good) : PICK(&g->r, review_de_good);
    else if (score == 3)
        txt = en ? PICK(&g->r, review_en_mid) : PICK(&g->r, review_de_mid);
    else
        txt = en ? PICK(&g->r, review_en_bad) : PICK(&g->r, review_de_bad);
    char fid[64];
    snprintf(fid, sizeof fid, "REV-%s", oid);
    g->n_reviews++;
    return event(g, "feedback.submitted", "review", oid, t,
                 json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s}", "id", fid, "kind",
                           "review", "score", score, "customer_id", c->id, "order_id", oid, "sku",
                           p->sku, "title", txt[0], "text", txt[1], "locale", c->locale),
                 err);
}

static cs_rc order(gen_t *g, const cust_t *c, int n, cs_ms_t placed, bool first, cs_err_t *err)
{
    char oid[32], sid[48], tn[32], key[80], money[40];
    cs_rc rc;
    snprintf(oid, sizeof oid, "WK-%06d", 100000 + n);
    g->n_orders++;

    /* line items */
    int n_items = chance(&g->r, 0.5) ? 1 : rint_(&g->r, 2, 4);
    const product_t *picked[4];
    json_t *items = json_array();
    int64_t subtotal = 0, first_unit_paid = 0;
    bool discounted = false;
    for (int i = 0; i < n_items; i++) {
        const product_t *p = &PICK(&g->r, catalogue);
        bool dup = false;
        for (int j = 0; j < i; j++)
            dup |= picked[j] == p;
        if (dup) {
            n_items = i;
            break;
        }
        picked[i] = p;
        int qty = p->repurchase_days ? rint_(&g->r, 1, 3) : 1;
        int64_t line = (int64_t)p->price_cents * qty;
        int64_t disc = (first && i == 0 && chance(&g->r, 0.3)) ? line / 10 : 0; /* WILLKOMMEN10 */
        subtotal += line - disc;
        discounted |= disc > 0;
        if (i == 0) /* what a return of one of these refunds */
            first_unit_paid = (line - disc) / qty;
        json_t *li = json_pack("{s:s, s:s, s:s, s:s, s:i}", "sku", p->sku, "name", p->name,
                               "category", p->category, "unit_price",
                               cs_money_format(p->price_cents, money, sizeof money), "quantity",
                               qty);
        if (disc)
            json_object_set_new(li, "discount",
                                json_string(cs_money_format(disc, money, sizeof money)));
        json_array_append_new(items, li);
    }
    int64_t shipping = subtotal >= 5000 ? 0 : 490;
    char d1[40], d2[40];
    cs_ms_t earliest = add_business_days(placed, 1), latest = add_business_days(placed, 3);
    cs_time_format(earliest, d1, sizeof d1);
    cs_time_format(latest, d2, sizeof d2);
    d1[10] = d2[10] = '\0';
    if (first && (rc = event(g, "customer.upserted", "customer", c->id, placed - 120000,
                             customer_json(c), err)))
        return rc;
    /* the carrier, chosen at checkout */
    int wsum = 0, pick = rint_(&g->r, 1, 100), ci = 0;
    for (ci = 0; ci < (int)CS_ARRAY_LEN(carriers); ci++) {
        wsum += carrier_weights[ci];
        if (pick <= wsum)
            break;
    }
    const carrier_t *ca = &carriers[ci < 4 ? ci : 0];
    json_t *data = json_pack("{s:s, s:s, s:s, s:o, s:{s:s}, s:{s:s, s:s}}", "id", oid,
                             "customer_id", c->id, "currency", "EUR", "items", items, "totals",
                             "shipping", cs_money_format(shipping, money, sizeof money),
                             "promised_delivery", "earliest", d1, "latest", d2);
    if (discounted && data)
        json_object_set_new(data, "attributes", json_pack("{s:s}", "coupon", "WILLKOMMEN10"));
    /* checkout knows the carrier and the address */
    if (data)
        json_object_set_new(data, "shipping",
                            json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s, s:s}}", "carrier",
                                      ca->code, "service", ca->service, "origin", "region",
                                      "Sachsen", "country", "DE", "destination", "postal_code",
                                      c->city->postcode, "city", c->city->name, "region",
                                      c->city->region, "country", "DE"));
    if ((rc = event(g, "order.placed", "order", oid, placed, data, err)))
        return rc;

    /* the confirmation mail */
    snprintf(key, sizeof key, "%s:confirmation", oid);
    static const char *const mstat[] = {"sent", "delivered", "opened"};
    int n_stat = chance(&g->r, 0.6) ? 3 : 2;
    for (int i = 0; i < n_stat; i++) {
        char k2[96];
        snprintf(k2, sizeof k2, "%s:%s", key, mstat[i]);
        if ((rc = event(g, "message.status", "msg", k2, placed + 60000 + i * 600000LL,
                        json_pack("{s:s, s:s, s:s, s:s}", "message_id", key, "status", mstat[i],
                                  "channel", "email", "customer_id", c->id),
                        err)))
            return rc;
    }

    /* a few are cancelled before shipping */
    if (chance(&g->r, 0.03)) {
        return event(g, "order.cancelled", "cancel", oid, placed + rint_(&g->r, 1, 20) * 3600000LL,
                     json_pack("{s:s, s:s}", "order_id", oid, "reason",
                               chance(&g->r, 0.5) ? "customer_request" : "out_of_stock"),
                     err);
    }

    /* shipment */
    tracking_number(g, ca, n, tn, sizeof tn);
    snprintf(sid, sizeof sid, "SHP-%s", oid);
    cs_ms_t shipped = at_hour(add_business_days(placed, chance(&g->r, 0.7) ? 0 : 1), 15,
                              rint_(&g->r, 0, 59));
    /* placed after the day's pick-up, or on a Sunday: it goes out at the
     * next business day's */
    if (shipped < placed || (shipped / CS_MS_PER_DAY + 4) % 7 == 0)
        shipped = at_hour(add_business_days(placed, 1), 15, (int)(shipped / 60000 % 60));
    if ((rc = event(g, "shipment.created", "shipment", oid, shipped,
                    shipment_json(sid, oid, ca, tn, c), err)))
        return rc;

    /* scans */
    bool late = chance(&g->r, ca->late_rate);
    bool exception = chance(&g->r, 0.012);
    bool failed = !exception && chance(&g->r, 0.07);
    int transit_days = rint_(&g->r, 1, 2) + (late ? rint_(&g->r, 2, 4) : 0);
    cs_ms_t t = shipped + 5 * 60000;
    if ((rc = scan(g, oid, "info", sid, ca, tn, "info_received", PICK(&g->r, texts_info),
                   loc("Leipzig", "04109"), t, err)) ||
        (rc = scan(g, oid, "hub1", sid, ca, tn, "in_transit", texts_transit[0],
                   loc(ca->hub_out, NULL), shipped + rint_(&g->r, 4, 9) * 3600000LL, err)))
        return rc;
    cs_ms_t arrive = at_hour(add_business_days(shipped, transit_days), rint_(&g->r, 8, 11), rint_(&g->r, 0, 59));
    if (late && (rc = scan(g, oid, "delay", sid, ca, tn, "in_transit", text_delay,
                           loc(ca->hub_out, NULL), shipped + 30 * 3600000LL, err)))
        return rc;
    char hub[96];
    snprintf(hub, sizeof hub, "%s %s", ca->hub_in_prefix, c->city->name);
    /* the destination hub, in the customer's postal zone */
    if ((rc = scan(g, oid, "hub2", sid, ca, tn, "in_transit", texts_transit[1],
                   loc(hub, c->city->postcode), arrive - 5 * 3600000LL, err)) ||
        (rc = scan(g, oid, "out", sid, ca, tn, "out_for_delivery", text_out,
                   loc(c->city->name, c->city->postcode), arrive, err)))
        return rc;
    if (late && chance(&g->r, 0.5)) {
        /* "Wo ist meine Bestellung?" while it is late */
        char tid[48];
        snprintf(tid, sizeof tid, "T-%s", oid);
        bool en = strcmp(c->locale, "en") == 0;
        cs_ms_t asked = at_hour(add_business_days(placed, 4), rint_(&g->r, 8, 20), 5);
        if (asked > arrive - 3600000)
            asked = arrive - 3600000;
        g->n_tickets++;
        if ((rc = event(g, "ticket.created", "ticket", oid, asked,
                        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "id", tid, "customer_id",
                                  c->id, "order_id", oid, "channel",
                                  chance(&g->r, 0.7) ? "email" : "chat", "category", "wismo",
                                  "subject", en ? "Where is my order?" : "Wo ist meine Bestellung?",
                                  "body",
                                  en ? "Hello, my order has not arrived yet. Can you tell me where it is?"
                                     : "Hallo, meine Bestellung ist immer noch nicht da. Können Sie nachsehen, wo sie steckt?"),
                        err)) ||
            (rc = event(g, "ticket.updated", "ticket-solved", oid, arrive + 8 * 3600000LL,
                        json_pack("{s:s, s:s}", "id", tid, "status", "solved"), err)))
            return rc;
    }
    if (exception) {
        cs_ms_t damaged = arrive + 2 * 3600000LL;
        if ((rc = scan(g, oid, "exception", sid, ca, tn, "exception", text_exception,
                       loc(hub, NULL), damaged, err)) ||
            (rc = scan(g, oid, "returned", sid, ca, tn, "returned_to_sender", text_returned,
                       loc(hub, NULL), damaged + 4 * 3600000LL, err)))
            return rc;
        return replacement(g, c, oid, n, ca, damaged, err);
    }
    cs_ms_t delivered = arrive + rint_(&g->r, 1, 6) * 3600000LL;
    int dtext = 0;
    if (failed) {
        int pk = rint_(&g->r, 0, 1);
        if ((rc = scan(g, oid, "failed", sid, ca, tn, "failed_attempt", text_failed,
                       loc(c->city->name, c->city->postcode), arrive + 2 * 3600000LL, err)) ||
            (rc = scan(g, oid, "pickup", sid, ca, tn, "available_for_pickup", text_pickup[pk],
                       loc(c->city->name, c->city->postcode), arrive + 5 * 3600000LL, err)))
            return rc;
        delivered = arrive + (cs_ms_t)rint_(&g->r, 20, 60) * 3600000LL;
        dtext = 2;
    } else if (chance(&g->r, 0.15)) {
        dtext = 1;
    }
    if ((rc = scan(g, oid, "delivered", sid, ca, tn, "delivered", text_delivered[dtext],
                   loc(c->city->name, c->city->postcode), delivered, err)))
        return rc;

    /* returns within the 14-day Widerruf */
    if (chance(&g->r, late ? 0.14 : 0.07)) {
        char rid[48];
        static const char *const reasons[] = {"passt nicht", "gefällt nicht", "beschädigt",
                                              "falscher Artikel", "zu spät geliefert"};
        static const char *const res[] = {"refund", "refund", "refund", "exchange", "store_credit"};
        snprintf(rid, sizeof rid, "R-%s", oid);
        const product_t *p = picked[0];
        cs_ms_t req = delivered + rint_(&g->r, 1, 12) * CS_MS_PER_DAY;
        g->n_returns++;
        if ((rc = event(g, "return.requested", "return", oid, req,
                        json_pack("{s:s, s:s, s:s, s:[{s:s, s:i, s:s}]}", "id", rid, "order_id",
                                  oid, "resolution", PICK(&g->r, res), "items", "sku", p->sku,
                                  "quantity", 1, "reason",
                                  late ? reasons[4] : PICK(&g->r, reasons)),
                        err)))
            return rc;
        static const char *const steps[] = {"approved", "label_created", "in_transit", "received",
                                            "refunded"};
        /* each step half a day to almost two after the one before: drawn
         * on their own, a refund could come before the parcel was back and
         * the return stay "received" */
        cs_ms_t step_at = req;
        for (int i = 0; i < 5; i++) {
            char k2[80];
            snprintf(k2, sizeof k2, "%s:%s", oid, steps[i]);
            json_t *d = json_pack("{s:s, s:s}", "id", rid, "status", steps[i]);
            if (i == 4)
                json_object_set_new(d, "refund_amount",
                                    json_string(cs_money_format(first_unit_paid, money, sizeof money)));
            if ((rc = event(g, "return.updated", "return-step", k2,
                            step_at += (cs_ms_t)rint_(&g->r, 12, 40) * 3600000LL, d, err)))
                return rc;
        }
    } else if (chance(&g->r, late ? 0.25 : 0.35)) {
        if ((rc = review(g, c, oid, picked[0], late,
                         delivered + rint_(&g->r, 4, 10) * CS_MS_PER_DAY, err)))
            return rc;
    }
    if (chance(&g->r, 0.2)) {
        char fid[48];
        snprintf(fid, sizeof fid, "NPS-%s", oid);
        int score = late ? rint_(&g->r, 2, 8) : (chance(&g->r, 0.7) ? rint_(&g->r, 9, 10) : rint_(&g->r, 6, 8));
        if ((rc = event(g, "feedback.submitted", "nps", oid,
                        delivered + rint_(&g->r, 14, 21) * CS_MS_PER_DAY,
                        json_pack("{s:s, s:s, s:i, s:s, s:s, s:s}", "id", fid, "kind", "nps",
                                  "score", score, "customer_id", c->id, "order_id", oid, "locale",
                                  c->locale),
                        err)))
            return rc;
    }
    return CS_OK;
}

void cs_demo_opts_default(cs_demo_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->seed = 42;
    o->customers = 500;
    o->months = 6;
}

cs_rc cs_demo_generate(const cs_demo_opts_t *o, cs_emit_fn emit, void *arg,
                       cs_import_stats_t *st, cs_err_t *err)
{
    gen_t g;
    cs_rc rc = CS_OK;
    if (o->customers < 1 || o->customers > 10000000)
        return cs_err_field(err, CS_ERR_INVALID, "customers", "customers: expected 1..10000000");
    if (o->months < 1 || o->months > 120)
        return cs_err_field(err, CS_ERR_INVALID, "months", "months: expected 1..120");
    /* events before 2000 are refused at intake (CS_EVENT_TIME_MIN: a zero
     * or a unit gone wrong), so the output could not be imported */
    if (o->end && o->end < CS_EVENT_TIME_MIN + (cs_ms_t)o->months * 30 * CS_MS_PER_DAY)
        return cs_err_field(err, CS_ERR_INVALID, "end",
                            "end: the %d months before it start before 2000-01-01", o->months);
    /* events after now would be refused at intake (ahead of the clock) and
     * show parcels delivered that are still on their way */
    cs_ms_t now = o->now ? o->now : cs_clock_now(cs_clock_system());
    if (o->end > now) {
        char at[40];
        cs_time_format(now, at, sizeof at);
        return cs_err_field(err, CS_ERR_INVALID, "end", "end: expected a time no later than now (%s)",
                            at);
    }
    memset(&g, 0, sizeof g);
    g.r.s = o->seed ^ 0x5EEDC0DE;
    g.seed = o->seed;
    g.emit = emit;
    g.arg = arg;
    g.st = st;
    g.end = o->end ? o->end : now;
    g.start = g.end - (cs_ms_t)o->months * 30 * CS_MS_PER_DAY;

    int order_no = 0;
    for (int i = 0; i < o->customers && !rc; i++) {
        cust_t c;
        make_customer(&g, i, &c);
        /* loyalty: most buy once, some come back, a few are regulars */
        double u = runit(&g.r);
        int n_orders = u < 0.55 ? 1 : u < 0.78 ? 2 : u < 0.9 ? 3 : rint_(&g.r, 4, 8);
        cs_ms_t t = draw_time(&g, g.start, g.end);
        for (int k = 0; k < n_orders && !rc && t <= g.end; k++) {
            rc = order(&g, &c, order_no++, t, k == 0, err);
            t += (cs_ms_t)rint_(&g.r, 12, 75) * CS_MS_PER_DAY + rint_(&g.r, 0, 86399) * 1000LL;
        }
    }
    return rc;
}
