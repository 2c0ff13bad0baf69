/*
 * conf.c -- parse the flat configuration file and the environment overrides.
 * Table-driven: each key names its type, bounds and field, so adding a key is
 * one line here and one paragraph in docs/configuration.md.
 */
#include "conf.h"

#include "../channel/channel.h"
#include "../lib/cs_time.h"
#include "../lib/cs_tz.h"
#include "../model/event.h"
#include "../tracking/calendar.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* K_DURATION_OFF: a duration, or off (stored as 0) */
typedef enum {
    K_STR, K_INT, K_I64, K_BOOL, K_SIZE, K_DURATION, K_DURATION_OFF, K_MONEY
} key_kind_t;

typedef struct key_def {
    const char *name;
    key_kind_t kind;
    size_t off;
    size_t size;     /* K_STR: buffer size */
    int64_t min, max;
    const char *expect;
    bool (*check)(const char *v); /* K_STR: extra validation; NULL = none */
    int flags;       /* KF_* */
} key_def_t;

/* KF_SECRET: the value is a secret (a password, a token, a key that signs
 * or verifies): no message shows it, whatever check refuses it, only its
 * length. Every other value is shown with the password of a URL's
 * user:password@ left out (cs_conf_shown). */
#define KF_SECRET 1

static bool check_log_level(const char *v)
{
    return strcmp(v, "debug") == 0 || strcmp(v, "info") == 0 || strcmp(v, "warn") == 0 ||
           strcmp(v, "error") == 0;
}

static bool check_locale(const char *v) { return strcmp(v, "de") == 0 || strcmp(v, "en") == 0; }
static bool check_currency(const char *v)
{
    return strlen(v) == 3 && isupper((unsigned char)v[0]) && isupper((unsigned char)v[1]) &&
           isupper((unsigned char)v[2]) && !cs_currency_not_money(v); /* as orders' */
}
static bool check_timezone(const char *v)
{
    const cs_tz_t *tz;
    return cs_tz_get(v, &tz, NULL) == CS_OK;
}

static bool check_holidays(const char *v)
{
    cs_calendar_t *c = NULL;
    bool ok = strcmp(v, "auto") == 0 || cs_calendar_new(v, NULL, &c, NULL) == CS_OK;
    cs_calendar_free(&c);
    return ok;
}

static bool check_closed_days(const char *v)
{
    cs_calendar_t *c = NULL;
    bool ok = cs_calendar_new(NULL, v, &c, NULL) == CS_OK;
    cs_calendar_free(&c);
    return ok;
}

cs_rc cs_conf_calendar(const cs_conf_t *c, cs_calendar_t **out, cs_err_t *err)
{
    const char *country = c->holidays;
    if (strcmp(country, "auto") == 0)
        country = cs_calendar_country_of_zone(c->shop_timezone);
    return cs_calendar_new(country, c->closed_days, out, err);
}

bool cs_conf_quiet_hours(const char *s, int *start, int *end)
{
    int h1, m1, h2, m2;
    char extra;
    if (strcmp(s, "off") == 0) {
        *start = *end = 0;
        return true;
    }
    if (strlen(s) != 11 || sscanf(s, "%2d:%2d-%2d:%2d%c", &h1, &m1, &h2, &m2, &extra) != 4 ||
        h1 < 0 || h1 > 23 || h2 < 0 || h2 > 23 || m1 < 0 || m1 > 59 || m2 < 0 || m2 > 59)
        return false;
    *start = h1 * 60 + m1;
    *end = h2 * 60 + m2;
    return true;
}

static bool check_quiet(const char *v)
{
    int a, b;
    return cs_conf_quiet_hours(v, &a, &b);
}

static bool check_url(const char *v)
{
    return !*v || ((strncmp(v, "http://", 7) == 0 || strncmp(v, "https://", 8) == 0) &&
                   !strpbrk(v, " \t\r\n\"<>"));
}

/* An address alone: it goes into mailto: links and message footers */
static bool check_email(const char *v) { return !*v || cs_email_valid(v); }

