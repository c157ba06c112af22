/* seed.c - `sabiactl seed-demo`: the demo tenant, its workspace, an
 * assistant with a small knowledge base, a web channel, and an admin user.
 *
 * Idempotent: the demo rows have fixed ids and are inserted with ON CONFLICT
 * DO NOTHING, so running it again changes nothing. The admin password is
 * generated on the first run and written, with the ids, to the login file
 * (mode 0600); a later run keeps it when the file is still there and sets a
 * new one otherwise (so the printed login always works). */
#include "crypto.h"
#include "ctl.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEMO_TENANT "01900000-0000-7000-8000-00000000d001"
#define DEMO_WORKSPACE "01900000-0000-7000-8000-00000000d002"
#define DEMO_ASSISTANT "01900000-0000-7000-8000-00000000d003"
#define DEMO_CHANNEL "01900000-0000-7000-8000-00000000d004"
#define DEMO_USER "01900000-0000-7000-8000-00000000d005"
#define DEMO_KB "01900000-0000-7000-8000-00000000d006"
#define DEMO_EMAIL "admin@demo.sabia.local"

struct seed {
    char password[64];
    char hash[CRYPTO_PASSWORD_HASH_MAX];
    bool set_password; /* false: keep the stored hash */
    struct sb_buf err;
};

static const char *const DEMO_KNOWLEDGE[][2] = {
    {"Opening hours", "We are open Monday to Friday from 9:00 to 18:00 and on Saturdays from 9:00 to "
                      "13:00. We are closed on Sundays and public holidays."},
    {"Delivery", "Orders placed before 14:00 ship the same day. Delivery takes two to four working "
                 "days; tracking links are sent by e-mail and WhatsApp."},
    {"Returns", "Products can be returned within 30 days of delivery in their original packaging. "
                "Refunds are issued to the original payment method within five working days."},
};

static int exec(PGconn *c, struct seed *sd, const char *sql, int n, const char *const *params)
{
    return db_exec(c, sql, n, params, NULL, &sd->err);
}

static int seed_structure(PGconn *c, struct seed *sd)
{
    const char *t[] = {DEMO_TENANT};
    int rc = exec(c, sd,
                  "INSERT INTO tenants (id, name, slug, plan) VALUES ($1, 'Demo Store', 'demo', 'pro') "
                  "ON CONFLICT (id) DO NOTHING", 1, t);
    const char *w[] = {DEMO_WORKSPACE, DEMO_TENANT};
    if (rc == 0)
        rc = exec(c, sd,
                  "INSERT INTO workspaces (id, tenant_id, name) VALUES ($1, $2, 'Main') "
                  "ON CONFLICT (id) DO NOTHING", 2, w);
    const char *a[] = {DEMO_ASSISTANT, DEMO_TENANT, DEMO_WORKSPACE};
    if (rc == 0)
        rc = exec(c, sd,
                  "INSERT INTO assistants (id, tenant_id, workspace_id, name, system_prompt, "
                  "personality, provider) VALUES ($1, $2, $3, 'Sabiá Demo Assistant', "
                  "'You are the customer service assistant of Demo Store. Answer briefly and "
                  "only with facts from the knowledge base.', 'friendly and concise', 'retrieval') "
                  "ON CONFLICT (id) DO NOTHING", 3, a);
    const char *ch[] = {DEMO_CHANNEL, DEMO_TENANT, DEMO_WORKSPACE};
    if (rc == 0)
        rc = exec(c, sd,
                  "INSERT INTO channels (id, tenant_id, workspace_id, type, name, config) "
                  "VALUES ($1, $2, $3, 'web', 'Website chat', "
                  "'{\"greeting\":\"Hi! How can we help?\",\"allowed_origins\":[\"*\"]}') "
                  "ON CONFLICT (id) DO NOTHING", 3, ch);
    const char *ac[] = {DEMO_TENANT, DEMO_ASSISTANT, DEMO_CHANNEL};
    if (rc == 0)
        rc = exec(c, sd,
                  "INSERT INTO assistant_channels (tenant_id, assistant_id, channel_id) "
                  "VALUES ($1, $2, $3) ON CONFLICT (tenant_id, channel_id) DO NOTHING", 3, ac);
    return rc;
}

