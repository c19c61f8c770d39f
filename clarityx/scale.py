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
is restarted and its batch retried by Ray (``max_restarts``/``max_task_retries``), and the driver prints one row
per listed photo (deduplicated by index; a photo the pipeline lost would get an error row). ``--resume FILE``
skips the photos that already have a row in FILE (lines cut short by a stop are ignored).

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


def already_done(results: str | Path | None) -> set[str]:
    """Absolute paths of the photos that have a row in a results file (JSON lines; broken lines ignored)."""
    done: set[str] = set()
    if not results:
        return done
    try:
        text = Path(results).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:  # the first run of a resumable job: nothing done yet
        return done
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:  # a line cut short when the run was stopped
            continue
        if isinstance(row, dict) and isinstance(row.get("path"), str):
            done.add(os.path.abspath(row["path"]))
    return done


# --- workers --------------------------------------------------------------------------------------

def line(path: str, result, threshold: float | None, as_json: bool) -> str:
    """A photo's line, as the single-process engine prints it (``clarityx.cli.cmd_predict``'s ``emit``;
    ``tests/test_ray_engine.py`` holds the two together)."""
    from clarityx.screening.report import referable_flag

    if as_json:
        record = result.as_json(path)
        record["referable"] = referable_flag(dict(result.ranked), threshold) if result.status == "ok" else None
        record["referable_threshold"] = threshold
        return json.dumps(record)
    if result.status == "ok":
        ranked = ", ".join(f"{c} {p:.0%}" for c, p in result.ranked)
        flag = " — possible referable diabetic retinopathy" if referable_flag(dict(result.ranked), threshold) else ""
        return f"{path}: {result.top} ({ranked}){flag}"
    return f"{path}: {result.status}: {result.message}"


_CARDS: dict[str, object] = {}  # per worker process: the model's card and gate statistics, read once


def prepare_batch(batch: dict[str, np.ndarray], model_path: str, as_json: bool) -> dict[str, np.ndarray]:
    """A Ray task: decode, gate and prepare each photo (``pipeline.decode`` and ``gate_and_prepare``, as the
    single-process engine). A photo that fails gets its row now; the others get their prepared pixels."""
    from clarityx.screening.engine import CardedModel
    from clarityx.screening.pipeline import prepare_file

    card = _CARDS.get(model_path)
    if card is None:
        card = _CARDS[model_path] = CardedModel(model_path)  # card only: no model session in these tasks
    n = len(batch["index"])
    pixels = np.zeros((n, card.size, card.size, 3), np.uint8)
    lines = [""] * n  # a photo that fails has its line now; the others get theirs from the model actor
    for i in range(n):
        path, file = str(batch["path"][i]), str(batch["file"][i])
        _, prepared, failed = prepare_file(file, card, name=path)
        if failed:
            lines[i] = line(path, failed, card.card.dr_threshold, as_json)
        else:
            pixels[i] = prepared
    return {**{k: batch[k] for k in ("index", "path", "shared_name")}, "pixels": pixels,
            "line": np.array(lines, dtype=object)}


class ModelActor:
    """The model, loaded once per actor; runs the prepared photos of a batch and writes their heat maps."""

    def __init__(self, model_path: str, heatmap_dir: str | None, heatmap_name: Callable, as_json: bool,
                 threads: int = 1) -> None:
        from clarityx.loader import load_classifier

        self.classifier = load_classifier(model_path, threads=threads)
        self.heatmap_dir = Path(heatmap_dir) if heatmap_dir else None
        self.heatmap_name, self.as_json = heatmap_name, as_json

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from PIL import Image

        from clarityx.screening.files import WriteFailed, atomic_path
        from clarityx.screening.heatmap import overlay
        from clarityx.screening.pipeline import finish

        lines = list(batch["line"])
        heatmap_errors = [""] * len(lines)
        threshold = self.classifier.card.dr_threshold
        ready = [i for i, text in enumerate(lines) if not text]
        if ready:
            predictions = self.classifier.predict(batch["pixels"][ready], explain=bool(self.heatmap_dir))
            for i, prediction in zip(ready, predictions):
                path, pixels = str(batch["path"][i]), batch["pixels"][i]
                result = finish(self.classifier, None, pixels, prediction)  # rgb: only kept, never read
                lines[i] = line(path, result, threshold, self.as_json)
                if self.heatmap_dir and result.status == "ok":
                    top = self.classifier.classes.index(result.top)
                    # clarityx.cli.heatmap_name; a file name several photos of the run share always gets the
                    # folder's hash (one process hashes all but the first; workers cannot tell the first)
                    used = {self.heatmap_name(Path(path), set(), result.top)} if batch["shared_name"][i] else set()
                    try:
                        with atomic_path(self.heatmap_dir / self.heatmap_name(Path(path), used, result.top)) as tmp:
                            Image.fromarray(overlay(pixels, prediction.cams[top], 0.4)).save(tmp, format="PNG")
                    except WriteFailed as exc:  # e.g. a full disk: the driver stops the run
                        heatmap_errors[i] = str(exc)
        return {"index": batch["index"], "path": batch["path"], "line": np.array(lines, dtype=object),
                "heatmap_error": np.array(heatmap_errors, dtype=object)}


