#!/usr/bin/env bash
# Installs the Python clients the tests use (scripts/python-tools.txt: RunPod's official SDK) into
# .var/venv, from PyPI. Idempotent: a venv made from the same list is kept. Not needed to run
# Cyclorama, only to test it (`make test` runs this).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

list="$CYCLORAMA_ROOT/scripts/python-tools.txt"
venv="$CYCLORAMA_VAR/venv"
stamp="$venv/.installed-from"
want="$(sha256sum "$list" | cut -d' ' -f1)"

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    ok "python tools present: $venv"
    exit 0
fi
command -v python3 >/dev/null 2>&1 || die "python3 is needed for the tests' Python clients (apt-get install python3 python3-venv)"
rm -rf "$venv"
say "installing the tests' Python clients into $venv ($(grep -v '^#' "$list" | xargs))"
python3 -m venv "$venv" || die "python3 -m venv failed (apt-get install python3-venv)"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$list"
echo "$want" >"$stamp"
ok "python tools installed: $venv"
