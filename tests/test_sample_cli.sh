#!/bin/sh
# test_sample_cli.sh — end-to-end checks of `ddpm sample`, `interpolate`, `inpaint`, `img2img` and `denoise` on the
# tiny fixture models: PNG sizes, the samples tensor, --noise, images independent of --batch and --threads,
# trajectory and repeated-noise strips, class labels and guidance, one-line errors with the documented exit status
# (2 bad command line, 1 bad file or runtime failure), no output after a failure or Ctrl-C.
# Images are the same for any --batch or --threads up to float32 rounding: kernels whose blocking depends on the
# batch (AVX2 builds) may move the last bits (1.2e-5 seen on 5 DDIM steps of the untrained tiny net), so those
# comparisons allow 1e-4.
# usage: test_sample_cli.sh PATH/TO/ddpm SOURCE_DIR PATH/TO/compare_tensor
set -u
DDPM=${1:-}
ROOT=${2:-.}
if [ -z "$DDPM" ] || [ ! -x "$DDPM" ]; then
    echo "test_sample_cli: SKIPPED: no ddpm program at '$DDPM'"
    exit 77
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ddpm_sample_cli.XXXXXX") || exit 1
bg=
trap 'if [ -n "$bg" ]; then kill -9 $bg 2>/dev/null; fi; rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM
. "$(dirname "$0")/cli_lib.sh"
COMPARE=${3:-}
# near A.safetensors B.safetensors: their 'samples' tensors agree within 1e-4
near() {
    "$COMPARE" "$1" samples "$2" samples --atol 1e-4 --rtol 0 >/dev/null 2>&1
}
# near_bytes A B: two files of little-endian float32 values agree within 1e-4
near_bytes() {
    od -An -v -tf4 "$1" | tr -s ' ' '\n' | grep -v '^$' >"$TMP/nb1"
    od -An -v -tf4 "$2" | tr -s ' ' '\n' | grep -v '^$' >"$TMP/nb2"
    [ "$(wc -l <"$TMP/nb1")" -eq "$(wc -l <"$TMP/nb2")" ] || return 1
    paste "$TMP/nb1" "$TMP/nb2" | awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > 1e-4) bad = 1 } END { exit bad }'
}

TINY=$ROOT/tests/data/unet_tiny
TINYC=$ROOT/tests/data/unet_tiny_class
XT=$ROOT/tests/data/sample_xT_tiny.safetensors

png_u32() {    # png_u32 FILE OFFSET: big-endian 32-bit number at OFFSET
    od -An -tu1 -j"$2" -N4 "$1" | awk '{ print (($1 * 256 + $2) * 256 + $3) * 256 + $4 }'
}
# png_size FILE WIDTH [HEIGHT] WHAT: a PNG of that width (and height)
png_size() {
    f=$1 w=$2 h=$3 what=$4
    magic=$(od -An -tx1 -N8 "$f" 2>/dev/null | tr -d ' \n')
    if [ "$magic" != "89504e470d0a1a0a" ]; then
        fail "$what: $f is not a PNG"
        return
    fi
    [ "$(png_u32 "$f" 16)" -eq "$w" ] || fail "$what: width $(png_u32 "$f" 16) (want $w)"
    [ -z "$h" ] || [ "$(png_u32 "$f" 20)" -eq "$h" ] || fail "$what: height $(png_u32 "$f" 20) (want $h)"
    grep -a -q 'tEXtddpm' "$f" || fail "$what: $f has no tEXt chunk 'ddpm'"
}
strip_w() {    # width of a strip of N cells of 8 px x 13 (the ~100 px cells of an 8-pixel model)
    echo $(($1 * 104 + ($1 + 1) * 8))
}
absent() {     # absent FILE WHAT
    [ ! -e "$1" ] || fail "$2: a failed run left $1"
}

# ------------------------------------------------------------------ help
expect 0 --help
for c in sample interpolate inpaint img2img denoise; do
    contains "$TMP/out" "$c" "ddpm --help lists $c"
