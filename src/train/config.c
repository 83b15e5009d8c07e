/* config.c - strict INI configs: the table of every key (config_keys.c) drives our own small line
 * parser (below), --set, the checks across keys, and the writer, whose text reads back to the same values. */
#include "train.h"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const vt_cfg_key *find_key(const char *section, const char *key)
{
    for (const vt_cfg_key *k = vt_config_keys(); k->key; k++)
        if (strcmp(k->section, section) == 0 && strcmp(k->key, key) == 0) return k;
    return NULL;
}

/* the table's own spelling of a section name, or NULL */
static const char *find_section(const char *section)
{
    for (const vt_cfg_key *k = vt_config_keys(); k->key; k++)
        if (strcmp(k->section, section) == 0) return k->section;
    return NULL;
}

/* the edit distance of a and b (case-insensitive), or some value >= limit when it is not below limit: the
 * lengths' difference is a lower bound, and so is the smallest entry of a row, which never decreases */
static int edit_distance(const char *a, const char *b, int limit)
{
    int n = (int)strlen(a), m = (int)strlen(b);
    if (n > 63 || m > 63) return 99;
    if ((n > m ? n - m : m - n) >= limit) return limit;
    int d[64][64];
    for (int i = 0; i <= n; i++) d[i][0] = i;
    for (int j = 0; j <= m; j++) d[0][j] = j;
    for (int i = 1; i <= n; i++) {
        int lo = d[i][0];
        for (int j = 1; j <= m; j++) {
            int c = d[i - 1][j - 1] + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            if (d[i - 1][j] + 1 < c) c = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < c) c = d[i][j - 1] + 1;
            d[i][j] = c;
            if (c < lo) lo = c;
        }
        if (lo >= limit) return limit;
    }
    return d[n][m];
}

/* "did you mean ..." text for an unknown section or key ("" when nothing is close: a distance above half
 * the name's length + 2) */
static void suggest(const char *section, const char *key, char *buf, size_t n)
{
    const vt_cfg_key *best = NULL;
    size_t len = key ? strlen(key) : strlen(section);
    int bd = (int)(len / 2 + 3);   /* the first distance that is too far */
    for (const vt_cfg_key *k = vt_config_keys(); k->key; k++) {
        const int pen = key && strcmp(section, k->section) ? 2 : 0;
        if (pen >= bd) continue;
        int d = key ? edit_distance(key, k->key, bd - pen) + pen : edit_distance(section, k->section, bd);
        if (d < bd) {
            bd = d;
            best = k;
        }
    }
    if (!best) {
        buf[0] = '\0';
        return;
    }
    if (key)
        snprintf(buf, n, " (did you mean %s in [%s]?)", best->key, best->section);
    else
        snprintf(buf, n, " (did you mean [%s]?)", best->section);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

/* the shortest %g text that reads back as x: a range printed with it never looks like the value */
static const char *num_text(double x, char *buf, size_t n)
{
    if (x == floor(x) && fabs(x) < 1e15) {   /* whole numbers in full: 100, not 1e+02 */
        snprintf(buf, n, "%.0f", x);
        return buf;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, x);
        if (strtod(buf, NULL) == x) break;
    }
    return buf;
}

/* "[min, max]" of a key (with between: "min<between>max"), or ">= min" when it has no upper bound;
 * integers as integers */
static const char *range_text(const vt_cfg_key *k, const char *between, char *buf, size_t n)
{
    char a[40], b[40];
    if (k->type == VT_CFG_INT) {
        snprintf(a, sizeof a, "%lld", (long long)k->min);
        snprintf(b, sizeof b, "%lld", (long long)k->max);
    } else {
        num_text(k->min, a, sizeof a);
        num_text(k->max, b, sizeof b);
    }
    if (isinf(k->max)) snprintf(buf, n, between ? ">= %s" : "(expected >= %s)", a);
    else if (between) snprintf(buf, n, "%s%s%s", a, between, b);
    else snprintf(buf, n, "[%s, %s]", a, b);
    return buf;
}

/* the file (and --set) a config came from, for messages */
const char *vt_config_origin(const vt_config *c, char *buf, size_t n)
{
    if (c->source[0]) snprintf(buf, n, "%s%s", c->source, c->overridden ? " (with --set overrides)" : "");
    else snprintf(buf, n, "%s", c->overridden ? "--set" : "config");
    return buf;
}

