/* test_conf.c -- configuration file, environment overrides, error messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "lib/cs_time.h"
#include "tracking/calendar.h"

static char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/cs_conf_test_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_defaults_and_file(void **state)
{
    (void)state;
    cs_conf_t c;
    cs_err_t err;
    cs_conf_defaults(&c);
    assert_string_equal(c.store, "sqlite:consonance.db");
    assert_int_equal(c.port, 8080);
    assert_true(c.durable);
    char *p = write_tmp("# comment\n\nstore = sqlite:/var/lib/x.db  # trailing\n"
                        "port=0\nmax_body_bytes = 2m\ndurable = no\nlog_level = warn\n");
    assert_int_equal(cs_conf_load(&c, p, &err), CS_OK);
    unlink(p);
    assert_string_equal(c.store, "sqlite:/var/lib/x.db");
    assert_int_equal(c.port, 0);
    assert_int_equal(c.max_body_bytes, 2 * 1024 * 1024);
    assert_false(c.durable);
    assert_int_equal(cs_conf_log_level(&c), CS_LOG_WARN);
}

/* One pair of matching quotes around a value in the file is dropped;
 * quotes inside it, or that do not match, stay. */
static void test_quoted_values(void **state)
{
    (void)state;
    cs_conf_t c;
    cs_err_t err;
    cs_conf_defaults(&c);
    char *p = write_tmp("smtp_from = \"Shop <a@b.de>\"\n"
                        "shop_name = 'Kaffee & Co'  # a comment\n"
                        "reassurance_de = \"\"Versichert\", sagt der Chef\"\n"
                        "reassurance_en = \"Insured' \n"
                        "sms_from = \"\n");
    assert_int_equal(cs_conf_load(&c, p, &err), CS_OK);
    unlink(p);
    assert_string_equal(c.smtp_from, "Shop <a@b.de>");
    assert_string_equal(c.shop_name, "Kaffee & Co");
    assert_string_equal(c.reassurance_de, "\"Versichert\", sagt der Chef");
    assert_string_equal(c.reassurance_en, "\"Insured'");
    assert_string_equal(c.sms_from, "\"");
    /* a '#' inside a word, or inside the quotes, is part of the value */
    p = write_tmp("smtp_password = pa#ss#  # the password\n"
                  "returns_url = https://shop.example/returns#form\n"
                  "brand_color = \"#1f4e79\" # with its '#'\n"
                  "reassurance_en = 'We are #1 for parcels' # a comment\n"
                  "#port = 1\n"
                  "  # port = 2\n");
    assert_int_equal(cs_conf_load(&c, p, &err), CS_OK);
    unlink(p);
    assert_string_equal(c.smtp_password, "pa#ss#");
    assert_string_equal(c.returns_url, "https://shop.example/returns#form");
    assert_string_equal(c.brand_color, "#1f4e79");
    assert_string_equal(c.reassurance_en, "We are #1 for parcels");
    assert_int_equal(c.port, 8080);
    /* a file saved with a UTF-8 byte order mark (Windows editors) */
    p = write_tmp("\xEF\xBB\xBFport = 8082\n");
    assert_int_equal(cs_conf_load(&c, p, &err), CS_OK);
    unlink(p);
    assert_int_equal(c.port, 8082);
    p = write_tmp("port = \"8081\"\nshop_name = \"\"\n");
    assert_int_equal(cs_conf_load(&c, p, &err), CS_ERR_CONFIG); /* "" is an empty name */
    unlink(p);
    assert_int_equal(c.port, 8081);
    assert_non_null(strstr(err.msg, ":2: shop_name: expected the shop's name, got \"\""));
}

