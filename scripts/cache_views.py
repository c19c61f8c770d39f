#!/usr/bin/env python
"""Cache frozen EfficientNet-Lite pooled features of the split's photos and the outside sets, view by view.

    python scripts/cache_views.py --split models/clarityx_lite2.split.csv --data ../shared/data \
        --size 384 --contrast clahe --views 0 1 2 3

View 0 (the clean ``prepare`` view) is computed for every photo (split and outside sets, the Mexican
originals included); views 1.. (random training views, :func:`clarityx.training.views.random_view`)
for the training split only. ``scripts/compare_heads.py`` fits and compares heads on the cache.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def photo_lists(split_csv: str, data: str, cache_dir: str = ".cache", idrid: str | None = None) -> dict[str, list[str]]:
    from clarityx.data.external import find_outside, read_outside
    from clarityx.data.split import read_split

    split = read_split(split_csv).samples
    lists = {"all": [str(s.path) for s in split], "train": [str(s.path) for s in split if s.split == "train"]}
    outside = find_outside(data)
    if outside is not None:
        photos = [p for ps in read_outside(outside).values() for p in ps]
        lists["outside"] = [str(p.path) for p in photos]
        lists["originals"] = [str(p.original) for p in photos if p.original is not None]
    lists.update(answer_check_lists(data, cache_dir, idrid))
    return lists


def answer_check_lists(data: str, cache_dir: str = ".cache", idrid_root: str | None = None) -> dict[str, list[str]]:
    """The sets that check one answer each (view 0 only, but IDRiD's training part, which is fitted on):
    IDRiD (fetched; graded DR), CSDI (cataract haze), real front-of-eye photos as taken and as circular crops."""
    from clarityx.data.external import circle_files, read_csdi, read_front_of_eye, read_idrid

    lists = {}
    idrid = read_idrid(idrid_root) if idrid_root else []
    if idrid:
        lists["idrid"] = [str(p.path) for p in idrid]
        lists["idrid_train"] = [str(p.path) for p in idrid if p.part == "train"]
    external = Path(data) / "external"
    if (external / "csdi" / "labels.csv").is_file():
        lists["csdi"] = [str(p.path) for p in read_csdi(external / "csdi")]
    if (external / "front_of_eye" / "labels.csv").is_file():
        photos = read_front_of_eye(external / "front_of_eye")
        lists["front_of_eye"] = [str(p.path) for p in photos]
        lists["front_of_eye_circles"] = [str(p) for p in circle_files(photos, Path(cache_dir) / "front_of_eye_circles")]
    return lists


def cache_arguments(p: argparse.ArgumentParser) -> None:
    """The options that name a feature cache (shared with scripts/compare_heads.py, which reads it)."""
    p.add_argument("--split", default="models/clarityx_lite2.split.csv")
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--size", type=int, default=384)
    p.add_argument("--contrast", default="clahe")
    p.add_argument("--cache-dir", default=".cache")
    p.add_argument("--idrid", help="IDRiD's download as the fit reads it (scripts/fetch_outside.sh: ../fetched/"
                                   "idrid_quarter, decoded at a quarter of its 4288 px); also cached")
    p.add_argument("--seed", type=int, default=0, help="seed of the random views")
    p.add_argument("--variant", default="lite2",
                   help="the EfficientNet-Lite backbone: lite2 (the bundled model's) | lite1 | lite0")


def frozen_backbone(args):
    """The frozen ImageNet backbone whose pooled maps the cache holds."""
    from clarityx.model.backbones import build_backbone

    return build_backbone(f"efficientnet_{args.variant}", args.size, f"{args.variant}-imagenet")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cache_arguments(p)
    p.add_argument("--views", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--measures", action="store_true",
                   help="also cache the gate's measures of every photo as taken (haze, colour, sharpness)")
    args = p.parse_args()

    from clarityx.training.views import cache_features

    backbone = frozen_backbone(args)
    lists = photo_lists(args.split, args.data, args.cache_dir, args.idrid)
    for view in args.views:
        for name in (["all", "outside", "originals", "idrid", "csdi", "front_of_eye", "front_of_eye_circles"]
                     if view == 0 else ["train", "idrid_train"]):
            if name not in lists:
                continue
            t = time.time()
            cache_features(lists[name], backbone, args.size, args.contrast, view, args.cache_dir, args.seed,
                           progress=lambda m: print(f"{time.strftime('%H:%M:%S')} {name} {m}", flush=True))
            print(f"{name} view {view}: {len(lists[name])} photos in {time.time() - t:.0f} s", flush=True)
    if args.measures:
        from clarityx.training.views import cache_measures

        for name in ("all", "outside", "idrid", "csdi", "front_of_eye", "front_of_eye_circles"):
            if name in lists:
                t = time.time()
                cache_measures(lists[name], args.cache_dir)
                print(f"{name} measures: {len(lists[name])} photos in {time.time() - t:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
