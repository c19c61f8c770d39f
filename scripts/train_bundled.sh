#!/usr/bin/env bash
# Reproduces the bundled model and the initialisation comparison in its card (CPU, ~1 h on 2 cores).
# Same split (made by the first run, reused by the others), same recipe, same budget for each.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/eye_diseases_manifest.csv}
RECIPE=(--img-size 256 --batch-size 16 --head-epochs 40 --epochs 8 --lr 2e-4 --patience 3
        --dr-grade0 normal --dr-ungraded drop --seed 0)
SPLIT=models/clarityx_b0_relu6.split.csv

python train.py --data "$DATA" --backbone efficientnet_b0_relu6 --weights lite0-imagenet "${RECIPE[@]}" \
    --output models/clarityx_b0_relu6.keras
mkdir -p runs
python train.py --data "$DATA" --backbone efficientnet_lite0 --weights lite0-imagenet "${RECIPE[@]}" \
    --split-file "$SPLIT" --output runs/lite0.keras
python train.py --data "$DATA" --backbone efficientnet_b0_relu6 --weights none "${RECIPE[@]}" \
    --split-file "$SPLIT" --output runs/b0_scratch.keras
python scripts/record_comparison.py models/clarityx_b0_relu6.keras runs/lite0.keras runs/b0_scratch.keras
