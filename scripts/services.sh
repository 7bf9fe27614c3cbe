#!/usr/bin/env bash
# Runs Cyclorama's executables in the background on 127.0.0.1 (what `make up` / `make down` use).
#
# Usage: scripts/services.sh up|down|status|restart|logs [service ...]
#   up       start the services that aren't running (a service whose executable was rebuilt since
#            it started is restarted), then wait for every /healthz
#   down     SIGTERM each service by pid, SIGKILL after 10 s, remove its pid file
#   status   one line per service
#   restart  down + up
#   logs     tail -F the service logs
# Expects the executables to be built (`swift build`) and the servers running
# (scripts/servers.sh start): `make up` does both first.
#
# Environment: SWIFT_CONFIGURATION (debug), CYCLORAMA_BIN_DIR (.build/$SWIFT_CONFIGURATION),
# HEALTH_TIMEOUT (seconds, 90), LOG_LEVEL (info),
# and the variables in README.md "Configuration", passed through to every service.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The services, in start order: name, HTTP port, and whether it may be absent (not built yet).
# To add one: a line here. Stop order is the reverse.
SERVICES=(
    "settings-service   8084 required"
    "prompt-service     8081 required"
    "result-ingestor    8083 required"
    "local-engine       8090 required"
    "runpod-dispatcher  8082 required"
    "api-gateway        8080 required"
)

SWIFT_CONFIGURATION="${SWIFT_CONFIGURATION:-debug}"
BIN_DIR="${CYCLORAMA_BIN_DIR:-$CYCLORAMA_ROOT/.build/$SWIFT_CONFIGURATION}"
HEALTH_TIMEOUT="${HEALTH_TIMEOUT:-90}"
ADMIN_TOKEN_FILE="${CYCLORAMA_ADMIN_TOKEN_FILE:-$CYCLORAMA_VAR/admin-token}"
MEDIA_ROOT="${MEDIA_ROOT:-$CYCLORAMA_VAR/media}"
MEDIA_URL_SECRET_FILE="${MEDIA_URL_SECRET_FILE:-$CYCLORAMA_VAR/media-url-secret}"
MASTER_KEY_FILE="${CYCLORAMA_MASTER_KEY_FILE:-$CYCLORAMA_VAR/master-key}"
SETTINGS_AUTHORITY_KEY_FILE="${SETTINGS_AUTHORITY_KEY_FILE:-$CYCLORAMA_VAR/settings-authority-key}"
LOCAL_ENGINE_API_KEY_FILE="${LOCAL_ENGINE_API_KEY_FILE:-$CYCLORAMA_VAR/local-engine-api-key}"

