/*
 * wamap.h -- the shop's WhatsApp template mappings: a `T.L.whatsapp` file
 * beside a message template's `T.L.txt` names the WhatsApp template Meta
 * approved for it (business-initiated WhatsApp messages must be one) and
 * how to fill its parameters from the message's context:
 *
 *     # order_confirmation.de.whatsapp
 *     name: bestellung_bestaetigt     the approved template's name (required)
 *     language: de                    its language code (default: the file's L)
 *     header: {{order.id}}            a text header's one parameter (optional)
 *     body: {{customer.first_name}}   body parameters {{1}}, {{2}}, ... in order
 *     body: {{order.total}}
 *     button: {{links.tracking_token}}  a URL button's suffix (button 0); or
 *     button 1: ...                     the button at that index (0..9)
 *
 * One `key: value` a line; blank lines and lines starting with `#` are
 * skipped. Every value of header, body and button is a Mustache template
 * of its own, rendered with the message's context (docs/channels.md).
 * Errors name the file, the line and what was expected.
 *
 * Ownership: a map owns its entries; the parameters' templates live in
 * the template set they were loaded into, under `<file>#<line>`
 * (`order_confirmation.de.whatsapp#5`: a name no file can have).
 * Thread-safety: a loaded map is read-only; any number of threads may read it.
 */
#ifndef CS_WAMAP_H
#define CS_WAMAP_H

#include <stddef.h>

#include "../lib/cs.h"
#include "mustache.h"

#define CS_WA_BODY_MAX 32     /* body parameters of one template */
#define CS_WA_BUTTONS_MAX 10  /* button indexes 0..9, as the Cloud API has them */
#define CS_WA_NAME_MAX 512    /* Meta's longest template name */
#define CS_WA_LANG_MAX 15

typedef struct cs_wa_param {
    int line;   /* the line of the file it is on; 0 = none */
    char *src;  /* its Mustache source (owned) */
} cs_wa_param_t;

typedef struct cs_wa_tpl {
    char *file;                         /* "order_confirmation.de.whatsapp" */
    char *key;                          /* "order_confirmation.de": T.L */
    char name[CS_WA_NAME_MAX + 1];      /* the approved template's name */
    char language[CS_WA_LANG_MAX + 1];  /* its language code: de, en_US */
    cs_wa_param_t header;               /* line 0 = none */
    cs_wa_param_t body[CS_WA_BODY_MAX];
    int nbody;
    cs_wa_param_t button[CS_WA_BUTTONS_MAX]; /* URL buttons' suffix by index; line 0 = none */
} cs_wa_tpl_t;

typedef struct cs_wamap cs_wamap_t;

/* Parse the mapping file `file` (its name, T.L.whatsapp: L is the default
 * language) from src (len bytes). Returns owned *out (free with
 * cs_wa_tpl_free), or an error naming file and line; *out NULL then. */
cs_rc cs_wa_tpl_parse(const char *file, const char *src, size_t len, cs_wa_tpl_t **out,
                      cs_err_t *err);
void cs_wa_tpl_free(cs_wa_tpl_t **t);

/* The template-set name of a parameter's template: "<file>#<line>". */
void cs_wa_param_name(const cs_wa_tpl_t *t, const cs_wa_param_t *p, char *buf, size_t size);

/* Read every `*.whatsapp` regular file of the templates folder dir (not
 * starting with '.'), parse it, and add each parameter's template to set
 * (cs_wa_param_name). Returns an owned map (free with cs_wamap_free; empty
 * when there are none) or the first error, naming the file and line.
 * *count gets the number of mappings. */
cs_rc cs_wamap_load_dir(cs_tplset_t *set, const char *dir, cs_wamap_t **out, size_t *count,
                        cs_err_t *err);
/* The mapping of template tmpl in language lang ("order_confirmation",
 * "de"), borrowed from the map; NULL when there is none (or map is NULL). */
const cs_wa_tpl_t *cs_wamap_get(const cs_wamap_t *map, const char *tmpl, const char *lang);
void cs_wamap_free(cs_wamap_t **map);

#endif /* CS_WAMAP_H */
