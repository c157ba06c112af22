# lib.sh - functions behind ./sabia. Sourced, never run directly.
# Expects ROOT (the checkout) to be set by the caller.

DATA=${SABIA_DATA_DIR:-$ROOT/.data}
SERVICES="gateway processor webapp public-api"
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
APT_PACKAGES="build-essential cmake pkg-config libwebsockets-dev libpq-dev libhiredis-dev
libjansson-dev libcurl4-openssl-dev libssl-dev libjwt-dev libcriterion-dev postgresql-15
postgresql-client-15 redis-server curl ca-certificates"

say() { printf 'sabia: %s\n' "$*"; }
die() {
    printf 'sabia: error: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------- packages

ensure_packages() {
    local missing=()
    local p
    for p in $APT_PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        die "missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
    fi
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The postgresql package starts a system cluster on 5432; Sabiá runs its own.
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet postgresql 2>/dev/null; then
        systemctl stop postgresql || true
    fi
}

# ---------------------------------------------------------------- build

# build_dir TYPE -> prints the build directory for release|asan
build_dir() { printf '%s/build/%s\n' "$ROOT" "$1"; }

sabia_build() {
    local type=$1 dir cmtype testing
    dir=$(build_dir "$type")
    case "$type" in
        release) cmtype=Release testing=OFF ;;
        asan) cmtype=Asan testing=ON ;;
        *) die "unknown build type $type" ;;
    esac
    cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE="$cmtype" -DBUILD_TESTING="$testing" >/dev/null
    cmake --build "$dir" -j"$(nproc)" >"$dir/build.log" 2>&1 || {
        tail -n 60 "$dir/build.log" >&2
        die "build failed (full log: $dir/build.log)"
    }
}

# ---------------------------------------------------------------- ports

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
    local p i
    for i in $(seq 1 200); do
        p=$((20000 + RANDOM % 40000))
        port_in_use "$p" || {
            echo "$p"
            return 0
        }
    done
    die "no free port found"
}

# ---------------------------------------------------------------- PostgreSQL

# Runs a command as the OS user that owns PostgreSQL's data (postgres when we
# are root: the server refuses to run as root).
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

random_secret() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# pg_init DIR PORT: creates a cluster in DIR (if absent) listening on 127.0.0.1:PORT
# and on a Unix socket in DIR. Local socket access is trust, but the socket
# directory is private to the data owner; TCP needs scram-sha-256 passwords.
pg_init() {
    local dir=$1 port=$2
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
    chmod 700 "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
        as_pg "$PG_BIN/initdb" -D "$dir" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
            -E UTF8 --locale=C.UTF-8 >"$dir/../initdb.log" 2>&1 || {
            cat "$dir/../initdb.log" >&2
            die "initdb failed"
        }
    fi
    as_pg tee "$dir/postgresql.auto.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
unix_socket_permissions = 0700
password_encryption = 'scram-sha-256'
max_connections = 200
shared_buffers = 256MB
logging_collector = off
EOF
}

pg_start() {
    local dir=$1 extra=${2:-}
    as_pg "$PG_BIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 ${extra:+-o "$extra"} start >/dev/null ||
        {
            tail -n 20 "$dir/server.log" >&2
            die "PostgreSQL did not start"
        }
}

pg_stop() {
    local dir=$1
    [ -f "$dir/postmaster.pid" ] || return 0
    as_pg "$PG_BIN/pg_ctl" -D "$dir" -m fast -w -t 60 stop >/dev/null 2>&1 || true
}

# pg_super DIR PORT [psql args]: psql as the superuser over the private socket.
pg_super() {
    local dir=$1 port=$2
    shift 2
    as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres "$@"
}

