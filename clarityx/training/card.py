"""What a training run measures and writes about its model: the calibration and every card figure
(:func:`card_metrics`), the gate's out-of-distribution statistics (:func:`fit_gate`), and the card
itself (:func:`build_card`). ``train.py`` runs the recipe and hands its results here;
``scripts/recalibrate.py`` re-runs :func:`card_metrics` on a trained model.

A card holds no absolute path of the machine that built it: paths are written as given, absolute ones
relative to the working directory (:func:`portable`); the data root is recorded relative to the split file.
"""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clarityx.data.datasets import ODIR_KEYWORDS, PUBLIC_SOURCES
from clarityx.screening.card import ModelCard, default_intended_use, default_limitations, split_path
from clarityx.screening.limits import DEFAULT_GATE

# Versions that change what the model sees (OpenCV, Pillow, NumPy: pixels) and its numbers (TensorFlow/Keras:
# training; ONNX Runtime: the app's engine).
LIBRARIES = ("keras", "tensorflow", "tensorflow-cpu", "onnxruntime", "opencv-python-headless", "pillow", "numpy")
# train.py's arguments that name files or folders.
PATH_ARGUMENTS = ("data", "output", "split_file", "cache_dir", "init", "progress_file")


@dataclass
class Calibration:
    """The figures that turn the network's softmax into the app's probabilities and flag, and how they were
    chosen (the card's ``calibration`` section)."""

    temperature: float
    log_prior_correction: list[float]
    dr_threshold: float | None
    how: dict

    def card_fields(self) -> dict:
        return {"temperature": self.temperature, "log_prior_correction": self.log_prior_correction,
                "dr_threshold": self.dr_threshold, "calibration": self.how}


def evaluate_model(model, x: dict, parts: dict, classes: list[str], args, class_weight: dict,
                   grade_raw: dict | None = None, outside: dict | None = None):
    """Predict the validation, calibration and test photos, then :func:`card_metrics`."""
    from clarityx.training import steps as T

    raw = {k: T.predict_probs(model, x[k], args.batch_size) for k in ("validation", "calibration", "test") if len(x[k])}
    return card_metrics(raw, parts, classes, args, class_weight, grade_raw, outside)


