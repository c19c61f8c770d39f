#!/usr/bin/env bash
# Reproduces the bundled model and the comparisons in its card (CPU: about 1.5 h on 2 cores).
# Every run uses the same leak-free split (made by the first run, then reused).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/eye_diseases_manifest.csv}
SPLIT=runs/split.csv
COMMON=(--data "$DATA" --split-file "$SPLIT" --batch-size 16 --head-epochs 40
        --dr-grade0 normal --dr-ungraded drop --seed 0)
mkdir -p runs

# Three fine-tuning recipes for the bundled architecture (B0 topology, ReLU6, Lite0 ImageNet tensors).
python train.py "${COMMON[@]}" --img-size 256 --backbone efficientnet_b0_relu6 --weights lite0-imagenet \
    --epochs 8 --lr 2e-4 --patience 3 --aug-strength 1.0 --output runs/b0_relu6_strong.keras
python train.py "${COMMON[@]}" --img-size 256 --backbone efficientnet_b0_relu6 --weights lite0-imagenet \
    --epochs 12 --lr 3e-4 --patience 4 --aug-strength 0.5 --output runs/b0_relu6_mild.keras
python train.py "${COMMON[@]}" --img-size 320 --backbone efficientnet_b0_relu6 --weights lite0-imagenet \
    --epochs 12 --lr 3e-4 --patience 4 --aug-strength 0.5 --output runs/b0_relu6_mild320.keras

# Initialisations compared at the same budget: frozen backbone + trained head (phase 1 only).
python train.py "${COMMON[@]}" --img-size 256 --epochs 0 --backbone efficientnet_b0_relu6 --weights lite0-imagenet --output runs/probe_b0_relu6_lite0.keras
python train.py "${COMMON[@]}" --img-size 256 --epochs 0 --backbone efficientnet_lite0 --weights lite0-imagenet --output runs/probe_lite0.keras
python train.py "${COMMON[@]}" --img-size 256 --epochs 0 --backbone efficientnet_b0_swish --weights lite0-imagenet --output runs/probe_b0_swish_lite0.keras
python train.py "${COMMON[@]}" --img-size 256 --epochs 0 --backbone efficientnet_b0_relu6 --weights none --output runs/probe_b0_scratch.keras

# Bundle the fine-tuned run with the best validation macro-F1; record every run in its card.
python scripts/bundle.py --to models/clarityx_b0_relu6.keras \
    --candidates runs/b0_relu6_strong.keras runs/b0_relu6_mild.keras runs/b0_relu6_mild320.keras \
    --probes runs/probe_b0_relu6_lite0.keras runs/probe_lite0.keras runs/probe_b0_swish_lite0.keras runs/probe_b0_scratch.keras
