#!/bin/sh
# test_safe_outputs.sh — nothing a user has is lost: outputs replace only regular files (a device, a FIFO and a
# symbolic link keep what they are), two outputs of one run may not share a path, --individual folders are
# replaced whole or not at all, `init` refuses a folder with something in it unless --force, one training writes
# a run folder at a time (the refusal names the holder's pid), a run that died before its first save can be
# started afresh, and a save that fails (a file-size limit standing in for a full disk) waits in memory and
# succeeds once room is made.
# usage: test_safe_outputs.sh PATH/TO/ddpm SOURCE_DIR
set -u
DDPM=${1:-}
ROOT=${2:-.}
if [ -z "$DDPM" ] || [ ! -x "$DDPM" ]; then
    echo "test_safe_outputs: SKIPPED: no ddpm program at '$DDPM'"
    exit 77
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ddpm_safe_outputs.XXXXXX") || exit 1
bg=
cat_pid=
trap 'for p in $bg $cat_pid; do kill -9 $p 2>/dev/null; done; rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM
. "$(dirname "$0")/cli_lib.sh"

TINY=$ROOT/tests/data/unet_tiny
FOLDER=$ROOT/tests/data/folder
TRAIN="--data folder:$FOLDER --model tiny --batch 4 --warmup 2 --lr 1e-3 --sample-every 0 --threads 1"
S="sample --model $TINY --steps 2 --num 2"
is_png() {   # is_png FILE WHAT
    [ "$(od -An -tx1 -N8 "$1" 2>/dev/null | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "$2: $1 is not a PNG"
}
# wait_for FILE TEXT: up to 20 s for TEXT to appear in FILE while $bg runs
wait_for() {
    i=0
    while ! grep -q -F -- "$2" "$1" 2>/dev/null && [ $i -lt 200 ] && kill -0 $bg 2>/dev/null; do
        sleep 0.1
        i=$((i + 1))
    done
    grep -q -F -- "$2" "$1" 2>/dev/null
}

# ------------------------------------------------------------------ what an output path may be
# a character device is written through and stays one
if [ -c /dev/null ] && [ -w /dev/null ]; then
    expect 0 $S --out /dev/null
    [ -c /dev/null ] || fail "ddpm sample --out /dev/null replaced the device"
    expect 0 $S --save-tensor /dev/null
    [ -c /dev/null ] || fail "ddpm sample --save-tensor /dev/null replaced the device"
fi
# a symbolic link stays a link; the file it names gets the image
: >"$TMP/target.png"
chmod 640 "$TMP/target.png"
ln -s target.png "$TMP/link.png"
expect 0 $S --out "$TMP/link.png"
[ -L "$TMP/link.png" ] || fail "a symlinked --out was replaced by a file"
is_png "$TMP/target.png" "the file behind a symlinked --out"
grep -a -q -F "Model" "$TMP/target.png" && grep -a -q -F "$TINY" "$TMP/target.png" ||
    fail "the PNG does not name the model that made it"
[ "$(stat -c %a "$TMP/target.png")" = 640 ] || fail "a replaced file lost its permissions ($(stat -c %a "$TMP/target.png"))"
# a dangling link is refused and kept
ln -s nowhere/x.png "$TMP/dangling.png"
expect_error 1 "symbolic link" $S --out "$TMP/dangling.png"
[ -L "$TMP/dangling.png" ] || fail "a dangling symlinked --out was replaced"
# a FIFO is written through (a reader takes the PNG)
if mkfifo "$TMP/fifo" 2>/dev/null; then
    cat "$TMP/fifo" >"$TMP/from_fifo" &
    cat_pid=$!
    expect 0 $S --out "$TMP/fifo"
    wait $cat_pid
    cat_pid=
    [ -p "$TMP/fifo" ] || fail "--out FIFO was replaced"
    is_png "$TMP/from_fifo" "what a FIFO --out carried"
fi
# a folder is refused by name
mkdir "$TMP/adir"
expect_error 1 "is a directory" $S --out "$TMP/adir"
# text outputs follow the same rule
expect 0 schedule --csv "$TMP/link.png"
[ -L "$TMP/link.png" ] || fail "ddpm schedule --csv replaced a symbolic link"
leftovers=$(find "$TMP" -name '*.tmp*' | head -n 3)
[ -z "$leftovers" ] || fail "temporary files left behind: $leftovers"

# ------------------------------------------------------------------ two outputs at one path
expect_error 2 "name the same path" $S --out "$TMP/same" --save-tensor "$TMP/same"
expect_error 2 "name the same path" $S --out "$TMP/same.png" --trajectory "$TMP/./same.png"
[ ! -e "$TMP/same" ] || fail "a refused run wrote $TMP/same"
cp "$TMP/target.png" "$TMP/exists.png"
ln -s exists.png "$TMP/alias.png"
expect_error 2 "name the same path" $S --out "$TMP/exists.png" --trajectory "$TMP/alias.png"

# ------------------------------------------------------------------ --individual folders
expect 0 sample --model "$TINY" --steps 2 --num 3 --individual "$TMP/ind"
expect 0 sample --model "$TINY" --steps 2 --num 2 --individual "$TMP/ind/"
[ -f "$TMP/ind/000001.png" ] || fail "--individual did not write its images"
[ ! -e "$TMP/ind/000002.png" ] && [ -z "$(ls "$TMP" | grep '^ind\.')" ] ||
    fail "--individual mixed old images with new ones or left its staging folder: $(ls "$TMP" "$TMP/ind")"
: >"$TMP/ind/notes.txt"
expect_error 1 "notes.txt" sample --model "$TINY" --steps 2 --num 2 --individual "$TMP/ind"
[ -f "$TMP/ind/notes.txt" ] && [ -f "$TMP/ind/000001.png" ] || fail "a refused --individual changed the folder"
rm "$TMP/ind/notes.txt"
# a write failure halfway (a file-size limit: the second image does not fit) leaves the folder as it was
cmp_before=$(cksum <"$TMP/ind/000000.png")
(trap "" XFSZ; ulimit -S -f 1; exec "$DDPM" sample --model "$TINY" --steps 2 --num 40 --seed 5 --individual "$TMP/ind") \
    >"$TMP/out" 2>"$TMP/err"
rc=$?
checks=$((checks + 1))
[ "$rc" -eq 1 ] || fail "--individual with no room: exit $rc (want 1): $(cat "$TMP/err")"
[ "$(ls "$TMP/ind" | wc -l)" -eq 2 ] && [ "$(cksum <"$TMP/ind/000000.png")" = "$cmp_before" ] ||
    fail "a failed --individual changed the earlier folder: $(ls "$TMP/ind" | head -n 5)"
[ -z "$(ls "$TMP" | grep '^ind\.')" ] || fail "a failed --individual left $(ls "$TMP" | grep '^ind\.')"

# ------------------------------------------------------------------ a model folder's weights
# a pipeline folder whose unet/ lost its weights is refused (it used to sample noise), naming the config route
expect 0 init --model tiny --seed 3 --out "$TMP/pipe"
expect 0 sample --model "$TMP/pipe" --steps 2 --num 2 --save-tensor "$TMP/plain.safetensors"
expect 0 info "$TMP/pipe"
contains "$TMP/out" "UNet2DModel, 3 -> 3 channels at 8x8" "ddpm info MODEL_DIR"
contains "$TMP/out" "scheduler: DDPMScheduler, T = 1000" "ddpm info MODEL_DIR"
expect_error 1 "did you mean 'mnist'" sample --model mnsit --steps 2 --num 1 --out "$TMP/w.png"
expect_error 1 "a weights file, not a model" sample --model "$TMP/pipe/unet/diffusion_pytorch_model.safetensors" \
    --steps 2 --num 1 --out "$TMP/w.png"
mv "$TMP/pipe/unet/diffusion_pytorch_model.safetensors" "$TMP/pipe/unet/diffusion_pytorch_model.fp16.safetensors"
# the variant that diffusers' save_pretrained(variant="fp16") writes is read
expect 0 sample --model "$TMP/pipe" --steps 2 --num 2 --save-tensor "$TMP/variant.safetensors"
cmp -s "$TMP/plain.safetensors" "$TMP/variant.safetensors" || fail "the fp16 variant file gave other samples"
rm "$TMP/pipe/unet/diffusion_pytorch_model.fp16.safetensors"
expect_error 1 "no weights" sample --model "$TMP/pipe" --steps 2 --num 2 --out "$TMP/noweights.png"
[ ! -e "$TMP/noweights.png" ] || fail "a model folder without weights still sampled"

# ------------------------------------------------------------------ class labels with a preset
# tests/data/folder has two classes (circles, squares): a preset ignores them, and says so; --classes uses them
expect 0 train $TRAIN --out "$TMP/nocls" --steps 2
contains "$TMP/out" "add --classes 2" "labels ignored by an unconditional preset"
expect 0 train $TRAIN --out "$TMP/cls" --steps 2 --classes 2
expect 0 info "$TMP/cls"
contains "$TMP/out" "classes: 3 (class 2 is the null class" "ddpm train --classes 2"
expect 0 sample --model "$TMP/cls" --steps 2 --num 2 --class 1 --guidance 2 --out "$TMP/cls.png"
expect_error 1 "the data has 2 classes" train $TRAIN --out "$TMP/cls3" --steps 2 --classes 3
[ ! -e "$TMP/cls3" ] || fail "a refused training left its folder"

# ------------------------------------------------------------------ init keeps what a folder holds
expect 0 init --model tiny --seed 1 --out "$TMP/m"
w_before=$(cksum <"$TMP/m/unet/diffusion_pytorch_model.safetensors")
expect_error 2 "not empty" init --model tiny --seed 2 --out "$TMP/m"
[ "$(cksum <"$TMP/m/unet/diffusion_pytorch_model.safetensors")" = "$w_before" ] || fail "a refused init changed the weights"
expect 0 init --model tiny --seed 2 --out "$TMP/m" --force
[ "$(cksum <"$TMP/m/unet/diffusion_pytorch_model.safetensors")" != "$w_before" ] || fail "init --force kept the old weights"
mkdir "$TMP/empty"
expect 0 init --model tiny --out "$TMP/empty"
expect_error 2 "not a folder" init --model tiny --out "$TMP/target.png"

# ------------------------------------------------------------------ one writer per run folder
"$DDPM" train $TRAIN --out "$TMP/run" --steps 1000000 --checkpoint-every 0 --log-every 1 >"$TMP/run.out" 2>"$TMP/run.err" &
bg=$!
if wait_for "$TMP/run.out" "step 2/"; then
    expect_error 1 "pid $bg" train $TRAIN --out "$TMP/run" --steps 10
    expect_error 1 "pid $bg" train --resume "$TMP/run" --steps 10
    expect_error 1 "pid $bg" init --model tiny --out "$TMP/run" --force
    kill -INT $bg
    wait $bg
    rc=$?
    checks=$((checks + 1))
    [ "$rc" -eq 130 ] || fail "the first training: exit $rc (want 130): $(cat "$TMP/run.err")"
    expect 0 train --resume "$TMP/run" --steps "$(($(tail -n 1 "$TMP/run/log.csv" | cut -d, -f1) + 2))"
    [ -f "$TMP/run/training_state.json" ] || fail "the first training's folder is incomplete"
else
    fail "the background training made no progress: $(cat "$TMP/run.err")"
fi
bg=

# ------------------------------------------------------------------ no dead end after a death before the first save
mkdir -p "$TMP/dead/checkpoints/.tmp-checkpoint-4-99999/unet"
: >"$TMP/dead/checkpoints/.tmp-checkpoint-4-99999/unet/config.json"
printf 'step,loss\n1,0.5\n' >"$TMP/dead/log.csv"
expect_error 1 "no training state" train --resume "$TMP/dead" --steps 4
expect 0 train $TRAIN --out "$TMP/dead" --steps 4 --checkpoint-every 2
contains "$TMP/out" "starting afresh" "a fresh run over a dead one"
[ -d "$TMP/dead/checkpoints/checkpoint-2" ] && [ -f "$TMP/dead/training_state.json" ] ||
    fail "the fresh run over a dead one saved nothing"
[ ! -e "$TMP/dead/checkpoints/.tmp-checkpoint-4-99999" ] || fail "the dead run's debris is still there"
# a state that cannot be read is not silently started over
echo garbage >"$TMP/dead/training_state.json"
rm -rf "$TMP/dead/checkpoints"
expect_error 2 "cannot be continued" train $TRAIN --out "$TMP/dead" --steps 4

# ------------------------------------------------------------------ a failed final save waits for room
# the log fits under the limit, the model and training state do not; once the limit is lifted the save succeeds
(trap "" XFSZ; ulimit -S -f 8; exec "$DDPM" train $TRAIN --out "$TMP/full" --steps 6 --checkpoint-every 0 --save-retry 60) \
    >"$TMP/full.out" 2>"$TMP/full.err" &
bg=$!
if wait_for "$TMP/full.err" "retrying in"; then
    prlimit --pid "$bg" --fsize=unlimited:unlimited 2>"$TMP/prlimit.err" || fail "prlimit could not lift the limit: $(cat "$TMP/prlimit.err")"
    wait $bg
    rc=$?
    checks=$((checks + 1))
    [ "$rc" -eq 0 ] || fail "a save that waited for room: exit $rc (want 0): $(cat "$TMP/full.err")"
    [ -f "$TMP/full/training_state.json" ] || fail "the waited-for save wrote no training_state.json"
    expect 0 train --resume "$TMP/full" --steps 7
else
    fail "a failed save did not wait for room: $(cat "$TMP/full.err")"
    kill -9 $bg 2>/dev/null
fi
bg=
# with no time to wait, the error says what was lost
(trap "" XFSZ; ulimit -S -f 8; exec "$DDPM" train $TRAIN --out "$TMP/full0" --steps 6 --checkpoint-every 0 --save-retry 0) \
    >"$TMP/out" 2>"$TMP/err"
rc=$?
checks=$((checks + 1))
[ "$rc" -eq 1 ] || fail "a failed save with --save-retry 0: exit $rc (want 1)"
grep -q "steps 1..6 are lost" "$TMP/err" || fail "a failed save does not say what was lost: $(cat "$TMP/err")"

# ------------------------------------------------------------------ everything saved is checksummed
# poke FILE TENSOR: four other bytes at the start of TENSOR's data
poke() {
    hl=$(od -An -t u8 -N 8 "$1" | tr -d ' ')
    off=$(dd if="$1" bs=1 skip=8 count="$hl" 2>/dev/null | grep -o "\"$2\":{[^}]*}" |
          sed 's/.*data_offsets":\[\([0-9]*\).*/\1/')
    [ -n "$off" ] || { fail "no tensor $2 in $1"; return; }
    cur=$(od -An -tx1 -j $((8 + hl + off)) -N 4 "$1" | tr -d ' \n')
    if [ "$cur" = 01020304 ]; then new='\005\006\007\010'; else new='\001\002\003\004'; fi
    printf "$new" | dd of="$1" bs=1 seek=$((8 + hl + off)) conv=notrunc 2>/dev/null
}
expect 0 train $TRAIN --out "$TMP/ck" --steps 4 --checkpoint-every 2 --keep-checkpoints 0
cp -r "$TMP/ck" "$TMP/ck0"
for t in adamw_m adamw_v betas params; do
    rm -rf "$TMP/ck"
    cp -r "$TMP/ck0" "$TMP/ck"
    poke "$TMP/ck/training_state.safetensors" "$t"
    expect_error 1 "corrupt" train --resume "$TMP/ck" --steps 6
done
rm -rf "$TMP/ck"
cp -r "$TMP/ck0" "$TMP/ck"
poke "$TMP/ck/checkpoints/checkpoint-2/unet/diffusion_pytorch_model.safetensors" conv_in.weight
expect_error 1 "corrupt" sample --model "$TMP/ck/checkpoints/checkpoint-2" --steps 2 --num 1 --out "$TMP/ck.png"
# a run folder without its final model points at its newest checkpoint
cp -r "$TMP/ck0" "$TMP/unfinished"
rm -rf "$TMP/unfinished/unet" "$TMP/unfinished/model_index.json" "$TMP/unfinished/scheduler"
expect_error 1 "checkpoints/checkpoint-2" sample --model "$TMP/unfinished" --steps 2 --num 1 --out "$TMP/u.png"
# a garbage state of the run itself is named, never silently replaced by an older checkpoint
echo garbage >"$TMP/ck/training_state.json"
expect_error 1 "checkpoint-2" train --resume "$TMP/ck" --steps 6
contains "$TMP/err" "cannot be read" "a garbage training_state.json"

if [ "$fails" -ne 0 ]; then
    echo "test_safe_outputs: FAILED ($fails of $checks checks)" >&2
    exit 1
fi
echo "test_safe_outputs: OK ($checks checks)"
exit 0