# --- the pipeline (driver) ------------------------------------------------------------------------

def shares(total_cpus: float, num_actors: int) -> tuple[float, float]:
    """Logical CPUs for each decode task and each model actor, so that the actors never take every CPU
    (the decode tasks must still run): at most 1 each."""
    task = min(1.0, total_cpus / (num_actors + 1))
    return task, min(1.0, (total_cpus - task) / num_actors)


def screen(items: list[dict], model_path: str, heatmap_name: Callable, heatmap_dir: str | None = None,
           num_actors: int | None = None, batch_size: int = 4, as_json: bool = True,
           actor_cls: type = ModelActor) -> Iterator[dict]:
    """Rows ``{index, path, line, heatmap_error}`` for ``items`` (``{index, path, file, shared_name}``, see
    :func:`plan`), exactly one per index, in the order they finish. Ray must be initialised."""
    import ray
    import ray.data

    logging.getLogger("ray.data").setLevel(logging.WARNING)  # after ray.data's own logging set-up
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = sys.stderr.isatty()
    total = float(ray.cluster_resources().get("CPU", 1))
    num_actors = num_actors or max(1, int(total // 2))
    task_cpus, actor_cpus = shares(total, num_actors)
    blocks = max(math.ceil(len(items) / PREPARE_BLOCK), min(len(items), num_actors))  # work for every actor
    ds = ray.data.from_items(items, override_num_blocks=blocks)
    ds = ds.map_batches(prepare_batch, fn_kwargs={"model_path": model_path, "as_json": as_json},
                        batch_size=PREPARE_BLOCK,
                        batch_format="numpy", num_cpus=task_cpus)
    ds = ds.map_batches(actor_cls, fn_constructor_kwargs={"model_path": model_path, "heatmap_dir": heatmap_dir,
                                                          "heatmap_name": heatmap_name, "as_json": as_json,
                                                          "threads": max(1, round(actor_cpus))},
                        batch_size=batch_size, batch_format="numpy", num_cpus=actor_cpus,
                        # the model and a batch's activations (the CLI peaks under 400 MB at batch 4); this also
                        # keeps decoding in its own tasks (Ray Data fuses operators only with equal resources)
                        memory=ACTOR_MEMORY + batch_size * 40 * 2**20,
                        # Ray Data's actor pools restart a killed actor and retry its batch (max_restarts and
                        # max_task_retries default to -1 there): tests/test_ray_engine.py kills one.
                        compute=ray.data.ActorPoolStrategy(size=num_actors))
    seen: set[int] = set()
    for row in ds.iter_rows():
        index = int(row["index"])
        if index in seen:
            continue
        seen.add(index)
        yield {"index": index, "path": str(row["path"]), "line": str(row["line"]),
               "heatmap_error": str(row["heatmap_error"])}
    from clarityx.screening.engine import CardedModel
    from clarityx.screening.pipeline import Result

    lost = [item for item in items if item["index"] not in seen]
    threshold = CardedModel(model_path).card.dr_threshold if lost else None
    for item in lost:  # never expected: a photo the pipeline lost still gets its row
        result = Result("error", "lost by the Ray pipeline; run again with --resume")
        yield {"index": item["index"], "path": item["path"], "line": line(item["path"], result, threshold, as_json),
               "heatmap_error": ""}


def plan(paths: list[Path], done: set[str] = frozenset()) -> list[dict]:
    """One item per listed photo not yet done. ``shared_name``: another listed photo has the same file name
    (its heat map's name then carries the folder's hash), decided over the whole list, so that the names do not
    change between a run and its resumption."""
    from collections import Counter

    stems = Counter(p.stem for p in paths)
    return [{"index": index, "path": str(path), "file": os.path.abspath(path), "shared_name": stems[path.stem] > 1}
            for index, path in enumerate(paths) if os.path.abspath(path) not in done]


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
        CardedModel(model_path)  # is there a model with its card? (the actors load the model itself)
    except ClarityXError as exc:
        print(f"clarityx: {exc}", file=sys.stderr)
        return 2
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
    items = plan(paths, already_done(args.resume))
    if args.resume:
        print(f"clarityx: {len(paths) - len(items)} of {len(paths)} photos already in {args.resume}; "
              f"screening {len(items)}", file=sys.stderr)
    absent = [p for p in paths if not p.exists()]
    if not items:
        return 1 if absent else 0
    import ray

    started = connect(args.address)
    try:
        for row in screen(items, os.path.abspath(model_path), heatmap_name, heatmap_dir, args.num_actors,
                          args.batch_size, as_json=args.json):
            print(row["line"], flush=True)
            if row["heatmap_error"]:  # e.g. a full disk: stop; what was written and printed stays
                print(f"clarityx: {row['heatmap_error']}", file=sys.stderr)
                return 1
    finally:
        if started:
            ray.shutdown()
    return end_of_run(absent, args.json)