static void test_errors_name_line_and_key(void **state)
{
    (void)state;
    cs_conf_t c;
    cs_err_t err;
    cs_conf_defaults(&c);
    char *p = write_tmp("http_threads = 2\nport = eighty\n");
    assert_int_equal(cs_conf_load(&c, p, &err), CS_ERR_CONFIG);
    assert_non_null(strstr(err.msg, ":2: port: expected a port number"));
    assert_non_null(strstr(err.msg, "eighty"));
    assert_string_equal(err.field, "port");
    unlink(p);
    /* a sign or blanks inside the value are no number of ours, though
     * strtoll would take them */
    assert_int_equal(cs_conf_set(&c, "port", "+8080", "CONSONANCE_PORT", &err), CS_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "CONSONANCE_PORT: port: expected a port number"));
    assert_non_null(strstr(err.msg, "got \"+8080\""));
    assert_int_equal(cs_conf_set(&c, "port", " 8080", "CONSONANCE_PORT", &err), CS_ERR_CONFIG);
    assert_int_equal(cs_conf_set(&c, "contact_budget", "+3", "x", &err), CS_ERR_CONFIG);
    assert_string_equal(err.field, "contact_budget");
    assert_int_equal(cs_conf_set(&c, "port", "8080", "CONSONANCE_PORT", &err), CS_OK);

    /* a key set twice is refused, naming both lines (the last one does not
     * win in silence); the environment still overrides the file */
    p = write_tmp("port = 8081\n# the port again, further down\nhost = ::1\nport = 8082\n");
    assert_int_equal(cs_conf_load(&c, p, &err), CS_ERR_CONFIG);
    assert_non_null(strstr(err.msg, ":4: port: set twice, on line 1 and on line 4: expected each "
                                    "setting once"));
    assert_string_equal(err.field, "port");
    unlink(p);
    p = write_tmp("port = 8081\nport=8081\n"); /* the same value twice too */
    assert_int_equal(cs_conf_load(&c, p, &err), CS_ERR_CONFIG);
    assert_non_null(strstr(err.msg, ":2: port: set twice, on line 1 and on line 2"));
    unlink(p);

    p = write_tmp("prot = 1\n");
    assert_int_equal(cs_conf_load(&c, p, &err), CS_ERR_CONFIG);
    assert_non_null(strstr(err.msg, ":1: prot: unknown setting"));
    unlink(p);

    p = write_tmp("just words\n");
    assert_int_equal(cs_conf_load(&c, p, &err), CS_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "expected `key = value`"));
    unlink(p);

    p = write_tmp("\n  = 8081\n"); /* the key left out */
    assert_int_equal(cs_conf_load(&c, p, &err), CS_ERR_CONFIG);
    assert_non_null(strstr(err.msg, ":2: expected `key = value`, got no key before the '='"));
    assert_null(strstr(err.msg, "8081")); /* the value: it may be a secret */
    unlink(p);

    /* a store target with nothing to open is a setting's mistake, not a
     * store that failed to open */
    assert_int_equal(cs_conf_set(&c, "store", "sqlite:", "--store", &err), CS_ERR_CONFIG);
    assert_string_equal(err.field, "store");
    assert_non_null(strstr(err.msg, "--store: store: expected a store target: sqlite:PATH"));
    assert_non_null(strstr(err.msg, "got \"sqlite:\""));
    assert_int_equal(cs_conf_set(&c, "store", "mysql://db/shop", "x", &err), CS_ERR_CONFIG);
    assert_int_equal(cs_conf_set(&c, "store", "sqlite::memory:", "x", &err), CS_OK);
    assert_int_equal(cs_conf_set(&c, "store", "postgres://db/shop", "x", &err), CS_OK);
    assert_int_equal(cs_conf_set(&c, "store", "postgresql://u@db:5432/shop", "x", &err), CS_OK);
    assert_int_equal(cs_conf_set(&c, "store", "sqlite:shop.db", "x", &err), CS_OK);
    /* a line holds at most 4095 bytes, its end not counted: the last line
     * without a newline as any other */
    static const char *const ends[] = { "", "\n", "\r\n" };
    for (size_t e = 0; e < sizeof ends / sizeof ends[0]; e++) {
        for (size_t len = 4095; len <= 4096; len++) {
            char text[4100];
            memset(text, 'x', len);
            memcpy(text, "port = 8083 # ", 14); /* the rest a comment */
            snprintf(text + len, sizeof text - len, "%s", ends[e]);
            cs_conf_defaults(&c);
            p = write_tmp(text);
            cs_rc lrc = cs_conf_load(&c, p, &err);
            unlink(p);
            if (len == 4095) {
                assert_int_equal(lrc, CS_OK);
                assert_int_equal(c.port, 8083);
            } else {
                assert_int_equal(lrc, CS_ERR_CONFIG);
                assert_non_null(strstr(err.msg, ":1: line longer than 4095 bytes"));
            }
        }
    }
    p = write_tmp("port = 8084\r\nhost = ::1\r\n"); /* CR LF ends */
    assert_int_equal(cs_conf_load(&c, p, &err), CS_OK);
    unlink(p);
    assert_int_equal(c.port, 8084);
    assert_string_equal(c.host, "::1");

    assert_int_equal(cs_conf_set(&c, "port", "70000", "--port", &err), CS_ERR_CONFIG);
    assert_int_equal(cs_conf_set(&c, "durable", "maybe", "x", &err), CS_ERR_CONFIG);
    assert_int_equal(cs_conf_set(&c, "log_level", "loud", "x", &err), CS_ERR_CONFIG);
    assert_int_equal(cs_conf_set(&c, "max_body_bytes", "12q", "x", &err), CS_ERR_CONFIG);
    assert_int_equal(cs_conf_load(&c, "/nonexistent/consonance.conf", &err), CS_ERR_IO);
    assert_int_equal(cs_conf_load(&c, "/tmp", &err), CS_ERR_IO);
    assert_string_equal(err.msg, "/tmp: is a directory, expected a config file");

    /* money in minor units; colours with or without '#' */
    assert_int_equal(cs_conf_set(&c, "compensation_budget", "250", "x", &err), CS_OK);
    assert_int_equal(c.comp_budget, 25000);
    assert_int_equal(cs_conf_set(&c, "compensation_min", "4.9", "x", &err), CS_OK);
    assert_int_equal(c.comp_min, 490);
    assert_int_equal(cs_conf_set(&c, "vip_spent", "1234.56", "x", &err), CS_OK);
    assert_int_equal(c.vip_spent, 123456);
    assert_int_equal(cs_conf_set(&c, "compensation_budget", "12.345", "x", &err), CS_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "an amount like 250"));
    assert_int_equal(cs_conf_set(&c, "compensation_budget", "-5", "x", &err), CS_ERR_CONFIG);
    assert_int_equal(cs_conf_set(&c, "compensation_budget", "12.", "x", &err), CS_ERR_CONFIG);
    assert_int_equal(cs_conf_set(&c, "brand_color", "1f4e79", "x", &err), CS_OK);
    assert_string_equal(c.brand_color, "#1f4e79");
    assert_int_equal(cs_conf_set(&c, "brand_color", "#ABCDEF", "x", &err), CS_OK);
    assert_string_equal(c.brand_color, "#ABCDEF");
    assert_int_equal(cs_conf_set(&c, "brand_color", "green", "x", &err), CS_ERR_CONFIG);
    assert_string_equal(err.field, "brand_color");
    assert_int_equal(cs_conf_set(&c, "compensation_prefix", "sorry", "x", &err), CS_ERR_CONFIG);
    assert_int_equal(cs_conf_set(&c, "compensation_prefix", "ENTSCHULDIGUNG", "x", &err),
                     CS_ERR_CONFIG); /* longer than 11 */
    /* the public base URL without its trailing slash (links and the SMS
     * callback's signature append "/t/...", "/v1/...") */
    assert_int_equal(cs_conf_set(&c, "public_url", "https://shop.example/consonance//", "x", &err),
                     CS_OK);
    assert_string_equal(c.public_url, "https://shop.example/consonance");
    assert_int_equal(cs_conf_set(&c, "public_url", "http://shop.example/", "x", &err), CS_OK);
    assert_string_equal(c.public_url, "http://shop.example");
    assert_int_equal(cs_conf_set(&c, "returns_url", "https://shop.example/returns/", "x", &err),
                     CS_OK);
    assert_string_equal(c.returns_url, "https://shop.example/returns/"); /* a link as it is */

    /* the sender: a name and an address, or an address */
    assert_int_equal(cs_conf_set(&c, "smtp_from", "Kaffee & Co <service@shop.example>", "x", &err),
                     CS_OK);
    assert_int_equal(cs_conf_set(&c, "smtp_from", "\"Kaffee\" <service@shop.example>", "x", &err),
                     CS_OK);
    assert_int_equal(cs_conf_set(&c, "smtp_from", "service@shop.example", "x", &err), CS_OK);
    assert_int_equal(cs_conf_set(&c, "smtp_from", "Kaffee & Co", "conf:9", &err), CS_ERR_CONFIG);
    assert_string_equal(err.msg, "conf:9: smtp_from: expected \"Shop <service@shop.example>\" or "
                                 "an address, got \"Kaffee & Co\"");
    assert_int_equal(cs_conf_set(&c, "smtp_from", "Kaffee <service>", "x", &err), CS_ERR_CONFIG);
    assert_string_equal(c.smtp_from, "service@shop.example");

    /* the support address goes into mailto: links: an address alone */
    assert_int_equal(cs_conf_set(&c, "support_email", "hilfe@shop.example", "x", &err), CS_OK);
    assert_int_equal(cs_conf_set(&c, "support_email", "", "x", &err), CS_OK);
    assert_int_equal(cs_conf_set(&c, "support_email", "Hilfe <hilfe@shop.example>", "x", &err),
                     CS_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "support_email: expected an email address like "
                                    "help@shop.example (or empty), got \"Hilfe <hilfe@"));
    assert_int_equal(cs_conf_set(&c, "support_email", "hilfe", "x", &err), CS_ERR_CONFIG);
    assert_string_equal(c.support_email, "");

    /* a value too long for its setting says the most it may have (and not
     * the value: it may be a secret) */
    char long_value[400];
    memset(long_value, 'x', sizeof long_value - 1);
    long_value[sizeof long_value - 1] = '\0';
    assert_int_equal(cs_conf_set(&c, "smtp_password", long_value, "conf:3", &err), CS_ERR_CONFIG);
    assert_string_equal(err.field, "smtp_password");
    assert_string_equal(err.msg, "conf:3: smtp_password: too long: expected at most 255 bytes, "
                                 "got 399");
    assert_int_equal(cs_conf_set(&c, "shop_name", "", "x", &err), CS_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "shop_name: expected the shop's name, got \"\""));

    /* every secret that signs or verifies has the same minimum: empty is
     * off, a short one is refused by its length (the secret is not quoted);
     * the SMS and WhatsApp callbacks' too (a token of 1-3 characters was
     * taken, and a forged delivery callback could guess it) */
    static const char *const secrets[] = { "link_secret",         "webhook_secret",
                                           "aftership_secret",    "tracking_secret",
                                           "sms_token",           "whatsapp_app_secret",
                                           "whatsapp_verify_token" };
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
        char want[160];
        assert_int_equal(cs_conf_set(&c, secrets[i], "hunter2", "conf:7", &err), CS_ERR_CONFIG);
        assert_string_equal(err.field, secrets[i]);
        snprintf(want, sizeof want, "conf:7: %s: expected a random string of at least 16 "
                 "characters (or empty), got 7 characters", secrets[i]);
        assert_string_equal(err.msg, want);
        assert_int_equal(cs_conf_set(&c, secrets[i], "0123456789abcde", "x", &err),
                         CS_ERR_CONFIG); /* 15 */
        assert_int_equal(cs_conf_set(&c, secrets[i], "0123456789abcdef", "x", &err), CS_OK);
        assert_int_equal(cs_conf_set(&c, secrets[i], "", "x", &err), CS_OK);
    }
}

