#!/usr/bin/env bash
# bench/llm.sh - the LLM concurrency benchmark (DESIGN.md §6): one processor
# keeps >= 2,000 model calls in flight against a local fake with 1 s latency,
# completes >= 90% of the Little's-law bound (2,000 replies/s), RSS <= 100 MB.
#
# Builds the Release tree (tests on, for the fake) into build/bench-llm,
# starts a throw-away PostgreSQL (durable, as `./sabia up` runs it) and
# Redis on free ports under a temporary directory, applies the migrations,
# and creates in SQL one tenant, workspace, web-widget channel (a send is a
# Redis PUBLISH), an openai_compatible assistant (model "fake") with a small
# knowledge base, and N conversations, each with one contact and one
# unanswered customer message. Then:
#
#   (a) ceiling: sabia-llm-engine, the libs/llm engine alone, keeps 2,000
#       calls in flight against the fake (closed loop): what the engine and
#       the fake can do on this machine, without the processor
#   (b) processor: one sabia-processor; GenerateAIResponse commands are
#       XADDed to sabia:cmd:generate through one redis-cli --pipe, open loop
#       at the target's Little's-law rate (2,000/s: in flight / latency), or
#       all at once with BENCH_RATE=0 (a burst: tests back-pressure). Every
#       0.5 s: llm_in_flight, processor_replies_total, llm_requests_total and
#       llm_request_seconds (/metrics), the unread backlog (XINFO GROUPS lag),
#       RSS and peak RSS (/proc/<pid>/status). The window starts
#       BENCH_WARMUP s after the injection began and lasts BENCH_SECONDS s
#       (a burst's window also ends when every command has been read).
#
# Reported: peak and mean in flight in the window, replies/s in the window,
# the bound (mean in flight / latency), replies/s / 2,000 and / the bound,
# peak RSS; CPU per process; the replies found in PostgreSQL afterwards.
#
# Prints a summary and removes everything it started, also on failure or
# Ctrl-C. Run as root (PostgreSQL then runs as the postgres user) or as a
# user who can run PostgreSQL's binaries. Knobs (environment):
#   BENCH_RATE (in flight / latency = 2000; 0 = burst) BENCH_DELAY_MS (1000)
#   BENCH_CONVERSATIONS (rate x (warm-up + seconds + 2); 40000 for a burst)
#   BENCH_SECONDS (12) BENCH_WARMUP (3)
#   BENCH_IN_FLIGHT (2000, the ceiling's and the target's)
#   BENCH_GENERATE_THREADS (2) BENCH_COMPLETION_THREADS (2)
#   BENCH_SEND_THREADS (4) BENCH_DB_POOL (8) BENCH_REDIS_POOL (32): by default
#   the processor's own defaults, so the shipped configuration is measured
#   BENCH_DURABLE (1; 0 = fsync and synchronous_commit off)
#   BENCH_DIAG=1 adds diagnostics: pg_stat_statements (top statements by time),
#   pg_stat_activity at the end of the window, and `perf record -a -g` for up
#   to 8 s of the window (report: perf report -i $TMP/perf.data, with BENCH_KEEP=1).
#   BENCH_KEEP=1 keeps the temporary directory (logs) for inspection.
#   BENCH_SKIP_BUILD=1 reuses the binaries already in build/bench-llm.
#   BENCH_PROCESSOR=PATH runs another sabia-processor binary (to try a change).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=SCRIPTDIR/../scripts/lib.sh
. "$ROOT/scripts/lib.sh"
# shellcheck source=SCRIPTDIR/common.sh
. "$ROOT/bench/common.sh"

DELAY_MS=${BENCH_DELAY_MS:-1000}
RUN_SECONDS=${BENCH_SECONDS:-12}
WARMUP=${BENCH_WARMUP:-3}
TARGET_IN_FLIGHT=${BENCH_IN_FLIGHT:-2000}
GEN_THREADS=${BENCH_GENERATE_THREADS:-2}
COMPLETION_THREADS=${BENCH_COMPLETION_THREADS:-2}
SEND_THREADS=${BENCH_SEND_THREADS:-4}
DB_POOL=${BENCH_DB_POOL:-8}
REDIS_POOL=${BENCH_REDIS_POOL:-32}
DURABLE=${BENCH_DURABLE:-1}
DIAG=${BENCH_DIAG:-0}
BUILD=$ROOT/build/bench-llm
SAMPLE_S=0.5

for tool in cmake psql redis-server redis-cli curl timeout pgrep awk "$PG_BIN/initdb"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (./sabia up installs what is needed)"
done
for n in ${BENCH_CONVERSATIONS:-} ${BENCH_RATE:-} "$DELAY_MS" "$RUN_SECONDS" "$WARMUP" "$TARGET_IN_FLIGHT" "$GEN_THREADS" \
    "$COMPLETION_THREADS" "$SEND_THREADS" "$DB_POOL" "$REDIS_POOL" "$DURABLE" "$DIAG"; do
    [[ $n =~ ^[1-9][0-9]*$|^0$ ]] || die "BENCH_* settings must be whole numbers, got '$n'"
