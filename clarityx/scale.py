"""Screening an archive on Ray Data: ``clarityx predict PATHS... --engine ray``.

    clarityx predict ARCHIVE/ photos.csv --engine ray [--address auto|ray://HOST:10001] \\
        [--num-actors N] [--batch-size B] [--resume RESULTS.jsonl] --json --heatmap-dir DIR >> RESULTS.jsonl

The same per-photo steps as the single-process engine (:mod:`clarityx.screening.pipeline`: ``decode`` →
``gate_and_prepare`` → the model → ``finish``; the row is ``Result.as_json``), spread over a cluster:

1. the driver lists the photos (folders walked as ``clarityx predict`` walks them, and manifest CSVs with a
   ``path`` column, relative to the CSV);
2. Ray tasks (CPU) decode, gate and ``prepare`` blocks of photos; a photo that fails becomes its row here;
3. an actor pool runs the model (each actor loads it once, one ONNX Runtime thread each), ``--batch-size``
   photos per run, and writes the heat maps (atomically: a retried batch rewrites the same file), named as the
   single-process engine names them, except that photos sharing a file name all get their folder's hash;
4. the driver prints each row as it arrives (order may differ from the single-process engine's).

Nothing lost, nothing twice: a bad file is a row with status "error"/"rejected"; an actor killed in the middle
is restarted and its batch retried by Ray, a finite number of times (:data:`TASK_RETRIES`): a photo that kills
its worker every time (a "poison" photo) costs a few restarts, not an endless loop. The blocks of photos lost so
(at most :data:`ERRORED_BLOCKS`, else the run stops, saying so) are screened again one photo per block, so that
only the poison photo itself ends as an error row. The driver prints one row per listed photo (deduplicated by
index; a photo the pipeline lost gets an error row), and no row for a photo whose heat map could not be written
(the run stops there: the photo is not done).

``--resume FILE`` (needs ``--json``) skips the photos that already have an *answer* in FILE: a row with status
"ok" or "rejected". An "error" row (a transient I/O error, a lost or crashing photo) is no answer: the photo is
screened again, and its new row, appended after the old one, is the one that counts. Which photo a row names —
the rule, so that a run can be resumed from any folder: a row's ``path`` as printed, normalised; an absolute
path names the photo at that path; a relative one names the listed photo it leads to from the current folder,
else the one listed photo whose absolute path ends with it (whole folder names: ``archive/a.jpg`` names
``/data/archive/a.jpg``). A relative path that ends two listed photos' paths names neither: both are screened
again (never a photo skipped that was not screened). Lines cut short by a stop are ignored; when FILE itself
ends in such a line and the rows are appended to it (``>> FILE``), the first row starts on a line of its own.

Without ``--address`` a local Ray is started for the run (and stopped after it); ``--address auto`` or
``ray://...`` uses an existing cluster, where every node needs clarityx installed and the photos, the model
and the heat-map folder on a shared file system (the same paths everywhere).

Ray is an optional extra (``pip install ".[scale]"``) and is imported only here, only when asked for.
"""
from __future__ import annotations

import csv
import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

SCALE_INSTALL = 'pip install ".[scale]"'
RAY_MISSING = f"clarityx: --engine ray needs Ray, an optional extra: {SCALE_INSTALL} (brings ray[data])"
ONE_MACHINE_LIMIT = 20_000  # photos: above this, a folder is a job for a cluster (the Many photos page says so)
PREPARE_BLOCK = 8           # photos per decode/gate/prepare task
ACTOR_MEMORY = 384 * 2**20  # bytes a model actor reserves, plus 40 MB per photo of --batch-size
# Ray Data retries a task and restarts an actor without limit by default, so a photo that crashes its worker
# (a decoder or model segfault, a worker killed for memory) would be retried for ever. Finite here:
TASK_RETRIES = 2            # more tries of a decode task or a model batch whose worker died
ERRORED_BLOCKS = 16         # blocks a run may lose to crashing workers (each then retried photo by photo)
FINAL_STATUSES = ("ok", "rejected")  # a row with one of these is an answer; "error" rows are retried
CRASHED = (f"the worker screening this photo crashed {TASK_RETRIES + 1} times: it was not screened (a photo "
           "that crashes the decoder or the model, or a worker out of memory); run again with --resume to retry it")
