# shellcheck shell=bash
# Shared helpers for the scripts in this folder. Source it; don't run it.
#
# Everything Cyclorama runs locally keeps its state under $CYCLORAMA_VAR (default: <repo>/.var):
#   .var/rabbitmq  .var/redis  .var/postgres   server data
#   .var/log/      every log file (servers and services)
#   .var/run/      pid files and locks
#   .var/media     media files served by the gateway
#   .var/admin-token   the admin API token `make up` creates
#   .var/secrets/      the servers' credentials scripts/servers.sh creates (mode 700, files 600):
#                      passwords, and the URLs each service connects with (docs/security.md)

CYCLORAMA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CYCLORAMA_VAR="${CYCLORAMA_VAR:-$CYCLORAMA_ROOT/.var}"
LOG_DIR="$CYCLORAMA_VAR/log"
RUN_DIR="$CYCLORAMA_VAR/run"
# A cluster's nodes share one (scripts/cluster.sh).
SECRETS_DIR="${CYCLORAMA_SECRETS_DIR:-$CYCLORAMA_VAR/secrets}"

# The services that use the broker, Redis and PostgreSQL: each has its own RabbitMQ user of the
# same name (scripts/servers.sh, docs/security.md).
BROKER_ROLES=(api-gateway prompt-service runpod-dispatcher result-ingestor settings-service)

if [[ -t 1 ]]; then
    _bold=$'\e[1m' _red=$'\e[31m' _green=$'\e[32m' _yellow=$'\e[33m' _reset=$'\e[0m'
else
    _bold='' _red='' _green='' _yellow='' _reset=''
fi

say()  { printf '%s==>%s %s\n' "$_bold" "$_reset" "$*"; }
ok()   { printf '%s  ok%s %s\n' "$_green" "$_reset" "$*"; }
warn() { printf '%swarn%s %s\n' "$_yellow" "$_reset" "$*" >&2; }
die()  { printf '%serror%s %s\n' "$_red" "$_reset" "$*" >&2; exit 1; }

ensure_var_dirs() {
    mkdir -p "$LOG_DIR" "$RUN_DIR" "$SECRETS_DIR"
    chmod 700 "$SECRETS_DIR"
}

# Creates a secret file on first run (mode 600, never printed): $1 the file, $2 `hex` or `base64`
# (32 random bytes either way), $3 what it is. Messages go to stderr.
ensure_secret() {
    if [[ ! -s "$1" ]]; then
        mkdir -p "$(dirname "$1")"
        (umask 077 && openssl rand "-$2" 32 >"$1")
        ok "created $3 in $1" >&2
    fi
    chmod 600 "$1"
}

# Writes $2 to file $1, mode 600 from the start (a credential, or a URL holding one).
write_secret() {
    mkdir -p "$(dirname "$1")"
    (umask 077 && printf '%s\n' "$2" >"$1.tmp" && mv -f "$1.tmp" "$1")
}

# True when $1 is a live process. `kill -0` alone is not enough: this sandbox can leave exited
# children as zombies (<defunct>), which still answer kill -0 but hold no ports.
pid_alive() {
    local pid="${1:-}" state
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)"
    [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

# Prints the pid stored in file $1 if that process is alive and, when $2 is given, is that program
# (its name as /proc/<pid>/comm has it; the kernel keeps 15 characters). A pid file outlives its
# process (a crash, a reboot), and its number may since name another process: that one must never
# be taken for ours, let alone sent a signal. Callers check an argument too (pid_has_argument,
# pid_has_folder_option).
live_pid_from() {
    local file="$1" program="${2:-}" pid
    [[ -f "$file" ]] || return 1
    pid="$(head -n1 "$file" 2>/dev/null | tr -dc '0-9')"
    pid_alive "$pid" || return 1
    if [[ -n "$program" && "$(cat "/proc/$pid/comm" 2>/dev/null)" != "${program:0:15}" ]]; then return 1; fi
    echo "$pid"
}

# True when process $1 was started with an argument matching the extended regular expression $2
# in whole.
pid_has_argument() {
    tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | grep -xE -- "$2" >/dev/null
}

# True when process $1 was started with the option $2 followed by the folder $3, in any spelling of
# it (pg_ctl tidies -D's path, a checkout may be reached through a symbolic link).
pid_has_folder_option() {
    local pid="$1" option="$2" folder argument next=false
    folder="$(realpath -m -- "$3")"
    while IFS= read -r -d '' argument; do
        if $next; then [[ "$(realpath -m -- "$argument")" == "$folder" ]] && return 0; next=false; fi
        [[ "$argument" == "$option" ]] && next=true
    done <"/proc/$pid/cmdline" 2>/dev/null
    return 1
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Pid(s) listening on 127.0.0.1:$1 (best effort, for error messages).
port_owner() {
    ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u | tr '\n' ' '
}

# Waits up to $2 seconds for the command "${@:3}" to succeed, polling every 0.2 s.
# $1 names what we wait for (for messages).
wait_until() {
    local what="$1" timeout="$2"; shift 2
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            warn "$what: not ready after ${timeout}s"
            return 1
        fi
        sleep 0.2
    done
}

# Shows the last lines of log file $1 on stderr, to explain a failure.
show_log_tail() {
    local file="$1" lines="${2:-40}"
    if [[ -f "$file" ]]; then
        printf -- '----- last %s lines of %s -----\n' "$lines" "$file" >&2
        tail -n "$lines" "$file" >&2
        printf -- '-----\n' >&2
    else
        printf '(no log file at %s)\n' "$file" >&2
    fi
}

# Runs "$@" with an exclusive lock named $1 (under .var/run), so that concurrent callers
# (several engineers, parallel test suites restarting a server) don't race.
with_lock() {
    local name="$1"; shift
    ensure_var_dirs
    local fd
    exec {fd}>"$RUN_DIR/$name.lock"
    if ! flock -w 300 "$fd"; then
        die "could not take the lock $RUN_DIR/$name.lock within 300 s (held by pid $(lock_holders "$name"))"
    fi
    _LOCK_FDS+=("$fd")
    local rc=0
    "$@" || rc=$?
    exec {fd}>&-
    unset '_LOCK_FDS[-1]'
    return "$rc"
}
_LOCK_FDS=()

# Closes the lock descriptors in a process that is about to start a daemon: a daemon that
# inherited one would hold the lock for as long as it runs. Call it in a subshell.
close_locks() {
    local fd
    for fd in "${_LOCK_FDS[@]}"; do exec {fd}>&-; done
    _LOCK_FDS=()
}

# Pids holding lock $1 open (for error messages).
lock_holders() {
    local file="$RUN_DIR/$1.lock" p
    for p in /proc/[0-9]*; do
        if ls -l "$p/fd" 2>/dev/null | grep -qF -- "$file"; then printf '%s ' "${p#/proc/}"; fi
    done
}
