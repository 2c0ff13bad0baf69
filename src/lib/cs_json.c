/*
 * cs_json.c -- the fast path for parsing JSON into jansson values (see
 * cs_json.h). A recursive descent over the bytes: strings without escapes
 * go to jansson straight from the input, numbers through strtoll/strtod
 * as jansson does. Anything it does not take returns NULL and the caller
 * asks jansson: malformed input of every kind, duplicate keys, \u0000,
 * nesting deeper than MAX_DEPTH, numbers longer than NUM_MAX, escaped
 * strings longer than ESC_MAX.
 */
#include "cs_json.h"
#include "cs.h"
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64
#define NUM_MAX 64
#define ESC_MAX 2048  /* an escaped string value */
#define KEY_MAX 256   /* an escaped key (kept across the value's recursion) */

typedef struct p {
    const unsigned char *s, *e;
    int depth;
} p_t;

static json_t *value(p_t *p);

static inline void ws(p_t *p)
{
    while (p->s < p->e && (*p->s == ' ' || *p->s == '\n' || *p->s == '\r' || *p->s == '\t'))
        p->s++;
}

static int hex4(const unsigned char *s)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int c = s[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static size_t put_utf8(char *o, int32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The string whose opening quote p is past. Its bytes are the input's
 * (*out into it) or, with escapes, decoded into esc (cap bytes). 0, or -1
 * to give up. */
static int string(p_t *p, char *esc, size_t cap, const char **out, size_t *len)
{
    const unsigned char *s = p->s, *e = p->e, *start = s;
    while (s < e && *s != '"' && *s != '\\') {
        if (*s < 0x20)
            return -1;
        if (*s < 0x80) {
            s++;
            continue;
        }
        size_t n = cs_utf8_seq((const char *)s, (size_t)(e - s));
        if (!n)
            return -1;
        s += n;
    }
    if (s >= e)
        return -1;
    if (*s == '"') { /* no escapes: the input's bytes */
        *out = (const char *)start;
        *len = (size_t)(s - start);
        p->s = s + 1;
        return 0;
    }
    size_t o = (size_t)(s - start);
    if (o + 8 > cap)
        return -1;
    memcpy(esc, start, o);
    while (s < e && *s != '"') {
        if (o + 8 > cap)
            return -1;
        unsigned c = *s;
        if (c < 0x20)
            return -1;
        if (c >= 0x80) {
            size_t n = cs_utf8_seq((const char *)s, (size_t)(e - s));
            if (!n)
                return -1;
            memcpy(esc + o, s, n);
            o += n;
            s += n;
            continue;
        }
        if (c != '\\') {
            esc[o++] = (char)c;
            s++;
            continue;
        }
        if (e - s < 2)
            return -1;
        switch (s[1]) {
        case '"': esc[o++] = '"'; break;
        case '\\': esc[o++] = '\\'; break;
        case '/': esc[o++] = '/'; break;
        case 'b': esc[o++] = '\b'; break;
        case 'f': esc[o++] = '\f'; break;
        case 'n': esc[o++] = '\n'; break;
        case 'r': esc[o++] = '\r'; break;
        case 't': esc[o++] = '\t'; break;
        case 'u': {
            if (e - s < 6)
                return -1;
            int32_t cp = hex4(s + 2);
            if (cp <= 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
                return -1; /* \u0000, a bad digit or a lone low surrogate */
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (e - s < 12 || s[6] != '\\' || s[7] != 'u')
                    return -1;
                int lo = hex4(s + 8);
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return -1;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                s += 6;
            }
            o += put_utf8(esc + o, cp);
            s += 6;
            continue;
        }
        default: return -1;
        }
        s += 2;
    }
    if (s >= e)
        return -1;
    *out = esc;
    *len = o;
    p->s = s + 1;
    return 0;
}

/* A number by JSON's grammar, converted as jansson converts it. */
static json_t *number(p_t *p)
{
    const unsigned char *s = p->s, *e = p->e;
    bool real = false;
    if (s < e && *s == '-')
        s++;
    if (s >= e || *s < '0' || *s > '9')
        return NULL;
    if (*s == '0') {
        s++;
        if (s < e && *s >= '0' && *s <= '9')
            return NULL;
    } else {
        while (s < e && *s >= '0' && *s <= '9')
            s++;
    }
    if (s < e && *s == '.') {
        real = true;
        s++;
        if (s >= e || *s < '0' || *s > '9')
            return NULL;
        while (s < e && *s >= '0' && *s <= '9')
            s++;
    }
    if (s < e && (*s == 'e' || *s == 'E')) {
        real = true;
        s++;
        if (s < e && (*s == '+' || *s == '-'))
            s++;
        if (s >= e || *s < '0' || *s > '9')
            return NULL;
        while (s < e && *s >= '0' && *s <= '9')
            s++;
    }
    size_t n = (size_t)(s - p->s);
    if (n >= NUM_MAX)
        return NULL;
    char buf[NUM_MAX];
    memcpy(buf, p->s, n);
    buf[n] = '\0';
    char *end;
    errno = 0;
    json_t *v;
    if (!real) {
        long long x = strtoll(buf, &end, 10);
        if (errno == ERANGE || end != buf + n)
            return NULL; /* jansson: too big an integer */
        v = json_integer(x);
    } else {
        double d = strtod(buf, &end);
        if ((errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL)) || end != buf + n)
            return NULL; /* jansson: real number overflow */
        v = json_real(d);
    }
    p->s = s;
    return v;
}

/* A string value; apart, so only its frame holds the escape buffer. */
static __attribute__((noinline)) json_t *string_value(p_t *p)
{
    char esc[ESC_MAX];
    const char *s;
    size_t n;
    if (string(p, esc, sizeof esc, &s, &n))
        return NULL;
    return json_stringn_nocheck(s, n);
}

static json_t *object(p_t *p)
{
    json_t *o = json_object();
    char esc[KEY_MAX];
    if (!o)
        return NULL;
    ws(p);
    if (p->s < p->e && *p->s == '}') {
        p->s++;
        return o;
    }
    for (;;) {
        const char *key;
        size_t klen;
        if (p->s >= p->e || *p->s != '"')
            goto fail;
        p->s++;
        if (string(p, esc, sizeof esc, &key, &klen))
            goto fail;
        ws(p);
        if (p->s >= p->e || *p->s != ':')
            goto fail;
        p->s++;
        ws(p);
        json_t *v = value(p);
        if (!v)
            goto fail;
        /* key may be in esc: value() keeps its own buffers */
        if (json_object_getn(o, key, klen) || json_object_setn_new_nocheck(o, key, klen, v)) {
            json_decref(v);
            goto fail;
        }
        ws(p);
        if (p->s >= p->e)
            goto fail;
        if (*p->s == '}') {
            p->s++;
            return o;
        }
        if (*p->s != ',')
            goto fail;
        p->s++;
        ws(p);
    }
fail:
    json_decref(o);
    return NULL;
}

static json_t *array(p_t *p)
{
    json_t *a = json_array();
    if (!a)
        return NULL;
    ws(p);
    if (p->s < p->e && *p->s == ']') {
        p->s++;
        return a;
    }
    for (;;) {
        json_t *v = value(p);
        if (!v || json_array_append_new(a, v))
            goto fail;
        ws(p);
        if (p->s >= p->e)
            goto fail;
        if (*p->s == ']') {
            p->s++;
            return a;
        }
        if (*p->s != ',')
            goto fail;
        p->s++;
        ws(p);
    }
fail:
    json_decref(a);
    return NULL;
}

static bool word(p_t *p, const char *w, size_t n)
{
    if ((size_t)(p->e - p->s) < n || memcmp(p->s, w, n) != 0)
        return false;
    p->s += n;
    return true;
}

static json_t *value(p_t *p)
{
    if (p->s >= p->e)
        return NULL;
    switch (*p->s) {
    case '{':
    case '[': {
        if (++p->depth > MAX_DEPTH)
            return NULL;
        bool obj = *p->s == '{';
        p->s++;
        json_t *v = obj ? object(p) : array(p);
        p->depth--;
        return v;
    }
    case '"': p->s++; return string_value(p);
    case 't': return word(p, "true", 4) ? json_true() : NULL;
    case 'f': return word(p, "false", 5) ? json_false() : NULL;
    case 'n': return word(p, "null", 4) ? json_null() : NULL;
    default: return number(p);
    }
}

json_t *cs_json_fast(const char *buf, size_t len)
{
    p_t p = { (const unsigned char *)buf, (const unsigned char *)buf + len, 0 };
    ws(&p);
    if (p.s >= p.e || (*p.s != '{' && *p.s != '['))
        return NULL; /* jansson wants an object or an array */
    json_t *v = value(&p);
    if (!v)
        return NULL;
    ws(&p);
    if (p.s != p.e) {
        json_decref(v);
        return NULL;
    }
    return v;
}

json_t *cs_json_loadb(const char *buf, size_t len, json_error_t *err)
{
    json_t *v = cs_json_fast(buf, len);
    if (v)
        return v;
    return json_loadb(buf, len, JSON_REJECT_DUPLICATES, err);
}

/* ---- compact text ---- */

typedef struct out {
    char *p, *end;
} out_t;

static bool out_put(out_t *o, const char *s, size_t n)
{
    if ((size_t)(o->end - o->p) < n)
        return false;
    memcpy(o->p, s, n);
    o->p += n;
    return true;
}

static bool out_str(out_t *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    if (o->p >= o->end)
        return false;
    *o->p++ = '"';
    size_t run = 0; /* bytes copied as they are, waiting */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            run++;
            continue;
        }
        if (!out_put(o, s + i - run, run))
            return false;
        run = 0;
        char esc[6] = { '\\', 0 };
        size_t len = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default: /* as jansson writes it: \u00XX, upper case */
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            len = 6;
        }
        if (!out_put(o, esc, len))
            return false;
    }
    return out_put(o, s + n - run, run) && out_put(o, "\"", 1);
}

