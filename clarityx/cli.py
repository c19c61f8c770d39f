"""Command line: ``clarityx predict | audit | evaluate | export``.

``clarityx predict IMAGE_OR_DIR... [--model PATH] [--json] [--heatmap-dir DIR]``
prints one line per image, in the order the images were given (a folder's photos sorted by name);
with ``--json`` one object per line:
``{"path", "status": "ok"|"rejected"|"error", "top", "grade", "probabilities", "message",
"referable", "referable_threshold"}``
(``grade``: a DR-grade model's answer, 0-4; null for other models. ``referable``: true/false when
the referable-DR score reaches the card's threshold ``referable_threshold``; null when the photo was
not graded or the model has no referable-DR score; ``ood_check_off``, only when the model's
out-of-distribution statistics (``NAME.ood.npz``) are missing: why photos unlike the training set are not
refused — also said once on stderr; ``untested``: true when the model was tested on too few photos to tell
how well it works (:mod:`clarityx.screening.tested`), also said once on stderr; ``heatmap``: the path of the
top answer's heat map, null when none was written; ``heatmaps``, only when more than one was written:
condition → path). Heat maps are named ``STEM.CONDITION.gradcam.png``: the condition is the top answer they
show; when referable diabetic retinopathy is flagged under another top answer, ``STEM.diabetic_retinopathy.gradcam.png``
is written too. Plain output names the conditions as a person reads them.
It never stops at a bad file. Exit codes: 0 done; 1 a named file or folder does not exist (it is
reported, the others are screened) or a heat map cannot be written (a full disk: stops there);
2 it cannot run at all (no model, no images).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from clarityx.data.datasets import EYE_PAIR_PATTERN, LAYOUTS  # noqa: E402  (no TensorFlow)

DISCLAIMER = "Screening aid, not a diagnosis: see an eye doctor about any concern."


def _load_classifier(model: str | None):
    from clarityx.loader import load_classifier
    from clarityx.screening.errors import ClarityXError

    try:
        return load_classifier(model)
    except ClarityXError as exc:  # no model, a damaged one, or one that does not match its card
        print(f"clarityx: {exc}", file=sys.stderr)
        return None


def heatmap_name(path: Path, used: set[str], condition: str | None = None) -> str:
    """``STEM.CONDITION.gradcam.png`` (the condition the heat map shows; ``STEM.gradcam.png`` when it is
    not known yet); photos of one name from different folders get the folder's hash too."""
    shows = f".{condition}" if condition else ""
    name = f"{path.stem}{shows}.gradcam.png"
    if name in used:
        import hashlib
        name = f"{path.stem}-{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]}{shows}.gradcam.png"
    used.add(name)
    return name


