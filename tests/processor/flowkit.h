/* flowkit.h - shared by the processor's end-to-end suites: flow_setup starts
 * the gateway, the fake Graph API, the fake LLM and processor 0 on a fresh
 * world (tests/gateway/world.h); helpers speak as a customer and read what
 * came out. Each test uses its own customer number, so counts are exact. */
#ifndef SABIA_TEST_FLOWKIT_H
#define SABIA_TEST_FLOWKIT_H

#include "world.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

extern struct world W;
extern pid_t GRAPH, PROC[2], LLM;
extern int PROC_PORT[2]; /* their HTTP ports (health, /metrics) */
extern int GRAPH_PORT, LLM_PORT;
extern char PROC_LOG[2][512];

void flow_setup(void);
void flow_teardown(void);
void start_processor(int i);
void sleep_ms(long ms);
void new_customer(char phone[16]);
/* A WhatsApp text message payload (heap) from `from`; *wamid gets its id. */
char *wa_message(const char *from, const char *text, char wamid[80]);
void customer_says(const char *phone, const char *text);
/* Sends the fake Graph API received for `phone` (the last text into `last`). */
int sends_to(const char *phone, char *last, size_t last_len);
int wait_sends(const char *phone, int want, int timeout_ms, char *last, size_t last_len);
/* One column (qualified: m.status, …) of the customer's latest bot reply (heap), or NULL. */
char *reply_field(const char *phone, const char *column);
bool wait_reply_field(const char *phone, const char *column, const char *want, int timeout_ms);
void post_status(const char *provider_id, const char *phone, const char *status);
void script_graph(const char *json);
/* Runs `sql` as the owner inside the test tenant: its first value (heap), or NULL. */
char *tenant_sql(const char *sql);

#endif