int cs_json_real_digits(double d)
{
    char num[40];
    if (!isfinite(d))
        return 1;
    for (int p = 1; p < 17; p++) {
        snprintf(num, sizeof num, "%.*g", p, d);
        if (strtod(num, NULL) == d)
            return p;
    }
    return 17;
}

/* d as jansson writes a real under JSON_REAL_PRECISION(p) ("%.*g", a ".0"
 * on what would read as an integer, the exponent without '+' and leading
 * zeros: 1e+300 -> 1e300, 2.5e-07 -> 2.5e-7), in its fewest digits. */
static size_t real_text(double d, char *num, size_t size)
{
    int n = snprintf(num, size, "%.*g", cs_json_real_digits(d), d);
    if (n <= 0 || (size_t)n + 3 > size)
        return 0;
    size_t len = (size_t)n;
    if (!strpbrk(num, ".eE")) { /* "10" would read back as an integer */
        memcpy(num + len, ".0", 3);
        len += 2;
    }
    char *e = strchr(num, 'e');
    if (e) {
        char *start = e + 1, *end = start + 1;
        if (*start == '-')
            start++;
        while (*end == '0' && end[1])
            end++;
        if (end != start) {
            memmove(start, end, len + 1 - (size_t)(end - num));
            len -= (size_t)(end - start);
        }
    }
    return len;
}