/* No message shows a secret's value, whatever refuses it: a password, a
 * token or a signing key is named by its length, a line that holds one
 * without its '=' by its key; a PostgreSQL store's password is left out. */
static void test_secrets_never_shown(void **state)
{
    (void)state;
    cs_conf_t c;
    cs_err_t err;
    static const char *const secrets[] = {
        "link_secret",    "smtp_password",       "sms_token",
        "whatsapp_token", "whatsapp_app_secret", "whatsapp_verify_token",
        "webhook_secret", "aftership_secret",    "tracking_secret",
    };
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
        assert_true(cs_conf_secret(secrets[i]));
    assert_false(cs_conf_secret("smtp_user"));
    assert_false(cs_conf_secret("store"));
    assert_false(cs_conf_secret("no_such_key"));

    /* the WhatsApp app secret with a blank for its '=' */
    cs_conf_defaults(&c);
    const char *path = write_tmp("shop_name = Kaffee\n"
                                 "whatsapp_app_secret   c0ffee-hunter2-app-secret\n");
    assert_int_equal(cs_conf_load(&c, path, &err), CS_ERR_CONFIG);
    unlink(path);
    assert_string_equal(err.field, "whatsapp_app_secret");
    assert_non_null(strstr(err.msg, ":2: whatsapp_app_secret: expected `key = value`"));
    assert_null(strstr(err.msg, "hunter2"));
    /* a line with no key before its '=': the line is named, the value
     * (any setting's, a secret's too) not shown */
    path = write_tmp("shop_name = Kaffee\n\n  =  c0ffee-hunter2-pass\n");
    assert_int_equal(cs_conf_load(&c, path, &err), CS_ERR_CONFIG);
    unlink(path);
    assert_non_null(strstr(err.msg, ":3: expected `key = value`, got no key before the '='"));
    assert_null(strstr(err.msg, "hunter2"));
    path = write_tmp("=\n");
    assert_int_equal(cs_conf_load(&c, path, &err), CS_ERR_CONFIG);
    unlink(path);
    assert_non_null(strstr(err.msg, ":1: expected `key = value`, got no key before the '='"));
    /* a line with no '=' and no setting's name first may be a secret
     * pasted alone (a password on its own line): named by its number and
     * what is expected, nothing of it quoted */
    path = write_tmp("shop_name = Kaffee\nc0ffee-hunter2-pass\n");
    assert_int_equal(cs_conf_load(&c, path, &err), CS_ERR_CONFIG);
    unlink(path);
    assert_non_null(strstr(err.msg, ":2: expected `key = value`"));
    assert_non_null(strstr(err.msg, "got a line with no '='"));
    assert_null(strstr(err.msg, "hunter2"));
    path = write_tmp("shop name Kaffee\n");
    assert_int_equal(cs_conf_load(&c, path, &err), CS_ERR_CONFIG);
    unlink(path);
    assert_non_null(strstr(err.msg, ":1: expected `key = value`"));
    assert_null(strstr(err.msg, "shop name"));
    /* a setting's name first (no secret's): the name is quoted, its value
     * not */
    path = write_tmp("smtp_user  shop-hunter2\n");
    assert_int_equal(cs_conf_load(&c, path, &err), CS_ERR_CONFIG);
    unlink(path);
    assert_string_equal(err.field, "smtp_user");
    assert_non_null(strstr(err.msg, ":1: smtp_user: expected `key = value`, got the key and no '='"));
    assert_null(strstr(err.msg, "hunter2"));

    /* the store's own password, in a target that is refused */
    assert_int_equal(cs_conf_set(&c, "store", "postgresq://shop:hunter2@db/shop",
                                 "CONSONANCE_STORE", &err),
                     CS_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "got \"postgresq://shop:***@db/shop\""));
    assert_null(strstr(err.msg, "hunter2"));
    char shown[128];
    cs_conf_shown("store", "postgresql://shop:p@ss:w@db:5432/shop?x=y", shown, sizeof shown);
    assert_string_equal(shown, "postgresql://shop:***@db:5432/shop?x=y");
    cs_conf_shown("store", "postgresql://shop@db/shop", shown, sizeof shown);
    assert_string_equal(shown, "postgresql://shop@db/shop");
    cs_conf_shown("sms_token", "hunter2", shown, sizeof shown);
    assert_string_equal(shown, "(7 characters, not shown)");
}

