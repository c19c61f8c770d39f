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

import json
import os
import secrets
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


def clear_process(state_file: Path, token: str | None = None) -> None:
    """Forget the process of the run recorded in ``state_file`` (keeping its progress and log paths);
    with ``token``, only if the record is still that run's."""
    try:
        state = json.loads(Path(state_file).read_text())
    except (OSError, ValueError):
        return
    if not isinstance(state, dict) or (token is not None and state.get("token") != token):
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

    def running(self) -> bool:
        state = self.state()
        if not state or "pid" not in state:
            return False
        proc = _RUNNING.get(state["pid"])
        if proc is not None and proc.poll() is None:
            return True
        if proc is None and is_our_run(state):
            return True
        clear_process(self.state_file, state.get("token"))  # it ended (or the record outlived it)
        return False

    def progress(self) -> dict:
        state = self.state() or {}
        try:
            report = json.loads(Path(state["progress"]).read_text())
        except (KeyError, OSError, ValueError):
            report = {}
        return {**state, **report, "running": self.running()}

    def start(self, data: str | Path, name: str, extra: list[str], roots: list[Path] | None = None) -> None:
        data = confine(data, roots)
        if not name.replace("_", "").replace("-", "").isalnum():
            raise RetrainRefused("Use letters, digits, - and _ only in the model's name.")
        if (self.models_dir / f"{name}.card.json").exists():
            raise RetrainRefused(f"A model called {name} is installed already: choose another name.")
        if self.running():
            raise RetrainRefused("A training run is in progress: wait for it or stop it first.")
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

    def stop(self) -> None:
        """Stop the run (its whole process group); the staging folder goes, installed models stay."""
        state = self.state()
        if state and self.running():  # checked against the recorded start time and token
            try:
                os.killpg(state["pid"], signal.SIGTERM)
            except OSError:
                pass
            proc = _RUNNING.pop(state["pid"], None)
            if proc is not None:
                proc.wait(timeout=30)
        shutil.rmtree(self.workdir / "staging", ignore_errors=True)
        self.state_file.unlink(missing_ok=True)


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
        model = install(staging, name, Path(models_dir))
        write_text(progress, json.dumps({"stage": "installed", "model": str(model), "time": time.time()}))
        return 0
    finally:
        if token:
            clear_process(Path(workdir) / "job.json", token)


if __name__ == "__main__":
    sys.exit(main())
