#!/bin/sh
# test_forward_fixtures.sh — `ddpm forward --loss-target` on a UNet2DModel fixture folder, compared with the
# fixture's PyTorch outputs and gradients by compare_fixture. Skips (77) when the folder is absent.
# usage: test_forward_fixtures.sh PATH/TO/ddpm PATH/TO/compare_fixture FIXTURE_DIR ENGINE [compare options]
set -u
DDPM=$1
COMPARE=$2
FIXTURE=$3
ENGINE=$4
shift 4
name=$(basename "$FIXTURE")
if [ ! -f "$FIXTURE/inputs.safetensors" ] || [ ! -f "$FIXTURE/grads.safetensors" ]; then
    echo "forward $name ($ENGINE): SKIPPED: no fixture folder at $FIXTURE"
    exit 77
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ddpm_fwd.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM
start=$(date +%s)
if ! "$DDPM" forward --model "$FIXTURE" --in "$FIXTURE/inputs.safetensors" --out "$TMP/out.safetensors" \
        --loss-target --engine "$ENGINE" --threads 2; then
    echo "FAIL: ddpm forward --loss-target --engine $ENGINE on $FIXTURE" >&2
    exit 1
fi
echo "ddpm forward ($ENGINE): $(( $(date +%s) - start )) s"
# inference mode must give the same sample as the gradient run
if ! "$DDPM" forward --model "$FIXTURE" --in "$FIXTURE/inputs.safetensors" --out "$TMP/sample.safetensors" \
        --engine "$ENGINE" --threads 2 >/dev/null; then
    echo "FAIL: ddpm forward --engine $ENGINE on $FIXTURE" >&2
    exit 1
fi
"$COMPARE" "$FIXTURE" "$TMP/sample.safetensors" --no-grads "$@" || exit 1
"$COMPARE" "$FIXTURE" "$TMP/out.safetensors" "$@"