/* parse value into the field of c; where names the source ("cfg.ini:12" or "--set"). A string is taken as
 * given (the parser has already trimmed or unquoted it); other types ignore surrounding whitespace. */
static int assign(vt_config *c, const vt_cfg_key *k, const char *value, const char *where)
{
    char *field = (char *)c + k->offset;
    if (k->type == VT_CFG_STRING) {
        for (const char *q = value; *q; q++)
            if ((unsigned char)*q < 0x20 && *q != '\t')
                return vt_err("%s: [%s] %s: the value holds a control character (byte 0x%02x at position %d)", where,
                              k->section, k->key, (unsigned)(unsigned char)*q, (int)(q - value) + 1);
        if (strlen(value) >= k->size)
            return vt_err("%s: [%s] %s: value longer than %zu characters", where, k->section, k->key, k->size - 1);
        snprintf(field, k->size, "%s", value);
        return VT_OK;
    }
    char tmp[VT_STR + 64];
    if (strlen(value) >= sizeof tmp)
        return vt_err("%s: [%s] %s: value longer than %zu characters", where, k->section, k->key, sizeof tmp - 1);
    snprintf(tmp, sizeof tmp, "%s", value);
    char *v = trim(tmp);
    char *end = NULL, range[96], num[40];
    switch (k->type) {
    case VT_CFG_INT: {
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (!*v || *end || (errno && errno != ERANGE))
            return vt_err("%s: [%s] %s = '%s' is not an integer", where, k->section, k->key, v);
        if (errno == ERANGE)   /* a whole number, but beyond long long: out of range, not "not an integer" */
            return vt_err("%s: [%s] %s = %s is out of range %s", where, k->section, k->key, v,
                          range_text(k, NULL, range, sizeof range));
        if ((double)x < k->min || (double)x > k->max)
            return vt_err("%s: [%s] %s = %lld is out of range %s", where, k->section, k->key, x,
                          range_text(k, NULL, range, sizeof range));
        *(int *)field = (int)x;
        return VT_OK;
    }
    case VT_CFG_FLOAT: {
        /* decimal notation only, as the integers: strtod alone would also take hex (0x10), hex floats,
         * inf, infinity and nan */
        if (!vt_is_decimal(v))
            return vt_err("%s: [%s] %s = '%s' is not a number (expected decimal notation, e.g. 0.001 or 1e-3)",
                          where, k->section, k->key, v);
        errno = 0;
        double x = strtod(v, &end);
        if (*end || !isfinite(x))   /* 1e999: beyond a double */
            return vt_err("%s: [%s] %s = %s is out of range %s", where, k->section, k->key, v,
                          range_text(k, NULL, range, sizeof range));
        if (errno == ERANGE)   /* 1e-400: closer to zero than a double's normal range */
            return vt_err("%s: [%s] %s = %s is too close to zero for a double (use 0 or a larger value)", where,
                          k->section, k->key, v);
        if (x < k->min || x > k->max)
            return vt_err("%s: [%s] %s = %s is out of range %s", where, k->section, k->key, num_text(x, num, sizeof num),
                          range_text(k, NULL, range, sizeof range));
        *(double *)field = x;
        return VT_OK;
    }
    case VT_CFG_BOOL: {
        static const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
        for (int i = 0; i < 4; i++) {
            if (strcasecmp(v, yes[i]) == 0) return *(bool *)field = true, VT_OK;
            if (strcasecmp(v, no[i]) == 0) return *(bool *)field = false, VT_OK;
        }
        return vt_err("%s: [%s] %s = '%s' is not a boolean (true/false)", where, k->section, k->key, v);
    }
    case VT_CFG_ENUM: {
        const char *p = k->choices;
        size_t n = strlen(v);
        while (p && *p) {
            const char *bar = strchr(p, '|');
            size_t len = bar ? (size_t)(bar - p) : strlen(p);
            if (len == n && strncmp(p, v, n) == 0) {
                snprintf(field, k->size, "%s", v);
                return VT_OK;
            }
            p = bar ? bar + 1 : NULL;
        }
        return vt_err("%s: [%s] %s = '%s' is not one of %s", where, k->section, k->key, v, k->choices);
    }
    default: break;
    }
    return vt_err("%s: [%s] %s: unknown type", where, k->section, k->key);
}

void vt_config_defaults(vt_config *c)
{
    memset(c, 0, sizeof *c);
    for (const vt_cfg_key *k = vt_config_keys(); k->key; k++) assign(c, k, k->def, "defaults");
}

