"""A person's screening history, kept on their own computer in one SQLite file.

Nothing is stored unless the person saves a visit. A visit is a date and one or two eyes; each eye
keeps a small thumbnail, the gate's verdict, the calibrated probabilities and the model that gave
them. The schema is versioned (``PRAGMA user_version``) and migrated forward on open; a damaged or
locked file gives :class:`HistoryUnavailable` with a message, and each write is one transaction, so
a failure never takes other visits with it.

Each visit has an id that is never given to another visit of the file (``AUTOINCREMENT``: a deleted
visit's id is not reused) and a random ``uid`` that no other visit anywhere has: the Screen page keeps the
uid of the visit it saved, so "update the saved visit" can only ever rewrite that visit. Deleted rows are
overwritten on disk (``PRAGMA secure_delete``).
"""
from __future__ import annotations

import io
import json
import secrets
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from clarityx.screening.errors import ClarityXError
from clarityx.screening.settings import HISTORY_ENV, history_path

THUMBNAIL_SIDE = 128
TIME_FORMAT = "%Y-%m-%d %H:%M %Z"  # how a visit's time is shown everywhere: local time with its zone
EXACT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S %Z"  # to the second: where visits must be told apart (delete, charts)

MIGRATIONS = [  # index i brings a database from user_version i to i + 1
    """
    CREATE TABLE visit (id INTEGER PRIMARY KEY, taken_at TEXT NOT NULL, model_name TEXT NOT NULL,
                        model_version TEXT NOT NULL, note TEXT NOT NULL DEFAULT '');
    CREATE TABLE eye (id INTEGER PRIMARY KEY, visit_id INTEGER NOT NULL REFERENCES visit(id) ON DELETE CASCADE,
                      side TEXT NOT NULL CHECK (side IN ('right', 'left')), status TEXT NOT NULL,
                      message TEXT, probabilities TEXT, thumbnail BLOB);
    CREATE INDEX eye_visit ON eye(visit_id);
    """,
    # Ids never reused (a deleted top id was given to the next visit, and "update the saved visit" then rewrote
    # that other visit) and a random uid per visit; refused photos saved before they were kept as their reason
    # only lose their thumbnails (the file is vacuumed once afterwards, see History.__init__). Run with the
    # foreign keys off: dropping the old table must not cascade to the eyes.
    """
    CREATE TABLE visit_new (id INTEGER PRIMARY KEY AUTOINCREMENT, uid TEXT NOT NULL UNIQUE,
                            taken_at TEXT NOT NULL, model_name TEXT NOT NULL, model_version TEXT NOT NULL,
                            note TEXT NOT NULL DEFAULT '');
    INSERT INTO visit_new (id, uid, taken_at, model_name, model_version, note)
        SELECT id, lower(hex(randomblob(16))), taken_at, model_name, model_version, note FROM visit;
    DROP TABLE visit;
    ALTER TABLE visit_new RENAME TO visit;
    UPDATE eye SET thumbnail = NULL WHERE status != 'ok';
    """,
]
SCRUBBED_AT = 2  # the schema version from which refused photos keep no thumbnail: an older file is vacuumed once
SCHEMA_VERSION = len(MIGRATIONS)


class HistoryUnavailable(ClarityXError):
    """The history file cannot be opened or written (damaged, locked, no permission)."""


def default_history_path() -> Path:
    """``$CLARITYX_HISTORY``, else the per-user data folder of this platform (local, not roaming:
    see :mod:`clarityx.screening.settings`)."""
    return history_path()


def local(moment: datetime) -> datetime:
    """A stored moment (UTC; a naive one is read as UTC) in this computer's time zone: the app runs on
    the person's own computer, so its zone is theirs."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone()


def shown_time(moment: datetime) -> str:
    """A visit's time as a person reads it: local date and time with the zone (``2026-11-27 19:00 HST``)."""
    return local(moment).strftime(TIME_FORMAT)