static bool out_value(out_t *o, const json_t *v, int depth)
{
    if (depth > MAX_DEPTH)
        return false;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *m;
        bool first = true;
        if (!out_put(o, "{", 1))
            return false;
        json_object_foreach ((json_t *)v, key, m) {
            if (!first && !out_put(o, ",", 1))
                return false;
            first = false;
            void *it = json_object_key_to_iter(key);
            if (!out_str(o, key, json_object_iter_key_len(it)) || !out_put(o, ":", 1) ||
                !out_value(o, m, depth + 1))
                return false;
        }
        return out_put(o, "}", 1);
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        if (!out_put(o, "[", 1))
            return false;
        for (size_t i = 0; i < n; i++)
            if ((i && !out_put(o, ",", 1)) || !out_value(o, json_array_get(v, i), depth + 1))
                return false;
        return out_put(o, "]", 1);
    }
    case JSON_STRING: return out_str(o, json_string_value(v), json_string_length(v));
    case JSON_INTEGER: {
        char num[24];
        int n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return n > 0 && out_put(o, num, (size_t)n);
    }
    case JSON_TRUE: return out_put(o, "true", 4);
    case JSON_FALSE: return out_put(o, "false", 5);
    case JSON_NULL: return out_put(o, "null", 4);
    case JSON_REAL: {
        char num[48];
        size_t n = real_text(json_real_value(v), num, sizeof num);
        return n > 0 && out_put(o, num, n);
    }
    default: return false;
    }
}

