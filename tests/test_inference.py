import numpy as np
import pytest

from clarityx.screening.errors import ModelNotInstalled
from clarityx.model.keras_engine import Classifier
from clarityx.screening.heatmap import overlay
from tests.conftest import SPOT_COLOURS, TINY_SIZE, planted_dataset


def test_missing_model_says_so(tmp_path):
    with pytest.raises(ModelNotInstalled, match="No trained model"):
        Classifier(tmp_path / "nothing.keras")


def test_predict_batch_matches_single_and_sums_to_one(classifier):
    x, _ = planted_dataset(6, TINY_SIZE, seed=7)
    batch = classifier.predict(x)
    single = classifier.predict(x[2:3])[0]
    assert np.allclose(batch[2].probabilities, single.probabilities, atol=1e-5)
    for p in batch:
        assert p.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
        assert p.embedding.shape == (512,)


def test_model_learned_the_planted_signal(classifier):
    x, y = planted_dataset(40, TINY_SIZE, seed=11)
    pred = np.array([p.probabilities.argmax() for p in classifier.predict(x)])
    assert (pred == y).mean() >= 0.9


def spot_centre(img: np.ndarray, k: int) -> tuple[float, float]:
    """Where the planted spot of class ``k`` really is in the prepared image, as fractions."""
    distance = np.abs(img.astype(int) - np.array(SPOT_COLOURS[k])).sum(axis=2)
    ys, xs = np.nonzero(distance < 60)
    return xs.mean() / img.shape[1], ys.mean() / img.shape[0]


def test_gradcam_peaks_where_the_signal_is(classifier):
    x, y = planted_dataset(16, TINY_SIZE, seed=5)
    hits = 0
    for img, k in zip(x, y):
        result = classifier.explain(img)
        cam = result.cams[k]
        assert result.cams.shape[0] == 4 and 0.0 <= cam.min() and cam.max() <= 1.0 + 1e-6
        peak_y, peak_x = np.unravel_index(cam.argmax(), cam.shape)
        h, w = cam.shape
        sx, sy = spot_centre(img, k)
        hits += int(np.hypot((peak_x + 0.5) / w - sx, (peak_y + 0.5) / h - sy) < 0.25)
    assert hits >= 13, f"Grad-CAM peaked near the planted spot in only {hits}/16 images"


def test_explain_probabilities_equal_predict(classifier):
    x, _ = planted_dataset(1, TINY_SIZE, seed=3)
    assert np.allclose(classifier.explain(x[0]).probabilities, classifier.predict(x)[0].probabilities, atol=1e-5)


def test_temperature_is_applied(tiny_model, tmp_path):
    import shutil

    from clarityx.screening.card import ModelCard, card_path

    hot = tmp_path / "hot.keras"
    shutil.copy(tiny_model, hot)
    card = ModelCard.load(card_path(tiny_model))
    card.temperature = 5.0
    card.save(card_path(hot))
    x, _ = planted_dataset(1, TINY_SIZE, seed=4)
    p1 = Classifier(tiny_model).predict(x)[0].probabilities
    p5 = Classifier(hot).predict(x)[0].probabilities
    assert p5.max() < p1.max() and p5.argmax() == p1.argmax()


def test_wrong_input_shape_is_refused(classifier):
    with pytest.raises(ValueError, match="prepared pixels"):
        classifier.predict(np.zeros((1, 10, 10, 3), np.uint8))


def test_overlay_blends_and_validates():
    rgb = np.full((100, 100, 3), 128, np.uint8)
    cam = np.zeros((7, 7), np.float32)
    cam[0, 0] = 1.0
    out = overlay(rgb, cam, 0.5)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert not np.array_equal(out[0, 0], out[99, 99])  # hot corner differs from cold corner
    assert np.array_equal(overlay(rgb, cam, 0.0), rgb)
    border = rgb.copy()
    border[:, :10] = 0  # black border outside the field of view stays black
    assert (overlay(border, cam, 0.8)[:, :10] == 0).all()
    with pytest.raises(ValueError):
        overlay(rgb, cam, 1.5)