# pg_bootstrap DIR PORT DB OWNER_PW APP_PW: roles and database, idempotent.
# sabia_owner owns the schema and runs migrations; sabia_app is what services
# use: it owns nothing and cannot bypass Row-Level Security.
pg_bootstrap() {
    local dir=$1 port=$2 db=$3 owner_pw=$4 app_pw=$5
    pg_super "$dir" "$port" -d postgres <<EOF
SELECT 'CREATE ROLE sabia_owner LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sabia_owner')
\gexec
SELECT 'CREATE ROLE sabia_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sabia_app')
\gexec
ALTER ROLE sabia_owner PASSWORD '$owner_pw' NOBYPASSRLS;
ALTER ROLE sabia_app PASSWORD '$app_pw' NOBYPASSRLS;
SELECT 'CREATE DATABASE $db OWNER sabia_owner' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$db')
\gexec
REVOKE ALL ON DATABASE $db FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE $db TO sabia_app;
EOF
    pg_super "$dir" "$port" -d "$db" <<EOF
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
ALTER SCHEMA public OWNER TO sabia_owner;
GRANT USAGE ON SCHEMA public TO sabia_app;
EOF
}

# ---------------------------------------------------------------- Redis

# redis_start DIR PORT PASSWORD [AOF yes|no]
redis_start() {
    local dir=$1 port=$2 pw=$3 aof=${4:-yes}
    mkdir -p "$dir"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize yes \
        --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --appendonly "$aof" \
        --save '' --requirepass "$pw" >/dev/null
    local i
    # Up to 20 s: a loaded machine can be slow to schedule it.
    for i in $(seq 1 400); do
        redis-cli -p "$port" -a "$pw" --no-auth-warning ping 2>/dev/null | grep -q PONG && return 0
        sleep 0.05
    done
    tail -n 20 "$dir/redis.log" >&2
    die "Redis did not start on port $port"
}

redis_stop() {
    local dir=$1 pid
    [ -f "$dir/redis.pid" ] || return 0
    pid=$(cat "$dir/redis.pid")
    kill "$pid" 2>/dev/null || true
    local i
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    rm -f "$dir/redis.pid"
}

# ---------------------------------------------------------------- local system

# load_env: the generated settings of the local system (ports, passwords, keys).
load_env() {
    [ -f "$DATA/sabia.env" ] || die "not set up yet: run ./sabia up"
    set -a
    # shellcheck disable=SC1091
    . "$DATA/sabia.env"
    set +a
}

# service_env APP_PW OWNER_PW PG_PORT REDIS_PW REDIS_PORT -> the lines every
# service reads: where PostgreSQL (as sabia_app and sabia_owner) and Redis
# are on this machine, and a fresh master key.
service_env() {
    cat <<EOF
SABIA_DATABASE_URL=postgresql://sabia_app:$1@127.0.0.1:$3/sabia
SABIA_DATABASE_OWNER_URL=postgresql://sabia_owner:$2@127.0.0.1:$3/sabia
SABIA_REDIS_URL=redis://:$4@127.0.0.1:$5/0
SABIA_MASTER_KEY=$(random_secret)
EOF
}

# write_env: generated once; later runs keep passwords and keys.
write_env() {
    [ -f "$DATA/sabia.env" ] && return 0
    local pgport=${SABIA_PG_PORT:-5432} rport=${SABIA_REDIS_PORT:-6379}
    # A system PostgreSQL or Redis may own the standard ports: take free ones then.
    port_in_use "$pgport" && pgport=$(free_port)
    port_in_use "$rport" && rport=$(free_port)
    local owner_pw app_pw redis_pw
    owner_pw=$(random_secret) app_pw=$(random_secret) redis_pw=$(random_secret)
    umask 077
    cat >"$DATA/sabia.env" <<EOF
# Generated by ./sabia up on $(date -u +%FT%TZ). Secrets: keep this file private.
SABIA_PG_PORT=$pgport
SABIA_REDIS_PORT=$rport
SABIA_PG_OWNER_PASSWORD=$owner_pw
SABIA_PG_APP_PASSWORD=$app_pw
SABIA_REDIS_PASSWORD=$redis_pw
$(service_env "$app_pw" "$owner_pw" "$pgport" "$redis_pw" "$rport")
EOF
    umask 022
}