done
for c in sample interpolate inpaint img2img denoise; do
    expect 0 "$c" --help
    contains "$TMP/out" "usage: ddpm $c" "ddpm $c --help"
    contains "$TMP/out" "--model DIR|PRESET" "ddpm $c --help"
done
expect 0 help sample
contains "$TMP/out" "(default: 16)" "sample --help shows defaults"
contains "$TMP/out" "--trajectory FILE.png" "sample --help lists options"

# ------------------------------------------------------------------ sample: every sampler, grid size
# 4 images of 8 px: 2 x 2 cells with 1 px borders (19 px), enlarged 8 times (cells of at least 64 px)
for s in ddpm ddim dpmpp2m; do
    expect 0 sample --model "$TINY" --sampler $s --steps 4 --num 4 --out "$TMP/grid_$s.png"
    [ -f "$TMP/grid_$s.png" ] && png_size "$TMP/grid_$s.png" 152 152 "sample --sampler $s"
    contains "$TMP/out" "wrote $TMP/grid_$s.png: 4 images, $s 4 steps" "sample --sampler $s summary"
done
grep -a -q -- '--sampler dpmpp2m' "$TMP/grid_dpmpp2m.png" || fail "the grid's tEXt lacks the settings"
expect 0 sample --model "$TINY" --steps 2 --num 5 --cols 5 --scale 1 --out "$TMP/row.png"
[ -f "$TMP/row.png" ] && png_size "$TMP/row.png" 46 10 "sample --cols 5 --scale 1"

# ------------------------------------------------------------------ --save-tensor, --individual
expect 0 sample --model "$TINY" --steps 3 --num 3 --save-tensor "$TMP/s.safetensors" --individual "$TMP/ind"
expect 0 info "$TMP/s.safetensors"
contains "$TMP/out" "samples" "--save-tensor tensor name"
contains "$TMP/out" "[3, 3, 8, 8]" "--save-tensor shape"
contains "$TMP/out" "F32" "--save-tensor dtype"
for i in 0 1 2; do
    [ -f "$TMP/ind/00000$i.png" ] && png_size "$TMP/ind/00000$i.png" 8 8 "--individual image $i"
done
[ -e "$TMP/ind/000003.png" ] && fail "--individual wrote more images than --num"

# ------------------------------------------------------------------ the same images for any --batch / --threads
expect 0 sample --model "$TINY" --steps 5 --num 4 --batch 4 --seed 7 --save-tensor "$TMP/b4.safetensors"
expect 0 sample --model "$TINY" --steps 5 --num 4 --batch 1 --seed 7 --save-tensor "$TMP/b1.safetensors"
near "$TMP/b1.safetensors" "$TMP/b4.safetensors" || fail "ddim: --batch 1 and --batch 4 give different samples"
expect 0 sample --model "$TINY" --steps 5 --num 4 --batch 3 --seed 7 --threads 1 --save-tensor "$TMP/t1.safetensors"
expect 0 sample --model "$TINY" --steps 5 --num 4 --batch 3 --seed 7 --threads 2 --save-tensor "$TMP/t2.safetensors"
near "$TMP/t1.safetensors" "$TMP/b4.safetensors" || fail "ddim: --threads 1 differs from the --batch 4 run"
near "$TMP/t1.safetensors" "$TMP/t2.safetensors" || fail "ddim: --threads 1 and --threads 2 give different samples"
expect 0 sample --model "$TINY" --steps 5 --num 4 --seed 8 --save-tensor "$TMP/s8.safetensors"
cmp -s "$TMP/s8.safetensors" "$TMP/b4.safetensors" && fail "--seed 7 and --seed 8 give the same samples"
# the ancestral sampler draws per-image noise too
expect 0 sample --model "$TINY" --sampler ddpm --steps 6 --num 3 --batch 3 --save-tensor "$TMP/p3.safetensors"
expect 0 sample --model "$TINY" --sampler ddpm --steps 6 --num 3 --batch 2 --save-tensor "$TMP/p2.safetensors"
near "$TMP/p2.safetensors" "$TMP/p3.safetensors" || fail "ddpm: --batch 2 and --batch 3 give different samples"

