"""``clarityx evaluate``: a model's metrics on labelled photos, with the gate's refusals counted.

By default it evaluates the model's test photos, the test part of its split file (``NAME.split.csv``
beside it; paths relative to DATA when the card says where the data root lay), which reproduces the
card's numbers, and, when DATA holds the outside sets
(``DATA/external``, :mod:`clarityx.data.external`), reports them beside it. Metrics are computed on every readable
image (as the card's are); the gate's refusals are reported beside them.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from clarityx.data.datasets import MULTIPLE, OTHER_FINDINGS, REPORTED_APART, Sample, as_dr_grades, load_dataset
from clarityx.data.split import model_parts, read_split
from clarityx.screening.card import split_path
from clarityx.screening.classes import NORMAL
from clarityx.screening.engine import CardedModel
from clarityx.screening.gate import check_embedding
from clarityx.screening.grades import REFERABLE_FROM, grade_of, is_grade_model, referable_columns, referable_scores
from clarityx.screening.pipeline import decode
from clarityx.training.metrics import (bootstrap_interval, classification_report, expected_calibration_error,
                                       sensitivity_specificity)


def card_test_samples(classifier: CardedModel, data: str | Path) -> list[Sample]:
    """The model's test photos: the test part of its split file, as it was tested when trained; moved onto
    ``data`` when the card records where the data root lay relative to the split file."""
    card = classifier.card
    # An export (NAME.int8.tflite...) shares the split file of the model its card describes.
    found = [p for p in (split_path(classifier.path), classifier.path.with_name(f"{card.name}.split.csv"))
             if p.is_file()]
    if not found:
        raise ValueError(f"no split file {split_path(classifier.path).name} beside the model (it lists the "
                         "photos the model was tested on); use --files all")
    cap = (card.training.get("arguments") or {}).get("max_per_class") or 0
    test = model_parts(read_split(found[0]), classifier.classes, cap)["test"]
    root = card.split.get("data_root")
    if root is None:
        return test
    base = found[0].parent / root
    return [replace(s, path=Path(data) / os.path.relpath(s.path, base)) for s in test]


def evaluate(classifier: CardedModel, data: str | Path, files: str = "card-test",
             layout: str | None = None, batch_size: int = 32, rounds: int = 1000,
             idrid: str | Path | None = None) -> dict:
    if files == "card-test":
        samples = card_test_samples(classifier, data)
    else:
        samples = load_dataset(data, layout)
        if is_grade_model(classifier.classes):
            samples = as_dr_grades(samples)
    samples = [s for s in samples if s.label in classifier.classes or s.label in REPORTED_APART]
    if not any(s.label in classifier.classes for s in samples):
        raise ValueError("no labelled images of the model's classes found")
    run = run_photos(classifier, [s.path for s in samples], batch_size)
    readable = run.readable
    kept = [s for s, ok in zip(samples, readable) if ok]
    report = screening_report(
        run.probs[readable], [s.label for s in kept], classifier.classes,
        sources=[s.source or "unknown" for s in kept], grades=[s.grade for s in kept],
        groups=[s.group or str(s.path) for s in kept], conditions=[s.conditions for s in kept],
        dr_threshold=classifier.card.dr_threshold, rounds=rounds, referable=run.scores[readable])
    report["camera_probe_test_normal_eyes"] = camera_probe(run.embeddings[readable], kept)
    report["gate"] = {"refused": int(sum(run.reasons.values())), "of": len(kept),
                      "reasons": dict(run.reasons)}
    report["unreadable"] = [str(s.path) for s, ok in zip(samples, readable) if not ok]
    report["model"] = str(classifier.path)
    report["outside"] = evaluate_outside(classifier, data, batch_size, rounds)
    report["answer_checks"] = evaluate_answer_checks(classifier, data, batch_size, rounds, idrid)
    return report


@dataclass
class Photos:
    """Every photo's answers through the app's path (:func:`run_photos`); NaN rows for unreadable photos."""
    probs: np.ndarray        # (N, C) calibrated probabilities
    embeddings: np.ndarray   # (N, D)
    scores: np.ndarray       # (N,) referable-DR score (the grade layer's P(grade >= 2), or P(DR)); NaN: none
    accepted: np.ndarray     # (N,) bool: neither the image test nor the embedding's tests refused it
    refused: list[str]       # (N,) the refusal reason ("" when accepted or unreadable)
    hazy: np.ndarray         # (N,) bool: an accepted photo answered "hazy view: see an eye doctor"
    readable: np.ndarray     # (N,) bool

    @property
    def reasons(self) -> dict[str, int]:
        return dict(Counter(r for r in self.refused if r))


def run_photos(classifier: CardedModel, paths: list, batch_size: int = 32) -> Photos:
    """Every photo through the app's path (decode → gate → prepare → model → tests on the embedding → answers).
    The model answers every readable photo, refused or not (figures are over every readable photo)."""
    from clarityx.screening.answers import grade_probabilities, is_hazy, referable_from_grades
    from clarityx.screening.gate import inspect
    from clarityx.screening.grades import referable_score

    n = len(paths)
    probs = np.full((n, len(classifier.classes)), np.nan)
    embeddings = None
    scores = np.full(n, np.nan)
    accepted, readable, hazy = np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool)
    refused = [""] * n
    gate, card_answers = classifier.card.gate_settings, classifier.card.answers
    for start in range(0, n, batch_size):
        rows, pixels, gated, measured = [], [], [], []
        for i in range(start, min(start + batch_size, n)):
            rgb, failed = decode(paths[i], gate)
            if failed:
                continue
            rejection, measures = inspect(rgb, gate)
            if rejection:
                refused[i] = rejection.reason
            rows.append(i)
            gated.append(rejection is not None)
            measured.append(measures)
            pixels.append(classifier.prepare(rgb))
        if not pixels:
            continue
        for i, was_gated, measures, p in zip(rows, gated, measured, classifier.predict(np.stack(pixels))):
            if embeddings is None:
                embeddings = np.full((n, p.embedding.size), np.nan, np.float32)
            probs[i], embeddings[i], readable[i] = p.probabilities, p.embedding, True
            answer = dict(zip(classifier.classes, p.probabilities))
            grades = grade_probabilities(card_answers, p.embedding)
            score = referable_from_grades(grades) if grades is not None else referable_score(answer)
            scores[i] = np.nan if score is None else score
            rejection = None if was_gated else check_embedding(classifier, p.embedding)
            if rejection:
                refused[i] = rejection.reason
            accepted[i] = not was_gated and rejection is None
            hazy[i] = accepted[i] and "haze" in card_answers and "cataract" in answer \
                and is_hazy(card_answers, measures, answer["cataract"])
    if embeddings is None:
        embeddings = np.zeros((n, 0), np.float32)
    return Photos(probs, embeddings, scores, accepted, refused, hazy, readable)


def evaluate_outside(classifier: CardedModel, data: str | Path, batch_size: int = 32, rounds: int = 1000) -> dict:
    """The outside check (:mod:`clarityx.data.external`): per set, healthy eyes called normal, DR found,
    referable eyes flagged and healthy eyes not flagged at the card's threshold, the referable score's ROC
    AUC, and the share of photos the gate accepts, with patient-bootstrap 95% intervals; and, for the
    photos a set keeps at two sizes, how often the answer is the same. Figures are over every readable
    photo (as the test figures are); the gate's refusals are reported beside them. ``{}`` when ``data``
    has no outside sets."""
    from clarityx.data.external import find_outside, read_outside
    from clarityx.training.heads import outside_figures

    external = find_outside(data)
    if external is None:
        return {}
    report: dict = {}
    left_out = classifier.card.calibration.get("dr_threshold_left_out") or {}
    for name, photos in read_outside(external).items():
        run = run_photos(classifier, [p.path for p in photos], batch_size)
        probs, accepted, ok = run.probs, run.accepted, run.readable
        kept = [p for p, k in zip(photos, ok) if k]
        entry = outside_figures(probs[ok], kept, classifier.classes, classifier.card.dr_threshold,
                                accepted=accepted[ok], rounds=rounds, scores=run.scores[ok],
                                thresholds={"fitted_without_this_set": left_out[name]} if name in left_out else None)
        entry["gate_reasons"] = run.reasons
        entry["unreadable"] = int((~ok).sum())
        if entry["unreadable"]:  # an unreadable photo is a photo not accepted
            from clarityx.training.metrics import bootstrap_interval

            groups = [p.patient for p in photos]
            entry["accepted"] = {"value": float(accepted.mean()), "n": len(photos),
                                 "ci95": bootstrap_interval(lambda i: float(accepted[i].mean()), len(photos), groups,
                                                            rounds=rounds)}
        pairs = [(i, p) for i, p in enumerate(photos) if p.original is not None and ok[i]]
        if pairs:
            big = run_photos(classifier, [p.original for _, p in pairs], batch_size).probs
            small = probs[[i for i, _ in pairs]]
            both = ~np.isnan(big).any(axis=1)
            small, big = small[both], big[both]
            entry["size_pairs"] = {"n": int(both.sum()),
                                   "same_top": float((small.argmax(1) == big.argmax(1)).mean()),
                                   "max_abs_difference": float(np.abs(small - big).max()),
                                   "median_max_abs_difference": float(np.median(np.abs(small - big).max(axis=1))),
                                   "sizes": "as stored (512 px) and the original file"}
        report[name] = entry
    return report


def _share(hit: np.ndarray, groups=None, rounds: int = 1000) -> dict:
    hit = np.asarray(hit, bool)
    return {"value": float(hit.mean()) if hit.size else float("nan"), "n": int(hit.size),
            "ci95": list(bootstrap_interval(lambda i: float(hit[i].mean()), hit.size, groups, rounds=rounds))
            if hit.size else [float("nan")] * 2}


def evaluate_answer_checks(classifier: CardedModel, data: str | Path, batch_size: int = 32,
                           rounds: int = 1000, idrid: str | Path | None = None) -> dict:
    """The sets that check one answer each, through the app's path, where ``data/external`` (``idrid``: IDRiD's
    download, fetched by ``scripts/fetch_outside.sh``) holds them:

    - ``csdi`` (cataract haze): photos scored >= 3 answered cataract, hazy or refused as blurred (a reason to
      see an eye doctor); clear photos (score <= 1) answered so; Spearman of P(cataract) with the score;
    - ``front_of_eye``: real photos of the front of the eye refused, as taken and cut to a circle on black, and
      the refusal reasons (never "blurred" or "cropped");
    - ``idrid_test``: IDRiD's test part (its camera is in the fit): referable AUC, and sensitivity and
      specificity at the card's threshold."""
    from clarityx.data.external import circular_crop, read_csdi, read_front_of_eye, read_idrid
    from clarityx.screening.gate import REFER
    from clarityx.screening.imageio import load_image
    from clarityx.training.answers import spearman
    from clarityx.training.heads import _auc

    external = Path(data) / "external"
    out: dict = {}
    names = classifier.classes
    if (external / "csdi" / "labels.csv").is_file() and "cataract" in names:
        photos = read_csdi(external / "csdi")
        run = run_photos(classifier, [p.path for p in photos], batch_size)
        score = np.array([p.score for p in photos])
        cat = names.index("cataract")
        called = run.hazy | (run.accepted & (np.nan_to_num(run.probs).argmax(1) == cat)) \
            | np.array([r in REFER for r in run.refused])
        out["csdi"] = {"severe_called_cataract_or_hazy": _share(called[score >= 3], rounds=rounds),
                       "clear_called_cataract_or_hazy": _share(called[score <= 1], rounds=rounds),
                       "spearman_p_cataract_score": spearman(run.probs[run.readable, cat], score[run.readable]),
                       "hazy": int(run.hazy.sum()), "refusals": run.reasons, "photos": len(photos)}
    if (external / "front_of_eye" / "labels.csv").is_file():
        photos = read_front_of_eye(external / "front_of_eye")
        entry = {}
        for form, source in (("as_taken", [p.path for p in photos]),
                             ("circular_crop", [circular_crop(load_image(p.path)) for p in photos])):
            run = _run_arrays(classifier, source, batch_size) if form == "circular_crop" \
                else run_photos(classifier, source, batch_size)
            refused = np.array([r != "" for r in run.refused]) | ~run.readable
            entry[form] = {"refused": _share(refused, [p.source for p in photos], rounds),
                           "reasons": run.reasons,
                           "by_source": {s: float(refused[[p.source == s for p in photos]].mean())
                                         for s in sorted({p.source for p in photos})}}
        out["front_of_eye"] = entry
    idrid = [p for p in read_idrid(idrid) if p.part == "test"] if idrid else []
    if idrid:
        run = run_photos(classifier, [p.path for p in idrid], batch_size)
        ok = run.readable
        positive = np.array([p.referable for p in idrid])[ok]
        s = run.scores[ok]
        t = classifier.card.dr_threshold
        entry = {"photos": len(idrid), "referable": int(positive.sum()), "referable_auc": _auc(s, positive),
                 "accepted": _share(run.accepted, rounds=rounds), "refusals": run.reasons}
        if t is not None:
            entry["sensitivity"] = _share(s[positive] >= t, rounds=rounds)
            entry["specificity"] = _share(s[~positive] < t, rounds=rounds)
        out["idrid_test"] = entry
    return out