size_t cs_json_quote(const char *s, size_t n, char *buf, size_t size)
{
    out_t o = { buf, buf + size };
    return out_str(&o, s, n) ? (size_t)(o.p - buf) : 0;
}

size_t cs_json_dumpb(const json_t *v, char *buf, size_t size)
{
    out_t o = { buf, buf + size };
    if (!v || !out_value(&o, v, 0))
        return 0;
    return (size_t)(o.p - buf);
}

/* Nested deeper than MAX_DEPTH (cs_json_dumpb gives up on it)? */
static bool too_deep(const json_t *v, int depth)
{
    const char *key;
    json_t *m;
    size_t i;
    if (depth > MAX_DEPTH)
        return true;
    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, key, m)
            if (too_deep(m, depth + 1))
                return true;
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, m)
            if (too_deep(m, depth + 1))
                return true;
    }
    return false;
}

static int reals_digits(const json_t *v, int depth)
{
    int best = 0, d;
    const char *key;
    json_t *m;
    size_t i;
    if (depth > MAX_DEPTH)
        return 17;
    switch (json_typeof(v)) {
    case JSON_REAL: return cs_json_real_digits(json_real_value(v));
    case JSON_OBJECT:
        json_object_foreach((json_t *)v, key, m)
            if ((d = reals_digits(m, depth + 1)) > best)
                best = d;
        return best;
    case JSON_ARRAY:
        json_array_foreach(v, i, m)
            if ((d = reals_digits(m, depth + 1)) > best)
                best = d;
        return best;
    default: return 0;
    }
}

size_t cs_json_real_flags(const json_t *v)
{
    int p = v ? reals_digits(v, 0) : 0;
    return p ? JSON_REAL_PRECISION(p) : 0;
}

char *cs_json_dumps(const json_t *v, size_t flags)
{
    /* compact text: ours, each real in its own fewest digits; else (or
     * nested deeper than ours takes) jansson's, every real in the digits
     * the one needing most needs */
    bool compact = (flags & ~(size_t)(JSON_COMPACT | JSON_ENCODE_ANY)) == 0 &&
                   (flags & JSON_COMPACT) && v &&
                   ((flags & JSON_ENCODE_ANY) || json_is_object(v) || json_is_array(v));
    if (compact && too_deep(v, 0))
        compact = false;
    for (size_t size = 1024; compact && size <= ((size_t)1 << 30); size *= 4) {
        char *buf = malloc(size);
        if (!buf)
            return NULL;
        size_t n = cs_json_dumpb(v, buf, size - 1);
        if (n) {
            buf[n] = '\0';
            return buf;
        }
        free(buf);
    }
    return json_dumps(v, flags | cs_json_real_flags(v));
}

/* ---- integers beyond 64 bits, read as reals to name their field ---- */

/* The JSON path of the value that starts at byte at of buf, a document
 * valid up to there, into out (size bytes): keys as written, array
 * elements by index. false when it nests too deep or does not fit. */