def card_metrics(raw: dict, parts: dict, classes: list[str], args, class_weight: dict,
                 grade_raw: dict | None = None, outside: dict | None = None) -> tuple[dict, Calibration]:
    """From the raw softmax of each split: the prior correction and temperature (strength chosen on
    validation, temperature fitted on the calibration split), the glaucoma operating point and the
    referable-DR threshold, then every card figure on validation, calibration and, once, test.

    ``grade_raw``: the DR-grade layer's raw softmax of each split (a multi-task head): its temperature is
    fitted on the calibration split's graded eyes and the referable score is its P(grade >= 2); without it,
    the score is P(diabetic retinopathy). ``outside``: ``{set: (raw, referable)}`` of each outside set's
    healthy and referable photos (raw: grade softmax, or class softmax without a grade layer): the threshold
    is fitted on validation plus them (the shipped one) and on validation plus all but one (reported on the
    one left out, :func:`clarityx.training.answers.leave_one_set_out`). Returns (metrics, calibration)."""
    from clarityx.screening.calibration import apply_temperature as calibrate
    from clarityx.screening.grades import REFERABLE_FROM, referable_scores
    from clarityx.training import answers as A
    from clarityx.training.evaluate import screening_report
    from clarityx.training.metrics import (apply_temperature, choose_prior_correction, expected_calibration_error,
                                           fit_temperature, threshold_for_sensitivity)

    full = np.array([-float(np.log(class_weight[i])) for i in range(len(classes))])
    y_cal = np.array([classes.index(s.label) for s in parts["calibration"]])
    y_val = np.array([classes.index(s.label) for s in parts["validation"]])
    if args.prior_correction == "auto":
        strength, temperature, table = choose_prior_correction(raw["validation"], y_val, raw["calibration"], y_cal,
                                                               full)
    else:
        strength, table = float(args.prior_correction), []
        temperature = fit_temperature(raw["calibration"], y_cal, list(strength * full))
    bias = [float(b) for b in strength * full]
    how_glaucoma = None
    if "glaucoma" in classes and "normal" in classes:
        # More glaucoma found at a bounded cost: the largest shift of the glaucoma logit that calls at most
        # GLAUCOMA_NORMAL_LIMIT of the validation normal eyes glaucoma (the retina_dataset camera left out).
        cams = np.array([s.source != "retina_dataset" for s in parts["validation"]])
        p_val = apply_temperature(raw["validation"], temperature, bias)
        shift = A.glaucoma_bias(p_val[cams], y_val[cams], classes.index("glaucoma"), classes.index("normal"))
        bias[classes.index("glaucoma")] += shift * temperature  # a shift of the calibrated logit
        how_glaucoma = (f"glaucoma logit shifted by {shift:.2f} (after temperature): the largest shift that calls at "
                        f"most {A.GLAUCOMA_NORMAL_LIMIT:.0%} of validation normal eyes glaucoma")
    probs = {k: apply_temperature(v, temperature, bias) for k, v in raw.items()}
    grade_temperature = None
    if grade_raw is not None:
        cal = [i for i, s in enumerate(parts["calibration"]) if s.grade is not None]
        grade_temperature = fit_temperature(grade_raw["calibration"][cal],
                                            np.array([parts["calibration"][i].grade for i in cal], int)) if cal else 1.0

    def scores_of(split_raw: np.ndarray, grade_split_raw: np.ndarray | None) -> np.ndarray | None:
        if grade_split_raw is not None:
            return calibrate(grade_split_raw, grade_temperature)[:, REFERABLE_FROM:].sum(axis=1)
        return referable_scores(calibrate(split_raw, temperature, bias), classes)

    scores = {k: scores_of(raw[k], None if grade_raw is None else grade_raw[k]) for k in raw}
    dr_threshold, left_out = None, {}
    graded = [i for i, s in enumerate(parts["validation"]) if s.grade is not None]
    referable = np.array([parts["validation"][i].grade >= REFERABLE_FROM for i in graded], bool)
    if scores["validation"] is not None and referable.any():
        val_scores = scores["validation"][graded]
        if outside:
            sets = {name: (scores_of(r, r if grade_raw is not None else None), np.asarray(pos, bool))
                    for name, (r, pos) in outside.items()}
            loso = A.leave_one_set_out(val_scores, referable, sets, args.dr_sensitivity)
            dr_threshold = loso["shipped"]
            left_out = {name: v["threshold"] for name, v in loso["left_out"].items()}
            chosen_on = (f"validation split and the outside sets ({', '.join(sets)}), sensitivity >= "
                         f"{args.dr_sensitivity}; each outside set is reported at the threshold fitted without it")
        else:
            dr_threshold = threshold_for_sensitivity(val_scores, referable, args.dr_sensitivity)
            chosen_on = f"validation split, sensitivity >= {args.dr_sensitivity}"

    def report(name: str, rounds: int) -> dict:
        ss = parts[name]
        return screening_report(
            probs[name], [s.label for s in ss], classes, sources=[s.source or "unknown" for s in ss],
            grades=[s.grade for s in ss], groups=[s.group or str(s.path) for s in ss],
            conditions=[s.conditions for s in ss], dr_threshold=dr_threshold, rounds=rounds,
            referable=scores[name])

    metrics = {"validation": report("validation", 200), "calibration": report("calibration", 200)}
    if "test" in probs:
        metrics["test"] = report("test", 1000)
        known = [i for i, s in enumerate(parts["test"]) if s.label in classes]
        metrics["test_ece_before_calibration"] = expected_calibration_error(
            raw["test"][known], np.array([classes.index(parts["test"][i].label) for i in known]))
    how = {"class_weight": args.class_weight, "prior_correction_strength": strength,
           "prior_correction_choice": table or f"--prior-correction {args.prior_correction}",
           "fitted_on": "calibration split (never used for early stopping); the prior-correction "
                        "strength by validation macro-F1",
           "dr_threshold_chosen_on": chosen_on if dr_threshold is not None else None}
    if how_glaucoma:
        how["glaucoma_operating_point"] = how_glaucoma
    if left_out:
        how["dr_threshold_left_out"] = left_out
    if grade_temperature is not None:
        how["dr_grade_temperature"] = grade_temperature
    return metrics, Calibration(temperature, bias, dr_threshold, how)


