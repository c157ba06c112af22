/* test_config.c - settings from the environment, a .env file and defaults:
 * types, bounds, required values, .env syntax and error reporting. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Writes `text` to a fresh temporary file; returns its path (heap). */
static char *write_env(const char *text)
{
    char *path = strdup("/tmp/sabia-core-env-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    size_t n = strlen(text);
    cr_assert_eq(write(fd, text, n), (ssize_t)n);
    close(fd);
    return path;
}

static void drop_env(char *path)
{
    unlink(path);
    free(path);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; s && *s; s++)
        n += *s == '\n';
    return n;
}

Test(config, defaults_and_types, .timeout = 30)
{
    static const struct sb_config_spec specs[] = {
        {"SBT_DEF_NAME", SB_CONFIG_STRING, "sabia", 0, 0, false, "a name"},
        {"SBT_DEF_PORT", SB_CONFIG_INT, "3001", 1, 65535, false, "port"},
        {"SBT_DEF_FLAG", SB_CONFIG_BOOL, "yes", 0, 0, false, "flag"},
        {"SBT_DEF_EMPTY", SB_CONFIG_STRING, "", 0, 0, false, "optional"},
    };
    struct sb_buf err;
    sb_buf_init(&err, 4096);
    struct sb_config *cfg = sb_config_load(specs, N(specs), NULL, &err);
    cr_assert_not_null(cfg, "%s", err.data ? err.data : "");
    cr_assert_str_eq(sb_config_str(cfg, "SBT_DEF_NAME"), "sabia");
    cr_assert_eq(sb_config_int(cfg, "SBT_DEF_PORT"), 3001);
    cr_assert(sb_config_bool(cfg, "SBT_DEF_FLAG"));
    cr_assert_str_eq(sb_config_str(cfg, "SBT_DEF_EMPTY"), "");
    cr_assert_eq(err.len, 0);
    sb_config_free(cfg);
    sb_config_free(NULL);
    sb_buf_cleanup(&err);
}

Test(config, environment_values, .timeout = 30)
{
    static const struct sb_config_spec specs[] = {
        {"SBT_ENV_NAME", SB_CONFIG_STRING, NULL, 0, 0, false, "a name"},
        {"SBT_ENV_NUM", SB_CONFIG_INT, "1", -100, 100, false, "number"},
        {"SBT_ENV_ON", SB_CONFIG_BOOL, "false", 0, 0, false, "flag"},
    };
    setenv("SBT_ENV_NAME", "from env", 1);
    setenv("SBT_ENV_NUM", "-100", 1);
    setenv("SBT_ENV_ON", "ON", 1);
    struct sb_config *cfg = sb_config_load(specs, N(specs), "/nonexistent/.env", NULL);
    cr_assert_not_null(cfg);
    /* The config owns its strings: changing the environment changes nothing. */
    setenv("SBT_ENV_NAME", "changed", 1);
    cr_assert_str_eq(sb_config_str(cfg, "SBT_ENV_NAME"), "from env");
    cr_assert_eq(sb_config_int(cfg, "SBT_ENV_NUM"), -100);
    cr_assert(sb_config_bool(cfg, "SBT_ENV_ON"));
    sb_config_free(cfg);
    unsetenv("SBT_ENV_NAME");
    unsetenv("SBT_ENV_NUM");
    unsetenv("SBT_ENV_ON");
}

Test(config, bool_spellings, .timeout = 30)
{
    static const struct sb_config_spec specs[] = {
        {"SBT_BOOL_X", SB_CONFIG_BOOL, NULL, 0, 0, false, "flag"},
    };
    static const char *const yes[] = {"true", "TRUE", "1", "yes", "Yes", "on"};
    static const char *const no[] = {"false", "False", "0", "no", "NO", "off"};
    for (size_t i = 0; i < N(yes); i++) {
        setenv("SBT_BOOL_X", yes[i], 1);
        struct sb_config *cfg = sb_config_load(specs, 1, NULL, NULL);
        cr_assert_not_null(cfg, "%s", yes[i]);
        cr_assert(sb_config_bool(cfg, "SBT_BOOL_X"), "%s", yes[i]);
        sb_config_free(cfg);
        setenv("SBT_BOOL_X", no[i], 1);
        cfg = sb_config_load(specs, 1, NULL, NULL);
        cr_assert_not_null(cfg, "%s", no[i]);
        cr_assert_not(sb_config_bool(cfg, "SBT_BOOL_X"), "%s", no[i]);
        sb_config_free(cfg);
    }
    unsetenv("SBT_BOOL_X");
}

