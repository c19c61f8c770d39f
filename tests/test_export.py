"""Exported TFLite / ONNX models agree with the Keras model on real fundus photos."""
from pathlib import Path

import numpy as np
import pytest

from clarityx.inference import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data" / "eye_diseases"

# Stated tolerances on calibrated probabilities (max absolute difference over the photos).
TOLERANCE = {("tflite", None): 1e-3, ("tflite", "float16"): 0.03, ("tflite", "int8"): 0.1,
             ("onnx", None): 1e-3}


def real_photos(count: int = 12) -> list[Path]:
    if SHARED.exists():
        photos = sorted(p for p in SHARED.rglob("*.jp*g") if not p.name.startswith("_"))
        return photos[:: max(1, len(photos) // count)][:count]
    return []


@pytest.fixture(scope="module")
def subject(tiny_model_module):
    """The bundled model on real photos when both exist, else the tiny test model on retina copies."""
    from clarityx.imageio import load_image
    from clarityx.inference import Classifier

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


@pytest.mark.parametrize("fmt,quant", list(TOLERANCE))
def test_export_parity(subject, tmp_path, fmt, quant):
    from clarityx.export import ExportedModel, export

    classifier, pixels = subject
    path = export(classifier.path, fmt, quant, tmp_path / f"m.{fmt}")
    assert path.is_file() and path.with_name(path.stem + ".card.json").is_file()
    probs, emb = ExportedModel(path).predict(pixels)
    expected = classifier.predict(pixels)
    calibrated = classifier.calibrate(probs)
    reference = np.stack([e.probabilities for e in expected])
    assert emb.shape == (len(pixels), 512)
    assert (calibrated.argmax(1) == reference.argmax(1)).mean() >= (1.0 if quant is None else 0.9)
    assert np.abs(calibrated - reference).max() <= TOLERANCE[(fmt, quant)]


def test_cli_runs_on_an_exported_model(tiny_model, tmp_path, capsys):
    import json

    from PIL import Image

    from clarityx.cli import main
    from clarityx.export import export
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
    assert main(["predict", str(tmp_path), "--model", str(onnx_path), "--heatmap-dir", str(tmp_path / "h")]) == 2


def test_onnx_int8_is_refused(tiny_model, tmp_path):
    from clarityx.export import export

    with pytest.raises(ValueError, match="float32 only"):
        export(tiny_model, "onnx", "int8", tmp_path / "m.onnx")
