#!/bin/sh
# compare_torch.sh — ddpm against the PyTorch peer (../shared/peer/bench_torch.py) on the same network, batch
# and thread count, whole processes interleaved A B A B ... so both see the same machine state; prints every
# round, the load average next to it, and the median ratio of images/s (ddpm / torch).
#
# usage: bench/compare_torch.sh [--ddpm PATH] [--python PY] [--impl ours|diffusers] [--config mnist]
#                               [--batch 64] [--threads 2] [--steps 10] [--warmup 2] [--rounds 3] [--peer DIR]
#   --python: the peer's interpreter (default /usr/bin/python3, Debian's torch); the peer runs with the OpenMP
#   OpenBLAS (LD_LIBRARY_PATH=/usr/lib/<multiarch>/openblas-openmp) and its JSON names the BLAS it loaded.
#   --impl diffusers: the peer times diffusers' own UNet2DModel (needs diffusers importable by --python).
#   Both sides time the training step of bench_torch.py train (the peer has no plain-forward mode).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
DDPM=$ROOT/build/ddpm
PY=/usr/bin/python3
IMPL=ours
CONFIG=mnist
BATCH=64
THREADS=2
STEPS=10
WARMUP=2
ROUNDS=3
PEER=$ROOT/../shared/peer
while [ $# -gt 0 ]; do
    case $1 in
        --ddpm) DDPM=$2; shift 2 ;;
        --python) PY=$2; shift 2 ;;
        --impl) IMPL=$2; shift 2 ;;
        --config) CONFIG=$2; shift 2 ;;
        --batch) BATCH=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --steps) STEPS=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --peer) PEER=$2; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "compare_torch.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done
[ -x "$DDPM" ] || { echo "compare_torch.sh: no ddpm program at $DDPM (use --ddpm PATH)" >&2; exit 2; }
[ -f "$PEER/bench_torch.py" ] || { echo "compare_torch.sh: no $PEER/bench_torch.py" >&2; exit 2; }
OPENBLAS=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)/openblas-openmp
OUT=$(mktemp -d "${TMPDIR:-/tmp}/compare_torch.XXXXXX")
trap 'rm -rf "$OUT"' EXIT INT TERM

echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')  ($(grep -o -m1 'avx512f\|amx_tile' /proc/cpuinfo | head -1 || echo avx2))"
echo "ddpm:  OMP_NUM_THREADS=$THREADS $DDPM bench train-step --model $CONFIG --batch $BATCH --threads $THREADS --steps $STEPS --warmup $WARMUP --json"
echo "torch: OMP_NUM_THREADS=$THREADS LD_LIBRARY_PATH=$OPENBLAS $PY $PEER/bench_torch.py train --impl $IMPL --config $CONFIG --batch $BATCH --threads $THREADS --steps $STEPS --warmup $WARMUP --json"
for r in $(seq 1 "$ROUNDS"); do
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    OMP_NUM_THREADS=$THREADS "$DDPM" bench train-step --model "$CONFIG" --batch "$BATCH" --threads "$THREADS" \
        --steps "$STEPS" --warmup "$WARMUP" --json >"$OUT/ddpm_$r.json"
    load2=$(cut -d' ' -f1-3 /proc/loadavg)
    OMP_NUM_THREADS=$THREADS LD_LIBRARY_PATH=$OPENBLAS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$PY" "$PEER/bench_torch.py" \
        train --impl "$IMPL" --config "$CONFIG" --batch "$BATCH" --threads "$THREADS" --steps "$STEPS" \
        --warmup "$WARMUP" --json >"$OUT/torch_$r.json"
    echo "$load" >"$OUT/load_ddpm_$r"
    echo "$load2" >"$OUT/load_torch_$r"
done
/usr/bin/python3 - "$OUT" "$ROUNDS" <<'PYEOF'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
ratios = []
for r in range(1, rounds + 1):
    a = json.load(open(f"{out}/ddpm_{r}.json"))
    b = json.load(open(f"{out}/torch_{r}.json"))
    la = open(f"{out}/load_ddpm_{r}").read().strip()
    lb = open(f"{out}/load_torch_{r}").read().strip()
    ratio = a["images_per_s"] / b["images_per_s"]
    ratios.append(ratio)
    if r == 1:
        print(f"peer: torch {b['torch']}, impl {b['impl']}, blas {b['blas']}")
        print(f"ddpm: {a['version']}, engine {a['engine']}, plan {a['plan_bytes'] / 2**20:.1f} MiB")
    print(f"round {r}: ddpm {a['ms_per_step']:9.1f} ms/step {a['images_per_s']:7.2f} img/s (load {la}) | "
          f"torch {b['median_ms']:9.1f} ms/step {b['images_per_s']:7.2f} img/s (load {lb}) | ratio {ratio:.2f}")
print(f"median ratio of images/s, ddpm / torch ({rounds} rounds): {statistics.median(ratios):.2f}")
PYEOF