def _run_arrays(classifier: CardedModel, images: list[np.ndarray], batch_size: int) -> Photos:
    """:func:`run_photos` on decoded images (PNG-encoded in memory, so they take the app's decoding path)."""
    import io

    from PIL import Image

    files = []
    for rgb in images:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="PNG")
        files.append(buf.getvalue())
    return run_photos(classifier, files, batch_size)


def outside_check(model_path: Path, data: Path, idrid: str | Path | None = None) -> tuple[dict, dict]:
    """Export a just-trained model's ONNX graph (the app's engine) beside it, then run the outside sets and the
    sets that check one answer each (:func:`evaluate_answer_checks`) through the app's own path (gate included)
    on that graph: every candidate is judged on them. ``({}, {})`` when ``data`` (or the folder above it) has
    none."""
    from clarityx.model.export import export
    from clarityx.screening.engine import OnnxClassifier

    export(model_path, "onnx")
    classifier = OnnxClassifier(model_path)
    for root in (data, data.parent):
        outside = evaluate_outside(classifier, root)
        if outside:
            print(format_outside(outside), flush=True)
            checks = evaluate_answer_checks(classifier, root, idrid=idrid)
            print(format_answer_checks(checks), flush=True)
            return outside, checks
    return {}, {}


def format_outside(outside: dict) -> str:
    lines = []
    for name, r in outside.items():
        parts = []
        for key, label in (("healthy_called_normal", "healthy called normal"), ("dr_found", "DR found"),
                           ("referable_flagged", "referable flagged"), ("healthy_not_flagged", "healthy not flagged"),
                           ("referable_flagged_fitted_without_this_set",
                            "referable flagged at the threshold fitted without this set"),
                           ("healthy_not_flagged_fitted_without_this_set", "healthy not flagged at that threshold"),
                           ("referable_auc", "referable ROC AUC"), ("accepted", "accepted by the gate")):
            if key in r:
                m = r[key]
                parts.append(f"{label} {m['value']:.3f} {_fmt(m['ci95'])} (n={m['n']})")
        lines.append(f"outside set {name} ({r['photos']} photos): " + "; ".join(parts))
        if "healthy_median_score" in r:
            lines.append(f"  healthy eyes' median referable score {r['healthy_median_score']:.3f}"
                         + (f"; threshold fitted without this set {r['threshold_fitted_without_this_set']:.3f}"
                            if "threshold_fitted_without_this_set" in r else ""))
        if "size_pairs" in r:
            sp = r["size_pairs"]
            lines.append(f"  same photo at two sizes: same top answer {sp['same_top']:.1%} of {sp['n']}, "
                         f"largest probability change {sp['max_abs_difference']:.3f}")
        if r.get("gate_reasons"):
            lines.append(f"  gate refusals: {r['gate_reasons']}")
    return "\n".join(lines)


