/* retry.c - when and how soon a failed send is tried again: exponential
 * backoff with jitter, and the classification of Graph API error codes
 * (shared/reference/protocols.md §2.4; Instagram shares the envelope and the
 * generic Graph codes). The code-to-decision table is a recommendation built
 * from Meta's error documentation, not a table Meta publishes. */
#include "domain.h"

#define RECIPIENT_DELAY_MS 6000LL         /* 131056: about one message per 6 s per user */
#define LATER_DELAY_MS     (10LL * 60000) /* spam limit, maintenance: minutes, not seconds */
#define LIMITED_ATTEMPTS   3              /* "yes, limited": unknown/internal errors */
#define ONCE_ATTEMPTS      2              /* "maybe once": media errors */

int64_t domain_backoff_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms, uint32_t random)
{
    if (base_ms <= 0)
        return 0;
    if (cap_ms < base_ms)
        cap_ms = base_ms;
    int64_t d = base_ms;
    for (unsigned i = 1; i < attempt && d < cap_ms; i++)
        d = d > cap_ms / 2 ? cap_ms : d * 2;
    if (d > cap_ms)
        d = cap_ms;
    int64_t half = d / 2;
    return half + (int64_t)((uint64_t)random % (uint64_t)(d - half + 1));
}

struct code_rule {
    long lo, hi; /* inclusive code range */
    enum domain_retry retry;
    int max_attempts;
    int64_t min_delay_ms;
    bool alert;
    const char *reason;
};

static const struct code_rule RULES[] = {
    {130429, 130429, DOMAIN_RETRY, 0, 0, false, "throughput rate limit hit"},
    {131056, 131056, DOMAIN_RETRY_RECIPIENT, 0, RECIPIENT_DELAY_MS, false,
     "pair rate limit hit for this recipient"},
    {80007, 80007, DOMAIN_RETRY, 0, 0, false, "business account rate limit hit"},
    {4, 4, DOMAIN_RETRY, 0, 0, false, "application request limit reached"},
    {17, 17, DOMAIN_RETRY, 0, 0, false, "user request limit reached"},
    {32, 32, DOMAIN_RETRY, 0, 0, false, "page request limit reached"},
    {613, 613, DOMAIN_RETRY, 0, 0, false, "calls within one hour exceeded"},
    {131048, 131048, DOMAIN_RETRY_LATER, 0, LATER_DELAY_MS, true, "spam rate limit hit"},
    {131057, 131057, DOMAIN_RETRY_LATER, 0, LATER_DELAY_MS, false, "account in maintenance mode"},
    {1, 1, DOMAIN_RETRY, LIMITED_ATTEMPTS, 0, false, "unknown API error"},
    {2, 2, DOMAIN_RETRY, 0, 0, false, "API service temporarily unavailable"},
    {131000, 131000, DOMAIN_RETRY, LIMITED_ATTEMPTS, 0, false, "something went wrong"},
    {131016, 131016, DOMAIN_RETRY, 0, 0, false, "service unavailable"},
    {133004, 133004, DOMAIN_RETRY, 0, 0, false, "server temporarily unavailable"},
    {131052, 131053, DOMAIN_RETRY, ONCE_ATTEMPTS, 0, false, "media download or upload error"},
    {0, 0, DOMAIN_FAIL, 0, 0, true, "authentication error"},
    {190, 190, DOMAIN_FAIL, 0, 0, true, "access token expired or invalid"},
    {3, 3, DOMAIN_FAIL, 0, 0, true, "capability missing"},
    {10, 10, DOMAIN_FAIL, 0, 0, true, "permission denied"},
    {200, 299, DOMAIN_FAIL, 0, 0, true, "permission denied"},
    {100, 100, DOMAIN_FAIL, 0, 0, false, "invalid parameter"},
    {131008, 131009, DOMAIN_FAIL, 0, 0, false, "missing or invalid parameter"},
    {131021, 131021, DOMAIN_FAIL, 0, 0, false, "recipient cannot be sender"},
    {131026, 131026, DOMAIN_FAIL, 0, 0, false, "message undeliverable"},
    {131030, 131030, DOMAIN_FAIL, 0, 0, false, "recipient not in allowed list"},
    {131047, 131047, DOMAIN_FAIL, 0, 0, false,
     "more than 24 hours since the customer's last message: send a template"},
    {131051, 131051, DOMAIN_FAIL, 0, 0, false, "unsupported message type"},
    {132000, 132999, DOMAIN_FAIL, 0, 0, false, "template error"},
    {368, 368, DOMAIN_FAIL, 0, 0, true, "blocked for policy violation"},
    {130497, 130497, DOMAIN_FAIL, 0, 0, true, "business account restricted in this country"},
    {131031, 131031, DOMAIN_FAIL, 0, 0, true, "business account locked"},
    {551, 551, DOMAIN_FAIL, 0, 0, false, "recipient not available"},
};

static struct domain_error_class make(enum domain_retry r, int max, int64_t delay, bool alert,
                                      const char *reason)
{
    return (struct domain_error_class){r, max, delay, alert, reason};
}

static const struct code_rule *find_rule(long code)
{
    for (size_t i = 0; i < sizeof RULES / sizeof RULES[0]; i++)
        if (code >= RULES[i].lo && code <= RULES[i].hi)
            return &RULES[i];
    return NULL;
}

struct domain_error_class domain_wa_error_class(long code)
{
    const struct code_rule *r = find_rule(code);
    if (!r)
        return make(DOMAIN_FAIL, 0, 0, false, "unknown error code");
    return make(r->retry, r->max_attempts, r->min_delay_ms, r->alert, r->reason);
}

static bool retryable_status(long s)
{
    return s == 0 || s == 408 || s == 429 || (s >= 500 && s <= 599);
}

struct domain_error_class domain_send_error_class(long http_status, long code)
{
    if (code != DOMAIN_NO_CODE) {
        if (!find_rule(code) && http_status >= 500 && http_status <= 599)
            return make(DOMAIN_RETRY, LIMITED_ATTEMPTS, 0, false,
                        "unknown error code with a server error status");
        return domain_wa_error_class(code);
    }
    if (http_status == 0)
        return make(DOMAIN_RETRY, 0, 0, false, "network error or timeout");
    if (retryable_status(http_status))
        return make(DOMAIN_RETRY, 0, 0, false, "temporary HTTP error status");
    if (http_status >= 200 && http_status <= 299)
        return make(DOMAIN_FAIL, 0, 0, true, "success status without a message id");
    return make(DOMAIN_FAIL, 0, 0, true, "HTTP error without a Graph error code");
}

int64_t domain_retry_delay_ms(const struct domain_error_class *cls, unsigned attempt,
                              int64_t base_ms, int64_t cap_ms, uint32_t random)
{
    int64_t d = domain_backoff_ms(attempt, base_ms, cap_ms, random);
    if (cls && d < cls->min_delay_ms)
        d = cls->min_delay_ms;
    return d;
}

bool domain_retry_allowed(const struct domain_error_class *cls, unsigned attempts_done,
                          unsigned max_attempts)
{
    if (!cls || cls->retry == DOMAIN_FAIL)
        return false;
    if (cls->max_attempts > 0 && attempts_done >= (unsigned)cls->max_attempts)
        return false;
    return attempts_done < max_attempts;
}