def exact_time(moment: datetime) -> str:
    """A visit's local time to the second, with the zone (``2026-11-27 19:00:42 HST``)."""
    return local(moment).strftime(EXACT_TIME_FORMAT)


def thumbnail_png(rgb: np.ndarray, side: int | None = THUMBNAIL_SIDE) -> bytes:
    """The image as PNG bytes, shrunk to fit ``side`` pixels (``None``: full size)."""
    from PIL import Image

    image = Image.fromarray(rgb)
    if side is not None:
        image.thumbnail((side, side))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class EyeRecord:
    side: str                                   # "right" | "left"
    status: str                                 # "ok" | "rejected" | "error"
    message: str | None = None                  # the refusal, when not ok
    probabilities: dict[str, float] | None = None
    thumbnail: bytes | None = None              # PNG


@dataclass
class Visit:
    taken_at: datetime                          # stored in UTC; shown with shown_time (local, with zone)
    model_name: str
    model_version: str
    eyes: list[EyeRecord] = field(default_factory=list)
    id: int | None = None
    uid: str | None = None                      # random, unique to this visit (new_uid); given when saved


@dataclass(frozen=True)
class Saved:
    """What :meth:`History.update` did: the visit's id and uid now, and whether the visit was there to
    update (False: it had been deleted, so it was saved as a new visit, under a new id and uid)."""
    id: int
    uid: str
    updated: bool


def new_uid() -> str:
    """A visit's uid: 128 random bits, never another visit's."""
    return secrets.token_hex(16)


