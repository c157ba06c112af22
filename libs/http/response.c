/* response.c - what handlers use to answer. */
#include "exchange.h"

#include <string.h>

static bool has_crlf(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

int http_response_header(struct http_response *res, const char *name, const char *value)
{
    if (!name || !value || !*name || has_crlf(name) || has_crlf(value) || strchr(name, ':'))
        return -EINVAL;
    return sb_buf_appendf(&res->headers, "%s: %s\r\n", name, value);
}

int http_respond(struct http_response *res, int status, const char *content_type, const void *body,
                 size_t len)
{
    if (status < 100 || status > 599 || (content_type && has_crlf(content_type)))
        return -EINVAL;
    res->status = status;
    snprintf(res->content_type, sizeof res->content_type, "%s",
             content_type ? content_type : "text/plain; charset=utf-8");
    sb_buf_reset(&res->body);
    if (len == 0)
        return 0;
    int rc = sb_buf_append(&res->body, body, len);
    if (rc != 0) {
        res->status = 500;
        sb_buf_reset(&res->body);
    }
    return rc;
}

int http_respond_json(struct http_response *res, int status, json_t *body)
{
    if (!body)
        return http_respond_error(res, 500, "internal", "out of memory");
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text) {
        res->status = 500;
        return -ENOMEM;
    }
    int rc = http_respond(res, status, "application/json", text, strlen(text));
    free(text);
    return rc;
}

int http_respond_error(struct http_response *res, int status, const char *code, const char *message)
{
    /* Built by hand so that an out-of-memory path still answers. */
    struct sb_buf b;
    sb_buf_init(&b, 4096);
    int rc = sb_buf_append_str(&b, "{\"error\":{\"code\":");
    if (rc == 0)
        rc = sb_buf_append_json_str(&b, code, strlen(code));
    if (rc == 0)
        rc = sb_buf_append_str(&b, ",\"message\":");
    if (rc == 0)
        rc = sb_buf_append_json_str(&b, message, strlen(message));
    if (rc == 0)
        rc = sb_buf_append_str(&b, "}}");
    if (rc == 0)
        rc = http_respond(res, status, "application/json", b.data, b.len);
    else
        res->status = status;
    sb_buf_cleanup(&b);
    return rc;
}

void http_response_delay(struct http_response *res, int ms)
{
    res->delay_ms = ms < 0 ? 0 : ms > HTTP_MAX_DELAY_MS ? HTTP_MAX_DELAY_MS : ms;
}

const char *http_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
    }
}
