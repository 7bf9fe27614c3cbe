#!/usr/bin/env bash
# Creates every secret docker-compose.yml mounts, in compose/secrets/ (mode 700, files 600; never
# commit them): the services' keys, and the servers' credentials the way scripts/servers.sh makes
# them for `make up` — a RabbitMQ user per service with only its role's rights (imported at the
# broker's first start from rabbitmq-definitions.json), a Redis password, PostgreSQL's `cyclorama`
# role — and each service's URLs (amqp-<service>.url, redis.url, database.url). Run it once; it
# keeps what exists. docs/security.md, "Credentials".
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
SECRETS_DIR="$CYCLORAMA_ROOT/compose/secrets"
source "$CYCLORAMA_ROOT/scripts/broker-roles.sh"

mkdir -p "$SECRETS_DIR"
chmod 700 "$SECRETS_DIR"
ensure_secret "$SECRETS_DIR/admin-token" hex "the gateway's admin API token"
ensure_secret "$SECRETS_DIR/media-url-secret" hex "the media link signing secret"
ensure_secret "$SECRETS_DIR/master-key" base64 "the settings master key"
ensure_secret "$SECRETS_DIR/settings-authority-key" hex "the settings authority key"
ensure_secret "$SECRETS_DIR/local-engine-api-key" hex "the local engine's API key"

ensure_secret "$SECRETS_DIR/rabbitmq-cyclorama-admin.password" hex "the RabbitMQ admin password"
for role in "${BROKER_ROLES[@]}"; do
    ensure_secret "$SECRETS_DIR/rabbitmq-$role.password" hex "the RabbitMQ password of $role"
    # Every node of the cluster: the service connects to one and goes on with the next (docs/messaging.md).
    write_secret "$SECRETS_DIR/amqp-$role.url" \
        "amqp://$role:$(cat "$SECRETS_DIR/rabbitmq-$role.password")@rabbitmq-1:5672,rabbitmq-2:5672,rabbitmq-3:5672/"
done
[[ -f "$SECRETS_DIR/rabbitmq-erlang-cookie" ]] ||
    write_secret "$SECRETS_DIR/rabbitmq-erlang-cookie" "$(openssl rand -hex 20 | tr 'a-f' 'A-F')"
(umask 077 && rabbitmq_definitions / users >"$SECRETS_DIR/rabbitmq-definitions.json")

ensure_secret "$SECRETS_DIR/redis.password" hex "the Redis password"
write_secret "$SECRETS_DIR/redis.conf" "requirepass $(cat "$SECRETS_DIR/redis.password")"
write_secret "$SECRETS_DIR/redis.url" "redis://:$(cat "$SECRETS_DIR/redis.password")@redis:6379/0"

ensure_secret "$SECRETS_DIR/postgres-postgres.password" hex "the PostgreSQL superuser password"
ensure_secret "$SECRETS_DIR/postgres-cyclorama.password" hex "the PostgreSQL password of cyclorama"
write_secret "$SECRETS_DIR/database.url" "postgres://cyclorama:$(cat "$SECRETS_DIR/postgres-cyclorama.password")@postgres:5432/cyclorama"
ok "secrets in ${SECRETS_DIR#"$CYCLORAMA_ROOT"/}"