/* "Name <address>" or an address, as the SMTP channel reads it */
static bool check_from(const char *v)
{
    char addr[256];
    const char *lt = strrchr(v, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    if (!*v)
        return true;
    if (gt)
        snprintf(addr, sizeof addr, "%.*s", (int)(gt - lt - 1), lt + 1);
    else
        snprintf(addr, sizeof addr, "%s", v);
    return cs_email_valid(addr);
}

/* What a store driver opens (src/store): a path after sqlite: (or
 * :memory:), or a PostgreSQL URI. Refused here, as a setting, rather than
 * by the store when it does not open. */
static bool check_store(const char *v)
{
    if (strncmp(v, "sqlite:", 7) == 0)
        return v[7] != '\0';
    return strncmp(v, "postgresql://", 13) == 0 || strncmp(v, "postgres://", 11) == 0;
}

static bool check_smtp_url(const char *v)
{
    return !*v || strncmp(v, "smtp://", 7) == 0 || strncmp(v, "smtps://", 8) == 0;
}

/* The secrets that sign or verify (links, webhooks in and out, the SMS
 * and WhatsApp providers' delivery callbacks and Meta's subscription
 * check): empty is off, else long enough that it cannot be guessed. (Their keys are KF_SECRET,
 * as are the passwords and tokens: refused, they are named by their length.) */
#define SECRET_MIN 16
#define SECRET_EXPECT "a random string of at least 16 characters (or empty)"
static bool check_secret(const char *v) { return !*v || strlen(v) >= SECRET_MIN; }

static bool check_tls(const char *v)
{
    return strcmp(v, "try") == 0 || strcmp(v, "require") == 0 || strcmp(v, "off") == 0;
}

static bool check_classes(const char *v)
{
    static const char *const names[] = {"transactional", "service", "reassurance", "ask",
                                        "marketing"};
    char buf[128];
    if (strlen(v) >= sizeof buf)
        return false;
    cs_strlcpy(buf, v, sizeof buf);
    char *save = NULL;
    for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        bool ok = false;
        for (size_t i = 0; i < CS_ARRAY_LEN(names); i++)
            ok = ok || strcmp(t, names[i]) == 0;
        if (!ok)
            return false;
    }
    return true;
}

/* Six hex digits, with or without the '#' (in the file it must be left
 * out: '#' starts a comment there). */
static bool check_color(const char *v)
{
    if (*v == '#')
        v++;
    if (strlen(v) != 6)
        return false;
    for (int i = 0; i < 6; i++)
        if (!isxdigit((unsigned char)v[i]))
            return false;
    return true;
}

static bool check_prefix(const char *v)
{
    for (const char *p = v; *p; p++)
        if (!(*p >= 'A' && *p <= 'Z') && !(*p >= '0' && *p <= '9'))
            return false;
    return true;
}

/* "12", "12.5", "12.50" -> minor units (1250) */
static bool parse_money(const char *v, int64_t *out)
{
    int64_t units = 0, cents = 0;
    const char *p = v;
    if (!isdigit((unsigned char)*p))
        return false;
    for (; isdigit((unsigned char)*p); p++) {
        if (units > 100000000000LL)
            return false;
        units = units * 10 + (*p - '0');
    }
    if (*p == '.') {
        p++;
        int digits = 0;
        for (; isdigit((unsigned char)*p) && digits < 2; p++, digits++)
            cents = cents * 10 + (*p - '0');
        if (digits == 0)
            return false;
        if (digits == 1)
            cents *= 10;
    }
    if (*p)
        return false;
    *out = units * 100 + cents;
    return true;
}

#define F(field) offsetof(cs_conf_t, field)
#define FS(field) sizeof(((cs_conf_t *)0)->field)

