#!/bin/sh
# test_eval_cli.sh — `ddpm eval` end to end: calibration rows behave as they must (training images are copies:
# memorisation ratio 0; real test images score far better than blurred ones), samples drawn by eval score exactly
# as the same samples stored and read back (tensor and PNG folder), results do not depend on --batch or --threads,
# --nll on a shortened diffusion, JSON output, and one-line refusals with the documented exit status.
# usage: test_eval_cli.sh PATH/TO/ddpm SOURCE_DIR
set -u
DDPM=${1:-}
ROOT=${2:-.}
if [ -z "$DDPM" ] || [ ! -x "$DDPM" ]; then
    echo "test_eval_cli: SKIPPED: no ddpm program at '$DDPM'"
    exit 77
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ddpm_eval_cli.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM
. "$(dirname "$0")/cli_lib.sh"

DATA=$ROOT/data/mnist-sample
MODEL=$ROOT/models/mnist
TINY=$ROOT/tests/data/unet_tiny
XT=$ROOT/tests/data/sample_xT_tiny.safetensors
E="eval --data mnist --data-dir $DATA --threads 2"

# json_num FILE KEY [NTH]: the NTH (default 1) number after "KEY": in a JSON file
json_num() {
    grep -o "\"$2\":[^,}]*" "$1" | sed -n "${3:-1}p" | sed 's/.*: *//; s/[^-0-9.eE+]//g'
}

# calibration: 32 images per row (the sample has 64 test images)
# shellcheck disable=SC2086
expect 0 $E --calibrate --num 32 --json "$TMP/cal.json"
[ -s "$TMP/cal.json" ] || fail "--calibrate wrote no JSON"
r_test=$(json_num "$TMP/cal.json" memorisation_ratio 1)
r_train=$(json_num "$TMP/cal.json" memorisation_ratio 2)
f_test=$(json_num "$TMP/cal.json" fid 1)
f_blur=$(json_num "$TMP/cal.json" fid 4)
awk -v a="$r_train" 'BEGIN { exit !(a == 0) }' || fail "training images: memorisation ratio $r_train (want 0: they are copies)"
awk -v a="$r_test" 'BEGIN { exit !(a > 0.7 && a < 1.4) }' || fail "test images: memorisation ratio $r_test (want about 1)"
awk -v a="$f_test" -v b="$f_blur" 'BEGIN { exit !(a >= 0 && b > a) }' || fail "FID test $f_test, blurred $f_blur (want blurred worse)"
s_test=$(json_num "$TMP/cal.json" feature_spread 1)
s_blur=$(json_num "$TMP/cal.json" feature_spread 4)
awk -v a="$s_test" -v b="$s_blur" 'BEGIN { exit !(a > 0.5 && a < 2 && b < a) }' ||
    fail "feature spread: test $s_test, blurred $s_blur (want about 1, and less for blurred images)"

# drawn samples (10 DDIM steps keep it short), stored and scored again: identical numbers
# shellcheck disable=SC2086
expect 0 $E --model "$MODEL" --num 20 --steps 10 --batch 7 --save-samples "$TMP/s.safetensors" --json "$TMP/a.json"
grep -q '"label_agreement"' "$TMP/a.json" || fail "drawn conditional samples have no label agreement"
# shellcheck disable=SC2086
expect 0 $E --samples "$TMP/s.safetensors" --json "$TMP/b.json"
fa=$(json_num "$TMP/a.json" fid)
fb=$(json_num "$TMP/b.json" fid)
[ -n "$fa" ] && [ "$fa" = "$fb" ] || fail "FID drawn $fa vs stored $fb"
[ "$(json_num "$TMP/a.json" label_agreement)" = "$(json_num "$TMP/b.json" label_agreement)" ] ||
    fail "label agreement differs between drawn and stored samples"
# another batch and thread count: the same numbers
# shellcheck disable=SC2086
expect 0 eval --data mnist --data-dir "$DATA" --threads 1 --model "$MODEL" --num 20 --steps 10 --batch 20 --json "$TMP/c.json"
# (up to float32 rounding of batch-dependent kernels in the samples: FID within 1e-3 relative)
fc=$(json_num "$TMP/c.json" fid)
awk -v a="$fa" -v b="$fc" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-3 * a) }' ||
    fail "results depend on --batch/--threads: FID $fa vs $fc"
[ "$(json_num "$TMP/a.json" label_histogram)" = "$(json_num "$TMP/c.json" label_histogram)" ] ||
    fail "label histogram depends on --batch/--threads"
