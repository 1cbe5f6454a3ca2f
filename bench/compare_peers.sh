#!/bin/sh
# compare_peers.sh — ddpm against every peer of docs/perf.md on one network, batch and thread count: the training
# step (PyTorch 2 eager with diffusers' UNet2DModel, torch.compile, bf16 autocast) and DDIM-50 sampling
# (PyTorch eager, ONNX Runtime, OpenVINO f32 and bf16). Whole processes, interleaved round by round (every job
# once per round, in the same order), so that all of them see the same machine; each process's peak RSS is
# taken by /usr/bin/time. Prints every run, then the median images/s of each job and the ratio of ddpm's
# (fp32, and bf16 where the CPU has AMX) to it.
#
# usage: bench/compare_peers.sh --python VENV/bin/python [--ddpm PATH] [--config mnist] [--batch 64]
#            [--threads 2] [--rounds 3] [--steps 10] [--only train|sample] [--skip JOB,JOB] [--peer DIR]
#   --python: an interpreter with the PyPI torch, diffusers, onnx, onnxscript, onnxruntime and openvino
#   (../shared/peer/README.md). Jobs: ddpm-fp32 ddpm-bf16 torch torch-compile torch-bf16 (train);
#   ddpm-fp32 ddpm-bf16 torch ort openvino-f32 openvino-bf16 (sample). --skip leaves jobs out (e.g. torch-compile,
#   whose compilation takes minutes).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
DDPM=$ROOT/build/ddpm
PY=
CONFIG=mnist
BATCH=64
THREADS=2
ROUNDS=3
STEPS=10
ONLY=
SKIP=
PEER=$ROOT/../shared/peer
while [ $# -gt 0 ]; do
    case $1 in
        --ddpm) DDPM=$2; shift 2 ;;
        --python) PY=$2; shift 2 ;;
        --config) CONFIG=$2; shift 2 ;;
        --batch) BATCH=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --steps) STEPS=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        --skip) SKIP=$2; shift 2 ;;
        --peer) PEER=$2; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "compare_peers.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done
[ -n "$PY" ] && [ -x "$PY" ] || { echo "compare_peers.sh: --python VENV/bin/python is required" >&2; exit 2; }
[ -x "$DDPM" ] || { echo "compare_peers.sh: no ddpm program at $DDPM (use --ddpm PATH)" >&2; exit 2; }
[ -f "$PEER/bench_torch.py" ] || { echo "compare_peers.sh: no $PEER/bench_torch.py" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "compare_peers.sh: /usr/bin/time is needed for peak RSS (apt-get install time)" >&2; exit 2; }
OUT=$(mktemp -d "${TMPDIR:-/tmp}/compare_peers.XXXXXX")
trap 'rm -rf "$OUT"' EXIT INT TERM

AMX=0
if "$DDPM" bench forward --model tiny --batch 1 --steps 1 --warmup 0 --precision bf16 >/dev/null 2>&1; then AMX=1; fi
W=2
D="--config $CONFIG --batch $BATCH --threads $THREADS --steps $STEPS --warmup $W --json"
DD="--model $CONFIG --batch $BATCH --threads $THREADS --steps $STEPS --warmup $W --json"

# job NAME MODE: the command line of a job (empty when it does not apply)
job() {
    case "$2:$1" in
        *:ddpm-fp32) echo "$DDPM bench $( [ "$2" = train ] && echo train-step || echo sample ) $DD" ;;
        *:ddpm-bf16) [ "$AMX" = 1 ] && echo "$DDPM bench $( [ "$2" = train ] && echo train-step || echo sample ) $DD --precision bf16" ;;
        train:torch) echo "$PY $PEER/bench_torch.py train --impl diffusers $D" ;;
        train:torch-compile) echo "$PY $PEER/bench_torch.py train --impl diffusers --compile $D" ;;
        train:torch-bf16) echo "$PY $PEER/bench_torch.py train --impl diffusers --bf16 $D" ;;
        sample:torch) echo "$PY $PEER/bench_torch.py sample --impl diffusers $D" ;;
        sample:ort) echo "$PY $PEER/bench_infer.py --engine ort $D" ;;
        sample:openvino-f32) echo "$PY $PEER/bench_infer.py --engine openvino --precision f32 $D" ;;
        sample:openvino-bf16) echo "$PY $PEER/bench_infer.py --engine openvino --precision bf16 $D" ;;
    esac
}
skipped() { case ",$SKIP," in *",$1,"*) return 0 ;; esac; return 1; }

echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')  ($(grep -o -m1 'amx_tile' /proc/cpuinfo || grep -o -m1 'avx512f' /proc/cpuinfo || echo avx2)), $(nproc) cores"
echo "peer: $("$PY" -c 'import torch, diffusers; print("torch", torch.__version__, "diffusers", diffusers.__version__)' 2>/dev/null || echo unknown)"
for mode in train sample; do
    [ -z "$ONLY" ] || [ "$ONLY" = "$mode" ] || continue
    jobs="ddpm-fp32 ddpm-bf16 torch"
    if [ "$mode" = train ]; then jobs="$jobs torch-compile torch-bf16"; else jobs="$jobs ort openvino-f32 openvino-bf16"; fi
    echo
    echo "== $mode ($CONFIG, batch $BATCH, $THREADS threads, $ROUNDS rounds interleaved)"
    for j in $jobs; do
        c=$(job "$j" "$mode" || true)
        [ -n "$c" ] && ! skipped "$j" && echo "  $j: OMP_NUM_THREADS=$THREADS $c"
    done
    for r in $(seq 1 "$ROUNDS"); do
        for j in $jobs; do
            c=$(job "$j" "$mode" || true)
            { [ -z "$c" ] || skipped "$j"; } && continue
            f=$OUT/$mode.$j.$r
            # shellcheck disable=SC2086
            if OMP_NUM_THREADS=$THREADS /usr/bin/time -f "%M" -o "$f.rss" $c >"$f.json" 2>"$f.err"; then
                ips=$(sed -n 's/.*"images_per_s": \([0-9.eE+-]*\).*/\1/p' "$f.json" | tail -1)
                rss=$(tail -1 "$f.rss")
                echo "$ips" >"$f.ips"
                printf '  round %d  %-14s %8.2f images/s  peak RSS %6.0f MiB  (load %s)\n' "$r" "$j" "$ips" \
                    "$(echo "$rss" | awk '{print $1 / 1024}')" "$(cut -d' ' -f1 /proc/loadavg)"
                echo "$rss" >"$f.kib"
            else
                echo "  round $r  $j FAILED: $(tail -1 "$f.err")"
            fi
        done
    done
    med() { sort -g "$@" 2>/dev/null | awk '{a[NR]=$1} END {if (NR==0) print ""; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
    ref32=$(cat "$OUT/$mode.ddpm-fp32".*.ips 2>/dev/null | med)
    ref16=$(cat "$OUT/$mode.ddpm-bf16".*.ips 2>/dev/null | med)
    echo "  median:"
    printf '    %-14s %10s %10s %14s %14s\n' job images/s "RSS MiB" "ddpm fp32 /" "ddpm bf16 /"
    for j in $jobs; do
        ls "$OUT/$mode.$j".*.ips >/dev/null 2>&1 || continue
        m=$(cat "$OUT/$mode.$j".*.ips | med)
        rss=$(cat "$OUT/$mode.$j".*.kib | med)
        printf '    %-14s %10.2f %10.0f %13sx %13sx\n' "$j" "$m" "$(echo "$rss" | awk '{print $1 / 1024}')" \
            "$(awk -v a="$ref32" -v b="$m" 'BEGIN {if (a == "" || b == 0) print "-"; else printf "%.2f", a / b}')" \
            "$(awk -v a="$ref16" -v b="$m" 'BEGIN {if (a == "" || b == 0) print "-"; else printf "%.2f", a / b}')"
    done
done
