#!/usr/bin/env python
"""Fit the gate's focus limit (``GateSettings.min_sharpness``) on training photos only, and show what it does.

    python scripts/fit_sharpness.py [--split models/clarityx_lite2.split.csv] [--data ../shared/data]

The limit is the 0.1% quantile of the sharpness (:func:`clarityx.screening.gate.measure`) of every 8th training
photo; printed beside it: the share of blurred held-out test photos (``clarityx.data.negatives.degrade``) it
catches and the share of outside-set photos it refuses (measured, never fitted on).
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clarityx.data.external import find_outside, read_outside  # noqa: E402
from clarityx.data.negatives import degrade  # noqa: E402
from clarityx.data.split import read_split  # noqa: E402
from clarityx.screening.gate import measure  # noqa: E402
from clarityx.screening.imageio import load_image  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="models/clarityx_lite2.split.csv")
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--quantile", type=float, default=0.001)
    args = ap.parse_args()
    split = read_split(args.split)
    train = np.array([measure(load_image(s.path))["sharpness"] for s in split.of("train")[::8]])
    limit = float(np.quantile(train, args.quantile))
    blurred = np.array([measure(degrade(load_image(s.path), "blur"))["sharpness"] for s in split.of("test")[::3]])
    print(f"min_sharpness = {limit:.3f} (the {args.quantile:.1%} quantile of {len(train)} training photos)")
    print(f"blurred held-out test photos caught: {np.mean(blurred < limit):.1%} of {len(blurred)}")
    external = find_outside(args.data)
    if external is not None:
        outside = [p for ps in read_outside(external).values() for p in ps]
        refused = np.mean([measure(load_image(p.path))["sharpness"] < limit for p in outside])
        print(f"outside photos refused for focus: {refused:.1%} of {len(outside)}")


if __name__ == "__main__":
    main()
