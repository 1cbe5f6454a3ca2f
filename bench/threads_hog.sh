#!/bin/sh
# threads_hog.sh — the thread policy on a shared machine: while a busy loop holds one core, ddpm's default
# (--threads auto) against --threads 1 and --threads <all cores>, for a training step, DDIM sampling steps and
# the whole `ddpm sample --num 1 --steps 10` process on the shipped model; whole processes interleaved round by
# round, in an order that rotates; prints every run and the medians. Then the same without the busy loop, for the start-up.
#
# usage: bench/threads_hog.sh [--ddpm PATH] [--rounds 3] [--batch 64]
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
DDPM=$ROOT/build/ddpm
ROUNDS=3
BATCH=64
while [ $# -gt 0 ]; do
    case $1 in
        --ddpm) DDPM=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --batch) BATCH=$2; shift 2 ;;
        -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
        *) echo "threads_hog.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done
[ -x "$DDPM" ] || { echo "threads_hog.sh: no ddpm program at $DDPM (use --ddpm PATH)" >&2; exit 2; }
OUT=$(mktemp -d "${TMPDIR:-/tmp}/threads_hog.XXXXXX")
HOG=
cleanup() { [ -n "$HOG" ] && kill "$HOG" 2>/dev/null; rm -rf "$OUT"; }
trap cleanup EXIT INT TERM
ALL=$(nproc)
unset OMP_NUM_THREADS

med() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
# ms of one run: bench median (train / sample), or the whole process (startup)
run() {
    case $1 in
        train) "$DDPM" bench train-step --model mnist --batch "$BATCH" --steps 6 --warmup 2 --threads "$2" --json |
                   sed 's/.*"median_ms": \([0-9.]*\).*/\1/' ;;
        sample) "$DDPM" bench sample --model mnist --batch "$BATCH" --steps 10 --warmup 2 --threads "$2" --json |
                    sed 's/.*"median_ms": \([0-9.]*\).*/\1/' ;;
        startup) t0=$(date +%s%N)
                 "$DDPM" sample --model "$ROOT/models/mnist" --num 1 --steps 10 --threads "$2" --out "$OUT/s.png" >/dev/null 2>&1
                 echo "$(( ($(date +%s%N) - t0) / 1000000 ))" ;;
    esac
}

echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $ALL cores"
for phase in hog quiet; do
    if [ "$phase" = hog ]; then
        sh -c 'while :; do :; done' &
        HOG=$!
        sleep 1
        echo "== a busy loop (pid $HOG) holds one core"
        jobs="train sample startup"
    else
        kill "$HOG" 2>/dev/null; wait "$HOG" 2>/dev/null || true
        HOG=
        sleep 1
        echo "== quiet machine"
        jobs="train sample startup"
    fi
    for j in $jobs; do
        for r in $(seq 1 "$ROUNDS"); do
            case $((r % 3)) in   # the order rotates, so that no count always follows the same one
                1) order="auto 1 $ALL" ;;
                2) order="1 $ALL auto" ;;
                *) order="$ALL auto 1" ;;
            esac
            for t in $order; do
                ms=$(run "$j" "$t")
                echo "$ms" >>"$OUT/$phase.$j.$t"
                printf '  %-7s round %d  --threads %-4s %9.1f ms  (load %s)\n' "$j" "$r" "$t" "$ms" "$(cut -d' ' -f1 /proc/loadavg)"
            done
        done
        a=$(med <"$OUT/$phase.$j.auto"); o=$(med <"$OUT/$phase.$j.1"); n=$(med <"$OUT/$phase.$j.$ALL")
        printf '  %-7s median: auto %.1f ms, 1 thread %.1f ms, %d threads %.1f ms; auto / 1 thread = %.3f\n' \
            "$j" "$a" "$o" "$ALL" "$n" "$(awk -v a="$a" -v b="$o" 'BEGIN {print a / b}')"
    done
done
