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

DISCLAIMER = ("ClarityX is a screening aid, not a diagnosis: it can miss disease and raise false alarms. "
              "Show this page to an eye doctor; see one at once for sudden loss of vision, a curtain over "
              "your sight, new flashes or floaters, or a painful red eye.")


@dataclass
class EyeReport:
    side: str                                        # "Right" | "Left"
    status: str                                      # "ok" | "rejected" | "error"
    message: str | None = None                       # the gate's reason, when not ok
    ranked: list[tuple[str, float]] = field(default_factory=list)  # (display label, probability)
    photo_png: bytes | None = None
    heatmap_png: bytes | None = None
    advice: str = ""                                 # what it means and what to do


@dataclass
class VisitReport:
    taken_at: datetime
    model_name: str
    model_version: str
    eyes: list[EyeReport]


def png_data_uri(png: bytes) -> str:
    """PNG bytes as a ``data:`` URI: an image inside a self-contained page or table."""
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _latin1(text: str) -> str:
    """fpdf2's core fonts are Latin-1: spell the few other characters ClarityX uses."""
    for a, b in (("—", "-"), ("–", "-"), ("≥", ">="), ("≤", "<="), ("×", "x"), ("’", "'"), ("“", '"'),
                 ("”", '"'), ("…", "...")):
        text = text.replace(a, b)
    return text.encode("latin-1", "replace").decode("latin-1")


def report_pdf(visit: VisitReport) -> bytes:
    """The visit on one A4 page: each eye's photo, heat map, probabilities, gate result and advice."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 9, "ClarityX screening report", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    pdf.cell(0, 5, _latin1(f"Date: {visit.taken_at:%Y-%m-%d %H:%M}   Model: {visit.model_name} "
                           f"(version {visit.model_version})"), new_x="LMARGIN", new_y="NEXT")
    width = (pdf.w - pdf.l_margin - pdf.r_margin - 6) / 2
    top = pdf.get_y() + 3
    for i, eye in enumerate(visit.eyes[:2]):
        x = pdf.l_margin + i * (width + 6)
        pdf.set_xy(x, top)
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(width, 7, f"{eye.side} eye", new_x="LEFT", new_y="NEXT")
        y = pdf.get_y()
        if eye.photo_png:
            pdf.image(io.BytesIO(eye.photo_png), x=x, y=y, w=width / 2 - 2)
        if eye.heatmap_png:
            pdf.image(io.BytesIO(eye.heatmap_png), x=x + width / 2 + 2, y=y, w=width / 2 - 2)
        pdf.set_xy(x, y + width / 2 + 2)
        pdf.set_font("Helvetica", size=9)
        if eye.status == "ok":
            pdf.multi_cell(width, 4.5, "Photo accepted by the quality gate. Heat map: where the model looked "
                                       "for its top answer.", new_x="LEFT", new_y="NEXT")
            for name, p in eye.ranked:
                pdf.cell(width * 0.75, 5, _latin1(name), border="B")
                pdf.cell(width * 0.25, 5, f"{p:.0%}", border="B", align="R", new_x="LEFT", new_y="NEXT")
                pdf.set_x(x)
        else:
            pdf.multi_cell(width, 4.5, _latin1(f"Not graded: {eye.message}"), new_x="LEFT", new_y="NEXT")
        if eye.advice:
            pdf.ln(2)
            pdf.set_x(x)
            pdf.multi_cell(width, 4.5, _latin1(eye.advice), new_x="LEFT", new_y="NEXT")
    pdf.set_xy(pdf.l_margin, pdf.h - 32)
    pdf.set_font("Helvetica", "I", 9)
    pdf.multi_cell(0, 4.5, _latin1(DISCLAIMER))
    return bytes(pdf.output())


def report_html(visit: VisitReport) -> str:
    """The same report as one self-contained printable HTML page."""
    def img(png: bytes | None, alt: str) -> str:
        return f'<img alt="{alt}" src="{png_data_uri(png)}">' if png else ""

    eyes = []
    for eye in visit.eyes:
        rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{p:.0%}</td></tr>" for n, p in eye.ranked)
        body = (f"<p>Photo accepted by the quality gate.</p><table>{rows}</table>" if eye.status == "ok"
                else f"<p>Not graded: {html.escape(eye.message or '')}</p>")
        eyes.append(f"<section><h2>{eye.side} eye</h2>{img(eye.photo_png, 'photo')}"
                    f"{img(eye.heatmap_png, 'heat map')}{body}<p>{html.escape(eye.advice)}</p></section>")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>ClarityX screening report</title><style>"
            "body{font-family:sans-serif;max-width:60em;margin:auto}section{display:inline-block;width:48%;"
            "vertical-align:top}img{width:48%;margin:1%}td{border-bottom:1px solid #ccc;padding:2px 8px}"
            "@media print{button{display:none}}</style></head><body>"
            f"<h1>ClarityX screening report</h1><p>Date: {visit.taken_at:%Y-%m-%d %H:%M} · Model: "
            f"{html.escape(visit.model_name)} (version {html.escape(visit.model_version)})</p>"
            + "".join(eyes) + f"<p><em>{html.escape(DISCLAIMER)}</em></p></body></html>")


def batch_csv(rows: list[tuple[str, str, list[tuple[str, float]], str | None]], classes: list[str]) -> str:
    """A batch's results as CSV: one line per file (name, status, top class, every class's
    probability, message); refused files keep their line, with the reason."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["file", "status", "top", *classes, "message"])
    for name, status, ranked, message in rows:
        probs = dict(ranked)
        writer.writerow([name, status, ranked[0][0] if ranked else "",
                         *(f"{probs[c]:.6f}" if c in probs else "" for c in classes), message or ""])
    return buf.getvalue()
