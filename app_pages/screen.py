"""Screen a visit: a right-eye and a left-eye photo (either may be missing), side by side, each through
gate → ranked probabilities → Grad-CAM → guidance; then save the visit to the local history or
download a report for the eye doctor."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone

import plotly.graph_objects as go
import streamlit as st

from app_pages.guidance import (GRADES_IN_WORDS, HAZY, guidance, headline, label, referable_dr_note,
                                weak_spot_notes)
from app_pages.shared import CHART_CONFIG, DISCLAIMER, PHOTO_TYPES, chosen_model, get_classifier
from clarityx.screening.card import ModelCard, card_path
from clarityx.screening.heatmap import overlay
from clarityx.screening.ood import ood_off_warning
from clarityx.screening.history import EyeRecord, History, HistoryUnavailable, Visit, new_uid, thumbnail_png
from clarityx.screening.report import (REPORT_IMAGE_SIDE, EyeReport, VisitReport, data_uri,
                                       report_file_name, report_html, report_jpeg, report_pdf)
from clarityx.screening.pipeline import Result, analyse
from clarityx.screening.tested import untested_note


def bar_chart(names: list[str], values: list[float], colours: list[str]) -> go.Figure:
    """Horizontal bars, highest on top, each with its percentage written level beside it (0% too),
    on an axis that always runs to 100%."""
    fig = go.Figure(go.Bar(x=values[::-1], y=names[::-1], orientation="h", text=[f"{v:.0%}" for v in values[::-1]],
                           textposition="outside", textangle=0, cliponaxis=False, marker_color=colours[::-1]))
    fig.update_layout(xaxis=dict(range=[0, 1.12], tickvals=[0, 0.25, 0.5, 0.75, 1], tickformat=".0%"),
                      height=50 + 36 * len(values), margin=dict(l=10, r=10, t=10, b=10))
    return fig


def probability_chart(ranked: list[tuple[str, float]]) -> go.Figure:
    """How much the photo resembles each class, the top answer highlighted."""
    return bar_chart([label(c) for c, _ in ranked], [p for _, p in ranked],
                     ["#d9480f"] + ["#9aa5b1"] * (len(ranked) - 1))


SIDES = ("Right", "Left")


@dataclass
class Screened:
    """One eye's photo as this session keeps it: its digest (which keys the heat-map widgets, so a new
    photo resets them), its file name, and the result."""
    digest: str
    name: str
    result: Result


def analysed(side: str, photo) -> Screened | None:
    """Analyse once per distinct photo and eye; the result is kept in this session's state only."""
    data = photo.getvalue()
    key = hashlib.sha256(data).hexdigest()
    cache = st.session_state.setdefault("results", {})
    if side not in cache or cache[side].digest != key:
        classifier = get_classifier()
        if classifier is None:
            return None
        with st.spinner(f"Reading the {side.lower()}-eye photo…"):
            try:
                result = analyse(classifier, data)
            except Exception as exc:  # a person sees a message, never a traceback
                result = Result("error", f"Something went wrong while reading this photo ({exc}). "
                                         "Try another copy of it, saved as JPEG or PNG.")
        cache[side] = Screened(key, getattr(photo, "name", "") or "", result)
        st.session_state["visit_time"] = datetime.now(timezone.utc)
    return cache[side]


def image_uri(rgb, side: int) -> str:
    """An image sent inside the page (a data URI), not through Streamlit's media files: nothing for the
    browser to fetch later, so a heat map redrawn by its fragment never leaves a broken link behind."""
    return data_uri(report_jpeg(rgb, side))


def show_refusal(screened: Screened) -> None:
    """A refused photo (perhaps not an eye at all: a stranger's face) is named with its reason, not shown."""
    result = screened.result
    named = f" ({screened.name})" if screened.name else ""
    st.error(f"**This photo{named} cannot be graded.** {result.message}")
    st.caption("No disease probabilities are shown for a photo that cannot be graded, and a refused photo is "
               "neither shown again, put in the report nor kept in your history: only its name and the reason.")


def referable_note(result: Result, card: ModelCard) -> str | None:
    """The referable-DR flag for this photo (None when not raised), as the page and the report say it."""
    rd = card.metrics.get("test", {}).get("referable_dr", {})
    return referable_dr_note(dict(result.ranked), card.dr_threshold, rd.get("sensitivity"), rd.get("specificity"),
                             result.referable_score)


def advice(result: Result, card: ModelCard) -> tuple[str, str, str]:
    """What the top answer means and what to do, in agreement with the referable-DR flag."""
    top, p_top = result.ranked[0]
    return guidance(top, p_top, card.classes, flagged=referable_note(result, card) is not None,
                    settings=card.gate_settings)


