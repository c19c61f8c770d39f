#!/usr/bin/env python
"""Re-fit a trained model's calibration (prior correction, temperature, referable-DR threshold) and
recompute its card's figures, without training again.

    python scripts/recalibrate.py runs/clarityx_lite2_ms.keras [--prior-correction auto]

It runs exactly the step that ends ``train.py`` (:func:`clarityx.training.card.card_metrics`) on the
model's own split (the split file beside it), so a model trained before a change to that step gets the card that
``train.py`` would write today. Weights, split, gate and camera probe are unchanged.
"""
import argparse
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import train  # noqa: E402
from clarityx.screening.card import ModelCard, card_path, default_limitations, markdown_path, split_path  # noqa: E402
from clarityx.screening.card_markdown import render  # noqa: E402
from clarityx.screening.files import write_text  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--prior-correction", type=train.strength, default="auto")
    ap.add_argument("--cache-dir", default=".cache")
    args = ap.parse_args()

    import keras
    import numpy as np

    from clarityx.data.split import model_parts, read_split
    from clarityx.training import steps as T
    from clarityx.training.card import card_metrics

    model_path = Path(args.model)
    card = ModelCard.load(card_path(model_path))
    run = argparse.Namespace(**{**card.training["arguments"], "prior_correction": args.prior_correction})
    if run.max_per_class:
        raise SystemExit("error: the run capped images per class; retrain it instead")
    classes = card.classes
    parts = model_parts(read_split(split_path(model_path)), classes)
    y_train = np.array([classes.index(s.label) for s in parts["train"]])
    class_weight = T.class_weights(y_train, len(classes), run.class_weight)
    x = {k: T.load_pixels(parts[k], card.input_size, Path(args.cache_dir), contrast=card.contrast)
         for k in ("validation", "calibration", "test")}
    model = keras.saving.load_model(model_path, compile=False)
    metrics, calibration = card_metrics(
        {k: T.predict_probs(model, v, run.batch_size) for k, v in x.items()}, parts, classes, run, class_weight)

    metrics["camera_probe_test_normal_eyes"] = card.metrics.get("camera_probe_test_normal_eyes")
    card.metrics = metrics
    for name, value in calibration.card_fields().items():
        setattr(card, name, value)
    card.limitations = default_limitations(classes)
    card.training["recalibrated"] = {
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    card.save(card_path(model_path))
    write_text(markdown_path(model_path), render(card))
    print(f"{model_path}: prior-correction strength {calibration.how['prior_correction_strength']}, temperature "
          f"{card.temperature:.2f}; validation macro-F1 {metrics['validation']['macro_f1']:.3f}")


if __name__ == "__main__":
    main()
