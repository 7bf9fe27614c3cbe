# shellcheck shell=bash
# The broker's users and what each may do: one user per service, with only its role's rights
# (docs/security.md, "Credentials"). Sourced by scripts/servers.sh (which imports them into the
# local RabbitMQ) and compose/make-secrets.sh (which writes them for a deployment). Needs
# BROKER_ROLES (scripts/lib.sh), SECRETS_DIR and `die`.

# What each service may publish on the two topic exchanges (RabbitMQ topic permissions on routing
# keys, docs/security.md): $1 the service, $2 `commands` or `events`. Every service asks the
# settings-service for settings; only the gateway changes them (signed, docs/security.md).
rabbitmq_topic_writes() {
    case "$1:$2" in
        api-gateway:commands) echo '^(generation\\.request|settings\\.request)$' ;;
        api-gateway:events) echo '^(generation\\.failed|backend\\.webhook)$' ;;
        prompt-service:commands) echo '^(dispatch\\.request|settings\\.request)$' ;;
        prompt-service:events) echo '^generation\\.(progressed|failed)$' ;;
        runpod-dispatcher:commands) echo '^settings\\.request$' ;;
        runpod-dispatcher:events) echo '^generation\\.(submitted|progressed|rendered|failed)$' ;;
        result-ingestor:commands) echo '^settings\\.request$' ;;
        result-ingestor:events) echo '^(generation\\.(completed|failed)|media\\.updated)$' ;;
        settings-service:commands) echo '^$' ;;
        settings-service:events) echo '^settings\\.changed$' ;;
        *) die "no broker role for $1 on $2" ;;
    esac
}

# The definitions (RabbitMQ's JSON import format; patterns JSON-escaped) that give vhost $1 its
# users' rights: the admin everything; each service configure and read only on Cyclorama's
# exchanges and its own queues (named `<service>.…`), write anywhere (the default exchange carries
# retries, RPC replies and a requester's replyTo, and replyTo may name any exchange), and on the two
# topic exchanges only the routing keys of rabbitmq_topic_writes. With $2 = users, the users too,
# their passwords read from $SECRETS_DIR/rabbitmq-<user>.password.
rabbitmq_definitions() {
    local vhost="$1" with_users="${2:-}" role kind own first=1
    printf '{\n'
    if [[ "$with_users" == users ]]; then
        printf '"users": [{"name": "cyclorama-admin", "password": "%s", "tags": ["administrator"]}' \
            "$(cat "$SECRETS_DIR/rabbitmq-cyclorama-admin.password")"
        for role in "${BROKER_ROLES[@]}"; do
            printf ',\n  {"name": "%s", "password": "%s", "tags": []}' "$role" "$(cat "$SECRETS_DIR/rabbitmq-$role.password")"
        done
        printf '],\n'
    fi
    printf '"vhosts": [{"name": "%s"}],\n' "$vhost"
    printf '"permissions": [{"user": "cyclorama-admin", "vhost": "%s", "configure": ".*", "write": ".*", "read": ".*"}' "$vhost"
    for role in "${BROKER_ROLES[@]}"; do
        own="^(cyclorama\\\\.(commands|events|dead-letter)|${role}\\\\..*)\$"
        printf ',\n  {"user": "%s", "vhost": "%s", "configure": "%s", "write": ".*", "read": "%s"}' "$role" "$vhost" "$own" "$own"
    done
    printf '],\n"topic_permissions": ['
    for role in "${BROKER_ROLES[@]}"; do
        for kind in commands events; do
            ((first)) || printf ','
            first=0
            printf '\n  {"user": "%s", "vhost": "%s", "exchange": "cyclorama.%s", "write": "%s", "read": ".*"}' \
                "$role" "$vhost" "$kind" "$(rabbitmq_topic_writes "$role" "$kind")"
        done
    done
    printf ']\n}\n'
}
