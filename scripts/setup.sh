#!/bin/sh
# setup.sh — install the Debian 12 packages ddpm.c needs, only those that are missing.
# Runs as root, or through sudo for a normal user. Usage: scripts/setup.sh [--fuzz]
# (--fuzz, for CI: also clang for the fuzz targets and python3-venv for the diffusers round trip)
set -eu

PKGS="build-essential cmake pkg-config zlib1g-dev libpng-dev libjpeg62-turbo-dev libcjson-dev libcairo2-dev
      fonts-dejavu-core libopenblas-openmp-dev libdnnl-dev"
if [ "${1:-}" = "--fuzz" ]; then
    PKGS="$PKGS clang libclang-rt-14-dev libomp-dev python3-venv"
fi

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "setup: missing packages:$missing; run this script as root or install sudo" >&2
    exit 1
fi
echo "setup: installing$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
