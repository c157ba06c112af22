/* webhook.c - the gateway's front door.
 *
 *   POST /v1/webhook/{source}/{tenant_id}/{workspace_id}/{channel_id}
 *   GET  /v1/webhook/{source}/{tenant_id}/{workspace_id}/{channel_id}  (Meta handshake)
 *
 * A POST is checked in order of cost: path ids, tenant, channel, signature
 * (or visitor token), size, JSON shape, then the tenant's rate limit. Every
 * POST that reaches the route is recorded in webhook_events, accepted or
 * rejected with a reason, and only answered 2xx once its row is committed.
 *
 * The handler never waits for the commit: it defers its response and hands
 * the row to the committer, whose writer thread answers once the batch is
 * written (recorded() below). POSTs are tried on the event loop first: with
 * the tenant and channel cached and rate-limit tokens at hand nothing blocks,
 * and otherwise the request is passed to a worker before anything was done. */
#include "gateway.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define WEBHOOK_MAX_BODY (4u * 1024u * 1024u) /* DESIGN.md §8 */
#define REJECTED_PAYLOAD_KEEP (64u * 1024u)   /* bytes of a rejected body worth keeping */
#define CHALLENGE_MAX 256
#define VISITOR_TOKEN_HEADER "x-sabia-visitor-token"

/* The state of one POST while it is being checked. */
#define PATH_KEEP 1024      /* webhook_events.request_path */
#define SIGNATURE_KEEP 512  /* webhook_events.signature */

enum intake_outcome {
    INTAKE_RECORD,   /* record the row (accepted or rejected), answer once committed */
    INTAKE_ANSWERED, /* answered without a row (503) */
    INTAKE_PASS,     /* on the loop and it would block: run again on a worker */
};

/* One request being checked and then recorded. Heap-allocated: it lives until
 * its row is committed and the response finished. */
struct intake {
    struct gateway *gw;
    char path[PATH_KEEP + 1], signature[SIGNATURE_KEEP + 1]; /* cut to the columns' limits */
    char ids[3][SB_UUID_STRLEN]; /* path ids, lower-cased */
    struct http_request *req;
    struct http_response *res;
    struct http_deferred *pending;
    bool may_block; /* false on the event loop */
    enum intake_outcome outcome;
    int status;        /* the HTTP status of a rejection */
    char message[256]; /* and its explanation */
    const char *source, *tenant_id, *workspace_id, *channel_id;
    struct lookup_info info;
    bool tenant_known, channel_known;
    struct channels_inspection insp; /* the dedup key the row points to */
    struct event_row row;
    char reason[64];
    char detail[256];
    struct sb_log_ctx lctx;
};

static bool valid_source(const char *s)
{
    return strcmp(s, "whatsapp") == 0 || strcmp(s, "instagram") == 0 || strcmp(s, "web") == 0;
}

static bool valid_id(const char *s)
{
    return s && sb_uuid_valid(s, strlen(s));
}

static void count(struct intake *in, const char *outcome)
{
    const char *labels[] = {valid_source(in->source) ? in->source : "unknown", outcome};
    metric_add(in->gw->m_requests, labels, 1);
}

/* Marks the request to be recorded as rejected and answered `status` with
 * the reason once recorded. Always false, for the checks' convenience. */
static bool reject(struct intake *in, int status, const char *reason, const char *message)
{
    struct event_row *r = &in->row;
    r->tenant_id = in->tenant_known ? in->tenant_id : NULL;
    r->channel_id = in->channel_known ? in->channel_id : NULL;
    r->workspace_id = in->channel_known ? in->info.workspace_id : NULL;
    r->source = valid_source(in->source) ? in->source : "web";
    r->rejection_reason = reason;
    r->dedup_key = NULL;
    if (r->payload_len > REJECTED_PAYLOAD_KEEP) {
        r->payload_len = REJECTED_PAYLOAD_KEEP;
        r->payload_truncated = true;
    }
    in->status = status;
    snprintf(in->message, sizeof in->message, "%s", message);
    in->outcome = INTAKE_RECORD;
    return false;
}

static bool unavailable(struct intake *in, int rc)
{
    count(in, "error");
    sb_log_error(in->gw->svc->log, &in->lctx, "webhook not recorded: %s", sb_strerror(rc));
    int hr = http_response_header(in->res, "Retry-After", "5");
    (void)hr; /* only advice to the sender */
    http_respond_error(in->res, 503, "unavailable", "the event could not be stored; retry later");
    in->outcome = INTAKE_ANSWERED;
    return false;
}

/* Nothing done yet that cannot be repeated: let a worker take it from the top. */
static bool pass(struct intake *in)
{
    in->outcome = INTAKE_PASS;
    return false;
}

