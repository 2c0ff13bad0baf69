/*
 * smtp.c -- email over SMTP with libcurl. One easy handle per transport, so
 * the connection (and its TLS session) is reused from message to message.
 *
 * Outcomes: a 5xx reply to the recipient or the data is permanent (the
 * server said no), a 4xx reply or any connection trouble is a retry. So is
 * a 5xx that refuses our own setup, not the message: one before MAIL FROM
 * (the session, STARTTLS, AUTH), one to MAIL FROM (our sender address; not
 * 552, the message's size), 530/534/538 (authentication or TLS wanted)
 * at any step, and a recipient refused because the server will not relay
 * for us (its reply says "relay": we are not logged in). Each would fail
 * every message alike until the operator fixes the configuration, so the
 * messages wait for that, with a reason that says so. The reason carries
 * the server's last reply line ("550 5.1.1 no such mailbox"):
 * libcurl hands every reply line to the header callback, and every command
 * we send to the debug callback, which tells the step a reply answered.
 *
 * A recipient's domain that is not ASCII ("kunde@bäckerei.de") goes in its
 * ASCII form (IDNA A-labels, "kunde@xn--bckerei-5wa.de") in RCPT TO and in
 * the To: header alike, converted by libcurl's IDN support (libidn2) under
 * a UTF-8 locale for the calling thread alone (libidn2 reads the name in
 * the locale's charset: in the daemon's "C" locale libcurl's own
 * conversion of RCPT TO does not happen, and the address went as 8-bit
 * bytes, which a server without SMTPUTF8 may refuse or mangle);
 * one that cannot be converted fails as an invalid address. The sender's
 * (smtp_from) is converted the same way, once at open: MAIL FROM, the From:
 * header and the Message-ID carry its ASCII form; one that cannot be
 * converted is a configuration error. A local part that
 * is not ASCII (refused at intake since, docs/events.md) goes as it is:
 * libcurl asks for SMTPUTF8 when the server offers it, and a server that
 * does not refuses the recipient.
 */
#include "channel.h"

#include <curl/curl.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct smtp {
    cs_transport_t base; /* must be first */
    CURL *curl;
    char *url, *user, *password, *from, *from_addr;
    locale_t utf8; /* C.UTF-8's character set, for IDN conversion; 0 when none */
    long use_ssl;
    bool verify;
    long timeout_ms;
    char reply[160]; /* the server's last 4xx/5xx reply line, printable ASCII */
    int step;        /* the command in flight: STEP_* */
    int reply_step;  /* the one reply answered */
} smtp_t;

/* What a reply answers: the session (greeting, EHLO, STARTTLS, AUTH), our
 * sender, the recipient, the message. */
enum { STEP_SESSION, STEP_MAIL, STEP_RCPT, STEP_DATA };

typedef struct upload {
    const char *p;
    size_t left;
} upload_t;

static size_t read_cb(char *buf, size_t size, size_t nitems, void *ud)
{
    upload_t *u = ud;
    size_t n = size * nitems;
    if (n > u->left)
        n = u->left;
    memcpy(buf, u->p, n);
    u->p += n;
    u->left -= n;
    return n;
}

/* Keeps the last 4xx or 5xx reply line: the one that failed the message,
 * not the QUIT's 221 that follows when the connection is closed (kept in
 * the transport: libcurl also reads replies when the handle is closed). */
static size_t reply_cb(char *p, size_t size, size_t nitems, void *ud)
{
    smtp_t *s = ud;
    size_t n = size * nitems, o = 0;
    while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
        n--;
    if (n < 3 || (p[0] != '4' && p[0] != '5'))
        return size * nitems;
    for (size_t i = 0; i < n && o + 1 < sizeof s->reply; i++)
        s->reply[o++] = p[i] >= ' ' && p[i] <= '~' ? p[i] : '?';
    s->reply[o] = '\0';
    s->reply_step = s->step;
    return size * nitems;
}

/* Follows the commands libcurl sends (the message itself and AUTH's
 * continuation lines leave the step as it is). */
