"""Leak-free train/validation/test split that honours the audit.

Rules: near-duplicate groups and patient groups never straddle splits;
suspected augmented copies and every group holding one are train-only;
near-duplicate groups carrying conflicting labels (one photo, two labels) are
dropped and listed — but two eyes of one patient are two photos that may rightly
differ, so a patient is never dropped for that. Groups are assigned stratified by
(label, source). Four parts: ``train``; ``validation`` (early stopping, choices);
``calibration`` (temperature and prior correction, never used for stopping);
``test`` (reported once). The split is written to a CSV and reused; the CSV beside a model
(``NAME.split.csv``) is that model's, and its test part the model card's test photos.
"""
from __future__ import annotations

import csv
import os
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

from clarityx.data.audit import AuditReport, connected_groups
from clarityx.data.datasets import Sample

SPLITS = ("train", "validation", "calibration", "test")


@dataclass
class SplitResult:
    samples: list[Sample]       # each with .split and .group set
    dropped: list[tuple[str, str]]  # (path, reason)

    def of(self, split: str) -> list[Sample]:
        return [s for s in self.samples if s.split == split]


def _groups(samples: list[Sample], report: AuditReport) -> list[int]:
    """Duplicate groups from the audit joined with patient groups from the dataset."""
    pairs = [(i, j) for i, j in enumerate(report.group_of) if i != j]
    by_patient: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        if s.group:
            by_patient[s.group].append(i)
    pairs += [(m[0], x) for m in by_patient.values() for x in m[1:]]
    return connected_groups(len(samples), pairs)


def make_split(samples: list[Sample], report: AuditReport, val_frac: float = 0.15,
               test_frac: float = 0.15, seed: int = 0, keep_augmented: bool = False,
               calib_frac: float = 0.0) -> SplitResult:
    """Assign every sample to train/validation/calibration/test (or drop it, with a reason)."""
    augmented = set(report.augmented_copies)
    unreadable = {u["path"] for u in report.unreadable}
    # One photo under two labels: only among the photos that will be used (an excluded augmented
    # copy carrying its folder's label does not cost the original its place).
    used = [not (str(s.path) in unreadable or (not keep_augmented and str(s.path) in augmented))
            for s in samples]
    duplicates: dict[int, list[int]] = defaultdict(list)
    for i, g in enumerate(report.group_of):
        if used[i]:
            duplicates[g].append(i)
    conflicting = {i: sorted({samples[j].label for j in m})
                   for m in duplicates.values() if len({samples[j].label for j in m}) > 1 for i in m}
    group_of = _groups(samples, report)
    members: dict[int, list[int]] = defaultdict(list)
    for i, g in enumerate(group_of):
        members[g].append(i)

    dropped: list[tuple[str, str]] = []
    assigned: dict[int, str] = {}
    free_groups: list[list[int]] = []
    for m in members.values():
        bad = [i for i in m if i in conflicting]
        dropped += [(str(samples[i].path), f"conflicting labels {conflicting[i]} on one photo or its "
                     "near-duplicates") for i in bad]
        m = [i for i in m if i not in conflicting and str(samples[i].path) not in unreadable]
        if not keep_augmented:
            dropped += [(str(samples[i].path), "pre-made augmented copy") for i in m
                        if str(samples[i].path) in augmented]
            m = [i for i in m if str(samples[i].path) not in augmented]
        if not m:
            continue
        given = {samples[i].split for i in m} - {None}
        if len(given) == 1:  # the dataset's own split
            assigned.update({i: given.pop() for i in m})
        elif any(str(samples[i].path) in augmented for i in m):
            assigned.update({i: "train" for i in m})
        else:
            free_groups.append(m)

    # Stratified greedy assignment: each group goes where its stratum is furthest below target.
    rng = random.Random(seed)
    rng.shuffle(free_groups)
    free_groups.sort(key=len, reverse=True)  # place big groups first, while there is room
    targets = {"train": 1 - val_frac - calib_frac - test_frac, "validation": val_frac,
               "calibration": calib_frac, "test": test_frac}
    stratum_total: Counter = Counter()
    for m in free_groups:
        stratum_total[(samples[m[0]].label, samples[m[0]].source)] += len(m)
    filled: dict[tuple, Counter] = defaultdict(Counter)
    for m in free_groups:
        key = (samples[m[0]].label, samples[m[0]].source)
        total = stratum_total[key]
        split = max(SPLITS, key=lambda sp: (targets[sp] * total - filled[key][sp]) if targets[sp] else -1e9)
        filled[key][split] += len(m)
        assigned.update({i: split for i in m})

    out = [replace(samples[i], split=assigned[i], group=str(group_of[i]))
           for i in range(len(samples)) if i in assigned]
    return SplitResult(out, dropped)


def model_parts(split: SplitResult, classes, max_per_class: int = 0) -> dict[str, list[Sample]]:
    """The photos of each part a model with ``classes`` is fitted, checked and tested on: the photos of its
    classes in train, validation and calibration, and every test photo (the test eyes of other labels are
    reported apart); with ``max_per_class``, the first that many of each label in each part (quick runs)."""
    parts = {}
    for name in SPLITS:
        chosen = [s for s in split.of(name) if s.label in classes or name == "test"]
        if max_per_class:
            per: Counter = Counter()
            chosen = [s for s in chosen if (per.update([s.label]) or per[s.label] <= max_per_class)]
        parts[name] = chosen
    return parts


def write_split(result: SplitResult, path: str | Path) -> None:
    """Write the split as a manifest CSV; paths relative to the CSV so the folder can move."""
    from clarityx.screening.files import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:  # later runs reuse it: never half a file
        w = csv.writer(f)
        w.writerow(["path", "label", "split", "group", "source", "grade", "conditions"])
        for s in result.samples:
            relative = os.path.relpath(s.path.resolve(), path.parent.resolve())
            grade = "" if s.grade is None else s.grade
            w.writerow([relative, s.label, s.split, s.group, s.source or "", grade, "+".join(s.conditions)])


def read_split(path: str | Path) -> SplitResult:
    from clarityx.data.datasets import read_manifest

    samples = read_manifest(Path(path))
    # read_manifest resolves relative paths against the CSV; the split stores them as written.
    return SplitResult(samples, [])
