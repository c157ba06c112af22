/* sabia-webapp - the dashboard's REST and WebSocket server.
 * main.c only wires configuration, libraries and handlers (see libs/service). */
#include "service.h"

int main(void)
{
    static const struct service_def def = {
        .name = "webapp",
        .port_var = "SABIA_WEBAPP_PORT",
        .default_port = "3000",
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
