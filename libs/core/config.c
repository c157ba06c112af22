/* config.c - typed settings read from the environment, an optional .env
 * file and defaults, validated all at once so every problem is reported in
 * one go. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core.h"

#define SB_CONFIG_FILE_MAX (1024 * 1024) /* .env file size */
#define SB_CONFIG_ECHO_MAX 64            /* bytes of a bad value quoted in errors */

struct sb_config_value {
    char *name;
    enum sb_config_type type;
    char *str; /* the value as given (or the default), NULL when unset */
    long num;
    bool flag;
};

struct sb_config {
    struct sb_config_value *values;
    size_t n;
};

/* One KEY=VALUE pair from the .env file whose key is in the spec table. */
struct sb_env_entry {
    char *key;
    char *value;
};

struct sb_env_file {
    struct sb_env_entry *entries;
    size_t n;
};

/* Adds a line to err, which collects every problem. Append failures are
 * ignored: the load fails anyway, the message is best effort. */
static void sb_config_err(struct sb_buf *err, const char *fmt, ...) SB_PRINTF(2, 3);
static void sb_config_err(struct sb_buf *err, const char *fmt, ...)
{
    if (!err)
        return;
    size_t before = err->len;
    va_list ap;
    va_start(ap, fmt);
    int rc = sb_buf_vappendf(err, fmt, ap);
    va_end(ap);
    if (rc == 0)
        rc = sb_buf_append(err, "\n", 1);
    if (rc < 0 && err->data) {
        err->len = before;
        err->data[before] = '\0';
    }
}

static bool sb_spec_has(const struct sb_config_spec *specs, size_t nspecs, const char *key,
                        size_t klen)
{
    for (size_t i = 0; i < nspecs; i++)
        if (strlen(specs[i].name) == klen && memcmp(specs[i].name, key, klen) == 0)
            return true;
    return false;
}

static bool sb_is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Reads a double-quoted value starting after the opening quote. Supports
 * \n \" \\ escapes; other backslashes are kept. *p ends after the closing
 * quote. Returns 0, SB_EPARSE (unterminated) or -ENOMEM. */
static int sb_env_dquoted(const char **p, const char *end, struct sb_buf *val)
{
    const char *s = *p;
    int rc = 0;
    while (rc == 0 && s < end && *s != '"') {
        if (*s == '\\' && s + 1 < end && (s[1] == 'n' || s[1] == '"' || s[1] == '\\')) {
            rc = sb_buf_append(val, s[1] == 'n' ? "\n" : s + 1, 1);
            s += 2;
        } else {
            rc = sb_buf_append(val, s, 1);
            s++;
        }
    }
    if (rc < 0)
        return rc;
    if (s >= end)
        return SB_EPARSE;
    *p = s + 1;
    return 0;
}

/* Parses the value part of a line (after '='), [p, end). Returns 0,
 * SB_EPARSE or -ENOMEM. */
static int sb_env_value(const char *p, const char *end, struct sb_buf *val)
{
    while (p < end && sb_is_blank(*p))
        p++;
    if (p < end && (*p == '\'' || *p == '"')) {
        char q = *p++;
        int rc;
        if (q == '\'') {
            const char *close = memchr(p, '\'', (size_t)(end - p));
            if (!close)
                return SB_EPARSE;
            rc = sb_buf_append(val, p, (size_t)(close - p));
            p = close + 1;
        } else {
            rc = sb_env_dquoted(&p, end, val);
        }
        if (rc < 0)
            return rc;
        while (p < end && sb_is_blank(*p))
            p++;
        return p == end || *p == '#' ? 0 : SB_EPARSE;
    }
    /* Unquoted: a '#' after whitespace starts a comment; trim the rest. */
    const char *v = p, *e = p;
    while (e < end && !(*e == '#' && e > v && sb_is_blank(e[-1])))
        e++;
    while (e > v && sb_is_blank(e[-1]))
        e--;
    return sb_buf_append(val, v, (size_t)(e - v));
}

/* Splits one line into key and value; *klen is 0 (no key) for
 * blank and comment lines. Returns 0, SB_EPARSE or -ENOMEM. */