/* The delivery calendar: holidays by country or from the shop's zone,
 * closed days checked item by item, bad values named. */
static void test_calendar_keys(void **state)
{
    (void)state;
    cs_conf_t c;
    cs_err_t err;
    cs_conf_defaults(&c);
    assert_string_equal(c.holidays, "auto");
    cs_calendar_t *cal = NULL;
    assert_int_equal(cs_conf_calendar(&c, &cal, &err), CS_OK); /* Europe/Berlin: Germany's */
    assert_false(cs_calendar_open(cal, cs_days_from_civil(2026, 10, 3)));
    cs_calendar_free(&cal);
    assert_int_equal(cs_conf_set(&c, "shop_timezone", "Europe/London", "x", &err), CS_OK);
    assert_int_equal(cs_conf_calendar(&c, &cal, &err), CS_OK);
    assert_null(cal); /* no holidays known there: weekdays alone */
    assert_int_equal(cs_conf_set(&c, "holidays", "at", "x", &err), CS_OK);
    assert_int_equal(cs_conf_set(&c, "closed_days", "12-24, 2026-12-31", "x", &err), CS_OK);
    assert_int_equal(cs_conf_calendar(&c, &cal, &err), CS_OK);
    assert_false(cs_calendar_open(cal, cs_days_from_civil(2026, 12, 8)));  /* Austria's */
    assert_false(cs_calendar_open(cal, cs_days_from_civil(2026, 12, 31))); /* the shop's */
    assert_true(cs_calendar_open(cal, cs_days_from_civil(2027, 12, 31)));
    cs_calendar_free(&cal);
    assert_int_equal(cs_conf_set(&c, "holidays", "none", "x", &err), CS_OK);
    assert_int_equal(cs_conf_set(&c, "holidays", "France", "x", &err), CS_ERR_CONFIG);
    assert_string_equal(err.field, "holidays");
    assert_non_null(strstr(err.msg, "DE, AT, CH, BR"));
    assert_int_equal(cs_conf_set(&c, "closed_days", "12-24, 24.12.", "x", &err), CS_ERR_CONFIG);
    assert_string_equal(err.field, "closed_days");
    assert_non_null(strstr(err.msg, "MM-DD"));
    assert_string_equal(c.closed_days, "12-24, 2026-12-31"); /* the good value stays */
}

