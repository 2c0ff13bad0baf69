/*
 * csv.c -- an RFC 4180 reader: fields separated by commas, optionally
 * quoted; quoted fields may hold commas, doubled quotes and line breaks.
 * CRLF and LF line ends; a blank line is no record (a spreadsheet's
 * trailing empty line is not a row of one empty field). Field and record
 * sizes are bounded. A UTF-8 byte order mark at the start of the file (an
 * editor's "UTF-8 with BOM") is not part of the first field, quoted or not.
 */
#include "importer.h"

#include <errno.h>
#include <string.h>

struct cs_csv {
    FILE *f;
    char *path;
    uint64_t line;        /* current physical line */
    uint64_t rec_line;    /* line where the last record started */
    char *buf;            /* all fields of the record, NUL-separated */
    size_t cap;
    char *fields[CS_CSV_FIELDS_MAX];
    size_t offs[CS_CSV_FIELDS_MAX];
    char **header;        /* owned copies */
    size_t n_header;
    unsigned char ahead[3]; /* bytes read at the start that were not a BOM */
    size_t n_ahead, i_ahead;
};

/* The next byte: first those looked at for a byte order mark. */
static int getch(cs_csv_t *c)
{
    if (c->i_ahead < c->n_ahead)
        return c->ahead[c->i_ahead++];
    return fgetc(c->f);
}

cs_rc cs_csv_open(const char *path, cs_csv_t **out, cs_err_t *err)
{
    *out = NULL;
    cs_csv_t *c = cs_calloc(1, sizeof *c);
    if (!c)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    c->f = fopen(path, "rb");
    c->path = cs_strdup(path);
    c->cap = 4096;
    c->buf = cs_malloc(c->cap);
    if (!c->f || !c->path || !c->buf) {
        cs_rc rc = !c->f ? cs_errf(err, CS_ERR_IO, "%s: %s", path, strerror(errno))
                         : cs_errf(err, CS_ERR_NOMEM, "out of memory");
        cs_csv_close(&c);
        return rc;
    }
    c->line = 1;
    /* skip a byte order mark; anything else is read again */
    static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};
    int ch;
    while (c->n_ahead < 3 && (ch = fgetc(c->f)) != EOF) {
        c->ahead[c->n_ahead++] = (unsigned char)ch;
        if (ch != bom[c->n_ahead - 1])
            break;
    }
    if (c->n_ahead == 3 && memcmp(c->ahead, bom, 3) == 0)
        c->n_ahead = 0;
    *out = c;
    return CS_OK;
}

void cs_csv_close(cs_csv_t **cp)
{
    if (!cp || !*cp)
        return;
    cs_csv_t *c = *cp;
    if (c->f)
        fclose(c->f);
    for (size_t i = 0; i < c->n_header; i++)
        cs_free(c->header[i]);
    cs_free(c->header);
    cs_free(c->path);
    cs_free(c->buf);
    cs_free(c);
    *cp = NULL;
}

uint64_t cs_csv_line(const cs_csv_t *c)
{
    return c->rec_line;
}

static cs_rc put(cs_csv_t *c, size_t *len, char ch, cs_err_t *err)
{
    if (*len + 1 >= c->cap) {
        size_t ncap = c->cap * 2;
        if (ncap > (size_t)CS_CSV_FIELD_MAX * 4)
            return cs_errf(err, CS_ERR_TOOBIG, "%s:%llu: record longer than %d bytes", c->path,
                           (unsigned long long)c->rec_line, CS_CSV_FIELD_MAX * 4);
        char *nb = cs_realloc(c->buf, ncap);
        if (!nb)
            return cs_errf(err, CS_ERR_NOMEM, "out of memory");
        c->buf = nb;
        c->cap = ncap;
    }
    c->buf[(*len)++] = ch;
    return CS_OK;
}