done
[ "$DELAY_MS" -ge 1 ] || die "BENCH_DELAY_MS must be at least 1"
# Commands per second: by default the target's Little's-law rate (in flight /
# latency); 0 = every command at once (a burst). Enough conversations for the
# warm-up, the window and 2 s more at that rate.
RATE=${BENCH_RATE:-$((TARGET_IN_FLIGHT * 1000 / DELAY_MS))}
if [ "$RATE" = 0 ]; then
    NCONV=${BENCH_CONVERSATIONS:-40000}
else
    NCONV=${BENCH_CONVERSATIONS:-$((RATE * (WARMUP + RUN_SECONDS + 2)))}
fi
# in_range VALUE MIN MAX WHAT: dies unless MIN <= VALUE <= MAX
in_range() { if [ "$1" -lt "$2" ] || [ "$1" -gt "$3" ]; then die "$4 must be $2..$3, got $1"; fi; }
in_range "$NCONV" 1 1000000 BENCH_CONVERSATIONS
in_range "$RATE" 0 100000 BENCH_RATE
in_range "$DELAY_MS" 1 60000 BENCH_DELAY_MS
in_range "$RUN_SECONDS" 1 600 BENCH_SECONDS
in_range "$WARMUP" 0 600 BENCH_WARMUP
in_range "$TARGET_IN_FLIGHT" 1 20000 BENCH_IN_FLIGHT
in_range "$GEN_THREADS" 1 64 BENCH_GENERATE_THREADS
in_range "$COMPLETION_THREADS" 1 64 BENCH_COMPLETION_THREADS
in_range "$SEND_THREADS" 1 64 BENCH_SEND_THREADS
in_range "$DB_POOL" 1 190 "BENCH_DB_POOL (max_connections is 200)"
in_range "$REDIS_POOL" 1 200 BENCH_REDIS_POOL
# Every call holds a socket in the processor and in the fake.
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((TARGET_IN_FLIGHT * 2 + 1024)) ] ||
    ulimit -n $((TARGET_IN_FLIGHT * 2 + 1024)) 2>/dev/null ||
    die "open files limit $(ulimit -n) is too low for $TARGET_IN_FLIGHT calls (ulimit -n)"

# ---------------------------------------------------------------- clean-up

TMP=
PIDS=() # processes we started, stopped in reverse order
cleanup() {
    local rc=$? i pid _
    trap - EXIT INT TERM
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        pid=${PIDS[$i]}
        kill -0 "$pid" 2>/dev/null || continue
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 150); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    drop_tmp
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- build

PROCESSOR=${BENCH_PROCESSOR:-$BUILD/apps/processor/sabia-processor}
CTL=$BUILD/apps/sabiactl/sabiactl
FAKE=$BUILD/tests/fakes/sabia-fake-llm
ENGINE=$BUILD/bench/sabia-llm-engine
if [ "${BENCH_SKIP_BUILD:-0}" = 1 ]; then
    say "using the binaries already in $BUILD (BENCH_SKIP_BUILD=1)"
else
    say "building the Release tree in $BUILD"
    mkdir -p "$BUILD"
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=ON >"$BUILD/configure.log" 2>&1 ||
        {
            tail -n 30 "$BUILD/configure.log" >&2
            die "cmake configure failed (log: $BUILD/configure.log)"
        }
    cmake --build "$BUILD" -j"$(nproc)" --target sabia-processor sabiactl sabia-fake-llm sabia-llm-engine \
        >"$BUILD/build.log" 2>&1 || {
        tail -n 40 "$BUILD/build.log" >&2
        die "build failed (log: $BUILD/build.log)"
    }
fi
for bin in "$PROCESSOR" "$CTL" "$FAKE" "$ENGINE"; do
    [ -x "$bin" ] || die "$bin is missing: build first (run without BENCH_SKIP_BUILD)"
done

# ---------------------------------------------------------------- PostgreSQL and Redis

TMP=$(mktemp -d /tmp/sabia-bench-llm.XXXXXX)
chmod 755 "$TMP"
cd "$TMP"
PG_PORT=$(free_port)
REDIS_PORT=$(free_port)
OWNER_PW=$(random_secret)
APP_PW=$(random_secret)
REDIS_PW=$(random_secret)

# A port that was free when it was picked may be taken by an outgoing
# connection in the meantime (the picker's range overlaps the ephemeral one):
# each server gets a few tries. lib.sh's helpers exit on failure, hence the
# subshells.
start_pg() {
    pg_init "$TMP/pg" "$PG_PORT"
    if [ "$DURABLE" = 0 ]; then
        as_pg tee -a "$TMP/pg/postgresql.auto.conf" >/dev/null <<EOF
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    fi
    if [ "$DIAG" = 1 ]; then
        as_pg tee -a "$TMP/pg/postgresql.auto.conf" >/dev/null <<EOF
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track_planning = on
EOF
    fi
    (pg_start "$TMP/pg") 2>>"$TMP/start.log"
}
for try in 1 2 3 4; do
    say "starting PostgreSQL on $PG_PORT"
    start_pg && break
    [ "$try" = 4 ] && die "PostgreSQL did not start: $(tail -n 5 "$TMP/start.log")"
    PG_PORT=$(free_port)