static int command_cb(CURL *h, curl_infotype type, char *p, size_t n, void *ud)
{
    smtp_t *s = ud;
    (void)h;
    if (type != CURLINFO_HEADER_OUT || n < 4)
        return 0;
    if (strncasecmp(p, "MAIL", 4) == 0)
        s->step = STEP_MAIL;
    else if (strncasecmp(p, "RCPT", 4) == 0)
        s->step = STEP_RCPT;
    else if (strncasecmp(p, "DATA", 4) == 0)
        s->step = STEP_DATA;
    else if (strncasecmp(p, "EHLO", 4) == 0 || strncasecmp(p, "HELO", 4) == 0 ||
             (n >= 8 && strncasecmp(p, "STARTTLS", 8) == 0) || strncasecmp(p, "AUTH", 4) == 0)
        s->step = STEP_SESSION;
    return 0;
}

/* A 5xx that refuses our setup rather than this message (see the top):
 * the settings to look at, or NULL. */
static const char *setup_refused(const smtp_t *s)
{
    if (strncmp(s->reply, "530", 3) == 0 || strncmp(s->reply, "534", 3) == 0 ||
        strncmp(s->reply, "538", 3) == 0)
        return "smtp_user, smtp_tls";
    /* a message too large, refused at MAIL FROM by its SIZE, is this
     * message's own */
    if (s->reply_step == STEP_MAIL && strncmp(s->reply, "552", 3) != 0)
        return "smtp_from refused";
    if (s->reply_step == STEP_SESSION)
        return "smtp_url, smtp_tls, smtp_user";
    /* "554 5.7.1 Relay access denied", "550 5.7.54 Unable to relay": the
     * server does not send on for us (not logged in), whatever the address */
    if (s->reply_step == STEP_RCPT && strcasestr(s->reply, "relay"))
        return "smtp_url, smtp_user: the server does not relay for us";
    return NULL;
}

/* addr with its domain in ASCII into out (size bytes): as it is when it
 * is ASCII, else in IDNA A-labels by libcurl (curl_url's CURLU_PUNYCODE,
 * libcurl 7.88 built with IDN support), read as UTF-8 whatever the
 * process's locale. False when it does not fit or cannot be converted (no
 * IDN support or UTF-8 locale, a name IDNA does not allow). */
static bool ascii_domain(const smtp_t *s, const char *addr, char *out, size_t size)
{
    const char *at = strrchr(addr, '@'), *p;
    for (p = at ? at + 1 : addr; *p && (unsigned char)*p < 0x80; p++)
        ;
    if (!at || !*p)
        return (size_t)snprintf(out, size, "%s", addr) < size;
    bool ok = false;
#ifdef CURLU_PUNYCODE
    char url[300];
    char *host = NULL;
    CURLU *u = s->utf8 ? curl_url() : NULL;
    locale_t was = u ? uselocale(s->utf8) : (locale_t)0;
    CURLUcode uc = CURLUE_OUT_OF_MEMORY;
    if (u && (size_t)snprintf(url, sizeof url, "smtp://%s/", at + 1) < sizeof url &&
        curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK)
        uc = curl_url_get(u, CURLUPART_HOST, &host, CURLU_PUNYCODE);
    if (u)
        uselocale(was);
    if (uc == CURLUE_OK && host) {
        ok = true;
        for (p = host; *p; p++)
            if ((unsigned char)*p >= 0x80)
                ok = false; /* not converted */
        ok = ok && (size_t)snprintf(out, size, "%.*s@%s", (int)(at - addr), addr, host) < size;
    }
    curl_free(host);
    curl_url_cleanup(u);
#else
    (void)s;
    (void)size;
#endif
    return ok;
}

/* why ascii_domain may have refused a name: "" when this libcurl converts
 * IDN names (the name itself is not allowed), else the missing support */
static const char *idn_note(void)
{
    return curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_IDN
               ? ""
               : "; this libcurl has no IDN support";
}