def show_result(screened: Screened, side: str) -> None:
    result, card = screened.result, get_classifier().card
    meaning, action, urgency = advice(result, card)
    caveat = untested_note(card.metrics)
    st.subheader(f"{side} eye: {headline(result.ranked)}" + (" — untested model" if caveat else ""))
    if caveat:
        st.warning(caveat)
    st.plotly_chart(probability_chart(result.ranked), width="stretch", key=f"chart_{side}", config=CHART_CONFIG)
    if result.grades is not None:
        st.caption(f"Estimated diabetic-retinopathy grade: **{result.grade}** ({GRADES_IN_WORDS[result.grade]}; "
                   f"the model gives this grade {max(result.grades):.0%}). Grades: 0 none, 1 mild, 2 moderate, "
                   "3 severe, 4 proliferative; 2 or worse is what a screening programme refers.")
    if result.hazy:
        st.warning(HAZY)
    box = {"routine": st.info, "urgent": st.error}.get(urgency, st.warning)
    box(f"{meaning}\n\n**What to do:** {action}")
    note = referable_note(result, card)
    if note:
        st.warning(note)
    heat_map_ui(screened, side)


@st.fragment
def heat_map_ui(screened: Screened, side: str) -> None:
    """The heat-map controls rerun only this fragment: the model is not run again. Their keys carry
    the photo's digest, so a new photo starts them afresh at its own top answer."""
    classifier = get_classifier()
    result, key = screened.result, f"{side.lower()}_{screened.digest[:16]}"
    chosen = st.selectbox("Show where the model looked for", [c for c, _ in result.ranked],
                          format_func=label, key=f"cam_class_{key}")
    alpha = st.slider("Heat-map opacity", 0.0, 1.0, 0.4, 0.05, key=f"cam_alpha_{key}")
    cam = result.prediction.cams[classifier.classes.index(chosen)]
    a, b = st.columns(2)
    a.image(image_uri(result.pixels, REPORT_IMAGE_SIDE), caption="Photo (as the model sees it)", width="stretch")
    b.image(image_uri(overlay(result.pixels, cam, alpha), REPORT_IMAGE_SIDE), caption=f"Grad-CAM: {label(chosen)}",
            width="stretch")
    st.caption("Red areas influenced the answer most. A heat map shows where the model looked, "
               "not where disease is.")


def photo_input(side: str):
    """An upload, or (only when the person turns it on) the camera."""
    key = side.lower()
    visit = st.session_state.get("visit_number", 0)
    suffix = f"_{visit}" if visit else ""  # a new visit: new, empty photo boxes
    if st.toggle("Use the camera", key=f"camera_on_{key}"):
        return st.camera_input(f"Take a {key}-eye fundus photo", key=f"camera_{key}{suffix}")
    return st.file_uploader(f"{side}-eye fundus photo", type=PHOTO_TYPES, key=f"upload_{key}{suffix}")


def visit_report(screened: dict[str, Screened], card: ModelCard, taken_at: datetime, version: str,
                 ood_off: str | None = None) -> VisitReport:
    """The visit as the report shows it: what the page shows, the referable-DR flag and the model's weak
    spots included; its caveat says when the model is untested and when its out-of-distribution check is off
    (``ood_off``: the model's). Made only when a download is asked for, so it uses no Streamlit state."""
    eyes = []
    for side, s in screened.items():
        r = s.result
        if r.status == "ok":
            meaning, action, _ = advice(r, card)
            heat = overlay(r.pixels, r.prediction.cams[card.classes.index(r.top)], 0.4)
            grade = (f" Estimated diabetic-retinopathy grade: {r.grade} ({GRADES_IN_WORDS[r.grade]})."
                     if r.grades is not None else "")
            haze = f" {HAZY}" if r.hazy else ""
            eyes.append(EyeReport(side, r.status, None, [(label(c), p) for c, p in r.ranked],
                                  report_jpeg(r.rgb), report_jpeg(r.pixels), report_jpeg(heat), label(r.top),
                                  f"{meaning} What to do: {action}{grade}{haze}", referable_note(r, card) or "",
                                  s.name))
        else:
            # A refused photo (perhaps not an eye at all: a stranger's face) is named with its reason, not shown.
            eyes.append(EyeReport(side, r.status, r.message, file_name=s.name))
    graded = any(s.result.status == "ok" for s in screened.values())
    caveat = untested_note(card.metrics)
    # An untested model's "weak spots" were measured on a handful of photos: its caveat says it all.
    notes = weak_spot_notes(card.metrics, card.gate_settings.weak_recall) if graded and not caveat else []
    return VisitReport(taken_at, card.name, version, eyes, notes,
                       caveat=" ".join(filter(None, (caveat, ood_off_warning(ood_off)))))


def visit_key(screened: dict[str, Screened], taken_at: datetime) -> str:
    """What makes a visit this visit: its time, its photos and the model. Saved once."""
    return f"{taken_at.isoformat()}|{chosen_model()}|" + "|".join(f"{k}:{s.digest}" for k, s in screened.items())


def eyes_in_words(screened: dict[str, Screened]) -> str:
    sides = [side.lower() for side in screened]
    return " and ".join(sides) + (" eyes" if len(sides) > 1 else " eye")


def start_new_visit() -> None:
    """The "Start a new visit" button (a callback: it runs before the page is drawn): empty photo boxes,
    no results, and the next save makes a new visit."""
    for key in ("results", "visit_time", "saved_visit", "saved_visit_uid"):
        st.session_state.pop(key, None)
    st.session_state["visit_number"] = st.session_state.get("visit_number", 0) + 1
    st.session_state["visit_said"] = "A new visit has started. Your saved visits are on the History page."


