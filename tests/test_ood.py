from pathlib import Path

import numpy as np

from clarityx.screening.gate import check_embedding
from clarityx.screening.ood import MahalanobisModel


def test_mahalanobis_separates_in_and_out_of_distribution(tmp_path):
    rng = np.random.default_rng(0)
    means = rng.normal(0, 5, (3, 16))
    labels = np.repeat(np.arange(3), 200)
    features = means[labels] + rng.normal(0, 1, (600, 16))
    model = MahalanobisModel.fit(features, labels)
    inside = model.distance(means[1] + rng.normal(0, 1, (50, 16)))
    outside = model.distance(rng.normal(0, 1, (50, 16)) + 30)
    assert inside.max() < outside.min()
    model.save(tmp_path / "o.npz")
    again = MahalanobisModel.load(tmp_path / "o.npz")
    assert np.allclose(again.distance(features[:5]), model.distance(features[:5]), rtol=1e-5)


def test_check_embedding_uses_the_cards_threshold(classifier):
    emb = np.zeros(512, np.float32)
    classifier.card.gate["settings"] = {"max_ood_distance": None}
    try:
        assert check_embedding(classifier, emb) is None
        far = np.full(512, 1e3, np.float32)
        classifier.card.gate["settings"] = {"max_ood_distance": 1.0}
        assert check_embedding(classifier, far).reason == "unfamiliar"
    finally:
        classifier.card.gate.pop("settings")


def test_a_missing_statistics_file_is_said_loudly_not_silently_skipped(tmp_path, capsys, monkeypatch, retina_png):
    """Without NAME.ood.npz the out-of-distribution check cannot run: the model says so, the CLI says so on
    stderr and in every JSON row, and the Model page shows a warning (issue 25, item 12)."""
    import json
    import os

    import pytest
    from streamlit.testing.v1 import AppTest

    from clarityx.cli import main
    from clarityx.screening.card import card_path
    from clarityx.screening.engine import CardedModel, default_model_path, onnx_path
    from clarityx.screening.ood import ood_path

    bundled = onnx_path(default_model_path())
    if not bundled.is_file():
        pytest.skip("no bundled ONNX graph")
    model = tmp_path / "no_stats.onnx"
    os.symlink(bundled.resolve(), model)  # the same graph and card, without its statistics file
    card_path(model).write_bytes(card_path(bundled).read_bytes())
    assert CardedModel(bundled).ood_off is None  # with its statistics: the check runs, nothing said
    off = CardedModel(model).ood_off
    assert off and "OFF" in off and ood_path(model).name in off

    assert main(["predict", str(retina_png), "--model", str(model), "--json"]) == 0
    captured = capsys.readouterr()
    assert "WARNING" in captured.err and ood_path(model).name in captured.err
    assert json.loads(captured.out)["ood_check_off"] == off
    assert main(["predict", str(retina_png), "--model", str(bundled), "--json"]) == 0
    captured = capsys.readouterr()
    assert "ood_check_off" not in json.loads(captured.out) and "WARNING" not in captured.err

    import app_pages.shared as shared

    monkeypatch.setenv("CLARITYX_HISTORY", str(tmp_path / "history.sqlite3"))
    for used, warned in ((model, True), (bundled, False)):  # the page shows the model the session uses
        monkeypatch.setattr(shared, "get_classifier", lambda used=used: CardedModel(used))
        at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=180)
        at.run()
        at.switch_page("app_pages/model_card.py")
        at.run()
        assert not at.exception
        shown = [w.value for w in at.warning if "check off" in w.value]
        assert bool(shown) == warned and all(ood_path(model).name in w for w in shown)


def test_a_missing_statistics_file_is_said_in_the_sidebar_and_the_visit_report(tmp_path, monkeypatch, retina_png):
    """Review item 6: "the out-of-distribution check is off" was said only on the Model page; the sidebar (beside
    the untested-model note) and the visit report's caveat say it too, in the same words (one helper)."""
    import os

    import pytest
    from streamlit.delta_generator import DeltaGenerator
    from streamlit.testing.v1 import AppTest

    import app_pages.shared as shared
    from clarityx.screening.card import card_path
    from clarityx.screening.engine import CardedModel, default_model_path, onnx_path
    from clarityx.screening.ood import ood_off_warning, ood_path

    bundled = onnx_path(default_model_path())
    if not bundled.is_file():
        pytest.skip("no bundled ONNX graph")
    model = tmp_path / "no_stats.onnx"
    os.symlink(bundled.resolve(), model)  # the same graph and card, without its statistics file
    card_path(model).write_bytes(card_path(bundled).read_bytes())
    warning = ood_off_warning(CardedModel(model).ood_off)
    assert warning.startswith("Safety check off: The out-of-distribution check is OFF")
    assert ood_off_warning(None) is None

    served = {}
    real = DeltaGenerator.download_button

    def recording(self, label, data, *args, **kwargs):
        served[label] = data
        return real(self, label, data, *args, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "download_button", recording)
    monkeypatch.setenv("CLARITYX_HISTORY", str(tmp_path / "history.sqlite3"))
    monkeypatch.setattr(shared, "available_models", lambda: [])  # no picker: the session uses $CLARITYX_MODEL
    for used, warned in ((model, True), (bundled, False)):
        monkeypatch.setenv("CLARITYX_MODEL", str(used))
        shared._loader.clear()
        served.clear()
        at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=180)
        at.run()
        assert [w.value for w in at.sidebar.warning if "check off" in w.value] == ([warning] if warned else [])
        at.get("file_uploader")[0].set_value(("retina.png", retina_png.read_bytes(), "image/png"))
        at.run()
        assert not at.exception
        html = next(data for label, data in served.items() if "HTML" in label)()
        assert ("Safety check off" in html and ood_path(model).name in html) == warned
    shared._loader.clear()
