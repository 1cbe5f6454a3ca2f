#!/bin/sh
# test_model_cli.sh — end-to-end checks of `ddpm init`, `ddpm forward` and `ddpm bench`: a saved pipeline loads
# and runs, seeds are reproducible, bad inputs get one "ddpm: error:" line and the documented exit status
# (2 bad command line, 1 bad data or runtime failure) and leave no output file, bench prints its JSON keys, bench sample counts
# a whole DDIM-50 run.
# usage: test_model_cli.sh PATH/TO/ddpm TESTS_DATA_DIR
set -u
DDPM=${1:-}
DATA=${2:-}
if [ -z "$DDPM" ] || [ ! -x "$DDPM" ]; then
    echo "test_model_cli: SKIPPED: no ddpm program at '$DDPM'"
    exit 77
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ddpm_model_cli.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM
. "$(dirname "$0")/cli_lib.sh"

MN=$DATA/unet_mnist
MNC=$DATA/unet_mnist_class
TINY_IN=$DATA/io/unet_tiny_inputs.safetensors

# ------------------------------------------------------------------ help
for c in init forward bench; do
    expect 0 "$c" --help
    contains "$TMP/out" "usage: ddpm $c" "ddpm $c --help"
done

# ------------------------------------------------------------------ init
expect 0 init --model tiny --seed 1 --out "$TMP/p1" --schedule cosine --prediction v
for f in model_index.json unet/config.json unet/diffusion_pytorch_model.safetensors scheduler/scheduler_config.json; do
    [ -f "$TMP/p1/$f" ] || fail "ddpm init wrote no $f"
done
contains "$TMP/p1/model_index.json" '"DDPMPipeline"' "model_index.json"
contains "$TMP/p1/scheduler/scheduler_config.json" '"v_prediction"' "scheduler_config.json"
contains "$TMP/p1/scheduler/scheduler_config.json" '"squaredcos_cap_v2"' "scheduler_config.json"
expect 0 init --model tiny --seed 1 --out "$TMP/p1b"
expect 0 init --model tiny --seed 2 --out "$TMP/p2"
cmp -s "$TMP/p1/unet/diffusion_pytorch_model.safetensors" "$TMP/p1b/unet/diffusion_pytorch_model.safetensors" ||
    fail "ddpm init: the same seed gave different weights"
cmp -s "$TMP/p1/unet/diffusion_pytorch_model.safetensors" "$TMP/p2/unet/diffusion_pytorch_model.safetensors" &&
    fail "ddpm init: seeds 1 and 2 gave the same weights"
expect 0 init --model "$TMP/p1/unet/config.json" --seed 1 --out "$TMP/p3"
cmp -s "$TMP/p1/unet/diffusion_pytorch_model.safetensors" "$TMP/p3/unet/diffusion_pytorch_model.safetensors" ||
    fail "ddpm init: a preset and its own config.json gave different weights for one seed"
expect_error 2 "--out" init --model tiny
expect_error 2 "--model" init --out "$TMP/x"
expect_error 2 "did you mean 'v'" init --model tiny --out "$TMP/x" --prediction vv
expect_error 2 "--T" init --model tiny --out "$TMP/x" --T 0
expect_error 2 "schedule" init --model tiny --out "$TMP/x" --schedule cosin
expect_error 1 "nope" init --model nope --out "$TMP/x"
[ -e "$TMP/x" ] && fail "failed ddpm init left $TMP/x"

# ------------------------------------------------------------------ forward
expect 0 forward --model "$TMP/p1" --in "$TINY_IN" --out "$TMP/f1.safetensors" --threads 2
expect 0 info "$TMP/f1.safetensors"
contains "$TMP/out" "sample" "forward output"
contains "$TMP/out" "[2, 3, 8, 8]" "forward output shape"
expect 0 forward --model "$TMP/p1" --in "$TINY_IN" --out "$TMP/f2.safetensors" --engine reference
expect 0 forward --model "$TMP/p1" --in "$TINY_IN" --out "$TMP/g1.safetensors" --loss-target
expect 0 info "$TMP/g1.safetensors"
for t in sample loss x_grad conv_in.weight up_blocks.0.attentions.0.to_q.weight conv_out.bias; do
    contains "$TMP/out" "$t" "forward --loss-target output"