/* Quiet hours that start and end at the same minute are refused: they
 * could mean none or the whole day. */
static void test_quiet_hours(void **state)
{
    (void)state;
    cs_conf_t c;
    cs_err_t err;
    /* only transactional messages go in them by default: a delay notice
     * the order watch raises at midnight waits for the morning */
    cs_conf_defaults(&c);
    assert_string_equal(c.quiet_hours_exempt, "transactional");
    cs_conf_defaults(&c);
    assert_int_equal(cs_conf_set(&c, "quiet_hours", "22:00-07:30", "x", &err), CS_OK);
    assert_int_equal(cs_conf_set(&c, "quiet_hours", "off", "x", &err), CS_OK);
    assert_int_equal(cs_conf_set(&c, "quiet_hours", "22:00-22:00", "conf:4", &err),
                     CS_ERR_CONFIG);
    assert_string_equal(err.field, "quiet_hours");
    assert_non_null(strstr(err.msg, "conf:4: quiet_hours: \"22:00-22:00\" starts and ends at "
                                    "the same minute"));
    assert_non_null(strstr(err.msg, "expected two different times, or off"));
    assert_int_equal(cs_conf_set(&c, "quiet_hours", "00:00-00:00", "x", &err), CS_ERR_CONFIG);
    assert_string_equal(c.quiet_hours, "off"); /* the good value stays */
    assert_int_equal(cs_conf_set(&c, "quiet_hours", "22:00-22:01", "x", &err), CS_OK);
    assert_int_equal(cs_conf_set(&c, "quiet_hours", "25:00-07:00", "x", &err), CS_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "expected HH:MM-HH:MM"));
}

