/*
 * cs_json.h -- a fast path for parsing JSON documents into jansson values.
 *
 * jansson's loader reads a character at a time through a stream and costs
 * about 4-6 µs for a 300-400 byte event on this project's machines, most
 * of an intake request's parsing. cs_json_loadb gives exactly what
 * json_loadb(buf, len, JSON_REJECT_DUPLICATES, err) gives: it parses the
 * common forms itself, in one pass over the bytes, and hands anything it
 * does not take (every malformed document, and rare forms such as very deep
 * nesting or long numbers) to jansson, so errors keep jansson's messages
 * and positions.
 *
 * Invariant (tests/unit/test_json.c, tests/fuzz/fuzz_json.c): when
 * cs_json_fast returns a value, json_loadb with JSON_REJECT_DUPLICATES
 * returns an equal one (same types, same members in the same order, same
 * numbers) for the same bytes; when json_loadb fails, cs_json_fast returns
 * NULL.
 *
 * Thread-safety: reentrant.
 */
#ifndef CS_JSON_H
#define CS_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* As json_loadb(buf, len, JSON_REJECT_DUPLICATES, err). New reference. */
json_t *cs_json_loadb(const char *buf, size_t len, json_error_t *err);
/* jansson's message for a failed load, in words for the sender: the one
 * that names a loader flag ("\u0000 is not allowed without
 * JSON_ALLOW_NUL") says what is not allowed instead. Static or je's own. */
const char *cs_json_error_text(const json_error_t *je);
/* The fast path alone: NULL for anything it does not take (no error). */
json_t *cs_json_fast(const char *buf, size_t len);

/* The compact text of v into buf, as json_dumpb(v, buf, size, JSON_COMPACT |
 * JSON_ENCODE_ANY) writes it (members in their order, jansson's escapes),
 * without the heap and without jansson's per-object bookkeeping, except
 * reals: each in the fewest digits that read back as the same double (9.9,
 * where jansson writes 9.9000000000000004), in jansson's form otherwise.
 * Returns its length (no NUL written), or 0 when it does not fit or v nests
 * deeper than the parser takes: then use jansson. Strings must be valid
 * UTF-8, as every parsed or json_string() value is. */
size_t cs_json_dumpb(const json_t *v, char *buf, size_t size);
/* The JSON string of s[0..n) (valid UTF-8), quoted and escaped as
 * cs_json_dumpb writes it; its length, or 0 when it does not fit. */
size_t cs_json_quote(const char *s, size_t n, char *buf, size_t size);

/* The fewest significant digits (1-17) that print d with "%.*g" so that
 * it reads back as d: 9.9 in 2, where jansson writes 17. */
int cs_json_real_digits(double d);
/* The JSON_REAL_PRECISION(p) flag under which every real in v reads back
 * as the same double in as few digits as the real needing most needs (9.9
 * alone prints "9.9", not jansson's default "9.9000000000000004"). 0 when
 * v holds no real. For dumps by jansson; cs_json_dumpb needs none. */
size_t cs_json_real_flags(const json_t *v);
/* json_dumps(v, flags), with reals as cs_json_dumpb writes them when flags
 * ask for compact text only (else with cs_json_real_flags). The text is
 * malloc'd or jansson's: free it with cs_json_free (or free() where no
 * arena is in use). Use it for every dump of data that came from outside. */
char *cs_json_dumps(const json_t *v, size_t flags);

/* A document jansson refused for a number too large for its type
 * (json_error_numeric_overflow in je, from cs_json_loadb of buf): the
 * same document with each such number, at most CS_JSON_WIDE_MAX of them,
 * read so that a validator can name the field and say what it expects:
 * an integer beyond 64 bits as a real (1e+20 for 100000000000000000000);
 * a real too large for a double (1e400) or an integer too large for one
 * (more than 308 digits) as CS_JSON_HUGE_TEXT with its sign, the largest
 * finite real, and huge[k] true (huge may be NULL). path[k] gets the JSON
 * path of the k-th ("data.items[0].quantity", "[2].data.score"; size
 * CS_JSON_PATH_MAX each) and *n their count. NULL when the document has
 * another problem too or more such numbers. New reference. */
#define CS_JSON_WIDE_MAX 8
#define CS_JSON_PATH_MAX 256
#define CS_JSON_HUGE_TEXT "1.7976931348623157e308" /* DBL_MAX */
json_t *cs_json_load_wide(const char *buf, size_t len, const json_error_t *je,
                          char path[][CS_JSON_PATH_MAX], bool *huge, size_t *n);

/* "an object", "a string", "null", ...: a value's kind as an error message
 * names it ("expected a string, got an integer"). */
const char *cs_json_type_word(const json_t *v);

#endif /* CS_JSON_H */
