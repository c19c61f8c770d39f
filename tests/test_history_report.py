"""The local screening history (SQLite) and the report for the doctor (PDF and HTML)."""
import io
import json
import sqlite3
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from PIL import Image

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


def jpeg(seed: int, shape=(200, 200)) -> bytes:
    from clarityx.screening.report import report_jpeg

    return report_jpeg(synthetic_fundus(max(shape), seed=seed)[:shape[0], :shape[1]])


def report() -> VisitReport:
    from clarityx.screening.report import report_jpeg

    portrait = np.random.default_rng(0).integers(0, 255, (1600, 900, 3), dtype=np.uint8)  # a refused photo (a face)
    return VisitReport(T0, "clarityx_lite0", "2026-11-27 12:00 UTC", [
        EyeReport("Right", "ok", None, [("Glaucoma", 0.61), ("Normal", 0.39)], jpeg(1), jpeg(4), jpeg(2),
                  "Glaucoma", "Book an eye examination within weeks — ask about glaucoma (≥ 40: yearly).",
                  "The model also flags possible **referable diabetic retinopathy** (moderate or worse).",
                  "IMG_0042 right.jpg"),
        EyeReport("Left", "rejected", "The photo is too dark to grade.", [],
                  report_jpeg(portrait), file_name="selfie.jpg"),  # handed over: the report must not show it
    ], notes=["In testing, this model recognised only 23% of photos with age-related macular degeneration: "
              "a low score for it does not rule it out."])


def test_pdf_report_opens_and_names_the_model_version():
    from pypdf import PdfReader

    pdf = report_pdf(report())
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    for wanted in ("clarityx_lite0", "2026-11-27 12:00 UTC", "Right eye", "Glaucoma", "61%",
                   "too dark to grade", "not a diagnosis"):
        assert wanted in text, wanted
    assert len(reader.pages[0].images) == 3  # photo, crop and heat map; nothing of the refused eye


def test_reports_carry_the_dr_flag_weak_spots_file_names_and_what_each_image_is():
    """Issue 19, items 6 and 8: what the app shows about a photo is in both reports."""
    from pypdf import PdfReader

    text = " ".join(PdfReader(io.BytesIO(report_pdf(report()))).pages[0].extract_text().split())
    page = report_html(report())
    for shown in (text, page):
        assert "referable diabetic retinopathy" in shown and "**" not in shown
        assert "recognised only 23% of photos with age-related macular degeneration" in shown
        assert "IMG_0042 right.jpg" in shown and "selfie.jpg" in shown
        assert "Heat map: Glaucoma" in shown and "Photo as given" in shown and "Contrast-enhanced crop" in shown


def placements(pdf: bytes) -> list[tuple[float, float, float, float]]:
    """(x, y, width, height) in points of every image drawn on the PDF's first page."""
    from pypdf import PdfReader

    page = PdfReader(io.BytesIO(pdf)).pages[0]
    boxes = []

    def visit(op, args, cm, tm):
        if op == b"Do":
            boxes.append((cm[4], cm[5], cm[0], cm[3]))
    page.extract_text(visitor_operand_before=visit)
    return boxes


def test_pdf_images_keep_their_aspect_ratio_and_a_refused_photo_is_named_with_its_reason_not_shown():
    """Issue 19, item 7 (aspect ratio); issue 24, item 3: a refused photo (a stranger's face) was embedded in
    the report for the doctor. It is named, with its reason, and not shown."""
    from pypdf import PdfReader

    pdf = report_pdf(report())
    boxes = placements(pdf)
    assert len(boxes) == 3
    for x, y, w, h in boxes:  # square crops stay square
        assert w == pytest.approx(h, rel=0.02)
    images = PdfReader(io.BytesIO(pdf)).pages[0].images
    assert all(Image.open(io.BytesIO(i.data)).size[1] < 1600 * 0.5 and i.image.size != (900, 1600) for i in images)
    text = " ".join(PdfReader(io.BytesIO(pdf)).pages[0].extract_text().split())
    page = report_html(report())
    for shown in (text, page):
        assert "selfie.jpg" in shown and "too dark to grade" in shown and "Not shown" in shown
    assert page.count("<img") == 3


def test_a_one_page_pdf_of_two_large_photos_stays_small():
    """Issue 19, item 8: 1.3-4.0 MB for one page before."""
    from clarityx.screening.report import report_jpeg

    rng = np.random.default_rng(1)
    big = [report_jpeg(rng.integers(0, 255, (3000, 4000, 3), dtype=np.uint8)) for _ in range(3)]
    eyes = [EyeReport(side, "ok", None, [("Normal", 0.9), ("Glaucoma", 0.1)], *big, "Normal", "advice")
            for side in ("Right", "Left")]
    assert len(report_pdf(VisitReport(T0, "m", "v", eyes))) < 500_000