/* ticket_stale_after: a duration (30d by default), or off (0: an open
 * ticket holds however old it is). */
static void test_ticket_stale_after(void **state)
{
    (void)state;
    cs_conf_t c;
    cs_err_t err;
    cs_conf_defaults(&c);
    assert_int_equal(c.ticket_stale_after_ms, 30 * CS_MS_PER_DAY);
    assert_int_equal(cs_conf_set(&c, "ticket_stale_after", "2w", "x", &err), CS_OK);
    assert_int_equal(c.ticket_stale_after_ms, 14 * CS_MS_PER_DAY);
    assert_int_equal(cs_conf_set(&c, "ticket_stale_after", "off", "x", &err), CS_OK);
    assert_int_equal(c.ticket_stale_after_ms, 0);
    assert_int_equal(cs_conf_set(&c, "ticket_stale_after", "0s", "conf:9", &err), CS_ERR_CONFIG);
    assert_string_equal(err.field, "ticket_stale_after");
    assert_non_null(strstr(err.msg, "conf:9: ticket_stale_after: expected a duration from 1h "
                                    "to 3660d, like 30d, or off, got \"0s\""));
    assert_int_equal(cs_conf_set(&c, "ticket_stale_after", "never", "x", &err), CS_ERR_CONFIG);
    assert_int_equal(c.ticket_stale_after_ms, 0); /* the good value stays */
}

static void test_env_overrides(void **state)
{
    (void)state;
    cs_conf_t c;
    cs_err_t err;
    cs_conf_defaults(&c);
    setenv("CONSONANCE_PORT", "9090", 1);
    setenv("CONSONANCE_STORE", "sqlite:env.db", 1);
    assert_int_equal(cs_conf_apply_env(&c, &err), CS_OK);
    assert_int_equal(c.port, 9090);
    assert_string_equal(c.store, "sqlite:env.db");
    setenv("CONSONANCE_HTTP_THREADS", "0", 1);
    assert_int_equal(cs_conf_apply_env(&c, &err), CS_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "CONSONANCE_HTTP_THREADS"));
    unsetenv("CONSONANCE_HTTP_THREADS");
    /* a variable that names no setting is refused, naming it; the config
     * file's path is no setting but is known */
    setenv("CONSONANCE_CONFIG", "/etc/consonance.conf", 1);
    assert_int_equal(cs_conf_apply_env(&c, &err), CS_OK);
    setenv("CONSONANCE_SMPT_URL", "smtp://mail.example:587", 1);
    assert_int_equal(cs_conf_apply_env(&c, &err), CS_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "CONSONANCE_SMPT_URL: not a setting"));
    unsetenv("CONSONANCE_SMPT_URL");
    setenv("CONSONANCE_port", "9091", 1); /* the key in upper case, or it is none */
    assert_int_equal(cs_conf_apply_env(&c, &err), CS_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "CONSONANCE_port: not a setting"));
    unsetenv("CONSONANCE_port");
    setenv("CONSONANCE_", "x", 1);
    assert_int_equal(cs_conf_apply_env(&c, &err), CS_ERR_CONFIG);
    unsetenv("CONSONANCE_");
    setenv("CONSONANCE_PORTX", "1", 1);
    assert_int_equal(cs_conf_apply_env(&c, &err), CS_ERR_CONFIG);
    unsetenv("CONSONANCE_PORTX");
    assert_int_equal(cs_conf_apply_env(&c, &err), CS_OK);
    assert_int_equal(c.port, 9090);
    unsetenv("CONSONANCE_CONFIG");
    unsetenv("CONSONANCE_PORT");
    unsetenv("CONSONANCE_STORE");
}