# ------------------------------------------------------------------ --noise
expect 0 sample --model "$TINY" --steps 3 --noise "$XT" --save-tensor "$TMP/n1.safetensors" --out "$TMP/n1.png"
expect 0 info "$TMP/n1.safetensors"
contains "$TMP/out" "[2, 3, 8, 8]" "--noise sets the number of images"
expect 0 sample --model "$TINY" --steps 3 --noise "$XT" --batch 1 --save-tensor "$TMP/n2.safetensors"
near "$TMP/n1.safetensors" "$TMP/n2.safetensors" || fail "--noise: the same x_T gives different samples"
# a file with one tensor of another name (here the samples just written) is accepted as x_T
expect 0 sample --model "$TINY" --steps 3 --noise "$TMP/n1.safetensors" --save-tensor "$TMP/n3.safetensors"
expect_error 2 "--noise" sample --model "$TINY" --steps 3 --noise "$XT" --num 3 --out "$TMP/bad.png"
expect_error 1 "the model needs [N, 1, 28, 28]" sample --model "$ROOT/tests/data/unet_mnist" --noise "$XT" --out "$TMP/bad.png"
expect_error 1 "no tensor 'x_T'" sample --model "$TINY" --steps 3 --noise "$TINY/outputs.safetensors" --out "$TMP/bad.png"
expect_error 1 "nothing.safetensors" sample --model "$TINY" --noise "$TMP/nothing.safetensors" --out "$TMP/bad.png"
absent "$TMP/bad.png" "sample --noise errors"

# a folder whose scheduler is a class the samplers are not: refused in one line, no image
expect 0 init --model tiny --out "$TMP/euler"
sed 's/"DDPMScheduler"/"EulerDiscreteScheduler"/' "$TMP/euler/scheduler/scheduler_config.json" >"$TMP/euler.json"
mv "$TMP/euler.json" "$TMP/euler/scheduler/scheduler_config.json"
expect_error 1 "EulerDiscreteScheduler" sample --model "$TMP/euler" --steps 2 --num 1 --out "$TMP/bad.png"
absent "$TMP/bad.png" "sample with an EulerDiscreteScheduler config"

# ------------------------------------------------------------------ trajectory, repeated noise
expect 0 sample --model "$TINY" --steps 5 --num 2 --trajectory "$TMP/traj.png" --trajectory-frames 3
[ -f "$TMP/traj.png" ] && png_size "$TMP/traj.png" "$(strip_w 3)" "" "--trajectory"
expect 0 sample --model "$TINY" --sampler ddpm --steps 5 --num 2 --repeat-noise-steps 2 --out "$TMP/rep.png" \
    --trajectory "$TMP/rep_traj.png" --save-tensor "$TMP/rep.safetensors"
[ -f "$TMP/rep.png" ] && png_size "$TMP/rep.png" 152 80 "--repeat-noise-steps"
[ -f "$TMP/rep_traj.png" ] && png_size "$TMP/rep_traj.png" "$(strip_w 5)" "" "--repeat-noise-steps --trajectory"
# two 8x8 RGB F32 images are the last 2 x 768 bytes of the tensor file: shared noise at every step makes them equal
half() {       # half FILE 1|2: the bytes of image 1 or 2 of a 2-image samples file
    if [ "$2" -eq 1 ]; then tail -c 1536 "$1" | head -c 768; else tail -c 768 "$1"; fi
}
half "$TMP/rep.safetensors" 1 >"$TMP/r1"
half "$TMP/rep.safetensors" 2 >"$TMP/r2"
cmp -s "$TMP/r1" "$TMP/r2" && fail "--repeat-noise-steps 2 of 5 steps: the images are identical"
expect 0 sample --model "$TINY" --sampler ddpm --steps 5 --num 2 --repeat-noise-steps 5 --save-tensor "$TMP/rep5.safetensors"
half "$TMP/rep5.safetensors" 1 >"$TMP/r1"
half "$TMP/rep5.safetensors" 2 >"$TMP/r2"
near_bytes "$TMP/r1" "$TMP/r2" || fail "--repeat-noise-steps 5 of 5 steps: the images differ"