def test_times_are_stored_in_utc_and_shown_in_local_time_with_the_zone(tmp_path, monkeypatch):
    """Issue 19, item 9: in Honolulu an evening visit carried the next day's date."""
    import time

    from clarityx.screening.history import shown_time
    from clarityx.screening.report import report_file_name

    monkeypatch.setenv("TZ", "Pacific/Honolulu")
    time.tzset()
    try:
        evening = datetime(2026, 11, 28, 5, 0, tzinfo=timezone.utc)  # 19:00 on the 27th in Honolulu
        history = History(tmp_path / "h.sqlite3")
        history.save(Visit(evening, "m", "v", []))
        with sqlite3.connect(tmp_path / "h.sqlite3") as db:
            assert db.execute("SELECT taken_at FROM visit").fetchone()[0] == "2026-11-28T05:00:00+00:00"
        stored = history.visits()[0].taken_at
        assert stored == evening and shown_time(stored) == "2026-11-27 19:00 HST"
        assert report_file_name(stored, "pdf") == "clarityx-report-2026-11-27-190000.pdf"
        # Issue 24, item 15: two visits on one day get two names.
        assert report_file_name(stored + timedelta(hours=2), "pdf") == "clarityx-report-2026-11-27-210000.pdf"
        r = VisitReport(stored, "m", "v", [])
        assert "2026-11-27 19:00 HST" in report_html(r)
        from pypdf import PdfReader
        assert "2026-11-27 19:00 HST" in PdfReader(io.BytesIO(report_pdf(r))).pages[0].extract_text()
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_html_report_is_self_contained_and_escaped():
    r = report()
    r.eyes[1].message = "<script>alert(1)</script>"
    page = report_html(r)
    assert page.count("data:image/jpeg;base64,") == 3 and "http" not in page
    assert "<script>" not in page and "not a diagnosis" in page and "61%" in page


def test_thumbnail_is_small():
    from PIL import Image

    thumb = Image.open(io.BytesIO(thumbnail_png(np.zeros((900, 1200, 3), np.uint8))))
    assert max(thumb.size) == 128


def test_batch_csv_keeps_every_file_with_its_probabilities_or_reason():
    """One line per file: a graded photo with its referable score (its grade layer's, not the DR class's
    probability), estimated DR grade and haze; a refused one with its reason and those columns empty."""
    import csv

    classes = ["normal", "diabetic_retinopathy", "cataract"]
    text = batch_csv([("a.jpg", "ok", [("cataract", 0.6), ("normal", 0.3), ("diabetic_retinopathy", 0.1)], None,
                       0.42, 2, True),
                      ("c.jpg", "ok", [("normal", 0.8), ("diabetic_retinopathy", 0.15), ("cataract", 0.05)], None,
                       None, None, False),  # a model without a grade layer: the score is P(diabetic retinopathy)
                      ("b.png", "rejected", [], "Not a fundus photo, it seems.", None, None, None)], classes,
                     "clarityx_lite0 (2026-11-27)", threshold=0.3)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0] == {"file": "a.jpg", "status": "ok", "top": "cataract", "referable_dr": "yes",
                       "referable_score": "0.420000", "dr_grade": "2", "hazy": "yes", "normal": "0.300000",
                       "diabetic_retinopathy": "0.100000", "cataract": "0.600000",
                       "model": "clarityx_lite0 (2026-11-27)", "message": ""}
    assert (rows[1]["referable_dr"], rows[1]["referable_score"], rows[1]["dr_grade"], rows[1]["hazy"]) == \
        ("no", "0.150000", "", "no")
    assert rows[2]["status"] == "rejected" and "fundus" in rows[2]["message"]
    assert all(rows[2][k] == "" for k in ("top", "referable_dr", "referable_score", "dr_grade", "hazy", *classes))


def test_batch_csv_says_whether_referable_dr_is_flagged():
    """Issue 19, item 13: the CSV had no referable-DR column."""
    import csv

    classes = ["normal", "diabetic_retinopathy"]
    text = batch_csv([("a.jpg", "ok", [("normal", 0.7), ("diabetic_retinopathy", 0.3)], None),
                      ("b.jpg", "ok", [("normal", 0.9), ("diabetic_retinopathy", 0.1)], None),
                      ("c.jpg", "rejected", [], "too dark")], classes, "m", threshold=0.25)
    assert [r["referable_dr"] for r in csv.DictReader(io.StringIO(text))] == ["yes", "no", ""]


