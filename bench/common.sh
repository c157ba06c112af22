# common.sh - what the benchmarks share (sourced): messages, CPU accounting,
# the services' environment file, and removing the throw-away PostgreSQL and
# Redis. Needs $TMP, with the cluster
# in $TMP/pg and Redis in $TMP/redis.

# Messages of the benchmarks (after scripts/lib.sh: these replace its own).
say() { printf 'bench: %s\n' "$*" >&2; }
die() {
    printf 'bench: error: %s\n' "$*" >&2
    exit 1
}

# ticks PID... -> CPU time (clock ticks) the processes have used so far
ticks() {
    local pid sum=0 t
    for pid in "$@"; do
        t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat" 2>/dev/null) || t=0
        sum=$((sum + ${t:-0}))
    done
    echo "$sum"
}
# pg_pids -> the postmaster and its children, space-separated
pg_pids() {
    local pm
    pm=$(head -n 1 "$TMP/pg/postmaster.pid")
    echo "$pm" "$(pgrep -P "$pm" | tr '\n' ' ')"
}
# machine_ticks -> CPU time the whole machine has used (user, system, interrupts)
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }

# bench_env -> writes $ENV_FILE ($TMP/bench.env, private) for the services and
# sabiactl: the throw-away PostgreSQL ($PG_PORT, $OWNER_PW, $APP_PW) and Redis
# ($REDIS_PORT, $REDIS_PW), a fresh master key; then applies the migrations
# with $CTL.
bench_env() {
    ENV_FILE=$TMP/bench.env
    umask 077
    service_env "$APP_PW" "$OWNER_PW" "$PG_PORT" "$REDIS_PW" "$REDIS_PORT" >"$ENV_FILE"
    umask 022
    SABIA_ENV_FILE="$ENV_FILE" "$CTL" migrate --dir "$ROOT/migrations" >"$TMP/migrate.log" 2>&1 || {
        cat "$TMP/migrate.log" >&2
        die "migrations failed"
    }
}

# drop_tmp -> stops the throw-away PostgreSQL and Redis and removes $TMP
# (kept with BENCH_KEEP=1, for the logs)
drop_tmp() {
    [ -n "$TMP" ] || return 0
    redis_stop "$TMP/redis"
    pg_stop "$TMP/pg"
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        say "kept $TMP"
    else
        rm -rf "$TMP"
    fi
}
