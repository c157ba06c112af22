/* test_rules.c - every edge of the state machines: outbound status (all 49
 * pairs), conversation ownership (all events from both owners), buffering
 * deadlines, abort-if-newer, resume and idle timers. */
#include <criterion/criterion.h>
#include <limits.h>

#include "domain.h"

#define Q   DOMAIN_STATUS_QUEUED
#define P   DOMAIN_STATUS_PROCESSING
#define S   DOMAIN_STATUS_SENT
#define D   DOMAIN_STATUS_DELIVERED
#define R   DOMAIN_STATUS_READ
#define F   DOMAIN_STATUS_FAILED
#define RCV DOMAIN_STATUS_RECEIVED

#define A DOMAIN_TRANSITION_APPLY
#define I DOMAIN_TRANSITION_IGNORE
#define X DOMAIN_TRANSITION_INVALID

Test(status, full_transition_table, .timeout = 30)
{
    /* want[current][next], in enum order: received queued processing sent
     * delivered read failed. */
    static const enum domain_transition want[7][7] = {
        /* received   */ {I, X, X, X, X, X, X},
        /* queued     */ {X, I, A, A, A, A, A},
        /* processing */ {X, I, I, A, A, A, A},
        /* sent       */ {X, I, I, I, A, A, A},
        /* delivered  */ {X, I, I, I, I, A, I},
        /* read       */ {X, I, I, I, I, I, I},
        /* failed     */ {X, I, I, I, I, I, I},
    };
    for (int c = RCV; c <= F; c++) {
        for (int n = RCV; n <= F; n++) {
            enum domain_transition got = (enum domain_transition)99;
            cr_assert_eq(
                domain_status_transition((enum domain_status)c, (enum domain_status)n, &got), 0);
            cr_assert_eq(got, want[c][n], "%s -> %s: got %d want %d",
                         domain_status_name((enum domain_status)c),
                         domain_status_name((enum domain_status)n), got, want[c][n]);
        }
    }
}

Test(status, named_decisions, .timeout = 30)
{
    enum domain_transition t;
    cr_assert_eq(domain_status_transition(R, D, &t), 0);
    cr_assert_eq(t, I, "a late delivered after read is ignored, not an error");
    cr_assert_eq(domain_status_transition(S, R, &t), 0);
    cr_assert_eq(t, A, "read may skip delivered");
    cr_assert_eq(domain_status_transition(D, F, &t), 0);
    cr_assert_eq(t, I, "failed after delivered is ignored");
    cr_assert_eq(domain_status_transition(F, R, &t), 0);
    cr_assert_eq(t, I, "failed is terminal");
    cr_assert_eq(domain_status_transition(S, RCV, &t), 0);
    cr_assert_eq(t, X, "received is inbound only");
}

Test(status, bad_arguments, .timeout = 30)
{
    enum domain_transition t;
    cr_assert_eq(domain_status_transition(Q, P, NULL), -EINVAL);
    cr_assert_eq(domain_status_transition((enum domain_status)7, P, &t), -EINVAL);
    cr_assert_eq(domain_status_transition(Q, (enum domain_status) - 1, &t), -EINVAL);
}

Test(status, requeue_and_events, .timeout = 30)
{
    cr_assert(domain_status_requeue_ok(P));
    cr_assert(domain_status_requeue_ok(Q));
    for (int s = S; s <= F; s++)
        cr_assert_not(domain_status_requeue_ok((enum domain_status)s));
    cr_assert_not(domain_status_requeue_ok(RCV));

    enum domain_event e;
    cr_assert_eq(domain_status_event(S, &e), 0);
    cr_assert_str_eq(domain_event_name(e), "message.sent");
    cr_assert_eq(domain_status_event(D, &e), 0);
    cr_assert_str_eq(domain_event_name(e), "message.delivered");
    cr_assert_eq(domain_status_event(R, &e), 0);
    cr_assert_str_eq(domain_event_name(e), "message.read");
    cr_assert_eq(domain_status_event(F, &e), 0);
    cr_assert_str_eq(domain_event_name(e), "message.failed");
    cr_assert_eq(domain_status_event(Q, &e), -EINVAL);
    cr_assert_eq(domain_status_event(RCV, &e), -EINVAL);
    cr_assert_eq(domain_status_event(S, NULL), -EINVAL);
}