def _fmt(interval) -> str:
    return f"[{interval[0]:.3f}–{interval[1]:.3f}]"


def format_report(r: dict) -> str:
    lines = [f"{r['n']} images: accuracy {r['accuracy']:.3f}, macro-F1 {r['macro_f1']:.3f}, "
             f"macro ROC-AUC {r['macro_roc_auc'] or float('nan'):.3f}, ECE {r['ece']:.3f}",
             f"{'class':24s} {'prec':>6s} {'recall':>6s} {'f1':>6s} {'auc':>6s} {'n':>5s}"]
    for c, m in r["per_class"].items():
        lines.append(f"{c:24s} {m['precision']:6.3f} {m['recall']:6.3f} {m['f1']:6.3f} "
                     f"{r['roc_auc_ovr'].get(c, float('nan')):6.3f} {m['support']:5d}")
    lines.append("confusion matrix (rows truth, columns prediction): " + str(r["confusion_matrix"]))
    ci = r.get("intervals", {})
    if ci:
        lines.append(f"95% intervals (patient bootstrap): accuracy {_fmt(ci['accuracy'])}, "
                     f"macro-F1 {_fmt(ci['macro_f1'])}, ECE {_fmt(ci['ece'])}")
        lines += [f"  recall {c}: {r['per_class'][c]['recall']:.3f} {_fmt(v)}" for c, v in ci["recall"].items()]
    if "quadratic_weighted_kappa" in r:
        lines.append(f"DR grade agreement: quadratic weighted kappa {r['quadratic_weighted_kappa']:.3f} "
                     f"{_fmt(ci['quadratic_weighted_kappa'])}")
    for name, m in r["by_source"].items():
        normal = (f"; normal eyes {m['normal_accuracy']:.3f} {_fmt(m['normal_accuracy_ci'])} of {m['normal_eyes']}"
                  if "normal_accuracy" in m else "")
        lines.append(f"source {name}: accuracy {m['accuracy']:.3f}, macro-F1 (its classes) {m['macro_f1']:.3f} "
                     f"{_fmt(m['macro_f1_ci'])} on {m['n']}{normal}; recall "
                     + ", ".join(f"{c} {v:.2f}" for c, v in m["recall"].items()))
    rd = r.get("referable_dr")
    if rd:
        lines.append(f"referable DR (grade >= 2) at score >= {rd['threshold']:.3f}: sensitivity "
                     f"{rd['sensitivity']:.3f} {_fmt(rd['sensitivity_ci'])} of {rd['positives']}, specificity "
                     f"{rd['specificity']:.3f} {_fmt(rd['specificity_ci'])} of {rd['negatives']}")
        for grade, m in rd["flagged_by_grade"].items():
            lines.append(f"  DR grade {grade}: flagged in {m['flagged']:.1%} of {m['n']}")
    of = r.get("other_findings")
    if of:
        lines.append(f"eyes with other findings only: {of['called_normal_p_ge_0.8']:.1%} "
                     f"{_fmt(of['called_normal_p_ge_0.8_ci'])} of {of['n']} called normal with p >= 0.8")
    mc = r.get("multiple_conditions")
    if mc:
        lines.append(f"eyes with two conditions: top answer one of them in {mc['top_is_one_of_its_conditions']:.1%} "
                     f"of {mc['n']}")
    probe = r.get("camera_probe_test_normal_eyes")
    if probe:
        lines.append(f"camera probe (normal eyes, ODIR vs EyePACS from the embedding): balanced accuracy "
                     f"{probe['balanced_accuracy']:.3f} on {probe['n']} (0.5 = camera not readable)")
    g = r["gate"]
    lines.append(f"gate refused {g['refused']} of {g['of']} ({g['reasons']}); unreadable {len(r['unreadable'])}")
    if r.get("outside"):
        lines.append(format_outside(r["outside"]))
    if r.get("answer_checks"):
        lines.append(format_answer_checks(r["answer_checks"]))
    return "\n".join(lines)