Test(config, missing_required, .timeout = 30)
{
    static const struct sb_config_spec specs[] = {
        {"SBT_REQ_URL", SB_CONFIG_STRING, NULL, 0, 0, false, "PostgreSQL URL"},
    };
    unsetenv("SBT_REQ_URL");
    struct sb_buf err;
    sb_buf_init(&err, 4096);
    cr_assert_null(sb_config_load(specs, 1, NULL, &err));
    cr_assert_str_eq(err.data, "SBT_REQ_URL: required (PostgreSQL URL)\n");
    /* Empty counts as missing. */
    setenv("SBT_REQ_URL", "", 1);
    sb_buf_reset(&err);
    cr_assert_null(sb_config_load(specs, 1, NULL, &err));
    cr_assert_str_eq(err.data, "SBT_REQ_URL: required (PostgreSQL URL)\n");
    unsetenv("SBT_REQ_URL");
    /* err may be NULL. */
    cr_assert_null(sb_config_load(specs, 1, NULL, NULL));
    sb_buf_cleanup(&err);
}

Test(config, bad_int_out_of_range_bad_bool_all_reported, .timeout = 30)
{
    static const struct sb_config_spec specs[] = {
        {"SBT_ALL_PORT", SB_CONFIG_INT, "1", 1, 65535, false, "port"},
        {"SBT_ALL_WORKERS", SB_CONFIG_INT, "1", 1, 64, false, "workers"},
        {"SBT_ALL_DEBUG", SB_CONFIG_BOOL, "no", 0, 0, false, "debug"},
        {"SBT_ALL_OK", SB_CONFIG_STRING, "fine", 0, 0, false, "ok"},
        {"SBT_ALL_NEEDED", SB_CONFIG_STRING, NULL, 0, 0, false, "needed"},
        {"SBT_ALL_SPACE", SB_CONFIG_INT, "1", 0, 10, false, "spaces"},
    };
    setenv("SBT_ALL_PORT", "abc", 1);
    setenv("SBT_ALL_WORKERS", "65", 1);
    setenv("SBT_ALL_DEBUG", "maybe", 1);
    setenv("SBT_ALL_SPACE", " 5", 1);
    unsetenv("SBT_ALL_NEEDED");
    struct sb_buf err;
    sb_buf_init(&err, 4096);
    cr_assert_null(sb_config_load(specs, N(specs), NULL, &err));
    cr_assert_str_eq(err.data,
                     "SBT_ALL_PORT: must be an integer in [1, 65535], got \"abc\"\n"
                     "SBT_ALL_WORKERS: must be an integer in [1, 64], got \"65\"\n"
                     "SBT_ALL_DEBUG: must be a boolean (true/false/1/0/yes/no/on/off), got "
                     "\"maybe\"\n"
                     "SBT_ALL_NEEDED: required (needed)\n"
                     "SBT_ALL_SPACE: must be an integer in [0, 10], got \" 5\"\n");
    unsetenv("SBT_ALL_PORT");
    unsetenv("SBT_ALL_WORKERS");
    unsetenv("SBT_ALL_DEBUG");
    unsetenv("SBT_ALL_SPACE");
    sb_buf_cleanup(&err);
}

Test(config, bad_value_echo_is_escaped_and_shortened, .timeout = 30)
{
    static const struct sb_config_spec specs[] = {
        {"SBT_ECHO_N", SB_CONFIG_INT, "1", 0, 9, false, "n"},
    };
    char big[300];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    big[0] = '\n';
    setenv("SBT_ECHO_N", big, 1);
    struct sb_buf err;
    sb_buf_init(&err, 4096);
    cr_assert_null(sb_config_load(specs, 1, NULL, &err));
    cr_assert_eq(count_lines(err.data), 1, "one line per problem: %s", err.data);
    cr_assert_not_null(strstr(err.data, "got \"\\nxxx"));
    cr_assert_not_null(strstr(err.data, "(shortened)"));
    cr_assert_lt(err.len, 200);
    unsetenv("SBT_ECHO_N");
    sb_buf_cleanup(&err);
}