/* ---------------------------------------------------------------- the INI syntax
 * One rule for every key (configs/README.md says the same):
 * - a line is blank, a comment, "[section]" or "key = value"; spaces and tabs around names and values are
 *   ignored, lines end at "\n" or "\r\n", a UTF-8 byte-order mark before the first line is skipped;
 * - a comment line starts with ';' or '#'; an inline comment starts at a ';' or '#' that follows a space or
 *   tab, after a value or a [section] (so "a;b" and "a#b" are values, in "a ;b" the value is "a");
 * - a value in double quotes is taken literally: spaces at its ends, ';' and '#' are kept, \" and \\ are the
 *   only escapes, and only a comment may follow the closing quote; vt_config_write quotes exactly the values
 *   that need it, so every value reads back as written;
 * - refused, naming file:line: a NUL byte, "[]", a header without ']' or with text after it, a line that
 *   is not one of the above (no '=', no key), a key outside any section, an unknown section or key (with the
 *   nearest valid one), a key set twice, a bad quoted value, and anything assign() refuses. */
static bool blank(char ch) { return ch == ' ' || ch == '\t'; }

/* the first inline comment in s (its end when there is none): a ';' or '#' after a space or tab; lo is
 * where the text began (a ';' right there follows no blank of this text) */
static char *comment_at(char *s, const char *lo)
{
    for (; *s; s++)
        if ((*s == ';' || *s == '#') && s > lo && blank(s[-1])) return s;
    return s;
}

/* the value text after '=' (s), unquoted in place; *value points into s. Inline comments end it when
 * comments is set (file lines; --set takes the rest of its argument). NULL when fine, else what is wrong. */
static const char *parse_value(char *s, bool comments, char **value)
{
    char *p = s;
    while (blank(*p)) p++;
    *value = p;
    if (*p == '"') {
        char *w = p, *r = p + 1;
        for (;; r++) {
            if (!*r) return "unterminated quoted value (no closing \")";
            if (*r == '"') break;
            if (*r == '\\') {
                r++;
                if (*r != '"' && *r != '\\')
                    return "unknown escape in a quoted value (the only escapes are \\\" and \\\\)";
            }
            *w++ = *r;
        }
        *w = '\0';   /* w < r: the closing quote is still there */
        char *after = r + 1;
        while (blank(*after)) after++;
        if (*after && !(comments && (*after == ';' || *after == '#') && blank(after[-1])))
            return "text after the closing quote (only a comment may follow, after a space)";
        return NULL;
    }
    char *end = comments ? comment_at(p, s) : p + strlen(p);
    while (end > p && blank(end[-1])) end--;
    *end = '\0';
    return NULL;
}

/* what the writer must quote for parse_value to give it back */
static bool needs_quotes(const char *v)
{
    size_t n = strlen(v);
    if (!n) return false;
    if (blank(v[0]) || blank(v[n - 1]) || v[0] == '"' || v[0] == ';' || v[0] == '#') return true;
    for (size_t i = 1; i < n; i++)
        if ((v[i] == ';' || v[i] == '#') && blank(v[i - 1])) return true;
    return false;
}

typedef struct {
    vt_config *c;
    const char *path;
    int line;
    const char *section;   /* the table's spelling; NULL before the first header */
    char seen[128];        /* keys seen in this file, as table indices */
} parse_ctx;

