# shellcheck shell=bash
# scripts/stack.d/observability.sh: the local stack's workers and its
# observability (Prometheus, one prometheus-postgres-exporter per PostgreSQL
# node, RabbitMQ's rabbitmq_prometheus plugin, a textfile endpoint for the
# reconciler's result). Sourced by scripts/stack (and by tests beside a
# running stack); defines:
#
#   obs_up        start Prometheus and the exporters; wait until Prometheus is ready
#   obs_down      stop them (data stays in .run/obs)
#   obs_env       print export lines (PAYQ_PROM_URL, PAYQ_PROM_TEXTFILE_DIR)
#   obs_status    one line per process; returns 3 unless all run and answer
#   workers_up M  make workers 1..M run (payq-worker, metrics on 127.0.0.1)
#   workers_down  SIGTERM every worker (each acks its batch and exits), wait
#
# Inputs (environment; defaults follow scripts/stack's port scheme):
#   PAYQ_STACK_PORT_OFFSET  shifts every port below (default 0)
#   PAYQ_PG_PRIMARY         superuser conninfo of the primary (creates the
#                           payq_monitor role); PAYQ_AMQP_URL, PAYQ_PG_CONNINFO
#                           for workers. Taken from `scripts/stack env` when unset.
#   OBS_PG_NODES            "NAME:PORT ..." PostgreSQL nodes (default: each node under .run/pg)
#   OBS_RMQ_PROM_TARGETS    "HOST:PORT ..." rabbitmq_prometheus of each broker
#                           node (default 127.0.0.1:17691)
#   OBS_INTAKE_TARGETS      "HOST:PORT ..." payq-producer serve replicas (default none)
#   PAYQ_BUILD_DIR          where payq-worker is (default build/)
# Ports (+ offset): Prometheus 17690, rabbitmq_prometheus 17691, postgres
# exporters 17692.. (one per node, in OBS_PG_NODES order), reconciler
# textfile 17696, worker i's metrics 17720+i (i = 1..19).

OBS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OBS_RUN=${RUN:-$OBS_ROOT/.run}
OBS_DIR=$OBS_RUN/obs
OBS_OFF=${PAYQ_STACK_PORT_OFFSET:-0}
OBS_PROM_PORT=$((17690 + OBS_OFF))
OBS_RMQ_PROM_PORT=$((17691 + OBS_OFF))
OBS_PGX_PORT0=$((17692 + OBS_OFF))
OBS_TEXTFILE_PORT=$((17696 + OBS_OFF))
OBS_WORKER_PORT0=$((17720 + OBS_OFF))
OBS_WORKERS_MAX=19

_obs_log() { printf '[obs] %s\n' "$*" >&2; }
_obs_die() { _obs_log "ERROR: $*"; return 1; }

# _obs_alive PID: the process exists, is no zombie, and was started by
# _obs_spawn for this .run (PAYQ_OBS_RUN in its environment), so a recycled
# pid or another stack's process is never signalled.
_obs_alive() {
    local st
    [[ ${1:-} =~ ^[0-9]+$ ]] && read -r st 2>/dev/null <"/proc/$1/stat" && st=${st##*) } &&
        [ "${st:0:1}" != Z ] && tr '\0' '\n' 2>/dev/null <"/proc/$1/environ" | grep -qxF -- "PAYQ_OBS_RUN=$OBS_RUN"
}

# _obs_pid NAME: prints the pid of process NAME if alive.
_obs_pid() {
    local p
    p=$(cat "$OBS_DIR/pid/$1.pid" 2>/dev/null) || return 1
    _obs_alive "$p" && echo "$p"
}

# _obs_spawn NAME CMD...: starts CMD in its own session, output to
# $OBS_DIR/log/NAME.log; records its pid. Closes fd 9 (scripts/stack's lock).
_obs_spawn() {
    local name=$1
    shift
    PAYQ_OBS_RUN=$OBS_RUN setsid "$@" >>"$OBS_DIR/log/$name.log" 2>&1 </dev/null 9>&- &
    echo $! >"$OBS_DIR/pid/$name.pid"
}

# _obs_stop NAME SECONDS: SIGTERM, wait, then SIGKILL.
_obs_stop() {
    local pid i
    pid=$(_obs_pid "$1") || { rm -f "$OBS_DIR/pid/$1.pid"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < $2 * 10; i++)); do
        _obs_alive "$pid" || break
        sleep 0.1
    done
    if _obs_alive "$pid"; then
        _obs_log "$1 (pid $pid) still running after $2 s: kill -9"
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$OBS_DIR/pid/$1.pid"
}

