/* seed.c - `sabiactl seed-demo`: the demo tenant, workspace, assistant, web
 * channel and admin user. Idempotent. */
#include "ctl.h"

int ctl_seed_demo(struct ctl *ctl, int argc, char **argv)
{
    (void)ctl;
    (void)argc;
    (void)argv;
    return ctl_fail("seed-demo: schema not available yet");
}
