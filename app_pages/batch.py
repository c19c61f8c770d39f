"""Batch: many photos at once → a progress bar → a sortable table with thumbnails and a CSV download.

Photos stay in memory only while they are screened: the session keeps each photo's thumbnail and
result, never the photo itself (a 12-megapixel photo is ~36 MB decoded). Bad files are listed with
their reasons.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import streamlit as st

from app_pages.guidance import label
from app_pages.shared import DISCLAIMER, PHOTO_TYPES, get_classifier
from clarityx.screening.history import thumbnail_png
from clarityx.screening.pipeline import Result, analyse
from clarityx.screening.grades import referable_flag
from clarityx.screening.report import batch_csv, png_data_uri
from clarityx.screening.tested import untested_note

BATCH_THUMBNAIL_SIDE = 96
FLAG_WORDS = {True: "yes", False: "no", None: "–"}  # as in the CSV (report.batch_csv)
ROW_HEIGHT = 38  # px, room for a thumbnail


@dataclass
class Screened:
    """What the session keeps of one photo of the batch: a thumbnail and the result, not the photo."""
    name: str
    status: str
    message: str | None = None
    ranked: list[tuple[str, float]] = field(default_factory=list)
    thumbnail: str | None = None  # data URI
    referable_score: float | None = None
    grade: int | None = None      # the estimated DR grade, where the model has a grade layer
    hazy: bool = False

    @classmethod
    def of(cls, name: str, result: Result) -> Screened:
        # Only a graded photo is shown: a refused one (perhaps not an eye at all: a stranger's face) is named.
        thumb = (png_data_uri(thumbnail_png(result.rgb, BATCH_THUMBNAIL_SIDE))
                 if result.status == "ok" and result.rgb is not None else None)
        return cls(name, result.status, result.message, result.ranked, thumb, result.referable_score,
                   result.grade if result.grades is not None else None, result.hazy)

    @property
    def top(self) -> str | None:
        return self.ranked[0][0] if self.ranked else None


def screen_all(files) -> list[Screened]:
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
        out.append(Screened.of(f.name, result))
        del result  # the decoded photo goes now, not with the whole batch
        progress.progress((i + 1) / len(files), text=f"Screened {i + 1} of {len(files)}")
    progress.empty()
    return out


# Short column headings, so that six conditions fit on the page without sideways scrolling (the full name
# is the column's help, shown on hover); a class not listed here is headed by its label.
SHORT = {"normal": "normal", "cataract": "cataract", "diabetic_retinopathy": "DR", "glaucoma": "glaucoma",
         "age_related_macular_degeneration": "AMD", "pathological_myopia": "myopia",
         **{f"dr_grade_{g}": f"grade {g}" for g in range(5)}}
# Column widths in pixels: each heading fits whole with the sort arrow ("↓ glaucoma", "↓ DR flag"), and the
# eleven columns of a six-condition model (file, photo, most like, DR flag, hazy, six conditions) add up to
# under 950 px, the wide page's width beside the sidebar on a 1366-pixel laptop screen.
WIDTHS = {"file": 110, "photo": 65, "most like": 92, "referable DR": 85, "DR grade": 85, "hazy view": 70}
CONDITION_WIDTH = 88
SHOWN_ROWS = 20  # every row in view up to 20, then the table scrolls


def short(c: str) -> str:
    return SHORT.get(c, label(c))


def table(results: list[Screened], classes: list[str], threshold: float | None) -> list[dict]:
    """The graded photos: whole percentages (the model is not more precise than that), the referable-DR flag."""
    rows = []
    for r in results:
        if r.status != "ok":
            continue
        probs = dict(r.ranked)
        rows.append({"file": r.name, "photo": r.thumbnail, "most like": short(r.top),
                     "referable DR": FLAG_WORDS[referable_flag(probs, threshold, r.referable_score)],
                     **({"DR grade": r.grade} if r.grade is not None else {}),
                     "hazy view": "yes" if r.hazy else "no",
                     **{label(c): round(100 * probs[c]) for c in classes}})
    return rows


def column_config(classes: list[str]) -> dict:
    """Each column's heading and width: short headings for the conditions, whole percentages."""
    return {
        "file": st.column_config.TextColumn("file", pinned=True, width=WIDTHS["file"]),
        "photo": st.column_config.ImageColumn("photo", width=WIDTHS["photo"]),
        "most like": st.column_config.TextColumn("most like", width=WIDTHS["most like"],
                                                 help="The condition the photo resembles most"),
        "referable DR": st.column_config.TextColumn(
            "DR flag", width=WIDTHS["referable DR"],
            help="Possible referable diabetic retinopathy, flagged at the model card's threshold"),
        "DR grade": st.column_config.NumberColumn("DR grade", width=WIDTHS["DR grade"],
                                                  help="The estimated diabetic-retinopathy grade, 0-4"),
        "hazy view": st.column_config.TextColumn("hazy", width=WIDTHS["hazy view"],
                                                 help="The view of the retina is hazy (a clouded lens?)"),
        **{label(c): st.column_config.NumberColumn(short(c), help=f"{label(c)}: how much the photo resembles it",
                                                   format="%d%%", width=CONDITION_WIDTH)
           for c in classes}}


