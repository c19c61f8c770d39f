"""The answers beside the classes at run time (clarityx.screening.answers) through the app's own path: the DR-grade
layer gives the referable score, the front-of-eye probe refuses, the haze check refers; a card with damaged
answers is refused."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from clarityx.screening.card import ModelCard, card_path
from clarityx.screening.errors import CardInvalid
from clarityx.screening.settings import bundled_model

BUNDLED = bundled_model()


def copy_with_answers(tmp_path: Path, answers: dict) -> Path:
    """The bundled model's graph, card and gate statistics in a folder, its card's answers replaced."""
    onnx = BUNDLED.with_suffix(".onnx")
    for src in (onnx, card_path(BUNDLED), BUNDLED.with_name(BUNDLED.stem + ".ood.npz")):
        shutil.copy(src, tmp_path / src.name)
    card = json.loads(card_path(BUNDLED).read_text())
    card["answers"] = answers
    card_path(tmp_path / onnx.name).write_text(json.dumps(card))
    return tmp_path / onnx.name


@pytest.fixture(scope="module")
def plain_result(retina_png, tmp_path_factory):
    """The retina photo's result on the bundled graph with no answers: its embedding and measures."""
    from clarityx.screening.engine import OnnxClassifier
    from clarityx.screening.pipeline import analyse

    model = copy_with_answers(tmp_path_factory.mktemp("plain"), {})
    result = analyse(OnnxClassifier(model), str(retina_png), explain=False)
    assert result.status == "ok", result.message
    return result


def run(tmp_path, answers, photo):
    from clarityx.screening.engine import OnnxClassifier
    from clarityx.screening.pipeline import analyse

    return analyse(OnnxClassifier(copy_with_answers(tmp_path, answers)), str(photo), explain=False)


def test_the_grade_layer_gives_the_grade_and_the_referable_score(tmp_path, retina_png, plain_result):
    e = plain_result.prediction.embedding.astype(np.float64)
    rng = np.random.default_rng(0)
    w, b = rng.normal(0, 0.05, (e.size, 5)), rng.normal(0, 1, 5)
    result = run(tmp_path, {"dr_grade": {"weights": w.tolist(), "bias": b.tolist(), "temperature": 2.0}}, retina_png)
    z = (e @ w + b) / 2.0
    expected = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    assert np.allclose(result.grades, expected, atol=1e-5)
    assert result.grade == int(expected.argmax())
    assert result.referable_score == pytest.approx(expected[2:].sum(), abs=1e-5)
    row = result.as_json("x.png")
    assert row["referable_score"] == pytest.approx(expected[2:].sum(), abs=1e-5) and row["grade"] == result.grade
    # Without a grade layer the referable score is P(diabetic retinopathy), as before.
    assert plain_result.grades is None
    assert plain_result.referable_score == pytest.approx(dict(plain_result.ranked)["diabetic_retinopathy"])


@pytest.mark.parametrize("direction, refused", [(1.0, True), (-1.0, False)])
def test_the_front_of_eye_probe_decides_on_the_embedding(tmp_path, retina_png, plain_result, direction, refused):
    e = plain_result.prediction.embedding.astype(np.float64)
    probe = {"mean": [0.0] * e.size, "sd": [1.0] * e.size, "weights": (direction * e / np.linalg.norm(e)).tolist(),
             "bias": 0.0, "threshold": 0.5}
    result = run(tmp_path, {"front_of_eye": probe}, retina_png)
    if refused:
        assert result.status == "rejected" and result.reason == "front_of_eye"
        assert "front of the eye" in result.message and "blurred" not in result.message
    else:
        assert result.status == "ok"


@pytest.mark.parametrize("bias, hazy", [(5.0, True), (-5.0, False)])
def test_a_hazy_view_is_a_reason_to_see_a_doctor(tmp_path, retina_png, bias, hazy):
    from clarityx.screening.answers import HAZE_MEASURES

    n = len(HAZE_MEASURES) + 1
    check = {"mean": [0.0] * n, "sd": [1.0] * n, "weights": [0.0] * n, "bias": bias, "threshold": 0.5}
    result = run(tmp_path, {"haze": check}, retina_png)
    assert result.status == "ok" and result.hazy is hazy and result.refer is hazy
    assert result.as_json("x.png")["hazy"] is hazy


def test_a_blurred_refusal_says_a_clouded_lens_is_a_reason_to_see_a_doctor():
    from clarityx.screening.gate import MESSAGES, REFER

    assert "blurred" in REFER
    assert "eye doctor" in MESSAGES["blurred"] and "cataract" in MESSAGES["blurred"]


@pytest.mark.parametrize("answers, words", [
    ({"dr_grade": {"weights": [[0.0] * 4], "bias": [0.0] * 5, "temperature": 1.0}}, "5 numbers per row"),
    ({"dr_grade": {"weights": [[0.0] * 5], "bias": [0.0] * 5}}, "temperature"),
    ({"haze": {"mean": [0.0], "sd": [0.0], "weights": [1.0], "bias": 0.0, "threshold": 0.5}}, "positive"),
    ({"front_of_eye": {"mean": [0.0, 0.0], "sd": [1.0], "weights": [1.0], "bias": 0.0, "threshold": 0.5}},
     "one length"),
    ({"typo": {}}, "unknown"),
])
def test_damaged_answers_are_refused_with_what_is_wrong(answers, words):
    card = json.loads(card_path(BUNDLED).read_text())
    card["answers"] = answers
    with pytest.raises(CardInvalid, match=words):
        ModelCard.from_dict(card, "x.card.json")