_obs_http_ok() { curl -sf -o /dev/null --max-time 2 "$1"; }

_obs_need_env() {
    if [ -z "${PAYQ_PG_PRIMARY:-}" ] || [ -z "${PAYQ_AMQP_URL:-}" ]; then
        eval "$("$OBS_ROOT/scripts/stack" env)"
    fi
}

_obs_layout() {
    install -d -m 755 "$OBS_DIR" "$OBS_DIR/log" "$OBS_DIR/pid" "$OBS_DIR/textfile" \
        "$OBS_DIR/prometheus" "$OBS_DIR/prometheus/targets"
}

# A password for payq_monitor, generated once ($OBS_DIR/secrets.env, mode 600).
_obs_monitor_password() {
    local f=$OBS_DIR/secrets.env
    if [ ! -s "$f" ]; then
        (umask 077; echo "PAYQ_PG_MONITOR_PASSWORD=$(openssl rand -hex 16)" >"$f.tmp" && mv "$f.tmp" "$f")
    fi
    sed -n 's/^PAYQ_PG_MONITOR_PASSWORD=//p' "$f"
}

# The exporters' login: member of pg_monitor (reads pg_stat_replication and
# the statistics views), nothing else. Created or its password reset on the
# primary; replication carries it to the standbys.
_obs_monitor_role() {
    local pw=$1
    psql "$PAYQ_PG_PRIMARY" -X -q -At -v ON_ERROR_STOP=1 -v pw="$pw" >/dev/null <<'SQL'
SELECT format('CREATE ROLE payq_monitor LOGIN PASSWORD %L IN ROLE pg_monitor', :'pw')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'payq_monitor') \gexec
SELECT format('ALTER ROLE payq_monitor LOGIN PASSWORD %L', :'pw') \gexec
SQL
}

# _obs_json_targets FILE JOBLABEL "HOST:PORT[=k=v,...] ...": file_sd JSON.
_obs_targets() {
    local file=$1 t addr labels first=1
    shift
    {
        printf '['
        for t in "$@"; do
            addr=${t%%=*}
            labels='{}'
            if [[ $t == *=* ]]; then
                labels=$(jq -cn --arg kv "${t#*=}" '$kv | split(",") | map(split("=") | {(.[0]): .[1]}) | add')
            fi
            [ $first = 1 ] || printf ','
            first=0
            jq -cn --arg a "$addr" --argjson l "$labels" '{targets: [$a], labels: $l}'
        done
        printf ']\n'
    } >"$file.tmp"
    mv "$file.tmp" "$file"
}

