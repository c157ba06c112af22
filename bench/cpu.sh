# cpu.sh - CPU accounting shared by the benchmarks (sourced; needs $TMP with
# the throw-away cluster in $TMP/pg).

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
