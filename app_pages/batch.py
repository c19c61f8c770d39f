"""Batch: many photos at once → a progress bar → a sortable table with thumbnails and a CSV download.

Photos stay in memory; nothing is written to disk. Bad files are listed with their reasons.
"""
from __future__ import annotations

import hashlib

import streamlit as st

from app_pages.guidance import label
from app_pages.shared import DISCLAIMER, PHOTO_TYPES, get_classifier
from clarityx.screening.history import thumbnail_png
from clarityx.screening.pipeline import Result, analyse
from clarityx.screening.report import batch_csv, png_data_uri


def screen_all(files) -> list[tuple[str, Result]]:
    classifier = get_classifier()
    if classifier is None:
        return []
    progress = st.progress(0.0, text="Screening…")
    out = []
    for i, f in enumerate(files):
        try:
            result = analyse(classifier, f.getvalue(), explain=False)
        except Exception as exc:  # one bad file never stops the batch
            result = Result("error", f"{type(exc).__name__}: {exc}")
        out.append((f.name, result))
        progress.progress((i + 1) / len(files), text=f"Screened {i + 1} of {len(files)}")
    progress.empty()
    return out


def table(results: list[tuple[str, Result]], classes: list[str]) -> list[dict]:
    rows = []
    for name, r in results:
        if r.status != "ok":
            continue
        probs = dict(r.ranked)
        thumb = png_data_uri(thumbnail_png(r.rgb, 96))
        rows.append({"photo": thumb, "file": name, "most like": label(r.top),
                     **{label(c): round(probs[c], 4) for c in classes}})
    return rows


st.title("Screen many photos")
st.write("For people with a folder of their own fundus photos. Each photo goes through the same gate "
         "and model as on the first page; nothing is saved.")
files = st.file_uploader("Fundus photos", type=PHOTO_TYPES, accept_multiple_files=True, key="batch_files")
if files:
    key = hashlib.sha256(b"".join(hashlib.sha256(f.getvalue()).digest() for f in files)).hexdigest()
    if st.session_state.get("batch", (None,))[0] != key:
        st.session_state["batch"] = (key, screen_all(files))
    results = st.session_state["batch"][1]
    classifier = get_classifier()
    if results and classifier is not None:
        classes = classifier.classes
        ok = table(results, classes)
        st.subheader(f"{len(ok)} of {len(results)} photos screened")
        st.dataframe(ok, hide_index=True, column_config={
            "photo": st.column_config.ImageColumn("photo"),
            **{label(c): st.column_config.ProgressColumn(label(c), min_value=0.0, max_value=1.0, format="percent")
               for c in classes}})
        st.caption("Click a column's heading to sort by it.")
        bad = [(n, r) for n, r in results if r.status != "ok"]
        if bad:
            st.subheader(f"{len(bad)} photos could not be graded")
            st.dataframe([{"file": n, "reason": r.message} for n, r in bad], hide_index=True)
        csv_text = batch_csv([(n, r.status, r.ranked, r.message) for n, r in results], classes)
        st.download_button("Download the results (CSV)", csv_text, file_name="clarityx-batch.csv", mime="text/csv")
st.caption(DISCLAIMER)
