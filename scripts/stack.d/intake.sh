# shellcheck shell=bash
# scripts/stack.d/intake.sh: the local stack's HTTP intake: N `payq-producer
# serve` replicas behind HAProxy (Debian's haproxy 2.6). Sourced by
# scripts/stack; defines:
#
#   intake_up N      replicas 1..N run (more are stopped), HAProxy in front of
#                    them on the API port; waits until HAProxy sees N up
#   intake_down      stop HAProxy, then every replica (SIGTERM: each drains)
#   intake_kill I    SIGKILL replica I (a lost machine); returns once it is gone
#   intake_stop I    SIGTERM replica I and wait until it has really exited
#   intake_start I   start replica I again; wait until HAProxy sends it traffic
#   intake_env       print export PAYQ_API_URL (HAProxy), PAYQ_API_STATS_URL (its
#                    statistics page; append ;csv)
#   intake_status    one line per process and HAProxy's view of each replica;
#                    returns 3 unless all run and HAProxy sees them up
#
# Ports (+ PAYQ_STACK_PORT_OFFSET): HAProxy on the API port 17080, replica I
# on 17080 + I (I = 1..8), HAProxy's statistics (CSV) on 17089. Replicas
# read .run/intake/payq.yaml (config/payq.yaml with what a replica behind a
# balancer needs) and the stack's environment (broker, database, token).
#
# HAProxy's choices (README, "Intake replicas behind HAProxy"):
#   - health check GET /readyz every 500 ms, 2 failures take a replica out,
#     2 successes put it back: a draining replica (its /readyz answers 503 at
#     SIGTERM) leaves rotation within about 1 s, well inside its
#     producer.http_drain_ms (2 s), before it stops listening;
#   - retries 3 with `retry-on conn-failure` and `option redispatch 1`: only
#     a request whose connection could not be made is retried, on another
#     replica. A request that reached a replica is never replayed by HAProxy
#     (no empty-response, response-timeout or 5xx retries): its outcome is
#     unknown (the replica may have published it), so the client gets the
#     error and retries with the same ids, which the ledger deduplicates.

INTAKE_OFF=${PAYQ_STACK_PORT_OFFSET:-0}
INTAKE_API_PORT=$((17080 + INTAKE_OFF))
INTAKE_STATS_PORT=$((17089 + INTAKE_OFF))
INTAKE_MAX=8
INTAKE_DIR=${RUN:?}/intake
# Each replica's HTTP threads (PAYQ_STACK_INTAKE_THREADS, default 64, the
# most producer.http_threads allows): a request waits for its pack's confirm
# in its thread, so these bound the requests in flight per replica (and with
# them the size of the shared packs): 64 carried 1.9-2.2 times the requests
# of 32 at 64 connections here. HAProxy holds at most this many requests per
# replica and queues the rest.
INTAKE_THREADS=${PAYQ_STACK_INTAKE_THREADS:-64}

_intake_log() { printf '[intake] %s\n' "$*" >&2; }
_intake_port() { echo $((INTAKE_API_PORT + $1)); }

# _intake_alive PID NAME: the process runs (no zombie) and was started by
# _intake_spawn for this .run as NAME: a recycled pid or another stack's
# process is never signalled.
_intake_alive() {
    local st
    [[ ${1:-} =~ ^[0-9]+$ ]] && read -r st 2>/dev/null <"/proc/$1/stat" && st=${st##*) } &&
        [ "${st:0:1}" != Z ] &&
        tr '\0' '\n' 2>/dev/null <"/proc/$1/environ" | grep -qxF -- "PAYQ_INTAKE_PROC=$INTAKE_DIR/$2"
}

# _intake_pid NAME: its pid, if alive.
_intake_pid() {
    local p
    p=$(cat "$INTAKE_DIR/$1.pid" 2>/dev/null) || return 1
    _intake_alive "$p" "$1" && echo "$p"
}

# _intake_spawn NAME CMD...: CMD in its own session, output to NAME.log,
# pid to NAME.pid. Closes fd 9 (scripts/stack's lock).
_intake_spawn() {
    local name=$1
    shift
    PAYQ_INTAKE_PROC=$INTAKE_DIR/$name setsid "$@" >>"$INTAKE_DIR/$name.log" 2>&1 </dev/null 9>&- &
    echo $! >"$INTAKE_DIR/$name.pid"
}

# _intake_wait_gone PID NAME SECONDS: 0 once it has exited (a zombie counts
# as exited: PID 1 here may reap late).
_intake_wait_gone() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        _intake_alive "$1" "$2" || return 0
        sleep 0.1
    done
    ! _intake_alive "$1" "$2"
}