# ------------------------------------------------------------------ class labels and guidance
expect 0 sample --model "$TINYC" --class 3 --guidance 1 --steps 3 --num 2 --out "$TMP/c3.png"
[ -f "$TMP/c3.png" ] && png_size "$TMP/c3.png" 152 80 "sample --class 3"
expect 0 sample --model "$TINYC" --class 3 --steps 3 --num 2 --save-tensor "$TMP/c3.safetensors"
expect 0 sample --model "$TINYC" --class 4 --steps 3 --num 2 --save-tensor "$TMP/c4.safetensors"
cmp -s "$TMP/c3.safetensors" "$TMP/c4.safetensors" && fail "--class 3 and --class 4 give the same samples"
expect 0 sample --model "$TINYC" --class 0,5 --steps 3 --num 4 --out "$TMP/c05.png"
expect 0 sample --model "$TINYC" --steps 3 --num 10 --out "$TMP/call.png"   # cycles through classes 0..9
expect_error 2 "no null class" sample --model "$TINYC" --class 3 --guidance 3 --steps 3 --out "$TMP/bad.png"
expect_error 2 "no null class" sample --model "$TINYC" --class none --steps 3 --out "$TMP/bad.png"
expect_error 2 "--class 10" sample --model "$TINYC" --class 10 --steps 3 --out "$TMP/bad.png"
expect_error 2 "--class 3: the model is unconditional" sample --model "$TINY" --class 3 --out "$TMP/bad.png"
expect_error 2 "guidance 2" sample --model "$TINY" --guidance 2 --out "$TMP/bad.png"
expect_error 2 "--class" sample --model "$TINYC" --class 1,x --out "$TMP/bad.png"
expect_error 2 "--guidance" sample --model "$TINYC" --guidance lots --out "$TMP/bad.png"
# a copy of the class fixture whose class 9 is the null class of label dropout: classifier-free guidance
mkdir "$TMP/nc"
cp "$TINYC/weights.safetensors" "$TMP/nc/"
awk 'NR == 2 { print "  \"_ddpm_null_class\": 9," } { print }' "$TINYC/config.json" >"$TMP/nc/config.json"
expect 0 sample --model "$TMP/nc" --steps 3 --num 4 --save-tensor "$TMP/g_auto.safetensors"
expect 0 sample --model "$TMP/nc" --steps 3 --num 4 --guidance 2 --batch 1 --save-tensor "$TMP/g2.safetensors"
expect 0 sample --model "$TMP/nc" --steps 3 --num 4 --guidance 1 --save-tensor "$TMP/g1.safetensors"
tail -c 3072 "$TMP/g_auto.safetensors" >"$TMP/ga.bin"
tail -c 3072 "$TMP/g2.safetensors" >"$TMP/g2.bin"
tail -c 3072 "$TMP/g1.safetensors" >"$TMP/g1.bin"
near_bytes "$TMP/ga.bin" "$TMP/g2.bin" || fail "--guidance auto is not guidance 2 for a model with a null class (or depends on --batch)"
cmp -s "$TMP/ga.bin" "$TMP/g1.bin" && fail "--guidance 1 and 2 give the same samples"
# the folder's own weight (_ddpm_guidance) is what auto means
mkdir "$TMP/ncg"
cp "$TINYC/weights.safetensors" "$TMP/ncg/"
awk 'NR == 2 { print "  \"_ddpm_guidance\": 1,"; print "  \"_ddpm_null_class\": 9," } { print }' "$TINYC/config.json" \
    >"$TMP/ncg/config.json"
