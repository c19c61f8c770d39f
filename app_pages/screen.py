"""Screen a visit: a right-eye and a left-eye photo (either may be missing), side by side, each through
gate → ranked probabilities → Grad-CAM → guidance; then save the visit to the local history or
download a report for the eye doctor."""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import plotly.graph_objects as go
import streamlit as st

from app_pages.guidance import guidance, headline, label, referable_dr_note, weak_classes
from app_pages.shared import DISCLAIMER, PHOTO_TYPES, chosen_model, get_classifier
from clarityx.screening.card import ModelCard, card_path
from clarityx.screening.heatmap import overlay
from clarityx.screening.history import EyeRecord, History, HistoryUnavailable, Visit, thumbnail_png
from clarityx.screening.report import EyeReport, VisitReport, report_html, report_pdf
from clarityx.screening.pipeline import Result, analyse


def probability_chart(ranked: list[tuple[str, float]]) -> go.Figure:
    names = [label(c) for c, _ in ranked][::-1]  # plotly draws bottom-up: highest on top
    values = [p for _, p in ranked][::-1]
    fig = go.Figure(go.Bar(x=values, y=names, orientation="h", text=[f"{v:.0%}" for v in values],
                           textposition="auto", marker_color=["#9aa5b1"] * (len(values) - 1) + ["#d9480f"]))
    fig.update_layout(xaxis=dict(range=[0, 1], tickformat=".0%", title="probability"),
                      height=60 + 45 * len(values), margin=dict(l=10, r=10, t=10, b=10))
    return fig


SIDES = ("Right", "Left")


def analysed(side: str, data: bytes) -> Result | None:
    """Analyse once per distinct photo and eye; the result is kept in this session's state only."""
    key = hashlib.sha256(data).hexdigest()
    cache = st.session_state.setdefault("results", {})
    if cache.get(side, (None,))[0] != key:
        classifier = get_classifier()
        if classifier is None:
            return None
        with st.spinner(f"Reading the {side.lower()}-eye photo…"):
            try:
                result = analyse(classifier, data)
            except Exception as exc:  # a person sees a message, never a traceback
                result = Result("error", f"Something went wrong while reading this photo ({exc}). "
                                         "Try another copy of it, saved as JPEG or PNG.")
        cache[side] = (key, result)
        st.session_state["visit_time"] = datetime.now(timezone.utc)
    return cache[side][1]


def show_refusal(result: Result) -> None:
    st.error(f"**This photo cannot be graded.** {result.message}")
    st.caption("No disease probabilities are shown for a photo that cannot be graded.")
    if result.rgb is not None:
        st.image(result.rgb, caption="The photo you gave", width=240)


def advice(result: Result) -> tuple[str, str, str]:
    top, p_top = result.ranked[0]
    return guidance(top, p_top)


def show_result(result: Result, side: str) -> None:
    classifier = get_classifier()
    meaning, action, urgency = advice(result)
    st.subheader(f"{side} eye: {headline(result.ranked)}")
    st.plotly_chart(probability_chart(result.ranked), width="stretch", key=f"chart_{side}")
    box = {"routine": st.info, "urgent": st.error}.get(urgency, st.warning)
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
    heat_map_ui(result, side)


@st.fragment
def heat_map_ui(result: Result, side: str) -> None:
    """The heat-map controls rerun only this fragment: the model is not run again."""
    classifier = get_classifier()
    key = side.lower()
    chosen = st.selectbox("Show where the model looked for", [c for c, _ in result.ranked],
                          format_func=label, key=f"cam_class_{key}")
    alpha = st.slider("Heat-map opacity", 0.0, 1.0, 0.4, 0.05, key=f"cam_alpha_{key}")
    cam = result.prediction.cams[classifier.classes.index(chosen)]
    a, b = st.columns(2)
    a.image(result.pixels, caption="Photo (as the model sees it)", width="stretch")
    b.image(overlay(result.pixels, cam, alpha), caption=f"Grad-CAM: {label(chosen)}", width="stretch")
    st.caption("Red areas influenced the answer most. A heat map shows where the model looked, "
               "not where disease is.")


def photo_input(side: str):
    """An upload, or (only when the person turns it on) the camera."""
    key = side.lower()
    if st.toggle("Use the camera", key=f"camera_on_{key}"):
        return st.camera_input(f"Take a {key}-eye fundus photo", key=f"camera_{key}")
    return st.file_uploader(f"{side}-eye fundus photo", type=PHOTO_TYPES, key=f"upload_{key}")


