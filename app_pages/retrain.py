"""Retrain: point at a labelled dataset folder (under a folder you allowed), see its audit at once,
train in the background with live progress and a stop button; the new model joins the model list."""
from __future__ import annotations

import math
import re

import streamlit as st

from app_pages.shared import DISCLAIMER
from clarityx.retrain import (INSTALL_ADVICE, RetrainRefused, TrainingJob, allow_root, allowed_roots, confine,
                              missing_training_packages)
from clarityx.screening import settings
from clarityx.screening.catalogue import available_models
from clarityx.screening.tested import MIN_TEST_PHOTOS  # fewer test photos: a model is untested

TASKS = {"Eye conditions (the dataset's labels: normal, glaucoma, ...)": [],
         "Diabetic-retinopathy grade 0–4 (APTOS 2019, EyePACS or ODIR-5K grades)": ["--task", "dr-grade"]}
TEST_SHARE = 0.15  # of the photos held out to test the new model (passed to train.py below)
QUICK = ["--backbone", "efficientnet_lite0", "--weights", "lite0-imagenet", "--img-size", "256", "--epochs", "0",
         "--head-epochs", "30", "--test-frac", str(TEST_SHARE)]
# The bundled model's head-only run read ~6,000 photos at 448 px in 49 min on 2 cores (README): ~0.5 s a
# photo; this page trains at 256 px, about a third of the pixels. A rough guide, not a promise.
SECONDS_PER_PHOTO = 0.5 * (256 / 448) ** 2
FIXED_SECONDS = 120  # start-up, the model's export and its card


def job() -> TrainingJob:
    """This user's training run: its state beside the history, its model into the models folder."""
    return TrainingJob(settings.training_dir(), settings.models_dir())


@st.cache_data(show_spinner="Auditing the dataset…", max_entries=4)
def audit_of(folder: str, group_pattern: str | None = None) -> dict:
    """The audit in figures (``group_pattern``: the patient pattern given on the page; None: the default and
    the common namings)."""
    from clarityx.data.audit import audit
    from clarityx.data.datasets import EYE_PAIR_PATTERN, load_datasets

    samples, _ = load_datasets([folder], None, group_pattern or EYE_PAIR_PATTERN)
    report = audit(samples, root=folder)
    return {"summary": report.summary(), "photos": report.files, "patients": report.patients,
            "patients_line": report.patients_line(),
            "near_duplicate_groups": len(report.near_duplicate_groups),
            "conflicting_groups": len(report.conflicting_groups)}


def expected_test_photos(photos: int) -> int:
    return int(photos * TEST_SHARE)


def photos_needed() -> int:
    """The photos to advise: enough that the test share holds :data:`MIN_TEST_PHOTOS` with a little room (the
    split keeps patients and copies whole, so the test part can come out a few photos short of its share),
    rounded up to a hundred."""
    n = math.ceil(MIN_TEST_PHOTOS * 1.05 / TEST_SHARE)
    n = math.ceil(n / 100) * 100
    assert expected_test_photos(n) >= MIN_TEST_PHOTOS
    return n


def margin(n: int) -> float:
    """The 95% margin of a proportion near 50% measured on ``n`` photos (the widest it gets)."""
    return 1.96 * (0.25 / max(n, 1)) ** 0.5


def duration_estimate(photos: int) -> str:
    """How long training on this many photos takes here, roughly, in words."""
    low = FIXED_SECONDS + photos * SECONDS_PER_PHOTO
    minutes = [max(1, round(x / 60)) for x in (low, 2 * low)]
    return f"about {minutes[0]}–{minutes[1]} minutes" if minutes[1] < 120 else \
        f"about {low / 3600:.1f}–{2 * low / 3600:.1f} hours"


def size_ui(photos: int) -> None:
    """Before training: how long it takes, and a warning when the test set would be too small to measure."""
    st.caption(f"Training on {photos:,} photos takes {duration_estimate(photos)} on this computer "
               "(more while other programs are busy). You can keep using ClarityX meanwhile.")
    n = expected_test_photos(photos)
    if n < MIN_TEST_PHOTOS:
        need = photos_needed()
        st.warning(f"**This dataset is too small to measure a model on.** About {n} of its {photos} photos would "
                   f"be held out to test the new model: any accuracy measured on them is uncertain by about "
                   f"±{margin(n):.0%}, so you could not tell a useful model from a useless one. Use at least "
                   f"{need:,} photos, with many of each class: {TEST_SHARE:.0%} of them, about "
                   f"{expected_test_photos(need)}, are then held out for the test, over the {MIN_TEST_PHOTOS} "
                   "it needs.")