static bool path_at(const char *buf, size_t at, char *out, size_t size)
{
    struct {
        bool obj;
        size_t index;
        const char *key;
        size_t klen;
    } st[MAX_DEPTH];
    int depth = 0;
    bool want_key = false;
    for (size_t i = 0; i < at; i++) {
        char c = buf[i];
        if (c == '{' || c == '[') {
            if (depth == MAX_DEPTH)
                return false;
            st[depth].obj = c == '{';
            st[depth].index = 0;
            st[depth].key = "";
            st[depth].klen = 0;
            depth++;
            want_key = c == '{';
        } else if (c == '}' || c == ']') {
            if (depth > 0)
                depth--;
            want_key = false;
        } else if (c == ',' && depth > 0) {
            if (st[depth - 1].obj)
                want_key = true;
            else
                st[depth - 1].index++;
        } else if (c == '"') {
            size_t s0 = ++i;
            while (i < at && buf[i] != '"')
                i += buf[i] == '\\' ? 2 : 1;
            if (want_key && depth > 0) {
                st[depth - 1].key = buf + s0;
                st[depth - 1].klen = i - s0;
                want_key = false;
            }
        }
    }
    size_t n = 0;
    for (int d = 0; d < depth; d++) {
        int w = st[d].obj ? snprintf(out + n, size - n, "%s%.*s", n ? "." : "", (int)st[d].klen,
                                     st[d].key)
                          : snprintf(out + n, size - n, "[%zu]", st[d].index);
        if (w < 0 || (size_t)w >= size - n)
            return false;
        n += (size_t)w;
    }
    if (size)
        out[n] = '\0';
    return size > 0;
}

/* A number's characters, as a JSON number token may hold them. */
static bool num_char(char c)
{
    return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-';
}

json_t *cs_json_load_wide(const char *buf, size_t len, const json_error_t *je,
                          char path[][CS_JSON_PATH_MAX], bool *huge, size_t *n)
{
    json_t *v = NULL;
    json_error_t e = *je;
    char *text = NULL;
    size_t tlen = len;
    *n = 0;
    /* room for each number's replacement (CS_JSON_HUGE_TEXT, with a sign,
     * for a token as short as "1e400") */
    size_t room = CS_JSON_WIDE_MAX * (sizeof CS_JSON_HUGE_TEXT + 1);
    if (len > SIZE_MAX - room - 1 || !(text = cs_malloc(len + room + 1)))
        goto out;
    memcpy(text, buf, len);
    for (;;) {
        if (json_error_code(&e) != json_error_numeric_overflow || *n == CS_JSON_WIDE_MAX)
            goto out;
        /* jansson stops right after the number: its token ends there */
        size_t end = (size_t)e.position < tlen ? (size_t)e.position : tlen, start;
        if (end && !num_char(text[end - 1]))
            end--;
        start = end;
        while (start && num_char(text[start - 1]))
            start--;
        if (start == end || (end < tlen && num_char(text[end])) ||
            !(text[start] == '-' || (text[start] >= '0' && text[start] <= '9')))
            goto out; /* not found */
        bool real = false;
        for (size_t i = start; i < end; i++)
            real |= text[i] == '.' || text[i] == 'e' || text[i] == 'E';
        /* an integer a real holds (1e+20): as that real; one it does not
         * (more than 308 digits), or a real too large (1e400): as the
         * largest finite real of its sign, which no field takes */
        text[tlen] = '\0'; /* (room for it: strtod stops at the token's end) */
        bool big = real || isinf(strtod(text + start, NULL));
        const char *put = big ? (text[start] == '-' ? "-" CS_JSON_HUGE_TEXT : CS_JSON_HUGE_TEXT)
                              : ".0";
        size_t at = big ? start : end, cut = big ? end - start : 0, plen = strlen(put);
        if (!path_at(text, start, path[*n], CS_JSON_PATH_MAX))
            goto out;
        if (huge)
            huge[*n] = big;
        (*n)++;
        memmove(text + at + plen, text + at + cut, tlen - at - cut);
        memcpy(text + at, put, plen);
        tlen = tlen - cut + plen;
        if ((v = json_loadb(text, tlen, JSON_REJECT_DUPLICATES, &e)))
            goto out;
    }
out:
    cs_free(text);
    if (!v)
        *n = 0;
    return v;
}

const char *cs_json_type_word(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "something else";
}

const char *cs_json_error_text(const json_error_t *je)
{
    if (strstr(je->text, "JSON_ALLOW_NUL"))
        return "a string holds \\u0000 (NUL), which is not allowed";
    return je->text;
}