done
expect 0 forward --model "$TMP/p1" --in "$TINY_IN" --out "$TMP/g2.safetensors" --loss-target
cmp -s "$TMP/g1.safetensors" "$TMP/g2.safetensors" || fail "ddpm forward --loss-target is not reproducible"
expect_error 2 "--in" forward --model tiny --out "$TMP/y.safetensors"
expect_error 2 "--engine" forward --model tiny --in "$TINY_IN" --out "$TMP/y.safetensors" --engine slow
expect_error 2 "--threads" forward --model tiny --in "$TINY_IN" --out "$TMP/y.safetensors" --threads 0
# NaN in x is refused, naming the element: overwrite x's first float with a quiet NaN
HL=$(od -An -t u8 -N 8 "$TINY_IN" | tr -d ' ')
XOFF=$(dd if="$TINY_IN" bs=1 skip=8 count="$HL" 2>/dev/null | grep -o '"x":{[^}]*}' | sed 's/.*data_offsets":\[\([0-9]*\).*/\1/')
cp "$TINY_IN" "$TMP/nan_in.safetensors"
printf '\000\000\300\177' | dd of="$TMP/nan_in.safetensors" bs=1 seek=$((8 + HL + XOFF)) conv=notrunc 2>/dev/null
expect_error 1 "x[0, 0, 0, 0] is nan, not a finite number" forward --model tiny --in "$TMP/nan_in.safetensors" --out "$TMP/y.safetensors"
# a timestep outside the diffusion's 0..T-1 is refused: overwrite the first timestep with 5000, then -1
TS=$(dd if="$TINY_IN" bs=1 skip=8 count="$HL" 2>/dev/null | grep -o '"timesteps":{[^}]*}')
TOFF=$(echo "$TS" | sed 's/.*data_offsets":\[\([0-9]*\).*/\1/')
case $TS in
    *'"F32"'*) T5000='\000\100\234\105' TNEG='\000\000\200\277' ;;
    *'"I64"'*) T5000='\210\023\000\000\000\000\000\000' TNEG='\377\377\377\377\377\377\377\377' ;;
    *) T5000= TNEG= ; fail "the tiny fixture's timesteps are neither F32 nor I64: $TS" ;;
esac
if [ -n "$T5000" ]; then
    cp "$TINY_IN" "$TMP/t_in.safetensors"
    printf "$T5000" | dd of="$TMP/t_in.safetensors" bs=1 seek=$((8 + HL + TOFF)) conv=notrunc 2>/dev/null
    expect_error 1 "timesteps[0] = 5000 is out of range" forward --model tiny --in "$TMP/t_in.safetensors" --out "$TMP/y.safetensors"
    printf "$TNEG" | dd of="$TMP/t_in.safetensors" bs=1 seek=$((8 + HL + TOFF)) conv=notrunc 2>/dev/null
    expect_error 1 "timesteps[0] = -1 is out of range" forward --model tiny --in "$TMP/t_in.safetensors" --out "$TMP/y.safetensors"
fi
expect_error 2 "core" forward --model tiny --in "$TINY_IN" --out "$TMP/y.safetensors" --threads 100000
expect_error 2 "core" sample --model tiny --num 1 --steps 2 --out "$TMP/y.png" --threads 100000
expect_error 2 "core" train --data mnist --threads 100000
expect_error 1 "'x' has shape [2, 1, 28, 28]" forward --model tiny --in "$MN/inputs.safetensors" --out "$TMP/y.safetensors"
expect_error 1 "class_labels" forward --model "$MNC" --in "$MN/inputs.safetensors" --out "$TMP/y.safetensors"
expect_error 1 "unconditional" forward --model "$MN" --in "$MNC/inputs.safetensors" --out "$TMP/y.safetensors"
sed 's/"num_class_embeds": 10/"num_class_embeds": 5/' "$MNC/config.json" >"$TMP/five.json"
expect_error 1 "class_labels[1] = 7" forward --model "$TMP/five.json" --in "$MNC/inputs.safetensors" --out "$TMP/y.safetensors"
expect_error 1 "no tensor 'x'" forward --model tiny --in "$TMP/f1.safetensors" --out "$TMP/y.safetensors"
expect_error 1 "missing.safetensors" forward --model tiny --in "$TMP/missing.safetensors" --out "$TMP/y.safetensors"
expect_error 1 "" forward --model tiny --in "$TINY_IN" --out "$TMP/nodir/y.safetensors"
[ -e "$TMP/y.safetensors" ] && fail "a failed ddpm forward left its output"

