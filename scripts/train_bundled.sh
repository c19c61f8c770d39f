#!/usr/bin/env bash
# Reproduces the bundled model v5 (models/clarityx_lite2.keras + its ONNX graph) on 2 CPU cores.
#
#   bash scripts/train_bundled.sh            # the bundled recipe: fetch, cache, train, check (README: time)
#   COMPARE=1 bash scripts/train_bundled.sh  # also the candidates it was chosen among (v3-v5 rounds)
#
# Recipe (train.py's defaults unless named): ODIR-5K (per-eye labels) + the EyePACS and retina_dataset photos of
# eye_diseases (a photo reached through both is read once, from ODIR-5K) + IDRiD's training part (fetched;
# --graded-data, read at a quarter of its resolution); the patient-level split every bundled model has been
# measured on (models/clarityx_lite2.split.csv); EfficientNet-Lite2 from its ImageNet weights, frozen, read at
# three depths at 384 px with CLAHE in prepare; the head (four Dense 128 networks: exactly Dense 512 -> softmax)
# fitted on the cached pooled maps of each training photo in three views; the retina_dataset camera left out of
# the fit, mild-DR eyes left out of the condition output; each input column's spread floored at half its stage's
# median; then, on the head's embedding, a DR-grade layer (a multinomial regression on every graded eye, mild
# ones and IDRiD's included) whose P(grade >= 2) is the referable score; the referable threshold fitted on
# validation plus the outside sets (each reported at the threshold fitted without it); the glaucoma operating
# point (at most 5% of validation normal eyes called glaucoma); a haze check on the photo as taken; a front-of-eye
# probe on the embedding fitted on real front-of-eye photos. The outside sets are in every run's card.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
FETCHED=${FETCHED:-../fetched}
SPLIT=models/clarityx_lite2.split.csv
mkdir -p runs
FETCHED="$FETCHED" bash scripts/fetch_outside.sh   # IDRiD and ACRIMA, outside the repository
python scripts/cache_views.py --variant lite2 --split "$SPLIT" --data "$DATA" --contrast clahe --views 0 1 2 \
    --measures --idrid "$FETCHED/idrid_quarter"
if [[ -n "${COMPARE:-}" ]]; then
    # Candidates on the feature cache, judged on validation and the outside sets (rule: scripts/compare_heads.py).
    # v3's comparisons, on Lite0's cache (v3 had no spread floor: --sd-floor 0)
    V3="--variant lite0 --sd-floor 0"
    python scripts/cache_views.py --variant lite0 --split "$SPLIT" --data "$DATA" --contrast clahe --views 0 1 2
    python scripts/cache_views.py --variant lite0 --split "$SPLIT" --data "$DATA" --contrast none --views 0
    python scripts/cache_views.py --variant lite2 --split "$SPLIT" --data "$DATA" --contrast clahe --views 0 1 2
    python scripts/compare_heads.py $V3 --views 2 --out runs/compare_heads.json
    for seed in 0 1 2; do
        python scripts/compare_heads.py $V3 --views 2 --dr-min-grade 2 --head-seed "$seed" \
            --only multiscale-mlp-views0-retina_drop multiscale-mlp-views2-retina_drop --out "runs/compare_g2_s$seed.json"
        for contrast in none clahe; do
            python scripts/compare_heads.py $V3 --contrast "$contrast" --views 0 --dr-min-grade 2 \
                --head-seed "$seed" --only multiscale-mlp-views0-retina_drop \
                --out "runs/compare_contrast_${contrast}_s$seed.json"
        done
        # v4's (README rows: python scripts/summarise_candidates.py runs/compare_NAME_s*.json): a referable-DR
        # wide term on Lite0; the Lite2 backbone; the spread floor (heads.SD_FLOOR) on Lite2 and Lite0
        python scripts/compare_heads.py $V3 --views 2 --dr-min-grade 2 --wide-C 0.001 --head-seed "$seed" \
            --only multiscale-mlp-views2-retina_drop --out "runs/compare_wide_lite0_s$seed.json"
        for floor in 0 0.25 0.5; do
            python scripts/compare_heads.py --variant lite2 --sd-floor "$floor" --views 2 --dr-min-grade 2 \
                --head-seed "$seed" --only multiscale-mlp-views2-retina_drop --out "runs/compare_lite2_floor${floor}_s$seed.json"
        done
        python scripts/compare_heads.py --variant lite0 --sd-floor 0.5 --views 2 --dr-min-grade 2 --head-seed "$seed" \
            --only multiscale-mlp-views2-retina_drop --out "runs/compare_lite0_floor0.5_s$seed.json"
    done
    # v5's (README "How v5 is chosen"): every answer scored, each where it was not fitted
    python scripts/compare_v5.py --idrid "$FETCHED/idrid_quarter" --seeds 0 1 2 --out runs/compare_v5.json
fi
python train.py --data "$DATA/odir5k" --data "$DATA/eye_diseases_manifest.csv" --split-file "$SPLIT" \
    --graded-data "$FETCHED/idrid_quarter" --dr-grade regression --output runs/clarityx_lite2_v5.keras
python scripts/bundle.py --to models/clarityx_lite2.keras --candidates runs/clarityx_lite2_v5.keras --version 5
python -m clarityx export --format onnx          # the app's and the CLI's engine, beside the .keras
python benchmarks/gate_rates.py --write-card     # the gate's rates on test photos and negatives (limit: train.py)
python -m clarityx evaluate "$DATA" --idrid "$FETCHED/idrid" --write-card  # test, outside, answer-check figures
python scripts/healthy_scores.py --data "$DATA" --idrid "$FETCHED/idrid"  # healthy eyes' scores by camera and age
