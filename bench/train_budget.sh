#!/bin/sh
# train_budget.sh — the fixed-wall-clock training comparison of docs/quality.md: the same network and recipe
# trained from scratch for MIN minutes by `ddpm train` and by PyTorch (bench/train_torch_budget.py, diffusers'
# UNet2DModel), one after the other on a quiet machine, then both EMA models scored by `ddpm eval` with the
# same sampler, seed and sample count. Prints the step counts and both evaluations; leaves everything in OUT.
#
# usage: bench/train_budget.sh --python PY [--minutes 40] [--data mnist] [--data-dir DIR] [--out DIR]
#                              [--threads 2] [--peer DIR] [--only ddpm|torch] [-- EVAL-OPTIONS...]
#   --python: an interpreter with PyTorch 2 and diffusers (../shared/peer/README.md sets one up).
#   EVAL-OPTIONS go to both `ddpm eval` runs (default: --sampler dpmpp2m --steps 20 --guidance 1, the same weight
#   for both sides: neither run's weights have a measured one).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
DDPM=$ROOT/build/ddpm
PY=""
MIN=40
DATA=mnist
DATA_DIR=""
OUT=runs/budget
THREADS=2
PEER=$ROOT/../shared/peer
ONLY=""
while [ $# -gt 0 ]; do
    case $1 in
        --python) PY=$2; shift 2 ;;
        --minutes) MIN=$2; shift 2 ;;
        --data) DATA=$2; shift 2 ;;
        --data-dir) DATA_DIR=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --peer) PEER=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        --) shift; break ;;
        *) echo "train_budget.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done
[ -n "$DATA_DIR" ] || DATA_DIR=$ROOT/../shared/data/$DATA
[ -x "$DDPM" ] || { echo "train_budget.sh: $DDPM not built" >&2; exit 1; }
[ -f "$DATA_DIR/train-images-idx3-ubyte.gz" ] || { echo "train_budget.sh: no $DATA_DIR/train-images-idx3-ubyte.gz" >&2; exit 1; }
if [ $# -eq 0 ]; then set -- --sampler dpmpp2m --steps 20 --guidance 1; fi
CONFIG=$ROOT/models/mnist/unet/config.json      # the mnist preset with 10 classes + the null class
mkdir -p "$OUT"
grep -m1 'model name' /proc/cpuinfo | sed 's/^[^:]*: /cpu: /'
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "$ONLY" != torch ]; then
    [ ! -e "$OUT/ddpm" ] || { echo "train_budget.sh: $OUT/ddpm exists; remove it first" >&2; exit 1; }
    echo "== ddpm train, $MIN minutes"
    rc=0
    timeout -s INT "${MIN}m" "$DDPM" train --data "$DATA" --data-dir "$DATA_DIR" --model "$CONFIG" --objective v \
        --out "$OUT/ddpm" --steps 1000000 --batch 64 --checkpoint-every 0 --sample-every 0 --log-every 500 \
        --threads "$THREADS" || rc=$?
    # timeout(1) reports a run it stopped as 124 (ddpm train itself exits 130 on the SIGINT)
    [ "$rc" -eq 124 ] || [ "$rc" -eq 130 ] ||
        { echo "train_budget.sh: ddpm train ended with $rc, not stopped by the budget" >&2; exit 1; }
    CK=$(ls -d "$OUT"/ddpm/checkpoints/checkpoint-* | sort -t- -k2 -n | tail -1)
    echo "ddpm: $(basename "$CK") ($(tail -1 "$OUT/ddpm/log.csv" | cut -d, -f1,7 | sed 's/,/ steps, elapsed s /'))"
    rm -f "$OUT/ddpm-model"
    ln -s "$(cd "$CK" && pwd)" "$OUT/ddpm-model"
fi
if [ "$ONLY" != ddpm ]; then
    [ -n "$PY" ] || { echo "train_budget.sh: --python PY (PyTorch 2 + diffusers) is required" >&2; exit 2; }
    echo "== PyTorch, $MIN minutes"
    "$PY" "$HERE/train_torch_budget.py" --data-dir "$DATA_DIR" --config "$CONFIG" --out "$OUT/torch" \
        --minutes "$MIN" --objective v --threads "$THREADS" --peer "$PEER" --log-every 500 | tee "$OUT/torch.log"
fi
for side in ddpm-model torch; do
    [ -d "$OUT/$side" ] || continue
    echo "== ddpm eval of $side $*"
    "$DDPM" eval --data "$DATA" --data-dir "$DATA_DIR" --model "$OUT/$side" --threads "$THREADS" \
        --json "$OUT/eval-$side.json" "$@"
done