expect 0 sample --model "$TMP/ncg" --steps 3 --num 4 --save-tensor "$TMP/gg_auto.safetensors"
tail -c 3072 "$TMP/gg_auto.safetensors" >"$TMP/gga.bin"
near_bytes "$TMP/gga.bin" "$TMP/g1.bin" || fail "--guidance auto is not the model's _ddpm_guidance 1"
expect 0 sample --model "$TMP/ncg" --steps 3 --num 4 --guidance 2 --save-tensor "$TMP/gg2.safetensors"
tail -c 3072 "$TMP/gg2.safetensors" >"$TMP/gg2.bin"
near_bytes "$TMP/gg2.bin" "$TMP/g2.bin" || fail "--guidance 2 does not override the model's _ddpm_guidance"
expect 0 sample --model "$TMP/nc" --steps 3 --num 2 --class none --out "$TMP/none.png"
expect 0 sample --model "$TMP/nc" --steps 3 --num 2 --class 1 --guidance 0 --out "$TMP/g0.png"
expect_error 2 "0..8" sample --model "$TMP/nc" --steps 3 --class 9 --out "$TMP/bad.png"

# ------------------------------------------------------------------ sample: bad command lines and files
expect_error 2 "--steps 1001" sample --model "$TINY" --steps 1001 --out "$TMP/bad.png"
expect_error 2 "did you mean '--steps'" sample --model "$TINY" --stepz 3 --out "$TMP/bad.png"
expect_error 2 "unknown sampler" sample --model "$TINY" --sampler euler --out "$TMP/bad.png"
expect_error 2 "--eta" sample --model "$TINY" --sampler ddpm --eta 0.5 --out "$TMP/bad.png"
expect_error 2 "--spacing" sample --model "$TINY" --spacing sideways --out "$TMP/bad.png"
expect_error 2 "--clip" sample --model "$TINY" --clip maybe --out "$TMP/bad.png"
expect_error 2 "--num" sample --model "$TINY" --num 0 --out "$TMP/bad.png"
expect_error 2 "--out" sample --model "$TINY"
expect_error 1 "nowhere" sample --model "$TMP/nowhere" --out "$TMP/bad.png"
mkdir "$TMP/unsup"
cp "$TINY/weights.safetensors" "$TMP/unsup/"
sed 's/"AttnDownBlock2D"/"CrossAttnDownBlock2D"/' "$TINY/config.json" >"$TMP/unsup/config.json"
expect_error 1 "CrossAttnDownBlock2D" sample --model "$TMP/unsup" --steps 2 --out "$TMP/bad.png"
absent "$TMP/bad.png" "sample errors"

# input images for the other commands, made by the tool itself: 8 x 8 RGB samples
expect 0 sample --model "$TINY" --steps 4 --num 2 --seed 3 --individual "$TMP/in" --out "$TMP/in_grid.png"
A=$TMP/in/000000.png
B=$TMP/in/000001.png
printf '%s' 'iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAAAAADhZOFXAAAAHElEQVR42mP4/19ODoQZoPR/BigNZEDlGIhQAwADEyOhSmpZ0wAAAABJRU5ErkJggg==' |
    base64 -d >"$TMP/gray.png"   # an 8 x 8 gray PNG: the RGB model takes it as gray repeated in R, G and B

