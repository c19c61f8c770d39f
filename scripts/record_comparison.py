#!/usr/bin/env python
"""Write the initialisation comparison (test metrics of several runs on the same split) into a card.

    python scripts/record_comparison.py MAIN.keras OTHER.keras [OTHER.keras ...]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clarityx.card_markdown import render  # noqa: E402
from clarityx.card import LIMITATIONS, ModelCard, card_path, markdown_path  # noqa: E402


def row(path: Path) -> dict:
    card = ModelCard.load(card_path(path))
    test = card.metrics["test"]
    return {
        "run": f"{card.backbone} ← {card.initialisation}",
        "macro_f1": test["macro_f1"],
        "accuracy": test["accuracy"],
        "min_recall": min(m["recall"] for m in test["per_class"].values()),
        "ece": test["ece"],
        "validation_macro_f1": card.metrics["validation"]["macro_f1"],
        "notes": f"{card.training.get('phase2_epochs')} fine-tune epochs, "
                 f"{card.training.get('total_seconds')} s",
    }


def main(paths: list[str]) -> None:
    main_path = Path(paths[0])
    card = ModelCard.load(card_path(main_path))
    card.comparison = [row(Path(p)) for p in paths]
    card.limitations = card.limitations or list(LIMITATIONS)
    card.save(card_path(main_path))
    markdown_path(main_path).write_text(render(card))
    for r in card.comparison:
        print(f"{r['run']:50s} test macro-F1 {r['macro_f1']:.3f} accuracy {r['accuracy']:.3f} ({r['notes']})")


if __name__ == "__main__":
    main(sys.argv[1:])
