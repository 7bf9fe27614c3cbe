#!/usr/bin/env bash
# Runs RabbitMQ, Redis and PostgreSQL from Debian's packages as background processes bound to
# 127.0.0.1, with their data under .var/ (no systemd needed).
#
# Usage: scripts/servers.sh start|stop|status|restart|kill [rabbitmq|redis|postgres ...]
#        scripts/servers.sh vhost add|delete <name>     (RabbitMQ virtual hosts for isolated tests;
#                                                         through the management API on 127.0.0.1:15672)
#        scripts/servers.sh rabbitmqctl <arguments>     (rabbitmqctl against this node)
#   No server named = all three. Every command is idempotent: starting a running server does
#   nothing, stopping a stopped one does nothing. `start` returns only once each server answers.
#   `restart redis` while tests use the other servers is fine (tests do exactly that).
#   `kill` is a crash: SIGKILL to the server's whole process group, no clean shutdown (the fault
#   suite uses it on its own private servers).
#
#   A second, private set of servers (the fault suite runs one per round) takes other ports and
#   another data folder: CYCLORAMA_VAR=<dir> CYCLORAMA_RABBITMQ_PORT=5673 CYCLORAMA_REDIS_PORT=6380
#   CYCLORAMA_POSTGRES_PORT=5434 CYCLORAMA_RABBITMQ_NODE=faults1@localhost scripts/servers.sh start
#
#   One node of a RabbitMQ cluster (scripts/cluster.sh runs three): CYCLORAMA_SECRETS_DIR shares the
#   credentials, CYCLORAMA_RABBITMQ_COOKIE_FILE the Erlang cookie, and CYCLORAMA_AMQP_ADDRESSES
#   (host:port,host:port,…) goes into the URLs written for the services.
#
#   Credentials (created on first start, kept in .var/secrets/, mode 600; docs/security.md):
#   RabbitMQ has no guest: `cyclorama-admin` (for these scripts, tests and operators) and one user
#   per service with only the rights its role needs; Redis asks a password; PostgreSQL takes
#   scram-sha-256 passwords over TCP (the services log in as `cyclorama`, not a superuser). Each
#   service's URLs are written to .var/secrets/<what>-<service>.url for scripts/services.sh.
#
#   server     address           data                 log
#   rabbitmq   127.0.0.1:5672    .var/rabbitmq        .var/log/rabbitmq/
#   redis      127.0.0.1:6379    .var/redis           .var/log/redis.log
#   postgres   127.0.0.1:5433    .var/postgres/data   .var/log/postgres.log
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/broker-roles.sh"

ALL_SERVERS=(rabbitmq redis postgres)

# MARK: RabbitMQ
# Runs as root through the real scripts in /usr/lib/rabbitmq/bin (the /usr/sbin wrappers switch
# user). Its own HOME holds the Erlang cookie that the server and rabbitmqctl share.

RABBITMQ_PORT="${CYCLORAMA_RABBITMQ_PORT:-5672}"
RABBITMQ_NODE="${CYCLORAMA_RABBITMQ_NODE:-rabbit@localhost}"
RABBITMQ_BIN=/usr/lib/rabbitmq/bin
# RabbitMQ's management API (HTTP, 127.0.0.1 only, as cyclorama-admin): virtual hosts are added and
# deleted through it in milliseconds, where each rabbitmqctl call boots an Erlang VM (~1 s and
# ~0.7 s of CPU; the tests add and delete one per system they start). Empty: no management plugin
# (the fault suite's private servers and the cluster's nodes), rabbitmqctl does it all.
RABBITMQ_MANAGEMENT_PORT="${CYCLORAMA_RABBITMQ_MANAGEMENT_PORT-$((RABBITMQ_PORT + 10000))}"
RABBITMQ_BASE="$CYCLORAMA_VAR/rabbitmq"
RABBITMQ_PIDFILE="$RUN_DIR/rabbitmq.pid"

