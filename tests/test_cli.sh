#!/bin/sh
# test_cli.sh — end-to-end checks of the ddpm program: help and version, one-line errors with exit codes,
# schedule CSV and plot, noise strip, info on good and hostile safetensors, no partial output files.
# usage: test_cli.sh PATH/TO/ddpm SOURCE_DIR
set -u
DDPM=${1:-}
ROOT=${2:-.}
if [ -z "$DDPM" ] || [ ! -x "$DDPM" ]; then
    echo "test_cli: SKIPPED: no ddpm program at '$DDPM'"
    exit 77
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ddpm_cli.XXXXXX") || exit 1
trap 'chmod -R u+w "$TMP" 2>/dev/null; rm -rf "$TMP"' EXIT INT TERM
. "$(dirname "$0")/cli_lib.sh"

# expect_error WANT_RC ARGS...: the status and exactly one "ddpm: error: " line on stderr (this file's checks name
# no text; it replaces cli_lib.sh's expect_error).
expect_error() {
    expect "$@"
    shift
    n=$(wc -l <"$TMP/err")
    if [ "$n" -ne 1 ] || ! grep -q '^ddpm: error: ' "$TMP/err"; then
        fail "ddpm $*: stderr is not one 'ddpm: error:' line: $(cat "$TMP/err")"
    fi
}

png_u32() {    # png_u32 FILE OFFSET: big-endian 32-bit number at OFFSET
    od -An -tu1 -j"$2" -N4 "$1" | awk '{ print (($1 * 256 + $2) * 256 + $3) * 256 + $4 }'
}

is_png() {     # is_png FILE WHAT
    magic=$(od -An -tx1 -N8 "$1" 2>/dev/null | tr -d ' \n')
    [ "$magic" = "89504e470d0a1a0a" ] || fail "$2: $1 is not a PNG (magic '$magic')"
}

# ------------------------------------------------------------------ help and version
expect 0 --version
[ "$(head -n 1 "$TMP/out")" = "ddpm 0.1.0" ] || fail "--version printed '$(cat "$TMP/out")'"
# from the build tree, the shipped files are the source tree's
grep -q -F "shipped models and scripts: $(cd "$ROOT" && pwd -P)" "$TMP/out" || fail "--version: $(cat "$TMP/out")"
expect 0 --help
for c in schedule noise info; do contains "$TMP/out" "$c" "ddpm --help"; done
expect 0 help noise
contains "$TMP/out" "usage: ddpm noise" "ddpm help noise"
for c in schedule noise info; do
    expect 0 "$c" --help
    contains "$TMP/out" "usage: ddpm $c" "ddpm $c --help"
done
expect 0 schedule -h
contains "$TMP/out" "(default: 1000)" "schedule --help shows defaults"
contains "$TMP/out" "--beta-start B" "schedule --help lists options"
expect 2
[ -s "$TMP/err" ] || fail "ddpm with no arguments printed nothing on stderr"

# ------------------------------------------------------------------ usage errors: exit 2, one line
expect_error 2 schedul
contains "$TMP/err" "did you mean 'schedule'" "unknown command suggestion"
expect_error 2 --frobnicate
expect_error 2 schedule --beta-strat 0.001
contains "$TMP/err" "--beta-start" "unknown option suggestion"
expect_error 2 schedule --T
expect_error 2 schedule --T abc
expect_error 2 schedule --T 0
expect_error 2 schedule --T 12x
expect_error 2 schedule --T 99999999999999999999
expect_error 2 schedule --beta-start 2
expect_error 2 schedule --beta-end nan
expect_error 2 schedule --schedule cosin
contains "$TMP/err" "cosine" "unknown schedule suggestion"
expect_error 2 schedule --schedule linear,,cosine
expect_error 2 schedule --scale-to-T=1
expect_error 2 schedule stray
expect_error 2 noise --image x.png
expect_error 2 noise --out o.png
expect_error 2 noise --image x.png --data mnist --out o.png
expect_error 2 noise --data mnist --data-dir . --index -1 --out o.png
expect_error 2 noise --image x.png --t 0,1000 --out o.png
expect_error 2 noise --image x.png --t 0,,5 --out o.png
expect_error 2 noise --image x.png --seed -3 --out o.png
expect_error 2 noise --image x.png --scale 0 --out o.png
expect_error 2 noise --data mnst --data-dir . --out o.png
expect_error 2 info
expect_error 2 info a.safetensors b.safetensors

# ------------------------------------------------------------------ schedule
expect 0 schedule --schedule cosine
contains "$TMP/out" "cosine" "schedule summary"
contains "$TMP/out" "alphas_cumprod" "schedule summary"

