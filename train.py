#!/usr/bin/env python
"""Fine-tune the ClarityX classifier on fundus photos.

    python train.py --data ../shared/data/odir5k --data ../shared/data/eye_diseases_manifest.csv \
        --output models/clarityx.keras

Steps: read the datasets (a photo reached through two of them is one photo) →
audit (duplicates, conflicting labels, augmented copies, patients) → leak-free
patient-level split (written out and reused) → phase 1: head only, on cached
frozen-backbone features → phase 2: whole network (BatchNorm frozen) with
augmentation and a cosine learning-rate schedule → how much of the class
weighting to undo (chosen on validation) and the temperature (fitted on the
calibration split, never used for stopping) → referable-DR threshold on
validation → test metrics with intervals → model, card, gate statistics.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


from clarityx.data.datasets import CLASSES, EYE_PAIR_PATTERN, LAYOUTS  # noqa: E402  (no TF)
from clarityx.screening.classes import DIABETIC_RETINOPATHY  # noqa: E402
from clarityx.screening.preprocess import CONTRASTS  # noqa: E402
from clarityx.training.distribute import DISTRIBUTE  # noqa: E402  (no TensorFlow)


def strength(text: str) -> str | float:
    """``--prior-correction``: ``auto`` or a fraction from 0 to 1."""
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is neither 'auto' nor a number from 0 to 1")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("data")
    g.add_argument("--data", required=True, action="append",
                   help="dataset folder or manifest CSV; repeat for several (best-labelled first)")
    g.add_argument("--layout", choices=list(LAYOUTS), help="default: detected")
    g.add_argument("--task", choices=["conditions", "dr-grade"], default="conditions",
                   help="conditions: one output per eye condition (normal, cataract, ...); dr-grade: one output "
                        "per diabetic-retinopathy grade 0-4 (APTOS 2019, EyePACS, ODIR-5K grades), from the eyes "
                        "whose grade is known. (A glaucoma model: --data a G1020 download, task conditions.)")
    g.add_argument("--group-pattern", default=EYE_PAIR_PATTERN,
                   help="folder datasets: regex whose first group names the patient in a file name")
    g.add_argument("--classes",
                   help="class order of the model's outputs (default: the labels the data has, known ones "
                        f"in the order {','.join(CLASSES)}); eyes of other labels are not trained on "
                        "(other_findings and multiple_conditions test eyes are reported apart)")
    g.add_argument("--dr-grade0", choices=["keep", "drop", "normal"], default="normal",
                   help="what a diabetic_retinopathy image with a known DR grade 0 becomes")
    g.add_argument("--dr-ungraded", choices=["auto", "keep", "drop"], default="auto",
                   help="diabetic_retinopathy images without a known grade: keep, drop as unreliable, or auto "
                        "(drop them where photos with a known DR grade exist, as in the bundled data)")
    g.add_argument("--dr-train-from-grade", type=int, default=2, choices=[0, 1, 2, 3, 4],
                   help="fit the diabetic_retinopathy output on DR eyes of at least this known grade (2: moderate "
                        "or worse, what a screening programme refers; mild eyes stay in validation and test). "
                        "0: every DR eye")
    g.add_argument("--dr-grade", choices=["regression", "multitask", "none"], default="regression",
                   help="conditions task: a DR-grade layer (0-4) on the embedding, learnt from every graded eye (mild "
                        "ones included), whose P(grade >= 2) is the referable score: regression (fitted on the "
                        "embedding after the head; the bundled model's) or multitask (learnt with the head); none: "
                        "the score is P(diabetic retinopathy)")
    g.add_argument("--graded-data", metavar="IDRID",
                   help="IDRiD's disease-grading download (scripts/fetch_outside.sh): its training part is fitted "
                        "on (grade 0 normal, 2-4 diabetic retinopathy, every grade for the grade layer); its test "
                        "part is reported apart by `clarityx evaluate`")
    g.add_argument("--keep-augmented", action="store_true",
                   help="train on the dataset's pre-made augmented copies (train split only)")
    g.add_argument("--split-file", help="reuse this split CSV (default: <output>.split.csv, made if absent)")
    g.add_argument("--val-frac", type=float, default=0.1, help="early stopping, threshold")
    g.add_argument("--calib-frac", type=float, default=0.1, help="temperature and prior correction")
    g.add_argument("--test-frac", type=float, default=0.15)
    g.add_argument("--max-per-class", type=int, default=0, help="cap images per class (quick runs)")
    g = p.add_argument_group("model")
    g.add_argument("--backbone", default="efficientnet_lite2_ms",
                   help="efficientnet_lite2_ms | efficientnet_lite{0,1,2}[_ms] | efficientnet_b0 | "
                        "efficientnet_b0_relu6 | efficientnet_b0_swish (clarityx.model.backbones.BACKBONES)")
    g.add_argument("--weights",
                   help="default: the backbone's own (liteN-imagenet for efficientnet_liteN*, lite0-imagenet for "
                        "efficientnet_b0_relu6/swish, imagenet for efficientnet_b0: Keras' download) | none | "
                        "PATH to Keras' efficientnetb0_notop.h5 (efficientnet_b0 only)")
    g.add_argument("--init", help="start from this trained .keras model (same backbone, classes and size): "
                                    "phase 1 is skipped, phase 2 fine-tunes it")
    g.add_argument("--img-size", type=int, default=384,
                   help="model input side; no larger than the training photos' field of view (about 400 px "
                        "here), so that prepare never enlarges a training photo (one look for every size)")
    g.add_argument("--contrast", choices=list(CONTRASTS), default="clahe",
                   help="camera normalisation inside prepare (the card records it for inference)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--batch-size", type=int, default=16)
    g.add_argument("--head-epochs", type=int, default=60, help="phase 1 (head only, cached features)")
    g.add_argument("--views", type=int, default=2,
                   help="phase 1: random training views per photo besides the clean one (resolution, JPEG, "
                        "exposure, colour, blur, rotation; clarityx.training.views)")
    g.add_argument("--train-exclude-source", nargs="*", default=["retina_dataset"], metavar="SOURCE",
                   help="leave these sources' photos out of the fit (kept in validation and test, reported per "
                        "source): retina_dataset is a camera with glaucoma and cataract only, so 'this camera' "
                        "would be learnt as a disease. Give the flag alone to train on every source")
    g.add_argument("--head-lr", type=float, default=1e-3)
    g.add_argument("--head-weight-decay", type=float, default=1e-4, help="phase 1: AdamW weight decay")
    g.add_argument("--epochs", type=int, default=0, help="phase 2 (whole network); 0 = head only")
    g.add_argument("--stop-after", type=int, default=0,
                   help="end phase 2 after this many epochs of the --epochs-long cosine schedule (0: all)")
    g.add_argument("--lr", type=float, default=1e-4, help="phase 2 peak learning rate (cosine decay)")
    g.add_argument("--freeze-blocks", type=int, default=0, help="phase 2: keep the first N blocks frozen")
    g.add_argument("--aug-strength", type=float, default=1.0,
                   help="scale of the photometric augmentation ranges (0 = geometry only)")
    g.add_argument("--patience", type=int, default=2, help="phase 2 early stopping (epochs)")
    g.add_argument("--class-weight", choices=["none", "sqrt", "inverse"], default="sqrt",
                   help="loss weight per class: none, 1/sqrt(frequency) or 1/frequency")
    g.add_argument("--prior-correction", type=strength, default="auto",
                   help="how much of the class weighting's prior shift to undo after training, 0-1; auto: "
                        "the strength with the best validation macro-F1 (temperature on the calibration split)")
    g.add_argument("--dr-sensitivity", type=float, default=0.9,
                   help="referable-DR operating point: threshold chosen on validation for this sensitivity")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--distribute", choices=DISTRIBUTE, default="none",
                   help="phase 2 on every GPU of this machine (mirrored) or of several (multi-worker, TF_CONFIG): "
                        "--batch-size per GPU, --lr scaled by the number of GPUs (clarityx.training.distribute)")
    g = p.add_argument_group("output")
    g.add_argument("--output", default="models/clarityx.keras")
    g.add_argument("--name", help="model name in the card (default: output file stem)")
    g.add_argument("--cache-dir", default=".cache", help="decoded images and checkpoints")
    g.add_argument("--resume", action="store_true", help="continue phase 2 from the last checkpoint")
    g.add_argument("--progress-file", help="keep a JSON progress report here (stage, epoch, losses), for the app")
    args = p.parse_args(argv)
    if args.weights is None:  # the backbone's own pre-trained weights
        from clarityx.model.backbones import BACKBONES

        if args.backbone not in BACKBONES:
            p.error(f"unknown backbone {args.backbone!r}; choose from {', '.join(BACKBONES)}")
        args.weights = BACKBONES[args.backbone].weights
    return args


def prepare_data(args: argparse.Namespace, classes: list[str]):
    """Read, audit and split the datasets (reusing a split file when it exists and matches)."""
    from clarityx.data.audit import audit
    from clarityx.data.datasets import (REPORTED_APART, as_dr_grades, drop_ungraded_dr, load_datasets,
                                        relabel_dr_grade0)
    from clarityx.data.split import make_split, model_parts, read_split, write_split
    from clarityx.screening.card import split_path

    samples, repeats = load_datasets(args.data, args.layout, args.group_pattern)
    print(f"{len(samples)} photos ({repeats} reached through two datasets, counted once)")
    if args.task == "dr-grade":
        samples = as_dr_grades(samples)
    else:
        if args.dr_ungraded == "auto":  # drop ungraded DR photos only where graded ones exist to replace them
            graded = any(s.label == DIABETIC_RETINOPATHY and s.grade is not None for s in samples)
            args.dr_ungraded = "drop" if graded else "keep"
        if args.dr_ungraded == "drop":
            samples = drop_ungraded_dr(samples)
        samples = relabel_dr_grade0(samples, args.dr_grade0)
    present = {s.label for s in samples} - set(REPORTED_APART)
    classes = classes or [c for c in CLASSES if c in present] + sorted(present - set(CLASSES))  # dr_grade_0..4
    samples = [s for s in samples if s.label in classes or s.label in REPORTED_APART]
    report = audit(samples, root=" + ".join(args.data))
    print(report.summary(), flush=True)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    from clarityx.screening.files import write_text  # whole or not at all
    write_text(str(output.with_suffix("")) + ".audit.json", report.to_json())

    split_file = Path(args.split_file) if args.split_file else split_path(output)
    if split_file.exists():
        split = read_split(split_file)
        current = {s.path.resolve(): s.label for s in samples}
        stale = [s for s in split.samples if current.get(s.path.resolve()) != s.label]
        if stale:
            raise SystemExit(f"error: the split file {split_file} was made from other data or options "
                             f"({len(stale)} photos missing or labelled otherwise now, e.g. {stale[0].path}); "
                             "delete it to make a new split, or name another with --split-file")
        # Photos added since the split was made would land in no split: say so rather than leave them out.
        kept = make_split(samples, report, args.val_frac, args.test_frac, args.seed, args.keep_augmented,
                          calib_frac=args.calib_frac)
        in_split = {s.path.resolve() for s in split.samples}
        new = [s for s in kept.samples if s.path.resolve() not in in_split]
        if new:
            raise SystemExit(f"error: {len(new)} photos are in no split of {split_file} (added since it was made, "
                             f"e.g. {new[0].path}); reusing it would leave them out silently. Delete it to make a "
                             "new split (the test photos then change), or name another with --split-file")
        print(f"Reusing split {split_file}")
    else:
        split = make_split(samples, report, args.val_frac, args.test_frac, args.seed, args.keep_augmented,
                           calib_frac=args.calib_frac)
        write_split(split, split_file)
    parts = model_parts(split, classes, args.max_per_class)
    for name, chosen in parts.items():
        print(f"{name}: {len(chosen)} images {dict(Counter(s.label for s in chosen))}")
    return classes, samples, report, split, parts, repeats


def report_progress(args: argparse.Namespace, **fields) -> None:
    """Write the progress report (``--progress-file``) whole: the app polls it."""
    if args.progress_file:
        from clarityx.screening.files import write_text

        write_text(args.progress_file, json.dumps({"time": time.time(), **fields}))


def progress_callback(args: argparse.Namespace, phase: str, epochs: int):
    import keras

    class Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            report_progress(args, stage=phase, epoch=epoch + 1, epochs=epochs,
                            **{k: float(logs[k]) for k in ("loss", "val_loss", "val_accuracy") if k in logs})
    return Progress()


def train_head(model, split, parts: dict, y: dict, classes: list[str], args: argparse.Namespace,
               class_weight: dict) -> dict:
    """Phase 1: the head alone, on pooled frozen-backbone features cached per view.

    Every training photo is seen in 1 + ``--views`` views (the clean ``prepare`` view and random views of
    :func:`clarityx.training.views.random_view`: resolution, encoding, exposure, colour, blur, rotation);
    photos of the ``--train-exclude-source`` sources are left out of the fit (they stay in validation and
    test, reported per source). With ``--dr-grade-head`` the head also learns the DR grade of every graded eye
    (mild eyes included, which the condition output does not fit on) and ``--graded-data`` adds IDRiD's
    training part. Returns the training rows' embeddings and labels (for the gate), the head's input
    statistics, a function from pooled features to (embedding, raw class softmax, raw grade softmax), and what
    it was trained on."""
    import numpy as np

    from clarityx.model.backbones import BACKBONES
    from clarityx.training import heads as H
    from clarityx.training.views import cache_features

    backbone = model.get_layer("backbone")
    grade_head = args.dr_grade != "none" and args.task == "conditions"
    multitask = grade_head and args.dr_grade == "multitask"

    def features(paths, view):
        report_progress(args, stage=f"features of view {view}", epoch=view, epochs=args.views)
        return cache_features([str(p) for p in paths], backbone, args.img_size, args.contrast, view,
                              args.cache_dir, args.seed, progress=lambda m: print(m, flush=True))

    # One cache for every run on this split: the clean view of all its photos, the random views of
    # its training photos (scripts/cache_views.py fills the same cache).
    everything, train_split = split.samples, split.of("train")
    clean = features([s.path for s in everything], 0)
    position = {str(s.path): i for i, s in enumerate(everything)}
    train_pos = {str(s.path): i for i, s in enumerate(train_split)}
    excluded = set(args.train_exclude_source or [])
    used = [s for s in parts["train"] if fitted_on(s, args) or (grade_head and fitted_for_grade(s, args))]
    labels = np.array([classes.index(s.label) if fitted_on(s, args) else -1 for s in used], np.int32)
    grades = np.array([-1 if s.grade is None else s.grade for s in used], np.int32)
    views = [{k: v[[position[str(s.path)] for s in used]].astype(np.float32) for k, v in clean.items()}]
    for view in range(1, args.views + 1):
        f = features([s.path for s in train_split], view)
        views.append({k: v[[train_pos[str(s.path)] for s in used]].astype(np.float32) for k, v in f.items()})
    graded_extra = 0
    if args.graded_data:
        from clarityx.data.external import read_idrid
        from clarityx.screening.grades import REFERABLE_FROM

        idrid = read_idrid(args.graded_data)
        extra = [p for p in idrid if p.part == "train"]
        if not extra:
            raise SystemExit(f"error: no IDRiD training photos under {args.graded_data}")
        g = np.array([p.grade for p in extra], np.int32)
        normal, dr = classes.index("normal"), classes.index(DIABETIC_RETINOPATHY)
        labels = np.concatenate([labels, np.where(g == 0, normal, np.where(g >= REFERABLE_FROM, dr, -1))])
        grades = np.concatenate([grades, g])
        for view in range(args.views + 1):
            # view 0 of every IDRiD photo (its test part is reported apart), random views of its training part:
            # the lists scripts/cache_views.py caches
            f = features([p.path for p in (idrid if view == 0 else extra)], view)
            if view == 0:
                f = {k: v[[i for i, p in enumerate(idrid) if p.part == "train"]] for k, v in f.items()}
            views[view] = {k: np.concatenate([views[view][k], f[k].astype(np.float32)]) for k in views[view]}
        graded_extra = len(extra)
    val = {k: v[[position[str(s.path)] for s in parts["validation"]]].astype(np.float32) for k, v in clean.items()}
    stats = H.channel_stats(views[0], H.FEATURE_SETS[BACKBONES[args.backbone].taps])
    x = np.concatenate([H.seed_inputs(v, stats) for v in views])
    report_progress(args, stage="training the head", epoch=0, epochs=args.head_epochs)
    val_grades = np.array([-1 if s.grade is None else s.grade for s in parts["validation"]], np.int32)
    fitted = H.fit_seed_head(x, np.tile(labels, len(views)), H.seed_inputs(val, stats), y["validation"],
                             len(classes), class_weight, seed=args.seed, epochs=args.head_epochs, lr=args.head_lr,
                             weight_decay=args.head_weight_decay,
                             grades=np.tile(grades, len(views)) if multitask else None,
                             grades_val=val_grades if multitask else None)
    H.install_seed_head(model.get_layer("head"), fitted, stats)
    embed = H.embedding_model(fitted)
    grade = H.grade_layer(fitted)
    if grade_head and len(set(grades[grades >= 0].tolist())) < 2:  # a dataset without DR grades has no layer
        print("No DR-grade layer: fewer than two DR grades among the training photos", flush=True)
        grade_head, grade = False, None
    if grade_head and not multitask:
        report_progress(args, stage="fitting the DR-grade layer", epoch=0, epochs=1)
        grade = H.fit_grade_layer(np.concatenate([embed(H.seed_inputs(v, stats)) for v in views]),
                                  np.tile(grades, len(views)))

    def answers_of(pooled: dict) -> tuple:
        """Pooled features of any photos → (embedding, raw class softmax, raw grade softmax or None)."""
        from clarityx.screening.calibration import softmax

        inputs = H.seed_inputs({k: v.astype(np.float32) for k, v in pooled.items()}, stats)
        out = fitted.predict(inputs, verbose=0, batch_size=1024)
        probs = out["probabilities"] if isinstance(out, dict) else out
        e = embed(inputs)
        return e, probs, (softmax(e @ grade[0] + grade[1]) if grade is not None else None)

    known = labels >= 0
    return {"embeddings": [embed(H.seed_inputs(v, stats))[known] for v in views], "labels": labels[known],
            "validation_embeddings": embed(H.seed_inputs(val, stats)), "validation_pooled": val,
            "grade_layer": grade,
            "answers_of": answers_of, "features": features, "all_paths": [str(s.path) for s in everything],
            "fit_rows": {"paths": [str(s.path) for s in used], "labels": labels[:len(used)],
                         "pooled": views[0] if not graded_extra else {k: v[:len(used)] for k, v in views[0].items()}},
            "trained_on": {"photos": len(used), "views": len(views), "excluded_sources": sorted(excluded),
                           "dr_eyes_from_grade": args.dr_train_from_grade, "spread_floor": H.SD_FLOOR,
                           "dr_grade": args.dr_grade if grade_head else "none",
                           "graded_photos": int((grades >= 0).sum()),
                           "idrid_training_photos": graded_extra,
                           "left_out_photos": len(parts["train"]) - len(used)}}


def fitted_on(sample, args: argparse.Namespace) -> bool:
    """Whether a training-split photo is fitted on: not from an excluded source, and not a DR eye of a known
    grade below ``--dr-train-from-grade`` (it stays in validation and test, as what it is)."""
    if (sample.source or "unknown") in set(args.train_exclude_source or []):
        return False
    return not (args.dr_train_from_grade and sample.label == DIABETIC_RETINOPATHY and sample.grade is not None
                and sample.grade < args.dr_train_from_grade)


def outside_raw(head_run: dict, data_root: Path) -> dict | None:
    """Each outside set's healthy and referable photos → (raw grade softmax, or raw class softmax without a grade
    layer; referable) from the feature cache, for the referable threshold (None: no outside sets, or a
    fine-tuned network, whose cache is not its features)."""
    import numpy as np

    from clarityx.data.external import find_outside, read_outside

    external = find_outside(data_root) or find_outside(data_root.parent)
    if head_run is None or external is None:
        return None
    sets = read_outside(external)
    photos = [p for ps in sets.values() for p in ps]  # every photo, in the order scripts/cache_views.py caches
    _, probs, grades = head_run["answers_of"](head_run["features"]([p.path for p in photos], 0))
    raw = grades if grades is not None else probs
    out = {}
    for name in sets:
        rows = [i for i, p in enumerate(photos) if p.dataset == name and (p.healthy or p.referable)]
        out[name] = (raw[rows], np.array([photos[i].referable for i in rows]))
    return out


def fit_answers(head_run: dict, parts: dict, classes: list[str], calibration, data_root: Path,
                args: argparse.Namespace) -> dict:
    """The card's ``answers`` beside the classes (:mod:`clarityx.screening.answers`): the DR-grade layer, the
    haze check (fitted on training photos as taken, its threshold on validation) and the front-of-eye probe
    (fitted on every source of real front-of-eye photos, as taken and cut to a circle; each source's refusal
    rate when it was held out of the fit is recorded beside it)."""
    import numpy as np

    from clarityx.data.external import circle_files, read_front_of_eye
    from clarityx.screening.calibration import apply_temperature
    from clarityx.training import answers as A
    from clarityx.training.views import cache_measures

    out: dict = {}
    if head_run.get("grade_layer") is not None:
        w, b = head_run["grade_layer"]
        out["dr_grade"] = {"weights": w.tolist(), "bias": b.tolist(),
                           "temperature": calibration.how["dr_grade_temperature"]}
    rows = head_run["fit_rows"]
    cataract_val = [s.label == "cataract" for s in parts["validation"]]
    if "cataract" in classes and (rows["labels"] == classes.index("cataract")).any() and any(cataract_val) \
            and not all(cataract_val):  # the haze check needs cataract and other eyes on both sides
        cat = classes.index("cataract")

        def p_cataract(pooled):
            return apply_temperature(head_run["answers_of"](pooled)[1], calibration.temperature,
                                     calibration.log_prior_correction)[:, cat]

        known = rows["labels"] >= 0
        # The measures of every photo of the split, in the split's order (one cache with scripts/cache_views.py).
        everything = head_run["all_paths"]
        measured = cache_measures(everything, args.cache_dir)
        position = {p: i for i, p in enumerate(everything)}

        def measures_of(paths):
            return {k: v[[position[str(p)] for p in paths]] for k, v in measured.items()}

        train_x = A.haze_inputs(measures_of(np.array(rows["paths"])[known]),
                                p_cataract({k: v[known] for k, v in rows["pooled"].items()}))
        val = parts["validation"]
        val_x = A.haze_inputs(measures_of([s.path for s in val]), p_cataract(head_run["validation_pooled"]))
        haze = A.fit_haze(train_x, rows["labels"][known] == cat, val_x,
                          np.array([s.label == "cataract" for s in val]))
        out["haze"] = {**haze.to_card(), "inputs": [*A.HAZE_MEASURES, "log P(cataract)"],
                       "fitted_on": f"training photos as taken (cataract against every other labelled eye); "
                                    f"threshold: at most {A.HAZE_FALSE_LIMIT:.0%} of validation eyes without "
                                    "cataract called hazy"}
    front = data_root / "external" / "front_of_eye"
    if not (front / "labels.csv").is_file():
        front = data_root.parent / "external" / "front_of_eye"
    if (front / "labels.csv").is_file():
        photos = read_front_of_eye(front)
        taken = head_run["answers_of"](head_run["features"]([p.path for p in photos], 0))[0]
        circles = head_run["answers_of"](head_run["features"](
            circle_files(photos, Path(args.cache_dir) / "front_of_eye_circles"), 0))[0]
        fundus, fundus_val = np.concatenate(head_run["embeddings"]), head_run["validation_embeddings"]
        held_out = {}
        for held in A.by_source_folds([p.source for p in photos]):
            probe = A.fit_front_of_eye_probe(fundus, np.concatenate([taken[~held], circles[~held]]), fundus_val)
            for form, e in (("as_taken", taken), ("circular_crop", circles)):
                hit = probe.score(e[held]) >= probe.threshold
                for src in {p.source for p, h in zip(photos, held) if h}:
                    mine = np.array([p.source == src for p, h in zip(photos, held) if h])
                    held_out.setdefault(form, {})[src] = float(hit[mine].mean())
        probe = A.fit_front_of_eye_probe(fundus, np.concatenate([taken, circles]), fundus_val)
        sources = len({p.source for p in photos})
        out["front_of_eye"] = {**probe.to_card(),
                               "fitted_on": f"{len(photos)} real front-of-eye photos of {sources} sources, as taken "
                                            "and cut to a circle, against the training fundus photos' views; "
                                            f"threshold: at most {A.FRONT_FALSE_LIMIT:.1%} of validation fundus "
                                            "photos refused",
                               "refused_when_its_source_was_held_out": held_out}
    return out


def fitted_for_grade(sample, args: argparse.Namespace) -> bool:
    """A training-split photo the DR-grade output fits on: graded, and not from an excluded source."""
    return sample.grade is not None and (sample.source or "unknown") not in set(args.train_exclude_source or [])


def fine_tune(model, x: dict, y: dict, args: argparse.Namespace, class_weight: dict, strategy=None) -> int:
    """Phase 2: the whole network (BatchNorm frozen), augmentation, cosine schedule, early stopping,
    a checkpoint every epoch (``--resume``). Leaves the best validation-loss weights; returns epochs run."""
    import keras

    from clarityx.training import distribute as D
    from clarityx.training import steps as T
    from clarityx.data.augment import augmenter

    strategy = strategy or D.make_strategy("none")
    s = D.scale(args.batch_size, args.lr, strategy.num_replicas_in_sync)
    T.freeze_batchnorm(model)
    T.freeze_first_blocks(model.get_layer("backbone"), args.freeze_blocks)
    per_epoch = D.steps_per_epoch(len(x["train"]), s.global_batch)
    steps = args.epochs * per_epoch
    schedule = keras.optimizers.schedules.CosineDecay(
        s.lr / 10, steps, alpha=0.01, warmup_target=s.lr, warmup_steps=max(1, steps // 20))
    with strategy.scope():
        model.compile(optimizer=keras.optimizers.Adam(schedule),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    # multi-worker: every worker saves (a collective), only the chief's files are kept
    scratch = Path(args.cache_dir) / "workers"
    last, best, state = (Path(D.worker_path(p, scratch)) for p in checkpoint_paths(args))
    last.parent.mkdir(parents=True, exist_ok=True)
    initial_epoch, seconds_before, best_loss = 0, 0.0, float("inf")
    if resumable(args):
        model.optimizer.build(model.trainable_variables)  # so its moments and step count load too
        model.load_weights(last)
        saved = json.loads(state.read_text())
        initial_epoch, seconds_before = saved["epoch"], saved.get("seconds", 0.0)
        best_loss = saved.get("best_val_loss", best_loss)
        step = int(keras.ops.convert_to_numpy(model.optimizer.iterations))  # a MirroredVariable under a strategy
        print(f"Resuming phase 2 at epoch {initial_epoch} (optimizer step {step}, "
              f"best validation loss so far {best_loss:.4f})")
    started = time.time()

    class Checkpoint(keras.callbacks.Callback):
        """Every epoch: the last weights (with the optimizer state), the best ones by validation loss,
        and state.json, each written whole or not at all (a full disk loses nothing saved before)."""

        def __init__(self, best_loss: float) -> None:
            super().__init__()
            self.best_loss = best_loss

        def on_epoch_end(self, epoch, logs=None):
            from clarityx.screening.files import atomic_path, write_text

            loss = float((logs or {}).get("val_loss", float("inf")))
            with atomic_path(last) as tmp:
                self.model.save_weights(tmp)
            if loss < self.best_loss:
                self.best_loss = loss
                with atomic_path(best) as tmp:
                    self.model.save_weights(tmp)
            write_text(state, json.dumps({"epoch": epoch + 1, "seconds": seconds_before + time.time() - started,
                                          "best_val_loss": self.best_loss,
                                          "optimizer_step": int(keras.ops.convert_to_numpy(
                                              self.model.optimizer.iterations))}))

    if args.distribute == "none":  # as before
        train, fit_args = (T.train_dataset(x["train"], y["train"], args.batch_size, args.seed,
                                           augmenter(args.seed, args.aug_strength)), {"class_weight": class_weight})
    else:  # global batches, sharded over the workers and split over the replicas by fit
        train = D.sharded_dataset(len(x["train"]), D.from_arrays(x["train"], y["train"]), s.global_batch, args.seed,
                                  augment=augmenter(args.seed, args.aug_strength), class_weight=class_weight,
                                  image_shape=x["train"].shape[1:])
        fit_args = {"steps_per_epoch": per_epoch}
    history = model.fit(
        train, validation_data=T.eval_dataset(x["validation"], y["validation"], s.global_batch),
        epochs=min(args.stop_after or args.epochs, args.epochs), initial_epoch=initial_epoch, verbose=2, **fit_args,
        callbacks=[Checkpoint(best_loss), keras.callbacks.EarlyStopping(patience=args.patience),
                   progress_callback(args, "fine-tuning the whole network", args.epochs)])
    if best.exists():
        model.load_weights(best)
    return initial_epoch + len(history.history.get("loss", [])), seconds_before + time.time() - started


def checkpoint_paths(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    """(last, best, state) of phase 2, one folder per output model."""
    ckpt_dir = Path(args.cache_dir) / "checkpoints" / Path(args.output).stem
    return ckpt_dir / "last.weights.h5", ckpt_dir / "best.weights.h5", ckpt_dir / "state.json"


def resumable(args: argparse.Namespace) -> bool:
    last, _, state = checkpoint_paths(args)
    return bool(args.resume and last.exists() and state.exists())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.time()

    import keras
    import numpy as np

    from clarityx.data.split import write_split
    from clarityx.model.backbones import BACKBONES, WeightsUnavailable
    from clarityx.model.build import build_classifier, save_card, save_model
    from clarityx.screening.card import split_path
    from clarityx.screening.files import WriteFailed
    from clarityx.screening.ood import ood_path
    from clarityx.training import card as C
    from clarityx.training import steps as T
    from clarityx.training.distribute import is_chief, make_strategy
    from clarityx.training.evaluate import camera_probe, outside_check

    T.set_seeds(args.seed)
    strategy = make_strategy(args.distribute)  # before any model: its variables are made in its scope
    classes = args.classes.split(",") if args.classes else None
    output = Path(args.output)
    roots = [Path(d).parent if d.endswith(".csv") else Path(d) for d in args.data]
    data_root = Path(os.path.commonpath([str(r.resolve()) for r in roots]))

    report_progress(args, stage="reading and auditing the data")
    classes, samples, report, split, parts, split_repeats = prepare_data(args, classes)
    if not parts["train"] or not parts["validation"]:
        print("error: the split left no training or validation images", file=sys.stderr)
        return 2
    index = {c: i for i, c in enumerate(classes)}
    y = {k: np.array([index[s.label] for s in v if s.label in index], dtype=np.int32) for k, v in parts.items()}
    # Pixels in memory only where the model itself runs: evaluation, and the training photos when phase 2
    # fine-tunes the network (phase 1 reads the feature cache).
    x = {k: T.load_pixels(v, args.img_size, Path(args.cache_dir), contrast=args.contrast)
         if v and (k != "train" or args.epochs > 0 or args.init or args.resume)
         else np.zeros((0, args.img_size, args.img_size, 3), np.uint8) for k, v in parts.items()}
    trainable = {k: x[k] if k != "test" else x[k][[s.label in index for s in parts[k]]] for k in x}
    # Photos left out of the fit (--train-exclude-source, --dr-train-from-grade) are left out of every phase.
    fit_mask = np.array([fitted_on(s, args) for s in parts["train"]], bool)
    if len(trainable["train"]):
        trainable["train"] = trainable["train"][fit_mask]
    y["train"] = y["train"][fit_mask]

    try:
        with strategy.scope():
            model = build_classifier(args.backbone, len(classes), args.img_size,
                                     None if args.weights == "none" else args.weights)
    except WeightsUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    fit_labels = np.array([index[s.label] for s in parts["train"] if fitted_on(s, args)], np.int32)
    class_weight = T.class_weights(fit_labels, len(classes), args.class_weight)
    if args.init:
        try:
            model.set_weights(keras.saving.load_model(args.init, compile=False).get_weights())
        except (OSError, ValueError) as exc:
            print(f"error: cannot start from {args.init}: {exc}", file=sys.stderr)
            return 2

    t0 = time.time()
    head_run = None
    if not resumable(args) and not args.init:  # a phase-2 checkpoint holds the whole network, head included
        head_run = train_head(model, split, parts, y, classes, args, class_weight)
    phase1_s = time.time() - t0
    try:
        phase2_epochs, phase2_s = (fine_tune(model, trainable, y, args, class_weight, strategy) if args.epochs > 0
                                   else (0, 0.0))
    except WriteFailed as exc:
        print(f"error: {exc} Free some space, then continue with the same command and --resume.", file=sys.stderr)
        return 1

    report_progress(args, stage="calibrating and testing")
    grade_raw = None
    if head_run is not None and head_run["grade_layer"] is not None:
        from clarityx.screening.calibration import softmax

        w, b = head_run["grade_layer"]
        grade_raw = {k: softmax(T.embeddings(model, x[k], args.batch_size) @ w + b)
                     for k in ("validation", "calibration", "test") if len(x[k])}
    metrics, calibration = C.evaluate_model(model, x, parts, classes, args, class_weight, grade_raw,
                                            outside_raw(head_run, data_root))
    if "test" in metrics:
        print(json.dumps({k: v for k, v in metrics["test"].items() if k != "confusion_matrix"}, indent=1))
    ood, gate = C.fit_gate(model, head_run if args.epochs == 0 else None, trainable["train"], y["train"],
                           x["validation"], args.batch_size)
    test_probe = (camera_probe(T.embeddings(model, x["test"], args.batch_size), parts["test"])
                  if len(x["test"]) else None)
    answers = fit_answers(head_run, parts, classes, calibration, data_root, args) if head_run else {}
    card = C.build_card(
        args, [sys.argv[0]] + (argv or sys.argv[1:]), classes=classes, samples=samples, report=report, split=split,
        parts=parts, repeats=split_repeats, data_root=data_root, metrics=metrics, calibration=calibration,
        gate=gate, probe=test_probe, head_run=head_run, answers=answers,
        architecture=(f"{BACKBONES[args.backbone].description} → BatchNorm → [GlobalMaxPool, GlobalAveragePool]"
                      " → Dense 512 ReLU → Dropout 0.4 → Dense softmax"),
        timings={"phase1_seconds": phase1_s, "phase2_seconds": phase2_s, "phase2_epochs": phase2_epochs,
                 "started": started})
    if not is_chief():  # multi-worker: the chief writes the model, its card and the ONNX graph
        return 0
    save_model(model, card, output)
    ood.save(ood_path(output))
    if Path(args.split_file or split_path(output)).resolve() != split_path(output).resolve():
        write_split(split, split_path(output))  # a split reused from elsewhere: the model's copy beside it
    report_progress(args, stage="exporting the ONNX graph and checking the outside sets")
    outside, checks = outside_check(output, data_root, args.graded_data)
    if outside:
        card.metrics["outside"] = outside
        card.metrics["answer_checks"] = checks
        save_card(card, output)
    report_progress(args, stage="finished", test_macro_f1=metrics.get("test", {}).get("macro_f1"))
    print(f"Saved {output} ({output.stat().st_size / 2**20:.1f} MB) with its card; "
          f"temperature {calibration.temperature:.2f}; {time.time() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