RESUME_NEEDS_JSON = ("clarityx: --resume reads back the JSON rows of an earlier run: add --json (and append "
                     "its output to the same file: --json --resume results.jsonl >> results.jsonl)")


class PipelineFailed(RuntimeError):
    """The Ray pipeline stopped (too many crashing blocks, a lost cluster): the message says so, for a person."""


def ray_command(folder: str = "PHOTOS_FOLDER", address: str | None = "auto") -> str:
    """The command that screens ``folder`` on Ray (shown by the app's Many photos page)."""
    where = f" --address {address}" if address else ""
    return (f"clarityx predict {folder} --engine ray{where} --json --heatmap-dir heatmaps/ "
            f"--resume results.jsonl >> results.jsonl")


# --- listing (driver) -----------------------------------------------------------------------------

def read_manifest_paths(csv_path: Path) -> list[Path]:
    """The photos a manifest CSV lists: its ``path`` column, relative paths taken from the CSV's folder."""
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if "path" not in (reader.fieldnames or []):
            raise ValueError(f"{csv_path}: a manifest needs a 'path' column (it has: "
                             f"{', '.join(reader.fieldnames or []) or 'none'})")
        paths = [Path(row["path"]) for row in reader if row.get("path")]
    return [p if p.is_absolute() else csv_path.parent / p for p in paths]


def list_photos(inputs: list[str]) -> list[Path]:
    """Folders and files as :func:`~clarityx.screening.imageio.find_images` expands them; a ``.csv`` is a
    manifest of photos."""
    from clarityx.screening.imageio import find_images

    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_file() and p.suffix.lower() == ".csv":
            found.extend(read_manifest_paths(p))
        else:
            found.extend(find_images([p]))
    return found


def read_rows(results: str | Path) -> Iterator[dict]:
    """The rows of a results file, read line by line (never the whole file at once). A line cut short by a
    stop is skipped; a whole row appended to such a line (output of an older ClarityX, or not made by ``>>``)
    is still read."""
    decoder = json.JSONDecoder()
    with open(results, encoding="utf-8", errors="replace") as f:
        for text in f:
            text = text.strip()
            if not text:
                continue
            try:
                row = json.loads(text)
            except ValueError:
                row = None
                start = text.find('{"path"', 1)  # rows begin with their path (Result.as_json)
                while start != -1 and row is None:
                    try:
                        found, end = decoder.raw_decode(text, start)
                        row = found if end == len(text) else None
                    except ValueError:
                        pass
                    start = text.find('{"path"', start + 1)
            if isinstance(row, dict):
                yield row


class DoneRows:
    """The photos a results file answers (status "ok" or "rejected"), by the path its rows print: absolute
    ones and (normalised) relative ones. :meth:`match` applies the rule of the module's docstring."""

    def __init__(self) -> None:
        self.absolute: set[str] = set()
        self.relative: set[str] = set()

    def add(self, path: str) -> None:
        path = os.path.normpath(path)
        (self.absolute if os.path.isabs(path) else self.relative).add(path)

    def __len__(self) -> int:
        return len(self.absolute) + len(self.relative)

    def match(self, absolute: list[str]) -> set[int]:
        """Indices of the listed photos (absolute paths) that already have an answer."""
        done = {i for i, a in enumerate(absolute) if a in self.absolute}
        here = {os.path.abspath(k): k for k in self.relative}  # a relative row, from the current folder
        listed = set(absolute)
        used = {k for a, k in here.items() if a in listed}
        done |= {i for i, a in enumerate(absolute) if a in here}
        if len(used) == len(self.relative):
            return done
        by_ending: dict[str, list[int]] = {}  # the other relative rows: the listed photos they are the end of
        for i, a in enumerate(absolute):
            parts = a.split(os.sep)
            for k in range(1, len(parts)):
                ending = os.sep.join(parts[-k:])
                if ending in self.relative and ending not in used:
                    by_ending.setdefault(ending, []).append(i)
        return done | {found[0] for found in by_ending.values() if len(found) == 1}  # two: neither (safe)