header="t,beta,alpha,alphas_cumprod,alphas_cumprod_prev,sqrt_alphas_cumprod,sqrt_one_minus_alphas_cumprod,log_one_minus_alphas_cumprod,sqrt_recip_alphas_cumprod,sqrt_recipm1_alphas_cumprod,posterior_variance,posterior_log_variance_clipped,posterior_mean_coef1,posterior_mean_coef2"
expect 0 schedule --schedule linear --T 1000 --csv "$TMP/linear.csv"
if [ -f "$TMP/linear.csv" ]; then
    [ "$(head -n 1 "$TMP/linear.csv")" = "$header" ] || fail "CSV header: $(head -n 1 "$TMP/linear.csv")"
    [ "$(wc -l <"$TMP/linear.csv")" -eq 1001 ] || fail "CSV has $(wc -l <"$TMP/linear.csv") lines (want 1001)"
    row0=$(sed -n 2p "$TMP/linear.csv")
    [ "$(echo "$row0" | cut -d, -f1,2)" = "0,0.0001" ] || fail "linear t=0: '$row0' (want t 0, beta 0.0001)"
    [ "$(echo "$row0" | awk -F, '{ print NF }')" -eq 14 ] || fail "CSV row has not 14 fields: $row0"
    last=$(tail -n 1 "$TMP/linear.csv" | cut -d, -f1,2)
    [ "$last" = "999,0.02" ] || fail "linear t=999: '$last' (want 999,0.02)"
else
    fail "schedule --csv wrote no file"
fi
expect 0 schedule --schedule=linear,cosine --T=50 --csv "$TMP/two.csv"
if [ -f "$TMP/two.csv" ]; then
    [ "$(head -n 1 "$TMP/two.csv")" = "schedule,$header" ] || fail "multi-schedule CSV header"
    [ "$(wc -l <"$TMP/two.csv")" -eq 101 ] || fail "multi-schedule CSV has $(wc -l <"$TMP/two.csv") lines (want 101)"
    [ "$(sed -n 52p "$TMP/two.csv" | cut -d, -f1,2)" = "cosine,0" ] || fail "second schedule starts at row 52"
fi
expect 0 schedule --schedule sqrt --T 10 --csv -
[ "$(head -n 1 "$TMP/out")" = "$header" ] || fail "--csv - writes the CSV to standard output"
[ "$(wc -l <"$TMP/out")" -eq 11 ] || fail "--csv - wrote $(wc -l <"$TMP/out") lines (want 11)"

expect 0 schedule --schedule linear,cosine --plot "$TMP/s.png"
if [ -f "$TMP/s.png" ]; then
    is_png "$TMP/s.png" "schedule --plot"
    [ "$(png_u32 "$TMP/s.png" 16)" -eq 1000 ] || fail "plot width $(png_u32 "$TMP/s.png" 16) (want 1000)"
    grep -a -q 'tEXtddpm' "$TMP/s.png" || fail "plot has no tEXt chunk 'ddpm'"
    grep -a -q -- '--schedule linear,cosine' "$TMP/s.png" || fail "plot's tEXt lacks the settings"
else
    fail "schedule --plot wrote no file"
fi
expect_error 1 schedule --schedule file:"$TMP/missing.txt"

# ------------------------------------------------------------------ noise
printf '%s' 'iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAAAAADhZOFXAAAAHElEQVR42mP4/19ODoQZoPR/BigNZEDlGIhQAwADEyOhSmpZ0wAAAABJRU5ErkJggg==' |
    base64 -d >"$TMP/tiny.png"   # an 8 x 8 gray PNG
expect 0 noise --image "$TMP/tiny.png" --out "$TMP/strip.png"
if [ -f "$TMP/strip.png" ]; then
    is_png "$TMP/strip.png" "noise --out"
    # 6 cells of 8 px x 4, with 8 px around and between
    [ "$(png_u32 "$TMP/strip.png" 16)" -eq $((6 * 32 + 7 * 8)) ] || fail "strip width $(png_u32 "$TMP/strip.png" 16)"
    grep -a -q 'tEXtddpm' "$TMP/strip.png" || fail "strip has no tEXt chunk 'ddpm'"
    grep -a -q -- '--seed 0' "$TMP/strip.png" || fail "strip's tEXt lacks the seed"
else
    fail "noise wrote no file"
