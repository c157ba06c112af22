/* cli.c - sabiactl's command line and output: JSON lines on stdout, errors
 * and warnings as JSON on stderr, "--name VALUE" options and the checks of
 * their values. */
#include "ctl.h"

#include <stdlib.h>
#include <string.h>

#define CLI_VALUE_SHOWN_MAX 64          /* characters of a bad value quoted back in an error */
#define CLI_REPORT_MAX      (64 * 1024) /* bytes of one error line */

void ctl_print(json_t *obj)
{
    char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (s) {
        puts(s);
        free(s);
    }
}

/* Writes {"<key>":msg[,"usage":usage]} as one line on stderr. Invalid
 * UTF-8 in msg (a quoted argument) becomes U+FFFD, so the line stays JSON. */
static void cli_report(const char *key, const char *usage, const char *fmt, va_list ap)
{
    char msg[CTL_ERR_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    struct sb_buf b;
    sb_buf_init(&b, CLI_REPORT_MAX);
    int rc = sb_buf_appendf(&b, "{\"%s\":", key);
    if (rc == 0)
        rc = sb_buf_append_json_str(&b, msg, strlen(msg));
    if (rc == 0 && usage)
        rc = sb_buf_append_str(&b, ",\"usage\":");
    if (rc == 0 && usage)
        rc = sb_buf_append_json_str(&b, usage, strlen(usage));
    if (rc == 0)
        rc = sb_buf_append_str(&b, "}");
    fprintf(stderr, "%s\n", rc == 0 ? b.data : msg);
    sb_buf_cleanup(&b);
}

int ctl_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_report("error", NULL, fmt, ap);
    va_end(ap);
    return CTL_EXIT_FAIL;
}

int ctl_usage_fail(const char *usage, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_report("error", usage, fmt, ap);
    va_end(ap);
    return CTL_EXIT_USAGE;
}

void ctl_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_report("warning", NULL, fmt, ap);
    va_end(ap);
}

static const struct ctl_option *cli_find(const struct ctl_option *opts, const char *name)
{
    for (; opts->name; opts++)
        if (strcmp(opts->name, name) == 0)
            return opts;
    return NULL;
}

int ctl_args_check(int argc, char **argv, const struct ctl_option *opts, const char *usage)
{
    for (int i = 1; i < argc; i += 2) {
        if (!cli_find(opts, argv[i]))
            return ctl_usage_fail(usage, "unknown option %.64s", argv[i]);
        if (i + 1 >= argc)
            return ctl_usage_fail(usage, "option %s needs a value", argv[i]);
        for (int j = 1; j < i; j += 2)
            if (strcmp(argv[j], argv[i]) == 0)
                return ctl_usage_fail(usage, "option %s given twice", argv[i]);
    }
    for (const struct ctl_option *o = opts; o->name; o++)
        if (o->required && !ctl_opt(argc, argv, o->name))
            return ctl_usage_fail(usage, "missing required option %s", o->name);
    return 0;
}

const char *ctl_opt(int argc, char **argv, const char *name)
{
    for (int i = 1; i + 1 < argc; i += 2)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return NULL;
}

int ctl_arg_uuid(const char *opt, const char *value, char out[SB_UUID_STRLEN])
{
    out[0] = '\0';
    if (!value)
        return 0;
    struct sb_uuid u;
    if (sb_uuid_parse(value, strnlen(value, SB_UUID_STRLEN), &u) != 0)
        return ctl_fail("%s: not a UUID: \"%.*s\"", opt, CLI_VALUE_SHOWN_MAX, value);
    sb_uuid_format(&u, out);
    return 0;
}

int ctl_arg_long(const char *opt, const char *value, long min, long max, long *out)
{
    if (!value)
        return 0;
    if (sb_parse_long(value, min, max, out) != 0)
        return ctl_fail("%s: must be an integer in [%ld, %ld], got \"%.*s\"", opt, min, max,
                        CLI_VALUE_SHOWN_MAX, value);
    return 0;
}

int ctl_arg_enum(const char *opt, const char *value, const char *const *allowed)
{
    if (!value)
        return 0;
    char list[256] = "";
    size_t used = 0;
    for (const char *const *a = allowed; *a; a++) {
        if (strcmp(*a, value) == 0)
            return 0;
        int n = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", *a);
        if (n > 0 && (size_t)n < sizeof list - used)
            used += (size_t)n;
    }
    return ctl_fail("%s: must be one of %s, got \"%.*s\"", opt, list, CLI_VALUE_SHOWN_MAX, value);
}

int ctl_arg_text(const char *opt, const char *value, size_t min_chars, size_t max_chars)
{
    if (!value)
        return 0;
    /* A UTF-8 character is at most 4 bytes: no need to look further. */
    size_t n = strnlen(value, 4 * max_chars + 1);
    size_t chars = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)value[i] & 0xC0) != 0x80)
            chars++;
    if (chars < min_chars || chars > max_chars || n > 4 * max_chars)
        return ctl_fail("%s: must be %zu to %zu characters long", opt, min_chars, max_chars);
    return 0;
}

int ctl_arg_digits(const char *opt, const char *value, size_t max_chars)
{
    if (!value)
        return 0;
    size_t n = strnlen(value, max_chars + 1);
    bool ok = n >= 1 && n <= max_chars;
    for (size_t i = 0; ok && i < n; i++)
        ok = value[i] >= '0' && value[i] <= '9';
    if (!ok)
        return ctl_fail("%s: must be 1 to %zu digits, got \"%.*s\"", opt, max_chars,
                        CLI_VALUE_SHOWN_MAX, value);
    return 0;
}
