#!/usr/bin/env python
"""Compare head candidates on the feature cache of ``scripts/cache_views.py``: validation and outside sets.

    python scripts/compare_heads.py --size 384 --contrast clahe --views 2 --out runs/compare_heads.json

Selection rule (written before the runs, README "Model v3"): among candidates, the bundled one maximises
    score = ½ · validation macro-F1 over the ODIR-5K and EyePACS photos (the retina_dataset camera, whose
            glaucoma and cataract photos are recognisable by camera alone, is left out of the score)
          + ½ · outside referable-DR ROC AUC (Mexico and HEI-MED pooled),
with the operating point (prior correction, temperature, DR threshold at 90% validation sensitivity) chosen
on validation and calibration photos only. The test split is never read here.

Candidates (``--only`` picks by name ``FEATURES-HEAD-viewsK-retina_keep|drop``): features ``last`` (max and mean of
the last map, as the v2 head) or ``multiscale`` (and of the ends of stages 6 and 5); head ``mlp`` (the seed
architecture: a four-member ensemble, exactly Dense 512 → softmax) or ``lr`` (logistic regression); clean views
only or clean + K augmented views; with or without the retina_dataset photos; ``--dr-min-grade 2``: the DR output
fitted on moderate-or-worse eyes. Only the gate's acceptance is not measured here (no gate on cached features):
``train.py`` reports it for the chosen candidate, on the outside sets through the app's own path.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402


def load(args):
    from cache_views import frozen_backbone, photo_lists

    from clarityx.data.external import find_outside, read_outside
    from clarityx.data.split import read_split
    from clarityx.training.views import cache_features

    lists = photo_lists(args.split, args.data)
    backbone = frozen_backbone(args)

    def feats(name, view):
        return cache_features(lists[name], backbone, args.size, args.contrast, view, args.cache_dir, args.seed)

    samples = read_split(args.split).samples
    outside = [p for ps in read_outside(find_outside(args.data)).values() for p in ps]
    return samples, outside, feats("all", 0), [feats("train", v) for v in range(1, args.views + 1)], \
        feats("outside", 0), feats("originals", 0)


def rows(d, idx):
    return {k: v[idx].astype(np.float32) for k, v in d.items()}


def stack(ds):
    return {k: np.concatenate([d[k] for d in ds]) for k in ds[0]}


def main() -> int:
    from cache_views import cache_arguments

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cache_arguments(p)
    p.add_argument("--views", type=int, default=2, help="augmented training views in the cache")
    p.add_argument("--C", type=float, default=0.001, help="inverse L2 strength of the logistic regression")
    p.add_argument("--lr", type=float, default=1e-3, help="MLP head: Adam learning rate")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="MLP head: AdamW weight decay")
    p.add_argument("--head-seed", type=int, default=0, help="seed of the MLP head's initialisation and order")
    p.add_argument("--dr-min-grade", type=int, default=0, help="leave DR eyes of a lower known grade out of the fit")
    p.add_argument("--wide-C", type=float, default=0.0,
                   help="also try each candidate with a wide term: a logistic regression for referable DR (this "
                        "inverse L2 strength) added to the DR logit, its weight chosen on validation referable AUC")
    p.add_argument("--sd-floor", type=float, default=None,
                   help="floor of a column's spread, as a share of its stage's median (default: heads.SD_FLOOR)")
    p.add_argument("--only", nargs="*", help="candidate names to run (default: all)")
    p.add_argument("--out", default="runs/compare_heads.json")
    args = p.parse_args()

    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score, roc_auc_score

    from clarityx.data.datasets import CLASSES
    from clarityx.screening.calibration import apply_temperature
    from clarityx.screening.grades import REFERABLE_FROM, referable_scores
    from clarityx.training import heads as H
    from clarityx.training.metrics import choose_prior_correction, threshold_for_sensitivity
    from clarityx.training.steps import class_weights

    classes = list(CLASSES)
    samples, outside, f_all, f_views, f_out, f_orig = load(args)
    split = np.array([s.split for s in samples])
    label = np.array([classes.index(s.label) if s.label in classes else -1 for s in samples])
    source = np.array([s.source or "unknown" for s in samples])
    grade = np.array([-1 if s.grade is None else s.grade for s in samples])
    part = {k: np.flatnonzero((split == k) & (label >= 0)) for k in ("train", "validation", "calibration")}
    train_all = np.flatnonzero(split == "train")  # the order of the "train" cache list
    train_known = label[train_all] >= 0
    originals = [p for p in outside if p.original is not None]
    orig_index = [outside.index(p) for p in originals]

    candidates = [(features, head, views, retina) for features in ("last", "multiscale") for head in ("mlp", "lr")
                  for views in sorted({0, args.views}) for retina in ("keep", "drop")]
    results = []
    for features, head, views, retina in candidates:
        name = f"{features}-{head}-views{views}-retina_{retina}"
        tag = name + (f"-dr_from_grade{args.dr_min_grade}" if args.dr_min_grade else "") + f"-seed{args.head_seed}"
        if args.only and name not in args.only:
            continue
        t0 = time.time()
        keep = train_known & ((source[train_all] != "retina_dataset") if retina == "drop" else True)
        if args.dr_min_grade:  # train the DR output on eyes of at least this grade only
            keep &= ~((label[train_all] == classes.index("diabetic_retinopathy")) & (grade[train_all] >= 0)
                      & (grade[train_all] < args.dr_min_grade))
        tr_rows = train_all[keep]
        x_tr = [rows(f_all, tr_rows)] + [rows(v, np.flatnonzero(keep)) for v in f_views[:views]]
        y_tr = np.concatenate([label[tr_rows]] * (1 + views))
        cw = class_weights(label[tr_rows], len(classes), "sqrt")
        evals = {k: rows(f_all, part[k]) for k in ("validation", "calibration")}
        evals["outside"] = rows(f_out, np.arange(len(outside)))
        evals["originals"] = rows(f_orig, np.arange(len(originals)))
        floor = H.SD_FLOOR if args.sd_floor is None else args.sd_floor
        stats = H.channel_stats(x_tr[0], H.FEATURE_SETS[features], floor)
        tag += f"-sdfloor{floor:g}"
        x_fit = H.seed_inputs(stack(x_tr), stats)
        x_eval = {k: H.seed_inputs(v, stats) for k, v in evals.items()}
        val = [samples[i] for i in part["validation"]]
        graded = np.array([s.grade is not None for s in val])
        ref_val = np.array([s.grade is not None and s.grade >= REFERABLE_FROM for s in val])
        if head == "mlp":
            fitted = H.fit_seed_head(x_fit, y_tr, x_eval["validation"], label[part["validation"]],
                                     len(classes), cw, seed=args.head_seed, weight_decay=args.weight_decay,
                                     lr=args.lr)
            raw = {k: fitted.predict(v, verbose=0, batch_size=512) for k, v in x_eval.items()}
        else:
            lr = LogisticRegression(C=args.C, max_iter=3000)
            lr.fit(x_fit, y_tr, sample_weight=np.array([cw[c] for c in y_tr]))
            raw = {k: lr.predict_proba(v) for k, v in x_eval.items()}
        if args.wide_C:
            from clarityx.training.heads import fit_wide_term, with_wide_term
            dr = classes.index("diabetic_retinopathy")
            w_rows = train_known & (source[train_all] != "retina_dataset") & (grade[train_all] >= 0)
            x_wide = [rows(f_all, train_all[w_rows])] + [rows(v, np.flatnonzero(w_rows)) for v in f_views[:views]]
            wide = fit_wide_term(H.seed_inputs(stack(x_wide), stats),
                                 np.concatenate([grade[train_all[w_rows]] >= REFERABLE_FROM] * (1 + views)),
                                 C=args.wide_C)
            alpha = max((0.0, 0.5, 1.0, 2.0, 4.0), key=lambda a: roc_auc_score(
                ref_val[graded], with_wide_term(raw["validation"], x_eval["validation"], wide, dr, a)[graded, dr]))
            raw = {k: with_wide_term(v, x_eval[k], wide, dr, alpha) for k, v in raw.items()}
            tag += f"-wide{alpha:g}"
        full = np.array([-np.log(cw[i]) for i in range(len(classes))])
        y_val, y_cal = label[part["validation"]], label[part["calibration"]]
        strength, temperature, _ = choose_prior_correction(raw["validation"], y_val, raw["calibration"], y_cal,
                                                           full)
        probs = {k: apply_temperature(v, temperature, list(strength * full)) for k, v in raw.items()}
        score_val = referable_scores(probs["validation"], classes)
        threshold = threshold_for_sensitivity(score_val[graded], ref_val[graded], 0.9)
        pred = probs["validation"].argmax(1)
        cams = source[part["validation"]] != "retina_dataset"
        recall = {c: float((pred[y_val == i] == i).mean()) for i, c in enumerate(classes)}
        glaucoma = classes.index("glaucoma")
        glaucoma_by_source = {src: float((pred[(y_val == glaucoma) & (source[part["validation"]] == src)]
                                          == glaucoma).mean())
                              for src in sorted(set(source[part["validation"]][y_val == glaucoma]))}
        out_sets = {}
        for ds in ("mexico", "heimed"):
            idx = [i for i, p in enumerate(outside) if p.dataset == ds]
            out_sets[ds] = H.outside_figures(probs["outside"][idx], [outside[i] for i in idx], classes, threshold,
                                             rounds=200)
        both = np.array([p.healthy or p.referable for p in outside])
        ref_out = np.array([p.referable for p in outside])
        score_out = referable_scores(probs["outside"], classes)
        pooled_auc = float(roc_auc_score(ref_out[both], score_out[both]))
        small, big = probs["outside"][orig_index], probs["originals"]
        r = {
            "name": tag, "features": features, "head": head, "augmented_views": views, "retina_dataset": retina,
            "train_rows": int(len(y_tr)), "seconds": round(time.time() - t0, 1),
            "prior_strength": strength, "temperature": temperature, "dr_threshold": threshold,
            "validation_macro_f1": float(f1_score(y_val, pred, average="macro")),
            "validation_macro_f1_odir_eyepacs": float(f1_score(y_val[cams], pred[cams], average="macro",
                                                               labels=list(range(len(classes))))),
            "validation_recall": recall, "validation_glaucoma_recall_by_source": glaucoma_by_source,
            "validation_referable_auc": float(roc_auc_score(ref_val[graded], score_val[graded])),
            "outside": out_sets, "outside_referable_auc_pooled": pooled_auc,
            "size_pairs": {"same_top": float((small.argmax(1) == big.argmax(1)).mean()),
                           "max_abs_diff": float(np.abs(small - big).max()),
                           "mean_abs_diff": float(np.abs(small - big).mean())},
        }
        r["score"] = 0.5 * r["validation_macro_f1_odir_eyepacs"] + 0.5 * pooled_auc
        results.append(r)
        print(f"{tag:32s} score {r['score']:.3f} valF1 {r['validation_macro_f1']:.3f} "
              f"(odir+eyepacs {r['validation_macro_f1_odir_eyepacs']:.3f}) valAUC {r['validation_referable_auc']:.3f} "
              f"outAUC {pooled_auc:.3f} (mx {out_sets['mexico']['referable_auc']['value']:.3f} "
              f"hei {out_sets['heimed']['referable_auc']['value']:.3f}) healthy→normal mx "
              f"{out_sets['mexico']['healthy_called_normal']['value']:.2f} hei "
              f"{out_sets['heimed']['healthy_called_normal']['value']:.2f} flagged mx "
              f"{out_sets['mexico']['referable_flagged']['value']:.2f} hei "
              f"{out_sets['heimed']['referable_flagged']['value']:.2f} not-flagged "
              f"{out_sets['mexico']['healthy_not_flagged']['value']:.2f}/"
              f"{out_sets['heimed']['healthy_not_flagged']['value']:.2f} glauc {glaucoma_by_source} "
              f"pairs same {r['size_pairs']['same_top']:.2f} ({r['seconds']} s)", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    from clarityx.screening.files import write_text
    write_text(args.out, json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
