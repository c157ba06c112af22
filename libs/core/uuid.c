/* uuid.c - UUIDv7 generation (RFC 9562), formatting and parsing. */
#include <pthread.h>
#include <string.h>
#include <sys/random.h>

#include "core.h"

#define SB_UUID_COUNTER_MAX 0xFFF /* rand_a is 12 bits wide */

/* Fills buf with n bytes from the kernel's CSPRNG. */
static int sb_random_fill(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Picks the timestamp and the 12-bit rand_a counter for the next id.
 *
 * This is process-wide mutable state on purpose: the header promises that
 * ids made by one process are strictly increasing, which needs the last
 * timestamp and counter shared by every caller (RFC 9562 section 6.2,
 * method 1). It is guarded by a mutex so concurrent callers never reuse a
 * (timestamp, counter) pair. The counter restarts from a random value in the
 * lower half each millisecond, leaving room to count up; when it runs out
 * the timestamp is advanced by one millisecond. A clock that steps backwards
 * keeps the last timestamp instead. */
static void sb_uuid_next_stamp(uint16_t seed, uint64_t *ts_out, uint16_t *counter_out)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static uint64_t last_ts;
    static uint16_t counter;

    uint64_t now = (uint64_t)sb_now_ms();
    pthread_mutex_lock(&lock);
    if (now > last_ts) {
        last_ts = now;
        counter = seed & 0x7FF;
    } else if (counter < SB_UUID_COUNTER_MAX) {
        counter++;
    } else {
        last_ts++;
        counter = seed & 0x7FF;
    }
    *ts_out = last_ts;
    *counter_out = counter;
    pthread_mutex_unlock(&lock);
}

/* Random bytes for ids are fetched from the kernel in blocks, per thread:
 * one getrandom() per SB_UUID_POOL_IDS ids instead of one each (ids are made
 * on every request). Bytes handed out are wiped from the pool, and a forked
 * child starts with an empty pool, so no two processes share bits. */
#define SB_UUID_RANDOM 10
#define SB_UUID_POOL_IDS 32

static _Thread_local struct {
    uint8_t bytes[SB_UUID_RANDOM * SB_UUID_POOL_IDS];
    size_t left;
} sb_uuid_pool;

static void sb_uuid_pool_drop(void)
{
    sb_uuid_pool.left = 0; /* in the child, for the thread that forked */
}

static void sb_uuid_pool_setup(void)
{
    int rc = pthread_atfork(NULL, NULL, sb_uuid_pool_drop);
    (void)rc; /* without it a child could reuse bytes only if it forked mid-pool */
}

static int sb_uuid_random(uint8_t out[SB_UUID_RANDOM])
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sb_uuid_pool_setup);
    if (sb_uuid_pool.left < SB_UUID_RANDOM) {
        int rc = sb_random_fill(sb_uuid_pool.bytes, sizeof sb_uuid_pool.bytes);
        if (rc < 0)
            return rc;
        sb_uuid_pool.left = sizeof sb_uuid_pool.bytes;
    }
    uint8_t *at = sb_uuid_pool.bytes + sizeof sb_uuid_pool.bytes - sb_uuid_pool.left;
    memcpy(out, at, SB_UUID_RANDOM);
    memset(at, 0, SB_UUID_RANDOM);
    sb_uuid_pool.left -= SB_UUID_RANDOM;
    return 0;
}

int sb_uuid_v7(struct sb_uuid *out)
{
    uint8_t rnd[SB_UUID_RANDOM];
    int rc = sb_uuid_random(rnd);
    if (rc < 0)
        return rc;
    uint64_t ts;
    uint16_t counter;
    sb_uuid_next_stamp((uint16_t)(rnd[0] | rnd[1] << 8), &ts, &counter);
    for (int i = 0; i < 6; i++)
        out->b[i] = (uint8_t)(ts >> (40 - 8 * i));
    out->b[6] = (uint8_t)(0x70 | (counter >> 8));
    out->b[7] = (uint8_t)(counter & 0xFF);
    out->b[8] = (uint8_t)(0x80 | (rnd[2] & 0x3F));
    memcpy(out->b + 9, rnd + 3, 7);
    return 0;
}

void sb_uuid_format(const struct sb_uuid *u, char out[SB_UUID_STRLEN])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[u->b[i] >> 4];
        out[o++] = hex[u->b[i] & 0x0F];
    }
    out[o] = '\0';
}

int sb_uuid_parse(const char *s, size_t n, struct sb_uuid *out)
{
    struct sb_uuid u;
    if (!s || n != SB_UUID_STRLEN - 1)
        return SB_EPARSE;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return SB_EPARSE;
            i++;
            continue;
        }
        int hi = sb_hex_value(s[i]), lo = sb_hex_value(s[i + 1]);
        if (hi < 0 || lo < 0)
            return SB_EPARSE;
        u.b[o++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    if (out)
        *out = u;
    return 0;
}

bool sb_uuid_valid(const char *s, size_t n)
{
    return sb_uuid_parse(s, n, NULL) == 0;
}

int sb_uuid_v7_str(char out[SB_UUID_STRLEN])
{
    struct sb_uuid u;
    int rc = sb_uuid_v7(&u);
    if (rc < 0)
        return rc;
    sb_uuid_format(&u, out);
    return 0;
}