# rabbitmq_prometheus on the stack's node. Until scripts/stack writes it into
# enabled_plugins and rabbitmq.conf (prometheus.tcp.ip/port), enable it on the
# running node with its port set first (the plugin's default 15692 would clash
# between stacks).
_obs_rmq_prometheus() {
    local ctl=$OBS_RUN/bin
    _obs_http_ok "http://127.0.0.1:$OBS_RMQ_PROM_PORT/metrics" && return 0
    [ -x "$ctl/rabbitmqctl" ] || { _obs_die "no $ctl/rabbitmqctl: is the stack up?"; return 1; }
    _obs_log "rabbitmq: enabling rabbitmq_prometheus on 127.0.0.1:$OBS_RMQ_PROM_PORT"
    "$ctl/rabbitmqctl" eval "application:load(rabbitmq_prometheus),
        application:set_env(rabbitmq_prometheus, tcp_config, [{port, $OBS_RMQ_PROM_PORT}, {ip, \"127.0.0.1\"}])." >/dev/null
    "$ctl/rabbitmq-plugins" enable --online rabbitmq_prometheus >/dev/null
    local i
    for ((i = 0; i < 300; i++)); do
        _obs_http_ok "http://127.0.0.1:$OBS_RMQ_PROM_PORT/metrics" && return 0
        sleep 0.1
    done
    _obs_die "rabbitmq_prometheus does not answer on 127.0.0.1:$OBS_RMQ_PROM_PORT"
}

# Every PostgreSQL node of the stack (a, b and c unless it runs two), so the
# leader is watched whichever node Patroni promoted.
_obs_pg_nodes() {
    if [ -n "${OBS_PG_NODES:-}" ]; then echo "$OBS_PG_NODES"; return; fi
    local n i=0 out=''
    for n in a b c; do
        if [ "$n" = a ] || [ -d "$OBS_RUN/pg/$n" ]; then out+="$n:$((17432 + OBS_OFF + i)) "; fi
        i=$((i + 1))
    done
    echo "${out% }"
}

_obs_exporters_up() {
    local pw=$1 i=0 nd name port targets=()
    for nd in $(_obs_pg_nodes); do
        name=${nd%%:*} port=${nd##*:}
        if ! _obs_pid "pgexp-$name" >/dev/null; then
            DATA_SOURCE_NAME="host=127.0.0.1 port=$port dbname=payq user=payq_monitor password=$pw sslmode=disable connect_timeout=3" \
                _obs_spawn "pgexp-$name" prometheus-postgres-exporter \
                --web.listen-address="127.0.0.1:$((OBS_PGX_PORT0 + i))" \
                --extend.query-path="$OBS_DIR/prometheus/postgres-exporter-queries.yaml" \
                --log.level=warn
        fi
        targets+=("127.0.0.1:$((OBS_PGX_PORT0 + i))=node=$name")
        i=$((i + 1))
    done
    _obs_targets "$OBS_DIR/prometheus/targets/postgres.json" "${targets[@]}"
}

obs_up() {
    _obs_need_env
    _obs_layout
    local pw p i
    pw=$(_obs_monitor_password)
    _obs_monitor_role "$pw" || { _obs_die "cannot create role payq_monitor on the primary"; return 1; }
    _obs_rmq_prometheus || return 1
    cp "$OBS_ROOT/deploy/prometheus/prometheus.yml" "$OBS_ROOT/deploy/prometheus/payq.rules.yml" \
        "$OBS_ROOT/deploy/prometheus/postgres-exporter-queries.yaml" "$OBS_DIR/prometheus/"
    # shellcheck disable=SC2086
    _obs_targets "$OBS_DIR/prometheus/targets/rabbitmq.json" \
        ${OBS_RMQ_PROM_TARGETS:-127.0.0.1:$OBS_RMQ_PROM_PORT}
    # shellcheck disable=SC2086
    _obs_targets "$OBS_DIR/prometheus/targets/intake.json" ${OBS_INTAKE_TARGETS:-}
    _obs_targets "$OBS_DIR/prometheus/targets/recon.json" "127.0.0.1:$OBS_TEXTFILE_PORT"
    [ -f "$OBS_DIR/prometheus/targets/workers.json" ] || _obs_workers_targets
    _obs_exporters_up "$pw"
    _obs_pid textfile >/dev/null ||
        _obs_spawn textfile python3 "$OBS_ROOT/scripts/stack.d/textfile_http.py" "$OBS_DIR/textfile" \
            "127.0.0.1:$OBS_TEXTFILE_PORT"
    if p=$(_obs_pid prometheus); then
        curl -sf -X POST -o /dev/null --max-time 5 "http://127.0.0.1:$OBS_PROM_PORT/-/reload" || kill -HUP "$p"
    else
        _obs_spawn prometheus prometheus --config.file="$OBS_DIR/prometheus/prometheus.yml" \
            --storage.tsdb.path="$OBS_DIR/prometheus/data" --storage.tsdb.retention.time=7d \
            --web.listen-address="127.0.0.1:$OBS_PROM_PORT" --web.enable-lifecycle --log.level=warn
    fi
    for ((i = 0; i < 600; i++)); do
        _obs_http_ok "http://127.0.0.1:$OBS_PROM_PORT/-/ready" && break
        _obs_pid prometheus >/dev/null || break
        sleep 0.1
    done
    _obs_http_ok "http://127.0.0.1:$OBS_PROM_PORT/-/ready" ||
        { tail -n 20 "$OBS_DIR/log/prometheus.log" >&2; _obs_die "Prometheus is not ready (log $OBS_DIR/log/prometheus.log)"; return 1; }
    _obs_log "Prometheus ready on http://127.0.0.1:$OBS_PROM_PORT ($(_obs_pg_nodes | wc -w) postgres exporters, rules deploy/prometheus/payq.rules.yml)"
}

obs_down() {
    local f
    [ -d "$OBS_DIR/pid" ] || return 0
    for f in "$OBS_DIR"/pid/*.pid; do
        [ -e "$f" ] || continue
        f=$(basename "$f" .pid)
        [[ $f == worker-* ]] && continue # workers_down
        _obs_stop "$f" 30
    done
    _obs_log "observability stopped (data kept in $OBS_DIR)"
}

obs_env() {
    printf "export PAYQ_PROM_URL='http://127.0.0.1:%s'\n" "$OBS_PROM_PORT"
    printf "export PAYQ_PROM_TEXTFILE_DIR='%s'\n" "$OBS_DIR/textfile"
}

obs_status() {
    local rc=0 f name pid up
    for f in "$OBS_DIR"/pid/*.pid; do
        [ -e "$f" ] || continue
        name=$(basename "$f" .pid)
        if pid=$(_obs_pid "$name"); then echo "obs  $name  up  pid $pid"; else echo "obs  $name  down"; rc=3; fi
    done
    if _obs_http_ok "http://127.0.0.1:$OBS_PROM_PORT/-/ready"; then
        up=$(curl -sf --max-time 5 "http://127.0.0.1:$OBS_PROM_PORT/api/v1/targets?state=active" |
            jq -r '[.data.activeTargets[] | .health] | "\(map(select(. == "up")) | length) of \(length) targets up"')
        echo "prometheus  http://127.0.0.1:$OBS_PROM_PORT  $up"
    else
        echo "prometheus  down (127.0.0.1:$OBS_PROM_PORT)"
        rc=3
    fi
    return $rc
}

# ---------------------------------------------------------------- workers

_obs_workers_targets() {
    local i targets=()
    for ((i = 1; i <= OBS_WORKERS_MAX; i++)); do
        _obs_pid "worker-$i" >/dev/null && targets+=("127.0.0.1:$((OBS_WORKER_PORT0 + i))=worker=$i")
    done
    _obs_targets "$OBS_DIR/prometheus/targets/workers.json" "${targets[@]}"
}

# workers_up M: workers 1..M run (those already running are kept), each with
# --metrics-listen 127.0.0.1:17720+i(+offset), logs in .run/obs/log/worker-i.log.
# Waits until each answers /readyz (consuming).
workers_up() {
    local m=${1:-}
    if ! [[ $m =~ ^[0-9]+$ ]] || [ "$m" -lt 1 ] || [ "$m" -gt $OBS_WORKERS_MAX ]; then
        _obs_die "workers_up: M must be 1..$OBS_WORKERS_MAX (got '$m')"
        return 1
    fi
    _obs_need_env
    _obs_layout
    local bin=${PAYQ_BUILD_DIR:-$OBS_ROOT/build}/payq-worker i j port
    [ -x "$bin" ] || { _obs_die "no $bin (scripts/setup builds it)"; return 1; }
    for ((i = 1; i <= m; i++)); do
        _obs_pid "worker-$i" >/dev/null && continue
        port=$((OBS_WORKER_PORT0 + i))
        _obs_spawn "worker-$i" "$bin" --config "$OBS_ROOT/config/payq.yaml" \
            --metrics-listen "127.0.0.1:$port"
    done
    _obs_workers_targets
    for ((i = 1; i <= m; i++)); do
        port=$((OBS_WORKER_PORT0 + i))
        for ((j = 0; j < 300; j++)); do
            _obs_http_ok "http://127.0.0.1:$port/readyz" && break
            _obs_pid "worker-$i" >/dev/null || break
            sleep 0.1
        done
        _obs_http_ok "http://127.0.0.1:$port/readyz" ||
            { tail -n 5 "$OBS_DIR/log/worker-$i.log" >&2; _obs_die "worker $i is not consuming (log $OBS_DIR/log/worker-$i.log)"; return 1; }
    done
    _obs_log "$m worker(s) consuming; metrics on 127.0.0.1:$((OBS_WORKER_PORT0 + 1))..$((OBS_WORKER_PORT0 + m))"
}

# workers_down: SIGTERM to every worker at once (each stops consuming,
# finishes and acks its batch, exits 0), then waits up to 60 s each.
workers_down() {
    local f waits=()
    [ -d "$OBS_DIR/pid" ] || return 0
    for f in "$OBS_DIR"/pid/worker-*.pid; do
        [ -e "$f" ] || continue
        _obs_stop "$(basename "$f" .pid)" 60 &
        waits+=($!)
    done
    # Only these: a bare `wait` would also wait for the caller's other
    # children (services this shell started).
    [ ${#waits[@]} = 0 ] || wait "${waits[@]}"
    [ ! -d "$OBS_DIR/prometheus/targets" ] || _obs_workers_targets
}