def test_figures(card) -> tuple[str, bool]:
    """The new model's held-out test in a line (Markdown), and whether it was too small to trust."""
    test = card.metrics.get("test") or {}
    n = int(test.get("n") or 0)
    if not n:
        return "It has no test results.", True
    ci = (test.get("intervals") or {}).get("accuracy")
    interval = f" [{ci[0]:.0%}–{ci[1]:.0%}]" if isinstance(ci, (list, tuple)) and len(ci) == 2 else ""
    line = (f"Tested on **{n} held-out photos**: accuracy {test['accuracy']:.0%}{interval}, "
            f"macro-F1 {test.get('macro_f1', float('nan')):.2f}, "
            f"calibration error {test.get('ece', float('nan')):.2f}.")
    return line, n < MIN_TEST_PHOTOS


def finished_ui(p: dict) -> None:
    """A finished run: what it was tested on, before the model is picked."""
    from clarityx.screening.card import ModelCard, card_path

    try:
        card = ModelCard.load(card_path(p.get("model") or ""))
        line, too_small = test_figures(card)
    except (OSError, ValueError, TypeError):
        line, too_small = "Its card could not be read.", True
    st.success(f"Finished: **{p['name']}** is installed. {line}")
    if too_small:
        st.warning("Its test set was too small to tell how well it works: treat its answers as untested, and "
                   "prefer the bundled model.")
    st.caption("Pick it in the sidebar's model list to use it; the Model page shows its card.")


def roots_ui() -> None:
    with st.expander("Folders ClarityX may read datasets from"):
        for root in allowed_roots():
            st.code(str(root))
        new = st.text_input("Allow another folder", key="new_root")
        if st.button("Allow") and new:
            try:
                allow_root(new)
                st.rerun()
            except RetrainRefused as exc:
                st.error(str(exc))


CACHED = re.compile(r"view (\d+): (\d+)/(\d+) photos")


