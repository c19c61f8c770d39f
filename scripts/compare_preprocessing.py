#!/usr/bin/env python
"""Cheap proxy for choosing ``prepare``'s camera normalisation before the one long training run.

For each contrast method: frozen ImageNet Lite0 features (global average pool) of a patient-grouped,
class-capped subset → balanced logistic regression → validation macro-F1 and DR recall, plus the
camera probe: how well a linear classifier tells ODIR from EyePACS among *normal* eyes (balanced
accuracy, patient-grouped 5-fold; 0.5 = the camera cannot be read).

    python scripts/compare_preprocessing.py --data ../shared/data/odir5k \\
        --data ../shared/data/eye_diseases_manifest.csv --size 224 --per-class 250
"""
import argparse
import hashlib
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clarityx.data.datasets import CLASSES, load_datasets, relabel_dr_grade0  # noqa: E402
from clarityx.screening.classes import DIABETIC_RETINOPATHY, NORMAL  # noqa: E402
from clarityx.screening.preprocess import CONTRASTS  # noqa: E402


def bucket(group: str | None, name: str) -> float:
    return int(hashlib.sha1((group or name).encode()).hexdigest()[:8], 16) / 2**32


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", action="append", required=True)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--per-class", type=int, default=250)
    ap.add_argument("--out", default="runs/compare_preprocessing.json")
    args = ap.parse_args()

    import tensorflow as tf
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score, recall_score

    from clarityx.model.backbones import build_backbone
    from clarityx.training.evaluate import camera_probe
    from clarityx.screening.imageio import load_image
    from clarityx.screening.preprocess import prepare

    samples, _ = load_datasets(args.data)
    samples = [s for s in relabel_dr_grade0(samples, "normal")
               if s.label in CLASSES and not s.path.name.startswith("_")
               and not (s.label == DIABETIC_RETINOPATHY and s.grade is None and s.source == "eyepacs")]
    rng = np.random.default_rng(0)
    rng.shuffle(samples)
    train, val, per = [], [], Counter()
    for s in samples:
        part = "val" if bucket(s.group, s.path.name) < 0.3 else "train"
        key = (part, s.label, s.source if s.label == NORMAL else "")
        if per[key] < (args.per_class if part == "train" else args.per_class // 2):
            per[key] += 1
            (val if part == "val" else train).append(s)
    print(f"train {len(train)} {dict(Counter(s.label for s in train))}; validation {len(val)}", flush=True)
    backbone = build_backbone("efficientnet_lite0", args.size, "lite0-imagenet")
    run = tf.function(lambda x: tf.reduce_mean(backbone(x, training=False), axis=[1, 2]))
    decoded = {s.path: load_image(s.path) for s in train + val}
    index = {c: i for i, c in enumerate(CLASSES)}
    results = {}
    for contrast in CONTRASTS:
        def features(part):
            px = np.stack([prepare(decoded[s.path], args.size, contrast) for s in part]).astype("float32")
            return np.concatenate([run(px[i:i + 32]).numpy() for i in range(0, len(px), 32)])
        f_tr, f_va = features(train), features(val)
        y_tr = np.array([index[s.label] for s in train])
        y_va = np.array([index[s.label] for s in val])
        clf = LogisticRegression(max_iter=3000, class_weight="balanced", C=0.5).fit(f_tr, y_tr)
        pred = clf.predict(f_va)
        probe = camera_probe(np.concatenate([f_tr, f_va]), train + val)
        results[contrast] = {
            "validation_macro_f1": float(f1_score(y_va, pred, average="macro")),
            "validation_dr_recall": float(recall_score(y_va, pred, labels=[index[DIABETIC_RETINOPATHY]],
                                                       average="macro")),
            "camera_probe_balanced_accuracy": probe["balanced_accuracy"],
        }
        print(contrast, json.dumps(results[contrast]), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"args": vars(args), "n_train": len(train), "n_validation": len(val),
                                          "results": results}, indent=2))


if __name__ == "__main__":
    main()