# ------------------------------------------------------------------ interpolate
expect 0 interpolate --model "$TINY" --a "$A" --b "$B" --steps 10 --t 300 --out "$TMP/interp.png"
[ -f "$TMP/interp.png" ] && png_size "$TMP/interp.png" "$(strip_w 7)" "" "interpolate (noise)"
expect 0 interpolate --model "$TINY" --a "$A" --b "$B" --mode ddim --steps 5 --lambdas 0,0.5,1 --out "$TMP/interp2.png"
[ -f "$TMP/interp2.png" ] && png_size "$TMP/interp2.png" "$(strip_w 5)" "" "interpolate (ddim)"
expect 0 interpolate --model "$TINYC" --class 2 --a "$A" --b "$B" --steps 5 --lambdas 0.5 --out "$TMP/interp3.png"
expect_error 2 "--t 1000 is outside [0, 1000)" interpolate --model "$TINY" --a "$A" --b "$B" --t 1000 --out "$TMP/bad.png"
expect_error 2 "--lambdas" interpolate --model "$TINY" --a "$A" --b "$B" --lambdas 0,2 --out "$TMP/bad.png"
expect_error 2 "--b" interpolate --model "$TINY" --a "$A" --out "$TMP/bad.png"
expect_error 2 "--mode" interpolate --model "$TINY" --a "$A" --b "$B" --mode warp --out "$TMP/bad.png"
expect_error 2 "give --class" interpolate --model "$TINYC" --a "$A" --b "$B" --out "$TMP/bad.png"
expect_error 1 "152x80" interpolate --model "$TINY" --a "$A" --b "$TMP/in_grid.png" --out "$TMP/bad.png"
expect 0 interpolate --model "$TINY" --a "$TMP/gray.png" --b "$B" --steps 5 --lambdas 0.5 --out "$TMP/gray_interp.png"
expect_error 1 "missing.png" interpolate --model "$TINY" --a "$TMP/missing.png" --b "$B" --out "$TMP/bad.png"
absent "$TMP/bad.png" "interpolate errors"

# ------------------------------------------------------------------ inpaint (the second image serves as the mask)
expect 0 inpaint --model "$TINY" --image "$A" --mask "$B" --steps 8 --num 2 --out "$TMP/inpaint.png"
[ -f "$TMP/inpaint.png" ] && png_size "$TMP/inpaint.png" "$(strip_w 4)" "" "inpaint"
expect 0 inpaint --model "$TINY" --image "$A" --mask "$B" --sampler ddim --steps 8 --jump-length 2 --jump-n-sample 2 \
    --num 1 --out "$TMP/inpaint2.png"
[ -f "$TMP/inpaint2.png" ] && png_size "$TMP/inpaint2.png" "$(strip_w 3)" "" "inpaint with resampling"
expect_error 1 "152x80" inpaint --model "$TINY" --image "$A" --mask "$TMP/in_grid.png" --out "$TMP/bad.png"
expect_error 1 "8x8" inpaint --model "$TINY" --image "$TMP/in_grid.png" --mask "$B" --out "$TMP/bad.png"
expect_error 2 "dpmpp2m" inpaint --model "$TINY" --image "$A" --mask "$B" --sampler dpmpp2m --out "$TMP/bad.png"
expect_error 2 "--mask" inpaint --model "$TINY" --image "$A" --out "$TMP/bad.png"
absent "$TMP/bad.png" "inpaint errors"

# ------------------------------------------------------------------ img2img
expect 0 img2img --model "$TINY" --image "$A" --strength 0.6 --steps 10 --num 2 --out "$TMP/i2i.png"
[ -f "$TMP/i2i.png" ] && png_size "$TMP/i2i.png" "$(strip_w 3)" "" "img2img"
contains "$TMP/out" "6 of 10 ddim steps" "img2img strength 0.6"
expect 0 img2img --model "$TMP/nc" --image "$A" --strength 0.5 --steps 4 --num 1 --out "$TMP/nc_i2i.png"
expect_error 2 "give --class" img2img --model "$TINYC" --image "$A" --strength 0.5 --out "$TMP/bad.png"
expect_error 2 "--strength" img2img --model "$TINY" --image "$A" --strength 0 --out "$TMP/bad.png"
expect_error 2 "--strength" img2img --model "$TINY" --image "$A" --strength 1.5 --out "$TMP/bad.png"
expect_error 2 "--strength" img2img --model "$TINY" --image "$A" --out "$TMP/bad.png"
expect_error 2 "--steps 5000" img2img --model "$TINY" --image "$A" --strength 0.5 --steps 5000 --out "$TMP/bad.png"
expect 0 img2img --model "$TINY" --image "$TMP/gray.png" --strength 0.5 --steps 4 --out "$TMP/gray_i2i.png"
absent "$TMP/bad.png" "img2img errors"

