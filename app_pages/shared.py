"""What the pages share: the model, loaded once per process in the background."""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import streamlit as st

from clarityx.errors import ModelNotInstalled
from clarityx.inference import Classifier, default_model_path

DISCLAIMER = ("ClarityX is a screening aid, not a diagnosis. It cannot rule eye disease out. "
              "See an eye doctor for any concern about your eyes or vision, and go to an emergency "
              "service at once for sudden loss of vision, a curtain over your sight, new flashes or "
              "floaters, or a painful red eye.")


@st.cache_resource(show_spinner=False)
def _loader() -> Future:
    # One thread, one load per process; every session shares the Classifier (read-only).
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-loader").submit(
        Classifier, default_model_path())


def start_model_loading() -> None:
    _loader()


def get_classifier() -> Classifier | None:
    """Wait for the model (if still loading); None when no model is installed."""
    future = _loader()
    if not future.done():
        with st.spinner("Loading the model (first time after start: a few seconds)…"):
            future.result()
    try:
        return future.result()
    except ModelNotInstalled as exc:
        st.error(str(exc))
        return None
