"""Exported TFLite / ONNX models agree with the Keras model on real fundus photos."""
from pathlib import Path

import numpy as np
import pytest

from clarityx.screening.engine import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data" / "eye_diseases"

# Stated tolerances on calibrated probabilities (max absolute difference over the photos). int8 (dynamic
# range: int8 weights) moves the Lite2 backbone's maps more than Lite0's (v3: 0.07; v4: 0.14 on these photos).
TOLERANCE = {("tflite", None): 1e-3, ("tflite", "float16"): 0.03, ("tflite", "int8"): 0.15,
             ("onnx", None): 1e-4}
# A quantised export keeps the float model's top answer on most photos; where it flips, the float model's
# top two classes were within twice the tolerance (int8 moves DR against normal by up to 0.12 here: for an
# edge device, float16 is the faithful export).
SAME_TOP_QUANTISED = 0.8
# Grad-CAM maps (each normalised to [0, 1]) from the ONNX graph's closed form against TensorFlow's
# gradient tape: max absolute difference over every class, position and photo.
CAM_TOLERANCE = 1e-3


def real_photos(count: int = 12) -> list[Path]:
    if SHARED.exists():
        photos = sorted(p for p in SHARED.rglob("*.jp*g") if not p.name.startswith("_"))
        return photos[:: max(1, len(photos) // count)][:count]
    return []


@pytest.fixture(scope="module")
def subject(tiny_model_module):
    """The bundled model on real photos when both exist, else the tiny test model on retina copies."""
    from clarityx.screening.imageio import load_image
    from clarityx.model.keras_engine import Classifier

    photos = real_photos()
    if DEFAULT_MODEL.is_file() and photos:
        classifier = Classifier(DEFAULT_MODEL)
        images = [load_image(p) for p in photos]
    else:
        import skimage.data

        classifier = Classifier(tiny_model_module)
        images = [np.roll(skimage.data.retina(), 40 * i, axis=1) for i in range(6)]
    pixels = np.stack([classifier.prepare(im) for im in images])
    return classifier, pixels


@pytest.fixture(scope="module")
def tiny_model_module(tiny_model):
    return tiny_model


def exported(classifier, tmp_path, fmt, quant):
    from clarityx.loader import load_classifier
    from clarityx.model.export import export

    path = export(classifier.path, fmt, quant, tmp_path / f"m.{fmt}")
    assert path.is_file() and path.with_name(path.stem + ".card.json").is_file()
    return load_classifier(path)


@pytest.mark.parametrize("fmt,quant", list(TOLERANCE))
def test_export_parity(subject, tmp_path, fmt, quant):
    classifier, pixels = subject
    model = exported(classifier, tmp_path, fmt, quant)
    got = model.predict(pixels)
    calibrated = np.stack([p.probabilities for p in got])
    reference = np.stack([e.probabilities for e in classifier.predict(pixels)])
    assert np.stack([p.embedding for p in got]).shape == (len(pixels), 512)
    same = calibrated.argmax(1) == reference.argmax(1)
    assert same.mean() >= (SAME_TOP_QUANTISED if quant else 1.0)
    top_two = np.sort(reference, axis=1)[:, -2:]
    assert (top_two[~same, 1] - top_two[~same, 0] <= 2 * TOLERANCE[(fmt, quant)]).all()
    assert np.abs(calibrated - reference).max() <= TOLERANCE[(fmt, quant)]


def test_onnx_gradcam_equals_tensorflow_gradcam_for_every_class(subject, tmp_path):
    classifier, pixels = subject
    model = exported(classifier, tmp_path, "onnx", None)
    assert model.engine == "onnx" and model.exported_from(classifier.path)
    ours, reference = model.predict(pixels, explain=True), classifier.predict(pixels, explain=True)
    for a, b in zip(ours, reference):
        assert a.cams.shape == b.cams.shape == (len(classifier.classes), *b.cams.shape[1:])
        assert np.abs(a.cams - b.cams).max() <= CAM_TOLERANCE
        assert np.abs(a.embedding - b.embedding).max() <= 1e-3
    # Not a vacuous match: the maps differ between classes and are not all empty.
    assert all(np.ptp(b.cams.reshape(len(b.cams), -1).mean(1)) > 0 for b in reference)


def test_bundled_onnx_graph_was_exported_from_the_bundled_model():
    """The fast engine must run the very model the card describes: re-export after retraining."""
    from clarityx.screening.engine import OnnxClassifier, onnx_path

    if not DEFAULT_MODEL.is_file():
        pytest.skip("no bundled model")
    assert onnx_path(DEFAULT_MODEL).is_file(), "run: clarityx export --format onnx"
    assert OnnxClassifier(DEFAULT_MODEL).exported_from(DEFAULT_MODEL), "stale: clarityx export --format onnx"


def test_loader_uses_onnx_only_when_in_sync(tiny_model, tmp_path):
    import shutil

    from clarityx.loader import load_classifier
    from clarityx.model.export import export

    for f in tiny_model.parent.iterdir():
        shutil.copy(f, tmp_path / f.name)
    model = tmp_path / tiny_model.name
    assert load_classifier(model).engine == "keras"          # no graph beside it
    export(model, "onnx")
    assert load_classifier(model).engine == "onnx"
    assert load_classifier(model, engine="keras").engine == "keras"
    import onnx

    from clarityx.screening.engine import SOURCE_HASH_KEY, onnx_path

    stale = onnx.load(str(onnx_path(model)))                   # as if exported from an older model
    onnx.helper.set_model_props(stale, {SOURCE_HASH_KEY: "0" * 64})
    onnx.save(stale, str(onnx_path(model)))
    with pytest.warns(UserWarning, match="re-export"):
        assert load_classifier(model, engine="auto").engine == "keras"
    with pytest.raises(ValueError, match="unknown engine"):
        load_classifier(model, engine="gpu")


def test_cli_runs_on_an_exported_model(tiny_model, tmp_path, capsys):
    import json

    from PIL import Image

    from clarityx.cli import main
    from clarityx.model.export import export
    from tests.conftest import synthetic_fundus

    onnx_path = export(tiny_model, "onnx", None, tmp_path / "tiny.onnx")
    for i in range(3):
        Image.fromarray(synthetic_fundus(300, seed=50 + i)).save(tmp_path / f"e{i}.png")
    assert main(["predict", str(tmp_path), "--json", "--model", str(tiny_model)]) == 0
    keras_out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert main(["predict", str(tmp_path), "--json", "--model", str(onnx_path)]) == 0
    onnx_out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["top"] for r in onnx_out] == [r["top"] for r in keras_out] and len(onnx_out) == 3
    for a, b in zip(onnx_out, keras_out):
        assert max(abs(a["probabilities"][c] - b["probabilities"][c]) for c in a["probabilities"]) < 1e-3
    assert main(["predict", str(tmp_path), "--model", str(onnx_path), "--heatmap-dir", str(tmp_path / "h")]) == 0
    assert len(list((tmp_path / "h").glob("*.gradcam.png"))) == 3


def test_onnx_int8_is_refused(tiny_model, tmp_path):
    from clarityx.model.export import export

    with pytest.raises(ValueError, match="float32 only"):
        export(tiny_model, "onnx", "int8", tmp_path / "m.onnx")


def test_a_keras_model_without_its_graph_in_a_run_time_install_says_what_to_do(tmp_path, monkeypatch, capsys):
    """No TensorFlow/Keras (the run-time install) and no ONNX graph: not a bare ModuleNotFoundError but the
    two ways out, on the command line without a traceback (issue 25, item 16)."""
    import shutil
    import sys

    from PIL import Image

    from clarityx.cli import main
    from clarityx.loader import load_classifier
    from clarityx.screening.card import card_path
    from clarityx.screening.errors import ClarityXError, EngineNotInstalled

    card = card_path(ROOT / "models" / "clarityx_lite2.keras")
    if not card.is_file():
        pytest.skip("no bundled card to copy")
    model = tmp_path / "mine.keras"
    model.write_bytes(b"a .keras file (never opened: its engine is missing)")
    shutil.copy(card, card_path(model))
    for name in ("keras", "tensorflow"):
        monkeypatch.setitem(sys.modules, name, None)  # import keras → ModuleNotFoundError
    with pytest.raises(EngineNotInstalled) as raised:
        load_classifier(model, engine="auto")
    message = str(raised.value)
    assert isinstance(raised.value, ClarityXError)
    assert "no ONNX graph" in message and "clarityx export --model" in message and "--format onnx" in message
    assert 'clarityx[train]' in message and "keras" in message

    photo = tmp_path / "eye.png"
    Image.new("RGB", (64, 64)).save(photo)
    assert main(["predict", str(photo), "--model", str(model)]) == 2
    err = capsys.readouterr().err
    assert "clarityx[train]" in err and "Traceback" not in err
