#!/usr/bin/env python
"""How right is the audit's near-duplicate detector? Measured on pairs whose truth is known.

True duplicates: the same ODIR-5K photo reached through eye_diseases/ and odir5k/ (different
resolution and encoding), each also flipped or rotated. Distinct: photos of different patients
(different eyes, often the same camera). Prints recall on the first and false matches on the second.

    python scripts/validate_duplicates.py ../shared/data --pairs 400 --distinct 800
"""
import argparse
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clarityx.data.audit import near_duplicate_pairs, read_file  # noqa: E402
from clarityx.data.datasets import load_dataset  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", help="the shared data folder (eye_diseases_manifest.csv and odir5k/)")
    ap.add_argument("--pairs", type=int, default=400)
    ap.add_argument("--distinct", type=int, default=800)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    odir = load_dataset(Path(args.data) / "odir5k")
    by_name = {s.path.name: s for s in odir}
    copies = [s for s in load_dataset(Path(args.data) / "eye_diseases_manifest.csv")
              if s.source == "odir" and s.path.name in by_name]
    copies = rng.sample(copies, min(args.pairs, len(copies)))

    found = 0
    transformed = 0
    for s in copies:
        a = read_file(by_name[s.path.name].path).thumbnail
        b = read_file(s.path).thumbnail
        k = rng.randrange(1, 8)  # a flip or rotation of the copy
        b_t = np.rot90(b, k // 2)[:, ::-1] if k % 2 else np.rot90(b, k // 2)
        found += bool(near_duplicate_pairs(np.stack([a, b])))
        transformed += bool(near_duplicate_pairs(np.stack([a, np.ascontiguousarray(b_t)])))
    print(f"true duplicates found: {found}/{len(copies)} as copied, {transformed}/{len(copies)} flipped or rotated")

    sample = rng.sample(odir, min(args.distinct, len(odir)))
    thumbs = np.stack([read_file(s.path).thumbnail for s in sample])
    pairs = near_duplicate_pairs(thumbs)
    n = len(sample)
    cross = sum(sample[i].group != sample[j].group for i in range(n) for j in range(i + 1, n))
    false = [(sample[i].path.name, sample[j].path.name) for i, j, _, _ in pairs if sample[i].group != sample[j].group]
    same = [(sample[i].path.name, sample[j].path.name) for i, j, _, _ in pairs if sample[i].group == sample[j].group]
    print(f"pairs of different patients matched: {len(false)} of {cross} ({false[:10]})")
    print(f"pairs of one patient's two eyes matched: {len(same)}")
    print(f"precision on these pairs: {(found + transformed) / max(1, found + transformed + len(false)):.4f}")


if __name__ == "__main__":
    main()
