"""Retrain: point at a labelled dataset folder (under a folder you allowed), see its audit at once,
train in the background with live progress and a stop button; the new model joins the model list."""
from __future__ import annotations

import os

import streamlit as st

from app_pages.shared import DISCLAIMER
from clarityx.retrain import RetrainRefused, TrainingJob, allow_root, allowed_roots, confine
from clarityx.screening.catalogue import MODELS_DIR_ENV, available_models
from clarityx.screening.engine import DEFAULT_MODEL
from clarityx.screening.history import default_history_path

TASKS = {"Eye conditions (the dataset's labels: normal, glaucoma, ...)": [],
         "Diabetic-retinopathy grade 0–4 (APTOS 2019, EyePACS or ODIR-5K grades)": ["--task", "dr-grade"]}
QUICK = ["--backbone", "efficientnet_lite0", "--weights", "lite0-imagenet", "--img-size", "256", "--epochs", "0",
         "--head-epochs", "30"]


def job() -> TrainingJob:
    """This user's training run: its state beside the history, its model into the models folder."""
    models = os.environ.get(MODELS_DIR_ENV) or DEFAULT_MODEL.parent
    return TrainingJob(default_history_path().parent / "training", models)


@st.cache_data(show_spinner="Auditing the dataset…", max_entries=4)
def audit_of(folder: str) -> dict:
    from clarityx.data.audit import audit
    from clarityx.data.datasets import load_datasets

    samples, _ = load_datasets([folder], None)
    report = audit(samples, root=folder)
    return {"summary": report.summary(), "photos": report.files, "patients": report.patients,
            "near_duplicate_groups": len(report.near_duplicate_groups),
            "conflicting_groups": len(report.conflicting_groups)}


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


@st.fragment(run_every=2)
def progress_ui() -> None:
    p = job().progress()
    if not p.get("name"):
        return
    stage = p.get("stage", "starting")
    if p.get("running"):
        st.info(f"Training **{p['name']}**: {stage}")
        if p.get("epoch"):
            st.progress(p["epoch"] / max(1, p.get("epochs", 1)),
                        text=f"epoch {p['epoch']} of {p.get('epochs')} — loss {p.get('loss', float('nan')):.3f}, "
                             f"validation loss {p.get('val_loss', float('nan')):.3f}, "
                             f"validation accuracy {p.get('val_accuracy', float('nan')):.1%}")
        if st.button("Stop training", key="stop_training"):
            job().stop()
            st.rerun(scope="app")
    elif stage == "installed":
        st.success(f"Finished: **{p['name']}** is installed; pick it in the sidebar's model list.")
    elif stage == "failed":
        st.error(f"Training {p['name']} failed (exit code {p.get('returncode')}); no model was changed. "
                 f"Its log: {p.get('log')}")


st.title("Retrain on your own photos")
st.write("A dataset is a folder with one sub-folder per class (or an APTOS, G1020 or ODIR-5K download). "
         "Training runs on this computer, in the background, and can take an hour or more.")
roots_ui()
folder = st.text_input("Dataset folder", key="retrain_folder")
if folder:
    try:
        path = confine(folder)
        info = audit_of(str(path))
        cols = st.columns(4)
        cols[0].metric("photos", info["photos"])
        cols[1].metric("patients", info["patients"])
        cols[2].metric("near-duplicate groups", info["near_duplicate_groups"])
        cols[3].metric("label conflicts", info["conflicting_groups"])
        with st.expander("The audit"):
            st.text(info["summary"])
        task = st.radio("What the new model answers", list(TASKS), key="retrain_task")
        name = st.text_input("Name of the new model", key="retrain_name")
        running = job().running()
        if st.button("Start training", disabled=running or not name, type="primary"):
            job().start(path, name, st.session_state.get("retrain_args", QUICK) + TASKS[task])
            st.rerun()
    except RetrainRefused as exc:
        st.error(str(exc))
progress_ui()
st.caption(f"Models installed: {len(available_models())}. " + DISCLAIMER)
