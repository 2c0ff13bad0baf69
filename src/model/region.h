/*
 * region.h -- the region key of an address: what delivery lanes are made
 * of, and how a carrier scan's place is compared with a parcel's
 * destination. Pure functions of the address; thread-safe.
 */
#ifndef CS_MODEL_REGION_H
#define CS_MODEL_REGION_H

#include <stdbool.h>
#include <stddef.h>

/* The region key lanes use: "DE-SN" with a region, "DE-10" with a postal
 * code (its first two characters), "DE" with a country alone, "" with
 * nothing. Upper case. For DE, AT and CH a postal code in a known zone
 * decides (its state or canton), else a region known by name or code
 * becomes its ISO 3166-2 code. */
void cs_region_key(const char *country, const char *region, const char *postal, char *out,
                   size_t size);
/* The same from an address as stored (JSON text); "" for NULL or "". */
void cs_region_key_json(const char *address_json, char *out, size_t size);
/* Whether a key names more than a country ("DE-BE", not "DE" or ""): only
 * such keys say where in a country a parcel is. */
bool cs_region_key_specific(const char *key);

/* A postal code as written in different places, made one: white space
 * left out and a country prefix of one or two letters before digits
 * alone dropped ("D-04109" is "04109", " 10115 " is "10115"), into
 * out[0..size), cut to fit. Case is kept. */
void cs_postal_norm(const char *in, char *out, size_t size);

#define CS_REGION_KEY_MAX 32 /* a key's buffer, terminator included */

#endif /* CS_MODEL_REGION_H */
