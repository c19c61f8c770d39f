"""A one-page report of a visit for the person's eye doctor: PDF (fpdf2) and printable HTML.

Made in memory and handed to the browser as a download; nothing is written to disk.
"""
from __future__ import annotations

import base64
import csv
import html
import io
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from clarityx.screening.grades import referable_flag, referable_score
from clarityx.screening.history import local, shown_time

DISCLAIMER = ("ClarityX is a screening aid, not a diagnosis: it can miss disease and raise false alarms. "
              "Show this page to an eye doctor; see one at once for sudden loss of vision, a curtain over "
              "your sight, new flashes or floaters, or a painful red eye.")


REPORT_IMAGE_SIDE = 360       # px: sharp in the PDF's ~28 mm boxes, and a one-page PDF stays far under 500 KB
REFUSED_NOTE = "Not shown: a photo that cannot be graded (perhaps not an eye at all) is named here, never shown."
JPEG_QUALITY = 85


def report_jpeg(rgb: np.ndarray, side: int = REPORT_IMAGE_SIDE) -> bytes:
    """An image for the report: JPEG, shrunk to fit ``side`` pixels, its aspect ratio kept."""
    from PIL import Image

    image = Image.fromarray(rgb).convert("RGB")
    image.thumbnail((side, side))
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def report_file_name(taken_at: datetime, suffix: str) -> str:
    """``clarityx-report-2026-11-27-1900.pdf``: the visit's date and time where the person is, not in UTC
    (two visits on one day get two names; a file name cannot hold a colon on every system)."""
    return f"clarityx-report-{local(taken_at):%Y-%m-%d-%H%M%S}.{suffix}"


@dataclass
class EyeReport:
    side: str                                        # "Right" | "Left"
    status: str                                      # "ok" | "rejected" | "error"
    message: str | None = None                       # the gate's reason, when not ok
    ranked: list[tuple[str, float]] = field(default_factory=list)  # (display label, probability)
    photo: bytes | None = None                       # the photo as given (JPEG/PNG); never shown when refused
    enhanced: bytes | None = None                    # the contrast-enhanced crop the model saw
    heatmap: bytes | None = None                     # Grad-CAM over the crop
    heatmap_for: str = ""                            # the condition the heat map is for (display label)
    advice: str = ""                                 # what it means and what to do
    referable: str = ""                              # the referable-DR flag as the app shows it ("" if none)
    file_name: str = ""                              # the photo's file name


@dataclass
class VisitReport:
    taken_at: datetime                               # aware; shown as local time with its zone
    model_name: str
    model_version: str
    eyes: list[EyeReport]
    notes: list[str] = field(default_factory=list)   # the model's weak spots, said once per visit
    caveat: str = ""                                 # said above the eyes, e.g. that the model is untested


def plain(text: str) -> str:
    """App text (a little Markdown) as plain text for a report."""
    return text.replace("**", "")


def png_data_uri(png: bytes) -> str:
    """PNG bytes as a ``data:`` URI: an image inside a self-contained page or table."""
    return "data:image/png;base64," + base64.b64encode(png).decode()


def data_uri(image: bytes) -> str:
    """PNG or JPEG bytes as a ``data:`` URI (the type read from the bytes)."""
    kind = "png" if image.startswith(b"\x89PNG") else "jpeg"
    return f"data:image/{kind};base64," + base64.b64encode(image).decode()


def _latin1(text: str) -> str:
    """fpdf2's core fonts are Latin-1: spell the few other characters ClarityX uses."""
    for a, b in (("—", "-"), ("–", "-"), ("≥", ">="), ("≤", "<="), ("×", "x"), ("’", "'"), ("“", '"'),
                 ("”", '"'), ("…", "..."), ("⚠️", ""), ("⚠", "")):
        text = text.replace(a, b)
    return plain(text).encode("latin-1", "replace").decode("latin-1")


def _figures(eye: EyeReport) -> list[tuple[bytes, str]]:
    """The eye's images with their captions, in the order both reports show them. A refused photo (perhaps
    a stranger's face) has none: it is named with its reason, not shown."""
    if eye.status != "ok":
        return []
    out = [(eye.photo, "Photo as given"), (eye.enhanced, "Contrast-enhanced crop (what the model saw)"),
           (eye.heatmap, f"Heat map: {eye.heatmap_for}" if eye.heatmap_for else "Heat map")]
    return [(image, caption) for image, caption in out if image]


