#!/usr/bin/env bash
# leftover-servers.sh [--print] FOLDER: stops the private servers (RabbitMQ, Redis, PostgreSQL) that
# an interrupted fault suite or chaos run left on FOLDER (.var/faults/<lane>), with the ports and
# node name its FOLDER/servers.env says they were started with. With --print it only prints the
# environment it would give `scripts/servers.sh stop` (NAME=value lines).
#
# It acts only with certainty, never on the shared servers: the file must come from this boot of the
# machine (an older file's pid files may name other processes now), name every port and the node
# with plain values (a missing or empty one would make servers.sh fall back to the shared server's), and the
# folder is always FOLDER itself, never read from the file.
#
# Exit status: 0 stopped (or printed), 1 nothing to stop for sure (the reason on standard error),
# 2 wrong usage, otherwise servers.sh stop's. PrivateServers (the tests) and `make test-faults-stop`
# both call it.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
print=false
if [[ "${1:-}" == --print ]]; then print=true; shift; fi
(($# == 1)) || { echo "usage: $0 [--print] FOLDER" >&2; exit 2; }
folder="$(cd "$1" 2>/dev/null && pwd -P)" || { echo "$1: no such folder, nothing to stop" >&2; exit 1; }
settings="$folder/servers.env"
[[ -s "$settings" ]] || { echo "$settings: no file, nothing to stop" >&2; exit 1; }

keys=(CYCLORAMA_RABBITMQ_PORT CYCLORAMA_RABBITMQ_NODE CYCLORAMA_REDIS_PORT CYCLORAMA_POSTGRES_PORT
      CYCLORAMA_RABBITMQ_MANAGEMENT_PORT)
declare -A saved=()
while IFS= read -r line || [[ -n "$line" ]]; do
    [[ "$line" == *=* ]] || continue
    saved["${line%%=*}"]="${line#*=}"
done < "$settings"

boot="$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)"
if [[ -z "$boot" || "${saved[CYCLORAMA_FAULTS_BOOT_ID]:-}" != "$boot" ]]; then
    echo "$settings: written before the machine last started (or without its boot id), skipped" >&2
    exit 1
fi
environment=("CYCLORAMA_VAR=$folder")
for key in "${keys[@]}"; do
    if [[ ! -v "saved[$key]" ]]; then echo "$settings: no $key, skipped" >&2; exit 1; fi
    value="${saved[$key]}"
    # Empty means the shared server's port or node to servers.sh; only the management port may be
    # empty (no management API).
    case "$key" in
        *_MANAGEMENT_PORT) pattern='^[0-9]*$' ;;
        *_PORT) pattern='^[0-9]+$' ;;
        *) pattern='^[A-Za-z0-9@._-]+$' ;;
    esac
    if [[ ! "$value" =~ $pattern ]]; then echo "$settings: $key is not a plain value, skipped" >&2; exit 1; fi
    environment+=("$key=$value")
done

if $print; then
    printf '%s\n' "${environment[@]}"
    exit 0
fi
env "${environment[@]}" bash "$here/servers.sh" stop