done
pg_bootstrap "$TMP/pg" "$PG_PORT" sabia "$OWNER_PW" "$APP_PW"
if [ "$DIAG" = 1 ]; then
    pg_super "$TMP/pg" "$PG_PORT" -d sabia -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
fi
for try in 1 2 3 4; do
    say "starting Redis on $REDIS_PORT"
    (redis_start "$TMP/redis" "$REDIS_PORT" "$REDIS_PW" yes) 2>>"$TMP/start.log" && break
    [ "$try" = 4 ] && die "Redis did not start: $(tail -n 5 "$TMP/start.log")"
    redis_stop "$TMP/redis"
    REDIS_PORT=$(free_port)
done
psql_super() { pg_super "$TMP/pg" "$PG_PORT" -d sabia -At "$@"; }
psql_owner() {
    PGPASSWORD=$OWNER_PW psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U sabia_owner \
        -d sabia -At "$@"
}
rcli() { redis-cli -p "$REDIS_PORT" -a "$REDIS_PW" --no-auth-warning "$@"; }

bench_env

# ---------------------------------------------------------------- data

new_uuid() { cat /proc/sys/kernel/random/uuid; }
TENANT=$(new_uuid)
WORKSPACE=$(new_uuid)
CHANNEL=$(new_uuid)
ASSISTANT=$(new_uuid)
KB=$(new_uuid)

say "creating a tenant, a web channel, an openai_compatible assistant and $NCONV conversations"
psql_owner -v tenant="$TENANT" -v ws="$WORKSPACE" -v ch="$CHANNEL" -v asst="$ASSISTANT" -v kb="$KB" \
    -v n="$NCONV" >"$TMP/seed.log" <<'EOF' || die "seeding failed (log: $TMP/seed.log)"
BEGIN;
SELECT set_config('app.tenant_id', :'tenant', true) \g /dev/null
INSERT INTO tenants (id, name) VALUES (:'tenant', 'Bench LLM');
INSERT INTO workspaces (id, tenant_id, name) VALUES (:'ws', :'tenant', 'Bench');
INSERT INTO channels (id, tenant_id, workspace_id, type, name)
    VALUES (:'ch', :'tenant', :'ws', 'web', 'Bench widget');
INSERT INTO assistants (id, tenant_id, workspace_id, name, provider, model, system_prompt,
                        personality, message_buffer_seconds, buffer_max_wait_seconds)
    VALUES (:'asst', :'tenant', :'ws', 'Bench assistant', 'openai_compatible', 'fake',
            'You are the support assistant of a small online shop. Answer briefly.', 'friendly', 0, 0);
INSERT INTO assistant_channels (tenant_id, assistant_id, channel_id) VALUES (:'tenant', :'asst', :'ch');
INSERT INTO knowledge_bases (id, tenant_id, assistant_id, name, status, language)
    VALUES (:'kb', :'tenant', :'asst', 'FAQ', 'ready', 'english');
INSERT INTO knowledge_chunks (tenant_id, knowledge_base_id, assistant_id, ordinal, title, content, language)
VALUES (:'tenant', :'kb', :'asst', 0, 'Shipping', 'Orders ship within two days and arrive in three to five days.', 'english'),
       (:'tenant', :'kb', :'asst', 1, 'Returns', 'Items can be returned within thirty days for a full refund.', 'english'),
       (:'tenant', :'kb', :'asst', 2, 'Payment', 'We accept cards, bank transfers and Pix.', 'english');
CREATE TEMP TABLE bench_ids ON COMMIT DROP AS
    SELECT g, gen_random_uuid() AS contact, gen_random_uuid() AS conv, gen_random_uuid() AS msg
    FROM generate_series(1, :n) AS g;
INSERT INTO contacts (id, tenant_id, workspace_id, channel_id, external_id, name)
    SELECT contact, :'tenant', :'ws', :'ch', 'visitor-' || g, 'Visitor ' || g FROM bench_ids;
INSERT INTO conversations (id, tenant_id, workspace_id, channel_id, contact_id, assistant_id,
                           last_message_at, last_inbound_at, last_message_preview, unread_count)
    SELECT conv, :'tenant', :'ws', :'ch', contact, :'asst', now(), now(), 'When will my order ship?', 1
    FROM bench_ids;
INSERT INTO messages (id, tenant_id, conversation_id, channel_id, direction, sender_type, type, content,
                      status, provider_message_id, correlation_id)
    SELECT msg, :'tenant', conv, :'ch', 'inbound', 'customer', 'text',
           'Hello! When will my order ship? Order number ' || g, 'received', 'bench-' || g, 'bench-' || g
    FROM bench_ids;
COMMIT;
EOF
psql_super -c "VACUUM ANALYZE" -c CHECKPOINT >/dev/null || die "VACUUM/CHECKPOINT failed"

