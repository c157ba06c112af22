/* deliver.c - puts one outbound message on its channel: the WhatsApp Cloud
 * API or Instagram Send API over libcurl (a long reply goes out as several
 * messages, the first one answering the customer's message), or the web
 * widget through Redis pub/sub ("sabia:widget:<channel>:<visitor>", which the
 * webapp relays to the visitor's socket). */
#include "send.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#define DELIVER_TIMEOUT_MS 15000L
#define DELIVER_RESPONSE_MAX (256u * 1024u)

static size_t collect(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct sb_buf *b = arg;
    return sb_buf_append(b, ptr, size * nmemb) == 0 ? size * nmemb : 0;
}

/* One POST; *status 0 when no HTTP answer came back. */
static void post_json(const char *url, const char *token, const struct sb_buf *body,
                      struct sb_buf *resp, long *status)
{
    char auth[4200];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token ? token : "");
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, auth);
    CURL *c = curl_easy_init();
    *status = 0;
    if (c && h) {
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->data);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, DELIVER_TIMEOUT_MS);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        if (curl_easy_perform(c) == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    }
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
}

static void fail(struct send_job *s, const char *why)
{
    memset(&s->result, 0, sizeof s->result);
    s->result.code = DOMAIN_NO_CODE;
    s->result.error_class = domain_send_error_class(400, DOMAIN_NO_CODE);
    s->result.error_class.retry = DOMAIN_FAIL;
    s->result.error_class.reason = why;
    snprintf(s->result.error_message, sizeof s->result.error_message, "%s", why);
}

static void deliver_web(struct send_job *s)
{
    char channel[64 + DOMAIN_ID_MAX];
    snprintf(channel, sizeof channel, "sabia:widget:%s:%s", s->channel, s->to);
    char at[SB_TIME_STRLEN];
    sb_time_format(sb_now_ms(), at);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "message", "message_id", s->message,
                          "conversation_id", s->conversation, "text", s->text.data ? s->text.data : "",
                          "created_at", at);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    memset(&s->result, 0, sizeof s->result);
    s->result.code = DOMAIN_NO_CODE;
    if (text && bus_publish(s->p->svc->bus, channel, text, strlen(text), NULL) == 0) {
        s->result.ok = true;
        snprintf(s->provider_id, sizeof s->provider_id, "web:%s", s->message);
    } else {
        s->result.error_class = domain_send_error_class(0, DOMAIN_NO_CODE); /* transient */
        snprintf(s->result.error_message, sizeof s->result.error_message,
                 "the widget relay (Redis) is unavailable");
    }
    free(text);
}

/* Sends one part; true when accepted. */
static bool send_part(struct send_job *s, enum channel_type type, const char *url,
                      struct sb_str part, bool first)
{
    struct sb_buf body, resp;
    sb_buf_init(&body, 64 * 1024);
    sb_buf_init(&resp, DELIVER_RESPONSE_MAX);
    const char *reply_to = first && s->reply_to_provider[0] ? s->reply_to_provider : NULL;
    int rc = type == CHANNEL_WHATSAPP ? channels_wa_text_body(&body, s->to, part, reply_to, false)
                                      : channels_ig_text_body(&body, s->to, part);
    long status = 0;
    if (rc == 0)
        post_json(url, s->token, &body, &resp, &status);
    if (rc != 0)
        fail(s, "the reply cannot be sent to this recipient");
    else if (channels_send_response_parse(type, status, resp.data, resp.len, &s->result) != 0)
        fail(s, "unreadable send response");
    sb_buf_cleanup(&body);
    sb_buf_cleanup(&resp);
    return rc == 0 && s->result.ok;
}

static void deliver_graph(struct send_job *s, enum channel_type type)
{
    struct processor *p = s->p;
    struct sb_buf url;
    sb_buf_init(&url, 4096);
    struct sb_str parts[DOMAIN_SPLIT_MAX_PARTS];
    size_t nparts = 0;
    bool truncated = false;
    const char *base = type == CHANNEL_INSTAGRAM ? p->instagram_base_url : p->graph_base_url;
    if (!s->token || !s->account[0])
        fail(s, "the channel has no access token or account id");
    else if (channels_send_url(&url, base, p->graph_version, s->account) != 0)
        fail(s, "bad send URL settings");
    else if (channels_text_split(type, s->text.data ? s->text.data : "", s->text.len, parts, &nparts,
                                 &truncated) != 0 || nparts == 0)
        fail(s, "empty or unsplittable reply");
    for (size_t i = 0; s->result.error_message[0] == '\0' && i < nparts; i++) {
        if (!send_part(s, type, url.data, parts[i], i == 0)) {
            if (i > 0) { /* earlier parts arrived: resending would duplicate them */
                s->result.ok = true;
                sb_log_warn(p->svc->log, NULL, "message %s: part %zu of %zu failed: %s", s->message,
                            i + 1, nparts, s->result.error_message);
            }
            break;
        }
        if (i == 0)
            snprintf(s->provider_id, sizeof s->provider_id, "%s", s->result.message_id);
        else if (s->nextra < SEND_EXTRA_IDS)
            snprintf(s->extra_ids[s->nextra++], sizeof s->extra_ids[0], "%s", s->result.message_id);
    }
    sb_buf_cleanup(&url);
}

void send_deliver(struct send_job *s)
{
    enum channel_type type;
    if (channels_type_parse(s->type, &type) != 0)
        fail(s, "unknown channel type");
    else if (type == CHANNEL_WEB)
        deliver_web(s);
    else
        deliver_graph(s, type);
}
