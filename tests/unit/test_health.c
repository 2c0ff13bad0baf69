/*
 * test_health.c -- GET /healthz over a real engine and HTTP server on a
 * SQLite file store: healthy while the store reads and writes; after a
 * failed fdatasync of the WAL (final: the store refuses every write until
 * the daemon is restarted) unhealthy, naming the cause, although reads
 * still work; a full disk that is over again does not make it unhealthy.
 *
 * fdatasync is replaced here (the gathering VFS's deferred syncs call it
 * directly), as in test_walbuf.c; SQLite's writes are failed through its
 * own system-call table (xSetSystemCall).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/engine.h"
#include "engine/sender.h"
#include "http/server.h"
#include "lib/cs_json.h"

static char tmpdir[256];
static char target[512];

static bool fail_fdatasync;

int fdatasync(int fd)
{
    if (fail_fdatasync) {
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_fdatasync, fd);
}

/* SQLite's writes, failing as on a full disk while disk_full is set. */
static bool disk_full;
static sqlite3_syscall_ptr real_write, real_pwrite, real_pwrite64;

static ssize_t full_write(int fd, const void *p, size_t n)
{
    if (disk_full) {
        errno = ENOSPC;
        return -1;
    }
    return ((ssize_t(*)(int, const void *, size_t))real_write)(fd, p, n);
}

static ssize_t full_pwrite(int fd, const void *p, size_t n, off_t off)
{
    if (disk_full) {
        errno = ENOSPC;
        return -1;
    }
    return ((ssize_t(*)(int, const void *, size_t, off_t))real_pwrite)(fd, p, n, off);
}

static ssize_t full_pwrite64(int fd, const void *p, size_t n, off_t off)
{
    if (disk_full) {
        errno = ENOSPC;
        return -1;
    }
    return ((ssize_t(*)(int, const void *, size_t, off_t))real_pwrite64)(fd, p, n, off);
}

static void hook_writes(void)
{
    sqlite3_vfs *unix_vfs = sqlite3_vfs_find("unix");
    assert_non_null(unix_vfs);
    assert_true(unix_vfs->iVersion >= 3);
    real_write = unix_vfs->xGetSystemCall(unix_vfs, "write");
    real_pwrite = unix_vfs->xGetSystemCall(unix_vfs, "pwrite");
    real_pwrite64 = unix_vfs->xGetSystemCall(unix_vfs, "pwrite64");
    assert_non_null(real_write);
    unix_vfs->xSetSystemCall(unix_vfs, "write", (sqlite3_syscall_ptr)full_write);
    if (real_pwrite)
        unix_vfs->xSetSystemCall(unix_vfs, "pwrite", (sqlite3_syscall_ptr)full_pwrite);
    if (real_pwrite64)
        unix_vfs->xSetSystemCall(unix_vfs, "pwrite64", (sqlite3_syscall_ptr)full_pwrite64);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cs-health-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(target, sizeof target, "sqlite:%s/health.db", tmpdir);
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    curl_global_cleanup();
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
    cs_buf_t *b = ud;
    return cs_buf_append(b, p, size * n) == CS_OK ? size * n : 0;
}

static size_t header(char *p, size_t size, size_t n, void *ud)
{
    if (size * n > 12 && strncasecmp(p, "Retry-After:", 12) == 0)
        *(bool *)ud = true;
    return size * n;
}

/* A request to the daemon: GET path, or POST it the form `post`; the
 * status, the body into b (initialised by the caller), and in *retry
 * whether the answer had a Retry-After. */
static long call(int port, const char *path, const char *post, cs_buf_t *b, bool *retry)
{
    char url[400];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    *retry = false;
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (post)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, retry);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    return status;
}

/* GET /healthz: the status, and the body parsed (owned). */
static long get_health(int port, json_t **body)
{
    cs_buf_t b;
    bool retry;
    cs_buf_init(&b, 1 << 16);
    long status = call(port, "/healthz", NULL, &b, &retry);
    *body = json_loadb(b.data ? b.data : "", b.len, 0, NULL);
    cs_buf_free(&b);
    assert_non_null(*body);
    return status;
}

/* POST /u/TOKEN (the one-click unsubscribe): the status, and whether the
 * answer says when to try again. */
