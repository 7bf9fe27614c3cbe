#!/usr/bin/env bash
# beside.sh LOG READY BACKGROUND FOREGROUND [CLEANUP]: runs the shell command BACKGROUND beside
# FOREGROUND. FOREGROUND starts once LOG (BACKGROUND's output) has a line matching the regular
# expression READY, or BACKGROUND has ended. LOG is printed once both have ended; FOREGROUND's output
# goes to the terminal as usual. Exits non-zero when either failed. An interrupt (SIGINT, SIGTERM or
# SIGHUP, to this script or its process group) stops both (each runs in a session of its own), then
# runs CLEANUP for what BACKGROUND may have left in sessions of their own (servers).
# `make test` runs the fault suite beside the main run with it (Makefile, docs/running.md).
set -uo pipefail

log=$1 ready=$2 background=$3 foreground=$4 cleanup=${5:-}
mkdir -p "$(dirname "$log")"
: >"$log"
setsid bash -c "$background" >"$log" 2>&1 &
session=$!
front=
# Both runs have sessions of their own, so a signal to this script alone (make passes SIGTERM only to
# its child) or to the terminal's process group (Ctrl-C) stops both, and whatever they started there.
interrupted() {
    [[ -n "$front" ]] && pkill -TERM -s "$front" 2>/dev/null
    pkill -TERM -s "$session" 2>/dev/null
    wait 2>/dev/null
    [[ -n "$cleanup" ]] && bash -c "$cleanup"
    exit 130
}
trap interrupted INT TERM HUP
echo "==> beside this, with its output in $log: $background"
while kill -0 "$session" 2>/dev/null && ! grep -Eq -- "$ready" "$log"; do sleep 0.2; done

# In the background and waited for: `wait` returns as soon as a trapped signal arrives.
setsid bash -c "$foreground" &
front=$!
wait "$front"
status=$?
if kill -0 "$session" 2>/dev/null; then
    echo "==> waiting for: $background (tail -f $log)"
fi
wait "$session"
background_status=$?
trap - INT TERM HUP
echo "==> $background: exit $background_status; its output ($log):"
cat "$log"
((status == 0 && background_status == 0))
