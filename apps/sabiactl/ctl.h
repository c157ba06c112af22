/* ctl.h - internal to sabiactl: shared context of the subcommands. */
#ifndef SABIA_CTL_H
#define SABIA_CTL_H

#include "core.h"
#include "db.h"

#include <jansson.h>

struct ctl {
    struct sb_config *cfg;
    struct sb_log *log;
};

/* Prints `obj` as one line of JSON on stdout and takes ownership of it. */
void ctl_print(json_t *obj);
/* Prints {"error":msg} on stderr; returns the exit status to use (1). */
int ctl_fail(const char *fmt, ...) SB_PRINTF(1, 2);
/* Value of "--name VALUE" in argv, or NULL. */
const char *ctl_opt(int argc, char **argv, const char *name);

int ctl_migrate(struct ctl *ctl, int argc, char **argv);
int ctl_seed_demo(struct ctl *ctl, int argc, char **argv);

#endif
