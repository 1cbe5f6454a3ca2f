#!/bin/sh
# test_shipped_model.sh DDPM COMPARE WORK_DIR — the model shipped in models/mnist samples digits with no training
# step (DDIM and DDPM, with guidance), and DDPM ancestral sampling gives the same images for batches of
# 1 and 4 and for 1 and 2 threads over 50 steps (within 1e-5; bit for bit at the same batch and thread count).
DDPM=$1
COMPARE=$2
TMP=$3
rm -rf "$TMP" && mkdir -p "$TMP" || exit 1
. "$(dirname "$0")/cli_lib.sh"
export OMP_WAIT_POLICY=passive

# The default model (no --model): DDPM_DEFAULT_MODEL, the source tree's models/mnist.
expect 0 sample --sampler ddim --steps 25 --num 10 --cols 10 --out "$TMP/ddim.png" --save-tensor "$TMP/ddim.safetensors"
"$COMPARE" --digits "$TMP/ddim.safetensors" samples >"$TMP/cmp" 2>&1 || fail "ddim samples: $(cat "$TMP/cmp")"

for run in "4 2" "1 1" "4 1"; do
    set -- $run
    expect 0 sample --sampler ddpm --steps 50 --num 4 --class 1,3,5,7 --seed 5 --batch "$1" --threads "$2" \
        --out "$TMP/b$1t$2.png" --save-tensor "$TMP/b$1t$2.safetensors"
done
"$COMPARE" --digits "$TMP/b4t2.safetensors" samples >"$TMP/cmp" 2>&1 || fail "ddpm samples: $(cat "$TMP/cmp")"
for other in b1t1 b4t1; do
    "$COMPARE" "$TMP/$other.safetensors" samples "$TMP/b4t2.safetensors" samples --atol 1e-5 >"$TMP/cmp" 2>&1 ||
        fail "ddpm 50 steps, $other against b4t2: $(cat "$TMP/cmp")"
    echo "$other vs b4t2: $(cat "$TMP/cmp")"
done
expect 0 sample --sampler ddpm --steps 50 --num 4 --class 1,3,5,7 --seed 5 --batch 4 --threads 2 \
    --out "$TMP/again.png" --save-tensor "$TMP/again.safetensors"
cmp -s "$TMP/again.safetensors" "$TMP/b4t2.safetensors" || fail "two identical runs differ"

[ "$fails" -eq 0 ] || { echo "test_shipped_model: $fails of $checks checks failed"; exit 1; }
rm -rf "$TMP"
echo "test_shipped_model: OK ($checks checks)"
