"""What the pages share: the model, loaded once per process in the background."""
from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor

import streamlit as st

from clarityx.errors import ModelNotInstalled
from clarityx.inference import Classifier, default_model_path

DISCLAIMER = ("ClarityX is a screening aid, not a diagnosis. It cannot rule eye disease out. "
              "See an eye doctor for any concern about your eyes or vision, and go to an emergency "
              "service at once for sudden loss of vision, a curtain over your sight, new flashes or "
              "floaters, or a painful red eye.")


# Importing TensorFlow holds Python's GIL for seconds (loading its native libraries); a short
# pause first lets Streamlit send the first page to the browser, so it is interactive at once.
LOAD_DELAY_S = 0.5


def _load() -> Classifier:
    time.sleep(LOAD_DELAY_S)
    return Classifier(default_model_path())


@st.cache_resource(show_spinner=False)
def _loader() -> Future:
    # One thread, one load per process; every session shares the Classifier (read-only).
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-loader").submit(_load)


def start_model_loading() -> None:
    _loader()


def get_classifier() -> Classifier | None:
    """Wait for the model (if still loading); None when no model is installed."""
    future = _loader()
    try:
        if future.done():
            return future.result()
        with st.spinner("Loading the model (first time after start: a few seconds)…"):
            return future.result()
    except ModelNotInstalled as exc:
        st.error(str(exc))
        return None