def save_or_update(history: History, saved_uid: str | None, visit: Visit, eyes: str) -> str:
    """Save the visit, or update the one this session saved (by its uid); keep its uid in the session and
    return what to say. A saved visit deleted meanwhile (on the History page) is saved as a new visit, and
    the page says so."""
    if saved_uid is None:
        visit.uid = new_uid()
        history.save(visit)
        st.session_state["saved_visit_uid"] = visit.uid
        return f"Saved this visit ({eyes}) to your history."
    saved = history.update(saved_uid, visit)
    st.session_state["saved_visit_uid"] = saved.uid
    if not saved.updated:
        return (f"Your saved visit had been deleted from your history, so this visit ({eyes}) was saved "
                "as a new visit.")
    return f"Updated your saved visit: it now holds the {eyes}. No second visit was made."


def save_ui(screened: dict[str, Screened], card: ModelCard, taken_at: datetime, version: str, column) -> None:
    """Save the visit. A visit is one visit: once saved, saving again (after adding the other eye or
    changing a photo) updates the same saved visit; "Start a new visit" begins another."""
    key = visit_key(screened, taken_at)
    # The saved visit's uid (never another visit's, unlike an id a deleted visit leaves behind).
    saved_uid = st.session_state.get("saved_visit_uid")
    if st.session_state.get("saved_visit") == key:
        column.button("Saved to your history ✓", disabled=True, key="save_visit_done")
        column.caption("Saved on this computer. See it on the History page. Adding or changing a photo "
                       "updates this saved visit.")
    else:
        label = "Update the saved visit" if saved_uid is not None else "Save this visit to my history"
        if saved_uid is not None:
            column.caption("This visit is saved already; saving again updates it (it does not make a second visit).")
        if column.button(label, type="primary", key="save_visit"):
            visit = Visit(taken_at, card.name, version, [
                EyeRecord(side.lower(), s.result.status, s.result.message,
                          dict(s.result.ranked) if s.result.status == "ok" else None,
                          thumbnail_png(s.result.rgb) if s.result.status == "ok" and s.result.rgb is not None
                          else None)  # a refused photo is kept as its reason only
                for side, s in screened.items()])
            try:
                said = save_or_update(History(), saved_uid, visit, eyes_in_words(screened))
                st.session_state["saved_visit"] = key
                st.session_state["visit_said"] = said
                st.rerun()
            except HistoryUnavailable as exc:
                st.error(str(exc))
    if saved_uid is not None:
        column.button("Start a new visit", key="new_visit", on_click=start_new_visit)


def visit_ui(screened: dict[str, Screened]) -> None:
    """The model's weak spots (once per visit); save the visit, or download the report for the doctor."""
    classifier = get_classifier()
    card = classifier.card
    version = str(card.training.get("finished", "unknown"))
    now = st.session_state.get("visit_time") or datetime.now(timezone.utc)

    def report() -> VisitReport:
        return visit_report(screened, card, now, version, classifier.ood_off)

    if any(s.result.status == "ok" for s in screened.values()) and not untested_note(card.metrics):
        for note in weak_spot_notes(card.metrics, card.gate_settings.weak_recall):
            st.caption(f"⚠️ {note}")
    st.divider()
    st.subheader("This visit")
    left, middle, right = st.columns(3)
    save_ui(screened, card, now, version, left)
    middle.download_button("Report for your eye doctor (PDF)", lambda: report_pdf(report()),
                           file_name=report_file_name(now, "pdf"), mime="application/pdf")
    right.download_button("Printable page (HTML)", lambda: report_html(report()),
                          file_name=report_file_name(now, "html"), mime="text/html")
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
    fig = bar_chart([label(c) for c in per_class], [m["recall"] for m in per_class.values()],
                    ["#9aa5b1"] * len(per_class))
    st.markdown("##### Before you start: how often this model recognised each finding in testing")
    st.plotly_chart(fig, width="stretch", key="expectations", config=CHART_CONFIG)
    st.caption("Out of held-out photos that showed it. A low bar means it often misses that condition.")


st.title("ClarityX — screen your eyes")
st.write("Give a photo of the back of each eye (a **fundus photograph**), or just one. Everything runs "
         "on this computer; no photo is sent anywhere or saved unless you choose to.")
if "visit_said" in st.session_state:  # what the last save (or "Start a new visit") did
    st.success(st.session_state.pop("visit_said"))
screened: dict[str, Screened] = {}
for side, column in zip(SIDES, st.columns(2, gap="large")):
    with column:
        st.markdown(f"#### {side} eye")
        photo = photo_input(side)
        if photo is None:
            st.caption(f"No {side.lower()}-eye photo yet.")
            continue
        eye = analysed(side, photo)
        if eye is None:
            continue
        screened[side] = eye
        if eye.result.status == "ok":
            show_result(eye, side)
        else:
            show_refusal(eye)
if screened:
    visit_ui(screened)
else:
    expectations_ui()
st.caption(DISCLAIMER)
