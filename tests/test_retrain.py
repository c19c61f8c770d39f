"""Retraining from the app: confined dataset paths, one run at a time, finished runs installed whole,
stopped runs leaving every installed model untouched."""
import json
import time
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from clarityx.retrain import RetrainRefused, TrainingJob, allow_root, allowed_roots, confine
from tests.conftest import synthetic_fundus
from tests.test_app import APP

TINY = ["--backbone", "efficientnet_lite0", "--weights", "none", "--img-size", "64", "--epochs", "0",
        "--head-epochs", "2", "--batch-size", "8"]


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private user data folder (history, settings, training runs) and models folder."""
    monkeypatch.setenv("CLARITYX_HISTORY", str(tmp_path / "user" / "history.sqlite3"))
    monkeypatch.setenv("CLARITYX_MODELS_DIR", str(tmp_path / "models"))
    (tmp_path / "models").mkdir()
    return tmp_path


@pytest.fixture
def dataset(home):
    root = home / "datasets" / "mine"
    for k, cls in enumerate(["normal", "cataract", "diabetic_retinopathy", "glaucoma"]):
        (root / cls).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(synthetic_fundus(160, seed=3000 + 100 * k + i)).save(root / cls / f"{i}.png")
    return root


def test_dataset_paths_are_confined_to_allowed_folders(home, dataset):
    with pytest.raises(RetrainRefused, match="not under a folder you allowed"):
        confine(dataset)
    allow_root(home / "datasets")
    assert allowed_roots() == [(home / "datasets").resolve()]
    assert confine(dataset) == dataset.resolve()
    with pytest.raises(RetrainRefused, match="not under"):
        confine(home / "datasets" / ".." / "models")  # '..' is resolved before the check
    (home / "datasets" / "escape").symlink_to(home / "models")
    with pytest.raises(RetrainRefused, match="not under"):
        confine(home / "datasets" / "escape")  # so is a symbolic link out of the allowed folder


def wait(job: TrainingJob, seconds: float = 400) -> dict:
    deadline = time.time() + seconds
    while job.running() and time.time() < deadline:
        time.sleep(1)
    return job.progress()


@pytest.mark.slow
def test_training_started_from_the_page_finishes_and_its_model_joins_the_list(home, dataset):
    from app_pages.retrain import job

    allow_root(home / "datasets")
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/retrain.py")
    at.run()
    at.session_state["retrain_args"] = TINY
    at.text_input(key="retrain_folder").set_value(str(dataset))
    at.run()
    assert not at.exception and any(m.value == "40" for m in at.metric)  # the audit, at once
    at.text_input(key="retrain_name").set_value("my_eyes")
    at.run()
    next(b for b in at.button if b.label == "Start training").click()
    at.run()
    with pytest.raises(RetrainRefused, match="in progress"):  # one run at a time
        job().start(dataset, "second", TINY)
    report = wait(job())
    assert report["stage"] == "installed", Path(report["log"]).read_text()[-3000:]
    installed = sorted(p.name for p in (home / "models").iterdir())
    assert {"my_eyes.keras", "my_eyes.card.json", "my_eyes.ood.npz"} <= set(installed)
    at.run()
    assert not at.exception
    picker = at.sidebar.selectbox(key="model_picker")
    assert any("my_eyes" in option for option in picker.options)


@pytest.mark.slow
def test_a_stopped_run_leaves_the_installed_models_untouched(home, dataset):
    allow_root(home / "datasets")
    (home / "models" / "kept.keras").write_bytes(b"an installed model")
    (home / "models" / "kept.card.json").write_text(json.dumps({"name": "kept"}))
    before = {p.name: p.read_bytes() for p in (home / "models").iterdir()}
    job = TrainingJob(home / "user" / "training", home / "models")
    job.start(dataset, "halfway", TINY + ["--head-epochs", "200"])
    deadline = time.time() + 120
    while time.time() < deadline and not (home / "user" / "training" / "staging" / "progress.json").exists():
        time.sleep(0.5)
    job.stop()
    assert not job.running()
    assert {p.name: p.read_bytes() for p in (home / "models").iterdir()} == before
    assert not (home / "user" / "training" / "staging").exists() and job.state() is None
