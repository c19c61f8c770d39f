"""Each refusal reason on constructed cases; good fundus photos pass."""
import cv2
import numpy as np
import skimage.data

from clarityx.screening.gate import check_image, measure
from tests.conftest import synthetic_fundus


def reason(rgb):
    r = check_image(rgb)
    return None if r is None else r.reason


def test_good_fundus_photos_pass(retina_png):
    from clarityx.screening.imageio import load_image

    assert reason(load_image(retina_png)) is None
    for seed in range(5):
        assert reason(synthetic_fundus(400, seed=seed)) is None


def test_not_fundus_cases():
    import skimage.data

    grey = np.repeat(skimage.data.camera()[..., None], 3, axis=2)
    assert reason(grey) == "not_fundus"                                   # no colour
    assert reason(skimage.data.astronaut()) == "not_fundus"              # texture, no round field
    assert reason(np.full((300, 300, 3), (30, 160, 40), np.uint8)) == "not_fundus"  # green, not a retina
    noise = np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)
    assert reason(noise) == "not_fundus"


def test_too_dark_and_too_bright():
    img = synthetic_fundus(400, seed=1)
    assert reason((img * 0.1).astype(np.uint8)) == "too_dark"
    washed = np.zeros_like(img)
    cv2.circle(washed, (200, 200), 180, (255, 255, 255), -1)
    assert reason(washed) == "too_bright"
    from clarityx.data.negatives import degrade
    assert reason(degrade(img, "bright")) == "too_bright"
    assert reason(degrade(img, "dark")) == "too_dark"


def test_blurred():
    img = synthetic_fundus(400, seed=2)
    blurred = cv2.GaussianBlur(img, (0, 0), 25)
    assert measure(blurred)["sharpness"] < measure(img)["sharpness"]
    assert reason(blurred) == "blurred"


def test_half_the_field_cut_away():
    from clarityx.data.negatives import degrade

    img = synthetic_fundus(400, seed=2)
    assert reason(img[:, :150]) == "cropped"
    assert reason(degrade(img, "half")) == "cropped"


def test_front_of_eye_closeups_are_refused_as_such():
    # Held-out generator seed (the limit was fitted with seed 1 by scripts/fit_front_of_eye.py).
    from clarityx.data.negatives import front_of_eye_closeup

    rng = np.random.default_rng(2024)
    reasons = [reason(front_of_eye_closeup(rng, int(rng.integers(250, 600)))) for _ in range(40)]
    refused = sum(r is not None for r in reasons)
    assert refused >= 34, f"only {refused}/40 front-of-eye close-ups refused: {reasons}"
    assert reasons.count("front_of_eye") >= 20  # most for the right reason; the rest as not_fundus


def test_real_retina_is_not_taken_for_the_front_of_an_eye(retina_png):
    from clarityx.screening.gate import centre_circle
    from clarityx.screening.imageio import load_image

    assert not centre_circle(load_image(retina_png))
    assert not any(centre_circle(synthetic_fundus(400, seed=s)) for s in range(10))


def test_a_face_is_not_a_fundus_photo_rather_than_a_cut_off_one():
    """Issue 19, item 3: portrait photos of faces (skin-coloured, taller than wide) were told "the round
    field of view is cut off" instead of "not a fundus photo"; half-cut fundus photos stay "cropped"."""
    face = skimage.data.astronaut()
    assert reason(face[0:300, 150:320]) == "not_fundus"
    assert reason(cv2.resize(face[20:260, 170:300], (270, 480))) == "not_fundus"
    for seed in range(3):
        img = synthetic_fundus(400, seed=seed)
        assert reason(img[:, :150]) == reason(img[:, 250:]) == reason(img[:180]) == "cropped"


def test_a_photo_the_model_finds_unfamiliar_is_told_it_is_not_a_fundus_photograph(classifier):
    """Issue 24, item 10: a face that passes the image test was told "unlike the fundus photos… retake it with
    a fundus camera"; it is told that it does not look like a fundus photograph. The messages another part of
    the app relies on are unchanged."""
    from clarityx.screening.gate import MESSAGES, check_embedding

    classifier.card.gate["settings"] = {"max_ood_distance": 1.0}
    try:
        refused = check_embedding(classifier, np.full(512, 1e3, np.float32))
    finally:
        classifier.card.gate.pop("settings")
    assert refused.reason == "unfamiliar"
    assert refused.message.startswith("This does not look like a retinal (fundus) photograph")
    assert "A face" in refused.message and "cannot be graded" in refused.message
    assert MESSAGES["front_of_eye"].startswith("This looks like a photo of the front of the eye")
    assert MESSAGES["blurred"].startswith("The retina is not sharp in this photo")
