#!/bin/sh
# quickstart.sh — install what is missing, build ddpm, and run the main job: digits sampled from the model
# shipped in models/mnist (a class-conditional MNIST U-Net, one row per digit), the denoising trajectory,
# and the pictures of the diffusion process (the noise schedules and a digit being noised), all in out/.
set -eu
cd "$(dirname "$0")/.."

scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
mkdir -p out

./build/ddpm sample --model models/mnist --sampler ddim --steps 50 --num 100 --cols 10 --seed 0 \
    --out out/samples.png
./build/ddpm sample --model models/mnist --sampler ddim --steps 50 --num 4 --class 2,3,5,8 \
    --out out/trajectory_final.png --trajectory out/trajectory.png
./build/ddpm schedule --schedule linear,scaled_linear,cosine,sqrt,sigmoid,sigmoid_chen --T 1000 \
    --csv out/schedules.csv --plot out/schedules.png
./build/ddpm noise --data mnist --data-dir data/mnist-sample --index 0 \
    --t 0,50,100,250,500,999 --schedule linear --out out/noising.png

echo "quickstart: wrote out/samples.png, out/trajectory.png, out/schedules.png, out/schedules.csv and out/noising.png"
