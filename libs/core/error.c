/* error.c - text for Sabiá error codes (SB_E*) and negated errno values. */
#include <string.h>

#include "core.h"

/* Text for the codes that live above the errno range, or NULL. */
static const char *sb_err_text(int code)
{
    switch (code) {
    case SB_ELIMIT: return "size limit exceeded";
    case SB_EPARSE: return "malformed input";
    case SB_ECONFIG: return "invalid configuration";
    case SB_EDB: return "database error";
    case SB_EREDIS: return "redis error";
    case SB_ENOTFOUND: return "not found";
    case SB_ECONFLICT: return "conflict";
    case SB_EUNAVAIL: return "dependency unavailable";
    case SB_EAUTH: return "authentication failed";
    case SB_ESHUTDOWN: return "shutting down";
    case SB_EWOULDBLOCK: return "would have to wait";
    default: return NULL;
    }
}

const char *sb_strerror(int code)
{
    if (code == 0)
        return "success";
    if (code > 0)
        return "unknown error";
    const char *s = sb_err_text(code);
    if (s)
        return s;
    /* strerrordesc_np returns static, locale-independent text and, unlike
     * strerror(), never writes to a shared buffer. */
    if (code > -4096) {
        s = strerrordesc_np(-code);
        if (s)
            return s;
    }
    return "unknown error";
}