def test_a_refused_photo_is_kept_as_its_reason_never_its_picture(tmp_path):
    """Issue 24, item 3: a refused photo (a stranger's face) was kept in the history."""
    history = History(tmp_path / "h.sqlite3")
    face = thumbnail_png(np.random.default_rng(0).integers(0, 255, (300, 200, 3), dtype=np.uint8))
    history.save(Visit(T0, "m", "v", [EyeRecord("right", "rejected", "Not a fundus photograph.", None, face),
                                      *visit(0, right=None).eyes]))
    right, left = history.visits()[0].eyes
    assert right.status == "rejected" and right.thumbnail is None and right.message == "Not a fundus photograph."
    assert left.thumbnail.startswith(b"\x89PNG")  # a graded eye keeps its thumbnail
    with sqlite3.connect(tmp_path / "h.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM eye WHERE thumbnail IS NOT NULL").fetchone()[0] == 1


def test_saving_a_visit_again_updates_it_and_deleting_takes_only_the_visit_named(tmp_path):
    """Issue 24, items 1 and 2: deleting took another visit; a second save made a second visit."""
    history = History(tmp_path / "h.sqlite3")
    saved = [visit(0, right=0.1 * k, left=None) for k in range(1, 4)]  # three visits, one moment
    ids = [history.save(v) for v in saved]
    uids = [v.uid for v in history.visits()]
    assert len(set(uids)) == 3 and all(uids)
    first = history.update(uids[0], visit(0, right=0.1, left=0.8))  # the left eye added after saving
    assert (first.id, first.uid, first.updated) == (ids[0], uids[0], True) and len(history.visits()) == 3
    assert [e.side for e in history.visits()[0].eyes] == ["right", "left"]
    assert history.delete(ids[1]) is True
    assert [v.id for v in history.visits()] == [ids[0], ids[2]]
    assert history.delete(ids[1]) is False  # gone already: nothing else is touched
    assert [v.id for v in history.visits()] == [ids[0], ids[2]]
    again = history.update(uids[1], visit(0))  # a visit deleted meanwhile is saved afresh, not lost
    assert not again.updated and again.id not in ids and again.uid not in uids and len(history.visits()) == 3


def test_updating_a_deleted_visit_never_writes_over_the_visit_that_came_after_it(tmp_path):
    """Review item 1: ids were reused (no AUTOINCREMENT): the saved visit (the top id) deleted on the History
    page, another visit saved, and "Update the saved visit" rewrote that other visit."""
    history = History(tmp_path / "h.sqlite3")
    history.save(visit(0))
    mine = visit(1, right=0.3, left=None)
    mine_id = history.save(mine)
    assert mine.uid is None  # save does not change the visit it is given
    mine_uid = next(v.uid for v in history.visits() if v.id == mine_id)
    assert history.delete(mine_id)
    other_id = history.save(visit(2, right=0.9, left=None))  # someone else's visit, saved after the delete
    assert other_id > mine_id  # a deleted visit's id is never given to another visit
    saved = history.update(mine_uid, visit(1, right=0.3, left=0.4))
    assert not saved.updated and saved.id not in (mine_id, other_id)
    other = next(v for v in history.visits() if v.id == other_id)
    assert [e.side for e in other.eyes] == ["right"] and other.eyes[0].probabilities["glaucoma"] == pytest.approx(0.9)
    assert len(history.visits()) == 3


def test_a_visit_saved_with_a_uid_keeps_it_and_save_and_update_share_one_insert(tmp_path):
    import inspect

    history = History(tmp_path / "h.sqlite3")
    history.save(Visit(T0, "m", "v", visit(0).eyes, uid="abc123"))
    assert history.visits()[0].uid == "abc123"
    assert history.update("abc123", visit(3)).updated and len(history.visits()) == 1
    source = inspect.getsource(History)
    assert source.count("INSERT INTO visit ") == 1 and source.count("INSERT INTO eye ") == 1