Test(config, secret_value_never_echoed, .timeout = 30)
{
    static const struct sb_config_spec specs[] = {
        {"SBT_SECRET_PIN", SB_CONFIG_INT, NULL, 1000, 9999, true, "pin"},
        {"SBT_SECRET_ON", SB_CONFIG_BOOL, NULL, 0, 0, true, "flag"},
    };
    setenv("SBT_SECRET_PIN", "hunter2", 1);
    setenv("SBT_SECRET_ON", "s3cr3tflag", 1);
    struct sb_buf err;
    sb_buf_init(&err, 4096);
    cr_assert_null(sb_config_load(specs, N(specs), NULL, &err));
    cr_assert_null(strstr(err.data, "hunter2"), "%s", err.data);
    cr_assert_null(strstr(err.data, "s3cr3t"), "%s", err.data);
    cr_assert_not_null(strstr(err.data, "SBT_SECRET_PIN: must be an integer in [1000, 9999]"));
    cr_assert_not_null(strstr(err.data, "SBT_SECRET_ON: must be a boolean"));
    cr_assert_eq(count_lines(err.data), 2);
    unsetenv("SBT_SECRET_PIN");
    unsetenv("SBT_SECRET_ON");
    sb_buf_cleanup(&err);
}

Test(config, dotenv_syntax, .timeout = 30)
{
    static const struct sb_config_spec specs[] = {
        {"SBT_DOT_PLAIN", SB_CONFIG_STRING, NULL, 0, 0, false, ""},
        {"SBT_DOT_EXPORTED", SB_CONFIG_STRING, NULL, 0, 0, false, ""},
        {"SBT_DOT_SINGLE", SB_CONFIG_STRING, NULL, 0, 0, false, ""},
        {"SBT_DOT_DOUBLE", SB_CONFIG_STRING, NULL, 0, 0, false, ""},
        {"SBT_DOT_COMMENT", SB_CONFIG_STRING, NULL, 0, 0, false, ""},
        {"SBT_DOT_HASH", SB_CONFIG_STRING, NULL, 0, 0, false, ""},
        {"SBT_DOT_SPACES", SB_CONFIG_STRING, NULL, 0, 0, false, ""},
        {"SBT_DOT_NUM", SB_CONFIG_INT, NULL, 0, 100, false, ""},
        {"SBT_DOT_CRLF", SB_CONFIG_STRING, NULL, 0, 0, false, ""},
        {"SBT_DOT_TWICE", SB_CONFIG_STRING, NULL, 0, 0, false, ""},
        {"SBT_DOT_EQ", SB_CONFIG_STRING, NULL, 0, 0, false, ""},
        {"SBT_DOT_LAST", SB_CONFIG_STRING, NULL, 0, 0, false, ""},
    };
    char *path = write_env("# a comment\n"
                           "\n"
                           "   # indented comment\n"
                           "  \t \n"
                           "SBT_DOT_PLAIN=plain value\n"
                           "export SBT_DOT_EXPORTED=exp\n"
                           "SBT_DOT_SINGLE='lit \\n \"x\" # not a comment'\n"
                           "SBT_DOT_DOUBLE=\"a\\nb \\\"q\\\" back\\\\slash # kept\"  # comment\n"
                           "SBT_DOT_COMMENT=value   # trailing comment\n"
                           "SBT_DOT_HASH=abc#def\n"
                           "  SBT_DOT_SPACES  =  padded  \n"
                           "SBT_DOT_NUM=42\n"
                           "SBT_DOT_CRLF=dos\r\n"
                           "SBT_DOT_TWICE=first\n"
                           "SBT_DOT_TWICE=second\n"
                           "SBT_DOT_EQ=a=b=c\n"
                           "OTHER_SERVICE_KEY=ignored\n"
                           "SBT_DOT_LAST=no newline at end");
    struct sb_buf err;
    sb_buf_init(&err, 4096);
    struct sb_config *cfg = sb_config_load(specs, N(specs), path, &err);
    cr_assert_not_null(cfg, "%s", err.data);
    cr_assert_str_eq(sb_config_str(cfg, "SBT_DOT_PLAIN"), "plain value");
    cr_assert_str_eq(sb_config_str(cfg, "SBT_DOT_EXPORTED"), "exp");
    cr_assert_str_eq(sb_config_str(cfg, "SBT_DOT_SINGLE"), "lit \\n \"x\" # not a comment");
    cr_assert_str_eq(sb_config_str(cfg, "SBT_DOT_DOUBLE"), "a\nb \"q\" back\\slash # kept");
    cr_assert_str_eq(sb_config_str(cfg, "SBT_DOT_COMMENT"), "value");
    cr_assert_str_eq(sb_config_str(cfg, "SBT_DOT_HASH"), "abc#def");
    cr_assert_str_eq(sb_config_str(cfg, "SBT_DOT_SPACES"), "padded");
    cr_assert_eq(sb_config_int(cfg, "SBT_DOT_NUM"), 42);
    cr_assert_str_eq(sb_config_str(cfg, "SBT_DOT_CRLF"), "dos");
    cr_assert_str_eq(sb_config_str(cfg, "SBT_DOT_TWICE"), "second");
    cr_assert_str_eq(sb_config_str(cfg, "SBT_DOT_EQ"), "a=b=c");
    cr_assert_str_eq(sb_config_str(cfg, "SBT_DOT_LAST"), "no newline at end");
    sb_config_free(cfg);
    drop_env(path);
    sb_buf_cleanup(&err);
}

