/* sabia-public-api - the versioned /v1 API for integrators.
 * main.c only wires configuration, libraries and handlers (see libs/service). */
#include "service.h"

int main(void)
{
    static const struct service_def def = {
        .name = "public-api",
        .port_var = "SABIA_PUBLIC_API_PORT",
        .default_port = "3003",
    };
    struct service svc;
    if (service_init(&svc, &def) != 0)
        return 1;
    int rc = service_run(&svc);
    if (rc == -ETIMEDOUT)
        return 1; /* a handler is stuck: leave without waiting for it */
    service_cleanup(&svc);
    return rc == 0 ? 0 : 1;
}