service_bin() { printf '%s/apps/%s/sabia-%s\n' "$(build_dir release)" "$1" "$1"; }

start_service() {
    local svc=$1 bin pidf
    bin=$(service_bin "$svc")
    pidf="$DATA/run/$svc.pid"
    if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
        say "$svc already running (pid $(cat "$pidf"))"
        return 0
    fi
    mkdir -p "$DATA/run" "$DATA/logs"
    SABIA_ENV_FILE="$DATA/sabia.env" nohup "$bin" >>"$DATA/logs/$svc.log" 2>&1 &
    echo $! >"$pidf"
}

stop_service() {
    local svc=$1 pidf pid i
    pidf="$DATA/run/$svc.pid"
    [ -f "$pidf" ] || return 0
    pid=$(cat "$pidf")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$pidf"
}

service_port() {
    case "$1" in
        webapp) echo "${SABIA_WEBAPP_PORT:-3000}" ;;
        gateway) echo "${SABIA_GATEWAY_PORT:-3001}" ;;
        processor) echo "${SABIA_PROCESSOR_PORT:-3002}" ;;
        public-api) echo "${SABIA_PUBLIC_API_PORT:-3003}" ;;
    esac
}

wait_healthy() {
    local svc=$1 port i
    port=$(service_port "$svc")
    for i in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    tail -n 20 "$DATA/logs/$svc.log" >&2 || true
    die "$svc is not healthy on port $port (log: $DATA/logs/$svc.log)"
}

sabia_up() {
    ensure_packages
    mkdir -p "$DATA"
    write_env
    load_env
    say "building (release)"
    sabia_build release
    local ctl
    ctl="$(build_dir release)/apps/sabiactl/sabiactl"
    if [ ! -f "$DATA/pg/postmaster.pid" ]; then
        port_in_use "$SABIA_PG_PORT" && die "port $SABIA_PG_PORT is taken; set SABIA_PG_PORT in $DATA/sabia.env"
        pg_init "$DATA/pg" "$SABIA_PG_PORT"
        pg_start "$DATA/pg"
    fi
    pg_bootstrap "$DATA/pg" "$SABIA_PG_PORT" sabia "$SABIA_PG_OWNER_PASSWORD" "$SABIA_PG_APP_PASSWORD"
    if [ ! -f "$DATA/redis/redis.pid" ] || ! kill -0 "$(cat "$DATA/redis/redis.pid")" 2>/dev/null; then
        port_in_use "$SABIA_REDIS_PORT" && die "port $SABIA_REDIS_PORT is taken; set SABIA_REDIS_PORT in $DATA/sabia.env"
        redis_start "$DATA/redis" "$SABIA_REDIS_PORT" "$SABIA_REDIS_PASSWORD" yes
    fi
    SABIA_ENV_FILE="$DATA/sabia.env" "$ctl" migrate --dir "$ROOT/migrations"
    SABIA_ENV_FILE="$DATA/sabia.env" "$ctl" seed-demo --login-file "$DATA/demo-login.json" >/dev/null
    local svc
    for svc in $SERVICES; do start_service "$svc"; done
    for svc in $SERVICES; do wait_healthy "$svc"; done
    say "up. Services:"
    for svc in $SERVICES; do
        printf '  %-11s http://127.0.0.1:%s  (health: /health, metrics: /metrics)\n' "$svc" "$(service_port "$svc")"
    done
    say "demo login: $(cat "$DATA/demo-login.json")"
    say "try the assistant: ./sabia demo 'When will my order arrive?'"
    say "logs: $DATA/logs/  stop with: ./sabia down"
}

sabia_down() {
    local svc
    for svc in $SERVICES; do stop_service "$svc"; done
    [ -d "$DATA/redis" ] && redis_stop "$DATA/redis"
    [ -d "$DATA/pg" ] && pg_stop "$DATA/pg"
    say "stopped"
}

