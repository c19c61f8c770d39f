"""Retraining from the app: confined dataset paths, one run at a time, finished runs installed whole,
stopped runs leaving every installed model untouched."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from clarityx.retrain import (_RUNNING, RetrainRefused, TrainingJob, allow_root, allowed_roots, confine, is_our_run,
                              process_identity)
from tests.conftest import synthetic_fundus
from tests.test_app import APP

TINY = ["--backbone", "efficientnet_lite0", "--weights", "lite0-imagenet", "--img-size", "64", "--epochs", "0",
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
def test_training_started_from_the_page_finishes_and_its_model_joins_the_list(home, dataset, monkeypatch):
    from app_pages.retrain import QUICK, job

    start = TrainingJob.start

    def tiny(self, data, name, extra, roots=None):  # the page's recipe, shrunk for a test
        assert extra[:len(QUICK)] == QUICK
        return start(self, data, name, TINY + extra[len(QUICK):], roots)

    monkeypatch.setattr(TrainingJob, "start", tiny)  # (the page itself takes no training arguments)
    allow_root(home / "datasets")
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/retrain.py")
    at.run()
    at.text_input(key="retrain_folder").set_value(str(dataset))
    at.run()
    assert not at.exception and any(m.value == "40" for m in at.metric)  # the audit, at once
    at.text_input(key="retrain_name").set_value("my_eyes")
    at.run()
    next(b for b in at.button if b.label == "Start training").click()
    at.run()
    with pytest.raises(RetrainRefused, match="in progress"):  # one run at a time
        job().start(dataset, "second", QUICK)
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


def test_the_page_takes_no_training_arguments_from_the_session():
    """No hidden hook lets a session pass train.py arguments (a --data outside the allowed folders)."""
    assert "retrain_args" not in (Path(__file__).resolve().parent.parent / "app_pages" / "retrain.py").read_text()


@pytest.fixture
def stranger():
    """An unrelated process in its own process group (as a training run would be)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def test_a_record_that_outlived_its_run_never_signals_the_process_that_reused_its_id(home, stranger):
    """job.json survives an app restart; its process id now belongs to someone else. Neither running()
    nor stop() may take that process for the run: its command line lacks the run's token, or it
    started at another time."""
    workdir = home / "user" / "training"
    job = TrainingJob(workdir, home / "models")
    start, _ = process_identity(stranger.pid)
    for record in ({"pid": stranger.pid},                                                 # an old record
                   {"pid": stranger.pid, "token": "0123abcd", "process_start": start},     # token not its own
                   {"pid": stranger.pid, "token": "0123abcd", "process_start": "1"}):      # another start time
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "job.json").write_text(json.dumps({**record, "name": "old", "progress": "", "log": ""}))
        assert not job.running()
        job.stop()
        time.sleep(0.2)
        assert stranger.poll() is None, "Stop signalled an unrelated process"
        assert "pid" not in (job.state() or {})


def test_the_record_is_checked_against_the_process_it_names(stranger):
    start, command = process_identity(stranger.pid)
    assert is_our_run({"pid": stranger.pid, "token": "x", "process_start": start}) is False
    assert process_identity(2 ** 22 + 12345) is None  # beyond pid_max: no such process


def test_a_finished_run_clears_its_process_from_the_record(home, dataset):
    """The run's own process forgets its id when it ends (here: train.py refuses an option at once)."""
    allow_root(home / "datasets")
    job = TrainingJob(home / "user" / "training", home / "models")
    job.start(dataset, "refused", ["--no-such-option"])
    state = job.state()
    assert state["token"] and state["process_start"] and is_our_run(state)
    _RUNNING.pop(state["pid"]).wait(timeout=120)  # the run ends; this process only reaps it
    assert "pid" not in job.state() and job.state()["token"] == state["token"]  # cleared by the run itself
    report = job.progress()
    assert report["stage"] == "failed" and not report["running"]
