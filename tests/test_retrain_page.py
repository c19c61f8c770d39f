"""The Retrain page tells a person what to expect (issue 19, items 14-16 and 18): how long training
takes, when a dataset is too small to measure a model on, what a finished model was tested on, and
that a stopped run stopped and kept nothing. The training run itself is faked here (test_retrain.py
runs real ones)."""
import json

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from clarityx.retrain import TrainingJob, allow_root, log_tail
from tests.conftest import synthetic_fundus
from tests.test_app import APP


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CLARITYX_HISTORY", str(tmp_path / "user" / "history.sqlite3"))
    monkeypatch.setenv("CLARITYX_MODELS_DIR", str(tmp_path / "models"))
    (tmp_path / "models").mkdir()
    return tmp_path


def small_dataset(home, per_class: int = 10):
    root = home / "datasets" / "mine"
    for k, cls in enumerate(["normal", "cataract"]):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(synthetic_fundus(96, seed=500 + 100 * k + i)).save(root / cls / f"{i}.png")
    allow_root(home / "datasets")
    return root


def retrain_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/retrain.py")
    at.run()
    return at


def all_text(at) -> str:
    return " ".join(e.value for kind in ("markdown", "caption", "warning", "info", "success")
                    for e in getattr(at, kind))


def test_the_time_estimate_follows_the_dataset_size():
    from app_pages.retrain import duration_estimate

    assert duration_estimate(40) != duration_estimate(4000) != duration_estimate(100_000)
    assert "minutes" in duration_estimate(40) and "hours" in duration_estimate(100_000)


def test_a_dataset_too_small_to_measure_is_warned_about_before_training(home):
    folder = small_dataset(home)
    at = retrain_page()
    assert "an hour or more" not in all_text(at)
    at.text_input(key="retrain_folder").set_value(str(folder))
    at.run()
    assert not at.exception
    assert any("too small to measure" in w.value for w in at.warning)
    assert "Training on 20 photos takes about" in all_text(at)


def fake_run(monkeypatch, state: dict) -> dict:
    monkeypatch.setattr(TrainingJob, "progress", lambda self: dict(state))
    monkeypatch.setattr(TrainingJob, "running", lambda self: bool(state.get("running")))
    monkeypatch.setattr(TrainingJob, "stop", lambda self: state.update(running=False, stage="stopped") or "stopped")
    return state


def test_stop_says_it_stopped_and_what_was_kept_and_it_stays_said(home, monkeypatch):
    """Issue 24, item 8: "Stopped…" showed for a moment and vanished, leaving no trace of the run."""
    fake_run(monkeypatch, {"name": "halfway", "running": True, "stage": "training the head"})
    at = retrain_page()
    next(b for b in at.button if b.label == "Stop training").click()
    at.run()
    for _ in range(2):  # and on every later run of the page (the fragment redraws every 2 s)
        assert not at.exception
        said = " ".join(i.value for i in at.info)
        assert "Stopped" in said and "halfway" in said and "installed models" in said
        assert not any(b.label == "Stop training" for b in at.button)
        at.run()


def test_without_the_training_packages_the_page_says_what_to_install_before_anything_starts(home, monkeypatch):
    """Issue 24, item 6: after `make run`, Start ran and failed four seconds later (No module named 'keras')."""
    import clarityx.retrain as retrain

    monkeypatch.setattr(retrain, "TRAINING_MODULES", {**retrain.TRAINING_MODULES, "no_such_module_x": "keras"})
    assert retrain.missing_training_packages() == ["keras"]
    folder = small_dataset(home)
    at = retrain_page()
    assert any("make setup-dev" in e.value and "keras" in e.value for e in at.error)
    at.text_input(key="retrain_folder").set_value(str(folder))
    at.run()
    at.text_input(key="retrain_name").set_value("mine")
    at.run()
    assert not at.exception
    assert next(b for b in at.button if b.label == "Start training").disabled
    with pytest.raises(retrain.RetrainRefused, match="make setup-dev"):  # and the job itself refuses
        TrainingJob(home / "user" / "training", home / "models").start(folder, "mine", [])
    assert not (home / "user" / "training" / "job.json").exists()


def test_a_failed_run_shows_the_last_lines_of_its_log(home, monkeypatch):
    log = home / "train.log"
    log.write_text("\n".join(f"line {i}" for i in range(40)) + "\nModuleNotFoundError: No module named 'keras'\n")
    fake_run(monkeypatch, {"name": "broken", "running": False, "stage": "failed", "returncode": 1, "log": str(log),
                           "log_tail": log_tail(log)})
    at = retrain_page()
    assert not at.exception
    shown = " ".join(c.value for c in at.code)
    assert "No module named 'keras'" in shown and "line 39" in shown and "line 3\n" not in shown
    assert any("broken" in e.value and "failed" in e.value for e in at.error)
    assert any("make setup-dev" in w.value for w in at.warning)


