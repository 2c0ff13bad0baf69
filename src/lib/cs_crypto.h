/*
 * cs_crypto.h -- hashing, HMAC, random tokens and hex, over OpenSSL's libcrypto.
 * Thread-safe. Output buffers are caller-owned with the sizes stated.
 */
#ifndef CS_CRYPTO_H
#define CS_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "cs.h"

#define CS_SHA256_LEN 32
#define CS_SHA256_HEX_LEN 65 /* 64 hex digits + NUL */

void cs_sha256(const void *data, size_t len, uint8_t out[CS_SHA256_LEN]);
/* Lower-case hex of SHA-256(data) into out (CS_SHA256_HEX_LEN bytes). */
void cs_sha256_hex(const void *data, size_t len, char out[CS_SHA256_HEX_LEN]);
void cs_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                    uint8_t out[CS_SHA256_LEN]);
#define CS_SHA1_LEN 20
/* HMAC-SHA1: only where a peer's protocol demands it (Twilio's signatures). */
void cs_hmac_sha1(const void *key, size_t keylen, const void *data, size_t len,
                  uint8_t out[CS_SHA1_LEN]);
/* Standard base64 (with padding) of n bytes into out, which must hold
 * 4 * ((n + 2) / 3) + 1 bytes. Returns the length written. */
size_t cs_base64(const uint8_t *in, size_t n, char *out);
/* The signature of our webhooks (X-Consonance-Signature v1, both ways):
 * hex HMAC-SHA256 of "<ts>.<body>" keyed with secret, into out. */
cs_rc cs_webhook_signature(const char *secret, long long ts, const void *body, size_t len,
                           char out[CS_SHA256_HEX_LEN]);
/* The same over "<t>.<body>" for the time as the sender wrote it (tlen
 * bytes of t, not NUL-terminated): a receiver checks the text that was
 * signed, leading zeros and all. */
cs_rc cs_webhook_signature_text(const char *secret, const char *t, size_t tlen, const void *body,
                                size_t len, char out[CS_SHA256_HEX_LEN]);
/* Hex-encode n bytes into out (2n+1 bytes). */
void cs_hex(const uint8_t *in, size_t n, char *out);
/* Fill buf with n cryptographically random bytes. */
cs_rc cs_random_bytes(void *buf, size_t n);
/* A random token: prefix followed by 2*nbytes hex digits, NUL-terminated in
 * out (size must be >= strlen(prefix) + 2*nbytes + 1). */
cs_rc cs_random_token(const char *prefix, size_t nbytes, char *out, size_t size);
/* Constant-time comparison of two equal-length byte strings. */
int cs_ct_equal(const void *a, const void *b, size_t n);

#endif /* CS_CRYPTO_H */