def format_answer_checks(checks: dict) -> str:
    def share(m):
        return f"{m['value']:.3f} {_fmt(m['ci95'])} of {m['n']}"

    lines = []
    c = checks.get("csdi")
    if c:
        lines.append(f"CSDI cataract: opacity >= 3 answered cataract, hazy or blurred-see-a-doctor "
                     f"{share(c['severe_called_cataract_or_hazy'])}; clear (<= 1) answered so "
                     f"{share(c['clear_called_cataract_or_hazy'])}; Spearman P(cataract)~score "
                     f"{c['spearman_p_cataract_score']:.3f}; refusals {c['refusals']}")
    f = checks.get("front_of_eye")
    if f:
        for form, m in f.items():
            lines.append(f"front of the eye, {form.replace('_', ' ')}: refused {share(m['refused'])}; "
                         f"reasons {m['reasons']}")
    i = checks.get("idrid_test")
    if i:
        extra = (f"; sensitivity {share(i['sensitivity'])}, specificity {share(i['specificity'])}"
                 if "sensitivity" in i else "")
        lines.append(f"IDRiD test ({i['photos']} photos, {i['referable']} referable; its camera is in the fit): "
                     f"referable AUC {i['referable_auc']:.3f}{extra}; accepted {share(i['accepted'])}")
    return "\n".join(lines)