def version_1_file(path) -> None:
    """A history file as ClarityX wrote it before review item 1 (schema 1): reused ids, and a refused photo
    saved with its thumbnail."""
    from clarityx.screening.history import MIGRATIONS

    face = thumbnail_png(np.random.default_rng(0).integers(0, 255, (300, 200, 3), dtype=np.uint8))
    good = thumbnail_png(synthetic_fundus(200, seed=1))
    with sqlite3.connect(path) as db:
        db.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
        for vid in (1, 2, 3):
            db.execute("INSERT INTO visit (id, taken_at, model_name, model_version) VALUES (?, ?, 'm', 'v')",
                       (vid, (T0 + timedelta(days=vid)).isoformat()))
            db.execute("INSERT INTO eye (visit_id, side, status, message, probabilities, thumbnail) "
                       "VALUES (?, 'right', 'ok', NULL, ?, ?)",
                       (vid, json.dumps({"normal": 0.9, "glaucoma": 0.1}), good))
        db.execute("INSERT INTO eye (visit_id, side, status, message, probabilities, thumbnail) "
                   "VALUES (2, 'left', 'rejected', 'Not a fundus photograph.', NULL, ?)", (face,))
        db.execute("DELETE FROM visit WHERE id = 3")  # (its eye stays: foreign keys are off in this connection)
        db.execute("DELETE FROM eye WHERE visit_id = 3")
    return face


def test_an_old_file_is_upgraded_whole_its_ids_never_reused_and_refused_thumbnails_scrubbed(tmp_path,
                                                                                            insecure_sqlite):
    """Review items 1 and 2: the upgrade keeps every visit and eye, gives each visit a uid, ids are not reused
    afterwards, and a refused photo saved before refused photos were kept as their reason loses its thumbnail,
    from the table and from the file's free pages (vacuumed once)."""
    path = tmp_path / "old.sqlite3"
    face = version_1_file(path)
    history = History(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert "AUTOINCREMENT" in db.execute("SELECT sql FROM sqlite_master WHERE name = 'visit'").fetchone()[0]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    visits = history.visits()
    assert [v.id for v in visits] == [1, 2] and [len(v.eyes) for v in visits] == [1, 2]
    assert len({v.uid for v in visits}) == 2 and all(len(v.uid) == 32 for v in visits)
    right, left = visits[1].eyes
    assert right.thumbnail.startswith(b"\x89PNG") and left.status == "rejected" and left.thumbnail is None
    assert left.message == "Not a fundus photograph."
    assert face not in path.read_bytes()  # not left behind in a free page either
    assert history.delete(2)
    assert history.save(visit(9)) == 3  # the top id deleted: the next visit gets a new one
    assert history.delete(3)
    assert history.save(visit(10)) == 4


@pytest.fixture
def insecure_sqlite(monkeypatch):
    """SQLite as some builds have it: deleted content left in free pages unless secure_delete is asked for
    (this one's build has it on by default)."""
    import clarityx.screening.history as module

    real = sqlite3.connect

    def insecure_by_default(*args, **kwargs):
        db = real(*args, **kwargs)
        db.execute("PRAGMA secure_delete = OFF")
        return db

    monkeypatch.setattr(module.sqlite3, "connect", insecure_by_default)


def test_deleted_visits_are_overwritten_on_disk(tmp_path, insecure_sqlite):
    """Review item 2: a deleted visit's thumbnails must not linger in the file's free pages, whatever the
    SQLite build's default."""
    path = tmp_path / "h.sqlite3"
    history = History(path)
    mine = visit(0, right=0.2, left=None)
    mine.eyes.append(EyeRecord("left", "rejected", "MARKER: a reason no other row has"))
    history.save(mine)
    traces = [b"MARKER: a reason no other row has", mine.eyes[0].thumbnail[64:128]]  # (a thumbnail spans pages)
    assert all(t in path.read_bytes() for t in traces)
    history.delete_all()
    assert not any(t in path.read_bytes() for t in traces)


def test_every_visit_in_the_delete_picker_has_its_own_name():
    """Issue 24, item 1: visits saved within one minute had identical names."""
    from app_pages.history import visit_name, visit_names
    from clarityx.screening.history import exact_time

    same_second = [Visit(T0, "m", "v", visit(0, right=p, left=None).eyes, id=i) for i, p in enumerate((0.1, 0.1, 0.7))]
    same_second.append(Visit(T0 + timedelta(seconds=1), "m", "v", visit(0, right=0.1, left=None).eyes, id=3))
    refused = Visit(T0, "m", "v",
                    [EyeRecord("right", "rejected", "too dark"), EyeRecord("left", "error", "unreadable")], id=4)
    names = visit_names([*same_second, refused])
    assert len(set(names.values())) == 5
    assert names[0].startswith(exact_time(T0)) and names[3].startswith(exact_time(T0 + timedelta(seconds=1)))
    assert exact_time(T0) != exact_time(T0 + timedelta(seconds=1))  # to the second
    assert "right eye: Normal (90%)" in names[0] and "right eye: Glaucoma (70%)" in names[2]  # each eye's answer
    assert "no result: the right-eye and left-eye photos were refused" in visit_name(refused)
