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
    assert job.stop() == "stopped"
    assert not job.running()
    assert {p.name: p.read_bytes() for p in (home / "models").iterdir()} == before
    assert not (home / "user" / "training" / "staging").exists()
    assert job.state()["stage"] == "stopped" and "pid" not in job.state()  # the outcome is kept, not the process


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


def test_stop_is_certain_even_for_a_run_that_ignores_sigterm_and_its_outcome_is_kept(home, monkeypatch):
    """Issue 24, item 8: once in six tries Stop did nothing; afterwards the page showed no trace of the run.
    The run here ignores SIGTERM and was started by another app process (not this one's child list)."""
    import clarityx.retrain as retrain

    monkeypatch.setattr(retrain, "STOP_GRACE_S", 0.5)
    workdir = home / "user" / "training"
    (workdir / "staging").mkdir(parents=True)
    token = "f" * 32
    proc = subprocess.Popen([sys.executable, "-c", "import signal, sys, time; signal.signal(signal.SIGTERM, "
                             "signal.SIG_IGN); print('ready', flush=True); time.sleep(600)", f"--token={token}"],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "ready"  # SIGTERM is ignored from here on
        (workdir / "job.json").write_text(json.dumps({
            "pid": proc.pid, "token": token, "process_start": process_identity(proc.pid)[0], "name": "halfway",
            "progress": str(workdir / "staging" / "progress.json"), "log": str(workdir / "staging" / "train.log")}))
        job = TrainingJob(workdir, home / "models")
        assert job.running()
        assert job.stop() == "stopped"
        assert proc.wait(timeout=60) == -9  # killed outright once the grace period was over
        assert not job.running() and not (workdir / "staging").exists()
        report = job.progress()  # the outcome stays in the record, for every page and session
        assert report["stage"] == "stopped" and report["name"] == "halfway" and not report["running"]
    finally:
        proc.kill()
        proc.wait()


def test_two_sessions_cannot_both_start_a_run(home, dataset):
    """Issue 24, item 8: the check "no run in progress" and the start are one step under a lock, here and
    across processes."""
    from clarityx.retrain import _JobLock

    allow_root(home / "datasets")
    workdir = home / "user" / "training"
    job = TrainingJob(workdir, home / "models")
    with _JobLock(workdir):  # another session of this app is starting one
        with pytest.raises(RetrainRefused, match="Another session"):
            job.start(dataset, "second", TINY)
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a+b'); "
                               "fcntl.flock(f.fileno(), fcntl.LOCK_EX); print('locked', flush=True); time.sleep(600)",
                               str(workdir / "job.lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"  # another app process is starting one
        with pytest.raises(RetrainRefused, match="Another ClarityX window"):
            job.start(dataset, "third", TINY)
    finally:
        holder.kill()
        holder.wait()
    assert job.state() is None and not job.running()  # nothing was started by either refused call


def test_the_end_of_a_run_never_writes_its_record_over_a_stop_or_start_in_progress(home):
    """Review item 5: clearing the process of an ended run read and rewrote job.json without the lock, so it could
    write an old record over the one a stop (or start) had just written. It takes the lock now, and only clears a
    record that is still that run's: its token and its process id."""
    import clarityx.retrain as retrain

    workdir = home / "user" / "training"
    workdir.mkdir(parents=True)
    state_file = workdir / "job.json"
    record = {"pid": 4242, "token": "a" * 32, "process_start": "1", "name": "mine", "progress": "", "log": ""}
    state_file.write_text(json.dumps(record))
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a+b'); "
                               "fcntl.flock(f.fileno(), fcntl.LOCK_EX); print('locked', flush=True); time.sleep(600)",
                               str(workdir / "job.lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"  # a stop is rewriting the record right now
        retrain.clear_process(state_file, record["token"], record["pid"])
        assert json.loads(state_file.read_text()) == record  # left to the stop, not written over
    finally:
        holder.kill()
        holder.wait()
    retrain.clear_process(state_file, record["token"], 999999)  # the record names another process: not its own
    assert json.loads(state_file.read_text()) == record
    retrain.clear_process(state_file, "b" * 32, record["pid"])  # another run's token
    assert json.loads(state_file.read_text()) == record
    retrain.clear_process(state_file, record["token"], record["pid"])
    cleared = json.loads(state_file.read_text())
    assert "pid" not in cleared and "process_start" not in cleared and cleared["name"] == "mine" and cleared["ended"]


def test_stop_after_a_run_failed_says_failed_and_keeps_its_log(home):
    """Review item 5: Stop pressed after the run had failed wrote "stopped" over it and deleted its log, so the
    page no longer said why it failed."""
    workdir = home / "user" / "training"
    staging = workdir / "staging"
    staging.mkdir(parents=True)
    (staging / "train.log").write_text("epoch 1\nValueError: the dataset has one class only\n")
    (staging / "progress.json").write_text(json.dumps({"stage": "failed", "returncode": 1}))
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()  # the run's process is gone
    (workdir / "job.json").write_text(json.dumps({
        "pid": ended.pid, "token": "c" * 32, "process_start": "1", "name": "broken",
        "progress": str(staging / "progress.json"), "log": str(staging / "train.log")}))
    job = TrainingJob(workdir, home / "models")
    assert job.stop() == "failed"
    assert (staging / "train.log").is_file()
    report = job.progress()
    assert report["stage"] == "failed" and report["returncode"] == 1 and "pid" not in job.state()
    assert "one class only" in report["log_tail"]
    (staging / "progress.json").unlink()  # a run that died before train.py wrote a word: failed too
    assert job.stop() == "failed" and (staging / "train.log").is_file() and job.progress()["stage"] == "failed"


def test_a_name_taken_in_any_model_folder_is_refused(home, dataset, monkeypatch):
    """Review item 7: only the user's models folder was checked, not the checkout's models/ the app lists too."""
    import clarityx.retrain as retrain
    from clarityx.screening import settings

    checkout = home / "checkout_models"
    checkout.mkdir()
    (checkout / "bundled.card.json").write_text(json.dumps({"name": "bundled"}))
    monkeypatch.setattr(settings, "model_folders", lambda: [checkout, home / "models"])
    monkeypatch.setattr(retrain, "missing_training_packages", lambda: [])
    allow_root(home / "datasets")
    job = TrainingJob(home / "user" / "training", home / "models")
    with pytest.raises(RetrainRefused, match="bundled is installed already"):
        job.start(dataset, "bundled", TINY)
    assert job.state() is None