def _ci(statistic, n: int, groups, rounds: int) -> list[float]:
    return list(bootstrap_interval(statistic, n, groups, rounds))


def screening_report(probs: np.ndarray, labels: list[str], classes: list[str], *,
                     sources: list[str], grades: list[int | None], groups: list[str],
                     conditions: list[tuple[str, ...]], dr_threshold: float | None,
                     rounds: int = 1000, referable: np.ndarray | None = None) -> dict:
    """Every headline figure of a model card, with patient-level bootstrap 95% intervals.

    Parameters
    ----------
    probs : (N, C) calibrated probabilities for every eye, including eyes whose label is not a
        model class (``other_findings``, ``multiple_conditions``), which are reported apart.
    labels, sources, grades, groups, conditions : per eye (grade: DR grade 0-4 or None; group:
        the patient, resampled whole by the bootstrap).
    dr_threshold : referable-DR score (:func:`clarityx.screening.grades.referable_scores`: P(DR), or
        P(grade >= 2) for a grade model) at or above which an eye is flagged for referable DR (chosen on
        validation photos); None skips the referable-DR section.
    referable : (N,) the referable score of every eye, where it is not a function of ``probs`` (a model's DR-grade
        layer on the embedding, :mod:`clarityx.screening.answers`).

    Returns
    -------
    dict with ``classification_report`` keys for the class-labelled eyes plus ``intervals``,
    ``by_source``, ``referable_dr``, ``other_findings`` and ``multiple_conditions``; for a DR-grade
    model also ``quadratic_weighted_kappa`` (Cohen's kappa with quadratic weights, as APTOS reports).
    """
    probs = np.asarray(probs, np.float64)
    labels_a, src, grp = np.array(labels), np.array(sources), np.array(groups)
    known = np.isin(labels_a, classes)
    y = np.array([classes.index(label) if k else -1 for label, k in zip(labels, known)])
    ki = np.flatnonzero(known)
    report = classification_report(probs[ki], y[ki], classes)
    pred = probs.argmax(1)

    def on(idx_fn):
        return lambda b: idx_fn(ki[b])

    def macro_f1(idx):
        from sklearn.metrics import f1_score
        return f1_score(y[idx], pred[idx], labels=list(range(len(classes))), average="macro", zero_division=0)

    def recall_of(c):
        return lambda idx: (pred[idx][y[idx] == c] == c).mean() if (y[idx] == c).any() else np.nan

    intervals = {"accuracy": _ci(on(lambda idx: (pred[idx] == y[idx]).mean()), len(ki), grp[ki], rounds),
                 "macro_f1": _ci(on(macro_f1), len(ki), grp[ki], rounds),
                 "ece": _ci(on(lambda idx: expected_calibration_error(probs[idx], y[idx])), len(ki), grp[ki], rounds)}
    intervals["recall"] = {c: _ci(on(recall_of(i)), len(ki), grp[ki], rounds) for i, c in enumerate(classes)}
    if is_grade_model(classes):
        from sklearn.metrics import cohen_kappa_score

        grade_index = np.array([grade_of(c) for c in classes])

        def kappa(idx):
            return cohen_kappa_score(grade_index[y[idx]], grade_index[pred[idx]], weights="quadratic",
                                     labels=sorted(grade_index))
        report["quadratic_weighted_kappa"] = float(kappa(ki))
        intervals["quadratic_weighted_kappa"] = _ci(on(kappa), len(ki), grp[ki], rounds)
    report["intervals"] = intervals

    normal = classes.index(NORMAL) if NORMAL in classes else None
    by_source = {}
    def source_f1(idx, present=None):
        from sklearn.metrics import f1_score
        labels = sorted(set(y[idx])) if present is None else present
        return f1_score(y[idx], pred[idx], labels=labels, average="macro", zero_division=0)

    for name in sorted(set(src[ki])):
        idx = ki[src[ki] == name]
        present = sorted(set(y[idx]))
        entry = {"n": int(idx.size), "accuracy": float((pred[idx] == y[idx]).mean()),
                 # over the classes this source has (a class it lacks would count as an F1 of 0)
                 "macro_f1": float(source_f1(idx, present)),
                 "macro_f1_ci": _ci(lambda b: source_f1(idx[b]), idx.size, grp[idx], rounds),
                 "recall": {classes[c]: float((pred[idx][y[idx] == c] == c).mean()) for c in sorted(set(y[idx]))},
                 "labels": {classes[c]: int((y[idx] == c).sum()) for c in sorted(set(y[idx]))}}
        if normal is not None and (y[idx] == normal).any():
            ni = idx[y[idx] == normal]
            entry["normal_eyes"] = int(ni.size)
            entry["normal_accuracy"] = float((pred[ni] == normal).mean())
            entry["normal_accuracy_ci"] = _ci(lambda b: (pred[ni[b]] == normal).mean(), ni.size, grp[ni], rounds)
        by_source[name] = entry
    report["by_source"] = by_source

    if dr_threshold is not None and (referable_columns(classes) or referable is not None):
        # The same eyes the threshold was chosen on (validation eyes of the model's classes with a known
        # grade): eyes with other findings only, or with two conditions, are reported apart.
        gi = np.array([i for i, g in enumerate(grades) if g is not None and known[i]], int)
        g = np.array([grades[i] for i in gi])
        score = referable_scores(probs[gi], classes) if referable is None else np.asarray(referable)[gi]
        flagged = score >= dr_threshold
        positive = g >= REFERABLE_FROM
        sens, spec = sensitivity_specificity(flagged, positive)
        report["referable_dr"] = {
            "threshold": float(dr_threshold),
            "definition": "grade >= 2 (moderate NPDR or worse) against grade 0-1, over the eyes of the model's "
                          "classes with a known DR grade (the population the threshold was chosen on)",
            "positives": int(positive.sum()), "negatives": int((~positive).sum()),
            "sensitivity": sens, "specificity": spec,
            "sensitivity_ci": _ci(lambda b: flagged[b][positive[b]].mean() if positive[b].any() else np.nan,
                                  gi.size, grp[gi], rounds),
            "specificity_ci": _ci(lambda b: (~flagged[b][~positive[b]]).mean() if (~positive[b]).any() else np.nan,
                                  gi.size, grp[gi], rounds),
            "flagged_by_grade": {str(k): {"n": int((g == k).sum()), "flagged": float(flagged[g == k].mean())}
                                 for k in range(5) if (g == k).any()},
        }

    other = np.flatnonzero(labels_a == OTHER_FINDINGS)
    if other.size and normal is not None:
        confident = (pred[other] == normal) & (probs[other, normal] >= 0.8)
        report["other_findings"] = {
            "n": int(other.size),
            "called_normal_p_ge_0.8": float(confident.mean()),
            "called_normal_p_ge_0.8_ci": _ci(lambda b: confident[b].mean(), other.size, grp[other], rounds),
            "top_class": {classes[c]: int((pred[other] == c).sum()) for c in sorted(set(pred[other]))}}
    multi = np.flatnonzero(labels_a == MULTIPLE)
    if multi.size:
        hit = np.array([classes[pred[i]] in conditions[i] for i in multi])
        report["multiple_conditions"] = {"n": int(multi.size), "top_is_one_of_its_conditions": float(hit.mean())}
    return report


def camera_probe(embeddings: np.ndarray, samples: list[Sample], a: str = "odir", b: str = "eyepacs") -> dict | None:
    """Can a linear classifier tell camera ``a`` from ``b`` among *normal* eyes from the embedding?

    Balanced accuracy of patient-grouped 5-fold logistic regression: 0.5 means the model's
    embedding does not carry the camera; 1.0 means it reads the camera perfectly.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import GroupKFold, cross_val_predict

    idx = [i for i, s in enumerate(samples) if s.label == NORMAL and s.source in (a, b)]
    src = np.array([samples[i].source == b for i in idx])
    if len(idx) < 20 or src.sum() < 5 or (~src).sum() < 5:
        return None
    groups = [samples[i].group or str(i) for i in idx]
    pred = cross_val_predict(LogisticRegression(max_iter=3000, class_weight="balanced"), embeddings[idx], src,
                             groups=groups, cv=GroupKFold(5))
    return {"n": len(idx), a: int((~src).sum()), b: int(src.sum()),
            "balanced_accuracy": float(balanced_accuracy_score(src, pred))}
