#!/usr/bin/env python
"""Measure the gate's rates (and, for a model without one, pick its out-of-distribution threshold).

    python benchmarks/gate_rates.py [--model PATH] [--write-card] [--refit]

The gate's limits are the model's (its card's ``gate["settings"]``, else the defaults of
``clarityx.screening.limits``); ``--write-card`` records every one of them with the rates they give.
The out-of-distribution threshold is the one ``train.py`` fitted on augmented training views; with ``--refit``,
or for an older model without one, the validation fundus photos' distance percentile that gives the
target false-rejection rate. Every rate printed is then measured on images not used to pick it:
the test split's fundus photos (wrongly refused), negatives (wrongly accepted: natural photos
from scikit-image and synthetic cases), and degraded test photos (caught).
"""
from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402


def embeddings(classifier, images: list[np.ndarray]) -> np.ndarray:
    out = []
    for i in range(0, len(images), 32):
        pixels = np.stack([classifier.prepare(im) for im in images[i:i + 32]])
        out += [p.embedding for p in classifier.predict(pixels)]
    return np.stack(out)


def distances(classifier, images: list[np.ndarray]) -> np.ndarray:
    return classifier.ood.distance(embeddings(classifier, images))


def verdicts(classifier, images: list[np.ndarray], limit: float) -> list[str | None]:
    """None when accepted, else the rejection reason (image test first, then the model's front-of-eye probe and
    out-of-distribution limit, as the app's path applies them)."""
    from clarityx.screening.answers import looks_like_front_of_eye
    from clarityx.screening.gate import check_image

    reasons: list[str | None] = [None] * len(images)
    passed = []
    for i, im in enumerate(images):
        r = check_image(im, classifier.card.gate_settings)
        if r:
            reasons[i] = r.reason
        else:
            passed.append(i)
    if passed:
        e = embeddings(classifier, [images[i] for i in passed])
        d = classifier.ood.distance(e)
        for i, emb, dist in zip(passed, e, d):
            if looks_like_front_of_eye(classifier.card.answers, emb):
                reasons[i] = "front_of_eye"
            elif dist > limit:
                reasons[i] = "unfamiliar"
    return reasons


def rate(reasons: list, accepted: bool) -> str:
    n = len(reasons)
    k = sum((r is None) == accepted for r in reasons)
    return f"{k}/{n} = {100 * k / max(n, 1):.1f}%"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model")
    ap.add_argument("--target-frr", type=float, default=0.01, help="false-rejection target on validation (--refit)")
    ap.add_argument("--refit", action="store_true",
                    help="fit the OOD limit here, on validation photos, instead of keeping the one train.py fitted "
                         "on augmented training views (a model from before v3 has none)")
    ap.add_argument("--synthetic", type=int, default=120)
    ap.add_argument("--front-of-eye", type=int, default=100, help="held-out front-of-eye close-ups")
    ap.add_argument("--write-card", action="store_true", help="store the threshold and rates in the model card")
    args = ap.parse_args()

    from clarityx.screening.card_markdown import render
    from clarityx.screening.imageio import load_image
    from clarityx.loader import load_classifier
    from clarityx.screening.card import card_path, markdown_path, split_path
    from clarityx.screening.files import write_text
    from clarityx.data.negatives import DEGRADATIONS, degrade, front_of_eye_closeup, skimage_photos, synthetic
    from clarityx.data.split import read_split

    classifier = load_classifier(args.model)  # the ONNX engine when the graph is in sync: as the app
    split = read_split(split_path(classifier.path))
    val, test = split.of("validation"), split.of("test")
    val_images = [load_image(s.path) for s in val]
    test_images = [load_image(s.path) for s in test]

    from clarityx.screening.gate import check_image
    settings = classifier.card.gate_settings
    limit = settings.max_ood_distance
    if limit is None or args.refit:
        val_ok = [im for im in val_images if check_image(im, settings) is None]
        limit = float(np.percentile(distances(classifier, val_ok), 100 * (1 - args.target_frr)))
        fitted_on = (f"validation {100 * (1 - args.target_frr):.0f}th percentile "
                     f"({len(val_ok)}/{len(val_images)} validation photos passed the image test)")
    else:
        fitted_on = classifier.card.gate.get("max_ood_distance_fitted_on", "the model card (train.py)")
    print(f"OOD threshold: {limit:.2f} ({fitted_on})")

    test_reasons = verdicts(classifier, test_images, limit)
    natural = list(skimage_photos())
    synth = list(synthetic(args.synthetic, seed=12345))
    nat_reasons = verdicts(classifier, [im for _, im in natural], limit)
    syn_reasons = verdicts(classifier, [im for _, im in synth], limit)
    degraded = {k: verdicts(classifier, [degrade(im, k) for im in test_images[::3]], limit) for k in DEGRADATIONS}
    rng = np.random.default_rng(777)  # not seed 1, with which the front-of-eye limit was fitted
    front = verdicts(classifier, [front_of_eye_closeup(rng, int(rng.integers(250, 600)))
                                  for _ in range(args.front_of_eye)], limit)

    results = {
        "test_fundus_wrongly_refused": rate(test_reasons, accepted=False),
        "test_refusal_reasons": dict(Counter(r for r in test_reasons if r)),
        "natural_photos_accepted": rate(nat_reasons, accepted=True),
        "synthetic_negatives_accepted": rate(syn_reasons, accepted=True),
        "degraded_caught": {k: rate(v, accepted=False) for k, v in degraded.items()},
        "front_of_eye_refused": rate(front, accepted=False),
        "front_of_eye_reasons": dict(Counter(r for r in front if r)),
    }
    print(f"held-out test fundus photos wrongly refused: {results['test_fundus_wrongly_refused']} "
          f"{results['test_refusal_reasons']}")
    print(f"natural photos (scikit-image) accepted:     {results['natural_photos_accepted']}")
    for (name, _), r in zip(natural, nat_reasons):
        print(f"    {name:32s} {r or 'ACCEPTED'}")
    print(f"synthetic negatives accepted:               {results['synthetic_negatives_accepted']}")
    by_kind = Counter(n.split(".")[1] for (n, _), r in zip(synth, syn_reasons) if r is None)
    if by_kind:
        print(f"    accepted by kind: {dict(by_kind)}")
    print(f"front-of-eye close-ups refused:             {results['front_of_eye_refused']} "
          f"{results['front_of_eye_reasons']}")
    for k, v in results["degraded_caught"].items():
        print(f"degraded test photos caught ({k:6s}):       {v}  {dict(Counter(degraded[k]))}")

    if args.write_card:
        card = classifier.card
        card.gate = {**card.gate, "settings": {**settings.as_dict(), "max_ood_distance": limit},
                     "max_ood_distance_fitted_on": fitted_on, "measured": results,
                     "command": "python benchmarks/gate_rates.py --write-card"}
        card.save(card_path(classifier.path))
        write_text(markdown_path(classifier.path), render(card))
        print(f"wrote the limits and rates into {card_path(classifier.path)}")


if __name__ == "__main__":
    main()