def visit_report(results: dict[str, Result], classifier, taken_at: datetime, version: str) -> VisitReport:
    """The visit as the report shows it. Made only when a download is asked for, so it uses no
    Streamlit state: everything it needs is passed in."""
    eyes = []
    for side, r in results.items():
        ok = r.status == "ok"
        heat, text = None, ""
        if ok:
            heat = thumbnail_png(overlay(r.pixels, r.prediction.cams[classifier.classes.index(r.top)], 0.4), None)
            meaning, action, _ = advice(r)
            text = f"{meaning} What to do: {action}"
        photo = r.pixels if ok else r.rgb
        eyes.append(EyeReport(side, r.status, r.message, [(label(c), p) for c, p in r.ranked] if ok else [],
                              thumbnail_png(photo, None) if photo is not None else None, heat, text))
    return VisitReport(taken_at, classifier.card.name, version, eyes)


def visit_ui(results: dict[str, Result]) -> None:
    """Save the visit to the history, or download the report for the doctor."""
    classifier = get_classifier()
    card = classifier.card
    version = str(card.training.get("finished", "unknown"))
    now = st.session_state.get("visit_time") or datetime.now(timezone.utc)

    def report() -> VisitReport:
        return visit_report(results, classifier, now, version)

    st.divider()
    st.subheader("This visit")
    left, middle, right = st.columns(3)
    if left.button("Save this visit to my history", type="primary"):
        try:
            History().save(Visit(now, card.name, version, [
                EyeRecord(side.lower(), r.status, r.message,
                          {c: p for c, p in r.ranked} if r.status == "ok" else None,
                          thumbnail_png(r.rgb) if r.rgb is not None else None)
                for side, r in results.items()]))
            st.success("Saved on this computer. See it on the History page.")
        except HistoryUnavailable as exc:
            st.error(str(exc))
    middle.download_button("Report for your eye doctor (PDF)", lambda: report_pdf(report()),
                           file_name=f"clarityx-report-{now:%Y-%m-%d}.pdf", mime="application/pdf")
    right.download_button("Printable page (HTML)", lambda: report_html(report()),
                          file_name=f"clarityx-report-{now:%Y-%m-%d}.html", mime="text/html")
    st.caption("Nothing is saved unless you press Save. The report is made in memory for your download.")


def expectations_ui() -> None:
    """Before any photo: how often the chosen model recognised each condition in testing, so a result
    is read for what it is worth. (Drawing it also loads the charting code before the first result.)"""
    try:
        card = ModelCard.load(card_path(chosen_model()))
    except (OSError, ValueError, TypeError):
        return  # no model, or a damaged card: the message comes with the first photo
    per_class = card.metrics.get("test", {}).get("per_class", {})
    if not per_class:
        return
    names = [label(c) for c in per_class][::-1]
    recalls = [m["recall"] for m in per_class.values()][::-1]
    fig = go.Figure(go.Bar(x=recalls, y=names, orientation="h", text=[f"{r:.0%}" for r in recalls],
                           textposition="auto", marker_color="#9aa5b1"))
    fig.update_layout(xaxis=dict(range=[0, 1], tickformat=".0%"), height=40 + 32 * len(names),
                      margin=dict(l=10, r=10, t=10, b=10))
    st.markdown("##### Before you start: how often this model recognised each finding in testing")
    st.plotly_chart(fig, width="stretch", key="expectations")
    st.caption("Out of held-out photos that showed it. A low bar means it often misses that condition.")


st.title("ClarityX — screen your eyes")
st.write("Give a photo of the back of each eye (a **fundus photograph**), or just one. Everything runs "
         "on this computer; no photo is sent anywhere or saved unless you choose to.")
results: dict[str, Result] = {}
for side, column in zip(SIDES, st.columns(2, gap="large")):
    with column:
        st.markdown(f"#### {side} eye")
        photo = photo_input(side)
        if photo is None:
            st.caption(f"No {side.lower()}-eye photo yet.")
            continue
        result = analysed(side, photo.getvalue())
        if result is None:
            continue
        results[side] = result
        if result.status == "ok":
            show_result(result, side)
        else:
            show_refusal(result)
if results:
    visit_ui(results)
else:
    expectations_ui()
st.caption(DISCLAIMER)
