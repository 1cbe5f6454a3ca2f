#!/bin/sh
# test_train_cli.sh — end-to-end checks of `ddpm train` and `ddpm plot`: the run folder's files, exact resume
# (N steps then --resume to 2N equals 2N steps in one run, byte for byte, also for a cosine run stopped by
# SIGINT), SIGTERM, kill -9 during checkpoint writes leaving a loadable checkpoint, one-line errors for bad
# input, and the loss plot of the produced log.
# usage: test_train_cli.sh PATH/TO/ddpm SOURCE_DIR
set -u
DDPM=${1:-}
SRC=${2:-}
if [ -z "$DDPM" ] || [ ! -x "$DDPM" ]; then
    echo "test_train_cli: SKIPPED: no ddpm program at '$DDPM'"
    exit 77
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ddpm_train_cli.XXXXXX") || exit 1
bg=
trap 'if [ -n "$bg" ]; then kill -9 $bg 2>/dev/null; fi; rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM
. "$(dirname "$0")/cli_lib.sh"

FOLDER=$SRC/tests/data/folder
MNIST=$SRC/data/mnist-sample
# tiny: the 8 x 8 RGB preset on the four images of tests/data/folder
TINY="--data folder:$FOLDER --model tiny --batch 4 --warmup 2 --lr 1e-3 --sample-every 0 --threads 1"

expect_error() {   # expect_error WANT_RC TEXT ARGS...: the status and exactly one "ddpm: error:" line with TEXT
    want=$1
    text=$2
    shift 2
    expect "$want" "$@"
    n=$(grep -c . "$TMP/err")
    if [ "$n" -ne 1 ] || ! grep -q '^ddpm: error: ' "$TMP/err"; then
        fail "ddpm $*: stderr is not one 'ddpm: error:' line: $(cat "$TMP/err")"
    elif ! grep -q -F -- "$text" "$TMP/err"; then
        fail "ddpm $*: error line lacks '$text': $(cat "$TMP/err")"
    fi
}
same() {   # same FILE_A FILE_B WHAT
    cmp -s "$1" "$2" || fail "$3: $1 and $2 differ"
}
same_run() {   # same_run DIR_A DIR_B WHAT: final weights (EMA), raw weights and AdamW moments byte for byte
    same "$1/unet/diffusion_pytorch_model.safetensors" "$2/unet/diffusion_pytorch_model.safetensors" "$3 (EMA weights)"
    same "$1/training_state.safetensors" "$2/training_state.safetensors" "$3 (weights and optimiser state)"
}
last_step() {   # the step of the last complete line of a log.csv (0 if none)
    s=$(tail -n 1 "$1" 2>/dev/null | cut -d, -f1)
    case $s in '' | *[!0-9]*) echo 0 ;; *) echo "$s" ;; esac
}

# ------------------------------------------------------------------ help
expect 0 train --help
grep -q -F -- "--resume DIR" "$TMP/out" || fail "ddpm train --help lacks --resume"
expect 0 plot --help

# ------------------------------------------------------------------ one run: the files of a run folder
expect 0 train $TINY --out "$TMP/a" --steps 12 --checkpoint-every 4 --keep-checkpoints 2 --sample-every 6 \
    --sample-num 4 --sample-steps 4
for f in log.csv loss.png samples/step-6.png samples/step-12.png model_index.json unet/config.json \
         unet/diffusion_pytorch_model.safetensors scheduler/scheduler_config.json training_state.safetensors \
         training_state.json train_options.txt checkpoints/checkpoint-8 checkpoints/checkpoint-4; do
    [ -e "$TMP/a/$f" ] || fail "ddpm train wrote no $f"
done
head -n 1 "$TMP/a/log.csv" | grep -q '^step,loss,smoothed_loss,lr,grad_norm,images_per_s,elapsed_s$' ||
    fail "log.csv header: $(head -n 1 "$TMP/a/log.csv")"
[ "$(wc -l <"$TMP/a/log.csv")" -eq 13 ] || fail "log.csv of 12 steps has $(wc -l <"$TMP/a/log.csv") lines"
[ "$(last_step "$TMP/a/log.csv")" -eq 12 ] || fail "log.csv does not end at step 12"
grep -q "step 12/12" "$TMP/out" || fail "no plain progress line for step 12: $(cat "$TMP/out")"
expect 0 info "$TMP/a/unet/diffusion_pytorch_model.safetensors"
expect_error 2 "already holds a training run" train $TINY --out "$TMP/a" --steps 12

# ------------------------------------------------------------------ exact resume: 6 + 6 == 12
expect 0 train $TINY --out "$TMP/b" --steps 6 --checkpoint-every 4
expect 0 train --resume "$TMP/b" --steps 12 --threads 1
same_run "$TMP/a" "$TMP/b" "12 steps vs 6 + resume to 12"
[ "$(wc -l <"$TMP/b/log.csv")" -eq 13 ] || fail "resumed log.csv has $(wc -l <"$TMP/b/log.csv") lines, want 13"
expect_error 2 "keeps its settings" train --resume "$TMP/b" --steps 20 --lr 5e-4