/* Path ids, then tenant and channel. Returns false when it answered. */
static bool check_target(struct intake *in)
{
    if (!valid_source(in->source))
        return reject(in, 404, "unknown_source", "source must be whatsapp, instagram or web");
    if (!valid_id(in->tenant_id) || !valid_id(in->workspace_id) || !valid_id(in->channel_id))
        return reject(in, 400, "invalid_path", "tenant, workspace and channel ids must be UUIDs");
    int rc = lookup_get(in->gw->lookup, in->tenant_id, in->channel_id, in->may_block, &in->info);
    if (rc == SB_EWOULDBLOCK)
        return pass(in);
    if (rc != 0)
        return unavailable(in, rc);
    in->tenant_known = in->info.result != LOOKUP_NO_TENANT;
    in->channel_known = in->info.result == LOOKUP_FOUND;
    if (!in->tenant_known) {
        reject(in, 404, "unknown_tenant", "no such tenant");
    } else if (!in->info.tenant_active) {
        reject(in, 403, "tenant_inactive", "the tenant is suspended");
    } else if (!in->channel_known) {
        reject(in, 404, "unknown_channel", "no such channel for this tenant");
    } else if (strcmp(in->info.workspace_id, in->workspace_id) != 0) {
        reject(in, 404, "channel_workspace_mismatch", "the channel belongs to another workspace");
    } else if (strcmp(in->info.type, in->source) != 0) {
        reject(in, 404, "channel_type_mismatch", "the channel is not of this type");
    } else if (strcmp(in->info.channel_status, "inactive") == 0) {
        reject(in, 403, "channel_inactive", "the channel is inactive");
    } else {
        return true;
    }
    return false;
}

/* X-Hub-Signature-256 for Meta channels; the visitor token for the widget. */
static bool check_signature(struct intake *in)
{
    struct sb_str body = http_request_body(in->req);
    if (strcmp(in->source, "web") == 0) {
        const char *token = http_request_header(in->req, VISITOR_TOKEN_HEADER);
        if (!token) {
            reject(in, 401, "missing_visitor_token", "X-Sabia-Visitor-Token is required");
            return false;
        }
        char visitor[CRYPTO_VISITOR_ID_MAX + 1];
        int rc = crypto_visitor_token_verify(in->gw->master, in->channel_id, token,
                                             (long)(sb_now_ms() / 1000), visitor, sizeof visitor);
        if (rc == -ETIMEDOUT)
            reject(in, 401, "expired_visitor_token", "the visitor token has expired");
        else if (rc != 0)
            reject(in, 401, "bad_visitor_token", "the visitor token is not valid for this channel");
        else
            snprintf(in->detail, sizeof in->detail, "%s", visitor); /* checked against the body */
        return rc == 0;
    }
    const char *sig = http_request_header(in->req, "x-hub-signature-256");
    if (!in->info.app_secret) {
        reject(in, 401, "no_app_secret", "the channel has no app secret configured");
        return false;
    }
    if (!sig) {
        reject(in, 401, "missing_signature", "X-Hub-Signature-256 is required");
        return false;
    }
    int rc = crypto_verify_meta_signature(in->info.app_secret, body.ptr, body.len, sig);
    if (rc == SB_EPARSE)
        reject(in, 401, "malformed_signature", "X-Hub-Signature-256 must be sha256=<64 hex>");
    else if (rc != 0)
        reject(in, 401, "bad_signature", "the signature does not match the body");
    return rc == 0;
}

/* Well-formed JSON of the channel's shape; the dedup key. */
static bool check_payload(struct intake *in)
{
    struct channels_inspection *insp = &in->insp;
    enum channel_type type;
    struct sb_str body = http_request_body(in->req);
    char reason[CHANNELS_REASON_MAX] = "", detail[256] = "";
    if (channels_type_parse(in->source, &type) != 0)
        return unavailable(in, -EINVAL); /* check_target admitted only known sources */
    int rc = channels_inspect(type, body.ptr, body.len, insp, reason, sizeof reason, detail,
                              sizeof detail);
    if (rc == SB_EPARSE) {
        snprintf(in->reason, sizeof in->reason, "%s", reason);
        reject(in, 400, in->reason, detail);
        return false;
    }
    if (rc != 0)
        return unavailable(in, rc); /* out of memory: the sender should retry */
    if (type == CHANNEL_WEB && strcmp(insp->visitor_id, in->detail) != 0) {
        reject(in, 403, "visitor_mismatch", "the message's visitor_id is not the token's visitor");
        return false;
    }
    return true;
}

