"""The per-answer fits of clarityx.training.answers: each is fitted where it may be and reports where it was not."""
import numpy as np
import pytest

from clarityx.training import answers as A


def test_leave_one_set_out_never_fits_on_the_set_it_reports():
    rng = np.random.default_rng(0)
    val_s = np.r_[rng.uniform(0.0, 0.4, 200), rng.uniform(0.3, 1.0, 50)]
    val_p = np.r_[np.zeros(200, bool), np.ones(50, bool)]
    # Set "b" is shifted up: its healthy eyes score like a's diseased ones.
    a = (np.r_[rng.uniform(0.0, 0.3, 100), rng.uniform(0.5, 1.0, 30)], np.r_[np.zeros(100, bool), np.ones(30, bool)])
    b = (a[0] + 0.4, a[1])
    out = A.leave_one_set_out(val_s, val_p, {"a": a, "b": b}, sensitivity=0.87)
    # The threshold reported on "a" is the one fitted on validation + "b" and vice versa: change "a" and only
    # the threshold reported on "b" may move.
    moved = A.leave_one_set_out(val_s, val_p, {"a": (a[0] * 0.5, a[1]), "b": b}, sensitivity=0.87)
    assert moved["left_out"]["a"]["threshold"] == out["left_out"]["a"]["threshold"]
    assert moved["left_out"]["b"]["threshold"] != out["left_out"]["b"]["threshold"]
    for name, (s, p) in {"a": a, "b": b}.items():
        r = out["left_out"][name]
        sens, spec = A.sens_spec(s >= r["threshold"], p)
        assert (r["sensitivity"], r["specificity"]) == (sens, spec)
    # The shipped threshold keeps the sensitivity on everything it is fitted on.
    all_s, all_p = np.r_[val_s, a[0], b[0]], np.r_[val_p, a[1], b[1]]
    assert (all_s[all_p] >= out["shipped"]).mean() >= 0.87


def test_glaucoma_bias_keeps_normal_eyes_within_the_limit():
    rng = np.random.default_rng(1)
    n = 400
    labels = np.r_[np.zeros(n, int), np.ones(n // 4, int)]  # 0 normal, 1 glaucoma
    p_g = np.r_[rng.beta(1.5, 10, n), rng.beta(3, 4, n // 4)]
    probs = np.column_stack([1 - p_g, p_g])
    b = A.glaucoma_bias(probs, labels, glaucoma=1, normal=0, limit=0.05)
    logp = np.log(probs)
    logp[:, 1] += b
    called = logp.argmax(1) == 1
    assert called[labels == 0].mean() <= 0.05
    assert called[labels == 1].mean() > (probs.argmax(1) == 1)[labels == 1].mean()  # it found more glaucoma
    logp[:, 1] += 0.2  # one step more breaks the limit (the largest bias was taken)
    assert (logp.argmax(1) == 1)[labels == 0].mean() > 0.05 or b == 4.0


def test_haze_check_learns_haze_and_keeps_clear_eyes_under_the_limit():
    rng = np.random.default_rng(2)

    def photos(n, hazy):
        m = {"sharpness": rng.normal(2.0 if hazy else 5.0, 0.8, n),
             "contrast": rng.normal(0.1 if hazy else 0.3, 0.05, n),
             "brightness": rng.normal(120, 20, n), "blue_share": rng.normal(0.05 if hazy else 0.12, 0.02, n),
             "red_share": rng.normal(0.6, 0.05, n)}
        return A.haze_inputs(m, rng.uniform(0.05, 0.9 if hazy else 0.3, n))

    x_tr, y_tr = np.r_[photos(300, False), photos(60, True)], np.r_[np.zeros(300, bool), np.ones(60, bool)]
    x_va, y_va = np.r_[photos(300, False), photos(60, True)], np.r_[np.zeros(300, bool), np.ones(60, bool)]
    check = A.fit_haze(x_tr, y_tr, x_va, y_va, limit=0.05)
    called = check.score(x_va) >= check.threshold
    assert called[~y_va].mean() <= 0.05 + 1e-9
    assert called[y_va].mean() > 0.8
    card = check.to_card()
    assert len(card["weights"]) == len(A.HAZE_MEASURES) + 1 and card["threshold"] == check.threshold


def test_by_source_folds_hold_out_whole_sources():
    sources = ["a"] * 10 + ["b"] * 5 + ["c"] * 3 + ["d"] * 2
    folds = A.by_source_folds(sources, folds=3)
    assert sum(f.sum() for f in folds) == len(sources)  # each row held out exactly once
    for f in folds:
        held = {s for s, h in zip(sources, f) if h}
        kept = {s for s, h in zip(sources, f) if not h}
        assert held and not held & kept


def test_front_of_eye_probe_refuses_look_alikes_and_keeps_fundus_photos():
    rng = np.random.default_rng(3)
    fundus, fundus_val = rng.normal(0, 1, (500, 16)), rng.normal(0, 1, (500, 16))
    look = rng.normal(0, 1, (60, 16)) + np.r_[3.0, np.zeros(15)]
    probe = A.fit_front_of_eye_probe(fundus, look, fundus_val, limit=0.01)
    assert (probe.score(fundus_val) >= probe.threshold).mean() <= 0.01 + 1e-9
    assert (probe.score(rng.normal(0, 1, (60, 16)) + np.r_[3.0, np.zeros(15)]) >= probe.threshold).mean() > 0.5


@pytest.mark.parametrize("rho", [1, -1])
def test_spearman_sign(rho):
    a = np.arange(10.0)
    assert A.spearman(a, rho * a) == pytest.approx(rho)