rabbitmq_env() {
    export HOME="$RABBITMQ_BASE/home"
    export RABBITMQ_NODENAME="$RABBITMQ_NODE"
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT="$RABBITMQ_PORT"
    export ERL_EPMD_ADDRESS=127.0.0.1
    export RABBITMQ_MNESIA_BASE="$RABBITMQ_BASE/mnesia"
    export RABBITMQ_LOG_BASE="$LOG_DIR/rabbitmq"
    export RABBITMQ_PID_FILE="$RABBITMQ_PIDFILE"
    export RABBITMQ_ENABLED_PLUGINS_FILE="$RABBITMQ_BASE/enabled_plugins"
    export RABBITMQ_CONFIG_FILE="$RABBITMQ_BASE/rabbitmq.conf"
    export RABBITMQ_CONF_ENV_FILE="$RABBITMQ_BASE/rabbitmq-env.conf"
    export ERL_CRASH_DUMP="$LOG_DIR/rabbitmq/erl_crash.dump"
    # Erlang distribution (port 20000 + the AMQP port, and the CLI tools' own ports) on loopback only.
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

rabbitmqctl() { (rabbitmq_env && "$RABBITMQ_BIN/rabbitmqctl" "$@"); }

# The node's Erlang VM, told from any other by the home folder it was started with.
rabbitmq_pid() {
    local pid
    pid="$(live_pid_from "$RABBITMQ_PIDFILE" beam.smp)" && pid_has_folder_option "$pid" -home "$RABBITMQ_BASE/home" || return 1
    echo "$pid"
}

rabbitmq_prepare() {
    mkdir -p "$RABBITMQ_BASE/home" "$RABBITMQ_BASE/mnesia" "$LOG_DIR/rabbitmq"
    # The nodes of a cluster must share the Erlang cookie.
    if [[ -n "${CYCLORAMA_RABBITMQ_COOKIE_FILE:-}" ]] && ! cmp -s "$CYCLORAMA_RABBITMQ_COOKIE_FILE" "$RABBITMQ_BASE/home/.erlang.cookie"; then
        install -m 400 "$CYCLORAMA_RABBITMQ_COOKIE_FILE" "$RABBITMQ_BASE/home/.erlang.cookie"
    fi
    : >"$RABBITMQ_BASE/rabbitmq-env.conf"   # ignore /etc/rabbitmq/rabbitmq-env.conf
    cat >"$RABBITMQ_BASE/rabbitmq.conf" <<EOF
# Written by scripts/servers.sh on every start; edit that script, not this file.
listeners.tcp.default = 127.0.0.1:$RABBITMQ_PORT
loopback_users.guest = true
log.file.level = info
# A quorum queue's leader goes to the node with the fewest leaders, not to the node of the client
# that declared it: in a cluster the queues' work is spread over the nodes (docs/messaging.md).
queue_leader_locator = balanced
EOF
    if [[ -n "$RABBITMQ_MANAGEMENT_PORT" ]]; then
        echo '[rabbitmq_management].' >"$RABBITMQ_BASE/enabled_plugins"
        # The API only (definitions, virtual hosts): no statistics are collected for it.
        cat >>"$RABBITMQ_BASE/rabbitmq.conf" <<EOF
management.tcp.ip = 127.0.0.1
management.tcp.port = $RABBITMQ_MANAGEMENT_PORT
management.disable_stats = true
management_agent.disable_metrics_collector = true
EOF
    else
        echo '[].' >"$RABBITMQ_BASE/enabled_plugins"
    fi
}

# Calls the management API: rabbitmq_api METHOD PATH [JSON-FILE]. Fails (so the caller falls back
# on rabbitmqctl) when the API is off, not up yet, or the admin user does not exist yet. The
# password goes to curl on its standard input, never on a command line.
rabbitmq_api() {
    local method="$1" path="$2" file="${3:-}" code
    [[ -n "$RABBITMQ_MANAGEMENT_PORT" && -f "$SECRETS_DIR/rabbitmq-cyclorama-admin.password" ]] || return 1
    # -q: no ~/.curlrc; --noproxy: never through an http_proxy, straight to our own loopback port.
    local args=(-q -sS -o /dev/null -w '%{http_code}' --max-time 30 --noproxy '*' -X "$method" -K -)
    [[ -n "$file" ]] && args+=(-H 'content-type: application/json' --data-binary "@$file")
    code="$(printf 'user = "cyclorama-admin:%s"\n' "$(cat "$SECRETS_DIR/rabbitmq-cyclorama-admin.password")" |
        curl "${args[@]}" "http://127.0.0.1:$RABBITMQ_MANAGEMENT_PORT$path" 2>/dev/null)" || return 1
    [[ "$code" == 2?? ]]
}