# ------------------------------------------------------------------ cosine run stopped by SIGINT, resumed
C="$TINY --lr-schedule cosine --steps 1000 --checkpoint-every 0 --log-every 10000"
expect 0 train $C --out "$TMP/c1"
"$DDPM" train $C --out "$TMP/c2" >"$TMP/c2.out" 2>"$TMP/c2.err" &
bg=$!
i=0
while [ "$(last_step "$TMP/c2/log.csv")" -lt 100 ] && [ $i -lt 600 ] && kill -0 $bg 2>/dev/null; do
    sleep 0.05
    i=$((i + 1))
done
kill -INT $bg 2>/dev/null
wait $bg
rc=$?
bg=
stopped=$(last_step "$TMP/c2/log.csv")
if [ "$rc" -eq 130 ]; then
    grep -q "interrupted at step $stopped; resume with: ddpm train --resume $TMP/c2 --steps 1000" "$TMP/c2.err" ||
        fail "SIGINT message: $(cat "$TMP/c2.err") (log at step $stopped)"
    [ -d "$TMP/c2/checkpoints/checkpoint-$stopped" ] || fail "SIGINT at step $stopped wrote no checkpoint"
    expect 0 train --resume "$TMP/c2" --threads 1
    same_run "$TMP/c1" "$TMP/c2" "cosine 1000 steps vs SIGINT at step $stopped + resume"
else
    fail "SIGINT: exit $rc (want 130) at step $stopped: $(cat "$TMP/c2.err")"
fi

# ------------------------------------------------------------------ NaN: one error line, the last checkpoint intact
expect_error 1 "NaN" train $TINY --out "$TMP/n" --steps 50 --lr 1e3 --warmup 0 --grad-clip 0 --checkpoint-every 1
ck=$(sed -n 's/.*the last checkpoint, \(.*\), is intact.*/\1/p' "$TMP/err")
if [ -n "$ck" ] && [ -d "$ck" ]; then
    expect 0 info "$ck/unet/diffusion_pytorch_model.safetensors"
    expect 0 info "$ck/training_state.safetensors"
    [ -e "$TMP/n/training_state.json" ] && fail "a diverged run saved a final model"
else
    fail "NaN: the error names no existing checkpoint: $(cat "$TMP/err")"
fi

# ------------------------------------------------------------------ SIGTERM
"$DDPM" train $TINY --steps 100000 --checkpoint-every 0 --out "$TMP/t" >"$TMP/t.out" 2>"$TMP/t.err" &
bg=$!
i=0
while [ "$(last_step "$TMP/t/log.csv")" -lt 5 ] && [ $i -lt 600 ] && kill -0 $bg 2>/dev/null; do
    sleep 0.05
    i=$((i + 1))
done
kill -TERM $bg 2>/dev/null
wait $bg
rc=$?
bg=
[ "$rc" -eq 143 ] || fail "SIGTERM: exit $rc (want 143): $(cat "$TMP/t.err")"
grep -q "interrupted at step" "$TMP/t.err" || fail "SIGTERM message: $(cat "$TMP/t.err")"

# ------------------------------------------------------------------ kill -9 during checkpoint writes
# The mnist preset (1.7 M parameters, ~27 MB per checkpoint) on data/mnist-sample, a checkpoint every step.
K="--data mnist --data-dir $MNIST --model mnist --batch 2 --checkpoint-every 1 --keep-checkpoints 2
   --sample-every 0 --threads 1"
for round in 1 2 3 4 5; do
    "$DDPM" train $K --steps 100000 ${resume_opt:-"--out"} "$TMP/k" >"$TMP/k.out" 2>"$TMP/k.err" &
    bg=$!
    i=0
    want=$(($(last_step "$TMP/k/log.csv") + 2))
    while [ "$(last_step "$TMP/k/log.csv")" -lt $want ] && [ $i -lt 600 ] && kill -0 $bg 2>/dev/null; do
        sleep 0.05
        i=$((i + 1))
    done
    if [ $round -le 3 ]; then   # a random moment, 0 to 0.255 s later
        sleep "$(printf "0.%03d" "$(od -An -N1 -tu1 /dev/urandom)")"
    else                        # while a checkpoint is being written (its temporary folder exists)
        i=0
        until ls -a "$TMP/k/checkpoints" 2>/dev/null | grep -q '^\.tmp-' || [ $i -ge 3000 ]; do i=$((i + 1)); done
    fi
    kill -9 $bg 2>/dev/null
    wait $bg 2>/dev/null
    bg=
    ls -a "$TMP/k/checkpoints" 2>/dev/null | grep -q '^\.tmp-' && hits=$((${hits:-0} + 1))
    resume_opt=--resume
    # the newest checkpoint-<step> folder is complete (older ones may be half removed by the pruning)
    step=$(ls "$TMP/k/checkpoints" 2>/dev/null | sed -n 's/^checkpoint-\([0-9]*\)$/\1/p' | sort -n | tail -n 1)
    if [ -z "$step" ]; then
        fail "kill -9 round $round: no checkpoint folder: $(ls "$TMP/k/checkpoints" 2>&1)"
        continue
    fi
    expect 0 info "$TMP/k/checkpoints/checkpoint-$step/unet/diffusion_pytorch_model.safetensors"
    expect 0 info "$TMP/k/checkpoints/checkpoint-$step/training_state.safetensors"
