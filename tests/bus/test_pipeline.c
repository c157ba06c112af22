/* Pipelines: many commands, one round trip, every reply in order. */
#include "bus.h"
#include "testsupport.h"

#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>

Test(pipeline, replies_in_order, .timeout = 30)
{
    int err = 0;
    struct bus *b = bus_new(ts_env("SABIA_REDIS_URL"), 2, NULL, &err);
    cr_assert_not_null(b);
    char key[64];
    snprintf(key, sizeof key, "test:pipe:%d:%d", (int)getpid(), ts_free_port());
    const char *set[] = {"SET", key, "41"}, *incr[] = {"INCR", key}, *get[] = {"GET", key},
               *bad[] = {"NOSUCHCOMMAND"}, *del[] = {"DEL", key};
    const char **argvs[] = {set, incr, get, bad, del};
    int argcs[] = {3, 2, 2, 1, 2};
    redisReply *r[5];
    cr_assert_eq(bus_pipeline(b, 5, argcs, argvs, r), 0);
    cr_assert_eq(r[0]->type, REDIS_REPLY_STATUS);
    cr_assert_eq(r[1]->type, REDIS_REPLY_INTEGER);
    cr_assert_eq(r[1]->integer, 42);
    cr_assert_str_eq(r[2]->str, "42");
    cr_assert_eq(r[3]->type, REDIS_REPLY_ERROR, "an error reply is a reply");
    cr_assert_eq(r[4]->integer, 1);
    for (int i = 0; i < 5; i++)
        freeReplyObject(r[i]);
    cr_assert_eq(bus_pipeline(b, 0, argcs, argvs, r), -EINVAL);
    bus_free(b);
}

Test(pipeline, redis_down_gives_no_replies, .timeout = 30)
{
    int err = 0;
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", ts_free_port());
    struct bus *b = bus_new(url, 1, NULL, &err);
    const char *ping[] = {"PING"};
    const char **argvs[] = {ping};
    int argcs[] = {1};
    redisReply *r[1] = {(redisReply *)1};
    cr_assert_neq(bus_pipeline(b, 1, argcs, argvs, r), 0);
    cr_assert_null(r[0]);
    bus_free(b);
}