def caching_count(log: str | None, view: int) -> tuple[int, int] | None:
    """(done, of) from the run's log: train.py prints "view V: n/N photos" while it caches features."""
    try:
        with open(log or "", "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 8192))
            tail = f.read().decode(errors="replace")
    except OSError:
        return None
    found = [m for m in CACHED.finditer(tail) if int(m.group(1)) == view]
    return (int(found[-1].group(2)), int(found[-1].group(3))) if found else None


def finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def stage_line(p: dict) -> tuple[str, float | None]:
    """The run's stage in words (auditing, caching features n of N, fitting, evaluating), and how far it is
    when that can be told (None: no bar)."""
    stage = str(p.get("stage") or "starting")
    if stage.startswith("features of view"):
        view, views = int(p.get("epoch") or 0), int(p.get("epochs") or 0)
        which = f" (view {view + 1} of {views + 1})" if views else ""
        count = caching_count(p.get("log"), view)
        if count is None:
            return f"Caching features of the photos{which}…", None
        done, of = count
        return f"Caching features: {done:,} of {of:,} photos{which}", done / max(1, of)
    if stage == "fine-tuning the whole network" and p.get("epoch"):
        epoch, epochs = int(p["epoch"]), max(1, int(p.get("epochs") or 1))
        losses = [f"{name} {p[key]:.3f}" for key, name in (("loss", "loss"), ("val_loss", "validation loss"))
                  if finite(p.get(key))]
        if finite(p.get("val_accuracy")):
            losses.append(f"validation accuracy {p['val_accuracy']:.0%}")
        return f"Fitting: fine-tuning, epoch {epoch} of {epochs}" + (f" — {', '.join(losses)}" if losses else ""), \
            epoch / epochs
    words = {"starting": "Starting…", "reading and auditing the data": "Auditing the photos…",
             "training the head": "Fitting the model…", "fine-tuning the whole network": "Fitting: fine-tuning…",
             "calibrating and testing": "Evaluating on the held-out photos…",
             "exporting the ONNX graph and checking the outside sets": "Evaluating: exporting the model and "
                                                                       "checking it on outside photos…",
             "finished": "Installing the new model…"}
    return words.get(stage, stage[:1].upper() + stage[1:] + "…"), None


def stop_run(name: str) -> None:
    """The Stop button's callback: it runs before the page is drawn, so a click is never lost to a rerun."""
    try:
        outcome = job().stop()
    except RetrainRefused as exc:
        st.session_state["training_said"] = str(exc)
        return
    if outcome == "installed":
        st.session_state["training_said"] = (f"Training **{name}** had already finished before Stop: its model "
                                             "is installed (below).")
    elif outcome == "failed":
        st.session_state["training_said"] = (f"Training **{name}** had already failed before Stop: nothing was "
                                             "stopped, and its log is kept (below) to say why.")


def stopped_ui(p: dict) -> None:
    st.info(f"Stopped: training **{p['name']}** was stopped and its unfinished files deleted. Nothing was "
            "installed; your installed models and your dataset are as they were.")


def failed_ui(p: dict) -> None:
    code = f" (exit code {p['returncode']})" if p.get("returncode") is not None else ""
    st.error(f"Training **{p['name']}** failed{code}; no model was changed. The last lines of its log "
             f"({p.get('log')}) say why:")
    tail = p.get("log_tail") or ""
    if tail:
        st.code(tail, language=None)
    if "No module named" in tail:
        st.warning("A training package is missing. " + INSTALL_ADVICE)


@st.fragment(run_every=2)
def progress_ui() -> None:
    """The run's progress, refreshed every 2 s; when it starts, ends or is installed, the whole page
    reruns, so the sidebar's model list, the count of models and the Start button follow. The outcome of
    the last run (installed, stopped, failed) stays on the page until the next one."""
    p = job().progress()
    seen = (p.get("name"), bool(p.get("running")), p.get("stage") in ("installed", "stopped", "failed"))
    if st.session_state.setdefault("training_seen", seen) != seen:
        st.session_state["training_seen"] = seen
        st.rerun(scope="app")
    if "training_said" in st.session_state:
        st.info(st.session_state.pop("training_said"))
    if not p.get("name"):
        return
    stage = p.get("stage", "starting")
    if p.get("running"):
        text, done = stage_line(p)
        st.info(f"Training **{p['name']}**: {text}")
        if done is not None:
            st.progress(min(1.0, max(0.0, done)), text=text)
        st.button("Stop training", key="stop_training", on_click=stop_run, args=(p["name"],))
    elif stage == "installed":
        finished_ui(p)
    elif stage == "stopped":
        stopped_ui(p)
    elif stage == "failed":
        failed_ui(p)


def packages_ui() -> bool:
    """Before anything starts: whether the training packages are here; if not, what to install."""
    missing = missing_training_packages()
    if missing:
        st.error(f"**Training needs packages that are not installed here:** {', '.join(missing)}. "
                 + INSTALL_ADVICE)
    return not missing


st.title("Retrain on your own photos")
st.write("A dataset is a folder with one sub-folder per class (or an APTOS, G1020 or ODIR-5K download). "
         "Training runs on this computer, in the background; how long it takes depends on the number of photos.")
ready = packages_ui()
roots_ui()
folder = st.text_input("Dataset folder", key="retrain_folder")
if folder:
    try:
        path = confine(folder)
        with st.expander("Patient ids in the file names"):
            pattern = st.text_input(
                "Pattern of your file names (a regular expression; its first bracketed group is the patient)",
                key="retrain_group_pattern", placeholder=r"e.g. Patient(\d+) for c1_Patient001_L.jpg",
                help="Left empty, ClarityX recognises names like 123_left.jpg, Patient001_L.jpg and 0042_OD.jpg. "
                     "It is passed to training as --group-pattern.").strip()
            try:
                re.compile(pattern)
            except re.error as exc:
                st.error(f"That pattern is not a valid regular expression ({exc}); the common namings are used.")
                pattern = ""
        info = audit_of(str(path), pattern or None)
        cols = st.columns(4)
        cols[0].metric("photos", info["photos"])
        cols[1].metric("patients", info["patients"] or "none found")
        if not info["patients"]:
            st.warning(info["patients_line"])
        cols[2].metric("near-duplicate groups", info["near_duplicate_groups"])
        cols[3].metric("label conflicts", info["conflicting_groups"])
        with st.expander("The audit"):
            st.text(info["summary"])
        size_ui(info["photos"])
        task = st.radio("What the new model answers", list(TASKS), key="retrain_task")
        name = st.text_input("Name of the new model", key="retrain_name")
        running = job().running()
        if st.button("Start training", disabled=running or not name or not ready, type="primary"):
            job().start(path, name, QUICK + TASKS[task] + (["--group-pattern", pattern] if pattern else []))
            st.session_state.pop("training_said", None)
            st.rerun()
    except RetrainRefused as exc:
        st.error(str(exc))
progress_ui()
st.caption(f"Models installed: {len(available_models())}. " + DISCLAIMER)