done
echo "test_train_cli: kill -9 landed inside a checkpoint write in ${hits:-0} of 5 rounds"
expect 0 forward --model "$TMP/k/checkpoints/checkpoint-$step" --in "$SRC/tests/data/unet_mnist/inputs.safetensors" \
    --out "$TMP/k_forward.safetensors" --threads 2
expect 0 train --resume "$TMP/k" --steps $((step + 1)) --checkpoint-every 0
[ "$(last_step "$TMP/k/log.csv")" -eq $((step + 1)) ] || fail "resume after kill -9: log does not end at $((step + 1))"

# ------------------------------------------------------------------ bad input: one error line, non-zero exit
mkdir -p "$TMP/empty" "$TMP/mixed" "$TMP/badidx"
cp "$SRC/tests/data/io/gray.png" "$SRC/tests/data/io/rgb.png" "$TMP/mixed/"
cp "$MNIST"/*.gz "$TMP/badidx/"
head -c 3000 "$MNIST/train-images-idx3-ubyte.gz" >"$TMP/badidx/train-images-idx3-ubyte.gz"
expect_error 1 "nonexistent" train --data mnist --data-dir "$TMP/nonexistent" --model mnist --out "$TMP/x" --steps 1
expect_error 1 "train-images" train --data mnist --data-dir "$TMP/badidx" --model mnist --out "$TMP/x" --steps 1
expect_error 1 "empty" train --data "folder:$TMP/empty" --model tiny --out "$TMP/x" --steps 1
expect_error 1 "gray" train --data "folder:$TMP/mixed" --model tiny --out "$TMP/x" --steps 1
expect_error 1 "nope" train --data "folder:$FOLDER" --model nope --out "$TMP/x" --steps 1
expect_error 2 "did you mean 'cosine'" train --data "folder:$FOLDER" --model tiny --out "$TMP/x" --schedule cosin
expect_error 1 "batch 20000" train --data "folder:$FOLDER" --model mnist --out "$TMP/x" --batch 20000 --steps 1
expect_error 1 "is not the network of the run" train --resume "$TMP/a" --model mnist --steps 20
expect_error 1 "trained on 5" train --resume "$TMP/a" --data mnist --data-dir "$MNIST" --steps 20
expect_error 2 "--data" train --model tiny --out "$TMP/x"
expect_error 2 "--model" train --data "folder:$FOLDER" --out "$TMP/x"
DDPM_DATA=$TMP/nodata
export DDPM_DATA
expect_error 1 "ddpm get-data fashion-mnist" train --data fashion-mnist --model mnist --out "$TMP/x"
unset DDPM_DATA
expect_error 2 "did you mean 'mnist'" train --data mnsit --model mnist --out "$TMP/x"
expect_error 2 "--out" train --data mnist --data-dir "$MNIST" --model mnist
expect_error 2 "--objective" train $TINY --out "$TMP/x" --objective vv
expect_error 1 "no training state" train --resume "$TMP/nothing" --steps 5
[ -e "$TMP/x" ] && fail "a failed ddpm train left its --out folder"

# ------------------------------------------------------------------ ddpm plot
expect 0 plot "$TMP/b/log.csv" --out "$TMP/plot.png"
[ -s "$TMP/plot.png" ] || fail "ddpm plot wrote no PNG"
expect 0 plot "$TMP/b/log.csv" --y linear --smooth 0
[ -s "$TMP/b/loss.png" ] || fail "ddpm plot wrote no loss.png beside the log"
{ head -n 3 "$TMP/b/log.csv"; echo "4,oops,1,1,1,1,1"; } >"$TMP/bad.csv"
expect_error 1 "bad.csv:4" plot "$TMP/bad.csv" --out "$TMP/bad.png"
[ -e "$TMP/bad.png" ] && fail "ddpm plot of a bad log left a picture"
expect_error 1 "missing.csv" plot "$TMP/missing.csv"

echo "test_train_cli: $checks runs, $fails failures"
[ "$fails" -eq 0 ]
