/* secrets.c - the master key (SABIA_MASTER_KEY), loaded only by the
 * commands that need it, and channel secrets sealed under it. */
#include "ctl.h"

#include <stdlib.h>
#include <string.h>

int ctl_master_key(struct ctl *ctl, const char *purpose, struct crypto_key **out)
{
    *out = NULL;
    const char *hex = sb_config_str(ctl->cfg, "SABIA_MASTER_KEY");
    if (!hex || !hex[0])
        return ctl_fail("SABIA_MASTER_KEY is not set: it is needed to %s (64 hex characters)",
                        purpose);
    int err = 0;
    *out = crypto_key_new(hex, &err);
    if (!*out && err == SB_ECONFIG)
        return ctl_fail("SABIA_MASTER_KEY must be exactly 64 hex characters");
    if (!*out)
        return ctl_fail("SABIA_MASTER_KEY: %s", sb_strerror(err));
    return 0;
}

int ctl_seal_hex(const struct crypto_key *k, const char *channel_id, const char *field,
                 const char *plain, char **hex_out)
{
    *hex_out = NULL;
    char aad[128];
    snprintf(aad, sizeof aad, "channel:%s:%s", channel_id, field);
    uint8_t *blob = NULL;
    size_t n = 0;
    int rc = crypto_seal(k, aad, plain, strlen(plain), &blob, &n);
    if (rc != 0)
        return rc;
    size_t hexlen = CRYPTO_HEX_SIZE(n);
    char *hex = malloc(hexlen);
    rc = hex ? crypto_hex_encode(blob, n, hex, hexlen) : -ENOMEM;
    free(blob);
    if (rc != 0) {
        free(hex);
        return rc;
    }
    *hex_out = hex;
    return 0;
}