static bool check_rate(struct intake *in)
{
    long retry_ms = 0;
    int rc = ratelimit_take(in->gw->ratelimit, in->tenant_id, in->info.rate_per_second,
                            in->info.rate_burst, in->may_block, &retry_ms);
    if (rc == SB_EWOULDBLOCK)
        return pass(in);
    if (rc == -EAGAIN) {
        char secs[24];
        snprintf(secs, sizeof secs, "%ld", (retry_ms + 999) / 1000);
        int hr = http_response_header(in->res, "Retry-After", secs);
        (void)hr;
        return reject(in, 429, "rate_limited", "the tenant's webhook rate limit is exceeded");
    }
    if (rc != 0)
        sb_log_debug(in->gw->svc->log, &in->lctx, "rate limit unavailable (%s): letting through",
                     sb_strerror(rc));
    return true;
}

static void accept_event(struct intake *in)
{
    struct event_row *r = &in->row;
    r->tenant_id = in->tenant_id;
    r->workspace_id = in->workspace_id;
    r->channel_id = in->channel_id;
    r->source = in->source;
    r->dedup_key = in->insp.dedup_key;
    in->status = 200;
    in->outcome = INTAKE_RECORD;
}

static void intake_free(struct intake *in)
{
    lookup_info_cleanup(&in->info);
    free(in);
}

/* The rejection's answer, once its row was recorded (or not: a database
 * outage must not turn a 4xx into a 5xx). */
static void answer_rejected(struct intake *in)
{
    const struct event_row *r = &in->row;
    if (r->result != 0)
        sb_log_warn(in->gw->svc->log, &in->lctx, "could not record rejected webhook (%s): %s",
                    r->rejection_reason, sb_strerror(r->result));
    metric_add(in->gw->m_rejections, (const char *[]){r->rejection_reason}, 1);
    count(in, "rejected");
    sb_log_info(in->gw->svc->log, &in->lctx, "webhook rejected: %s (%s)", r->rejection_reason,
                in->message);
    json_t *body = json_pack("{s:s, s:{s:s, s:s}, s:s?}", "status", "rejected", "error", "code",
                             r->rejection_reason, "message", in->message, "eventId",
                             r->result == 0 ? r->id : NULL);
    http_respond_json(in->res, in->status, body);
}

static void answer_accepted(struct intake *in)
{
    const struct event_row *r = &in->row;
    if (r->result != 0) {
        unavailable(in, r->result);
        return;
    }
    count(in, r->duplicate ? "duplicate" : "accepted");
    char body[160];
    int n = snprintf(body, sizeof body, "{\"status\":\"received\",\"eventId\":\"%s\"%s}",
                     r->duplicate ? r->original_id : r->id, r->duplicate ? ",\"duplicate\":true" : "");
    http_respond(in->res, 200, "application/json", body, (size_t)n);
}

/* The committer's call once the row's batch is written or failed (on its
 * writer thread): answer, hand the response to the loop, and let go. */
static void recorded(struct event_row *row, void *arg)
{
    struct intake *in = arg;
    (void)row;
    if (in->row.rejection_reason)
        answer_rejected(in);
    else
        answer_accepted(in);
    http_deferred_finish(in->pending);
    intake_free(in);
}

/* Hands the row to the committer; the response follows when it is written. */
static void record(struct intake *in)
{
    in->pending = http_defer(in->req);
    in->res = http_deferred_response(in->pending);
    in->row.done = recorded;
    in->row.done_arg = in;
    committer_enqueue(in->gw->committer, &in->row);
}

/* UUIDs compare case-insensitively in PostgreSQL but not in caches and token
 * MACs: use the canonical lower-case form. Other strings are left alone (and
 * fail validation). */
static const char *lower_id(char out[SB_UUID_STRLEN], const char *id)
{
    if (!valid_id(id))
        return id;
    for (int i = 0; i < SB_UUID_STRLEN; i++)
        out[i] = (char)tolower((unsigned char)id[i]);
    return out;
}