# Imports definitions (stdin) for vhost $1. The broker applies them before the command returns;
# were it ever later, clients retry connecting (and one rabbitmqctl call fewer matters: each boots
# an Erlang VM, seconds when many tests add virtual hosts at once).
rabbitmq_import() {
    local vhost="$1" file
    file="$(mktemp "$RUN_DIR/rabbitmq-definitions.XXXXXX")"
    cat >"$file"
    if rabbitmq_api POST /api/definitions "$file"; then
        rm -f "$file"
        return 0
    fi
    if ! rabbitmqctl -q import_definitions "$file" >>"$LOG_DIR/rabbitmq/credentials.log" 2>&1; then
        rm -f "$file"
        warn "rabbitmq: importing the users and rights of $vhost failed (see $LOG_DIR/rabbitmq/credentials.log)"
        return 1
    fi
    rm -f "$file"
}

# The users, their passwords (created once, kept in .var/secrets) and their rights on "/"; guest
# removed; each service's URL written for scripts/services.sh.
rabbitmq_credentials() {
    local role
    ensure_secret "$SECRETS_DIR/rabbitmq-cyclorama-admin.password" hex "the RabbitMQ admin password"
    for role in "${BROKER_ROLES[@]}"; do
        ensure_secret "$SECRETS_DIR/rabbitmq-$role.password" hex "the RabbitMQ password of $role"
    done
    (umask 077 && rabbitmq_definitions / users | rabbitmq_import /) || return 1
    # Once per node database, marked inside it (each rabbitmqctl call boots an Erlang VM: seconds
    # when many start at once; a database made afresh gets its guest deleted again).
    local marker="$RABBITMQ_BASE/mnesia/$RABBITMQ_NODE/.cyclorama-guest-deleted"
    if [[ ! -f "$marker" ]]; then
        rabbitmqctl -q delete_user guest >/dev/null 2>&1 || true
        [[ -d "$(dirname "$marker")" ]] && : >"$marker"
    fi
    for role in cyclorama-admin "${BROKER_ROLES[@]}"; do
        write_secret "$SECRETS_DIR/amqp-$role.url" \
            "amqp://$role:$(cat "$SECRETS_DIR/rabbitmq-$role.password")@${CYCLORAMA_AMQP_ADDRESSES:-127.0.0.1:$RABBITMQ_PORT}/"
    done
}

rabbitmq_start() {
    if rabbitmq_pid >/dev/null; then
        rabbitmq_wait_ready || return 1
        rabbitmq_credentials || return 1
        ok "rabbitmq already running (pid $(rabbitmq_pid), 127.0.0.1:$RABBITMQ_PORT)"
        return 0
    fi
    if port_open "$RABBITMQ_PORT"; then
        die "rabbitmq: port $RABBITMQ_PORT is taken by another process (pid $(port_owner "$RABBITMQ_PORT")); stop it first"
    fi
    if [[ -n "$RABBITMQ_MANAGEMENT_PORT" ]] && port_open "$RABBITMQ_MANAGEMENT_PORT"; then
        die "rabbitmq: its management port $RABBITMQ_MANAGEMENT_PORT is taken by another process (pid $(port_owner "$RABBITMQ_MANAGEMENT_PORT")); stop it first, or set CYCLORAMA_RABBITMQ_MANAGEMENT_PORT (empty: no management API)"
    fi
    rabbitmq_prepare
    rm -f "$RABBITMQ_PIDFILE"
    say "starting rabbitmq on 127.0.0.1:$RABBITMQ_PORT"
    (
        close_locks
        rabbitmq_env
        cd "$RABBITMQ_BASE"
        setsid nohup "$RABBITMQ_BIN/rabbitmq-server" >>"$LOG_DIR/rabbitmq/startup.log" 2>&1 </dev/null &
    )
    rabbitmq_wait_ready || return 1
    rabbitmq_credentials || return 1
    ok "rabbitmq ready (pid $(rabbitmq_pid), 127.0.0.1:$RABBITMQ_PORT)"
}