static int sb_env_line(const char *p, const char *end, const char **key, size_t *klen,
                       struct sb_buf *val)
{
    *klen = 0;
    if (end < p || memchr(p, '\0', (size_t)(end - p)))
        return SB_EPARSE;
    while (p < end && sb_is_blank(*p))
        p++;
    if (p == end || *p == '#')
        return 0;
    if (end - p > 7 && memcmp(p, "export", 6) == 0 && sb_is_blank(p[6])) {
        p += 7;
        while (p < end && sb_is_blank(*p))
            p++;
    }
    const char *k = p;
    if (p < end && (*p == '_' || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')))
        p++;
    else
        return SB_EPARSE;
    while (p < end && (*p == '_' || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                       (*p >= '0' && *p <= '9')))
        p++;
    const char *kend = p;
    while (p < end && sb_is_blank(*p))
        p++;
    if (p == end || *p != '=')
        return SB_EPARSE;
    *key = k;
    *klen = (size_t)(kend - k);
    return sb_env_value(p + 1, end, val);
}

/* Records key=value, replacing an earlier value for the same key. */
static int sb_env_set(struct sb_env_file *env, const char *key, size_t klen, struct sb_buf *val)
{
    char *v = sb_buf_steal(val);
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < env->n; i++) {
        if (strlen(env->entries[i].key) == klen && memcmp(env->entries[i].key, key, klen) == 0) {
            free(env->entries[i].value);
            env->entries[i].value = v;
            return 0;
        }
    }
    struct sb_env_entry *e = realloc(env->entries, (env->n + 1) * sizeof(*e));
    char *k = sb_str_dup((struct sb_str){key, klen});
    if (e)
        env->entries = e;
    if (!e || !k) {
        free(k);
        free(v);
        return -ENOMEM;
    }
    env->entries[env->n++] = (struct sb_env_entry){k, v};
    return 0;
}

static void sb_env_file_cleanup(struct sb_env_file *env)
{
    for (size_t i = 0; i < env->n; i++) {
        free(env->entries[i].key);
        free(env->entries[i].value);
    }
    free(env->entries);
    env->entries = NULL;
    env->n = 0;
}

/* Parses the file contents, keeping keys that are in the spec table.
 * Returns the number of malformed lines (each reported in err), or -ENOMEM. */
static int sb_env_parse(const char *path, const char *text, size_t len,
                        const struct sb_config_spec *specs, size_t nspecs,
                        struct sb_env_file *env, struct sb_buf *err)
{
    struct sb_buf val;
    sb_buf_init(&val, SB_CONFIG_FILE_MAX);
    int bad = 0;
    const char *p = text, *end = text + len;
    for (long lineno = 1; p < end; lineno++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *ce = le > p && le[-1] == '\r' ? le - 1 : le;
        const char *key = NULL;
        size_t klen = 0;
        sb_buf_reset(&val);
        int rc = sb_env_line(p, ce, &key, &klen, &val);
        if (rc == SB_EPARSE) {
            sb_config_err(err, "%s:%ld: malformed line (expected KEY=VALUE)", path, lineno);
            bad++;
        } else if (rc == 0 && klen > 0 && sb_spec_has(specs, nspecs, key, klen)) {
            rc = sb_env_set(env, key, klen, &val);
        }
        if (rc == -ENOMEM) {
            sb_buf_cleanup(&val);
            return -ENOMEM;
        }
        p = nl ? nl + 1 : end;
    }
    sb_buf_cleanup(&val);
    return bad;
}

/* Loads the .env file into env. A missing file is fine. Returns 0 or a
 * negative code after reporting the problem in err. */
static int sb_env_load(const char *path, const struct sb_config_spec *specs, size_t nspecs,
                       struct sb_env_file *env, struct sb_buf *err)
{
    if (!path)
        return 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        int e = -errno;
        sb_config_err(err, "%s: cannot open: %s", path, sb_strerror(e));
        return e;
    }
    char *text = malloc(SB_CONFIG_FILE_MAX + 1);
    size_t len = text ? fread(text, 1, SB_CONFIG_FILE_MAX + 1, f) : 0;
    int rc = 0;
    if (!text)
        rc = -ENOMEM;
    else if (ferror(f))
        rc = errno > 0 ? -errno : -EIO;
    else if (len > SB_CONFIG_FILE_MAX)
        rc = SB_ELIMIT;
    fclose(f);
    if (rc == 0) {
        rc = sb_env_parse(path, text, len, specs, nspecs, env, err);
        if (rc > 0)
            rc = SB_ECONFIG;
    }
    if (rc < 0 && rc != SB_ECONFIG)
        sb_config_err(err, "%s: cannot read: %s", path, sb_strerror(rc));
    free(text);
    return rc;
}

/* Where a setting's text comes from: the environment, then the file, then
 * the default. An empty value counts as unset, so `FOO=` falls through. */
static const char *sb_config_source(const struct sb_config_spec *spec,
                                    const struct sb_env_file *env)
{
    const char *v = getenv(spec->name);
    if (v && v[0])
        return v;
    for (size_t i = 0; i < env->n; i++)
        if (strcmp(env->entries[i].key, spec->name) == 0 && env->entries[i].value[0])
            return env->entries[i].value;
    return spec->default_value;
}