static void smtp_send(cs_transport_t *t, const cs_mail_t *m, cs_send_result_t *r)
{
    smtp_t *s = (smtp_t *)t;
    cs_buf_t msg;
    cs_err_t err;
    memset(r, 0, sizeof *r);
    cs_buf_init(&msg, 32 * 1024 * 1024);
    if (!cs_email_valid(m->to)) {
        r->status = CS_SEND_PERMANENT;
        snprintf(r->detail, sizeof r->detail, "invalid_address");
        cs_buf_free(&msg);
        return;
    }
    char to[300];
    if (!ascii_domain(s, m->to, to, sizeof to)) {
        r->status = CS_SEND_PERMANENT;
        snprintf(r->detail, sizeof r->detail,
                 "invalid_address: its domain has no ASCII form (IDNA)%s", idn_note());
        cs_buf_free(&msg);
        return;
    }
    cs_mail_t ma = *m; /* the envelope's recipient and the To: header agree */
    ma.to = to;
    m = &ma;
    if (cs_mime_build(m, s->from, &msg, r->provider_ref, sizeof r->provider_ref, &err)) {
        r->status = err.rc == CS_ERR_NOMEM ? CS_SEND_RETRY : CS_SEND_PERMANENT;
        cs_strlcpy(r->detail, err.msg, sizeof r->detail);
        cs_buf_free(&msg);
        return;
    }
    char rcpt[sizeof to + 2], mail_from[300];
    snprintf(rcpt, sizeof rcpt, "<%s>", m->to);
    snprintf(mail_from, sizeof mail_from, "<%s>", s->from_addr);
    struct curl_slist *rcpts = curl_slist_append(NULL, rcpt);
    upload_t up = { msg.data, msg.len };
    CURL *c = s->curl;
    s->reply[0] = '\0';
    s->step = s->reply_step = STEP_SESSION;
    curl_easy_setopt(c, CURLOPT_URL, s->url);
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, mail_from);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpts);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(c, CURLOPT_READDATA, &up);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)msg.len);
    CURLcode cc = rcpts ? curl_easy_perform(c) : CURLE_OUT_OF_MEMORY;
    long code = 0;
    const char *setup;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (cc == CURLE_OK) {
        r->status = CS_SEND_OK;
    } else if (code >= 500 && code < 600 && s->reply[0] && (setup = setup_refused(s))) {
        /* fixable by the operator: the messages wait for the fix */
        r->status = CS_SEND_RETRY;
        snprintf(r->detail, sizeof r->detail, "smtp configuration (%s): %s", setup, s->reply);
    } else if (code >= 500 && code < 600 && cc != CURLE_LOGIN_DENIED) {
        /* the server refused this message or recipient for good */
        r->status = CS_SEND_PERMANENT;
        if (s->reply[0])
            snprintf(r->detail, sizeof r->detail, "rejected: %s", s->reply);
        else
            snprintf(r->detail, sizeof r->detail, "rejected: smtp %ld (%s)", code,
                     curl_easy_strerror(cc));
    } else {
        /* 4xx, refused credentials (fixable by the operator), connection trouble */
        r->status = CS_SEND_RETRY;
        if (code >= 400 && s->reply[0])
            snprintf(r->detail, sizeof r->detail, "smtp %s", s->reply);
        else
            snprintf(r->detail, sizeof r->detail, "smtp %ld: %s", code, curl_easy_strerror(cc));
    }
    curl_slist_free_all(rcpts);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, NULL);
    cs_buf_free(&msg);
}

static void smtp_close(cs_transport_t *t)
{
    smtp_t *s = (smtp_t *)t;
    if (s->curl)
        curl_easy_cleanup(s->curl);
    cs_free(s->url);
    cs_free(s->user);
    cs_free(s->password);
    cs_free(s->from);
    cs_free(s->from_addr);
    if (s->utf8)
        freelocale(s->utf8);
    cs_free(s);
}

static const cs_transport_ops_t smtp_ops = { "smtp", smtp_send, smtp_close };

void cs_transport_close(cs_transport_t **t)
{
    if (t && *t) {
        (*t)->ops->close(*t);
        *t = NULL;
    }
}

