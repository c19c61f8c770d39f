"""Classification metrics on numpy arrays: the numbers that go into a model card."""
from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from clarityx.screening.calibration import apply_temperature, softmax  # noqa: F401  (re-exported)


def fit_temperature(probs: np.ndarray, labels: np.ndarray, log_prior_correction=None) -> float:
    """Temperature minimising the negative log-likelihood (golden-section on log T): temperature
    scaling, Guo et al., "On Calibration of Modern Neural Networks", ICML 2017."""
    def nll(log_t: float) -> float:
        p = apply_temperature(probs, float(np.exp(log_t)), log_prior_correction)
        return float(-np.mean(np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, 1.0))))

    lo, hi = np.log(0.05), np.log(20.0)
    g = (np.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    for _ in range(60):
        if nll(a) < nll(b):
            hi, b = b, a
            a = hi - g * (hi - lo)
        else:
            lo, a = a, b
            b = lo + g * (hi - lo)
    return float(np.exp((lo + hi) / 2))


PRIOR_STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)


def choose_prior_correction(val_probs: np.ndarray, val_labels: np.ndarray, cal_probs: np.ndarray,
                            cal_labels: np.ndarray, log_prior_correction, strengths=PRIOR_STRENGTHS
                            ) -> tuple[float, float, list[dict]]:
    """How much of the class-weighting prior shift to undo, and the temperature that goes with it.

    Undoing class weighting in full (strength 1) makes probabilities match the training mix, which
    is mostly normal eyes, and so makes the model miss the rarer diseases; not undoing it (0) keeps
    the balanced decisions the weighting bought. For each strength ``s`` the logits are shifted by
    ``s * log_prior_correction`` and a temperature is fitted on the calibration photos; the strength
    whose decisions give the best macro-F1 on the *validation* photos wins (ties: the stronger
    correction).

    Returns
    -------
    (strength, temperature, table): the table lists every strength with its temperature and its
    validation macro-F1 and ECE, for the model card.
    """
    bias = np.asarray(log_prior_correction, np.float64)
    table = []
    for strength in strengths:
        shift = list(strength * bias)
        temperature = fit_temperature(cal_probs, cal_labels, shift)
        calibrated = apply_temperature(val_probs, temperature, shift)
        table.append({"strength": float(strength), "temperature": temperature,
                      "validation_macro_f1": float(skm.f1_score(val_labels, calibrated.argmax(1), average="macro",
                                                                labels=list(range(bias.size)), zero_division=0)),
                      "validation_ece": expected_calibration_error(calibrated, val_labels)})
    best = max(table, key=lambda row: (round(row["validation_macro_f1"], 4), row["strength"]))
    return best["strength"], best["temperature"], table


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE of the top-class confidence, equal-width bins."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return float(ece)


def classification_report(probs: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict:
    """Accuracy, macro-F1, per-class P/R/F1, one-vs-rest ROC-AUC, confusion matrix, ECE."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    pred = probs.argmax(axis=1)
    idx = list(range(len(classes)))
    p, r, f, support = skm.precision_recall_fscore_support(labels, pred, labels=idx, zero_division=0)
    per_class = {
        c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(support[i])}
        for i, c in enumerate(classes)
    }
    auc = {}
    for i, c in enumerate(classes):
        positives = labels == i
        if 0 < positives.sum() < len(labels):
            auc[c] = float(skm.roc_auc_score(positives, probs[:, i]))
    report = {
        "n": int(len(labels)),
        "accuracy": float((pred == labels).mean()) if len(labels) else 0.0,
        "macro_f1": float(np.mean(f)),
        "per_class": per_class,
        "roc_auc_ovr": auc,
        "macro_roc_auc": float(np.mean(list(auc.values()))) if auc else None,
        "confusion_matrix": skm.confusion_matrix(labels, pred, labels=idx).tolist(),
        "ece": expected_calibration_error(probs, labels),
    }
    return report


def bootstrap_interval(statistic, n: int, groups=None, rounds: int = 1000, seed: int = 0,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(indices)`` over ``n`` items.

    With ``groups`` (one id per item, e.g. the patient), whole groups are resampled, so that two
    eyes of one person count as the correlated pair they are. Rounds where the statistic is
    undefined (NaN) are skipped.
    """
    rng = np.random.default_rng(seed)
    if groups is None:
        groups = np.arange(n)
    groups = np.asarray(groups)
    ids, inverse = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inverse == k) for k in range(len(ids))]
    values = []
    for _ in range(rounds):
        pick = rng.integers(0, len(ids), len(ids))
        v = statistic(np.concatenate([members[k] for k in pick]))
        if v is not None and np.isfinite(v):
            values.append(v)
    if not values:
        return (float("nan"), float("nan"))
    lo, hi = np.percentile(values, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(lo), float(hi)


def threshold_for_sensitivity(scores: np.ndarray, positive: np.ndarray, sensitivity: float = 0.9) -> float:
    """The highest threshold on ``scores`` that flags at least ``sensitivity`` of the positives."""
    pos = np.sort(np.asarray(scores)[np.asarray(positive, bool)])
    if pos.size == 0:
        raise ValueError("no positives to set a threshold on")
    k = int(np.floor((1 - sensitivity) * pos.size + 1e-9))  # misses allowed (float-safe)
    return float(pos[min(k, pos.size - 1)])


def sensitivity_specificity(flagged: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    flagged, positive = np.asarray(flagged, bool), np.asarray(positive, bool)
    sens = float(flagged[positive].mean()) if positive.any() else float("nan")
    spec = float((~flagged[~positive]).mean()) if (~positive).any() else float("nan")
    return sens, spec