static int parse_line(parse_ctx *p, char *line, size_t len)
{
    char where[1100], sug[160];
    snprintf(where, sizeof where, "%s:%d", p->path, p->line);
    const char *nul = memchr(line, '\0', len);
    if (nul)
        return vt_err("%s: NUL byte at column %d (expected INI text; is this a binary file?)", where, (int)(nul - line) + 1);
    if (len && line[len - 1] == '\n') line[--len] = '\0';
    if (len && line[len - 1] == '\r') line[--len] = '\0';
    char *s = line;
    if (p->line == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0) s += 3;
    while (blank(*s)) s++;
    if (!*s || *s == ';' || *s == '#') return VT_OK;
    if (*s == '[') {
        char *close = strchr(s, ']');
        if (!close) return vt_err("%s: '%.80s' has no closing ']' (expected [section])", where, s);
        char *rest = close + 1, *q = rest;
        while (blank(*q)) q++;
        if (*q && q != comment_at(rest, rest))
            return vt_err("%s: text '%.80s' after the section header (expected [section], then nothing but a comment)",
                          where, q);
        char *name = s + 1, *ne = close;
        while (blank(*name)) name++;
        while (ne > name && blank(ne[-1])) ne--;
        *ne = '\0';
        if (!*name) return vt_err("%s: empty section name [] (expected [section])", where);
        if (!(p->section = find_section(name))) {
            suggest(name, NULL, sug, sizeof sug);
            return vt_err("%s: unknown section [%.80s]%s", where, name, sug);
        }
        return VT_OK;
    }
    char *eq = strchr(s, '=');
    if (!eq || comment_at(s, s) < eq)
        return vt_err("%s: syntax error: '%.80s' (expected [section], key = value or a comment)", where, s);
    char *ke = eq;
    while (ke > s && blank(ke[-1])) ke--;
    *ke = '\0';
    if (!*s) return vt_err("%s: syntax error: a value without a key (expected key = value)", where);
    if (!p->section)
        return vt_err("%s: '%.80s' is outside any [section] (a key = value line needs a [section] header above it)",
                      where, s);
    const vt_cfg_key *k = find_key(p->section, s);
    if (!k) {
        suggest(p->section, s, sug, sizeof sug);
        return vt_err("%s: unknown key '%.80s' in [%s]%s", where, s, p->section, sug);
    }
    int idx = (int)(k - vt_config_keys());
    if (idx < (int)sizeof p->seen && p->seen[idx]) return vt_err("%s: [%s] %s is set twice", where, k->section, k->key);
    if (idx < (int)sizeof p->seen) p->seen[idx] = 1;
    char *value;
    const char *bad = parse_value(eq + 1, true, &value);
    if (bad) return vt_err("%s: [%s] %s: %s", where, k->section, k->key, bad);
    return assign(p->c, k, value, where);
}

static int load_stream(vt_config *c, FILE *f, const char *path)
{
    snprintf(c->source, sizeof c->source, "%s", path);
    parse_ctx p = {c, path, 0, NULL, {0}};
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int r = VT_OK;
    errno = 0;
    while (r == VT_OK && (n = getline(&line, &cap, f)) >= 0) {
        p.line++;
        r = parse_line(&p, line, (size_t)n);
    }
    if (r == VT_OK && ferror(f)) r = vt_err("%s: cannot read the config file: %s", path, strerror(errno ? errno : EIO));
    free(line);
    return r;
}

int vt_config_load(vt_config *c, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return vt_err("%s: cannot open the config file: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return vt_err("%s: is a folder, expected an INI file", path);
    }
    int r = load_stream(c, f, path);
    fclose(f);
    return r;
}

int vt_config_load_text(vt_config *c, const char *text, const char *name)
{
    if (!*text) {   /* fmemopen refuses an empty buffer */
        snprintf(c->source, sizeof c->source, "%s", name);
        return VT_OK;
    }
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    if (!f) return vt_err("%s: cannot read the config text", name);
    int r = load_stream(c, f, name);
    fclose(f);
    return r;
}

int vt_config_set(vt_config *c, const char *assignment)
{
    const char *dot = strchr(assignment, '.'), *eq = strchr(assignment, '=');
    if (!dot || !eq || dot > eq)
        return vt_err("--set %s: expected section.key=value (e.g. --set optim.lr=0.001)", assignment);
    char section[64], key[64], sug[160];
    size_t sl = (size_t)(dot - assignment), kl = (size_t)(eq - dot - 1);
    if (sl >= sizeof section || kl >= sizeof key) return vt_err("--set %s: name too long", assignment);
    memcpy(section, assignment, sl);
    section[sl] = '\0';
    memcpy(key, dot + 1, kl);
    key[kl] = '\0';
    char *s = trim(section), *k = trim(key);
    if (!find_section(s)) {
        suggest(s, NULL, sug, sizeof sug);
        return vt_err("--set %s: unknown section [%s]%s", assignment, s, sug);
    }
    const vt_cfg_key *e = find_key(s, k);
    if (!e) {
        suggest(s, k, sug, sizeof sug);
        return vt_err("--set %s: unknown key '%s' in [%s]%s", assignment, k, s, sug);
    }
    /* the value as given (ends trimmed), or in double quotes as in a file; no comments */
    char *copy = strdup(eq + 1), *value;
    if (!copy) return vt_err("out of memory");
    const char *bad = parse_value(copy, false, &value);
    int r = bad ? vt_err("--set %s: [%s] %s: %s", assignment, e->section, e->key, bad) : assign(c, e, value, "--set");
    free(copy);
    if (r == VT_OK) c->overridden = true;
    return r;
}

