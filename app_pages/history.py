"""History: the visits a person chose to save, on this computer — listed, plotted over time, deleted."""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from app_pages.guidance import label
from app_pages.shared import DISCLAIMER
from clarityx.screening.history import History, HistoryUnavailable, Visit
from clarityx.screening.report import png_data_uri


def trend_figure(visits: list[Visit]) -> go.Figure:
    """Each class's probability over time, one line per class and eye."""
    fig = go.Figure()
    series: dict[tuple[str, str], tuple[list, list]] = {}
    for v in visits:
        for e in v.eyes:
            for c, p in (e.probabilities or {}).items():
                xs, ys = series.setdefault((c, e.side), ([], []))
                xs.append(v.taken_at)
                ys.append(p)
    for (c, side), (xs, ys) in sorted(series.items()):
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=f"{label(c)} ({side})",
                                 line=dict(dash="solid" if side == "right" else "dot")))
    fig.update_layout(yaxis=dict(range=[0, 1], tickformat=".0%", title="probability"),
                      xaxis=dict(tickformat="%Y-%m-%d"), height=380,
                      margin=dict(l=10, r=10, t=10, b=10), legend=dict(orientation="h"))
    return fig


def rows(visits: list[Visit]) -> list[dict]:
    out = []
    for v in visits:
        for e in v.eyes:
            top = max(e.probabilities, key=e.probabilities.get) if e.probabilities else None
            out.append({
                "date": v.taken_at.strftime("%Y-%m-%d %H:%M"), "eye": e.side,
                "photo": png_data_uri(e.thumbnail) if e.thumbnail else None,
                "result": f"{label(top)} ({e.probabilities[top]:.0%})" if top else f"not graded: {e.message}",
                "model": f"{v.model_name} ({v.model_version})", "visit": v.id})
    return out


def delete_ui(history: History, visits: list[Visit]) -> None:
    with st.expander("Delete"):
        chosen = st.selectbox("Visit", visits, format_func=lambda v: f"{v.taken_at:%Y-%m-%d %H:%M} "
                              f"({', '.join(e.side for e in v.eyes)})", key="delete_visit")
        if st.button("Delete this visit"):
            history.delete(chosen.id)
            st.rerun()
        sure = st.checkbox("Yes, delete my whole history", key="delete_all_sure")
        if st.button("Delete everything", disabled=not sure):
            history.delete_all()
            st.rerun()


st.title("Your screening history")
st.write("Only the visits you chose to save, kept in one file on this computer and nowhere else.")
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
    st.plotly_chart(trend_figure(visits), width="stretch")
    st.dataframe(rows(visits), hide_index=True, column_config={"photo": st.column_config.ImageColumn("photo")})
    st.caption(f"Stored in {history.path}. A change over time is worth showing to an eye doctor; "
               "so is any result that worries you.")
    delete_ui(history, history.visits())
st.caption(DISCLAIMER)