service_names() { local line; for line in "${SERVICES[@]}"; do echo "${line%% *}"; done; }
service_field() { # $1 name, $2 field number (2 port, 3 required/optional)
    local line
    for line in "${SERVICES[@]}"; do
        read -r -a f <<<"$line"
        if [[ "${f[0]}" == "$1" ]]; then echo "${f[$2 - 1]}"; return 0; fi
    done
    die "unknown service '$1' (expected one of: $(service_names | tr '\n' ' '))"
}
service_port() { service_field "$1" 2; }
service_optional() { [[ "$(service_field "$1" 3)" == optional ]]; }
pid_file() { echo "$RUN_DIR/$1.pid"; }
log_file() { echo "$LOG_DIR/$1.log"; }
# The service's pid, if that process runs its executable (any folder: an argument ending in
# /<name>, also while setsid, nohup and env still hand over to it).
service_pid() {
    local pid
    pid="$(live_pid_from "$(pid_file "$1")")" && pid_has_argument "$pid" ".*/$1" || return 1
    echo "$pid"
}
healthy() { curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$1/healthz"; }

# Every secret the services need, each given only to the services that use it (start_service).
ensure_admin_token() {
    ensure_secret "$ADMIN_TOKEN_FILE" hex "the admin API token"
    # Signs the media links backends fetch (gateway and prompt-service).
    ensure_secret "$MEDIA_URL_SECRET_FILE" hex "the media link signing secret"
    # The AES-GCM key that seals secrets in the settings table (never stored in the database).
    ensure_secret "$MASTER_KEY_FILE" base64 "the settings master key"
    # Authorizes settings changes: only the gateway and the settings-service get it.
    ensure_secret "$SETTINGS_AUTHORITY_KEY_FILE" hex "the settings authority key"
    # The local engine asks it of every /v2 call; the dispatcher sends it.
    ensure_secret "$LOCAL_ENGINE_API_KEY_FILE" hex "the local engine's API key"
}

# Adds to the caller's `servers`: `NAME=value` when the environment sets NAME, else `NAME_FILE=$2`
# (which must exist).
server_url() {
    if [[ -n "${!1:-}" ]]; then
        servers+=("$1=${!1}")
    else
        [[ -s "$2" ]] || die "$2 is missing: start the servers first (scripts/servers.sh start; make up does)"
        servers+=("$1_FILE=$2")
    fi
}

start_service() {
    local name="$1" port bin pid log
    port="$(service_port "$name")"
    bin="$BIN_DIR/$name"
    log="$(log_file "$name")"
    if [[ ! -x "$bin" ]]; then
        if service_optional "$name"; then
            echo "   skip $name (not built: $bin)"
            return 0
        fi
        die "$name is not built ($bin missing): run 'swift build' (make up does)"
    fi
    if pid="$(service_pid "$name")"; then
        if [[ "$bin" -nt "$(pid_file "$name")" ]]; then
            say "$name: its executable changed since it started; restarting it"
            stop_service "$name"
        else
            return 0
        fi
    fi
    if port_open "$port"; then
        die "$name: port $port is taken by another process (pid $(port_owner "$port")); free it first"
    fi
    # Keys only the services that use them get.
    local keys=()
    case "$name" in
        api-gateway | settings-service) keys=(SETTINGS_AUTHORITY_KEY_FILE="$SETTINGS_AUTHORITY_KEY_FILE") ;;
        local-engine | runpod-dispatcher) keys=(LOCAL_ENGINE_API_KEY_FILE="$LOCAL_ENGINE_API_KEY_FILE") ;;
    esac
    # Each service connects as itself: its own RabbitMQ user, the Redis password, PostgreSQL's
    # cyclorama role, read from the files scripts/servers.sh wrote (a URL given in the environment
    # wins). The local engine uses none of them.
    local servers=()
    if [[ " ${BROKER_ROLES[*]} " == *" $name "* ]]; then
        server_url AMQP_URL "$SECRETS_DIR/amqp-$name.url"
        server_url REDIS_URL "$SECRETS_DIR/redis.url"
        server_url DATABASE_URL "$SECRETS_DIR/postgres-cyclorama.url"
    fi
    say "starting $name on 127.0.0.1:$port"
    printf '\n===== %s starting %s =====\n' "$(date -Is)" "$name" >>"$log"
    # setsid + nohup: the service outlives this shell and a Ctrl-C in the terminal. The subshell is
    # not a process-group leader, so setsid needs no fork and $! is the service's own pid.
    (
        close_locks
        cd "$CYCLORAMA_ROOT"
        exec setsid nohup env -u SETTINGS_AUTHORITY_KEY -u SETTINGS_AUTHORITY_KEY_FILE \
            -u LOCAL_ENGINE_API_KEY -u LOCAL_ENGINE_API_KEY_FILE \
            -u AMQP_URL -u AMQP_URL_FILE -u REDIS_URL -u REDIS_URL_FILE -u DATABASE_URL -u DATABASE_URL_FILE \
            HTTP_HOST=127.0.0.1 HTTP_PORT="$port" \
            "${servers[@]}" \
            LOG_LEVEL="${LOG_LEVEL:-info}" \
            CYCLORAMA_ADMIN_TOKEN_FILE="$ADMIN_TOKEN_FILE" MEDIA_ROOT="$MEDIA_ROOT" \
            MEDIA_URL_SECRET_FILE="$MEDIA_URL_SECRET_FILE" CYCLORAMA_MASTER_KEY_FILE="$MASTER_KEY_FILE" \
            "${keys[@]}" "$bin" >>"$log" 2>&1 </dev/null
    ) &
    echo "$!" >"$(pid_file "$name")"
}

wait_healthy() {
    local name="$1" port pid deadline
    port="$(service_port "$name")"
    # The pid start_service just wrote: until its subshell has exec'd the service, the command line
    # is still this script's, which service_pid would not take for the service.
    pid="$(live_pid_from "$(pid_file "$name")")" || {
        service_optional "$name" && [[ ! -x "$BIN_DIR/$name" ]] && return 0
        warn "$name exited during start-up"
        show_log_tail "$(log_file "$name")"
        return 1
    }
    deadline=$((SECONDS + HEALTH_TIMEOUT))
    until healthy "$port"; do
        if ! pid_alive "$pid"; then
            warn "$name (pid $pid) exited before http://127.0.0.1:$port/healthz answered 200"
            show_log_tail "$(log_file "$name")"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            warn "$name (pid $pid): http://127.0.0.1:$port/healthz not 200 after ${HEALTH_TIMEOUT}s"
            { curl -sS --max-time 2 "http://127.0.0.1:$port/healthz" | head -c 600; echo; } >&2 || true
            show_log_tail "$(log_file "$name")"
            return 1
        fi
        sleep 0.3
    done
    ok "$name healthy (pid $pid, http://127.0.0.1:$port)"
}

stop_service() {
    local name="$1" pid deadline
    if ! pid="$(service_pid "$name")"; then
        rm -f "$(pid_file "$name")"
        return 0
    fi
    say "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
    if pid_alive "$pid"; then
        warn "$name (pid $pid) did not exit 10 s after SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.3
    fi
    rm -f "$(pid_file "$name")"
}