static const key_def_t keys[] = {
    {"store", K_STR, F(store), FS(store), 1, 0,
     "a store target: sqlite:PATH (like sqlite:consonance.db), sqlite::memory: or "
     "postgresql://[user[:password]@]host[:port]/database",
     check_store, 0},
    {"node_id", K_STR, F(node_id), FS(node_id), 0, 0,
     "a name for this node, unique among the nodes sharing a store", NULL, 0},
    {"host", K_STR, F(host), FS(host), 1, 0, "an address to listen on, e.g. 127.0.0.1", NULL, 0},
    {"port", K_INT, F(port), 0, 0, 65535, "a port number 0..65535 (0 = any free port)", NULL, 0},
    {"http_threads", K_INT, F(http_threads), 0, 1, 64, "a thread count 1..64", NULL, 0},
    {"max_body_bytes", K_SIZE, F(max_body_bytes), 0, 1024, (int64_t)1 << 30,
     "a size 1k..1g, e.g. 16m", NULL, 0},
    {"max_batch_events", K_I64, F(max_batch_events), 0, 1, 1000000, "an integer 1..1000000", NULL,
     0},
    {"durable", K_BOOL, F(durable), 0, 0, 0, "yes or no", NULL, 0},
    {"cache_kib", K_I64, F(cache_kib), 0, 256, 64LL * 1024 * 1024, "KiB 256..67108864", NULL, 0},
    {"max_group_events", K_I64, F(max_group_events), 0, 1, 1000000, "an integer 1..1000000", NULL,
     0},
    {"max_queue_events", K_I64, F(max_queue_events), 0, 1, 100000000, "an integer 1..100000000",
     NULL, 0},
    {"readers", K_INT, F(readers), 0, 1, 64, "an integer 1..64", NULL, 0},
    {"bootstrap_key_file", K_STR, F(bootstrap_key_file), FS(bootstrap_key_file), 0, 0,
     "a file path", NULL, 0},
    {"log_level", K_STR, F(log_level), FS(log_level), 1, 0, "debug, info, warn or error",
     check_log_level, 0},
    {"journeys", K_STR, F(journeys), FS(journeys), 0, 0, "a folder of journey files (or empty)",
     NULL, 0},
    {"templates", K_STR, F(templates), FS(templates), 0, 0,
     "a folder of message templates (or empty)", NULL, 0},
    {"carriers", K_STR, F(carriers), FS(carriers), 0, 0,
     "a folder of carrier tables (or empty for the built-in ones)", NULL, 0},
    {"default_locale", K_STR, F(default_locale), FS(default_locale), 2, 0, "de or en",
     check_locale, 0},
    {"contact_budget", K_INT, F(contact_budget), 0, 0, 1000, "an integer 0..1000", NULL, 0},
    {"contact_window", K_DURATION, F(contact_window_ms), 0, 3600000LL, 366 * 86400000LL,
     "a duration from 1h to 366d, like 7d", NULL, 0},
    {"quiet_hours", K_STR, F(quiet_hours), FS(quiet_hours), 1, 0,
     "HH:MM-HH:MM in the customer's time zone, or off", check_quiet, 0},
    {"quiet_hours_exempt", K_STR, F(quiet_hours_exempt), FS(quiet_hours_exempt), 0, 0,
     "message classes separated by commas: transactional, service, reassurance, ask, marketing",
     check_classes, 0},
    {"ask_cooldown", K_DURATION, F(ask_cooldown_ms), 0, 0, 3660 * 86400000LL,
     "a duration like 30d", NULL, 0},
    {"hold_max", K_DURATION, F(hold_max_ms), 0, 3600000LL, 366 * 86400000LL,
     "a duration from 1h to 366d, like 7d", NULL, 0},
    {"ticket_stale_after", K_DURATION_OFF, F(ticket_stale_after_ms), 0, 3600000LL,
     3660 * 86400000LL, "a duration from 1h to 3660d, like 30d, or off", NULL, 0},
    {"address_wait", K_DURATION, F(address_wait_ms), 0, 0, 7 * 86400000LL,
     "a duration from 0s to 7d, like 30m", NULL, 0},
    {"shop_name", K_STR, F(shop_name), FS(shop_name), 1, 0, "the shop's name", NULL, 0},
    {"shop_timezone", K_STR, F(shop_timezone), FS(shop_timezone), 1, 0,
     "an IANA time zone like Europe/Berlin", check_timezone, 0},
    {"holidays", K_STR, F(holidays), FS(holidays), 1, 0,
     "auto (the country of shop_timezone, when its holidays are known), a country whose "
     "public holidays are known (" CS_CALENDAR_COUNTRIES "), or none",
     check_holidays, 0},
    {"closed_days", K_STR, F(closed_days), FS(closed_days), 0, 0,
     "dates as MM-DD (every year) or YYYY-MM-DD (2000 to 2099), separated by commas, like "
     "12-24, 12-31",
     check_closed_days, 0},
    {"support_email", K_STR, F(support_email), FS(support_email), 0, 0,
     "an email address like help@shop.example (or empty)", check_email, 0},
    {"public_url", K_STR, F(public_url), FS(public_url), 0, 0,
     "the daemon's public base URL, like https://shop.example/consonance", check_url, 0},
    {"link_secret", K_STR, F(link_secret), FS(link_secret), 0, 0, SECRET_EXPECT, check_secret,
     KF_SECRET},
    {"smtp_url", K_STR, F(smtp_url), FS(smtp_url), 0, 0, "smtp://host:port or smtps://host:port",
     check_smtp_url, 0},
    {"smtp_user", K_STR, F(smtp_user), FS(smtp_user), 0, 0, "a user name", NULL, 0},
    {"smtp_password", K_STR, F(smtp_password), FS(smtp_password), 0, 0, "a password", NULL,
     KF_SECRET},
    {"smtp_from", K_STR, F(smtp_from), FS(smtp_from), 0, 0,
     "\"Shop <service@shop.example>\" or an address", check_from, 0},
    {"smtp_tls", K_STR, F(smtp_tls), FS(smtp_tls), 1, 0, "try, require or off", check_tls, 0},
    {"smtp_tls_verify", K_BOOL, F(smtp_tls_verify), 0, 0, 0, "yes or no", NULL, 0},
    {"email_rate", K_INT, F(email_rate), 0, 0, 100000, "messages per second 0..100000", NULL, 0},
    {"sms_url", K_STR, F(sms_url), FS(sms_url), 0, 0, "an http(s) URL", check_url, 0},
    {"sms_account", K_STR, F(sms_account), FS(sms_account), 0, 0, "an account id", NULL, 0},
    {"sms_token", K_STR, F(sms_token), FS(sms_token), 0, 0, SECRET_EXPECT, check_secret,
     KF_SECRET},
    {"sms_from", K_STR, F(sms_from), FS(sms_from), 0, 0, "a sender number or name", NULL, 0},
    {"sms_rate", K_INT, F(sms_rate), 0, 0, 100000, "messages per second 0..100000", NULL, 0},
    {"whatsapp_url", K_STR, F(whatsapp_url), FS(whatsapp_url), 0, 0, "an http(s) URL",
     check_url, 0},
    {"whatsapp_token", K_STR, F(whatsapp_token), FS(whatsapp_token), 0, 0, "a token", NULL,
     KF_SECRET},
    {"whatsapp_app_secret", K_STR, F(whatsapp_app_secret), FS(whatsapp_app_secret), 0, 0,
     SECRET_EXPECT, check_secret, KF_SECRET},
    {"whatsapp_verify_token", K_STR, F(whatsapp_verify_token), FS(whatsapp_verify_token), 0, 0,
     SECRET_EXPECT, check_secret, KF_SECRET},
    {"webhook_secret", K_STR, F(webhook_secret), FS(webhook_secret), 0, 0, SECRET_EXPECT,
     check_secret, KF_SECRET},
    {"aftership_secret", K_STR, F(aftership_secret), FS(aftership_secret), 0, 0, SECRET_EXPECT,
     check_secret, KF_SECRET},
    {"tracking_secret", K_STR, F(tracking_secret), FS(tracking_secret), 0, 0, SECRET_EXPECT,
     check_secret, KF_SECRET},
    {"whatsapp_rate", K_INT, F(whatsapp_rate), 0, 0, 100000, "messages per second 0..100000",
     NULL, 0},
    {"provider_tls_verify", K_BOOL, F(provider_tls_verify), 0, 0, 0, "yes or no", NULL, 0},
    {"send_attempts", K_INT, F(send_attempts), 0, 1, 100, "an integer 1..100", NULL, 0},
    {"webhook_attempts", K_INT, F(webhook_attempts), 0, 1, 100, "an integer 1..100", NULL, 0},
    {"retry_base", K_DURATION, F(retry_base_ms), 0, 1000, 86400000LL,
     "a duration from 1s to 1d, like 1m", NULL, 0},
    {"send_lease", K_DURATION, F(send_lease_ms), 0, 1000, 86400000LL,
     "a duration from 1s to 1d, like 5m", NULL, 0},
    {"order_watch", K_BOOL, F(order_watch), 0, 0, 0, "yes or no", NULL, 0},
    {"promise_horizon", K_DURATION, F(promise_horizon_ms), 0, 86400000LL, 366 * 86400000LL,
     "a duration from 1d to 366d, like 60d", NULL, 0},
    {"shop_currency", K_STR, F(shop_currency), FS(shop_currency), 3, 0,
     "an ISO 4217 currency code in capitals, like EUR (a currency: not XXX, XTS, a metal "
     "or a unit of account)",
     check_currency, 0},
    {"compensation_budget", K_MONEY, F(comp_budget), 0, 0, 100000000000LL,
     "an amount like 250 or 250.00 (0 = no compensation)", NULL, 0},
    {"compensation_percent_per_day", K_INT, F(comp_percent_per_day), 0, 1, 100,
     "a percentage 1..100", NULL, 0},
    {"compensation_percent_max", K_INT, F(comp_percent_max), 0, 1, 100, "a percentage 1..100",
     NULL, 0},
    {"compensation_free_shipping_days", K_INT, F(comp_free_shipping_days), 0, 0, 30,
     "working days 0..30", NULL, 0},
    {"compensation_wait_days", K_INT, F(comp_wait_days), 0, 0, 30, "working days 0..30", NULL, 0},
    {"compensation_min", K_MONEY, F(comp_min), 0, 0, 100000000LL, "an amount like 5.00", NULL, 0},
    {"compensation_max", K_MONEY, F(comp_max), 0, 0, 100000000LL, "an amount like 50.00", NULL, 0},
    {"compensation_valid", K_DURATION, F(comp_valid_ms), 0, 86400000LL, 3660 * 86400000LL,
     "a duration like 90d", NULL, 0},
    {"compensation_prefix", K_STR, F(comp_prefix), FS(comp_prefix), 1, 0,
     "1..11 characters A-Z and 0-9", check_prefix, 0},
    {"vip_spent", K_MONEY, F(vip_spent), 0, 0, 100000000000LL,
     "an amount like 500.00 (0 = VIPs by vip_orders alone)", NULL, 0},
    {"vip_orders", K_INT, F(vip_orders), 0, 1, 100000, "an integer 1..100000", NULL, 0},
    {"brand_color", K_STR, F(brand_color), FS(brand_color), 6, 0,
     "a colour as six hex digits, like 2d5b3f", check_color, 0},
    {"brand_logo", K_STR, F(brand_logo), FS(brand_logo), 0, 0,
     "a file path to an SVG, PNG or JPEG logo (or empty)", NULL, 0},
    {"returns_url", K_STR, F(returns_url), FS(returns_url), 0, 0, "an http(s) URL", check_url, 0},
    {"support_url", K_STR, F(support_url), FS(support_url), 0, 0, "an http(s) URL", check_url, 0},
    {"reassurance_de", K_STR, F(reassurance_de), FS(reassurance_de), 0, 0, "a sentence or two",
     NULL, 0},
    {"reassurance_en", K_STR, F(reassurance_en), FS(reassurance_en), 0, 0, "a sentence or two",
     NULL, 0},
    {"tracking_lookups", K_INT, F(tracking_lookups), 0, 1, 10000,
     "failed lookups per address and 15 minutes, 1..10000", NULL, 0},
    {"tracking_page_cache", K_SIZE, F(tracking_page_cache), 0, 1 << 20, (int64_t)4 << 30,
     "a size 1m..4g, e.g. 32m", NULL, 0},
};

