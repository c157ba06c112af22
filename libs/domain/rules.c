/* rules.c - the state machines of messaging as pure functions: outbound
 * message status, conversation ownership (handoff), message buffering with
 * abort-if-newer, and the timers of idle conversations. The decisions are
 * documented in domain.h. */
#include <string.h>

#include "domain.h"

/* ---------------------------------------------------------------- outbound status */

/* Position in the outbound progression; FAILED and RECEIVED are off it. */
static int rank(enum domain_status s)
{
    switch (s) {
    case DOMAIN_STATUS_QUEUED:
        return 0;
    case DOMAIN_STATUS_PROCESSING:
        return 1;
    case DOMAIN_STATUS_SENT:
        return 2;
    case DOMAIN_STATUS_DELIVERED:
        return 3;
    case DOMAIN_STATUS_READ:
        return 4;
    default:
        return -1;
    }
}

static enum domain_transition decide(enum domain_status cur, enum domain_status next)
{
    if (cur == DOMAIN_STATUS_RECEIVED || next == DOMAIN_STATUS_RECEIVED)
        return cur == next ? DOMAIN_TRANSITION_IGNORE : DOMAIN_TRANSITION_INVALID;
    if (cur == DOMAIN_STATUS_FAILED)
        return DOMAIN_TRANSITION_IGNORE;
    if (next == DOMAIN_STATUS_FAILED)
        return rank(cur) >= rank(DOMAIN_STATUS_DELIVERED) ? DOMAIN_TRANSITION_IGNORE
                                                          : DOMAIN_TRANSITION_APPLY;
    return rank(next) > rank(cur) ? DOMAIN_TRANSITION_APPLY : DOMAIN_TRANSITION_IGNORE;
}

int domain_status_transition(enum domain_status current, enum domain_status next,
                             enum domain_transition *result)
{
    if (!result || (unsigned)current > DOMAIN_STATUS_FAILED ||
        (unsigned)next > DOMAIN_STATUS_FAILED)
        return -EINVAL;
    *result = decide(current, next);
    return 0;
}

bool domain_status_requeue_ok(enum domain_status current)
{
    return current == DOMAIN_STATUS_QUEUED || current == DOMAIN_STATUS_PROCESSING;
}

int domain_status_event(enum domain_status s, enum domain_event *out)
{
    if (!out)
        return -EINVAL;
    switch (s) {
    case DOMAIN_STATUS_SENT:
        *out = DOMAIN_EVENT_MESSAGE_SENT;
        return 0;
    case DOMAIN_STATUS_DELIVERED:
        *out = DOMAIN_EVENT_MESSAGE_DELIVERED;
        return 0;
    case DOMAIN_STATUS_READ:
        *out = DOMAIN_EVENT_MESSAGE_READ;
        return 0;
    case DOMAIN_STATUS_FAILED:
        *out = DOMAIN_EVENT_MESSAGE_FAILED;
        return 0;
    default:
        return -EINVAL;
    }
}

/* ---------------------------------------------------------------- ownership */

/* Seconds to ms, saturating far beyond any real setting (no overflow). */
#define SECONDS_MAX 10000000000L /* about 317 years */
static int64_t seconds_ms(long s)
{
    if (s <= 0)
        return 0;
    return (int64_t)(s > SECONDS_MAX ? SECONDS_MAX : s) * 1000;
}

int domain_owner_apply(enum domain_owner current, enum domain_owner_event ev,
                       struct domain_owner_result *out)
{
    if (!out || (unsigned)current > DOMAIN_OWNER_HUMAN ||
        (unsigned)ev > DOMAIN_OWNER_AUTO_RESUME_DUE)
        return -EINVAL;
    enum domain_owner next = current;
    enum domain_resume_timer resume = DOMAIN_RESUME_KEEP;
    switch (ev) {
    case DOMAIN_OWNER_CUSTOMER_MESSAGE:
    case DOMAIN_OWNER_BOT_REPLY:
        break; /* neither changes hands; the bot acts only while it owns */
    case DOMAIN_OWNER_HUMAN_MESSAGE:
    case DOMAIN_OWNER_TAKE_OVER:
        next = DOMAIN_OWNER_HUMAN;
        resume = DOMAIN_RESUME_RESTART;
        break;
    case DOMAIN_OWNER_HAND_BACK:
        next = DOMAIN_OWNER_BOT;
        resume = DOMAIN_RESUME_CLEAR;
        break;
    case DOMAIN_OWNER_AUTO_RESUME_DUE:
        /* A timer that fires after a hand-back is stale: nothing to clear. */
        if (current == DOMAIN_OWNER_HUMAN) {
            next = DOMAIN_OWNER_BOT;
            resume = DOMAIN_RESUME_CLEAR;
        }
        break;
    }
    out->owner = next;
    out->changed = next != current;
    out->bot_may_answer = next == DOMAIN_OWNER_BOT;
    out->resume = resume;
    return 0;
}

int64_t domain_resume_deadline(int64_t now_ms, long resume_s)
{
    if (resume_s <= 0)
        return 0;
    return now_ms + seconds_ms(resume_s);
}

bool domain_idle_close_due(int64_t last_ms, long idle_close_s, int64_t now_ms)
{
    if (idle_close_s <= 0)
        return false;
    return now_ms - last_ms >= seconds_ms(idle_close_s);
}

/* ---------------------------------------------------------------- buffering */

int64_t domain_buffer_deadline(int64_t first_pending_ms, int64_t last_inbound_ms, long window_s,
                               long max_wait_s)
{
    int64_t window = seconds_ms(window_s), max_wait = seconds_ms(max_wait_s);
    if (max_wait < window)
        max_wait = window;
    if (first_pending_ms <= 0 || first_pending_ms > last_inbound_ms)
        first_pending_ms = last_inbound_ms;
    int64_t trailing = last_inbound_ms + window;
    int64_t capped = first_pending_ms + max_wait;
    int64_t deadline = trailing < capped ? trailing : capped;
    return deadline < last_inbound_ms ? last_inbound_ms : deadline;
}

bool domain_buffer_superseded(const struct domain_inbound_mark *at_start,
                              const struct domain_inbound_mark *now)
{
    if (!now || !now->message_id)
        return false;
    if (!at_start || !at_start->message_id)
        return true;
    if (strcmp(at_start->message_id, now->message_id) == 0)
        return false;
    return now->at_ms >= at_start->at_ms;
}
