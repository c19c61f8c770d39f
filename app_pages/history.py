"""History: the visits a person chose to save, on this computer — listed, plotted over time, deleted."""
from __future__ import annotations

from collections import Counter

import plotly.graph_objects as go
import streamlit as st
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from app_pages.guidance import label
from app_pages.shared import CHART_CONFIG, DISCLAIMER
from clarityx.screening.classes import BY_KEY, NORMAL
from clarityx.screening.history import History, HistoryUnavailable, Visit, exact_time, shown_time
from clarityx.screening.report import png_data_uri

WORTH_A_LINE = 0.25  # a condition is drawn by default once it reached this in a shown visit (or was on top)
SIDES = ("right", "left")


def conditions_of(visits: list[Visit]) -> list[str]:
    """Every class with a probability in these visits, in the order the models list them."""
    seen: dict[str, None] = {}
    for v in visits:
        for e in v.eyes:
            seen.update(dict.fromkeys(e.probabilities or {}))
    return list(seen)


def default_conditions(visits: list[Visit]) -> list[str]:
    """The few conditions that matter: each eye's top answer other than "normal", and any condition that
    reached :data:`WORTH_A_LINE` in a visit. None when every eye was normal with little else."""
    chosen: set[str] = set()
    for v in visits:
        for e in v.eyes:
            probs = e.probabilities or {}
            chosen.update(c for c, p in probs.items() if c != NORMAL and p >= WORTH_A_LINE)
            if probs and max(probs, key=probs.get) != NORMAL:
                chosen.add(max(probs, key=probs.get))
    return [c for c in conditions_of(visits) if c in chosen]


def graded(e) -> bool:
    """An eye with an answer (a refused photo keeps only its reason)."""
    return e.status == "ok" and bool(e.probabilities)


def model_of(v: Visit) -> str:
    return f"{v.model_name} ({v.model_version})"


def axis_labels(visits: list[Visit]) -> dict[int, str]:
    """Each visit's label on the trend's axis: its local date and time; with seconds when two visits share
    a minute (on a category axis they would otherwise fall on one point)."""
    labels = {id(v): shown_time(v.taken_at) for v in visits}
    if len(set(labels.values())) < len(visits):
        labels = {id(v): exact_time(v.taken_at) for v in visits}
    return labels


def colour_of(condition: str, visits: list[Visit]) -> str:
    """A condition's colour: fixed by its place in the table of classes, so it is the same in the Both, Right
    and Left views (a class no table knows takes its place among the visits' classes after them)."""
    known = list(BY_KEY)
    if condition in known:
        i = known.index(condition)
    else:
        others = [c for c in conditions_of(visits) if c not in known]
        i = len(known) + (others.index(condition) if condition in others else 0)
    return qualitative.D3[i % len(qualitative.D3)]


def trend_figure(visits: list[Visit], conditions: list[str]) -> go.Figure:
    """One panel per eye; in each, one line per condition and model version (a trend across two model
    versions is not a trend: a new model starts a new line). Visits are spaced evenly and labelled with
    their local date and time; a condition keeps its colour in both panels."""
    # Only graded eyes are plotted: a visit whose photos were all refused has no point on the trend, and a
    # refused eye gets no panel of its own.
    visits = [v for v in visits if any(graded(e) for e in v.eyes)]
    sides = [s for s in SIDES if any(e.side == s and graded(e) for v in visits for e in v.eyes)] or list(SIDES)
    fig = make_subplots(rows=1, cols=len(sides), shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=[f"{s.capitalize()} eye" for s in sides])
    colours = {c: colour_of(c, visits) for c in conditions}
    models = list(dict.fromkeys(model_of(v) for v in visits))
    dashes = ("solid", "dash", "dot", "dashdot")
    at = axis_labels(visits)
    order = [at[id(v)] for v in visits]
    for col, side in enumerate(sides, start=1):
        for c in conditions:
            for m, model in enumerate(models):
                points = [(at[id(v)], e.probabilities[c]) for v in visits if model_of(v) == model
                          for e in v.eyes if e.side == side and c in (e.probabilities or {})]
                if not points:
                    continue
                name = label(c) + (f" — {model}" if len(models) > 1 else "")
                fig.add_trace(go.Scatter(
                    x=[x for x, _ in points], y=[y for _, y in points], mode="lines+markers", name=name,
                    legendgroup=name,
                    line=dict(color=colours[c], dash=dashes[m % len(dashes)]), marker=dict(size=9),
                    hovertemplate="%{x}: %{y:.0%}<extra>" + name + "</extra>"), row=1, col=col)
    categories = list(dict.fromkeys(order))
    # Both panels show every visit on the same axis (a visit of one eye only leaves a gap in the other).
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=categories,
                     range=[-0.5, len(categories) - 0.5], tickangle=-30, automargin=True)
    fig.update_yaxes(range=[-0.04, 1.06], tickvals=[0, 0.25, 0.5, 0.75, 1], tickformat=".0%")
    fig.update_yaxes(title="probability", row=1, col=1)
    # The legend under the date labels, never over them (automargin makes room for both).
    rows_of_legend = 1 + len(fig.data) // 3
    fig.update_layout(height=400 + 24 * rows_of_legend, margin=dict(l=10, r=10, t=30, b=10 + 24 * rows_of_legend),
                      legend=dict(orientation="h", yref="container", y=0, yanchor="bottom"))
    # Each condition once in the legend, even when it is drawn in both panels.
    named: set[str] = set()
    for trace in fig.data:
        trace.showlegend = trace.name not in named
        named.add(trace.name)
    return fig