fi
cp "$TMP/strip.png" "$TMP/strip0.png" 2>/dev/null
expect 0 noise --image "$TMP/tiny.png" --out "$TMP/strip.png"
cmp -s "$TMP/strip.png" "$TMP/strip0.png" || fail "noise is not reproducible for the same seed"
expect 0 noise --image "$TMP/tiny.png" --t 0,999 --scale 1 --schedule cosine --out "$TMP/strip2.png"
[ "$(png_u32 "$TMP/strip2.png" 16)" -eq $((2 * 8 + 3 * 8)) ] || fail "2-cell strip width"
expect_error 1 noise --image "$TMP/nothing.png" --out "$TMP/x.png"
[ -e "$TMP/x.png" ] && fail "a failed noise run left $TMP/x.png"
if [ -f "$ROOT/data/mnist-sample/train-images-idx3-ubyte.gz" ] || [ -f "$ROOT/data/mnist-sample/train-images-idx3-ubyte" ]; then
    expect 0 noise --data mnist --data-dir "$ROOT/data/mnist-sample" --index 0 --out "$TMP/mnist.png"
    [ "$(png_u32 "$TMP/mnist.png" 16)" -eq $((6 * 112 + 7 * 8)) ] || fail "MNIST strip width $(png_u32 "$TMP/mnist.png" 16)"
    expect_error 2 noise --data mnist --data-dir "$ROOT/data/mnist-sample" --index 99999999 --out "$TMP/m2.png"
else
    echo "test_cli: note: $ROOT/data/mnist-sample is absent; dataset noising not checked"
fi
expect_error 1 noise --data mnist --data-dir "$TMP/no-such-dir" --out "$TMP/m3.png"

# ------------------------------------------------------------------ info
hdr='{"a.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"I64","shape":[],"data_offsets":[24,32]},"__metadata__":{"format":"pt"}}'
len=${#hdr}
{
    printf "\\$(printf %03o $((len % 256)))\\$(printf %03o $((len / 256)))\\000\\000\\000\\000\\000\\000"
    printf '%s' "$hdr"
    head -c 32 /dev/zero
} >"$TMP/m.safetensors"
expect 0 info "$TMP/m.safetensors"
contains "$TMP/out" "a.weight" "info"
contains "$TMP/out" "[2, 3]" "info"
contains "$TMP/out" "I64" "info"
contains "$TMP/out" "7 parameters" "info"
contains "$TMP/out" "32 bytes" "info"
contains "$TMP/out" "format: pt" "info"
[ "$(grep -n 'a.weight' "$TMP/out" | cut -d: -f1)" -lt "$(grep -n '^b ' "$TMP/out" | cut -d: -f1)" ] ||
    fail "info does not list tensors in file order"
head -c 60 "$TMP/m.safetensors" >"$TMP/trunc.safetensors"
expect_error 1 info "$TMP/trunc.safetensors"
head -c 180 "$TMP/m.safetensors" >"$TMP/trunc2.safetensors"
expect_error 1 info "$TMP/trunc2.safetensors"
printf '\377\377\377\377\377\377\377\177{}' >"$TMP/huge.safetensors"
expect_error 1 info "$TMP/huge.safetensors"
: >"$TMP/empty.safetensors"
expect_error 1 info "$TMP/empty.safetensors"
expect_error 1 info "$TMP/absent.safetensors"

# ------------------------------------------------------------------ unwritable outputs leave nothing behind
: >"$TMP/file"
expect_error 1 schedule --csv "$TMP/file/x.csv"
expect_error 1 schedule --plot "$TMP/file/x.png"
expect_error 1 noise --image "$TMP/tiny.png" --out "$TMP/file/x.png"
mkdir "$TMP/ro"
chmod 555 "$TMP/ro"
if [ "$(id -u)" -ne 0 ]; then   # root writes anywhere
    expect_error 1 schedule --csv "$TMP/ro/x.csv" --plot "$TMP/ro/x.png"
    expect_error 1 noise --image "$TMP/tiny.png" --out "$TMP/ro/x.png"
fi
[ -z "$(ls -A "$TMP/ro")" ] || fail "failed writes left files: $(ls -A "$TMP/ro")"
leftovers=$(find "$TMP" -name '*.tmp*' | head -n 3)
[ -z "$leftovers" ] || fail "temporary files left behind: $leftovers"
# an existing output survives a failed run
printf 'keep\n' >"$TMP/keep.csv"
expect_error 2 schedule --schedule nope --csv "$TMP/keep.csv"
[ "$(cat "$TMP/keep.csv")" = "keep" ] || fail "a failed run changed an existing output"

if [ "$fails" -ne 0 ]; then
    echo "test_cli: FAILED ($fails of $checks runs)" >&2
    exit 1
fi
echo "test_cli: OK ($checks runs)"
exit 0
