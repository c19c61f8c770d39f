"""The Model page reads as text for a person (issue 19, item 19): no raw Python lists or dicts, no
internal names, no build paths."""
import re

import pytest
from streamlit.testing.v1 import AppTest

from tests.test_app import APP


@pytest.fixture
def bundled_app(monkeypatch, tmp_path):
    import app_pages.shared as shared

    monkeypatch.delenv("CLARITYX_MODEL", raising=False)
    monkeypatch.setenv("CLARITYX_HISTORY", str(tmp_path / "history.sqlite3"))
    shared._loader.clear()
    yield AppTest.from_file(APP, default_timeout=180)
    shared._loader.clear()


def test_the_model_page_is_written_for_a_person(bundled_app):
    from clarityx.screening.card import ModelCard, card_path
    from clarityx.screening.engine import default_model_path

    card = ModelCard.load(card_path(default_model_path()))
    at = bundled_app
    at.run()
    at.switch_page("app_pages/model_card.py")
    at.run()
    assert not at.exception
    text = " ".join(e.value for kind in ("markdown", "caption", "subheader") for e in getattr(at, kind))
    tables = " ".join(str(d.value.to_dict()) for d in at.dataframe)
    for internal in (card.initialisation, "clahe", "/work/", "/home/"):
        assert internal not in text, internal
    assert not re.search(r"\{'|\['", text)  # no Python structures printed as text
    assert not any("_" in c for c in (str(v) for d in at.dataframe for v in d.value.get("condition", [])))
    assert card.name in text and "Training data" in text and "/work/" not in tables


def test_the_model_page_names_conditions_and_explains_its_figures(bundled_app):
    """Issue 24, item 14: the confusion matrix and the training-runs table used raw keys; "see the camera probe
    in the card" pointed to nothing on the page; ECE, macro-F1 and the distance test were not explained.
    Item 13: no Plotly toolbar over the chart."""
    import json

    at = bundled_app
    at.run()
    at.switch_page("app_pages/model_card.py")
    at.run()
    assert not at.exception
    (chart,) = at.get("plotly_chart")
    spec = json.loads(chart.proto.spec)
    heatmap = spec["data"][0]
    assert "Diabetic retinopathy" in heatmap["x"] and "diabetic_retinopathy" not in heatmap["x"] + heatmap["y"]
    assert json.loads(chart.proto.config).get("displayModeBar") is False
    columns = [c for d in at.dataframe for c in d.value.columns]
    assert not any("_" in c for c in columns), columns
    assert "macro-F1 (validation)" in columns
    text = " ".join(e.value for kind in ("markdown", "caption", "subheader") for e in getattr(at, kind))
    assert "camera probe in the card" not in text
    assert "Does it recognise the camera?" in [s.value for s in at.subheader]
    assert "(see “Does it recognise the camera?” below)" in text
    for explained in ("Calibration error (ECE):", "Macro-F1:", "The distance test:"):
        assert explained in text, explained