static int seed_knowledge(PGconn *c, struct seed *sd)
{
    const char *kb[] = {DEMO_KB, DEMO_TENANT, DEMO_ASSISTANT};
    int rc = exec(c, sd,
                  "INSERT INTO knowledge_bases (id, tenant_id, assistant_id, name, language, status, "
                  "progress_done, progress_total, chunk_count, indexed_at) "
                  "VALUES ($1, $2, $3, 'Store FAQ', 'english', 'ready', 3, 3, 3, now()) "
                  "ON CONFLICT (id) DO NOTHING", 3, kb);
    for (size_t i = 0; rc == 0 && i < sizeof DEMO_KNOWLEDGE / sizeof DEMO_KNOWLEDGE[0]; i++) {
        char ord[8];
        snprintf(ord, sizeof ord, "%zu", i);
        const char *p[] = {DEMO_TENANT, DEMO_KB, DEMO_ASSISTANT, ord, DEMO_KNOWLEDGE[i][0],
                           DEMO_KNOWLEDGE[i][1]};
        rc = exec(c, sd,
                  "INSERT INTO knowledge_chunks (tenant_id, knowledge_base_id, assistant_id, ordinal, "
                  "title, content, language) VALUES ($1, $2, $3, $4::int, $5, $6, 'english') "
                  "ON CONFLICT (tenant_id, knowledge_base_id, ordinal) DO NOTHING", 6, p);
    }
    return rc;
}

static int seed_tx(PGconn *c, void *arg)
{
    struct seed *sd = arg;
    int rc = seed_structure(c, sd);
    if (rc == 0)
        rc = seed_knowledge(c, sd);
    const char *u[] = {DEMO_USER, DEMO_TENANT, DEMO_EMAIL, sd->hash};
    if (rc == 0 && sd->set_password)
        rc = exec(c, sd,
                  "INSERT INTO users (id, tenant_id, email, name, password_hash, role, "
                  "is_platform_admin) VALUES ($1, $2, $3, 'Demo Admin', $4, 'owner', true) "
                  "ON CONFLICT (id) DO UPDATE SET password_hash = EXCLUDED.password_hash, "
                  "failed_login_count = 0, locked_until = NULL", 4, u);
    return rc;
}

/* Reads the password from an earlier login file, if any. */
static bool read_previous(const char *path, struct seed *sd)
{
    json_t *j = path ? json_load_file(path, 0, NULL) : NULL;
    const char *pw = json_string_value(json_object_get(j, "password"));
    bool ok = pw && strlen(pw) < sizeof sd->password;
    if (ok)
        snprintf(sd->password, sizeof sd->password, "%s", pw);
    json_decref(j);
    return ok;
}

static int write_login(const char *path, json_t *login)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = json_dumpfd(login, fd, JSON_COMPACT) == 0 ? 0 : -EIO;
    close(fd);
    return rc;
}

int ctl_seed_demo(struct ctl *ctl, int argc, char **argv)
{
    const char *login_file = ctl_opt(argc, argv, "--login-file");
    struct seed sd = {0};
    sb_buf_init(&sd.err, 4096);
    bool had = read_previous(login_file, &sd);
    sd.set_password = !had;
    int rc = 0;
    if (!had && crypto_random_token(12, sd.password, sizeof sd.password) != 0)
        rc = -EIO;
    if (rc == 0 && sd.set_password)
        rc = crypto_password_hash(sd.password, sd.hash, sizeof sd.hash);
    struct db_pool *pool =
        db_pool_new(sb_config_str(ctl->cfg, "SABIA_DATABASE_OWNER_URL"), 1, "sabiactl", ctl->log);
    if (rc == 0 && !pool)
        rc = SB_ECONFIG;
    if (rc == 0)
        rc = db_tenant_tx(pool, DEMO_TENANT, seed_tx, &sd);
    db_pool_free(pool);
    if (rc != 0) {
        int st = ctl_fail("seed-demo: %s", sd.err.len ? sd.err.data : sb_strerror(rc));
        sb_buf_cleanup(&sd.err);
        return st;
    }
    sb_buf_cleanup(&sd.err);
    json_t *login = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "email", DEMO_EMAIL, "password",
                              sd.password, "tenant_id", DEMO_TENANT, "workspace_id", DEMO_WORKSPACE,
                              "assistant_id", DEMO_ASSISTANT, "channel_id", DEMO_CHANNEL);
    if (login_file && (rc = write_login(login_file, login)) != 0) {
        json_decref(login);
        return ctl_fail("seed-demo: cannot write %s: %s", login_file, sb_strerror(rc));
    }
    ctl_print(login);
    return 0;
}