static long post_unsubscribe(int port, const char *secret, const char *customer, bool *retry)
{
    char tok[2 * 128 + 64], path[400];
    cs_unsubscribe_token(secret, customer, tok, sizeof tok);
    snprintf(path, sizeof path, "/u/%s", tok);
    cs_buf_t b;
    cs_buf_init(&b, 1 << 16);
    long status = call(port, path, "List-Unsubscribe=One-Click", &b, retry);
    cs_buf_free(&b);
    return status;
}

static cs_rc ingest_order(cs_engine_t *e, int n)
{
    char text[1024];
    snprintf(text, sizeof text,
             "{\"event_id\":\"o-%d\",\"type\":\"order.placed\",\"occurred_at\":\"2026-03-01T10:00:00Z\","
             "\"data\":{\"id\":\"%d\",\"customer_id\":\"c-%d\",\"currency\":\"EUR\","
             "\"items\":[{\"sku\":\"KAF-1\",\"name\":\"Kaffee\",\"unit_price\":\"12.90\",\"quantity\":2}]}}",
             n, n, n);
    cs_event_t *ev = NULL;
    cs_err_t err;
    if (cs_event_parse(text, strlen(text), &ev, &err))
        fail_msg("parse: %s", err.msg);
    cs_ingest_item_t item;
    memset(&item, 0, sizeof item);
    item.ev = ev;
    cs_ingest_req_t req;
    memset(&req, 0, sizeof req);
    req.items = &item;
    req.n = 1;
    cs_rc rc = cs_engine_ingest(e, &req);
    cs_event_free(&item.ev);
    return rc ? rc : item.rc;
}

static void test_health_follows_the_store(void **state)
{
    (void)state;
    cs_engine_opts_t o;
    cs_engine_opts_default(&o);
    o.store = target;
    cs_engine_t *e = NULL;
    cs_err_t err;
    if (cs_engine_open(&o, &e, &err))
        fail_msg("engine open: %s", err.msg);
    cs_http_opts_t ho;
    cs_http_opts_default(&ho);
    ho.host = "127.0.0.1";
    ho.port = 0;
    ho.link_secret = "test-link-secret-0123456789";
    cs_http_t *h = NULL;
    if (cs_http_start(e, &ho, &h, &err))
        fail_msg("http start: %s", err.msg);
    int port = cs_http_port(h);
    json_t *body = NULL;

    /* the first commits sync the new WAL themselves; later ones defer */
    for (int i = 1; i <= 3; i++)
        assert_int_equal(ingest_order(e, i), CS_OK);
    assert_false(cs_engine_refusing(e, NULL));
    assert_int_equal(get_health(port, &body), 200);
    assert_string_equal(json_string_value(json_object_get(body, "status")), "ok");
    json_decref(body);

    /* a full disk fails the events that meet it, and is over with it */
    hook_writes();
    disk_full = true;
    assert_int_equal(ingest_order(e, 4), CS_ERR_STORE);
    disk_full = false;
    assert_false(cs_engine_refusing(e, NULL));
    assert_int_equal(get_health(port, &body), 200);
    json_decref(body);
    assert_int_equal(ingest_order(e, 5), CS_OK);

    /* a failed fdatasync is final: every write is refused from then on */
    fail_fdatasync = true;
    assert_int_equal(ingest_order(e, 6), CS_ERR_STORE);
    fail_fdatasync = false;
    assert_int_equal(ingest_order(e, 7), CS_ERR_STORE);
    assert_true(cs_engine_refusing(e, &err));
    assert_non_null(strstr(err.msg, "fdatasync"));
    assert_int_equal(get_health(port, &body), 503);
    assert_string_equal(json_string_value(json_object_get(body, "status")), "unhealthy");
    const char *msg = json_string_value(json_object_get(body, "message"));
    assert_non_null(msg);
    assert_non_null(strstr(msg, "fdatasync"));
    assert_non_null(strstr(msg, "restarted"));
    json_decref(body);
    /* the unsubscribe page cannot record the click now: it asks the
     * customer to try again, and says when, as intake's 503s do */
    bool retry = false;
    assert_int_equal(post_unsubscribe(port, ho.link_secret, "c-1", &retry), 503);
    assert_true(retry);

    cs_http_stop(&h);
    cs_engine_close(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_health_follows_the_store, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
