#!/usr/bin/env bash
# A three-node RabbitMQ cluster on this one machine, for trying failover and for `make test-cluster`
# (docs/messaging.md, "A cluster"). Each node is a RabbitMQ of its own, started by
# scripts/servers.sh with its own name, ports and data; the three share the Erlang cookie and the
# credentials, and join node 1. Cyclorama's queues are quorum queues: declared while the three run,
# each has a replica on every node and keeps working while any two do.
#
# Usage: scripts/cluster.sh start|stop|status
#        scripts/cluster.sh stop-node|start-node|kill-node <1-3>
#        scripts/cluster.sh vhost add|delete <name>
#        scripts/cluster.sh leaders <vhost>   (how many quorum-queue leaders each node holds;
#                                              fails when they are not on at least two nodes)
#
#   node   name                    AMQP              data                      log
#   1      cyclorama-1@localhost   127.0.0.1:5701    .var/cluster/node-1       .var/cluster/node-1/log/
#   2      cyclorama-2@localhost   127.0.0.1:5702    .var/cluster/node-2       …
#   3      cyclorama-3@localhost   127.0.0.1:5703    .var/cluster/node-3       …
#   (Erlang distribution on the AMQP port + 20000, on loopback only.)
#
#   Credentials: .var/cluster/secrets/, the same users and rights as scripts/servers.sh makes; the
#   URLs written there (amqp-<user>.url) name all three nodes, `amqp://user:pw@127.0.0.1:5701,
#   127.0.0.1:5702,127.0.0.1:5703/`, which every service takes as its AMQP_URL (it connects to
#   the first that answers and goes on with the next when that node goes away).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLUSTER_BASE="${CYCLORAMA_CLUSTER_VAR:-$CYCLORAMA_VAR/cluster}"
CLUSTER_PORT_BASE="${CYCLORAMA_CLUSTER_PORT_BASE:-5700}"
NODES=(1 2 3)

node_port() { echo $((CLUSTER_PORT_BASE + $1)); }
node_name() { echo "cyclorama-$1@localhost"; }
addresses() {
    local n list=()
    for n in "${NODES[@]}"; do list+=("127.0.0.1:$(node_port "$n")"); done
    (IFS=,; echo "${list[*]}")
}

# scripts/servers.sh for node $1, the rest of the arguments passed on.
node() {
    local n="$1"
    shift
    CYCLORAMA_VAR="$CLUSTER_BASE/node-$n" CYCLORAMA_SECRETS_DIR="$CLUSTER_BASE/secrets" \
        CYCLORAMA_RABBITMQ_COOKIE_FILE="$CLUSTER_BASE/cookie" CYCLORAMA_RABBITMQ_PORT="$(node_port "$n")" \
        CYCLORAMA_RABBITMQ_NODE="$(node_name "$n")" CYCLORAMA_AMQP_ADDRESSES="$(addresses)" \
        CYCLORAMA_RABBITMQ_MANAGEMENT_PORT="" bash "$CYCLORAMA_ROOT/scripts/servers.sh" "$@"
}

# Prints how many quorum-queue leaders each node holds in vhost $1 (asked of the first node that
# answers); fails when they are all on one node. The nodes place leaders `balanced`
# (queue_leader_locator in scripts/servers.sh), so declared queues spread over the cluster.
leaders() {
    local n counts
    for n in "${NODES[@]}"; do
        if counts="$(node "$n" rabbitmqctl -q list_queues -p "$1" type leader 2>/dev/null | awk '$1 == "quorum" { print $2 }' | sort | uniq -c)"; then
            [[ -n "$counts" ]] || die "no quorum queue in vhost $1"
            echo "$counts"
            [[ "$(wc -l <<<"$counts")" -ge 2 ]] || die "every quorum-queue leader of $1 is on one node"
            return 0
        fi
    done
    die "no node answered"
}

check_node() { [[ "${1:-}" =~ ^[123]$ ]] || die "expected a node number 1-3, got '${1:-}'"; }

# Whether node $1 is a member of node 1's cluster.
clustered() {
    node 1 rabbitmqctl -q cluster_status --formatter json 2>/dev/null |
        python3 -c 'import json, sys; print(" ".join(json.load(sys.stdin).get("disk_nodes", [])))' |
        grep -qw "$(node_name "$1")"
}

start() {
    mkdir -p "$CLUSTER_BASE"
    if [[ ! -f "$CLUSTER_BASE/cookie" ]]; then
        (umask 077 && openssl rand -hex 16 | tr 'a-f' 'A-F' >"$CLUSTER_BASE/cookie")
    fi
    # Node 1 first (it makes the credentials), then the other two together.
    node 1 start rabbitmq
    local pids=() n rc=0
    for n in 2 3; do
        node "$n" start rabbitmq &
        pids+=($!)
    done
    for n in "${pids[@]}"; do wait "$n" || rc=1; done
    ((rc == 0)) || die "a cluster node did not start"
    for n in 2 3; do
        clustered "$n" && continue
        say "node $n joins node 1's cluster"
        node "$n" rabbitmqctl -q stop_app
        node "$n" rabbitmqctl -q join_cluster "$(node_name 1)"
        node "$n" rabbitmqctl -q start_app
        # The users were node 2's own until it joined: node 1's (the same files) hold now.
    done
    for n in 2 3; do clustered "$n" || die "node $n did not join the cluster"; done
    ok "cluster ready: $(addresses) (credentials in $CLUSTER_BASE/secrets)"
}

stop() {
    local n
    # The last to stop is the first to start again without waiting for its peers.
    for n in 3 2 1; do node "$n" stop rabbitmq || true; done
}

status() {
    local n rc=0
    for n in "${NODES[@]}"; do node "$n" status rabbitmq || rc=1; done
    return "$rc"
}

main() {
    local command="${1:-}"
    shift || true
    case "$command" in
        start) start ;;
        stop) stop ;;
        status) status ;;
        stop-node) check_node "${1:-}"; node "$1" stop rabbitmq ;;
        start-node) check_node "${1:-}"; node "$1" start rabbitmq ;;
        kill-node) check_node "${1:-}"; node "$1" kill rabbitmq ;;
        vhost) node 1 vhost "$@" ;;
        leaders) leaders "${1:?a vhost}" ;;
        -h | --help | help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' ;;
        *) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 1 ;;
    esac
}

main "$@"