sabia_status() {
    local svc pidf
    [ -f "$DATA/sabia.env" ] && load_env
    for svc in $SERVICES; do
        pidf="$DATA/run/$svc.pid"
        if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
            printf '%-11s running  pid %-7s %s\n' "$svc" "$(cat "$pidf")" \
                "$(curl -s "http://127.0.0.1:$(service_port "$svc")/health" || echo unreachable)"
        else
            printf '%-11s stopped\n' "$svc"
        fi
    done
}

sabia_psql() {
    load_env
    PGPASSWORD=$SABIA_PG_OWNER_PASSWORD exec psql -h 127.0.0.1 -p "$SABIA_PG_PORT" -U sabia_owner -d sabia "$@"
}

sabia_ctl() {
    load_env
    local ctl
    ctl="$(build_dir release)/apps/sabiactl/sabiactl"
    [ -x "$ctl" ] || sabia_build release
    SABIA_ENV_FILE="$DATA/sabia.env" exec "$ctl" "$@"
}

# json_field NAME: the string value of "NAME" in the JSON on stdin (flat objects only).
json_field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }

# demo_reply TENANT VISITOR: the newest bot reply to that web visitor, or nothing.
demo_reply() {
    local sql="SELECT m.content FROM messages m JOIN conversations c ON c.tenant_id = m.tenant_id
      AND c.id = m.conversation_id JOIN contacts ct ON ct.tenant_id = c.tenant_id
      AND ct.id = c.contact_id WHERE ct.external_id = '$2' AND m.sender_type = 'bot'
      ORDER BY m.created_at DESC LIMIT 1"
    PGPASSWORD=$SABIA_PG_OWNER_PASSWORD psql -h 127.0.0.1 -p "$SABIA_PG_PORT" -U sabia_owner -d sabia \
        -XAtq -v ON_ERROR_STOP=1 -c "SELECT set_config('app.tenant_id', '$1', false)" -c "$sql" |
        sed 1d
}

# sabia_demo [question]: a website visitor asks the demo assistant through the
# real path (visitor token, gateway webhook, processor, the retrieval-only
# provider unless a model key is configured) and the reply is printed.
sabia_demo() {
    load_env
    local question=${1:-"When will my order arrive?"} login tenant ws channel token visitor mid body ctl
    login=$(cat "$DATA/demo-login.json" 2>/dev/null) || die "run ./sabia up first"
    tenant=$(json_field tenant_id <<<"$login")
    ws=$(json_field workspace_id <<<"$login")
    channel=$(json_field channel_id <<<"$login")
    visitor="demo_$(random_secret | head -c 12)"
    mid="m_$(random_secret | head -c 12)"
    ctl="$(build_dir release)/apps/sabiactl/sabiactl"
    token=$(SABIA_ENV_FILE="$DATA/sabia.env" "$ctl" channel visitor-token --tenant "$tenant" \
        --id "$channel" --visitor "$visitor" | json_field token)
    [ -n "$token" ] || die "could not issue a visitor token"
    say "visitor: $question"
    question=$(printf '%s' "$question" | sed 's/\\/\\\\/g; s/"/\\"/g')
    body="{\"visitor_id\":\"$visitor\",\"message_id\":\"$mid\",\"type\":\"text\",\"text\":\"$question\"}"
    curl -fsS -X POST -H "X-Sabia-Visitor-Token: $token" -H 'Content-Type: application/json' \
        --data-binary "$body" \
        "http://127.0.0.1:$(service_port gateway)/v1/webhook/web/$tenant/$ws/$channel" >/dev/null ||
        die "the gateway refused the message (see $DATA/logs/gateway.log)"
    local i reply=""
    for i in $(seq 1 150); do
        reply=$(demo_reply "$tenant" "$visitor")
        [ -n "$reply" ] && break
        sleep 0.1
    done
    [ -n "$reply" ] || die "no reply yet (see $DATA/logs/processor.log)"
    say "assistant: $reply"
}

