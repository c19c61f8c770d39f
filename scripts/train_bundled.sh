#!/usr/bin/env bash
# Reproduces the bundled model (models/clarityx_lite0.keras): one run, about 75 min on 2 CPU cores.
#   ODIR-5K (per-eye labels) + the EyePACS and retina_dataset photos of eye_diseases (a photo reached
#   through both is read once, from ODIR-5K); patient-level split made by this run and written beside
#   it; EfficientNet-Lite0 (no squeeze-excitation) from its ImageNet weights, 256 px.
# The preprocessing comparison that chose --contrast clahe: scripts/compare_preprocessing.py (see card).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
mkdir -p runs
python train.py --data "$DATA/odir5k" --data "$DATA/eye_diseases_manifest.csv" \
    --dr-grade0 normal --dr-ungraded drop --seed 0 \
    --backbone efficientnet_lite0 --weights lite0-imagenet --img-size 256 --contrast clahe \
    --batch-size 16 --head-epochs 30 --head-lr 1e-3 \
    --epochs 10 --lr 2e-4 --patience 3 --aug-strength 1.0 --class-weight sqrt \
    --output runs/clarityx_lite0.keras
python scripts/bundle.py --to models/clarityx_lite0.keras --candidates runs/clarityx_lite0.keras
