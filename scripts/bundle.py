#!/usr/bin/env python
"""Pick the run with the best *validation* macro-F1, copy it to models/, and write every run's
validation and test numbers into its card (the test split is never used to choose).

    python scripts/bundle.py --to models/NAME.keras --candidates A.keras [B.keras ...] [--probes C.keras ...]
        [--preprocessing-comparison runs/compare_preprocessing.json]
"""
import argparse
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clarityx.data.audit import data_decisions  # noqa: E402
from clarityx.data.split import read_split, write_split  # noqa: E402
from clarityx.screening.card import ModelCard, card_path, markdown_path, split_path  # noqa: E402
from clarityx.screening.card_markdown import render  # noqa: E402
from clarityx.screening.files import atomic_path, write_text  # noqa: E402

SIDECARS = (".ood.npz", ".audit.json")  # copied as they are (the split file is re-written for its new folder)


def row(path: Path, chosen: bool) -> dict:
    card = ModelCard.load(card_path(path))
    kind = ("head only" if not card.training.get("phase2_epochs") else "fine-tuned") + (" (bundled)" if chosen else "")
    test, val = card.metrics["test"], card.metrics["validation"]
    t = card.training
    recipe = ("frozen backbone, head only" if not t.get("phase2_epochs")
              else f"{t['phase2_epochs']} fine-tune epochs, augmentation ×{t.get('aug_strength', 1.0)}")
    return {
        "run": f"{path.stem}: {card.backbone} ← {card.initialisation}",
        "kind": kind,
        "validation_macro_f1": val["macro_f1"],
        "macro_f1": test["macro_f1"],
        "accuracy": test["accuracy"],
        "min_recall": min(m["recall"] for m in test["per_class"].values()),
        "ece": test["ece"],
        "notes": f"{card.input_size} px, contrast {card.contrast}, {recipe}; phase 1 {t.get('phase1_seconds')} s, "
                 f"phase 2 {t.get('phase2_seconds')} s on {t.get('machine', '?')}",
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--to", required=True)
    ap.add_argument("--candidates", nargs="+", required=True)
    ap.add_argument("--probes", nargs="*", default=[])
    ap.add_argument("--version", help="the bundled model's version (README: what changed in each)")
    ap.add_argument("--preprocessing-comparison", help="scripts/compare_preprocessing.py's JSON, for the card")
    args = ap.parse_args()

    candidates = [Path(p) for p in args.candidates]
    best = max(candidates, key=lambda p: ModelCard.load(card_path(p)).metrics["validation"]["macro_f1"])
    target = Path(args.to)
    target.parent.mkdir(parents=True, exist_ok=True)

    import keras

    from clarityx.model.build import save_model

    card = ModelCard.load(card_path(best))
    card.name = target.stem
    if args.version:
        card.version = args.version
    card.comparison = [row(p, p == best) for p in candidates + [Path(p) for p in args.probes]]
    card.data["defects_handled"] = data_decisions(card.data["dr_grade0_policy"], card.data["dr_ungraded_policy"],
                                                  card.data["pre_made_augmented_copies"] != "excluded",
                                                  card.data.get("task", "conditions"))
    if args.preprocessing_comparison:
        card.training["preprocessing_comparison"] = json.loads(Path(args.preprocessing_comparison).read_text())
    split = split_path(best)
    if not split.exists():  # an older run that reused another run's split
        split = Path(card.training["arguments"]["split_file"])
    if card.split.get("data_root") is not None:  # recorded relative to the split file, which moves
        card.split["data_root"] = os.path.relpath((split.parent / card.split["data_root"]).resolve(),
                                                  target.parent.resolve())
    # Re-save through save_model: inference-only file, no optimizer state.
    save_model(keras.saving.load_model(best, compile=False), card, target)
    for suffix in SIDECARS:
        with atomic_path(target.with_name(target.stem + suffix)) as tmp:  # never half a file in models/
            shutil.copyfile(best.with_name(best.stem + suffix), tmp)
    write_split(read_split(split), split_path(target))  # its paths relative to the new folder
    write_text(markdown_path(target), render(card))
    print(f"bundled {best} as {target} ({target.stat().st_size / 2**20:.1f} MB)")
    for r in card.comparison:
        print(f"  {r['run']:60s} val F1 {r['validation_macro_f1']:.3f}  test F1 {r['macro_f1']:.3f}  "
              f"acc {r['accuracy']:.3f}  ({r['notes']})")


if __name__ == "__main__":
    main()