sabia_logs() {
    local svc=${1:-gateway}
    exec tail -F "$DATA/logs/$svc.log"
}

# ---------------------------------------------------------------- tests

# sabia_test [ctest args]: sanitizer build, throw-away PostgreSQL and Redis on
# free ports under a temporary directory, migrations, then ctest. Cleans up.
sabia_test() {
    ensure_packages
    say "building (asan + tests)"
    sabia_build asan
    local tmp
    tmp=$(mktemp -d /tmp/sabia-test.XXXXXX)
    chmod 755 "$tmp"
    TEST_TMP=$tmp
    trap 'sabia_test_cleanup' EXIT INT TERM
    local pgport rport owner_pw app_pw redis_pw
    pgport=$(free_port)
    rport=$(free_port)
    while [ "$rport" = "$pgport" ]; do rport=$(free_port); done
    owner_pw=$(random_secret) app_pw=$(random_secret) redis_pw=$(random_secret)
    pg_init "$tmp/pg" "$pgport"
    # Throw-away data: durability is not what these tests measure.
    as_pg tee -a "$tmp/pg/postgresql.auto.conf" >/dev/null <<EOF
fsync = off
full_page_writes = off
EOF
    pg_start "$tmp/pg"
    pg_bootstrap "$tmp/pg" "$pgport" sabia "$owner_pw" "$app_pw"
    # The owner may create throw-away databases for tests of the migrations runner.
    pg_super "$tmp/pg" "$pgport" -d postgres -c "ALTER ROLE sabia_owner CREATEDB"
    redis_start "$tmp/redis" "$rport" "$redis_pw" no

    export SABIA_DATABASE_URL="postgresql://sabia_app:$app_pw@127.0.0.1:$pgport/sabia"
    export SABIA_DATABASE_OWNER_URL="postgresql://sabia_owner:$owner_pw@127.0.0.1:$pgport/sabia"
    export SABIA_REDIS_URL="redis://:$redis_pw@127.0.0.1:$rport/0"
    export SABIA_TEST_PG_HOST=127.0.0.1 SABIA_TEST_PG_PORT=$pgport
    export SABIA_TEST_PG_OWNER_PASSWORD=$owner_pw SABIA_TEST_PG_APP_PASSWORD=$app_pw
    export SABIA_TEST_REDIS_PORT=$rport SABIA_TEST_REDIS_PASSWORD=$redis_pw
    export SABIA_TEST_TMP=$tmp
    export SABIA_MASTER_KEY
    SABIA_MASTER_KEY=$(random_secret)
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

    local dir ctl
    dir=$(build_dir asan)
    ctl="$dir/apps/sabiactl/sabiactl"
    "$ctl" migrate --dir "$ROOT/migrations" >"$tmp/migrate.log" || {
        cat "$tmp/migrate.log" >&2
        die "migrations failed"
    }

    say "running tests"
    local rc=0
    ctest --test-dir "$dir" --output-on-failure -j2 "$@" >"$tmp/ctest.log" 2>&1 || rc=$?
    cat "$tmp/ctest.log"
    # ctest closes with "N% tests passed, F tests failed out of T".
    local total failed
    total=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$tmp/ctest.log" | tail -n 1)
    failed=$(sed -n 's/.* \([0-9]*\) tests failed out of.*/\1/p' "$tmp/ctest.log" | tail -n 1)
    if [ -z "$total" ]; then
        echo "tests: 0 passed, 1 failed"
        return 1
    fi
    echo "tests: $((total - failed)) passed, $failed failed"
    return "$rc"
}

sabia_test_cleanup() {
    [ -n "${TEST_TMP:-}" ] || return 0
    pg_stop "$TEST_TMP/pg"
    redis_stop "$TEST_TMP/redis"
    # Redis instances that tests started themselves record their pid files here.
    local f
    for f in "$TEST_TMP"/*/redis.pid; do
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    done
    rm -rf "$TEST_TMP"
    TEST_TMP=
}
