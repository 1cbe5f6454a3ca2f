#!/bin/sh
# test_sample_ref.sh DDPM COMPARE DATA_DIR WORK_DIR — `ddpm sample` against the PyTorch twin of diffusers'
# samplers (tests/data/sample_ref, made by make_sample_ref.py from the same network and x_T), and the
# per-image noise streams: the same seed gives the same images whatever --batch and --threads.
DDPM=$1
COMPARE=$2
DATA=$3
TMP=$4
rm -rf "$TMP" && mkdir -p "$TMP" || exit 1
. "$(dirname "$0")/cli_lib.sh"
export OMP_WAIT_POLICY=passive
REF=$DATA/sample_ref/refs.safetensors
XT=$DATA/sample_ref/x_T.safetensors
MODEL=$DATA/unet_tiny

# compare NAME REF_NAME TOLERANCE-ARGS...: $TMP/NAME.safetensors (tensor "samples") against the reference.
compare() {
    name=$1
    ref=$2
    shift 2
    if ! "$COMPARE" "$TMP/$name.safetensors" samples "$REF" "$ref" "$@" >"$TMP/cmp" 2>&1; then
        fail "$name: $(cat "$TMP/cmp")"
    fi
    echo "$name: $(cat "$TMP/cmp")"
}

# The runs of the reference. float32 rounding alone (the reference in float32 against float64) moves the
# unclipped runs of this untrained network (values up to 550) by up to 3e-4 and DDIM-10 by 6e-5: each element
# may differ by 1e-4 plus twice its own spread. Clipped DDIM-50 on this network is chaotic (x0_hat is clipped
# nearly everywhere, so each step applies the random network's Jacobian again): float32 rounding alone moves
# it by 0.27, so it is held to 1e-4 plus twice the largest spread.
expect 0 sample --model "$MODEL" --noise "$XT" --sampler ddim --steps 10 --eta 0 --clip on \
    --out "$TMP/ddim10.png" --save-tensor "$TMP/ddim10.safetensors"
compare ddim10 ddim10 --atol 1e-4 --spread ddim10_f64 2
expect 0 sample --model "$MODEL" --noise "$XT" --sampler ddim --steps 50 --eta 0 --clip on \
    --out "$TMP/ddim50.png" --save-tensor "$TMP/ddim50.safetensors"
compare ddim50 ddim50 --atol 1e-4 --spread ddim50_f64 2 --spread-global
expect 0 sample --model "$MODEL" --noise "$XT" --sampler ddim --steps 50 --eta 0 --clip off \
    --out "$TMP/ddim50_noclip.png" --save-tensor "$TMP/ddim50_noclip.safetensors"
compare ddim50_noclip ddim50_noclip --atol 1e-4 --spread ddim50_noclip_f64 2
expect 0 sample --model "$MODEL" --noise "$XT" --sampler dpmpp2m --steps 20 \
    --out "$TMP/dpmpp20.png" --save-tensor "$TMP/dpmpp20.safetensors"
compare dpmpp20 dpmpp20 --atol 1e-4 --spread dpmpp20_f64 2

# Per-image noise: DDPM ancestral over 100 steps, 16 images, in batches of 16 and of 1, with 1 and 2 threads.
for run in "16 1" "16 2" "1 1" "1 2"; do
    set -- $run
    expect 0 sample --model "$MODEL" --sampler ddpm --steps 100 --num 16 --seed 7 --batch "$1" --threads "$2" \
        --out "$TMP/b$1t$2.png" --save-tensor "$TMP/b$1t$2.safetensors"
done
for other in b16t2 b1t1 b1t2; do
    if ! "$COMPARE" "$TMP/$other.safetensors" samples "$TMP/b16t1.safetensors" samples --atol 1e-5 \
        >"$TMP/cmp" 2>&1; then
        fail "ddpm 100 steps, $other against b16t1: $(cat "$TMP/cmp")"
    fi
    echo "$other vs b16t1: $(cat "$TMP/cmp")"
done
# Bit for bit at the same batch and thread count.
expect 0 sample --model "$MODEL" --sampler ddpm --steps 100 --num 16 --seed 7 --batch 16 --threads 2 \
    --out "$TMP/again.png" --save-tensor "$TMP/again.safetensors"
cmp -s "$TMP/again.safetensors" "$TMP/b16t2.safetensors" || fail "two identical runs differ"
# Another seed gives other images.
expect 0 sample --model "$MODEL" --sampler ddpm --steps 100 --num 16 --seed 8 --batch 16 --threads 2 \
    --out "$TMP/seed8.png" --save-tensor "$TMP/seed8.safetensors"
cmp -s "$TMP/seed8.safetensors" "$TMP/b16t2.safetensors" && fail "seeds 7 and 8 give the same images"

[ "$fails" -eq 0 ] || { echo "test_sample_ref: $fails of $checks checks failed"; exit 1; }
rm -rf "$TMP"
echo "test_sample_ref: OK ($checks checks)"