/* ---------------------------------------------------------------- ownership */

static struct domain_owner_result own(enum domain_owner cur, enum domain_owner_event ev)
{
    struct domain_owner_result r;
    cr_assert_eq(domain_owner_apply(cur, ev, &r), 0);
    return r;
}

static void expect(struct domain_owner_result r, enum domain_owner owner, bool changed, bool may,
                   enum domain_resume_timer resume, const char *what)
{
    cr_assert_eq(r.owner, owner, "%s: owner", what);
    cr_assert_eq(r.changed, changed, "%s: changed", what);
    cr_assert_eq(r.bot_may_answer, may, "%s: bot_may_answer", what);
    cr_assert_eq(r.resume, resume, "%s: resume timer", what);
}

#define BOT   DOMAIN_OWNER_BOT
#define HUMAN DOMAIN_OWNER_HUMAN

Test(ownership, from_bot, .timeout = 30)
{
    expect(own(BOT, DOMAIN_OWNER_CUSTOMER_MESSAGE), BOT, false, true, DOMAIN_RESUME_KEEP,
           "bot+customer");
    expect(own(BOT, DOMAIN_OWNER_BOT_REPLY), BOT, false, true, DOMAIN_RESUME_KEEP, "bot+reply");
    expect(own(BOT, DOMAIN_OWNER_HUMAN_MESSAGE), HUMAN, true, false, DOMAIN_RESUME_RESTART,
           "bot+human message (echo from the business phone)");
    expect(own(BOT, DOMAIN_OWNER_TAKE_OVER), HUMAN, true, false, DOMAIN_RESUME_RESTART,
           "bot+take over");
    expect(own(BOT, DOMAIN_OWNER_HAND_BACK), BOT, false, true, DOMAIN_RESUME_CLEAR,
           "bot+hand back");
    expect(own(BOT, DOMAIN_OWNER_AUTO_RESUME_DUE), BOT, false, true, DOMAIN_RESUME_KEEP,
           "stale resume timer");
}

Test(ownership, from_human, .timeout = 30)
{
    expect(own(HUMAN, DOMAIN_OWNER_CUSTOMER_MESSAGE), HUMAN, false, false, DOMAIN_RESUME_KEEP,
           "customer messages do not restart the human's silence timer");
    expect(own(HUMAN, DOMAIN_OWNER_BOT_REPLY), HUMAN, false, false, DOMAIN_RESUME_KEEP,
           "a reply generated before a take-over must not be sent");
    expect(own(HUMAN, DOMAIN_OWNER_HUMAN_MESSAGE), HUMAN, false, false, DOMAIN_RESUME_RESTART,
           "human+human message");
    expect(own(HUMAN, DOMAIN_OWNER_TAKE_OVER), HUMAN, false, false, DOMAIN_RESUME_RESTART,
           "human+take over");
    expect(own(HUMAN, DOMAIN_OWNER_HAND_BACK), BOT, true, true, DOMAIN_RESUME_CLEAR,
           "human+hand back");
    expect(own(HUMAN, DOMAIN_OWNER_AUTO_RESUME_DUE), BOT, true, true, DOMAIN_RESUME_CLEAR,
           "human+auto resume");
}

Test(ownership, bad_arguments, .timeout = 30)
{
    struct domain_owner_result r;
    cr_assert_eq(domain_owner_apply(BOT, DOMAIN_OWNER_TAKE_OVER, NULL), -EINVAL);
    cr_assert_eq(domain_owner_apply((enum domain_owner)2, DOMAIN_OWNER_TAKE_OVER, &r), -EINVAL);
    cr_assert_eq(domain_owner_apply(BOT, (enum domain_owner_event)6, &r), -EINVAL);
}