_intake_check_index() {
    if ! [[ ${1:-} =~ ^[1-9]$ ]] || [ "$1" -gt "$INTAKE_MAX" ]; then
        _intake_log "ERROR: replica must be 1..$INTAKE_MAX, got '${1:-}'"
        return 1
    fi
}

# The replicas' configuration: the defaults, with no per-address limit
# (every connection comes from HAProxy) and INTAKE_THREADS threads.
_intake_write_config() {
    local src=${ROOT:?}/config/payq.yaml out=$INTAKE_DIR/payq.yaml
    sed -e "s/^  http_threads: 4\$/  http_threads: $INTAKE_THREADS/" \
        -e 's/^  http_max_per_ip: 512$/  http_max_per_ip: 0/' "$src" >"$out.tmp"
    if ! grep -qx "  http_threads: $INTAKE_THREADS" "$out.tmp" || ! grep -qx '  http_max_per_ip: 0' "$out.tmp"; then
        _intake_log "ERROR: could not set http_threads and http_max_per_ip from $src"
        return 1
    fi
    mv "$out.tmp" "$out"
}

# _intake_write_haproxy N: haproxy.cfg for replicas 1..N.
_intake_write_haproxy() {
    local n=$1 i
    {
        cat <<EOF
# HAProxy in front of the payq intake replicas (written by scripts/stack).
global
    maxconn 8000
    nbthread 2
    log stdout format raw local0 info

defaults
    mode http
    log global
    option httplog
    # Only errors, retries and redispatches are logged, not every request.
    option dontlog-normal
    timeout connect 2s
    timeout client 60s
    # A replica answers within its broker stall limit (about 12 s at worst).
    timeout server 30s
    timeout queue 10s
    # /readyz opens a broker connection and asks the database: on this loaded
    # machine it has taken 400 ms. A check is only failed by a refused
    # connection, a 503 (draining) or 3 s of silence, never by that slowness.
    timeout check 3s
    timeout http-keep-alive 60s
    # Retry only what never reached a replica (see scripts/stack.d/intake.sh).
    retries 3
    retry-on conn-failure
    option redispatch 1

frontend payq_api
    bind 127.0.0.1:$INTAKE_API_PORT
    default_backend payq_intake

backend payq_intake
    # roundrobin, not leastconn: a dead replica has the fewest connections
    # (it refuses them), so leastconn sent every redispatched retry back to it.
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    # A refused connection takes a replica out at once (observe layer4),
    # without waiting for two failed checks; two passed checks bring it back.
    default-server inter 500 fastinter 250 downinter 500 fall 2 rise 2 maxconn $INTAKE_THREADS observe layer4 error-limit 1 on-error mark-down
EOF
        for ((i = 1; i <= n; i++)); do
            printf '    server r%d 127.0.0.1:%d check\n' "$i" "$(_intake_port "$i")"
        done
        cat <<EOF

listen payq_stats
    bind 127.0.0.1:$INTAKE_STATS_PORT
    stats enable
    stats uri /stats
EOF
    } >"$INTAKE_DIR/haproxy.cfg.tmp"
    haproxy -c -q -f "$INTAKE_DIR/haproxy.cfg.tmp" || { _intake_log "ERROR: haproxy refuses the configuration it was given"; return 1; }
    mv "$INTAKE_DIR/haproxy.cfg.tmp" "$INTAKE_DIR/haproxy.cfg"
}

