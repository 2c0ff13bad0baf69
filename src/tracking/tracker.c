/*
 * tracker.c -- see tracker.h.
 */
#include "tracker.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../lib/cs_json.h"

#define RECENT 65536

struct cs_tracker {
    cs_promise_model_t *model; /* guarded by lock */
    pthread_rwlock_t lock;
    bool synced;               /* the writer's: the store's deliveries are learned */
    size_t learned;
    /* Whoever follows the log -- the learning thread while it runs, else
     * the hook on the writer -- owns these two: */
    int64_t cursor;            /* log position followed */
    /* orders learned lately, by hash (direct-mapped), so a parcel scanned
     * as delivered twice teaches once */
    uint64_t recent[RECENT];

    /* the learning thread: woken by the hook when the log moved */
    cs_engine_t *engine;
    pthread_t thread;
    bool started, stop, moved; /* under mu */
    bool idle;                 /* under mu: waiting for the log to move */
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

cs_rc cs_tracker_new(const cs_promise_opts_t *opts, cs_tracker_t **out, cs_err_t *err)
{
    cs_tracker_t *t = cs_calloc(1, sizeof *t);
    *out = NULL;
    if (!t)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    cs_rc rc = cs_promise_new(opts, &t->model, err);
    if (rc) {
        cs_free(t);
        return rc;
    }
    pthread_rwlock_init(&t->lock, NULL);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    *out = t;
    return CS_OK;
}

void cs_tracker_stop(cs_tracker_t *t)
{
    if (!t || !t->started)
        return;
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    pthread_mutex_lock(&t->mu);
    t->started = false; /* read by the hook on the writer thread, under mu */
    pthread_mutex_unlock(&t->mu);
}

void cs_tracker_free(cs_tracker_t *t)
{
    if (!t)
        return;
    cs_tracker_stop(t);
    cs_promise_free(t->model);
    pthread_rwlock_destroy(&t->lock);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    cs_free(t);
}

size_t cs_tracker_learned(cs_tracker_t *t)
{
    pthread_rwlock_rdlock(&t->lock);
    size_t n = t->learned;
    pthread_rwlock_unlock(&t->lock);
    return n;
}

/* Appends src upper-cased to out[*n], within size (one byte kept for the
 * terminator). */
static void put_upper(char *out, size_t size, size_t *n, const char *src, size_t max)
{
    for (size_t i = 0; i < max && src[i] && *n + 1 < size; i++)
        out[(*n)++] = (char)toupper((unsigned char)src[i]);
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

/* The state of a German postal code, by its zone; NULL for another form
 * or an unused zone. */
static const char *de_postal_state(const char *postal)
{
    if (!postal || !isdigit((unsigned char)postal[0]) || !isdigit((unsigned char)postal[1]))
        return NULL;
    const char *st = DE_ZONES[(postal[0] - '0') * 10 + (postal[1] - '0')];
    return st[0] ? st : NULL;
}

/* Every delivery learned and every order watched asks for two of these:
 * written directly, not through snprintf. For DE a postal code in a known
 * zone decides (whatever region is given with it), else the region; for
 * AT and CH the region. A region these countries know by name or code
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
    const char *code = NULL;
    if (strcmp(cc, "DE") == 0)
        code = de_postal_state(postal);
    if (!code && region && *region &&
        (strcmp(cc, "DE") == 0 || strcmp(cc, "AT") == 0 || strcmp(cc, "CH") == 0))
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

/* A lane's service as the model keys it: lower case, so a shipment's "DHL
 * Paket" and a checkout's "dhl paket" are one lane (the carrier is lower
 * case already). Every lane that reaches the model -- learned here, asked
 * by the API, the watch and the status answer, told in flight -- passes
 * through this, so the store keeps the service as the shop wrote it. */
static const char *service_key(const char *service, char *buf, size_t size)
{
    size_t i = 0;
    for (; service && service[i] && i + 1 < size; i++)
        buf[i] = (char)tolower((unsigned char)service[i]);
    buf[i] = '\0';
    return buf;
}

/* id: the order's, when known (it is then no longer in flight). */
static cs_rc learn(cs_tracker_t *t, const cs_delivery_row_t *d, const char *id, cs_err_t *err)
{
    char from[32], to[32], svc[CS_ID_MAX + 1];
    cs_region_key_json(d->origin, from, sizeof from);
    cs_region_key_json(d->destination, to, sizeof to);
    cs_delivery_t dl = { { d->carrier, service_key(d->service, svc, sizeof svc), from, to },
                         d->placed_at, d->shipped_at, d->delivered_at, d->gap_from, d->gap_to, id };
    if (d->delivered_at < d->placed_at)
        return CS_OK; /* inconsistent history teaches nothing */
    pthread_rwlock_wrlock(&t->lock);
    cs_rc rc = cs_promise_observe(t->model, &dl, err);
    if (!rc)
        t->learned++;
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

typedef struct each_ud {
    cs_tracker_t *t;
    cs_err_t *err;
} each_ud_t;

static cs_rc each_delivery(const cs_delivery_row_t *d, void *arg)
{
    each_ud_t *u = arg;
    return learn(u->t, d, NULL, u->err);
}

cs_rc cs_tracker_sync(cs_tracker_t *t, cs_store_t *s, cs_err_t *err)
{
    cs_store_counts_t counts;
    cs_rc rc = cs_store_counts(s, &counts, err);
    if (rc)
        return rc;
    each_ud_t u = { t, err };
    if ((rc = cs_store_call(s, deliveries_each, each_delivery, &u, err)))
        return rc;
    t->cursor = counts.last_seq;
    t->synced = true;
    cs_info("promise: learned %zu deliveries from the store", t->learned);
    return CS_OK;
}

typedef struct ev_ud {
    cs_tracker_t *t;
    cs_store_t *s;
    cs_err_t *err;
    int64_t last;
} ev_ud_t;

/* A delivered scan: learn its order's delivery, once (the store routed the
 * scan to its order; a scan that came before its shipment has no order yet
 * and is learned at the next start, from the store). No JSON is parsed:
 * the routing and the stored delivery say all. */
static cs_rc each_event(int64_t seq, const char *order_id, const char *customer_id,
                        const char *body, size_t len, void *arg)
{
    ev_ud_t *u = arg;
    (void)customer_id;
    (void)len;
    u->last = seq;
    if (!order_id || !strstr(body, "\"delivered\""))
        return CS_OK;
    uint64_t h = cs_hash_str(CS_HASH_INIT, order_id) | 1; /* 0 marks an empty slot */
    uint64_t *slot = &u->t->recent[h % RECENT];
    if (*slot == h)
        return CS_OK; /* a second delivered scan of a parcel just learned */
    cs_delivery_row_t d;
    cs_rc rc = cs_store_call(u->s, delivery_of, order_id, &d, u->err);
    if (rc == CS_ERR_NOTFOUND)
        return CS_OK;
    if (rc)
        return rc;
    *slot = h;
    return learn(u->t, &d, order_id, u->err);
}

/* Learn the deliveries in the log after t->cursor, through s. */
static cs_rc follow(cs_tracker_t *t, cs_store_t *s, cs_err_t *err)
{
    ev_ud_t u = { t, s, err, t->cursor };
    const uint32_t types = 1u << CS_EV_TRACKING_EVENT;
    for (;;) {
        int64_t examined;
        cs_rc rc = cs_store_call(s, events_after, t->cursor, 2000, types, each_event, &u,
                                 &examined, err);
        if (rc)
            return rc;
        if (examined == t->cursor)
            return CS_OK;
        t->cursor = examined;
    }
}

/* On the writer: the first run learns the store's deliveries; later runs
 * wake the learning thread, which reads the log through a reader handle
 * (nothing read here), or, without the thread, follow the log here. */
cs_rc cs_tracker_hook(cs_store_t *s, void *arg, cs_ms_t *next, cs_err_t *err)
{
    cs_tracker_t *t = arg;
    *next = 0;
    if (!t->synced)
        return cs_tracker_sync(t, s, err);
    pthread_mutex_lock(&t->mu);
    bool threaded = t->started;
    if (threaded) {
        t->moved = true;
        if (t->idle) /* resting between passes, it looks on its own */
            pthread_cond_signal(&t->cv);
    }
    pthread_mutex_unlock(&t->mu);
    return threaded ? CS_OK : follow(t, s, err);
}

cs_rc cs_tracker_promise(cs_tracker_t *t, const cs_promise_query_t *q, cs_promise_t *out,
                         cs_err_t *err)
{
    char svc[CS_ID_MAX + 1];
    cs_promise_query_t lq = *q;
    lq.lane.service = service_key(q->lane.service, svc, sizeof svc);
    pthread_rwlock_rdlock(&t->lock);
    cs_rc rc = cs_promise_estimate(t->model, &lq, out, err);
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

void cs_tracker_in_flight(cs_tracker_t *t, const char *order_id, const cs_lane_t *lane,
                          cs_ms_t placed_at, cs_ms_t shipped_at)
{
    cs_err_t err;
    char svc[CS_ID_MAX + 1];
    cs_lane_t l = *lane;
    l.service = service_key(lane->service, svc, sizeof svc);
    pthread_rwlock_wrlock(&t->lock);
    cs_rc rc = cs_promise_in_flight(t->model, order_id, &l, placed_at, shipped_at, &err);
    pthread_rwlock_unlock(&t->lock);
    if (rc)
        cs_log(CS_LOG_DEBUG, "promise: order %s not counted in flight: %s", order_id, err.msg);
}

void cs_tracker_forget(cs_tracker_t *t, const char *order_id)
{
    pthread_rwlock_wrlock(&t->lock);
    cs_promise_forget(t->model, order_id);
    pthread_rwlock_unlock(&t->lock);
}

size_t cs_tracker_in_flight_count(cs_tracker_t *t)
{
    pthread_rwlock_rdlock(&t->lock);
    size_t n = cs_promise_in_flight_count(t->model);
    pthread_rwlock_unlock(&t->lock);
    return n;
}

/* ---- the learning thread ---- */

typedef struct look {
    cs_tracker_t *t;
    cs_err_t err;
} look_t;

static cs_rc look_fn(cs_store_t *s, void *arg)
{
    look_t *l = arg;
    return follow(l->t, s, &l->err);
}

/* Passes at most this often. A reader handle's page cache is emptied by
 * SQLite whenever the database changed since its last read, so each pass
 * reads its B-tree pages from the files again; a pass after every hook run
 * (up to 100 a second under load) paid that for a few deliveries each.
 * The model learns a delivery at most this much later. */
#define LEARN_GAP_MS 200

static void rest(cs_tracker_t *t, int64_t ms)
{
    struct timespec ts;
    cs_deadline_in(&ts, ms);
    pthread_mutex_lock(&t->mu);
    while (!t->stop && pthread_cond_timedwait(&t->cv, &t->mu, &ts) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&t->mu);
}

static void *learner(void *arg)
{
    cs_tracker_t *t = arg;
    cs_thread_name("cs-learner");
    for (;;) {
        pthread_mutex_lock(&t->mu);
        t->idle = true;
        while (!t->moved && !t->stop)
            pthread_cond_wait(&t->cv, &t->mu);
        t->idle = false;
        if (t->stop) {
            pthread_mutex_unlock(&t->mu);
            break;
        }
        t->moved = false;
        /* the hook's first run (the sync) happened before it woke us */
        pthread_mutex_unlock(&t->mu);
        look_t l = { t, { 0 } };
        cs_store_t *s;
        cs_rc rc = cs_engine_reader_acquire(t->engine, &s, &l.err);
        if (rc == CS_ERR_UNSUPPORTED) {
            rc = cs_engine_with_writer(t->engine, look_fn, &l); /* an in-memory store */
        } else if (!rc) {
            rc = look_fn(s, &l);
            cs_engine_reader_release(t->engine, s);
        }
        if (rc) /* the cursor stays: tried again when the log moves */
            cs_warn("promise: deliveries not learned: %s", l.err.msg);
        rest(t, LEARN_GAP_MS);
    }
    return NULL;
}

cs_rc cs_tracker_start(cs_tracker_t *t, cs_engine_t *e, cs_err_t *err)
{
    t->engine = e;
    pthread_mutex_lock(&t->mu); /* the hook may be running on the writer */
    bool ok = pthread_create(&t->thread, NULL, learner, t) == 0;
    t->started = ok;
    pthread_mutex_unlock(&t->mu);
    return ok ? CS_OK : cs_errf(err, CS_ERR_INTERNAL, "promise: cannot start its thread");
}