def fit_gate(model, head_run: dict | None, train_pixels: np.ndarray, train_labels: np.ndarray,
             validation_pixels: np.ndarray, batch_size: int):
    """The gate's out-of-distribution statistics (Mahalanobis, :mod:`clarityx.screening.ood`) and the card's
    ``gate`` section: its settings (the defaults, and the limit fitted here) and where the limit came from.

    A head-only run (``head_run``: :func:`train.train_head`'s cached views are the model's own embeddings)
    fits the limit on the augmented training views; a fine-tuned one on the validation photos."""
    from clarityx.screening.ood import MahalanobisModel
    from clarityx.training import steps as T
    from clarityx.training.heads import OOD_QUANTILE, ood_limit

    if head_run is not None:
        views = head_run["embeddings"]
        ood = MahalanobisModel.fit(np.concatenate(views), np.tile(head_run["labels"], len(views)))
        view_dist = ood.distance(np.concatenate(views[1:] or views))
        val_dist = ood.distance(head_run["validation_embeddings"])
        fitted_on = f"the {OOD_QUANTILE:.1%} quantile of the augmented training views' distances (train.py)"
    else:
        ood = MahalanobisModel.fit(T.embeddings(model, train_pixels, batch_size), train_labels)
        view_dist = val_dist = ood.distance(T.embeddings(model, validation_pixels, batch_size))
        fitted_on = f"the {OOD_QUANTILE:.1%} quantile of the validation photos' distances (train.py)"
    gate = {"settings": {**DEFAULT_GATE.as_dict(), "max_ood_distance": ood_limit(view_dist)},
            "max_ood_distance_fitted_on": fitted_on,
            "ood_validation_distance_percentiles": {str(q): float(np.percentile(val_dist, q))
                                                    for q in (50, 90, 95, 98, 99)}}
    return ood, gate


def library_versions() -> dict:
    """The installed versions of :data:`LIBRARIES`."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def label_mapping_table() -> dict:
    """How ODIR-5K's per-eye keywords become labels (from the class table), as the card prints it."""
    return {k: {"condition": c or "(photo quality: ignored)", "dr_grade": g} for k, (c, g) in ODIR_KEYWORDS.items()}


def patients_in_two_splits(samples) -> int:
    """How many patient (or duplicate) groups sit in more than one split: must be 0."""
    splits: dict = {}
    for s in samples:
        splits.setdefault(s.group, set()).add(s.split)
    return sum(len(v) > 1 for v in splits.values())


def portable(path):
    """A path as the card records it: as given, an absolute one relative to the working directory (a card
    names no folder of the machine that built it). Lists path by path; None stays None."""
    if isinstance(path, list):
        return [portable(p) for p in path]
    if path is None or not os.path.isabs(str(path)):
        return path
    return os.path.relpath(path)


def command_line(argv: list[str]) -> str:
    """The command that ran, with :func:`portable` paths."""
    return "python " + " ".join(shlex.quote(portable(a)) for a in argv)


