#!/usr/bin/env python
"""Healthy eyes' referable scores by camera and by age, through the app's path (the bundled model by default).

    python scripts/healthy_scores.py --data ../shared/data --idrid ../fetched/idrid [--model PATH]

Prints, for healthy eyes (normal, DR grade 0): the median referable score and the share flagged at the card's
threshold, per source of the validation split (ODIR-5K, EyePACS), per outside set (Mexico, HEI-MED) and for
IDRiD's grade-0 photos; and the flag's false-alarm rate on healthy validation eyes by age band (ODIR-5K has ages).
A score that holds across cameras has similar medians everywhere; the validation split is never fitted on.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

BANDS = ((0, 40), (40, 60), (60, 200))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--idrid")
    p.add_argument("--model")
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args()

    from clarityx.data.external import find_outside, read_idrid, read_outside
    from clarityx.data.split import read_split
    from clarityx.loader import load_classifier
    from clarityx.screening.card import split_path
    from clarityx.training.evaluate import run_photos
    from clarityx.training.metrics import bootstrap_interval

    classifier = load_classifier(args.model)
    t = classifier.card.dr_threshold
    out: dict = {"threshold": t}

    def figures(scores, groups=None):
        s = np.asarray(scores)
        flagged = s >= t
        return {"n": int(s.size), "median_score": float(np.median(s)), "flagged": float(flagged.mean()),
                "flagged_ci95": list(bootstrap_interval(lambda i: float(flagged[i].mean()), s.size, groups, 1000))}

    val = [s for s in read_split(split_path(classifier.path)).of("validation")
           if s.label == "normal" and (s.grade or 0) == 0]
    ages = {}
    with open(Path(args.data) / "odir5k" / "full_df.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            for side in ("Left-Fundus", "Right-Fundus"):
                ages[row[side]] = int(row["Patient Age"])
    run = run_photos(classifier, [s.path for s in val])
    scores = run.scores
    for src in sorted({s.source for s in val}):
        rows = [i for i, s in enumerate(val) if s.source == src and run.readable[i]]
        out[f"validation {src}"] = figures(scores[rows], [val[i].group for i in rows])
    for lo, hi in BANDS:
        rows = [i for i, s in enumerate(val) if s.source == "odir" and lo <= ages.get(Path(s.path).name, -1) < hi
                and run.readable[i]]
        out[f"validation ODIR-5K, age {lo}-{hi - 1 if hi < 200 else '+'}"] = figures(scores[rows],
                                                                                    [val[i].group for i in rows])
    external = find_outside(args.data)
    pooled_s, pooled_y, pooled_g = [], [], []
    for name, photos in (read_outside(external).items() if external else []):
        both = [q for q in photos if q.healthy or q.referable]
        r = run_photos(classifier, [q.path for q in both])
        ok = r.readable
        healthy = np.array([q.healthy for q in both])
        out[name] = figures(r.scores[ok & healthy], [q.patient for q, k, h in zip(both, ok, healthy) if k and h])
        pooled_s += list(r.scores[ok])
        pooled_y += [q.referable for q, k in zip(both, ok) if k]
        pooled_g += [q.patient for q, k in zip(both, ok) if k]
    if pooled_s:  # the outside referable ROC AUC, every outside set's healthy and referable eyes together
        from sklearn.metrics import roc_auc_score

        s_, y_ = np.array(pooled_s), np.array(pooled_y)

        def auc(i):
            return float(roc_auc_score(y_[i], s_[i])) if 0 < y_[i].sum() < len(i) else float("nan")
        out["outside_pooled_referable_auc"] = {"value": auc(np.arange(len(y_))), "n": len(y_),
                                               "ci95": list(bootstrap_interval(auc, len(y_), pooled_g, 1000))}
        print(f"outside referable ROC AUC, pooled: {out['outside_pooled_referable_auc']['value']:.3f} "
              f"[{out['outside_pooled_referable_auc']['ci95'][0]:.3f}-{out['outside_pooled_referable_auc']['ci95'][1]:.3f}]"
              f" of {len(y_)}")
    if args.idrid:
        zero = [q for q in read_idrid(args.idrid) if q.grade == 0]
        r = run_photos(classifier, [q.path for q in zero])
        out["IDRiD grade 0"] = figures(r.scores[r.readable])
    for k, v in out.items():
        if isinstance(v, dict) and "median_score" in v:
            print(f"{k:34s} n={v['n']:4d}  median referable score {v['median_score']:.3f}  flagged {v['flagged']:.1%} "
                  f"[{v['flagged_ci95'][0]:.1%}-{v['flagged_ci95'][1]:.1%}]")
    print(f"threshold {t:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
