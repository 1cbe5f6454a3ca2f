#!/bin/sh
# quickstart.sh — install what is missing, build ddpm, and run the main job: the pictures of the
# diffusion process (the noise schedules and a handwritten digit being noised), written to out/.
set -eu
cd "$(dirname "$0")/.."

scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
mkdir -p out

./build/ddpm schedule --schedule linear,scaled_linear,cosine,sqrt,sigmoid,sigmoid_chen --T 1000 \
    --csv out/schedules.csv --plot out/schedules.png
./build/ddpm noise --data mnist --data-dir data/mnist-sample --index 0 \
    --t 0,50,100,250,500,999 --schedule linear --out out/noising.png

echo "quickstart: wrote out/schedules.png, out/schedules.csv and out/noising.png"