def rows(visits: list[Visit]) -> list[dict]:
    out = []
    for v in visits:
        for e in v.eyes:
            top = max(e.probabilities, key=e.probabilities.get) if e.probabilities else None
            out.append({
                "date": shown_time(v.taken_at), "eye": e.side,
                "photo": png_data_uri(e.thumbnail) if e.thumbnail and e.status == "ok" else None,
                "result": f"{label(top)} ({e.probabilities[top]:.0%})" if top else f"not graded: {e.message}",
                "model": model_of(v), "visit": v.id})
    return out


def eye_summary(e) -> str:
    """One eye of a saved visit in a few words: its side and top answer, or that it was not graded."""
    probs = e.probabilities or {}
    if e.status == "ok" and probs:
        top = max(probs, key=probs.get)
        return f"{e.side} eye: {label(top)} ({probs[top]:.0%})"
    return f"{e.side} eye: not graded"


def visit_name(v: Visit) -> str:
    """A visit as the delete picker names it: its local time to the second, each eye with its top answer,
    and the model."""
    if v.eyes and not any(graded(e) for e in v.eyes):
        # Not "right and left eye" as if both were screened: nothing was graded, only the reasons were kept.
        photos = " and ".join(f"{e.side}-eye" for e in v.eyes)
        which = "photo was" if len(v.eyes) == 1 else "photos were"
        eyes = f"no result: the {photos} {which} refused"
    else:
        eyes = "; ".join(eye_summary(e) for e in v.eyes) or "no eyes"
    return f"{exact_time(v.taken_at)} — {eyes} ({model_of(v)})"


def visit_names(visits: list[Visit]) -> dict[int, str]:
    """Every visit's name, each one distinct: two visits alike to the second also get their saved order."""
    names = {v.id: visit_name(v) for v in visits}
    counts = Counter(names.values())
    return {vid: name + (f" — saved visit no. {vid}" if counts[name] > 1 else "") for vid, name in names.items()}


def delete_ui(history: History, visits: list[Visit]) -> None:
    """Delete one visit (by its id), or everything; the next page run says what was deleted."""
    names = visit_names(visits)
    with st.expander("Delete"):
        chosen = st.selectbox("Visit", list(names), format_func=names.get, key="delete_visit")
        if st.button("Delete this visit") and chosen is not None:
            if history.delete(chosen):
                st.session_state["history_said"] = f"Deleted the visit of {names[chosen]}."
            else:
                st.session_state["history_said"] = f"The visit of {names[chosen]} was already deleted."
            st.session_state.pop("delete_visit", None)
            st.rerun()
        sure = st.checkbox("Yes, delete my whole history", key="delete_all_sure")
        if st.button("Delete everything", disabled=not sure):
            history.delete_all()
            st.session_state["history_said"] = "Deleted your whole history."
            st.rerun()


def trend_ui(visits: list[Visit]) -> None:
    """The trend chart, with the conditions that matter chosen by default."""
    every = conditions_of(visits)
    if not every:
        return
    default = default_conditions(visits) or every[:1]
    shown = st.multiselect("Conditions to plot", every, default=default, format_func=label, key="history_conditions")
    if shown:
        st.plotly_chart(trend_figure(visits, shown), width="stretch", config=CHART_CONFIG)


st.title("Your screening history")
st.write("Only the visits you chose to save, kept in one file on this computer and nowhere else.")
if "history_said" in st.session_state:
    st.success(st.session_state.pop("history_said"))
try:
    history = History()
    side = st.radio("Eye", ["Both", "Right", "Left"], horizontal=True, key="history_eye")
    visits = history.visits(None if side == "Both" else side.lower())
except HistoryUnavailable as exc:
    st.error(str(exc))
    visits, history = [], None
if history is not None and not visits:
    st.info("No saved visits yet. Screen your eyes on the first page, then press “Save this visit”.")
elif visits:
    trend_ui(visits)
    st.dataframe(rows(visits), hide_index=True, column_config={"photo": st.column_config.ImageColumn("photo")})
    st.caption(f"Times are this computer's local time. Stored in {history.path}. A change over time is worth "
               "showing to an eye doctor; so is any result that worries you.")
    delete_ui(history, history.visits())
st.caption(DISCLAIMER)