def results_ui(results: list[Screened], classes: list[str], model: str, threshold: float | None) -> None:
    ok = table(results, classes, threshold)
    st.subheader(f"{len(ok)} of {len(results)} photos screened")
    shortened = ", ".join(f"{short(c)}: {label(c)}" for c in classes if short(c) != label(c).lower())
    st.caption(f"Model: {model}. Percentages: how much each photo resembles each condition"
               + (f" ({shortened})" if shortened else "") + "; "
               "DR flag: possible referable diabetic retinopathy; hazy: the view of the retina is hazy. "
               "Click a column's heading to sort by it.")
    if ok:
        # As tall as its rows up to 20 (no empty row under the last), then it scrolls.
        st.dataframe(ok, hide_index=True, row_height=ROW_HEIGHT,
                     height="content" if len(ok) <= SHOWN_ROWS else ROW_HEIGHT * (SHOWN_ROWS + 1) + 2,
                     column_config=column_config(classes))
    bad = [r for r in results if r.status != "ok"]
    if bad:
        st.subheader(f"{len(bad)} photo{'s' if len(bad) != 1 else ''} could not be graded")
        st.table([{"file": r.name, "reason": r.message} for r in bad])
    csv_text = batch_csv([(r.name, r.status, r.ranked, r.message, r.referable_score, r.grade, r.hazy)
                          for r in results], classes, model, threshold)
    st.download_button("Download the results (CSV)", csv_text, file_name="clarityx-batch.csv", mime="text/csv")


def suggest_ray(n_photos: int) -> None:
    """Over 20,000 photos: too many for one computer; show the command that screens them on a Ray cluster."""
    from clarityx.scale import ONE_MACHINE_LIMIT, SCALE_INSTALL, ray_command

    if n_photos > ONE_MACHINE_LIMIT:
        st.warning(f"{n_photos:,} photos are too many for one computer (at about 5 photos a second, "
                   f"{n_photos / 5 / 3600:.1f} hours). Screen the folder on a Ray cluster instead: install the "
                   f"extra (`{SCALE_INSTALL}`) and run, from a terminal (`--resume` continues a stopped run):")
        st.code(ray_command("PHOTOS_FOLDER"), language="bash")


st.title("Screen many photos")
st.write("For people with a folder of their own fundus photos. Each photo goes through the same gate "
         "and model as on the first page; nothing is saved.")
files = st.file_uploader("Fundus photos", type=PHOTO_TYPES, accept_multiple_files=True, key="batch_files")
if files:
    suggest_ray(len(files))
    key = hashlib.sha256(b"".join(hashlib.sha256(f.getvalue()).digest() for f in files)).hexdigest()
    if st.session_state.get("batch", (None,))[0] != key:
        st.session_state["batch"] = (key, screen_all(files))
    results = st.session_state["batch"][1]
    classifier = get_classifier()
    if results and classifier is not None:
        card = classifier.card
        caveat = untested_note(card.metrics)
        if caveat:
            st.warning(caveat)
        model = f"{card.name} ({card.training.get('finished', 'unknown')})" + (" — untested model" if caveat else "")
        results_ui(results, classifier.classes, model, card.dr_threshold)
st.caption(DISCLAIMER)
