/*
 * track_guard.c -- the tracking page's guard against guessing: the lookup
 * form (POST /t) and a link that is no link (GET /t/{token}) fail per
 * client address (IPv6 per /64; behind a proxy on this machine, the
 * address it forwards) and per order number tried, counted over 15
 * minutes; past `tracking_lookups` failures the client waits (429 with
 * Retry-After, track_page.c), and an order number may be tried twice as
 * often, from anywhere. A block is never forgotten to make room: no
 * enumeration, no guessing.
 *
 * Thread-safety: the table is under h->limit_mu; cs__track_guard_client
 * reads only the request. Lifetime: cs__track_guard_init to
 * cs__track_guard_free, with the server (cs__track_init, cs__track_free).
 */
#include "http_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* 65536 slots of 24 bytes (1.5 MiB): each failing client address (an IPv6
 * client counts per /64) and each order number tried takes one for 15
 * minutes. A slot that is blocking is never given to another key: when
 * every slot a new key may take is blocking, the new key is refused (429)
 * rather than a block forgotten. Keys are mixed with a seed drawn at
 * start (seeded), so nobody can aim many keys at one neighbourhood. */
#define LIMIT_SLOTS 65536
#define LIMIT_PROBE 16
#define LIMIT_WINDOW_MS (15 * 60 * 1000)
#define ORDER_LIMIT_FACTOR 2 /* one order number may be tried twice as often, from anywhere */

struct limit_slot {
    uint64_t key;     /* 0 = free */
    int64_t since;    /* window start, monotonic ms */
    int fails;
    int cap;          /* fails at which it blocks */
};

static uint64_t limit_seed;

cs_rc cs__track_guard_init(cs_http_t *h)
{
    pthread_mutex_init(&h->limit_mu, NULL);
    if (!limit_seed && cs_random_bytes(&limit_seed, sizeof limit_seed) != CS_OK)
        limit_seed = (uint64_t)cs_mono_ns();
    h->limits = cs_calloc(LIMIT_SLOTS, sizeof *h->limits);
    if (!h->limits) {
        pthread_mutex_destroy(&h->limit_mu);
        return CS_ERR_NOMEM;
    }
    return CS_OK;
}

void cs__track_guard_free(cs_http_t *h)
{
    if (!h->limits)
        return;
    cs_free(h->limits);
    h->limits = NULL;
    pthread_mutex_destroy(&h->limit_mu);
}

static int64_t mono_ms(void) { return (int64_t)(cs_mono_ns() / 1000000); }

/* A key as the guard's table holds it: the seed mixed into every bit (the
 * finalizer of splitmix64), so the low bits that pick a slot depend on it.
 * The seed XORed alone moved every key by the same bits: keys whose FNV-1a
 * hashes share their low bits (found offline: FNV's low bits depend on
 * nothing else) shared a neighbourhood under any seed, so a few addresses
 * could block every slot one chosen address or order number may take. */
static uint64_t seeded(uint64_t key)
{
    key ^= limit_seed;
    key = (key ^ (key >> 30)) * 0xbf58476d1ce4e5b9ULL;
    key = (key ^ (key >> 27)) * 0x94d049bb133111ebULL;
    return (key ^ (key >> 31)) | 1; /* 0 marks a free slot */
}

/* The slot of a key: its own, else a free or expired one, else the
 * oldest of the probed slots that is not blocking. NULL when every probed
 * slot blocks someone; *wait_s then gets the seconds until one expires.
 * Under limit_mu. */
static struct limit_slot *slot_of(cs_http_t *h, uint64_t key, int cap, int64_t now,
                                  int *wait_s)
{
    struct limit_slot *take = NULL;
    int take_rank = 0; /* 2 free or expired, 1 in use but not blocking (the oldest) */
    int64_t soonest = INT64_MAX;
    key = seeded(key);
    for (int i = 0; i < LIMIT_PROBE; i++) {
        struct limit_slot *s = &h->limits[(key + (uint64_t)i) % LIMIT_SLOTS];
        bool expired = now - s->since >= LIMIT_WINDOW_MS;
        if (s->key == key) {
            if (expired) {
                s->since = now;
                s->fails = 0;
            }
            s->cap = cap;
            return s;
        }
        int rank = !s->key || expired ? 2 : s->fails < s->cap ? 1 : 0;
        if (rank > take_rank || (rank == 1 && take_rank == 1 && s->since < take->since)) {
            take = s;
            take_rank = rank;
        }
        if (!rank && s->since < soonest)
            soonest = s->since;
    }
    if (!take) {
        *wait_s = (int)((soonest + LIMIT_WINDOW_MS - now) / 1000) + 1;
        return NULL;
    }
    take->key = key;
    take->since = now;
    take->fails = 0;
    take->cap = cap;
    return take;
}