cs_rc cs_csv_next(cs_csv_t *c, char ***fields, size_t *n, cs_err_t *err)
{
    size_t len = 0, nf = 0, field_start = 0;
    bool quoted = false, in_quotes = false, any = false;
    int ch;
    cs_rc rc;
    c->rec_line = c->line;
    *n = 0;
    for (;;) {
        ch = getch(c);
        if (ch == EOF) {
            if (ferror(c->f))
                return cs_errf(err, CS_ERR_IO, "%s: read error", c->path);
            if (in_quotes)
                return cs_errf(err, CS_ERR_INVALID, "%s:%llu: quoted field not closed at the end of the file",
                               c->path, (unsigned long long)c->rec_line);
            if (!any)
                return CS_ERR_NOTFOUND;
            break;
        }
        any = true;
        if (in_quotes) {
            if (ch == '"') {
                int next = getch(c);
                if (next == '"') {
                    if ((rc = put(c, &len, '"', err)))
                        return rc;
                    continue;
                }
                in_quotes = false;
                if (next == EOF)
                    break;
                ch = next; /* fall through to the unquoted handling */
            } else {
                if (ch == '\n')
                    c->line++;
                if ((rc = put(c, &len, (char)ch, err)))
                    return rc;
                if (len - field_start > CS_CSV_FIELD_MAX)
                    goto too_long;
                continue;
            }
        }
        if (ch == '"' && len == field_start && !quoted) {
            quoted = in_quotes = true;
            continue;
        }
        if (ch == ',' || ch == '\n') {
            if (nf >= CS_CSV_FIELDS_MAX)
                return cs_errf(err, CS_ERR_TOOBIG, "%s:%llu: more than %d fields", c->path,
                               (unsigned long long)c->rec_line, CS_CSV_FIELDS_MAX);
            if (len > field_start && c->buf[len - 1] == '\r' && ch == '\n' && !quoted)
                len--;
            if (ch == '\n' && nf == 0 && len == 0 && !quoted) {
                /* a blank line is no record (not one empty field) */
                c->line++;
                c->rec_line = c->line;
                any = false;
                continue;
            }
            if ((rc = put(c, &len, '\0', err)))
                return rc;
            c->offs[nf++] = field_start;
            field_start = len;
            quoted = false;
            if (ch == '\n') {
                c->line++;
                goto done;
            }
            continue;
        }
        if (quoted && ch == '\r')
            continue; /* CRLF after a closing quote */
        if (quoted)
            return cs_errf(err, CS_ERR_INVALID, "%s:%llu: unexpected character after a closing quote",
                           c->path, (unsigned long long)c->rec_line);
        if ((rc = put(c, &len, (char)ch, err)))
            return rc;
        if (len - field_start > CS_CSV_FIELD_MAX)
            goto too_long;
    }
    /* last record without a final newline */
    if (len > field_start && c->buf[len - 1] == '\r' && !quoted)
        len--;
    if (nf == 0 && len == 0 && !quoted)
        return CS_ERR_NOTFOUND; /* a blank last line */
    if (nf >= CS_CSV_FIELDS_MAX)
        return cs_errf(err, CS_ERR_TOOBIG, "%s:%llu: too many fields", c->path,
                       (unsigned long long)c->rec_line);
    if ((rc = put(c, &len, '\0', err)))
        return rc;
    c->offs[nf++] = field_start;
done:
    for (size_t i = 0; i < nf; i++)
        c->fields[i] = c->buf + c->offs[i];
    *fields = c->fields;
    *n = nf;
    return CS_OK;
too_long: /* quoted or not: a quoted field is no license to be bigger */
    return cs_errf(err, CS_ERR_TOOBIG, "%s:%llu: field longer than %d bytes", c->path,
                   (unsigned long long)c->rec_line, CS_CSV_FIELD_MAX);
}

int cs_csv_column(const cs_csv_t *c, const char *name)
{
    for (size_t i = 0; i < c->n_header; i++)
        if (strcmp(c->header[i], name) == 0)
            return (int)i;
    return -1;
}

cs_rc cs_csv_header(cs_csv_t *c, const char *const *names, int *idx, size_t n, cs_err_t *err)
{
    char **f;
    size_t nf;
    cs_rc rc = cs_csv_next(c, &f, &nf, err);
    if (rc == CS_ERR_NOTFOUND)
        return cs_errf(err, CS_ERR_INVALID, "%s: empty file (expected a header row)", c->path);
    if (rc)
        return rc;
    if (!(c->header = cs_calloc(nf, sizeof *c->header)))
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < nf; i++) {
        if (!(c->header[i] = cs_strdup(f[i])))
            return cs_errf(err, CS_ERR_NOMEM, "out of memory");
        c->n_header = i + 1;
    }
    for (size_t i = 0; i < n; i++) {
        idx[i] = cs_csv_column(c, names[i]);
        if (idx[i] < 0)
            return cs_err_field(err, CS_ERR_INVALID, names[i], "%s: missing column \"%s\"", c->path,
                                names[i]);
    }
    return CS_OK;
}