Test(config, environment_overrides_dotenv, .timeout = 30)
{
    static const struct sb_config_spec specs[] = {
        {"SBT_PREC_A", SB_CONFIG_STRING, "default", 0, 0, false, ""},
        {"SBT_PREC_B", SB_CONFIG_STRING, "default", 0, 0, false, ""},
        {"SBT_PREC_C", SB_CONFIG_STRING, "default", 0, 0, false, ""},
        {"SBT_PREC_D", SB_CONFIG_INT, "1", 0, 10, false, ""},
    };
    char *path = write_env("SBT_PREC_A=file\nSBT_PREC_B=file\nSBT_PREC_D=99\n");
    setenv("SBT_PREC_A", "env", 1);
    setenv("SBT_PREC_D", "7", 1); /* the bad file value is never used */
    unsetenv("SBT_PREC_B");
    unsetenv("SBT_PREC_C");
    struct sb_buf err;
    sb_buf_init(&err, 4096);
    struct sb_config *cfg = sb_config_load(specs, N(specs), path, &err);
    cr_assert_not_null(cfg, "%s", err.data);
    cr_assert_str_eq(sb_config_str(cfg, "SBT_PREC_A"), "env");
    cr_assert_str_eq(sb_config_str(cfg, "SBT_PREC_B"), "file");
    cr_assert_str_eq(sb_config_str(cfg, "SBT_PREC_C"), "default");
    cr_assert_eq(sb_config_int(cfg, "SBT_PREC_D"), 7);
    sb_config_free(cfg);
    unsetenv("SBT_PREC_A");
    unsetenv("SBT_PREC_D");
    drop_env(path);
    sb_buf_cleanup(&err);
}

Test(config, dotenv_value_validated_like_env, .timeout = 30)
{
    static const struct sb_config_spec specs[] = {
        {"SBT_FVAL_PORT", SB_CONFIG_INT, NULL, 1, 65535, false, "port"},
    };
    unsetenv("SBT_FVAL_PORT");
    char *path = write_env("SBT_FVAL_PORT=\"70000\"\n");
    struct sb_buf err;
    sb_buf_init(&err, 4096);
    cr_assert_null(sb_config_load(specs, 1, path, &err));
    cr_assert_str_eq(err.data, "SBT_FVAL_PORT: must be an integer in [1, 65535], got \"70000\"\n");
    drop_env(path);
    sb_buf_cleanup(&err);
}

