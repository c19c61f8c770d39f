import numpy as np
import pytest

from clarityx.metrics import (apply_temperature, classification_report, expected_calibration_error,
                              fit_temperature, softmax)


def test_report_on_a_known_case():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    labels = np.array([0, 0, 1, 1])
    r = classification_report(probs, labels, ["a", "b"])
    assert r["accuracy"] == 0.75
    assert r["confusion_matrix"] == [[2, 0], [1, 1]]
    assert r["per_class"]["a"]["precision"] == pytest.approx(2 / 3)
    assert r["per_class"]["b"]["recall"] == 0.5
    assert r["roc_auc_ovr"]["b"] == 1.0  # b's scores rank both b's above both a's


def test_ece_zero_when_confidence_matches_accuracy():
    probs = np.array([[0.75, 0.25]] * 4)
    assert expected_calibration_error(probs, np.array([0, 0, 0, 1])) == pytest.approx(0.0)
    assert expected_calibration_error(probs, np.array([1, 1, 1, 1])) == pytest.approx(0.75)


def test_fit_temperature_recovers_the_true_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (4000, 4))
    labels = np.array([rng.choice(4, p=p) for p in softmax(logits)])
    overconfident = softmax(logits * 2.5)  # the model's logits are 2.5× too large
    t = fit_temperature(overconfident, labels)
    assert t == pytest.approx(2.5, rel=0.1)
    calibrated = apply_temperature(overconfident, t)
    assert expected_calibration_error(calibrated, labels) < expected_calibration_error(overconfident, labels)