# the same images as a PNG folder (8-bit, so close but not identical)
expect 0 sample --model "$MODEL" --num 20 --steps 10 --individual "$TMP/png"
# shellcheck disable=SC2086
expect 0 $E --samples "$TMP/png" --json "$TMP/p.json"
fp=$(json_num "$TMP/p.json" fid)
awk -v a="$fa" -v b="$fp" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d < 0.1 * a + 1) }' ||
    fail "FID of the PNG folder $fp vs the tensor $fa"

# bits/dim on a 20-step diffusion (the shipped model with a shortened scheduler)
mkdir -p "$TMP/m20"
cp -r "$MODEL/unet" "$MODEL/model_index.json" "$TMP/m20/"
mkdir -p "$TMP/m20/scheduler"
sed 's/"num_train_timesteps": *1000/"num_train_timesteps": 20/' "$MODEL/scheduler/scheduler_config.json" \
    >"$TMP/m20/scheduler/scheduler_config.json"
# shellcheck disable=SC2086
expect 0 $E --model "$TMP/m20" --samples "$TMP/s.safetensors" --nll 3 --nll-start 2 --json "$TMP/n.json"
b=$(json_num "$TMP/n.json" bits_per_dim)
awk -v a="$b" 'BEGIN { exit !(a > 0 && a < 20) }' || fail "bits/dim $b"
grep -q "bits/dim" "$TMP/out" || fail "no bits/dim line: $(cat "$TMP/out")"

# refusals
# shellcheck disable=SC2086
expect_error 2 "--data cifar10" eval --data cifar10 --num 10
expect_error 2 "--data" eval --num 10
# shellcheck disable=SC2086
expect_error 2 "the mnist test set has 64 images" $E --model "$MODEL" --num 100
# shellcheck disable=SC2086
expect_error 1 "images are 28x28" $E --model "$TINY" --num 10
# shellcheck disable=SC2086
expect_error 1 "has shape" $E --samples "$XT"
# shellcheck disable=SC2086
expect_error 1 "no such file" $E --samples "$TMP/missing.safetensors"
# shellcheck disable=SC2086
expect_error 2 "exclude each other" $E --samples "$TMP/s.safetensors" --calibrate
# shellcheck disable=SC2086
expect_error 2 "--num 30" $E --samples "$TMP/s.safetensors" --num 30
# shellcheck disable=SC2086
expect_error 2 "unknown option" $E --bogus 1
mkdir -p "$TMP/big"
expect 0 sample --model "$TINY" --num 1 --steps 1 --individual "$TMP/big"
# shellcheck disable=SC2086
expect_error 1 "images are 28x28" $E --samples "$TMP/big"
if [ -f "$ROOT/models/eval/fashion-mnist-classifier.safetensors" ]; then
    # shellcheck disable=SC2086
    expect_error 1 "trained on fashion-mnist" $E --samples "$TMP/s.safetensors" \
        --classifier "$ROOT/models/eval/fashion-mnist-classifier.safetensors"
fi
# shellcheck disable=SC2086
expect_error 2 "--nll 60 --nll-start 10" $E --samples "$TMP/s.safetensors" --nll 60 --nll-start 10

# train-classifier: a short run on the 64-image sample gives a classifier eval accepts; bad outputs and options
expect 0 train-classifier --data mnist --data-dir "$DATA" --epochs 1 --batch 16 --threads 1 --out "$TMP/clf.safetensors"
contains "$TMP/out" "test accuracy" "train-classifier reports its test accuracy"
# shellcheck disable=SC2086
expect 0 $E --samples "$TMP/s.safetensors" --classifier "$TMP/clf.safetensors"
expect_error 2 "is not a regular file" train-classifier --data mnist --data-dir "$DATA" --epochs 1 --out "$TMP"
expect_error 2 "does not exist" train-classifier --data mnist --data-dir "$DATA" --epochs 1 --out "$TMP/no/clf.safetensors"
expect_error 2 "--data cifar" train-classifier --data cifar --data-dir "$DATA" --out "$TMP/c2.safetensors"
expect_error 2 "--epochs" train-classifier --data mnist --data-dir "$DATA" --epochs 0 --out "$TMP/c2.safetensors"
[ -e "$TMP/c2.safetensors" ] && fail "a refused train-classifier wrote its output"

printf 'not a safetensors file' >"$TMP/bad.safetensors"
# shellcheck disable=SC2086
expect_error 1 "bad.safetensors" $E --samples "$TMP/s.safetensors" --classifier "$TMP/bad.safetensors"

if [ "$fails" -ne 0 ]; then
    echo "test_eval_cli: $fails of $checks checks failed"
    exit 1
fi
echo "test_eval_cli: OK ($checks runs)"