def build_card(args: argparse.Namespace, argv: list[str], *, classes: list[str], samples, report, split,
               parts: dict, repeats: int, data_root: Path, metrics: dict, calibration: Calibration, gate: dict,
               probe: dict | None, head_run: dict | None, architecture: str, timings: dict,
               answers: dict | None = None) -> ModelCard:
    """The card of a finished run: what the model is, what it was trained on and how, and every figure.

    ``samples``, ``report``, ``split`` and ``parts``: ``train.prepare_data``'s; ``repeats``: photos reached
    through two datasets; ``data_root``: the datasets' common folder; ``timings``: phase1_seconds,
    phase2_seconds, phase2_epochs and the run's start time (``started``)."""
    from clarityx.data.audit import data_decisions

    output = Path(args.output)
    # The public collections' licence and words belong on cards of models trained on them only.
    public = bool({s.source for s in samples} & PUBLIC_SOURCES)
    return ModelCard(
        name=args.name or output.stem,
        classes=classes,
        input_size=args.img_size,
        backbone=args.backbone,
        architecture=architecture,
        initialisation=args.weights + (f", then {Path(args.init).name}" if args.init else ""),
        contrast=args.contrast,
        **calibration.card_fields(),
        intended_use=default_intended_use(classes, None if public else f"{len(samples)} photos of your own dataset"),
        limitations=default_limitations(classes, camera_probe=probe is not None, public_data=public,
                                        grade_layer=bool((answers or {}).get("dr_grade"))),
        data={
            "source": portable(args.data),
            "licence": ("Research and non-commercial use only (ODIR-5K, EyePACS and other public "
                        "collections); a model trained on them inherits that restriction." if public else
                        "The licence of the dataset it was trained on applies to this model."),
            "label_mapping": label_mapping_table(),
            "task": args.task,
            "dr_grade0_policy": args.dr_grade0,
            "dr_ungraded_policy": args.dr_ungraded,
            "pre_made_augmented_copies": "used for training only" if args.keep_augmented else "excluded",
            "defects_handled": data_decisions(args.dr_grade0, args.dr_ungraded, args.keep_augmented, args.task),
            "photos_in_two_datasets": repeats,
            "counts": {k: dict(Counter(s.label for s in v)) for k, v in parts.items()},
            "sources": {k: dict(Counter(s.source or "unknown" for s in v)) for k, v in parts.items()},
        },
        audit={
            "files": report.files, "unreadable": len(report.unreadable),
            "exact_duplicate_groups": len(report.exact_duplicate_groups),
            "near_duplicate_groups": len(report.near_duplicate_groups),
            "conflicting_label_groups": len(report.conflicting_groups),
            "augmented_copies": len(report.augmented_copies),
            "dropped": len(samples) - len(split.samples),
            "patients": report.patients,
            "patients_with_several_photos": report.patients_with_several_photos,
            "patients_in_two_splits": patients_in_two_splits(split.samples),
        },
        split={"method": "patient and near-duplicate groups kept whole, stratified by (label, source); "
                         "train / validation (stopping, DR threshold) / calibration (temperature) / test; "
                         "every photo's part in the split file beside the model",
               "seed": args.seed,
               # the test photos' paths in the split file, relative to this, are relative to the data root
               "data_root": os.path.relpath(data_root.resolve(), split_path(output).parent.resolve())},
        metrics={**metrics, "camera_probe_test_normal_eyes": probe},
        gate=gate,
        answers=answers or {},
        training={
            "command": command_line(argv),
            "phase1_seconds": round(timings["phase1_seconds"]), "phase2_seconds": round(timings["phase2_seconds"]),
            "phase2_epochs": timings["phase2_epochs"], "aug_strength": args.aug_strength,
            "phase1_trained_on": head_run and head_run["trained_on"],
            "arguments": {k: portable(v) if k in PATH_ARGUMENTS else v for k, v in vars(args).items()},
            "total_seconds": round(time.time() - timings["started"]),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
            "library_versions": library_versions(),
            "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        },
    )