def report_pdf(visit: VisitReport) -> bytes:
    """The visit on one A4 page: per eye the photo, the crop the model saw and the heat map (each
    fitted inside its box), the probabilities or the refusal, the referable-DR flag and the advice;
    then the model's weak spots and the disclaimer."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 9, "ClarityX screening report", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    pdf.cell(0, 5, _latin1(f"Date: {shown_time(visit.taken_at)}   Model: {visit.model_name} "
                           f"(version {visit.model_version})"), new_x="LMARGIN", new_y="NEXT")
    if visit.caveat:
        pdf.set_font("Helvetica", "B", 9)
        pdf.set_text_color(150, 60, 0)
        pdf.multi_cell(0, 4.5, _latin1(visit.caveat), new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
        pdf.set_font("Helvetica", size=9)
    gap = 6
    width = (pdf.w - pdf.l_margin - pdf.r_margin - gap) / 2
    top = pdf.get_y() + 3
    bottom = top
    for i, eye in enumerate(visit.eyes[:2]):
        x = pdf.l_margin + i * (width + gap)
        pdf.set_xy(x, top)
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(width, 7, f"{eye.side} eye", new_x="LEFT", new_y="NEXT")
        if eye.file_name:
            pdf.set_font("Helvetica", "I", 8)
            pdf.cell(width, 4, _latin1(f"Photo: {eye.file_name}")[:90], new_x="LEFT", new_y="NEXT")
        y = pdf.get_y() + 1
        figures = _figures(eye)
        box = (width - 4) / 3
        for k, (image, caption) in enumerate(figures):
            bx = x + k * (box + 2)
            pdf.image(io.BytesIO(image), x=bx, y=y, w=box, h=box, keep_aspect_ratio=True)
            pdf.set_xy(bx, y + box + 0.5)
            pdf.set_font("Helvetica", size=7)
            pdf.multi_cell(box, 3, _latin1(caption), align="C")
        pdf.set_xy(x, y + (box + 8 if figures else 0))
        pdf.set_font("Helvetica", size=9)
        if eye.status == "ok":
            pdf.multi_cell(width, 4.5, "Photo accepted by the quality gate. Resemblance to each condition:",
                           new_x="LEFT", new_y="NEXT")
            for name, p in eye.ranked:
                pdf.cell(width * 0.75, 5, _latin1(name), border="B")
                pdf.cell(width * 0.25, 5, f"{p:.0%}", border="B", align="R", new_x="LEFT", new_y="NEXT")
                pdf.set_x(x)
        else:
            pdf.multi_cell(width, 4.5, _latin1(f"Not graded: {eye.message}"), new_x="LEFT", new_y="NEXT")
            pdf.set_font("Helvetica", "I", 8)
            pdf.multi_cell(width, 4, _latin1(REFUSED_NOTE), new_x="LEFT", new_y="NEXT")
            pdf.set_font("Helvetica", size=9)
        if eye.advice:
            pdf.ln(2)
            pdf.set_x(x)
            pdf.multi_cell(width, 4.5, _latin1(eye.advice), new_x="LEFT", new_y="NEXT")
        if eye.referable:  # under the advice, as in the app (the advice refers to "the note below")
            pdf.ln(2)
            pdf.set_x(x)
            pdf.set_font("Helvetica", "B", 9)
            pdf.set_text_color(150, 60, 0)
            pdf.multi_cell(width, 4.5, _latin1(eye.referable), new_x="LEFT", new_y="NEXT")
            pdf.set_text_color(0, 0, 0)
            pdf.set_font("Helvetica", size=9)
        bottom = max(bottom, pdf.get_y())
    if visit.notes:
        pdf.set_xy(pdf.l_margin, bottom + 4)
        pdf.set_font("Helvetica", "B", 9)
        pdf.cell(0, 5, "What this model often misses (from its held-out tests)", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=8.5)
        for note in visit.notes:
            pdf.multi_cell(0, 4, _latin1(f"- {note}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_xy(pdf.l_margin, pdf.h - 28)
    pdf.set_font("Helvetica", "I", 9)
    pdf.multi_cell(0, 4.5, _latin1(DISCLAIMER))
    return bytes(pdf.output())


def report_html(visit: VisitReport) -> str:
    """The same report as one self-contained printable HTML page."""
    def figure(image: bytes, caption: str) -> str:
        return (f'<figure><img alt="{html.escape(caption)}" '
                f'src="{data_uri(image)}"><figcaption>{html.escape(caption)}</figcaption></figure>')

    eyes = []
    for eye in visit.eyes:
        rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{p:.0%}</td></tr>" for n, p in eye.ranked)
        body = (f"<p>Photo accepted by the quality gate. Resemblance to each condition:</p><table>{rows}</table>"
                if eye.status == "ok" else f"<p>Not graded: {html.escape(eye.message or '')}</p>"
                f"<p class='file'>{html.escape(REFUSED_NOTE)}</p>")
        name = f"<p class='file'>Photo: {html.escape(eye.file_name)}</p>" if eye.file_name else ""
        flag = f"<p class='flag'>{html.escape(plain(eye.referable))}</p>" if eye.referable else ""
        images = "".join(figure(image, caption) for image, caption in _figures(eye))
        eyes.append(f"<section><h2>{eye.side} eye</h2>{name}<div>{images}</div>{body}"
                    f"<p>{html.escape(eye.advice)}</p>{flag}</section>")
    notes = ("<h3>What this model often misses (from its held-out tests)</h3><ul>"
             + "".join(f"<li>{html.escape(plain(n))}</li>" for n in visit.notes) + "</ul>") if visit.notes else ""
    return ("<!doctype html><html><head><meta charset='utf-8'><title>ClarityX screening report</title><style>"
            "body{font-family:sans-serif;max-width:60em;margin:auto}.eyes{display:flex;gap:2.5em;"
            "align-items:flex-start}section{flex:1 1 0;min-width:0}"
            "figure{display:inline-block;width:31%;margin:1%;vertical-align:top}"
            "img{max-width:100%;max-height:12em;object-fit:contain}.caveat{color:#963c00;font-weight:bold}"
            "figcaption{font-size:75%;text-align:center}.flag{color:#963c00;font-weight:bold}"
            ".file{font-style:italic;font-size:85%}td{border-bottom:1px solid #ccc;padding:2px 8px}"
            "@media print{button{display:none}}</style></head><body>"
            f"<h1>ClarityX screening report</h1><p>Date: {html.escape(shown_time(visit.taken_at))} · Model: "
            f"{html.escape(visit.model_name)} (version {html.escape(visit.model_version)})</p>"
            + (f"<p class='caveat'>{html.escape(plain(visit.caveat))}</p>" if visit.caveat else "")
            + "<div class='eyes'>" + "".join(eyes) + "</div>" + notes
            + f"<p><em>{html.escape(DISCLAIMER)}</em></p></body></html>")


def batch_csv(rows: list[tuple], classes: list[str], model: str = "", threshold: float | None = None) -> str:
    """A batch's results as CSV: one line per file (name, status, top class, the referable-DR flag
    — yes/no, empty when not graded or the model has none — and score, the estimated DR grade, whether the view
    is hazy, every class's probability, the model, message); refused files keep their line, with the reason.

    ``rows``: (name, status, ranked, message[, referable score, DR grade, hazy]) per file."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["file", "status", "top", "referable_dr", "referable_score", "dr_grade", "hazy", *classes,
                     "model", "message"])
    for row in rows:
        name, status, ranked, message = row[:4]
        score, grade, hazy = (tuple(row[4:7]) + (None, None, None))[:3]
        probs = dict(ranked)
        flag = referable_flag(probs, threshold, score)
        if score is None and ranked:
            score = referable_score(probs)
        writer.writerow([name, status, ranked[0][0] if ranked else "", {True: "yes", False: "no"}.get(flag, ""),
                         "" if score is None or not ranked else f"{score:.6f}", "" if grade is None else grade,
                         {True: "yes", False: "no"}.get(hazy, "") if ranked else "",
                         *(f"{probs[c]:.6f}" if c in probs else "" for c in classes), model, message or ""])
    return buf.getvalue()
