/*
 * links.c -- signed links in messages: the tracking page's and the
 * unsubscribe page's tokens (see sender.h).
 */
#include "sender.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "../lib/cs_crypto.h"

/* ---- signed links: hex(id) "." hmac ---- */

/* The MAC of a link: over "purpose:id" (t: a tracking page, u: an
 * unsubscribe page), so a token for one kind of page opens no other; over
 * the id alone (purpose NULL) for unsubscribe links sent before they had
 * a purpose. */
static void link_mac(const char *secret, const char *purpose, const char *id, char *hex)
{
    uint8_t mac[CS_SHA256_LEN];
    char msg[CS_ID_MAX + 40];
    if (purpose)
        snprintf(msg, sizeof msg, "%s:%s", purpose, id);
    else
        cs_strlcpy(msg, id, sizeof msg);
    cs_hmac_sha256(secret, strlen(secret), msg, strlen(msg), mac);
    cs_hex(mac, CS_SHA256_LEN, hex);
}

void cs_link_token(const char *secret, const char *purpose, const char *id, char *out,
                   size_t size)
{
    size_t n = strlen(id);
    char hexmac[CS_SHA256_HEX_LEN];
    link_mac(secret, purpose, id, hexmac);
    size_t o = 0;
    for (size_t i = 0; i < n && o + 3 < size; i++)
        o += (size_t)snprintf(out + o, size - o, "%02x", (unsigned char)id[i]);
    snprintf(out + o, size - o, ".%.32s", hexmac);
}

bool cs_link_token_check(const char *secret, const char *purpose, const char *token, char *id,
                         size_t size)
{
    const char *dot = strchr(token, '.');
    if (!dot || (dot - token) % 2 || dot == token || (size_t)(dot - token) / 2 >= size ||
        (size_t)(dot - token) / 2 > CS_ID_MAX || strlen(dot + 1) != 32)
        return false;
    size_t n = (size_t)(dot - token) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (!isxdigit((unsigned char)token[2 * i]) || !isxdigit((unsigned char)token[2 * i + 1]) ||
            sscanf(token + 2 * i, "%2x", &v) != 1 || v == 0)
            return false;
        id[i] = (char)v;
    }
    id[n] = '\0';
    char want[CS_SHA256_HEX_LEN];
    link_mac(secret, purpose, id, want);
    return cs_ct_equal(want, dot + 1, 32);
}

void cs_unsubscribe_token(const char *secret, const char *customer, char *out, size_t size)
{
    cs_link_token(secret, "u", customer, out, size);
}

/* An unsubscribe link sent before they were signed over "u:ID" signs the
 * id alone, and is honoured still; but not for an id that reads as a
 * purpose's signed text ("t:1001"): that MAC is the tracking link's of
 * order 1001, which would then unsubscribe customer "t:1001". (Such old
 * links of a customer "t:1001" open order 1001's page in turn; only a new
 * link_secret ends them: docs/channels.md.) */
bool cs_unsubscribe_token_check(const char *secret, const char *token, char *customer,
                                size_t size)
{
    if (cs_link_token_check(secret, "u", token, customer, size))
        return true;
    if (!cs_link_token_check(secret, NULL, token, customer, size))
        return false;
    return !(islower((unsigned char)customer[0]) && customer[1] == ':');
}
