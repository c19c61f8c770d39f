"""What the pages share: the model, loaded once per process in the background."""
from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import streamlit as st

from clarityx.loader import load_classifier
from clarityx.screening.catalogue import available_models, remember_model, remembered_model
from clarityx.screening import settings
from clarityx.screening.engine import MODEL_ENV, CardedModel, default_model_path
from clarityx.screening.errors import ClarityXError
from clarityx.screening.gate import check_image
from clarityx.screening.imageio import IMAGE_SUFFIXES

DISCLAIMER = ("ClarityX is a screening aid, not a diagnosis. It cannot rule eye disease out. "
              "See an eye doctor for any concern about your eyes or vision, and go to an emergency "
              "service at once for sudden loss of vision, a curtain over your sight, new flashes or "
              "floaters, or a painful red eye.")

# Every chart is drawn without Plotly's toolbar: on hover it covered the top bar's percentage, and a person
# screening their eyes has no use for zoom, pan or lasso.
CHART_CONFIG = {"displayModeBar": False}

PHOTO_TYPES = sorted(s.lstrip(".") for s in IMAGE_SUFFIXES)  # what the uploaders accept: what imageio reads


# Loading a model's native libraries holds Python's GIL for a moment (seconds when it falls back
# to TensorFlow); a short pause first lets Streamlit send the first page to the browser.
LOAD_DELAY_S = 0.2


def _load(path: str) -> CardedModel:
    time.sleep(LOAD_DELAY_S)
    model = load_classifier(path)
    # Exercise the photo path once (gate, camera normalisation: OpenCV's first calls are slow), so the
    # first person's photo does not pay for it.
    rgb = np.random.default_rng(0).integers(0, 255, (512, 512, 3), dtype=np.uint8)
    check_image(rgb)
    model.prepare(rgb)
    return model


@st.cache_resource(show_spinner=False)
def _loader(path: str) -> Future:
    # One thread, one load per model per process; every session shares the model (read-only).
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-loader").submit(_load, path)


def chosen_model() -> str:
    """The model this session uses: the one picked in the sidebar, else ``$CLARITYX_MODEL`` (an
    explicit choice for this run), else the one remembered from last time, else the bundled one."""
    if "model_path" not in st.session_state:
        remembered = None if settings.env(MODEL_ENV) else remembered_model()
        known = {str(m.path) for m in available_models()}
        st.session_state["model_path"] = remembered if remembered in known else str(default_model_path())
    return st.session_state["model_path"]


def short_label(model) -> str:
    """A model as the sidebar's narrow picker shows it: its name and the day it was trained (and, for a
    model tested on too few photos, that it is untested)."""
    return f"{model.name} ({model.trained[:10]})" + (" — untested" if model.untested else "")


def untested_sidebar_note() -> None:
    """The sidebar says when the model in use is untested (its test set too small to measure it), and when its
    out-of-distribution check is off (its statistics file missing): photos unlike its training set get an answer."""
    from clarityx.screening.card import ModelCard, card_path
    from clarityx.screening.ood import model_ood_off, ood_off_warning
    from clarityx.screening.tested import untested_note

    path = chosen_model()
    try:
        card = ModelCard.load(card_path(path))
    except (OSError, ValueError, TypeError):
        return  # no model, or a damaged card: the page says so when it loads the model
    for note in (untested_note(card.metrics), ood_off_warning(model_ood_off(path, card))):
        if note:
            st.sidebar.warning(note)


def model_picker() -> None:
    """Sidebar: every installed model with its card; the choice is remembered for next time."""
    models = available_models()
    if len(models) < 2:
        untested_sidebar_note()
        return
    paths = [str(m.path) for m in models]
    current = chosen_model()
    entry = {str(m.path): m for m in models}
    choice = st.sidebar.selectbox("Model", paths, index=paths.index(current) if current in paths else 0,
                                  format_func=lambda p: short_label(entry[p]), key="model_picker")
    st.sidebar.caption(entry[choice].label)  # the whole name, which a narrow sidebar would cut
    if choice != current:
        st.session_state["model_path"] = choice
        st.session_state.pop("results", None)  # results of the other model are not this one's
        try:
            remember_model(Path(choice))
        except OSError:
            pass  # not remembered, still used in this session
    untested_sidebar_note()


def start_model_loading() -> None:
    _loader(chosen_model())


def get_classifier() -> CardedModel | None:
    """Wait for the model (if still loading); None when no model could be loaded. A failed load is
    not cached: the next page run tries again (say, after the model file was put in place)."""
    future = _loader(chosen_model())
    try:
        if future.done():
            return future.result()
        with st.spinner("Loading the model…"):
            return future.result()
    except ClarityXError as exc:  # no model, a damaged one, or one that does not match its card
        st.error(str(exc))
    except Exception as exc:  # anything else a model file can throw
        st.error(f"The model could not be loaded ({type(exc).__name__}: {exc}). Reinstall it from a "
                 "fresh clone of the repository, or point CLARITYX_MODEL at another model.")
    _loader.clear()
    return None