rabbitmq_wait_ready() {
    # `rabbitmqctl wait` waits for the pid file and then for the app to run; `await_startup`
    # fails while the node is not yet registered with epmd.
    if ! rabbitmqctl wait --timeout 120 "$RABBITMQ_PIDFILE" >>"$LOG_DIR/rabbitmq/wait.log" 2>&1; then
        warn "rabbitmq did not become ready"
        show_log_tail "$LOG_DIR/rabbitmq/startup.log"
        show_log_tail "$LOG_DIR/rabbitmq/$RABBITMQ_NODE.log"
        return 1
    fi
    wait_until "rabbitmq port $RABBITMQ_PORT" 30 port_open "$RABBITMQ_PORT"
}

rabbitmq_stop() {
    local pid
    if ! pid="$(rabbitmq_pid)"; then
        ok "rabbitmq not running"
        return 0
    fi
    say "stopping rabbitmq (pid $pid)"
    rabbitmqctl shutdown >>"$LOG_DIR/rabbitmq/stop.log" 2>&1 || warn "rabbitmqctl shutdown failed; sending SIGTERM"
    stop_pid rabbitmq "$pid" 30
    epmd_kill
    rm -f "$RABBITMQ_PIDFILE"
    ok "rabbitmq stopped"
}

# A crash: SIGKILL to the Erlang VM and its port programs (never epmd, which other nodes share).
rabbitmq_kill() {
    local pid
    pid="$(rabbitmq_pid)" || { ok "rabbitmq not running"; return 0; }
    say "killing rabbitmq (pid $pid, SIGKILL)"
    pkill -KILL -P "$pid" 2>/dev/null || true
    kill -KILL "$pid" 2>/dev/null || true
    wait_until "rabbitmq exit" 30 bash -c "! kill -0 $pid 2>/dev/null || grep -q '^[^ ]* [^ ]* Z' /proc/$pid/stat"
    rm -f "$RABBITMQ_PIDFILE"
    ok "rabbitmq killed"
}

epmd_kill() {
    (rabbitmq_env && epmd -kill >/dev/null 2>&1) || true
}

rabbitmq_status() {
    local pid
    if pid="$(rabbitmq_pid)" && port_open "$RABBITMQ_PORT"; then
        status_line rabbitmq running "$pid" "amqp://127.0.0.1:$RABBITMQ_PORT/ (users: ${SECRETS_DIR#"$CYCLORAMA_ROOT"/})"
    elif [[ -n "${pid:-}" ]]; then
        status_line rabbitmq starting "$pid" "amqp://127.0.0.1:$RABBITMQ_PORT/"
    else
        status_line rabbitmq stopped - "amqp://127.0.0.1:$RABBITMQ_PORT/"
        return 1
    fi
}

# MARK: Redis
# Append-only file on and synced on every write, so a restart — even a crash — keeps the keys
# (dispatch records, concurrency leases) like a production Redis must: a lease lost in a crash
# would let one job too many run at the backend (docs/reliability.md, I4).

REDIS_PORT="${CYCLORAMA_REDIS_PORT:-6379}"
REDIS_DIR="$CYCLORAMA_VAR/redis"
REDIS_PIDFILE="$RUN_DIR/redis.pid"
REDIS_PASSWORD_FILE="$SECRETS_DIR/redis.password"