# The commands, as Redis protocol for redis-cli --pipe: one XADD per conversation.
psql_owner -v tenant="$TENANT" >"$TMP/ids.txt" <<'EOF' || die "reading the conversations failed"
BEGIN;
SELECT set_config('app.tenant_id', :'tenant', true) \g /dev/null
SELECT conversation_id, id, correlation_id FROM messages WHERE direction = 'inbound' ORDER BY correlation_id;
COMMIT;
EOF
awk -F'|' -v t="$TENANT" '
    function bulk(s) { return "$" length(s) "\r\n" s "\r\n" }
    NF == 3 {
        printf "*13\r\n%s%s%s", bulk("XADD"), bulk("sabia:cmd:generate"), bulk("*")
        printf "%s%s%s%s", bulk("tenant_id"), bulk(t), bulk("conversation_id"), bulk($1)
        printf "%s%s%s%s", bulk("message_id"), bulk($2), bulk("correlation_id"), bulk($3)
        printf "%s%s", bulk("attempt"), bulk("1")
    }' "$TMP/ids.txt" >"$TMP/commands.resp"
[ "$(grep -c '^XADD' "$TMP/commands.resp" | tr -d '\r')" = "$NCONV" ] ||
    die "expected $NCONV commands, made $(grep -c '^XADD' "$TMP/commands.resp")"

# ---------------------------------------------------------------- fake LLM

say "starting the fake LLM (latency ${DELAY_MS} ms)"
FAKE_LLM_PORT=0 FAKE_LLM_DELAY_MS=$DELAY_MS FAKE_LLM_RECORD=0 \
    FAKE_LLM_MAX_REQUESTS=$((TARGET_IN_FLIGHT * 4 > 65535 ? 65535 : TARGET_IN_FLIGHT * 4)) \
    "$FAKE" >"$TMP/fake.log" 2>&1 &
FAKE_PID=$!
PIDS+=("$FAKE_PID")
FAKE_PORT=
for _ in $(seq 1 100); do
    FAKE_PORT=$(sed -n 's/^sabia-fake-llm listening on .*:\([0-9]*\)$/\1/p' "$TMP/fake.log")
    [ -n "$FAKE_PORT" ] && break
    kill -0 "$FAKE_PID" 2>/dev/null || break
    sleep 0.05
done
[ -n "$FAKE_PORT" ] || die "the fake LLM did not start: $(cat "$TMP/fake.log")"
LLM_URL=http://127.0.0.1:$FAKE_PORT/v1

# ---------------------------------------------------------------- helpers

# cpu_snapshot PROCESSOR_PID -> "processor postgres redis fake machine ns"
cpu_snapshot() {
    # shellcheck disable=SC2046 # pg_pids is a list of numbers: split it
    echo "$(ticks "$1") $(ticks $(pg_pids)) $(ticks "$(cat "$TMP/redis/redis.pid")") $(ticks "$FAKE_PID") $(machine_ticks) $(date +%s%N)"
}
# cpu_report BEFORE AFTER -> cores each used over the interval
cpu_report() {
    awk -v b="$1" -v a="$2" -v hz="$(getconf CLK_TCK)" -v n="$(nproc)" 'BEGIN {
        split(b, x, " "); split(a, y, " "); s = (y[6] - x[6]) / 1e9;
        for (i = 1; i <= 5; i++) c[i] = (y[i] - x[i]) / hz / s;
        o = c[5] - c[1] - c[2] - c[3] - c[4];
        printf "processor %.2f, PostgreSQL %.2f, Redis %.2f, fake LLM %.2f, other %.2f; machine %.2f of %d%s\n",
            c[1], c[2], c[3], c[4], o, c[5], n, (o > 0.25 ? "  (WARNING: other processes were busy)" : "") }'
}
json_num() { sed -n "s/.*\"$2\":\\([-0-9.e+]*\\).*/\\1/p" <<<"$1"; }
verdict() { if [ "$1" = 1 ]; then echo "MET"; else echo "NOT MET"; fi; }
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- (a) ceiling

say "(a) ceiling: the libs/llm engine alone, $TARGET_IN_FLIGHT calls in flight, ${RUN_SECONDS}s after ${WARMUP}s"
e0=$(cpu_snapshot "$FAKE_PID")
timeout $((RUN_SECONDS + WARMUP + 90)) "$ENGINE" --url "$LLM_URL" --in-flight "$TARGET_IN_FLIGHT" \
    --seconds "$RUN_SECONDS" --warmup "$WARMUP" >"$TMP/engine.json" 2>"$TMP/engine.err" ||
    die "sabia-llm-engine failed: $(cat "$TMP/engine.err")"
e1=$(cpu_snapshot "$FAKE_PID")
CEIL=$(cat "$TMP/engine.json")
say "(a) $CEIL"
[ "$(json_num "$CEIL" completed)" -gt 0 ] || die "the fake LLM answered no call (log: $TMP/fake.log)"
# Only the fake's and the machine's columns mean something here (no processor yet).
CEIL_CPU=$(awk -v b="$e0" -v a="$e1" -v hz="$(getconf CLK_TCK)" -v n="$(nproc)" -v w=$((RUN_SECONDS + WARMUP)) 'BEGIN {
    split(b, x, " "); split(a, y, " "); s = (y[6] - x[6]) / 1e9;
    printf "fake LLM %.2f, machine %.2f of %d (engine: its cpu_seconds / %d s)\n",
        (y[4] - x[4]) / hz / s, (y[5] - x[5]) / hz / s, n, w }')