/* An order number's limit counts every form of it that finds the same
 * order (id_forms, track_page.c): "#wb-1001" and "WB-1001" are one
 * number's guesses. */
static uint64_t order_limit_key(const char *order)
{
    char k[CS_ID_MAX + 1];
    if (*order == '#')
        for (order++; *order == ' '; order++)
            ;
    cs_strlcpy(k, order, sizeof k);
    for (char *q = k; *q; q++)
        *q = (char)toupper((unsigned char)*q);
    return cs__track_hash_key("order", k);
}

/* Seconds until the client may try again; 0 = go ahead. */
int cs__track_guard_wait(cs_http_t *h, const char *client, const char *order)
{
    int limit = h->opts.tracking_lookups > 0 ? h->opts.tracking_lookups : 10;
    int64_t now = mono_ms();
    int wait = 0;
    pthread_mutex_lock(&h->limit_mu);
    struct limit_slot *c = slot_of(h, cs__track_hash_key("ip", client), limit, now, &wait);
    if (c && c->fails >= limit)
        wait = (int)((c->since + LIMIT_WINDOW_MS - now) / 1000) + 1;
    if (!wait && order && *order) {
        int cap = limit * ORDER_LIMIT_FACTOR;
        struct limit_slot *o = slot_of(h, order_limit_key(order), cap, now, &wait);
        if (o && o->fails >= cap)
            wait = (int)((o->since + LIMIT_WINDOW_MS - now) / 1000) + 1;
    }
    pthread_mutex_unlock(&h->limit_mu);
    return wait;
}

void cs__track_guard_failed(cs_http_t *h, const char *client, const char *order)
{
    int limit = h->opts.tracking_lookups > 0 ? h->opts.tracking_lookups : 10;
    int64_t now = mono_ms();
    int w = 0;
    pthread_mutex_lock(&h->limit_mu);
    struct limit_slot *s = slot_of(h, cs__track_hash_key("ip", client), limit, now, &w);
    if (s)
        s->fails++;
    if (order && *order && (s = slot_of(h, order_limit_key(order),
                                        limit * ORDER_LIMIT_FACTOR, now, &w)))
        s->fails++;
    pthread_mutex_unlock(&h->limit_mu);
}

/* The key an address is counted under: IPv4 as it is, IPv6 by its /64 (one
 * subscriber's network), an IPv4-mapped IPv6 address as IPv4. */
static void addr_key(const char *text, char *out, size_t size)
{
    struct in6_addr a6;
    struct in_addr a4;
    cs_strlcpy(out, text, size);
    if (inet_pton(AF_INET6, text, &a6) != 1)
        return;
    if (IN6_IS_ADDR_V4MAPPED(&a6)) {
        memcpy(&a4, &a6.s6_addr[12], 4);
        inet_ntop(AF_INET, &a4, out, (socklen_t)size);
        return;
    }
    memset(&a6.s6_addr[8], 0, 8);
    char t[INET6_ADDRSTRLEN];
    if (inet_ntop(AF_INET6, &a6, t, sizeof t))
        snprintf(out, size, "%s/64", t);
}

/* The last X-Forwarded-For header line: a proxy that adds its own line
 * rather than extending the client's puts the true address last, and the
 * lines before it are the client's to write. */
static enum MHD_Result last_xff(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    (void)kind;
    if (strcasecmp(key, "X-Forwarded-For") == 0 && value)
        *(const char **)cls = value;
    return MHD_YES;
}

/* The client's address key (addr_key); behind a proxy on this machine,
 * the address it forwards (the last X-Forwarded-For entry of the last
 * such header line, the one the proxy added). */
void cs__track_guard_client(hreq_t *r, char *out, size_t size)
{
    char text[INET6_ADDRSTRLEN + 8] = "?";
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    bool loopback = false;
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET) {
            const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
            inet_ntop(AF_INET, &a->sin_addr, text, (socklen_t)sizeof text);
            loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
        } else if (sa->sa_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
            inet_ntop(AF_INET6, &a->sin6_addr, text, (socklen_t)sizeof text);
            loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) ||
                       (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && a->sin6_addr.s6_addr[12] == 127);
        }
    }
    const char *xff = NULL;
    if (loopback)
        MHD_get_connection_values(r->conn, MHD_HEADER_KIND, last_xff, &xff);
    if (xff && *xff) {
        const char *last = strrchr(xff, ',');
        last = last ? last + 1 : xff;
        while (*last == ' ')
            last++;
        size_t n = strcspn(last, " ");
        if (n && n < sizeof text) {
            memcpy(text, last, n);
            text[n] = '\0';
        }
    }
    addr_key(text, out, size);
}