/* Settings that contradict each other are refused, naming both; a
 * currency is an ISO 4217 code in capitals. */
static void test_cross_checks(void **state)
{
    (void)state;
    cs_conf_t c;
    cs_err_t err;
    cs_conf_defaults(&c);
    assert_int_equal(cs_conf_check(&c, &err), CS_OK);
    assert_int_equal(cs_conf_set(&c, "webhook_secret", "0123456789abcdef", "test", &err), CS_OK);
    assert_int_equal(cs_conf_check(&c, &err), CS_OK); /* no templates folder needed */
    assert_int_equal(cs_conf_set(&c, "whatsapp_url", "https://graph.example/m", "test", &err),
                     CS_OK);
    assert_int_equal(cs_conf_set(&c, "whatsapp_token", "wa", "test", &err), CS_OK);
    assert_int_equal(cs_conf_check(&c, &err), CS_ERR_CONFIG);
    assert_string_equal(err.field, "templates");
    assert_non_null(strstr(err.msg, "templates: needed when whatsapp_url is set"));
    cs_conf_defaults(&c);
    assert_int_equal(cs_conf_set(&c, "compensation_min", "60", "test", &err), CS_OK);
    assert_int_equal(cs_conf_check(&c, &err), CS_ERR_CONFIG);
    assert_string_equal(err.field, "compensation_min");
    assert_non_null(strstr(err.msg, "compensation_min (60.00) is above compensation_max (50.00)"));
    assert_int_equal(cs_conf_set(&c, "compensation_min", "5", "test", &err), CS_OK);
    assert_int_equal(cs_conf_set(&c, "compensation_budget", "3.50", "test", &err), CS_OK);
    assert_int_equal(cs_conf_check(&c, &err), CS_ERR_CONFIG);
    assert_string_equal(err.field, "compensation_budget");
    assert_non_null(strstr(err.msg, "compensation_budget (3.50 a day) is below compensation_min"));
    assert_int_equal(cs_conf_set(&c, "compensation_budget", "0", "test", &err), CS_OK);
    assert_int_equal(cs_conf_check(&c, &err), CS_OK); /* off */
    assert_int_equal(cs_conf_set(&c, "vip_spent", "0", "test", &err), CS_OK);
    assert_int_equal(cs_conf_set(&c, "shop_currency", "CHF", "test", &err), CS_OK);
    assert_string_equal(c.shop_currency, "CHF");
    assert_int_equal(cs_conf_set(&c, "shop_currency", "eur", "test", &err), CS_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "ISO 4217"));
    assert_int_equal(cs_conf_set(&c, "shop_currency", "EURO", "test", &err), CS_ERR_CONFIG);
    /* codes that are no money, as an order's currency (docs/events.md) */
    assert_int_equal(cs_conf_set(&c, "shop_currency", "XXX", "test", &err), CS_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "not XXX"));
    assert_int_equal(cs_conf_set(&c, "shop_currency", "XAU", "test", &err), CS_ERR_CONFIG);
    assert_int_equal(cs_conf_set(&c, "shop_currency", "XOF", "test", &err), CS_OK); /* money */
    assert_int_equal(cs_conf_set(&c, "shop_currency", "CHF", "test", &err), CS_OK);
    /* a channel that is on (its URL set) needs the rest of its settings */
    assert_int_equal(cs_conf_set(&c, "smtp_url", "smtp://mail.example:587", "test", &err), CS_OK);
    assert_int_equal(cs_conf_check(&c, &err), CS_ERR_CONFIG);
    assert_string_equal(err.field, "smtp_from");
    assert_non_null(strstr(err.msg, "smtp_from: needed when smtp_url is set"));
    assert_int_equal(cs_conf_set(&c, "smtp_from", "shop@example.de", "test", &err), CS_OK);
    /* and messages are rendered from templates (webhooks alone need none) */
    assert_int_equal(cs_conf_check(&c, &err), CS_ERR_CONFIG);
    assert_string_equal(err.field, "templates");
    assert_string_equal(err.msg, "templates: needed when smtp_url is set: expected a folder of "
                                 "message templates (shipped: etc/templates)");
    assert_int_equal(cs_conf_set(&c, "templates", "etc/templates", "test", &err), CS_OK);
    assert_int_equal(cs_conf_check(&c, &err), CS_OK);
    assert_int_equal(cs_conf_set(&c, "sms_url", "https://api.example/sms", "test", &err), CS_OK);
    assert_int_equal(cs_conf_set(&c, "sms_account", "AC1", "test", &err), CS_OK);
    assert_int_equal(cs_conf_set(&c, "sms_from", "+4930123456", "test", &err), CS_OK);
    assert_int_equal(cs_conf_check(&c, &err), CS_ERR_CONFIG);
    assert_string_equal(err.field, "sms_token");
    assert_non_null(strstr(err.msg, "sms_token: needed when sms_url is set"));
    assert_int_equal(cs_conf_set(&c, "sms_token", "t0k3n", "test", &err), CS_ERR_CONFIG);
    assert_string_equal(err.field, "sms_token");
    assert_int_equal(cs_conf_set(&c, "sms_token", "t0k3n-0123456789a", "test", &err), CS_OK);
    assert_int_equal(cs_conf_check(&c, &err), CS_OK);
    assert_int_equal(cs_conf_set(&c, "whatsapp_url", "https://graph.example/m", "test", &err),
                     CS_OK);
    assert_int_equal(cs_conf_check(&c, &err), CS_ERR_CONFIG);
    assert_string_equal(err.msg, "whatsapp_token: needed when whatsapp_url is set");
    assert_int_equal(cs_conf_set(&c, "whatsapp_token", "wa", "test", &err), CS_OK);
    assert_int_equal(cs_conf_check(&c, &err), CS_OK);

    /* signed links need their secret, whatever command reads the settings */
    assert_int_equal(cs_conf_set(&c, "public_url", "https://shop.example", "test", &err), CS_OK);
    assert_int_equal(cs_conf_check(&c, &err), CS_ERR_CONFIG);
    assert_string_equal(err.field, "link_secret");
    assert_non_null(strstr(err.msg, "link_secret: needed when public_url is set"));
    assert_int_equal(cs_conf_set(&c, "link_secret", "0123456789abcdef", "test", &err), CS_OK);
    assert_int_equal(cs_conf_check(&c, &err), CS_OK);
}

