#!/usr/bin/env python
"""Camera probe of any model on a split's test eyes: can its embedding tell ODIR from EyePACS among
*normal* eyes? (Balanced accuracy of patient-grouped logistic regression; 0.5 = it cannot.)

    python scripts/camera_probe.py --model models/OLD.keras --split models/NEW.split.csv
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--split", required=True)
    args = ap.parse_args()

    from clarityx.training.evaluate import camera_probe
    from clarityx.screening.imageio import load_image
    from clarityx.model.keras_engine import Classifier
    from clarityx.data.split import read_split
    from clarityx.screening.classes import NORMAL

    classifier = Classifier(args.model, warm_up=False)
    eyes = [s for s in read_split(args.split).of("test") if s.label == NORMAL and s.source in ("odir", "eyepacs")]
    emb = []
    for i in range(0, len(eyes), 32):
        pixels = np.stack([classifier.prepare(load_image(s.path)) for s in eyes[i:i + 32]])
        emb += [p.embedding for p in classifier.predict(pixels)]
    print(json.dumps({"model": args.model, **camera_probe(np.stack(emb), eyes)}))


if __name__ == "__main__":
    main()