# ---------------------------------------------------------------- (b) processor

PROC_PORT=
PROC_PID=
start_processor() {
    SABIA_ENV_FILE=$ENV_FILE SABIA_PROCESSOR_PORT=$PROC_PORT SABIA_LLM_BASE_URL=$LLM_URL \
        SABIA_PROCESSOR_GENERATE_THREADS=$GEN_THREADS SABIA_PROCESSOR_COMPLETION_THREADS=$COMPLETION_THREADS \
        SABIA_PROCESSOR_SEND_THREADS=$SEND_THREADS SABIA_DB_POOL_SIZE=$DB_POOL \
        SABIA_REDIS_POOL_SIZE=$REDIS_POOL SABIA_LLM_MAX_IN_FLIGHT=$((TARGET_IN_FLIGHT * 2)) \
        SABIA_LLM_TIMEOUT_MS=60000 "$PROCESSOR" >>"$TMP/processor.log" 2>&1 &
    PROC_PID=$!
    PIDS+=("$PROC_PID")
    local _
    for _ in $(seq 1 100); do
        kill -0 "$PROC_PID" 2>/dev/null || return 1
        curl -fsS "http://127.0.0.1:$PROC_PORT/health" 2>/dev/null | grep -q '"healthy"' && return 0
        sleep 0.1
    done
    return 1
}
started=0
for _ in 1 2 3; do
    PROC_PORT=$(free_port)
    say "starting sabia-processor on $PROC_PORT ($GEN_THREADS generate, $COMPLETION_THREADS completion, $SEND_THREADS send threads; DB pool $DB_POOL, Redis pool $REDIS_POOL)"
    if start_processor; then
        started=1
        break
    fi
    grep -q 'cannot listen' "$TMP/processor.log" || break
done
[ "$started" = 1 ] || {
    tail -n 20 "$TMP/processor.log" >&2
    die "the processor did not become healthy (log above)"
}