void cs_conf_defaults(cs_conf_t *c)
{
    memset(c, 0, sizeof *c);
    cs_strlcpy(c->store, "sqlite:consonance.db", sizeof c->store);
    cs_strlcpy(c->host, "127.0.0.1", sizeof c->host);
    c->port = 8080;
    c->http_threads = 2;
    c->max_body_bytes = 16 * 1024 * 1024;
    c->max_batch_events = 10000;
    c->durable = true;
    c->cache_kib = 16384;
    c->max_group_events = 4000;
    c->max_queue_events = 200000;
    c->readers = 4;
    cs_strlcpy(c->log_level, "info", sizeof c->log_level);
    cs_strlcpy(c->default_locale, "de", sizeof c->default_locale);
    c->contact_budget = 3;
    c->contact_window_ms = 7 * 86400000LL;
    cs_strlcpy(c->quiet_hours, "21:00-08:00", sizeof c->quiet_hours);
    /* not service: the order watch finds a promise broken at midnight,
     * and a delay notice then would wake the customer */
    cs_strlcpy(c->quiet_hours_exempt, "transactional", sizeof c->quiet_hours_exempt);
    c->ask_cooldown_ms = 30 * 86400000LL;
    c->hold_max_ms = 7 * 86400000LL;
    c->ticket_stale_after_ms = 30 * 86400000LL;
    c->address_wait_ms = 30 * 60000LL;
    cs_strlcpy(c->shop_name, "Consonance Shop", sizeof c->shop_name);
    cs_strlcpy(c->shop_timezone, "Europe/Berlin", sizeof c->shop_timezone);
    cs_strlcpy(c->holidays, "auto", sizeof c->holidays);
    cs_strlcpy(c->shop_currency, "EUR", sizeof c->shop_currency);
    cs_strlcpy(c->smtp_tls, "try", sizeof c->smtp_tls);
    c->smtp_tls_verify = true;
    c->provider_tls_verify = true;
    c->send_attempts = 8;
    c->webhook_attempts = 20;
    c->retry_base_ms = 60000;
    c->send_lease_ms = 5 * 60000;
    c->order_watch = true;
    c->promise_horizon_ms = 60 * 86400000LL;
    c->comp_percent_per_day = 5;
    c->comp_percent_max = 20;
    c->comp_free_shipping_days = 1;
    c->comp_wait_days = 2;
    c->comp_min = 500;
    c->comp_max = 5000;
    c->comp_valid_ms = 90 * 86400000LL;
    cs_strlcpy(c->comp_prefix, "SORRY", sizeof c->comp_prefix);
    c->vip_spent = 50000;
    c->vip_orders = 5;
    cs_strlcpy(c->brand_color, "#2d5b3f", sizeof c->brand_color);
    c->tracking_lookups = 10;
    c->tracking_page_cache = (int64_t)32 << 20;
}