Test(ownership, timers, .timeout = 30)
{
    cr_assert_eq(domain_resume_deadline(1000, 60), 61000);
    cr_assert_eq(domain_resume_deadline(1000, 0), 0, "NULL setting: never");
    cr_assert_eq(domain_resume_deadline(1000, -5), 0);
    cr_assert_gt(domain_resume_deadline(1000, LONG_MAX), 1000, "saturates, no overflow");

    cr_assert_not(domain_idle_close_due(0, 3600, 3599999));
    cr_assert(domain_idle_close_due(0, 3600, 3600000));
    cr_assert_not(domain_idle_close_due(0, 0, INT64_MAX / 2), "never when not configured");
    cr_assert_not(domain_idle_close_due(0, LONG_MAX, 1000000000000LL), "saturated, not wrapped");
}

/* ---------------------------------------------------------------- buffering */

Test(buffer, trailing_window_and_cap, .timeout = 30)
{
    /* One message: last + window. */
    cr_assert_eq(domain_buffer_deadline(10000, 10000, 3, 15), 13000);
    cr_assert_eq(domain_buffer_deadline(0, 10000, 3, 15), 13000, "no first: the last is first");
    /* Each new message pushes the window... */
    cr_assert_eq(domain_buffer_deadline(10000, 12000, 3, 15), 15000);
    cr_assert_eq(domain_buffer_deadline(10000, 21000, 3, 15), 24000);
    /* ...until the cap since the first pending one. */
    cr_assert_eq(domain_buffer_deadline(10000, 23000, 3, 15), 25000);
    cr_assert_eq(domain_buffer_deadline(10000, 24999, 3, 15), 25000);
    /* Past the cap: due now (never before the last message itself). */
    cr_assert_eq(domain_buffer_deadline(10000, 40000, 3, 15), 40000);
}

Test(buffer, degenerate_settings, .timeout = 30)
{
    cr_assert_eq(domain_buffer_deadline(10000, 10000, 0, 0), 10000, "no buffering: at once");
    cr_assert_eq(domain_buffer_deadline(10000, 11000, -3, -1), 11000);
    cr_assert_eq(domain_buffer_deadline(10000, 11000, 5, 2), 15000, "max_wait raised to window");
    cr_assert_eq(domain_buffer_deadline(20000, 11000, 3, 15), 14000, "first after last: ignored");
    cr_assert_gt(domain_buffer_deadline(1, 1, LONG_MAX, LONG_MAX), 1, "no overflow");
}

Test(buffer, abort_if_newer, .timeout = 30)
{
    struct domain_inbound_mark start = {"0190a000-0000-7000-8000-000000000001", 5000};
    struct domain_inbound_mark same = start;
    struct domain_inbound_mark newer = {"0190a000-0000-7000-8000-000000000002", 6000};
    struct domain_inbound_mark same_ms = {"0190a000-0000-7000-8000-000000000003", 5000};
    struct domain_inbound_mark older = {"0190a000-0000-7000-8000-000000000000", 4000};
    struct domain_inbound_mark none = {NULL, 0};
    cr_assert_not(domain_buffer_superseded(&start, &same));
    cr_assert(domain_buffer_superseded(&start, &newer));
    cr_assert(domain_buffer_superseded(&start, &same_ms), "same millisecond, different message");
    cr_assert_not(domain_buffer_superseded(&start, &older), "newest went back: deleted, not new");
    cr_assert(domain_buffer_superseded(&none, &newer), "nothing at start, something now");
    cr_assert(domain_buffer_superseded(NULL, &newer));
    cr_assert_not(domain_buffer_superseded(&start, &none));
    cr_assert_not(domain_buffer_superseded(&none, &none));
    cr_assert_not(domain_buffer_superseded(&start, NULL));
}