cs_rc cs_smtp_open(const cs_smtp_conf_t *c, cs_transport_t **out, cs_err_t *err)
{
    *out = NULL;
    if (!c->url || (strncmp(c->url, "smtp://", 7) != 0 && strncmp(c->url, "smtps://", 8) != 0)) {
        char shown[256];
        cs_url_shown(c->url ? c->url : "", shown, sizeof shown); /* no user:password@ */
        return cs_errf(err, CS_ERR_CONFIG, "smtp_url: expected smtp://host:port or "
                                           "smtps://host:port, got '%s'",
                       shown);
    }
    const char *lt = c->from ? strrchr(c->from, '<') : NULL;
    char addr[256];
    if (lt && strchr(lt, '>'))
        snprintf(addr, sizeof addr, "%.*s", (int)(strchr(lt, '>') - lt - 1), lt + 1);
    else
        snprintf(addr, sizeof addr, "%s", c->from ? c->from : "");
    if (!cs_email_valid(addr))
        return cs_errf(err, CS_ERR_CONFIG, "smtp_from: expected \"Shop <service@shop.example>\" "
                                           "or an address, got '%s'",
                       c->from ? c->from : "");
    long use_ssl;
    const char *tls = c->tls && *c->tls ? c->tls : "try";
    if (strcmp(tls, "try") == 0)
        use_ssl = CURLUSESSL_TRY;
    else if (strcmp(tls, "require") == 0)
        use_ssl = CURLUSESSL_ALL;
    else if (strcmp(tls, "off") == 0)
        use_ssl = CURLUSESSL_NONE;
    else
        return cs_errf(err, CS_ERR_CONFIG, "smtp_tls: expected try, require or off, got '%s'",
                       tls);
    smtp_t *s = cs_calloc(1, sizeof *s);
    if (s)
        s->utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0); /* 0: no IDN domains */
    /* the sender's domain in its ASCII form (IDNA), once here: MAIL FROM,
     * the From: header and the Message-ID's domain carry it, as a
     * recipient's does (see the top) */
    char from_addr[256] = "";
    if (s && !ascii_domain(s, addr, from_addr, sizeof from_addr)) {
        smtp_close(&s->base);
        return cs_errf(err, CS_ERR_CONFIG,
                       "smtp_from: the domain of '%s' has no ASCII form (IDNA)%s: expected a "
                       "domain IDNA allows, or its xn-- form",
                       addr, idn_note());
    }
    /* "Name <addr>" keeps its name; an address alone is the address */
    bool named = lt && strchr(lt, '>');
    size_t name_len = named ? (size_t)(lt - c->from) : 0;
    size_t from_size = name_len + strlen(from_addr) + 3;
    if (s && (s->from = cs_malloc(from_size)) != NULL) {
        if (named)
            snprintf(s->from, from_size, "%.*s<%s>", (int)name_len, c->from, from_addr);
        else
            snprintf(s->from, from_size, "%s", from_addr);
    }
    if (!s || !s->from || !(s->curl = curl_easy_init()) || !(s->url = cs_strdup(c->url)) ||
        !(s->from_addr = cs_strdup(from_addr)) ||
        (c->user && *c->user && (!(s->user = cs_strdup(c->user)) ||
                                 !(s->password = cs_strdup(c->password ? c->password : ""))))) {
        if (s)
            smtp_close(&s->base);
        return cs_errf(err, CS_ERR_NOMEM, "out of memory opening SMTP");
    }
    s->base.ops = &smtp_ops;
    CURL *h = s->curl;
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USE_SSL, use_ssl);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, c->tls_verify ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, c->tls_verify ? 2L : 0L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(c->timeout_ms > 0 ? c->timeout_ms : 30000));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, reply_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, command_cb);
    curl_easy_setopt(h, CURLOPT_DEBUGDATA, s);
    curl_easy_setopt(h, CURLOPT_VERBOSE, 1L); /* for command_cb; it prints nothing */
    if (s->user) {
        curl_easy_setopt(h, CURLOPT_USERNAME, s->user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, s->password);
    }
    *out = &s->base;
    return CS_OK;
}
