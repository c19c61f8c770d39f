import numpy as np
import pytest

from clarityx.training.metrics import (apply_temperature, classification_report, expected_calibration_error,
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


def test_prior_correction_undoes_class_weighting():
    from clarityx.training.steps import class_weights

    labels = np.array([0] * 90 + [1] * 10)
    w = class_weights(labels, 2, "sqrt")
    assert np.dot([w[0], w[1]], [90, 10]) == pytest.approx(100)   # mean weight 1 over the samples
    assert w[1] / w[0] == pytest.approx(3.0)                         # sqrt(90 / 10)
    true = np.array([[0.7, 0.3], [0.2, 0.8]])
    weighted = true * [w[0], w[1]]
    weighted /= weighted.sum(1, keepdims=True)                       # what a weighted model learns
    bias = [-np.log(w[0]), -np.log(w[1])]
    assert np.allclose(apply_temperature(weighted, 1.0, bias), true)


def test_threshold_for_sensitivity_is_the_highest_that_reaches_it():
    from clarityx.training.metrics import sensitivity_specificity, threshold_for_sensitivity

    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.05, 0.15])
    positive = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0], bool)
    t = threshold_for_sensitivity(scores, positive, 0.9)
    sens, spec = sensitivity_specificity(scores >= t, positive)
    assert t == 0.2 and sens == 0.9 and spec == 1.0
    assert sensitivity_specificity(scores >= t + 1e-9, positive)[0] < 0.9


def test_bootstrap_resamples_patients_whole():
    from clarityx.training.metrics import bootstrap_interval

    hits = np.array([1, 0] * 50, float)
    lo, hi = bootstrap_interval(lambda b: hits[b].mean(), 100, rounds=500)
    assert lo < 0.5 < hi
    doubled = np.repeat(hits, 2)  # each patient's two eyes agree: 100 patients, not 200 eyes
    glo, ghi = bootstrap_interval(lambda b: doubled[b].mean(), 200, groups=np.repeat(np.arange(100), 2), rounds=500)
    ilo, ihi = bootstrap_interval(lambda b: doubled[b].mean(), 200, rounds=500)
    assert (ghi - glo) > 1.2 * (ihi - ilo)


def test_screening_report_on_a_known_case():
    from clarityx.training.evaluate import screening_report

    classes = ["normal", "diabetic_retinopathy"]
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8], [0.85, 0.15], [0.4, 0.6], [0.3, 0.7]])
    labels = ["normal", "normal", "diabetic_retinopathy", "diabetic_retinopathy", "other_findings",
              "other_findings", "multiple_conditions"]
    grades = [0, 0, 1, 3, 0, None, 2]
    r = screening_report(probs, labels, classes, sources=["odir", "eyepacs", "odir", "eyepacs", "odir", "odir", "odir"],
                         grades=grades, groups=[str(i) for i in range(7)],
                         conditions=[(), (), (), (), (), (), ("cataract", "diabetic_retinopathy")],
                         dr_threshold=0.5, rounds=50)
    assert r["n"] == 4 and r["accuracy"] == 1.0
    assert r["by_source"]["odir"]["normal_accuracy"] == 1.0
    rd = r["referable_dr"]
    # Over the eyes of the model's classes with a known grade (the population the threshold is chosen on):
    # the other-findings and two-condition eyes are reported apart, not counted here.
    assert (rd["positives"], rd["negatives"]) == (1, 3)                 # grade 3 / grades 0, 0, 1
    assert rd["sensitivity"] == 1.0 and rd["specificity"] == pytest.approx(2 / 3)  # the grade-1 eye is flagged
    assert r["other_findings"]["called_normal_p_ge_0.8"] == 0.5
    assert r["multiple_conditions"]["top_is_one_of_its_conditions"] == 1.0


def test_a_grade_model_is_reported_with_quadratic_kappa_and_referable_dr_from_grades_2_to_4():
    from clarityx.screening.grades import GRADE_CLASSES
    from clarityx.training.evaluate import screening_report

    grades = [0, 1, 2, 3, 4] * 4
    labels = [GRADE_CLASSES[g] for g in grades]

    def report(predicted):
        probs = np.full((len(grades), 5), 0.05)
        probs[np.arange(len(grades)), predicted] = 0.8
        return screening_report(probs, labels, list(GRADE_CLASSES), sources=["aptos"] * len(grades), grades=grades,
                                groups=[str(i) for i in range(len(grades))], conditions=[()] * len(grades),
                                dr_threshold=0.5, rounds=50)

    exact = report(grades)
    assert exact["quadratic_weighted_kappa"] == pytest.approx(1.0)
    assert exact["referable_dr"]["sensitivity"] == 1.0 and exact["referable_dr"]["specificity"] == 1.0
    reversed_ = report([4 - g for g in grades])  # the worst possible ordering of a uniform grade mix
    assert reversed_["quadratic_weighted_kappa"] == pytest.approx(-1.0)
    one_off = report([min(g + 1, 4) for g in grades])  # one grade too high: close, so kappa stays high
    assert 0.6 < one_off["quadratic_weighted_kappa"] < 1.0 and one_off["accuracy"] == pytest.approx(0.2)
    assert one_off["referable_dr"]["specificity"] == 0.5  # grade-1 eyes called grade 2 are flagged


def test_the_prior_correction_strength_is_the_one_validation_decisions_favour():
    from clarityx.training.metrics import choose_prior_correction

    bias = [0.0, -np.log(4.0)]  # class 1 was weighted 4× in training: full correction lowers its logit by log 4
    labels = np.array([0] * 20 + [1] * 5)
    cal = np.array([[0.7, 0.3]] * 20 + [[0.3, 0.7]] * 5)

    # Rare eyes scored 0.6: right as they are, wrongly normal once the prior is undone in full.
    rare_kept = np.array([[0.8, 0.2]] * 20 + [[0.4, 0.6]] * 5)
    strength, temperature, table = choose_prior_correction(rare_kept, labels, cal, labels, bias)
    chosen = next(row for row in table if row["strength"] == strength)
    assert strength < 1.0 and temperature == chosen["temperature"] > 0 and len(table) == 5
    assert chosen["validation_macro_f1"] == 1.0 > table[-1]["validation_macro_f1"]
    assert all(row["validation_macro_f1"] < 1.0 for row in table if row["strength"] > strength)  # ties: stronger

    # Normal eyes scored 0.6 for the rare class: only undoing the weighting gets them right.
    normal_misread = np.array([[0.4, 0.6]] * 4 + [[0.8, 0.2]] * 16 + [[0.1, 0.9]] * 5)
    strength, _, table = choose_prior_correction(normal_misread, labels, cal, labels, bias)
    assert strength == 1.0 and table[-1]["validation_macro_f1"] == 1.0