# ------------------------------------------------------------------ denoise
expect 0 denoise --model "$TINY" --image "$A" --sigma 0.1 --add-noise --steps 50 --out "$TMP/dn.png"
[ -f "$TMP/dn.png" ] && png_size "$TMP/dn.png" "$(strip_w 4)" "" "denoise --add-noise"
contains "$TMP/out" "t = " "denoise prints the timestep"
contains "$TMP/out" "PSNR" "denoise --add-noise prints the PSNR"
expect 0 denoise --model "$TINY" --image "$A" --sigma 0.2 --sampler ddim --steps 10 --out "$TMP/dn2.png"
[ -f "$TMP/dn2.png" ] && png_size "$TMP/dn2.png" "$(strip_w 3)" "" "denoise"
expect_error 2 "--sigma" denoise --model "$TINY" --image "$A" --sigma -1 --out "$TMP/bad.png"
expect_error 2 "--sigma" denoise --model "$TINY" --image "$A" --out "$TMP/bad.png"
expect 0 denoise --model "$TINY" --image "$TMP/gray.png" --sigma 0.1 --out "$TMP/gray_dn.png"
absent "$TMP/bad.png" "denoise errors"

# ------------------------------------------------------------------ the default model
DDPM_MODEL="$TINY" "$DDPM" sample --steps 2 --num 1 --out "$TMP/env.png" >"$TMP/out" 2>"$TMP/err"
rc=$?
checks=$((checks + 1))
[ "$rc" -eq 0 ] && [ -f "$TMP/env.png" ] || fail "DDPM_MODEL=tiny sample -> exit $rc: $(cat "$TMP/err")"
DDPM_MODEL="$TMP/no-model" "$DDPM" sample --steps 2 --out "$TMP/bad.png" >"$TMP/out" 2>"$TMP/err"
rc=$?
checks=$((checks + 1))
[ "$rc" -eq 1 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -q '^ddpm: error: .*no-model' "$TMP/err" ||
    fail "DDPM_MODEL=missing sample -> exit $rc: $(cat "$TMP/err")"

# ------------------------------------------------------------------ unwritable outputs, Ctrl-C
: >"$TMP/file"
expect_error 1 "$TMP/file/x.png" sample --model "$TINY" --steps 2 --num 1 --out "$TMP/file/x.png"
expect_error 1 "$TMP/file" sample --model "$TINY" --steps 2 --num 1 --individual "$TMP/file/dir"
# a long run (1000 DDPM steps of 256 images), interrupted after its first progress line or one second
"$DDPM" sample --model "$TINY" --sampler ddpm --num 256 --batch 256 --out "$TMP/int.png" >"$TMP/int.out" 2>"$TMP/int.err" &
bg=$!
i=0
while ! grep -q 'step' "$TMP/int.out" 2>/dev/null && [ $i -lt 10 ] && kill -0 $bg 2>/dev/null; do
    sleep 0.1
    i=$((i + 1))
done
kill -INT $bg 2>/dev/null
wait $bg
rc=$?
bg=
checks=$((checks + 1))
if [ "$rc" -ne 130 ]; then
    fail "sample interrupted by SIGINT -> exit $rc (want 130): $(cat "$TMP/int.err")"
else
    grep -q '^ddpm: error: interrupted' "$TMP/int.err" || fail "SIGINT message: $(cat "$TMP/int.err")"
fi
absent "$TMP/int.png" "sample interrupted by SIGINT"
leftovers=$(find "$TMP" -name '*.tmp*' | head -n 3)
[ -z "$leftovers" ] || fail "temporary files left behind: $leftovers"

if [ "$fails" -ne 0 ]; then
    echo "test_sample_cli: FAILED ($fails of $checks runs)" >&2
    exit 1
fi
echo "test_sample_cli: OK ($checks runs)"
exit 0