def _batches(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from clarityx.screening.imageio import find_images
    from PIL import Image

    from clarityx.screening.files import WriteFailed, atomic_path
    from clarityx.screening.heatmap import heatmap_conditions, overlay
    from clarityx.screening.pipeline import Result, finish, prepare_file
    from clarityx.scale import line
    from clarityx.screening.tested import untested_note

    if args.engine != "local" or args.address or args.num_actors or args.resume:  # on Ray (clarityx.scale)
        from clarityx.scale import predict_on_ray
        return predict_on_ray(args, heatmap_name, end_of_run)
    paths = find_images(args.inputs)
    if not paths:
        print("clarityx: no images found in " + " ".join(args.inputs), file=sys.stderr)
        return 2
    classifier = _load_classifier(args.model)
    if classifier is None:
        return 2
    if args.heatmap_dir and not classifier.can_explain:
        print("clarityx: --heatmap-dir needs the .keras or .onnx model; a TFLite model cannot compute "
              "Grad-CAM", file=sys.stderr)
        return 2
    heatmap_dir = Path(args.heatmap_dir) if args.heatmap_dir else None
    if heatmap_dir:
        try:
            heatmap_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(f"clarityx: cannot create {heatmap_dir}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    used_names: set[str] = set()
    threshold = classifier.card.dr_threshold
    if classifier.ood_off:  # loud: on stderr and in every JSON row
        print(f"clarityx: WARNING: {classifier.ood_off}", file=sys.stderr)
    untested = untested_note(classifier.card.metrics)
    if untested:  # a model tested on too few photos: on stderr, and "untested": true in every JSON row
        print(f"clarityx: WARNING: {untested}", file=sys.stderr)
    missing = [p for p in paths if not p.exists()]

    def emit(path: Path, result: Result, heatmaps: dict[str, str] | None = None) -> None:
        print(line(str(path), result, threshold, args.json, classifier.ood_off, untested, heatmaps), flush=True)

    for batch in _batches(paths, args.batch_size):
        # Each photo's slot in the batch: its refusal now, or its pixels for the model; printed in order.
        slots: list[tuple[Path, Result | None, np.ndarray | None, np.ndarray | None, dict | None]] = []
        for path in batch:
            rgb, pixels, failed, measures = prepare_file(path, classifier)
            slots.append((path, failed, rgb, pixels, measures))
        ready = [pixels for _, failed, _, pixels, _ in slots if failed is None]
        predictions = iter(classifier.predict(np.stack(ready), explain=bool(heatmap_dir)) if ready else [])
        for path, failed, rgb, pixels, measures in slots:
            if failed is not None:
                emit(path, failed)
                continue
            prediction = next(predictions)
            result = finish(classifier, rgb, pixels, prediction, measures)
            written: dict[str, str] = {}
            if heatmap_dir and result.status == "ok":
                # The top answer's map; and the diabetic-retinopathy map too when referable DR is flagged under
                # another top answer (heatmap_conditions: the rule both engines follow).
                shown = heatmap_conditions(result, classifier.classes, threshold)
                # One photo's maps share its (disambiguated) stem: STEM.TOP.gradcam.png, STEM.DR.gradcam.png.
                top_name = heatmap_name(path, used_names, result.top)
                stem = top_name[: -len(f".{result.top}.gradcam.png")]
                try:
                    for condition in shown:
                        name = f"{stem}.{condition}.gradcam.png"
                        used_names.add(name)
                        target = heatmap_dir / name
                        with atomic_path(target) as tmp:
                            cam = prediction.cams[classifier.classes.index(condition)]
                            Image.fromarray(overlay(pixels, cam, 0.4)).save(tmp, format="PNG")
                        written[condition] = str(target)
                except WriteFailed as exc:  # e.g. a full disk: stop; what was written and printed stays
                    emit(path, result, written)
                    print(f"clarityx: {exc}", file=sys.stderr)
                    return 1
            emit(path, result, written)
    return end_of_run(missing, args.json)


def end_of_run(missing: list[Path], as_json: bool) -> int:
    """The end of a ``predict`` run on either engine: name the inputs that do not exist, say what the
    answers are (not in JSON mode), and the exit code (1 when an input was missing)."""
    if missing:
        print(f"clarityx: {len(missing)} of the named files or folders "
              f"{'does' if len(missing) == 1 else 'do'} not exist: "
              + ", ".join(map(str, missing)), file=sys.stderr)
    if not as_json:
        print(DISCLAIMER, file=sys.stderr)
    return 1 if missing else 0


def cmd_audit(args: argparse.Namespace) -> int:
    from clarityx.data.audit import audit
    from clarityx.data.datasets import load_datasets

    try:
        samples, repeats = load_datasets(args.data, args.layout, args.group_pattern or None)
    except (FileNotFoundError, ValueError) as exc:
        print(f"clarityx: {exc}", file=sys.stderr)
        return 2
    if repeats:
        print(f"{repeats} photos reached through two datasets were read once", file=sys.stderr)
    report = audit(samples, root=" + ".join(args.data))
    print(report.to_json() if args.json else report.summary())
    if args.output:
        from clarityx.screening.files import WriteFailed, write_text

        try:
            write_text(args.output, report.to_json())
        except WriteFailed as exc:
            print(f"clarityx: {exc}", file=sys.stderr)
            return 1
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from clarityx.training.evaluate import evaluate, format_report

    classifier = _load_classifier(args.model)
    if classifier is None:
        return 2
    try:
        report = evaluate(classifier, args.data, args.files, args.layout, args.batch_size, idrid=args.idrid)
    except (FileNotFoundError, ValueError) as exc:
        print(f"clarityx: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    if args.write_card:  # the outside and answer-check figures as the app's path gives them now
        from clarityx.screening.card import card_path, markdown_path
        from clarityx.screening.card_markdown import render
        from clarityx.screening.files import write_text

        card = classifier.card
        card.metrics.update({k: report[k] for k in ("outside", "answer_checks") if report.get(k)})
        card.save(card_path(classifier.path))
        write_text(markdown_path(classifier.path), render(card))
        print(f"wrote the outside and answer-check figures into {card_path(classifier.path)}", file=sys.stderr)
    if args.confusion_html:
        from clarityx.screening.card_markdown import confusion_figure

        # Self-contained (plotly.js inlined): opens offline, sends nothing anywhere.
        from clarityx.screening.files import WriteFailed, write_text

        try:
            write_text(args.confusion_html,
                       confusion_figure(report, classifier.classes).to_html(include_plotlyjs=True, full_html=True))
        except WriteFailed as exc:
            print(f"clarityx: {exc}", file=sys.stderr)
            return 1
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from clarityx.model.export import export

    try:
        out = export(args.model, args.format, args.quantize, args.output)
    except (RuntimeError, ValueError, OSError) as exc:  # OSError: WriteFailed (disk full...), the old file kept
        print(f"clarityx: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="clarityx", description="ClarityX: fundus photo screening aid (local).")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("predict", help="rank eye-disease probabilities for photos")
    s.add_argument("inputs", nargs="+", help="image files or folders (walked recursively)")
    s.add_argument("--model", help="a .keras or .onnx model with its .card.json (default: bundled; its ONNX "
                                    "graph runs when in sync, see clarityx.loader), or a .tflite one (no heat maps)")
    s.add_argument("--json", action="store_true", help="one JSON object per image per line")
    s.add_argument("--heatmap-dir", help="write a Grad-CAM overlay PNG per image here")
    s.add_argument("--batch-size", type=int, default=4,
                   help="photos per model run (4 keeps the bundled 384 px model under 400 MB)")
    s.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: this process; ray: a Ray cluster (pip install \".[scale]\"; see clarityx.scale)")
    s.add_argument("--address", help="--engine ray: an existing cluster (auto, ray://HOST:10001); "
                                     "default: a local Ray started for the run")
    s.add_argument("--num-actors", type=int, help="--engine ray: model actors (default: half the cluster's CPUs)")
    s.add_argument("--resume", metavar="RESULTS.jsonl",
                   help="--engine ray, with --json: skip the photos already answered (status ok or rejected) in "
                        "this results file of an earlier --json run; error rows are screened again. A row's path "
                        "names a photo absolutely, or relatively from here, else by its ending (see clarityx.scale)")
    s.set_defaults(func=cmd_predict)

    s = sub.add_parser("audit", help="find duplicates, conflicting labels and augmented copies in a dataset")
    s.add_argument("data", nargs="+", help="dataset folders or manifest CSVs (several are read as one)")
    s.add_argument("--layout", choices=LAYOUTS)
    s.add_argument("--group-pattern", default=EYE_PAIR_PATTERN,
                   help="folder datasets: regex whose first group names the patient ('' for none)")
    s.add_argument("--json", action="store_true")
    s.add_argument("--output", help="also write the JSON report here")
    s.set_defaults(func=cmd_audit)

    s = sub.add_parser("evaluate", help="metrics of a model on labelled data (default: the card's test files)")
    s.add_argument("data", help="dataset folder or manifest CSV")
    s.add_argument("--model")
    s.add_argument("--files", choices=["card-test", "all"], default="card-test",
                   help="card-test: the model's test photos (the test part of NAME.split.csv beside it, as in "
                        "its card); all: every image")
    s.add_argument("--layout", choices=LAYOUTS)
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--json", action="store_true")
    s.add_argument("--confusion-html", help="write the confusion matrix as a self-contained plotly HTML file")
    s.add_argument("--idrid", help="IDRiD's download (scripts/fetch_outside.sh): also report its test part")
    s.add_argument("--write-card", action="store_true",
                   help="record the outside and answer-check figures in the model's card (and its Markdown)")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("export", help="export the classifier to TFLite or ONNX")
    s.add_argument("--model")
    s.add_argument("--format", choices=["tflite", "onnx"], required=True)
    s.add_argument("--quantize", choices=["float16", "int8"])
    s.add_argument("--output")
    s.set_defaults(func=cmd_export)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