static bool parse_bool(const char *v, bool *out)
{
    static const char *yes[] = {"yes", "true", "on", "1"};
    static const char *no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; i < CS_ARRAY_LEN(yes); i++) {
        if (strcasecmp(v, yes[i]) == 0) { *out = true; return true; }
        if (strcasecmp(v, no[i]) == 0) { *out = false; return true; }
    }
    return false;
}

/* "16m", "512k", "1g", "4096" -> bytes */
static bool parse_size(const char *v, int64_t *out)
{
    char num[32];
    size_t n = strlen(v);
    int64_t mult = 1;
    if (n == 0 || n >= sizeof num)
        return false;
    memcpy(num, v, n + 1);
    switch (tolower((unsigned char)num[n - 1])) {
    case 'k': mult = 1024; break;
    case 'm': mult = 1024 * 1024; break;
    case 'g': mult = 1024 * 1024 * 1024; break;
    default: break;
    }
    if (mult != 1)
        num[n - 1] = '\0';
    int64_t x;
    if (!cs_parse_i64(num, &x) || x < 0 || x > INT64_MAX / mult)
        return false;
    *out = x * mult;
    return true;
}

/* The setting named key, NULL when none. */
static const key_def_t *find_key(const char *key)
{
    for (size_t i = 0; i < CS_ARRAY_LEN(keys); i++)
        if (strcmp(keys[i].name, key) == 0)
            return &keys[i];
    return NULL;
}