static struct intake *intake_new(struct gateway *gw, struct http_request *req,
                                 struct http_response *res)
{
    struct intake *in = calloc(1, sizeof *in);
    if (!in)
        return NULL;
    in->gw = gw;
    in->req = req;
    in->res = res;
    in->may_block = !http_request_on_loop(req);
    in->source = http_request_param(req, "source");
    in->tenant_id = lower_id(in->ids[0], http_request_param(req, "tenant_id"));
    in->workspace_id = lower_id(in->ids[1], http_request_param(req, "workspace_id"));
    in->channel_id = lower_id(in->ids[2], http_request_param(req, "channel_id"));
    in->lctx.correlation_id = http_request_correlation_id(req);
    in->lctx.tenant_id = valid_id(in->tenant_id) ? in->tenant_id : NULL;
    struct event_row *r = &in->row;
    if (sb_uuid_v7_str(r->id) != 0)
        snprintf(r->id, sizeof r->id, "00000000-0000-7000-8000-000000000000");
    struct sb_str body = http_request_body(req);
    r->payload = body.ptr;
    r->payload_len = body.len;
    domain_str_copy(in->path, sizeof in->path, http_request_path(req));
    r->request_path = in->path;
    r->remote_addr = http_request_peer(req);
    const char *sig = http_request_header(req, "x-hub-signature-256");
    if (sig) {
        domain_str_copy(in->signature, sizeof in->signature, sig);
        r->signature = in->signature;
    } else {
        r->signature = http_request_header(req, VISITOR_TOKEN_HEADER) ? "visitor-token" : NULL;
    }
    r->correlation_id = in->lctx.correlation_id;
    return in;
}

/* Records, answers, or passes on: the end of both handlers. */
static void intake_finish(struct intake *in)
{
    if (in->outcome == INTAKE_RECORD) {
        record(in); /* `in` belongs to the committer now */
        return;
    }
    if (in->outcome == INTAKE_PASS)
        http_request_pass_to_worker(in->req);
    intake_free(in);
}

static void webhook_post(struct http_request *req, struct http_response *res, void *arg)
{
    struct intake *in = intake_new(arg, req, res);
    if (!in) {
        http_respond_error(res, 503, "unavailable", "out of memory; retry later");
        return;
    }
    if (!check_target(in))
        goto out;
    if (http_request_oversize(req)) {
        in->row.payload_truncated = true;
        reject(in, 413, "payload_too_large", "the body is larger than 4 MiB");
        goto out;
    }
    if (check_signature(in) && check_payload(in) && check_rate(in))
        accept_event(in);
out:
    intake_finish(in);
}

static bool sane_challenge(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CHALLENGE_MAX)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
            return false;
    return true;
}

/* Meta's verification handshake: echo hub.challenge when hub.verify_token
 * matches the channel's. Failures are recorded like rejected events. */
static void webhook_verify(struct http_request *req, struct http_response *res, void *arg)
{
    struct intake *in = intake_new(arg, req, res);
    if (!in) {
        http_respond_error(res, 503, "unavailable", "out of memory; retry later");
        return;
    }
    if (strcmp(in->source ? in->source : "", "web") == 0) {
        reject(in, 404, "unknown_source", "the verification handshake is for whatsapp and instagram");
        goto out;
    }
    if (!check_target(in))
        goto out;
    const char *mode = http_request_query(req, "hub.mode");
    const char *token = http_request_query(req, "hub.verify_token");
    const char *challenge = http_request_query(req, "hub.challenge");
    if (!mode || strcmp(mode, "subscribe") != 0) {
        reject(in, 403, "bad_handshake", "hub.mode must be subscribe");
    } else if (!challenge || !sane_challenge(challenge)) {
        reject(in, 400, "bad_handshake", "hub.challenge is missing or malformed");
    } else if (!token || !in->info.verify_token ||
               !crypto_equal(token, strlen(token), in->info.verify_token,
                             strlen(in->info.verify_token))) {
        reject(in, 403, "bad_verify_token", "hub.verify_token does not match");
    } else {
        count(in, "verified");
        sb_log_info(in->gw->svc->log, &in->lctx, "webhook verification handshake answered");
        http_respond(res, 200, "text/plain; charset=utf-8", challenge, strlen(challenge));
        in->outcome = INTAKE_ANSWERED;
    }
out:
    intake_finish(in);
}

int webhook_routes(struct gateway *gw)
{
    static const char PATH[] = "/v1/webhook/{source}/{tenant_id}/{workspace_id}/{channel_id}";
    const struct http_route_opts post = {.max_body = WEBHOOK_MAX_BODY,
                                         .flags = HTTP_ROUTE_SEE_OVERSIZE | HTTP_ROUTE_TRY_INLINE};
    gw->m_requests = metrics_counter(gw->svc->metrics, "gateway_webhook_requests_total",
                                     "Webhook requests by source and outcome.", "source,outcome");
    gw->m_rejections = metrics_counter(gw->svc->metrics, "gateway_webhook_rejections_total",
                                       "Rejected webhook requests by reason.", "reason");
    int rc = http_route(gw->svc->http, "POST", PATH, webhook_post, gw, &post);
    if (rc == 0)
        rc = http_route(gw->svc->http, "GET", PATH, webhook_verify, gw, NULL);
    return rc;
}
