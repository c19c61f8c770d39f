"""The local screening history (SQLite) and the report for the doctor (PDF and HTML)."""
import io
import sqlite3
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from clarityx.screening.history import (SCHEMA_VERSION, EyeRecord, History, HistoryUnavailable, Visit,
                                        thumbnail_png)
from clarityx.screening.report import EyeReport, VisitReport, batch_csv, report_html, report_pdf
from tests.conftest import synthetic_fundus

T0 = datetime(2026, 1, 5, 9, 30, tzinfo=timezone.utc)


def visit(days: int, right: float | None = 0.2, left: float | None = 0.7) -> Visit:
    eyes = []
    for side, p in (("right", right), ("left", left)):
        if p is not None:
            eyes.append(EyeRecord(side, "ok", None, {"normal": 1 - p, "glaucoma": p},
                                  thumbnail_png(synthetic_fundus(200, seed=days))))
    return Visit(T0 + timedelta(days=days), "clarityx_lite0", "2026-11-27", eyes)


def test_visits_are_saved_listed_filtered_and_deleted(tmp_path):
    history = History(tmp_path / "h.sqlite3")
    ids = [history.save(visit(d, right=d / 100)) for d in (30, 0, 60)]
    saved = history.visits()
    assert [v.taken_at for v in saved] == sorted(v.taken_at for v in saved)  # oldest first
    assert [len(v.eyes) for v in saved] == [2, 2, 2]
    assert saved[1].eyes[0].probabilities["glaucoma"] == pytest.approx(0.3)  # the visit of day 30
    assert saved[0].eyes[0].thumbnail.startswith(b"\x89PNG")
    history.save(visit(90, right=None))  # a visit with the left eye only
    assert len(history.visits("right")) == 3 and all(e.side == "right" for v in history.visits("right")
                                                      for e in v.eyes)
    assert len(history.visits("left")) == 4
    history.delete(ids[0])
    assert len(history.visits()) == 3 and ids[0] not in [v.id for v in history.visits()]
    with sqlite3.connect(tmp_path / "h.sqlite3") as db:  # the visit's eyes went with it
        assert db.execute("SELECT COUNT(*) FROM eye WHERE visit_id = ?", (ids[0],)).fetchone()[0] == 0
    history.delete_all()
    assert history.visits() == []


def test_schema_is_versioned_and_an_old_file_is_migrated(tmp_path):
    path = tmp_path / "old.sqlite3"
    sqlite3.connect(path).close()  # an empty file at version 0
    History(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(HistoryUnavailable, match="newer ClarityX"):
        History(path)


def test_a_damaged_file_gives_a_message_and_others_are_untouched(tmp_path):
    good = History(tmp_path / "good.sqlite3")
    good.save(visit(0))
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"this is not a database" * 50)
    with pytest.raises(HistoryUnavailable, match="damaged"):
        History(bad)
    assert len(good.visits()) == 1


def test_a_locked_file_gives_a_message_and_loses_no_visit(tmp_path):
    history = History(tmp_path / "h.sqlite3")
    history.save(visit(0))
    other = sqlite3.connect(tmp_path / "h.sqlite3", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another program holds the file
    try:
        with pytest.raises(HistoryUnavailable, match="in use"):
            history.save(visit(1))
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert len(history.visits()) == 1
    history.save(visit(2))
    assert len(history.visits()) == 2


def report() -> VisitReport:
    from PIL import Image

    def png(seed):
        buf = io.BytesIO()
        Image.fromarray(synthetic_fundus(200, seed=seed)).save(buf, format="PNG")
        return buf.getvalue()

    return VisitReport(T0, "clarityx_lite0", "2026-11-27 12:00 UTC", [
        EyeReport("Right", "ok", None, [("Glaucoma", 0.61), ("Normal", 0.39)], png(1), png(2),
                  "Book an eye examination within weeks — ask about glaucoma (≥ 40: yearly)."),
        EyeReport("Left", "rejected", "The photo is too dark to grade.", [], png(3), None, ""),
    ])


def test_pdf_report_opens_and_names_the_model_version():
    from pypdf import PdfReader

    pdf = report_pdf(report())
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    for wanted in ("clarityx_lite0", "2026-11-27 12:00 UTC", "Right eye", "Glaucoma", "61%",
                   "too dark to grade", "not a diagnosis"):
        assert wanted in text, wanted
    assert len(reader.pages[0].images) == 3  # photo + heat map, and the refused eye's photo


def test_html_report_is_self_contained_and_escaped():
    r = report()
    r.eyes[1].message = "<script>alert(1)</script>"
    page = report_html(r)
    assert page.count("data:image/png;base64,") == 3 and "http" not in page
    assert "<script>" not in page and "not a diagnosis" in page and "61%" in page


def test_thumbnail_is_small():
    from PIL import Image

    thumb = Image.open(io.BytesIO(thumbnail_png(np.zeros((900, 1200, 3), np.uint8))))
    assert max(thumb.size) == 128


def test_batch_csv_keeps_every_file_with_its_probabilities_or_reason():
    import csv

    text = batch_csv([("a.jpg", "ok", [("glaucoma", 0.7), ("normal", 0.3)], None),
                      ("b.png", "rejected", [], "Not a fundus photo, it seems.")], ["normal", "glaucoma"])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0] == {"file": "a.jpg", "status": "ok", "top": "glaucoma", "normal": "0.300000",
                       "glaucoma": "0.700000", "message": ""}
    assert rows[1]["status"] == "rejected" and rows[1]["normal"] == "" and "fundus" in rows[1]["message"]
