"""The Streamlit app driven headless with AppTest (file_uploader included)."""
import io
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.conftest import synthetic_fundus

APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.fixture
def app(tiny_model, monkeypatch):
    monkeypatch.setenv("CLARITYX_MODEL", str(tiny_model))
    import app_pages.shared as shared

    shared._loader.clear()
    at = AppTest.from_file(APP, default_timeout=120)
    yield at
    shared._loader.clear()


def png_bytes(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def markdown_text(at) -> str:
    return "\n".join(m.value for m in at.markdown) + "\n".join(c.value for c in at.caption)


def test_start_page_shows_uploader_and_disclaimer(app):
    app.run()
    assert not app.exception
    assert len(app.get("file_uploader")) == 1
    assert any("not a diagnosis" in i.value for i in app.info)


def test_upload_fundus_shows_ranked_chart_and_guidance(app, retina_png, monkeypatch):
    import clarityx.screening.pipeline

    calls = []
    analyse = clarityx.screening.pipeline.analyse
    monkeypatch.setattr(clarityx.screening.pipeline, "analyse", lambda *a, **k: calls.append(1) or analyse(*a, **k))
    app.run()
    app.get("file_uploader")[0].set_value(("retina.png", retina_png.read_bytes(), "image/png"))
    app.run()
    assert not app.exception
    assert len(app.get("plotly_chart")) == 1
    assert any("most like" in s.value for s in app.subheader)
    assert "not a diagnosis" in markdown_text(app)
    # The class selector and opacity slider change the overlay without re-running the model.
    assert len(calls) == 1
    app.selectbox(key="cam_class").select_index(1)
    app.slider(key="cam_alpha").set_value(0.8)
    app.run()
    assert not app.exception and len(calls) == 1  # the model ran once, for the upload
    assert app.slider(key="cam_alpha").value == 0.8 and app.selectbox(key="cam_class").index == 1


def test_non_image_upload_is_refused_clearly(app):
    app.run()
    app.get("file_uploader")[0].set_value(("notes.png", b"definitely not a PNG", "image/png"))
    app.run()
    assert not app.exception
    assert any("cannot be graded" in e.value for e in app.error)
    assert len(app.get("plotly_chart")) == 0


def test_non_fundus_photo_is_refused(app):
    import skimage.data

    app.run()
    app.get("file_uploader")[0].set_value(("cat.png", png_bytes(skimage.data.chelsea()), "image/png"))
    app.run()
    assert not app.exception
    assert any("fundus" in e.value for e in app.error)


def test_no_model_installed_message(monkeypatch, tmp_path):
    monkeypatch.setenv("CLARITYX_MODEL", str(tmp_path / "absent.keras"))
    import app_pages.shared as shared

    shared._loader.clear()
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.get("file_uploader")[0].set_value(("eye.png", png_bytes(synthetic_fundus(300)), "image/png"))
    at.run()
    assert not at.exception
    assert any("No trained model" in e.value for e in at.error)
    shared._loader.clear()


@pytest.mark.parametrize("page", ["app_pages/model_card.py", "app_pages/about.py"])
def test_other_pages_render(app, page):
    app.run()
    app.switch_page(page)
    app.run()
    assert not app.exception
    assert len(app.title) == 1