status_service() {
    local name="$1" port pid state
    port="$(service_port "$name")"
    if pid="$(service_pid "$name")"; then
        if healthy "$port"; then state=healthy; else state=unhealthy; fi
    else
        pid=- state=stopped
        service_optional "$name" && [[ ! -x "$BIN_DIR/$name" ]] && state="not built"
    fi
    printf '%-18s %-10s pid %-8s http://127.0.0.1:%-5s log %s\n' \
        "$name" "$state" "$pid" "$port" "${LOG_DIR#"$CYCLORAMA_ROOT"/}/$name.log"
    [[ "$state" == healthy || "$state" == "not built" ]]
}

# On the first `make up`, uploads the sample product photos (../shared/samples/dev/*/input.jpg beside
# the repository) into the PRODUCTS collection, so the system starts with media to work on.
# Skipped when the samples are not there or were seeded before (.var/sample-media-seeded).
SAMPLES_DIR="${CYCLORAMA_SAMPLES_DIR:-$CYCLORAMA_ROOT/../shared/samples/dev}"
seed_sample_media() {
    local marker="$CYCLORAMA_VAR/sample-media-seeded" port photo count=0
    [[ -e "$marker" ]] && return 0
    if [[ ! -d "$SAMPLES_DIR" ]]; then
        say "no sample photos at $SAMPLES_DIR: starting with an empty media library"
        return 0
    fi
    port="$(service_port api-gateway)"
    for photo in "$SAMPLES_DIR"/*/input.jpg; do
        [[ -f "$photo" ]] || continue
        curl -fsS --max-time 30 -o /dev/null -H "Authorization: Bearer $(cat "$ADMIN_TOKEN_FILE")" \
            -F collection=PRODUCTS -F "file=@$photo;filename=$(basename "$(dirname "$photo")").jpg" \
            "http://127.0.0.1:$port/api/media" || die "could not upload the sample $photo"
        count=$((count + 1))
    done
    touch "$marker"
    ok "uploaded $count sample product photos to the PRODUCTS collection"
}

# The summary `make up` ends with.
print_summary() {
    local name
    echo
    printf '%sCyclorama is up.%s\n\n' "$_bold" "$_reset"
    for name in $(service_names); do status_service "$name" || true; done
    echo
    bash "$CYCLORAMA_ROOT/scripts/servers.sh" status || true
    echo
    echo "Admin UI:     http://127.0.0.1:$(service_port api-gateway)/   (sign in with the admin token below)"
    echo "Gateway API:  http://127.0.0.1:$(service_port api-gateway)/api   (see README.md, 'What works today')"
    echo "Admin token:  $(cat "$ADMIN_TOKEN_FILE")"
    echo "              (in ${ADMIN_TOKEN_FILE#"$CYCLORAMA_ROOT"/}; send it as 'Authorization: Bearer <token>')"
    echo "Try:          curl -H \"Authorization: Bearer \$(cat ${ADMIN_TOKEN_FILE#"$CYCLORAMA_ROOT"/})\" http://127.0.0.1:$(service_port api-gateway)/api/media"
    echo "Logs:         make logs      (files in ${LOG_DIR#"$CYCLORAMA_ROOT"/}/)"
    echo "Stop:         make down"
}

main() {
    local command="${1:-}"
    [[ -n "$command" ]] || die "usage: $0 up|down|status|restart|logs [service ...]"
    shift
    local names=("$@") name rc=0
    ((${#names[@]})) || mapfile -t names < <(service_names)
    for name in "${names[@]}"; do service_port "$name" >/dev/null; done
    ensure_var_dirs
    mkdir -p "$MEDIA_ROOT"
    case "$command" in
        up)
            ensure_admin_token
            for name in "${names[@]}"; do with_lock "service-$name" start_service "$name"; done
            for name in "${names[@]}"; do wait_healthy "$name" || rc=1; done
            if ((rc)); then
                warn "some services are not healthy (see above); 'make down' stops everything"
                return 1
            fi
            seed_sample_media
            print_summary
            ;;
        down)
            for ((i = ${#names[@]} - 1; i >= 0; i--)); do with_lock "service-${names[i]}" stop_service "${names[i]}"; done
            ;;
        restart)
            for ((i = ${#names[@]} - 1; i >= 0; i--)); do with_lock "service-${names[i]}" stop_service "${names[i]}"; done
            bash "$0" up "${names[@]}"
            ;;
        status)
            for name in "${names[@]}"; do status_service "$name" || rc=1; done
            ;;
        logs)
            local files=()
            for name in "${names[@]}"; do
                [[ -f "$(log_file "$name")" ]] || : >"$(log_file "$name")"
                files+=("$(log_file "$name")")
            done
            exec tail -n 20 -F "${files[@]}"
            ;;
        *) die "usage: $0 up|down|status|restart|logs [service ...]" ;;
    esac
    return "$rc"
}

main "$@"