Test(config, malformed_dotenv_lines_name_file_and_line, .timeout = 30)
{
    static const struct sb_config_spec specs[] = {
        {"SBT_BADF_OK", SB_CONFIG_STRING, NULL, 0, 0, false, "ok"},
        {"SBT_BADF_MISSING", SB_CONFIG_STRING, NULL, 0, 0, false, "missing"},
    };
    unsetenv("SBT_BADF_OK");
    unsetenv("SBT_BADF_MISSING");
    char *path = write_env("SBT_BADF_OK=fine\n"
                           "just some words\n"              /* 2: no '=' */
                           "# fine comment\n"
                           "SBT_BADF_Q=\"unterminated\n"    /* 4 */
                           "SBT_BADF_S='also\n"             /* 5 */
                           "=novalue\n"                     /* 6: no key */
                           "1ABC=x\n"                       /* 7: bad key */
                           "SBT_BADF_T='x' trailing\n"      /* 8: junk after quote */
                           "BAD-KEY=x\n");                  /* 9 */
    struct sb_buf err;
    sb_buf_init(&err, 8192);
    cr_assert_null(sb_config_load(specs, N(specs), path, &err));
    static const int bad_lines[] = {2, 4, 5, 6, 7, 8, 9};
    for (size_t i = 0; i < N(bad_lines); i++) {
        char want[512];
        snprintf(want, sizeof(want), "%s:%d: malformed line", path, bad_lines[i]);
        cr_expect_not_null(strstr(err.data, want), "missing %s in:\n%s", want, err.data);
    }
    /* The spec errors are reported too, all together. */
    cr_assert_not_null(strstr(err.data, "SBT_BADF_MISSING: required (missing)\n"));
    cr_assert_eq(count_lines(err.data), N(bad_lines) + 1, "%s", err.data);
    drop_env(path);
    sb_buf_cleanup(&err);
}

Test(config, unreadable_dotenv_is_an_error, .timeout = 30)
{
    static const struct sb_config_spec specs[] = {
        {"SBT_DIR_X", SB_CONFIG_STRING, "d", 0, 0, false, ""},
    };
    struct sb_buf err;
    sb_buf_init(&err, 4096);
    /* A directory opens but cannot be read as a file. */
    cr_assert_null(sb_config_load(specs, 1, "/tmp", &err));
    cr_assert_not_null(strstr(err.data, "/tmp: cannot read"), "%s", err.data);
    sb_buf_cleanup(&err);
}

Test(config, oversized_dotenv_is_refused, .timeout = 30)
{
    static const struct sb_config_spec specs[] = {
        {"SBT_BIG_X", SB_CONFIG_STRING, "d", 0, 0, false, ""},
    };
    size_t n = 2 * 1024 * 1024;
    char *text = malloc(n + 1);
    memset(text, '#', n);
    text[n] = '\0';
    char *path = write_env(text);
    free(text);
    struct sb_buf err;
    sb_buf_init(&err, 4096);
    cr_assert_null(sb_config_load(specs, 1, path, &err));
    cr_assert_not_null(strstr(err.data, "size limit"), "%s", err.data);
    drop_env(path);
    sb_buf_cleanup(&err);
}

static struct sb_config *small_config(void)
{
    static const struct sb_config_spec specs[] = {
        {"SBT_ABORT_S", SB_CONFIG_STRING, "s", 0, 0, false, ""},
    };
    struct sb_config *cfg = sb_config_load(specs, 1, NULL, NULL);
    cr_assert_not_null(cfg);
    return cfg;
}

Test(config, unknown_name_aborts, .signal = SIGABRT, .timeout = 30)
{
    struct sb_config *cfg = small_config();
    (void)sb_config_str(cfg, "SBT_ABORT_NOPE");
}

Test(config, wrong_type_aborts, .signal = SIGABRT, .timeout = 30)
{
    struct sb_config *cfg = small_config();
    (void)sb_config_int(cfg, "SBT_ABORT_S");
}
