#!/bin/sh
# peer_cifar10.sh — makes a cifar10-preset fixture with PyTorch at test time (../shared/peer/make_fixture.py,
# Debian's /usr/bin/python3 with torch) and checks `ddpm forward --loss-target` against it. The sample tolerance
# is max(1e-5, 10 x the fixture's own float32-vs-float64 gap). Skips (77) without torch or the peer folder.
# usage: peer_cifar10.sh PATH/TO/ddpm PATH/TO/compare_fixture PEER_DIR WORK_DIR [ENGINE...]
set -u
DDPM=$1
COMPARE=$2
PEER=$3
WORK=$4
shift 4
ENGINES=${*:-fast}
PY=/usr/bin/python3
if [ ! -f "$PEER/make_fixture.py" ]; then
    echo "peer_forward_cifar10: SKIPPED: no $PEER/make_fixture.py (the shared peer folder is absent)"
    exit 77
fi
if [ ! -x "$PY" ] || ! "$PY" -c "import torch, numpy" 2>/dev/null; then
    echo "peer_forward_cifar10: SKIPPED: $PY with torch and numpy is not available"
    exit 77
fi
FX=$WORK/unet_cifar10
rm -rf "$WORK"
mkdir -p "$WORK" || exit 1
start=$(date +%s)
if ! "$PY" "$PEER/make_fixture.py" --config cifar10 --batch 2 --no-intermediates --seed 5000 --out "$FX" >"$WORK/make_fixture.log" 2>&1; then
    echo "FAIL: make_fixture.py --config cifar10:" >&2
    cat "$WORK/make_fixture.log" >&2
    exit 1
fi
echo "make_fixture.py: $(( $(date +%s) - start )) s: $(cat "$WORK/make_fixture.log")"
status=0
for engine in $ENGINES; do
    start=$(date +%s)
    if ! "$DDPM" forward --model "$FX" --in "$FX/inputs.safetensors" --out "$WORK/out_$engine.safetensors" \
            --loss-target --engine "$engine" --threads 2; then
        echo "FAIL: ddpm forward --loss-target --engine $engine on $FX" >&2
        status=1
        continue
    fi
    echo "ddpm forward ($engine): $(( $(date +%s) - start )) s"
    "$COMPARE" "$FX" "$WORK/out_$engine.safetensors" --sample-tol auto || status=1
done
[ "$status" -eq 0 ] && rm -rf "$WORK"
exit $status