# The password reaches redis-cli through its environment and the server through its config file
# (mode 600), never a command line that `ps` shows.
redis_cli() { REDISCLI_AUTH="$(cat "$REDIS_PASSWORD_FILE" 2>/dev/null)" redis-cli --no-auth-warning -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
# Ours works in its data folder (--dir), which tells it from any other redis-server.
redis_pid() {
    local pid
    pid="$(live_pid_from "$REDIS_PIDFILE" redis-server)" || return 1
    [[ "$(readlink -f "/proc/$pid/cwd" 2>/dev/null)" == "$(realpath -m -- "$REDIS_DIR")" ]] || return 1
    echo "$pid"
}
redis_ping() { [[ "$(redis_cli ping 2>/dev/null)" == PONG ]]; }

redis_credentials() {
    ensure_secret "$REDIS_PASSWORD_FILE" hex "the Redis password"
    write_secret "$SECRETS_DIR/redis.url" "redis://:$(cat "$REDIS_PASSWORD_FILE")@127.0.0.1:$REDIS_PORT/0"
}

# A Redis started before it had a password (an older checkout's) gets it without a restart.
redis_require_password() {
    if [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; then
        tr -d '\n' <"$REDIS_PASSWORD_FILE" | redis-cli -h 127.0.0.1 -p "$REDIS_PORT" -x config set requirepass >/dev/null
        ok "redis: now asks the password in ${REDIS_PASSWORD_FILE#"$CYCLORAMA_ROOT"/}"
    fi
}

redis_start() {
    redis_credentials
    if redis_pid >/dev/null; then
        redis_require_password
        wait_until redis 60 redis_ping || { show_log_tail "$LOG_DIR/redis.log"; return 1; }
        ok "redis already running (pid $(redis_pid), 127.0.0.1:$REDIS_PORT)"
        return 0
    fi
    if port_open "$REDIS_PORT"; then
        die "redis: port $REDIS_PORT is taken by another process (pid $(port_owner "$REDIS_PORT")); stop it first"
    fi
    mkdir -p "$REDIS_DIR"
    (umask 077 && printf 'requirepass %s\n' "$(cat "$REDIS_PASSWORD_FILE")" >"$REDIS_DIR/redis.conf")
    say "starting redis on 127.0.0.1:$REDIS_PORT"
    (close_locks && exec redis-server "$REDIS_DIR/redis.conf" --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$REDIS_DIR" \
        --daemonize yes --pidfile "$REDIS_PIDFILE" --logfile "$LOG_DIR/redis.log" \
        --appendonly yes --appendfsync always --save '' \
        --maxclients 10000 --loglevel notice)
    if ! wait_until redis 60 redis_ping; then
        show_log_tail "$LOG_DIR/redis.log"
        return 1
    fi
    ok "redis ready (pid $(redis_pid), 127.0.0.1:$REDIS_PORT)"
}

redis_stop() {
    local pid
    if ! pid="$(redis_pid)"; then
        ok "redis not running"
        return 0
    fi
    say "stopping redis (pid $pid)"
    # SHUTDOWN flushes the append-only file; NOSAVE skips an RDB snapshot we don't use.
    redis_cli shutdown nosave >/dev/null 2>&1 || true
    stop_pid redis "$pid" 20
    rm -f "$REDIS_PIDFILE"
    ok "redis stopped"
}

redis_kill() {
    local pid
    pid="$(redis_pid)" || { ok "redis not running"; return 0; }
    say "killing redis (pid $pid, SIGKILL)"
    kill -KILL "$pid" 2>/dev/null || true
    wait_until "redis exit" 30 bash -c "! kill -0 $pid 2>/dev/null || grep -q '^[^ ]* [^ ]* Z' /proc/$pid/stat"
    rm -f "$REDIS_PIDFILE"
    ok "redis killed"
}

redis_status() {
    local pid
    if pid="$(redis_pid)" && redis_ping; then
        status_line redis running "$pid" "redis://127.0.0.1:$REDIS_PORT/0 (password: .var/secrets)"
    elif [[ -n "${pid:-}" ]]; then
        status_line redis starting "$pid" "redis://127.0.0.1:$REDIS_PORT/0 (password: .var/secrets)"
    else
        status_line redis stopped - "redis://127.0.0.1:$REDIS_PORT/0 (password: .var/secrets)"
        return 1
    fi
}

# MARK: PostgreSQL
# PostgreSQL refuses to run as root: when we are root it runs as the `postgres` user, which must
# own the data directory and be able to reach it.

POSTGRES_PORT="${CYCLORAMA_POSTGRES_PORT:-5433}"
POSTGRES_DB=cyclorama
PG_BIN=/usr/lib/postgresql/15/bin
PG_BASE="$CYCLORAMA_VAR/postgres"
PG_DATA="$PG_BASE/data"
PG_LOG="$LOG_DIR/postgres.log"

pg_socket_dir() {
    # A Unix socket path may not exceed 107 bytes; fall back to /tmp for deep checkouts.
    local dir="$PG_BASE/run"
    if ((${#dir} > 80)); then
        dir="/tmp/cyclorama-pg-$(printf '%s' "$PG_BASE" | md5sum | cut -c1-12)"
    fi
    echo "$dir"
}

pg_user() { if ((EUID == 0)); then echo postgres; else id -un; fi; }

# Runs "$@" as the PostgreSQL user, from a directory that user can read.
as_pg_user() {
    if ((EUID == 0)); then
        (close_locks && cd / && exec runuser -u postgres -- "$@")
    else
        (close_locks && cd / && exec "$@")
    fi
}

pg_pid() {
    local pid
    [[ -f "$PG_DATA/postmaster.pid" ]] || return 1
    pid="$(live_pid_from "$PG_DATA/postmaster.pid" postgres)" && pid_has_folder_option "$pid" -D "$PG_DATA" || return 1
    echo "$pid"
}

# The superuser's password (for these scripts) and the services' role `cyclorama`'s. TCP takes only
# scram-sha-256; the Unix socket only the postgres OS user (peer): there is no trust rule.
PG_SUPERUSER_PASSWORD_FILE="$SECRETS_DIR/postgres-postgres.password"
PG_PASSWORD_FILE="$SECRETS_DIR/postgres-cyclorama.password"

pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres; }

pg_psql() {
    PGPASSWORD="$(cat "$PG_SUPERUSER_PASSWORD_FILE")" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres "$@"
}

# Makes every directory from / down to .var/postgres traversable by the postgres user. Only
# directories that aren't get `o+x` (search, not read), and each change is printed.
pg_fix_traversal() {
    ((EUID == 0)) || return 0
    local path="" part
    IFS='/' read -ra parts <<<"${PG_BASE#/}"
    for part in "${parts[@]}"; do
        path="$path/$part"
        [[ -d "$path" ]] || break
        if ! runuser -u postgres -- test -x "$path" 2>/dev/null; then
            chmod o+x "$path"
            warn "made $path traversable (o+x) so that the postgres user can reach its data"
        fi
    done
}

pg_prepare() {
    local user socket_dir
    user="$(pg_user)"
    socket_dir="$(pg_socket_dir)"
    mkdir -p "$PG_BASE" "$socket_dir"
    chown "$user": "$PG_BASE" "$socket_dir"
    pg_fix_traversal
    touch "$PG_LOG"
    chown "$user": "$PG_LOG"
    if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
        say "initialising a PostgreSQL cluster in $PG_DATA"
        rm -rf "$PG_DATA"
        mkdir -p "$PG_DATA"
        chown "$user": "$PG_DATA"
        chmod 700 "$PG_DATA"
        # initdb reads the superuser's password from a file the postgres user can read: a copy
        # beside the data directory (mode 600; initdb wants the directory itself empty), removed
        # once read.
        ensure_secret "$PG_SUPERUSER_PASSWORD_FILE" hex "the PostgreSQL superuser password"
        install -m 600 -o "$user" "$PG_SUPERUSER_PASSWORD_FILE" "$PG_BASE/.initial-password"
        as_pg_user "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
            --pwfile="$PG_BASE/.initial-password" -E UTF8 --locale=C.UTF-8 >>"$PG_LOG" 2>&1 || {
            rm -f "$PG_BASE/.initial-password"
            show_log_tail "$PG_LOG"
            return 1
        }
        rm -f "$PG_BASE/.initial-password"
        pg_write_hba
    fi
}

# Passwords for postgres and cyclorama (SQL on stdin: never on a command line), the database owned
# by cyclorama, and no trust rule left (a cluster an older checkout made with trust is converted).
pg_credentials() {
    ensure_secret "$PG_SUPERUSER_PASSWORD_FILE" hex "the PostgreSQL superuser password"
    ensure_secret "$PG_PASSWORD_FILE" hex "the PostgreSQL password of cyclorama"
    pg_psql -d postgres <<SQL >/dev/null
ALTER ROLE postgres PASSWORD '$(cat "$PG_SUPERUSER_PASSWORD_FILE")';
DO \$\$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cyclorama') THEN CREATE ROLE cyclorama; END IF;
END \$\$;
ALTER ROLE cyclorama WITH LOGIN CREATEDB NOSUPERUSER PASSWORD '$(cat "$PG_PASSWORD_FILE")';
SQL
    if grep -Eq '^[^#]*[[:space:]]trust([[:space:]]|$)' "$PG_DATA/pg_hba.conf"; then
        pg_write_hba
        pg_psql -d postgres -c 'SELECT pg_reload_conf()' >/dev/null
        ok "postgres: password authentication (scram-sha-256) only; the trust rules are gone"
    fi
    write_secret "$SECRETS_DIR/postgres-cyclorama.url" \
        "postgres://cyclorama:$(cat "$PG_PASSWORD_FILE")@127.0.0.1:$POSTGRES_PORT/$POSTGRES_DB"
}

pg_write_hba() {
    local user
    user="$(pg_user)"
    cat >"$PG_DATA/pg_hba.conf" <<EOF
# Written by scripts/servers.sh. TCP: passwords (scram-sha-256) only. The socket: the OS user
# that runs the server, as itself.
local   all   $user   peer
host    all   all     127.0.0.1/32   scram-sha-256
host    all   all     ::1/128        scram-sha-256
EOF
    chown "$user": "$PG_DATA/pg_hba.conf"
    chmod 600 "$PG_DATA/pg_hba.conf"
}

pg_start() {
    if pg_pid >/dev/null; then
        wait_until postgres 60 pg_ready || { show_log_tail "$PG_LOG"; return 1; }
        pg_credentials || return 1
        pg_create_database
        ok "postgres already running (pid $(pg_pid), 127.0.0.1:$POSTGRES_PORT)"
        return 0
    fi
    if port_open "$POSTGRES_PORT"; then
        die "postgres: port $POSTGRES_PORT is taken by another process (pid $(port_owner "$POSTGRES_PORT")); stop it first"
    fi
    pg_prepare
    say "starting postgres on 127.0.0.1:$POSTGRES_PORT"
    local options="-c listen_addresses=127.0.0.1 -c port=$POSTGRES_PORT"
    options+=" -c unix_socket_directories='$(pg_socket_dir)' -c max_connections=200"
    # setsid: a Ctrl-C in the terminal that ran `make up` must not reach the postmaster.
    if ! as_pg_user setsid -w "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 \
        -o "$options" start >/dev/null; then
        show_log_tail "$PG_LOG"
        return 1
    fi
    wait_until postgres 60 pg_ready || { show_log_tail "$PG_LOG"; return 1; }
    pg_credentials || return 1
    pg_create_database
    ok "postgres ready (pid $(pg_pid), 127.0.0.1:$POSTGRES_PORT, database $POSTGRES_DB)"
}

# The database, owned by cyclorama (tables an older checkout made as postgres are handed over).
pg_create_database() {
    local exists
    exists="$(pg_psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$POSTGRES_DB'")"
    if [[ "$exists" != 1 ]]; then
        pg_psql -d postgres -c "CREATE DATABASE $POSTGRES_DB OWNER cyclorama" >/dev/null
        ok "created database $POSTGRES_DB"
        return 0
    fi
    pg_psql -d "$POSTGRES_DB" <<'SQL' >/dev/null
ALTER DATABASE cyclorama OWNER TO cyclorama;
DO $$ DECLARE r record; BEGIN
    FOR r IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm') AND pg_get_userbyid(c.relowner) = 'postgres' LOOP
        EXECUTE format('ALTER TABLE public.%I OWNER TO cyclorama', r.relname);
    END LOOP;
END $$;
SQL
}

pg_stop() {
    local pid
    if ! pid="$(pg_pid)"; then
        ok "postgres not running"
        return 0
    fi
    say "stopping postgres (pid $pid)"
    as_pg_user "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null ||
        warn "pg_ctl stop failed; sending SIGTERM"
    stop_pid postgres "$pid" 30
    ok "postgres stopped"
}

# A crash of the whole server: SIGKILL to the postmaster and every backend it forked. A killed
# postmaster can linger as a zombie in this sandbox, which PostgreSQL would take for a running
# server: its stale lock files (postmaster.pid, the socket's) are removed once every process is gone.
pg_kill() {
    local pid children
    pid="$(pg_pid)" || { ok "postgres not running"; return 0; }
    children="$(pgrep -P "$pid" || true)"
    say "killing postgres (pid $pid and its $(wc -w <<<"$children") backends, SIGKILL)"
    kill -KILL "$pid" $children 2>/dev/null || true
    local p
    for p in $pid $children; do
        wait_until "postgres process $p exit" 30 bash -c "! kill -0 $p 2>/dev/null || grep -q '^[^ ]* [^ ]* Z' /proc/$p/stat"
    done
    local socket_dir
    socket_dir="$(pg_socket_dir)"
    rm -f "$PG_DATA/postmaster.pid" "$socket_dir/.s.PGSQL.$POSTGRES_PORT" "$socket_dir/.s.PGSQL.$POSTGRES_PORT.lock"
    ok "postgres killed"
}

pg_status() {
    local pid url="postgres://cyclorama@127.0.0.1:$POSTGRES_PORT/$POSTGRES_DB (password: .var/secrets)"
    if pid="$(pg_pid)" && pg_ready; then
        status_line postgres running "$pid" "$url"
    elif [[ -n "${pid:-}" ]]; then
        status_line postgres starting "$pid" "$url"
    else
        status_line postgres stopped - "$url"
        return 1
    fi
}

# MARK: Common

# Waits up to $3 s for pid $2 to exit, then SIGTERM, then SIGKILL.
stop_pid() {
    local name="$1" pid="$2" timeout="$3"
    local deadline=$((SECONDS + timeout))
    while pid_alive "$pid"; do
        if ((SECONDS >= deadline)); then
            warn "$name (pid $pid) still running after ${timeout}s; sending SIGTERM"
            kill -TERM "$pid" 2>/dev/null || true
            sleep 5
            pid_alive "$pid" && { warn "$name (pid $pid): SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
            sleep 0.5
            break
        fi
        sleep 0.2
    done
}

status_line() { printf '%-9s %-9s pid %-8s %s\n' "$1" "$2" "$3" "$4"; }

server_function() {
    case "$1" in
        rabbitmq) echo rabbitmq ;;
        redis) echo redis ;;
        postgres | postgresql | pg) echo pg ;;
        *) die "unknown server '$1' (expected: ${ALL_SERVERS[*]})" ;;
    esac
}

lock_name() { echo "server-$1"; }

do_start() { with_lock "$(lock_name "$1")" "$(server_function "$1")_start"; }
do_stop() { with_lock "$(lock_name "$1")" "$(server_function "$1")_stop"; }
do_restart() { with_lock "$(lock_name "$1")" restart_one "$1"; }
do_kill() { with_lock "$(lock_name "$1")" "$(server_function "$1")_kill"; }
restart_one() {
    local fn
    fn="$(server_function "$1")"
    "${fn}_stop"
    "${fn}_start"
}

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

main() {
    local command="${1:-}"
    [[ -n "$command" ]] || usage 1
    shift
    local servers=("$@")
    ((${#servers[@]})) || servers=("${ALL_SERVERS[@]}")
    ensure_var_dirs
    local server rc=0
    case "$command" in
        start)
            bash "$CYCLORAMA_ROOT/scripts/install-deps.sh" servers
            for server in "${servers[@]}"; do do_start "$server" || rc=1; done
            ;;
        stop)
            # Reverse order: the broker last, so services stopping late can still hand work back.
            for ((i = ${#servers[@]} - 1; i >= 0; i--)); do do_stop "${servers[i]}" || rc=1; done
            ;;
        restart)
            for server in "${servers[@]}"; do do_restart "$server" || rc=1; done
            ;;
        kill)
            for server in "${servers[@]}"; do do_kill "$server" || rc=1; done
            ;;
        status)
            for server in "${servers[@]}"; do "$(server_function "$server")_status" || rc=1; done
            ;;
        vhost)
            # vhost add|delete <name>: an isolated RabbitMQ virtual host (each user with the rights
            # it has on "/"), so a test system's queues never meet another's on the shared broker.
            local action="${servers[0]:-}" name="${servers[1]:-}"
            [[ "$name" =~ ^[A-Za-z0-9._-]+$ ]] || die "vhost: expected add|delete <name of [A-Za-z0-9._-]>"
            case "$action" in
                add) (umask 077 && rabbitmq_definitions "$name" | rabbitmq_import "$name") || rc=1 ;;
                delete) rabbitmq_api DELETE "/api/vhosts/$name" || rabbitmqctl -q delete_vhost "$name" || rc=1 ;;
                *) die "vhost: expected add or delete, got '$action'" ;;
            esac
            ;;
        rabbitmqctl) rabbitmqctl "${servers[@]}" || rc=$? ;;
        -h | --help | help) usage 0 ;;
        *) usage 1 ;;
    esac
    return "$rc"
}

main "$@"
