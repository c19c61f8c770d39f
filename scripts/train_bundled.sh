#!/usr/bin/env bash
# Reproduces the bundled model (models/clarityx_lite0.keras) on 2 CPU cores: the fine-tuned run takes
# about 95 min, the head-only comparison about 15 min more (they can run one after the other).
#   ODIR-5K (per-eye labels) + the EyePACS and retina_dataset photos of eye_diseases (a photo reached
#   through both is read once, from ODIR-5K); patient-level split made by the first run and reused;
#   EfficientNet-Lite0 (no squeeze-excitation) from its ImageNet weights, 256 px, CLAHE (chosen on
#   validation by scripts/compare_preprocessing.py; its output goes into the card).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
mkdir -p runs
COMMON=(--data "$DATA/odir5k" --data "$DATA/eye_diseases_manifest.csv" --dr-grade0 normal --dr-ungraded drop
        --seed 0 --backbone efficientnet_lite0 --weights lite0-imagenet --img-size 256 --contrast clahe
        --batch-size 16 --head-epochs 30 --head-lr 1e-3 --aug-strength 1.0 --class-weight sqrt)
python scripts/compare_preprocessing.py --data "$DATA/odir5k" --data "$DATA/eye_diseases_manifest.csv" \
    --out runs/compare_preprocessing.json
# Fine-tuned: 6 epochs of a 10-epoch cosine schedule (what one 180-minute session affords).
python train.py "${COMMON[@]}" --epochs 10 --stop-after 6 --lr 2e-4 --patience 3 \
    --output runs/clarityx_lite0.keras
# Head only (frozen backbone), same split: does fine-tuning help on validation?
python train.py "${COMMON[@]}" --epochs 0 --split-file runs/clarityx_lite0.split.csv \
    --output runs/clarityx_lite0_head.keras
python scripts/bundle.py --to models/clarityx_lite0.keras \
    --candidates runs/clarityx_lite0.keras runs/clarityx_lite0_head.keras \
    --preprocessing-comparison runs/compare_preprocessing.json
