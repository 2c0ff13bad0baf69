/*
 * cs_crypto.c -- see cs_crypto.h. libcrypto's one-shot functions are
 * thread-safe; getrandom(2) supplies randomness without a file descriptor.
 */
#include "cs_crypto.h"

#include <errno.h>
#include <pthread.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <string.h>
#include <sys/random.h>

/* SHA256() looks its algorithm up in libcrypto's provider tables on every
 * call, which cost more than hashing an API key (every request hashes
 * one): look it up once. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void cs_sha256(const void *data, size_t len, uint8_t out[CS_SHA256_LEN])
{
    pthread_once(&sha256_once, sha256_fetch);
    if (!sha256_md || !EVP_Digest(data, len, out, NULL, sha256_md, NULL))
        SHA256(data, len, out);
}

void cs_hex(const uint8_t *in, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[in[i] >> 4];
        out[2 * i + 1] = hx[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void cs_sha256_hex(const void *data, size_t len, char out[CS_SHA256_HEX_LEN])
{
    uint8_t d[CS_SHA256_LEN];
    cs_sha256(data, len, d);
    cs_hex(d, sizeof d, out);
}

void cs_hmac_sha1(const void *key, size_t keylen, const void *data, size_t len,
                  uint8_t out[CS_SHA1_LEN])
{
    unsigned int outlen = CS_SHA1_LEN;
    HMAC(EVP_sha1(), key, (int)keylen, data, len, out, &outlen);
}

size_t cs_base64(const uint8_t *in, size_t n, char *out)
{
    return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

cs_rc cs_webhook_signature(const char *secret, long long ts, const void *body, size_t len,
                           char out[CS_SHA256_HEX_LEN])
{
    char t[24];
    int k = snprintf(t, sizeof t, "%lld", ts);
    return cs_webhook_signature_text(secret, t, (size_t)k, body, len, out);
}

cs_rc cs_webhook_signature_text(const char *secret, const char *t, size_t tlen, const void *body,
                                size_t len, char out[CS_SHA256_HEX_LEN])
{
    char digest[] = "SHA256";
    OSSL_PARAM params[] = { OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                            OSSL_PARAM_construct_end() };
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    uint8_t d[CS_SHA256_LEN];
    size_t dl = 0;
    int ok = ctx && EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret), params) &&
             EVP_MAC_update(ctx, (const unsigned char *)t, tlen) &&
             EVP_MAC_update(ctx, (const unsigned char *)".", 1) &&
             EVP_MAC_update(ctx, body, len) && EVP_MAC_final(ctx, d, &dl, sizeof d) &&
             dl == sizeof d;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    out[0] = '\0';
    if (!ok)
        return CS_ERR_INTERNAL;
    cs_hex(d, sizeof d, out);
    return CS_OK;
}

void cs_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                    uint8_t out[CS_SHA256_LEN])
{
    unsigned int outlen = CS_SHA256_LEN;
    HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &outlen);
}

cs_rc cs_random_bytes(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return CS_ERR_IO;
        }
        p += got;
        n -= (size_t)got;
    }
    return CS_OK;
}

cs_rc cs_random_token(const char *prefix, size_t nbytes, char *out, size_t size)
{
    size_t plen = strlen(prefix);
    uint8_t raw[64];
    if (nbytes > sizeof raw || size < plen + 2 * nbytes + 1)
        return CS_ERR_TOOBIG;
    cs_rc rc = cs_random_bytes(raw, nbytes);
    if (rc)
        return rc;
    memcpy(out, prefix, plen);
    cs_hex(raw, nbytes, out + plen);
    return CS_OK;
}

int cs_ct_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}