# ------------------------------------------------------------------ bench
expect 0 bench train-step --model tiny --batch 2 --steps 2 --warmup 1 --threads 2 --json
for k in '"ms_per_step"' '"images_per_s"' '"model": "tiny"' '"batch": 2' '"threads": 2' '"steps": 2' \
         '"times_ms": [' '"plan_bytes"' '"cpu"'; do
    contains "$TMP/out" "$k" "bench --json"
done
[ "$(wc -l <"$TMP/out")" -eq 1 ] || fail "bench --json printed more than one line: $(cat "$TMP/out")"
expect 0 bench forward --model tiny --batch 3 --steps 1 --warmup 0
contains "$TMP/out" "images/s" "bench text output"
# sample: 60 DDIM steps walk the 50-step list, then start again from fresh noise; images/s is a whole run
expect 0 bench sample --model tiny --batch 2 --steps 60 --warmup 1 --threads auto --json
for k in '"mode": "sample"' '"threads_auto": true' '"steps": 60' '"final_loss": null'; do
    contains "$TMP/out" "$k" "bench sample --json"
done
ratio=$(sed 's/.*"median_ms": \([0-9.]*\).*"images_per_s": \([0-9.]*\).*/\1 \2/' "$TMP/out" |
        awk '{ r = $2 * 50 * $1 / 1000 / 2; printf "%s", (r > 0.99 && r < 1.01) ? "ok" : r }')   # ms printed to 1e-3
[ "$ratio" = "ok" ] || fail "bench sample: images/s is not batch / (50 x median step) (ratio $ratio)"
[ "$(grep -o '"times_ms": \[[^]]*\]' "$TMP/out" | tr -cd ',' | wc -c)" -eq 59 ] ||
    fail "bench sample: not 60 step times: $(cat "$TMP/out")"
expect 0 bench sample --model tiny --batch 2 --steps 3 --warmup 0
contains "$TMP/out" "a whole DDIM-50 run" "bench sample text output"
contains "$TMP/out" "DDIM step: median" "bench sample text output"
# --profile: a row per op kind and pass of the timed steps, against measured ceilings
expect 0 bench train-step --model tiny --batch 2 --steps 2 --warmup 1 --threads 1 --profile --json
for k in '"profile": [' '"op": "conv", "pass": "forward"' '"op": "conv", "pass": "backward"' '"op": "adamw"' \
         '"ceilings": {"gflops": ' '"profile_rest_ms"'; do
    contains "$TMP/out" "$k" "bench --profile --json"
done
[ "$(wc -l <"$TMP/out")" -eq 1 ] || fail "bench --profile --json printed more than one line"
grep -q '"calls_per_step": 0' "$TMP/out" && fail "bench --profile: a row without calls: $(cat "$TMP/out")"
expect 0 bench sample --model tiny --batch 2 --steps 3 --warmup 0 --profile
contains "$TMP/out" "ceilings measured on" "bench sample --profile"
contains "$TMP/out" "network ops" "bench sample --profile"
grep -q "backward" "$TMP/out" && fail "bench sample --profile: an inference run has no backward rows"
# --precision: bf16 refused in one line without AMX (DDPM_NO_AMX hides it), contradictions are usage errors
export DDPM_NO_AMX=1
expect_error 1 "AMX" bench sample --model tiny --batch 2 --steps 1 --precision bf16
unset DDPM_NO_AMX
expect_error 2 "reference engine computes in fp32" bench forward --model tiny --batch 2 --precision bf16 --engine reference
expect_error 2 "contradicts" bench forward --model tiny --batch 2 --precision fp32 --engine bf16
expect_error 2 "must be fp32 or bf16" bench forward --model tiny --batch 2 --precision fp16
if "$DDPM" bench forward --model tiny --batch 1 --steps 1 --warmup 0 --precision bf16 >/dev/null 2>&1; then
    expect 0 bench train-step --model tiny --batch 2 --steps 2 --warmup 1 --precision bf16 --json
    contains "$TMP/out" '"engine": "bf16"' "bench --precision bf16"
else
    echo "SKIPPED: bf16 runs (this CPU has no AMX)"
fi
expect_error 2 "or auto" bench sample --model tiny --batch 2 --threads many
expect_error 2 "did you mean 'forward'" bench forwrd --batch 2
expect_error 2 "--batch" bench forward --model tiny
expect_error 2 "--steps" bench forward --model tiny --batch 2 --steps 0
expect_error 2 "needs" bench --batch 2

echo "test_model_cli: $checks runs, $fails failures"
[ "$fails" -eq 0 ]
