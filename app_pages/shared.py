"""What the pages share: the model, loaded once per process in the background."""
from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor

import streamlit as st

from clarityx.loader import load_classifier
from clarityx.screening.engine import CardedModel
from clarityx.screening.errors import ClarityXError

DISCLAIMER = ("ClarityX is a screening aid, not a diagnosis. It cannot rule eye disease out. "
              "See an eye doctor for any concern about your eyes or vision, and go to an emergency "
              "service at once for sudden loss of vision, a curtain over your sight, new flashes or "
              "floaters, or a painful red eye.")


# Loading a model's native libraries holds Python's GIL for a moment (seconds when it falls back
# to TensorFlow); a short pause first lets Streamlit send the first page to the browser.
LOAD_DELAY_S = 0.2


def _load() -> CardedModel:
    time.sleep(LOAD_DELAY_S)
    return load_classifier()


@st.cache_resource(show_spinner=False)
def _loader() -> Future:
    # One thread, one load per process; every session shares the Classifier (read-only).
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-loader").submit(_load)


def start_model_loading() -> None:
    _loader()


def get_classifier() -> CardedModel | None:
    """Wait for the model (if still loading); None when no model could be loaded. A failed load is
    not cached: the next page run tries again (say, after the model file was put in place)."""
    future = _loader()
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