/* the value as the parser reads it back: numbers exactly (shortest text that round-trips), strings
 * quoted and escaped when needs_quotes says so */
static void format_value(const vt_config *c, const vt_cfg_key *k, char *buf, size_t n)
{
    const char *field = (const char *)c + k->offset;
    switch (k->type) {
    case VT_CFG_INT: snprintf(buf, n, "%d", *(const int *)field); break;
    case VT_CFG_FLOAT: num_text(*(const double *)field, buf, n); break;
    case VT_CFG_BOOL: snprintf(buf, n, "%s", *(const bool *)field ? "true" : "false"); break;
    default:
        if (!needs_quotes(field)) {
            snprintf(buf, n, "%s", field);
            break;
        }
        size_t o = 0;
        buf[o++] = '"';
        for (const char *q = field; *q && o + 3 < n; q++) {
            if (*q == '"' || *q == '\\') buf[o++] = '\\';
            buf[o++] = *q;
        }
        buf[o++] = '"';
        buf[o] = '\0';
        break;
    }
}

int vt_config_write(const vt_config *c, FILE *f)
{
    const char *section = "";
    char v[2 * VT_STR + 8];
    for (const vt_cfg_key *k = vt_config_keys(); k->key; k++) {
        if (strcmp(section, k->section) != 0) {
            fprintf(f, "%s[%s]\n", section[0] ? "\n" : "", k->section);
            section = k->section;
        }
        format_value(c, k, v, sizeof v);
        fprintf(f, "%s = %s\n", k->key, v);
    }
    return ferror(f) ? vt_err("cannot write the config") : VT_OK;
}

int vt_config_validate(const vt_config *c)
{
    char o[1100], a[40], b[40];
    vt_config_origin(c, o, sizeof o);
    for (const vt_cfg_key *k = vt_config_keys(); k->key; k++)
        if (k->required && k->type == VT_CFG_STRING && ((const char *)c + k->offset)[0] == '\0')
            return vt_err("%s: missing required key [%s] %s (%s)", o, k->section, k->key, k->help);
    if (c->warmup_steps > 0 && c->max_steps > 0 && c->warmup_steps >= c->max_steps)
        return vt_err("%s: [schedule] warmup_steps = %d is not shorter than the run ([train] max_steps = %d)", o,
                      c->warmup_steps, c->max_steps);
    if (c->crop_pct != 0 && c->crop_pct < 0.1)
        return vt_err("%s: [data] crop_pct = %s: expected 0 (resize the whole image) or a fraction in [0.1, 1]", o,
                      num_text(c->crop_pct, a, sizeof a));
    if (c->rrc_ratio_min > c->rrc_ratio_max)
        return vt_err("%s: [data] rrc_ratio_min = %s is above rrc_ratio_max = %s", o, num_text(c->rrc_ratio_min, a, sizeof a),
                      num_text(c->rrc_ratio_max, b, sizeof b));
    if (c->lr_min > c->lr && strcmp(c->schedule, "constant") != 0)
        return vt_err("%s: [schedule] lr_min = %s is above [optim] lr = %s", o, num_text(c->lr_min, a, sizeof a),
                      num_text(c->lr, b, sizeof b));
    vt_randaug ra;
    if (vt_randaug_parse(c->randaugment, &ra) != VT_OK) return vt_err_prefix("%s: [data] ", o);
    vt_vit_config mc;
    return vt_config_model(c, &mc);
}

/* the model layer's message as a config error: "<file>: [model] <what>" (its own "model: " dropped) */
void vt_config_markdown(FILE *f)
{
    fprintf(f, "| section | key | type | default | range / choices | meaning |\n");
    fprintf(f, "| --- | --- | --- | --- | --- | --- |\n");
    static const char *tn[] = {"int", "float", "bool", "string", "choice"};
    for (const vt_cfg_key *k = vt_config_keys(); k->key; k++) {
        char range[96] = "";
        if (k->type == VT_CFG_ENUM) snprintf(range, sizeof range, "%s", k->choices);
        else if (k->type == VT_CFG_INT || k->type == VT_CFG_FLOAT) range_text(k, " .. ", range, sizeof range);
        fprintf(f, "| %s | %s | %s | %s | %s | %s%s |\n", k->section, k->key, tn[k->type],
                k->def[0] ? k->def : (k->required ? "(required)" : "\"\""), range, k->help, k->required ? " (required)" : "");
    }
}