def test_progress_says_the_stage_never_a_nan_epoch(tmp_path):
    """Issue 24, item 7: "epoch 2 of 2 — loss nan, ..." and a full bar while features were still cached."""
    from app_pages.retrain import stage_line

    log = tmp_path / "train.log"
    log.write_text("view 0: 64/120 photos\nview 1: 8/100 photos\nview 1: 40/100 photos\n")
    assert stage_line({"stage": "reading and auditing the data"}) == ("Auditing the photos…", None)
    text, done = stage_line({"stage": "features of view 1", "epoch": 1, "epochs": 2, "log": str(log)})
    assert text == "Caching features: 40 of 100 photos (view 2 of 3)" and done == pytest.approx(0.4)
    text, done = stage_line({"stage": "features of view 2", "epoch": 2, "epochs": 2, "log": str(log)})
    assert "Caching features" in text and done is None  # no count yet: no bar, certainly not a full one
    assert stage_line({"stage": "training the head", "epoch": 0, "epochs": 30})[0].startswith("Fitting")
    text, done = stage_line({"stage": "fine-tuning the whole network", "epoch": 2, "epochs": 4,
                             "loss": float("nan"), "val_loss": 0.5, "val_accuracy": float("nan")})
    assert "nan" not in text and "validation loss 0.500" in text and done == 0.5
    assert stage_line({"stage": "calibrating and testing"})[0].startswith("Evaluating")


def test_a_finished_model_shows_what_it_was_tested_on_and_warns_when_that_is_too_little(home, monkeypatch, tiny_model):
    import shutil

    model = home / "models" / "my_eyes.keras"
    shutil.copy(tiny_model, model)
    card = json.loads(tiny_model.with_name(tiny_model.stem + ".card.json").read_text())
    card.update(name="my_eyes", metrics={"test": {"n": 5, "accuracy": 0.6, "macro_f1": 0.5, "ece": 0.4,
                                                  "intervals": {"accuracy": [0.2, 1.0]}}})
    (home / "models" / "my_eyes.card.json").write_text(json.dumps(card))
    state = fake_run(monkeypatch, {"name": "my_eyes", "running": True, "stage": "head"})
    at = retrain_page()
    state.update(running=False, stage="installed", model=str(model))  # it finishes while the page is open
    at.run()
    assert not at.exception
    done = " ".join(s.value for s in at.success)
    assert "my_eyes" in done and "5 held-out photos" in done and "60% [20%–100%]" in done
    assert any("too small" in w.value for w in at.warning)
    assert "Models installed: 2" in all_text(at)


def named_dataset(home, names: dict[str, list[str]]):
    root = home / "datasets" / "named"
    for k, (cls, files) in enumerate(names.items()):
        (root / cls).mkdir(parents=True)
        for i, name in enumerate(files):
            Image.fromarray(synthetic_fundus(96, seed=700 + 50 * k + i)).save(root / cls / name)
    allow_root(home / "datasets")
    return root


def test_patients_named_like_patient001_l_are_found_and_kept_together(home):
    """Issue 24, item 9: files named c1_Patient001_L.jpg gave "patients 0"."""
    from clarityx.data.audit import audit
    from clarityx.data.datasets import load_dataset

    root = named_dataset(home, {"normal": ["c1_Patient001_L.png", "c1_Patient002_R.png", "c1_Patient003_L.png"],
                                "glaucoma": ["c2_Patient001_R.png", "c2_Patient004_L.png", "c2_Patient004_R.png"]})
    samples = load_dataset(root)
    report = audit(samples)
    assert report.patients == 4 and report.patients_with_several_photos == 2
    by_name = {s.path.name: s.group for s in samples}
    assert by_name["c1_Patient001_L.png"] == by_name["c2_Patient001_R.png"] != by_name["c1_Patient002_R.png"]


@pytest.mark.parametrize("names, patients", [
    (["0042_OD.png", "0042_OS.png", "0043_OD.png"], 2),
    (["smith_L.png", "smith_R.png", "jones_R.png"], 2),
    (["12_left.png", "12_right.png", "13_left.png"], 2),   # the default pattern still comes first
    (["a.png", "b.png", "c.png"], 0),
])
def test_common_eye_namings_are_recognised(names, patients):
    from clarityx.data.datasets import patient_of, patient_pattern

    pattern = patient_pattern(names)
    assert len({patient_of(n, pattern, "x") for n in names} - {None}) == patients


def test_no_patient_ids_is_said_with_how_to_give_them(home):
    folder = small_dataset(home)  # named 0.png, 1.png, ...: no patient in the names
    at = retrain_page()
    at.text_input(key="retrain_folder").set_value(str(folder))
    at.run()
    assert not at.exception
    assert [m.value for m in at.metric if m.label == "patients"] == ["none found"]
    said = " ".join(w.value for w in at.warning)
    assert "no patient ids found" in said and "--group-pattern" in said
    # A pattern given on the page names them (and would be passed to training).
    at.text_input(key="retrain_group_pattern").set_value(r"^(\d)")
    at.run()
    assert not at.exception and [m.value for m in at.metric if m.label == "patients"] == ["10"]


def test_the_advised_size_leaves_a_test_set_over_the_warning(home):
    """Issue 24, item 9: "use at least 666 photos" left 99 test photos, under the page's own 100."""
    import re

    from app_pages.retrain import expected_test_photos
    from clarityx.screening.tested import MIN_TEST_PHOTOS

    folder = small_dataset(home)
    at = retrain_page()
    at.text_input(key="retrain_folder").set_value(str(folder))
    at.run()
    warning = next(w.value for w in at.warning if "too small to measure" in w.value)
    advised = int(re.search(r"Use at least ([\d,]+) photos", warning).group(1).replace(",", ""))
    assert expected_test_photos(advised) >= MIN_TEST_PHOTOS
    assert f"about {expected_test_photos(advised)}" in warning
