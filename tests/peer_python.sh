#!/bin/sh
# peer_python.sh SCRIPT ARGS... — runs a peer test script with $DDPM_PEER_PYTHON, else the python3 on PATH;
# skips (exit 77) when there is none.
py=${DDPM_PEER_PYTHON:-python3}
if ! command -v "$py" >/dev/null 2>&1; then
    echo "SKIPPED: no $py"
    exit 77
fi
exec "$py" "$@"