/* Appends ", got \"<value>\"" (escaped, shortened) unless the spec is secret. */
static void sb_config_err_value(struct sb_buf *err, const struct sb_config_spec *spec,
                                const char *prefix, const char *text)
{
    if (!err)
        return;
    if (spec->secret) {
        sb_config_err(err, "%s: %s (value hidden)", spec->name, prefix);
        return;
    }
    struct sb_buf q;
    sb_buf_init(&q, SB_CONFIG_ECHO_MAX * 6 + 16);
    size_t n = strlen(text);
    int rc = sb_buf_append_json_str(&q, text, n > SB_CONFIG_ECHO_MAX ? SB_CONFIG_ECHO_MAX : n);
    sb_config_err(err, "%s: %s, got %s%s", spec->name, prefix, rc == 0 ? q.data : "\"?\"",
                  n > SB_CONFIG_ECHO_MAX ? " (shortened)" : "");
    sb_buf_cleanup(&q);
}

static bool sb_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* Fills v from spec and the sources. Returns 0, SB_ECONFIG (reported in
 * err) or -ENOMEM. */
static int sb_config_resolve(const struct sb_config_spec *spec, const struct sb_env_file *env,
                             struct sb_config_value *v, struct sb_buf *err)
{
    v->type = spec->type;
    v->name = sb_str_dup(sb_str_c(spec->name));
    if (!v->name)
        return -ENOMEM;
    const char *text = sb_config_source(spec, env);
    if (!text || (!text[0] && !spec->default_value)) {
        sb_config_err(err, "%s: required (%s)", spec->name, spec->help ? spec->help : "");
        return SB_ECONFIG;
    }
    if (spec->type == SB_CONFIG_INT && sb_parse_long(text, spec->min, spec->max, &v->num) < 0) {
        char what[96];
        snprintf(what, sizeof(what), "must be an integer in [%ld, %ld]", spec->min, spec->max);
        sb_config_err_value(err, spec, what, text);
        return SB_ECONFIG;
    }
    if (spec->type == SB_CONFIG_BOOL && !sb_parse_bool(text, &v->flag)) {
        sb_config_err_value(err, spec, "must be a boolean (true/false/1/0/yes/no/on/off)", text);
        return SB_ECONFIG;
    }
    v->str = sb_str_dup(sb_str_c(text));
    return v->str ? 0 : -ENOMEM;
}

struct sb_config *sb_config_load(const struct sb_config_spec *specs, size_t nspecs,
                                 const char *env_file, struct sb_buf *err)
{
    struct sb_env_file env = {NULL, 0};
    struct sb_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg || (nspecs && !(cfg->values = calloc(nspecs, sizeof(*cfg->values))))) {
        sb_config_err(err, "configuration: %s", sb_strerror(-ENOMEM));
        free(cfg);
        return NULL;
    }
    cfg->n = nspecs;
    bool failed = sb_env_load(env_file, specs, nspecs, &env, err) < 0;
    for (size_t i = 0; i < nspecs; i++) {
        int rc = sb_config_resolve(&specs[i], &env, &cfg->values[i], err);
        if (rc == -ENOMEM)
            sb_config_err(err, "%s: %s", specs[i].name, sb_strerror(rc));
        if (rc < 0)
            failed = true;
    }
    sb_env_file_cleanup(&env);
    if (failed) {
        sb_config_free(cfg);
        return NULL;
    }
    return cfg;
}

void sb_config_free(struct sb_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n; i++) {
        free(cfg->values[i].name);
        free(cfg->values[i].str);
    }
    free(cfg->values);
    free(cfg);
}

/* Finds a spec'd setting of the given type; anything else is a bug in the
 * caller, so it aborts rather than returning a value that looks valid. */
static const struct sb_config_value *sb_config_find(const struct sb_config *cfg, const char *name,
                                                    enum sb_config_type type)
{
    for (size_t i = 0; cfg && name && i < cfg->n; i++) {
        if (cfg->values[i].name && strcmp(cfg->values[i].name, name) == 0) {
            if (cfg->values[i].type == type)
                return &cfg->values[i];
            fprintf(stderr, "sb_config: %s read with the wrong type\n", name);
            abort();
        }
    }
    fprintf(stderr, "sb_config: unknown setting %s\n", name ? name : "(null)");
    abort();
}

const char *sb_config_str(const struct sb_config *cfg, const char *name)
{
    return sb_config_find(cfg, name, SB_CONFIG_STRING)->str;
}

long sb_config_int(const struct sb_config *cfg, const char *name)
{
    return sb_config_find(cfg, name, SB_CONFIG_INT)->num;
}

bool sb_config_bool(const struct sb_config *cfg, const char *name)
{
    return sb_config_find(cfg, name, SB_CONFIG_BOOL)->flag;
}