# sample -> one line of: ms in_flight replied rss_kb hwm_kb threads lag
# llm_ok finished call_seconds_sum calls sent. in_flight is llm_in_flight (calls accepted by the engine,
# not yet completed); replied counts processor_replies_total{result="replied"};
# lag is the number of commands not read yet; llm_ok counts model calls that
# succeeded and finished the replies stored (or skipped, or failed) after
# them, so llm_ok - finished is the queue in front of the completion threads;
# the sum and count of llm_request_seconds give the calls' mean latency;
# sent counts replies delivered (processor_sends_total{result="sent"}).
sample() {
    local m lag st
    m=$(curl -fsS --max-time 2 "http://127.0.0.1:$PROC_PORT/metrics" 2>/dev/null |
        awk '$1 == "llm_in_flight" { f = $2 }
             index($1, "processor_replies_total{") == 1 && $1 ~ /result="replied"/ { r += $2 }
             index($1, "processor_replies_total{") == 1 && $1 !~ /result="retry"/ { d += $2 }
             index($1, "llm_requests_total{") == 1 && $1 ~ /result="ok"/ { k += $2 }
             index($1, "llm_request_seconds_sum") == 1 { ls += $2 }
             index($1, "llm_request_seconds_count") == 1 { lc += $2 }
             index($1, "processor_sends_total{") == 1 && $1 ~ /result="sent"/ { sn += $2 }
             END { printf "%d %d %d %d %.3f %d %d", f, r, k, d, ls, lc, sn }') || m="-1 -1 -1 -1 0 0 0"
    lag=$(rcli XINFO GROUPS sabia:cmd:generate 2>/dev/null | awk 'p { v = $0; p = 0 } $0 == "lag" { p = 1 } END { print v }')
    st=$(awk '/^VmRSS/ { r = $2 } /^VmHWM/ { h = $2 } /^Threads/ { t = $2 } END { printf "%d %d %d", r, h, t }' \
        "/proc/$PROC_PID/status" 2>/dev/null) || st="0 0 0"
    read -r mf mr mk md ls lc sn <<<"${m:--1 -1 -1 -1 0 0 0}"
    echo "$(($(date +%s%N) / 1000000)) $mf $mr $st ${lag:--1} $mk $md $ls $lc $sn"
}

IDLE_RSS=$(awk '/^VmRSS/ { print $2 }' "/proc/$PROC_PID/status")
[ "$DIAG" = 1 ] && psql_super -c "SELECT pg_stat_statements_reset()" >/dev/null
# inject_paced: writes the commands to one redis-cli --pipe in slices of
# RATE/10 every 100 ms (each slice due at start + k * 100 ms, whatever
# happened before), in the background. An XADD is 27 lines of RESP.
inject_paced() {
    local per_tick=$(((RATE + 5) / 10))
    [ "$per_tick" -ge 1 ] || per_tick=1
    split -l $((27 * per_tick)) -d -a 6 "$TMP/commands.resp" "$TMP/slice."
    mkfifo "$TMP/inject.fifo"
    rcli --pipe <"$TMP/inject.fifo" >"$TMP/pipe.log" 2>&1 &
    PIDS+=("$!")
    (
        t0=$(date +%s%N)
        k=0
        for f in "$TMP"/slice.*; do
            cat "$f"
            k=$((k + 1))
            d=$((t0 + k * 100000000 - $(date +%s%N)))
            if [ "$d" -gt 0 ]; then sleep "$((d / 1000000000)).$(printf '%09d' $((d % 1000000000)))"; fi
        done
    ) >"$TMP/inject.fifo" &
    PIDS+=("$!")
}
if [ "$RATE" = 0 ]; then
    say "(b) injecting $NCONV GenerateAIResponse commands at once (redis-cli --pipe)"
    rcli --pipe <"$TMP/commands.resp" >"$TMP/pipe.log" 2>&1 || die "redis-cli --pipe failed: $(cat "$TMP/pipe.log")"
    T0=$(($(date +%s%N) / 1000000))
    grep -q "errors: 0, replies: $NCONV" "$TMP/pipe.log" || die "injection incomplete: $(cat "$TMP/pipe.log")"
    say "(b) injected ($(tail -n 1 "$TMP/pipe.log")); sampling every ${SAMPLE_S}s"
else
    say "(b) injecting $NCONV GenerateAIResponse commands at $RATE/s (redis-cli --pipe); sampling every ${SAMPLE_S}s"
    T0=$(($(date +%s%N) / 1000000))
    inject_paced
fi

: >"$TMP/samples.txt"
WIN_START=$((T0 + WARMUP * 1000))
WIN_END=$((WIN_START + RUN_SECONDS * 1000))
c0=
c1=
PERF_PID=
while :; do
    s=$(sample)
    echo "$s" >>"$TMP/samples.txt"
    read -r now _ _ _ _ _ lag _ <<<"$s"
    if [ -z "$c0" ] && [ "$now" -ge "$WIN_START" ]; then
        c0=$(cpu_snapshot "$PROC_PID")
        x0=$(rcli XLEN sabia:cmd:generate)
        if [ "$DIAG" = 1 ]; then
            perf record -q -g -a -o "$TMP/perf.data" -- sleep "$((RUN_SECONDS < 8 ? RUN_SECONDS : 8))" \
                >"$TMP/perf.log" 2>&1 &
            PERF_PID=$!
        fi
    fi
    if [ -n "$c0" ] && { [ "$now" -ge "$WIN_END" ] || { [ "$RATE" = 0 ] && [ "$lag" = 0 ]; }; }; then
        c1=$(cpu_snapshot "$PROC_PID")
        x1=$(rcli XLEN sabia:cmd:generate)
        break
    fi
    kill -0 "$PROC_PID" 2>/dev/null || die "the processor exited (log: $TMP/processor.log)"
    [ "$now" -lt $((WIN_END + 60000)) ] || die "sampling ran away"
    sleep "$SAMPLE_S"
done
WIN_CPU=$(cpu_report "$c0" "$c1")
OFFERED=$(awk -v a="$x0" -v b="$x1" -v t0="${c0##* }" -v t1="${c1##* }" 'BEGIN { printf "%.1f", (b - a) / ((t1 - t0) / 1e9) }')
if [ "$DIAG" = 1 ]; then
    psql_super -c "SELECT calls, round(total_exec_time::numeric, 0) AS exec_ms,
                          round(total_plan_time::numeric, 0) AS plan_ms,
                          round(((total_exec_time + total_plan_time) / greatest(calls, 1))::numeric, 3) AS ms_per_call,
                          regexp_replace(left(query, 110), '\s+', ' ', 'g')
                   FROM pg_stat_statements ORDER BY total_exec_time + total_plan_time DESC LIMIT 12" \
        -F ' | ' >"$TMP/pg_stat_statements.txt" 2>&1 || true
    psql_super -c "SELECT state, coalesce(wait_event_type, '-') || ':' || coalesce(wait_event, '-'), count(*)
                   FROM pg_stat_activity WHERE datname = 'sabia' GROUP BY 1, 2 ORDER BY 3 DESC" \
        -F ' | ' >"$TMP/pg_activity.txt" 2>&1 || true
fi
# Let the calls in flight finish, for the database check and the RSS peak.
for _ in $(seq 1 $((DELAY_MS / 250 + 12))); do
    sleep 0.5
    sample >>"$TMP/samples.txt"
done
[ -n "$PERF_PID" ] && { wait "$PERF_PID" 2>/dev/null || true; }
THREADS_SEEN=$(awk '{ print $6 }' "$TMP/samples.txt" | sort -n | tail -n 1)
HWM=$(awk '/^VmHWM/ { print $2 }' "/proc/$PROC_PID/status")
CTXSW=$(cat /proc/"$PROC_PID"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { s += $2 } END { print s + 0 }')
METRICS_END=$(curl -fsS "http://127.0.0.1:$PROC_PORT/metrics" |
    grep -E '^(processor_replies_total|processor_sends_total|llm_requests_total|llm_request_seconds_(sum|count))' || true)
CALL_MEAN_MS=$(awk '$1 ~ /^llm_request_seconds_sum/ { s += $2 } $1 ~ /^llm_request_seconds_count/ { n += $2 }
    END { printf "%.0f", n ? 1000 * s / n : 0 }' <<<"$METRICS_END")

# The window: samples from WIN_START to WIN_END or the first with an empty backlog.
STATS=$(awk -v ws="$WIN_START" -v we="$WIN_END" -v burst=$((RATE == 0)) '
    $2 > peak { peak = $2 }
    $1 >= ws && !done {
        if (!started) { t0 = $1; r0 = $3; k0 = $8; s0 = $10; c0 = $11; e0 = $12; started = 1 }
        sum += $2; n++; t1 = $1; r1 = $3; k1 = $8; s1 = $10; c1 = $11; e1 = $12
        q = $8 - $9; if (q > qmax) qmax = q
        if ($1 >= we || (burst && $7 == 0)) { done = 1; lag = $7 }
    }
    END {
        secs = (t1 - t0) / 1000; rps = secs > 0 ? (r1 - r0) / secs : 0; avg = n ? sum / n : 0
        printf "%d %.1f %.1f %.2f %d %d %d %.1f %.0f %.1f\n", peak, avg, rps, secs, n, lag, qmax,
            (secs > 0 ? (k1 - k0) / secs : 0), (c1 > c0 ? 1000 * (s1 - s0) / (c1 - c0) : 0),
            (secs > 0 ? (e1 - e0) / secs : 0)
    }' "$TMP/samples.txt")
read -r PEAK_IF AVG_IF RPS WIN_SECS NSAMPLES BACKLOG_LEFT QUEUE_MAX CALLS_RPS WIN_CALL_MS SENT_RPS <<<"$STATS"
# A timeline of the run, about one line every 2 s.
TIMELINE=$(awk -v t0="$T0" -v ws="$WIN_START" -v we="$WIN_END" '
    BEGIN { print "      t(s)  in_flight  awaiting_finish  replied   sent  unread  RSS(MB)"; last = -1e9 }
    $1 - last >= 1900 {
        printf "    %6.1f %10d %16d %8d %6d %7d %8.1f%s\n", ($1 - t0) / 1000, $2, $8 - $9, $3, $12, $7, $4 / 1024,
            ($1 >= ws && $1 <= we ? "  (window)" : ""); last = $1 }' "$TMP/samples.txt")

# ---------------------------------------------------------------- database check

DB_CHECK=$(psql_owner -v tenant="$TENANT" <<'EOF'
BEGIN;
SELECT set_config('app.tenant_id', :'tenant', true) \g /dev/null
SELECT count(*) FILTER (WHERE sender_type = 'bot'),
       count(*) FILTER (WHERE sender_type = 'bot' AND status = 'sent'),
       count(*) FILTER (WHERE sender_type = 'bot' AND content LIKE 'Echo: %')
FROM messages WHERE direction = 'outbound';
COMMIT;
EOF
)
IFS='|' read -r DB_REPLIES DB_SENT DB_ECHO <<<"$DB_CHECK"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
# Warnings and errors in the processor's log, and the commonest one: a run
# where every call was refused or failed shows here first.
LOG_PROBLEMS=$(grep -cE '"level":"(warn|error)"' "$TMP/processor.log" || true)
LOG_TOP=$(grep -E '"level":"(warn|error)"' "$TMP/processor.log" |
    sed -n 's/.*"msg":"\([^"]\{0,60\}\).*/\1/p' | sed 's/[0-9a-f-]\{36\}/<id>/g' |
    sort | uniq -c | sort -rn | awk 'NR == 1 { $1 = $1; print }' || true)

# ---------------------------------------------------------------- summary

LAT_S=$(awk -v d="$DELAY_MS" 'BEGIN { printf "%.3f", d / 1000 }')
TARGET_RPS=$(awk -v k="$TARGET_IN_FLIGHT" -v l="$LAT_S" 'BEGIN { printf "%.0f", k / l }')
BOUND=$(awk -v a="$AVG_IF" -v l="$LAT_S" 'BEGIN { printf "%.1f", a / l }')
R_TARGET=$(awk -v r="$RPS" -v t="$TARGET_RPS" 'BEGIN { printf "%.3f", r / t }')
R_BOUND=$(awk -v r="$RPS" -v b="$BOUND" 'BEGIN { printf "%.3f", (b > 0 ? r / b : 0) }')
HWM_MB=$(awk -v k="$HWM" 'BEGIN { printf "%.1f", k / 1024 }')
# Calls count as in flight against the model only while they take about the
# model's latency: when they take much longer, most of them are queued in
# the processor (past SABIA_LLM_MAX_IN_FLIGHT, or waiting for its engine
# thread) and the count says nothing about concurrency at the model.
IF_OK=$(awk -v a="$AVG_IF" -v k="$TARGET_IN_FLIGHT" -v m="$WIN_CALL_MS" -v d="$DELAY_MS" \
    'BEGIN { print (a >= k && m <= 1.25 * d) ? 1 : 0 }')
IF_NOTE=
if [ "$IF_OK" = 0 ] && awk -v a="$AVG_IF" -v k="$TARGET_IN_FLIGHT" 'BEGIN { exit !(a >= k) }'; then
    IF_NOTE="  (calls took $WIN_CALL_MS ms, not ~$DELAY_MS: queued inside the processor)"
fi
RPS_OK=$(awk -v r="$R_TARGET" 'BEGIN { print (r >= 0.9) ? 1 : 0 }')
RSS_OK=$(awk -v m="$HWM_MB" 'BEGIN { print (m <= 100) ? 1 : 0 }')
CEIL_RPS=$(json_num "$CEIL" rps)

DIAG_TEXT=
if [ "$DIAG" = 1 ]; then
    DIAG_TEXT=$(
        echo "diagnostics:"
        echo "  pg_stat_statements, top statements by time since the injection (calls | exec ms | plan ms | ms per call | statement):"
        sed 's/^/    /' "$TMP/pg_stat_statements.txt"
        echo "  pg_stat_activity at the end of the window (state | wait | backends):"
        sed 's/^/    /' "$TMP/pg_activity.txt"
        if [ -s "$TMP/perf.data" ]; then
            echo "  perf, whole machine, share of samples by process:"
            perf report -i "$TMP/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null |
                awk '/^ *[0-9.]+%/ && n++ < 8 { print "    " $0 }'
            echo "  perf, PostgreSQL's hottest functions (share of all samples):"
            perf report -i "$TMP/perf.data" --no-children --comm postgres --sort dso,sym --stdio -g none \
                2>/dev/null | awk '/^ *[0-9.]+%/ && n++ < 12 { print "    " $0 }'
            echo "  perf, the processor's hottest functions, every thread (share of all samples):"
            perf report -i "$TMP/perf.data" --no-children --pid "$PROC_PID" --sort dso,sym --stdio \
                -g none 2>/dev/null | awk '/^ *[0-9.]+%/ && n++ < 25 { print "    " $0 }'
        fi
    )
fi

cat <<EOF

== Sabiá LLM concurrency benchmark, $(date -u +%FT%TZ)
machine: $(nproc) cores, Linux $(uname -r), load average before/after: $LOAD_BEFORE / $LOAD_AFTER
PostgreSQL $(psql_super -c 'SHOW server_version' | cut -d' ' -f1): fsync $(psql_super -c 'SHOW fsync'), synchronous_commit $(psql_super -c 'SHOW synchronous_commit'); fake LLM latency ${DELAY_MS} ms
processor: $PROCESSOR
           $GEN_THREADS generate, $COMPLETION_THREADS completion, $SEND_THREADS send threads; DB pool $DB_POOL, Redis pool $REDIS_POOL

(a) ceiling: libs/llm engine alone, $TARGET_IN_FLIGHT calls in flight, closed loop, ${RUN_SECONDS}s after ${WARMUP}s
    $CEIL
    $(printf '%.0f' "$CEIL_RPS") replies/s = $(awk -v r="$CEIL_RPS" -v t="$TARGET_RPS" 'BEGIN { printf "%.3f", r / t }') of $TARGET_RPS; mean latency $(json_num "$CEIL" mean_ms) ms, p99 $(json_num "$CEIL" p99_ms) ms
    CPU (cores): $CEIL_CPU
(b) one processor, $NCONV conversations $([ "$RATE" = 0 ] && echo "injected at once" || echo "offered at $RATE/s"); window of ${WIN_SECS}s ($NSAMPLES samples) from ${WARMUP}s after the injection began
    in flight (llm_in_flight): peak $PEAK_IF, mean $AVG_IF in the window
    model calls completed: $CALLS_RPS/s in the window, mean latency $WIN_CALL_MS ms (over the whole run $CALL_MEAN_MS ms)
    replies stored: $RPS/s in the window; largest queue of completed calls awaiting their finish: $QUEUE_MAX
    replies sent (widget PUBLISH): $SENT_RPS/s in the window
    commands offered in the window: $OFFERED/s; not yet read at its end: $BACKLOG_LEFT$([ "$RATE" = 0 ] || echo " (the processor keeps up when this stays near 0)")
    Little's-law bound: mean in flight / ${LAT_S} s = $BOUND/s
    RSS: idle $(awk -v k="$IDLE_RSS" 'BEGIN { printf "%.1f", k / 1024 }') MB, peak (VmHWM) $HWM_MB MB; threads $THREADS_SEEN; context switches $CTXSW
    CPU (cores): $WIN_CPU
    database afterwards: $DB_REPLIES bot replies ($DB_ECHO from the fake), $DB_SENT sent
    processor log: ${LOG_PROBLEMS:-0} warnings or errors${LOG_TOP:+ (commonest: $LOG_TOP)}
    ${METRICS_END//$'\n'/$'\n'    }
    timeline (t from the injection):
$TIMELINE
${DIAG_TEXT:+$DIAG_TEXT
}
in flight (mean) = $AVG_IF            target >= $TARGET_IN_FLIGHT:        $(verdict "$IF_OK")$IF_NOTE
replies/s / $TARGET_RPS = $R_TARGET          target >= 0.9:        $(verdict "$RPS_OK")
replies/s / bound = $R_BOUND          (bound = mean in flight / latency)
peak RSS = $HWM_MB MB               target <= 100 MB:     $(verdict "$RSS_OK")
EOF
