"""The Streamlit app driven headless with AppTest (file_uploader included)."""
import io
import json
from pathlib import Path

import numpy as np
import skimage.data

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.conftest import synthetic_fundus

APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.fixture
def app(tiny_model, monkeypatch, tmp_path):
    monkeypatch.setenv("CLARITYX_MODEL", str(tiny_model))
    monkeypatch.setenv("CLARITYX_HISTORY", str(tmp_path / "history.sqlite3"))
    import app_pages.shared as shared

    shared._loader.clear()
    at = AppTest.from_file(APP, default_timeout=120)
    yield at
    shared._loader.clear()


def png_bytes(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def keyed(at, kind: str, prefix: str):
    """The one widget of this kind whose key starts with ``prefix`` (heat-map keys carry the photo's digest)."""
    found = [w for w in getattr(at, kind) if (w.key or "").startswith(prefix)]
    assert len(found) == 1, [w.key for w in getattr(at, kind)]
    return found[0]


def image_captions(at) -> list[str]:
    return [c for el in at.get("image") for c in el.captions]


def markdown_text(at) -> str:
    return "\n".join(m.value for m in at.markdown) + "\n".join(c.value for c in at.caption)


def test_start_page_shows_uploader_and_disclaimer(app):
    app.run()
    assert not app.exception
    assert [u.label for u in app.get("file_uploader")] == ["Right-eye fundus photo", "Left-eye fundus photo"]
    assert "not a diagnosis" in markdown_text(app)
    assert len(app.get("camera_input")) == 0  # the camera stays off until the person turns it on


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
    keyed(app, "selectbox", "cam_class_right").select_index(1)
    keyed(app, "slider", "cam_alpha_right").set_value(0.8)
    app.run()
    assert not app.exception and len(calls) == 1  # the model ran once, for the upload
    assert keyed(app, "slider", "cam_alpha_right").value == 0.8
    assert keyed(app, "selectbox", "cam_class_right").index == 1


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


@pytest.mark.parametrize("page", ["app_pages/model_card.py", "app_pages/about.py", "app_pages/history.py",
                                  "app_pages/batch.py"])
def test_other_pages_render(app, page):
    app.run()
    app.switch_page(page)
    app.run()
    assert not app.exception
    assert len(app.title) == 1


def upload(app, index: int, name: str, data: bytes) -> None:
    app.get("file_uploader")[index].set_value((name, data, "image/png"))
    app.run()
    assert not app.exception


def test_a_visit_with_both_eyes_is_saved_plotted_and_deleted(app, retina_png, tiny_model):
    from clarityx.screening.history import History

    app.run()
    upload(app, 0, "right.png", retina_png.read_bytes())
    upload(app, 1, "left.png", png_bytes(np.roll(skimage.data.retina(), 60, axis=1)))
    headings = [s.value for s in app.subheader]
    assert any(h.startswith("Right eye: most like") for h in headings)
    assert any(h.startswith("Left eye: most like") for h in headings)
    assert len(History().visits()) == 0  # nothing is stored unless the person saves

    next(b for b in app.button if "Save this visit" in b.label).click()
    app.run()
    assert not app.exception and "Saved on this computer" in markdown_text(app)
    # Saved once (issue 19, item 10): the button now says so and cannot save the visit again.
    saved = next(b for b in app.button if "Saved" in b.label)
    assert saved.disabled and not any("Save this visit" in b.label for b in app.button)
    app.run()
    visits = History().visits()
    assert len(visits) == 1 and {e.side for e in visits[0].eyes} == {"right", "left"}
    card = json.loads(tiny_model.with_name(tiny_model.stem + ".card.json").read_text())
    assert visits[0].model_name == card["name"] and visits[0].eyes[0].thumbnail.startswith(b"\x89PNG")

    app.switch_page("app_pages/history.py")
    app.run()
    assert not app.exception
    assert len(app.get("plotly_chart")) == 1 and len(app.dataframe[0].value) == 2  # trend plot, two eyes
    app.radio(key="history_eye").set_value("Left")
    app.run()
    assert len(app.dataframe[0].value) == 1  # the left eye only
    next(b for b in app.button if b.label == "Delete this visit").click()
    app.run()
    assert not app.exception and History().visits() == []
    assert any(m.value.startswith("Deleted the visit of ") for m in app.success)  # deleting says so


def test_pdf_report_of_the_visit_opens_and_names_the_model(app, retina_png, tiny_model, monkeypatch):
    """The report is made when its button is pressed: take what the button would serve and open it."""
    from pypdf import PdfReader
    from streamlit.delta_generator import DeltaGenerator

    served = {}
    real = DeltaGenerator.download_button

    def recording(self, label, data, *args, **kwargs):
        served[label] = data
        return real(self, label, data, *args, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "download_button", recording)
    app.run()
    upload(app, 0, "right.png", retina_png.read_bytes())
    pdf = next(data for label, data in served.items() if "PDF" in label)
    text = PdfReader(io.BytesIO(pdf())).pages[0].extract_text()
    card = json.loads(tiny_model.with_name(tiny_model.stem + ".card.json").read_text())
    assert card["name"] in text and "Right eye" in text and "not a diagnosis" in text
    assert f"version {card['training'].get('finished', 'unknown')}" in text
    html = next(data for label, data in served.items() if "HTML" in label)()
    assert "Right eye" in html and "data:image/jpeg;base64," in html


def test_every_installed_model_can_be_picked_and_the_choice_is_remembered(tiny_model, tmp_path, monkeypatch):
    import shutil

    import app_pages.shared as shared

    models = tmp_path / "models"
    models.mkdir()
    for name in ("eyes_a", "eyes_b"):
        shutil.copy(tiny_model, models / f"{name}.keras")
        card = json.loads(tiny_model.with_name(tiny_model.stem + ".card.json").read_text())
        (models / f"{name}.card.json").write_text(json.dumps({**card, "name": name}))
    monkeypatch.setenv("CLARITYX_MODELS_DIR", str(models))
    monkeypatch.setenv("CLARITYX_HISTORY", str(tmp_path / "history.sqlite3"))
    monkeypatch.setenv("CLARITYX_MODEL", str(models / "eyes_a.keras"))
    shared._loader.clear()
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    picker = at.sidebar.selectbox(key="model_picker")
    assert any("eyes_b" in o for o in picker.options) and "eyes_a" in picker.value
    picker.set_value(str(models / "eyes_b.keras"))
    at.run()
    at.switch_page("app_pages/model_card.py")
    at.run()
    assert not at.exception and any("eyes_b" in m.value for m in at.markdown)

    monkeypatch.delenv("CLARITYX_MODEL")  # next time, with no explicit choice: the remembered one
    again = AppTest.from_file(APP, default_timeout=120)
    again.run()
    assert not again.exception and again.sidebar.selectbox(key="model_picker").value == str(models / "eyes_b.keras")
    shared._loader.clear()


def test_a_batch_of_good_and_bad_files_gives_a_table_bad_files_with_reasons_and_a_csv(app, retina_png):
    app.run()
    app.switch_page("app_pages/batch.py")
    app.run()
    files = [("retina.png", retina_png.read_bytes()), ("notes.png", b"not an image at all"),
             ("shifted.png", png_bytes(np.roll(skimage.data.retina(), 60, axis=1))),
             ("cat.png", png_bytes(skimage.data.chelsea()))]
    app.get("file_uploader")[0].set_value([(n, d, "image/png") for n, d in files])
    app.run()
    assert not app.exception
    good, bad = app.dataframe[0].value, app.table[0].value
    assert sorted(good["file"]) == ["retina.png", "shifted.png"]
    assert sorted(bad["file"]) == ["cat.png", "notes.png"] and all(bad["reason"].str.len() > 10)
    button = next(b for b in app.get("download_button") if "CSV" in b.proto.label)
    assert button is not None
    # Issue 19, items 12 and 13: whole percentages, a referable-DR column, the file column pinned, the model
    # named; and the session keeps thumbnails and results, never the decoded photos.
    percent = [c for c in good.columns if c not in ("file", "photo", "most like", "referable DR", "hazy view")]
    assert "referable DR" in good.columns and all(good[c].map(float.is_integer).all() for c in
                                                  [p for p in percent if good[p].dtype.kind == "f"])
    assert all(good[c].dtype.kind in "iuf" and good[c].max() <= 100 for c in percent)
    config = json.loads(app.dataframe[0].proto.columns)
    assert config["file"].get("pinned") is True
    assert "tiny-test-model" in markdown_text(app)
    kept = app.session_state["batch"][1]
    assert len(kept) == 4 and not any(isinstance(v, np.ndarray) for r in kept for v in vars(r).values())
    assert sum(len(r.thumbnail or "") for r in kept) < 200_000
    # Review item 2: a refused photo (perhaps a stranger's face: cat.png here) keeps no thumbnail either.
    assert {r.name: r.thumbnail is not None for r in kept} == {"retina.png": True, "shifted.png": True,
                                                               "cat.png": False, "notes.png": False}


def test_a_dr_grade_model_shows_its_answer_as_a_grade(retina_png, tmp_path, monkeypatch):
    import keras

    import app_pages.shared as shared
    from clarityx.model.build import ModelCard, save_model
    from clarityx.screening.grades import GRADE_CLASSES
    from tests.conftest import TINY_SIZE, build_tiny_model

    keras.utils.set_random_seed(0)
    path = tmp_path / "dr_grade.keras"
    card = ModelCard(name="tiny-dr-grade", classes=list(GRADE_CLASSES), input_size=TINY_SIZE, backbone="tiny-cnn",
                     architecture="test CNN → seed head", initialisation="random",
                     dr_threshold=0.0)  # every photo reaches the referable-DR flag
    save_model(build_tiny_model(outputs=len(GRADE_CLASSES)), card, path)
    monkeypatch.setenv("CLARITYX_MODEL", str(path))
    monkeypatch.setenv("CLARITYX_HISTORY", str(tmp_path / "history.sqlite3"))
    shared._loader.clear()
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    upload(at, 0, "retina.png", retina_png.read_bytes())
    heading = at.subheader[0].value
    assert heading.startswith("Right eye: diabetic retinopathy **grade ") and " of 4** — " in heading
    assert "referable diabetic retinopathy" in markdown_text(at) + " ".join(w.value for w in at.warning)
    options = keyed(at, "selectbox", "cam_class_right").options
    assert sorted(options) == [f"DR grade {g} of 4: " + name for g, name in enumerate(
        ("no diabetic retinopathy", "mild non-proliferative diabetic retinopathy",
         "moderate non-proliferative diabetic retinopathy", "severe non-proliferative diabetic retinopathy",
         "proliferative diabetic retinopathy"))]
    shared._loader.clear()


def test_a_new_photo_resets_the_heat_map_to_its_own_top_answer(app, retina_png):
    """Issue 19, item 1: after a photo was replaced the picker and the heat map's caption disagreed."""
    app.run()
    upload(app, 0, "first.png", retina_png.read_bytes())
    picker = keyed(app, "selectbox", "cam_class_right")
    picker.select_index(len(picker.options) - 1)  # the least likely class
    app.run()
    assert f"Grad-CAM: {picker.options[-1]}" in image_captions(app)
    upload(app, 0, "second.png", png_bytes(np.roll(skimage.data.retina(), 60, axis=1)))
    picker = keyed(app, "selectbox", "cam_class_right")
    assert picker.index == 0  # the new photo's top answer
    assert f"Grad-CAM: {picker.options[0]}" in image_captions(app)
    assert all(not c.startswith("Grad-CAM: ") or c == f"Grad-CAM: {picker.options[0]}" for c in image_captions(app))


@pytest.fixture
def flagging_app(tiny_model, tmp_path, monkeypatch):
    """The tiny model with a referable-DR threshold of 0 (every photo is flagged), its answers reordered
    so that "normal" is on top: the case where the advice used to contradict the flag."""
    import shutil

    import app_pages.shared as shared
    import clarityx.screening.pipeline as pipeline

    path = tmp_path / "flags.keras"
    shutil.copy(tiny_model, path)
    card = json.loads(tiny_model.with_name(tiny_model.stem + ".card.json").read_text())
    card["dr_threshold"] = 0.0
    card["metrics"] = {"test": {"n": 500, "referable_dr": {"sensitivity": 0.9, "specificity": 0.4},
                                "per_class": {"normal": {"recall": 0.9}, "glaucoma": {"recall": 0.2}}}}
    path.with_name("flags.card.json").write_text(json.dumps(card))
    real = pipeline.analyse

    def normal_on_top(*args, **kwargs):
        result = real(*args, **kwargs)
        if result.status == "ok":
            rest = [(c, p) for c, p in result.ranked if c != "normal"]
            result.ranked = [("normal", 0.7)] + [(c, 0.3 * p / sum(q for _, q in rest)) for c, p in rest]
        return result

    monkeypatch.setattr(pipeline, "analyse", normal_on_top)
    monkeypatch.setenv("CLARITYX_MODEL", str(path))
    monkeypatch.setenv("CLARITYX_HISTORY", str(tmp_path / "history.sqlite3"))
    shared._loader.clear()
    yield AppTest.from_file(APP, default_timeout=120)
    shared._loader.clear()


def test_advice_agrees_with_the_dr_flag_and_names_only_the_models_conditions(flagging_app, retina_png):
    """Issue 19, item 2: a blue "No signs of ... diabetic retinopathy" above a yellow referable-DR flag, and
    conditions the model does not know listed among the "no signs"."""
    at = flagging_app
    at.run()
    upload(at, 0, "retina.png", retina_png.read_bytes())
    boxes = [b.value for b in [*at.info, *at.warning, *at.error]]
    assert any("referable diabetic retinopathy" in b for b in boxes)
    advice = next(b for b in boxes if "No signs of" in b)
    assert "diabetic retinopathy" not in advice.split("were recognised")[0]  # not among the "no signs"
    assert "macular" not in advice and "myopia" not in advice  # the tiny model knows neither
    assert not any("No signs of" in i.value for i in at.info)  # not the blue "all is well" box
    # The model's weak spots: said once per visit, not under each eye.
    upload(at, 1, "left.png", png_bytes(np.roll(skimage.data.retina(), 60, axis=1)))
    assert markdown_text(at).count("recognised only 20% of photos with glaucoma") == 1


def test_the_report_carries_the_dr_flag_weak_spots_and_the_file_name(flagging_app, retina_png, monkeypatch):
    """Issue 19, item 6: the flag shown in the app was missing from both reports."""
    from pypdf import PdfReader
    from streamlit.delta_generator import DeltaGenerator

    served = {}
    real = DeltaGenerator.download_button

    def recording(self, label, data, *args, **kwargs):
        served[label] = (data, kwargs.get("file_name"))
        return real(self, label, data, *args, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "download_button", recording)
    at = flagging_app
    at.run()
    upload(at, 0, "IMG_0042.png", retina_png.read_bytes())
    make_pdf, name = next(v for k, v in served.items() if "PDF" in k)
    text = " ".join(PdfReader(io.BytesIO(make_pdf())).pages[0].extract_text().split())
    page = next(v for k, v in served.items() if "HTML" in k)[0]()
    for shown in (text, page):
        assert "referable diabetic retinopathy" in shown and "IMG_0042.png" in shown
        assert "recognised only 20% of photos with glaucoma" in shown and "Heat map: Normal" in shown
    assert name.startswith("clarityx-report-") and name.endswith(".pdf")


def test_deleting_a_visit_deletes_the_one_picked_among_visits_of_one_minute(app):
    """Issue 24, item 1: with identical labels, picking visit 2 deleted visit 1 (and visit 4, visit 5)."""
    from datetime import datetime, timezone

    from clarityx.screening.history import EyeRecord, History, Visit

    moment = datetime(2026, 12, 2, 11, 47, 5, tzinfo=timezone.utc)
    history = History()
    ids = [history.save(Visit(moment.replace(second=5 + k), "m", "v",
                              [EyeRecord("right", "ok", None, {"normal": 0.8, "glaucoma": 0.2}),
                               EyeRecord("left", "ok", None, {"normal": 0.3, "glaucoma": 0.7})])) for k in range(3)]
    app.run()
    app.switch_page("app_pages/history.py")
    app.run()
    picker = app.selectbox(key="delete_visit")
    assert len(set(picker.options)) == 3  # each visit has its own name
    picked = picker.options[1]
    assert "right eye: Normal (80%)" in picked and "left eye: Glaucoma (70%)" in picked
    picker.set_value(ids[1])  # as the browser sends it: the option's name (the browser test picks it by hand)
    app.run()
    next(b for b in app.button if b.label == "Delete this visit").click()
    app.run()
    assert not app.exception
    assert [v.id for v in History().visits()] == [ids[0], ids[2]]  # the second one went, only it
    assert any(m.value == f"Deleted the visit of {picked}." for m in app.success)  # and the page says which


def test_adding_the_second_eye_after_saving_updates_the_same_visit(app, retina_png):
    """Issue 24, item 2: a second save made a second visit holding the first eye again."""
    from clarityx.screening.history import History

    app.run()
    upload(app, 0, "right.png", retina_png.read_bytes())
    next(b for b in app.button if "Save this visit" in b.label).click()
    app.run()
    assert len(History().visits()) == 1
    upload(app, 1, "left.png", png_bytes(np.roll(skimage.data.retina(), 60, axis=1)))
    update = next(b for b in app.button if b.label == "Update the saved visit")
    update.click()
    app.run()
    assert not app.exception
    visits = History().visits()
    assert len(visits) == 1 and [e.side for e in visits[0].eyes] == ["right", "left"]
    assert any("Updated your saved visit" in m.value and "No second visit" in m.value for m in app.success)
    # A new visit starts with empty photo boxes, and saving it makes a second visit.
    next(b for b in app.button if b.label == "Start a new visit").click()
    app.run()
    assert not any(s.value.startswith("Right eye:") for s in app.subheader)
    upload(app, 0, "again.png", retina_png.read_bytes())
    next(b for b in app.button if "Save this visit" in b.label).click()
    app.run()
    assert [len(v.eyes) for v in History().visits()] == [2, 1]


def test_updating_a_visit_deleted_meanwhile_saves_it_anew_and_never_touches_another_visit(app, retina_png):
    """Review item 1: the saved visit deleted on the History page and another visit saved (which took its id),
    "Update the saved visit" rewrote that other visit."""
    from clarityx.screening.history import EyeRecord, History, Visit

    app.run()
    upload(app, 0, "right.png", retina_png.read_bytes())
    next(b for b in app.button if "Save this visit" in b.label).click()
    app.run()
    (mine,) = History().visits()
    History().delete(mine.id)
    other_id = History().save(Visit(mine.taken_at, "someone else's", "v", [EyeRecord("left", "rejected", "too dark")]))
    upload(app, 1, "left.png", png_bytes(np.roll(skimage.data.retina(), 60, axis=1)))
    next(b for b in app.button if b.label == "Update the saved visit").click()
    app.run()
    assert not app.exception
    visits = {v.id: v for v in History().visits()}
    assert len(visits) == 2 and visits[other_id].model_name == "someone else's"
    assert [e.side for e in visits[other_id].eyes] == ["left"]
    (new,) = [v for v in visits.values() if v.id != other_id]
    assert [e.side for e in new.eyes] == ["right", "left"]
    assert any("had been deleted" in m.value and "saved as a new visit" in m.value for m in app.success)


def test_a_refused_photo_is_named_not_shown_and_not_kept(app, retina_png):
    """Issue 24, item 3: a refused photo (a face) was shown, put in the report and kept in the history."""
    from clarityx.screening.history import History

    app.run()
    upload(app, 0, "right.png", retina_png.read_bytes())
    upload(app, 1, "stranger.png", png_bytes(skimage.data.astronaut()))
    assert any("stranger.png" in e.value and "cannot be graded" in e.value for e in app.error)
    assert not any("The photo you gave" in c for c in image_captions(app))
    next(b for b in app.button if "Save this visit" in b.label).click()
    app.run()
    right, left = History().visits()[0].eyes
    assert right.thumbnail is not None and left.status != "ok" and left.thumbnail is None and left.message


def test_an_untested_model_says_so_wherever_it_answers(app, retina_png, monkeypatch):
    """Issue 24, item 5: a model tested on a handful of photos answered "(100%)" with no caveat. (The tiny
    test model has no test results at all.)"""
    from pypdf import PdfReader
    from streamlit.delta_generator import DeltaGenerator

    served = {}
    real = DeltaGenerator.download_button

    def recording(self, label, data, *args, **kwargs):
        served[label] = data
        return real(self, label, data, *args, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "download_button", recording)
    app.run()
    assert any("Untested model" in w.value for w in app.sidebar.warning)
    upload(app, 0, "right.png", retina_png.read_bytes())
    assert app.subheader[0].value.endswith("— untested model")
    assert any("Untested model" in w.value and "no test results" in w.value for w in app.warning)
    pdf = next(data for label, data in served.items() if "PDF" in label)
    html = next(data for label, data in served.items() if "HTML" in label)
    assert "Untested model" in " ".join(PdfReader(io.BytesIO(pdf())).pages[0].extract_text().split())
    assert "Untested model" in html()
    app.switch_page("app_pages/batch.py")
    app.run()
    app.get("file_uploader")[0].set_value([("retina.png", retina_png.read_bytes(), "image/png")])
    app.run()
    assert any("Untested model" in w.value for w in app.warning) and "untested model" in markdown_text(app)


def test_a_visit_of_only_refused_photos_is_not_listed_as_both_eyes(app):
    """Issue 24, item 11: a visit whose two photos were refused was listed as "right and left eye", and took a
    place on the trend's axis with nothing on it."""
    from datetime import datetime, timezone

    from clarityx.screening.history import EyeRecord, History, Visit

    history = History()
    moment = datetime(2026, 12, 2, 11, 47, 5, tzinfo=timezone.utc)
    history.save(Visit(moment, "m", "v", [EyeRecord("right", "ok", None, {"normal": 0.8, "glaucoma": 0.2})]))
    history.save(Visit(moment.replace(hour=12), "m", "v", [EyeRecord("right", "rejected", "not a fundus photo"),
                                                           EyeRecord("left", "rejected", "not a fundus photo")]))
    app.run()
    app.switch_page("app_pages/history.py")
    app.run()
    assert not app.exception
    names = app.selectbox(key="delete_visit").options
    refused = next(n for n in names if "12:" in n)
    assert "no result" in refused and "refused" in refused and "eye:" not in refused
    assert "right and left eye" not in " ".join(names)
    (chart,) = app.get("plotly_chart")
    spec = json.loads(chart.proto.spec)
    assert [a["text"] for a in spec["layout"]["annotations"]] == ["Right eye"]  # no panel for refused eyes
    assert len(spec["layout"]["xaxis"]["categoryarray"]) == 1  # the refused visit has no place on the trend
    assert json.loads(chart.proto.config).get("displayModeBar") is False  # item 13: no toolbar over the chart


def test_the_charts_on_the_screen_page_have_no_toolbar(app, retina_png):
    """Issue 24, item 13: Plotly's toolbar covered the top bar's percentage on hover."""
    app.run()
    upload(app, 0, "right.png", retina_png.read_bytes())
    charts = app.get("plotly_chart")
    assert charts and all(json.loads(c.proto.config).get("displayModeBar") is False for c in charts)


def test_the_batch_table_fits_six_conditions_without_sideways_scrolling(app, retina_png, monkeypatch):
    """Issue 24, item 12: the DR column was cut off, glaucoma, AMD and myopia needed sideways scrolling, the
    table ended in an empty row and the sorted heading read "↓ referab"."""
    from app_pages.batch import CONDITION_WIDTH, WIDTHS, column_config, short
    from clarityx.screening.classes import CLASSES

    six = [c for c in CLASSES]
    assert len(six) == 6
    config = column_config(six)
    shown = [k for k in ("file", "photo", "most like", "referable DR", "hazy view")] + [c for c in six]
    widths = [WIDTHS[k] for k in shown[:5]] + [CONDITION_WIDTH] * 6
    assert sum(widths) <= 950  # the wide page beside the sidebar on a 1366-pixel screen
    for key, column in config.items():
        heading = column["label"]
        # Each heading fits with the sort arrow: ~7 px a character, 16 px of padding and 12 px for the arrow.
        assert len(heading) * 7 + 28 <= column["width"], (heading, column["width"])
    assert [short(c) for c in six] == ["normal", "cataract", "DR", "glaucoma", "AMD", "myopia"]
    import streamlit

    heights, real = [], streamlit.dataframe
    monkeypatch.setattr(streamlit, "dataframe", lambda *a, **k: heights.append(k.get("height")) or real(*a, **k))
    app.run()
    app.switch_page("app_pages/batch.py")
    app.run()
    app.get("file_uploader")[0].set_value([("retina.png", retina_png.read_bytes(), "image/png")])
    app.run()
    assert not app.exception
    table = app.dataframe[0]
    columns = json.loads(table.proto.columns)
    assert all(isinstance(c.get("width"), int) for k, c in columns.items() if k != "_index")
    assert heights == ["content"]  # as tall as its rows: no empty row under the last
