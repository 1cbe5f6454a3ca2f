#!/bin/sh
# make-doc-pictures.sh [MODEL] — draws every picture of docs/sampling.md (and the README's) with the shipped
# model (default models/mnist) into docs/img/, using the commands the guide shows. Needs a built ./build/ddpm.
# THREADS=N in the environment sets every command's --threads (default: all cores).
set -eu
cd "$(dirname "$0")/.."
M=${1:-models/mnist}
D="./build/ddpm"
T="--threads ${THREADS:-0}"
I=docs/img
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

$D sample $T --model "$M" --num 100 --cols 10 --out $I/sample_grid.png
$D sample $T --model "$M" --sampler ddpm --clip off --num 10 --cols 10 --out $I/sample_ddpm.png
$D sample $T --model "$M" --sampler ddim --steps 50 --num 10 --cols 10 --out $I/sample_ddim.png
$D sample $T --model "$M" --sampler dpmpp2m --steps 20 --num 10 --cols 10 --out $I/sample_dpmpp.png
$D sample $T --model "$M" --num 20 --cols 10 --guidance 1 --out $I/sample_guidance_1.png
$D sample $T --model "$M" --num 20 --cols 10 --guidance 3 --out $I/sample_guidance_3.png
$D sample $T --model "$M" --num 4 --class 2,3,5,8 --trajectory $I/sample_trajectory.png --out "$W/grid.png"
$D sample $T --model "$M" --sampler ddpm --steps 250 --num 8 --class 3 --repeat-noise-steps 150 --cols 8 \
    --out $I/sample_repeat_noise.png
$D sample $T --model "$M" --steps 20 --num 10 --individual "$W/digits" --seed 3
$D interpolate $T --model "$M" --a "$W/digits/000001.png" --b "$W/digits/000007.png" --t 250 \
    --out $I/sample_interpolate_noise.png
$D interpolate $T --model "$M" --a "$W/digits/000001.png" --b "$W/digits/000007.png" --mode ddim --steps 20 \
    --out $I/sample_interpolate_ddim.png
$D inpaint $T --model "$M" --image "$W/digits/000002.png" --mask $I/mask_lower_half.png --steps 100 --num 6 \
    --out $I/sample_inpaint.png
$D img2img $T --model "$M" --image "$W/digits/000003.png" --strength 0.6 --num 6 --out $I/sample_img2img.png
$D denoise $T --model "$M" --image "$W/digits/000004.png" --sigma 0.2 --add-noise --out $I/sample_denoise.png
if [ -d models/fashion-mnist ]; then   # the README's and quality.md's Fashion-MNIST grid
    $D sample $T --model models/fashion-mnist --num 100 --cols 10 --out $I/fashion_grid.png
fi
echo "make-doc-pictures: wrote $I/sample_*.png and $I/fashion_grid.png"
