"""Screen a photo: upload or capture → gate → ranked probabilities → Grad-CAM → guidance."""
from __future__ import annotations

import hashlib

import plotly.graph_objects as go
import streamlit as st

from app_pages.guidance import guidance, referable_dr_note, weak_classes
from app_pages.shared import DISCLAIMER, get_classifier
from clarityx.screening.heatmap import overlay
from clarityx.screening.pipeline import Result, analyse

LABELS = {"normal": "Normal", "cataract": "Cataract", "diabetic_retinopathy": "Diabetic retinopathy",
          "glaucoma": "Glaucoma", "age_related_macular_degeneration": "Age-related macular degeneration",
          "pathological_myopia": "Pathological myopia"}


def label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " ").capitalize())


def probability_chart(ranked: list[tuple[str, float]]) -> go.Figure:
    names = [label(c) for c, _ in ranked][::-1]  # plotly draws bottom-up: highest on top
    values = [p for _, p in ranked][::-1]
    fig = go.Figure(go.Bar(x=values, y=names, orientation="h", text=[f"{v:.0%}" for v in values],
                           textposition="auto", marker_color=["#9aa5b1"] * (len(values) - 1) + ["#d9480f"]))
    fig.update_layout(xaxis=dict(range=[0, 1], tickformat=".0%", title="probability"),
                      height=60 + 45 * len(values), margin=dict(l=10, r=10, t=10, b=10))
    return fig


def analysed(data: bytes) -> Result | None:
    """Analyse once per distinct photo; the result is kept in this session's state."""
    key = hashlib.sha256(data).hexdigest()
    cache = st.session_state.setdefault("results", {})
    if key not in cache:
        classifier = get_classifier()
        if classifier is None:
            return None
        with st.spinner("Reading the photo…"):
            cache.clear()  # keep one photo per session in memory
            try:
                cache[key] = analyse(classifier, data)
            except Exception as exc:  # a person sees a message, never a traceback
                cache[key] = Result("error", f"Something went wrong while reading this photo ({exc}). "
                                             "Try another copy of it, saved as JPEG or PNG.")
    return cache[key]


def show_refusal(result: Result) -> None:
    st.error(f"**This photo cannot be graded.** {result.message}")
    st.caption("No disease probabilities are shown for a photo that cannot be graded.")
    if result.rgb is not None:
        st.image(result.rgb, caption="The photo you gave", width=320)


def show_result(result: Result, eye: str) -> None:
    classifier = get_classifier()
    top, p_top = result.ranked[0]
    meaning, action, urgency = guidance(top, p_top)
    st.subheader(f"{eye} eye: most like **{label(top)}** ({p_top:.0%})")
    left, right = st.columns([1, 1])
    with left:
        st.plotly_chart(probability_chart(result.ranked), width="stretch")
        box = st.warning if urgency != "routine" else st.info
        box(f"{meaning}\n\n**What to do:** {action}")
        test = classifier.card.metrics.get("test", {})
        rd = test.get("referable_dr", {})
        note = referable_dr_note(dict(result.ranked), classifier.card.dr_threshold,
                                 rd.get("sensitivity"), rd.get("specificity"))
        if note:
            st.warning(note)
        for name, recall in weak_classes(classifier.card.metrics):
            st.caption(f"⚠️ In testing, this model recognised only {recall:.0%} of photos with "
                       f"{label(name).lower()}: a low score for it does not rule it out.")
    with right:
        chosen = st.selectbox("Show where the model looked for", [c for c, _ in result.ranked],
                              format_func=label, key="cam_class")
        alpha = st.slider("Heat-map opacity", 0.0, 1.0, 0.4, 0.05, key="cam_alpha")
        cam = result.prediction.cams[classifier.classes.index(chosen)]
        a, b = st.columns(2)
        a.image(result.pixels, caption="Photo (as the model sees it)", width="stretch")
        b.image(overlay(result.pixels, cam, alpha), caption=f"Grad-CAM: {label(chosen)}",
                width="stretch")
        st.caption("Red areas influenced the answer most. A heat map shows where the model looked, "
                   "not where disease is.")
    st.caption(DISCLAIMER)


st.title("ClarityX — screen a fundus photo")
st.write("Upload a photo of the back of the eye (a **fundus photograph**) or take one with a fundus "
         "adapter. Everything runs on this computer; the photo is not sent anywhere.")
eye = st.radio("Which eye is this?", ["Right", "Left"], horizontal=True)
tab_upload, tab_camera = st.tabs(["Upload a photo", "Use the camera"])
with tab_upload:
    upload = st.file_uploader("Fundus photo", type=["jpg", "jpeg", "png", "tif", "tiff", "bmp", "webp"])
with tab_camera:
    shot = st.camera_input("Take a fundus photo") if st.toggle("Turn the camera on") else None

photo = upload or shot
if photo is None:
    st.info("No photo yet. " + DISCLAIMER)
else:
    result = analysed(photo.getvalue())
    if result is not None:
        if result.status == "ok":
            show_result(result, eye)
        else:
            show_refusal(result)