def already_done(results: str | Path | None) -> DoneRows:
    """What a results file already answers (JSON lines: rows with status "ok" or "rejected"; an "error" row is
    no answer, and a line cut short by a stop is skipped)."""
    done = DoneRows()
    if not results:
        return done
    try:
        for row in read_rows(results):
            if isinstance(row.get("path"), str) and row.get("status") in FINAL_STATUSES:
                done.add(row["path"])
    except FileNotFoundError:  # the first run of a resumable job: nothing done yet
        pass
    return done


def ends_in_a_cut_line(results: str | Path) -> bool:
    """True when the file's last byte is not a newline (a run stopped in the middle of a row)."""
    try:
        with open(results, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                return False
            f.seek(-1, os.SEEK_END)
            return f.read(1) != b"\n"
    except OSError:
        return False


def appends_to(out, results: str | Path) -> bool:
    """Whether the rows printed on ``out`` may land at the end of ``results``: ``out`` is that very file
    (``>> results``) or a pipe (``| tee -a results``); not a terminal, nor another file, nor a buffer."""
    import stat

    try:
        mine = os.fstat(out.fileno())
    except (AttributeError, OSError, ValueError):  # an in-memory stream
        return False
    if os.isatty(out.fileno()):
        return False
    if stat.S_ISFIFO(mine.st_mode) or stat.S_ISSOCK(mine.st_mode):
        return True
    try:
        return os.path.samestat(mine, os.stat(results))
    except OSError:
        return False


# --- workers --------------------------------------------------------------------------------------

def line(path: str, result, threshold: float | None, as_json: bool, ood_off: str | None = None,
         untested: str | None = None, heatmaps: dict[str, str] | None = None) -> str:
    """A photo's line, as the single-process engine prints it (``clarityx.cli.cmd_predict``'s ``emit``;
    ``tests/test_ray_engine.py`` holds the two together). ``ood_off``: the model's ``ood_off``; ``untested``:
    :func:`~clarityx.screening.tested.untested_note` of its card; ``heatmaps``: condition → heat map written."""
    from clarityx.screening.classes import BY_KEY
    from clarityx.screening.grades import referable_flag

    def label(name: str | None) -> str:  # as a person reads it (the CLI's class_label)
        return BY_KEY[name].label if name in BY_KEY else str(name).replace("_", " ").capitalize()

    heatmaps = heatmaps or {}
    if as_json:
        record = result.as_json(path)
        flagged = referable_flag(dict(result.ranked), threshold, result.referable_score)
        record["referable"] = flagged if result.status == "ok" else None
        record["referable_threshold"] = threshold
        record["untested"] = untested is not None
        record["heatmap"] = heatmaps.get(result.top) if result.top else None
        if len(heatmaps) > 1:
            record["heatmaps"] = heatmaps
        if ood_off:
            record["ood_check_off"] = ood_off
        return json.dumps(record)
    if result.status == "ok":
        ranked = ", ".join(f"{label(c)} {p:.0%}" for c, p in result.ranked)
        flagged = referable_flag(dict(result.ranked), threshold, result.referable_score)
        flag = " — possible referable diabetic retinopathy" if flagged else ""
        caveat = " — untested model" if untested else ""
        grade = f"; estimated DR grade {result.grade}" if result.grades is not None else ""
        haze = " — hazy view: a clouded lens (cataract) can cause this; see an eye doctor" if result.hazy else ""
        return f"{path}: {label(result.top)} ({ranked}{grade}){flag}{haze}{caveat}"
    return f"{path}: {result.status}: {result.message}"


_CARDS: dict[str, object] = {}  # per worker process: the model's card and gate statistics, read once


def prepare_batch(batch: dict[str, np.ndarray], model_path: str, as_json: bool) -> dict[str, np.ndarray]:
    """A Ray task: decode, gate and prepare each photo (``pipeline.decode`` and ``gate_and_prepare``, as the
    single-process engine). A photo that fails gets its row now; the others get their prepared pixels."""
    from clarityx.screening.engine import CardedModel
    from clarityx.screening.pipeline import prepare_file
    from clarityx.screening.tested import untested_note

    card = _CARDS.get(model_path)
    if card is None:
        card = _CARDS[model_path] = CardedModel(model_path)  # card only: no model session in these tasks
    n = len(batch["index"])
    pixels = np.zeros((n, card.size, card.size, 3), np.uint8)
    lines = [""] * n  # a photo that fails has its line now; the others get theirs from the model actor
    measured = np.empty(n, dtype=object)  # the gate's measures, for the haze check in the actor
    for i in range(n):
        path, file = str(batch["path"][i]), str(batch["file"][i])
        _, prepared, failed, measured[i] = prepare_file(file, card, name=path)
        if failed:
            lines[i] = line(path, failed, card.card.dr_threshold, as_json, card.ood_off,
                            untested_note(card.card.metrics))
        else:
            pixels[i] = prepared
    return {**{k: batch[k] for k in ("index", "path", "shared_name")}, "pixels": pixels,
            "measures": measured, "line": np.array(lines, dtype=object)}


class ModelActor:
    """The model, loaded once per actor; runs the prepared photos of a batch and writes their heat maps."""

    def __init__(self, model_path: str, heatmap_dir: str | None, heatmap_name: Callable, as_json: bool,
                 threads: int = 1, heatmap_shown: str | None = None) -> None:
        from clarityx.loader import load_classifier

        self.classifier = load_classifier(model_path, threads=threads)
        self.heatmap_dir = Path(heatmap_dir) if heatmap_dir else None  # absolute: where the workers write
        self.heatmap_shown = Path(heatmap_shown or heatmap_dir) if heatmap_dir else None  # as the person named it
        self.heatmap_name, self.as_json = heatmap_name, as_json

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from clarityx.screening.pipeline import Result
        from clarityx.screening.tested import untested_note

        lines = list(batch["line"])
        heatmap_errors = [""] * len(lines)
        threshold = self.classifier.card.dr_threshold
        untested = untested_note(self.classifier.card.metrics)
        ready = [i for i, text in enumerate(lines) if not text]
        if ready:
            predictions = self.classifier.predict(batch["pixels"][ready], explain=bool(self.heatmap_dir))
            for i, prediction in zip(ready, predictions):
                path = str(batch["path"][i])
                try:
                    lines[i], heatmap_errors[i] = self._photo(batch, i, prediction, threshold, untested)
                except Exception as exc:  # a bug for one photo is its error row, as on the single-process engine
                    lines[i] = line(path, Result("error", f"{type(exc).__name__}: {exc}"), threshold, self.as_json,
                                    self.classifier.ood_off, untested)
        return {"index": batch["index"], "path": batch["path"], "line": np.array(lines, dtype=object),
                "heatmap_error": np.array(heatmap_errors, dtype=object)}

    def _photo(self, batch: dict[str, np.ndarray], i: int, prediction, threshold: float | None,
               untested: str | None) -> tuple[str, str]:
        """One prepared photo of the batch: its line, and why its heat map could not be written ("" if it was)."""
        from PIL import Image

        from clarityx.screening.files import WriteFailed, atomic_path
        from clarityx.screening.heatmap import heatmap_conditions, overlay
        from clarityx.screening.pipeline import finish

        path, pixels = str(batch["path"][i]), batch["pixels"][i]
        result = finish(self.classifier, None, pixels, prediction, batch["measures"][i])  # rgb: kept, never read
        written: dict[str, str] = {}
        heatmap_error = ""
        if self.heatmap_dir and result.status == "ok":
            # As clarityx.cli (heatmap_conditions). A file name several photos of the run share always gets the
            # folder's hash (one process hashes all but the first; workers cannot tell the first).
            shown = heatmap_conditions(result, self.classifier.classes, threshold)
            used = {self.heatmap_name(Path(path), set(), result.top)} if batch["shared_name"][i] else set()
            stem = self.heatmap_name(Path(path), used, result.top)[: -len(f".{result.top}.gradcam.png")]
            try:
                for condition in shown:
                    target = self.heatmap_dir / f"{stem}.{condition}.gradcam.png"
                    with atomic_path(target) as tmp:
                        cam = prediction.cams[self.classifier.classes.index(condition)]
                        Image.fromarray(overlay(pixels, cam, 0.4)).save(tmp, format="PNG")
                    written[condition] = str(self.heatmap_shown / target.name)
            except WriteFailed as exc:  # e.g. a full disk: the driver stops the run
                heatmap_error = str(exc)
        return line(path, result, threshold, self.as_json, self.classifier.ood_off, untested, written), heatmap_error


# --- the pipeline (driver) ------------------------------------------------------------------------

def shares(total_cpus: float, num_actors: int) -> tuple[float, float]:
    """Logical CPUs for each decode task and each model actor, so that the actors never take every CPU
    (the decode tasks must still run): at most 1 each."""
    task = min(1.0, total_cpus / (num_actors + 1))
    return task, min(1.0, (total_cpus - task) / num_actors)


def screen(items: list[dict], model_path: str, heatmap_name: Callable, heatmap_dir: str | None = None,
           num_actors: int | None = None, batch_size: int = 4, as_json: bool = True,
           actor_cls: type = ModelActor, heatmap_shown: str | None = None) -> Iterator[dict]:
    """Rows ``{index, path, line, heatmap_error}`` for ``items`` (``{index, path, file, shared_name}``, see
    :func:`plan`), exactly one per index, in the order they finish. Ray must be initialised. ``heatmap_shown``:
    the heat-map folder as the rows name it (as the person typed it; default ``heatmap_dir``).

    The photos of blocks lost to crashing workers are screened again one per block (so that one poison photo
    does not take its neighbours with it); a photo lost again gets an error row (:data:`CRASHED`). Raises
    :class:`PipelineFailed` when more than :data:`ERRORED_BLOCKS` blocks are lost (or the cluster is)."""
    from clarityx.screening.engine import CardedModel
    from clarityx.screening.pipeline import Result
    from clarityx.screening.tested import untested_note

    seen: set[int] = set()

    def new(rows: Iterator[dict]) -> Iterator[dict]:
        for row in rows:
            index = int(row["index"])
            if index not in seen:  # a retried batch may repeat rows: one per photo
                seen.add(index)
                yield {"index": index, "path": str(row["path"]), "line": str(row["line"]),
                       "heatmap_error": str(row["heatmap_error"])}

    options = dict(model_path=model_path, heatmap_name=heatmap_name, heatmap_dir=heatmap_dir,
                   heatmap_shown=heatmap_shown, num_actors=num_actors, batch_size=batch_size, as_json=as_json,
                   actor_cls=actor_cls)
    yield from new(_pipeline(items, **options, one_by_one=False, errored_blocks=ERRORED_BLOCKS))
    lost = [item for item in items if item["index"] not in seen]
    if lost:  # blocks dropped after their retries: again, one photo per block
        yield from new(_pipeline(lost, **options, one_by_one=True, errored_blocks=len(lost)))
    lost = [item for item in lost if item["index"] not in seen]
    card = CardedModel(model_path) if lost else None
    for item in lost:  # a photo that crashed its worker every time: an error row, retried by --resume
        result = Result("error", CRASHED)
        yield {"index": item["index"], "path": item["path"], "heatmap_error": "",
               "line": line(item["path"], result, card.card.dr_threshold, as_json, card.ood_off,
                            untested_note(card.card.metrics))}


def _pipeline(items: list[dict], model_path: str, heatmap_name: Callable, heatmap_dir: str | None,
              heatmap_shown: str | None, num_actors: int | None, batch_size: int, as_json: bool,
              actor_cls: type, one_by_one: bool, errored_blocks: int) -> Iterator[dict]:
    """One Ray Data run over ``items``: decode tasks, then the model actors. ``one_by_one``: one photo per
    block and batch, one batch at a time per actor (a crash then loses only the photo that caused it)."""
    import warnings

    import ray
    import ray.data

    # A lost block's photos become rows (a crashed worker's: CRASHED; a Python error for one photo is its own
    # row, see ModelActor). At ERROR, Ray Data's report of a lost block left the run waiting forever
    # (tests/test_ray_engine.py, the poison photo), so it logs at CRITICAL only.
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = sys.stderr.isatty()
    before = ctx.max_errored_blocks
    ctx.max_errored_blocks = errored_blocks  # a block whose tries are spent is dropped (its photos: see screen)
    total = float(ray.cluster_resources().get("CPU", 1))
    num_actors = num_actors or max(1, int(total // 2))
    task_cpus, actor_cpus = shares(total, num_actors)
    per_block = 1 if one_by_one else PREPARE_BLOCK
    blocks = max(math.ceil(len(items) / per_block), min(len(items), num_actors))  # work for every actor
    pool = {"max_tasks_in_flight_per_actor": 1} if one_by_one else {}  # a dying actor fails no queued batch
    try:
        with warnings.catch_warnings():  # newer Ray deprecates **ray_remote_args; the retry limits have no other way
            warnings.simplefilter("ignore")
            ds = ray.data.from_items(items, override_num_blocks=blocks)
            ds = ds.map_batches(prepare_batch, fn_kwargs={"model_path": model_path, "as_json": as_json},
                                batch_size=per_block, batch_format="numpy", num_cpus=task_cpus,
                                max_retries=TASK_RETRIES)
            ds = ds.map_batches(actor_cls,
                                fn_constructor_kwargs={"model_path": model_path, "heatmap_dir": heatmap_dir,
                                                       "heatmap_name": heatmap_name, "as_json": as_json,
                                                       "threads": max(1, round(actor_cpus)),
                                                       "heatmap_shown": heatmap_shown},
                                batch_size=1 if one_by_one else batch_size, batch_format="numpy",
                                num_cpus=actor_cpus,
                                # the model and a batch's activations (the CLI peaks under 400 MB at batch 4); this
                                # also keeps decoding in its own tasks (Ray Data fuses operators only with equal
                                # resources)
                                memory=ACTOR_MEMORY + batch_size * 40 * 2**20,
                                # a killed actor is always restarted (the pool keeps its size), but a batch is tried
                                # only 1 + TASK_RETRIES times: tests/test_ray_engine.py kills one, and a poison photo
                                compute=ray.data.ActorPoolStrategy(size=num_actors, **pool),
                                max_restarts=-1, max_task_retries=TASK_RETRIES)
        try:
            yield from ds.iter_rows()
        except Exception as exc:  # Ray's own errors: a block over the limit, a lost cluster
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            raise PipelineFailed(
                f"the Ray pipeline stopped ({type(exc).__name__}: {first}): more than {errored_blocks} blocks of "
                "photos failed on its workers, or the cluster was lost. The rows printed stay; run again with "
                "--resume to continue") from exc
    finally:
        ctx.max_errored_blocks = before


def plan(paths: list[Path], done: DoneRows | None = None) -> list[dict]:
    """One item per listed photo not yet answered in ``done`` (see :class:`DoneRows`). ``shared_name``: another
    listed photo has the same file name (its heat map's name then carries the folder's hash), decided over the
    whole list, so that the names do not change between a run and its resumption."""
    from collections import Counter

    stems = Counter(p.stem for p in paths)
    absolute = [os.path.abspath(p) for p in paths]
    finished = done.match(absolute) if done else set()
    return [{"index": index, "path": str(path), "file": file, "shared_name": stems[path.stem] > 1}
            for index, (path, file) in enumerate(zip(paths, absolute)) if index not in finished]


def connect(address: str | None) -> bool:
    """Use the Ray this process already has, the cluster at ``address``, or start a local one. True when
    this call started (and so must stop) it."""
    import ray

    if ray.is_initialized():
        return False
    ray.init(address=address, include_dashboard=False if address is None else None, log_to_driver=False,
             logging_level=logging.WARNING, configure_logging=True)
    return address is None


def predict_on_ray(args, heatmap_name: Callable, end_of_run: Callable[[list[Path], bool], int]) -> int:
    """``clarityx predict --engine ray``: the same rows as the single-process engine. Exit codes as there.
    ``heatmap_name`` and ``end_of_run``: ``clarityx.cli``'s (passed in: this module does not import the CLI)."""
    if args.engine != "ray":
        print("clarityx: --address, --num-actors and --resume need --engine ray", file=sys.stderr)
        return 2
    if args.resume and not args.json:  # a results file of plain lines names no photo exactly: refused
        print(RESUME_NEEDS_JSON, file=sys.stderr)
        return 2
    try:
        import ray  # noqa: F401
    except ImportError:
        print(RAY_MISSING, file=sys.stderr)
        return 2
    from clarityx.screening.engine import CardedModel, default_model_path
    from clarityx.screening.errors import ClarityXError

    try:
        paths = list_photos(args.inputs)
    except (OSError, ValueError, KeyError) as exc:
        print(f"clarityx: {exc}", file=sys.stderr)
        return 2
    if not paths:
        print("clarityx: no images found in " + " ".join(args.inputs), file=sys.stderr)
        return 2
    model_path = Path(args.model) if args.model else default_model_path()
    try:
        card = CardedModel(model_path)  # is there a model with its card? (the actors load the model itself)
    except ClarityXError as exc:
        print(f"clarityx: {exc}", file=sys.stderr)
        return 2
    if card.ood_off:  # loud: here and in every JSON row
        print(f"clarityx: WARNING: {card.ood_off}", file=sys.stderr)
    from clarityx.screening.tested import untested_note

    if untested_note(card.card.metrics):  # as the single-process engine: on stderr, and in every JSON row
        print(f"clarityx: WARNING: {untested_note(card.card.metrics)}", file=sys.stderr)
    if args.heatmap_dir and model_path.suffix == ".tflite":
        print("clarityx: --heatmap-dir needs the .keras or .onnx model; a TFLite model cannot compute "
              "Grad-CAM", file=sys.stderr)
        return 2
    heatmap_dir = os.path.abspath(args.heatmap_dir) if args.heatmap_dir else None
    if heatmap_dir:
        try:
            Path(heatmap_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(f"clarityx: cannot create {heatmap_dir}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    try:
        items = plan(paths, already_done(args.resume))
    except OSError as exc:  # the results file exists but cannot be read
        print(f"clarityx: cannot read {args.resume}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if args.resume:
        print(f"clarityx: {len(paths) - len(items)} of {len(paths)} photos already answered in {args.resume} "
              f"(error rows are tried again); screening {len(items)}", file=sys.stderr)
    absent = [p for p in paths if not p.exists()]
    if not items:
        return 1 if absent else 0
    if args.resume and ends_in_a_cut_line(args.resume) and appends_to(sys.stdout, args.resume):
        print(flush=True)  # end the cut line: the first row must not join it (``>> results.jsonl``)
    import ray

    started = connect(args.address)
    try:
        for row in screen(items, os.path.abspath(model_path), heatmap_name, heatmap_dir, args.num_actors,
                          args.batch_size, as_json=args.json, heatmap_shown=args.heatmap_dir):
            if row["heatmap_error"]:  # e.g. a full disk: stop; what was written and printed stays
                print(f"clarityx: {row['heatmap_error']} (stopped before printing the row of {row['path']}: "
                      "run again with --resume to screen it and the rest)", file=sys.stderr)
                return 1
            print(row["line"], flush=True)
    except PipelineFailed as exc:
        print(f"clarityx: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("clarityx: stopped; the rows printed stay: run again with --resume to continue", file=sys.stderr)
        return 130
    finally:
        if started:
            ray.shutdown()
    return end_of_run(absent, args.json)
