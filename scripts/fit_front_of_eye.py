#!/usr/bin/env python
"""Fit the gate's front-of-eye test (``GateSettings.centre_circle_votes``) on training photos only.

For each Hough accumulator threshold: the share of *training* fundus photos it would refuse, and the
share of design negatives (synthetic front-of-eye close-ups, generator seed 1) it catches. Choose the
lowest threshold that refuses at most --max-frr of training photos. Held-out rates (test photos,
negatives from other seeds and the other generator) are measured by benchmarks/gate_rates.py.

    python scripts/fit_front_of_eye.py --split models/clarityx_lite2.split.csv --photos 1500
"""
import argparse
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clarityx.screening.gate import centre_circle, check_image  # noqa: E402
from clarityx.screening.imageio import load_image  # noqa: E402
from clarityx.data.negatives import front_of_eye_closeup  # noqa: E402
from clarityx.data.split import read_split  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", required=True)
    ap.add_argument("--photos", type=int, default=1500)
    ap.add_argument("--negatives", type=int, default=100)
    ap.add_argument("--max-frr", type=float, default=0.002)
    args = ap.parse_args()
    train = read_split(args.split).of("train")
    photos = [load_image(s.path) for s in random.Random(0).sample(train, min(args.photos, len(train)))]
    photos = [p for p in photos if check_image(p, {"centre_circle_votes": 10**6}) is None]
    rng = np.random.default_rng(1)
    design = [front_of_eye_closeup(rng, int(rng.integers(250, 600))) for _ in range(args.negatives)]
    chosen = None
    for votes in (20, 25, 30, 35, 40, 50):
        frr = np.mean([centre_circle(p, votes) for p in photos])
        caught = np.mean([centre_circle(n, votes) for n in design])
        print(f"votes {votes}: training photos refused {frr:.4f} of {len(photos)}; "
              f"design negatives caught {caught:.3f}")
        if chosen is None and frr <= args.max_frr:
            chosen = votes
    print(f"chosen: {chosen}")


if __name__ == "__main__":
    main()
