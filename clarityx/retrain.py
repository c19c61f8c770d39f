"""Retraining from the app: one ``train.py`` run at a time, in the background, with progress and a stop.

The run writes into a staging folder. Only when ``train.py`` finishes does this module move the new
model's files into the models folder — the card last, since a model is listed once its card is
there — so a stopped or crashed run leaves every installed model untouched and nothing half-written.
Dataset folders must lie under a folder the person allowed (``settings.json``: ``data_roots``).

    python -m clarityx.retrain DATA_DIR NAME MODELS_DIR WORKDIR [train.py options...]
"""
from __future__ import annotations

import json
import os
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
COMPANIONS = (".keras", ".ood.npz", ".split.csv", ".audit.json", ".card.md", ".card.json")
_RUNNING: dict[int, subprocess.Popen] = {}  # children of this process (so they can be reaped)


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
        if not state:
            return False
        proc = _RUNNING.get(state["pid"])
        if proc is not None:
            return proc.poll() is None
        try:
            os.kill(state["pid"], 0)
            return True
        except OSError:
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
        log = open(staging / "train.log", "wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "clarityx.retrain", str(data), name, str(self.models_dir), str(self.workdir),
             *extra], stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            cwd=TRAIN_PY.parent, env={**os.environ, "TQDM_DISABLE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"})
        log.close()
        _RUNNING[proc.pid] = proc
        write_text(self.state_file, json.dumps({"pid": proc.pid, "name": name, "data": str(data),
                                                "started": time.time(), "progress": str(staging / "progress.json"),
                                                "log": str(staging / "train.log")}))

    def stop(self) -> None:
        """Stop the run (its whole process group); the staging folder goes, installed models stay."""
        state = self.state()
        if state and self.running():
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
    data, name, models_dir, workdir, *extra = argv if argv is not None else sys.argv[1:]
    staging = Path(workdir) / "staging"
    progress = staging / "progress.json"
    proc = subprocess.run([sys.executable, str(TRAIN_PY), "--data", data, "--output", str(staging / f"{name}.keras"),
                           "--progress-file", str(progress), "--cache-dir", str(Path(workdir) / "cache"), *extra])
    if proc.returncode != 0:
        write_text(progress, json.dumps({"stage": "failed", "returncode": proc.returncode}))
        return proc.returncode
    model = install(staging, name, Path(models_dir))
    write_text(progress, json.dumps({"stage": "installed", "model": str(model), "time": time.time()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