def _utc(moment: datetime) -> datetime:
    """Times are stored in UTC; one stored without a zone is read as UTC too."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


class History:
    """Visits in one SQLite file. Opening creates or migrates it."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else default_history_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = self._connect()
            try:
                self._migrate(db)
            finally:
                db.close()
        except (sqlite3.DatabaseError, OSError) as exc:
            raise self._unavailable(exc) from exc

    def _migrate(self, db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise HistoryUnavailable(
                f"{self.path} was written by a newer ClarityX (schema {version}); update ClarityX "
                "to read it. It has not been changed.")
        if version == SCHEMA_VERSION:
            return
        db.execute("PRAGMA foreign_keys = OFF")  # a table rebuilt must not take its rows' eyes with it
        for step in range(version, SCHEMA_VERSION):
            db.execute("BEGIN IMMEDIATE")  # one step at a time, each whole or not at all
            try:
                if db.execute("PRAGMA user_version").fetchone()[0] == step:  # not done meanwhile by another app
                    for statement in filter(str.strip, MIGRATIONS[step].split(";")):
                        db.execute(statement)
                    db.execute(f"PRAGMA user_version = {step + 1}")
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        problems = db.execute("PRAGMA foreign_key_check").fetchall()
        if problems:
            raise sqlite3.DatabaseError(f"{len(problems)} eyes belong to no visit after the upgrade")
        db.execute("PRAGMA foreign_keys = ON")
        if 0 < version < SCRUBBED_AT:
            db.execute("VACUUM")  # once: the thumbnails of refused photos are gone from the file's free pages too

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=2.0, isolation_level=None)
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA secure_delete = ON")  # a deleted visit (its thumbnails) is overwritten, not left behind
        return db

    def _unavailable(self, exc: Exception) -> HistoryUnavailable:
        why = ("it is in use by another program; close it and try again" if "locked" in str(exc)
               else f"it is damaged or not a ClarityX history ({exc})")
        return HistoryUnavailable(f"Your screening history at {self.path} cannot be used: {why}. "
                                  f"Your other visits are not affected; to start afresh, move the file away "
                                  f"or set {HISTORY_ENV} to another file.")

    def _run(self, work):
        try:
            db = self._connect()
            try:
                return work(db)
            finally:
                db.close()
        except sqlite3.DatabaseError as exc:
            raise self._unavailable(exc) from exc

    @staticmethod
    def _insert_eyes(db: sqlite3.Connection, visit_id: int, visit: Visit) -> None:
        for eye in visit.eyes:
            # A refused photo (perhaps not an eye at all: a stranger's face) is kept as its reason only.
            thumbnail = eye.thumbnail if eye.status == "ok" else None
            db.execute("INSERT INTO eye (visit_id, side, status, message, probabilities, thumbnail) "
                       "VALUES (?, ?, ?, ?, ?, ?)",
                       (visit_id, eye.side, eye.status, eye.message,
                        json.dumps(eye.probabilities) if eye.probabilities is not None else None, thumbnail))

    def _transaction(self, work):
        def run(db):
            db.execute("BEGIN IMMEDIATE")
            try:
                out = work(db)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return out
        return self._run(run)

    @classmethod
    def _insert(cls, db: sqlite3.Connection, visit: Visit, uid: str) -> int:
        """The one INSERT of a visit (with its eyes) that saving and updating share; returns its id."""
        cur = db.execute("INSERT INTO visit (uid, taken_at, model_name, model_version) VALUES (?, ?, ?, ?)",
                         (uid, _utc(visit.taken_at).isoformat(), visit.model_name, visit.model_version))
        cls._insert_eyes(db, cur.lastrowid, visit)
        return cur.lastrowid

    def save(self, visit: Visit) -> int:
        """Store a visit (one transaction) under ``visit.uid`` (a new uid when it has none) and return its id.
        A refused eye keeps no picture."""
        return self._transaction(lambda db: self._insert(db, visit, visit.uid or new_uid()))

    def update(self, uid: str, visit: Visit) -> Saved:
        """Replace the saved visit whose uid is ``uid`` with ``visit`` (its time, model and eyes), in one
        transaction. Only that visit can be touched: a uid is never another visit's. A visit deleted meanwhile
        is saved as a new visit (a new id and uid; ``updated`` False), never written over another one."""
        def work(db):
            row = db.execute("SELECT id FROM visit WHERE uid = ?", (uid,)).fetchone()
            if row is None:
                fresh = new_uid()
                return Saved(self._insert(db, visit, fresh), fresh, updated=False)
            db.execute("UPDATE visit SET taken_at = ?, model_name = ?, model_version = ? WHERE id = ?",
                       (_utc(visit.taken_at).isoformat(), visit.model_name, visit.model_version, row[0]))
            db.execute("DELETE FROM eye WHERE visit_id = ?", (row[0],))
            self._insert_eyes(db, row[0], visit)
            return Saved(row[0], uid, updated=True)
        return self._transaction(work)

    def visits(self, side: str | None = None) -> list[Visit]:
        """Every visit, oldest first; with ``side``, only visits with that eye (and only that eye)."""
        def work(db):
            rows = db.execute("SELECT v.id, v.uid, v.taken_at, v.model_name, v.model_version, e.side, e.status, "
                              "e.message, e.probabilities, e.thumbnail FROM visit v LEFT JOIN eye e "
                              "ON e.visit_id = v.id ORDER BY v.taken_at, v.id, e.side DESC").fetchall()
            out: dict[int, Visit] = {}
            for vid, uid, taken, name, version, eye_side, status, message, probs, thumb in rows:
                visit = out.setdefault(vid, Visit(_utc(datetime.fromisoformat(taken)), name, version, id=vid,
                                                  uid=uid))
                if eye_side is not None and side in (None, eye_side):
                    visit.eyes.append(EyeRecord(eye_side, status, message,
                                                json.loads(probs) if probs else None, thumb))
            return [v for v in out.values() if side is None or v.eyes]
        return self._run(work)

    def delete(self, visit_id: int) -> bool:
        """Delete the visit with this id (and only it); False when there was none."""
        return self._run(lambda db: db.execute("DELETE FROM visit WHERE id = ?", (visit_id,)).rowcount > 0)

    def delete_all(self) -> None:
        self._run(lambda db: db.execute("DELETE FROM visit"))