# _intake_server_state I: HAProxy's status of replica I (UP, DOWN, "UP 1/2",
# MAINT...), or "unknown" when its statistics do not answer.
_intake_server_state() {
    curl -s --max-time 2 "http://127.0.0.1:$INTAKE_STATS_PORT/stats;csv" 2>/dev/null |
        awk -F, -v s="r$1" '$1 == "payq_intake" && $2 == s { print $18; found = 1 } END { if (!found) print "unknown" }'
}

# _intake_wait_state I STATE SECONDS: until HAProxy reports replica I in STATE.
_intake_wait_state() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        [ "$(_intake_server_state "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

_intake_start_replica() {
    local i=$1 bin=${PAYQ_BUILD_DIR:-$ROOT/build}/payq-producer
    [ -x "$bin" ] || { _intake_log "ERROR: no $bin (scripts/setup builds it)"; return 1; }
    _intake_pid "replica-$i" >/dev/null && return 0
    _intake_spawn "replica-$i" "$bin" serve --config "$INTAKE_DIR/payq.yaml" \
        --listen "127.0.0.1:$(_intake_port "$i")"
}

_intake_haproxy_up() {
    local n=$1 p
    _intake_write_haproxy "$n" || return 1
    if p=$(_intake_pid haproxy); then
        if cmp -s "$INTAKE_DIR/haproxy.cfg" "$INTAKE_DIR/haproxy.cfg.running"; then return 0; fi
        _intake_log "haproxy: its configuration changed: restarting it"
        _intake_stop_proc haproxy 10
    fi
    cp "$INTAKE_DIR/haproxy.cfg" "$INTAKE_DIR/haproxy.cfg.running"
    _intake_spawn haproxy haproxy -db -f "$INTAKE_DIR/haproxy.cfg.running"
}

# _intake_stop_proc NAME SECONDS: SIGTERM, wait until it exited, else SIGKILL.
_intake_stop_proc() {
    local pid
    pid=$(_intake_pid "$1") || { rm -f "$INTAKE_DIR/$1.pid"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    if ! _intake_wait_gone "$pid" "$1" "$2"; then
        _intake_log "$1 (pid $pid) still running after $2 s: kill -9"
        kill -9 "$pid" 2>/dev/null || true
        _intake_wait_gone "$pid" "$1" 5 || { _intake_log "ERROR: $1 (pid $pid) does not die"; return 1; }
    fi
    rm -f "$INTAKE_DIR/$1.pid"
}

# intake_up N: needs the stack's environment (PAYQ_AMQP_URL, ...) exported.
intake_up() {
    local n=$1 i
    if ! [[ $n =~ ^[0-9]+$ ]] || [ "$n" -gt "$INTAKE_MAX" ]; then
        _intake_log "ERROR: --intake wants 0..$INTAKE_MAX replicas, got '$n'"
        return 1
    fi
    install -d -m 755 "$INTAKE_DIR"
    for ((i = n + 1; i <= INTAKE_MAX; i++)); do
        _intake_pid "replica-$i" >/dev/null && { _intake_log "replica $i is beyond --intake $n: stopping it"; _intake_stop_proc "replica-$i" 60; }
    done
    if [ "$n" = 0 ]; then
        _intake_stop_proc haproxy 10
        return 0
    fi
    _intake_write_config || return 1
    for ((i = 1; i <= n; i++)); do _intake_start_replica "$i" || return 1; done
    _intake_haproxy_up "$n" || return 1
    for ((i = 1; i <= n; i++)); do
        if ! _intake_wait_state "$i" UP 60; then
            tail -n 5 "$INTAKE_DIR/replica-$i.log" "$INTAKE_DIR/haproxy.log" >&2 2>/dev/null
            _intake_log "ERROR: HAProxy does not see replica $i up (logs in $INTAKE_DIR)"
            return 1
        fi
    done
    _intake_log "$n intake replica(s) on 127.0.0.1:$(_intake_port 1)..$(_intake_port "$n") behind HAProxy on http://127.0.0.1:$INTAKE_API_PORT"
}

intake_down() {
    local f waits=()
    [ -d "$INTAKE_DIR" ] || return 0
    _intake_stop_proc haproxy 10
    for f in "$INTAKE_DIR"/replica-*.pid; do
        [ -e "$f" ] || continue
        _intake_stop_proc "$(basename "$f" .pid)" 60 &
        waits+=($!)
    done
    [ ${#waits[@]} = 0 ] || wait "${waits[@]}"
}

intake_kill() {
    _intake_check_index "${1:-}" || return 2
    local pid
    pid=$(_intake_pid "replica-$1") || { _intake_log "ERROR: replica $1 is not running"; return 1; }
    kill -9 "$pid" 2>/dev/null || true
    _intake_wait_gone "$pid" "replica-$1" 10 || { _intake_log "ERROR: replica $1 (pid $pid) does not die"; return 1; }
    printf 'intake: killed replica %s (pid %s)\n' "$1" "$pid"
}

# intake_stop I: SIGTERM; the replica drains (producer.http_drain_ms), answers
# what it holds and exits. Returns once the process is gone.
intake_stop() {
    _intake_check_index "${1:-}" || return 2
    local pid t0=$SECONDS
    pid=$(_intake_pid "replica-$1") || { printf 'intake: replica %s is not running\n' "$1"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    _intake_wait_gone "$pid" "replica-$1" 60 || { _intake_log "ERROR: replica $1 (pid $pid) still runs 60 s after SIGTERM"; return 1; }
    rm -f "$INTAKE_DIR/replica-$1.pid"
    printf 'intake: stopped replica %s (pid %s) in %d s\n' "$1" "$pid" $((SECONDS - t0))
}

# intake_start I: needs the stack's environment exported.
intake_start() {
    _intake_check_index "${1:-}" || return 2
    if ! grep -q "^    server r$1 " "$INTAKE_DIR/haproxy.cfg.running" 2>/dev/null; then
        _intake_log "ERROR: replica $1 is not behind HAProxy (scripts/stack up --intake N)"
        return 1
    fi
    _intake_start_replica "$1" || return 1
    _intake_wait_state "$1" UP 60 || { tail -n 5 "$INTAKE_DIR/replica-$1.log" >&2; _intake_log "ERROR: HAProxy does not see replica $1 up"; return 1; }
    printf 'intake: replica %s (pid %s) started, in rotation\n' "$1" "$(_intake_pid "replica-$1")"
}

intake_env() {
    printf "export PAYQ_API_URL='http://127.0.0.1:%s'\n" "$INTAKE_API_PORT"
    printf "export PAYQ_API_STATS_URL='http://127.0.0.1:%s/stats'\n" "$INTAKE_STATS_PORT"
}

intake_status() {
    local n=$1 i pid rc=0 st
    if pid=$(_intake_pid haproxy); then echo "haproxy   up    pid $pid  http://127.0.0.1:$INTAKE_API_PORT  stats http://127.0.0.1:$INTAKE_STATS_PORT/stats"
    else echo "haproxy   down  (127.0.0.1:$INTAKE_API_PORT)"; rc=3; fi
    for ((i = 1; i <= n; i++)); do
        st=$(_intake_server_state "$i")
        if pid=$(_intake_pid "replica-$i"); then echo "intake    up    replica $i  pid $pid  127.0.0.1:$(_intake_port "$i")  haproxy: $st"
        else echo "intake    down  replica $i  127.0.0.1:$(_intake_port "$i")  haproxy: $st"; rc=3; fi
        [ "$st" = UP ] || rc=3
    done
    return $rc
}