static void test_shipped_example_is_valid(void **state)
{
    (void)state;
    cs_conf_t c, d;
    cs_err_t err;
    cs_conf_defaults(&c);
    cs_conf_defaults(&d);
    assert_int_equal(cs_conf_load(&c, CS_SOURCE_DIR "/etc/consonance.conf", &err), CS_OK);
    /* the example documents the defaults */
    assert_memory_equal(&c, &d, sizeof c);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

/* Every setting the parser knows is spelled out in the example file (as a
 * `key = ...` line of its own) and has a row in docs/configuration.md. */
static void test_every_key_in_example_and_docs(void **state)
{
    (void)state;
    char *conf = slurp(CS_SOURCE_DIR "/etc/consonance.conf");
    char *doc = slurp(CS_SOURCE_DIR "/docs/configuration.md");
    size_t n = 0;
    for (const char *k; (k = cs_conf_key(n)) != NULL; n++) {
        char want[96];
        bool in_conf = false;
        size_t kn = strlen(k);
        for (const char *p = conf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
            if (strncmp(p, k, kn) == 0 && (p[kn] == ' ' || p[kn] == '=')) {
                in_conf = true;
                break;
            }
        }
        if (!in_conf)
            fail_msg("etc/consonance.conf has no line for the setting %s", k);
        snprintf(want, sizeof want, "`%s`", k);
        if (!strstr(doc, want))
            fail_msg("docs/configuration.md does not document the setting %s", k);
    }
    assert_true(n > 50);
    assert_null(cs_conf_key(n + 1));
    free(conf);
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_file),
        cmocka_unit_test(test_errors_name_line_and_key),
        cmocka_unit_test(test_quoted_values),
        cmocka_unit_test(test_secrets_never_shown),
        cmocka_unit_test(test_quiet_hours),
        cmocka_unit_test(test_ticket_stale_after),
        cmocka_unit_test(test_calendar_keys),
        cmocka_unit_test(test_env_overrides),
        cmocka_unit_test(test_shipped_example_is_valid),
        cmocka_unit_test(test_cross_checks),
        cmocka_unit_test(test_every_key_in_example_and_docs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