size_t cs_conf_shown(const char *key, const char *value, char *buf, size_t size)
{
    const key_def_t *k = find_key(key);
    if (size == 0)
        return 0;
    if (k && (k->flags & KF_SECRET)) {
        snprintf(buf, size, "(%zu characters, not shown)", strlen(value));
        return strlen(buf);
    }
    return cs_url_shown(value, buf, size);
}

bool cs_conf_secret(const char *key)
{
    const key_def_t *k = find_key(key);
    return k && (k->flags & KF_SECRET);
}

cs_rc cs_conf_set(cs_conf_t *c, const char *key, const char *value, const char *origin,
                  cs_err_t *err)
{
    const key_def_t *k = find_key(key);
    if (!k)
        return cs_err_field(err, CS_ERR_CONFIG, key, "%s: %s: unknown setting", origin, key);

    char *base = (char *)c;
    char shown[80];
    int64_t x = 0;
    bool b;
    switch (k->kind) {
    case K_STR:
        /* the value itself is left out: it may be a secret, or hold one */
        if (strlen(value) >= k->size)
            return cs_err_field(err, CS_ERR_CONFIG, key,
                                "%s: %s: too long: expected at most %zu bytes, got %zu", origin,
                                key, k->size - 1, strlen(value));
        if (strlen(value) < (size_t)k->min)
            goto bad;
        if (k->check && !k->check(value))
            goto bad;
        if (k->check == check_quiet && strcmp(value, "off") != 0 && strlen(value) == 11 &&
            strncmp(value, value + 6, 5) == 0)
            return cs_err_field(err, CS_ERR_CONFIG, key,
                                "%s: %s: \"%s\" starts and ends at the same minute, which could "
                                "mean no quiet hours or the whole day: expected two different "
                                "times, or off for none",
                                origin, key, value); /* (quiet_hours is no secret) */
        if (k->check == check_color && *value != '#') /* kept with its '#' */
            snprintf(base + k->off, k->size, "#%s", value);
        else
            cs_strlcpy(base + k->off, value, k->size);
        /* a base URL that links and signatures are built on ends without
         * its slash: "https://shop.example/c/" + "/t/..." is no "//t/" */
        if (strcmp(k->name, "public_url") == 0) {
            char *u = base + k->off;
            size_t n = strlen(u), keep = strncmp(u, "https://", 8) == 0 ? 8 : 7;
            while (n > keep && u[n - 1] == '/')
                u[--n] = '\0';
        }
        return CS_OK;
    case K_BOOL:
        if (!parse_bool(value, &b))
            goto bad;
        *(bool *)(base + k->off) = b;
        return CS_OK;
    case K_DURATION_OFF:
        if (strcmp(value, "off") == 0) {
            *(int64_t *)(base + k->off) = 0;
            return CS_OK;
        }
        /* fall through */
    case K_DURATION:
        if (!cs_duration_parse(value, &x) || x < k->min || x > k->max)
            goto bad;
        *(int64_t *)(base + k->off) = x;
        return CS_OK;
    case K_MONEY:
        if (!parse_money(value, &x) || x < k->min || x > k->max)
            goto bad;
        *(int64_t *)(base + k->off) = x;
        return CS_OK;
    case K_SIZE:
        if (!parse_size(value, &x) || x < k->min || x > k->max)
            goto bad;
        *(int64_t *)(base + k->off) = x;
        return CS_OK;
    case K_INT:
    case K_I64:
        if (!cs_parse_i64(value, &x) || x < k->min || x > k->max)
            goto bad;
        if (k->kind == K_INT)
            *(int *)(base + k->off) = (int)x;
        else
            *(int64_t *)(base + k->off) = x;
        return CS_OK;
    }
bad:
    if (k->flags & KF_SECRET) /* its length, never the secret */
        return cs_err_field(err, CS_ERR_CONFIG, key, "%s: %s: expected %s, got %zu characters",
                            origin, key, k->expect, strlen(value));
    cs_conf_shown(key, value, shown, sizeof shown);
    return cs_err_field(err, CS_ERR_CONFIG, key, "%s: %s: expected %s, got \"%.64s\"", origin,
                        key, k->expect, shown);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* A '#' at the start of a line or after a space or tab starts a comment;
 * one inside a word is part of the value (a password, a URL's fragment),
 * and so is any inside quotes that open the value. */
static void strip_comment(char *line)
{
    const char *eq = strchr(line, '='), *qopen = NULL, *qclose = NULL;
    if (eq) {
        qopen = eq + 1;
        while (*qopen == ' ' || *qopen == '\t')
            qopen++;
        if (*qopen == '"' || *qopen == '\'')
            qclose = strchr(qopen + 1, *qopen);
    }
    for (char *p = line; *p; p++) {
        if (qclose && p == qopen) {
            p = (char *)qclose;
            continue;
        }
        if (*p == '#' && (p == line || isspace((unsigned char)p[-1]))) {
            *p = '\0';
            return;
        }
    }
}

#define CONF_LINE_MAX 4095 /* bytes of one line of the file, its end not counted */

cs_rc cs_conf_load(cs_conf_t *c, const char *path, cs_err_t *err)
{
    cs_rc rc = CS_OK;
    char line[CONF_LINE_MAX + 3]; /* a line, its CR LF and the NUL */
    char origin[CS_CONF_STR_MAX + 32];
    int lineno = 0;
    int set_on[CS_ARRAY_LEN(keys)] = {0}; /* the line that set each key; 0 = none yet */
    FILE *f = fopen(path, "r");
    if (!f)
        return cs_errf(err, CS_ERR_IO, "%s: cannot read configuration: %s", path,
                       strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        rc = cs_errf(err, CS_ERR_IO, "%s: is a directory, expected a config file", path);
        goto out;
    }
    while (fgets(line, sizeof line, f)) {
        lineno++;
        snprintf(origin, sizeof origin, "%s:%d", path, lineno);
        /* the bound is on the line's own bytes, its end (LF or CR LF, or
         * none on the last line) not counted: fgets stops short of the end
         * only for a line past it */
        size_t n = strlen(line), len = n;
        if (len && line[len - 1] == '\n' && --len && line[len - 1] == '\r')
            len--;
        if (len > CONF_LINE_MAX) {
            rc = cs_errf(err, CS_ERR_CONFIG, "%s: line longer than %d bytes", origin,
                         CONF_LINE_MAX);
            goto out;
        }
        /* a byte order mark some editors put first is no part of the key */
        char *start = line;
        if (lineno == 1 && strncmp(line, "\xEF\xBB\xBF", 3) == 0)
            start += 3;
        strip_comment(start);
        char *s = trim(start);
        if (*s == '\0')
            continue;
        char *eq = strchr(s, '=');
        if (eq == s) {
            /* no key before the '=': what follows may be any setting's
             * value, a secret's too, so it is not shown */
            rc = cs_errf(err, CS_ERR_CONFIG,
                         "%s: expected `key = value`, got no key before the '=' (the value is "
                         "not shown: it may be a secret)",
                         origin);
            goto out;
        }
        if (!eq) { /* no '=' */
            /* the line may be a secret pasted alone (a password with no
             * key): it is named by its number, and only a first word that
             * is a setting's name is quoted, never what follows */
            size_t kn = strcspn(s, " \t");
            char first[64];
            snprintf(first, sizeof first, "%.*s", (int)(kn < sizeof first ? kn : 0), s);
            if (find_key(first))
                rc = cs_err_field(err, CS_ERR_CONFIG, first,
                                  "%s: %s: expected `key = value`, got the key and no '=' (the "
                                  "value is not shown: it may be a secret)",
                                  origin, first);
            else
                rc = cs_errf(err, CS_ERR_CONFIG,
                             "%s: expected `key = value` (a setting's name, '=' and its value), "
                             "got a line with no '=' (the line is not shown: it may be a secret)",
                             origin);
            goto out;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        /* one pair of matching quotes around the whole value is dropped:
         * smtp_from = "Shop <service@shop.example>" is the name and address */
        size_t vn = strlen(value);
        if (vn >= 2 && (value[0] == '"' || value[0] == '\'') && value[vn - 1] == value[0]) {
            value[vn - 1] = '\0';
            value++;
        }
        /* a key set twice is a mistake (two edits of one setting, a copied
         * block): the last one winning in silence hides which was meant */
        const key_def_t *k = find_key(key);
        if (k && set_on[k - keys]) {
            rc = cs_err_field(err, CS_ERR_CONFIG, key,
                              "%s: %s: set twice, on line %d and on line %d: expected each "
                              "setting once",
                              origin, key, set_on[k - keys], lineno);
            goto out;
        }
        if ((rc = cs_conf_set(c, key, value, origin, err)) != CS_OK)
            goto out;
        if (k)
            set_on[k - keys] = lineno;
    }
    if (ferror(f))
        rc = cs_errf(err, CS_ERR_IO, "%s: cannot read configuration: %s", path,
                     strerror(errno));
out:
    fclose(f);
    return rc;
}

/* CONSONANCE_* variables that are not settings */
static const char *const env_not_settings[] = {"CONSONANCE_CONFIG"};

/* The setting CONSONANCE_<KEY> (upper case) names, NULL when none. */
static const key_def_t *env_key(const char *var, size_t n)
{
    const size_t pre = strlen("CONSONANCE_");
    for (size_t i = 0; i < CS_ARRAY_LEN(keys); i++) {
        const char *k = keys[i].name;
        size_t j = 0;
        for (; pre + j < n && k[j] && var[pre + j] == toupper((unsigned char)k[j]); j++)
            ;
        if (pre + j == n && !k[j])
            return &keys[i];
    }
    return NULL;
}

cs_rc cs_conf_apply_env(cs_conf_t *c, cs_err_t *err)
{
    char name[64];
    /* a misspelt variable is refused as a misspelt key in the file is: else
     * CONSONANCE_SMPT_URL would leave email off without a word */
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, "CONSONANCE_", strlen("CONSONANCE_")) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
        bool known = env_key(*e, n) != NULL;
        for (size_t i = 0; !known && i < CS_ARRAY_LEN(env_not_settings); i++)
            known = strlen(env_not_settings[i]) == n &&
                    strncmp(*e, env_not_settings[i], n) == 0;
        if (!known)
            return cs_errf(err, CS_ERR_CONFIG,
                           "%.*s: not a setting: expected CONSONANCE_ and a setting's name in "
                           "upper case (docs/configuration.md), or CONSONANCE_CONFIG",
                           (int)(n > 64 ? 64 : n), *e);
    }
    for (size_t i = 0; i < CS_ARRAY_LEN(keys); i++) {
        size_t j = 0;
        j += (size_t)snprintf(name, sizeof name, "CONSONANCE_");
        for (const char *p = keys[i].name; *p && j + 1 < sizeof name; p++)
            name[j++] = (char)toupper((unsigned char)*p);
        name[j] = '\0';
        const char *v = getenv(name);
        if (!v)
            continue;
        cs_rc rc = cs_conf_set(c, keys[i].name, v, name, err);
        if (rc != CS_OK)
            return rc;
    }
    return CS_OK;
}

cs_rc cs_conf_check(const cs_conf_t *c, cs_err_t *err)
{
    char a[32], b[32];
    if (c->comp_min > c->comp_max) {
        cs_money_format(c->comp_min, a, sizeof a);
        cs_money_format(c->comp_max, b, sizeof b);
        return cs_err_field(err, CS_ERR_CONFIG, "compensation_min",
                            "compensation_min (%s) is above compensation_max (%s): expected the "
                            "smallest code to be at most the largest",
                            a, b);
    }
    if (c->comp_budget > 0 && c->comp_budget < c->comp_min) {
        cs_money_format(c->comp_budget, a, sizeof a);
        cs_money_format(c->comp_min, b, sizeof b);
        return cs_err_field(err, CS_ERR_CONFIG, "compensation_budget",
                            "compensation_budget (%s a day) is below compensation_min (%s): no "
                            "code would fit the day's budget; expected at least compensation_min, "
                            "or 0 for no compensation",
                            a, b);
    }
    /* a channel is on when its URL is set: it then needs the rest of its
     * settings, refused here and not first by serve when it opens it */
    if (c->smtp_url[0] && !c->smtp_from[0])
        return cs_err_field(err, CS_ERR_CONFIG, "smtp_from",
                            "smtp_from: needed when smtp_url is set: expected \"Shop "
                            "<service@shop.example>\" or an address");
    if (c->sms_url[0] && (!c->sms_account[0] || !c->sms_token[0] || !c->sms_from[0])) {
        const char *miss = !c->sms_account[0] ? "sms_account"
                           : !c->sms_token[0] ? "sms_token"
                                              : "sms_from";
        return cs_err_field(err, CS_ERR_CONFIG, miss,
                            "%s: needed when sms_url is set (sms_account, sms_token and sms_from "
                            "all are)",
                            miss);
    }
    if (c->whatsapp_url[0] && !c->whatsapp_token[0])
        return cs_err_field(err, CS_ERR_CONFIG, "whatsapp_token",
                            "whatsapp_token: needed when whatsapp_url is set");
    /* messages are rendered from templates; a webhook's body is JSON and
     * needs none, so webhook_secret alone asks for no folder */
    const char *channel = c->smtp_url[0] ? "smtp_url"
                          : c->sms_url[0] ? "sms_url"
                          : c->whatsapp_url[0] ? "whatsapp_url"
                                               : NULL;
    if (channel && !c->templates[0])
        return cs_err_field(err, CS_ERR_CONFIG, "templates",
                            "templates: needed when %s is set: expected a folder of message "
                            "templates (shipped: etc/templates)",
                            channel);
    /* links in messages and the tracking page are signed: without the
     * secret they would be links no one can open */
    if (c->public_url[0] && !c->link_secret[0])
        return cs_err_field(err, CS_ERR_CONFIG, "link_secret",
                            "link_secret: needed when public_url is set: expected a random "
                            "string of at least 16 characters");
    return CS_OK;
}

const char *cs_conf_key(size_t i)
{
    return i < CS_ARRAY_LEN(keys) ? keys[i].name : NULL;
}

int cs_conf_log_level(const cs_conf_t *c)
{
    if (strcmp(c->log_level, "debug") == 0) return CS_LOG_DEBUG;
    if (strcmp(c->log_level, "info") == 0) return CS_LOG_INFO;
    if (strcmp(c->log_level, "warn") == 0) return CS_LOG_WARN;
    if (strcmp(c->log_level, "error") == 0) return CS_LOG_ERROR;
    return -1;
}
